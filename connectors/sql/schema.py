"""Reflection: every configured name checked against the database's real tables and columns.

A table, schema or column name from the config is used only after it was found, exactly,
among the names the database lists; then the table is reflected and every statement is
built from the reflected `Table` (quoted identifiers, bound values). A name that is not
there, an attempted injection included, is refused with a message naming the connection,
the table, the unknown name, the closest real one and the real ones.

The key (configured, else the primary key) must be unique (the primary key or a unique
constraint/index on exactly those columns): keyset paging and upserts both rely on it.
Views are accepted for reading with a configured key (their uniqueness cannot be checked).
"""

from __future__ import annotations

import difflib
import json
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection

from connectors.sql.settings import TableSettings
from connectors.sql.values import ValueProblem, Zones, to_db, to_native
from hub.errors import PermanentError

KEY_FIELD = "__key__"  # the external id of a row with a composite key (a JSON list)
_LISTED = 40  # names listed at most in a message


def did_you_mean(name: str, real: Iterable[str], what: str) -> str:
    """" (did you mean 'x'?); <what>: a, b, c" for a message about an unknown name."""
    names = sorted(real)
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    if not close:
        close = [n for n in names if n.lower() == name.lower()][:1]
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    shown = ", ".join(names[:_LISTED]) + (f", ... ({len(names)} in all)"
                                          if len(names) > _LISTED else "")
    return f"{hint}; {what}: {shown or 'none'}"


@dataclass(frozen=True)
class BoundTable:
    """A configured object bound to its reflected table, with its roles' columns."""

    settings: TableSettings
    table: sa.Table
    key: tuple[sa.Column[Any], ...]
    label: str  # "table customers of system erp", for messages
    updated_at: sa.Column[Any] | None = None
    soft_delete: sa.Column[Any] | None = None
    match: Mapping[str, sa.Column[Any]] = field(default_factory=dict)
    generated_key: bool = False  # one auto-increment/serial/identity key column
    other_unique: bool = False  # unique indexes besides the key's
    is_view: bool = False

    @property
    def key_names(self) -> tuple[str, ...]:
        """The key columns' names."""
        return tuple(c.name for c in self.key)

    def column(self, name: str, role: str) -> sa.Column[Any]:
        """The column called `name`; PermanentError naming the table and the real columns."""
        found = self.table.c.get(name)
        if found is None:
            raise PermanentError(unknown_column(self.label, name, role, self.table))
        return found

    def external_id(self, values: Iterable[Any], zones: Zones) -> str:
        """The external id of a row from its key values as read from the database."""
        texts = [to_native(c, v, zones) for c, v in zip(self.key, values, strict=True)]
        if len(texts) == 1:
            return str(texts[0])
        return json.dumps([str(t) for t in texts], ensure_ascii=False)

    def key_values(self, external_id: str, zones: Zones) -> tuple[Any, ...]:
        """The key values (database types) of an external id; ValueProblem if malformed."""
        if len(self.key) == 1:
            return (to_db(self.key[0], external_id, zones),)
        try:
            parts = json.loads(external_id)
        except ValueError:
            parts = None
        if not isinstance(parts, list) or len(parts) != len(self.key):
            raise ValueProblem(f"expects a JSON list of {len(self.key)} key values "
                               f"({', '.join(self.key_names)}), got {external_id!r}")
        return tuple(to_db(c, p, zones) for c, p in zip(self.key, parts, strict=True))

    def describe_key(self, values: Iterable[Any]) -> str:
        """"id=7" or "(order_no, line)=(10, 2)" for messages."""
        vals = [str(v) for v in values]
        if len(vals) == 1:
            return f"{self.key[0].name}={vals[0]}"
        return f"({', '.join(self.key_names)})=({', '.join(vals)})"


def unknown_column(label: str, name: str, role: str, table: sa.Table) -> str:
    """The message for a column name that the table does not have."""
    subject = f"{label} has" if label else "the table has"
    return (f"{subject} no column {name!r} ({role})"
            + did_you_mean(name, [c.name for c in table.c], "its columns are"))


def reflect(conn: Connection, settings: TableSettings, system: str) -> BoundTable:
    """Find and reflect the table of `settings`; PermanentError listing what is wrong."""
    inspector = sa.inspect(conn)
    setting = settings.setting or f"the mapping's object {settings.object!r} (no 'tables' entry)"
    is_view = _locate(conn, inspector, settings, system, setting)
    schema, name = settings.schema, settings.table
    with warnings.catch_warnings():
        # A column type SQLAlchemy does not know (MariaDB INET6, PostGIS ...) is read and
        # written as the driver gives it; no need to warn about it.
        warnings.filterwarnings("ignore", "Did not recognize type", sa_exc.SAWarning)
        table = sa.Table(name, sa.MetaData(), schema=schema, autoload_with=conn)
        uniques = _unique_sets(inspector, name, schema)
    label = f"table {table.fullname} of system {system!r}"
    problems: list[str] = []

    def col(column: str | None, role: str) -> sa.Column[Any] | None:
        found = table.c.get(column) if column is not None else None
        if column is not None and found is None:
            problems.append(unknown_column(label, column, f"setting {setting}.{role}", table))
        return found

    key = [col(k, "key") for k in settings.key] or list(table.primary_key.columns)
    updated = col(settings.updated_at, "updated_at")
    soft = col(settings.soft_delete, "soft_delete")
    match = {m: col(c, f"match.{m}") for m, c in settings.match.items()}
    keys = [k for k in key if k is not None]
    if len(keys) == len(key):
        problems.extend(_key_problems(label, setting, keys, uniques, is_view))
    if soft is not None and not isinstance(soft.type, (sa.Boolean, sa.Integer, sa.DateTime,
                                                       sa.Date)):
        problems.append(f"{label}: soft_delete column {soft.name!r} must be a boolean, integer "
                        f"or date/time column (it is {soft.type}); archive sets it to true, 1 "
                        "or the current time")
    if problems:
        raise PermanentError("\n".join(problems))
    generated = len(keys) == 1 and keys[0].autoincrement is True \
        and isinstance(keys[0].type, sa.Integer)
    return BoundTable(settings=settings, table=table, key=tuple(keys), label=label,
                      updated_at=updated, soft_delete=soft,
                      match={m: c for m, c in match.items() if c is not None},
                      generated_key=generated,
                      other_unique=bool(uniques - {frozenset(k.name for k in keys)}),
                      is_view=is_view)


def _locate(conn: Connection, inspector: Any, settings: TableSettings, system: str,
            setting: str) -> bool:
    """Check the schema and table names exist exactly; whether the table is a view."""
    schema, name = settings.schema, settings.table
    if schema is not None:
        schemas = inspector.get_schema_names()
        if schema not in schemas:
            raise PermanentError(f"system {system!r}: schema {schema!r} does not exist "
                                 f"(setting {setting}.schema)"
                                 + did_you_mean(schema, schemas, "schemas"))
    tables = inspector.get_table_names(schema=schema)
    views = inspector.get_view_names(schema=schema)
    if name in tables or name in views:
        return name not in tables
    where = f"schema {schema}" if schema else f"database {conn.engine.url.database}"
    raise PermanentError(f"system {system!r}: there is no table {name!r} in {where} "
                         f"(set by {setting})" + did_you_mean(name, tables + views,
                                                             "tables there"))


def _key_problems(label: str, setting: str, keys: list[sa.Column[Any]],
                  uniques: set[frozenset[str]], is_view: bool) -> list[str]:
    if not keys:
        return [f"{label} has no primary key: name its unique column(s) in {setting}.key"
                if setting.startswith("tables.") else
                f"{label} has no primary key: configure its unique column(s) under the "
                "connection's 'tables' as {<object>: {key: <column>}}"]
    if is_view or frozenset(k.name for k in keys) in uniques:
        return []  # a view's uniqueness cannot be checked: its configured key is trusted
    shown = f" (unique: {_shown_sets(uniques)})" if uniques else ""
    names = ", ".join(k.name for k in keys)
    return [(f"{label}: the key ({names}) is not unique (no primary key or unique index on "
             "exactly these columns); keyset reading and upserts need one: choose unique "
             f"column(s) in {setting}.key{shown}")]


def _unique_sets(inspector: Any, table: str, schema: str | None) -> set[frozenset[str]]:
    found: set[frozenset[str]] = set()
    pk = inspector.get_pk_constraint(table, schema=schema).get("constrained_columns") or []
    if pk:
        found.add(frozenset(pk))
    for uc in inspector.get_unique_constraints(table, schema=schema):
        found.add(frozenset(uc["column_names"]))
    for ix in inspector.get_indexes(table, schema=schema):
        names = [n for n in ix.get("column_names") or [] if n]
        # An index over expressions has None among its columns: it is no key we can use.
        if ix.get("unique") and len(names) == len(ix.get("column_names") or []):
            found.add(frozenset(names))
    return found


def _shown_sets(sets: set[frozenset[str]]) -> str:
    return "; ".join(sorted(", ".join(sorted(s)) for s in sets))
