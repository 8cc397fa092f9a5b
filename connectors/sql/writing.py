"""Batched writes to one table: upserts, inserts, updates, archives and deletes.

One write() call is one transaction. Fast path: the ops are grouped (same kind, same
columns) and each group is one executemany (PostgreSQL/MariaDB send it as one multi-row
statement or pipeline). If the database refuses any row (a constraint, a bad value) that
transaction is rolled back and the batch is applied again op by op, each in a SAVEPOINT,
so the refused rows fail in their own results and the others still land. A failure of the
connection itself (down, deadlock, wrong password) is raised for the whole call.

    create   the record holds every key column -> upsert on the key (repeat-safe);
             else a match key finds an existing row (a column named like the match key, or
             `match` in the table settings) -> update of that row;
             else an auto-increment key -> INSERT, the generated key is the external id;
             else a single text key -> upsert with the canonical id as the key (repeat-safe);
             else the op fails: the new row needs its key.
    update   UPDATE of the written columns by key (key columns are never changed); a key
             with no row fails that op.
    archive  sets the soft_delete column (true, 1 or now); a missing row counts as done.
    delete   DELETE by key; a missing row counts as done.

With an updated_at column, creates and updates that do not set it are stamped with the
current time. Each ok result carries the row as stored (read back in the same transaction),
so the engine fingerprints what the table really holds (a NUMERIC(10,2) turns 12.5 into
"12.50").
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import StatementError

from connectors.sql.dialects import native_upsert_safe, upsert
from connectors.sql.errors import Redactor, is_record_error, record_problem
from connectors.sql.reading import Reader
from connectors.sql.schema import BoundTable, unknown_column
from connectors.sql.values import ValueProblem, Zones, converter, stamp, to_db
from hub.connector import NativeRecord, WriteOp, WriteResult
from hub.errors import PermanentError

Kind = Literal["upsert", "insert", "update", "archive", "delete"]
Key = tuple[Any, ...]
_CHUNK = 500  # keys per IN (...) list


class Failed(Exception):
    """One op cannot be applied; the text says why (it becomes that op's PermanentError)."""


@dataclass(frozen=True)
class Planned:
    """One op turned into database values, ready to send."""

    index: int
    op: WriteOp
    kind: Kind
    values: dict[str, Any]
    key: Key | None = None  # None: the database generates it (insert)
    match: tuple[tuple[sa.Column[Any], Any], ...] = ()  # lookups before a keyless create
    strict: bool = True  # an update of a missing row fails


@dataclass(frozen=True)
class Done:
    """An op that was applied: its external id and its key values."""

    external_id: str
    key: Key
    record: NativeRecord | None = field(default=None, compare=False)


Outcome = Done | Failed


class Writer:
    """Applies WriteOps to one bound table over one connection."""

    def __init__(self, bound: BoundTable, zones: Zones, backend: str, redact: Redactor,
                 reader: Reader) -> None:
        self.bound = bound
        self.table = bound.table
        self.zones = zones
        self.backend = backend
        self.redact = redact
        self.reader = reader
        names = {c.name for c in bound.table.c}
        # Bind names for key values in WHERE must differ from every column name.
        prefix = next(p for p in (f"liaison{'_' * n}k" for n in itertools.count(1))
                      if not any(n.startswith(p) for n in names))
        self.key_params = tuple(f"{prefix}{i}" for i in range(len(bound.key)))
        self.converters = {c.name: converter(c, zones) for c in bound.table.c}

    # -- entry point ----------------------------------------------------------------------

    def write(self, conn: Connection, ops: Sequence[WriteOp]) -> list[WriteResult]:
        """One result per op, in order; raises only for failures of the whole call."""
        outcomes: dict[int, Outcome] = {}
        planned: list[Planned] = []
        for i, op in enumerate(ops):
            try:
                planned.append(self.plan(i, op))
            except Failed as exc:
                outcomes[i] = exc
        if planned:
            try:
                with conn.begin():
                    done = self._fast(conn, planned)
                    self._read_back(conn, done)
            except StatementError as exc:
                if not is_record_error(exc):
                    raise
                with conn.begin():
                    done = self._one_by_one(conn, planned)
                    self._read_back(conn, done)
            outcomes.update(done)
        return [self._result(op, outcomes[i]) for i, op in enumerate(ops)]

    def _result(self, op: WriteOp, outcome: Outcome) -> WriteResult:
        if isinstance(outcome, Failed):
            return WriteResult(op.key, False, external_id=op.external_id,
                               error=PermanentError(str(outcome)))
        ext = op.external_id if op.action != "create" and op.external_id else \
            outcome.external_id
        return WriteResult(op.key, True, external_id=ext, record=outcome.record)

    # -- planning (no I/O) ----------------------------------------------------------------

    def _row(self, key: Key | None) -> str:
        return f"{self.bound.label}, row {self.bound.describe_key(key)}" if key \
            else f"{self.bound.label}, new row"

    def plan(self, index: int, op: WriteOp) -> Planned:
        """The op as database values; Failed naming the table, row and column if it cannot be."""
        bound = self.bound
        key: Key | None = None
        if op.action in ("update", "archive", "delete"):
            if not op.external_id:
                raise Failed(f"{bound.label}: a {op.action} needs the row's external id")
            try:
                key = bound.key_values(op.external_id, self.zones)
            except ValueProblem as exc:
                raise Failed(f"{bound.label}: external id {op.external_id!r} is no key of "
                             f"this table: it {exc}") from None
        if op.action == "delete":
            return Planned(index, op, "delete", {}, key)
        if op.action == "archive":
            return self._archive(index, op, key)
        if key is None:  # a create: name the row by the key it brings, if any
            given = tuple(op.record.get(n) for n in bound.key_names)
            key = given if all(v is not None for v in given) else None
        values = self._values(op.record, key)
        self._stamp(values)
        if op.action == "update":
            for name in bound.key_names:
                values.pop(name, None)  # the key comes from the external id, never changes
            return Planned(index, op, "update", values, key)
        return self._create(index, op, values)

    def _values(self, record: NativeRecord, key: Key | None) -> dict[str, Any]:
        problems: list[str] = []
        values: dict[str, Any] = {}
        for name, value in record.items():
            if name.startswith("__"):
                continue  # reserved: the composite key field and error markers
            convert = self.converters.get(name)
            if convert is None:
                problems.append(unknown_column("", name, "written by the mapping",
                                               self.table))
                continue
            try:
                values[name] = convert(value)
            except ValueProblem as exc:
                problems.append(f"column {name!r} {exc}")
        if problems:
            raise Failed(f"{self._row(key)}: " + "; ".join(problems))
        return values

    def _stamp(self, values: dict[str, Any]) -> None:
        updated = self.bound.updated_at
        if updated is not None and updated.name not in values:
            now = stamp(updated, self.zones)
            if now is not None:
                values[updated.name] = now

    def _archive(self, index: int, op: WriteOp, key: Key | None) -> Planned:
        soft = self.bound.soft_delete
        if soft is None:
            raise Failed(f"{self.bound.label}: cannot archive: no soft_delete column is "
                         f"configured (set {self.bound.settings.object}: {{soft_delete: "
                         "<column>}} under 'tables', or use delete_policy: delete)")
        flag = stamp(soft, self.zones)
        values = {soft.name: True if flag is None else flag}
        if isinstance(soft.type, sa.Integer) and not isinstance(soft.type, sa.Boolean):
            values[soft.name] = 1
        self._stamp(values)
        return Planned(index, op, "archive", values, key, strict=False)

    def _create(self, index: int, op: WriteOp, values: dict[str, Any]) -> Planned:
        bound = self.bound
        given = tuple(values.get(n) for n in bound.key_names)
        if all(v is not None for v in given):
            return Planned(index, op, "upsert", values, given)
        match = self._match(op)
        if bound.generated_key:
            return Planned(index, op, "insert", values, None, match)
        column = bound.key[0]
        if len(bound.key) == 1 and isinstance(column.type, sa.String) and op.canonical_id:
            try:
                derived = to_db(column, op.canonical_id, self.zones)
            except ValueProblem as exc:
                raise Failed(f"{self._row(None)}: key column {column.name!r} {exc} (the "
                             "record's canonical id); map a field to it") from None
            return Planned(index, op, "upsert", {**values, column.name: derived},
                           (derived,), match)
        raise Failed(f"{self._row(None)}: a new row needs a value for key column(s) "
                     f"{', '.join(bound.key_names)}: map a field to "
                     f"{'it' if len(bound.key) == 1 else 'them'} in the mapping (the table "
                     "has no auto-increment key)")

    def _match(self, op: WriteOp) -> tuple[tuple[sa.Column[Any], Any], ...]:
        found: list[tuple[sa.Column[Any], Any]] = []
        for name, value in op.match.items():
            column = self.bound.match.get(name)
            if column is None:
                column = self.table.c.get(name)
            if column is None or value in (None, ""):
                continue
            try:
                found.append((column, to_db(column, value, self.zones)))
            except ValueProblem:
                continue  # a match value that cannot be in this column matches nothing
        return tuple(found)

    # -- applying -------------------------------------------------------------------------

    def _fast(self, conn: Connection, planned: Sequence[Planned]) -> dict[int, Outcome]:
        out: dict[int, Outcome] = {}
        ready: list[Planned] = []
        for p in planned:
            try:
                ready.append(self._resolve(conn, p))
            except Failed as exc:
                out[p.index] = exc
        out.update(self._apply(conn, ready))
        return out

    def _one_by_one(self, conn: Connection, planned: Sequence[Planned]) -> dict[int, Outcome]:
        out: dict[int, Outcome] = {}
        for p in planned:
            try:
                with conn.begin_nested():
                    out.update(self._apply(conn, [self._resolve(conn, p)]))
            except Failed as exc:
                out[p.index] = exc
            except StatementError as exc:
                if not is_record_error(exc):
                    raise
                out[p.index] = Failed(f"{self._row(p.key)}: "
                                      f"{record_problem(exc, self.redact)}")
        return out

    def _apply(self, conn: Connection, ready: Sequence[Planned]) -> dict[int, Outcome]:
        kinds: dict[Kind, list[Planned]] = defaultdict(list)
        for p in ready:
            kinds[p.kind].append(p)
        out: dict[int, Outcome] = {}
        out.update(self._upserts(conn, kinds["upsert"]))
        out.update(self._inserts(conn, kinds["insert"]))
        out.update(self._updates(conn, kinds["update"] + kinds["archive"]))
        out.update(self._deletes(conn, kinds["delete"]))
        return out

    def _resolve(self, conn: Connection, p: Planned) -> Planned:
        """A keyless create whose match values find one row becomes an update of it."""
        if not p.match:
            return p
        key_cols = self.bound.key
        for column, value in p.match:
            rows = conn.execute(sa.select(*key_cols).where(column == value).limit(2)).all()
            if len(rows) > 1:
                raise Failed(f"{self._row(None)}: several rows have {column.name}={value!r}, "
                             "so the match cannot tell which one this record is; make the "
                             "values unique or map the key")
            if rows:
                values = {k: v for k, v in p.values.items() if k not in self.bound.key_names}
                return replace(p, kind="update", key=tuple(rows[0]), values=values, match=(),
                               strict=False)
        return replace(p, match=())

    def _done(self, key: Key) -> Done:
        return Done(self.bound.external_id(key, self.zones), key)

    @staticmethod
    def _groups(planned: Iterable[Planned]) -> list[list[Planned]]:
        groups: dict[tuple[str, ...], list[Planned]] = defaultdict(list)
        for p in planned:
            groups[tuple(sorted(p.values))].append(p)
        return list(groups.values())

    def _upserts(self, conn: Connection, planned: Sequence[Planned]) -> dict[int, Outcome]:
        out: dict[int, Outcome] = {}
        if not native_upsert_safe(self.backend, self.bound.other_unique):
            for p in planned:
                out.update(self._update_or_insert(conn, p))
            return out
        for group in self._groups(planned):
            stmt = upsert(self.table, self.bound.key_names, sorted(group[0].values),
                          self.backend)
            conn.execute(stmt, [p.values for p in group])
            out.update({p.index: self._done(p.key or ()) for p in group})
        return out

    def _update_or_insert(self, conn: Connection, p: Planned) -> dict[int, Outcome]:
        """MySQL with other unique indexes: UPDATE by key, INSERT if no row had it."""
        assert p.key is not None
        changing = {k: v for k, v in p.values.items() if k not in self.bound.key_names}
        where = self._key_where(p.key)
        if changing:
            found = conn.execute(sa.update(self.table).where(where).values(changing)).rowcount
        else:
            found = len(conn.execute(sa.select(*self.bound.key).where(where)).all())
        if not found:
            conn.execute(sa.insert(self.table).values(p.values))
        return {p.index: self._done(p.key)}

    def _inserts(self, conn: Connection, planned: Sequence[Planned]) -> dict[int, Outcome]:
        out: dict[int, Outcome] = {}
        key_cols = self.bound.key
        returning = conn.dialect.insert_returning
        for group in self._groups(planned):
            if returning and len(group) > 1 and group[0].values:
                # One executemany, sent as multi-row INSERTs run one after the other on this
                # connection. The database numbers rows in the order of the VALUES (one
                # sequence/auto-increment counter, counting up), so the generated keys,
                # sorted, belong to the rows in parameter order; concurrent inserts elsewhere
                # may leave gaps between them but never reorder them.
                stmt = sa.insert(self.table).returning(*key_cols)
                keys = sorted(tuple(r) for r in conn.execute(stmt, [p.values for p in group]))
                out.update({p.index: self._done(k) for p, k in zip(group, keys, strict=True)})
                continue
            for p in group:
                one = sa.insert(self.table).values(p.values)
                if returning:
                    key = tuple(conn.execute(one.returning(*key_cols)).one())
                else:
                    key = tuple(conn.execute(one).inserted_primary_key or ())
                out[p.index] = self._done(key)
        return out

    def _key_where(self, key: Key) -> sa.ColumnElement[bool]:
        return sa.and_(*(c == v for c, v in zip(self.bound.key, key, strict=True)))

    def _updates(self, conn: Connection, planned: Sequence[Planned]) -> dict[int, Outcome]:
        out: dict[int, Outcome] = {}
        names = self.key_params
        where = sa.and_(*(c == sa.bindparam(n) for c, n in zip(self.bound.key, names,
                                                                 strict=True)))
        stmt = sa.update(self.table).where(where)
        for group in self._groups(planned):
            keys = [p.key or () for p in group]
            if not group[0].values:  # nothing to set: only check the rows exist
                rows = [self._exists(conn, k) for k in keys]
            else:
                params = [{**p.values, **dict(zip(names, k, strict=True))}
                          for p, k in zip(group, keys, strict=True)]
                matched = conn.execute(stmt, params).rowcount
                if matched == len(group):
                    rows = [1] * len(group)
                else:  # some key has no row: find which, one by one (updates repeat safely)
                    rows = [conn.execute(stmt, [one]).rowcount for one in params]
            for p, k, n in zip(group, keys, rows, strict=True):
                if n or not p.strict:
                    out[p.index] = self._done(k)
                else:
                    out[p.index] = Failed(f"{self._row(k)}: there is no such row (it was "
                                          "deleted or its key changed)")
        return out

    def _exists(self, conn: Connection, key: Key) -> int:
        return len(conn.execute(sa.select(*self.bound.key).where(self._key_where(key))
                                .limit(1)).all())

    def _in_keys(self, keys: Sequence[Key]) -> sa.ColumnElement[bool]:
        cols = self.bound.key
        if len(cols) == 1:
            return cols[0].in_([k[0] for k in keys])
        return sa.tuple_(*cols).in_([sa.tuple_(*k) for k in keys])

    def _deletes(self, conn: Connection, planned: Sequence[Planned]) -> dict[int, Outcome]:
        keys = [p.key or () for p in planned]
        for start in range(0, len(keys), _CHUNK):
            conn.execute(sa.delete(self.table).where(self._in_keys(keys[start:start + _CHUNK])))
        return {p.index: self._done(k) for p, k in zip(planned, keys, strict=True)}

    def _read_back(self, conn: Connection, outcomes: dict[int, Outcome]) -> None:
        """Attach the stored row to every applied create/update (same transaction)."""
        wanted = {i: o for i, o in outcomes.items() if isinstance(o, Done)}
        keys = list({o.key for o in wanted.values()})
        stored: dict[Key, NativeRecord] = {}
        key_cols = self.bound.key
        for start in range(0, len(keys), _CHUNK):
            stmt = sa.select(self.table).where(self._in_keys(keys[start:start + _CHUNK]))
            for row in conn.execute(stmt):
                stored[tuple(row._mapping[c] for c in key_cols)] = self.reader.record(row)
        for i, o in wanted.items():
            outcomes[i] = replace(o, record=stored.get(o.key))
