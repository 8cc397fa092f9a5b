"""The HubSpot connector passes the shipped conformance suite against its sandbox."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from connectors.hubspot.connector import HubSpotConnector
from connectors.hubspot.sandbox import HubSpotSandbox
from hub.config.model import ConnectionConfig, RetryPolicy
from hub.connector import NativeRecord
from hub.testing import conformance_suite


def ticking_clock() -> Callable[[], int]:
    """Wall-clock ms that never repeats (waits for the next ms), so "changed since" is never
    a tie in these tests, and never runs ahead of the real clock."""
    last = [0]

    def now() -> int:
        while (ms := int(time.time() * 1000)) <= last[0]:
            time.sleep(0.0002)
        last[0] = ms
        return ms
    return now


@pytest.fixture
def hubspot() -> Iterator[HubSpotConnector]:
    """A connector against a fresh, empty sandbox."""
    with HubSpotSandbox(count=0, companies=0, clock=ticking_clock()) as sandbox:
        settings = {"base_url": sandbox.base_url, "token": sandbox.token,
                    "search_overlap_ms": 0}  # the sandbox's search has no index lag
        yield HubSpotConnector(ConnectionConfig(
            name="crm", connector="hubspot", settings=settings, base_dir=Path("."),
            retry=RetryPolicy(attempts=3, backoff_initial=0.01, backoff_max=1.0)))


def new_contact(i: int) -> NativeRecord:
    return {"properties": {"email": f"ann{i}@example.com", "firstname": f"Ann{i}"}}


def new_company(i: int) -> NativeRecord:
    return {"properties": {"name": f"Firm {i}", "domain": f"firm{i}.example"}}


def retitled(record: NativeRecord) -> NativeRecord:
    return {"properties": {"jobtitle": "Head of Sales"}}


def renamed(record: NativeRecord) -> NativeRecord:
    return {"properties": {"name": "Renamed Ltd"}}


TestHubSpotContacts = conformance_suite(
    "hubspot", entity="contact", new_record=new_contact, change=retitled,
    id_of=lambda r: r["id"], seed_count=7, page_size=3, upserts_by_match=True,
    match_of=lambda r: {"email": r["properties"]["email"]},
    archived=lambda r: r["archived"] is True)

TestHubSpotCompanies = conformance_suite(
    "hubspot", entity="company", new_record=new_company, change=renamed,
    id_of=lambda r: r["id"], seed_count=7, page_size=3, upserts_by_match=True,
    match_of=lambda r: {"domain": r["properties"]["domain"]},
    archived=lambda r: r["archived"] is True)


def new_deal(i: int) -> NativeRecord:
    return {"properties": {"dealname": f"Deal {i}", "amount": f"{1000 + i}",
                           "dealstage": "appointmentscheduled", "pipeline": "default"}}


def won(record: NativeRecord) -> NativeRecord:
    return {"properties": {"dealstage": "closedwon"}}


# Deals have no unique property: no upsert by match, so no repeated-create test.
TestHubSpotDeals = conformance_suite(
    "hubspot", entity="deal", new_record=new_deal, change=won,
    id_of=lambda r: r["id"], seed_count=7, page_size=3,
    archived=lambda r: r["archived"] is True)
