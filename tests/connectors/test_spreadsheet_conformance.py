"""The spreadsheet connector passes the shipped conformance suite, as CSV and as XLSX."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from connectors.spreadsheet import SpreadsheetConnector
from hub.config.model import ConnectionConfig
from hub.connector import NativeRecord
from hub.testing import conformance_suite


def _connector(folder: Path, path: str) -> SpreadsheetConnector:
    settings = {"path": path, "modified_column": "updated_at"}
    return SpreadsheetConnector(ConnectionConfig(name="sheets", connector="spreadsheet",
                                                 settings=settings, base_dir=folder))


@pytest.fixture
def csv_sheets(tmp_path: Path) -> SpreadsheetConnector:
    """A CSV folder connector over an empty folder."""
    return _connector(tmp_path, ".")


@pytest.fixture
def xlsx_sheets(tmp_path: Path) -> SpreadsheetConnector:
    """A workbook connector; the workbook does not exist until the first write."""
    return _connector(tmp_path, "book.xlsx")


def new_contact(i: int) -> NativeRecord:
    return {"first_name": f"Ann{i}", "email": f"ann{i}@example.com",
            "updated_at": f"2024-01-01T00:00:{i % 60:02d}Z"}


def changed(record: NativeRecord) -> NativeRecord:
    return {**record, "title": "Head of Sales", "updated_at": "2030-01-01T00:00:00Z"}


def new_product(i: int) -> NativeRecord:
    return {"id": f"sku-{i}", "name": f"Widget {i}", "unit_price": "12.50", "active": "true"}


common: dict[str, Any] = {
    "id_of": lambda r: r["id"], "seed_count": 8, "page_size": 3, "upserts_by_match": True,
    "deletes_on_write": True, "archived": lambda r: r.get("archived") == "true"}

TestCsvContacts = conformance_suite("csv_sheets", entity="contact", new_record=new_contact,
                                    change=changed, match_of=lambda r: {"email": r["email"]},
                                    **common)
TestXlsxContacts = conformance_suite("xlsx_sheets", entity="contact", new_record=new_contact,
                                     change=changed, **common)
# Records that carry their own key (the mapping's `id`), and no modified column stamps.
def renamed(record: NativeRecord) -> NativeRecord:
    """Without `updated_at`, so the connector stamps the update with the current time."""
    return {**{k: v for k, v in record.items() if k != "updated_at"}, "name": "Renamed"}


TestCsvProducts = conformance_suite("csv_sheets", entity="product", new_record=new_product,
                                    change=renamed, **common)
TestXlsxProducts = conformance_suite("xlsx_sheets", entity="product", new_record=new_product,
                                     change=renamed, **common)
