"""Runs, dead letters and audit events as plain dicts: what `hub runs`, `hub dlq` and
`hub audit` print and what the dashboard and its JSON API show, computed in one place.

Rows come back unredacted (the caller redacts at output, with `hub.config.redact`), with
JSON columns parsed and, for runs and dead letters, a sentence an ops person can act on.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from hub.canonical.diffs import decode_diff
from hub.insights.facts import parse_iso
from hub.store import Store

# What a dead letter's stage means for the person who has to fix it.
STAGE_ADVICE = {
    "read": "the row could not be read from {system}: fix it there, run the flow again, "
            "then discard this dead letter",
    "map": "the record from {system} could not be turned into a {entity}: fix the value in "
           "{system} (or the mapping), then replay",
    "validate": "the {entity} from {system} breaks a rule of the canonical model: fix the "
                "field named in the reason in {system}, then replay",
    "identity": "the record from {system} could not be matched safely to one {entity}: "
                "remove the duplicate in {system}, then replay",
    "write": "{system} refused the {entity}: fix what the reason names (in {system} or in "
             "the mapping), then replay",
}


def parse_time(text: str) -> str:
    """A date or time (2026-11-01, 2026-11-01T08:00:00Z, with an offset) as the store's
    UTC timestamp form; ValueError with an example when it is not one."""
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not a date or time; use e.g. 2026-11-01 or "
                         "2026-11-01T08:00:00Z (UTC)") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _seconds(start: str | None, end: str | None) -> float | None:
    a, b = parse_iso(start), parse_iso(end)
    return round((b - a).total_seconds(), 3) if a and b else None


def run_problem(run: dict[str, Any]) -> str | None:
    """What went wrong in a run and what to do about it, in words; None when nothing did."""
    status = run.get("status")
    dead = int(run.get("dead_lettered") or 0) + int(run.get("write_failed") or 0)
    if status == "failed":
        reason = run.get("error") or "no reason was recorded"
        return f"The run stopped: {reason}. Fix that, then run the flow again."
    parts = []
    if dead:
        parts.append(f"{dead} record{'s' if dead != 1 else ''} could not be synced and "
                     "{} kept as dead letters: open Dead letters to see why and replay "
                     "them".format("were" if dead != 1 else "was"))
    if int(run.get("pending") or 0):
        parts.append(f"{run['pending']} deliveries are waiting to be retried (the target "
                     "was busy or unreachable)")
    if run.get("error"):
        parts.append(str(run["error"]))
    return "; ".join(parts) + "." if parts else None


def run_rows(store: Store, flow: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
    """The newest runs (of one flow, or all) with counts, duration and problem."""
    with store.connect() as conn:
        rows = store.list_runs(conn, flow, limit)
    return [run_dict(r) for r in rows]


def run_dict(row: Any) -> dict[str, Any]:
    """One run row as a dict: skip reasons parsed, duration and problem added."""
    d = dict(row._mapping)
    d["skip_reasons"] = orjson.loads(d.get("skip_reasons") or "{}")
    d["duration_seconds"] = _seconds(d.get("started_at"), d.get("finished_at"))
    d["problem"] = run_problem(d)
    return d


def dead_letter_advice(row: dict[str, Any]) -> str:
    """What to do about a dead letter, from its stage."""
    template = STAGE_ADVICE.get(str(row.get("stage")),
                                "fix what the reason names, then replay")
    return template.format(system=row.get("system") or "the system",
                           entity=row.get("entity") or "record")


def dead_letter_rows(store: Store, *, status: str | None = "open", flow: str | None = None,
                     entity: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
    """Dead letters, newest first, without their payloads (status None: every status)."""
    with store.connect() as conn:
        rows = store.list_dead_letters(conn, status=status, flow=flow, entity=entity,
                                       limit=limit)
    out = []
    for r in rows:
        d = {k: v for k, v in r._mapping.items() if k != "payload"}
        d["advice"] = dead_letter_advice(d)
        out.append(d)
    return out


def dead_letter_detail(store: Store, dl_id: int) -> dict[str, Any] | None:
    """One dead letter with its payload parsed, or None when there is no such id."""
    with store.connect() as conn:
        row = store.get_dead_letter(conn, dl_id)
    if row is None:
        return None
    d = dict(row._mapping)
    d["payload"] = orjson.loads(d["payload"]) if d.get("payload") else None
    d["advice"] = dead_letter_advice(d)
    return d


def audit_rows(store: Store, *, record: str | None = None, system: str | None = None,
               flow: str | None = None, since: str | None = None, until: str | None = None,
               limit: int = 100) -> list[dict[str, Any]]:
    """Audit events matching the filters, newest first, each diff as {field: [old, new]}.

    `since`/`until` are in the store's form (see `parse_time`)."""
    with store.connect() as conn:
        rows = store.query_audit(conn, record=record, system=system, flow=flow, since=since,
                                 until=until, limit=limit)
    data = [dict(r._mapping) for r in rows]
    for d in data:
        d["diff"] = decode_diff(d["diff"] or "")
    return data
