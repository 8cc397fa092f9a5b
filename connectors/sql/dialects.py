"""What differs between PostgreSQL and MariaDB/MySQL, in one place.

Dialect notes
    Upserts    PostgreSQL: INSERT ... ON CONFLICT (key columns) DO UPDATE SET each written
               column = EXCLUDED.column; only a conflict on the key updates, a conflict on
               another unique column is an error for that row.
               MariaDB/MySQL: INSERT ... ON DUPLICATE KEY UPDATE, which fires on a conflict
               with ANY unique index and would then overwrite the OTHER row. So it is used
               only when the key is the table's one unique index; otherwise the connector
               looks the keys up first and sends plain INSERTs and UPDATEs (see writing.py).
    Sessions   MariaDB/MySQL sessions run with time_zone '+00:00' (TIMESTAMP columns then
               read and write in UTC) and STRICT_ALL_TABLES added to sql_mode, so a too long
               text or a bad date is refused instead of silently cut or zeroed. PostgreSQL
               needs neither: timestamptz values come back with their offset.
    Booleans   MySQL's BOOLEAN is TINYINT(1): it reads as 0/1 (map it with the `bool`
               transform); true/false are written as 1/0.
    NULL order MySQL sorts NULL first in ascending order, PostgreSQL last: keyset reads ask
               for NULLS FIRST explicitly on PostgreSQL so both agree.
    Identifiers are never put into SQL text by the connector: tables are reflected and every
               statement is built with SQLAlchemy Core, which quotes names and binds values.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import mysql, postgresql
from sqlalchemy.engine import URL, Engine
from sqlalchemy.sql.dml import Insert


def is_mysql(backend: str) -> bool:
    """Whether a backend name (URL.get_backend_name()) is MariaDB or MySQL."""
    return backend in ("mysql", "mariadb")


def make_engine(url: URL, timeout: float, statement_timeout: float) -> Engine:
    """An engine for `url` with connect and statement timeouts, liveness checks and session
    settings; a statement running longer than `statement_timeout` seconds is cancelled
    (PostgreSQL) or its socket read gives up (MariaDB/MySQL), both retried as transient."""
    backend = url.get_backend_name()
    connect_args: dict[str, Any] = {"connect_timeout": max(1, int(timeout))}
    if is_mysql(backend):
        connect_args.update(read_timeout=statement_timeout, write_timeout=statement_timeout)
    else:
        connect_args["options"] = f"-c statement_timeout={int(statement_timeout * 1000)}"
    engine = sa.create_engine(url, pool_pre_ping=True, pool_size=2, max_overflow=4,
                              pool_timeout=timeout, connect_args=connect_args)
    if is_mysql(backend):
        event.listen(engine, "connect", _mysql_session)
    return engine


def _mysql_session(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("SET SESSION time_zone = '+00:00'")
        cursor.execute("SELECT @@SESSION.sql_mode")
        row = cursor.fetchone()
        modes = [m for m in str(row[0] if row else "").split(",") if m]
        if "STRICT_ALL_TABLES" not in modes:
            modes.append("STRICT_ALL_TABLES")
        cursor.execute("SET SESSION sql_mode = %s", (",".join(modes),))
    finally:
        cursor.close()


def nulls_first(column: sa.ColumnElement[Any], backend: str) -> sa.ColumnElement[Any]:
    """Ascending order with NULLs first on both backends."""
    return column.asc() if is_mysql(backend) else column.asc().nulls_first()


def native_upsert_safe(backend: str, other_unique: bool) -> bool:
    """Whether the backend's upsert can only ever touch the row with the same key."""
    return not (is_mysql(backend) and other_unique)


def upsert(table: sa.Table, key: Sequence[str], columns: Sequence[str],
           backend: str) -> Insert:
    """INSERT of `columns` that updates the row with the same key instead of failing."""
    changing = [c for c in columns if c not in key]
    if is_mysql(backend):
        my = mysql.insert(table)
        # With nothing to change, "set the key to itself" is MySQL's way to do nothing.
        sets = {c: my.inserted[c] for c in (changing or key[:1])}
        return my.on_duplicate_key_update(sets)
    pg = postgresql.insert(table)
    target = [table.c[k] for k in key]
    if not changing:
        return pg.on_conflict_do_nothing(index_elements=target)
    return pg.on_conflict_do_update(index_elements=target,
                                    set_={c: pg.excluded[c] for c in changing})
