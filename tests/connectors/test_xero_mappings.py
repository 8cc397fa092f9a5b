"""The default Xero mappings load, map every sandbox record to valid canonical data, and
write back what they read (round trip)."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.xero.connector import XeroConnector
from connectors.xero.sandbox import XeroSandbox
from hub.canonical.validate import validate
from hub.config.model import ConnectionConfig
from hub.mapping import CompiledMapping, compile_mapping, load_mapping, preview

ENTITIES = {"company": "Contacts", "invoice": "Invoices", "payment": "Payments"}
ID_FIELD = {"company": "ContactID", "invoice": "InvoiceID", "payment": "PaymentID"}


@pytest.fixture(scope="module")
def native(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, list[Any]]]:
    """Records exactly as the connector reads them from a seeded sandbox."""
    with XeroSandbox(seed=9, count=120, minute_limit=100_000) as sb:
        conn = ConnectionConfig(
            name="books", connector="xero", base_dir=tmp_path_factory.mktemp("xero"),
            settings={"base_url": sb.base_url, "token_url": sb.token_url,
                      "tenant_id": sb.tenant_id, "client_id": sb.client_id,
                      "client_secret": sb.client_secret, "refresh_token": sb.refresh_token})
        with XeroConnector(conn) as connector:
            yield {obj: [r for p in connector.read(obj, None, incremental=False,
                                                   page_size=200) for r in p.records]
                   for obj in ENTITIES.values()}


@functools.cache
def mapping(entity: str) -> CompiledMapping:
    return compile_mapping(load_mapping(f"xero/{entity}"))


@pytest.mark.parametrize("entity", sorted(ENTITIES))
def test_mapping_declares_the_connector_object(entity: str) -> None:
    m = load_mapping(f"xero/{entity}")
    assert m.connector == "xero" and m.entity == entity
    assert m.object == XeroConnector.capabilities.object_for(entity)


@pytest.mark.parametrize("entity", sorted(ENTITIES))
def test_every_record_maps_to_valid_canonical_data(entity: str,
                                                   native: dict[str, list[Any]]) -> None:
    m = mapping(entity)
    records = native[ENTITIES[entity]]
    assert len(records) > 50
    deleted = 0
    for record in records:
        result = m.inbound(record, None)
        assert result.external_id == record[ID_FIELD[entity]]
        assert result.updated_at and result.updated_at.endswith("Z")
        deleted += result.deleted
        problems = validate(entity, result.data)
        assert not problems, (record[ID_FIELD[entity]], problems)
    assert deleted < len(records)


def test_company_fields(native: dict[str, list[Any]]) -> None:
    record = next(r for r in native["Contacts"] if r["Website"] and r["TaxNumber"]
                  and r["ContactStatus"] == "ACTIVE")
    data, back = preview(mapping("company"), record)
    assert data["name"] == record["Name"] and data["tax_number"] == record["TaxNumber"]
    assert data["domain"] == record["Website"].removeprefix("https://www.")
    assert data["emails"] == [{"type": "work", "address": record["EmailAddress"]}]
    assert data["phones"][0]["number"].startswith("+") and data["phones"][0]["type"] == "work"
    assert {a["type"] for a in data["addresses"]} == {"billing", "work"}
    assert all(len(a["country"]) == 2 for a in data["addresses"])
    assert data["is_customer"] is record["IsCustomer"] and data["status"] == "active"
    assert "Website" not in back and "IsCustomer" not in back  # read only in Xero
    assert back["Addresses"][0]["Country"] == record["Addresses"][0]["Country"]


def test_invoice_fields(native: dict[str, list[Any]]) -> None:
    record = next(r for r in native["Invoices"] if r["Status"] == "PAID"
                  and r["Type"] == "ACCPAY")
    data, back = preview(mapping("invoice"), record)
    assert data["type"] == "payable" and data["status"] == "paid"
    assert data["company"] == record["Contact"]["ContactID"]
    day = datetime.fromtimestamp(int(record["Date"][6:19]) / 1000, UTC).date().isoformat()
    assert data["issue_date"] == day and data["paid_on_date"]
    assert data["balance"] == "0" and data["total_amount"] == str(record["Total"]).rstrip("0").rstrip(".")
    assert len(data["line_items"]) == len(record["LineItems"])
    assert data["line_items"][0]["remote_id"] == record["LineItems"][0]["LineItemID"]
    assert back["Type"] == "ACCPAY" and back["Contact"] == {"ContactID": data["company"]}
    assert "Total" not in back and "LineItemID" not in back["LineItems"][0]


def test_payment_fields(native: dict[str, list[Any]]) -> None:
    record = native["Payments"][0]
    data, back = preview(mapping("payment"), record)
    assert data["invoice"] == record["Invoice"]["InvoiceID"]
    assert data["company"] == record["Invoice"]["Contact"]["ContactID"]
    assert data["currency"] == record["Invoice"]["CurrencyCode"] and data["status"] == "active"
    assert back["Account"] == {"Code": "090"} and back["Amount"] == record["Amount"]


@pytest.mark.parametrize("entity", sorted(ENTITIES))
def test_round_trip_is_stable(entity: str, native: dict[str, list[Any]]) -> None:
    """in(out(in(x))) == in(x): what we write back reads as the same canonical record."""
    m = mapping(entity)
    for record in native[ENTITIES[entity]][:100]:
        if m.inbound(record, None).deleted:
            continue  # a tombstone carries no data to write back
        data, back = preview(m, record)
        again = {**record, **back}
        if entity == "invoice":  # written lines come back with their read-only values
            again["LineItems"] = [{**old, **new} for old, new in
                                  zip(record["LineItems"], back["LineItems"], strict=True)]
        if entity == "payment":
            again["Invoice"] = {**record["Invoice"], **back["Invoice"]}
        assert preview(m, again)[0] == data


def test_deletions_map_to_deleted(native: dict[str, list[Any]]) -> None:
    contact = {**native["Contacts"][0], "ContactStatus": "ARCHIVED"}
    assert mapping("company").inbound(contact, None).deleted is True
    invoice = {**native["Invoices"][0], "Status": "DELETED"}
    assert mapping("invoice").inbound(invoice, None).deleted is True
    voided = {**native["Invoices"][0], "Status": "VOIDED"}
    result = mapping("invoice").inbound(voided, None)
    assert result.deleted is False and result.data["status"] == "void"
    payment = {**native["Payments"][0], "Status": "DELETED"}
    assert mapping("payment").inbound(payment, None).deleted is True


@settings(max_examples=60, deadline=None)
@given(ms=st.integers(min_value=0, max_value=4_102_444_800_000),
       cents=st.integers(min_value=1, max_value=10**9),
       name=st.text(min_size=1, max_size=30).filter(lambda s: s.strip() == s and s.strip()))
def test_round_trip_property(ms: int, cents: int, name: str) -> None:
    day = ms - ms % 86_400_000
    payment = {"PaymentID": "p", "UpdatedDateUTC": f"/Date({ms}+0000)/", "Status": "AUTHORISED",
               "Date": f"/Date({day}+0000)/", "Amount": cents / 100,
               "Invoice": {"InvoiceID": "i"}, "Reference": name}
    data, back = preview(mapping("payment"), payment)
    assert back["Date"] == payment["Date"] and back["Amount"] == payment["Amount"]
    assert back["Reference"] == name
    updated = mapping("payment").inbound(payment, None).updated_at
    assert updated is not None
    parsed = datetime.fromisoformat(updated)
    assert round(parsed.timestamp() * 1000) == ms
    contact = {"ContactID": "c", "UpdatedDateUTC": "/Date(0+0000)/", "Name": name,
               "ContactStatus": "ACTIVE"}
    data, back = preview(mapping("company"), contact)
    assert back["Name"] == name and data["status"] == "active"
