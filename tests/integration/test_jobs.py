"""Production mode: jobs, schedules and leases (in-process broker; Redis in test_workers)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from hub.jobs.scheduler import Scheduler
from tests.integration.helpers import Hub, contact, write_csv

FLOW = """  contacts:
    entity: contact
    from: a
    to: b
    schedule: "*/5 * * * *"
    page_size: 100"""


def _wait(predicate: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("timed out waiting")


def _finished(hub: Hub) -> bool:
    with hub.store.connect() as conn:
        runs = hub.store.list_runs(conn)
        owed = hub.store.outbox_count(conn)
    return bool(runs) and all(r.status in ("succeeded", "partial") for r in runs) and not owed


def test_jobs_share_a_run_in_steps_and_deliver_everything(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    from hub.jobs import actors
    from hub.jobs.embedded import Embedded

    monkeypatch.setattr(actors, "STEP_RECORDS", 1000)
    hub = Hub(tmp_path, flow=FLOW)
    write_csv(hub.a / "contacts.csv", [contact(i) for i in range(3500)])
    embedded = Embedded(hub.settings, hub.store, threads=3)
    embedded.start()
    try:
        embedded.jobs.sync_flow.send("contacts", "manual", False)
        _wait(lambda: _finished(hub))
    finally:
        embedded.stop()
    with hub.store.connect() as conn:
        (run,) = hub.store.list_runs(conn)
    assert run.status == "succeeded" and run.read == 3500 and run.created == 3500
    rows = hub.rows()
    assert len(rows) == 3500 and len({r["email"] for r in rows}) == 3500
    assert hub.store.verify_audit().ok
    hub.close()


def _schedulers(hub: Hub, n: int, lease: float = 20.0) -> tuple[list[Scheduler], list[str]]:
    fired: list[str] = []
    out = [Scheduler(hub.settings, hub.store, fired.append, f"host:{i}:1", lease_seconds=lease)
           for i in range(n)]
    for s in out:  # as if they had been started long ago
        s.started = datetime(2020, 1, 1, tzinfo=UTC)
    return out, fired


def test_a_slot_fires_once_even_with_two_schedulers(tmp_path: Path) -> None:
    hub = Hub(tmp_path, flow=FLOW)
    (one, two), fired = _schedulers(hub, 2)
    now = datetime(2026, 11, 26, 10, 7, tzinfo=UTC)
    assert one.tick(now) == ["contacts"]
    assert two.tick(now) == []  # stand-by: the lease is taken
    assert one.tick(now + timedelta(seconds=30)) == []  # same slot: nothing new
    with hub.store.connect() as conn:
        runs = hub.store.list_runs(conn)
    assert [(r.status, r.fire_time) for r in runs] == [("queued", "2026-11-26T10:05:00Z")]
    # Even a second leader (its lease check bypassed) cannot queue the same slot twice.
    with hub.store.begin() as conn:
        assert hub.store.queue_run(conn, "contacts", "incremental", "schedule",
                                   "2026-11-26T10:05:00Z") is None
    assert fired == ["contacts"]
    hub.close()


def test_missed_slots_give_one_catch_up_run(tmp_path: Path) -> None:
    hub = Hub(tmp_path, flow=FLOW)
    (sched,), _fired = _schedulers(hub, 1)
    sched.tick(datetime(2026, 11, 26, 10, 1, tzinfo=UTC))
    with hub.store.begin() as conn:  # that run happened
        conn.exec_driver_sql("UPDATE runs SET status = 'succeeded'")
    # Down from 10:01 to 12:03: 24 slots missed, one run.
    assert sched.tick(datetime(2026, 11, 26, 12, 3, tzinfo=UTC)) == ["contacts"]
    assert sched.tick(datetime(2026, 11, 26, 12, 4, tzinfo=UTC)) == []
    with hub.store.connect() as conn:
        assert [r.fire_time for r in hub.store.list_runs(conn)] == [
            "2026-11-26T12:00:00Z", "2026-11-26T10:00:00Z"]
    hub.close()


def test_a_standby_takes_over_when_the_leader_stops(tmp_path: Path) -> None:
    hub = Hub(tmp_path, flow=FLOW)
    (leader, standby), fired = _schedulers(hub, 2, lease=0.5)
    now = datetime(2026, 11, 26, 10, 7, tzinfo=UTC)
    assert leader.tick(now) == ["contacts"]
    with hub.store.begin() as conn:
        conn.exec_driver_sql("UPDATE runs SET status = 'succeeded'")
    later = now + timedelta(minutes=5)
    assert standby.tick(later) == []  # the leader's lease is still fresh
    started = time.monotonic()
    while not standby.tick(later):  # the leader died: its lease runs out
        assert time.monotonic() - started < 5
        time.sleep(0.1)
    assert time.monotonic() - started < 2
    assert fired == ["contacts", "contacts"]
    hub.close()
