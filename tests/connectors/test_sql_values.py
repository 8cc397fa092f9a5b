"""Values survive a write and a read: database types <-> JSON-friendly native values."""

from __future__ import annotations

import base64
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.connector import WriteOp
from tests.connectors.sql_servers import Database, db  # noqa: F401 - the fixture

COLUMNS_PG = ("id INTEGER PRIMARY KEY, txt VARCHAR(200), big BIGINT, amount NUMERIC(18,4), "
              "at TIMESTAMP(6), atz TIMESTAMPTZ(6), day DATE, flag BOOLEAN, bin_data BYTEA")
COLUMNS_MY = ("id INTEGER PRIMARY KEY, txt VARCHAR(200), big BIGINT, amount DECIMAL(18,4), "
              "at DATETIME(6), atz TIMESTAMP(6) NULL, day DATE, flag BOOLEAN, bin_data BLOB")


def rfc3339(moment: datetime) -> str:
    """What the connector reads a timestamp as (RFC 3339 UTC, ms or us only when needed)."""
    base = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    us = moment.microsecond
    if not us:
        return base + "Z"
    return f"{base}.{us // 1000:03d}Z" if us % 1000 == 0 else f"{base}.{us:06d}Z"


_TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\x00"),
                max_size=200)
_NAIVE = st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9999, 12, 31))
# MySQL TIMESTAMP holds 1970..2038 only.
_AWARE = st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2037, 12, 31),
                      timezones=st.just(UTC))
_AMOUNT = st.decimals(min_value=Decimal("-99999999999999.9999"),
                      max_value=Decimal("99999999999999.9999"), places=4,
                      allow_nan=False, allow_infinity=False)
VALUES: dict[str, st.SearchStrategy[Any]] = {
    "txt": _TEXT,
    "big": st.integers(-(2 ** 63), 2 ** 63 - 1),
    "amount": _AMOUNT.map(lambda d: format(d, "f")),
    "at": _NAIVE.map(lambda d: rfc3339(d.replace(tzinfo=UTC))),
    "atz": _AWARE.map(rfc3339),
    "day": st.dates(min_value=date(1000, 1, 1)).map(date.isoformat),
    "flag": st.booleans(),
    "bin_data": st.binary(max_size=64).map(lambda b: base64.b64encode(b).decode()),
}


def expected(column: str, value: Any, mysql: bool) -> Any:
    """What reading `value` back should give."""
    if value is None:
        return None
    if column == "amount":
        return format(Decimal(value).quantize(Decimal("0.0001")), "f")
    if column == "flag" and mysql:
        return int(value)  # BOOLEAN is TINYINT(1)
    return value


def test_values_round_trip_through_write_and_read(db: Database) -> None:  # noqa: F811
    table = db.table(COLUMNS_PG, COLUMNS_MY)
    c = db.connector({"things": table})

    @settings(max_examples=60, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(record=st.fixed_dictionaries({}, optional={
        k: st.one_of(st.none(), v) for k, v in VALUES.items()}))
    def law(record: dict[str, Any]) -> None:
        db.sql(f"DELETE FROM {table}")
        result, = c.write("things", [WriteOp("create", "k", {"id": 1, **record})])
        assert result.ok, result.error
        read = [r for p in c.read("things", None, incremental=False, page_size=5)
                for r in p.records]
        want = {k: expected(k, record.get(k), db.mysql) for k in VALUES}
        assert read == [{"id": 1, **want}]
        assert result.record == read[0]

    law()
    c.close()


def test_naive_columns_are_read_in_the_configured_zone(db: Database) -> None:  # noqa: F811
    aware = "atz TIMESTAMP NULL" if db.mysql else "atz TIMESTAMPTZ"
    local = "at DATETIME" if db.mysql else "at TIMESTAMP"
    table = db.table(f"id INTEGER PRIMARY KEY, {local}, {aware}")
    c = db.connector({"events": table}, timezone="Europe/Berlin")
    result, = c.write("events", [WriteOp("create", "k", {
        "id": 1, "at": "2024-07-01T10:00:00Z", "atz": "2024-07-01T10:00:00+00:00"})])
    assert result.ok
    raw = db.rows(table)[0]
    assert raw["at"] == datetime(2024, 7, 1, 12, 0)  # Berlin summer time, as the ERP shows it
    assert raw["atz"].replace(tzinfo=raw["atz"].tzinfo or UTC) == datetime(2024, 7, 1, 10,
                                                                           tzinfo=UTC)
    assert result.record == {"id": 1, "at": "2024-07-01T10:00:00Z",
                             "atz": "2024-07-01T10:00:00Z"}
    # A time written without an offset is already local to the column's zone.
    c.write("events", [WriteOp("update", "u", {"at": "2024-01-01T09:30:00"}, external_id="1")])
    assert c.fetch("events", "1") == {"id": 1, "at": "2024-01-01T08:30:00Z",
                                      "atz": "2024-07-01T10:00:00Z"}
    c.close()


@pytest.mark.parametrize(("column", "value", "words"), [
    ("at", "next tuesday", "expects a date and time like 2024-05-31T08:30:00Z"),
    ("day", "31/05/2024", "expects a date like 2024-05-31"),
    ("amount", "12,50", "expects a number like 12.50"),
    ("flag", "maybe", "expects true or false"),
    ("bin_data", "not base64!", "expects base64 text"),
    ("txt", {"a": 1}, "expects a single value"),
    ("big", "1.5", "expects a whole number"),
])
def test_a_value_the_column_cannot_hold_fails_naming_the_column(
        db: Database, column: str, value: Any, words: str) -> None:  # noqa: F811
    table = db.table(COLUMNS_PG, COLUMNS_MY)
    c = db.connector({"things": table})
    result, = c.write("things", [WriteOp("create", "k", {"id": 1, column: value})])
    assert not result.ok
    assert f"row id=1: column {column!r} {words}" in str(result.error)
    c.close()


def test_text_values_are_accepted_for_typed_columns(db: Database) -> None:  # noqa: F811
    table = db.table(COLUMNS_PG, COLUMNS_MY)
    c = db.connector({"things": table})
    result, = c.write("things", [WriteOp("create", "k", {
        "id": "7", "big": "42", "amount": 12.5, "flag": "yes", "day": "2024-05-31T00:00:00Z",
        "txt": 5})])
    assert result.ok and result.external_id == "7"
    assert result.record is not None
    assert {k: result.record[k] for k in ("big", "amount", "day", "txt")} == {
        "big": 42, "amount": "12.5000", "day": "2024-05-31", "txt": "5"}
    assert result.record["flag"] in (True, 1)
    c.close()


def test_a_date_updated_at_column_is_stamped_with_the_date(db: Database) -> None:  # noqa: F811
    table = db.table("id INTEGER PRIMARY KEY, touched DATE")
    c = db.connector({"things": {"table": table, "updated_at": "touched"}})
    before = datetime.now(UTC).date()
    result, = c.write("things", [WriteOp("create", "k", {"id": 1})])
    after = datetime.now(UTC).date()
    assert result.record is not None
    assert str(before) <= result.record["touched"] <= str(after)
    c.close()
