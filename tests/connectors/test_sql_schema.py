"""Configured names are checked against the real tables and columns before any SQL is sent."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from connectors.sql import SqlConnector
from hub import registry
from hub.config.model import ConnectionConfig
from hub.connector import WriteOp
from hub.errors import ConnectorError, PermanentError
from tests.connectors.sql_servers import Database, db  # noqa: F401 - the fixture

CUSTOMERS = ("id INTEGER PRIMARY KEY, email VARCHAR(100), name VARCHAR(100), "
             "modified_at TIMESTAMP NULL")


def _read(connector: SqlConnector, obj: str) -> list[dict[str, Any]]:
    return [r for p in connector.read(obj, None, incremental=False, page_size=50)
            for r in p.records]


def test_the_connector_is_registered_as_sql() -> None:
    assert registry.get("sql") is SqlConnector


def test_an_unknown_table_is_refused_naming_it_the_closest_and_the_real_ones(
        db: Database) -> None:  # noqa: F811
    real = db.table(CUSTOMERS, prefix="customers")
    typo = real.replace("customers", "custmers")
    connector = db.connector({"contacts": {"table": typo}})
    health = connector.check()
    assert not health.ok
    for words in ("'erp'", repr(typo), f"did you mean {real!r}", "tables.contacts"):
        assert words in health.message
    with pytest.raises(PermanentError, match=f"there is no table {typo!r}"):
        _read(connector, "contacts")
    connector.close()


def test_an_object_without_settings_is_the_table_of_that_name(db: Database) -> None:  # noqa: F811
    table = db.table(CUSTOMERS)
    db.sql(f"INSERT INTO {table} (id, email) VALUES (1, 'a@x.org')")
    connector = db.connector()
    assert _read(connector, table) == [{"id": 1, "email": "a@x.org", "name": None,
                                        "modified_at": None}]
    with pytest.raises(PermanentError, match="no 'tables' entry"):
        _read(connector, "contacts")
    connector.close()


@pytest.mark.parametrize("setting", ["key", "updated_at", "soft_delete"])
def test_an_unknown_column_in_a_setting_is_refused_listing_the_columns(
        db: Database, setting: str) -> None:  # noqa: F811
    table = db.table(CUSTOMERS)
    connector = db.connector({"contacts": {"table": table, setting: "modfied_at"}})
    health = connector.check()
    assert not health.ok
    assert f"has no column 'modfied_at' (setting tables.contacts.{setting}" in health.message
    assert "did you mean 'modified_at'?" in health.message
    assert "its columns are: email, id, modified_at, name" in health.message
    connector.close()


@pytest.mark.parametrize("name", [
    "customers; DROP TABLE {victim}",
    "{victim}\"; DROP TABLE {victim}; --",
    "{victim}`; DROP TABLE {victim}; --",
    "{victim} WHERE 1=1",
])
def test_an_injection_in_a_table_name_is_refused_and_runs_nothing(
        db: Database, name: str) -> None:  # noqa: F811
    victim = db.table(CUSTOMERS)
    db.sql(f"INSERT INTO {victim} (id) VALUES (1)")
    connector = db.connector({"contacts": {"table": name.format(victim=victim)}})
    assert not connector.check().ok
    with pytest.raises(PermanentError, match="there is no table"):
        _read(connector, "contacts")
    with pytest.raises(PermanentError, match="there is no table"):
        connector.write("contacts", [WriteOp("create", "k", {"id": 2})])
    assert db.rows(victim) == [{"id": 1, "email": None, "name": None, "modified_at": None}]
    connector.close()


def test_an_injection_in_a_column_setting_is_refused(db: Database) -> None:  # noqa: F811
    table = db.table(CUSTOMERS)
    connector = db.connector({"contacts": {"table": table,
                                           "updated_at": "modified_at; DELETE FROM x"}})
    health = connector.check()
    assert not health.ok and "has no column 'modified_at; DELETE FROM x'" in health.message
    connector.close()


def test_an_unknown_schema_is_refused(db: Database) -> None:  # noqa: F811
    table = db.table(CUSTOMERS)
    connector = db.connector({"contacts": {"table": table, "schema": "nope_schema"}})
    health = connector.check()
    assert not health.ok and "schema 'nope_schema' does not exist" in health.message
    connector.close()


def test_a_key_that_is_not_unique_is_refused(db: Database) -> None:  # noqa: F811
    table = db.table(CUSTOMERS)
    connector = db.connector({"contacts": {"table": table, "key": "email"}})
    health = connector.check()
    assert not health.ok
    assert "the key (email) is not unique" in health.message and "(unique: id)" in health.message
    connector.close()


def test_a_table_without_primary_key_needs_a_key_setting(db: Database) -> None:  # noqa: F811
    table = db.table("code VARCHAR(10) NOT NULL UNIQUE, name VARCHAR(20)")
    without = db.connector({"contacts": table})
    assert "has no primary key: name its unique column(s) in tables.contacts.key" \
        in without.check().message
    with_key = db.connector({"contacts": {"table": table, "key": "code"}})
    assert with_key.check().ok
    without.close()
    with_key.close()


def test_written_columns_are_checked_per_record(db: Database) -> None:  # noqa: F811
    table = db.table(CUSTOMERS)
    connector = db.connector({"contacts": table})
    bad, good = connector.write("contacts", [
        WriteOp("create", "bad", {"id": 1, "emial": "a@x.org"}),
        WriteOp("create", "good", {"id": 2, "email": "b@x.org"})])
    assert not bad.ok and good.ok
    assert "no column 'emial' (written by the mapping) (did you mean 'email'?)" in str(bad.error)
    assert [r["id"] for r in db.rows(table)] == [2]
    connector.close()


def test_check_lists_the_configured_tables(db: Database) -> None:  # noqa: F811
    table = db.table(CUSTOMERS)
    connector = db.connector({"contact": {"table": table, "updated_at": "modified_at"}})
    health = connector.check()
    assert health.ok and f"contacts -> {table}" in health.message
    connector.close()


@pytest.mark.parametrize(("tables", "words"), [
    ({"contacts": 5}, "tables.contacts: expected a table name or {table: ..., key: ...}"),
    ({"contacts": {"tabel": "x"}}, "tables.contacts.tabel: unknown key"),
    ({"contacts": {"key": [1]}}, "tables.contacts.key: expected a column name"),
    ({"contact": "a", "contacts": "b"}, "object 'contacts' is configured twice"),
    ({"contacts": {"match": ["email"]}}, "tables.contacts.match: expected match key: column"),
    ("customers", "must map object names to tables"),
])
def test_malformed_table_settings_are_refused_at_construction(tables: Any, words: str) -> None:
    with pytest.raises(ConnectorError, match="setting 'tables'") as caught:
        SqlConnector(ConnectionConfig(name="erp", connector="sql", base_dir=Path("."),
                                      settings={"url": "postgresql://x@h/db",
                                                "tables": tables}))
    assert words in str(caught.value)


@pytest.mark.parametrize(("url", "words"), [
    (None, "setting 'url' is missing"),
    ("not a url", "is not a database URL"),
    ("sqlite:///x.db", "'sqlite' databases are not supported"),
    ("postgresql://u:pw@h", "names no database"),
])
def test_unusable_urls_are_refused_without_echoing_them(url: str | None, words: str) -> None:
    connector = SqlConnector(ConnectionConfig(name="erp", connector="sql", base_dir=Path("."),
                                              settings={"url": url} if url else {}))
    with pytest.raises(ConnectorError, match=words) as caught:
        connector.engine()
    assert "pw" not in str(caught.value)


def test_a_table_in_another_schema_and_a_view_are_read(db: Database) -> None:  # noqa: F811
    if db.mysql:  # a MySQL schema is a database: use the current one by name
        schema = str(db.engine.url.database)
        table = db.table(CUSTOMERS)
    else:
        schema = f"s_{uuid.uuid4().hex[:10]}"
        db.sql(f"CREATE SCHEMA {schema}")
        table = "customers"
        db.sql(f"CREATE TABLE {schema}.{table} ({CUSTOMERS})")
    try:
        db.sql(f"INSERT INTO {schema}.{table} (id, name) VALUES (1, 'Ann')")
        view = f"v_{table}"
        db.sql(f"CREATE VIEW {schema}.{view} AS SELECT id, name FROM {schema}.{table}")
        c = db.connector({"contacts": {"table": table, "schema": schema},
                          "people": {"table": view, "schema": schema, "key": "id"}})
        health = c.check()
        assert health.ok and f"contacts -> {schema}.{table}" in health.message
        assert [r["name"] for r in _read(c, "contacts")] == ["Ann"]
        assert _read(c, "people") == [{"id": 1, "name": "Ann"}]
        c.close()
    finally:
        db.sql(f"DROP VIEW IF EXISTS {schema}.v_{table}")
        if not db.mysql:
            db.sql(f"DROP SCHEMA {schema} CASCADE")
