"""HubSpotConnector against the HubSpot sandbox over real HTTP on 127.0.0.1."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.hubspot.connector import HubSpotConnector
from connectors.hubspot.sandbox import Faults, HubSpotSandbox
from hub.config.model import ConnectionConfig, RetryPolicy
from hub.connector import Page, WriteOp
from hub.errors import AuthError, PermanentError, RateLimited

ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
NOW = 1_800_000_000_000  # after every generated timestamp


def connection(sandbox: HubSpotSandbox, token: str | None = None, **settings: Any) -> ConnectionConfig:
    return ConnectionConfig(
        name="crm", connector="hubspot", base_dir=Path("."),
        settings={"base_url": sandbox.base_url, "token": token or sandbox.token,
                  "search_overlap_ms": 0, **settings},
        retry=RetryPolicy(attempts=4, backoff_initial=0.01, backoff_max=2.0))


@pytest.fixture
def sandbox() -> Iterator[HubSpotSandbox]:
    with HubSpotSandbox(seed=3, count=250) as sb:
        yield sb


@pytest.fixture
def hubspot(sandbox: HubSpotSandbox) -> Iterator[HubSpotConnector]:
    with HubSpotConnector(connection(sandbox)) as connector:
        yield connector  # type: ignore[misc]


def read_all(connector: Any, object: str, cursor: dict[str, Any] | None = None,
             *, incremental: bool = False, page_size: int = 100) -> tuple[list[Page], list[dict[str, Any]]]:
    pages = list(connector.read(object, cursor, incremental=incremental, page_size=page_size))
    return pages, [r for p in pages for r in p.records]


# -- reads ------------------------------------------------------------------------------------


def test_full_read_pages_through_everything_once(hubspot: HubSpotConnector,
                                                 sandbox: HubSpotSandbox) -> None:
    pages, records = read_all(hubspot, "contacts", page_size=40)
    ids = [r["id"] for r in records]
    assert len(ids) == 250 == len(set(ids))
    assert ids == sorted(ids, key=int)
    assert all(len(p.records) <= 40 for p in pages)
    assert pages[-1].cursor is not None and set(pages[-1].cursor) == {"since"}
    newest = max(r["updatedAt"] for r in sandbox.records("contacts"))
    assert pages[-1].cursor["since"] == _ms(newest)


def test_full_read_resumes_from_every_cursor(hubspot: HubSpotConnector) -> None:
    pages, records = read_all(hubspot, "companies", page_size=7)
    everything = [r["id"] for r in records]
    for i, page in enumerate(pages[:-1]):
        _, rest = read_all(hubspot, "companies", page.cursor, page_size=7)
        done = [r["id"] for p in pages[: i + 1] for r in p.records]
        assert done + [r["id"] for r in rest] == everything


def test_exact_multiple_of_page_size_ends_cleanly() -> None:
    with HubSpotSandbox(seed=1, count=0, companies=20) as sb, \
            HubSpotConnector(connection(sb)) as hs:
        pages, records = read_all(hs, "companies", page_size=10)
    assert len(records) == 20
    assert [len(p.records) for p in pages] == [10, 10, 0]  # last: the (empty) archived list


def test_record_shape_strings_and_timestamps(hubspot: HubSpotConnector) -> None:
    _, records = read_all(hubspot, "contacts")
    for r in records[:50]:
        assert set(r) >= {"id", "properties", "createdAt", "updatedAt", "archived"}
        assert isinstance(r["id"], str) and r["archived"] is False
        assert ISO_MS.match(r["createdAt"]) and ISO_MS.match(r["updatedAt"])
        assert r["properties"]["lastmodifieddate"] == r["updatedAt"]
        assert all(v is None or isinstance(v, str) for v in r["properties"].values())
    with_company = [r for r in records if "associations" in r]
    assert with_company and with_company[0]["associations"]["companies"]["results"][0]["id"]


def test_incremental_returns_only_changed_records(hubspot: HubSpotConnector,
                                                  sandbox: HubSpotSandbox) -> None:
    pages, _ = read_all(hubspot, "contacts")
    cursor = pages[-1].cursor
    assert cursor is not None
    contacts = sandbox.records("contacts")
    sandbox.touch("contacts", contacts[5]["id"], at_ms=NOW, jobtitle="CTO")
    sandbox.touch("contacts", contacts[9]["id"], at_ms=NOW + 5, jobtitle="COO")
    pages, got = read_all(hubspot, "contacts", cursor, incremental=True)
    # GTE: the record(s) at exactly the cursor's time come back too; nothing older does
    assert all(_ms(r["updatedAt"]) == cursor["since"] for r in got[:-2])
    records = got[-2:]
    assert [r["id"] for r in records] == [contacts[5]["id"], contacts[9]["id"]]
    assert records[0]["properties"]["jobtitle"] == "CTO"
    assert pages[-1].cursor == {"since": NOW + 5}
    # associations are filled in even though search does not return them
    assert records[0].get("associations") == _assoc_of(hubspot, contacts[5]["id"])
    # nothing changed since: nothing but the boundary record (GTE) comes back
    _, again = read_all(hubspot, "contacts", pages[-1].cursor, incremental=True)
    assert [r["id"] for r in again] == [contacts[9]["id"]]


def test_incremental_restarts_at_search_cap_without_loss_or_duplicates() -> None:
    with HubSpotSandbox(seed=5, count=0, companies=120, search_cap=25) as sb, \
            HubSpotConnector(connection(sb, search_cap=25)) as hs:
        ids = [r["id"] for r in sb.records("companies")]
        for n, i in enumerate(ids):  # ties across restart boundaries: 4 records per ms
            sb.touch("companies", i, at_ms=NOW + n // 4)
        pages, records = read_all(hs, "companies", {"since": NOW}, incremental=True,
                                  page_size=10)
        got = [r["id"] for r in records]
        assert sorted(got, key=int) == sorted(ids, key=int)
        assert len(got) == len(set(got))
        assert pages[-1].cursor == {"since": NOW + 29}
        # every mid-run cursor resumes without loss
        for i, page in enumerate(pages[:-1]):
            _, rest = read_all(hs, "companies", page.cursor, incremental=True, page_size=10)
            before = {r["id"] for p in pages[: i + 1] for r in p.records}
            assert before | {r["id"] for r in rest} == set(ids)
        assert any(m == "POST" and p.endswith("/search") for m, p in sb.requests)


def test_incremental_cap_with_one_timestamp_falls_back_to_full_read() -> None:
    with HubSpotSandbox(seed=5, count=0, companies=40, search_cap=10) as sb, \
            HubSpotConnector(connection(sb, search_cap=10)) as hs:
        for r in sb.records("companies"):
            sb.touch("companies", r["id"], at_ms=NOW)
        _, records = read_all(hs, "companies", {"since": NOW}, incremental=True, page_size=5)
        assert {r["id"] for r in records} == {r["id"] for r in sb.records("companies")}


def test_search_past_cap_is_refused_by_sandbox(sandbox: HubSpotSandbox) -> None:
    response = httpx.post(f"{sandbox.base_url}/crm/v3/objects/contacts/search",
                          headers={"Authorization": f"Bearer {sandbox.token}"},
                          json={"limit": 100, "after": "10000"})
    assert response.status_code == 400


def test_archived_records_show_in_full_and_incremental_reads(hubspot: HubSpotConnector,
                                                             sandbox: HubSpotSandbox) -> None:
    pages, _ = read_all(hubspot, "contacts")
    cursor = pages[-1].cursor
    assert cursor is not None
    victim = sandbox.records("contacts")[3]["id"]
    sandbox.archive("contacts", victim, at_ms=NOW)
    _, records = read_all(hubspot, "contacts")
    archived = [r for r in records if r["archived"]]
    assert [r["id"] for r in archived] == [victim]
    assert ISO_MS.match(archived[0]["archivedAt"])
    assert [r["id"] for r in records].count(victim) == 1
    _, changed = read_all(hubspot, "contacts", cursor, incremental=True)
    assert [(r["id"], r["archived"]) for r in changed if r["archived"]] == [(victim, True)]
    assert all(_ms(r["updatedAt"]) == cursor["since"] for r in changed if not r["archived"])


# -- writes -----------------------------------------------------------------------------------


def contact_op(email: str, key: str = "k", **props: Any) -> WriteOp:
    return WriteOp("create", key, {"properties": {"email": email, **props}},
                   match={"email": email})


def test_upsert_is_idempotent(hubspot: HubSpotConnector, sandbox: HubSpotSandbox) -> None:
    before = len(sandbox.records("contacts"))
    first = hubspot.write("contacts", [contact_op("new.person@example.com", firstname="New")])
    again = hubspot.write("contacts", [contact_op("new.person@example.com", firstname="Newer")])
    assert first[0].ok and again[0].ok
    assert first[0].external_id == again[0].external_id
    assert len(sandbox.records("contacts")) == before + 1
    assert sandbox.get("contacts", str(first[0].external_id))["properties"]["firstname"] == "Newer"


def test_company_upsert_by_domain(hubspot: HubSpotConnector, sandbox: HubSpotSandbox) -> None:
    op = WriteOp("create", "c1", {"properties": {"name": "Zeta", "domain": "zeta.example"}},
                 match={"domain": "zeta.example"})
    a, b = hubspot.write("companies", [op]), hubspot.write("companies", [op])
    assert a[0].external_id == b[0].external_id
    assert [r["properties"]["domain"] for r in sandbox.records("companies")].count(
        "zeta.example") == 1


def test_partial_failures_map_to_the_right_records(hubspot: HubSpotConnector,
                                                   sandbox: HubSpotSandbox) -> None:
    existing = sandbox.records("contacts")[0]
    ops = [
        contact_op("ok.one@example.com", "a"),
        contact_op("not-an-email", "b"),
        WriteOp("update", "c", {"properties": {"jobtitle": "Boss"}},
                external_id=existing["id"]),
        WriteOp("update", "d", {"properties": {"nonsense_prop": "x"}},
                external_id=existing["id"]),
        contact_op("ok.two@example.com", "e"),
        WriteOp("update", "f", {"properties": {"jobtitle": "Ghost"}}, external_id="999999"),
    ]
    results = hubspot.write("contacts", ops)
    assert [r.key for r in results] == ["a", "b", "c", "d", "e", "f"]
    assert [r.ok for r in results] == [True, False, True, False, True, False]
    assert "not-an-email" in str(results[1].error)
    assert "nonsense_prop" in str(results[3].error)
    assert "999999" in str(results[5].error) or "not found" in str(results[5].error).lower()
    assert all(isinstance(r.error, PermanentError) for r in results if not r.ok)
    assert sandbox.get("contacts", existing["id"])["properties"]["jobtitle"] == "Boss"
    assert results[0].external_id and results[0].record is not None


def test_batch_refused_whole_is_retried_record_by_record(hubspot: HubSpotConnector) -> None:
    ops = [contact_op("bad-one", "a"), contact_op("bad-two", "b")]
    results = hubspot.write("contacts", ops)
    assert [(r.key, r.ok) for r in results] == [("a", False), ("b", False)]
    assert "bad-one" in str(results[0].error) and "bad-two" in str(results[1].error)


def test_duplicate_match_values_in_one_batch(hubspot: HubSpotConnector,
                                             sandbox: HubSpotSandbox) -> None:
    before = len(sandbox.records("contacts"))
    results = hubspot.write("contacts", [contact_op("twice@example.com", "a", firstname="A"),
                                         contact_op("Twice@example.com", "b", firstname="B")])
    assert all(r.ok for r in results)
    assert results[0].external_id == results[1].external_id
    assert len(sandbox.records("contacts")) == before + 1


def test_plain_create_then_conflict_is_permanent(hubspot: HubSpotConnector,
                                                 sandbox: HubSpotSandbox) -> None:
    taken = sandbox.records("contacts")[0]["properties"]["email"]
    op = WriteOp("create", "x", {"properties": {"firstname": "No email"}})
    assert hubspot.write("contacts", [op])[0].ok
    response = httpx.post(f"{sandbox.base_url}/crm/v3/objects/contacts",
                          headers={"Authorization": f"Bearer {sandbox.token}"},
                          json={"properties": {"email": taken}})
    assert response.status_code == 409 and response.json()["category"] == "CONFLICT"


def test_archive_write(hubspot: HubSpotConnector, sandbox: HubSpotSandbox) -> None:
    target = sandbox.records("companies")[2]["id"]
    results = hubspot.write("companies", [WriteOp("archive", "z", {}, external_id=target),
                                          WriteOp("archive", "y", {})])
    assert results[0].ok and not results[1].ok
    assert sandbox.get("companies", target)["archived"] is True


def test_company_association_written(hubspot: HubSpotConnector,
                                     sandbox: HubSpotSandbox) -> None:
    company = sandbox.records("companies")[1]["id"]
    op = WriteOp("create", "k", {"properties": {"email": "assoc@example.com"},
                                 "associations": {"companies": {"results": [{"id": company}]}}},
                 match={"email": "assoc@example.com"})
    result = hubspot.write("contacts", [op])[0]
    assert result.ok
    assert sandbox.associations("contacts", str(result.external_id), "companies") == [company]


# -- errors and faults ------------------------------------------------------------------------


def test_bad_token_is_auth_error_and_check_says_so(sandbox: HubSpotSandbox) -> None:
    with HubSpotConnector(connection(sandbox, token="wrong-token-value")) as hs:
        health = hs.check()
        assert not health.ok and "401" in health.message
        assert "wrong-token-value" not in health.message
        with pytest.raises(AuthError):
            read_all(hs, "contacts")


def test_check_ok(hubspot: HubSpotConnector) -> None:
    assert hubspot.check().ok


def test_429_with_retry_after_is_retried_and_succeeds() -> None:
    faults = Faults(rate_limit=0.4, retry_after=0.05, seed=11)
    with HubSpotSandbox(seed=2, count=120, faults=faults) as sb, \
            HubSpotConnector(connection(sb)) as hs:
        _, records = read_all(hs, "contacts", page_size=20)
        assert len({r["id"] for r in records}) == 120
        assert sb.waits_sent  # some 429s really happened


def test_retry_after_beyond_policy_raises_rate_limited() -> None:
    faults = Faults(rate_limit=1.0, retry_after=30, seed=1)
    with HubSpotSandbox(count=5, faults=faults) as sb, HubSpotConnector(connection(sb)) as hs:
        with pytest.raises(RateLimited) as info:
            read_all(hs, "contacts")
        assert info.value.retry_after == 30


def test_server_errors_and_lost_answers_do_not_duplicate() -> None:
    faults = Faults(server_error=0.2, drop_response=0.2, seed=4)
    with HubSpotSandbox(count=0, companies=1, faults=faults) as sb, \
            HubSpotConnector(connection(sb, timeout=2)) as connector:
        hs: Any = connector
        ops = [contact_op(f"p{i}@example.com", str(i)) for i in range(30)]
        for _ in range(3):  # what the engine does with transient results: send again
            results = hs.write("contacts", ops)
            if all(r.ok for r in results):
                break
        emails = [r["properties"]["email"] for r in sb.records("contacts")]
        assert sorted(emails) == sorted(f"p{i}@example.com" for i in range(30))


def test_unknown_object_is_permanent(hubspot: HubSpotConnector) -> None:
    with pytest.raises(PermanentError, match="tickets"):
        read_all(hubspot, "tickets")


def _ms(iso: str) -> int:
    from connectors.hubspot.client import iso_to_ms
    return iso_to_ms(iso)


def _assoc_of(connector: HubSpotConnector, contact_id: str) -> Any:
    for page in connector.read("contacts", None, incremental=False, page_size=100):
        for r in page.records:
            if r["id"] == contact_id:
                return r.get("associations")
    return None
