"""Keyset-paged reads of one table, and the cursors that resume them.

Full read (incremental=False, or no updated_at column): every row ordered by the key, pages
of `page_size` taken with WHERE key > last key (never OFFSET, so rows added or removed
meanwhile do not shift a page). Mid-read cursor {"key": [last key]} plus "mark" (below).
With an updated_at column the full read first notes MAX(updated_at) (the "mark"); its last
cursor is {"updated_at": mark}, so an incremental run after it reads what changed since the
full read STARTED (rows changed while it ran are read again rather than lost). Without an
updated_at column the last cursor is None: every read is a full read.

Incremental read: rows ordered by (updated_at, key); a page ends after (u, k) and the next
starts at updated_at >= u AND (updated_at > u OR key > k), so rows sharing one timestamp
across a page boundary are read exactly once. Mid-read cursor {"updated_at": u, "key": [k]};
the last cursor is {"updated_at": newest u} WITHOUT a key, i.e. inclusive: the next run
reads the rows stamped exactly u again (harmless: unchanged records are skipped) rather
than miss a row written later within the same clock tick. Rows whose updated_at is NULL are
read once, first, by key, when an incremental read starts from nothing (cursor
{"null": true, "key": [k]} while doing so); afterwards only a full read sees them again.

Cursor values are stored as JSON (timestamps in ISO form with their offset or without, as
the column holds them; decimals as text) and turned back into the column's type.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Row
from sqlalchemy.sql import sqltypes

from connectors.sql.dialects import nulls_first
from connectors.sql.schema import KEY_FIELD, BoundTable
from connectors.sql.values import Zones, to_native
from hub.connector import Cursor, NativeRecord, Page
from hub.errors import PermanentError

Execute = Callable[[sa.Executable], Sequence[Row[Any]]]


def encode(value: Any) -> Any:
    """A column value as a JSON value for a cursor."""
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (Decimal, uuid.UUID)):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    return value


def decode(column: sa.Column[Any], value: Any) -> Any:
    """A cursor's JSON value back in `column`'s Python type."""
    if value is None:
        return None
    kind = column.type
    if isinstance(kind, sa.DateTime):
        return datetime.fromisoformat(value)
    if isinstance(kind, sa.Date):
        return date.fromisoformat(value)
    if isinstance(kind, sa.Numeric) and not isinstance(kind, sa.Float):
        return Decimal(str(value))
    if isinstance(kind, sa.Uuid):
        return uuid.UUID(str(value))
    if isinstance(kind, sqltypes._Binary):
        return base64.b64decode(value)
    return value


class Reader:
    """Pages of native records from one bound table."""

    def __init__(self, bound: BoundTable, zones: Zones, backend: str) -> None:
        self.bound = bound
        self.zones = zones
        self.backend = backend
        self.table = bound.table
        self.columns = list(bound.table.c)

    def record(self, row: Row[Any]) -> NativeRecord:
        """A row as a native record: column name -> JSON-friendly value."""
        zones = self.zones
        record = {c.name: to_native(c, v, zones) for c, v in zip(self.columns, row, strict=True)}
        if len(self.bound.key) > 1:
            record[KEY_FIELD] = self.bound.external_id(
                (row._mapping[c] for c in self.bound.key), zones)
        return record

    def pages(self, execute: Execute, cursor: Cursor | None, *, incremental: bool,
              page_size: int) -> Iterator[Page]:
        """Every page from `cursor` on; always at least one (possibly empty) page."""
        size = max(1, page_size)
        try:
            if incremental and self.bound.updated_at is not None:
                yield from self._by_time(execute, self.bound.updated_at, cursor or {}, size)
            else:
                yield from self._by_key(execute, cursor or {}, size, incremental)
        except (ValueError, TypeError) as exc:
            raise PermanentError(f"{self.bound.label}: the stored cursor {cursor!r} does not "
                                 f"fit the table any more ({exc}); run a full refresh "
                                 "(hub sync <flow> --full)") from None

    # -- full reads, by key ------------------------------------------------------------------

    def _key_after(self, last: Sequence[Any]) -> sa.ColumnElement[bool]:
        key = self.bound.key
        values = [decode(c, v) for c, v in zip(key, last, strict=True)]
        after: sa.ColumnElement[bool] = key[0] > values[0] if len(key) == 1 \
            else sa.tuple_(*key) > sa.tuple_(*values)
        return after

    def _by_key(self, execute: Execute, cursor: Cursor, size: int,
                incremental: bool) -> Iterator[Page]:
        updated = self.bound.updated_at
        last = cursor.get("key")
        if not isinstance(last, list):
            last = None
        mark = cursor.get("mark") if last is not None else None
        if last is None and updated is not None and not incremental:
            found = execute(sa.select(sa.func.max(updated)))
            mark = encode(found[0][0]) if found else None
        base = sa.select(self.table).order_by(*self.bound.key).limit(size + 1)
        while True:
            stmt = base.where(self._key_after(last)) if last is not None else base
            rows = list(execute(stmt))
            if len(rows) <= size:
                final = {"updated_at": mark} if mark is not None else None
                yield Page([self.record(r) for r in rows], final)
                return
            rows = rows[:size]
            tail = rows[-1]._mapping
            last = [encode(tail[c]) for c in self.bound.key]
            mid: Cursor = {"key": last}
            if mark is not None:
                mid["mark"] = mark
            yield Page([self.record(r) for r in rows], mid)

    # -- incremental reads, by (updated_at, key) ---------------------------------------------

    def _by_time(self, execute: Execute, updated: sa.Column[Any], cursor: Cursor,
                 size: int) -> Iterator[Page]:
        key = self.bound.key
        last = cursor.get("key") if isinstance(cursor.get("key"), list) else None
        since = cursor.get("updated_at", cursor.get("mark"))
        # "start": nothing read yet; "null": among the NULL-stamped rows; "time": after since.
        phase = "time" if since is not None else "null" if cursor.get("null") and last \
            else "start"
        base = sa.select(self.table).order_by(nulls_first(updated, self.backend), *key) \
            .limit(size + 1)
        while True:
            if phase == "start":
                stmt = base  # the NULL rows sort first, then everything else
            elif phase == "null":
                assert last is not None
                stmt = base.where(sa.or_(updated.is_not(None),
                                         sa.and_(updated.is_(None), self._key_after(last))))
            else:
                moment = decode(updated, since)
                cond = updated >= moment
                if last is not None:
                    cond = sa.and_(cond, sa.or_(updated > moment, self._key_after(last)))
                stmt = base.where(cond)
            rows = list(execute(stmt))
            page = rows[:size]
            if page:
                tail = page[-1]._mapping
                last = [encode(tail[c]) for c in key]
                if tail[updated] is None:
                    phase = "null"
                else:
                    phase, since = "time", encode(tail[updated])
            records = [self.record(r) for r in page]
            if len(rows) <= size:
                final: Cursor | None = {"updated_at": since} if phase == "time" else \
                    {"null": True, "key": last} if phase == "null" else None
                yield Page(records, final)
                return
            yield Page(records, {"updated_at": since, "key": last} if phase == "time"
                       else {"null": True, "key": last})
