"""Spreadsheet connector behaviour beyond the conformance suite: bad rows, atomic writes,
header growth, incremental reads, workbook cell values."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook, load_workbook

from connectors.spreadsheet import SpreadsheetConnector, csvfiles
from hub.config.model import ConnectionConfig
from hub.connector import NativeRecord, WriteOp
from hub.errors import ConnectorError, PermanentError, TransientError


def sheets(folder: Path, path: str = ".", **settings: Any) -> SpreadsheetConnector:
    return SpreadsheetConnector(ConnectionConfig(
        name="sheets", connector="spreadsheet", settings={"path": path, **settings},
        base_dir=folder, where="hub.yaml:7"))


def read_all(c: SpreadsheetConnector, object: str = "contacts", *, cursor: Any = None,
             incremental: bool = False, page_size: int = 100) -> list[NativeRecord]:
    return [r for p in c.read(object, cursor, incremental=incremental, page_size=page_size)
            for r in p.records]


def final_cursor(c: SpreadsheetConnector, object: str = "contacts") -> Any:
    return list(c.read(object, None, incremental=True, page_size=100))[-1].cursor


# -- reading -----------------------------------------------------------------------------

def test_rows_become_records_and_empty_cells_are_absent(tmp_path: Path) -> None:
    (tmp_path / "contacts.csv").write_text(" id ,email,title\n1,a@x.com,\n2,,Boss\n\n")
    assert read_all(sheets(tmp_path)) == [{"id": "1", "email": "a@x.com"},
                                           {"id": "2", "title": "Boss"}]


def test_ragged_and_undecodable_rows_become_error_records_and_the_rest_is_read(
        tmp_path: Path) -> None:
    (tmp_path / "contacts.csv").write_bytes(
        b"id,email\n1,a@x.com\n2,b@x.com,extra,more\n3,caf\xe9@x.com\n4,d@x.com,,\n5,e@x.com\n")
    records = read_all(sheets(tmp_path))
    assert [r.get("id") for r in records] == ["1", None, None, "4", "5"]
    assert records[1]["__error__"] == "contacts.csv:3: the row has 4 cells but the header has 2"
    assert records[1]["__raw__"] == ["2", "b@x.com", "extra", "more"]
    assert records[2]["__error__"].startswith("contacts.csv:4: the row has bytes that are not "
                                              "valid utf-8")
    assert records[2]["__raw__"] == ["3", "caf\\xe9@x.com"]


def test_error_lines_count_physical_lines_of_quoted_multiline_cells(tmp_path: Path) -> None:
    (tmp_path / "contacts.csv").write_text('id,note\n1,"two\nlines"\n2,x,y\n')
    records = read_all(sheets(tmp_path))
    assert records[0] == {"id": "1", "note": "two\nlines"}
    assert records[1]["__error__"].startswith("contacts.csv:4:")


def test_missing_and_duplicate_keys_are_error_records(tmp_path: Path) -> None:
    (tmp_path / "contacts.csv").write_text("id,email\n1,a@x\n,b@x\n1,c@x\n")
    records = read_all(sheets(tmp_path))
    assert records[0] == {"id": "1", "email": "a@x"}
    assert records[1]["__error__"] == "contacts.csv:3: the 'id' column is empty"
    assert records[2]["__error__"] == "contacts.csv:4: id '1' is also on line 2"


@pytest.mark.parametrize(("content", "message"), [
    ("id,email,email\n1,a,b\n", ("contacts.csv:1: column 'email' appears twice in the "
                                 "header (columns 2 and 3)")),
    ("key,email\n1,a\n", ("contacts.csv:1: no 'id' column in the header (setting 'key'); "
                          "columns: key, email")),
])
def test_an_unusable_header_fails_the_read_with_where_and_what(
        tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "contacts.csv").write_text(content)
    with pytest.raises(PermanentError) as caught:
        read_all(sheets(tmp_path))
    assert str(caught.value) == message


def test_missing_file_reads_empty_but_missing_folder_fails_check(tmp_path: Path) -> None:
    assert read_all(sheets(tmp_path)) == []
    assert sheets(tmp_path).check().ok
    health = sheets(tmp_path, "nowhere").check()
    assert not health.ok
    assert f"folder {tmp_path / 'nowhere'} does not exist" in health.message


def test_bom_delimiter_and_encoding_settings(tmp_path: Path) -> None:
    (tmp_path / "contacts.csv").write_bytes(b"\xef\xbb\xbfid;name\n1;Z\xc3\xbcrich\n")
    assert read_all(sheets(tmp_path, delimiter=";")) == [{"id": "1", "name": "Zürich"}]
    (tmp_path / "deals.csv").write_bytes(b"id,name\n1,Gr\xfcn \x80\n")
    assert read_all(sheets(tmp_path, encoding="cp1252"), "deals") == [
        {"id": "1", "name": "Grün €"}]


@pytest.mark.parametrize(("settings", "message"), [
    ({"path": ""}, "needs a 'path' setting"),
    ({"path": ".", "delimiter": ";;"}, "'delimiter' must be one character"),
    ({"path": ".", "encoding": "klingon"}, "unknown encoding 'klingon'"),
])
def test_bad_settings_are_connector_errors(tmp_path: Path, settings: dict[str, str],
                                           message: str) -> None:
    with pytest.raises(ConnectorError, match=message) as caught:
        SpreadsheetConnector(ConnectionConfig(name="s", connector="spreadsheet",
                                              settings=settings, base_dir=tmp_path,
                                              where="hub.yaml:7"))
    assert str(caught.value).startswith("hub.yaml:7: system 's'")


def test_object_names_cannot_leave_the_folder(tmp_path: Path) -> None:
    with pytest.raises(PermanentError, match="cannot name a file or sheet"):
        read_all(sheets(tmp_path), "../etc/passwd")


# -- incremental -------------------------------------------------------------------------

def test_incremental_read_returns_rows_modified_since_the_cursor(tmp_path: Path) -> None:
    (tmp_path / "contacts.csv").write_text(
        "id,email,modified\n1,a@x,2024-01-01T10:00:00Z\n2,b@x,2024-01-02T10:00:00Z\n"
        "3,c@x,2024-01-03T10:00:00+02:00\n")
    c = sheets(tmp_path, modified_column="modified")
    cursor = final_cursor(c)
    assert cursor == {"since": "2024-01-03T10:00:00+02:00"}
    c.write("contacts", [WriteOp("update", "k", {"email": "new@x"}, external_id="1")])
    changed = read_all(c, cursor=cursor, incremental=True)
    # The boundary row (same instant as the cursor) is read again: nothing is ever missed.
    assert [r["id"] for r in changed] == ["1", "3"]
    assert changed[0]["email"] == "new@x" and changed[0]["modified"] > "2024-01-04"


def test_without_a_modified_column_incremental_is_a_full_read(tmp_path: Path) -> None:
    (tmp_path / "contacts.csv").write_text("id\n1\n2\n")
    c = sheets(tmp_path)
    assert final_cursor(c) is None
    assert len(read_all(c, cursor={"since": "2030-01-01"}, incremental=True)) == 2


def test_rows_with_an_empty_modified_cell_are_always_read_again(tmp_path: Path) -> None:
    (tmp_path / "contacts.csv").write_text("id,modified\n1,2024-01-01\n2,\n")
    c = sheets(tmp_path, modified_column="modified")
    assert read_all(c, cursor={"since": "2025-01-01"}, incremental=True) == [{"id": "2"}]


# -- writing -----------------------------------------------------------------------------

def test_new_columns_are_appended_to_the_header(tmp_path: Path) -> None:
    (tmp_path / "contacts.csv").write_text("id,email\n1,a@x\n")
    c = sheets(tmp_path)
    result, = c.write("contacts", [WriteOp("create", "k", {"id": "2", "email": "b@x",
                                                           "phone": "+4930"})])
    assert result.ok and result.external_id == "2"
    assert (tmp_path / "contacts.csv").read_text() == "id,email,phone\n1,a@x,\n2,b@x,+4930\n"


def test_deleted_row_disappears_from_a_full_read(tmp_path: Path) -> None:
    (tmp_path / "contacts.csv").write_text("id,email\n1,a@x\n2,b@x\n3,c@x\n")
    c = sheets(tmp_path)
    results = c.write("contacts", [WriteOp("delete", "d", {}, external_id="2"),
                                   WriteOp("delete", "e", {}, external_id="404")])
    assert all(r.ok for r in results)
    assert [r["id"] for r in read_all(c)] == ["1", "3"]


def test_archive_adds_the_archived_column_when_missing(tmp_path: Path) -> None:
    (tmp_path / "contacts.csv").write_text("id\n1\n2\n")
    c = sheets(tmp_path)
    result, = c.write("contacts", [WriteOp("archive", "a", {}, external_id="2")])
    assert result.ok and result.record == {"id": "2", "archived": "true"}
    assert read_all(c) == [{"id": "1"}, {"id": "2", "archived": "true"}]


def test_a_failed_op_does_not_stop_the_rest_of_the_batch(tmp_path: Path) -> None:
    (tmp_path / "contacts.csv").write_text("id,email\n1,a@x\n")
    c = sheets(tmp_path)
    results = c.write("contacts", [WriteOp("update", "u", {"email": "z@x"}, external_id="9"),
                                   WriteOp("update", "v", {"email": "b@x"}, external_id="1"),
                                   WriteOp("update", "w", {"email": "b@x"})])
    assert [r.ok for r in results] == [False, True, False]
    assert str(results[0].error) == "contacts.csv: no row with id '9' to update"
    assert isinstance(results[2].error, PermanentError)
    assert read_all(c) == [{"id": "1", "email": "b@x"}]


def test_create_upserts_by_key_and_by_match_column(tmp_path: Path) -> None:
    (tmp_path / "contacts.csv").write_text("id,email,title\n1,Ann@X.com,CEO\n")
    c = sheets(tmp_path)
    by_match, by_key = c.write("contacts", [
        WriteOp("create", "m", {"email": "ann@x.com", "first_name": "Ann"},
                match={"email": "ann@x.com"}),
        WriteOp("create", "k", {"id": "1", "title": "CFO"})])
    assert by_match.external_id == "1" and by_key.external_id == "1"
    assert read_all(c) == [{"id": "1", "email": "ann@x.com", "title": "CFO",
                            "first_name": "Ann"}]


def test_write_into_a_missing_folder_fails_every_op_without_creating_it(tmp_path: Path) -> None:
    c = sheets(tmp_path, "nowhere")
    results = c.write("contacts", [WriteOp("create", "a", {"email": "a@x"})])
    assert not results[0].ok and "does not exist" in str(results[0].error)
    assert not (tmp_path / "nowhere").exists()


def test_rewriting_keeps_undecodable_bytes_bom_and_line_endings(tmp_path: Path) -> None:
    original = b"\xef\xbb\xbfid,name\r\n1,caf\xe9\r\n2,b\r\n"
    (tmp_path / "contacts.csv").write_bytes(original)
    sheets(tmp_path).write("contacts", [WriteOp("update", "u", {"name": "B"}, external_id="2")])
    assert (tmp_path / "contacts.csv").read_bytes() == original.replace(b"2,b", b"2,B")


def test_a_crash_half_way_through_a_write_leaves_the_file_intact(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    original = "id,email\n" + "".join(f"{i},p{i}@x\n" for i in range(100))
    (tmp_path / "contacts.csv").write_text(original)
    real = csvfiles._write_rows

    def half_then_disk_full(out: Any, header: Any, rows: Any, *args: Any) -> None:
        real(out, header, rows[: len(rows) // 2], *args)
        out.flush()
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(csvfiles, "_write_rows", half_then_disk_full)
    c = sheets(tmp_path)
    with pytest.raises(TransientError, match="cannot write contacts.csv: No space left"):
        c.write("contacts", [WriteOp("update", "u", {"email": "new@x"}, external_id="1")])
    assert (tmp_path / "contacts.csv").read_text() == original
    assert sorted(p.name for p in tmp_path.iterdir()) == [".liaison.lock", "contacts.csv"]

    def half_then_bug(out: Any, header: Any, rows: Any, *args: Any) -> None:
        real(out, header, rows[: len(rows) // 2], *args)
        raise RuntimeError("killed")

    monkeypatch.setattr(csvfiles, "_write_rows", half_then_bug)
    with pytest.raises(RuntimeError):
        c.write("contacts", [WriteOp("delete", "d", {}, external_id="1")])
    assert (tmp_path / "contacts.csv").read_text() == original
    assert len(list(tmp_path.iterdir())) == 2


# -- workbooks ---------------------------------------------------------------------------

def test_workbook_cells_become_consistent_text(tmp_path: Path) -> None:
    book = Workbook()
    sheet = book.active
    sheet.title = "deals"
    sheet.append(["id", "amount", "count", "ratio", "won", "close", "at", "big", "blank"])
    sheet.append([1, 1234.5, 3.0, 0.1 + 0.2, True, dt.date(2024, 5, 1),
                  dt.datetime(2024, 5, 1, 10, 30), 123456789012345, None])
    sheet["G2"].number_format = "yyyy-mm-dd hh:mm"
    sheet.append([2, "=1+1"])
    book.save(tmp_path / "crm.xlsx")
    records = read_all(sheets(tmp_path, "crm.xlsx"), "deals")
    assert records[0] == {"id": "1", "amount": "1234.5", "count": "3", "ratio": "0.3",
                          "won": "true", "close": "2024-05-01", "at": "2024-05-01T10:30:00",
                          "big": "123456789012345"}
    assert records[1] == {"id": "2"}  # a formula Excel never computed has no value yet


def test_workbook_writes_keep_other_sheets_and_formulas_and_never_write_formulas(
        tmp_path: Path) -> None:
    book = Workbook()
    book.active.title = "notes"
    book.active["A1"] = "keep me"
    deals = book.create_sheet("deals")
    deals.append(["id", "total"])
    deals.append(["1", "=2*21"])
    book.save(tmp_path / "crm.xlsx")
    c = sheets(tmp_path, "crm.xlsx")
    results = c.write("deals", [WriteOp("create", "n", {"id": "2", "total": "=HYPERLINK(1)"})])
    assert results[0].ok
    saved = load_workbook(tmp_path / "crm.xlsx")
    assert saved["notes"]["A1"].value == "keep me"
    assert saved["deals"]["B2"].data_type == "f"  # the sheet's own formula survives
    assert saved["deals"]["B3"].data_type == "s"  # our text is never run as a formula
    assert read_all(c, "deals")[1] == {"id": "2", "total": "=HYPERLINK(1)"}


def test_workbook_is_created_on_first_write_and_missing_sheet_reads_empty(
        tmp_path: Path) -> None:
    c = sheets(tmp_path, "new.xlsx")
    assert c.check().ok and read_all(c) == []
    c.write("contacts", [WriteOp("create", "a", {"id": "7", "n": 5})])
    assert load_workbook(tmp_path / "new.xlsx").sheetnames == ["contacts"]
    assert read_all(c) == [{"id": "7", "n": "5"}]
    assert read_all(c, "deals") == []


def test_a_broken_workbook_is_reported_not_raised_as_a_foreign_error(tmp_path: Path) -> None:
    (tmp_path / "crm.xlsx").write_text("not a zip")
    c = sheets(tmp_path, "crm.xlsx")
    health = c.check()
    assert not health.ok and "crm.xlsx is not a readable .xlsx workbook" in health.message
    with pytest.raises(PermanentError, match="not a readable .xlsx workbook"):
        read_all(c)


def test_a_crash_half_way_through_a_workbook_save_leaves_it_intact(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    c = sheets(tmp_path, "crm.xlsx")
    c.write("contacts", [WriteOp("create", "a", {"id": "1"})])
    before = (tmp_path / "crm.xlsx").read_bytes()

    def half(self: Workbook, out: Any) -> None:
        out.write(before[: len(before) // 2])
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(Workbook, "save", half)
    with pytest.raises(TransientError):
        c.write("contacts", [WriteOp("create", "b", {"id": "2"})])
    assert (tmp_path / "crm.xlsx").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [".liaison.lock", "crm.xlsx"]


def test_two_creates_of_one_key_in_one_batch_make_one_row(tmp_path: Path) -> None:
    c = sheets(tmp_path)
    first, second = c.write("contacts", [WriteOp("create", "a", {"id": "5", "email": "a@x"}),
                                         WriteOp("create", "b", {"id": "5", "title": "CEO"})])
    assert first.external_id == second.external_id == "5"
    assert read_all(c) == [{"id": "5", "email": "a@x", "title": "CEO"}]


def test_a_workbook_edited_between_writes_is_reloaded_not_overwritten(tmp_path: Path) -> None:
    c = sheets(tmp_path, "crm.xlsx")
    c.write("contacts", [WriteOp("create", "a", {"id": "1"})])
    book = load_workbook(tmp_path / "crm.xlsx")
    book["contacts"].append(["2"])  # someone adds a row by hand
    book.save(tmp_path / "crm.xlsx")
    c.write("contacts", [WriteOp("create", "b", {"id": "3"})])
    assert [r["id"] for r in read_all(c)] == ["1", "2", "3"]
