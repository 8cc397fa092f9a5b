"""Fixtures for the sql connector tests: the real PostgreSQL and MariaDB servers, fresh tables.

Databases: HUB_TEST_PG (default the `test` database on 127.0.0.1:5432) and HUB_TEST_MYSQL
(default mysql+pymysql://root@127.0.0.1:3306/test). Each test makes its own tables with
unique names and drops them afterwards, so nothing else in those databases is touched.
A server that does not answer skips the test locally and fails it under CI=true.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from connectors.sql import SqlConnector
from hub.config.model import ConnectionConfig
from tests.conftest import _unavailable

URLS = {
    "postgresql": os.environ.get("HUB_TEST_PG",
                                 "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
    "mariadb": os.environ.get("HUB_TEST_MYSQL", "mysql+pymysql://root@127.0.0.1:3306/test"),
}
START = {
    "postgresql": "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
    "mariadb": "start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd",
}
_answering: dict[str, bool] = {}


def _answers(kind: str) -> bool:
    if kind not in _answering:
        engine = sa.create_engine(URLS[kind], connect_args={"connect_timeout": 3})
        try:
            with engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
            _answering[kind] = True
        except Exception:  # noqa: BLE001 - any failure means the server is not usable here
            _answering[kind] = False
        finally:
            engine.dispose()
    return _answering[kind]


@dataclass
class Database:
    """One test database: its URL, an engine for setting up tables, and cleanup."""

    kind: str  # postgresql | mariadb
    url: str
    engine: sa.Engine
    made: list[str] = field(default_factory=list)

    @property
    def mysql(self) -> bool:
        """Whether this is MariaDB."""
        return self.kind == "mariadb"

    def table(self, columns_pg: str, columns_my: str | None = None, *,
              prefix: str = "t") -> str:
        """CREATE TABLE <unique name> (columns); the name, dropped after the test."""
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        columns = columns_my if self.mysql and columns_my is not None else columns_pg
        suffix = " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4" if self.mysql else ""
        self.made.append(name)
        self.sql(f"CREATE TABLE {name} ({columns.format(t=name)}){suffix}")
        return name

    def sql(self, statement: str, params: dict[str, Any] | None = None) -> list[Any]:
        """Run one statement of test setup; the rows it returns, if any."""
        with self.engine.begin() as conn:
            result = conn.execute(sa.text(statement), params or {})
            return list(result) if result.returns_rows else []

    def rows(self, table: str, order: str = "1") -> list[dict[str, Any]]:
        """Every row of a table as dicts (database types)."""
        with self.engine.connect() as conn:
            result = conn.execute(sa.text(f"SELECT * FROM {table} ORDER BY {order}"))
            return [dict(r._mapping) for r in result]

    def connector(self, tables: dict[str, Any] | None = None, **settings: Any) -> SqlConnector:
        """A connector on this database with these table settings."""
        return SqlConnector(ConnectionConfig(
            name="erp", connector="sql", base_dir=Path("."),
            settings={"url": self.url, "tables": tables or {}, **settings}))

    def drop_all(self) -> None:
        """Drop the tables this test made (children first)."""
        for name in reversed(self.made):
            self.sql(f"DROP TABLE IF EXISTS {name}")
        self.engine.dispose()


def open_database(kind: str) -> Iterator[Database]:
    """A Database for `kind`, or skip/fail when its server does not answer."""
    if not _answers(kind):
        where = URLS[kind].split("@")[-1]
        _unavailable(f"{kind} at {where} (or its database is missing)", START[kind])
    db = Database(kind, URLS[kind], sa.create_engine(URLS[kind]))
    try:
        yield db
    finally:
        db.drop_all()


@pytest.fixture(params=["postgresql", "mariadb"])
def db(request: pytest.FixtureRequest) -> Iterator[Database]:
    """The same test on PostgreSQL and on MariaDB."""
    yield from open_database(request.param)

