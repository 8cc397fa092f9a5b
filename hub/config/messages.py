"""Turn JSON Schema errors into problems an ops person can act on.

jsonschema says "'shedule' was unexpected"; we say "unknown key 'shedule' (did you mean
'schedule'?); allowed keys: ...", at the file and line of that key. Values under
secret-looking keys are never repeated in a message.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

from jsonschema import ValidationError

from hub.config.schema import VALIDATOR
from hub.config.secrets import in_connection, is_secret_key
from hub.errors import Problem
from hub.yamlsrc import Located, PathKey

_SHOWN_CHARS = 40


def schema_problems(doc: Located) -> list[Problem]:
    """Every schema violation in `doc`, in words, each at its file:line."""
    problems: list[Problem] = []
    for error in VALIDATOR.iter_errors(doc.data):
        problems.extend(_explain(doc, error))
    return problems


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """" (did you mean 'x'?)" when a choice is close to `word`, else ""."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def describe(value: Any, path: PathKey = ()) -> str:
    """How a wrong value reads in a message: 42, 'text', a list, nothing (null)."""
    if any(isinstance(p, str) and is_secret_key(p) for p in path):
        return "a value that is not shown here because it may be a secret"
    if isinstance(value, str) and in_connection(path):
        # Text in a connection may be a secret pasted into the wrong setting.
        return "a text (not shown, it may be a secret)"
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        shown = value if len(value) <= _SHOWN_CHARS else value[:_SHOWN_CHARS] + "..."
        return repr(shown) if value else "an empty text ''"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a block of keys"
    return type(value).__name__


def _expected(error: ValidationError) -> str:
    schema = error.schema if isinstance(error.schema, dict) else {}
    return str(schema.get("x-expected", f"a value of type {error.validator_value}"))


def _explain(doc: Located, error: ValidationError) -> list[Problem]:
    path: PathKey = tuple(error.absolute_path)
    value = error.instance
    kind = error.validator
    schema = error.schema if isinstance(error.schema, dict) else {}
    if kind == "additionalProperties" and isinstance(value, dict):
        allowed = list(schema.get("properties", {}))
        return [doc.problem(path + (key,),
                            f"unknown key {key!r}{did_you_mean(key, allowed)}; "
                            f"allowed keys: {', '.join(allowed)}")
                for key in value if key not in allowed]
    if kind == "required" and isinstance(value, dict):
        return [doc.problem(path, f"missing required key {key!r}")
                for key in error.validator_value if key not in value]
    return [doc.problem(path, _message(error, path))]


def _message(error: ValidationError, path: PathKey) -> str:
    kind, rule, value = error.validator, error.validator_value, error.instance
    got = describe(value, path)
    if kind == "type":
        return f"expected {_expected(error)}, got {got}"
    if kind == "enum":
        choices = [str(c) for c in rule]
        hint = did_you_mean(value, choices) if isinstance(value, str) else ""
        hint = f"; {hint.strip()[1:-1]}" if hint else ""  # " (did you mean 'x'?)" -> "; did..."
        return f"must be one of: {', '.join(choices)} (got {got}{hint})"
    if kind == "const":
        return f"must be {rule!r} (got {got})"
    if kind == "minimum":
        return f"must be at least {rule} (got {got})"
    if kind == "maximum":
        return f"must be at most {rule} (got {got})"
    if kind == "minItems":
        return "must not be an empty list"
    if kind == "uniqueItems":
        return "lists the same name more than once"
    if kind == "minLength":
        return "must not be empty"
    return str(error.message)
