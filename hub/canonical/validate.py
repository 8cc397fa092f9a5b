"""Validate canonical data: jsonschema_rs decides, python jsonschema explains failures only."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import jsonschema_rs
from jsonschema import Draft202012Validator, ValidationError, validators
from jsonschema.protocols import Validator as SlowValidator

from hub.canonical.messages import RECORD, describe
from hub.canonical.schemas import check_entity, shared_schema

_REGEX_CACHE: dict[str, re.Pattern[str]] = {}


def _ecma(pattern: str) -> re.Pattern[str]:
    """Compile a schema pattern with ECMA-262 meaning of a final `$` (end of input).

    Python's `$` also matches before a trailing newline, so "12\\n" would pass a money
    pattern in python but fail in jsonschema_rs; `\\Z` makes both agree.
    """
    compiled = _REGEX_CACHE.get(pattern)
    if compiled is None:
        source = pattern
        if source.endswith("$") and not source.endswith("\\$"):
            source = source[:-1] + r"\Z"
        compiled = _REGEX_CACHE[pattern] = re.compile(source)
    return compiled


def _pattern_keyword(
    validator: SlowValidator, pattern: str, instance: Any, schema: dict[str, Any]
) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not _ecma(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


_Explainer = validators.extend(Draft202012Validator, {"pattern": _pattern_keyword})


class Validator:
    """Validates one entity's data (or whole stored record); compiled once, reuse it."""

    __slots__ = ("_fast", "_slow", "entity", "record")

    def __init__(self, entity: str, *, record: bool = False) -> None:
        check_entity(entity)
        self.entity = entity
        self.record = record
        schema = shared_schema(entity, record=record)
        # Formats are annotations only: the patterns carry every rule, so both
        # validators judge exactly the same and nothing is fetched over the network.
        self._fast = jsonschema_rs.Draft202012Validator(
            schema, validate_formats=False, offline=True
        )
        self._slow: SlowValidator | None = None

    def is_valid(self, data: Any) -> bool:
        """True when `data` follows the schema (fast path only)."""
        try:
            return bool(self._fast.is_valid(data))
        except (ValueError, TypeError, OverflowError):
            # Values JSON has no form for (Decimal, datetime, ...) are not valid canonical data.
            return False

    def errors(self, data: Any) -> list[str]:
        """[] when valid, else one ops-readable message per problem, naming the field path."""
        if self.is_valid(data):
            return []
        if self._slow is None:
            self._slow = _Explainer(shared_schema(self.entity, record=self.record))
        messages = describe(list(self._slow.iter_errors(data)), self.entity)
        # Never report "invalid" without a reason, even if the two engines ever disagree.
        return messages or [f"{RECORD}: does not follow the {self.entity} schema"]

    __call__ = errors


_VALIDATORS: dict[tuple[str, bool], Validator] = {}


def get_validator(entity: str, *, record: bool = False) -> Validator:
    """The shared, cached Validator for an entity."""
    found = _VALIDATORS.get((entity, record))
    if found is None:
        found = _VALIDATORS[(entity, record)] = Validator(entity, record=record)
    return found


def validate(entity: str, data: Any, *, record: bool = False) -> list[str]:
    """Validate canonical data of `entity`; [] when valid, else ops-readable messages."""
    found = _VALIDATORS.get((entity, record)) or get_validator(entity, record=record)
    return found.errors(data)
