"""The packaged entity JSON Schemas (read once) and the record envelope around them."""

from __future__ import annotations

import copy
import difflib
import json
from functools import cache
from importlib import resources
from typing import Any

from hub.errors import ConfigError

SCHEMA_VERSION = 1
"""Version of the canonical model; part of every schema's file name and $id."""

ENTITIES: tuple[str, ...] = (
    "company",
    "contact",
    "deal",
    "invoice",
    "payment",
    "product",
    "project",
    "task",
    "message",
)
"""Every canonical entity, in the order ops staff see them."""

ENVELOPE_FIELDS: tuple[str, ...] = (
    "id",
    "entity",
    "schema_version",
    "created_at",
    "updated_at",
    "deleted",
    "links",
)
"""Fields the engine manages around the data; mappings never produce them."""

SCHEMA_BASE_URI = "https://liaison.local/schemas"


class UnknownEntityError(ConfigError):
    """An entity name that is not one of ENTITIES."""


def check_entity(entity: str) -> None:
    """Raise UnknownEntityError (naming the closest entity) unless `entity` is known."""
    if entity in ENTITIES:
        return
    close = difflib.get_close_matches(str(entity), ENTITIES, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    raise UnknownEntityError(
        f"unknown entity '{entity}'{hint} known entities: {', '.join(ENTITIES)}"
    )


@cache
def _load(entity: str) -> dict[str, Any]:
    # The only I/O of the package: each packaged schema file is read once per process.
    name = f"{entity}.v{SCHEMA_VERSION}.json"
    text = resources.files("hub.canonical").joinpath("schemas", name).read_text("utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def data_schema(entity: str) -> dict[str, Any]:
    """The JSON Schema of an entity's data part (a private copy; $refs are local "#/$defs/...")."""
    check_entity(entity)
    return copy.deepcopy(_load(entity))


def _envelope_properties(entity: str, defs: dict[str, Any]) -> dict[str, Any]:
    datetime_def = {k: v for k, v in defs["datetime"].items() if k != "examples"}
    return {
        "id": {
            "title": "Canonical id",
            "description": "The record's id in Liaison, set by the hub.",
            "type": "string",
            "minLength": 1,
        },
        "entity": {
            "title": "Entity",
            "description": "The record's entity name.",
            "const": entity,
        },
        "schema_version": {
            "title": "Schema version",
            "description": "Version of the canonical model the data follows.",
            "const": SCHEMA_VERSION,
        },
        "created_at": {**datetime_def, "title": "Created at",
                       "description": "When Liaison first stored the record, UTC."},
        "updated_at": {**datetime_def, "title": "Updated at",
                       "description": "When Liaison last changed the record, UTC."},
        "deleted": {
            "title": "Deleted",
            "description": "True once the record was deleted in its source system.",
            "type": "boolean",
        },
        "links": {
            "title": "Links",
            "description": "The record's id in each connected system.",
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["system", "external_id"],
                "properties": {
                    "system": {"type": "string", "minLength": 1,
                               "description": "The connection (system) name from the config."},
                    "external_id": {"type": "string", "minLength": 1,
                                    "description": "The record's id in that system."},
                },
            },
        },
    }


@cache
def _record(entity: str) -> dict[str, Any]:
    data = _load(entity)
    schema = copy.deepcopy(data)
    schema["$id"] = f"{SCHEMA_BASE_URI}/{entity}/v{SCHEMA_VERSION}/record"
    schema["title"] = data["title"].replace("(canonical,", "record (canonical,")
    schema["description"] = (
        f"A stored canonical {entity}: the envelope managed by the hub plus the data fields."
    )
    envelope = _envelope_properties(entity, schema["$defs"])
    # Envelope first so the schema reads top-down the way a stored record does.
    schema["properties"] = {**envelope, **data["properties"]}
    schema["required"] = list(ENVELOPE_FIELDS)
    return schema


def record_schema(entity: str) -> dict[str, Any]:
    """The JSON Schema of a whole stored record: envelope fields (required) plus data fields."""
    check_entity(entity)
    return copy.deepcopy(_record(entity))


def shared_schema(entity: str, *, record: bool = False) -> dict[str, Any]:
    """The cached schema itself, for read-only use inside this package (never mutate)."""
    check_entity(entity)
    return _record(entity) if record else _load(entity)
