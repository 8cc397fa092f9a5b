"""The CalDAV connector passes the shipped conformance suite against a real Radicale server,
once finding changes by sync-token and once by the ETag fallback."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta

import pytest

from connectors.caldav.connector import CalDavConnector
from hub.connector import NativeRecord
from hub.testing import conformance_suite
from tests.connectors.radicale_server import Radicale, radicale_fixture  # noqa: F401


@pytest.fixture
def caldav_token(radicale: Radicale) -> Iterator[CalDavConnector]:
    """A connector on a new empty calendar, finding changes by sync-token."""
    yield CalDavConnector(radicale.connection("caldav", radicale.calendar(), sync="sync-token"))


@pytest.fixture
def caldav_etag(radicale: Radicale) -> Iterator[CalDavConnector]:
    """A connector on a new empty calendar, finding changes by ETags."""
    yield CalDavConnector(radicale.connection("caldav", radicale.calendar(), sync="etag"))


def new_task(i: int) -> NativeRecord:
    due = date(2024, 1, 1) + timedelta(days=i)
    return {"summary": f"Task {i}", "description": f"Do thing {i},\nthen the next; ok",
            "status": "NEEDS-ACTION", "due": due.isoformat(), "priority": 5,
            "categories": ["ops", f"batch {i % 3}"]}


VOLATILE = ("etag", "last_modified")  # the server's and Liaison's stamps change on every write


def started(record: NativeRecord) -> NativeRecord:
    kept = {k: v for k, v in record.items() if k not in VOLATILE}
    return {**kept, "summary": f"{record['summary']} (renamed)", "status": "IN-PROCESS",
            "percent_complete": 40}


def cancelled(record: NativeRecord) -> bool:
    return bool(record["status"] == "CANCELLED")


TestCalDavBySyncToken = conformance_suite(
    "caldav_token", entity="task", new_record=new_task, change=started,
    id_of=lambda r: r["href"], upserts_by_match=True, deletes_on_write=True,
    archived=cancelled)

TestCalDavByEtag = conformance_suite(
    "caldav_etag", entity="task", new_record=new_task, change=started,
    id_of=lambda r: r["href"], upserts_by_match=True, deletes_on_write=True,
    archived=cancelled)
