"""The sync pipeline end to end between real CSV folders, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hub.errors import TransientError
from tests.integration.helpers import Hub, contact, write_csv


@pytest.fixture
def hub(tmp_path: Path, store_url: str) -> Any:
    h = Hub(tmp_path, store_url=store_url)
    yield h
    h.close()


def test_first_sync_creates_second_writes_nothing_then_a_change_updates(hub: Hub) -> None:
    write_csv(hub.a / "contacts.csv", [contact(i) for i in range(120)])
    first = hub.sync()
    assert (first.status, first.counts.read, first.counts.created) == ("succeeded", 120, 120)
    assert first.counts.written == 120
    target = hub.rows()
    assert len(target) == 120
    assert {r["email"] for r in target} == {f"person{i}@example.com" for i in range(120)}

    second = hub.sync()
    assert second.counts.written == 0 and second.counts.created == 0
    assert second.counts.unchanged == 120

    rows = [contact(i) for i in range(120)]
    rows[7]["title"] = "CTO"
    write_csv(hub.a / "contacts.csv", rows)
    third = hub.sync()
    assert (third.counts.updated, third.counts.written, third.counts.unchanged) == (1, 1, 119)
    changed = [r for r in hub.rows() if r["email"] == "person7@example.com"]
    assert len(changed) == 1 and changed[0]["title"] == "CTO"
    assert len(hub.rows()) == 120
    assert hub.store.verify_audit().ok


def test_bad_records_are_dead_lettered_and_the_run_goes_on(hub: Hub) -> None:
    rows = [contact(i) for i in range(10)]
    rows[3]["email"] = "not-an-email"
    write_csv(hub.a / "contacts.csv", rows)
    report = hub.sync()
    assert report.status == "partial" and report.exit_code == 1
    assert report.counts.dead_lettered == 1 and report.counts.created == 9
    dead = hub.dead()
    assert len(dead) == 1 and dead[0].external_id == "3"
    assert "emails[0].address" in dead[0].error and "record 3" in dead[0].error
    assert len(hub.rows()) == 9
    # Failing again does not pile up a second dead letter for the same record.
    hub.sync(full=True)
    assert len(hub.dead()) == 1 and hub.dead()[0].attempts == 2


def test_duplicate_match_keys_in_one_batch_are_dead_lettered(hub: Hub) -> None:
    rows = [contact(i) for i in range(5)]
    rows[4]["email"] = rows[1]["email"].upper()  # same person typed twice
    write_csv(hub.a / "contacts.csv", rows)
    report = hub.sync()
    assert report.counts.created == 4 and report.counts.dead_lettered == 1
    (dead,) = hub.dead()
    assert dead.external_id == "4" and "duplicate email" in dead.error and "record 1" in dead.error


class FlakyWrites:
    """Wraps a connector: writes really happen, then the call dies (the response is lost)."""

    def __init__(self, inner: Any, fail_times: int) -> None:
        self.inner = inner
        self.capabilities = inner.capabilities
        self.fail_times = fail_times

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def write(self, obj: str, ops: Any) -> Any:
        results = self.inner.write(obj, ops)
        if self.fail_times > 0:
            self.fail_times -= 1
            raise TransientError("connection reset after the write was committed")
        return results


def test_lost_write_responses_are_retried_without_duplicates(tmp_path: Path) -> None:
    from hub import registry

    hub = Hub(tmp_path)
    flaky: dict[str, FlakyWrites] = {}

    def factory(conn: Any) -> Any:
        inner = registry.create(conn)
        if conn.name == "b":
            flaky.setdefault("b", FlakyWrites(inner, fail_times=1))
            flaky["b"].inner = inner
            return flaky["b"]
        return inner

    hub.engine.factory = factory
    write_csv(hub.a / "contacts.csv", [contact(i) for i in range(30)])
    first = hub.sync()
    assert first.counts.pending == 30 and first.status == "partial"
    assert len(hub.rows()) == 30  # written, though we never heard back
    with hub.store.begin() as conn:  # let the retry be due now
        conn.exec_driver_sql("UPDATE outbox SET next_attempt_at = '2000-01-01T00:00:00Z'")
    second = hub.sync()
    assert second.status == "succeeded" and second.counts.pending == 0
    rows = hub.rows()
    assert len(rows) == 30 and len({r["id"] for r in rows}) == 30
    hub.close()


class DiesAfterWrite(FlakyWrites):
    """The process dies right after the target committed, before Liaison recorded it."""

    def write(self, obj: str, ops: Any) -> Any:
        results = self.inner.write(obj, ops)
        if self.fail_times > 0:
            self.fail_times -= 1
            raise KeyboardInterrupt  # stands in for SIGKILL: nothing after this runs
        return results


def test_crash_between_target_write_and_commit_resumes_without_duplicates(
        tmp_path: Path) -> None:
    from hub import registry

    hub = Hub(tmp_path)
    state = {"fail": 1}

    def factory(conn: Any) -> Any:
        inner = registry.create(conn)
        if conn.name == "b":
            wrapped = DiesAfterWrite(inner, fail_times=state["fail"])
            state["fail"] = 0
            return wrapped
        return inner

    hub.engine.factory = factory
    write_csv(hub.a / "contacts.csv", [contact(i) for i in range(75)])
    with pytest.raises(KeyboardInterrupt):
        hub.sync()
    with hub.store.connect() as conn:
        (run,) = hub.store.list_runs(conn)
        assert run.status == "running"
    with hub.store.begin() as conn:  # the dead run's heartbeat is old
        conn.exec_driver_sql("UPDATE runs SET heartbeat_at = '2000-01-01T00:00:00Z'")
    report = hub.sync()
    assert report.resumed and report.status == "succeeded"
    rows = hub.rows()
    assert len(rows) == 75 and len({r["email"] for r in rows}) == 75
    assert len({r["id"] for r in rows}) == 75
    hub.close()


def test_dry_run_writes_nothing(hub: Hub) -> None:
    write_csv(hub.a / "contacts.csv", [contact(i) for i in range(10)])
    report = hub.sync(dry_run=True)
    assert report.status == "dry-run" and report.counts.created == 10
    assert hub.rows() == []
    with hub.store.connect() as conn:
        assert hub.store.count_records(conn) == 0
        assert hub.store.list_runs(conn) == []
    assert hub.store.verify_audit().checked == 0


@pytest.mark.parametrize("policy, kept, archived", [
    ("ignore", True, ""), ("archive", True, "true"), ("delete", False, "")])
def test_full_refresh_applies_the_delete_policy(tmp_path: Path, policy: str, kept: bool,
                                                archived: str) -> None:
    flow = f"""  contacts:
    entity: contact
    from: a
    to: b
    mode: full
    on_delete: {policy}"""
    hub = Hub(tmp_path, flow=flow)
    write_csv(hub.a / "contacts.csv", [contact(i) for i in range(6)])
    hub.sync()
    assert len(hub.rows()) == 6
    write_csv(hub.a / "contacts.csv", [contact(i) for i in range(6) if i != 2])
    report = hub.sync()
    assert report.counts.deleted == 1
    gone = [r for r in hub.rows() if r["email"] == "person2@example.com"]
    assert bool(gone) == kept
    if kept:
        assert gone[0].get("archived", "") == archived
    assert len([r for r in hub.rows() if r["email"] != "person2@example.com"]) == 5
    # Deleting is audited and idempotent.
    again = hub.sync()
    assert again.counts.deleted == 0 and again.counts.written == 0
    with hub.store.connect() as conn:
        actions = [e.action for e in hub.store.query_audit(conn)]
    assert "delete" in actions
    hub.close()


TWO_WAY = """  contacts:
    entity: contact
    from: a
    to: b
    direction: two-way
    conflict: {policy}"""


def _two_way(tmp_path: Path, policy: str) -> Hub:
    return Hub(tmp_path, flow=TWO_WAY.format(policy=policy), modified_column=True)


def test_two_way_flow_stays_quiet_over_five_cycles(tmp_path: Path) -> None:
    hub = _two_way(tmp_path, "source-wins")
    write_csv(hub.a / "contacts.csv", [contact(i) for i in range(20)])
    write_csv(hub.b / "contacts.csv", [contact(100 + i) for i in range(5)])
    first = hub.sync()
    assert first.counts.created == 25
    assert len(hub.rows("a")) == 25 and len(hub.rows("b")) == 25
    for _ in range(5):
        quiet = hub.sync()
        assert quiet.counts.written == 0, quiet.counts
        assert quiet.counts.updated == 0 and quiet.counts.created == 0
    # A change on either side reaches the other, then it is quiet again.
    rows_b = hub.rows("b")
    for r in rows_b:
        if r["email"] == "person3@example.com":
            r["title"] = "Founder"
            r["updated_at"] = "2030-01-01T00:00:00Z"  # the modified column moves on an edit
    write_csv(hub.b / "contacts.csv", rows_b, fields=list(rows_b[0]))
    moved = hub.sync()
    assert moved.counts.updated == 1 and moved.counts.written == 1
    assert [r["title"] for r in hub.rows("a") if r["email"] == "person3@example.com"] == [
        "Founder"]
    assert hub.sync().counts.written == 0
    hub.close()


@pytest.mark.parametrize("policy, a_time, winner", [
    ("source-wins", "10", "a"),
    ("target-wins", "10", "b"),
    ("last-modified-wins", "10", "b"),  # b's edit (11:00) is the newer one
    ("last-modified-wins", "12", "a"),  # a's edit is the newer one
    ("'{policy: field-owner, owners: {title: b}, fallback: source-wins}'", "10", "b"),
    ("'{policy: field-owner, owners: {email: b}, fallback: source-wins}'", "10", "a"),
])
def test_conflict_policies_settle_an_edit_on_both_sides(tmp_path: Path, policy: str,
                                                        a_time: str, winner: str) -> None:
    policy_yaml = policy.strip("'")
    hub = _two_way(tmp_path, policy_yaml)
    write_csv(hub.a / "contacts.csv", [contact(i) for i in range(3)])
    hub.sync()

    def edit(side: str, title: str, when: str) -> None:
        folder = hub.a if side == "a" else hub.b
        rows = hub.rows(side)
        for r in rows:
            if r["email"] == "person1@example.com":
                r["title"] = title
                r["updated_at"] = when
        write_csv(folder / "contacts.csv", rows, fields=list(rows[0]))

    edit("a", "from-a", f"2030-01-01T{a_time}:00:00Z")
    edit("b", "from-b", "2030-01-01T11:00:00Z")
    hub.sync()
    expected = "from-a" if winner == "a" else "from-b"
    for side in ("a", "b"):
        titles = [r["title"] for r in hub.rows(side) if r["email"] == "person1@example.com"]
        assert titles == [expected], (side, titles)
    assert hub.sync().counts.written == 0
    hub.close()


def test_a_run_in_steps_reaches_the_same_result(tmp_path: Path) -> None:
    hub = Hub(tmp_path)
    write_csv(hub.a / "contacts.csv", [contact(i) for i in range(2500)])
    steps = 0
    while True:
        report = hub.sync(max_records=1000)
        steps += 1
        if report.status != "continuing":
            break
        assert report.run_id == 1, "every step continues the same run"
    assert steps == 3 and report.status == "succeeded"
    assert report.counts.read == 2500 and report.counts.created == 2500
    rows = hub.rows()
    assert len(rows) == 2500 and len({r["email"] for r in rows}) == 2500
    hub.close()


def test_one_flow_runs_once_at_a_time_and_a_stale_holder_is_fenced(tmp_path: Path) -> None:
    from hub.errors import LeaseLost, SyncError
    from hub.sync.lease import LEASE_TTL, Fence

    hub = Hub(tmp_path)
    write_csv(hub.a / "contacts.csv", [contact(i) for i in range(10)])
    with hub.store.begin() as conn:  # another live process holds the flow's lease
        token = hub.store.acquire_lease(conn, "flow:contacts", "otherhost:1:1", LEASE_TTL)
    assert token == 1
    with pytest.raises(SyncError, match="already running"):
        hub.sync()
    with hub.store.begin() as conn:  # its lease runs out and we take over
        conn.exec_driver_sql("UPDATE leases SET expires_at = '2000-01-01T00:00:00Z'")
    assert hub.sync().counts.created == 10
    stale = Fence(hub.store, "flow:contacts", token)
    with pytest.raises(LeaseLost), hub.store.begin() as conn:
        stale.check(conn)  # the old holder wakes up: its writes are refused
    hub.close()
