"""The default sql mappings load, give valid canonical records, and survive a real table:
canonical -> native -> row (PostgreSQL, MariaDB) -> native -> canonical."""

from __future__ import annotations

from typing import Any

import pytest

from hub.canonical.validate import validate
from hub.connector import WriteOp
from hub.mapping import compile_mapping, find_default, load_mapping, preview
from tests.connectors.sql_servers import Database, db  # noqa: F401 - the fixture

# The columns each mapping file documents, as a legacy application would have made them.
TABLES = {
    "company": (
        "id {auto}, name VARCHAR(200) NOT NULL, website VARCHAR(200), email VARCHAR(200), "
        "phone VARCHAR(50), street VARCHAR(200), postal_code VARCHAR(20), city VARCHAR(100), "
        "country VARCHAR(100), vat_number VARCHAR(40), employees INTEGER, currency CHAR(3), "
        "credit_limit DECIMAL(12,2), is_customer BOOLEAN, is_supplier BOOLEAN, "
        "modified_at {ts}, deleted_at {ts}"),
    "contact": (
        "id {auto}, first_name VARCHAR(100), last_name VARCHAR(100), job_title VARCHAR(100), "
        "email VARCHAR(200) UNIQUE, phone VARCHAR(50), mobile VARCHAR(50), company_id INTEGER, "
        "city VARCHAR(100), country VARCHAR(100), tags VARCHAR(255), modified_at {ts}, "
        "deleted_at {ts}"),
}
ROWS: dict[str, dict[str, Any]] = {
    "company": {"id": 3, "name": " Acme Ltd ", "website": "https://www.Acme.example/",
                "email": "Info@Acme.example", "phone": "020 7946 0958", "street": "1 High St",
                "postal_code": "EC1A 1BB", "city": "London", "country": "United Kingdom",
                "vat_number": "GB123456789", "employees": 42, "currency": "gbp",
                "credit_limit": "25000.00", "is_customer": 1, "is_supplier": 0,
                "modified_at": "2024-05-01T10:00:00Z", "deleted_at": None},
    "contact": {"id": 7, "first_name": "Ann", "last_name": "Lee", "job_title": "CFO",
                "email": " Ann@Acme.example", "phone": "+1 415 555 0100", "mobile": None,
                "company_id": 3, "city": "Berlin", "country": "DE", "tags": "vip;newsletter",
                "modified_at": "2024-05-01T10:00:00Z", "deleted_at": None},
}


@pytest.mark.parametrize("entity", sorted(ROWS))
def test_each_default_mapping_names_its_default_object(entity: str) -> None:
    from connectors.sql.settings import OBJECTS

    path = find_default("sql", entity)
    assert path is not None
    mapping = compile_mapping(load_mapping(path))
    assert mapping.entity == entity and mapping.object == OBJECTS[entity]


@pytest.mark.parametrize("entity", sorted(ROWS))
def test_a_sample_row_maps_to_a_valid_canonical_record(entity: str) -> None:
    canonical, back = preview(compile_mapping(load_mapping(f"sql/{entity}")), ROWS[entity])
    assert canonical and validate(entity, canonical) == []
    assert "id" not in back  # the engine passes the id as the op's external id


def test_values_are_normalised_on_the_way_in() -> None:
    company, _ = preview("sql/company", ROWS["company"])
    assert company["domain"] == "acme.example" and company["currency"] == "GBP"
    assert company["is_customer"] is True and company["is_supplier"] is False
    assert company["phones"] == [{"type": "work", "number": "+442079460958"}]
    contact, _ = preview("sql/contact", ROWS["contact"])
    assert contact["company"] == "3" and contact["tags"] == ["vip", "newsletter"]
    assert contact["emails"] == [{"type": "work", "address": "ann@acme.example"}]


def test_a_soft_deleted_row_reads_as_a_deletion() -> None:
    mapping = compile_mapping(load_mapping("sql/contact"))
    row = {**ROWS["contact"], "deleted_at": "2024-06-01T00:00:00Z"}
    assert mapping.inbound(row).deleted and not mapping.inbound(ROWS["contact"]).deleted


@pytest.mark.parametrize("entity", sorted(ROWS))
def test_canonical_survives_a_trip_through_a_real_table(db: Database, entity: str) -> None:  # noqa: F811
    mapping = compile_mapping(load_mapping(f"sql/{entity}"))
    canonical, native = preview(mapping, ROWS[entity])
    auto = "INT AUTO_INCREMENT PRIMARY KEY" if db.mysql else "SERIAL PRIMARY KEY"
    ts = "DATETIME NULL" if db.mysql else "TIMESTAMP NULL"
    table = db.table(TABLES[entity].replace("{auto}", auto).replace("{ts}", ts))
    c = db.connector({entity: {"table": table, "updated_at": "modified_at",
                               "soft_delete": "deleted_at"}})
    result, = c.write(mapping.object, [WriteOp("create", "k", native)])
    assert result.ok, result.error
    rows = [r for p in c.read(mapping.object, None, incremental=True, page_size=10)
            for r in p.records]
    assert len(rows) == 1 and mapping.external_id(rows[0]) == result.external_id
    assert preview(mapping, rows[0])[0] == canonical
    c.close()
