"""The CardDAV connector passes the shipped conformance suite against a real Radicale server,
once finding changes by sync-token and once by the ETag fallback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from connectors.carddav.connector import CardDavConnector
from hub.connector import NativeRecord
from hub.testing import conformance_suite
from tests.connectors.radicale_server import Radicale, radicale_fixture  # noqa: F401


@pytest.fixture
def carddav_token(radicale: Radicale) -> Iterator[CardDavConnector]:
    """A connector on a new empty address book, finding changes by sync-token."""
    yield CardDavConnector(radicale.connection("carddav", radicale.addressbook(),
                                               sync="sync-token"))


@pytest.fixture
def carddav_etag(radicale: Radicale) -> Iterator[CardDavConnector]:
    """A connector on a new empty address book, finding changes by ETags."""
    yield CardDavConnector(radicale.connection("carddav", radicale.addressbook(), sync="etag"))


def new_contact(i: int) -> NativeRecord:
    return {"n": {"given": f"Ana{i}", "family": "Doe"}, "title": "Engineer",
            "emails": [{"value": f"ana{i}@example.com", "type": "work"}],
            "tels": [{"value": f"+1415555{i:04d}", "type": "cell"}]}


VOLATILE = ("etag", "rev")  # the server's and Liaison's stamps change on every write


def promoted(record: NativeRecord) -> NativeRecord:
    kept = {k: v for k, v in record.items() if k not in VOLATILE}
    return {**kept, "title": "Head of Engineering", "note": "promoted, again; twice"}


TestCardDavBySyncToken = conformance_suite(
    "carddav_token", entity="contact", new_record=new_contact, change=promoted,
    id_of=lambda r: r["href"], upserts_by_match=True, deletes_on_write=True)

TestCardDavByEtag = conformance_suite(
    "carddav_etag", entity="contact", new_record=new_contact, change=promoted,
    id_of=lambda r: r["href"], upserts_by_match=True, deletes_on_write=True)
