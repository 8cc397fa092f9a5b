"""The registry of named, pure value transforms a mapping may use, each with its inverse.

A transform is written in a mapping as a bare name (`trim`), a name with one value for its
main parameter (`{split: ";"}`), or a name with a parameter object
(`{map: {values: {lead: Lead}, fallback: Other}}`). `build_transform` turns that into a
`Transform`: a forward function (native -> canonical), an inverse (canonical -> native, or
None when there is none) and whether it is a normaliser (its inverse is the identity:
trimming or lower-casing cannot be undone and need not be).

Every function here takes None to None (so an explicit null stays null) unless it exists
to replace None (`default`). Typed parsers (decimal, int, date, ...) also read an empty or
blank string as None, because spreadsheets write "no value" that way. A value a transform
cannot handle raises `hub.errors.RecordMappingError` naming the transform, the value and
what was expected; the engine adds the record id and the field.

Canonical forms: decimals are plain strings without exponent or trailing fractional zeros
("1234.5", "10", "-0.25"; `places: N` fixes the scale instead: "1234.50"); datetimes are
RFC 3339 UTC "YYYY-MM-DDTHH:MM:SSZ" with ".mmm" (or ".ffffff") only when the fraction is
nonzero; dates are "YYYY-MM-DD"; phones E.164; countries ISO 3166-1 alpha-2.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Context, Decimal, InvalidOperation
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from hub.errors import RecordMappingError
from hub.mapping.specerror import SpecError

Fn = Callable[[Any], Any]


@dataclass(frozen=True)
class Transform:
    """A compiled transform: forward (native -> canonical), inverse, and whether it normalises."""

    name: str
    forward: Fn
    inverse: Fn | None
    normaliser: bool = False
    fills_missing: bool = False  # `default`: an absent value should still reach it
    text_op: Callable[[str], str] | None = None  # trim/lower/upper: fused when adjacent


@dataclass(frozen=True)
class TransformDef:
    """A registry entry: the factory, the parameters it accepts and its main parameter."""

    factory: Callable[[dict[str, Any]], Transform]
    params: tuple[str, ...] = ()
    main: str | None = None
    doc: str = ""


REGISTRY: dict[str, TransformDef] = {}


def _register(name: str, params: tuple[str, ...] = (), main: str | None = None,
              doc: str = "") -> Callable[[Callable[[dict[str, Any]], Transform]],
                                         Callable[[dict[str, Any]], Transform]]:
    def deco(factory: Callable[[dict[str, Any]], Transform]) -> Callable[
            [dict[str, Any]], Transform]:
        REGISTRY[name] = TransformDef(factory, params, main, doc)
        return factory
    return deco


def known_names() -> str:
    """The known transform names, comma-separated, for error messages."""
    return ", ".join(sorted(REGISTRY))


def parse_spec(raw: Any) -> tuple[str, dict[str, Any]]:
    """Split a transform as written (`trim`, `{split: ";"}`, `{map: {...}}`) into name+params."""
    if isinstance(raw, str):
        name, value = raw, None
    elif isinstance(raw, dict) and len(raw) == 1:
        name, value = next(iter(raw.items()))
    else:
        raise SpecError("a transform is a name (like trim) or a one-key object "
                        f"(like {{split: \";\"}}); known transforms: {known_names()}")
    tdef = REGISTRY.get(name)
    if tdef is None:
        raise SpecError(f"unknown transform {name!r}; known transforms: {known_names()}")
    if value is None:
        return name, {}
    if isinstance(value, dict) and value and set(value) <= set(tdef.params):
        return name, dict(value)
    if tdef.main is None:
        if isinstance(value, dict):
            unknown = ", ".join(sorted(set(value) - set(tdef.params)))
            accepted = ", ".join(tdef.params) or "none"
            raise SpecError(f"transform {name}: unknown parameter(s) {unknown} "
                            f"(accepted: {accepted})")
        raise SpecError(f"transform {name} takes no value; write it as plain `{name}`")
    return name, {tdef.main: value}


def build_transform(raw: Any) -> Transform:
    """Compile one transform as written in a mapping; SpecError if unknown or badly configured."""
    name, params = parse_spec(raw)
    return REGISTRY[name].factory(params)


def compile_chain(transforms: list[Transform]) -> Fn | None:
    """One function applying `transforms` in order (None when there are none)."""
    fns: list[Fn] = []
    ops: list[Callable[[str], str]] = []
    for t in transforms:
        if t.text_op is not None:
            ops.append(t.text_op)
            continue
        if ops:
            fns.append(_fused(ops))
            ops = []
        fns.append(t.forward)
    if ops:
        fns.append(_fused(ops))
    return _chain(fns)


def _fused(ops: list[Callable[[str], str]]) -> Fn:
    # [trim, lower] is the commonest chain; one function and one type check instead of two.
    if len(ops) == 1:
        op = ops[0]
        return lambda v: op(v) if isinstance(v, str) else v
    if len(ops) == 2:
        op1, op2 = ops
        return lambda v: op2(op1(v)) if isinstance(v, str) else v
    steps = tuple(ops)

    def fused(v: Any) -> Any:
        if isinstance(v, str):
            for op in steps:
                v = op(v)
        return v
    return fused


def compile_inverse(transforms: list[Transform]) -> tuple[Fn | None, str | None]:
    """The inverse chain (inverses, reversed; normalisers skipped) or the name of a blocker."""
    fns: list[Fn] = []
    for t in reversed(transforms):
        if t.normaliser:
            continue
        if t.inverse is None:
            return None, t.name
        fns.append(t.inverse)
    return _chain(fns), None


def _chain(fns: list[Fn]) -> Fn | None:
    if not fns:
        return None
    if len(fns) == 1:
        return fns[0]
    if len(fns) == 2:
        f1, f2 = fns

        def two(v: Any) -> Any:
            return f2(f1(v))
        return two
    chain = tuple(fns)

    def many(v: Any) -> Any:
        for f in chain:
            v = f(v)
        return v
    return many


# ---------------------------------------------------------------- helpers

def fail(name: str, expected: str, value: Any) -> RecordMappingError:
    """The error a transform raises for a value it cannot handle."""
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return RecordMappingError(f"{name}: expected {expected}, got {shown}")


def _param(name: str, params: dict[str, Any], key: str, kind: type | tuple[type, ...],
           what: str, default: Any = None) -> Any:
    value = params.get(key, default)
    if value is not None and (not isinstance(value, kind) or isinstance(value, bool)
                              and kind is not bool):
        raise SpecError(f"transform {name}: {key} must be {what}, got {value!r}")
    return value


def _check_params(name: str, params: dict[str, Any]) -> None:
    allowed = REGISTRY[name].params
    extra = sorted(set(params) - set(allowed))
    if extra:
        raise SpecError(f"transform {name}: unknown parameter(s) {', '.join(extra)} "
                        f"(accepted: {', '.join(allowed) or 'none'})")


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _identity(v: Any) -> Any:
    return v


# ---------------------------------------------------------------- text

def _text_op(name: str, op: Callable[[str], str]) -> Transform:
    def fwd(v: Any) -> Any:
        # A normaliser has nothing to do to a number or a boolean: pass it on unchanged.
        return op(v) if isinstance(v, str) else v
    return Transform(name, fwd, None, normaliser=True, text_op=op)


@_register("trim", doc="strip surrounding whitespace")
def _trim(params: dict[str, Any]) -> Transform:
    _check_params("trim", params)
    return _text_op("trim", str.strip)


@_register("lower", doc="lower-case text")
def _lower(params: dict[str, Any]) -> Transform:
    _check_params("lower", params)
    return _text_op("lower", str.lower)


@_register("upper", doc="upper-case text")
def _upper(params: dict[str, Any]) -> Transform:
    _check_params("upper", params)
    return _text_op("upper", str.upper)


def _split_fn(name: str, sep: str, trim: bool) -> Fn:
    def split(v: Any) -> Any:
        if v is None or isinstance(v, list):
            return v
        if not isinstance(v, str):
            raise fail(name, f"text separated by {sep!r}", v)
        parts = v.split(sep)
        if trim:
            return [p.strip() for p in parts if p.strip()]
        return [p for p in parts if p]
    return split


def _join_fn(name: str, sep: str) -> Fn:
    def join(v: Any) -> Any:
        if v is None or isinstance(v, str):
            return v
        if not isinstance(v, list):
            raise fail(name, "a list", v)
        return sep.join("" if x is None else str(x) for x in v)
    return join


@_register("split", ("sep", "trim"), "sep", "text -> list (inverse: join)")
def _split(params: dict[str, Any]) -> Transform:
    _check_params("split", params)
    sep = _param("split", params, "sep", str, "text", ",")
    trim = _param("split", params, "trim", bool, "true or false", True)
    if not sep:
        raise SpecError("transform split: sep must not be empty")
    return Transform("split", _split_fn("split", sep, trim), _join_fn("split", sep))


@_register("join", ("sep",), "sep", "list -> text (inverse: split)")
def _join(params: dict[str, Any]) -> Transform:
    _check_params("join", params)
    sep = _param("join", params, "sep", str, "text", ",")
    if not sep:
        raise SpecError("transform join: sep must not be empty")
    return Transform("join", _join_fn("join", sep), _split_fn("join", sep, True))


@_register("default", ("value",), "value", "replace null/absent with a value")
def _default(params: dict[str, Any]) -> Transform:
    _check_params("default", params)
    if "value" not in params:
        raise SpecError("transform default: needs a value, like {default: Unknown}")
    value = params["value"]

    def fwd(v: Any) -> Any:
        return value if v is None else v
    return Transform("default", fwd, None, normaliser=True, fills_missing=True)


@_register("map", ("values", "fallback", "out_fallback"), "values",
           "translate values through a table (inverse: the reversed table)")
def _map(params: dict[str, Any]) -> Transform:
    _check_params("map", params)
    values = params.get("values")
    if not isinstance(values, dict) or not values:
        raise SpecError("transform map: values must be a non-empty table of native: canonical")
    for k, v in values.items():
        if isinstance(v, (dict, list)):
            raise SpecError(f"transform map: value for {k!r} must be a single value, not "
                            f"{type(v).__name__}")
    table = {str(k): v for k, v in values.items()}
    for k in ("True", "False"):
        if k in table:  # YAML `true:` arrives as the key "True"; booleans look up "true"
            table.setdefault(k.lower(), table[k])
    back: dict[str, Any] = {}
    for k, v in values.items():
        back.setdefault(_key(v), k)
    has_fallback = "fallback" in params
    fallback = params.get("fallback")
    has_out_fallback = "out_fallback" in params
    out_fallback = params.get("out_fallback")
    known = ", ".join(repr(k) for k in table)

    def fwd(v: Any) -> Any:
        if v is None:
            return None
        hit = table.get(v if isinstance(v, str) else _key(v), _NO)
        if hit is not _NO:
            return hit
        if has_fallback:
            return fallback
        raise fail("map", f"one of {known}", v)

    def inv(v: Any) -> Any:
        if v is None:
            return None
        hit = back.get(_key(v), _NO)
        if hit is not _NO:
            return hit
        return out_fallback if has_out_fallback else v
    return Transform("map", fwd, inv)


_NO = object()


def _key(v: Any) -> str:
    # YAML keys arrive as text, so values are looked up by their text (True as "true").
    return "true" if v is True else "false" if v is False else str(v)


# ---------------------------------------------------------------- numbers

_CTX = Context(prec=60)


def to_decimal(name: str, v: Any) -> Decimal | None:
    """Read a number (int, float, Decimal or numeric text) as a Decimal; None for blank."""
    if isinstance(v, bool):
        raise fail(name, "a number like 1234.50", v)
    if isinstance(v, Decimal):
        d = v
    elif isinstance(v, int):
        d = Decimal(v)
    elif isinstance(v, float):
        d = Decimal(repr(v))  # shortest repr: 0.1 -> "0.1", not 0.1000000000000000055...
    elif isinstance(v, str):
        if not v.strip():
            return None
        try:
            d = Decimal(v.strip())
        except InvalidOperation:
            raise fail(name, "a number like 1234.50", v) from None
    else:
        raise fail(name, "a number like 1234.50", v)
    if not d.is_finite():
        raise fail(name, "a finite number", v)
    return d


def canonical_decimal(d: Decimal, places: int | None = None) -> str:
    """Decimal -> canonical text: no exponent; trailing zeros dropped unless `places` is set."""
    if places is not None:
        d = d.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN, context=_CTX)
    else:
        d = d.normalize(_CTX)
    text = format(d, "f")
    if text.startswith("-") and not d.is_zero():
        return text
    return text.lstrip("-")


def _number_out(name: str, native: str) -> Fn:
    if native == "string":
        return _identity

    def out(v: Any) -> Any:
        if v is None:
            return None
        d = to_decimal(name, v)
        if d is None:
            return None
        return int(d) if d == d.to_integral_value() else float(d)
    return out


@_register("decimal", ("places", "native"), None,
           "number or text -> canonical decimal text (inverse: text, or a number)")
def _decimal(params: dict[str, Any]) -> Transform:
    _check_params("decimal", params)
    places = _param("decimal", params, "places", int, "a whole number of decimal places")
    native = _param("decimal", params, "native", str, "string or number", "string")
    if native not in ("string", "number"):
        raise SpecError(f"transform decimal: native must be string or number, got {native!r}")
    if places is not None and not 0 <= places <= 18:
        raise SpecError("transform decimal: places must be between 0 and 18")

    def fwd(v: Any) -> Any:
        if v is None:
            return None
        d = to_decimal("decimal", v)
        return None if d is None else canonical_decimal(d, places)
    return Transform("decimal", fwd, _number_out("decimal", native))


# ISO 4217 minor-unit exponents that are not 2.
_EXPONENTS = {
    **dict.fromkeys(("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF",
                     "UGX", "UYI", "VND", "VUV", "XAF", "XOF", "XPF"), 0),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
    "CLF": 4, "UYW": 4,
}


def minor_exponent(currency: str | None) -> int:
    """Decimal places of a currency's minor unit (ISO 4217; 2 unless listed otherwise)."""
    return 2 if currency is None else _EXPONENTS.get(currency.upper(), 2)


@_register("minor_units", ("currency",), "currency",
           "integer minor units (cents) -> decimal text (inverse: back to an integer)")
def _minor_units(params: dict[str, Any]) -> Transform:
    _check_params("minor_units", params)
    currency = _param("minor_units", params, "currency", str, "an ISO 4217 code like USD")
    if currency is not None and not re.fullmatch(r"[A-Za-z]{3}", currency):
        raise SpecError(f"transform minor_units: currency must be an ISO 4217 code like USD, "
                        f"got {currency!r}")
    exp = minor_exponent(currency)
    unit = f"a whole number of minor units ({currency or 'cents'})"

    def fwd(v: Any) -> Any:
        if v is None:
            return None
        d = to_decimal("minor_units", v)
        if d is None:
            return None
        if d != d.to_integral_value():
            raise fail("minor_units", unit, v)
        return canonical_decimal(d.scaleb(-exp, _CTX))

    def inv(v: Any) -> Any:
        if v is None:
            return None
        d = to_decimal("minor_units", v)
        if d is None:
            return None
        scaled = d.scaleb(exp, _CTX)
        if scaled != scaled.to_integral_value():
            raise fail("minor_units", f"at most {exp} decimal places", v)
        return int(scaled)
    return Transform("minor_units", fwd, inv)


@_register("int", doc="whole number")
def _int(params: dict[str, Any]) -> Transform:
    _check_params("int", params)

    def fwd(v: Any) -> Any:
        if v is None or (isinstance(v, int) and not isinstance(v, bool)):
            return v
        d = to_decimal("int", v)
        if d is None:
            return None
        if d != d.to_integral_value():
            raise fail("int", "a whole number", v)
        return int(d)
    return Transform("int", fwd, None, normaliser=True)


@_register("string", doc="any single value -> text")
def _string(params: dict[str, Any]) -> Transform:
    _check_params("string", params)

    def fwd(v: Any) -> Any:
        if v is None or isinstance(v, str):
            return v
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, float):
            return str(int(v)) if v.is_integer() else repr(v)
        if isinstance(v, (int, Decimal)):
            return format(v, "f") if isinstance(v, Decimal) else str(v)
        raise fail("string", "a single value (text, number or true/false)", v)
    return Transform("string", fwd, None, normaliser=True)


_TRUE = frozenset(("true", "t", "yes", "y", "1", "on"))
_FALSE = frozenset(("false", "f", "no", "n", "0", "off"))


@_register("bool", ("native",), "native", "true/false/yes/no/1/0 -> boolean")
def _bool(params: dict[str, Any]) -> Transform:
    _check_params("bool", params)
    native = _param("bool", params, "native", str, "string or bool", "string")
    if native not in ("string", "bool"):
        raise SpecError(f"transform bool: native must be string or bool, got {native!r}")

    def fwd(v: Any) -> Any:
        if v is None or isinstance(v, bool):
            return v
        if isinstance(v, (int, float)) and v in (0, 1):
            return bool(v)
        if isinstance(v, str):
            low = v.strip().lower()
            if low in _TRUE:
                return True
            if low in _FALSE:
                return False
            if not low:
                return None
        raise fail("bool", "true/false, yes/no or 1/0", v)

    def inv_text(v: Any) -> Any:
        if isinstance(v, bool):
            return "true" if v else "false"
        return v
    return Transform("bool", fwd, _identity if native == "bool" else inv_text)


# ---------------------------------------------------------------- dates and times

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_XERO = re.compile(r"/Date\((-?\d+)([+-]\d{4})?\)/")
_NAMED_FORMATS = ("iso", "ms", "unix", "xero")
# Already canonical: UTC "Z", seconds, and milliseconds only when they are not ".000".
_CANONICAL_DT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.(?!000Z)\d{3})?Z")


def format_datetime(dt: datetime) -> str:
    """An aware datetime -> canonical RFC 3339 UTC text (fraction only when nonzero)."""
    dt = dt.astimezone(UTC) if dt.tzinfo else dt.replace(tzinfo=UTC)
    base = (f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T"
            f"{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}")
    us = dt.microsecond
    if not us:
        return base + "Z"
    if us % 1000 == 0:
        return f"{base}.{us // 1000:03d}Z"
    return f"{base}.{us:06d}Z"


def parse_iso_datetime(name: str, v: Any) -> datetime:
    """ISO 8601 text (or a date/datetime object) -> aware UTC datetime; naive means UTC."""
    if isinstance(v, datetime):
        dt = v
    elif isinstance(v, date):
        dt = datetime(v.year, v.month, v.day)
    elif isinstance(v, str):
        try:
            dt = datetime.fromisoformat(v.strip())
        except ValueError:
            raise fail(name, "an ISO 8601 date-time like 2024-05-01T10:00:00Z", v) from None
    else:
        raise fail(name, "an ISO 8601 date-time like 2024-05-01T10:00:00Z", v)
    return dt.astimezone(UTC) if dt.tzinfo else dt.replace(tzinfo=UTC)


def _epoch_number(name: str, v: Any, what: str) -> Decimal:
    d = to_decimal(name, v) if not isinstance(v, (datetime, date)) else None
    if d is None:
        raise fail(name, what, v)
    return d


def _from_ms(name: str, ms: Decimal, v: Any) -> datetime:
    try:
        return _EPOCH + timedelta(microseconds=int(ms * 1000))
    except OverflowError:
        raise fail(name, "a time between the years 1 and 9999", v) from None


def _ms_of(dt: datetime) -> int:
    return (dt - _EPOCH) // timedelta(milliseconds=1)


def _datetime_codec(name: str, fmt: str) -> tuple[Callable[[Any], datetime], Callable[
        [datetime], Any]]:
    """(parse native -> aware datetime, format aware datetime -> native) for one format."""
    if fmt == "iso":
        return (lambda v: parse_iso_datetime(name, v)), format_datetime
    if fmt == "ms":
        def from_ms(v: Any) -> datetime:
            if isinstance(v, (datetime, date)):
                return parse_iso_datetime(name, v)
            return _from_ms(name, _epoch_number(name, v, "epoch milliseconds"), v)
        return from_ms, _ms_of
    if fmt == "unix":
        def from_unix(v: Any) -> datetime:
            if isinstance(v, (datetime, date)):
                return parse_iso_datetime(name, v)
            return _from_ms(name, _epoch_number(name, v, "epoch seconds") * 1000, v)

        def to_unix(dt: datetime) -> Any:
            us = (dt - _EPOCH) // timedelta(microseconds=1)
            return us // 1_000_000 if us % 1_000_000 == 0 else us / 1_000_000
        return from_unix, to_unix
    if fmt == "xero":
        def from_xero(v: Any) -> datetime:
            m = _XERO.fullmatch(v.strip()) if isinstance(v, str) else None
            if m is None:
                # Xero also sends plain ISO text in some endpoints; accept it too.
                if isinstance(v, str) and v.strip()[:1].isdigit():
                    return parse_iso_datetime(name, v)
                raise fail(name, "a Xero date like /Date(1541176290160+0000)/", v)
            return _from_ms(name, Decimal(m.group(1)), v)
        return from_xero, lambda dt: f"/Date({_ms_of(dt)}+0000)/"

    def from_pattern(v: Any) -> datetime:
        if isinstance(v, (datetime, date)):
            return parse_iso_datetime(name, v)
        if not isinstance(v, str):
            raise fail(name, f"text in the format {fmt!r}", v)
        try:
            dt = datetime.strptime(v.strip(), fmt)
        except ValueError:
            raise fail(name, f"text in the format {fmt!r}", v) from None
        return dt.astimezone(UTC) if dt.tzinfo else dt.replace(tzinfo=UTC)
    return from_pattern, lambda dt: dt.strftime(fmt)


def _format_param(name: str, params: dict[str, Any]) -> str:
    fmt = _param(name, params, "format", str, "iso, ms, unix, xero or a strftime pattern",
                 "iso")
    if fmt not in _NAMED_FORMATS and "%" not in fmt:
        raise SpecError(f"transform {name}: format must be iso, ms, unix, xero or a strftime "
                        f"pattern like %d/%m/%Y, got {fmt!r}")
    if "%" in fmt:
        try:
            datetime(2001, 2, 3, 4, 5, 6).strftime(fmt)
        except ValueError:
            raise SpecError(f"transform {name}: {fmt!r} is not a valid strftime pattern") from None
    return str(fmt)


@_register("datetime", ("format",), "format",
           "native time -> RFC 3339 UTC text (formats: iso, ms, unix, xero, strftime)")
def _datetime(params: dict[str, Any]) -> Transform:
    _check_params("datetime", params)
    fmt = _format_param("datetime", params)
    parse, emit = _datetime_codec("datetime", fmt)
    iso = fmt == "iso"

    def fwd(v: Any) -> Any:
        if iso and type(v) is str and _CANONICAL_DT.fullmatch(v):
            # Most APIs already send canonical UTC text: check it is a real date, keep it.
            try:
                datetime.fromisoformat(v)
            except ValueError:
                raise fail("datetime", "a real date-time like 2024-05-01T10:00:00Z",
                           v) from None
            return v
        if _blank(v):
            return None
        return format_datetime(parse(v))

    def inv(v: Any) -> Any:
        if _blank(v):
            return None
        return emit(parse_iso_datetime("datetime", v))
    return Transform("datetime", fwd, inv)


@_register("date", ("format",), "format",
           "native date -> YYYY-MM-DD (formats: iso, ms, unix, xero, strftime)")
def _date(params: dict[str, Any]) -> Transform:
    _check_params("date", params)
    fmt = _format_param("date", params)
    parse, emit = _datetime_codec("date", fmt)

    def fwd(v: Any) -> Any:
        if _blank(v):
            return None
        if fmt == "iso" and not isinstance(v, (datetime, date)):
            # A date written with a time keeps the calendar day it names, not UTC's.
            text = str(v).strip()
            try:
                return (date.fromisoformat(text) if len(text) <= 10
                        else datetime.fromisoformat(text).date()).isoformat()
            except ValueError:
                raise fail("date", "a date like 2024-05-01", v) from None
        if isinstance(v, datetime):
            return v.date().isoformat()
        if isinstance(v, date):
            return v.isoformat()
        return parse(v).date().isoformat()

    def inv(v: Any) -> Any:
        if _blank(v):
            return None
        if isinstance(v, date) and not isinstance(v, datetime):
            day = v
        else:
            try:
                day = date.fromisoformat(str(v).strip()[:10])
            except ValueError:
                raise fail("date", "a date like 2024-05-01", v) from None
        if fmt == "iso":
            return day.isoformat()
        return emit(datetime(day.year, day.month, day.day, tzinfo=UTC))
    return Transform("date", fwd, inv)


# ---------------------------------------------------------------- contact details

def _without_separators(text: str) -> str:
    # Spaces, dashes, dots, brackets, slashes and no-break spaces, which people write into
    # phone numbers. A chain of replace() (each a C scan, most finding nothing) costs a
    # third of str.translate with a deletion table, which maps character by character.
    return (text.replace(" ", "").replace("-", "").replace(".", "").replace("(", "")
            .replace(")", "").replace("/", "").replace("\u00a0", ""))


_E164 = re.compile(r"\+[1-9][0-9]{6,14}")


class _International:
    """E.164 for a number already written internationally ("+31 30 511 3858"), in a few
    microseconds where phonenumbers.parse takes 30-50 (numbers rarely repeat, so a cache
    does not help).

    It gives phonenumbers' own answer or none (None: ask phonenumbers): it takes the
    country calling code as phonenumbers does (calling codes are prefix-free) and declines
    whatever phonenumbers would change or refuse: a national part starting with 0 (a trunk
    prefix written after the country code, "+44 (0)20 7946 0958" is +442079460958, or an
    Italian leading zero), one that the country's national-prefix pattern matches (which
    phonenumbers may strip), a calling code it does not know, and a length it does not
    accept (its own is_possible_number, asked once per calling code and length: it "only
    checks the length of phone numbers", its documentation says). Held equal to
    phonenumbers by a hypothesis test.
    """

    def __init__(self, phonenumbers: Any) -> None:
        self.pn = phonenumbers
        # Calling codes by their digits: prefix-free, so at most one of a number's first
        # one, two and three digits is one.
        self.codes: dict[str, int] = {str(c): c for c in phonenumbers.COUNTRY_CODE_TO_REGION_CODE}
        self._prefix: dict[int, re.Pattern[str] | None] = {}
        self._possible: dict[int, bool] = {}  # calling code * 100 + length -> possible

    def _national_prefix(self, code: int) -> re.Pattern[str] | None:
        if code not in self._prefix:
            pn = self.pn
            meta = pn.PhoneMetadata.metadata_for_region_or_calling_code(
                code, pn.region_code_for_country_code(code))
            pattern = meta.national_prefix_for_parsing if meta is not None else None
            self._prefix[code] = re.compile(pattern) if pattern else None
        return self._prefix[code]

    def __call__(self, text: str) -> str | None:
        compact = _without_separators(text)
        if not _E164.fullmatch(compact):
            return None
        codes = self.codes
        digits = compact[1:2]
        code = codes.get(digits)
        if code is None:
            digits = compact[1:3]
            code = codes.get(digits)
            if code is None:
                digits = compact[1:4]
                code = codes.get(digits)
                if code is None:
                    return None
        national = compact[1 + len(digits):]
        if national[0] == "0":
            return None
        prefix = self._prefix[code] if code in self._prefix else self._national_prefix(code)
        if prefix is not None and prefix.match(national):
            return None
        length = code * 100 + len(national)  # a national part has at most 14 digits
        possible = self._possible.get(length)
        if possible is None:
            number = self.pn.PhoneNumber(country_code=code, national_number=int(national))
            possible = self._possible[length] = bool(self.pn.is_possible_number(number))
        return compact if possible else None


@lru_cache(maxsize=1)
def _international() -> _International:
    import phonenumbers  # imported on first use, as in `_phone`

    return _International(phonenumbers)


@_register("phone", ("region",), "region", "phone number -> E.164 (+14155550100)")
def _phone(params: dict[str, Any]) -> Transform:
    import phonenumbers  # imported here: loading its metadata is only worth it when used

    international = _international()

    _check_params("phone", params)
    region = _param("phone", params, "region", str, "a two-letter region like US")
    if region is not None:
        region = region.upper()
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise SpecError(f"transform phone: unknown region {region!r} "
                            "(use a two-letter country code like US or GB)")
    expected = ("a phone number in international form (+44 20 7946 0958)" if region is None
                else f"a phone number (international, or national for {region})")

    @lru_cache(maxsize=4096)
    def parse(text: str) -> str:
        try:
            num = phonenumbers.parse(text, region)
        except phonenumbers.NumberParseException:
            raise fail("phone", expected, text) from None
        if not phonenumbers.is_possible_number(num):
            raise fail("phone", expected, text)
        return str(phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164))

    def fwd(v: Any) -> Any:
        if _blank(v):
            return None
        if isinstance(v, int) and not isinstance(v, bool):
            v = str(v)
        if not isinstance(v, str):
            raise fail("phone", expected, v)
        text = v.strip()
        if text.startswith("+"):
            # Written internationally: phonenumbers' answer without its parser, when that
            # is certain; not worth a cache entry (the slow path is cached).
            quick = international(text)
            if quick is not None:
                return quick
        return parse(text)
    return Transform("phone", fwd, None, normaliser=True)


_COUNTRY_ALIASES = {"uk": "GB", "great britain": "GB", "england": "GB", "scotland": "GB",
                    "wales": "GB", "usa": "US", "u.s.": "US", "u.s.a.": "US",
                    "america": "US", "south korea": "KR", "north korea": "KP",
                    "russia": "RU", "vietnam": "VN", "iran": "IR", "syria": "SY",
                    "bolivia": "BO", "venezuela": "VE", "tanzania": "TZ", "laos": "LA",
                    "moldova": "MD", "czech republic": "CZ", "the netherlands": "NL",
                    "holland": "NL", "ivory coast": "CI", "taiwan": "TW"}


@lru_cache(maxsize=1024)
def country_code(text: str) -> str | None:
    """Country name, alpha-3, alpha-2 or numeric code -> ISO 3166-1 alpha-2 (None: unknown)."""
    import pycountry

    key = text.strip()
    alias = _COUNTRY_ALIASES.get(key.lower())
    if alias:
        return alias
    try:
        found = pycountry.countries.lookup(key)
    except LookupError:
        return None
    return str(found.alpha_2)


def _country_out(to: str) -> Fn:
    import pycountry

    def out(v: Any) -> Any:
        if _blank(v):
            return v
        found = pycountry.countries.get(alpha_2=str(v).upper())
        if found is None:
            return v  # not ours to judge on the way out: pass it through
        if to == "alpha_3":
            return found.alpha_3
        return getattr(found, "common_name", None) or found.name
    return out


@_register("country", ("to",), "to",
           "country name/alpha-3/alpha-2 -> alpha-2 (inverse: `to` name, alpha_3 or alpha_2)")
def _country(params: dict[str, Any]) -> Transform:
    _check_params("country", params)
    to = _param("country", params, "to", str, "name, alpha_3 or alpha_2", "alpha_2")
    to = to.replace("-", "_")
    if to not in ("name", "alpha_3", "alpha_2"):
        raise SpecError(f"transform country: to must be name, alpha_3 or alpha_2, got {to!r}")

    def fwd(v: Any) -> Any:
        if _blank(v):
            return None
        code = country_code(str(v)) if isinstance(v, (str, int)) else None
        if code is None:
            raise fail("country", "a country name or ISO 3166 code like DE or DEU", v)
        return code
    return Transform("country", fwd, _identity if to == "alpha_2" else _country_out(to))


@_register("domain", doc="url, email or host -> bare lower-case domain without www.")
def _domain(params: dict[str, Any]) -> Transform:
    _check_params("domain", params)

    def fwd(v: Any) -> Any:
        if _blank(v):
            return None
        if not isinstance(v, str):
            raise fail("domain", "a web address, email address or domain", v)
        d = domain_of(v)
        if d is None:
            raise fail("domain", "a web address, email address or domain", v)
        return d
    return Transform("domain", fwd, None, normaliser=True)


def domain_of(text: str) -> str | None:
    """'https://www.Example.com/x', 'ann@example.com', 'example.com' -> 'example.com'."""
    t = text.strip()
    if "://" not in t and "@" in t:
        t = t.rsplit("@", 1)[1]
    try:
        host = urlsplit(t if "://" in t else "//" + t).hostname
    except ValueError:
        return None
    if not host:
        return None
    host = host.rstrip(".").lower()
    host = host.removeprefix("www.")
    if not host or " " in host:
        return None
    return host


def describe_registry() -> Mapping[str, str]:
    """Name -> one-line description of every known transform (for `hub map` help)."""
    return {name: tdef.doc for name, tdef in sorted(REGISTRY.items())}
