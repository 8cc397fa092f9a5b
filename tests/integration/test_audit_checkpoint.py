"""The audit chain's verified checkpoint, on SQLite and PostgreSQL.

An incremental check (`verify_audit(since_checkpoint=True)`) re-hashes only the events after
the checkpoint and trusts the check that verified the rest; a full check re-reads everything.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from hub.store import AuditInput, Store, VerifyResult
from hub.store import repo as store_repo
from hub.store.repo import event_hash


def _events(n: int, start: int = 0) -> list[AuditInput]:
    return [AuditInput(entity="contact", action="update", canonical_id=f"c{start + i}",
                       system="crm", external_id=str(start + i), diff={"title": [None, i]})
            for i in range(n)]


def _append(store: Store, n: int, start: int = 0) -> None:
    with store.begin() as conn:
        store.append_audit(conn, _events(n, start))


def _sql(store: Store, *statements: str) -> None:
    with store.begin() as conn:
        for statement in statements:
            conn.execute(text(statement))


def _rehash_from(store: Store, first: int) -> None:
    """Recompute the chain's hashes from event `first` on, and the head (what someone who
    edits an event and covers it up would do)."""
    with store.begin() as conn:
        prev = conn.execute(text("SELECT hash FROM audit_events WHERE seq = :s"),
                            {"s": first - 1}).scalar() or ""
        rows = conn.execute(text(
            "SELECT seq, at, run_id, flow, entity, canonical_id, system, external_id, action, "
            "diff FROM audit_events WHERE seq >= :s ORDER BY seq"), {"s": first}).all()
        for row in rows:
            digest = event_hash(prev, *row)
            conn.execute(text("UPDATE audit_events SET prev_hash = :p, hash = :h "
                              "WHERE seq = :s"), {"p": prev, "h": digest, "s": row[0]})
            prev = digest
        conn.execute(text("UPDATE audit_head SET hash = :h WHERE id = 1"), {"h": prev})


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    s = Store(store_url)
    yield s
    s.close()


def test_incremental_check_reads_only_the_events_after_the_checkpoint(store: Store) -> None:
    assert store.audit_checkpoint() is None
    _append(store, 5)
    full = store.verify_audit()
    assert (full.ok, full.checked, full.trusted) == (True, 5, 0)
    cp = store.audit_checkpoint()
    assert cp is not None and (cp.seq, cp.full_seq) == (5, 5) and cp.full_at == cp.verified_at

    _append(store, 3, start=5)
    new = store.verify_audit(since_checkpoint=True)
    assert new.ok, new.message
    assert (new.checked, new.trusted, new.trusted_at) == (3, 5, cp.verified_at)
    after = store.audit_checkpoint()
    assert after is not None and after.seq == 8
    assert (after.full_seq, after.full_at) == (5, cp.full_at), "the last full check stays"
    nothing = store.verify_audit(since_checkpoint=True)
    assert (nothing.ok, nothing.checked, nothing.trusted) == (True, 0, 8)


def test_incremental_check_without_a_checkpoint_is_a_full_one(store: Store) -> None:
    _append(store, 4)
    result = store.verify_audit(since_checkpoint=True)
    assert (result.ok, result.checked, result.trusted) == (True, 4, 0)
    cp = store.audit_checkpoint()
    assert cp is not None and (cp.seq, cp.full_seq) == (4, 4)


def test_an_empty_trail_verifies_and_records_no_checkpoint(store: Store) -> None:
    assert store.verify_audit(since_checkpoint=True) == VerifyResult(True, 0)
    assert store.audit_checkpoint() is None


def test_an_edit_before_the_checkpoint_is_trusted_by_the_incremental_check_only(
        store: Store) -> None:
    # The documented threat model: the incremental check does not read verified events;
    # the full check (hub audit verify, daily) does.
    _append(store, 6)
    assert store.verify_audit().ok
    _append(store, 2, start=6)
    _sql(store, "UPDATE audit_events SET diff = '{\"title\":[null,99]}' WHERE seq = 2")
    new = store.verify_audit(since_checkpoint=True)
    assert (new.ok, new.checked, new.trusted) == (True, 2, 6), "it read only events 7-8"
    full = store.verify_audit()
    assert (full.ok, full.bad_seq, full.checked) == (False, 2, 1)
    assert "changed after it was written" in full.message
    assert store.audit_checkpoint() is None, "a failed check leaves nothing trusted"
    again = store.verify_audit(since_checkpoint=True)
    assert (again.ok, again.bad_seq, again.trusted) == (False, 2, 0)


def _swap(a: int, b: int) -> tuple[str, ...]:
    return (f"UPDATE audit_events SET seq = -1 WHERE seq = {a}",
            f"UPDATE audit_events SET seq = {a} WHERE seq = {b}",
            f"UPDATE audit_events SET seq = {b} WHERE seq = -1")


@pytest.mark.parametrize("tamper, bad, intact, words", [
    (("UPDATE audit_events SET diff = '{\"title\":[null,99]}' WHERE seq = 8",), 8, 1,
     "changed"),
    (("UPDATE audit_events SET at = '2000-01-01T00:00:00.000000Z' WHERE seq = 7",), 7, 0,
     "changed"),
    (("DELETE FROM audit_events WHERE seq = 8",), 8, 1, "missing"),
    (_swap(7, 9), 7, 0, "does not follow"),
    (("DELETE FROM audit_events WHERE seq = 10",), 10, 3, "removed"),
    (("UPDATE audit_head SET hash = 'x' WHERE id = 1",), 10, 4, "altered"),
], ids=["edit-diff", "edit-time", "delete", "reorder", "drop-newest", "head"])
def test_incremental_check_finds_a_change_after_the_checkpoint(
        store: Store, tamper: tuple[str, ...], bad: int, intact: int, words: str) -> None:
    _append(store, 3)
    _append(store, 3, start=3)
    assert store.verify_audit().ok  # checkpoint at event 6
    _append(store, 4, start=6)
    _sql(store, *tamper)
    result = store.verify_audit(since_checkpoint=True)
    assert not result.ok
    assert (result.bad_seq, result.trusted) == (bad, 6), result
    assert words in result.message
    assert result.checked == intact, "events read and found intact before the bad one"
    assert store.audit_checkpoint() is None


@pytest.mark.parametrize("tamper, words", [
    ("edit", "changed after it was written"),
    ("edit and rehash", "no longer has the hash it had when it was verified"),
    ("delete", "is missing"),
    ("truncate", "were verified at"),
])
def test_incremental_check_finds_a_change_of_the_checkpoint_event(
        store: Store, tamper: str, words: str) -> None:
    _append(store, 6)
    assert store.verify_audit().ok
    cp = store.audit_checkpoint()
    assert cp is not None and cp.seq == 6
    _append(store, 2, start=6)
    if tamper == "edit":
        _sql(store, "UPDATE audit_events SET action = 'delete' WHERE seq = 6")
    elif tamper == "edit and rehash":  # the chain from it on stays self-consistent
        _sql(store, "UPDATE audit_events SET action = 'delete' WHERE seq = 6")
        _rehash_from(store, 6)
    elif tamper == "delete":
        _sql(store, "DELETE FROM audit_events WHERE seq = 6")
    else:  # the newest events removed and the head moved back to match
        _sql(store, "DELETE FROM audit_events WHERE seq >= 5")
        _sql(store, "UPDATE audit_head SET seq = 4, hash = (SELECT hash FROM audit_events "
                    "WHERE seq = 4) WHERE id = 1")
    result = store.verify_audit(since_checkpoint=True)
    assert not result.ok, result
    assert result.trusted == 6 and result.checked == 0
    assert result.bad_seq == (5 if tamper == "truncate" else 6)
    assert words in result.message
    assert store.audit_checkpoint() is None
    if tamper == "edit and rehash":  # the documented limit: a recomputed chain is consistent
        assert store.verify_audit().ok


def test_an_event_added_after_the_head_is_found(store: Store) -> None:
    _append(store, 3)
    with store.begin() as conn:
        last = conn.execute(text("SELECT * FROM audit_events WHERE seq = 3")).one()._asdict()
        conn.execute(text(
            "INSERT INTO audit_events (seq, at, run_id, flow, entity, canonical_id, system, "
            "external_id, action, diff, prev_hash, hash) VALUES (4, :at, NULL, NULL, 'contact', "
            "'c9', 'crm', '9', 'delete', '{}', :prev, :h)"),
            {"at": last["at"], "prev": last["hash"], "h": event_hash(
                last["hash"], 4, last["at"], None, None, "contact", "c9", "crm", "9",
                "delete", "{}")})
    for since in (False, True):
        result = store.verify_audit(since_checkpoint=since)
        assert (result.ok, result.bad_seq) == (False, 4)
        assert "added outside Liaison" in result.message


def test_the_check_reads_in_chunks_across_their_boundaries(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_repo, "AUDIT_CHUNK", 3)
    _append(store, 10)
    assert store.verify_audit().checked == 10
    _append(store, 7, start=10)
    assert store.verify_audit(since_checkpoint=True).checked == 7
    _sql(store, "DELETE FROM audit_events WHERE seq = 13")  # the first of a later chunk
    result = store.verify_audit()
    assert (result.ok, result.bad_seq, result.checked) == (False, 13, 12)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 7), st.booleans()), min_size=1, max_size=8))
def test_incremental_checks_read_every_event_exactly_once(
        steps: list[tuple[int, bool]]) -> None:
    # The law: however appends and checks interleave, the incremental checks re-hash each
    # event once in all, and the checkpoint ends at the head.
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{Path(tmp) / 'store.db'}")
        try:
            total = read = 0
            for batch, check in steps:
                if batch:
                    _append(store, batch, start=total)
                    total += batch
                if check:
                    result = store.verify_audit(since_checkpoint=True)
                    assert result.ok, result
                    read += result.checked
            read += store.verify_audit(since_checkpoint=True).checked
            assert read == total
            cp = store.audit_checkpoint()
            assert (cp.seq if cp else 0) == total
        finally:
            store.close()
