"""The compiled mapping: inbound, outbound, references, line items, errors, round trips."""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.errors import RecordMappingError
from hub.mapping import compile_mapping, load_mapping, parse_mapping, preview

VENDOR = Path(__file__).parent / "fixtures" / "vendor"


@pytest.fixture(scope="module")
def contact() -> Any:
    return compile_mapping(load_mapping("acme/contact", search_dirs=[VENDOR]))


@pytest.fixture(scope="module")
def invoice() -> Any:
    return compile_mapping(load_mapping("acme/invoice", search_dirs=[VENDOR]))


NATIVE = {
    "id": 51, "updatedAt": "2024-05-01T12:00:00+02:00", "archived": False,
    "properties": {"firstname": "Ann", "lastname": " Lee ", "email": " Ann@X.com ",
                   "phone": "(415) 555-0100", "tags": "vip; eu", "lifecyclestage": "lead",
                   "hubspot_owner_id": "7", "jobtitle": None, "ssn": "123"},
    "associations": {"companies": {"results": [{"id": "9"}]}},
}


def test_inbound(contact: Any) -> None:
    rec = contact.inbound(NATIVE, {("company", "9"): "c-1"})
    assert rec.external_id == "51"
    assert rec.updated_at == "2024-05-01T10:00:00Z"
    assert (rec.deleted, rec.skip_reason) == (False, None)
    assert rec.data == {
        "first_name": "Ann", "last_name": "Lee", "title": None,
        "emails": [{"type": "work", "address": "ann@x.com"}],
        "phones": [{"type": "work", "number": "+14155550100"}],
        "company": "c-1", "owner": "7", "tags": ["vip", "eu"],
        "custom": {"lifecycle": "Lead", "full_name": "Ann  Lee", "ssn": "123"},
    }
    assert contact.sensitive_fields == frozenset({"custom.ssn"})
    assert contact.match_keys(rec.data) == {"email": "ann@x.com"}


def test_absent_values_are_not_set_and_unresolved_references_stay_unset(contact: Any) -> None:
    rec = contact.inbound({"id": "1", "properties": {"email": "a@b.co"},
                           "associations": {"companies": {"results": [{"id": "404"}]}}})
    assert rec.data == {"emails": [{"type": "work", "address": "a@b.co"}]}
    assert rec.updated_at is None


def test_outbound(contact: Any) -> None:
    data = contact.inbound(NATIVE, {("company", "9"): "c-1"}).data
    native = contact.outbound(data, {("company", "c-1"): "9"})
    assert native == {
        "properties": {"firstname": "Ann", "lastname": "Lee", "email": "ann@x.com",
                       "phone": "+14155550100", "tags": "vip;eu", "lifecyclestage": "lead",
                       "hubspot_owner_id": "7", "jobtitle": None, "ssn": "123"},
        "associations": {"companies": {"results": [{"id": "9"}]}},
    }
    # an unresolved reference and absent fields are simply omitted
    assert contact.outbound({"company": "c-unknown", "first_name": "Bo"}) == {
        "properties": {"firstname": "Bo"}}


def test_reference_collection(contact: Any, invoice: Any) -> None:
    assert contact.native_refs(NATIVE) == [("company", "9")]
    assert contact.canonical_refs({"company": "c-1", "first_name": "x"}) == [("company", "c-1")]
    native = {"InvoiceID": "i", "Type": "ACCREC", "Contact": {"ContactID": "k"},
              "LineItems": [{"Item": {"ItemID": "p1"}}, {"Description": "x"},
                            {"Item": {"ItemID": "p2"}}]}
    assert invoice.native_refs(native) == [("company", "k"), ("product", "p1"),
                                           ("product", "p2")]
    assert invoice.canonical_refs({"line_items": [{"product": "P1"}], "company": None}) == [
        ("product", "P1")]


def test_skip_and_deleted(contact: Any, invoice: Any) -> None:
    rec = contact.inbound({**NATIVE, "properties": {"hs_test": True}})
    assert rec.skip_reason == "skipped: skip_when properties.hs_test equals 'true'"
    assert rec.data == {}
    rec = contact.inbound({"id": "2", "archived": True})
    assert rec.deleted is True and rec.data == {}
    assert invoice.skip_reason({"InvoiceID": "1", "Type": "SPEND"}) == (
        "skipped: only_when Type in ['ACCREC', 'ACCPAY'] does not hold")


@pytest.mark.parametrize(("native", "message"), [
    ({"properties": {"email": "a@b.co"}}, "record has no id at id"),
    ({"id": "", "properties": {"email": "a@b.co"}}, "record has no id at id"),
    ({"id": "5", "properties": {}},
     ("record 5: field emails[type=work].address: required value is missing "
     "(at properties.email)")),
    ({"id": "5", "properties": {"email": "  "}},
     "record 5: field emails[type=work].address: required value is empty (at properties.email)"),
    ({"id": "5", "properties": {"email": "a@b.co", "phone": "call me"}},
     ("record 5: field phones[type=work].number: phone: expected a phone number (international, "
     "or national for US), got 'call me' (at properties.phone)")),
    ({"id": "5", "updatedAt": "soon", "properties": {"email": "a@b.co"}},
     ("record 5: field updated_at: datetime: expected an ISO 8601 date-time like "
     "2024-05-01T10:00:00Z, got 'soon' (at updatedAt)")),
])
def test_record_errors(contact: Any, native: dict[str, Any], message: str) -> None:
    with pytest.raises(RecordMappingError) as info:
        contact.inbound(native)
    assert str(info.value) == message


def test_line_items_round_trip(invoice: Any) -> None:
    native = {
        "InvoiceID": "i1", "InvoiceNumber": "INV-1", "Type": "ACCREC", "Status": "AUTHORISED",
        "Date": "/Date(1541116800000+0000)/", "Total": 123.5, "AmountDue": 10,
        "Contact": {"ContactID": "k"},
        "LineItems": [
            {"LineItemID": "l1", "Description": "Widget", "Quantity": 2, "UnitAmount": 61.75,
             "LineAmount": 123.5, "Item": {"ItemID": "p9"}},
            {"LineItemID": "l2", "Description": "Note"},
        ],
    }
    refs = {("product", "p9"): "P9", ("company", "k"): "K"}
    rec = invoice.inbound(native, refs)
    assert rec.data["line_items"] == [
        {"remote_id": "l1", "description": "Widget", "quantity": "2", "unit_price": "61.75",
         "total_amount": "123.5", "product": "P9"},
        {"remote_id": "l2", "description": "Note"},
    ]
    assert rec.data["balance"] == "10" and rec.data["status"] == "open"
    back = invoice.outbound(rec.data, {(e, c): n for (e, n), c in refs.items()})
    expected = {k: v for k, v in native.items() if k not in ("InvoiceID", "AmountDue")}
    assert back == {**expected, "LineAmountTypes": "Exclusive"}


def test_line_item_error_names_the_item(invoice: Any) -> None:
    native = {"InvoiceID": "i1", "Type": "ACCREC",
              "LineItems": [{"Quantity": 1}, {"Quantity": "two"}]}
    with pytest.raises(RecordMappingError) as info:
        invoice.inbound(native)
    assert str(info.value) == ("record i1: field line_items[1].quantity: decimal: expected a "
                               "number like 1234.50, got 'two' (at LineItems[1].Quantity)")


def test_preview_keeps_native_ids(contact: Any) -> None:
    canonical, native = preview(contact, NATIVE)
    assert canonical["company"] == "9"
    assert native["associations"] == {"companies": {"results": [{"id": "9"}]}}


def test_defaults_when_and_direction() -> None:
    m = compile_mapping(parse_mapping("""
version: 1
connector: acme
entity: deal
object: deals
id: id
constants: {pipeline: default, meta: {source: liaison}}
fields:
  name: {path: title, default: Untitled}
  status: {path: state, in: [lower, {default: open}]}
  stage: {path: stage, direction: out}
  amount: {path: amount, in: [decimal], when: {path: currency, equals: EUR}}
  currency: {value: EUR}
  probability: {path: prob, in: [int], out: [string]}
""", "deal.yaml"))
    rec = m.inbound({"id": 1, "stage": "s1", "amount": "10.0", "currency": "USD", "prob": "40"})
    assert rec.data == {"name": "Untitled", "status": "open", "currency": "EUR",
                        "probability": 40}
    assert m.inbound({"id": 1, "amount": "10.0", "currency": "EUR"}).data["amount"] == "10"
    native = m.outbound({"stage": "s2", "probability": 50, "currency": "EUR"})
    assert native == {"stage": "s2", "prob": "50", "pipeline": "default",
                      "meta": {"source": "liaison"}}
    assert m.fields == ("name", "status", "amount", "currency", "probability")


# ---------------------------------------------------------------- round-trip law

ROUND_TRIP = compile_mapping(parse_mapping("""
version: 1
connector: acme
entity: contact
object: contacts
id: id
fields:
  first_name: a
  last_name: {path: "b.c"}
  title: {path: "d[0]"}
  owner: {path: "e[kind=x].v"}
  tags: {path: f, in: [{split: ";"}]}
  custom.code: {path: g, in: [{map: {values: {A: alpha, B: beta}, fallback: other}}]}
  custom.flag: {path: h, in: [bool]}
""", "round_trip.yaml"))

_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
_tag = st.text(st.characters(blacklist_categories=("Cs", "Zs", "Cc"),
                             blacklist_characters=";"), min_size=1, max_size=6)


@given(a=st.one_of(st.none(), _text), bc=st.one_of(st.none(), _text),
       d=st.one_of(st.none(), _text), v=st.one_of(st.none(), _text),
       f=st.lists(_tag, max_size=4).map(";".join),
       g=st.sampled_from(["A", "B"]), h=st.sampled_from(["true", "false"]),
       drop=st.sets(st.sampled_from("abdefgh")))
def test_native_canonical_native_keeps_every_mapped_field(
        a: Any, bc: Any, d: Any, v: Any, f: str, g: str, h: str, drop: set[str]) -> None:
    native: dict[str, Any] = {"id": "1", "a": a, "b": {"c": bc}, "d": [d],
                              "e": [{"kind": "x", "v": v}], "f": f, "g": g, "h": h}
    for key in drop:
        native.pop(key)
    data = ROUND_TRIP.inbound(native).data
    back = ROUND_TRIP.outbound(data)
    native.pop("id")
    assert back == native


@given(st.dictionaries(st.sampled_from(list(string.ascii_lowercase[:8])), _text))
def test_outbound_then_inbound_is_identity_on_text_fields(values: dict[str, str]) -> None:
    data = {"first_name": values.get("a"), "title": values.get("d"),
            "custom": {"code": "alpha"}}
    native = ROUND_TRIP.outbound(data)
    assert ROUND_TRIP.inbound({"id": "1", **native}).data == data
