"""Cross-vendor scenario through the sync engine, over loopback HTTP to three sandboxes.

"A company and its contacts created in HubSpot reach Xero as a contact and Trello as a
project card through the canonical model, and an invoice paid in Xero updates the deal
stage in HubSpot, with no duplicate anywhere after repeated runs."

Flows (one config, four flows, run in this order):
  companies         company  crm (HubSpot) -> books (Xero Contacts) + board (Trello cards in
                             the "Customers" list of the customers board)
  contacts          contact  crm -> board (cards in the "Contacts" list, named by email)
  deals             deal     crm -> books (an AUTHORISED sales invoice per deal: Reference =
                             deal name, one line for the amount, to the company's Xero contact)
  invoice-payments  deal     books -> crm (PAID sales invoices read as won deals: stage
                             closedwon). The invoice is the same canonical deal as the HubSpot
                             deal through the link Liaison stored when it created the invoice:
                             canonical deals have no match key (see the report).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.hubspot.sandbox import HubSpotSandbox
from connectors.trello.sandbox import TrelloSandbox
from connectors.xero.sandbox import XeroSandbox
from hub.audit import AuditObserver
from hub.config import loads
from hub.store import Store
from hub.sync.engine import RunReport, SyncEngine

FIXTURES = Path(__file__).parent / "fixtures"
FLOWS = ("companies", "contacts", "deals", "invoice-payments")
DEAL_NAME = "Acme Robotics - Annual licence"
DEBUG = False


class Scenario:
    """Three sandboxes, a config pointing at them, an engine over a SQLite store."""

    def __init__(self, tmp: Path, hubspot: HubSpotSandbox, xero: XeroSandbox,
                 trello: TrelloSandbox, monkeypatch: pytest.MonkeyPatch) -> None:
        self.hubspot, self.xero, self.trello = hubspot, xero, trello
        monkeypatch.setenv("XV_HUBSPOT_TOKEN", hubspot.token)
        monkeypatch.setenv("XV_XERO_CLIENT_ID", xero.client_id)
        monkeypatch.setenv("XV_XERO_CLIENT_SECRET", xero.client_secret)
        monkeypatch.setenv("XV_XERO_REFRESH_TOKEN", xero.refresh_token)
        monkeypatch.setenv("XV_TRELLO_KEY", trello.api_key)
        monkeypatch.setenv("XV_TRELLO_TOKEN", trello.token)
        self.board = self._trello_post("/boards", name="Customers")["id"]
        for name in ("Customers", "Contacts"):
            self._trello_post("/lists", name=name, idBoard=self.board)
        # The board is the organisation's own: overrides name it, the fixtures do the rest.
        (tmp / "customer_card.yaml").write_text(
            f"extends: {FIXTURES / 'trello_customer_card.yaml'}\n"
            f"constants: {{idBoard: \"{self.board}\", list.name: Customers}}\n")
        (tmp / "contact_card.yaml").write_text(
            f"extends: {FIXTURES / 'trello_contact_card.yaml'}\n"
            f"constants: {{idBoard: \"{self.board}\", list.name: Contacts}}\n")
        text = f"""
version: 1
store: sqlite:///{tmp / 'liaison.db'}
systems:
  crm:
    category: crm
    owner: Anna
    connection:
      connector: hubspot
      base_url: "{hubspot.base_url}"
      token: "${{XV_HUBSPOT_TOKEN}}"
      search_overlap_ms: 0
  books:
    category: accounting
    owner: Ben
    connection:
      connector: xero
      base_url: "{xero.base_url}"
      token_url: "{xero.token_url}"
      tenant_id: "{xero.tenant_id}"
      client_id: "${{XV_XERO_CLIENT_ID}}"
      client_secret: "${{XV_XERO_CLIENT_SECRET}}"
      refresh_token: "${{XV_XERO_REFRESH_TOKEN}}"
  board:
    category: project
    owner: Cleo
    connection:
      connector: trello
      base_url: "{trello.base_url}"
      api_key: "${{XV_TRELLO_KEY}}"
      token: "${{XV_TRELLO_TOKEN}}"
      board_ids: ["{self.board}"]
flows:
  companies:
    entity: company
    from: crm
    to: [books, board]
    mappings: {{board: customer_card.yaml}}
  contacts:
    entity: contact
    from: crm
    to: board
    mappings: {{board: contact_card.yaml}}
  deals:
    entity: deal
    from: crm
    to: books
    mappings: {{books: "{FIXTURES / 'xero_deal_invoice.yaml'}"}}
  invoice-payments:
    entity: deal
    from: books
    to: crm
    mappings: {{books: "{FIXTURES / 'xero_paid_invoice_deal.yaml'}"}}
"""
        (tmp / "hub.yaml").write_text(text, encoding="utf-8")
        self.settings = loads(text, file=str(tmp / "hub.yaml"))
        self.store = Store(self.settings.store_url)
        self.engine = SyncEngine(self.settings, self.store,
                                 observers=[AuditObserver(self.store)])

    def _trello_post(self, path: str, **params: str) -> dict[str, Any]:
        answer = httpx.post(f"{self.trello.base_url}{path}", timeout=5,
                            params={"key": self.trello.api_key, "token": self.trello.token,
                                    **params})
        answer.raise_for_status()
        body: dict[str, Any] = answer.json()
        return body

    def run(self, flow: str) -> RunReport:
        """Run one flow; it must succeed and account for every record it read."""
        report = self.engine.run(flow)
        if DEBUG:
            print(flow, report.status, report.counts)
        assert report.status == "succeeded", (flow, report.error, report.counts)
        assert report.counts.balanced(), (flow, report.counts)
        return report

    def run_all(self) -> dict[str, RunReport]:
        """Every flow once, in order."""
        return {flow: self.run(flow) for flow in FLOWS}

    def cards(self, list_name: str) -> list[dict[str, Any]]:
        """Open cards of one list of the customers board."""
        lst = self.trello.list_named(self.board, list_name)
        return [c for c in self.trello.cards.values()
                if c["idList"] == lst["id"] and not c["closed"]]

    def dead_letters(self) -> list[Any]:
        """Open dead letters of every flow."""
        with self.store.connect() as conn:
            return list(self.store.list_dead_letters(conn))


@pytest.fixture
def scenario(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Scenario]:
    with HubSpotSandbox(seed=11, count=0, companies=0) as hubspot, \
            XeroSandbox(seed=11, count=0, minute_limit=100_000) as xero, \
            TrelloSandbox(seed=11, count=0, boards=0) as trello:
        made = Scenario(tmp_path, hubspot, xero, trello, monkeypatch)
        try:
            yield made
        finally:
            made.store.close()


def hubspot_create(sandbox: HubSpotSandbox, object_type: str, properties: dict[str, str],
                   associations: Sequence[tuple[str, int]] = ()) -> str:
    """Create a record through HubSpot's API, as a HubSpot user's app would."""
    body: dict[str, Any] = {"properties": properties, "associations": [
        {"to": {"id": to}, "types": [{"associationCategory": "HUBSPOT_DEFINED",
                                      "associationTypeId": type_id}]}
        for to, type_id in associations]}
    answer = httpx.post(f"{sandbox.base_url}/crm/v3/objects/{object_type}", json=body,
                        headers={"Authorization": f"Bearer {sandbox.token}"}, timeout=5)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def seed_crm(hubspot: HubSpotSandbox) -> dict[str, str]:
    """Two customers in HubSpot: Acme with two people and a deal, Birch with one person."""
    acme = hubspot_create(hubspot, "companies", {
        "name": "Acme Robotics", "domain": "acme-robotics.example",
        "website": "https://www.acme-robotics.example",
        "description": "Warehouse robots"})
    birch = hubspot_create(hubspot, "companies", {
        "name": "Birch Bakery", "domain": "birchbakery.example", "description": "Bread"})
    ada = hubspot_create(hubspot, "contacts", {
        "email": "ada@acme-robotics.example", "firstname": "Ada", "lastname": "Lovelace",
        "jobtitle": "CEO"}, [(acme, 279)])
    alan = hubspot_create(hubspot, "contacts", {
        "email": "alan@acme-robotics.example", "firstname": "Alan", "lastname": "Turing",
        "jobtitle": "Head of Procurement"}, [(acme, 279)])
    hubspot_create(hubspot, "contacts", {
        "email": "bea@birchbakery.example", "firstname": "Bea", "lastname": "Birch",
        "jobtitle": "Owner"}, [(birch, 279)])
    deal = hubspot_create(hubspot, "deals", {
        "dealname": DEAL_NAME, "amount": "12000", "deal_currency_code": "USD",
        "dealstage": "contractsent", "pipeline": "default",
        "closedate": "2026-12-31", "description": "Fleet licence, 12 months"},
        [(acme, 5), (ada, 3), (alan, 3)])
    return {"acme": acme, "birch": birch, "ada": ada, "alan": alan, "deal": deal}


def no_duplicates(values: list[str]) -> bool:
    return all(n == 1 for n in Counter(values).values())


def test_company_contacts_and_paid_invoice_cross_hubspot_xero_trello(
        scenario: Scenario) -> None:
    hubspot, xero = scenario.hubspot, scenario.xero
    ids = seed_crm(hubspot)

    # -- first round: HubSpot's customers reach Xero and Trello, the deal becomes an invoice
    first = scenario.run_all()
    assert first["companies"].counts.created == 2
    assert first["companies"].counts.written == 4  # 2 Xero contacts + 2 Trello cards
    assert first["contacts"].counts.written == 3
    assert first["deals"].counts.written == 1
    assert first["invoice-payments"].counts.skipped == 1  # unpaid: says nothing yet
    assert first["invoice-payments"].counts.written == 0

    contacts = {c["Name"]: c for c in xero.records("Contacts")}
    assert sorted(contacts) == ["Acme Robotics", "Birch Bakery"]
    [invoice] = xero.records("Invoices")
    assert invoice["Type"] == "ACCREC" and invoice["Status"] == "AUTHORISED"
    assert invoice["Reference"] == DEAL_NAME
    assert invoice["Contact"]["ContactID"] == contacts["Acme Robotics"]["ContactID"]
    assert invoice["CurrencyCode"] == "USD" and float(invoice["Total"]) == 12000.0
    assert contacts["Acme Robotics"]["IsCustomer"] is True  # Xero derives it from the invoice

    customers = scenario.cards("Customers")
    assert sorted(c["name"] for c in customers) == ["Acme Robotics", "Birch Bakery"]
    acme_card = next(c for c in customers if c["name"] == "Acme Robotics")
    assert acme_card["desc"].startswith("Warehouse robots")  # + Liaison's [liaison:id]
    people = scenario.cards("Contacts")
    assert sorted(c["name"] for c in people) == [
        "ada@acme-robotics.example", "alan@acme-robotics.example", "bea@birchbakery.example"]
    ada_card = next(c for c in people if c["name"].startswith("ada@"))
    assert ada_card["desc"].startswith("CEO")
    assert len(scenario.trello.cards) == 5

    # The canonical model holds one record per real thing, linked to every copy.
    with scenario.store.connect() as conn:
        assert scenario.store.count_records(conn, "company") == 2
        assert scenario.store.count_records(conn, "contact") == 3
        assert scenario.store.count_records(conn, "deal") == 1

    # -- the invoice is paid in Xero (a payment for the whole amount due)
    xero.create("Payments", {"Invoice": {"InvoiceID": invoice["InvoiceID"]},
                             "Account": {"Code": "090"}, "Amount": invoice["AmountDue"],
                             "Date": "2026-11-20"})
    assert xero.get("Invoices", invoice["InvoiceID"])["Status"] == "PAID"
    paid = scenario.run("invoice-payments")
    assert paid.counts.updated == 1 and paid.counts.created == 0
    assert paid.counts.written == 1
    deal = hubspot.get("deals", ids["deal"])["properties"]
    assert deal["dealstage"] == "closedwon"
    # nothing else about the deal changed, and it is still the only one
    assert deal["dealname"] == DEAL_NAME and float(deal["amount"]) == 12000.0
    assert len(hubspot.records("deals")) == 1
    assert hubspot.associations("deals", ids["deal"], "companies") == [ids["acme"]]
    assert sorted(hubspot.associations("deals", ids["deal"], "contacts")) == sorted(
        [ids["ada"], ids["alan"]])

    # -- three more rounds of every flow: nothing is written, nothing is duplicated
    for _ in range(3):
        again = scenario.run_all()
        written = {flow: r.counts.written for flow, r in again.items()}
        assert written == dict.fromkeys(FLOWS, 0), written
        assert all(r.counts.created == 0 for r in again.values())

    assert scenario.dead_letters() == []
    assert len(hubspot.records("companies")) == 2
    assert len(hubspot.records("contacts")) == 3
    assert len(hubspot.records("deals")) == 1
    assert hubspot.get("deals", ids["deal"])["properties"]["dealstage"] == "closedwon"
    assert no_duplicates([c["Name"] for c in xero.records("Contacts")])
    assert len(xero.records("Contacts")) == 2
    assert len(xero.records("Invoices")) == 1 and len(xero.records("Payments")) == 1
    assert len(scenario.trello.cards) == 5
    assert no_duplicates([c["name"] for c in scenario.trello.cards.values()])
    with scenario.store.connect() as conn:
        assert scenario.store.count_records(conn, "company") == 2
        assert scenario.store.count_records(conn, "contact") == 3
        assert scenario.store.count_records(conn, "deal") == 1
        assert scenario.store.outbox_count(conn) == 0
    assert scenario.store.verify_audit().ok
