"""hub.digests: stored fingerprints and audit hashes are SHA-256, whatever makes them faster.

A store written by an earlier version holds these digests: a different hash (or a hasher
that kept state between calls) would make every record look changed and every audit event
look edited.
"""

from __future__ import annotations

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from hub.canonical import fingerprint_json
from hub.digests import sha256_hex


@given(st.lists(st.binary(max_size=3000), min_size=1, max_size=4))
def test_each_digest_is_the_sha256_of_its_own_bytes(chunks: list[bytes]) -> None:
    # Several calls in a row: the shared empty hasher is copied, never fed.
    for data in chunks:
        assert sha256_hex(data) == hashlib.sha256(data).hexdigest()
        assert fingerprint_json(data) == hashlib.sha256(data).hexdigest()[:32]


def test_a_known_digest() -> None:
    assert sha256_hex(b"abc") == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
