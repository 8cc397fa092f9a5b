"""An .xlsx workbook, one sheet per object: rows in (as text), whole workbook out.

Cell values become text the same way every time: numbers without float noise ("1234.5",
"42"), booleans "true"/"false", date cells "YYYY-MM-DD", date-time cells
"YYYY-MM-DDTHH:MM:SS" (a workbook has no time zone; nothing is invented). Formulas are read
as their last computed value and kept as formulas when the workbook is rewritten.
"""

from __future__ import annotations

import warnings
import zipfile
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from openpyxl import Workbook, load_workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.utils.exceptions import InvalidFileException
from openpyxl.worksheet.worksheet import Worksheet

from connectors.spreadsheet.csvfiles import cell as csv_cell
from connectors.spreadsheet.csvfiles import float_text
from connectors.spreadsheet.files import replacing
from connectors.spreadsheet.table import Row, Table
from hub.errors import PermanentError

_EXACT_INT = 10**15  # beyond this Excel (a float) would round an integer: keep it as text


class Formula(str):
    """A formula loaded from the workbook; written back as a formula, unlike our own text."""

    __slots__ = ()


def text(value: Any, number_format: str = "") -> str:
    """A cell value as the text every read sees."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return float_text(value)
    if isinstance(value, datetime):
        if value.time() == time() and "h" not in number_format.lower():
            return value.date().isoformat()  # a date cell: Excel stores dates as midnight
        spec = "microseconds" if value.microsecond else "seconds"
        return value.isoformat(timespec=spec)
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return str(value)
    return str(value)


def cell(value: Any) -> Any:
    """The workbook value for a written value: numbers stay numbers, the rest is text."""
    if value is None or value == "":
        return None
    if isinstance(value, bool | float):
        return value
    if isinstance(value, int):
        return value if abs(value) < _EXACT_INT else str(value)
    shown = value if isinstance(value, str) else csv_cell(value)
    if ILLEGAL_CHARACTERS_RE.search(shown):
        raise PermanentError(f"value {shown[:40]!r} holds control characters that a workbook "
                             "cannot store")
    return shown


def _identity(path: Path) -> tuple[int, int, int]:
    """Changes whenever anyone replaces or edits the file (inode, mtime, size)."""
    st = path.stat()
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def _plain(value: Any) -> str:
    return text(value)


class XlsxWorkbook:
    """Reads sheets of one workbook and rewrites the workbook atomically."""

    def __init__(self, path: Path) -> None:
        self.file = path
        # The workbook as we last saved it, with the file's identity then: loading a
        # workbook costs as much as saving it, so consecutive batches skip the reload.
        self._cached: tuple[tuple[int, int, int], Any] | None = None

    text = staticmethod(_plain)
    cell = staticmethod(cell)

    def label(self, object: str) -> str:
        """How messages name a sheet."""
        return f"{self.file.name}[{object}]"

    def problem(self) -> str | None:
        """Why the workbook cannot be used, or None."""
        if not self.file.exists():
            # Like a missing CSV file: reads are empty and the first write creates it.
            if not self.file.parent.is_dir():
                return f"folder {self.file.parent} (of workbook {self.file.name}) does not exist"
            return None
        try:
            book = self._open(read_only=True)
        except PermanentError as exc:
            return str(exc)
        book.close()
        return None

    def objects(self) -> list[str]:
        """The sheet names."""
        if not self.file.exists():
            return []
        book = self._open(read_only=True)
        try:
            return list(book.sheetnames)
        finally:
            book.close()

    def rows(self, object: str) -> Iterator[Row]:
        """The header row then every data row of the sheet; nothing when there is none."""
        if not self.file.exists():
            return
        book = self._open(read_only=True)
        try:
            if object not in book.sheetnames:
                return
            for line, cells in enumerate(book[object].iter_rows(), start=1):
                yield Row(line, [text(c.value, getattr(c, "number_format", None) or "")
                                 for c in cells])
        finally:
            book.close()

    def load(self, object: str) -> Table:
        """The sheet's values for a write, with the workbook kept for the save."""
        cached, self._cached = self._cached, None  # a failed save must not leave it stale
        if not self.file.exists():
            book = Workbook()
        elif cached is not None and cached[0] == _identity(self.file):
            book = cached[1]
        else:
            book = self._open(read_only=False)
        values: list[list[Any]] = []
        if object in book.sheetnames:
            for row in book[object].iter_rows():
                values.append([Formula(c.value) if c.data_type == "f" and isinstance(c.value, str)
                               else c.value for c in row])
        header = [text(v).strip() for v in values[0]] if values else []
        return Table(self.label(object), header, values[1:], {"book": book})

    def save(self, object: str, table: Table) -> None:
        """Write the table into its sheet and replace the workbook file atomically."""
        book = table.extra["book"]
        sheet = self._sheet(book, object)
        for r, row in enumerate([list(table.header), *table.rows], start=1):
            for c, value in enumerate(row, start=1):
                target = sheet.cell(row=r, column=c)
                if target.value == value and type(target.value) is type(value):
                    continue
                target.value = value
                if isinstance(value, str) and not isinstance(value, Formula):
                    target.data_type = "s"  # our text is never a formula, even if it starts "="
        used = len(table.rows) + 1
        if sheet.max_row > used:
            sheet.delete_rows(used + 1, sheet.max_row - used)
        with replacing(self.file) as out:
            book.save(out)
        self._cached = (_identity(self.file), book)

    def _sheet(self, book: Workbook, object: str) -> Worksheet:
        if object in book.sheetnames:
            sheet: Worksheet = book[object]
            return sheet
        only = book.worksheets[0] if len(book.worksheets) == 1 else None
        if only is not None and only.title == "Sheet" and only.max_row == 1 \
                and only.cell(1, 1).value is None:
            only.title = object  # a brand-new workbook's empty default sheet
            return only
        created: Worksheet = book.create_sheet(object)
        return created

    def _open(self, *, read_only: bool) -> Any:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # openpyxl warns about styles it skips
                return load_workbook(self.file, read_only=read_only, data_only=read_only)
        except (zipfile.BadZipFile, InvalidFileException, KeyError, ValueError) as exc:
            raise PermanentError(f"{self.file.name} is not a readable .xlsx workbook "
                                 f"({type(exc).__name__}: {exc})") from exc
