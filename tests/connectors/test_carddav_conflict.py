"""A concurrent edit through the engine: a card changed on the server after a two-way run read
it is not overwritten by that run's delivery; the delivery stays owed, and the next run reads
the new version, settles it with the flow's conflict policy and delivers the outcome. The same
holds when the delivery is made by another connector instance that never read the address
book (a worker's delivery job), and a one-way flow into the address book still writes."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from connectors.carddav.connector import CardDavConnector
from hub import registry
from hub.config import loads
from hub.config.model import ConnectionConfig, Settings
from hub.connector import Connector, Cursor, Page, WriteOp, WriteResult
from hub.errors import TransientError
from hub.store import Store
from hub.sync.context import FlowContext
from hub.sync.deliver import Deliverer
from hub.sync.engine import SyncEngine
from hub.sync.hooks import RunCounts, RunInfo
from tests.connectors.radicale_server import PASSWORD_ENV, Radicale, radicale_fixture  # noqa: F401
from tests.e2e.conftest import read_csv, write_csv

VCARD = "text/vcard; charset=utf-8"
COLUMNS = ["id", "first_name", "last_name", "title", "email"]


def bob(title: str) -> str:
    return ("BEGIN:VCARD\r\nVERSION:3.0\r\nUID:bob\r\nFN:Bob Smith\r\nN:Smith;Bob;;;\r\n"
            f"EMAIL;TYPE=work:bob@example.com\r\nTITLE:{title}\r\nEND:VCARD\r\n")


def people_flow(radicale: Radicale, book: str, tmp_path: Path, *,
                direction: str = "two-way") -> Settings:
    """Contacts between the address book and a spreadsheet folder."""
    (tmp_path / "sheet").mkdir(exist_ok=True)
    return loads(f"""
version: 1
store: sqlite:///{tmp_path / 'liaison.db'}
systems:
  addressbook:
    category: crm
    owner: Anna
    connection:
      connector: carddav
      base_url: {radicale.url}{book}
      username: {radicale.user}
      password: ${{{PASSWORD_ENV}}}
      retry: {{attempts: 3, backoff_initial: 0.01, backoff_max: 0.05}}
  sheet:
    category: files
    owner: Ben
    connection: {{connector: spreadsheet, path: {tmp_path / 'sheet'}}}
flows:
  people:
    entity: contact
    from: {'addressbook' if direction == 'two-way' else 'sheet'}
    to: {'sheet' if direction == 'two-way' else 'addressbook'}
    direction: {direction}
    conflict: source-wins
""", file=str(tmp_path / "hub.yaml"))


def test_a_card_edited_while_a_run_is_under_way_is_settled_by_the_next_run(
        radicale: Radicale, tmp_path: Path) -> None:
    book = radicale.addressbook()
    card = f"{book}bob.vcf"
    radicale.put(card, bob("Engineer"), VCARD)
    settings = people_flow(radicale, book, tmp_path)
    colleague: dict[str, Any] = {"edit": None}

    class Watched(CardDavConnector):
        """The real connector; a colleague saves the card right after the run read it."""

        def read(self, object: str, cursor: Cursor | None, *, incremental: bool,
                 page_size: int) -> Iterator[Page]:
            yield from super().read(object, cursor, incremental=incremental,
                                    page_size=page_size)
            if colleague["edit"]:
                radicale.put(card, bob(colleague["edit"]), VCARD)
                colleague["edit"] = None

    def factory(connection: ConnectionConfig) -> Connector:
        if connection.connector == "carddav":
            return Watched(connection)
        return registry.create(connection)

    store = Store(settings.store_url)
    try:
        engine = SyncEngine(settings, store, connector_factory=factory)
        first = engine.run("people")
        assert first.status == "succeeded", first
        rows = read_csv(tmp_path / "sheet" / "contacts.csv")
        assert [r["title"] for r in rows] == ["Engineer"]

        # The office promotes Bob in the sheet; while that run is under way, a colleague
        # edits the card in the address book.
        write_csv(tmp_path / "sheet" / "contacts.csv",
                  [[r["id"], r["first_name"], r["last_name"], "Manager", r["email"]]
                   for r in rows], COLUMNS)
        colleague["edit"] = "Head of Sales"
        second = engine.run("people")
        assert second.status == "partial" and second.counts.pending == 1, second
        assert "TITLE:Head of Sales" in radicale.request("GET", card).text, \
            "the colleague's edit was overwritten"

        third = engine.run("people")
        assert third.status == "succeeded" and third.counts.pending == 0, third
        assert [r["title"] for r in read_csv(tmp_path / "sheet" / "contacts.csv")] == \
            ["Head of Sales"]
        assert "TITLE:Head of Sales" in radicale.request("GET", card).text
        idle = engine.run("people")
        assert idle.counts.written == 0 and idle.status == "succeeded", idle
    finally:
        store.close()


class Unreachable(CardDavConnector):
    """The real connector, whose server cannot be reached for writes."""

    def write(self, object: str, ops: list[WriteOp]) -> list[WriteResult]:
        raise TransientError("the address book did not answer")


def unreachable(connection: ConnectionConfig) -> Connector:
    if connection.connector == "carddav":
        return Unreachable(connection)
    return registry.create(connection)


def deliver_as_a_worker(settings: Settings, store: Store) -> RunCounts:
    """What a worker's delivery job does (hub.jobs.actors): a context of its own, so a
    CardDAV connector that never read the address book."""
    ctx = FlowContext.build(settings, settings.flow("people"))
    counts = RunCounts()
    try:
        Deliverer(ctx, store, RunInfo(0, "people", "contact", "deliver"), counts,
                  "addressbook", []).deliver()
    finally:
        ctx.close()
    return counts


@pytest.mark.parametrize(("direction", "edit"), [
    ("two-way", "title"),  # refused: the next run reads it and the conflict policy settles it
    ("two-way", "url"),  # a property the mapping does not read: no conflict, and it is kept
    ("one-way", "title"),  # the sheet is the source of truth: it wins
])
def test_a_delivery_job_that_never_read_the_book_leaves_a_newer_edit_in_two_way_flows(
        radicale: Radicale, tmp_path: Path, direction: str, edit: str) -> None:
    book = radicale.addressbook()
    card = f"{book}bob.vcf"
    settings = people_flow(radicale, book, tmp_path, direction=direction)
    if direction == "two-way":
        radicale.put(card, bob("Engineer"), VCARD)
    else:  # the sheet is the source; the first run writes the card
        write_csv(tmp_path / "sheet" / "contacts.csv",
                  [["bob-1", "Bob", "Smith", "Engineer", "bob@example.com"]], COLUMNS)
    store = Store(settings.store_url)
    try:
        first = SyncEngine(settings, store).run("people")
        assert first.status == "succeeded", first
        rows = read_csv(tmp_path / "sheet" / "contacts.csv")
        assert [r["title"] for r in rows] == ["Engineer"]
        listing = radicale.request("PROPFIND", book, headers={"Depth": "1"}).text
        [href] = re.findall(r"<[^>]*href>([^<]+\.vcf)</", listing)

        # The sheet says Manager; the run cannot reach the address book, so the change stays
        # owed. Meanwhile a colleague saves the card with another title.
        write_csv(tmp_path / "sheet" / "contacts.csv",
                  [[r["id"], r["first_name"], r["last_name"], "Manager", r["email"]]
                   for r in rows], COLUMNS)
        second = SyncEngine(settings, store, connector_factory=unreachable).run("people")
        assert second.counts.pending == 1, second
        text = radicale.request("GET", href).text
        edited = (text.replace("TITLE:Engineer", "TITLE:Head of Sales") if edit == "title"
                  else text.replace("END:VCARD", "URL:https://example.com/bob\r\nEND:VCARD"))
        assert edited != text
        radicale.put(href, edited, VCARD)
        time.sleep(0.1)  # the owed delivery's back-off (at most 0.05 s) has passed

        counts = deliver_as_a_worker(settings, store)
        card_now = radicale.request("GET", href).text
        if direction == "one-way":
            assert counts.written == 1 and "TITLE:Manager" in card_now
            return
        if edit == "url":
            assert counts.written == 1 and "TITLE:Manager" in card_now
            assert "URL:https://example.com/bob" in card_now
            return
        assert counts.written == 0, counts
        assert "TITLE:Head of Sales" in card_now, "the colleague's edit was overwritten"

        third = SyncEngine(settings, store).run("people")
        assert third.status == "succeeded" and third.counts.pending == 0, third
        assert [r["title"] for r in read_csv(tmp_path / "sheet" / "contacts.csv")] == \
            ["Head of Sales"]
        assert "TITLE:Head of Sales" in radicale.request("GET", href).text
        assert deliver_as_a_worker(settings, store).written == 0
    finally:
        store.close()
