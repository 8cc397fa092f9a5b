"""The inlined mapping plan (hub.mapping.plan) maps exactly as the fields' compiled steps do."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.errors import RecordMappingError
from hub.mapping import compile_mapping, load_mapping, parse_mapping
from hub.mapping.plan import FieldFailed, run_plan

# Every shape the plan inlines (one or two native keys; a key, two keys or key[sel].key in
# canonical; no transform, text ops, other transforms) beside fields it must leave to their
# steps (a reference, a default, a condition, a required field, a template), interleaved so
# that the order of list items made by both kinds is checked too.
MAPPING = """
version: 1
connector: acme
entity: contact
object: contacts
id: id
fields:
  first_name: {path: properties.firstname, in: [trim]}
  last_name: properties.lastname
  title: {path: jobtitle, in: [trim, lower]}
  emails[type=work].address: {path: properties.email, in: [trim, lower]}
  emails[type=personal].address: {path: properties.home_email, default: none@example.com}
  phones[type=work].number: {path: properties.phone, in: [{phone: {region: US}}]}
  phones[type=mobile].number: properties.mobile
  company: {path: "associations.companies.results[0].id", reference: company}
  owner: {path: owner, when: {path: properties.firstname, empty: false}}
  addresses[type=work].city: properties.city
  addresses[type=work].country: {path: properties.country, in: [{country: {to: name}}]}
  addresses[type=home].city: {path: properties.home_city, in: [upper, trim]}
  custom.stage: properties.stage
  custom.note: {path: note, in: [{map: {values: {a: Alpha}, fallback: Other}}]}
  custom.full: {template: "{properties.firstname} {properties.lastname}"}
  tags: {path: properties.tags, in: [{split: ";"}]}
"""

KEYS = ["firstname", "lastname", "email", "home_email", "phone", "mobile", "city",
        "country", "home_city", "stage", "tags"]

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**6),
    st.sampled_from(["", " x ", "Ann", "  Lee", "A@B.CO ", "(415) 555-0100", "+33 4 32 61 67 50",
                     "not a phone", "France", "Narnia", "DE", "a", "vip; eu", "ünï"]),
    st.text(max_size=6))
values = st.one_of(scalars, st.lists(scalars, max_size=2),
                   st.dictionaries(st.sampled_from(["firstname", "id"]), scalars, max_size=2))
natives = st.fixed_dictionaries(
    {"id": st.sampled_from(["1", "2"])},
    optional={"properties": st.one_of(
                  st.dictionaries(st.sampled_from(KEYS), values, max_size=len(KEYS)), scalars,
                  st.lists(scalars, max_size=1)),
              "jobtitle": values, "owner": values, "note": values,
              "associations": st.just({"companies": {"results": [{"id": "9"}]}})})


@pytest.fixture(scope="module")
def mapping() -> Any:
    return compile_mapping(parse_mapping(MAPPING, "acme/contact.yaml"))


def _stepwise(mapping: Any, native: dict[str, Any], refs: dict[Any, str]) -> Any:
    """What the fields' compiled steps make of `native`, one call each (the reference)."""
    data: dict[str, Any] = {}
    try:
        for entry in mapping._in:
            entry[-1](native, data, refs)
    except FieldFailed as exc:
        return ("failed", exc.field, exc.native, exc.message)
    return data


def _planned(mapping: Any, native: dict[str, Any], refs: dict[Any, str]) -> Any:
    data: dict[str, Any] = {}
    try:
        run_plan(mapping._in, native, data, refs)
    except FieldFailed as exc:
        return ("failed", exc.field, exc.native, exc.message)
    return data


def test_the_plan_inlines_the_common_shapes_and_calls_the_rest(mapping: Any) -> None:
    inlined = {entry[10] for entry in mapping._in if entry[0] is not None}
    assert inlined == {"first_name", "last_name", "title", "emails[type=work].address",
                       "phones[type=work].number", "phones[type=mobile].number",
                       "addresses[type=work].city", "addresses[type=work].country",
                       "addresses[type=home].city", "custom.stage", "custom.note", "tags"}


@settings(max_examples=400, deadline=None)
@given(native=natives)
def test_the_plan_maps_as_the_steps_do(mapping: Any, native: dict[str, Any]) -> None:
    refs = {("company", "9"): "c-9"}
    assert _planned(mapping, native, refs) == _stepwise(mapping, native, refs)


def test_every_field_present_keeps_the_order_of_list_items(mapping: Any) -> None:
    native = {"id": "1", "jobtitle": " CEO ", "owner": "7", "note": "a",
              "associations": {"companies": {"results": [{"id": "9"}]}},
              "properties": {"firstname": " Ann ", "lastname": "Lee", "email": " A@B.CO ",
                             "phone": "(415) 555-0100", "mobile": "+1 415 555 0199",
                             "city": "Lyon", "country": "France", "home_city": " paris",
                             "stage": "lead", "tags": "vip;eu"}}
    planned = _planned(mapping, native, {("company", "9"): "c-9"})
    assert planned == _stepwise(mapping, native, {("company", "9"): "c-9"})
    assert planned["phones"] == [{"type": "work", "number": "+14155550100"},
                                 {"type": "mobile", "number": "+1 415 555 0199"}]
    assert planned["emails"] == [{"type": "work", "address": "a@b.co"},
                                 {"type": "personal", "address": "none@example.com"}]
    assert planned["addresses"] == [{"type": "work", "city": "Lyon", "country": "FR"},
                                    {"type": "home", "city": "PARIS"}]
    assert planned["custom"] == {"stage": "lead", "note": "Alpha", "full": "Ann  Lee"}
    assert (planned["title"], planned["owner"], planned["tags"]) == ("ceo", "7", ["vip", "eu"])


def test_a_failing_transform_names_its_field_in_both(mapping: Any) -> None:
    native = {"id": "1", "properties": {"phone": "not a phone at all"}}
    with pytest.raises(RecordMappingError) as planned:
        mapping.inbound(native)
    assert planned.value.field == "phones[type=work].number"
    assert _stepwise(mapping, native, {})[1] == "phones[type=work].number"


def test_shipped_mappings_map_as_their_steps_do() -> None:
    native = {"id": "5", "updatedAt": "2024-06-28T17:37:16.147Z", "archived": False,
              "properties": {"email": " Vera@X.net ", "firstname": " Vera", "lastname": "Patel",
                             "jobtitle": "Office Manager", "phone": "+33 4 32 61 67 50",
                             "mobilephone": None, "address": "166 Main Street", "city": "Lyon",
                             "state": None, "zip": "69002", "country": "France",
                             "hubspot_owner_id": None, "lifecyclestage": "lead"},
              "associations": {"companies": {"results": [{"id": "9"}]}}}
    mapping = compile_mapping(load_mapping("hubspot/contact"))
    refs = {("company", "9"): "c-9"}
    assert sum(entry[0] is not None for entry in mapping._in) == 13  # all but the reference
    assert _planned(mapping, native, refs) == _stepwise(mapping, native, refs)
    assert _planned(mapping, native, refs) == {
        "first_name": "Vera", "last_name": "Patel", "title": "Office Manager",
        "emails": [{"type": "work", "address": "vera@x.net"}],
        "phones": [{"type": "work", "number": "+33432616750"}],
        "company": "c-9", "owner": None,
        "addresses": [{"type": "work", "street_1": "166 Main Street", "city": "Lyon",
                       "postal_code": "69002", "country": "FR"}],
        "custom": {"lifecycle_stage": "lead"}}
