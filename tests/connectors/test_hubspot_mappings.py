"""The default HubSpot mappings load, map every sandbox record to valid canonical data, and
write back what they read (round trip)."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.hubspot.connector import HubSpotConnector
from connectors.hubspot.sandbox import HubSpotSandbox
from hub.canonical.validate import validate
from hub.config.model import ConnectionConfig
from hub.mapping import CompiledMapping, compile_mapping, load_mapping, preview

ENTITIES = {"contact": "contacts", "company": "companies", "deal": "deals"}


@pytest.fixture(scope="module")
def native() -> Iterator[dict[str, list[dict[str, Any]]]]:
    """Records exactly as the connector reads them from a seeded sandbox."""
    with HubSpotSandbox(seed=9, count=400, deals=80) as sb:
        conn = ConnectionConfig(name="crm", connector="hubspot", base_dir=Path("."),
                                settings={"base_url": sb.base_url, "token": sb.token})
        with HubSpotConnector(conn) as connector:
            hs: Any = connector
            yield {obj: [r for p in hs.read(obj, None, incremental=False, page_size=100)
                         for r in p.records] for obj in ENTITIES.values()}


@functools.cache
def mapping(entity: str) -> CompiledMapping:
    return compile_mapping(load_mapping(f"hubspot/{entity}"))


@pytest.mark.parametrize("entity", sorted(ENTITIES))
def test_mapping_declares_the_connector_object(entity: str) -> None:
    m = load_mapping(f"hubspot/{entity}")
    assert m.connector == "hubspot" and m.entity == entity
    assert m.object == HubSpotConnector.capabilities.object_for(entity)


@pytest.mark.parametrize("entity", sorted(ENTITIES))
def test_every_record_maps_to_valid_canonical_data(entity: str,
                                                   native: dict[str, list[Any]]) -> None:
    m = mapping(entity)
    records = native[ENTITIES[entity]]
    assert len(records) > 30
    for record in records:
        result = m.inbound(record, None)
        assert result.external_id == record["id"]
        assert result.updated_at and result.updated_at.endswith("Z")
        assert result.deleted is False
        problems = validate(entity, result.data)
        assert not problems, (record["id"], problems)


def test_contact_fields(native: dict[str, list[Any]]) -> None:
    record = next(r for r in native["contacts"] if r.get("associations"))
    data, back = preview(mapping("contact"), record)
    props = record["properties"]
    assert data["emails"] == [{"type": "work", "address": props["email"].lower()}]
    assert data["first_name"] == props["firstname"] and data["title"] == props["jobtitle"]
    assert data["phones"][0]["number"].startswith("+")
    assert data["company"] == record["associations"]["companies"]["results"][0]["id"]
    assert len(data["addresses"][0]["country"]) == 2
    assert back["properties"]["email"] == props["email"]
    assert back["associations"]["companies"]["results"][0]["id"] == data["company"]


def test_company_fields(native: dict[str, list[Any]]) -> None:
    record = native["companies"][0]
    data, back = preview(mapping("company"), record)
    assert data["domain"] == record["properties"]["domain"]
    assert isinstance(data["number_of_employees"], int)
    assert back["properties"]["country"] == record["properties"]["country"]


@pytest.mark.parametrize("entity", sorted(ENTITIES))
def test_round_trip_is_stable(entity: str, native: dict[str, list[Any]]) -> None:
    """in(out(in(x))) == in(x): what we write back reads as the same canonical record."""
    m = mapping(entity)
    for record in native[ENTITIES[entity]][:100]:
        data, back = preview(m, record)
        again = {**record, "properties": {**record["properties"], **back["properties"]}}
        if "associations" in back:
            again["associations"] = back["associations"]
        assert preview(m, again)[0] == data


def test_deal_fields(native: dict[str, list[Any]]) -> None:
    record = next(r for r in native["deals"]
                  if len(r.get("associations", {}).get("contacts", {}).get("results", [])) > 1)
    data, back = preview(mapping("deal"), record)
    props = record["properties"]
    assert data["name"] == props["dealname"].strip()
    assert data["stage"] == props["dealstage"]
    assert data["currency"] == props["deal_currency_code"]
    assert data["close_date"] == props["closedate"][:10]
    assert data["company"] == record["associations"]["companies"]["results"][0]["id"]
    assert data["contacts"] == [r["id"] for r in
                                record["associations"]["contacts"]["results"][:3]]
    assert back["properties"]["dealstage"] == props["dealstage"]
    assert back["associations"]["contacts"]["results"] == [{"id": i} for i in data["contacts"]]
    assert "status" not in back  # read only: HubSpot keeps it in dealstage


@pytest.mark.parametrize(("stage", "status"), [("closedwon", "won"), ("closedlost", "lost"),
                                               ("contractsent", "open"),
                                               ("appointmentscheduled", "open")])
def test_deal_status_follows_the_stage(stage: str, status: str) -> None:
    record = {"id": "3", "updatedAt": "2024-01-01T00:00:00.000Z", "archived": False,
              "properties": {"dealname": "X", "dealstage": stage, "amount": "4999.99"}}
    data = mapping("deal").inbound(record, None).data
    assert data["status"] == status and data["stage"] == stage
    assert data["amount"] == "4999.99"
    assert not validate("deal", data)


def test_deal_amount_is_never_a_float(native: dict[str, list[Any]]) -> None:
    for record in native["deals"]:
        amount = mapping("deal").inbound(record, None).data.get("amount")
        assert amount is None or isinstance(amount, str)


def test_archived_maps_to_deleted(native: dict[str, list[Any]]) -> None:
    record = {**native["contacts"][0], "archived": True,
              "archivedAt": "2024-06-01T00:00:00.000Z"}
    assert mapping("contact").inbound(record, None).deleted is True


@settings(max_examples=60, deadline=None)
@given(first=st.text(min_size=1, max_size=20).filter(lambda s: s.strip() == s and s.strip()),
       user=st.from_regex(r"[a-z][a-z0-9.]{0,15}", fullmatch=True),
       employees=st.integers(min_value=0, max_value=10**6))
def test_round_trip_property(first: str, user: str, employees: int) -> None:
    contact = {"id": "1", "updatedAt": "2024-01-01T00:00:00.000Z", "archived": False,
               "properties": {"firstname": first, "email": f"{user}@example.com"}}
    data, back = preview(mapping("contact"), contact)
    assert back["properties"] == contact["properties"]
    company = {"id": "2", "updatedAt": "2024-01-01T00:00:00.000Z", "archived": False,
               "properties": {"name": first, "numberofemployees": str(employees)}}
    data, back = preview(mapping("company"), company)
    assert data["number_of_employees"] == employees
    assert str(back["properties"]["numberofemployees"]) == str(employees)
