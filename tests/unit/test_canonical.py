"""The canonical model v1: schemas, validation messages, fingerprints, match keys, paths."""

from __future__ import annotations

import copy
import json
import random
from importlib import resources
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.canonical import (
    ENTITIES,
    ENVELOPE_FIELDS,
    MATCH_KEYS,
    SCHEMA_VERSION,
    UnknownEntityError,
    UnknownMatchKeyError,
    Validator,
    check_path,
    data_schema,
    field_schema,
    fingerprint,
    get_validator,
    match_values,
    normalise_domain,
    parse_path,
    record_json,
    record_schema,
    stable_json,
    validate,
)
from hub.canonical.match import _getter
from hub.canonical.paths import Field, Index, Select
from hub.errors import ConfigError

SCHEMA_DIR = resources.files("hub.canonical").joinpath("schemas")

VALID: dict[str, dict[str, Any]] = {
    "company": {
        "name": "Acme GmbH", "domain": "acme.example", "website": "https://www.acme.example",
        "description": "Anvils", "industry": "Manufacturing", "number_of_employees": 42,
        "emails": [{"address": "info@acme.example", "type": "work"}],
        "phones": [{"number": "+4930123456", "type": "work"}],
        "addresses": [{"street_1": "Hauptstr. 1", "street_2": None, "city": "Berlin",
                       "state": None, "postal_code": "10115", "country": "DE", "type": "billing"}],
        "owner": "u-1", "tags": ["key account"], "is_customer": True, "is_supplier": False,
        "tax_number": "DE123456789", "currency": "EUR", "status": "active",
        "custom": {"segment": "SMB", "nested": {"any": [1, 2.5]}},
    },
    "contact": {
        "first_name": "Ana", "last_name": "Silva", "title": "CFO",
        "emails": [{"address": "ana@example.com", "type": "work"},
                   {"address": "ana.silva@mail.example", "type": "personal"}],
        "phones": [{"number": "+14155550100", "type": "mobile"}],
        "addresses": [{"city": "Lisbon", "country": "PT", "type": "home"}],
        "company": "01HZX3K7J8Q4Q2W5N6M7P8R9S0", "owner": "owner@example.com",
        "tags": ["vip"], "last_activity_at": "2024-05-01T10:00:00Z",
        "custom": {"lifecycle": "Lead"},
    },
    "deal": {
        "name": "Anvils 2024", "description": None, "amount": "12000.00", "currency": "USD",
        "stage": "proposal", "status": "open", "probability": 62.5, "close_date": "2024-06-30",
        "company": "co-1", "contacts": ["ct-1", "ct-2"], "owner": "u-1", "custom": {},
    },
    "invoice": {
        "number": "INV-0042", "type": "receivable", "status": "partially_paid",
        "company": "co-1", "contact": "ct-1", "issue_date": "2024-05-01",
        "due_date": "2024-05-31", "paid_on_date": None, "currency": "EUR",
        "sub_total": "100.00", "total_tax": "19.00", "total_amount": "119.00", "balance": "-0.5",
        "memo": "Thanks",
        "line_items": [{"remote_id": "L1", "description": "Anvil", "quantity": "2",
                        "unit_price": "50.00", "total_amount": "100.00", "tax_amount": "19.00",
                        "item_code": "ANV", "account_code": "200", "product": "pr-1"}],
        "deal": "dl-1", "custom": {"xero_type": "ACCREC"},
    },
    "payment": {
        "transaction_date": "2024-05-15", "company": "co-1", "invoice": "in-1",
        "amount": "59.50", "currency": "EUR", "method": "bank transfer",
        "reference": "INV-0042", "status": "active", "custom": {},
    },
    "product": {
        "name": "Anvil", "sku": "ANV-1", "description": "Heavy", "unit_price": "50",
        "currency": "EUR", "active": True, "custom": {},
    },
    "project": {
        "name": "Website", "description": "Relaunch", "status": "open",
        "start_date": "2024-01-01", "due_date": "2024-12-31", "owner": "u-1",
        "url": "https://pm.example/p/1", "custom": {},
    },
    "task": {
        "name": "Write copy", "description": None, "status": "in_progress", "priority": "high",
        "project": "pj-1", "assignees": ["u-1", "u-2"], "due_date": "2024-02-01",
        "completed_at": None, "tags": [], "url": "https://pm.example/t/9", "custom": {},
    },
    "message": {
        "subject": "Hello", "from": {"address": "ana@example.com", "name": "Ana"},
        "to": [{"address": "bob@example.com", "name": None}], "cc": [],
        "date": "2024-05-01T10:00:00.123Z", "message_id": "<a1@example.com>",
        "in_reply_to": None, "references": ["<a0@example.com>"], "thread_id": "t-1",
        "snippet": "Hi Bob", "folder": "INBOX", "flags": ["\\Seen"],
        "attachments": [{"name": "q.pdf", "size": 1024, "content_type": "application/pdf"}],
        "contacts": ["ct-1"], "custom": {},
    },
}


def envelope(entity: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "rec-1", "entity": entity, "schema_version": SCHEMA_VERSION,
        "created_at": "2024-05-01T10:00:00Z", "updated_at": "2024-05-02T10:00:00Z",
        "deleted": False, "links": [{"system": "crm", "external_id": "123"}], **data,
    }


def walk(schema: Any, path: str = "") -> Any:
    """Yield (path, subschema) for every schema object below properties/items/$defs."""
    if isinstance(schema, dict):
        yield path, schema
        for key in ("properties", "$defs"):
            for name, sub in schema.get(key, {}).items():
                yield from walk(sub, f"{path}/{key}/{name}")
        if isinstance(schema.get("items"), dict):
            yield from walk(schema["items"], f"{path}/items")


# --- schemas ------------------------------------------------------------------------


def test_entities_and_version() -> None:
    assert ENTITIES == ("company", "contact", "deal", "invoice", "payment", "product",
                        "project", "task", "message")
    assert SCHEMA_VERSION == 1
    assert ENVELOPE_FIELDS == ("id", "entity", "schema_version", "created_at", "updated_at",
                               "deleted", "links")
    assert set(VALID) == set(ENTITIES)


@pytest.mark.parametrize("entity", ENTITIES)
def test_schema_file_is_valid_draft_2020_12(entity: str) -> None:
    raw = json.loads(SCHEMA_DIR.joinpath(f"{entity}.v1.json").read_text("utf-8"))
    jsonschema.Draft202012Validator.check_schema(raw)
    jsonschema.Draft202012Validator.check_schema(record_schema(entity))
    assert raw["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert raw["$id"] == f"https://liaison.local/schemas/{entity}/v1"
    assert raw["additionalProperties"] is False
    assert raw == data_schema(entity)


@pytest.mark.parametrize("entity", ENTITIES)
def test_every_field_is_documented_and_closed(entity: str) -> None:
    schema = data_schema(entity)
    for path, sub in walk(schema):
        is_field = path.rsplit("/", 2)[-2:-1] == ["properties"]
        if is_field or path.rsplit("/", 2)[-2:-1] == ["$defs"]:
            # a field pointing at a shared definition may inherit the definition's title
            assert sub.get("description"), path
            assert sub.get("title") or "$ref" in sub, path
        if sub.get("type") in ("object", ["object", "null"]) and path:
            free = path.endswith("/properties/custom")
            assert sub.get("additionalProperties") is free, path


@pytest.mark.parametrize("entity", ENTITIES)
def test_refs_are_local_and_resolve(entity: str) -> None:
    schema = data_schema(entity)
    text = json.dumps(schema)
    for part in text.split('"$ref": "')[1:]:
        ref = part.split('"', 1)[0]
        assert ref.startswith("#/$defs/"), ref
        assert ref.rsplit("/", 1)[1] in schema["$defs"], ref


def test_shared_definitions_are_identical_in_every_file() -> None:
    seen: dict[str, Any] = {}
    for entity in ENTITIES:
        for name, definition in data_schema(entity)["$defs"].items():
            assert seen.setdefault(name, definition) == definition, (entity, name)
    for name in ("money", "currency", "datetime", "date", "email", "phone", "country", "ref",
                 "address"):
        assert name in seen


def test_data_schema_returns_a_private_copy() -> None:
    schema = data_schema("contact")
    schema["properties"].clear()
    assert "first_name" in data_schema("contact")["properties"]
    assert validate("contact", {"first_name": "A"}) == []


def test_record_schema_requires_the_envelope() -> None:
    schema = record_schema("deal")
    assert schema["required"] == list(ENVELOPE_FIELDS)
    assert list(schema["properties"])[: len(ENVELOPE_FIELDS)] == list(ENVELOPE_FIELDS)
    assert "amount" in schema["properties"]
    assert "id" not in data_schema("deal")["properties"]


def test_unknown_entity_names_the_closest() -> None:
    with pytest.raises(UnknownEntityError, match="did you mean 'contact'") as info:
        data_schema("contcat")
    assert isinstance(info.value, ConfigError)
    assert "company, contact, deal" in str(info.value)
    with pytest.raises(UnknownEntityError):
        validate("nope", {})
    with pytest.raises(UnknownEntityError):
        check_path("nope", "name")


# --- validation ----------------------------------------------------------------------


@pytest.mark.parametrize("entity", ENTITIES)
def test_valid_samples_pass(entity: str) -> None:
    assert validate(entity, VALID[entity]) == []
    assert validate(entity, {}) == []
    assert validate(entity, envelope(entity, VALID[entity]), record=True) == []
    assert Validator(entity).is_valid(VALID[entity])


@pytest.mark.parametrize("entity", ENTITIES)
def test_null_clears_every_scalar_field(entity: str) -> None:
    props = data_schema(entity)["properties"]
    cleared = {name: None for name in props if name != "custom"}
    assert validate(entity, cleared) == []


INVALID = [
    ("deal", {"amount": 12.5},
     ['amount: 12.5 is not of type \'string\' (money is a decimal string like "12.50")']),
    ("deal", {"amount": "12,50"},
     ['amount: \'12,50\' is not a valid amount (money is a decimal string like "12.50")']),
    ("deal", {"amount": "12.50\n"},
     ['amount: \'12.50\\n\' is not a valid amount (money is a decimal string like "12.50")']),
    ("invoice", {"line_items": [{"quantity": 2}]},
     ['line_items[0].quantity: 2 is not of type \'string\' (a decimal is a string like "2.5")']),
    ("invoice", {"currency": "eur"},
     ['currency: \'eur\' is not a valid currency (an ISO 4217 code in capitals like "EUR")']),
    ("invoice", {"currency": "EURO"},
     ['currency: \'EURO\' is not a valid currency (an ISO 4217 code in capitals like "EUR")']),
    ("contact", {"last_activity_at": "2024-05-01T10:00:00+02:00"},
     [("last_activity_at: '2024-05-01T10:00:00+02:00' is not a valid timestamp "
      '(RFC 3339 in UTC like "2024-05-01T10:00:00Z")')]),
    ("task", {"completed_at": "2024-13-01T10:00:00Z"},
     [("completed_at: '2024-13-01T10:00:00Z' is not a valid timestamp "
      '(RFC 3339 in UTC like "2024-05-01T10:00:00Z")')]),
    ("deal", {"close_date": "30/06/2024"},
     ['close_date: \'30/06/2024\' is not a valid date (YYYY-MM-DD like "2024-05-01")']),
    ("contact", {"emial": "a@b.co"},
     [("emial: unknown field; did you mean 'emails'? (known fields of contact: first_name, "
      "last_name, title, emails, phones, addresses, company, owner, tags, last_activity_at, "
      "custom)")]),
    ("contact", {"emails": [{"adress": "a@b.co"}]},
     [("emails[0].adress: unknown field; did you mean 'address'? "
      "(known fields here: address, type)")]),
    ("contact", {"emails": [{"address": "x", "type": "work"}]},
     ["emails[0].address: 'x' is not a valid email"]),
    ("contact", {"emails": [{"address": "a@b.co", "type": "wrok"}]},
     ["emails[0].type: 'wrok' is not one of 'work', 'personal', 'other'"]),
    ("deal", {"status": "closed"}, ["status: 'closed' is not one of 'open', 'won', 'lost'"]),
    ("contact", {"phones": [{"number": "0412 345 678"}]},
     [("phones[0].number: '0412 345 678' is not a valid phone number "
      '(E.164 like "+14155550100"; use the phone transform)')]),
    ("company", {"addresses": [{"country": "Germany"}]},
     [("addresses[0].country: 'Germany' is not a valid country "
      '(an ISO 3166-1 alpha-2 code in capitals like "DE")')]),
    ("contact", {"company": ""}, ["company: must not be empty"]),
    ("deal", {"probability": 120}, ["probability: 120 is above the maximum 100"]),
    ("company", {"number_of_employees": -1}, ["number_of_employees: -1 is below the minimum 0"]),
    ("company", {"number_of_employees": "12"},
     ["number_of_employees: '12' is not of type 'integer' (a whole number)"]),
    ("contact", {"tags": "a;b"}, ["tags: 'a;b' is not of type 'array' (a list)"]),
    ("contact", {"custom": "x"},
     ["custom: 'x' is not of type 'object' (an object with named fields)"]),
    ("contact", [], ["(record): [] is not of type 'object' (an object with named fields)"]),
    ("message", {"from": {"address": "a@b.co", "name": "A", "x": 1}},
     ["from.x: unknown field (known fields here: address, name)"]),
]


@pytest.mark.parametrize(("entity", "data", "expected"), INVALID)
def test_invalid_records_explain_themselves(entity: str, data: Any, expected: list[str]) -> None:
    assert validate(entity, data) == expected
    assert not get_validator(entity).is_valid(data)


def test_values_json_cannot_hold_are_refused_with_a_message() -> None:
    from decimal import Decimal

    messages = validate("deal", {"amount": Decimal("1.5")})
    assert messages == [('amount: Decimal(\'1.5\') is not of type \'string\' '
                        '(money is a decimal string like "12.50")')]


def test_record_envelope_errors() -> None:
    record = envelope("contact", {"first_name": "A"})
    del record["id"]
    record["entity"] = "company"
    record["links"] = [{"system": "crm"}]
    assert validate("contact", record, record=True) == [
        "entity: must be 'contact', not 'company'",
        "id: missing (required)",
        "links[0].external_id: missing (required)",
    ]
    # envelope fields are not data: a mapping producing them is refused
    assert validate("contact", {"id": "x"})[0].startswith("id: unknown field")


def test_several_problems_are_all_reported_in_path_order() -> None:
    messages = validate("invoice", {"total_amount": 1, "currency": "x", "type": "bill"})
    assert [m.split(":")[0] for m in messages] == ["currency", "total_amount", "type"]


def test_long_values_are_cut_in_messages() -> None:
    (message,) = validate("deal", {"amount": "x" * 500})
    assert len(message) < 200 and "..." in message


# --- the fast and the slow validator agree ---------------------------------------------

SAMPLES = ["", " ", "x", "12.50", "-3", "1e5", "12,5", "12.50\n", "EUR", "eur", "DE",
           "2024-05-01", "2024-02-30", "2024-05-01T10:00:00Z", "2024-05-01T10:00:00.5Z",
           "2024-05-01 10:00:00", "a@b.co", "a@b", "a b@c.de", "+14155550100", "+0123",
           "work", "mobile", "billing", "open", "won", "paid", "receivable", "high",
           "in_progress", "active", "a\u00e9\u4e2d", "\u0661\u0662", "x\ny"]
JUNK = st.one_of(st.none(), st.booleans(), st.integers(-(2**40), 2**40),
                 st.floats(allow_nan=False, allow_infinity=False), st.sampled_from(SAMPLES),
                 st.text(max_size=8))


def shaped(schema: dict[str, Any], root: dict[str, Any], depth: int = 0) -> Any:
    """A strategy for values near the schema's shape, valid and invalid alike."""
    if "$ref" in schema:
        schema = root["$defs"][schema["$ref"].rsplit("/", 1)[1]]
    types = schema.get("type", [])
    types = [types] if isinstance(types, str) else types
    options = [JUNK]
    if "enum" in schema:
        options.append(st.sampled_from(schema["enum"]))
    if "object" in types and depth < 3:
        props = {k: shaped(v, root, depth + 1) for k, v in schema.get("properties", {}).items()}
        options.append(st.fixed_dictionaries({}, optional={**props, "zz_extra": JUNK}))
    if "array" in types and depth < 3:
        options.append(st.lists(shaped(schema.get("items", {}), root, depth + 1), max_size=3))
    if "string" in types:
        options.append(st.sampled_from(SAMPLES))
    return st.one_of(options)


@st.composite
def records(draw: st.DrawFn) -> tuple[str, Any]:
    entity = draw(st.sampled_from(ENTITIES))
    schema = data_schema(entity)
    return entity, draw(shaped(schema, schema))


@settings(max_examples=600, deadline=None)
@given(records())
def test_fast_and_slow_validators_agree(case: tuple[str, Any]) -> None:
    entity, data = case
    fast = get_validator(entity).is_valid(data)
    # the explainer used for messages must find a reason exactly when the fast path fails
    from hub.canonical.validate import _Explainer

    slow = _Explainer(data_schema(entity)).is_valid(data)
    assert fast == slow
    messages = validate(entity, data)
    assert (messages == []) == fast
    assert not any("does not follow the" in m for m in messages)


# --- fingerprint ---------------------------------------------------------------------

JSONISH = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**53), 2**53), st.text(max_size=10)),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                 max_size=4),
    max_leaves=20,
)


def shuffled(value: Any, rng: random.Random) -> Any:
    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        return {k: shuffled(v, rng) for k, v in items}
    if isinstance(value, list):
        return [shuffled(v, rng) for v in value]
    return value


@given(st.dictionaries(st.text(max_size=6), JSONISH, max_size=8), st.randoms())
def test_fingerprint_ignores_key_order(data: dict[str, Any], rng: random.Random) -> None:
    assert fingerprint(shuffled(data, rng)) == fingerprint(data)


@given(st.dictionaries(st.text(max_size=6), JSONISH, min_size=1, max_size=8), st.data())
def test_fingerprint_changes_with_any_value(data: dict[str, Any], draw: st.DataObject) -> None:
    key = draw.draw(st.sampled_from(sorted(data)))
    changed = copy.deepcopy(data)
    changed[key] = [data[key], "changed"]
    assert fingerprint(changed) != fingerprint(data)


def test_fingerprint_shape_and_examples() -> None:
    a = fingerprint(VALID["contact"])
    assert len(a) == 32 and int(a, 16) >= 0
    assert fingerprint({"a": 1, "b": [1, 2]}) == fingerprint({"b": [1, 2], "a": 1})
    assert fingerprint({"a": [1, 2]}) != fingerprint({"a": [2, 1]})
    assert fingerprint({"a": "1"}) != fingerprint({"a": 1})
    assert fingerprint({"a": None}) != fingerprint({})



@given(st.dictionaries(st.text(max_size=6), JSONISH, max_size=8),
       st.lists(st.text(max_size=6), max_size=3), st.randoms())
def test_record_json_is_the_stored_form_and_ignores_only_top_level_nulls(
        data: dict[str, Any], nulls: list[str], rng: random.Random) -> None:
    with_nulls = {**data, **{k: None for k in nulls if k not in data}}
    kept = {k: v for k, v in data.items() if v is not None}
    assert record_json(shuffled(with_nulls, rng)) == stable_json(kept)
    assert json.loads(record_json(with_nulls)) == kept  # stored: nothing but the nulls gone
    # any other change still shows
    if kept:
        key = min(kept)
        assert record_json({**kept, key: [kept[key], None]}) != record_json(kept)

# --- match keys ----------------------------------------------------------------------


def test_match_keys_as_data() -> None:
    assert set(MATCH_KEYS) == set(ENTITIES)
    assert MATCH_KEYS["contact"]["email"].path == "emails[0].address"
    assert MATCH_KEYS["contact"]["email"].normalisers == ("trim", "lower")
    assert MATCH_KEYS["company"]["domain"].normalisers == ("domain",)
    assert set(MATCH_KEYS["product"]) == {"sku"}
    assert set(MATCH_KEYS["invoice"]) == {"number"}
    for entity in ("deal", "payment", "project", "task", "message"):
        assert dict(MATCH_KEYS[entity]) == {}
    for entity, keys in MATCH_KEYS.items():
        for key in keys.values():
            assert check_path(entity, key.path) is None


@pytest.mark.parametrize(("entity", "data", "expected"), [
    ("contact", {"emails": [{"address": "  Ana@Example.COM "}]}, {"email": "ana@example.com"}),
    ("contact", {"emails": [{"address": "   "}]}, {}),
    ("contact", {"emails": [{"address": None}]}, {}),
    ("contact", {"emails": []}, {}),
    ("contact", {"emails": None}, {}),
    ("contact", {}, {}),
    ("contact", {"emails": [{"type": "work"}, {"address": "b@x.co"}]}, {}),
    ("company", {"domain": "https://www.Example.com/about?x=1"}, {"domain": "example.com"}),
    ("company", {"domain": "WWW.example.co.uk."}, {"domain": "example.co.uk"}),
    ("company", {"domain": ""}, {}),
    ("company", {"website": "https://acme.example"}, {}),
    ("product", {"sku": " ANV-1 "}, {"sku": "ANV-1"}),
    ("product", {"sku": 1234}, {"sku": "1234"}),
    ("invoice", {"number": "INV-1"}, {"number": "INV-1"}),
    ("deal", {"name": "x"}, {}),
])
def test_match_values(entity: str, data: dict[str, Any], expected: dict[str, str]) -> None:
    assert match_values(entity, data) == expected


@pytest.mark.parametrize("path", ["emails[0].address", "emails[type=work].address"])
@pytest.mark.parametrize(("data", "expected"), [
    ({"emails": [{"type": "work", "address": "a@b.co"}]}, "a@b.co"),
    ({"emails": [{"type": "work"}]}, None),
    ({"emails": []}, None),
    ({"emails": {"type": "work"}}, None),
    ({"emails": "a@b.co"}, None),
    ({}, None),
])
def test_a_match_path_reads_the_same_with_or_without_a_selector(
        path: str, data: dict[str, Any], expected: str | None) -> None:
    # Every default key is fields and positions (read without testing each step's kind);
    # a path with a selector takes the general walk: both read a record alike.
    assert _getter(parse_path(path))(data) == expected


def test_match_values_selects_named_keys() -> None:
    data = {"emails": [{"address": "A@B.CO"}]}
    assert match_values("contact", data, ["email"]) == {"email": "a@b.co"}
    assert match_values("contact", data, []) == {}
    with pytest.raises(UnknownMatchKeyError, match="known match keys: email"):
        match_values("contact", data, ["mail"])
    with pytest.raises(UnknownEntityError):
        match_values("contcat", data)


@pytest.mark.parametrize(("raw", "expected"), [
    ("example.com", "example.com"),
    ("Example.COM", "example.com"),
    ("http://example.com", "example.com"),
    ("https://www.example.com/", "example.com"),
    ("//www.example.com/x", "example.com"),
    ("www.example.com:8080/path#frag", "example.com"),
    ("https://user@shop.example.com", "shop.example.com"),
    ("  wwwexample.com ", "wwwexample.com"),
])
def test_normalise_domain(raw: str, expected: str) -> None:
    assert normalise_domain(raw) == expected


# --- canonical paths ------------------------------------------------------------------


@pytest.mark.parametrize(("path", "steps"), [
    ("first_name", (Field("first_name"),)),
    ("emails[0].address", (Field("emails"), Index(0), Field("address"))),
    ("emails[type=work].address", (Field("emails"), Select("type", "work"), Field("address"))),
    ("custom.Some Field", (Field("custom"), Field("Some Field"))),
])
def test_parse_path(path: str, steps: tuple[Any, ...]) -> None:
    assert parse_path(path) == steps


@pytest.mark.parametrize("path", ["", "a..b", ".a", "[0]", "a[", "a[x]", "a.[0]"])
def test_parse_path_refuses_bad_syntax(path: str) -> None:
    with pytest.raises(ValueError):
        parse_path(path)


@pytest.mark.parametrize(("entity", "path"), [
    ("contact", "first_name"),
    ("contact", "emails"),
    ("contact", "emails[0]"),
    ("contact", "emails[0].address"),
    ("contact", "emails[type=work].address"),
    ("contact", "phones[type=mobile].number"),
    ("contact", "addresses[type=home].country"),
    ("contact", "tags"),
    ("contact", "tags[0]"),
    ("contact", "custom"),
    ("contact", "custom.lifecycle"),
    ("contact", "custom.a.b[0].c"),
    ("invoice", "line_items[0].unit_price"),
    ("message", "from.address"),
    ("message", "to[0].name"),
    ("message", "attachments[0].size"),
])
def test_check_path_accepts(entity: str, path: str) -> None:
    assert check_path(entity, path) is None


@pytest.mark.parametrize(("entity", "path", "expected"), [
    ("contact", "emial",
     ("unknown field 'emial' for contact (did you mean 'emails'?); known fields: first_name, "
     "last_name, title, emails, phones, addresses, company, owner, tags, last_activity_at, "
     "custom")),
    ("contact", "emails[0].adress",
     ("unknown field 'adress' in emails[] of contact (did you mean 'address'?); "
     "known fields: address, type")),
    ("contact", "emails[type=wrok].address",
     "'emails[type=wrok]' of contact: 'wrok' is not one of work, personal, other"),
    ("contact", "emails[kind=work].address",
     ("'emails[kind=work]' of contact: list elements have no field 'kind'; "
     "known fields: address, type")),
    ("contact", "first_name.x", "'first_name' of contact is a string; it has no field 'x'"),
    ("contact", "first_name[0]",
     "'first_name' of contact is a string, not a list, so it cannot be followed by [...]"),
    ("contact", "tags[0].x", "'tags[]' of contact is a string; it has no field 'x'"),
    ("deal", "updated_at",
     ("'updated_at' of deal is managed by the hub (record envelope); mappings cannot set it; "
     "known fields: name, description, amount, currency, stage, status, probability, "
     "close_date, company, contacts, owner, custom")),
    ("contact", "a..b",
     "bad field path 'a..b' at character 2: expected a name, [number] or [key=value]"),
])
def test_check_path_refuses(entity: str, path: str, expected: str) -> None:
    assert check_path(entity, path) == expected


def test_field_schema_exposes_kind_and_reference() -> None:
    assert field_schema("invoice", "line_items[0].unit_price")["x-kind"] == "money"  # type: ignore[index]
    assert field_schema("contact", "company")["x-reference"] == "company"  # type: ignore[index]
    assert field_schema("deal", "contacts[0]")["x-reference"] == "contact"  # type: ignore[index]
    assert field_schema("contact", "custom.anything") == {}
    assert field_schema("contact", "nope") is None


@st.composite
def one_field_changed(draw: st.DrawFn) -> tuple[str, Any]:
    """A valid sample with one field replaced: agreement right at the valid/invalid edge."""
    entity = draw(st.sampled_from(ENTITIES))
    schema = data_schema(entity)
    data = copy.deepcopy(VALID[entity])
    name = draw(st.sampled_from(sorted(schema["properties"])))
    data[name] = draw(shaped(schema["properties"][name], schema, depth=1))
    return entity, data


@settings(max_examples=400, deadline=None)
@given(one_field_changed())
def test_fast_and_slow_agree_near_valid_records(case: tuple[str, Any]) -> None:
    entity, data = case
    from hub.canonical.validate import _Explainer

    fast = get_validator(entity).is_valid(data)
    assert fast == _Explainer(data_schema(entity)).is_valid(data)
    messages = validate(entity, data)
    assert (messages == []) == fast
    assert not any("does not follow the" in m for m in messages)
