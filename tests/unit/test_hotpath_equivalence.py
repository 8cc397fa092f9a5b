"""The ingest hot-path shortcuts behave exactly like the careful code they skip."""

from __future__ import annotations

import uuid
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from hub.canonical import record_json
from hub.canonical.redact import _redact_value, _secret_name, redact_created, redact_diff
from hub.config.model import REDACTED, ConflictConfig
from hub.sync.conflict import Resolver
from hub.sync.hooks import CreatedDiff
from hub.sync.ids import new_id

NAMES = st.sampled_from(["first_name", "emails", "custom", "address", "api_key", "token",
                         "client_secret", "notes", "Password", "tokens", "x_secret_y", "n"])
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=12),
                    st.sampled_from(["a token", "secret sauce", "plain"]))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(NAMES, inner, max_size=3)), max_leaves=8)
DIFFS = st.dictionaries(NAMES, st.lists(VALUES, min_size=2, max_size=2), max_size=5)


def _careful(diff: dict[str, Any]) -> dict[str, Any]:
    """The walk redact_diff does when it cannot take its fast path (no sensitive fields)."""
    return {name: ([REDACTED if v is not None else None for v in change]
                   if _secret_name(name)
                   else [_redact_value(name, v, frozenset()) for v in change])
            for name, change in diff.items()}


@given(DIFFS)
def test_redact_fast_path_equals_the_careful_walk(diff: dict[str, Any]) -> None:
    assert redact_diff(diff, frozenset()) == _careful(diff)


def test_redact_still_hides_a_nested_secret() -> None:
    got = redact_diff({"custom": [None, {"api_key": "k1", "n": 1}]}, frozenset())
    assert got == {"custom": [None, {"api_key": REDACTED, "n": 1}]}


def test_new_ids_are_unique_time_ordered_uuids() -> None:
    ids = [new_id() for _ in range(20_000)]
    assert len(set(ids)) == len(ids)
    parsed = uuid.UUID(ids[0])
    assert str(parsed) == ids[0] and parsed.version == 7 and parsed.variant == uuid.RFC_4122
    # The 48-bit millisecond prefix never goes backwards.
    prefixes = [i[:13] for i in ids]
    assert prefixes == sorted(prefixes)


# What canonical data can hold: JSON, whose integers orjson keeps to 64 bits.
JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1), st.text(max_size=12)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(NAMES, inner,
                                                                          max_size=3)),
    max_leaves=8)


@given(st.dictionaries(NAMES, JSON_VALUES, max_size=6))
def test_a_created_diff_read_from_json_is_the_diff_a_merge_makes(data: dict[str, Any]) -> None:
    # What a read-ahead child sends for a new record (its stored JSON) reads, for a roll-up,
    # exactly like Resolver.merge's diff of a record created from the same data.
    fresh = {k: v for k, v in data.items() if v is not None}
    lazy = CreatedDiff(record_json(data))
    expected = Resolver(ConflictConfig(), ["a"], 1).merge({}, {}, data, (), "a", "t").diff
    assert dict(lazy) == expected == {k: [None, v] for k, v in fresh.items()}
    assert len(lazy) == len(expected) and all(k in lazy for k in expected)
    assert redact_diff(lazy, frozenset(), canonical=True) == redact_diff(expected, frozenset(),
                                                                          canonical=True)


@given(st.dictionaries(NAMES, VALUES, max_size=6),
       st.sampled_from([frozenset(), frozenset({"notes"}), frozenset({"custom.x", "emails"})]))
def test_the_created_diff_is_redacted_as_the_audit_redacts_any_diff(
        data: dict[str, Any], sensitive: frozenset[str]) -> None:
    fresh = {k: v for k, v in data.items() if v is not None}
    assert redact_created(fresh, sensitive) == redact_diff(
        {k: [None, v] for k, v in fresh.items()}, sensitive, canonical=True)
