"""Mapping with reference tokens, then swapping them, equals mapping with the references.

A child process maps without the store (hub.sync.readahead): references come out as tokens
that the engine swaps for canonical ids. The law: for any records and any set of resolvable
references, tokens + swap give exactly the data in-process mapping gives, including
unresolved references left unset (a single reference) or dropped (a list of them).
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from hub.mapping import compile_mapping, load_mapping
from hub.sync.mapped import from_wire, map_page, map_page_wire, swap_tokens, wanted_refs

CONTACTS = compile_mapping(load_mapping("hubspot/contact"))
MESSAGES = compile_mapping(load_mapping("imap/message"))

ids = st.sampled_from([str(i) for i in range(1, 9)])
emails = st.sampled_from(["ann@example.com", "Bob@Example.com", " cy@example.org ", "",
                          "dee@example.net"])


@st.composite
def hubspot_contact(draw: Any) -> dict[str, Any]:
    props = {"firstname": draw(st.sampled_from(["Ann", " Bo ", None])),
             "email": draw(emails)}
    native: dict[str, Any] = {"id": draw(ids), "properties": props,
                              "updatedAt": "2024-05-01T10:00:00.000Z", "archived": False}
    companies = draw(st.lists(ids, max_size=2))
    if companies or draw(st.booleans()):
        native["associations"] = {"companies": {"results": [{"id": c} for c in companies]}}
    return native


@st.composite
def imap_message(draw: Any) -> dict[str, Any]:
    people = draw(st.lists(emails, max_size=4))
    return {"id": f"INBOX:1:{draw(ids)}", "subject": "hello", "folder": "INBOX",
            "from": {"address": people[0] if people else "x@example.com", "name": "X"},
            "to": [{"address": p, "name": None} for p in people],
            "participants": [p.strip().lower() for p in people if p.strip()],
            "date": "2024-05-01T10:00:00Z", "deleted": False}


def _resolved(wanted: list[tuple[str, str]], keep: list[bool]) -> dict[tuple[str, str], str]:
    return {key: f"cid-{i}" for i, (key, k) in enumerate(zip(wanted, keep, strict=False)) if k}


def _check(mapping: Any, natives: list[dict[str, Any]], keep: list[bool]) -> None:
    wanted = wanted_refs(mapping, natives)
    refs = _resolved(wanted, keep + [True] * len(wanted))
    direct = map_page(mapping, natives, refs)
    tokened = [from_wire(w) for w in map_page_wire(mapping, natives)]
    assert len(direct) == len(tokened) == len(natives)
    for d, t in zip(direct, tokened, strict=True):
        assert (d.stage, d.error, d.record_id) == (t.stage, t.error, t.record_id)
        if d.inb is None or t.inb is None:
            assert d.inb is t.inb is None
            continue
        if t.tokens:
            swap_tokens(t.inb.data, mapping.ref_roots, refs)
        assert t.inb.data == d.inb.data
        assert (t.inb.external_id, t.inb.deleted) == (d.inb.external_id, d.inb.deleted)


@settings(max_examples=150, deadline=None)
@given(st.lists(hubspot_contact(), max_size=6), st.lists(st.booleans(), max_size=12))
def test_single_references_swapped_equal_references_resolved(
        natives: list[dict[str, Any]], keep: list[bool]) -> None:
    _check(CONTACTS, natives, keep)


@settings(max_examples=150, deadline=None)
@given(st.lists(imap_message(), max_size=5), st.lists(st.booleans(), max_size=12))
def test_lists_of_references_by_match_key_swapped_equal_resolved(
        natives: list[dict[str, Any]], keep: list[bool]) -> None:
    _check(MESSAGES, natives, keep)


def test_only_plain_reference_paths_can_be_deferred() -> None:
    assert CONTACTS.refs_deferrable and CONTACTS.ref_roots == {"company"}
    assert MESSAGES.refs_deferrable and MESSAGES.ref_roots == {"contacts"}
