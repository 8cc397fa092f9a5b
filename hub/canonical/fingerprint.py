"""Content fingerprints of canonical data (echo suppression and "unchanged" detection)."""

from __future__ import annotations

from typing import Any

import orjson

from hub.digests import sha256_hex

_SORTED = orjson.OPT_SORT_KEYS


def stable_json(data: dict[str, Any]) -> bytes:
    """The data as JSON with keys sorted: the bytes a fingerprint is taken of."""
    return orjson.dumps(data, option=_SORTED)


def fingerprint_json(text: bytes) -> str:
    """The fingerprint of `stable_json` bytes (to store the JSON and its hash from one dump)."""
    return sha256_hex(text)[:32]


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
