"""References by match key: a mailbox knows people only by address, a reminder is sent to one.

`contacts: {path: participants, reference: contact, by: email}` turns the addresses of a
message into canonical contact ids (creating a placeholder contact that owns the address
when nobody has it yet), and the contact that later arrives from the CRM with the same
address becomes that same record. On the way out, `by: email` writes the referenced
contact's address.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import text

from hub.config import loads
from hub.errors import MappingError
from hub.mapping import compile_mapping, parse_mapping
from hub.store import Store
from hub.sync.engine import SyncEngine
from tests.integration.helpers import contact, read_csv, write_csv

MESSAGE_MAPPING = """\
version: 1
connector: spreadsheet
entity: message
object: messages
id: id
fields:
  subject: subject
  message_id: message_id
  contacts: {path: participants, in: [{split: ";"}], reference: contact, by: email}
"""

INVOICE_OUT = """\
version: 1
connector: spreadsheet
entity: invoice
object: reminders
id: id
fields:
  number: number
  contact: {path: to, reference: contact, by: email}
"""


def _config(tmp: Path) -> str:
    for name, body in (("message_in.yaml", MESSAGE_MAPPING), ("invoice_out.yaml", INVOICE_OUT)):
        (tmp / name).write_text(body, encoding="utf-8")
    for side in ("mail", "crm", "books", "out"):
        (tmp / side).mkdir(exist_ok=True)
    return f"""
version: 1
store: sqlite:///{tmp / 'liaison.db'}
systems:
  mail: {{category: email, owner: Ops, connection: {{connector: spreadsheet, path: {tmp / 'mail'}}}}}
  crm: {{category: crm, owner: Sales, connection: {{connector: spreadsheet, path: {tmp / 'crm'}}}}}
  books: {{category: accounting, owner: Finance,
          connection: {{connector: spreadsheet, path: {tmp / 'books'}}}}}
  out: {{category: email, owner: Ops, connection: {{connector: spreadsheet, path: {tmp / 'out'}}}}}
flows:
  messages: {{entity: message, from: mail, to: out, mappings: {{mail: message_in.yaml}},
             mode: full}}
  contacts: {{entity: contact, from: crm, to: out, mode: full}}
  invoices: {{entity: invoice, from: books, to: out, mappings: {{out: invoice_out.yaml}},
             mode: full}}
"""


@pytest.fixture
def hub(tmp_path: Path):  # type: ignore[no-untyped-def]
    settings = loads(_config(tmp_path), file=str(tmp_path / "hub.yaml"))
    store = Store(settings.store_url)
    yield tmp_path, store, SyncEngine(settings, store)
    store.close()


def _records(store: Store, entity: str) -> list[tuple[str, bool, dict]]:
    with store.connect() as conn:
        rows = conn.execute(text("SELECT id, stub, data FROM records WHERE entity = :e"),
                            {"e": entity}).all()
    return [(r[0], bool(r[1]), json.loads(r[2])) for r in rows]


def test_message_addresses_become_contacts_that_the_crm_contact_then_fills(hub) -> None:  # type: ignore[no-untyped-def]
    tmp, store, engine = hub
    write_csv(tmp / "mail" / "messages.csv", [
        {"id": "m1", "subject": "Quote", "message_id": "<1@x>",
         "participants": "Person1@Example.com;person2@example.com"},
        {"id": "m2", "subject": "Re: Quote", "message_id": "<2@x>",
         "participants": "person1@example.com ; nobody-yet@example.com"},
    ], ["id", "subject", "message_id", "participants"])
    report = engine.run("messages")
    assert report.counts.dead_lettered == 0

    contacts = _records(store, "contact")
    assert len(contacts) == 3  # two spellings of person1 are one person
    assert all(stub for _, stub, _ in contacts)
    messages = {d["message_id"]: d for _, _, d in _records(store, "message")}
    assert len(messages["<1@x>"]["contacts"]) == 2
    shared = set(messages["<1@x>"]["contacts"]) & set(messages["<2@x>"]["contacts"])
    assert len(shared) == 1
    person1 = shared.pop()
    assert read_csv(tmp / "out" / "contacts.csv") == []  # placeholders are never delivered

    write_csv(tmp / "crm" / "contacts.csv", [contact(1), contact(2), contact(3)])
    engine.run("contacts")
    contacts = {cid: (stub, data) for cid, stub, data in _records(store, "contact")}
    assert len(contacts) == 4  # person1 and person2 filled their placeholders; person3 is new
    stub, data = contacts[person1]
    assert not stub and data["emails"][0]["address"] == "person1@example.com"
    assert sum(1 for s, _ in contacts.values() if s) == 1  # nobody-yet is still a placeholder
    delivered = read_csv(tmp / "out" / "contacts.csv")
    assert sorted(r["email"] for r in delivered) == [
        "person1@example.com", "person2@example.com", "person3@example.com"]


def test_an_outbound_reference_by_email_writes_the_contacts_address(hub) -> None:  # type: ignore[no-untyped-def]
    tmp, store, engine = hub
    write_csv(tmp / "crm" / "contacts.csv", [contact(7)])
    engine.run("contacts")
    write_csv(tmp / "books" / "invoices.csv", [
        {"id": "i1", "number": "INV-1", "contact_id": "c7", "currency": "EUR",
         "total_amount": "10.00"},
    ], ["id", "number", "contact_id", "currency", "total_amount"])
    # The books system names the contact by its own id; link it to the CRM contact first.
    (cid,) = [c for c, _, _ in _records(store, "contact")]
    with store.begin() as conn:
        store.upsert_links(conn, [{"system": "books", "entity": "contact", "external_id": "c7",
                                   "canonical_id": cid, "fingerprint": "",
                                   "updated_at": "2024-05-01T10:00:00Z"}])
    report = engine.run("invoices")
    assert report.counts.dead_lettered == 0
    (row,) = read_csv(tmp / "out" / "reminders.csv")
    assert row["number"] == "INV-1" and row["to"] == "person7@example.com"
    again = engine.run("invoices")
    assert again.counts.written == 0
    assert len(read_csv(tmp / "out" / "reminders.csv")) == 1


@pytest.mark.parametrize(("field", "expected"), [
    ("{path: to, by: email}", "add reference: <entity>"),
    ("{path: to, reference: contact, by: emial}", "did you mean 'email'?"),
    ("{path: to, reference: deal, by: email}", "deal has no match key 'email'"),
])
def test_a_bad_by_is_refused_with_words(field: str, expected: str, tmp_path: Path) -> None:
    body = INVOICE_OUT.replace("{path: to, reference: contact, by: email}", field)
    path = tmp_path / "m.yaml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(MappingError) as info:
        compile_mapping(parse_mapping(body, file=str(path)))
    assert expected in str(info.value)
    assert "m.yaml:8" in str(info.value)
