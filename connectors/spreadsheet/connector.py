"""The spreadsheet connector: a folder of CSV files or one .xlsx workbook as a system.

See the package docstring (connectors/spreadsheet/__init__.py) for what a sheet must look
like, how cells become record values and the `__error__` convention for unreadable rows.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol

from connectors.spreadsheet.csvfiles import CsvFolder
from connectors.spreadsheet.files import locked
from connectors.spreadsheet.table import Editor, Row, Table, records
from connectors.spreadsheet.xlsxfiles import XlsxWorkbook
from hub.config.model import ConnectionConfig
from hub.connector import (
    BaseConnector,
    Capabilities,
    Cursor,
    EntitySupport,
    Health,
    NativeRecord,
    Page,
    WriteOp,
    WriteResult,
)
from hub.errors import ConnectorError, PermanentError, TransientError

OBJECTS = {
    "company": "companies", "contact": "contacts", "deal": "deals", "invoice": "invoices",
    "payment": "payments", "product": "products", "project": "projects", "task": "tasks",
    "message": "messages",
}
WORKBOOK_SUFFIXES = (".xlsx", ".xlsm")
# An object names a file or sheet: no folders, nothing Excel refuses in a sheet name.
_OBJECT_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_ .-]{0,30}")


class Sheets(Protocol):
    """What the connector needs from a file format (CsvFolder, XlsxWorkbook)."""

    def label(self, object: str) -> str: ...
    def problem(self) -> str | None: ...
    def objects(self) -> list[str]: ...
    def rows(self, object: str) -> Iterator[Row]: ...
    def load(self, object: str) -> Table: ...
    def save(self, object: str, table: Table) -> None: ...
    def text(self, value: Any) -> str: ...
    def cell(self, value: Any) -> Any: ...


class SpreadsheetConnector(BaseConnector):
    """Reads and writes records as rows of CSV files or sheets of an .xlsx workbook."""

    name: ClassVar[str] = "spreadsheet"
    capabilities: ClassVar[Capabilities] = Capabilities(
        entities={entity: EntitySupport(object=obj, read=True, write=True, incremental=True,
                                        deletes=False, archive=True)
                  for entity, obj in OBJECTS.items()},
        batch_size=1000,
        settings={
            "path": "a folder of <object>.csv files, or an .xlsx workbook (one sheet per "
                    "object); relative to the config file",
            "key": "the column holding each record's id (default: id)",
            "modified_column": "a column holding each row's last-modified time; without it "
                               "an incremental read reads everything",
            "delimiter": "CSV field separator (default: ,)",
            "encoding": "CSV file encoding (default: utf-8)",
        },
        reads_in_child=True,  # reading a file changes nothing the engine keeps
    )

    def __init__(self, connection: ConnectionConfig) -> None:
        super().__init__(connection)
        where = f"{connection.where}: " if connection.where else ""
        raw_path = connection.setting("path")
        if not raw_path or not isinstance(raw_path, str):
            raise ConnectorError(f"{where}system {connection.name!r}: the spreadsheet "
                                 "connector needs a 'path' setting (a folder or an .xlsx file)")
        path = Path(raw_path).expanduser()
        if not path.is_absolute():
            path = connection.base_dir / path
        self.key: str = str(connection.setting("key", "id") or "id")
        modified = connection.setting("modified_column")
        self.modified: str | None = str(modified) if modified else None
        delimiter = str(connection.setting("delimiter", ","))
        if len(delimiter) != 1:
            raise ConnectorError(f"{where}system {connection.name!r}: 'delimiter' must be one "
                                 f"character, got {delimiter!r}")
        encoding = str(connection.setting("encoding", "utf-8"))
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise ConnectorError(f"{where}system {connection.name!r}: unknown encoding "
                                 f"{encoding!r} (e.g. utf-8, cp1252, latin-1)") from None
        self.path = path
        self.sheets: Sheets
        if path.suffix.lower() in WORKBOOK_SUFFIXES:
            self.sheets = XlsxWorkbook(path)
            self._folder = path.parent
        else:
            self.sheets = CsvFolder(path, delimiter=delimiter, encoding=encoding)
            self._folder = path

    def check(self) -> Health:
        """The folder (or workbook) exists and can be read; lists the objects found."""
        try:
            problem = self.sheets.problem()
            if problem:
                return Health(ok=False, message=f"{problem} (setting 'path' of system "
                                                f"{self.connection.name!r})")
            found = self.sheets.objects()
        except OSError as exc:
            return Health(ok=False, message=f"cannot read {self.path}: {exc.strerror}")
        listed = ", ".join(found) if found else "none yet"
        return Health(ok=True, message=f"{self.path}: {len(found)} object(s): {listed}")

    def read(self, object: str, cursor: Cursor | None, *, incremental: bool,
             page_size: int) -> Iterator[Page]:
        """Pages of rows as records; a missing file or sheet reads as empty."""
        self._object(object)
        cursor = cursor or {}
        since = cursor.get("since") if incremental else None
        pages = records(self.sheets.label(object), self.sheets.rows(object), key=self.key,
                        modified=self.modified, start_row=int(cursor.get("row", 0)),
                        since=since, seen_max=cursor.get("seen"), page_size=max(1, page_size))
        try:
            for found, next_cursor in pages:
                yield Page(found, next_cursor)
        except OSError as exc:
            raise TransientError(f"cannot read {self.sheets.label(object)}: "
                                 f"{exc.strerror or exc}") from exc

    def fetch(self, object: str, external_id: str) -> NativeRecord | None:
        """The row whose key column holds `external_id` (None if there is none)."""
        for page in self.read(object, None, incremental=False, page_size=1000):
            for record in page.records:
                if record.get(self.key) == external_id:
                    return record
        return None

    def write(self, object: str, ops: Sequence[WriteOp]) -> list[WriteResult]:
        """Apply the ops to the sheet in memory, then replace the file atomically in one go."""
        self._object(object)
        if not ops:
            return []
        if not self._folder.is_dir():
            # A typo in 'path' must not create stray folders: every op fails, visibly.
            error = PermanentError(f"folder {self._folder} does not exist (setting 'path' of "
                                   f"system {self.connection.name!r})")
            return [WriteResult(key=op.key, ok=False, external_id=op.external_id, error=error)
                    for op in ops]
        try:
            with locked(self._folder):
                table = self.sheets.load(object)
                editor = Editor(table, key=self.key, modified=self.modified,
                                text=self.sheets.text, cell=self.sheets.cell)
                results = editor.apply(ops)
                if any(r.ok for r in results):
                    self.sheets.save(object, table)
        except OSError as exc:
            # Nothing was replaced (the write is atomic): the whole batch can be retried.
            raise TransientError(f"cannot write {self.sheets.label(object)}: "
                                 f"{exc.strerror or exc}") from exc
        return results

    def _object(self, object: str) -> None:
        if not _OBJECT_NAME.fullmatch(object):
            raise PermanentError(f"object {object!r} cannot name a file or sheet (letters, "
                                 "digits, '_', '-', '.', spaces; at most 31 characters)")
