"""The Pipedrive connector passes the shipped conformance suite against its sandbox."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from connectors.pipedrive.connector import PipedriveConnector
from connectors.pipedrive.sandbox import PipedriveSandbox
from hub.config.model import ConnectionConfig, RetryPolicy
from hub.connector import NativeRecord
from hub.testing import conformance_suite


def ticking_clock() -> Callable[[], int]:
    """Epoch seconds that advance one second per call, starting a day in the past.

    Pipedrive's update_time has whole seconds: a real clock would give every record of a
    fast test the same second, so "changed since" could never be told apart. Starting in
    the past keeps the sandbox behind the connector's wall clock, as a real server is.
    """
    counter = itertools.count(int(time.time()) - 86_400)
    lock = threading.Lock()

    def now() -> int:
        with lock:
            return next(counter)
    return now


@pytest.fixture
def pipedrive() -> Iterator[PipedriveConnector]:
    """A connector against a fresh, empty sandbox."""
    with PipedriveSandbox(count=0, organizations=0, deals=0, clock=ticking_clock()) as sb:
        yield PipedriveConnector(ConnectionConfig(
            name="crm", connector="pipedrive", base_dir=Path("."),
            settings={"base_url": sb.base_url, "api_token": sb.api_token},
            retry=RetryPolicy(attempts=3, backoff_initial=0.01, backoff_max=1.0)))


def new_person(i: int) -> NativeRecord:
    return {"name": f"Ann Lee{i}",
            "emails": [{"value": f"ann{i}@example.com", "primary": True, "label": "work"}]}


def new_organization(i: int) -> NativeRecord:
    return {"name": f"Firm {i}", "address": {"value": f"{i} Main Street", "locality": "Boston"}}


def new_deal(i: int) -> NativeRecord:
    return {"title": f"Deal {i}", "value": 1000 + i, "currency": "EUR"}


TestPipedriveContacts = conformance_suite(
    "pipedrive", entity="contact", new_record=new_person,
    change=lambda r: {"name": "Renamed Person"}, id_of=lambda r: str(r["id"]),
    seed_count=7, page_size=3, upserts_by_match=True, deletes_on_write=True,
    match_of=lambda r: {"email": r["emails"][0]["value"]})

TestPipedriveCompanies = conformance_suite(
    "pipedrive", entity="company", new_record=new_organization,
    change=lambda r: {"name": "Renamed Ltd"}, id_of=lambda r: str(r["id"]),
    seed_count=7, page_size=3, deletes_on_write=True)

TestPipedriveDeals = conformance_suite(
    "pipedrive", entity="deal", new_record=new_deal,
    change=lambda r: {"title": "Bigger deal", "value": 5000, "status": "won"},
    id_of=lambda r: str(r["id"]), seed_count=7, page_size=3, deletes_on_write=False,
    archived=lambda r: r["is_deleted"] is True)
