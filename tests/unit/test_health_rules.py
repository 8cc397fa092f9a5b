"""One definition of flow and system states (hub.health), seen the same by every reader.

Each row of the table is a run history written into a real SQLite store; the state is then
read back through the dashboard's judgement (hub.insights), the JSON API, the metrics
collector and /metrics, which must all say the expected state and the same last success.
Times are relative to the real clock with wide margins (a */15 flow: 10 minutes ago is
within its third-newest slot, 60 minutes ago is not, whatever the minute now), so the
HTTP readers, which use the real clock, agree with the pinned ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update
from starlette.testclient import TestClient

from hub.config import loads
from hub.config.model import Settings
from hub.health import FlowEvidence, judge_flow, stale_since, went_through
from hub.insights import overview
from hub.insights.facts import iso, parse_iso
from hub.insights.health import flow_view
from hub.metrics.collector import StoreCollector
from hub.store import Store
from hub.store import tables as t
from hub.web.app import make_app
from hub.web.auth import AuthConfig
from hub.web.dashboard import Dashboard
from tests.integration.metrics_support import parse, value

TOKEN = "health-token-0123456789abcdef"
EVERY_15 = "*/15 * * * *"
M = 1  # minutes
H = 60
D = 24 * H


@dataclass(frozen=True)
class Case:
    """A flow's run history and the state every reader must agree on."""

    id: str
    runs: tuple[tuple[str, int | None], ...]  # (status, finished minutes ago), oldest first
    dead: tuple[int, ...] = ()  # open dead letters: first failed minutes ago
    expected: str = "healthy"
    schedule: str | None = EVERY_15
    enabled: bool = True
    success: int | None = None  # minutes ago of the expected last success


CASES = [
    Case("never ran", (), expected="stale"),
    Case("succeeded", (("succeeded", 10 * M),), success=10 * M),
    Case("partial, its dead letters resolved", (("partial", 10 * M),), success=10 * M),
    Case("partial every run, the same record failing since two days",
         (("partial", 70 * M), ("partial", 40 * M), ("partial", 10 * M)), dead=(2 * D,),
         success=10 * M),
    Case("partial, a record newly dead-lettered", (("partial", 10 * M),), dead=(9 * M,),
         expected="failing", success=10 * M),
    Case("succeeded, but dead letters growing", (("succeeded", 10 * M),),
         dead=(30 * H, 3 * H), expected="failing", success=10 * M),
    Case("failed after a success", (("succeeded", 25 * M), ("failed", 10 * M)),
         expected="failing", success=25 * M),
    Case("failed after a partial run", (("partial", 25 * M), ("failed", 10 * M)),
         expected="failing", success=25 * M),
    Case("partial after a failure", (("failed", 25 * M), ("partial", 10 * M)),
         success=10 * M),
    Case("only failures", (("failed", 25 * M), ("failed", 10 * M)), expected="failing"),
    Case("running now, succeeded before", (("succeeded", 10 * M), ("running", None)),
         success=10 * M),
    Case("missed three slots after a success", (("succeeded", 60 * M),), expected="stale",
         success=60 * M),
    Case("missed three slots after a partial run", (("partial", 60 * M),),
         expected="stale", success=60 * M),
    Case("stale and dead letters growing: failing wins", (("partial", 60 * M),),
         dead=(60 * M,), expected="failing", success=60 * M),
    Case("unscheduled, partial within a day", (("partial", 23 * H),), schedule=None,
         success=23 * H),
    Case("unscheduled, partial over a day ago", (("partial", 25 * H),), schedule=None,
         expected="stale", success=25 * H),
    Case("paused, with a failed run", (("failed", 10 * M),), enabled=False,
         expected="disabled"),
]


def _settings(tmp: Path, case: Case) -> Settings:
    schedule = f'\n    schedule: "{case.schedule}"' if case.schedule else ""
    enabled = "" if case.enabled else "\n    enabled: false"
    return loads(f"""version: 1
store: sqlite:///{tmp / 'health.db'}
systems:
  crm: {{category: crm, owner: Anna, connection: {{connector: spreadsheet, path: {tmp}/c}}}}
  sheet: {{category: files, owner: Ben, connection: {{connector: spreadsheet, path: {tmp}/s}}}}
flows:
  f:
    entity: contact
    from: crm
    to: sheet{schedule}{enabled}
""", file=str(tmp / "hub.yaml"))


def _seed(store: Store, case: Case, now: datetime) -> None:
    with store.begin() as conn:
        for status, ago in case.runs:
            run = store.start_run(conn, "f", "incremental")
            finished = iso(now - timedelta(minutes=ago)) if ago is not None else None
            started = iso(now - timedelta(minutes=(ago or 0) + 1))
            store.update_run(conn, run, status=status, started_at=started,
                             finished_at=finished, error="CRM refused the token"
                             if status == "failed" else None)
        for i, ago in enumerate(case.dead):
            store.add_dead_letters(conn, [{
                "run_id": 1, "flow": "f", "system": "crm", "entity": "contact",
                "stage": "validate", "external_id": f"row-{i}", "canonical_id": None,
                "payload": "{}", "error": "email: 'not-an-email' is not an e-mail address"}])
            # add_dead_letters stamps the real clock; the history says when it first failed
            conn.execute(update(t.dead_letters).where(t.dead_letters.c.external_id == f"row-{i}")
                         .values(first_failed_at=iso(now - timedelta(minutes=ago))))


def _gauges(collector: StoreCollector) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in collector.collect() for s in family.samples}


def _gauge(found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str,
           **labels: str) -> float:
    return next(v for (n, ls), v in found.items() if n == name and set(labels.items()) <= ls)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_every_reader_says_the_same_state(tmp_path: Path, case: Case) -> None:
    now = datetime.now(UTC)
    settings = _settings(tmp_path, case)
    store = Store(settings.store_url, auto_migrate=True)
    try:
        _seed(store, case, now)
        system = "disconnected" if case.expected == "disabled" else case.expected
        want_success = (iso(now - timedelta(minutes=case.success))
                        if case.success is not None else None)
        # the table follows hub.health's word: a success is a run that went through
        assert (case.success is not None) == any(went_through(s) for s, _ in case.runs)

        # the dashboard's judgement
        ov = overview(settings, store, now)
        view = flow_view(settings.flows["f"], ov.facts)
        assert (view.state, view.last_success) == (case.expected, want_success), view.reasons
        assert {s.name: s.state for s in ov.map.systems} == {"crm": system, "sheet": system}

        # the metrics collector, judging at the same moment
        found = _gauges(StoreCollector(settings, store, clock=lambda: now))
        gauges = (_gauge(found, "liaison_flow_failing", flow="f"),
                  _gauge(found, "liaison_flow_stale", flow="f"))
        assert gauges == ((1.0, 0.0) if case.expected == "failing" else
                          (0.0, 1.0) if case.expected == "stale" else (0.0, 0.0))
        last = _gauge(found, "liaison_flow_last_success_timestamp_seconds", flow="f")
        success = parse_iso(view.last_success)
        assert last == (success.timestamp() if success else 0.0)
        for name in ("crm", "sheet"):
            assert _gauge(found, "liaison_system_state", system=name, state=system) == 1.0

        # the JSON API and /metrics, on the real clock a moment later
        auth = AuthConfig(token=TOKEN, secret_key=b"k" * 32)
        app = make_app(settings, store, lambda _s, _e: None,
                       dashboard=Dashboard(settings, store, auth))
        with TestClient(app) as client:
            bearer = {"Authorization": f"Bearer {TOKEN}"}
            answer: Any = client.get("/api/v1/silo-map", headers=bearer).json()
            scraped = parse(client.get("/metrics").text)
        (flow,) = answer["flows"]
        assert (flow["state"], flow["last_success"]) == (case.expected, want_success)
        assert {s["name"]: s["state"] for s in answer["systems"]} == {
            "crm": system, "sheet": system}
        assert value(scraped, "liaison_flow_stale", flow="f") == gauges[1]
        assert value(scraped, "liaison_flow_failing", flow="f") == gauges[0]
        assert value(scraped, "liaison_system_state", system="crm", state=system) == 1
    finally:
        store.close()


def test_a_bad_schedule_falls_back_to_a_day(tmp_path: Path) -> None:
    flow = _settings(tmp_path, CASES[0]).flows["f"]
    flow = type(flow)(**{**flow.__dict__, "schedule": "not a cron"})
    now = datetime(2026, 11, 23, 12, 7, tzinfo=UTC)
    assert stale_since(flow, now) == now - timedelta(hours=24)
    recent = FlowEvidence("partial", now - timedelta(hours=23))
    assert judge_flow(flow, recent, now).state == "healthy"
