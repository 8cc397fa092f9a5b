"""The sql connector: tables of a PostgreSQL or MariaDB/MySQL database as a system.

See the package docstring (connectors/sql/__init__.py) for the settings, how rows become
records and how writes work. This module is the glue: it owns the engine, binds objects to
reflected tables once, and is the boundary where SQLAlchemy exceptions are translated.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from connectors.sql.dialects import is_mysql, make_engine
from connectors.sql.errors import Redactor, translate
from connectors.sql.reading import Reader
from connectors.sql.schema import BoundTable, reflect
from connectors.sql.settings import (
    OBJECTS,
    TableSettings,
    database_url,
    parse_tables,
    time_zone,
)
from connectors.sql.values import ValueProblem, Zones
from connectors.sql.writing import Writer
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
from hub.errors import HubError


class SqlConnector(BaseConnector):
    """Reads and writes rows of database tables; one object is one table."""

    name: ClassVar[str] = "sql"
    capabilities: ClassVar[Capabilities] = Capabilities(
        entities={entity: EntitySupport(object=obj, read=True, write=True, incremental=True,
                                        deletes=True, archive=True)
                  for entity, obj in OBJECTS.items()},
        batch_size=500,
        settings={
            "url": "the database as a SQLAlchemy URL, e.g. postgresql+psycopg://user@host/db "
                   "or mysql+pymysql://user@host/db (an ${ENV} reference: it may hold the "
                   "password)",
            "tables": "per object (a mapping's `object`, or an entity name): the table, and "
                      "optionally schema, key, updated_at, soft_delete, match; an object "
                      "not listed is the table of that name",
            "timezone": "the time zone of timestamp columns without one (default UTC)",
            "connect_timeout": "seconds to wait for the database to answer (default 10)",
            "statement_timeout": "seconds one statement may run before it is given up and "
                                 "retried later (default 300)",
        },
        secret_settings=frozenset({"url"}),
    )

    def __init__(self, connection: ConnectionConfig) -> None:
        super().__init__(connection)
        self.tables: dict[str, TableSettings] = parse_tables(connection)
        self.zone = time_zone(connection)
        self.timeout = self.number_setting("connect_timeout", 10.0)
        self.statement_timeout = self.number_setting("statement_timeout", 300.0)
        # The engine reads pages in a background thread (hub.sync.prefetch) while it may
        # write through the same connector: creating the engine and binding tables lock.
        self._lock = threading.RLock()
        self._engine: Engine | None = None
        self._url: URL | None = None
        self._redact = Redactor()
        self._bound: dict[str, BoundTable] = {}

    # -- plumbing -------------------------------------------------------------------------

    def engine(self) -> Engine:
        """The engine, created at first use (the URL secret is read then)."""
        with self._lock:
            if self._engine is None:
                url = database_url(self.connection)
                self._redact = Redactor.of([url.password if isinstance(url.password, str)
                                            else None])
                self._url = url
                self._engine = make_engine(url, self.timeout, self.statement_timeout)
            return self._engine

    @property
    def backend(self) -> str:
        """postgresql, mysql or mariadb."""
        self.engine()
        assert self._url is not None
        return self._url.get_backend_name()

    @property
    def zones(self) -> Zones:
        """How naive timestamps of this database are read."""
        return Zones(self.zone, is_mysql(self.backend))

    def _where(self) -> str:
        shown = self._url.render_as_string(hide_password=True) if self._url else "?"
        return f"system {self.connection.name!r} ({self._redact(shown)})"

    @contextmanager
    def session(self) -> Iterator[Connection]:
        """A pooled connection; SQLAlchemy errors leave as TransientError/PermanentError."""
        engine = self.engine()
        try:
            with engine.connect() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise translate(exc, self._where(), self._redact) from None

    def settings_for(self, object: str) -> TableSettings:
        """The table settings of an object (an unlisted object is the table of its name)."""
        return self.tables.get(object) or TableSettings(object=object, table=object)

    def bound(self, object: str) -> BoundTable:
        """The object's table, reflected and checked once per connector."""
        with self._lock:
            found = self._bound.get(object)
            if found is None:
                with self.session() as conn:
                    found = reflect(conn, self.settings_for(object), self.connection.name)
                self._bound[object] = found
            return found

    def _execute(self, stmt: sa.Executable) -> list[Any]:
        with self.session() as conn:
            return list(conn.execute(stmt))

    # -- the contract ---------------------------------------------------------------------

    def check(self) -> Health:
        """Connects, then reflects and checks every configured table."""
        try:
            with self.session() as conn:
                found = sa.inspect(conn).get_table_names()
        except HubError as exc:
            return Health(ok=False, message=str(exc))
        problems: list[str] = []
        checked: list[str] = []
        for obj in self.tables:
            self._bound.pop(obj, None)
            try:
                bound = self.bound(obj)
            except HubError as exc:
                problems.append(str(exc))
                continue
            checked.append(f"{obj} -> {bound.table.fullname}")
        if problems:
            return Health(ok=False, message="\n".join(problems))
        listed = "; ".join(checked) if checked else "no tables configured yet"
        return Health(ok=True, message=f"{self._where()}: {len(found)} table(s) in the "
                                       f"database; {listed}")

    def read(self, object: str, cursor: Cursor | None, *, incremental: bool,
             page_size: int) -> Iterator[Page]:
        """Keyset pages of the object's table (see reading.py for order and cursors)."""
        reader = Reader(self.bound(object), self.zones, self.backend)
        yield from reader.pages(self._execute, cursor, incremental=incremental,
                                page_size=page_size)

    def fetch(self, object: str, external_id: str) -> NativeRecord | None:
        """The row whose key is `external_id` (None if there is none)."""
        bound = self.bound(object)
        try:
            key = bound.key_values(external_id, self.zones)
        except ValueProblem:
            return None
        where = sa.and_(*(c == v for c, v in zip(bound.key, key, strict=True)))
        rows = self._execute(sa.select(bound.table).where(where))
        return Reader(bound, self.zones, self.backend).record(rows[0]) if rows else None

    def write(self, object: str, ops: Sequence[WriteOp]) -> list[WriteResult]:
        """Apply the ops in one transaction; refused rows fail alone (see writing.py)."""
        if not ops:
            return []
        bound = self.bound(object)
        zones = self.zones
        writer = Writer(bound, zones, self.backend, self._redact,
                        Reader(bound, zones, self.backend))
        with self.session() as conn:
            return writer.write(conn, ops)

    def close(self) -> None:
        """Close the pooled connections (harmless twice)."""
        with self._lock:
            if self._engine is not None:
                self._engine.dispose()
                self._engine = None
            self._bound.clear()

    def __repr__(self) -> str:
        return f"<SqlConnector {self.connection.name}>"
