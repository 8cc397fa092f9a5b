"""Redaction of field diffs: values of fields a mapping marks `sensitive`, and of fields whose
names look like secrets, become "***".

Pure functions over canonical data, used by the audit trail (hub.audit) and by the read-ahead
child that prepares a new record's audit diff (hub.sync.mapped): both must redact alike, and
the pipeline may not import its observers.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any

from hub.config.model import REDACTED

SECRET_NAME = re.compile(
    r"(^|_)(password|passwd|secret|token|api_?key|credentials?|client_secret)($|_)", re.IGNORECASE)
_SCALARS = frozenset({str, int, float, bool})


@functools.lru_cache(maxsize=4096)
def _secret_name(name: str) -> bool:
    # Field names repeat on every record: match each distinct name against the regex once.
    return SECRET_NAME.search(name) is not None


@functools.lru_cache(maxsize=4096)
def _top(name: str) -> str:
    return name.split(".", 1)[0].split("[", 1)[0]


# Fields whose nested keys are chosen by users, not by the canonical schema.
FREE_FORM = frozenset({"custom"})


@functools.lru_cache(maxsize=1024)
def _needs_look(names: tuple[str, ...]) -> tuple[str, ...]:
    # Records of one mapping have a handful of distinct field sets: each is checked once.
    return tuple(n for n in names if _secret_name(n) or n in FREE_FORM)


def _has_sensitive_below(top: str, sensitive: frozenset[str]) -> bool:
    # Mappings mark nested paths sensitive as "line_items[].x" or "custom.x".
    return any(p != top and _top(p) == top for p in sensitive)


def _redact_value(name: str, value: Any, sensitive: frozenset[str]) -> Any:
    if name in sensitive or _secret_name(name):
        return REDACTED if value is not None else None
    if value is None or type(value) in _SCALARS:  # the common case, without ABC checks
        return value
    if type(value) is dict or isinstance(value, Mapping):
        return {k: _redact_value(str(k), v, sensitive) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact_value(name, v, frozenset()) if isinstance(v, Mapping) else v
                for v in value]
    return value


def redact_diff(diff: Mapping[str, Any], sensitive: frozenset[str], *,
                canonical: bool = False) -> dict[str, Any]:
    """A field diff with sensitive and secret-looking values replaced by ***.

    `canonical=True` says the values passed the entity's JSON Schema, so below a field
    only `custom` can hold keys a user chose; anything else (native records written to a
    system) is walked in full.
    """
    if canonical and not sensitive:
        # The usual case: top-level canonical names, and only the free-form `custom`
        # walked. Which names need a look is decided once per set of names (cached).
        out = dict(diff)
        for name in _needs_look(tuple(diff)):
            change = diff[name]
            if _secret_name(name):
                out[name] = [REDACTED if v is not None else None for v in change]
            else:
                out[name] = [_redact_value(name, v, sensitive) for v in change]
        return out
    out = {}
    for name, change in diff.items():
        # Names repeat on every record and are checked once (cached); values are walked only
        # where they hold nested objects whose keys could name a secret.
        top = _top(name)
        if name in sensitive or _secret_name(name) or top in sensitive:
            out[name] = [REDACTED if v is not None else None for v in change]
        elif not canonical or top in FREE_FORM or _has_sensitive_below(top, sensitive):
            out[name] = [_redact_value(name, v, sensitive) for v in change]
        else:
            # A canonical field's nested keys are fixed by its JSON Schema (address, type,
            # number...), none of them a secret: nothing below it to redact.
            out[name] = change
    return out


def _plain_object(value: Any) -> bool:
    # An object of scalars under names that name no secret: `_redact_value` leaves it as it
    # is, found without building its copy (a read-ahead child asks for every new record).
    if type(value) is not dict:
        return False
    for k, v in value.items():
        if not (v is None or type(v) in _SCALARS) or type(k) is not str or _secret_name(k):
            return False
    return True


def redact_values(data: Mapping[str, Any], sensitive: frozenset[str]) -> Mapping[str, Any]:
    """The values of canonical `data` as the audit trail may hold them: what
    `redact_diff(..., canonical=True)` makes the new values of a diff that creates the
    record from `data`. `data` itself when nothing in it is redacted (the usual case, which
    a read-ahead child meets for every new record: the record's JSON then serves the audit
    trail as it is)."""
    if sensitive:
        diff = redact_diff({k: [None, v] for k, v in data.items()}, sensitive, canonical=True)
        values = {k: change[1] for k, change in diff.items()}
        return data if values == data else values
    out: dict[str, Any] | None = None
    for name in _needs_look(tuple(data)):
        value = data[name]
        if _secret_name(name):
            new: Any = REDACTED if value is not None else None
        elif _plain_object(value):
            continue  # the usual free-form `custom`: nothing in it to redact
        else:
            new = _redact_value(name, value, sensitive)
        if new != value:
            if out is None:
                out = dict(data)
            out[name] = new
    return data if out is None else out
