"""Roll-ups: values that records of one entity give to the records they refer to.

The sync engine applies them itself (not an observer), inside the transaction that stores
a page or a replayed record, so a derived value is committed exactly with the records it
comes from, whatever observers are configured. Each rule of RULES reads:

    <source entity>.<when> and <source entity>.<refs>  ->  <target entity>.<field>
        = the newest <when> of the source records that refer to the target

Today one rule: a message's `date` and `contacts` -> each contact's `last_activity_at`.

- Only a created, updated or restored source record whose field diff carries `when` or
  `refs` counts (the new values; a field not in the diff is taken from the stored record).
  An unchanged record does nothing, so re-running a flow writes nothing.
- The value only moves forward: an older message leaves a newer last activity as it is.
- A record dated more than FUTURE_TOLERANCE ahead of this machine's clock (a sender with
  a wrong clock) is not used, since a value in the future could never be corrected by a
  later message; the run says so in a note.
- Placeholder records (stubs: an address nobody owns yet) get the value too, so the CRM
  contact that later fills the placeholder keeps it; placeholders are never delivered.
- The field's provenance is [the source record's system, its `when`, the run]; each target
  that changes is one audit event ("update" of the target, naming the source record's
  system and id there: the record that caused it).
- A changed target is owed (outbox) to the delivery targets of every enabled flow of the
  target entity that carries it: a flow one of whose sources holds a link to the record,
  and whose filter lets it through (as ingest and backfill decide what a flow delivers).
  It reaches them when that flow runs (or its deliver jobs do).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Connection

from hub.canonical import SCHEMA_VERSION, fingerprint
from hub.config.model import FlowConfig, Settings
from hub.mapping.conditions import compile_condition
from hub.store import RecordRow, Store, encode_sources, now_iso
from hub.sync.hooks import Change, RunInfo


@dataclass(frozen=True)
class Rule:
    """One roll-up: the newest `when` of `source` records -> `field` of the `target`
    records their `refs` field (one canonical id or a list of them) names."""

    source: str
    when: str
    refs: str
    target: str
    field: str


RULES: tuple[Rule, ...] = (
    Rule(source="message", when="date", refs="contacts", target="contact",
         field="last_activity_at"),
)
FUTURE_TOLERANCE = timedelta(hours=1)
COUNTED = frozenset({"create", "update", "restore"})  # changes that carry a diff to read


def _parse(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _ids(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str) and v]
    return []


def _new(change: Change, name: str, stored: Mapping[str, Any]) -> Any:
    """The field's value after the change: the diff's new value, else the stored one."""
    pair = change.diff.get(name)
    if isinstance(pair, (list, tuple)) and len(pair) == 2:
        return pair[1]
    return stored.get(name)


class RollUp:
    """Applies the rules whose source is the run's entity; one per source read."""

    def __init__(self, settings: Settings, store: Store, run: RunInfo,
                 notes: list[str] | None = None) -> None:
        self.settings = settings
        self.store = store
        self.run = run
        self.rules = tuple(r for r in RULES if r.source == run.entity)
        self.notes = notes if notes is not None else []
        self._filters: dict[str, Callable[[dict[str, Any]], bool] | None] = {}
        self._future = 0
        self._note_at: int | None = None

    def apply(self, conn: Connection, changes: Sequence[Change]) -> list[Change]:
        """Update the targets of this page's changes in `conn`'s transaction; the target
        changes made, for the observers (the audit trail)."""
        if not self.rules or not changes:
            return []
        out: list[Change] = []
        for rule in self.rules:
            out.extend(self._apply(conn, rule, changes))
        return out

    # -- one rule --------------------------------------------------------------------------

    def _apply(self, conn: Connection, rule: Rule, changes: Sequence[Change]) -> list[Change]:
        relevant = [c for c in changes
                    if c.entity == rule.source and c.action in COUNTED and c.canonical_id
                    and (rule.when in c.diff or rule.refs in c.diff)]
        if not relevant:
            return []
        lacking = [c.canonical_id for c in relevant
                   if c.canonical_id and not (rule.when in c.diff and rule.refs in c.diff)]
        stored = self.store.get_records(conn, lacking) if lacking else {}
        limit = datetime.now(UTC) + FUTURE_TOLERANCE
        newest: dict[str, tuple[datetime, str, Change]] = {}
        for change in relevant:
            rec = stored.get(change.canonical_id or "")
            data = rec.data if rec is not None else {}
            when, refs = _new(change, rule.when, data), _ids(_new(change, rule.refs, data))
            at = _parse(when)
            if at is None or not refs:
                continue  # no date or nobody named: nothing to roll up
            if at > limit:
                self._note_future(rule, change, str(when))
                continue
            for tid in refs:
                best = newest.get(tid)
                if best is None or at > best[0]:
                    newest[tid] = (at, str(when), change)
        return self._update(conn, rule, newest) if newest else []

    def _update(self, conn: Connection, rule: Rule,
                newest: Mapping[str, tuple[datetime, str, Change]]) -> list[Change]:
        targets = self.store.get_records(conn, newest.keys())
        now = now_iso()
        rows: list[dict[str, Any]] = []
        changed: list[Change] = []
        moved: dict[str, dict[str, Any]] = {}
        for tid, (at, when, cause) in newest.items():
            rec = targets.get(tid)
            if rec is None or rec.deleted or rec.entity != rule.target:
                continue
            old = rec.data.get(rule.field)
            old_at = _parse(old)
            if old_at is not None and old_at >= at:
                continue  # never backwards (and an equal date changes nothing)
            data = {**rec.data, rule.field: when}
            sources = {**rec.sources, rule.field: [cause.system, when, self.run.run_id]}
            rows.append(_row(rec, data, sources, now))
            changed.append(Change("update", rule.target, tid, cause.system, cause.external_id,
                                  {rule.field: [old, when]}))
            if not rec.stub:
                moved[tid] = data
        if rows:
            self.store.upsert_records(conn, rows)
            self._owe(conn, rule.target, moved)
        return changed

    def _owe(self, conn: Connection, entity: str, moved: Mapping[str, dict[str, Any]]) -> None:
        """Owe the changed records to every enabled flow of `entity` that carries them."""
        if not moved:
            return
        for flow in self.settings.flows.values():
            if not flow.enabled or flow.entity != entity:
                continue
            two_way = flow.direction == "two-way"
            linked: set[str] = set()
            for source in flow.systems if two_way else flow.sources:
                linked.update(self.store.links_by_canonical(conn, source, entity, moved))
            keep = self._filter(flow)
            owed = [cid for cid in moved
                    if cid in linked and (keep is None or keep(moved[cid]))]
            if not owed:
                continue
            for target in flow.systems if two_way else flow.targets:
                self.store.outbox_add(conn, flow.name, target, owed, self.run.run_id)

    def _filter(self, flow: FlowConfig) -> Callable[[dict[str, Any]], bool] | None:
        if flow.name not in self._filters:
            self._filters[flow.name] = (compile_condition(dict(flow.filter)).test
                                        if flow.filter else None)
        return self._filters[flow.name]

    def _note_future(self, rule: Rule, change: Change, when: str) -> None:
        self._future += 1
        hours = FUTURE_TOLERANCE.total_seconds() / 3600
        text = (f"{self._future} {rule.source}(s) dated more than {hours:g} hour(s) ahead of "
                f"this machine's clock did not set their {rule.target}s' {rule.field} (e.g. "
                f"{change.system} record {change.external_id}, {rule.when} {when}): check the "
                "clock of the system that dated it, or of this machine")
        if self._note_at is None:
            self._note_at = len(self.notes)
            self.notes.append(text)
        else:
            self.notes[self._note_at] = text


def _row(rec: RecordRow, data: dict[str, Any], sources: dict[str, Any],
         now: str) -> dict[str, Any]:
    """The record's columns as ingest writes them (data, grouped provenance, fingerprint)."""
    return {"id": rec.id, "entity": rec.entity, "schema_version": SCHEMA_VERSION,
            "data": orjson.dumps(data).decode(), "sources": encode_sources(sources),
            "fingerprint": fingerprint(data), "stub": rec.stub, "deleted": rec.deleted,
            "created_at": rec.created_at, "updated_at": now}
