"""The sql connector's settings: the database URL and what each object's table is.

    url: ${ERP_DB_URL}             # postgresql+psycopg://user@host/db, mysql+pymysql://...
    timezone: Europe/Berlin        # what naive DATETIME/timestamp columns mean (default UTC)
    tables:
      contacts: customers          # shorthand: object -> table
      companies:                   # or the full form
        table: firms
        schema: erp                # optional (PostgreSQL schema / MySQL database)
        key: [firm_no]             # default: the table's primary key
        updated_at: modified_at    # optional: incremental reads, stamped on write
        soft_delete: deleted       # optional: archive sets it (true, 1 or the current time)
        match: {domain: web_domain}  # optional: match key -> column, for repeat-safe creates

Keys of `tables` are object names (a mapping's `object`); a canonical entity name stands for
its default object (`contact` -> `contacts`). An object not listed is a table of that name.
Only the SHAPE is checked here (no I/O in the constructor); whether the names exist is
checked against the database by schema.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.engine import URL

from connectors.databases import database_url as parse_url
from hub.config.model import ConnectionConfig
from hub.errors import ConnectorError

OBJECTS = {
    "company": "companies", "contact": "contacts", "deal": "deals", "invoice": "invoices",
    "payment": "payments", "product": "products", "project": "projects", "task": "tasks",
    "message": "messages",
}
TABLE_KEYS = ("table", "schema", "key", "updated_at", "soft_delete", "match")
_BACKENDS = ("postgresql", "mysql", "mariadb")


@dataclass(frozen=True)
class TableSettings:
    """What one object's table is, as configured (names not yet checked)."""

    object: str
    table: str
    schema: str | None = None
    key: tuple[str, ...] = ()  # empty: the table's primary key
    updated_at: str | None = None
    soft_delete: str | None = None
    match: Mapping[str, str] = field(default_factory=dict)  # match key -> column
    setting: str = ""  # where it was configured, e.g. "tables.contacts (hub.yaml:12)"


def _where(connection: ConnectionConfig, key: str) -> str:
    where = connection.where_of(key)
    return f" ({where})" if where else ""


def parse_tables(connection: ConnectionConfig) -> dict[str, TableSettings]:
    """The `tables` setting by object name; ConnectorError listing every shape problem."""
    raw = connection.settings.get("tables") or {}
    at = _where(connection, "tables")
    prefix = f"system {connection.name!r}: setting 'tables'{at}"
    if not isinstance(raw, Mapping):
        raise ConnectorError(f"{prefix} must map object names to tables, like "
                             "{contacts: {table: customers, key: id}}")
    problems: list[str] = []
    found: dict[str, TableSettings] = {}
    for name, spec in raw.items():
        obj = OBJECTS.get(str(name), str(name))
        here = f"tables.{name}"
        if obj in found:
            problems.append(f"{here}: object {obj!r} is configured twice ({name!r} stands "
                            f"for {obj!r})")
            continue
        parsed = _table(obj, here, spec, problems)
        if parsed is not None:
            found[obj] = TableSettings(**{**parsed, "setting": f"{here}{at}"})
    if problems:
        raise ConnectorError(f"{prefix}:\n  " + "\n  ".join(problems))
    return found


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _table(obj: str, here: str, spec: Any, problems: list[str]) -> dict[str, Any] | None:
    if isinstance(spec, str):
        spec = {"table": spec}
    if not isinstance(spec, Mapping):
        problems.append(f"{here}: expected a table name or {{table: ..., key: ...}}, got "
                        f"{spec!r}")
        return None
    before = len(problems)
    for key in spec:
        if key not in TABLE_KEYS:
            problems.append(f"{here}.{key}: unknown key; known keys: {', '.join(TABLE_KEYS)}")
    out: dict[str, Any] = {"object": obj, "table": _text(spec.get("table", obj))}
    if out["table"] is None:
        problems.append(f"{here}.table: expected a table name")
    for name in ("schema", "updated_at", "soft_delete"):
        value = spec.get(name)
        out[name] = _text(value)
        if value is not None and out[name] is None:
            problems.append(f"{here}.{name}: expected a name, got {value!r}")
    key = spec.get("key", [])
    keys = [key] if isinstance(key, str) else key
    if not isinstance(keys, list) or not all(_text(k) for k in keys):
        problems.append(f"{here}.key: expected a column name or a list of them, got {key!r}")
        keys = []
    out["key"] = tuple(keys)
    match = spec.get("match") or {}
    if not isinstance(match, Mapping) or not all(_text(v) for v in match.values()):
        problems.append(f"{here}.match: expected match key: column, like {{email: "
                        f"email_address}}, got {match!r}")
        match = {}
    out["match"] = {str(k): str(v) for k, v in match.items()}
    return out if len(problems) == before else None


def database_url(connection: ConnectionConfig) -> URL:
    """The `url` setting as a SQLAlchemy URL (secret revealed now); ConnectorError if unusable.

    The URL is never repeated in a message: it may hold a password.
    """
    raw = connection.setting("url")
    at = _where(connection, "url")
    if not raw or not isinstance(raw, str):
        raise ConnectorError(f"system {connection.name!r}: setting 'url'{at} is missing (a "
                             "SQLAlchemy URL like postgresql+psycopg://user@host/db, given "
                             "as ${ENV_VARIABLE})")
    return parse_url(raw, where=f"system {connection.name!r}: setting 'url'{at}",
                     backends=_BACKENDS, supported="PostgreSQL, MariaDB or MySQL",
                     example="postgresql+psycopg://user@host/db or mysql+pymysql://user@host/db")


def time_zone(connection: ConnectionConfig) -> ZoneInfo:
    """The `timezone` setting (default UTC); ConnectorError for an unknown zone."""
    name = str(connection.setting("timezone") or "UTC")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConnectorError(f"system {connection.name!r}: setting 'timezone'"
                             f"{_where(connection, 'timezone')}: unknown time zone {name!r} "
                             "(e.g. UTC, Europe/Berlin, America/New_York)") from None
