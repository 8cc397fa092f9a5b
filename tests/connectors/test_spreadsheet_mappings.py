"""The default spreadsheet mappings load, produce valid canonical records, and survive a
trip through a real sheet: canonical -> row -> file -> row -> canonical."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from connectors.spreadsheet import SpreadsheetConnector
from connectors.spreadsheet.connector import OBJECTS
from hub.canonical.validate import validate
from hub.config.model import ConnectionConfig
from hub.connector import WriteOp
from hub.mapping import compile_mapping, find_default, load_mapping, preview

ROWS: dict[str, dict[str, str]] = {
    "company": {"id": "c1", "name": " Acme Ltd ", "domain": "https://www.Acme.example/",
                "number_of_employees": "42", "email": "Info@Acme.example",
                "phone": "+44 20 7946 0958", "city": "London", "country": "United Kingdom",
                "tags": "vip;uk", "is_customer": "yes", "currency": "gbp",
                "updated_at": "2024-05-01T10:00:00Z"},
    "contact": {"id": "p1", "first_name": "Ann", "last_name": "Lee", "title": "CFO",
                "email": " Ann@Acme.example", "phone": "+1 415 555 0100",
                "company_id": "c1", "tags": "a;b", "country": "DE",
                "updated_at": "2024-05-01T10:00:00Z"},
    "deal": {"id": "d1", "name": "Renewal", "amount": "1234.50", "currency": "EUR",
             "status": "Won", "probability": "90", "close_date": "2024-06-30",
             "company_id": "c1"},
    "invoice": {"id": "i1", "number": "INV-0042", "type": "receivable", "status": "open",
                "company_id": "c1", "issue_date": "2024-05-01", "due_date": "2024-05-31",
                "currency": "EUR", "sub_total": "100", "total_tax": "19",
                "total_amount": "119.00", "balance": "119"},
    "payment": {"id": "y1", "transaction_date": "2024-05-02", "invoice_id": "i1",
                "amount": "119", "currency": "EUR", "method": "transfer"},
    "product": {"id": "s1", "name": "Widget", "sku": "W-1", "unit_price": "12.5",
                "currency": "EUR", "active": "true"},
    "project": {"id": "j1", "name": "Launch", "status": "open", "start_date": "2024-05-01",
                "url": "https://example.com/p/1"},
    "task": {"id": "t1", "name": "Write docs", "status": "in_progress", "priority": "high",
             "project_id": "j1", "assignees": "ann; bob", "due_date": "2024-05-10",
             "completed_at": "2024-05-09T08:00:00Z"},
    "message": {"id": "m1", "subject": "Hello", "from": "Ann@Acme.example", "to": "b@x.org",
                "date": "2024-05-01T10:00:00Z", "message_id": "<1@acme>"},
}


@pytest.mark.parametrize("entity", sorted(OBJECTS))
def test_each_entity_has_a_default_mapping_for_its_object(entity: str) -> None:
    path = find_default("spreadsheet", entity)
    assert path is not None
    mapping = compile_mapping(load_mapping(path))
    assert mapping.entity == entity and mapping.object == OBJECTS[entity]


@pytest.mark.parametrize("entity", sorted(ROWS))
def test_a_sample_row_maps_to_a_valid_canonical_record(entity: str) -> None:
    mapping = compile_mapping(load_mapping(f"spreadsheet/{entity}"))
    canonical, back = preview(mapping, ROWS[entity])
    assert canonical, "nothing was mapped"
    assert validate(entity, canonical) == []
    assert "id" not in back  # the engine passes the id as the op's external id
    again, _ = preview(mapping, {"id": ROWS[entity]["id"], **back})
    assert again == canonical  # written back and read again, nothing changes


def test_contact_values_are_normalised_on_the_way_in() -> None:
    canonical, _ = preview("spreadsheet/contact", ROWS["contact"])
    assert canonical["emails"] == [{"type": "work", "address": "ann@acme.example"}]
    assert canonical["phones"] == [{"type": "work", "number": "+14155550100"}]
    assert canonical["company"] == "c1"


@pytest.mark.parametrize("path", [".", "book.xlsx"])
@pytest.mark.parametrize("entity", sorted(ROWS))
def test_canonical_survives_a_trip_through_a_real_sheet(tmp_path: Path, path: str,
                                                        entity: str) -> None:
    mapping = compile_mapping(load_mapping(f"spreadsheet/{entity}"))
    canonical, native = preview(mapping, ROWS[entity])
    c = SpreadsheetConnector(ConnectionConfig(name="s", connector="spreadsheet",
                                              settings={"path": path}, base_dir=tmp_path))
    result, = c.write(mapping.object, [WriteOp("create", "k", native)])
    assert result.ok
    rows: list[dict[str, Any]] = [r for p in c.read(mapping.object, None, incremental=False,
                                                    page_size=10) for r in p.records]
    assert len(rows) == 1 and mapping.external_id(rows[0]) == result.external_id
    assert preview(mapping, rows[0])[0] == canonical
