"""Keyset reads: every row exactly once, whatever the page size, ties and resumptions."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.sql import SqlConnector
from hub.connector import Cursor, Page, WriteOp
from tests.connectors.sql_servers import Database, db  # noqa: F401 - the fixture

ROWS = "id INTEGER PRIMARY KEY, name VARCHAR(40), modified_at TIMESTAMP(6) NULL"
ROWS_MY = "id INTEGER PRIMARY KEY, name VARCHAR(40), modified_at DATETIME(6) NULL"
BASE = datetime(2024, 3, 1, 9, 0, 0)


def pages(c: SqlConnector, cursor: Cursor | None, *, incremental: bool,
          size: int) -> list[Page]:
    """Every page, the cursors passed through JSON as the engine stores them."""
    if cursor is not None:
        cursor = json.loads(json.dumps(cursor))
    found = list(c.read("rows", cursor, incremental=incremental, page_size=size))
    for page in found:
        assert json.loads(json.dumps(page.cursor)) == page.cursor
        assert len(page.records) <= size
    return found


def ids(found: list[Page]) -> list[int]:
    return [r["id"] for p in found for r in p.records]


def insert(db: Database, table: str, rows: list[tuple[int, datetime | None]]) -> None:  # noqa: F811
    for i, stamp in rows:
        db.sql(f"INSERT INTO {table} (id, name, modified_at) VALUES (:i, :n, :m)",
               {"i": i, "n": f"row {i}", "m": stamp})


@pytest.fixture
def rows_table(db: Database) -> Iterator[tuple[Database, str, SqlConnector]]:  # noqa: F811
    table = db.table(ROWS, ROWS_MY)
    connector = db.connector({"rows": {"table": table, "updated_at": "modified_at"}})
    yield db, table, connector
    connector.close()


def test_equal_timestamps_across_page_boundaries_are_read_once(
        rows_table: tuple[Database, str, SqlConnector]) -> None:
    database, table, c = rows_table
    # Ten rows share one timestamp; keys out of insertion order; pages of 3 cut through them.
    same = BASE + timedelta(seconds=5)
    insert(database, table, [(k, same) for k in (9, 2, 14, 5, 11, 3, 8, 1, 12, 6)])
    insert(database, table, [(20, BASE), (21, BASE + timedelta(seconds=9)), (4, None)])
    found = pages(c, None, incremental=True, size=3)
    assert ids(found) == [4, 20, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 21]
    for at, page in enumerate(found[:-1]):
        assert ids(pages(c, page.cursor, incremental=True, size=3)) == ids(found[at + 1:])
    final = found[-1].cursor
    assert final == {"updated_at": (BASE + timedelta(seconds=9)).isoformat()}
    # A row changed later, with the same timestamp as another already read, is not lost.
    insert(database, table, [(30, BASE + timedelta(seconds=9)), (31, BASE + timedelta(seconds=10))])
    assert ids(pages(c, final, incremental=True, size=3)) == [21, 30, 31]


def test_a_full_read_goes_by_key_and_ends_where_an_incremental_run_continues(
        rows_table: tuple[Database, str, SqlConnector]) -> None:
    database, table, c = rows_table
    insert(database, table, [(k, BASE + timedelta(seconds=k % 3)) for k in range(1, 11)])
    found = pages(c, None, incremental=False, size=4)
    assert ids(found) == list(range(1, 11))
    assert found[0].cursor == {"key": [4], "mark": (BASE + timedelta(seconds=2)).isoformat()}
    # Resuming a full read keeps the mark taken when it started.
    insert(database, table, [(11, BASE + timedelta(days=1))])
    rest = pages(c, found[0].cursor, incremental=False, size=4)
    assert ids(rest) == list(range(5, 12))
    assert rest[-1].cursor == {"updated_at": (BASE + timedelta(seconds=2)).isoformat()}
    # The next incremental run reads what changed since the full read started.
    after = ids(pages(c, rest[-1].cursor, incremental=True, size=4))
    assert 11 in after and set(after) <= {2, 5, 8, 11}


def test_without_an_updated_at_column_every_read_is_a_full_read(db: Database) -> None:  # noqa: F811
    table = db.table(ROWS, ROWS_MY)
    insert(db, table, [(k, None) for k in range(1, 6)])
    c = db.connector({"rows": table})
    first = pages(c, None, incremental=True, size=2)
    assert ids(first) == [1, 2, 3, 4, 5] and first[-1].cursor is None
    assert ids(pages(c, first[0].cursor, incremental=True, size=2)) == [3, 4, 5]
    c.close()


def test_an_empty_table_reads_as_one_empty_page(
        rows_table: tuple[Database, str, SqlConnector]) -> None:
    _, _, c = rows_table
    assert [p.records for p in pages(c, None, incremental=True, size=5)] == [[]]
    assert [p.records for p in pages(c, None, incremental=False, size=5)] == [[]]
    cursor = {"updated_at": BASE.isoformat()}
    found = pages(c, cursor, incremental=True, size=5)
    assert found[0].records == [] and found[0].cursor == cursor


def test_a_cursor_that_no_longer_fits_asks_for_a_full_refresh(
        rows_table: tuple[Database, str, SqlConnector]) -> None:
    _, _, c = rows_table
    with pytest.raises(Exception, match="run a full refresh"):
        pages(c, {"updated_at": "yesterday", "key": [1]}, incremental=True, size=5)


def test_composite_keys_page_and_give_a_json_external_id(db: Database) -> None:  # noqa: F811
    table = db.table("order_no INTEGER NOT NULL, line INTEGER NOT NULL, item VARCHAR(20), "
                     "PRIMARY KEY (order_no, line)")
    for order in (1, 2):
        for line in (1, 2, 3):
            db.sql(f"INSERT INTO {table} VALUES (:o, :l, :i)",
                   {"o": order, "l": line, "i": f"{order}-{line}"})
    c = db.connector({"lines": table})
    found = list(c.read("lines", None, incremental=False, page_size=4))
    keys = [r["__key__"] for p in found for r in p.records]
    assert keys == [json.dumps([str(o), str(n)]) for o in (1, 2) for n in (1, 2, 3)]
    rest = list(c.read("lines", found[0].cursor, incremental=False, page_size=4))
    assert [r["item"] for p in rest for r in p.records] == ["2-2", "2-3"]
    assert c.fetch("lines", '["2", "3"]') == {"order_no": 2, "line": 3, "item": "2-3",
                                              "__key__": '["2", "3"]'}
    assert c.fetch("lines", "2") is None
    up, bad = c.write("lines", [
        WriteOp("update", "u", {"item": "changed"}, external_id='["1", "2"]'),
        WriteOp("update", "b", {"item": "x"}, external_id="1-2")])
    assert up.ok and up.record is not None and up.record["item"] == "changed"
    assert not bad.ok and "JSON list of 2 key values" in str(bad.error)
    c.close()


# -- the law: an incremental read is every row once, in order, from any cursor ----------------

_STAMPS = st.one_of(st.none(), st.integers(0, 4).map(lambda s: BASE + timedelta(seconds=s)))


def test_incremental_reads_lose_and_repeat_nothing(db: Database) -> None:  # noqa: F811
    table = db.table(ROWS, ROWS_MY)
    c = db.connector({"rows": {"table": table, "updated_at": "modified_at"}})

    @settings(max_examples=25, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(stamps=st.dictionaries(st.integers(1, 60), _STAMPS, max_size=14),
           size=st.integers(1, 5))
    def law(stamps: dict[int, datetime | None], size: int) -> None:
        db.sql(f"DELETE FROM {table}")
        insert(db, table, list(stamps.items()))
        expected = sorted(stamps, key=lambda k: (stamps[k] is not None, stamps[k] or BASE, k))
        found = pages(c, None, incremental=True, size=size)
        assert ids(found) == expected
        for at, page in enumerate(found[:-1]):
            assert ids(pages(c, page.cursor, incremental=True, size=size)) == \
                ids(found[at + 1:])
        assert ids(pages(c, None, incremental=False, size=size)) == sorted(stamps)

    law()
    c.close()
