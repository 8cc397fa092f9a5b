"""Property tests: what is written reads back unchanged; paging loses and repeats nothing."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.spreadsheet import SpreadsheetConnector
from connectors.spreadsheet.table import Row, records
from hub.config.model import ConnectionConfig
from hub.connector import NativeRecord, WriteOp

COLUMNS = st.sampled_from(["email", "name", "note", "title", "amount"])
# Workbooks cannot hold most control characters, and XML turns "\r" into "\n".
XLSX_TEXT = st.text(st.characters(blacklist_categories=["Cs", "Cc"]), min_size=1)
CSV_TEXT = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"),
                   min_size=1)


def _records(text: st.SearchStrategy[str]) -> st.SearchStrategy[list[NativeRecord]]:
    return st.lists(st.dictionaries(COLUMNS, text, min_size=1), min_size=1, max_size=8)


def _round_trip(path: str, rows: list[NativeRecord]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        c = SpreadsheetConnector(ConnectionConfig(
            name="s", connector="spreadsheet", settings={"path": path},
            base_dir=Path(folder)))
        results = c.write("contacts", [WriteOp("create", f"k{i}", r)
                                       for i, r in enumerate(rows)])
        assert all(r.ok for r in results)
        read = [r for p in c.read("contacts", None, incremental=False, page_size=3)
                for r in p.records]
        ids = [r.external_id for r in results]
        assert read == [{"id": i, **r} for i, r in zip(ids, rows, strict=True)]


@settings(max_examples=60, deadline=None)
@given(_records(CSV_TEXT))
def test_csv_write_then_read_gives_the_records_back(rows: list[NativeRecord]) -> None:
    _round_trip(".", rows)


@settings(max_examples=30, deadline=None)
@given(_records(XLSX_TEXT))
def test_xlsx_write_then_read_gives_the_records_back(rows: list[NativeRecord]) -> None:
    _round_trip("book.xlsx", rows)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 30), st.integers(1, 7), st.sets(st.integers(0, 29)))
def test_pages_and_resumes_lose_and_repeat_nothing(n: int, page_size: int,
                                                   blanks: set[int]) -> None:
    rows = [Row(1, ["id"])] + [Row(i + 2, [] if i in blanks else [str(i)]) for i in range(n)]
    expected = [str(i) for i in range(n) if i not in blanks]

    def read(start: int) -> list[tuple[list[NativeRecord], dict[str, object] | None]]:
        return list(records("t.csv", iter(rows), key="id", modified=None, start_row=start,
                            since=None, seen_max=None, page_size=page_size))

    pages = read(0)
    assert [r["id"] for p, _ in pages for r in p] == expected
    assert all(1 <= len(p) <= page_size for p, _ in pages) or expected == []
    assert pages[-1][1] is None
    for at, (_, cursor) in enumerate(pages[:-1]):
        assert cursor is not None
        rest = read(int(cursor["row"]))  # type: ignore[call-overload]
        assert [r["id"] for p, _ in rest for r in p] == \
               [r["id"] for p, _ in pages[at + 1:] for r in p]
