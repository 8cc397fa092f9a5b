"""Content fingerprints of canonical data (echo suppression and "unchanged" detection)."""

from __future__ import annotations

from hashlib import sha256
from typing import Any

import orjson

_SORTED = orjson.OPT_SORT_KEYS


def stable_json(data: dict[str, Any]) -> bytes:
    """The data as JSON with keys sorted: the bytes a fingerprint is taken of."""
    return orjson.dumps(data, option=_SORTED)


def fingerprint_json(text: bytes) -> str:
    """The fingerprint of `stable_json` bytes (to store the JSON and its hash from one dump)."""
    return sha256(text).hexdigest()[:32]


def fingerprint(data: dict[str, Any]) -> str:
    """Stable 32-hex-char hash of the data; key order does not matter, every value does."""
    return sha256(orjson.dumps(data, option=_SORTED)).hexdigest()[:32]


def record_json(data: dict[str, Any]) -> bytes:
    """The data as a record stores it and its links fingerprint it: `stable_json` without
    top-level nulls. A merge treats a null field as an absent one (hub.sync.conflict), so
    the two must not look like a change, and one dump then serves store and fingerprint."""
    if None in data.values():
        data = {k: v for k, v in data.items() if v is not None}
    return orjson.dumps(data, option=_SORTED)
