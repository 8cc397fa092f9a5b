"""The one module that issues SQL. Everything above it speaks in rows and dicts.

Hot-path calls take a page's worth of keys and issue one statement (IN lists, executemany
upserts), never one statement per record, on the driver's own cursor (`_cursor`).
SQLAlchemy and driver exceptions are translated to StoreError here: nothing above the
store sees a driver exception.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from typing import Any, NamedTuple, NoReturn, TypeVar

import orjson
from sqlalchemy import Connection, Table, and_, case, delete, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.sql.elements import ColumnElement

from hub.digests import sha256_hex
from hub.errors import StoreError, StoreUnavailable
from hub.store import checkpoint
from hub.store import tables as t
from hub.store.db import ensure_ready, make_engine, migrate, redact_url, sqlite_file

log = logging.getLogger("hub.store")

T = TypeVar("T")
# How long a long-running process (worker, scheduler, dashboard) waits at start for a
# database that is not answering yet: in a compose or Kubernetes start-up the database is
# often still starting, and a process that exits at once only restarts into the same wait.
STORE_WAIT_SECONDS = 60.0
IN_CHUNK = 500  # stay well below SQLite's bound-parameter limit
AUDIT_CHUNK = 5000  # audit events a chain check reads per (short) transaction


def now_iso() -> str:
    """The current time as an RFC 3339 UTC string with microseconds."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def iso_in(seconds: float) -> str:
    """An RFC 3339 UTC timestamp `seconds` from now."""
    return (datetime.now(UTC) + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def dumps(value: Any) -> str:
    """Serialise to compact JSON text (orjson), keys sorted for stable storage."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def loads(text: str | None) -> Any:
    """Parse JSON text written by `dumps`."""
    return orjson.loads(text) if text else None


def encode_sources(sources: Mapping[str, Sequence[Any]]) -> str:
    """Per-field provenance as stored: fields grouped by their shared provenance.

    `{"a": P, "b": P, "c": Q}` is stored as `[[["a", "b"], *P], [["c"], *Q]]`. A record
    read from one system has one provenance for all its fields, so this is a fraction of
    the size of the field-by-field form (measured on an ingest: the database 13% smaller,
    a tenth fewer pages written). One provenance for every field is checked in C;
    otherwise fields are grouped by the provenance *object* (the merge shares one list
    among the fields it sets), which costs no hashing: equal but separate lists are simply
    stored in separate groups.
    """
    if not sources:
        return "[]"
    provs = list(sources.values())
    first = provs[0]
    if provs.count(first) == len(provs):  # the usual case, without a Python loop
        return encode_shared_source(sources, first)
    groups: dict[int, list[Any]] = {}
    for name, prov in sources.items():
        group = groups.get(id(prov))
        if group is None:
            groups[id(prov)] = [[name], *prov]
        else:
            group[0].append(name)
    return orjson.dumps(list(groups.values())).decode()


def encode_shared_source(fields: Iterable[str], provenance: Sequence[Any]) -> str:
    """`encode_sources` of fields that all share one provenance (a record created from one
    system's data), without building the {field: provenance} dict first."""
    return orjson.dumps([[list(fields), *provenance]]).decode()


def decode_sources(text: str | None) -> dict[str, list[Any]]:
    """The {field: provenance} of `encode_sources` text (or of the older field-by-field
    JSON object, which databases written before the grouped form still hold)."""
    if not text:
        return {}
    raw = orjson.loads(text)
    if isinstance(raw, dict):
        return raw
    out: dict[str, list[Any]] = {}
    for group in raw:
        prov = group[1:]
        for name in group[0]:
            out[name] = prov
    return out


def _chunks(items: Sequence[T], size: int = IN_CHUNK) -> Iterator[Sequence[T]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


class LinkRow(NamedTuple):
    """A record's id in one system, and the fingerprint of it as that system sees it.

    NamedTuples here and below: the hot path makes one per record looked up.
    """

    canonical_id: str
    external_id: str
    fingerprint: str


class RecordRow(NamedTuple):
    """A canonical record as stored."""

    id: str
    entity: str
    data: dict[str, Any]
    sources: dict[str, list[Any]]
    fingerprint: str
    stub: bool
    deleted: bool
    created_at: str
    updated_at: str


class AuditInput(NamedTuple):
    """An audit event before the chain assigns its sequence number and hash.

    A NamedTuple (one is made per change on the hot path; cheaper than a frozen dataclass).
    """

    entity: str
    action: str
    canonical_id: str | None = None
    system: str | None = None
    external_id: str | None = None
    diff: Mapping[str, Any] | str | None = None  # str: as stored (hub.canonical.diffs)
    run_id: int | None = None
    flow: str | None = None


@dataclass(frozen=True)
class VerifyResult:
    """The outcome of checking the audit chain.

    `checked`: the events this check re-hashed (on failure: those before `bad_seq`).
    `trusted`: the check started after event `trusted`, whose stored hash it compared with
    the checkpoint; events 1..trusted were found intact by the check at `trusted_at` and
    were not read again (0: a full check from event 1).
    """

    ok: bool
    checked: int
    bad_seq: int | None = None
    message: str = ""
    trusted: int = 0
    trusted_at: str | None = None


@dataclass(frozen=True)
class AuditCheckpoint:
    """How far the audit chain was last found intact (the one row of audit_verified)."""

    seq: int  # events 1..seq were found intact at verified_at
    hash: str  # event seq's hash then
    verified_at: str
    full_seq: int  # the last full check that passed read events 1..full_seq (0: none)
    full_at: str | None


def _audit_filters(c: Any, system: str | None, flow: str | None, since: str | None,
                   until: str | None) -> list[ColumnElement[bool]]:
    """The search's conditions on audit_events or audit_batches (both have these columns)."""
    conds: list[ColumnElement[bool]] = []
    if system:
        conds.append(c.system == system)
    if flow:
        conds.append(c.flow == flow)
    if since:
        conds.append(c.at >= since)
    if until:
        conds.append(c.at < until)
    return conds


def event_hash(prev_hash: str, seq: int, at: str, run_id: int | None, flow: str | None,
               entity: str, canonical_id: str | None, system: str | None,
               external_id: str | None, action: str, diff: str) -> str:
    """The chain hash of one event: covers its position, content and the previous hash."""
    return sha256_hex(orjson.dumps([seq, at, run_id, flow, entity, canonical_id, system,
                                    external_id, action, diff, prev_hash]))


class Store:
    """The database behind Liaison, opened from a URL (SQLite file or PostgreSQL)."""

    def __init__(self, url: str, *, auto_migrate: bool = False, wait: float = 0.0) -> None:
        """Open the store; with `wait`, a database that does not answer yet (still starting,
        failing over) is tried again for up to that many seconds before giving up."""
        self.url = url
        self.engine = make_engine(url)
        # The driver's exception base (sqlite3.Error, psycopg.Error): the hot path's
        # statements run on the driver's cursor, so their errors arrive untranslated.
        self._driver_error: type[Exception] = self.engine.dialect.loaded_dbapi.Error
        deadline = time.monotonic() + wait
        pause = 0.5
        while True:
            try:
                ensure_ready(self.engine, auto_migrate=auto_migrate)
                break
            except StoreUnavailable as exc:
                left = deadline - time.monotonic()
                if left <= 0:
                    self.engine.dispose()
                    raise
                pause = min(pause, left)
                log.warning("%s; trying again in %.1f s", exc, pause)
                time.sleep(pause)
                pause = min(pause * 2, 10.0)
        self.dialect = self.engine.dialect.name
        self._mark = "?" if self.dialect == "sqlite" else "%s"  # the driver's placeholder
        self._upserts: dict[tuple[Any, ...], str] = {}
        # An SQLite file's log is checkpointed in the background (hub.store.checkpoint).
        self._wal_path = sqlite_file(self.engine)
        if self._wal_path is not None:
            checkpoint.watch(self._wal_path)

    # -- plumbing ----------------------------------------------------------------------

    @classmethod
    def migrate(cls, url: str) -> tuple[str | None, str | None]:
        """Apply pending migrations to the database at `url`; returns (before, after)."""
        engine = make_engine(url)
        try:
            return migrate(engine)
        finally:
            engine.dispose()

    def close(self) -> None:
        """Close every pooled connection."""
        if self._wal_path is not None:
            checkpoint.unwatch(self._wal_path)
            self._wal_path = None
        self.engine.dispose()

    def ping(self) -> None:
        """A trivial query: StoreError if the database does not answer (for /healthz)."""
        with self.connect() as conn:
            conn.execute(select(1)).scalar_one()

    @contextmanager
    def errors(self) -> Iterator[None]:
        """Translate driver and SQLAlchemy errors into StoreError: the one boundary."""
        try:
            yield
        except SQLAlchemyError as exc:
            # A failing connection is told apart from a bad statement here, at the boundary:
            # callers resume after the first and fail on the second.
            gone = isinstance(exc, OperationalError | InterfaceError) or bool(
                getattr(exc, "connection_invalidated", False))
            self._raise(exc, gone)
        except self._driver_error as exc:
            # From `_cursor`: the same split, by the driver's (PEP 249) exception classes.
            dbapi = self.engine.dialect.loaded_dbapi
            self._raise(exc, isinstance(exc, dbapi.OperationalError | dbapi.InterfaceError))

    def _raise(self, exc: Exception, gone: bool) -> NoReturn:
        kind = StoreUnavailable if gone else StoreError
        raise kind(f"database error on {redact_url(self.url)}: "
                   f"{str(exc).splitlines()[0]}") from None

    @staticmethod
    def _cursor(conn: Connection) -> Any:
        """A cursor of the driver under `conn`, in `conn`'s transaction, for hot-path SQL.

        SQLAlchemy's work around each statement (an execution context, a result and its
        metadata) was about 5% of ingest's engine instructions, spent on the few large
        statements a page issues; their SQL is driver-level text already (the same on
        SQLite and PostgreSQL), so they go to the driver directly. A connection not yet in a
        transaction begins one first, as SQLAlchemy's autobegin would: on SQLite the
        driver would otherwise run the statement outside the caller's transaction.
        Driver errors are translated by `errors()` like SQLAlchemy's.
        """
        if not conn.in_transaction():
            conn.begin()
        return conn.connection.driver_connection.cursor()  # type: ignore[union-attr]

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A transaction: committed when the block ends, rolled back if it raises."""
        with self.errors(), self.engine.begin() as conn:
            yield conn

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """A read connection (no transaction kept open after the block)."""
        with self.errors(), self.engine.connect() as conn:
            yield conn

    def _insert(self, table: Table) -> Any:
        if self.dialect == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    def _upsert(self, conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]],
                keys: Sequence[str], update_cols: Sequence[str] | None = None) -> None:
        """INSERT ... ON CONFLICT upsert of many rows in one driver-level executemany.

        The hot path writes a page's rows per table per transaction; going through the
        driver directly (the same SQL on SQLite and PostgreSQL) costs a few microseconds
        a row, where compiling Core statements per call cost tens.
        """
        if not rows:
            return
        cols = tuple(rows[0])
        upd = tuple(update_cols if update_cols is not None else
                    [c for c in cols if c not in keys])
        shape = (table.name, cols, tuple(keys), upd)
        sql = self._upserts.get(shape)
        if sql is None:
            marks = ", ".join([self._mark] * len(cols))
            conflict = ", ".join(keys)
            action = (f"DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in upd)}"
                      if upd else "DO NOTHING")
            sql = (f"INSERT INTO {table.name} ({', '.join(cols)}) VALUES ({marks}) "
                   f"ON CONFLICT ({conflict}) {action}")
            self._upserts[shape] = sql
        pick = itemgetter(*cols)  # a row's values as a tuple, in C
        self._cursor(conn).executemany(sql, list(map(pick, rows)) if len(cols) > 1 else
                                       [(pick(r),) for r in rows])

    def _select_in(self, conn: Connection, sql: str, params: Sequence[Any],
                   values: Sequence[Any]) -> list[Any]:
        """Run `sql` ending in `IN ({in})` for the values, in chunks, at driver level."""
        out: list[Any] = []
        cur = self._cursor(conn)
        for chunk in _chunks(list(values)):
            marks = ", ".join([self._mark] * len(chunk))
            cur.execute(sql.format(marks=marks), (*params, *chunk))
            out.extend(cur.fetchall())
        return out

    # -- records -----------------------------------------------------------------------

    def get_records(self, conn: Connection, ids: Iterable[str]) -> dict[str, RecordRow]:
        """Canonical records by id."""
        out: dict[str, RecordRow] = {}
        sql = ("SELECT id, entity, data, sources, fingerprint, stub, deleted, created_at, "
               "updated_at FROM records WHERE id IN ({marks})")
        for row in self._select_in(conn, sql, (), list(dict.fromkeys(ids))):
            out[row[0]] = RecordRow(row[0], row[1], orjson.loads(row[2]), decode_sources(row[3]),
                                    row[4], bool(row[5]), bool(row[6]), row[7], row[8])
        return out

    def upsert_records(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Insert or replace canonical records (rows carry every column but created_at on update)."""
        self._upsert(conn, t.records, rows, ["id"],
                     ["data", "sources", "fingerprint", "stub", "deleted", "updated_at",
                      "schema_version"])

    def insert_stubs(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Create placeholder records for references whose record has not been read yet."""
        self._upsert(conn, t.records, rows, ["id"], [])

    def count_records(self, conn: Connection, entity: str | None = None) -> int:
        """How many live (non-stub) canonical records there are."""
        q = select(func.count()).select_from(t.records).where(t.records.c.stub.is_(False))
        if entity:
            q = q.where(t.records.c.entity == entity)
        return int(conn.execute(q).scalar_one())

    def live_records_by_entity(self, conn: Connection) -> dict[str, int]:
        """How many live canonical records (neither stubs nor deleted) each entity has."""
        c = t.records.c
        q = (select(c.entity, func.count()).where(c.stub.is_(False), c.deleted.is_(False))
             .group_by(c.entity))
        return {str(row[0]): int(row[1]) for row in conn.execute(q)}

    # -- links -------------------------------------------------------------------------

    def links_by_external(self, conn: Connection, system: str, entity: str,
                          external_ids: Iterable[str]) -> dict[str, LinkRow]:
        """Links of `system` keyed by the system's own ids."""
        sql = (f"SELECT canonical_id, external_id, fingerprint FROM links WHERE system = {self._mark} "
               f"AND entity = {self._mark} AND external_id IN ({{marks}})")
        rows = self._select_in(conn, sql, (system, entity), list(dict.fromkeys(external_ids)))
        return {r[1]: LinkRow(r[0], r[1], r[2]) for r in rows}

    def links_by_canonical(self, conn: Connection, system: str, entity: str,
                           canonical_ids: Iterable[str]) -> dict[str, LinkRow]:
        """Links of `system` keyed by canonical id."""
        sql = (f"SELECT canonical_id, external_id, fingerprint FROM links WHERE system = {self._mark} "
               f"AND entity = {self._mark} AND canonical_id IN ({{marks}})")
        rows = self._select_in(conn, sql, (system, entity), list(dict.fromkeys(canonical_ids)))
        return {r[0]: LinkRow(r[0], r[1], r[2]) for r in rows}

    def upsert_links(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Insert or update links (system, entity, external_id, canonical_id, fingerprint...)."""
        self._upsert(conn, t.links, rows, ["system", "entity", "external_id"],
                     [k for k in rows[0] if k not in ("system", "entity", "external_id")]
                     if rows else [])

    def delete_links(self, conn: Connection, system: str, entity: str,
                     canonical_ids: Sequence[str]) -> None:
        """Forget the links of records removed from `system`."""
        c = t.links.c
        for chunk in _chunks(list(canonical_ids)):
            conn.execute(delete(t.links).where(c.system == system, c.entity == entity,
                                               c.canonical_id.in_(chunk)))

    def mark_seen(self, conn: Connection, system: str, entity: str,
                  external_ids: Sequence[str], run_id: int) -> None:
        """Record that a full refresh read these records (the rest may have been deleted)."""
        c = t.links.c
        for chunk in _chunks(list(external_ids)):
            conn.execute(update(t.links).where(c.system == system, c.entity == entity,
                                               c.external_id.in_(chunk))
                         .values(seen_run=run_id))

    def unseen_links(self, conn: Connection, system: str, entity: str,
                     run_id: int) -> list[LinkRow]:
        """Links a full refresh did not see: their records are gone from the system."""
        c = t.links.c
        q = select(c.canonical_id, c.external_id, c.fingerprint).where(
            c.system == system, c.entity == entity,
            or_(c.seen_run.is_(None), c.seen_run != run_id))
        return [LinkRow(r.canonical_id, r.external_id, r.fingerprint) for r in conn.execute(q)]

    # -- match keys --------------------------------------------------------------------

    def match_lookup(self, conn: Connection, entity: str,
                     keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """Canonical ids owning the given (key name, value) pairs."""
        by_name: dict[str, list[str]] = {}
        for name, value in dict.fromkeys(keys):
            by_name.setdefault(name, []).append(value)
        out: dict[tuple[str, str], str] = {}
        sql = (f"SELECT name, value, canonical_id FROM match_keys WHERE entity = {self._mark} AND "
               f"name = {self._mark} AND value IN ({{marks}})")
        for name, values in by_name.items():
            for row in self._select_in(conn, sql, (entity, name), values):
                out[(row[0], row[1])] = row[2]
        return out

    def match_values_of(self, conn: Connection, entity: str, name: str,
                        canonical_ids: Iterable[str]) -> dict[str, str]:
        """canonical id -> its value of match key `name` (records without one left out)."""
        sql = (f"SELECT canonical_id, value FROM match_keys WHERE entity = {self._mark} AND "
               f"name = {self._mark} AND canonical_id IN ({{marks}})")
        return {row[0]: row[1] for row in self._select_in(
            conn, sql, (entity, name), list(dict.fromkeys(canonical_ids)))}

    def replace_match_keys(self, conn: Connection, entity: str,
                           keys: Mapping[str, Mapping[str, str]],
                           new: frozenset[str] | set[str] = frozenset()) -> None:
        """Set each record's match keys; a key another record already owns stays with it.

        Records in `new` were created in this transaction and have no keys to remove.
        """
        if not keys:
            return
        c = t.match_keys.c
        ids = [cid for cid in keys if cid not in new]
        for chunk in _chunks(ids):
            # By canonical id alone (ids are unique across entities): with `entity = ?` as
            # well, SQLite (no ANALYZE statistics) picks the primary key's `entity` prefix
            # and scans every key of the entity, which made ingest slow down as it grew.
            conn.execute(delete(t.match_keys).where(c.canonical_id.in_(chunk)))
        rows = [{"entity": entity, "name": n, "value": v, "canonical_id": cid}
                for cid, kv in keys.items() for n, v in kv.items()]
        self._upsert(conn, t.match_keys, rows, ["entity", "name", "value"], [])

    # -- cursors -----------------------------------------------------------------------

    def get_cursor(self, conn: Connection, flow: str, system: str) -> dict[str, Any] | None:
        """The committed cursor of a flow on one source."""
        c = t.cursors.c
        row = conn.execute(select(c.value).where(c.flow == flow, c.system == system)).first()
        return loads(row.value) if row else None

    def set_cursor(self, conn: Connection, flow: str, system: str,
                   cursor: Mapping[str, Any] | None) -> None:
        """Move a flow's cursor (call only in the transaction that commits the page)."""
        self._upsert(conn, t.cursors, [{"flow": flow, "system": system, "value": dumps(cursor),
                                        "updated_at": now_iso()}], ["flow", "system"])

    def reset_cursors(self, conn: Connection, flow: str) -> None:
        """Forget where a flow had got to (the next run reads everything)."""
        conn.execute(delete(t.cursors).where(t.cursors.c.flow == flow))

    def records_missing_in(self, conn: Connection, entity: str, sources: Sequence[str],
                           target: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """(id, data) of live records that a source system holds and `target` has no link
        to and is not already owed: what a new flow or a new target still has to receive."""
        r, lk, ob = t.records.c, t.links.c, t.outbox.c
        src = select(lk.canonical_id).where(lk.entity == entity, lk.system.in_(sources))
        there = select(lk.canonical_id).where(lk.entity == entity, lk.system == target)
        owed = select(ob.canonical_id).where(ob.system == target)
        q = (select(r.id, r.data).where(r.entity == entity, r.stub.is_(False),
                                        r.deleted.is_(False), r.id.in_(src),
                                        r.id.not_in(there), r.id.not_in(owed))
             .order_by(r.id))
        for row in conn.execute(q):
            yield row[0], loads(row[1])

    # -- outbox ------------------------------------------------------------------------

    def outbox_add(self, conn: Connection, flow: str, system: str,
                   canonical_ids: Iterable[str], run_id: int | None) -> None:
        """Owe a delivery of these records to `system`; a delivery already owed is kept."""
        now = now_iso()
        rows = [{"flow": flow, "system": system, "canonical_id": cid, "run_id": run_id,
                 "attempts": 0, "next_attempt_at": now, "created_at": now}
                for cid in dict.fromkeys(canonical_ids)]
        if rows:
            ins = self._insert(t.outbox)
            # A record changed again before delivery still needs only one delivery, now.
            # (Through Core, not `_upsert`: that measured the same speed and 11 MB more
            # peak memory on the full-flow benchmark, for a reason not found.)
            conn.execute(ins.on_conflict_do_update(
                index_elements=["flow", "system", "canonical_id"],
                set_={"next_attempt_at": ins.excluded.next_attempt_at,
                      "run_id": ins.excluded.run_id}), rows)

    def outbox_due(self, conn: Connection, flow: str, system: str, limit: int,
                   after_id: int = 0) -> list[Any]:
        """Deliveries owed to `system` that are due now, oldest first."""
        c = t.outbox.c
        q = (select(t.outbox).where(c.flow == flow, c.system == system,
                                    c.next_attempt_at <= now_iso(), c.id > after_id)
             .order_by(c.id).limit(limit))
        return list(conn.execute(q))

    def outbox_next_due(self, conn: Connection, flow: str, system: str) -> str | None:
        """When the earliest delivery owed to `system` by `flow` is due."""
        c = t.outbox.c
        return conn.execute(select(func.min(c.next_attempt_at)).where(
            c.flow == flow, c.system == system)).scalar()

    def outbox_due_targets(self, conn: Connection, now: str) -> list[tuple[str, str]]:
        """(flow, target) pairs with deliveries due now."""
        c = t.outbox.c
        q = select(c.flow, c.system).where(c.next_attempt_at <= now).distinct()
        return [(r[0], r[1]) for r in conn.execute(q)]

    def outbox_done(self, conn: Connection, ids: Sequence[int]) -> None:
        """Deliveries that ended (written, unchanged or dead-lettered)."""
        for chunk in _chunks(list(ids)):
            conn.execute(delete(t.outbox).where(t.outbox.c.id.in_(chunk)))

    def outbox_retry(self, conn: Connection, row_id: int, attempts: int, delay: float,
                     error: str) -> None:
        """Put a delivery off until a transient failure may have passed."""
        conn.execute(update(t.outbox).where(t.outbox.c.id == row_id).values(
            attempts=attempts, next_attempt_at=iso_in(delay), last_error=error[:2000]))

    def outbox_count(self, conn: Connection, flow: str | None = None) -> int:
        """How many deliveries are owed (all flows, or one)."""
        q = select(func.count()).select_from(t.outbox)
        if flow:
            q = q.where(t.outbox.c.flow == flow)
        return int(conn.execute(q).scalar_one())

    # -- webhooks ----------------------------------------------------------------------

    # -- leases ------------------------------------------------------------------------

    def acquire_lease(self, conn: Connection, name: str, holder: str, ttl: float,
                      *, dead: Callable[[str], bool] | None = None) -> int | None:
        """Take the lease `name` for `holder` for `ttl` seconds; its fencing token, or None.

        Granted when nobody holds it, when it expired, when `holder` already holds it, or
        when `dead(current_holder)` says the holder's process is gone. Every grant to a new
        holder increments the token, so the previous holder's writes can be refused.
        """
        m = self._mark
        lock = " FOR UPDATE" if self.dialect == "postgresql" else ""
        row = conn.exec_driver_sql(
            f"SELECT holder, token, expires_at FROM leases WHERE name = {m}{lock}",
            (name,)).first()
        expires = iso_in(ttl)
        if row is None:
            res = conn.exec_driver_sql(
                f"INSERT INTO leases (name, holder, token, expires_at) VALUES ({m}, {m}, 1, {m}) "
                "ON CONFLICT (name) DO NOTHING", (name, holder, expires))
            return 1 if res.rowcount == 1 else None
        current, token, until = str(row[0]), int(row[1]), str(row[2])
        if current == holder:
            conn.exec_driver_sql(f"UPDATE leases SET expires_at = {m} WHERE name = {m} "
                                 f"AND token = {m}", (expires, name, token))
            return token
        if until > now_iso() and not (dead is not None and dead(current)):
            return None
        res = conn.exec_driver_sql(
            f"UPDATE leases SET holder = {m}, token = {m}, expires_at = {m} WHERE name = {m} "
            f"AND token = {m}", (holder, token + 1, expires, name, token))
        return token + 1 if res.rowcount == 1 else None

    def renew_lease(self, conn: Connection, name: str, token: int, ttl: float) -> bool:
        """Extend a lease we still hold; False when it was taken over (token moved on)."""
        m = self._mark
        res = conn.exec_driver_sql(f"UPDATE leases SET expires_at = {m} WHERE name = {m} AND "
                                   f"token = {m}", (iso_in(ttl), name, token))
        return res.rowcount == 1

    def release_lease(self, conn: Connection, name: str, token: int) -> None:
        """Give a lease up early (only if we still hold it)."""
        m = self._mark
        conn.exec_driver_sql(f"UPDATE leases SET expires_at = {m}, holder = '' WHERE name = {m} "
                             f"AND token = {m}", (now_iso(), name, token))

    def lease_held(self, conn: Connection, name: str, now: str) -> bool:
        """Whether someone holds the lease right now."""
        m = self._mark
        row = conn.exec_driver_sql(f"SELECT holder, expires_at FROM leases WHERE name = {m}",
                                   (name,)).first()
        return row is not None and bool(row[0]) and str(row[1]) > now

    def lease_token(self, conn: Connection, name: str) -> int | None:
        """The lease's current fencing token (None if it was never granted)."""
        row = conn.exec_driver_sql(f"SELECT token FROM leases WHERE name = {self._mark}",
                                   (name,)).first()
        return int(row[0]) if row is not None else None

    def accept_webhook_events(self, conn: Connection, system: str,
                              event_ids: Sequence[str]) -> list[str]:
        """Remember webhook event ids; returns those not seen before (replays are dropped).

        One INSERT ... ON CONFLICT DO NOTHING RETURNING per chunk: two deliveries of the same
        event racing each other cannot both be told it is new.
        """
        wanted = list(dict.fromkeys(event_ids))
        if not wanted:
            return []
        now = now_iso()
        c = t.webhook_events.c
        fresh: set[str] = set()
        for chunk in _chunks(wanted, 300):  # 3 parameters a row, under SQLite's 999
            stmt = (self._insert(t.webhook_events)
                    .values([{"system": system, "event_id": e, "received_at": now}
                             for e in chunk])
                    .on_conflict_do_nothing(index_elements=["system", "event_id"])
                    .returning(c.event_id))
            fresh.update(row[0] for row in conn.execute(stmt))
        return [e for e in wanted if e in fresh]

    def prune_webhook_events(self, conn: Connection, older_than: str) -> int:
        """Forget webhook event ids received before `older_than`; returns how many."""
        res = conn.execute(delete(t.webhook_events)
                           .where(t.webhook_events.c.received_at < older_than))
        return int(res.rowcount or 0)

    # -- runs --------------------------------------------------------------------------

    def start_run(self, conn: Connection, flow: str, mode: str, trigger: str = "manual",
                  owner: str = "") -> int:
        """A new run row in status running; returns its id."""
        now = now_iso()
        res = conn.execute(insert(t.runs).values(flow=flow, mode=mode, trigger=trigger,
                                                 status="running", started_at=now,
                                                 heartbeat_at=now, owner=owner))
        pk = res.inserted_primary_key
        assert pk is not None
        return int(pk[0])

    def unfinished_run(self, conn: Connection, flow: str) -> Any | None:
        """The flow's oldest run still to finish: one whose process died or was stopped
        between steps (status running) first, else one a scheduler queued."""
        c = t.runs.c
        q = (select(t.runs).where(c.flow == flow, c.status.in_(("running", "queued")))
             .order_by(c.status.desc(), c.id).limit(1))
        return conn.execute(q).first()

    def queue_run(self, conn: Connection, flow: str, mode: str, trigger: str,
                  fire_time: str) -> int | None:
        """A queued run for a schedule slot; None if that slot already has a run."""
        now = now_iso()
        ins = self._insert(t.runs).values(
            flow=flow, mode=mode, trigger=trigger, status="queued", started_at=now,
            heartbeat_at=now, fire_time=fire_time, owner="").on_conflict_do_nothing(
            index_elements=["flow", "fire_time"])
        res = conn.execute(ins)
        if res.rowcount != 1:
            return None
        row = conn.execute(select(t.runs.c.id).where(t.runs.c.flow == flow,
                                                     t.runs.c.fire_time == fire_time)).first()
        return int(row[0]) if row is not None else None

    def last_fire_time(self, conn: Connection, flow: str) -> str | None:
        """The newest schedule slot that produced a run of the flow."""
        c = t.runs.c
        return conn.execute(select(func.max(c.fire_time)).where(c.flow == flow)).scalar()

    def update_run(self, conn: Connection, run_id: int, **values: Any) -> None:
        """Set a run's counters, status or timestamps."""
        values.setdefault("heartbeat_at", now_iso())
        conn.execute(update(t.runs).where(t.runs.c.id == run_id).values(**values))

    def get_run(self, conn: Connection, run_id: int) -> Any | None:
        """One run row."""
        return conn.execute(select(t.runs).where(t.runs.c.id == run_id)).first()

    def list_runs(self, conn: Connection, flow: str | None = None, limit: int = 50) -> list[Any]:
        """The newest runs, optionally of one flow."""
        q = select(t.runs).order_by(t.runs.c.id.desc()).limit(limit)
        if flow:
            q = q.where(t.runs.c.flow == flow)
        return list(conn.execute(q))

    def last_success(self, conn: Connection) -> dict[str, str]:
        """Per flow, when its last run that went through (succeeded or partial, as
        hub.health defines a success) finished."""
        c = t.runs.c
        q = (select(c.flow, func.max(c.finished_at))
             .where(c.status.in_(("succeeded", "partial"))).group_by(c.flow))
        return {row[0]: row[1] for row in conn.execute(q)}

    def run_status_counts(self, conn: Connection, flow: str, since: str) -> dict[str, int]:
        """How many of a flow's runs started at or after `since` are in each status."""
        c = t.runs.c  # ix_runs_flow_started answers this without reading other flows' runs
        q = (select(c.status, func.count()).where(c.flow == flow, c.started_at >= since)
             .group_by(c.status))
        return {str(row[0]): int(row[1]) for row in conn.execute(q)}

    def flow_run_times(self, conn: Connection, flow: str) -> tuple[str | None, str | None,
                                                                   str | None]:
        """(status and finish time of the flow's newest finished run, finish time of its
        newest run that went through: succeeded or partial), for metrics and health."""
        c = t.runs.c  # newest first along ix_runs_flow_started: a few rows read, not all
        newest = conn.execute(
            select(c.status, c.finished_at).where(c.flow == flow, c.finished_at.is_not(None))
            .order_by(c.started_at.desc()).limit(1)).first()
        through = conn.execute(
            select(c.finished_at).where(c.flow == flow,
                                        c.status.in_(("succeeded", "partial")))
            .order_by(c.started_at.desc()).limit(1)).scalar()
        if newest is None:
            return None, None, through
        return str(newest[0]), str(newest[1]), through

    # -- dead letters ------------------------------------------------------------------

    def add_dead_letters(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Keep records that could not be synced, with their payload and reason.

        A record that fails again while its earlier dead letter is still open updates that
        dead letter (attempts, reason, payload, last failure) instead of adding a second one.
        """
        if not rows:
            return
        now = now_iso()
        c = t.dead_letters.c
        fresh = []
        for r in rows:
            ext = r.get("external_id")
            # Same record: same external id; without one (an unreadable row), same reason.
            same = (c.external_id == ext) if ext is not None else (
                c.external_id.is_(None) & (c.error == r["error"]))
            existing = conn.execute(
                select(c.id, c.attempts).where(
                    c.status == "open", c.flow == r["flow"], c.system == r["system"],
                    c.entity == r["entity"], same).limit(1)).first()
            if existing is None:
                fresh.append({"first_failed_at": now, "last_failed_at": now, "attempts": 1,
                              "status": "open", **r})
                continue
            conn.execute(update(t.dead_letters).where(c.id == existing.id).values(
                attempts=existing.attempts + int(r.get("attempts") or 1), last_failed_at=now,
                error=r["error"], payload=r["payload"], stage=r["stage"], run_id=r["run_id"],
                canonical_id=r.get("canonical_id")))
        if fresh:
            conn.execute(insert(t.dead_letters), fresh)

    def has_open_dead_letters(self, conn: Connection, flow: str, system: str) -> bool:
        """Whether a flow has open dead letters for a system (to skip closing work)."""
        c = t.dead_letters.c
        q = select(c.id).where(c.status == "open", c.flow == flow, c.system == system).limit(1)
        return conn.execute(q).first() is not None

    def close_dead_letters(self, conn: Connection, flow: str, system: str, *,
                           external_ids: Sequence[str] = (),
                           canonical_ids: Sequence[str] = ()) -> None:
        """Mark open dead letters resolved: their record has since synced (fixed at source).

        Read-side dead letters match by external id; write-side ones by canonical id.
        """
        c = t.dead_letters.c
        now = now_iso()
        for chunk in _chunks(list(external_ids)):
            conn.execute(update(t.dead_letters).where(
                c.status == "open", c.flow == flow, c.system == system, c.stage != "write",
                c.external_id.in_(chunk)).values(status="resolved", resolved_at=now))
        for chunk in _chunks(list(canonical_ids)):
            conn.execute(update(t.dead_letters).where(
                c.status == "open", c.flow == flow, c.system == system, c.stage == "write",
                c.canonical_id.in_(chunk)).values(status="resolved", resolved_at=now))

    def list_dead_letters(self, conn: Connection, *, status: str | None = "open",
                          flow: str | None = None, entity: str | None = None,
                          limit: int = 100) -> list[Any]:
        """Dead letters, newest first."""
        c = t.dead_letters.c
        q = select(t.dead_letters).order_by(c.id.desc()).limit(limit)
        if status:
            q = q.where(c.status == status)
        if flow:
            q = q.where(c.flow == flow)
        if entity:
            q = q.where(c.entity == entity)
        return list(conn.execute(q))

    def get_dead_letter(self, conn: Connection, dl_id: int) -> Any | None:
        """One dead letter."""
        return conn.execute(select(t.dead_letters).where(t.dead_letters.c.id == dl_id)).first()

    def resolve_dead_letter(self, conn: Connection, dl_id: int, status: str) -> None:
        """Mark a dead letter replayed or discarded."""
        conn.execute(update(t.dead_letters).where(t.dead_letters.c.id == dl_id)
                     .values(status=status, resolved_at=now_iso()))

    def dead_letter_summary(self, conn: Connection, since: str) -> list[Any]:
        """Open dead letters per (flow, system, entity, stage): `total`, and `new` = how
        many first failed at or after `since`."""
        c = t.dead_letters.c
        new = func.sum(case((c.first_failed_at >= since, 1), else_=0))
        q = (select(c.flow, c.system, c.entity, c.stage, func.count().label("total"),
                    new.label("new"))
             .where(c.status == "open").group_by(c.flow, c.system, c.entity, c.stage))
        return list(conn.execute(q))

    def count_dead_letters(self, conn: Connection, status: str = "open") -> int:
        """How many dead letters are in a status."""
        q = select(func.count()).select_from(t.dead_letters).where(
            t.dead_letters.c.status == status)
        return int(conn.execute(q).scalar_one())

    def open_dead_letter_counts(self, conn: Connection) -> list[tuple[str, str, str, str, int]]:
        """(flow, system, entity, stage, how many) of the open dead letters."""
        c = t.dead_letters.c
        q = (select(c.flow, c.system, c.entity, c.stage, func.count())
             .where(c.status == "open").group_by(c.flow, c.system, c.entity, c.stage))
        return [(str(r[0]), str(r[1]), str(r[2]), str(r[3]), int(r[4]))
                for r in conn.execute(q)]

    # -- audit -------------------------------------------------------------------------

    def append_audit(self, conn: Connection, events: Sequence[AuditInput]) -> None:
        """Append events to the hash chain, in the caller's transaction."""
        if not events:
            return
        # FOR UPDATE: on PostgreSQL the head row's lock serialises concurrent appenders;
        # SQLite's write lock (BEGIN IMMEDIATE) already does.
        lock = " FOR UPDATE" if self.dialect == "postgresql" else ""
        cur = self._cursor(conn)
        cur.execute(f"SELECT seq, hash, at FROM audit_head WHERE id = 1{lock}")
        head = cur.fetchone()
        if head is None:
            conn.execute(insert(t.audit_head).values(id=1, seq=0, hash="", at=""))
            seq, prev, last = 0, "", ""
        else:
            seq, prev, last = int(head[0]), str(head[1]), str(head[2])
        # One time for the whole append, never before the last append's (a clock stepped
        # back): times then rise with sequence numbers, which query_audit relies on.
        at = max(now_iso(), last)
        rows = []
        batches: dict[tuple[str | None, str | None], list[int]] = {}  # -> [first, last, n]
        to_json, sort_keys = orjson.dumps, orjson.OPT_SORT_KEYS  # `dumps`, without a call
        for entity, action, canonical_id, system, external_id, change, run_id, flow in events:
            seq += 1
            diff = (change if type(change) is str
                    else to_json(change or {}, option=sort_keys).decode())
            digest = event_hash(prev, seq, at, run_id, flow, entity, canonical_id, system,
                                external_id, action, diff)
            rows.append((seq, at, run_id, flow, entity, canonical_id, system, external_id,
                         action, diff, prev, digest))
            prev = digest
            batch = batches.get((system, flow))
            if batch is None:
                batches[(system, flow)] = [seq, seq, 1]
            else:
                batch[1] = seq
                batch[2] += 1
        m = self._mark
        cur.executemany(
            "INSERT INTO audit_events (seq, at, run_id, flow, entity, canonical_id, system, "
            f"external_id, action, diff, prev_hash, hash) VALUES ({', '.join([m] * 12)})", rows)
        cur.executemany(
            "INSERT INTO audit_batches (first_seq, last_seq, at, system, flow, events) "
            f"VALUES ({', '.join([m] * 6)})",
            [(first, end, at, system, flow, n)
             for (system, flow), (first, end, n) in batches.items()])
        cur.execute(f"UPDATE audit_head SET seq = {m}, hash = {m}, at = {m} WHERE id = 1",
                    (seq, prev, at))

    def query_audit(self, conn: Connection, *, record: str | None = None,
                    system: str | None = None, flow: str | None = None,
                    since: str | None = None, until: str | None = None,
                    limit: int = 200) -> list[Any]:
        """Audit events matching the filters (`since` <= at < `until`), newest first."""
        c = t.audit_events.c
        conds: list[ColumnElement[bool]] = []
        if record:
            # An external id stands for its record's whole history, writes included: its
            # canonical ids come from the links, then the trail is read by canonical id
            # (ix_audit_canonical). An OR with external_id, or an index on it, would cost
            # a scan of the whole trail or an index entry for every audited change.
            ids = set(conn.execute(select(t.links.c.canonical_id).where(
                t.links.c.external_id == record)).scalars())
            conds.append(c.canonical_id.in_(sorted({record, *ids})))
        conds += _audit_filters(c, system, flow, since, until)
        if not record and (system or flow or since or until):
            # Only where the batches say matching events are: a system with a few events
            # among millions of others is read in its own ranges, not across them.
            out: list[Any] = []
            for first, last in self._audit_ranges(conn, system, flow, since, until, limit):
                out += conn.execute(select(t.audit_events).where(*conds, c.seq.between(
                    first, last)).order_by(c.seq.desc()).limit(limit - len(out)))
                if len(out) >= limit:
                    break
            return out
        # Newest first: by sequence number, the chain's order, in which times only rise
        # (append_audit). The table's own order: a page stops after `limit` rows.
        q = select(t.audit_events).order_by(c.seq.desc()).limit(limit)
        if conds:
            q = q.where(and_(*conds))
        return list(conn.execute(q))

    @staticmethod
    def _audit_ranges(conn: Connection, system: str | None, flow: str | None,
                      since: str | None, until: str | None,
                      limit: int) -> list[tuple[int, int]]:
        """The ranges of sequence numbers, newest first and apart, that hold the newest
        `limit` events matching the filters (read from the batches; [] when none match).

        The newest batches that match, until they hold `limit` events, and every other
        matching batch with the time of the last of those (the same append's other
        batches, whose events can lie after theirs). Any batch left out is from an
        earlier append: times rise with sequence numbers and all events of one append
        share theirs, so its events are all older than the `limit` found. Other events
        may lie in the ranges too: the caller filters them again.
        """
        b = t.audit_batches.c
        conds = _audit_filters(b, system, flow, since, until)
        newest = conn.execute(select(b.first_seq, b.last_seq, b.events, b.at).where(*conds)
                              .order_by(b.at.desc(), b.first_seq.desc()).limit(limit)).all()
        if not newest:
            return []
        held, chosen, oldest = 0, [], ""
        for first, last, events, oldest in newest:
            chosen.append((int(first), int(last)))
            held += events
            if held >= limit:
                break
        chosen += [(int(f), int(la)) for f, la in conn.execute(
            select(b.first_seq, b.last_seq).where(*conds, b.at == oldest))]
        merged: list[tuple[int, int]] = []
        for first, last in sorted(chosen):
            if merged and first <= merged[-1][1] + 1:
                merged[-1] = (merged[-1][0], max(merged[-1][1], last))
            else:
                merged.append((first, last))
        return merged[::-1]

    def index_audit_events(self, conn: Connection) -> None:
        """Write the batches of events loaded without append_audit (a bulk load): each
        group of one time, system and flow becomes a batch, as migration 0007 did."""
        conn.exec_driver_sql(
            "INSERT INTO audit_batches (first_seq, last_seq, at, system, flow, events) "
            "SELECT min(seq), max(seq), at, system, flow, count(*) FROM audit_events "
            "GROUP BY at, system, flow")

    def audit_count_since(self, conn: Connection, system: str, since: str) -> int:
        """How many audit events concern `system` at or after `since` (from the batches)."""
        b = t.audit_batches.c
        q = select(func.coalesce(func.sum(b.events), 0)).where(b.system == system,
                                                                b.at >= since)
        return int(conn.execute(q).scalar_one())

    def audit_checkpoint(self) -> AuditCheckpoint | None:
        """How far the chain was last found intact; None: never, or a check failed since."""
        with self.connect() as conn:
            row = conn.execute(select(t.audit_verified).where(
                t.audit_verified.c.id == 1)).first()
        if row is None:
            return None
        return AuditCheckpoint(int(row.seq), str(row.hash), str(row.verified_at),
                               int(row.full_seq), row.full_at)

    def audit_head_seq(self) -> int:
        """The chain's last sequence number (0: no events yet)."""
        with self.connect() as conn:
            seq = conn.execute(select(t.audit_head.c.seq).where(t.audit_head.c.id == 1))\
                .scalar()
        return int(seq or 0)

    def verify_audit(self, progress: Callable[[int], None] | None = None, *,
                     since_checkpoint: bool = False) -> VerifyResult:
        """Recompute the chain; report the first event that was changed, removed or moved.

        Full (the default): every event from 1 to the chain's head, ignoring any checkpoint.
        `since_checkpoint`: only the events after the checkpoint (`audit_checkpoint()`),
        starting from its hash, after checking that the checkpoint's event still has that
        hash (an edit of it, or a chain recomputed from it or earlier, is caught); without
        a checkpoint this is a full check.

        What it trusts: the incremental check takes the events up to the checkpoint as they
        were when an earlier check found them intact. An edit of an older, already-verified
        event is NOT seen by it; the next full check finds it (`hub audit verify` does a full
        check: run it daily). Neither kind of check defends against someone who can write
        the database and recomputes every hash after the event they changed (and the
        checkpoint row): the chain is not anchored outside the database.

        The check reads events up to the head it saw when it started, in short
        transactions of AUDIT_CHUNK events (never a whole-trail lock or snapshot), so
        events appended meanwhile are left for the next check. A check that passes moves
        the checkpoint to the head it checked (a full one also records itself as the last
        full check); a check that fails removes the checkpoint, so nothing is trusted until
        a full check passes again.
        """
        with self.connect() as conn:
            # One statement: the head and the newest event are seen in the same snapshot
            # (an append writes both in one transaction).
            ends = conn.exec_driver_sql(
                "SELECT (SELECT seq FROM audit_head WHERE id = 1), "
                "(SELECT hash FROM audit_head WHERE id = 1), "
                "(SELECT max(seq) FROM audit_events)").one()
        head_seq, head_hash, newest = int(ends[0] or 0), str(ends[1] or ""), int(ends[2] or 0)
        cp = self.audit_checkpoint() if since_checkpoint else None
        result = self._verify_chain(head_seq, head_hash, newest, cp, progress)
        self._record_verification(result, head_seq, head_hash)
        return result

    _AUDIT_COLS = ("seq, at, run_id, flow, entity, canonical_id, system, external_id, action, "
                   "diff, prev_hash, hash")

    def _verify_chain(self, head_seq: int, head_hash: str, newest: int,
                      cp: AuditCheckpoint | None,
                      progress: Callable[[int], None] | None) -> VerifyResult:
        m = self._mark
        trusted, trusted_at, prev = 0, None, ""

        def broken(bad: int | None, checked: int, message: str) -> VerifyResult:
            return VerifyResult(False, checked, bad, message, trusted, trusted_at)

        if newest > head_seq:
            return broken(head_seq + 1, 0, f"event {head_seq + 1} is after the chain's end "
                          f"(event {head_seq}): it was added outside Liaison")
        if cp is not None and cp.seq > 0:
            trusted, trusted_at = cp.seq, cp.verified_at
            if head_seq < cp.seq:
                return broken(head_seq + 1, 0, f"the chain ends at event {head_seq} but events "
                              f"up to {cp.seq} were verified at {cp.verified_at}: the newest "
                              "events were removed")
            with self.connect() as conn:
                row = conn.exec_driver_sql(f"SELECT {self._AUDIT_COLS} FROM audit_events "
                                           f"WHERE seq = {m}", (cp.seq,)).first()
            if row is None:
                return broken(cp.seq, 0, f"event {cp.seq} (the last one verified, at "
                              f"{cp.verified_at}) is missing: rows were deleted or renumbered")
            if event_hash(row[10], *row[:10]) != row[11]:
                return broken(cp.seq, 0, f"event {cp.seq} was changed after it was written "
                              "(its content no longer matches its hash)")
            if row[11] != cp.hash:
                return broken(cp.seq, 0, f"event {cp.seq} no longer has the hash it had when "
                              f"it was verified at {cp.verified_at}: it was rewritten and "
                              "the chain's hashes recomputed")
            prev = cp.hash
        expected, checked = trusted + 1, 0
        while expected <= head_seq:
            with self.connect() as conn:
                rows = conn.exec_driver_sql(
                    f"SELECT {self._AUDIT_COLS} FROM audit_events WHERE seq >= {m} AND "
                    f"seq <= {m} ORDER BY seq LIMIT {AUDIT_CHUNK}", (expected, head_seq)).all()
            if not rows:
                break
            for row in rows:
                seq = row[0]
                if seq != expected:
                    return broken(expected, checked, f"event {expected} is missing (the next "
                                  f"event is {seq}): rows were deleted or renumbered")
                if row[10] != prev:
                    return broken(seq, checked, f"event {seq} does not follow event "
                                  f"{seq - 1}: the chain was reordered or an event was replaced")
                if event_hash(prev, *row[:10]) != row[11]:
                    return broken(seq, checked, f"event {seq} was changed after it was "
                                  "written (its content no longer matches its hash)")
                prev, expected, checked = row[11], expected + 1, checked + 1
                if progress and checked % 10000 == 0:
                    progress(checked)
        if expected - 1 != head_seq or prev != head_hash:
            return broken(min(expected, head_seq), checked,
                          f"the chain should end at event {head_seq} but ends at "
                          f"{expected - 1}: the newest events were removed or altered")
        return VerifyResult(True, checked, None, "", trusted, trusted_at)

    def _record_verification(self, result: VerifyResult, head_seq: int,
                             head_hash: str) -> None:
        """Move the checkpoint after a check that passed; remove it after one that failed."""
        with self.begin() as conn:
            if not result.ok:
                conn.execute(delete(t.audit_verified))
                return
            if head_seq == 0:
                return
            row = conn.execute(select(t.audit_verified).where(
                t.audit_verified.c.id == 1)).first()
            now = now_iso()
            values: dict[str, Any] = {"id": 1, "seq": head_seq, "hash": head_hash,
                                      "verified_at": now, "full_seq": 0, "full_at": None}
            if row is not None:
                values.update(full_seq=int(row.full_seq), full_at=row.full_at)
                if int(row.seq) > head_seq:  # a check that started later got further: keep it
                    values.update(seq=int(row.seq), hash=str(row.hash),
                                  verified_at=str(row.verified_at))
            if result.trusted == 0:
                values.update(full_seq=head_seq, full_at=now)
            self._upsert(conn, t.audit_verified, [values], ["id"])
