"""Format-independent sheet logic: rows -> records (reading) and ops -> rows (writing).

The CSV and XLSX modules only turn files into rows of text cells and back; everything a
sheet *means* (header, key column, error records, upserts) lives here, once.
"""

from __future__ import annotations

import bisect
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from hub.connector import NativeRecord, WriteOp, WriteResult
from hub.errors import PermanentError

ERROR_KEY = "__error__"  # marker key of a record that could not be read (see the package doc)
RAW_KEY = "__raw__"  # the cells of that row, kept so the dead letter holds the payload
ARCHIVED_COLUMN = "archived"
_ID_NAMESPACE = uuid.UUID("6f1c7c36-5b8e-4d59-9a55-3f0f5b0c1a7e")


@dataclass(frozen=True)
class Row:
    """One physical row of a sheet: its line (1-based), text cells and any read problem."""

    line: int
    cells: list[str]
    problem: str | None = None


@dataclass
class Table:
    """A whole sheet in memory for a write: header names and raw cell values per row."""

    label: str  # "contacts.csv" or "crm.xlsx[contacts]", for messages
    header: list[str]
    rows: list[list[Any]]
    extra: dict[str, Any] = field(default_factory=dict)  # format details kept across a save


def header_names(label: str, row: Row) -> list[str]:
    """The stripped column names of a header row; PermanentError if it cannot be used."""
    if row.problem:
        raise PermanentError(f"{label}:{row.line}: the header row {row.problem}")
    names = [cell.strip() for cell in row.cells]
    seen: dict[str, int] = {}
    for position, name in enumerate(names, start=1):
        if name and name in seen:
            raise PermanentError(f"{label}:{row.line}: column {name!r} appears twice in the "
                                 f"header (columns {seen[name]} and {position})")
        seen[name] = position
    return names


def modified_order(value: str) -> tuple[int, Any]:
    """A sort key for modified-column values: ISO 8601 as instants, anything else as text."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return (1, value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # a sheet has no time zone: read it as UTC
    return (0, moment)


def records(label: str, rows: Iterator[Row], *, key: str, modified: str | None,
            start_row: int, since: str | None, seen_max: str | None,
            page_size: int) -> Iterator[tuple[list[NativeRecord], dict[str, Any] | None]]:
    """Pages of records from the rows of one sheet, each with the cursor that resumes after it.

    Rows are counted from the first data row; `start_row` rows are skipped (a resumed read).
    With `since`, only rows whose modified value is at or after it (or empty: we cannot
    tell, so they are read again) are returned. The last page carries the final cursor:
    {"since": newest modified value seen} when there is a modified column, else None.
    """
    header_row = next(rows, None)
    if header_row is None:  # an empty file: nothing to read
        yield [], _final(seen_max or since)
        return
    header = header_names(label, header_row)
    width = len(header)
    if key not in header:
        raise PermanentError(f"{label}:{header_row.line}: no {key!r} column in the header "
                             f"(setting 'key'); columns: {', '.join(n for n in header if n)}")
    key_at = header.index(key)
    mod_at = header.index(modified) if modified and modified in header else None
    since_order = modified_order(since) if since else None
    max_order = modified_order(seen_max) if seen_max else None
    has_blank_name = "" in header
    keys_seen: dict[str, int] = {}
    held: tuple[list[NativeRecord], dict[str, Any] | None] | None = None
    page: list[NativeRecord] = []
    scanned = 0
    for row in rows:
        scanned += 1
        cells = row.cells
        key_value = cells[key_at] if key_at < len(cells) else ""
        first = row.line
        if key_value:
            first = keys_seen.setdefault(key_value, row.line)
        if scanned <= start_row:
            continue
        if mod_at is not None:
            stamp = cells[mod_at] if mod_at < len(cells) else ""
            if stamp:
                order = modified_order(stamp)
                if max_order is None or order > max_order:
                    max_order, seen_max = order, stamp
                if since_order is not None and order < since_order:
                    continue
        record: NativeRecord
        if row.problem:
            record = {ERROR_KEY: f"{label}:{row.line}: the row {row.problem}", RAW_KEY: cells}
        elif len(cells) > width and any(cells[width:]):
            record = {ERROR_KEY: f"{label}:{row.line}: the row has {len(cells)} cells but the "
                                 f"header has {width}", RAW_KEY: cells}
        else:
            record = {name: value for name, value in zip(header, cells) if value}
            if has_blank_name:
                record.pop("", None)
            if not record:
                continue  # a blank line: nothing to sync
            if not key_value:
                record = {ERROR_KEY: f"{label}:{row.line}: the {key!r} column is empty",
                          RAW_KEY: cells}
            elif first != row.line:
                record = {ERROR_KEY: f"{label}:{row.line}: {key} {key_value!r} is also on "
                                     f"line {first}", RAW_KEY: cells}
        page.append(record)
        if len(page) >= page_size:
            # Hold the full page: only the next record proves it is not the last one.
            if held is not None:
                yield held
            held = (page, _middle(scanned, since, seen_max))
            page = []
    if held is not None:
        if not page:
            yield held[0], _final(seen_max or since)
            return
        yield held
    yield page, _final(seen_max or since)


def _middle(scanned: int, since: str | None, seen_max: str | None) -> dict[str, Any]:
    cursor: dict[str, Any] = {"row": scanned}
    if since:
        cursor["since"] = since
    if seen_max:
        cursor["seen"] = seen_max
    return cursor


def _final(newest: str | None) -> dict[str, Any] | None:
    return {"since": newest} if newest else None


def generated_id(op_key: str) -> str:
    """A new key value derived from the engine's idempotency key: a repeated create reuses it."""
    return uuid.uuid5(_ID_NAMESPACE, op_key).hex


def now_stamp() -> str:
    """The current UTC time as RFC 3339 with microseconds (written to the modified column)."""
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class Editor:
    """Applies write ops to a Table in memory; the caller saves the table atomically after."""

    def __init__(self, table: Table, *, key: str, modified: str | None,
                 text: Callable[[Any], str], cell: Callable[[Any], Any]) -> None:
        self.table = table
        self.key = key
        self.modified = modified
        self.text = text  # raw cell value -> text, as reads see it
        self.cell = cell  # written record value -> raw cell value
        self.columns = {name: i for i, name in enumerate(table.header) if name}
        if key not in self.columns:
            self._add_column(key)
        key_at = self.columns[key]
        self.index: dict[str, int] = {}
        for i, row in enumerate(table.rows):
            value = text(row[key_at]) if key_at < len(row) else ""
            if value:
                self.index.setdefault(value, i)
        # Column name -> match value -> rows holding it (ascending; the first one matches).
        # Built on first use per column, then kept up to date by every change: rebuilding
        # it per op made a batch of creates quadratic in the sheet's length.
        self._match: dict[str, dict[str, list[int]]] = {}
        self.removed: set[int] = set()

    def apply(self, ops: Sequence[WriteOp]) -> list[WriteResult]:
        """One result per op, in order; per-record failures are results, not raised."""
        results = []
        for op in ops:
            try:
                results.append(self._one(op))
            except PermanentError as exc:
                results.append(WriteResult(key=op.key, ok=False, external_id=op.external_id,
                                           error=exc))
        if self.removed:
            self.table.rows = [r for i, r in enumerate(self.table.rows) if i not in self.removed]
        width = len(self.table.header)
        blank = self.cell(None)
        for row in self.table.rows:
            if row and len(row) < width:  # blank lines stay blank
                row.extend([blank] * (width - len(row)))
        return results

    def _one(self, op: WriteOp) -> WriteResult:
        if op.action == "create":
            values = self._cells(op.record)  # convert first: a bad value changes nothing
            wanted = self.text(self.cell(op.record.get(self.key)))
            external_id = wanted or op.external_id or generated_id(op.canonical_id or op.key)
            at = self.index.get(external_id)
            if at is None and not wanted:
                at = self._by_match(op)
                if at is not None:
                    external_id = self.text(self.table.rows[at][self.columns[self.key]])
            if at is None:
                at = len(self.table.rows)
                self.table.rows.append([])
                self.index[external_id] = at
            self._set(at, values, external_id)
        elif op.action == "delete":
            external_id = self._required_id(op)
            at = self.index.pop(external_id, None)
            if at is not None:  # deleting what is already gone is done, not an error
                self.removed.add(at)
                row = self.table.rows[at]
                for name, index in self._match.items():
                    self._unindex(index, self._match_value(row, self.columns[name]), at)
            return WriteResult(key=op.key, ok=True, external_id=external_id)
        else:
            external_id = self._required_id(op)
            at = self.index.get(external_id)
            if at is None:
                raise PermanentError(f"{self.table.label}: no row with {self.key} "
                                     f"{external_id!r} to {op.action}")
            record = {ARCHIVED_COLUMN: "true"} if op.action == "archive" else op.record
            self._set(at, self._cells(record), external_id, stamp=op.action == "update")
        return WriteResult(key=op.key, ok=True, external_id=external_id,
                           record=self._as_record(at))

    def _required_id(self, op: WriteOp) -> str:
        if not op.external_id:
            raise PermanentError(f"{self.table.label}: a {op.action} needs the record's "
                                 f"{self.key} (external id)")
        return op.external_id

    def _by_match(self, op: WriteOp) -> int | None:
        """An existing row whose column named like a match key holds the same value."""
        for name, value in op.match.items():
            if name not in self.columns or not value:
                continue
            index = self._match.get(name)
            if index is None:
                index = self._match[name] = self._match_index(self.columns[name])
            rows = index.get(str(value).strip().lower())
            if rows:
                return rows[0]
        return None

    def _match_value(self, row: list[Any], column: int) -> str:
        return self.text(row[column]).strip().lower() if column < len(row) else ""

    def _match_index(self, column: int) -> dict[str, list[int]]:
        index: dict[str, list[int]] = {}
        for i, row in enumerate(self.table.rows):
            if i not in self.removed:
                value = self._match_value(row, column)
                if value:
                    index.setdefault(value, []).append(i)
        return index

    @staticmethod
    def _unindex(index: dict[str, list[int]], value: str, at: int) -> None:
        rows = index.get(value)
        if rows and at in rows:
            rows.remove(at)
            if not rows:
                del index[value]

    def _cells(self, record: NativeRecord) -> dict[str, Any]:
        """The record's columns as cell values; reserved `__` keys are not columns."""
        return {name: self.cell(value) for name, value in record.items()
                if isinstance(name, str) and name and not name.startswith("__")}

    def _set(self, at: int, values: dict[str, Any], external_id: str, *,
             stamp: bool = True) -> None:
        for name, value in values.items():
            self._put(at, name, value)
        self._put(at, self.key, self.cell(external_id))
        if stamp and self.modified and not self.text(values.get(self.modified)):
            self._put(at, self.modified, self.cell(now_stamp()))

    def _put(self, at: int, name: str, value: Any) -> None:
        row = self.table.rows[at]
        column = self.columns.get(name)
        if column is None:
            column = self._add_column(name)
        if column >= len(row):
            row.extend([self.cell(None)] * (column + 1 - len(row)))
        index = self._match.get(name)
        if index is not None:
            old = self._match_value(row, column)
            row[column] = value
            new = self._match_value(row, column)
            if new != old:
                self._unindex(index, old, at)
                if new:
                    bisect.insort(index.setdefault(new, []), at)
            return
        row[column] = value

    def _add_column(self, name: str) -> int:
        self.table.header.append(name)
        self.columns[name] = len(self.table.header) - 1
        return self.columns[name]

    def _as_record(self, at: int) -> NativeRecord:
        row = self.table.rows[at]
        out = {}
        for name, value in zip(self.table.header, row):
            text = self.text(value)
            if name and text:
                out[name] = text
        return out
