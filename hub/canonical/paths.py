"""Canonical field paths (``a.b``, ``a[0].b``, ``a[type=work].b``, ``custom.x``): parse and check."""

from __future__ import annotations

import copy
import difflib
import re
from dataclasses import dataclass
from typing import Any

from hub.canonical.schemas import ENVELOPE_FIELDS, check_entity, shared_schema


@dataclass(frozen=True, slots=True)
class Field:
    """Step into an object's field."""

    name: str


@dataclass(frozen=True, slots=True)
class Index:
    """Step to a list element by position (``[0]``)."""

    index: int


@dataclass(frozen=True, slots=True)
class Select:
    """Step to the first list element whose `key` equals `value` (``[type=work]``)."""

    key: str
    value: str


Step = Field | Index | Select

_TOKEN = re.compile(
    r"(?P<dot>\.)?(?P<name>[^.\[\]]+)"
    r"|\[(?P<index>\d+)\]"
    r"|\[(?P<key>[^\]=]+)=(?P<value>[^\]]*)\]"
)


def parse_path(path: str) -> tuple[Step, ...]:
    """Parse a canonical path into steps; ValueError with a plain message when malformed."""
    if not isinstance(path, str) or not path.strip():
        raise ValueError("empty field path")
    steps: list[Step] = []
    pos = 0
    while pos < len(path):
        match = _TOKEN.match(path, pos)
        if match is None:
            raise ValueError(f"bad field path '{path}' at character {pos + 1}: "
                             "expected a name, [number] or [key=value]")
        if match["name"] is not None:
            if bool(match["dot"]) != bool(steps):
                raise ValueError(f"bad field path '{path}' at character {pos + 1}: "
                                 "names are separated by a single '.'")
            steps.append(Field(match["name"].strip()))
        elif not steps:
            raise ValueError(f"bad field path '{path}': it must start with a field name")
        elif match["index"] is not None:
            steps.append(Index(int(match["index"])))
        else:
            steps.append(Select(match["key"].strip(), match["value"].strip()))
        pos = match.end()
    return tuple(steps)


def _types(schema: dict[str, Any]) -> list[str]:
    found = schema.get("type", [])
    return [found] if isinstance(found, str) else list(found)


def _deref(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        # Only local "#/$defs/name" refs exist in the packaged schemas; the referring
        # schema's own keywords (title, x-reference) say more than the shared definition's.
        name = schema["$ref"].rsplit("/", 1)[-1]
        siblings = {k: v for k, v in schema.items() if k != "$ref"}
        schema = {**root["$defs"][name], **siblings}
    return schema


def _is_free(schema: dict[str, Any]) -> bool:
    return schema.get("additionalProperties") is True and not schema.get("properties")


def _kind(schema: dict[str, Any]) -> str:
    return " or ".join(t for t in _types(schema) if t != "null") or "value"


class _PathError(Exception):
    pass


def _resolve(entity: str, path: str) -> dict[str, Any] | None:
    """The schema at `path` (None below a free object like `custom`); _PathError if unknown."""
    try:
        steps = parse_path(path)
    except ValueError as exc:
        raise _PathError(str(exc)) from None
    root = shared_schema(entity)
    node = root
    shown = ""
    for step in steps:
        node = _deref(node, root)
        if isinstance(step, Field):
            if _is_free(node):
                return None
            if "object" not in _types(node):
                raise _PathError(f"'{shown}' of {entity} is a {_kind(node)}; "
                                 f"it has no field '{step.name}'")
            props: dict[str, Any] = node.get("properties", {})
            if step.name not in props:
                raise _PathError(_unknown(entity, shown, step.name, list(props)))
            node = props[step.name]
            shown = f"{shown}.{step.name}" if shown else step.name
            continue
        if "array" not in _types(node):
            raise _PathError(f"'{shown}' of {entity} is a {_kind(node)}, not a list, "
                             f"so it cannot be followed by [...]")
        items = _deref(node.get("items", {}), root)
        if isinstance(step, Select):
            _check_select(entity, shown, step, items)
        node = items
        shown += "[]"
    return _deref(node, root)


def _unknown(entity: str, shown: str, name: str, known: list[str]) -> str:
    if not shown and name in ENVELOPE_FIELDS:
        return (f"'{name}' of {entity} is managed by the hub (record envelope); "
                f"mappings cannot set it; known fields: {', '.join(known)}")
    where = f"in {shown} of {entity}" if shown else f"for {entity}"
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"unknown field '{name}' {where}{hint}; known fields: {', '.join(known)}"


def _check_select(entity: str, shown: str, step: Select, items: dict[str, Any]) -> None:
    props: dict[str, Any] = items.get("properties", {})
    if "object" not in _types(items) or step.key not in props:
        known = ", ".join(props) or "(its elements have no fields)"
        raise _PathError(f"'{shown}[{step.key}={step.value}]' of {entity}: list elements "
                         f"have no field '{step.key}'; known fields: {known}")
    allowed = [v for v in props[step.key].get("enum", []) if v is not None]
    if allowed and step.value not in allowed:
        raise _PathError(f"'{shown}[{step.key}={step.value}]' of {entity}: '{step.value}' "
                         f"is not one of {', '.join(allowed)}")


def check_path(entity: str, path: str) -> str | None:
    """None when `path` names a field of the entity's data, else a message saying why not."""
    check_entity(entity)
    try:
        _resolve(entity, path)
    except _PathError as exc:
        return str(exc)
    return None


def field_schema(entity: str, path: str) -> dict[str, Any] | None:
    """A copy of the schema at `path` ({} below `custom`), or None when the path is unknown."""
    check_entity(entity)
    try:
        found = _resolve(entity, path)
    except _PathError:
        return None
    return {} if found is None else copy.deepcopy(found)
