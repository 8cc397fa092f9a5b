"""The store on SQLite and on PostgreSQL: same code, same behaviour."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from hub.errors import StoreError
from hub.store import AuditInput, Store
from hub.store.db import current_revision, head_revision


def _events(n: int, start: int = 0) -> list[AuditInput]:
    return [AuditInput(entity="contact", action="update", canonical_id=f"c{start + i}",
                       system="crm", external_id=str(start + i), diff={"title": [None, i]})
            for i in range(n)]


def test_empty_database_is_migrated_on_first_use(store_url: str) -> None:
    store = Store(store_url)
    assert current_revision(store.engine) == head_revision()
    with store.connect() as conn:
        assert store.count_records(conn) == 0
    store.close()


def _link(i: int, fingerprint: str | None = "f") -> dict[str, object]:
    return {"system": "crm", "entity": "contact", "external_id": str(i),
            "canonical_id": f"c{i}", "fingerprint": fingerprint, "updated_at": "t"}


def test_hot_path_statements_belong_to_the_callers_transaction(store_url: str) -> None:
    # They run on the driver's own cursor: still inside the transaction, never autocommitted.
    store = Store(store_url)
    with pytest.raises(RuntimeError), store.begin() as conn:
        store.upsert_links(conn, [_link(i) for i in range(3)])
        store.append_audit(conn, _events(2))
        assert len(store.links_by_external(conn, "crm", "contact", ["0", "1", "2"])) == 3
        raise RuntimeError("roll back")
    with store.connect() as conn:  # read outside a transaction
        assert store.links_by_external(conn, "crm", "contact", ["0", "1", "2"]) == {}
        assert store.query_audit(conn) == []
    store.close()


def test_hot_path_writes_on_a_connection_without_a_transaction_wait_for_its_commit(
        store_url: str) -> None:
    # A connection from store.connect() has not begun a transaction when the first hot-path
    # statement arrives: the statement begins one (as SQLAlchemy's autobegin would), so the
    # caller's commit keeps it and closing without one drops it.
    store = Store(store_url)
    with store.connect() as conn:
        store.upsert_links(conn, [_link(1)])
        store.append_audit(conn, _events(1))
    with store.connect() as conn:
        assert store.links_by_external(conn, "crm", "contact", ["1"]) == {}
        assert store.query_audit(conn) == []
    with store.connect() as conn:
        store.upsert_links(conn, [_link(2)])
        store.append_audit(conn, _events(1, start=2))
        conn.commit()
    with store.connect() as conn:
        assert set(store.links_by_external(conn, "crm", "contact", ["1", "2"])) == {"2"}
        assert [e.canonical_id for e in store.query_audit(conn)] == ["c2"]
    assert store.verify_audit().ok
    store.close()


def test_a_driver_error_on_the_hot_path_is_a_store_error(store_url: str) -> None:
    store = Store(store_url)
    with pytest.raises(StoreError, match="database error on") as caught, store.begin() as conn:
        store.upsert_links(conn, [_link(1), _link(2, fingerprint=None)])  # NOT NULL
    assert type(caught.value) is StoreError  # a bad statement, not an unreachable database
    with store.connect() as conn:
        assert store.links_by_external(conn, "crm", "contact", ["1"]) == {}
    store.close()


def test_links_and_match_keys_round_trip(store_url: str) -> None:
    store = Store(store_url)
    with store.begin() as conn:
        store.upsert_links(conn, [
            {"system": "crm", "entity": "contact", "external_id": str(i),
             "canonical_id": f"c{i}", "fingerprint": f"f{i}", "updated_at": "t"}
            for i in range(1200)])  # more than one IN chunk
        store.replace_match_keys(conn, "contact", {"c1": {"email": "a@x.com"},
                                                   "c2": {"email": "b@x.com"}})
        # a key another record already owns stays with its first owner
        store.replace_match_keys(conn, "contact", {"c3": {"email": "a@x.com"}})
    with store.connect() as conn:
        links = store.links_by_external(conn, "crm", "contact", [str(i) for i in range(1200)])
        assert len(links) == 1200 and links["7"].canonical_id == "c7"
        by_cid = store.links_by_canonical(conn, "crm", "contact", ["c5", "nope"])
        assert set(by_cid) == {"c5"} and by_cid["c5"].external_id == "5"
        owners = store.match_lookup(conn, "contact", [("email", "a@x.com"), ("email", "zz")])
        assert owners == {("email", "a@x.com"): "c1"}
    store.close()


def test_outbox_keeps_one_delivery_per_record(store_url: str) -> None:
    store = Store(store_url)
    with store.begin() as conn:
        store.outbox_add(conn, "f", "sheet", ["a", "b", "a"], 1)
        store.outbox_add(conn, "f", "sheet", ["a"], 2)
    with store.connect() as conn:
        rows = store.outbox_due(conn, "f", "sheet", 10)
        assert sorted(r.canonical_id for r in rows) == ["a", "b"]
    with store.begin() as conn:
        store.outbox_retry(conn, rows[0].id, 1, 3600, "later")
        store.outbox_done(conn, [rows[1].id])
    with store.connect() as conn:
        assert store.outbox_due(conn, "f", "sheet", 10) == []
        assert store.outbox_count(conn, "f") == 1
    store.close()


def test_transaction_rolls_back_everything_on_error(store_url: str) -> None:
    store = Store(store_url)
    with pytest.raises(RuntimeError), store.begin() as conn:
        store.set_cursor(conn, "f", "crm", {"since": 5})
        store.append_audit(conn, _events(2))
        raise RuntimeError("crash between writes")
    with store.connect() as conn:
        assert store.get_cursor(conn, "f", "crm") is None
    assert store.verify_audit().checked == 0
    store.close()


@pytest.mark.parametrize("tamper, bad, words", [
    ("UPDATE audit_events SET diff = '{\"title\":[null,99]}' WHERE seq = 3", 3, "changed"),
    ("DELETE FROM audit_events WHERE seq = 4", 4, "missing"),
    ("swap 2 5", 2, "does not follow"),
    ("DELETE FROM audit_events WHERE seq = 6", 6, "removed"),
])
def test_audit_verify_names_the_first_bad_event(store_url: str, tamper: str, bad: int,
                                                 words: str) -> None:
    store = Store(store_url)
    with store.begin() as conn:
        store.append_audit(conn, _events(3))
    with store.begin() as conn:
        store.append_audit(conn, _events(3, start=3))
    ok = store.verify_audit()
    assert ok.ok and ok.checked == 6
    with store.begin() as conn:
        if tamper == "swap 2 5":  # reorder: two events exchange places in the chain
            conn.execute(text("UPDATE audit_events SET seq = 100 WHERE seq = 2"))
            conn.execute(text("UPDATE audit_events SET seq = 2 WHERE seq = 5"))
            conn.execute(text("UPDATE audit_events SET seq = 5 WHERE seq = 100"))
        else:
            conn.execute(text(tamper))
    result = store.verify_audit()
    assert not result.ok
    assert result.bad_seq == bad
    assert words in result.message
    store.close()


def test_bad_store_url_is_explained() -> None:
    with pytest.raises(StoreError, match="not a database URL"):
        Store("not a url")
