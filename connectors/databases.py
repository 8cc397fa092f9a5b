"""Database URLs as connectors take them in settings: the drivers Liaison ships with.

A bare dialect name (`postgresql://`, `mysql://`, `mariadb://`) means SQLAlchemy's default
driver for it, which Liaison does not install (psycopg2, mysqlclient); these are the ones it
does. Used by the sql connector (its `url`) and the smtp connector (a `sent_log` database).
"""

from __future__ import annotations

from sqlalchemy.engine import URL

SHIPPED_DRIVERS = {"postgresql": "postgresql+psycopg", "postgres": "postgresql+psycopg",
                   "mysql": "mysql+pymysql", "mariadb": "mariadb+pymysql"}


def with_shipped_driver(url: URL) -> URL:
    """`url` with the driver Liaison ships for its dialect when it names none."""
    driver = SHIPPED_DRIVERS.get(url.drivername)
    return url.set(drivername=driver) if driver is not None else url
