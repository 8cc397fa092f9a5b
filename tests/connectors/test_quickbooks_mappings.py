"""The default QuickBooks mappings load, map every sandbox record to valid canonical data,
and write back what they read (round trip), including through the connector."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.quickbooks.connector import QuickBooksConnector
from connectors.quickbooks.sandbox import QuickBooksSandbox
from hub.canonical.validate import validate
from hub.config.model import ConnectionConfig
from hub.connector import WriteOp
from hub.mapping import CompiledMapping, compile_mapping, load_mapping, preview

ENTITIES = {"company": "Customer", "invoice": "Invoice", "payment": "Payment"}


@pytest.fixture(scope="module")
def sandbox() -> Iterator[QuickBooksSandbox]:
    with QuickBooksSandbox(seed=9, count=120, per_second=10_000, per_minute=100_000,
                           batch_per_minute=10_000) as sb:
        yield sb


@pytest.fixture(scope="module")
def connector(sandbox: QuickBooksSandbox,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[QuickBooksConnector]:
    conn = ConnectionConfig(
        name="books", connector="quickbooks", base_dir=tmp_path_factory.mktemp("qbo"),
        settings={"base_url": sandbox.base_url, "token_url": sandbox.token_url,
                  "realm_id": sandbox.realm_id, "client_id": sandbox.client_id,
                  "client_secret": sandbox.client_secret,
                  "refresh_token": sandbox.refresh_token, "requests_per_second": 0})
    with QuickBooksConnector(conn) as qbo:
        yield qbo


@pytest.fixture(scope="module")
def native(connector: QuickBooksConnector) -> dict[str, list[Any]]:
    """Records exactly as the connector reads them from a seeded sandbox."""
    return {obj: [r for p in connector.read(obj, None, incremental=False, page_size=200)
                  for r in p.records] for obj in ENTITIES.values()}


@functools.cache
def mapping(entity: str) -> CompiledMapping:
    return compile_mapping(load_mapping(f"quickbooks/{entity}"))


@pytest.mark.parametrize("entity", sorted(ENTITIES))
def test_mapping_declares_the_connector_object(entity: str) -> None:
    m = load_mapping(f"quickbooks/{entity}")
    assert m.connector == "quickbooks" and m.entity == entity
    assert m.object == QuickBooksConnector.capabilities.object_for(entity)


@pytest.mark.parametrize("entity", sorted(ENTITIES))
def test_every_record_maps_to_valid_canonical_data(entity: str,
                                                   native: dict[str, list[Any]]) -> None:
    m = mapping(entity)
    records = native[ENTITIES[entity]]
    assert len(records) > 50
    deleted = 0
    for record in records:
        result = m.inbound(record, None)
        assert result.external_id == record["Id"]
        assert result.updated_at and result.updated_at.endswith("Z")
        deleted += result.deleted
        problems = validate(entity, result.data)
        assert not problems, (record["Id"], problems)
    assert deleted < len(records)


def test_company_fields(native: dict[str, list[Any]]) -> None:
    record = next(r for r in native["Customer"] if r["Active"] and r.get("PrimaryPhone")
                  and r["BillAddr"]["Country"] == "USA")
    data, back = preview(mapping("company"), record)
    assert data["name"] == record["DisplayName"] and data["status"] == "active"
    assert data["emails"] == [{"type": "work", "address": record["PrimaryEmailAddr"]["Address"]}]
    assert data["phones"][0]["number"].startswith("+1")
    address = data["addresses"][0]
    assert address["type"] == "billing" and address["country"] == "US"
    assert address["state"] == record["BillAddr"]["CountrySubDivisionCode"]
    assert data["is_customer"] is True and "domain" not in data
    assert back["Active"] is True and back["BillAddr"]["Country"] == "USA"
    assert "Balance" not in back  # computed by QBO


def test_invoice_fields(native: dict[str, list[Any]]) -> None:
    paid = next(r for r in native["Invoice"] if r["Balance"] == 0)
    data, back = preview(mapping("invoice"), paid)
    assert data["status"] == "paid" and data["type"] == "receivable"
    assert data["company"] == paid["CustomerRef"]["value"]
    assert data["number"] == paid["DocNumber"] and data["issue_date"] == paid["TxnDate"]
    assert len(data["line_items"]) == len(paid["Line"])  # no subtotal line
    line = data["line_items"][0]
    assert line["remote_id"] == paid["Line"][0]["Id"] and line["item_code"]
    assert "TotalAmt" not in back and "Balance" not in back and "Id" not in back["Line"][0]
    part = next(r for r in native["Invoice"] if 0 < r["Balance"] < r["TotalAmt"])
    assert preview(mapping("invoice"), part)[0]["status"] == "open"


def test_payment_fields(native: dict[str, list[Any]]) -> None:
    record = native["Payment"][0]
    data, back = preview(mapping("payment"), record)
    assert data["invoice"] == record["Line"][0]["LinkedTxn"][0]["TxnId"]
    assert data["company"] == record["CustomerRef"]["value"] and data["status"] == "active"
    assert back["TotalAmt"] == record["TotalAmt"]
    assert back["Line"] == [{"LinkedTxn": [{"TxnId": data["invoice"]}]}]


@pytest.mark.parametrize("entity", sorted(ENTITIES))
def test_round_trip_is_stable(entity: str, native: dict[str, list[Any]]) -> None:
    """in(out(in(x))) == in(x): what we write back reads as the same canonical record."""
    m = mapping(entity)
    for record in native[ENTITIES[entity]][:100]:
        if m.inbound(record, None).deleted:
            continue
        data, back = preview(m, record)
        again = {**record, **back}
        if "Line" in back:  # written lines come back with QBO's read-only parts
            again["Line"] = [_merge(old, new) for old, new in
                             zip(record["Line"], back["Line"], strict=True)]
        assert preview(m, again)[0] == data


def _merge(old: Any, new: Any) -> Any:
    if isinstance(old, dict) and isinstance(new, dict):
        return {**old, **{k: _merge(old.get(k), v) for k, v in new.items()}}
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [_merge(o, n) for o, n in zip(old, new, strict=True)]
    return new


def test_tombstones_and_inactive_customers_are_deletions(native: dict[str, list[Any]]) -> None:
    inactive = next(r for r in native["Customer"] if not r["Active"])
    assert mapping("company").inbound(inactive, None).deleted is True
    tombstone = {"Id": "130", "status": "Deleted", "domain": "QBO",
                 "MetaData": {"LastUpdatedTime": "2024-05-01T10:00:00-07:00"}}
    for entity in ("invoice", "payment"):
        result = mapping(entity).inbound(tombstone, None)
        assert result.deleted is True and result.external_id == "130"
        assert result.updated_at == "2024-05-01T17:00:00Z"


def test_written_back_through_the_connector(native: dict[str, list[Any]],
                                            connector: QuickBooksConnector,
                                            sandbox: QuickBooksSandbox) -> None:
    """A canonical invoice written out creates a QBO invoice that reads back the same."""
    source = next(r for r in native["Invoice"] if r["Balance"] == r["TotalAmt"])
    data, _ = preview(mapping("invoice"), source)
    data = {**data, "number": "RT-1"}
    refs = {("company", data["company"]): data["company"]}
    out = mapping("invoice").outbound(data, refs)
    result, = connector.write("Invoice", [WriteOp("create", "rt", out)])
    assert result.ok and result.record is not None, result.error
    again, _ = preview(mapping("invoice"), result.record)
    for key in ("number", "company", "issue_date", "due_date", "total_amount", "balance"):
        assert again[key] == data[key], key
    assert [(i["quantity"], i["unit_price"], i["total_amount"]) for i in again["line_items"]] \
        == [(i["quantity"], i["unit_price"], i["total_amount"]) for i in data["line_items"]]


@settings(max_examples=60, deadline=None)
@given(seconds=st.integers(min_value=0, max_value=4_102_444_800),
       cents=st.integers(min_value=1, max_value=10**9),
       name=st.text(min_size=1, max_size=30).filter(lambda s: s.strip() == s and s.strip()))
def test_round_trip_property(seconds: int, cents: int, name: str) -> None:
    stamp = datetime.fromtimestamp(seconds).astimezone().isoformat(timespec="seconds")
    payment = {"Id": "p", "SyncToken": "0", "TxnDate": "2024-05-02", "TotalAmt": cents / 100,
               "CustomerRef": {"value": "c"}, "MetaData": {"LastUpdatedTime": stamp},
               "Line": [{"Amount": cents / 100, "LinkedTxn": [{"TxnId": "i",
                                                               "TxnType": "Invoice"}]}]}
    _, back = preview(mapping("payment"), payment)
    assert back["TotalAmt"] == payment["TotalAmt"] and back["TxnDate"] == "2024-05-02"
    updated = mapping("payment").inbound(payment, None).updated_at
    assert updated is not None and int(datetime.fromisoformat(updated).timestamp()) == seconds
    customer = {"Id": "c", "DisplayName": name, "Active": True,
                "MetaData": {"LastUpdatedTime": stamp}}
    _, back = preview(mapping("company"), customer)
    assert back["DisplayName"] == name and back["Active"] is True
