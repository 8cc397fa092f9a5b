"""Database values <-> the JSON-friendly values of native records, one column at a time.

Reading (`to_native`):
    NULL -> None; text, integers, booleans, floats as they are; DECIMAL/NUMERIC -> decimal
    text ("12.50", never an exponent); timestamps -> RFC 3339 UTC text ("...Z"); a naive
    timestamp is read in its column's zone first (see `Zones`); DATE -> "2024-05-31";
    TIME -> "08:30:00"; intervals -> seconds (a number); binary -> base64 text (the only
    lossless text form; write it back as base64 too); UUID -> text; JSON -> as stored;
    arrays -> lists; MySQL SET -> a sorted list; anything else -> its text.

Writing (`to_db`) accepts what the mappings produce (mostly text) and converts it for the
column's type, so a wrong value fails with the column's name and what was expected instead
of a driver message: RFC 3339 / ISO text for timestamps and dates, numbers or numeric text
for numeric columns, true/false/yes/no/1/0 for booleans (also for MySQL's BOOLEAN, which
is TINYINT(1) and reads as 0/1), base64 for binary. Text longer
than a VARCHAR(n) allows is refused here, because PostgreSQL's own error does not say which
column was too long.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import Decimal, InvalidOperation
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.sql import sqltypes


class ValueProblem(Exception):
    """A value cannot be stored in a column; the text says what was expected."""


@dataclass(frozen=True)
class Zones:
    """Which zone a naive timestamp column's values are in.

    A column WITH a time zone (PostgreSQL timestamptz) needs none. MySQL/MariaDB TIMESTAMP
    columns are converted by the server to the session's zone, which the connector sets to
    UTC; every other naive column (DATETIME, timestamp without time zone) holds local times
    in the connection's `timezone` setting (default UTC).
    """

    local: tzinfo
    mysql: bool

    def of(self, column: sa.Column[Any]) -> tzinfo | None:
        """The zone of a naive column's values (None: the column stores the offset)."""
        kind = column.type
        if getattr(kind, "timezone", False):
            return None
        if self.mysql and isinstance(kind, sa.TIMESTAMP):
            return UTC
        return self.local


def rfc3339(moment: datetime) -> str:
    """An aware datetime as RFC 3339 UTC text; the fraction only when nonzero."""
    moment = moment.astimezone(UTC)
    base = moment.strftime("%Y-%m-%dT%H:%M:%S")
    us = moment.microsecond
    if not us:
        return base + "Z"
    # Milliseconds when that is exact, else microseconds: like the `datetime` transform.
    return f"{base}.{us // 1000:03d}Z" if us % 1000 == 0 else f"{base}.{us:06d}Z"


def decimal_text(value: Decimal) -> str:
    """A Decimal as plain text ("1E+2" -> "100")."""
    return format(value, "f")


def to_native(column: sa.Column[Any], value: Any, zones: Zones) -> Any:
    """A value read from `column` as a JSON-friendly value."""
    if value is None or isinstance(value, (bool, int, str, float)):
        return value
    if isinstance(value, Decimal):
        return decimal_text(value)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=zones.of(column) or UTC)
        return rfc3339(value)
    if isinstance(value, (date, time)):
        return value.isoformat()
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
        return int(seconds) if seconds.is_integer() else seconds
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, (set, frozenset)):
        return sorted(str(v) for v in value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)  # UUID, inet, ranges, ...


def _plain(value: Any) -> Any:
    """An element of an array or JSON value, converted without a column to go by."""
    if isinstance(value, datetime) and value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return to_native(sa.Column("element", sa.String()), value, Zones(UTC, False))


# ---------------------------------------------------------------- writing

_TRUE = frozenset(("true", "t", "yes", "y", "1", "on"))
_FALSE = frozenset(("false", "f", "no", "n", "0", "off"))


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _moment(value: Any, zone: tzinfo | None) -> datetime:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00")
                                            .replace("z", "+00:00"))
        except ValueError:
            raise ValueProblem(f"expects a date and time like 2024-05-31T08:30:00Z, got "
                               f"{_shown(value)}") from None
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    else:
        raise ValueProblem(f"expects a date and time like 2024-05-31T08:30:00Z, got "
                           f"{_shown(value)}")
    if zone is None:  # the column stores the offset: give it an aware value
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    if moment.tzinfo is None:
        return moment  # already a local time of the column's zone
    return moment.astimezone(zone).replace(tzinfo=None)


def _date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            return date.fromisoformat(text[:10]) if len(text) > 10 and text[10] in "T " \
                else date.fromisoformat(text)
        except ValueError:
            pass
    raise ValueProblem(f"expects a date like 2024-05-31, got {_shown(value)}")


def _time(value: Any) -> time:
    if isinstance(value, time):
        return value
    if isinstance(value, str):
        try:
            return time.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ValueProblem(f"expects a time like 08:30:00, got {_shown(value)}")


def _decimal(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise ValueProblem(f"expects a number, got {_shown(value)}")
    try:
        number = Decimal(str(value).strip()) if isinstance(value, (str, int, float, Decimal)) \
            else None
    except InvalidOperation:
        number = None
    if number is None or not number.is_finite():
        raise ValueProblem(f"expects a number like 12.50, got {_shown(value)}")
    return number


def _integer(value: Any) -> int:
    if isinstance(value, bool):
        return int(value)  # MySQL BOOLEAN is TINYINT(1)
    if isinstance(value, int):
        return value
    try:
        number: Decimal | None = _decimal(value)
    except ValueProblem:
        number = None
    if number is None or number != number.to_integral_value():
        raise ValueProblem(f"expects a whole number, got {_shown(value)}")
    return int(number)


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueProblem(f"expects true or false, got {_shown(value)}")


def _flag(value: Any) -> int:
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return int(value.strip().lower() in _TRUE)
    try:
        return _integer(value)
    except ValueProblem:
        raise ValueProblem(f"expects true or false (or a whole number), got "
                           f"{_shown(value)}") from None


def _binary(value: Any) -> bytes:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            pass
    raise ValueProblem(f"expects base64 text (binary column), got {_shown(value)}")


def _text(value: Any, length: int | None) -> str:
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (str, int, float, Decimal)):
        text = decimal_text(value) if isinstance(value, Decimal) else str(value)
    else:
        raise ValueProblem(f"expects text, got {_shown(value)}")
    if length is not None and len(text) > length:
        raise ValueProblem(f"holds at most {length} characters, got {len(text)} "
                           f"({_shown(text)})")
    return text


def _uuid(value: Any) -> uuid.UUID:
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except ValueError:
        raise ValueProblem(f"expects a UUID, got {_shown(value)}") from None


def _interval(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    return timedelta(seconds=float(_decimal(value)))


def _converter(column: sa.Column[Any], zones: Zones) -> Callable[[Any], Any]:
    kind = column.type
    if isinstance(kind, sa.DateTime):
        zone = zones.of(column)
        return lambda v: _moment(v, zone)
    if isinstance(kind, sa.Date):
        return _date
    if isinstance(kind, sa.Time):
        return _time
    if isinstance(kind, sa.Interval):
        return _interval
    if isinstance(kind, sa.Boolean):
        return _boolean
    if isinstance(kind, mysql.TINYINT) and kind.display_width == 1:
        return _flag  # MySQL's BOOLEAN
    if isinstance(kind, sa.Integer):
        return _integer
    if isinstance(kind, sa.Float):
        return lambda v: float(_decimal(v))
    if isinstance(kind, sa.Numeric):
        return _decimal
    if isinstance(kind, sa.Uuid):
        return _uuid
    if isinstance(kind, sa.JSON):
        return lambda v: v
    if isinstance(kind, sa.ARRAY):
        item = _converter(sa.Column(column.name, kind.item_type), zones)
        return lambda v: [None if x is None else item(x) for x in _listed(v)]
    if isinstance(kind, sqltypes._Binary):
        return _binary
    if isinstance(kind, sa.Enum):
        return lambda v: _text(v, None)
    if isinstance(kind, sa.String):
        length = kind.length
        return lambda v: _text(v, length)
    return lambda v: v  # a type we do not know: the driver decides


def _listed(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise ValueProblem(f"expects a list, got {_shown(value)}")
    return value


def converter(column: sa.Column[Any], zones: Zones) -> Callable[[Any], Any]:
    """A function converting native values for `column` (ValueProblem if one cannot be)."""
    convert = _converter(column, zones)
    structured = isinstance(column.type, (sa.JSON, sa.ARRAY))

    def to_column(value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, (dict, list)) and not structured:
            raise ValueProblem(f"expects a single value, got {_shown(value)}")
        return convert(value)
    return to_column


def to_db(column: sa.Column[Any], value: Any, zones: Zones) -> Any:
    """`value` (from a native record) converted for `column`; ValueProblem if it cannot be."""
    return converter(column, zones)(value)


def stamp(column: sa.Column[Any], zones: Zones) -> Any:
    """The current time as `column` stores it, or None when it is no time column."""
    now = datetime.now(UTC)
    kind = column.type
    if isinstance(kind, sa.DateTime):
        zone = zones.of(column)
        return now if zone is None else now.astimezone(zone).replace(tzinfo=None)
    if isinstance(kind, sa.Date):
        return now.astimezone(zones.local).date()
    return None
