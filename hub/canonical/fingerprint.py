"""Content fingerprints of canonical data (echo suppression and "unchanged" detection)."""

from __future__ import annotations

from hashlib import sha256
from typing import Any

import orjson

_SORTED = orjson.OPT_SORT_KEYS


def fingerprint(data: dict[str, Any]) -> str:
    """Stable 32-hex-char hash of the data; key order does not matter, every value does."""
    return sha256(orjson.dumps(data, option=_SORTED)).hexdigest()[:32]
