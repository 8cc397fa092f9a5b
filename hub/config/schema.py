"""The JSON Schema (draft 2020-12) of the config file, and its compiled validator.

Each node that can fail on type carries an `x-expected` phrase ("a list of system names")
so hub.config.messages can tell an ops person what was expected in their words; the
validator ignores unknown keywords, so the phrases cost nothing at validation time.
Cross-references (a flow naming a declared system, cron syntax, files that must exist)
are not expressible here and live in hub.config.semantics.
"""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator

from hub.config.model import CATEGORIES, CONFLICT_POLICIES, DELETE_POLICIES, DIRECTIONS, MODES

# Fallback policies exclude field-owner: the fallback is what applies when no owner is named.
FALLBACK_POLICIES = tuple(p for p in CONFLICT_POLICIES if p != "field-owner")

_TEXT: dict[str, Any] = {"type": "string", "x-expected": "text"}
_OPTIONAL_TEXT: dict[str, Any] = {"type": ["string", "null"], "x-expected": "text"}
_FILE: dict[str, Any] = {"type": "string", "minLength": 1, "x-expected": "a file path"}

_SYSTEM_NAMES: dict[str, Any] = {
    "type": ["string", "array"],
    "x-expected": "a system name or a list of system names",
    "minItems": 1,
    "uniqueItems": True,
    "items": {"type": "string", "x-expected": "a system name"},
}

RETRY: dict[str, Any] = {
    "type": "object",
    "x-expected": "a retry block like {attempts: 5, backoff_initial: 0.5, backoff_max: 60}",
    "additionalProperties": False,
    "properties": {
        "attempts": {"type": "integer", "minimum": 1, "maximum": 100,
                     "x-expected": "a whole number of attempts"},
        "backoff_initial": {"type": "number", "minimum": 0, "maximum": 86400,
                            "x-expected": "a number of seconds"},
        "backoff_max": {"type": "number", "minimum": 0, "maximum": 86400,
                        "x-expected": "a number of seconds"},
    },
}

CONNECTION: dict[str, Any] = {
    "type": ["object", "null"],  # `connection:` left empty means no connection yet (a silo)
    "x-expected": "a connection block (connector: ... and its settings)",
    "required": ["connector"],
    # Other keys are the connector's own settings; the connector validates them.
    "additionalProperties": True,
    "properties": {
        "connector": {"type": "string", "minLength": 1, "x-expected": "a connector name"},
        "mappings": {
            "type": "object",
            "x-expected": "a map of entity -> mapping file, like {contact: ./contact.yaml}",
            "additionalProperties": _FILE,
        },
        "retry": RETRY,
    },
}

SYSTEM: dict[str, Any] = {
    "type": "object",
    "x-expected": "a system block (category, owner, connection, ...)",
    "additionalProperties": False,
    "required": ["category"],
    "properties": {
        "category": {"type": "string", "enum": list(CATEGORIES), "x-expected": "a category"},
        "owner": {**_OPTIONAL_TEXT, "x-expected": "a person or team name (or null)"},
        "description": _OPTIONAL_TEXT,
        "connection": CONNECTION,
    },
}

CONFLICT: dict[str, Any] = {
    "type": ["string", "object"],
    "x-expected": "a conflict policy name or a block like {policy: field-owner, owners: {...}}",
    # `enum` would also reject the object form, so it applies to strings only.
    "if": {"type": "string"},
    "then": {"enum": list(CONFLICT_POLICIES)},
    "additionalProperties": False,
    "required": ["policy"],
    "properties": {
        "policy": {"type": "string", "enum": list(CONFLICT_POLICIES),
                   "x-expected": "a conflict policy name"},
        "owners": {
            "type": "object",
            "x-expected": "a map of canonical field -> system name, like {emails: hubspot}",
            "additionalProperties": {"type": "string", "x-expected": "a system name"},
        },
        "fallback": {"type": "string", "enum": list(FALLBACK_POLICIES),
                     "x-expected": "a conflict policy name"},
    },
}

FLOW: dict[str, Any] = {
    "type": "object",
    "x-expected": "a flow block (entity, from, to, ...)",
    "additionalProperties": False,
    "required": ["entity", "from", "to"],
    "properties": {
        "entity": {"type": "string", "x-expected": "an entity name like contact"},
        "from": _SYSTEM_NAMES,
        "to": _SYSTEM_NAMES,
        "schedule": {"type": ["string", "null"],
                     "x-expected": 'a cron expression like "*/15 * * * *"'},
        "mode": {"type": "string", "enum": list(MODES), "x-expected": "a mode"},
        "direction": {"type": "string", "enum": list(DIRECTIONS), "x-expected": "a direction"},
        "conflict": CONFLICT,
        "on_delete": {"type": "string", "enum": list(DELETE_POLICIES),
                      "x-expected": "what to do on delete"},
        "filter": {"type": "object",
                   "x-expected": "a condition like {path: emails[0].address, empty: false}"},
        "mappings": {
            "type": "object",
            "x-expected": "a map of system name -> mapping file, like {hubspot: ./my.yaml}",
            "additionalProperties": _FILE,
        },
        "page_size": {"type": "integer", "minimum": 1, "maximum": 10000,
                      "x-expected": "a whole number of records"},
        "retry": RETRY,
        "enabled": {"type": "boolean", "x-expected": "true or false"},
    },
}

CONFIG: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://liaison.example/schemas/hub-config-1.json",
    "title": "Liaison config file (hub.yaml)",
    "type": "object",
    "x-expected": "a config with keys like version, systems and flows",
    "additionalProperties": False,
    "required": ["systems"],
    "properties": {
        "version": {"const": 1, "x-expected": "1"},
        "store": {"type": "string", "minLength": 1,
                  "x-expected": "a database URL like sqlite:///liaison.db"},
        "broker": {"type": "string", "minLength": 1,
                   "x-expected": "a broker URL like inprocess:// or redis://host:6379/0"},
        "mappings": {"type": "array", "x-expected": "a list of folders",
                     "items": {"type": "string", "minLength": 1, "x-expected": "a folder path"}},
        "systems": {"type": ["object", "null"],
                    "x-expected": "a map of system name -> system block",
                    "additionalProperties": SYSTEM},
        "flows": {"type": ["object", "null"], "x-expected": "a map of flow name -> flow block",
                  "additionalProperties": FLOW},
    },
}

Draft202012Validator.check_schema(CONFIG)
VALIDATOR = Draft202012Validator(CONFIG)
