"""The default Pipedrive mappings load, map every sandbox record to valid canonical data, and
write back what they read (round trip), including through the connector into the sandbox."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.pipedrive.connector import PipedriveConnector
from connectors.pipedrive.sandbox import PipedriveSandbox
from hub.canonical.validate import validate
from hub.config.model import ConnectionConfig
from hub.connector import WriteOp
from hub.mapping import CompiledMapping, compile_mapping, load_mapping, preview

ENTITIES = {"contact": "persons", "company": "organizations", "deal": "deals"}


@pytest.fixture(scope="module")
def sandbox() -> Iterator[PipedriveSandbox]:
    with PipedriveSandbox(seed=9, count=300) as sb:
        yield sb


@pytest.fixture(scope="module")
def native(sandbox: PipedriveSandbox) -> dict[str, list[dict[str, Any]]]:
    """Records exactly as the connector reads them from a seeded sandbox."""
    with PipedriveConnector(connection(sandbox)) as pd:
        return {obj: [r for p in pd.read(obj, None, incremental=False, page_size=100)
                      for r in p.records] for obj in ENTITIES.values()}


def connection(sandbox: PipedriveSandbox) -> ConnectionConfig:
    return ConnectionConfig(name="crm", connector="pipedrive", base_dir=Path("."),
                            settings={"base_url": sandbox.base_url,
                                      "api_token": sandbox.api_token})


@functools.cache
def mapping(entity: str) -> CompiledMapping:
    return compile_mapping(load_mapping(f"pipedrive/{entity}"))


@pytest.mark.parametrize("entity", sorted(ENTITIES))
def test_mapping_declares_the_connector_object(entity: str) -> None:
    m = load_mapping(f"pipedrive/{entity}")
    assert m.connector == "pipedrive" and m.entity == entity
    assert m.object == PipedriveConnector.capabilities.object_for(entity)


@pytest.mark.parametrize("entity", sorted(ENTITIES))
def test_every_record_maps_to_valid_canonical_data(entity: str,
                                                   native: dict[str, list[Any]]) -> None:
    m = mapping(entity)
    records = native[ENTITIES[entity]]
    assert len(records) >= 30
    for record in records:
        result = m.inbound(record, None)
        assert result.external_id == str(record["id"])
        assert result.updated_at == record["update_time"]
        assert result.deleted is False
        problems = validate(entity, result.data)
        assert not problems, (record["id"], problems)


def test_contact_fields(native: dict[str, list[Any]]) -> None:
    record = next(r for r in native["persons"] if r["org_id"] and len(r["emails"]) > 1
                  and r["phones"])
    data, back = preview(mapping("contact"), record)
    assert data["emails"][0]["address"] == record["emails"][0]["value"].lower()
    assert {e["type"] for e in data["emails"]} <= {"work", "personal", "other"}
    assert data["first_name"] == record["first_name"]
    assert data["phones"][0]["number"].startswith("+")
    assert data["company"] == str(record["org_id"]) and data["owner"] == str(record["owner_id"])
    assert back["emails"][0]["value"] == record["emails"][0]["value"]
    assert back["owner_id"] == record["owner_id"]


def test_company_fields(native: dict[str, list[Any]]) -> None:
    record = native["organizations"][0]
    data, back = preview(mapping("company"), record)
    assert data["name"] == record["name"] and "domain" not in data
    assert len(data["addresses"][0]["country"]) == 2
    assert back["address"]["country"] == record["address"]["country"]
    # no domain in Pipedrive, and a name is not an identity: no match keys at all
    assert mapping("company").match_keys(data) == {}
    assert mapping("contact").match_keys({"emails": [{"address": "a@b.co"}]}) == \
        {"email": "a@b.co"}


def test_deal_fields(native: dict[str, list[Any]]) -> None:
    record = next(r for r in native["deals"] if r["person_id"] and r["org_id"])
    data, back = preview(mapping("deal"), record)
    assert data["amount"] == str(record["value"]).removesuffix(".0")
    assert data["status"] == record["status"] and data["close_date"] == \
        record["expected_close_date"]
    assert data["contacts"] == [str(record["person_id"])]
    assert back["value"] == record["value"] and back["stage_id"] == record["stage_id"]


@pytest.mark.parametrize("entity", sorted(ENTITIES))
def test_round_trip_is_stable(entity: str, native: dict[str, list[Any]]) -> None:
    """in(out(in(x))) == in(x): what we write back reads as the same canonical record."""
    m = mapping(entity)
    for record in native[ENTITIES[entity]][:100]:
        data, back = preview(m, record)
        assert preview(m, {**record, **back})[0] == data


def test_deleted_records_map_to_deleted(native: dict[str, list[Any]]) -> None:
    person = {**native["persons"][0], "is_deleted": True}
    assert mapping("contact").inbound(person, None).deleted is True
    deal = {**native["deals"][0], "status": "deleted"}
    assert mapping("deal").inbound(deal, None).deleted is True


@pytest.mark.parametrize("entity", sorted(ENTITIES))
def test_written_back_through_the_connector_reads_the_same(
        entity: str, sandbox: PipedriveSandbox, native: dict[str, list[Any]]) -> None:
    """Outbound records are accepted by the (strict) sandbox and read back unchanged."""
    m = mapping(entity)
    obj = ENTITIES[entity]
    originals = native[obj][:5]
    with PipedriveConnector(connection(sandbox)) as pd:
        ops = [WriteOp("update", str(r["id"]), preview(m, r)[1], external_id=str(r["id"]))
               for r in originals]
        results = pd.write(obj, ops)
        assert all(r.ok for r in results), [str(r.error) for r in results if not r.ok]
        for record in originals:
            again = pd.fetch(obj, str(record["id"]))
            assert again is not None
            assert preview(m, again)[0] == preview(m, record)[0]


@settings(max_examples=60, deadline=None)
@given(first=st.from_regex(r"[A-Z][a-z]{0,12}", fullmatch=True),
       last=st.from_regex(r"[A-Z][a-z]{0,12}", fullmatch=True),
       user=st.from_regex(r"[a-z][a-z0-9.]{0,15}", fullmatch=True),
       value=st.decimals(min_value=0, max_value=10**9, places=2))
def test_round_trip_property(first: str, last: str, user: str, value: Any) -> None:
    person = {"id": 1, "update_time": "2024-01-04T10:44:11Z", "is_deleted": False,
              "name": f"{first} {last}", "first_name": first, "last_name": last,
              "emails": [{"value": f"{user}@example.com", "primary": True, "label": "work"}]}
    data, back = preview(mapping("contact"), person)
    assert (back["first_name"], back["last_name"]) == (first, last)
    assert back["emails"] == [{"value": f"{user}@example.com", "label": "work"}]
    deal = {"id": 2, "update_time": "2024-01-04T10:44:11Z", "is_deleted": False,
            "title": "T", "value": float(value), "currency": "EUR", "status": "open"}
    data, back = preview(mapping("deal"), deal)
    assert float(data["amount"]) == float(value) and back["value"] == float(value)
