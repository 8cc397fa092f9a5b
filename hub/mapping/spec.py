"""What a mapping file may contain: its JSON Schema and the resolved spec dataclasses.

The schema checks shape only (keys, types); meaning (known entity, canonical fields,
transforms, conditions) is checked by compiling the spec, so both kinds of problem come
back together, each located at file:line: key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hub.errors import Problem
from hub.yamlsrc import Located, PathKey, dotted

DIRECTIONS = ("both", "in", "out")

_TRANSFORMS = {
    "type": "array",
    "x-expected": "a list of transforms, like [trim, lower]",
    "items": {
        "type": ["string", "object"],
        "x-expected": "a transform name (like trim) or a one-key object (like {split: \";\"})",
    },
}

_CONDITION = {
    "type": "object",
    "x-expected": "a condition object, like {path: archived, equals: true}",
}

FIELD_KEYS = ("path", "value", "template", "each", "fields", "in", "out", "reference", "by",
              "direction", "required", "default", "when", "sensitive")

_FIELD_OBJECT: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "path": {"type": "string", "minLength": 1, "x-expected": "a native path as text"},
        "value": {},
        "template": {"type": "string", "x-expected": "text with {native.path} placeholders"},
        "each": {"type": "string", "minLength": 1, "x-expected": "the native path of a list"},
        "fields": {"$ref": "#/$defs/fields"},
        "in": _TRANSFORMS,
        "out": _TRANSFORMS,
        "reference": {"type": "string", "minLength": 1, "x-expected": "an entity name"},
        "by": {"type": "string", "minLength": 1,
               "x-expected": "a match key of the referenced entity, like email"},
        "direction": {"enum": list(DIRECTIONS)},
        "required": {"type": "boolean", "x-expected": "true or false"},
        "default": {},
        "when": _CONDITION,
        "sensitive": {"type": "boolean", "x-expected": "true or false"},
    },
}

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "x-expected": "a mapping: an object with version, connector, entity, object, id and fields",
    "additionalProperties": False,
    "properties": {
        "version": {"const": 1},
        "extends": {"type": "string", "minLength": 1,
                    "x-expected": "a mapping name like hubspot/contact or a file path"},
        "description": {"type": "string"},
        "connector": {"type": "string", "minLength": 1, "x-expected": "a connector name"},
        "entity": {"type": "string", "minLength": 1, "x-expected": "an entity name"},
        "object": {"type": "string", "minLength": 1, "x-expected": "the native object name"},
        "id": {"type": "string", "minLength": 1, "x-expected": "the native path of the id"},
        "updated_at": {
            "type": ["string", "object"],
            "x-expected": "a native path, or {path: ..., in: [datetime]}",
            "if": {"type": "object"},
            "then": {
                "additionalProperties": False,
                "required": ["path"],
                "properties": {
                    "path": {"type": "string", "minLength": 1,
                             "x-expected": "a native path as text"},
                    "in": _TRANSFORMS,
                },
            },
        },
        "deleted": _CONDITION,
        "skip_when": _CONDITION,
        "only_when": _CONDITION,
        "match": {"type": "array", "items": {"type": "string"},
                  "x-expected": "a list of match key names, like [email]"},
        "constants": {"type": "object",
                      "x-expected": "an object of native path: value"},
        "fields": {"$ref": "#/$defs/fields"},
    },
    "$defs": {
        "fields": {
            "type": "object",
            "x-expected": "an object of canonical field: native path or field options",
            "additionalProperties": {
                "type": ["null", "string", "object"],
                "x-expected": "a native path, a field object ({path: ..., in: [...]}) or null",
                "if": {"type": "object"},
                "then": _FIELD_OBJECT,
            },
        },
    },
}

REQUIRED = ("connector", "entity", "object", "id", "fields")
"""Top-level keys a mapping must have once `extends` is resolved."""


@dataclass(frozen=True)
class Origin:
    """Where a piece of a spec was written: the document and the key path inside it."""

    file: str
    path: PathKey = ()
    located: Located | None = None

    def problem(self, sub: Sequence[str | int], message: str) -> Problem:
        """A Problem at `sub` below this origin (file:line when the document is known)."""
        full = self.path + tuple(sub)
        if self.located is not None:
            return self.located.problem(full, message)
        return Problem(self.file, None, dotted(full), message)


@dataclass(frozen=True)
class FieldSpec:
    """One canonical field of a mapping and how to get it from (and put it back into) native."""

    canonical: str
    path: str | None = None
    value: Any = None
    has_value: bool = False
    template: str | None = None
    each: str | None = None
    fields: tuple[FieldSpec, ...] = ()
    transforms_in: tuple[Any, ...] = ()
    transforms_out: tuple[Any, ...] | None = None
    reference: str | None = None
    by: str | None = None  # the system names the referenced record by this match key
    direction: str | None = None  # None: the default for the kind of field
    required: bool = False
    default: Any = None
    has_default: bool = False
    when: Any = None
    sensitive: bool = False
    origin: Origin = field(default_factory=lambda: Origin(""))


@dataclass(frozen=True)
class MappingSpec:
    """A resolved (extends applied) mapping file, ready for `compile_mapping`."""

    file: str
    connector: str
    entity: str
    object: str
    id: str
    fields: tuple[FieldSpec, ...]
    version: int = 1
    updated_at: FieldSpec | None = None
    deleted: Any = None
    skip_when: Any = None
    only_when: Any = None
    match: tuple[str, ...] | None = None
    constants: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""
    extends: tuple[str, ...] = ()  # the files this one inherits from, nearest first
    origins: Mapping[str, Origin] = field(default_factory=dict)

    def origin(self, key: str) -> Origin:
        """Where top-level `key` was written (the spec's own file when unknown)."""
        return self.origins.get(key) or Origin(self.file, (key,))


def field_from_raw(canonical: str, raw: Any, origin: Origin) -> FieldSpec:
    """A FieldSpec from a schema-valid field value (text shorthand or options object)."""
    if isinstance(raw, str):
        return FieldSpec(canonical, path=raw, origin=origin)
    sub = raw.get("fields") or {}
    return FieldSpec(
        canonical,
        path=raw.get("path"),
        value=raw.get("value"),
        has_value="value" in raw,
        template=raw.get("template"),
        each=raw.get("each"),
        fields=tuple(field_from_raw(k, v, Origin(origin.file, origin.path + ("fields", k),
                                                 origin.located))
                     for k, v in sub.items() if v is not None),
        transforms_in=tuple(raw.get("in") or ()),
        transforms_out=tuple(raw["out"]) if raw.get("out") is not None else None,
        reference=raw.get("reference"),
        by=raw.get("by"),
        direction=raw.get("direction"),
        required=bool(raw.get("required", False)),
        default=raw.get("default"),
        has_default="default" in raw,
        when=raw.get("when"),
        sensitive=bool(raw.get("sensitive", False)),
        origin=origin,
    )


def spec_from_dict(data: Mapping[str, Any], file: str = "<mapping>",
                   origins: Mapping[str, Origin] | None = None,
                   field_origins: Mapping[str, Origin] | None = None,
                   extends: tuple[str, ...] = ()) -> MappingSpec:
    """A MappingSpec from a schema-valid, extends-resolved mapping dict."""
    origins = dict(origins or {})
    fo = field_origins or {}
    fields = tuple(
        field_from_raw(k, v, fo.get(k) or Origin(file, ("fields", k)))
        for k, v in (data.get("fields") or {}).items() if v is not None)
    upd = data.get("updated_at")
    updated_at = None
    if upd is not None:
        upd_origin = origins.get("updated_at") or Origin(file, ("updated_at",))
        raw_upd = {"path": upd} if isinstance(upd, str) else dict(upd)
        raw_upd.setdefault("in", ["datetime"])
        updated_at = field_from_raw("updated_at", raw_upd, upd_origin)
    match = data.get("match")
    return MappingSpec(
        file=file,
        connector=str(data.get("connector", "")),
        entity=str(data.get("entity", "")),
        object=str(data.get("object", "")),
        id=str(data.get("id", "")),
        fields=fields,
        version=int(data.get("version", 1)),
        updated_at=updated_at,
        deleted=data.get("deleted"),
        skip_when=data.get("skip_when"),
        only_when=data.get("only_when"),
        match=tuple(match) if match is not None else None,
        constants=dict(data.get("constants") or {}),
        description=str(data.get("description", "")),
        extends=extends,
        origins=origins,
    )
