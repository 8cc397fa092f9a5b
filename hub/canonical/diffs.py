"""A change's field diff as the audit trail stores it (the text of `audit_events.diff`).

Two forms, both JSON with sorted keys:

- any change: {field: [old, new]};
- a canonical record created from values (no field had a value before; most events of
  a first sync): {"+": {field: new}}, the values as the record itself stores them. About
  a tenth smaller, and the new record's own JSON serves as it is (`created_text`): it is
  serialised once instead of twice.

`decode_diff` reads both as {field: [old, new]}: in the first form every value is a list,
so one key "+" holding an object can only be the second (and "+" is no canonical field:
every entity schema lists its fields, lower-case names, and refuses others). Writes to
other systems, whose native field names could be anything, always take the first form
(`encode_diff`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

CREATED = "+"
_SORTED = orjson.OPT_SORT_KEYS


def created_text(values_json: str) -> str:
    """The diff of a record created from values, given their JSON (keys sorted)."""
    return '{"' + CREATED + '":' + values_json + "}"


def created_values_text(values: Mapping[str, Any]) -> str:
    """The diff of a record created from `values` (redacted already)."""
    return created_text(orjson.dumps(values, option=_SORTED).decode())


def encode_diff(diff: Mapping[str, Any], *, created: bool) -> str:
    """A diff ({field: [old, new]}) as stored: the created form when `created` (the diff
    creates a canonical record: not an update, not a write to another system, whose
    fields are native ones) and no field had a value before."""
    if created and all(change[0] is None for change in diff.values()):
        return created_values_text({name: change[1] for name, change in diff.items()})
    return orjson.dumps(diff, option=_SORTED).decode()


def decode_diff(text: str) -> dict[str, list[Any]]:
    """The stored diff as {field: [old, new]}, whichever form it was written in."""
    if not text:
        return {}
    diff = orjson.loads(text)
    if not isinstance(diff, dict):
        return {}
    created = diff.get(CREATED)
    if len(diff) == 1 and isinstance(created, dict):
        return {name: [None, value] for name, value in created.items()}
    return diff
