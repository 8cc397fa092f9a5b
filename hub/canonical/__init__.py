"""The canonical model v1: entity JSON Schemas and their Python face (pure; reads its schemas once).

A canonical record is an envelope managed by the engine (ENVELOPE_FIELDS) plus the data
fields a mapping produces. Schemas live in ``schemas/<entity>.v1.json`` (draft 2020-12).
"""

from hub.canonical.fingerprint import (
    fingerprint,
    fingerprint_json,
    record_json,
    stable_json,
    without_nulls,
)
from hub.canonical.match import (
    MATCH_KEYS,
    NORMALISERS,
    MatchKey,
    UnknownMatchKeyError,
    match_selector,
    match_values,
    normalise_domain,
    normalise_match_value,
)
from hub.canonical.paths import check_path, field_schema, parse_path
from hub.canonical.schemas import (
    ENTITIES,
    ENVELOPE_FIELDS,
    SCHEMA_VERSION,
    UnknownEntityError,
    check_entity,
    data_schema,
    record_schema,
)
from hub.canonical.validate import Validator, get_validator, validate

__all__ = [
    "ENTITIES",
    "ENVELOPE_FIELDS",
    "MATCH_KEYS",
    "NORMALISERS",
    "SCHEMA_VERSION",
    "MatchKey",
    "UnknownEntityError",
    "UnknownMatchKeyError",
    "Validator",
    "check_entity",
    "check_path",
    "data_schema",
    "field_schema",
    "fingerprint",
    "fingerprint_json",
    "get_validator",
    "match_selector",
    "match_values",
    "normalise_domain",
    "normalise_match_value",
    "parse_path",
    "record_json",
    "record_schema",
    "stable_json",
    "validate",
    "without_nulls",
]
