"""Which HubSpot properties a read asks for: the built-in list plus the `extra_properties` setting.

HubSpot returns only the properties a request names, so a custom property a mapping uses
(say `liaison_last_activity`) reads as empty unless it is asked for; in a two-way flow that
empty value would then be written back over the real one. The connection lists them:

    extra_properties:
      contacts: [liaison_last_activity]     # an object (or its entity: contact) -> names

Only the shape and the names are checked here (no I/O: the constructor calls this); whether
the properties exist is HubSpot's to say when a write names one (PROPERTY_DOESNT_EXIST).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from connectors.hubspot.client import PROPERTIES
from hub.config.model import ConnectionConfig
from hub.errors import ConnectorError

SETTING = "extra_properties"
EXAMPLE = "{contacts: [liaison_last_activity]}"
# HubSpot's rule for a property's internal name: lower-case letters, digits and underscores,
# starting with a letter.
_NAME = re.compile(r"[a-z][a-z0-9_]*")
_ENTITY_OBJECTS = {"contact": "contacts", "company": "companies", "deal": "deals"}


def _describe(value: Any) -> str:
    if isinstance(value, str):
        return f"the text {value!r}"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    return f"{value!r}"


def _names(key: str, value: Any) -> tuple[list[str], list[str]]:
    """(property names, problems) of one object's list."""
    if not isinstance(value, (list, tuple)):
        return [], [(f"{key} must be a list of property names like [liaison_last_activity], "
                    f"got {_describe(value)}")]
    names: list[str] = []
    problems: list[str] = []
    for i, item in enumerate(value):
        if not isinstance(item, str) or not _NAME.fullmatch(item):
            problems.append(f"{key}[{i}] must be a HubSpot property's internal name (lower-case "
                            f"letters, digits and _, starting with a letter), got "
                            f"{_describe(item)}")
        elif item not in names:
            names.append(item)
    return names, problems


def extra_properties(connection: ConnectionConfig) -> dict[str, tuple[str, ...]]:
    """The `extra_properties` setting by object; ConnectorError listing every problem."""
    raw = connection.settings.get(SETTING)
    if raw is None:
        return {}
    where = connection.where_of(SETTING)
    prefix = (f"connection {connection.name}" + (f" ({where})" if where else "")
              + f": setting {SETTING!r}")
    if not isinstance(raw, Mapping):
        raise ConnectorError(f"{prefix} must map HubSpot objects to lists of property names, "
                             f"like {EXAMPLE}; got {_describe(raw)}")
    found: dict[str, list[str]] = {}
    problems: list[str] = []
    for key, value in raw.items():
        obj = _ENTITY_OBJECTS.get(str(key), str(key))
        if obj not in PROPERTIES:
            known = ", ".join(sorted(PROPERTIES))
            problems.append(f"{key}: HubSpot has no object {key!r} here (known: {known})")
            continue
        names, wrong = _names(str(key), value)
        problems.extend(wrong)
        merged = found.setdefault(obj, [])
        merged.extend(n for n in names if n not in merged)
    if problems:
        raise ConnectorError(f"{prefix}: " + "; ".join(problems))
    return {obj: tuple(names) for obj, names in found.items() if names}


def read_properties(extra: Mapping[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
    """The properties each object's reads ask for: the built-in ones, then the extra ones."""
    return {obj: builtin + tuple(p for p in extra.get(obj, ()) if p not in builtin)
            for obj, builtin in PROPERTIES.items()}
