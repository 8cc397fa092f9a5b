"""Database URLs as connectors take them in settings: checked, with the drivers Liaison ships.

A bare dialect name (`postgresql://`, `mysql://`, `mariadb://`) means SQLAlchemy's default
driver for it, which Liaison does not install (psycopg2, mysqlclient); these are the ones it
does. Used by the sql connector (its `url`) and the smtp connector (a `sent_log` database).
"""

from __future__ import annotations

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from hub.errors import ConnectorError

SHIPPED_DRIVERS = {"postgresql": "postgresql+psycopg", "postgres": "postgresql+psycopg",
                   "mysql": "mysql+pymysql", "mariadb": "mariadb+pymysql"}


def with_shipped_driver(url: URL) -> URL:
    """`url` with the driver Liaison ships for its dialect when it names none."""
    driver = SHIPPED_DRIVERS.get(url.drivername)
    return url.set(drivername=driver) if driver is not None else url


def database_url(text: str, *, where: str, backends: tuple[str, ...], supported: str,
                 example: str) -> URL:
    """`text` as a SQLAlchemy URL with the shipped driver. ConnectorError, its message
    starting with `where` (the setting and its place in the config), when it is not a URL
    (`example` shows one), its kind is not among `backends` (`supported` names them in
    words) or it names no database. The URL itself is never repeated: it may hold a
    password."""
    try:
        url = make_url(text.strip())
    except (ArgumentError, ValueError):
        raise ConnectorError(f"{where} is not a database URL (expected e.g. {example})"
                             ) from None
    backend = url.get_backend_name()
    if backend not in backends:
        raise ConnectorError(f"{where}: {backend!r} databases are not supported ({supported})")
    url = with_shipped_driver(url)
    if not url.database:
        raise ConnectorError(f"{where} names no database (add /<database> at the end)")
    return url
