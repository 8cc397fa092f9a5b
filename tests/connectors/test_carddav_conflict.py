"""A concurrent edit through the engine: a card changed on the server after a two-way run read
it is not overwritten by that run's delivery; the delivery stays owed, and the next run reads
the new version, settles it with the flow's conflict policy and delivers the outcome."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from connectors.carddav.connector import CardDavConnector
from hub import registry
from hub.config import loads
from hub.config.model import ConnectionConfig
from hub.connector import Connector, Cursor, Page
from hub.store import Store
from hub.sync.engine import SyncEngine
from tests.connectors.radicale_server import PASSWORD_ENV, Radicale, radicale_fixture  # noqa: F401
from tests.e2e.conftest import read_csv, write_csv

VCARD = "text/vcard; charset=utf-8"
COLUMNS = ["id", "first_name", "last_name", "title", "email"]


def bob(title: str) -> str:
    return ("BEGIN:VCARD\r\nVERSION:3.0\r\nUID:bob\r\nFN:Bob Smith\r\nN:Smith;Bob;;;\r\n"
            f"EMAIL;TYPE=work:bob@example.com\r\nTITLE:{title}\r\nEND:VCARD\r\n")


def test_a_card_edited_while_a_run_is_under_way_is_settled_by_the_next_run(
        radicale: Radicale, tmp_path: Path) -> None:
    book = radicale.addressbook()
    card = f"{book}bob.vcf"
    radicale.put(card, bob("Engineer"), VCARD)
    (tmp_path / "sheet").mkdir()
    settings = loads(f"""
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
    from: addressbook
    to: sheet
    direction: two-way
    conflict: source-wins
""", file=str(tmp_path / "hub.yaml"))
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
