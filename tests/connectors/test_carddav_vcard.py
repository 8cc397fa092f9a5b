"""vCard text <-> native contact records (connectors/carddav/vcard.py), without a server:
round-trip laws (hypothesis), best sane readings of bad cards, and errors naming href/UID."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.carddav import vcard
from connectors.dav.records import ERROR_KEY, RAW_KEY

HREF = "/ana/contacts/c1.vcf"
WRITTEN = ("fn", "n", "emails", "tels", "adrs", "org", "title", "note", "categories")


def card(*lines: str, version: str = "3.0") -> str:
    return "\r\n".join(["BEGIN:VCARD", f"VERSION:{version}", *lines, "END:VCARD"]) + "\r\n"


# -- strategies ---------------------------------------------------------------------------------

_CHARS = st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp"),
                       blacklist_characters="\u0085")
text = st.text(_CHARS | st.sampled_from(",;\\:\n\"'"), min_size=1, max_size=40).map(
    lambda s: s.strip()).filter(bool)
word = st.text(st.characters(whitelist_categories=("Lu", "Ll", "Lo")), min_size=1, max_size=12)
kind = st.sampled_from([None, "work", "home", "cell", "fax", "other"])
emails = st.lists(st.fixed_dictionaries({
    "value": st.builds("{}@{}.example".format, st.text("abcxyz019.", min_size=1, max_size=8),
                       st.text("abcxyz", min_size=1, max_size=8)),
    "type": st.sampled_from([None, "work", "home", "other"])}), max_size=3)
tels = st.lists(st.fixed_dictionaries({
    "value": st.integers(10**6, 10**13).map(lambda n: f"+{n}"), "type": kind}), max_size=3)
names = st.fixed_dictionaries({"given": text, "family": text})
adrs = st.lists(st.fixed_dictionaries({
    "street": text, "locality": word, "postal_code": st.integers(1000, 99999).map(str),
    "country": st.sampled_from(["Germany", "France", "United States"]),
    "type": st.sampled_from([None, "work", "home"])}), max_size=2)
records = st.fixed_dictionaries({"n": names}, optional={
    "emails": emails, "tels": tels, "adrs": adrs, "org": text, "title": text, "note": text,
    "categories": st.lists(text, max_size=3)})


def shown(record: dict[str, Any]) -> dict[str, Any]:
    """What reading back should show for a written record (missing keys read as empty)."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        if key == "n":
            out[key] = {**dict.fromkeys(vcard.N_PARTS), **value}
        elif key == "adrs":
            out[key] = [{**dict.fromkeys(vcard.ADR_PARTS), **a} for a in value]
        else:
            out[key] = value
    return out


def fields_of(native: dict[str, Any], keys: Any) -> dict[str, Any]:
    empty: dict[str, Any] = {"emails": [], "tels": [], "adrs": [], "categories": []}
    return {k: native.get(k) if native.get(k) is not None else empty.get(k) for k in keys}


# -- round trips --------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(records)
def test_a_created_card_reads_back_as_written(record: dict[str, Any]) -> None:
    text = vcard.create(record, "uid-1")
    native = vcard.parse(text, HREF, '"e1"')
    assert ERROR_KEY not in native, native
    expected = shown(record)
    assert fields_of(native, expected) == fields_of(expected, expected)
    assert native["uid"] == "uid-1" and native["version"] == "3.0"
    assert native["fn"] == vcard.compose(record["n"])
    assert all(len(line.encode()) <= 75 for line in text.split("\r\n"))


@settings(max_examples=60, deadline=None)
@given(records, records)
def test_merging_writes_the_new_fields_and_keeps_the_lines_it_does_not_own(
        first: dict[str, Any], second: dict[str, Any]) -> None:
    base = vcard.create(first, "uid-1").replace(
        "END:VCARD", "X-SOCIAL;TYPE=mastodon:@ana@example.social\r\nBDAY:1990-04-01\r\n"
                     "PHOTO;ENCODING=b;TYPE=JPEG:AAAABBBB\r\nEND:VCARD")
    merged = vcard.merge(base, second, HREF)
    result = vcard.parse(merged or base, HREF, None)
    expected = shown(second)
    assert fields_of(result, expected) == fields_of(expected, expected)
    for kept in ("X-SOCIAL;TYPE=mastodon:@ana@example.social", "BDAY:1990-04-01",
                 "PHOTO;ENCODING=b;TYPE=JPEG:AAAABBBB", "UID:uid-1"):
        assert kept in (merged or base)
    untouched = set(first) - set(second) - {"n"}
    assert fields_of(result, untouched) == fields_of(shown(first), untouched)


@settings(max_examples=40, deadline=None)
@given(records)
def test_writing_back_what_was_read_changes_nothing(record: dict[str, Any]) -> None:
    text = vcard.create(record, "uid-1")
    native = vcard.parse(text, HREF, None)
    again = {k: native[k] for k in WRITTEN}
    assert vcard.merge(text, again, HREF) is None


# -- reading real-world cards ---------------------------------------------------------------------


def test_a_vcard_4_is_read_and_its_types_and_tel_uris_normalised() -> None:
    text = card("UID:urn:uuid:4fbe8971", "FN:Ana Doe", "N:Doe;Ana;;Dr.;",
                "EMAIL;TYPE=work;PREF=1:ana@example.com",
                'TEL;VALUE=uri;TYPE="voice,cell":tel:+1-415-555-0100',
                "ADR;TYPE=home:;Flat 2;1 Main St;Town;;12345;Germany",
                "ORG:Acme\\, Inc.;Sales", "CATEGORIES:vip,press", "REV:20240102T030405Z",
                version="4.0")
    native = vcard.parse(text, HREF, '"e1"')
    assert native["version"] == "4.0" and native["uid"] == "urn:uuid:4fbe8971"
    assert native["n"] == {"family": "Doe", "given": "Ana", "additional": None,
                           "prefix": "Dr.", "suffix": None}
    assert native["emails"] == [{"value": "ana@example.com", "type": "work"}]
    assert native["tels"] == [{"value": "+1-415-555-0100", "type": "cell"}]
    assert native["adrs"][0]["extended"] == "Flat 2" and native["adrs"][0]["type"] == "home"
    assert native["org"] == "Acme, Inc."
    assert native["categories"] == ["vip", "press"]
    assert native["rev"] == "2024-01-02T03:04:05Z"
    assert native["warnings"] == []


def test_an_update_of_a_vcard_4_keeps_its_version_and_photo() -> None:
    text = card("UID:u4", "FN:Ana Doe", "N:Doe;Ana;;;",
                "PHOTO:data:image/png;base64,iVBORw0KGgo=", "KIND:individual", version="4.0")
    merged = vcard.merge(text, {"title": "CEO"}, HREF)
    assert merged is not None
    assert "VERSION:4.0" in merged and "PHOTO:data:image/png;base64,iVBORw0KGgo=" in merged
    assert vcard.parse(merged, HREF, None)["title"] == "CEO"


def test_two_fn_the_first_is_used_and_noted() -> None:
    native = vcard.parse(card("UID:u1", "FN:Ana Doe", "FN:Anna D.", "N:Doe;Ana;;;"), HREF, None)
    assert native["fn"] == "Ana Doe"
    assert "FN appears 2 times: the first is used" in native["warnings"]


def test_no_n_the_name_is_split_from_fn_but_not_for_an_organisation() -> None:
    person = vcard.parse(card("UID:u1", "FN:Ana Maria Doe"), HREF, None)
    assert person["n"]["given"] == "Ana Maria" and person["n"]["family"] == "Doe"
    assert "no N: the name was split from FN" in person["warnings"]
    company = vcard.parse(card("UID:u2", "FN:Acme Ltd", "KIND:org", version="4.0"), HREF, None)
    assert company["n"] is None and company["fn"] == "Acme Ltd"


def test_no_fn_is_composed_from_n_and_no_name_at_all_still_syncs() -> None:
    from_n = vcard.parse(card("UID:u1", "N:Doe;Ana;;;"), HREF, None)
    assert from_n["fn"] == "Ana Doe" and "no FN: composed from N" in from_n["warnings"]
    nameless = vcard.parse(card("UID:u2", "EMAIL:x@example.com", version="4.0"), HREF, None)
    assert ERROR_KEY not in nameless and nameless["fn"] is None and nameless["n"] is None
    assert nameless["emails"] == [{"value": "x@example.com", "type": None}]


def test_an_unreadable_rev_is_ignored_and_noted() -> None:
    native = vcard.parse(card("UID:u1", "FN:A B", "REV:last tuesday"), HREF, None)
    assert native["rev"] is None
    assert "REV 'last tuesday' is not a timestamp: ignored" in native["warnings"]


@pytest.mark.parametrize(("text", "why"), [
    (card("UID:u-broken", "FN:Ana", "EMAIL ana at example"), "Failed to parse line"),
    ("BEGIN:VCARD\r\nVERSION:3.0\r\nUID:u-broken\r\nFN:Ana\r\n", "is not a readable vCard"),
    ("UID:u-broken\r\nFN:just lines\r\n", "holds no vCard"),
])
def test_broken_text_becomes_an_error_record_naming_the_href_and_uid(text: str,
                                                                    why: str) -> None:
    native = vcard.parse(text, HREF, '"e9"')
    assert set(native) == {ERROR_KEY, RAW_KEY}
    assert native[ERROR_KEY].startswith(f"vCard {HREF} (UID u-broken): ")
    assert why in native[ERROR_KEY]
    assert native[RAW_KEY]["href"] == HREF and native[RAW_KEY]["text"] == text


def test_merge_recomposes_fn_only_when_it_was_the_name() -> None:
    plain = card("UID:u1", "FN:Ana Doe", "N:Doe;Ana;;;")
    renamed = vcard.merge(plain, {"n": {"given": "Anna", "family": "Doe"}}, HREF)
    assert renamed is not None and "FN:Anna Doe" in renamed and "N:Doe;Anna;;;" in renamed
    custom = card("UID:u1", "FN:Dr. Ana Doe (ACME)", "N:Doe;Ana;;;")
    kept = vcard.merge(custom, {"n": {"given": "Anna", "family": "Doe"}}, HREF)
    assert kept is not None and "FN:Dr. Ana Doe (ACME)" in kept


def test_merge_drops_apple_labels_with_the_emails_they_label() -> None:
    text = card("UID:u1", "FN:A B", "N:B;A;;;", "item1.EMAIL:old@example.com",
                "item1.X-ABLabel:_$!<Other>!$_", "item2.URL:https://example.com",
                "item2.X-ABLabel:site")
    merged = vcard.merge(text, {"emails": [{"value": "new@example.com", "type": "work"}]}, HREF)
    assert merged is not None
    assert "old@example.com" not in merged and "_$!<Other>!$_" not in merged
    assert "item2.URL:https://example.com" in merged and "item2.X-ABLabel:site" in merged
    assert "EMAIL;TYPE=work:new@example.com" in merged


def test_merge_refuses_a_card_it_cannot_read_and_bad_field_shapes() -> None:
    from hub.errors import PermanentError

    with pytest.raises(PermanentError, match="cannot be read"):
        vcard.merge("garbage", {"title": "x"}, HREF)
    with pytest.raises(PermanentError, match="expected a list of objects"):
        vcard.merge(card("UID:u1", "FN:A"), {"emails": [42]}, HREF)
