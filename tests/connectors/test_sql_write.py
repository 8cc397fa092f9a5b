"""Writes: refused rows fail alone, upserts repeat safely, generated keys come back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hub.connector import WriteOp
from hub.errors import PermanentError
from tests.connectors.sql_servers import Database, db  # noqa: F401 - the fixture

PEOPLE = ("id INTEGER PRIMARY KEY, email VARCHAR(50) NOT NULL UNIQUE, age INTEGER, "
          "small SMALLINT, parent_id INTEGER, code VARCHAR(5), "
          "CONSTRAINT age_not_negative CHECK (age >= 0), "
          "FOREIGN KEY (parent_id) REFERENCES {parent} (id)")
AUTO_PG = ("id SERIAL PRIMARY KEY, email VARCHAR(50) UNIQUE, name VARCHAR(50), "
           "modified_at TIMESTAMP(6) NULL")
AUTO_MY = ("id INT AUTO_INCREMENT PRIMARY KEY, email VARCHAR(50) UNIQUE, name VARCHAR(50), "
           "modified_at DATETIME(6) NULL")


def create(key: str, record: dict[str, object], **kw: object) -> WriteOp:
    return WriteOp("create", key, record, **kw)  # type: ignore[arg-type]


def test_rows_that_break_a_rule_fail_alone_and_the_others_land(db: Database) -> None:  # noqa: F811
    parent = db.table("id INTEGER PRIMARY KEY")
    db.sql(f"INSERT INTO {parent} (id) VALUES (1)")
    table = db.table(PEOPLE.replace("{parent}", parent))
    c = db.connector({"people": table})
    ops = [
        create("ok1", {"id": 1, "email": "a@x.org", "age": 30, "parent_id": 1}),
        create("null", {"id": 2, "email": None}),
        create("check", {"id": 3, "email": "c@x.org", "age": -1}),
        create("dup", {"id": 4, "email": "a@x.org"}),
        create("fk", {"id": 5, "email": "e@x.org", "parent_id": 99}),
        create("long", {"id": 6, "email": "f@x.org", "code": "toolong"}),
        create("range", {"id": 7, "email": "g@x.org", "small": 100000}),
        create("type", {"id": 8, "email": "h@x.org", "age": "old"}),
        create("ok2", {"id": 9, "email": "i@x.org"}),
    ]
    results = {r.key: r for r in c.write("people", ops)}
    assert [r.key for r in c.write("people", [])] == []
    assert results["ok1"].ok and results["ok2"].ok
    assert [r["id"] for r in db.rows(table)] == [1, 9]
    words = {
        "null": ["row id=2", "required column is empty (NOT NULL)"],
        "check": ["row id=3", "CHECK constraint", "age_not_negative"],
        "dup": ["row id=4", "unique column (duplicate)"],
        "fk": ["row id=5", "(foreign key)"],
        "long": ["row id=6", "column 'code' holds at most 5 characters, got 7"],
        "range": ["row id=7", "out of the column's range"],
        "type": ["row id=8", "column 'age' expects a whole number, got 'old'"],
    }
    for key, expected in words.items():
        result = results[key]
        assert not result.ok and isinstance(result.error, PermanentError), key
        message = str(result.error)
        assert message.startswith(f"table {table} of system 'erp', "), message
        for w in expected:
            assert w in message, f"{key}: {w!r} not in {message!r}"
    c.close()


def test_an_upsert_repeated_changes_nothing_and_a_new_value_updates(db: Database) -> None:  # noqa: F811
    table = db.table("code VARCHAR(10) PRIMARY KEY, name VARCHAR(30), price NUMERIC(8,2)")
    c = db.connector({"products": table})
    ops = [create(f"k{i}", {"code": f"P{i}", "name": f"Part {i}", "price": "1.5"})
           for i in range(5)]
    first = c.write("products", ops)
    before = db.rows(table)
    second = c.write("products", ops)
    assert [r.external_id for r in first] == [r.external_id for r in second] == \
        [f"P{i}" for i in range(5)]
    assert all(r.ok for r in first + second)
    assert db.rows(table) == before and len(before) == 5
    assert first[0].record == {"code": "P0", "name": "Part 0", "price": "1.50"}
    changed, = c.write("products", [create("k0", {"code": "P0", "price": 2})])
    assert changed.ok and changed.record == {"code": "P0", "name": "Part 0", "price": "2.00"}
    assert len(db.rows(table)) == 5
    c.close()


def test_an_upsert_never_overwrites_a_row_with_another_key(db: Database) -> None:  # noqa: F811
    # MariaDB's ON DUPLICATE KEY UPDATE would update the row that holds the same email.
    table = db.table("id INTEGER PRIMARY KEY, email VARCHAR(50) UNIQUE, name VARCHAR(20)")
    db.sql(f"INSERT INTO {table} VALUES (1, 'a@x.org', 'Ann')")
    c = db.connector({"people": table})
    clash, fine = c.write("people", [create("c", {"id": 2, "email": "a@x.org", "name": "Bob"}),
                                     create("f", {"id": 1, "name": "Anna"})])
    assert not clash.ok and "duplicate" in str(clash.error)
    assert fine.ok
    assert db.rows(table) == [{"id": 1, "email": "a@x.org", "name": "Anna"}]
    c.close()


def test_generated_keys_come_back_in_op_order(db: Database) -> None:  # noqa: F811
    table = db.table(AUTO_PG, AUTO_MY)
    c = db.connector({"contacts": {"table": table, "updated_at": "modified_at"}})
    ops = [create(f"k{i}", {"email": f"p{i}@x.org", "name": f"P{i}"}) for i in range(6)]
    results = c.write("contacts", ops)
    assert all(r.ok for r in results)
    ids = [int(r.external_id or 0) for r in results]
    assert ids == sorted(ids) and len(set(ids)) == 6
    stored = {r["id"]: r for r in db.rows(table)}
    for i, result in enumerate(results):
        assert result.record is not None and result.record["email"] == f"p{i}@x.org"
        assert stored[int(result.external_id or 0)]["email"] == f"p{i}@x.org"
    c.close()


def test_a_keyless_create_finds_its_row_by_a_match_key(db: Database) -> None:  # noqa: F811
    table = db.table(AUTO_PG.replace("email", "mail"), AUTO_MY.replace("email", "mail"))
    c = db.connector({"contacts": {"table": table, "match": {"email": "mail"}}})
    op = create("k", {"mail": "a@x.org", "name": "Ann"}, match={"email": "a@x.org"})
    first, = c.write("contacts", [op])
    again, = c.write("contacts", [create("k2", {"mail": "a@x.org", "name": "Anna"},
                                         match={"email": "a@x.org"})])
    assert first.ok and again.ok and first.external_id == again.external_id
    assert [(r["mail"], r["name"]) for r in db.rows(table)] == [("a@x.org", "Anna")]
    c.close()


def test_the_updated_at_column_is_stamped_unless_the_record_sets_it(db: Database) -> None:  # noqa: F811
    table = db.table(AUTO_PG, AUTO_MY)
    c = db.connector({"contacts": {"table": table, "updated_at": "modified_at"}})
    before = datetime.now(UTC) - timedelta(seconds=1)
    stamped, given = c.write("contacts", [
        create("a", {"email": "a@x.org"}),
        create("b", {"email": "b@x.org", "modified_at": "2020-02-02T02:02:02Z"})])
    assert stamped.record is not None and given.record is not None
    moment = datetime.fromisoformat(stamped.record["modified_at"])
    assert before <= moment <= datetime.now(UTC) + timedelta(seconds=1)
    assert given.record["modified_at"] == "2020-02-02T02:02:02Z"
    updated, = c.write("contacts", [WriteOp("update", "u", {"name": "B"},
                                            external_id=given.external_id)])
    assert updated.record is not None and updated.record["modified_at"] > "2020-02-02T02:02:02Z"
    c.close()


def test_a_text_key_is_taken_from_the_canonical_id(db: Database) -> None:  # noqa: F811
    table = db.table("ref VARCHAR(40) PRIMARY KEY, name VARCHAR(20)")
    c = db.connector({"projects": table})
    op = create("k", {"name": "Launch"}, canonical_id="01HZXCANONICAL")
    first, = c.write("projects", [op])
    second, = c.write("projects", [op])
    assert first.external_id == second.external_id == "01HZXCANONICAL"
    assert db.rows(table) == [{"ref": "01HZXCANONICAL", "name": "Launch"}]
    c.close()


def test_a_create_without_a_way_to_key_the_row_fails_clearly(db: Database) -> None:  # noqa: F811
    table = db.table("id INTEGER PRIMARY KEY, name VARCHAR(20)")
    c = db.connector({"projects": table})
    result, = c.write("projects", [create("k", {"name": "x"}, canonical_id="abc")])
    assert not result.ok
    assert "a new row needs a value for key column(s) id: map a field to it" in str(result.error)
    c.close()


def test_updates_archives_and_deletes_in_one_batch(db: Database) -> None:  # noqa: F811
    table = db.table("id INTEGER PRIMARY KEY, name VARCHAR(20), gone BOOLEAN NOT NULL "
                     "DEFAULT FALSE")
    for i in (1, 2, 3):
        db.sql(f"INSERT INTO {table} (id, name) VALUES (:i, 'n')", {"i": i})
    plain = db.connector({"items": table})
    archive, = plain.write("items", [WriteOp("archive", "a", {}, external_id="1")])
    assert not archive.ok and "no soft_delete column is configured" in str(archive.error)
    c = db.connector({"items": {"table": table, "soft_delete": "gone"}})
    results = c.write("items", [
        WriteOp("update", "u", {"name": "renamed", "id": 1}, external_id="1"),
        WriteOp("update", "ghost", {"name": "x"}, external_id="77"),
        WriteOp("archive", "a", {}, external_id="2"),
        WriteOp("delete", "d", {}, external_id="3"),
        WriteOp("delete", "d2", {}, external_id="78"),
        WriteOp("update", "nokey", {"name": "x"}),
    ])
    ok = {r.key: r.ok for r in results}
    assert ok == {"u": True, "ghost": False, "a": True, "d": True, "d2": True, "nokey": False}
    assert "row id=77: there is no such row" in str(results[1].error)
    assert [(r["id"], r["name"], bool(r["gone"])) for r in db.rows(table)] == \
        [(1, "renamed", False), (2, "n", True)]
    plain.close()
    c.close()


def test_a_full_batch_lands_in_one_call(db: Database) -> None:  # noqa: F811
    table = db.table(AUTO_PG, AUTO_MY)
    c = db.connector({"contacts": table})
    size = c.capabilities.batch_size
    results = c.write("contacts", [create(f"k{i}", {"email": f"p{i}@x.org"})
                                   for i in range(size)])
    assert all(r.ok for r in results) and len({r.external_id for r in results}) == size
    assert len(db.rows(table)) == size
    c.close()


@pytest.mark.parametrize("column", ["first name", "Mixed\"Quote"])
def test_odd_column_names_are_quoted_not_trusted(db: Database, column: str) -> None:  # noqa: F811
    quoted = f"`{column}`" if db.mysql else '"' + column.replace('"', '""') + '"'
    table = db.table(f"id INTEGER PRIMARY KEY, {quoted} VARCHAR(20)")
    c = db.connector({"items": table})
    created, = c.write("items", [create("k", {"id": 1, column: "a"})])
    updated, = c.write("items", [WriteOp("update", "u", {column: "b"}, external_id="1")])
    assert created.ok and updated.ok
    assert [r.records for r in c.read("items", None, incremental=False, page_size=5)] == \
        [[{"id": 1, column: "b"}]]
    c.close()


def test_a_column_type_the_connector_does_not_know_is_left_to_the_database(
        db: Database) -> None:  # noqa: F811
    table = db.table(f"id INTEGER PRIMARY KEY, ip {'INET6' if db.mysql else 'INET'}")
    c = db.connector({"hosts": table})
    address = "::ffff:10.0.0.1" if db.mysql else "10.0.0.1"
    wrong, bad, good = c.write("hosts", [create("w", {"id": 1, "ip": True}),
                                         create("b", {"id": 2, "ip": "nope"}),
                                         create("g", {"id": 3, "ip": address})])
    assert "row id=1: a value has the wrong type for the column" in str(wrong.error)
    assert "row id=2: a value " in str(bad.error) and "nope" in str(bad.error)
    assert good.ok and good.record == {"id": 3, "ip": address}
    c.close()
