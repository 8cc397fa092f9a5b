"""Opening the database and migrating it: the store's only contact with engines and Alembic.

SQLite (the embedded default) runs in WAL mode with BEGIN IMMEDIATE transactions, so two
writers queue for the lock instead of failing half way; PostgreSQL uses a connection pool.
An empty SQLite file is migrated on first use; any other database that is behind asks the
operator to run `hub migrate`.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import (
    ArgumentError,
    InterfaceError,
    NoSuchModuleError,
    OperationalError,
    SQLAlchemyError,
)

from hub.errors import StoreError, StoreUnavailable
from hub.store import checkpoint

MIGRATIONS = Path(__file__).parent / "migrations"

# sqlite3 binds a bool as the integer it is, but only after failing to find an adapter for
# it (two attribute lookups that raise and clear AttributeError), which costs more than the
# rest of binding a row's other values; every record row binds two. Registering the
# conversion it ends up doing anyway makes it one dictionary lookup; what is stored does
# not change.
sqlite3.register_adapter(bool, int)


def redact_url(url: str) -> str:
    """The URL with any password replaced, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<invalid database URL>"


PAGE_SIZE = 16384  # bytes, for new SQLite databases (see _sqlite_pragmas)
BUSY_MS = 30000  # how long a connection waits for another one's lock before failing


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # The driver's own transaction handling is disabled so that BEGIN IMMEDIATE (below)
    # takes the write lock up front; WAL lets readers (the dashboard) run beside a sync.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    # 16 KiB pages for a new database (an existing one keeps its own: SQLite ignores this
    # once the file has pages, and in WAL mode). A commit writes each changed page to the
    # log with a system call of its own, and a cache miss reads one: on a 30,000-record
    # ingest 4 KiB pages made 65,600 writes and 30,900 reads, 16 KiB pages 14,000 and
    # 5,400, and the engine process's system time fell by a quarter.
    cur.execute(f"PRAGMA busy_timeout={BUSY_MS}")
    cur.execute(f"PRAGMA page_size={PAGE_SIZE}")
    _enter_wal(cur)
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    # 8 MB of page cache (the default is 2 MB): B-tree pages of the indexes a page of
    # records touches stay in memory (16 MB measured 6.4 -> 5.3 us per inserted row).
    cur.execute("PRAGMA cache_size=-8192")
    # The log is checkpointed in the background once it passes 4 MiB (hub.store.checkpoint);
    # a commit checkpoints it itself only past 16 MiB (counted in pages, of either size).
    # (A writer that never stops restarts the log only after a checkpoint that caught up,
    # which this one then is: most of the log is already copied.) Measured at SQLite's
    # default, 1,000 pages of 4 KiB: commits took 3x as long, waiting for the disk.
    size = cur.execute("PRAGMA page_size").fetchone()[0]
    cur.execute(f"PRAGMA wal_autocheckpoint={(16 << 20) // int(size)}")
    # A restarted log is cut back to this size, so its file's size tells the background
    # checkpointer how long it is (a log file otherwise keeps its largest size).
    cur.execute(f"PRAGMA journal_size_limit={checkpoint.LOG_KEEP_BYTES}")
    cur.close()


def _locked(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)


def _enter_wal(cur: sqlite3.Cursor) -> None:
    """Put the database in WAL mode (a setting kept in the file, so only a new file is
    changed), waiting out other processes that open the same new file at the same moment.

    Switching a file to WAL needs its exclusive lock, and when the connection asking
    already reads it while another one waits for that lock, SQLite refuses at once
    ("database is locked") rather than calling the busy handler, since waiting could
    deadlock. That happens only while several processes (a worker, `hub serve`) open a
    store that does not exist yet, and the other one is done within milliseconds: asking
    again, for as long as the busy handler would wait, is what it would have done."""
    if str(cur.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
        return
    import tenacity  # only a new file gets here

    tenacity.Retrying(retry=tenacity.retry_if_exception(_locked),
                      wait=tenacity.wait_exponential(multiplier=0.005, max=0.2),
                      stop=tenacity.stop_after_delay(BUSY_MS / 1000),
                      reraise=True)(cur.execute, "PRAGMA journal_mode=WAL")


def sqlite_file(engine: Engine) -> str | None:
    """The absolute path of an SQLite engine's database file (None: not an SQLite file)."""
    if engine.dialect.name != "sqlite":
        return None
    name = engine.url.database
    if not name or name == ":memory:" or name.startswith("file:"):
        return None
    return os.path.abspath(name)


def _sqlite_begin(conn: Any) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str) -> Engine:
    """An engine for `url` (sqlite:///path or postgresql+psycopg://...), tuned per database."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreError(f"store URL {url!r} is not a database URL "
                         "(expected sqlite:///path/to/file.db or postgresql://...)") from None
    try:
        if parsed.get_backend_name() == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(parsed)
            event.listen(engine, "connect", _sqlite_pragmas)
            event.listen(engine, "begin", _sqlite_begin)
            return engine
        if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        return create_engine(parsed, pool_size=5, max_overflow=10, pool_pre_ping=True)
    except (NoSuchModuleError, ImportError) as exc:
        raise StoreError(f"no database driver for {redact_url(url)}: {exc} "
                         "(for PostgreSQL install the 'postgres' extra)") from None


def _alembic_config(engine_conn: Any) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = engine_conn
    return cfg


def head_revision() -> str | None:
    """The newest migration shipped with this version of Liaison."""
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(cfg).get_current_head()


def current_revision(engine: Engine) -> str | None:
    """The migration the database is at (None for an empty database)."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


# The key of the migration lock (pg_advisory_xact_lock takes a signed 64-bit number): any
# fixed one, the same in every version of Liaison; here the bytes of "liaisonM".
MIGRATION_LOCK = int.from_bytes(b"liaisonM", "big")


def _one_migration_at_a_time(conn: Connection) -> None:
    """Make a migration wait for any other one on the same database before Alembic reads
    the revision: processes started together on an empty database (web, workers and the
    migrate job of a fresh deployment) each find it empty and migrate. On SQLite the
    transaction's BEGIN IMMEDIATE already takes the write lock; on PostgreSQL the second
    would create tables the first is creating and fail, so it takes a lock held until its
    transaction ends, and then finds the head already there."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))


def migrate(engine: Engine) -> tuple[str | None, str | None]:
    """Bring the database to the newest migration; returns (before, after)."""
    try:
        before = current_revision(engine)
        with engine.begin() as conn:
            _one_migration_at_a_time(conn)
            command.upgrade(_alembic_config(conn), "head")
        return before, current_revision(engine)
    except SQLAlchemyError as exc:
        raise StoreError(f"could not migrate {redact_url(str(engine.url))}: "
                         f"{exc.__class__.__name__}: {str(exc).splitlines()[0]}") from None


def ensure_ready(engine: Engine, *, auto_migrate: bool) -> None:
    """Check the schema is current; migrate an empty (or any, if allowed) database."""
    try:
        # Tables before revision: another process's migration is one transaction, so
        # once its tables are seen its revision is too (the other way round, a migration
        # committing between the two reads looked like an unversioned database).
        with engine.connect() as conn:
            tables = inspect(conn).get_table_names()
            current = MigrationContext.configure(conn).get_current_revision()
        empty = current is None and not tables
    except SQLAlchemyError as exc:
        # Not answering (down, starting, failing over) is told apart from a bad URL or
        # schema: a long-running process waits for the first (Store(wait=...)).
        kind = StoreUnavailable if isinstance(exc, OperationalError | InterfaceError) \
            else StoreError
        raise kind(f"cannot open the store {redact_url(str(engine.url))}: "
                   f"{str(exc).splitlines()[0]}") from None
    head = head_revision()
    if current == head:
        return
    if empty or auto_migrate:
        migrate(engine)
        return
    raise StoreError(f"the store {redact_url(str(engine.url))} is at migration {current}, "
                     f"this version of Liaison needs {head}: run `hub migrate`")
