"""Searching the audit trail by system, flow and time goes through audit_batches: it must
find exactly what reading the whole trail would, newest first, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.store import AuditInput, Store, repo

SYSTEMS = ["crm", "books", None]
FLOWS = ["contacts", "invoices", None]
PAST = "2001-01-01T00:00:00.000000Z"

# An append: its events' (system, flow) in order, and whether the clock stepped back first.
appends = st.lists(st.tuples(
    st.lists(st.tuples(st.sampled_from(SYSTEMS), st.sampled_from(FLOWS)), min_size=1,
             max_size=6),
    st.booleans()), min_size=1, max_size=5)


@pytest.fixture
def store(store_url: str) -> Any:
    s = Store(store_url)
    yield s
    s.close()


def _append(store: Store, events: list[tuple[str | None, str | None]], back: bool,
            monkeypatch: pytest.MonkeyPatch) -> None:
    with monkeypatch.context() as m:
        if back:  # a clock stepped back: this append's own time is before every other's
            m.setattr(repo, "now_iso", lambda: PAST)
        with store.begin() as conn:
            store.append_audit(conn, [
                AuditInput(entity="contact", action="update", canonical_id=f"c{i}",
                           system=system, external_id=str(i), diff={"n": [None, i]},
                           flow=flow) for i, (system, flow) in enumerate(events)])


def _scan(store: Store) -> list[Any]:
    with store.connect() as conn:
        return list(conn.exec_driver_sql(
            "SELECT seq, at, system, flow FROM audit_events ORDER BY seq DESC"))


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=appends, data=st.data())
def test_a_search_finds_what_a_scan_of_the_trail_finds(
        store: Store, monkeypatch: pytest.MonkeyPatch, batches: Any, data: Any) -> None:
    with store.begin() as conn:  # each example starts from an empty trail
        for table in ("audit_events", "audit_batches", "audit_head"):
            conn.exec_driver_sql(f"DELETE FROM {table}")
    for events, back in batches:
        _append(store, events, back, monkeypatch)
    trail = _scan(store)
    assert [r.at for r in reversed(trail)] == sorted(r.at for r in trail)  # times only rise
    times = sorted({r.at for r in trail})
    # Times by position among the trail's own (-1: no bound): drawn the same way every run.
    searches = data.draw(st.lists(st.tuples(
        st.sampled_from([*SYSTEMS[:2], None]), st.sampled_from([*FLOWS[:2], None]),
        st.integers(-1, 5), st.integers(-1, 5), st.integers(1, 12)), min_size=5, max_size=5))
    for system, flow, since_at, until_at, limit in searches:
        since = None if since_at < 0 else times[min(since_at, len(times) - 1)]
        until = None if until_at < 0 else times[min(until_at, len(times) - 1)]
        want = [r.seq for r in trail
                if (system is None or r.system == system) and (flow is None or r.flow == flow)
                and (since is None or r.at >= since) and (until is None or r.at < until)]
        with store.connect() as conn:
            got = [r.seq for r in store.query_audit(conn, system=system, flow=flow,
                                                    since=since, until=until, limit=limit)]
            if system is not None and since is not None:
                assert store.audit_count_since(conn, system, since) == sum(
                    1 for r in trail if r.system == system and r.at >= since)
        assert got == want[:limit], (system, flow, since, until, limit)


def test_events_written_before_the_batches_are_found_after_the_migration(
        tmp_path: Any) -> None:
    # 0007 groups the events already in the trail into batches by time, system and flow.
    from alembic import command

    from hub.store.db import _alembic_config, make_engine

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = make_engine(url)
    with engine.begin() as conn:
        command.upgrade(_alembic_config(conn), "0006")
    engine.dispose()
    old = [("crm", "contacts", "2026-01-01T00:00:00.000000Z", 3),
           ("books", "invoices", "2026-01-01T00:00:00.000000Z", 2),
           ("crm", "contacts", "2026-01-02T00:00:00.000000Z", 4)]
    seq = 0
    engine = make_engine(url)
    with engine.begin() as conn:
        for system, flow, at, n in old:
            for _ in range(n):
                seq += 1
                conn.exec_driver_sql(
                    "INSERT INTO audit_events (seq, at, entity, system, flow, action, diff, "
                    "prev_hash, hash) VALUES (?, ?, 'contact', ?, ?, 'update', '{}', '', '')",
                    (seq, at, system, flow))
        command.upgrade(_alembic_config(conn), "head")
    engine.dispose()
    store = Store(url)
    with store.connect() as conn:
        assert [r.seq for r in store.query_audit(conn, system="crm", limit=5)] == [
            9, 8, 7, 6, 3]
        assert [r.seq for r in store.query_audit(
            conn, since="2026-01-01T12:00:00.000000Z")] == [9, 8, 7, 6]
        assert store.audit_count_since(conn, "books", "2026-01-01T00:00:00.000000Z") == 2
        assert store.audit_count_since(conn, "crm", "2026-01-01T12:00:00.000000Z") == 4
    store.close()


def test_the_newest_event_of_an_interleaved_append_is_found(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    # One append, one flow, two systems taking turns: crm's batch starts first and ends
    # last, so the newest event (5) is not in the batch that starts last (books: 2..4).
    _append(store, [("crm", "contacts"), ("books", "contacts")] * 2 + [("crm", "contacts")],
            False, monkeypatch)
    with store.connect() as conn:
        assert [r.seq for r in store.query_audit(conn, flow="contacts", limit=1)] == [5]
        assert [r.seq for r in store.query_audit(conn, flow="contacts", limit=2)] == [5, 4]
        assert [r.seq for r in store.query_audit(conn, system="books", limit=5)] == [4, 2]
