"""Turn python-jsonschema errors into short messages an ops person can act on.

Each message is "<field path>: <what is wrong and what was expected>", e.g.
``emails[0].address: 'x' is not a valid email``.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from jsonschema.exceptions import ValidationError

RECORD = "(record)"
"""The path shown for a problem with the record as a whole."""

# Keyed by the "x-kind" annotation the schema files put on shared scalar kinds.
KIND_PHRASES: dict[str, str] = {
    "money": 'is not a valid amount (money is a decimal string like "12.50")',
    "decimal": 'is not a valid decimal (a decimal string like "2.5")',
    "currency": 'is not a valid currency (an ISO 4217 code in capitals like "EUR")',
    "datetime": 'is not a valid timestamp (RFC 3339 in UTC like "2024-05-01T10:00:00Z")',
    "date": 'is not a valid date (YYYY-MM-DD like "2024-05-01")',
    "email": "is not a valid email",
    "phone": 'is not a valid phone number (E.164 like "+14155550100"; use the phone transform)',
    "country": 'is not a valid country (an ISO 3166-1 alpha-2 code in capitals like "DE")',
    "ref": "is not a valid record id (a non-empty id without spaces)",
}

# Appended to a type error so the fix is obvious ("12.5 is not of type 'string' (...)").
KIND_HINTS: dict[str, str] = {
    "money": 'money is a decimal string like "12.50"',
    "decimal": 'a decimal is a string like "2.5"',
    "currency": 'an ISO 4217 code like "EUR"',
    "datetime": 'a timestamp is a string like "2024-05-01T10:00:00Z"',
    "date": 'a date is a string like "2024-05-01"',
    "email": 'an email is a string like "ana@example.com"',
    "phone": 'a phone number is a string like "+14155550100"',
    "country": 'a country is a string like "DE"',
    "ref": "a record id is a string",
}

TYPE_HINTS: dict[str, str] = {
    "array": "a list",
    "object": "an object with named fields",
    "integer": "a whole number",
}

_MAX_VALUE = 60


def show(value: Any) -> str:
    """A short repr of a value for a message (long values are cut)."""
    text = repr(value)
    return text if len(text) <= _MAX_VALUE else text[: _MAX_VALUE - 3] + "..."


def format_path(parts: Iterable[str | int]) -> str:
    """Render a jsonschema path deque as ``emails[0].address`` (RECORD when empty)."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or RECORD


def _type(error: ValidationError) -> str:
    expected = error.validator_value
    types = [expected] if isinstance(expected, str) else list(expected)
    shown = ", ".join(repr(t) for t in types if t != "null")
    hint = KIND_HINTS.get(str(error.schema.get("x-kind", "")))
    if hint is None and len(types) - types.count("null") == 1:
        hint = TYPE_HINTS.get(next(t for t in types if t != "null"))
    return f"{show(error.instance)} is not of type {shown}" + (f" ({hint})" if hint else "")


def _pattern(error: ValidationError) -> str:
    phrase = KIND_PHRASES.get(str(error.schema.get("x-kind", "")))
    if phrase:
        return f"{show(error.instance)} {phrase}"
    return f"{show(error.instance)} does not match the pattern {error.validator_value!r}"


def _enum(error: ValidationError) -> str:
    allowed = [v for v in error.validator_value if v is not None]
    listed = ", ".join(repr(v) for v in allowed)
    return f"{show(error.instance)} is not one of {listed}"


def _bound(word: str) -> Callable[[ValidationError], str]:
    def message(error: ValidationError) -> str:
        return f"{show(error.instance)} is {word} {error.validator_value}"

    return message


def _min_length(error: ValidationError) -> str:
    if error.validator_value == 1:
        return "must not be empty"
    return f"{show(error.instance)} is shorter than {error.validator_value} characters"


def _max_length(error: ValidationError) -> str:
    return f"is longer than {error.validator_value} characters"


def _const(error: ValidationError) -> str:
    return f"must be {error.validator_value!r}, not {show(error.instance)}"


_SIMPLE: dict[str, Callable[[ValidationError], str]] = {
    "type": _type,
    "pattern": _pattern,
    "enum": _enum,
    "const": _const,
    "minimum": _bound("below the minimum"),
    "maximum": _bound("above the maximum"),
    "exclusiveMinimum": _bound("not above"),
    "exclusiveMaximum": _bound("not below"),
    "minLength": _min_length,
    "maxLength": _max_length,
}


Parts = tuple[str | int, ...]


def _unknown_fields(error: ValidationError, parts: Parts, entity: str) -> list[tuple[Parts, str]]:
    known = list(error.schema.get("properties", {}))
    where = f"of {entity}" if not parts else "here"
    instance = error.instance if isinstance(error.instance, dict) else {}
    out = []
    for key in instance:
        if key in known:
            continue
        close = difflib.get_close_matches(str(key), known, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        out.append(((*parts, str(key)),
                    f"unknown field{hint} (known fields {where}: {', '.join(known)})"))
    return out


def _missing_fields(error: ValidationError, parts: Parts) -> list[tuple[Parts, str]]:
    instance = error.instance if isinstance(error.instance, dict) else {}
    return [((*parts, name), "missing (required)")
            for name in error.validator_value if name not in instance]


# When one value breaks several rules, only the most telling is reported ('' breaks both
# minLength and pattern of a record id; "must not be empty" says it best).
_PRIORITY = {"type": 0, "const": 1, "enum": 2, "minLength": 3, "maxLength": 4, "pattern": 5}


def _one_per_value(errors: Sequence[ValidationError]) -> list[ValidationError]:
    best: dict[Parts, ValidationError] = {}
    rest: list[ValidationError] = []
    for error in errors:
        if error.validator not in _PRIORITY:
            rest.append(error)
            continue
        key = tuple(error.absolute_path)
        kept = best.get(key)
        if kept is None or _PRIORITY[str(error.validator)] < _PRIORITY[str(kept.validator)]:
            best[key] = error
    return rest + list(best.values())


def _sort_key(item: tuple[Parts, str]) -> tuple[tuple[int, str], ...]:
    # Numbers sort as numbers so emails[2] comes before emails[10].
    return tuple((0, f"{p:09d}") if isinstance(p, int) else (1, p) for p in item[0])


def describe(errors: Sequence[ValidationError], entity: str) -> list[str]:
    """Messages for a record's errors, ordered by field path, one per faulty value."""
    found: list[tuple[Parts, str]] = []
    for error in _one_per_value(errors):
        parts: Parts = tuple(error.absolute_path)
        kind = str(error.validator)
        if kind == "additionalProperties":
            found.extend(_unknown_fields(error, parts, entity))
        elif kind == "required":
            found.extend(_missing_fields(error, parts))
        elif kind in _SIMPLE:
            found.append((parts, _SIMPLE[kind](error)))
        else:
            found.append((parts, error.message))
    found.sort(key=_sort_key)
    return list(dict.fromkeys(f"{format_path(parts)}: {text}" for parts, text in found))
