"""The HubSpot connection's `extra_properties`: custom properties read back, not cleared.

Against the HubSpot sandbox over real HTTP on 127.0.0.1; the two-way flow runs the real
engine on a SQLite store between a CSV folder and the sandbox.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from connectors.hubspot.connector import HubSpotConnector
from connectors.hubspot.sandbox import HubSpotSandbox
from hub.config import loads
from hub.config.model import ConnectionConfig, RetryPolicy
from hub.connector import WriteOp
from hub.errors import ConnectorError
from hub.store import Store
from hub.sync.engine import SyncEngine

CUSTOM = "liaison_last_activity"
WHEN = "2024-10-01T10:00:00Z"


def connection(sandbox: HubSpotSandbox, **settings: Any) -> ConnectionConfig:
    return ConnectionConfig(
        name="crm", connector="hubspot", base_dir=Path("."),
        settings={"base_url": sandbox.base_url, "token": sandbox.token,
                  "search_overlap_ms": 0, **settings},
        retry=RetryPolicy(attempts=2, backoff_initial=0.01, backoff_max=0.1),
        where="hub.yaml:7", key_where={"extra_properties": "hub.yaml:12"})


@pytest.fixture
def sandbox() -> Iterator[HubSpotSandbox]:
    with HubSpotSandbox(seed=5, count=3, companies=0, extra_properties=(CUSTOM,)) as sb:
        yield sb


def _write_custom(sandbox: HubSpotSandbox) -> str:
    """Upsert a contact carrying the custom property through the connector; its id."""
    with HubSpotConnector(connection(sandbox)) as hs:
        (result,) = hs.write("contacts", [WriteOp(
            "create", "k1", {"properties": {"email": "ana@example.com", "firstname": "Ana",
                                            CUSTOM: WHEN}}, match={"email": "ana@example.com"})])
    assert result.ok, result.error
    assert result.external_id is not None
    return result.external_id


def _read(connector: HubSpotConnector, *, incremental: bool = False,
          cursor: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    pages = connector.read("contacts", cursor, incremental=incremental, page_size=50)
    return {r["id"]: r for p in pages for r in p.records}


# -- reads ------------------------------------------------------------------------------------


def test_without_the_setting_a_custom_property_reads_as_empty(sandbox: HubSpotSandbox) -> None:
    ana = _write_custom(sandbox)
    assert sandbox.get("contacts", ana)["properties"][CUSTOM] == WHEN
    with HubSpotConnector(connection(sandbox)) as hs:
        assert not _read(hs)[ana]["properties"].get(CUSTOM)


def test_full_and_incremental_reads_and_fetch_return_the_extra_property(
        sandbox: HubSpotSandbox) -> None:
    ana = _write_custom(sandbox)
    with HubSpotConnector(connection(sandbox,
                                     extra_properties={"contacts": [CUSTOM]})) as hs:
        full = _read(hs)
        assert full[ana]["properties"][CUSTOM] == WHEN
        assert full[ana]["properties"]["email"] == "ana@example.com"  # built-ins still read
        others = [r for i, r in full.items() if i != ana]
        assert others and all(not r["properties"].get(CUSTOM) for r in others)

        changed = _read(hs, incremental=True, cursor={"since": 0})
        assert changed[ana]["properties"][CUSTOM] == WHEN

        fetched = hs.fetch("contacts", ana)
        assert fetched is not None and fetched["properties"][CUSTOM] == WHEN


def test_an_entity_name_stands_for_its_object_and_other_objects_are_unchanged(
        sandbox: HubSpotSandbox) -> None:
    hs = HubSpotConnector(connection(sandbox, extra_properties={"contact": [CUSTOM, CUSTOM],
                                                                "deals": []}))
    builtin = HubSpotConnector(connection(sandbox))
    assert hs.properties["contacts"] == builtin.properties["contacts"] + (CUSTOM,)
    assert hs.properties["deals"] == builtin.properties["deals"]
    assert hs.properties["companies"] == builtin.properties["companies"]


# -- validation -------------------------------------------------------------------------------

BAD = [
    ("liaison_last_activity", "must map HubSpot objects to lists of property names"),
    (["liaison_last_activity"], "must map HubSpot objects to lists of property names"),
    ({"contacts": "liaison_last_activity"},
     "contacts must be a list of property names like [liaison_last_activity], got the text"),
    ({"contacts": [CUSTOM, "Last Activity"]}, ("contacts[1] must be a HubSpot property's "
                                              "internal name")),
    ({"contacts": [3]}, "contacts[0] must be a HubSpot property's internal name"),
    ({"tickets": [CUSTOM]}, ("HubSpot has no object 'tickets' here (known: companies, "
                            "contacts, deals)")),
]


@pytest.mark.parametrize(("value", "expected"), BAD)
def test_a_wrong_setting_is_refused_naming_the_line_and_what_was_expected(
        sandbox: HubSpotSandbox, value: Any, expected: str) -> None:
    with pytest.raises(ConnectorError) as caught:
        HubSpotConnector(connection(sandbox, extra_properties=value))
    message = str(caught.value)
    assert message.startswith("connection crm (hub.yaml:12): setting 'extra_properties'")
    assert expected in message


def test_every_problem_is_listed_at_once(sandbox: HubSpotSandbox) -> None:
    with pytest.raises(ConnectorError) as caught:
        HubSpotConnector(connection(sandbox, extra_properties={"tickets": ["x"],
                                                               "contacts": ["Bad"]}))
    assert "'tickets'" in str(caught.value) and "contacts[0]" in str(caught.value)


def test_the_setting_is_declared_with_a_description() -> None:
    described = HubSpotConnector.capabilities.settings["extra_properties"]
    assert "{contacts: [liaison_last_activity]}" in described


# -- a two-way flow keeps the custom property -------------------------------------------------

HUBSPOT_CONTACT = f"""\
version: 1
extends: hubspot/contact
fields:
  last_activity_at: {{path: properties.{CUSTOM}, in: [datetime]}}
"""
BOOK_CONTACT = """\
version: 1
extends: spreadsheet/contact
fields:
  last_activity_at: {path: last_activity_at, in: [datetime]}
"""
CONFIG = """\
version: 1
store: sqlite:///{tmp}/liaison.db
systems:
  book: {{category: files, owner: Sales, connection: {{connector: spreadsheet, path: {tmp}/book}}}}
  crm:
    category: crm
    owner: Sales
    connection:
      connector: hubspot
      base_url: "{base_url}"
      token: ${{HUBSPOT_TOKEN}}
      search_overlap_ms: 0
{extra}
flows:
  contacts:
    entity: contact
    from: book
    to: crm
    direction: two-way
    conflict: last-modified-wins
    mappings: {{book: book_contact.yaml, crm: hubspot_contact.yaml}}
"""
FIELDS = ["id", "first_name", "last_name", "email", "last_activity_at", "updated_at"]


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_a_two_way_flow_reads_the_custom_property_back_instead_of_clearing_it(
        sandbox: HubSpotSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "book").mkdir()
    (tmp_path / "hubspot_contact.yaml").write_text(HUBSPOT_CONTACT, encoding="utf-8")
    (tmp_path / "book_contact.yaml").write_text(BOOK_CONTACT, encoding="utf-8")
    with (tmp_path / "book" / "contacts.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(FIELDS)
        w.writerow(["b1", "Ana", "Silva", "ana@example.com", WHEN, "2024-10-01T11:00:00Z"])
    monkeypatch.setenv("HUBSPOT_TOKEN", sandbox.token)
    text = CONFIG.format(tmp=tmp_path, base_url=sandbox.base_url,
                         extra=f"      extra_properties: {{contacts: [{CUSTOM}]}}")
    settings = loads(text, file=str(tmp_path / "hub.yaml"))
    store = Store(settings.store_url)
    try:
        engine = SyncEngine(settings, store)
        first = engine.run("contacts")
        assert first.status == "succeeded", first
        (ana,) = [r for r in sandbox.records("contacts")
                  if r["properties"]["email"] == "ana@example.com"]
        assert ana["properties"][CUSTOM] == WHEN

        # Someone edits Ana in HubSpot: the change comes back to the book with the custom
        # property intact, and HubSpot keeps it too.
        sandbox.touch("contacts", ana["id"], firstname="Anna")
        second = engine.run("contacts")
        assert second.status == "succeeded", second
        (row,) = [r for r in _rows(tmp_path / "book" / "contacts.csv")
                  if r["email"] == "ana@example.com"]
        assert row["first_name"] == "Anna"
        assert row["last_activity_at"] == WHEN
        assert sandbox.get("contacts", ana["id"])["properties"][CUSTOM] == WHEN
        # ... and in the canonical record, which other flows deliver from.
        with store.connect() as conn:
            cid = store.match_lookup(conn, "contact", [("email", "ana@example.com")])[
                ("email", "ana@example.com")]
            canonical = store.get_records(conn, [cid])[cid].data
        assert canonical["first_name"] == "Anna"
        assert canonical["last_activity_at"] == WHEN

        third = engine.run("contacts")
        assert third.status == "succeeded", third
        assert third.counts.written == 0
        assert sandbox.get("contacts", ana["id"])["properties"][CUSTOM] == WHEN
    finally:
        store.close()
