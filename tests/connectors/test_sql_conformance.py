"""The sql connector passes the shipped conformance suite on PostgreSQL and on MariaDB.

Contacts live in a table with an auto-increment key (the database makes the ids), products
in one whose text key comes with the record; both have an updated-at column and a
soft-delete column, so every part of the suite runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from connectors.sql import SqlConnector
from hub.connector import NativeRecord
from hub.testing import conformance_suite
from tests.connectors.sql_servers import open_database

CONTACTS_PG = ("id SERIAL PRIMARY KEY, email VARCHAR(120) UNIQUE, first_name VARCHAR(60), "
               "title VARCHAR(80), modified_at TIMESTAMP(6) NULL, deleted_at TIMESTAMP NULL")
CONTACTS_MY = ("id INT AUTO_INCREMENT PRIMARY KEY, email VARCHAR(120) UNIQUE, "
               "first_name VARCHAR(60), title VARCHAR(80), modified_at DATETIME(6) NULL, "
               "deleted_at DATETIME NULL")
PRODUCTS = ("sku VARCHAR(40) PRIMARY KEY, name VARCHAR(100) NOT NULL, unit_price "
            "NUMERIC(10,2), active BOOLEAN, modified_at {ts} NULL, archived BOOLEAN NOT NULL "
            "DEFAULT FALSE")


def _contacts(kind: str) -> Iterator[SqlConnector]:
    for db in open_database(kind):
        table = db.table(CONTACTS_PG, CONTACTS_MY)
        yield db.connector({"contact": {"table": table, "updated_at": "modified_at",
                                        "soft_delete": "deleted_at"}})


def _products(kind: str) -> Iterator[SqlConnector]:
    for db in open_database(kind):
        table = db.table(PRODUCTS.replace("{ts}", "TIMESTAMP(6)"),
                         PRODUCTS.replace("{ts}", "DATETIME(6)"))
        yield db.connector({"products": {"table": table, "updated_at": "modified_at",
                                         "soft_delete": "archived"}})


@pytest.fixture
def pg_contacts() -> Iterator[SqlConnector]:
    """Contacts in an empty auto-increment PostgreSQL table."""
    yield from _contacts("postgresql")


@pytest.fixture
def mariadb_contacts() -> Iterator[SqlConnector]:
    """Contacts in an empty AUTO_INCREMENT MariaDB table."""
    yield from _contacts("mariadb")


@pytest.fixture
def pg_products() -> Iterator[SqlConnector]:
    """Products in an empty PostgreSQL table keyed by SKU."""
    yield from _products("postgresql")


@pytest.fixture
def mariadb_products() -> Iterator[SqlConnector]:
    """Products in an empty MariaDB table keyed by SKU."""
    yield from _products("mariadb")


def new_contact(i: int) -> NativeRecord:
    return {"email": f"ann{i}@example.com", "first_name": f"Ann{i}",
            "modified_at": f"2024-01-01T00:{i // 60 % 60:02d}:{i % 60:02d}Z"}


def changed_contact(record: NativeRecord) -> NativeRecord:
    return {**record, "title": "Head of Sales", "modified_at": "2030-01-01T00:00:00Z"}


def new_product(i: int) -> NativeRecord:
    return {"sku": f"sku-{i}", "name": f"Widget {i}", "unit_price": "12.50", "active": True}


def renamed(record: NativeRecord) -> NativeRecord:
    """Without modified_at: the connector stamps the update with the current time."""
    return {**{k: v for k, v in record.items() if k != "modified_at"}, "name": "Renamed"}


common: dict[str, Any] = {"seed_count": 8, "page_size": 3, "upserts_by_match": True,
                          "deletes_on_write": True}

contacts: dict[str, Any] = {
    "entity": "contact", "new_record": new_contact, "change": changed_contact,
    "id_of": lambda r: str(r["id"]), "match_of": lambda r: {"email": r["email"]},
    "archived": lambda r: r["deleted_at"] is not None, **common}
products: dict[str, Any] = {
    "entity": "product", "new_record": new_product, "change": renamed,
    "id_of": lambda r: str(r["sku"]), "archived": lambda r: r["archived"] in (True, 1),
    **common}

TestPostgresContacts = conformance_suite("pg_contacts", **contacts)
TestMariaDbContacts = conformance_suite("mariadb_contacts", **contacts)
TestPostgresProducts = conformance_suite("pg_products", **products)
TestMariaDbProducts = conformance_suite("mariadb_products", **products)
