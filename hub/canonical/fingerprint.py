"""Content fingerprints of canonical data (echo suppression and "unchanged" detection)."""

from __future__ import annotations

from hashlib import sha256
from typing import Any

import orjson

_SORTED = orjson.OPT_SORT_KEYS
# A fresh hash object from OpenSSL 3 looks its algorithm up each time; a copy of an empty
# one does not (0.94 against 1.2 us for a record's JSON here).
_SHA256 = sha256()


def stable_json(data: dict[str, Any]) -> bytes:
    """The data as JSON with keys sorted: the bytes a fingerprint is taken of."""
    return orjson.dumps(data, option=_SORTED)


def fingerprint_json(text: bytes) -> str:
    """The fingerprint of `stable_json` bytes (to store the JSON and its hash from one dump)."""
    h = _SHA256.copy()
    h.update(text)
    return h.hexdigest()[:32]


def fingerprint(data: dict[str, Any]) -> str:
    """Stable 32-hex-char hash of the data; key order does not matter, every value does."""
    return fingerprint_json(orjson.dumps(data, option=_SORTED))


def without_nulls(data: dict[str, Any]) -> dict[str, Any]:
    """The data without its top-level null fields (itself when it has none): a merge
    treats a null field as an absent one (hub.sync.conflict)."""
    if None in data.values():
        return {k: v for k, v in data.items() if v is not None}
    return data


def record_json(data: dict[str, Any]) -> bytes:
    """The data as a record stores it and its links fingerprint it: `stable_json` of
    `without_nulls`, so that a null appearing does not look like a change, and one dump
    serves store and fingerprint."""
    return orjson.dumps(without_nulls(data), option=_SORTED)
