"""Canonical ids: new ones sort by the time they were made."""

from __future__ import annotations

import random
import time

_LOW62 = (1 << 62) - 1
_VERSION_VARIANT = 0x7 << 76 | 0x2 << 62  # UUID version 7, RFC 4122 variant


def new_id() -> str:
    """A new canonical id: a UUID (version 7 layout) whose leading bits are the time in ms.

    Ids made close in time sort close together, so the records' primary key and every
    index on canonical_id grow at their end instead of being written at random pages
    (uuid4): a page's commit then touches a few B-tree pages, not hundreds.
    """
    # 74 random bits from the process's Mersenne Twister, seeded from os.urandom at start
    # and reseeded in every forked child: unique ids without a system call for each (ids
    # are not secrets).
    rand = random.getrandbits(74)
    value = ((time.time_ns() // 1_000_000) << 80 | (rand >> 62) << 64 | rand & _LOW62
             | _VERSION_VARIANT)
    h = value.to_bytes(16).hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
