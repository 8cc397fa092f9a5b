"""HubSpot deals over real HTTP against the sandbox: associations, writes without a unique
property, partial failures, archive, incremental reads."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.hubspot.connector import HubSpotConnector
from connectors.hubspot.sandbox import Faults, HubSpotSandbox
from hub.config.model import ConnectionConfig, RetryPolicy
from hub.connector import WriteOp

NOW = 1_800_000_000_000  # after every generated timestamp


def connection(sandbox: HubSpotSandbox) -> ConnectionConfig:
    return ConnectionConfig(
        name="crm", connector="hubspot", base_dir=Path("."),
        settings={"base_url": sandbox.base_url, "token": sandbox.token,
                  "search_overlap_ms": 0},
        retry=RetryPolicy(attempts=4, backoff_initial=0.01, backoff_max=2.0))


@pytest.fixture
def sandbox() -> Iterator[HubSpotSandbox]:
    with HubSpotSandbox(seed=4, count=120, deals=40) as sb:
        yield sb


@pytest.fixture
def hubspot(sandbox: HubSpotSandbox) -> Iterator[HubSpotConnector]:
    with HubSpotConnector(connection(sandbox)) as connector:
        yield connector


def read_all(connector: Any, cursor: dict[str, Any] | None = None, *,
             incremental: bool = False) -> list[dict[str, Any]]:
    return [r for p in connector.read("deals", cursor, incremental=incremental, page_size=15)
            for r in p.records]


def assoc_ids(record: dict[str, Any], to_type: str) -> list[str]:
    return [a["id"] for a in record.get("associations", {}).get(to_type, {}).get("results", [])]


def deal_op(key: str, name: str, *, company: str | None = None,
            contacts: tuple[str, ...] = (), external_id: str | None = None,
            **props: str) -> WriteOp:
    record: dict[str, Any] = {"properties": {"dealname": name, **props}}
    assoc: dict[str, Any] = {}
    if company:
        assoc["companies"] = {"results": [{"id": company}]}
    if contacts:
        assoc["contacts"] = {"results": [{"id": c} for c in contacts]}
    if assoc:
        record["associations"] = assoc
    return WriteOp("update" if external_id else "create", key, record,
                   external_id=external_id)


def test_capabilities_declare_deals() -> None:
    support = HubSpotConnector.capabilities.entities["deal"]
    assert support.object == "deals"
    assert support.read and support.write and support.incremental and support.archive


def test_full_read_carries_company_and_contact_associations(
        hubspot: HubSpotConnector, sandbox: HubSpotSandbox) -> None:
    records = read_all(hubspot)
    assert len(records) == 40 == len({r["id"] for r in records})
    with_contacts = 0
    for record in records:
        assert record["properties"]["hs_lastmodifieddate"] == record["updatedAt"]
        assert assoc_ids(record, "companies") == sandbox.associations("deals", record["id"],
                                                                      "companies")
        assert assoc_ids(record, "contacts") == sandbox.associations("deals", record["id"],
                                                                     "contacts")
        with_contacts += len(assoc_ids(record, "contacts")) > 1
        kinds = {a["type"] for v in record.get("associations", {}).values()
                 for a in v["results"]}
        assert kinds <= {"deal_to_company", "deal_to_contact"}
    assert with_contacts > 3  # the seed has deals with several contacts


def test_contacts_still_read_only_their_companies(hubspot: HubSpotConnector,
                                                  sandbox: HubSpotSandbox) -> None:
    """A contact associated with a deal shows its companies only, as asked for."""
    contacts = [r for p in hubspot.read("contacts", None, incremental=False, page_size=100)
                for r in p.records]
    assert all(set(r.get("associations", {})) <= {"companies"} for r in contacts)


def test_incremental_search_on_hs_lastmodifieddate_adds_associations(
        hubspot: HubSpotConnector, sandbox: HubSpotSandbox) -> None:
    pages = list(hubspot.read("deals", None, incremental=False, page_size=50))
    cursor = pages[-1].cursor
    target = next(r for r in sandbox.records("deals")
                  if len(sandbox.associations("deals", r["id"], "contacts")) > 1)
    sandbox.touch("deals", target["id"], at_ms=NOW, dealstage="contractsent")
    got = read_all(hubspot, cursor, incremental=True)
    changed = [r for r in got if r["id"] == target["id"]]
    assert len(changed) == 1 and changed[0]["properties"]["dealstage"] == "contractsent"
    assert len(got) <= 2  # the change, and at most the boundary record (GTE)
    assert assoc_ids(changed[0], "contacts") == sandbox.associations("deals", target["id"],
                                                                     "contacts")
    searches = [p for m, p in sandbox.requests if m == "POST" and p.endswith("/search")]
    assert searches and all("deals" in p for p in searches)


def test_create_uses_batch_create_and_writes_every_association(
        hubspot: HubSpotConnector, sandbox: HubSpotSandbox) -> None:
    company = sandbox.records("companies")[0]["id"]
    people = [r["id"] for r in sandbox.records("contacts")[:3]]
    before = len(sandbox.records("deals"))
    [result] = hubspot.write("deals", [deal_op("k1", "New pilot", company=company,
                                               contacts=tuple(people), amount="1500.50",
                                               dealstage="qualifiedtobuy",
                                               deal_currency_code="EUR")])
    assert result.ok and result.external_id
    assert len(sandbox.records("deals")) == before + 1
    stored = sandbox.get("deals", result.external_id)["properties"]
    assert stored["amount"] == "1500.50" and stored["deal_currency_code"] == "EUR"
    assert sandbox.associations("deals", result.external_id, "companies") == [company]
    assert sandbox.associations("deals", result.external_id, "contacts") == people
    # the association is visible from the other side as well
    assert result.external_id in sandbox.associations("companies", company, "deals")
    paths = [p for m, p in sandbox.requests if m == "POST"]
    assert any(p.endswith("/deals/batch/create") for p in paths)
    assert not any(p.endswith("/deals/batch/upsert") for p in paths)
    fetched = hubspot.fetch("deals", result.external_id)
    assert fetched is not None and assoc_ids(fetched, "contacts") == people


def test_update_goes_by_id_and_adds_no_deal(hubspot: HubSpotConnector,
                                            sandbox: HubSpotSandbox) -> None:
    deal = sandbox.records("deals")[3]
    before = len(sandbox.records("deals"))
    [result] = hubspot.write("deals", [deal_op("k", deal["properties"]["dealname"],
                                               external_id=deal["id"],
                                               dealstage="closedwon")])
    assert result.ok and result.external_id == deal["id"]
    assert sandbox.get("deals", deal["id"])["properties"]["dealstage"] == "closedwon"
    assert len(sandbox.records("deals")) == before


def test_partial_batch_failure_fails_only_the_bad_deal(hubspot: HubSpotConnector,
                                                       sandbox: HubSpotSandbox) -> None:
    ops = [deal_op("a", "Good one", amount="10"),
           deal_op("b", "Bad amount", amount="lots"),
           deal_op("c", "Good two", amount="20")]
    results = hubspot.write("deals", ops)
    assert [r.key for r in results] == ["a", "b", "c"]
    assert [r.ok for r in results] == [True, False, True]
    assert "lots" in str(results[1].error)
    names = [r["properties"]["dealname"] for r in sandbox.records("deals")]
    assert names.count("Good one") == names.count("Good two") == 1
    assert "Bad amount" not in names


def test_unknown_id_fails_in_its_result(hubspot: HubSpotConnector) -> None:
    [result] = hubspot.write("deals", [deal_op("x", "Ghost", external_id="999999")])
    assert not result.ok and result.error is not None


def test_archive_then_read_shows_it_archived(hubspot: HubSpotConnector,
                                             sandbox: HubSpotSandbox) -> None:
    deal = sandbox.records("deals")[0]
    [result] = hubspot.write("deals", [WriteOp("archive", "z", {}, external_id=deal["id"])])
    assert result.ok
    records = read_all(hubspot)
    gone = [r for r in records if r["id"] == deal["id"]]
    assert len(gone) == 1 and gone[0]["archived"] is True and gone[0]["archivedAt"]


def test_create_with_deal_association_type_ids(sandbox: HubSpotSandbox) -> None:
    """The sandbox honours HubSpot's deal association type ids on a plain create."""
    company = sandbox.records("companies")[1]["id"]
    person = sandbox.records("contacts")[1]["id"]
    body = {"properties": {"dealname": "Via POST"}, "associations": [
        {"to": {"id": company}, "types": [{"associationCategory": "HUBSPOT_DEFINED",
                                           "associationTypeId": 5}]},
        {"to": {"id": person}, "types": [{"associationCategory": "HUBSPOT_DEFINED",
                                          "associationTypeId": 3}]}]}
    answer = httpx.post(f"{sandbox.base_url}/crm/v3/objects/deals", json=body,
                        headers={"Authorization": f"Bearer {sandbox.token}"}, timeout=5)
    assert answer.status_code == 201
    new_id = answer.json()["id"]
    assert sandbox.associations("deals", new_id, "companies") == [company]
    assert sandbox.associations("deals", new_id, "contacts") == [person]


def test_lost_answers_on_updates_do_not_duplicate() -> None:
    """Updates by id are safe to repeat after a lost answer (creates are not: see the
    connector's docstring)."""
    with HubSpotSandbox(seed=4, count=20, deals=10,
                        faults=Faults(drop_response=0.3, seed=2)) as sb, \
            HubSpotConnector(connection(sb)) as hs:
        deals = sb.records("deals")
        ops = [deal_op(f"u{i}", d["properties"]["dealname"], external_id=d["id"],
                       dealstage="closedlost") for i, d in enumerate(deals)]
        results = hs.write("deals", ops)
        assert all(r.ok for r in results)
        assert len(sb.records("deals")) == 10
        assert {d["properties"]["dealstage"] for d in sb.records("deals")} == {"closedlost"}


def test_seeding_deals_leaves_companies_and_contacts_as_they_were() -> None:
    from connectors.hubspot import fakedata

    plain, with_deals = fakedata.generate(3, 50), fakedata.generate(3, 50, deals=20)
    assert plain.companies == with_deals.companies and plain.contacts == with_deals.contacts
    assert len(with_deals.deals) == 20 and fakedata.generate(3, 50, deals=20) == with_deals
    for deal, ci, people in zip(with_deals.deals, with_deals.deal_company,
                                with_deals.deal_contacts):
        assert deal["dealstage"] in fakedata.DEAL_STAGES
        # a deal's contacts work for the deal's company
        assert all(with_deals.contact_company[p] == ci for p in people)
