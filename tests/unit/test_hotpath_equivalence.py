"""The ingest hot-path shortcuts behave exactly like the careful code they skip."""

from __future__ import annotations

import uuid
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from hub.canonical import record_json
from hub.canonical.diffs import created_text, decode_diff, encode_diff
from hub.canonical.redact import _redact_value, _secret_name, redact_diff, redact_values
from hub.config.model import REDACTED, ConflictConfig
from hub.sync.conflict import Resolver
from hub.sync.hooks import CreatedDiff
from hub.sync.ids import new_id
from hub.sync.mapped import PageJson, page_json, payload_json

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
def test_the_created_values_are_redacted_as_the_audit_redacts_any_diff(
        data: dict[str, Any], sensitive: frozenset[str]) -> None:
    fresh = {k: v for k, v in data.items() if v is not None}
    diff = redact_diff({k: [None, v] for k, v in fresh.items()}, sensitive, canonical=True)
    values = redact_values(fresh, sensitive)
    assert values == {k: change[1] for k, change in diff.items()}
    # The data itself exactly when nothing was redacted: a read-ahead child then lets
    # the record's JSON serve the audit trail as it is.
    assert (values is fresh) == (values == fresh)


@given(st.dictionaries(NAMES, JSON_VALUES, max_size=6))
def test_a_created_record_s_json_is_the_diff_the_audit_trail_writes(
        data: dict[str, Any]) -> None:
    # What the engine stores for a record a read-ahead child prepared (its JSON, wrapped)
    # is, byte for byte, what the audit observer writes for the merge's diff of it.
    fresh = {k: v for k, v in data.items() if v is not None}
    expected = Resolver(ConflictConfig(), ["a"], 1).merge({}, {}, data, (), "a", "t").diff
    text = created_text(record_json(data).decode())
    assert text == encode_diff(expected, created=True)
    assert decode_diff(text) == {k: [None, v] for k, v in fresh.items()}


@given(st.dictionaries(NAMES, st.lists(JSON_VALUES, min_size=2, max_size=2), max_size=5),
       st.booleans())
def test_every_stored_diff_reads_back_as_written(diff: dict[str, Any],
                                                 created: bool) -> None:
    text = encode_diff(diff, created=created)
    assert decode_diff(text) == diff
    compact = created and all(change[0] is None for change in diff.values())
    assert text.startswith('{"+":') == compact


def test_a_native_field_named_plus_is_not_taken_for_the_created_form() -> None:
    # Writes to other systems diff native fields, whose names could be anything.
    native = {"+": [None, 1]}
    assert decode_diff(encode_diff(native, created=False)) == native
    assert decode_diff(encode_diff({"+": [{"a": 1}, None]}, created=False)) == {
        "+": [{"a": 1}, None]}


# Native records as connectors hand them over: JSON, plus values only `default=str` writes.
natives = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**63 - 1)
    | st.floats(allow_nan=False) | st.text() | st.dates() | st.decimals(allow_nan=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=3),
    max_leaves=12)


@given(st.lists(st.dictionaries(st.text(max_size=8), natives, max_size=4), max_size=6))
def test_a_record_cut_from_the_page_json_is_its_own_json(page: list[dict[str, Any]]) -> None:
    # A dead letter keeps the same bytes whether the child sent each record's JSON or the
    # page's: hub dlq show and replay read them.
    text = page_json(page)
    assert text is not None
    cut = PageJson(text)
    assert [cut.record(i) for i in range(len(page))] == [payload_json(r) for r in page]


def test_a_page_json_cannot_hold_falls_back_to_each_record() -> None:
    # orjson writes no integer beyond 64 bits: the page is refused, each record then gets
    # payload_json's repr.
    page = [{"id": "1"}, {"id": "2", "n": 2**70}]
    assert page_json(page) is None
    assert payload_json(page[1]) == b'"' + repr(page[1]).encode() + b'"'
