"""The activity roll-up: the newest message with a person becomes the contact's last activity.

Messages come from a spreadsheet (participants by email address), contacts from a CRM
spreadsheet; the contact flow delivers to a third spreadsheet whose mapping carries
`last_activity_at`. On SQLite and PostgreSQL (`store_url`), plus one end-to-end run with
the real imap connector against Dovecot and the HubSpot sandbox as the CRM.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.hubspot.sandbox import HubSpotSandbox
from hub.audit import AuditObserver
from hub.canonical import fingerprint
from hub.config import loads
from hub.store import RecordRow, Store
from hub.sync.engine import RunReport, SyncEngine
from hub.sync.replay import replay
from tests.integration.helpers import contact, read_csv, write_csv
from tests.servers.dovecot import Dovecot, dovecot  # noqa: F401 - the fixture

MESSAGES_IN = """\
version: 1
connector: spreadsheet
entity: message
object: messages
id: id
fields:
  subject: subject
  date: {path: date, in: [datetime]}
  contacts: {path: participants, in: [{split: ";"}], reference: contact, by: email}
"""

CONTACTS_OUT = """\
version: 1
extends: spreadsheet/contact
fields:
  last_activity_at: {path: last_activity_at, in: [datetime]}
"""

MESSAGE_FIELDS = ["id", "subject", "date", "participants"]


class Hub:
    """mail (messages) and crm (contacts) spreadsheets, delivered to `out`; `books` holds
    contacts of another flow, and a disabled flow also carries the CRM's contacts."""

    def __init__(self, tmp: Path, store_url: str) -> None:
        self.tmp = tmp
        for name, body in (("messages_in.yaml", MESSAGES_IN), ("contacts_out.yaml", CONTACTS_OUT)):
            (tmp / name).write_text(body, encoding="utf-8")
        for side in ("mail", "crm", "books", "out", "out2"):
            (tmp / side).mkdir(exist_ok=True)
        systems = "\n".join(
            f"  {s}: {{category: other, owner: Ops, connection: {{connector: spreadsheet, "
            f"path: {tmp / s}}}}}" for s in ("mail", "crm", "books", "out", "out2"))
        text = f"""
version: 1
store: {store_url}
systems:
{systems}
flows:
  messages: {{entity: message, from: mail, to: out, mappings: {{mail: messages_in.yaml}},
             mode: full}}
  contacts: {{entity: contact, from: crm, to: out, mappings: {{out: contacts_out.yaml}},
             mode: full}}
  book-contacts: {{entity: contact, from: books, to: out2, mode: full}}
  paused: {{entity: contact, from: crm, to: out2, mode: full, enabled: false}}
"""
        self.settings = loads(text, file=str(tmp / "hub.yaml"))
        self.store = Store(self.settings.store_url)
        self.engine = SyncEngine(self.settings, self.store,
                                 observers=[AuditObserver(self.store)])

    def run(self, flow: str, **kw: Any) -> RunReport:
        report = self.engine.run(flow, **kw)
        assert report.counts.dead_lettered == 0, report
        return report

    def messages(self, rows: list[dict[str, str]]) -> None:
        write_csv(self.tmp / "mail" / "messages.csv", rows, MESSAGE_FIELDS)

    def person(self, email: str) -> RecordRow:
        with self.store.connect() as conn:
            owners = self.store.match_lookup(conn, "contact", [("email", email)])
            cid = owners[("email", email)]
            return self.store.get_records(conn, [cid])[cid]

    def contact_events(self, run_id: int | None = None) -> list[dict[str, Any]]:
        with self.store.connect() as conn:
            rows = self.store.query_audit(conn, limit=10_000)
        return [{"id": r.canonical_id, "action": r.action, "system": r.system,
                 "external_id": r.external_id, "diff": json.loads(r.diff), "run": r.run_id}
                for r in reversed(rows) if r.entity == "contact"
                and not r.action.startswith("write.") and run_id in (None, r.run_id)]

    def audit_size(self) -> int:
        with self.store.connect() as conn:
            return len(self.store.query_audit(conn, limit=100_000))

    def owed(self, flow: str) -> int:
        with self.store.connect() as conn:
            return self.store.outbox_count(conn, flow)

    def out(self) -> dict[str, dict[str, str]]:
        return {r["email"]: r for r in read_csv(self.tmp / "out" / "contacts.csv")}


@pytest.fixture
def hub(store_url: str, tmp_path: Path) -> Iterator[Hub]:
    made = Hub(tmp_path, store_url)
    try:
        yield made
    finally:
        made.store.close()


def _msg(i: str, date: str, who: str) -> dict[str, str]:
    return {"id": i, "subject": f"Subject {i}", "date": date, "participants": who}


FIRST = [_msg("m1", "2024-10-01T10:00:00Z", "person1@example.com;Person2@Example.com"),
         _msg("m2", "2024-10-03T09:30:00Z", "person1@example.com"),
         _msg("m3", "2024-10-02T08:00:00Z", "nobody-yet@example.com")]


def test_newest_message_sets_last_activity_which_the_contact_flow_delivers(hub: Hub) -> None:
    write_csv(hub.tmp / "crm" / "contacts.csv", [contact(1), contact(2)])
    assert hub.run("contacts").counts.written == 2
    assert all(not r.get("last_activity_at") for r in hub.out().values())

    hub.messages(FIRST)
    mail = hub.run("messages")
    assert mail.counts.created == 3
    p1, p2 = hub.person("person1@example.com"), hub.person("person2@example.com")
    nobody = hub.person("nobody-yet@example.com")
    assert p1.data["last_activity_at"] == "2024-10-03T09:30:00Z"  # the newer of m1, m2
    assert p2.data["last_activity_at"] == "2024-10-01T10:00:00Z"
    assert nobody.stub and nobody.data == {"last_activity_at": "2024-10-02T08:00:00Z"}
    assert p1.sources["last_activity_at"] == ["mail", "2024-10-03T09:30:00Z", mail.run_id]
    assert p1.sources["first_name"][0] == "crm"  # the CRM's fields keep their provenance
    assert p1.fingerprint == fingerprint(p1.data)
    assert p1.data["first_name"] == "First1"

    # The audit trail: an update of each contact by the mail run, naming the message.
    events = {e["id"]: e for e in hub.contact_events(mail.run_id)}
    assert events[p1.id] == {"id": p1.id, "action": "update", "system": "mail",
                             "external_id": "m2", "run": mail.run_id,
                             "diff": {"last_activity_at": [None, "2024-10-03T09:30:00Z"]}}
    assert events[p2.id]["external_id"] == "m1"
    assert events[nobody.id]["action"] == "update"
    assert len(events) == 3

    # Owed to the contact flow that carries them; not the placeholder, not to a flow whose
    # sources do not hold them, not to a disabled flow.
    assert hub.owed("contacts") == 2
    assert hub.owed("book-contacts") == 0 and hub.owed("paused") == 0
    delivered = hub.run("contacts")
    assert delivered.counts.written == 2 and delivered.counts.read == 2
    out = hub.out()
    assert out["person1@example.com"]["last_activity_at"] == "2024-10-03T09:30:00Z"
    assert out["person2@example.com"]["last_activity_at"] == "2024-10-01T10:00:00Z"
    assert "nobody-yet@example.com" not in out

    # Re-running writes nothing.
    size = hub.audit_size()
    again = hub.run("messages")
    assert again.counts.unchanged == 3 and again.counts.created == again.counts.updated == 0
    assert hub.run("contacts").counts.written == 0
    assert hub.audit_size() == size and hub.owed("contacts") == 0

    # An older message does not move it back.
    hub.messages([*FIRST, _msg("m4", "2024-09-01T08:00:00Z", "person1@example.com")])
    older = hub.run("messages")
    assert older.counts.created == 1
    assert hub.person("person1@example.com").data["last_activity_at"] == "2024-10-03T09:30:00Z"
    assert hub.contact_events(older.run_id) == [] and hub.owed("contacts") == 0

    # A message whose date is corrected to a later one moves it forward.
    moved = [_msg("m1", "2024-10-05T07:00:00Z", "person1@example.com;person2@example.com"),
             *FIRST[1:], _msg("m4", "2024-09-01T08:00:00Z", "person1@example.com")]
    hub.messages(moved)
    later = hub.run("messages")
    assert later.counts.updated == 1
    events = {e["id"]: e for e in hub.contact_events(later.run_id)}
    assert events[p2.id]["diff"] == {
        "last_activity_at": ["2024-10-01T10:00:00Z", "2024-10-05T07:00:00Z"]}
    assert events[p1.id]["external_id"] == "m1"
    assert hub.run("contacts").counts.written == 2
    assert hub.out()["person1@example.com"]["last_activity_at"] == "2024-10-05T07:00:00Z"


def test_a_message_dated_in_the_future_is_not_used_and_the_run_says_so(hub: Hub) -> None:
    write_csv(hub.tmp / "crm" / "contacts.csv", [contact(1)])
    hub.run("contacts")
    hub.messages([_msg("m1", "2024-10-01T10:00:00Z", "person1@example.com"),
                  _msg("m9", "2099-01-01T00:00:00Z", "person1@example.com")])
    report = hub.run("messages")
    assert hub.person("person1@example.com").data["last_activity_at"] == "2024-10-01T10:00:00Z"
    (note,) = [n for n in report.notes if "ahead of this machine's clock" in n]
    assert "mail record m9" in note and "2099-01-01T00:00:00Z" in note
    assert "last_activity_at" in note


def test_a_dry_run_changes_nothing(hub: Hub) -> None:
    write_csv(hub.tmp / "crm" / "contacts.csv", [contact(1), contact(2)])
    hub.run("contacts")
    size = hub.audit_size()
    hub.messages(FIRST)
    report = hub.run("messages", dry_run=True)
    assert report.status == "dry-run" and report.counts.created == 3
    assert "last_activity_at" not in hub.person("person1@example.com").data
    assert hub.audit_size() == size
    assert hub.owed("contacts") == 0
    with hub.store.connect() as conn:
        assert hub.store.count_records(conn, "message") == 0
        assert hub.store.count_records(conn, "contact") == 2


def test_a_placeholder_keeps_its_activity_when_the_crm_contact_fills_it(hub: Hub) -> None:
    hub.messages([_msg("m1", "2024-10-01T10:00:00Z", "person3@example.com")])
    hub.run("messages")
    stub = hub.person("person3@example.com")
    assert stub.stub and stub.data == {"last_activity_at": "2024-10-01T10:00:00Z"}
    assert hub.owed("contacts") == 0  # a placeholder is never delivered

    write_csv(hub.tmp / "crm" / "contacts.csv", [contact(3)])
    filled = hub.run("contacts")
    assert filled.counts.created == 1
    person = hub.person("person3@example.com")
    assert person.id == stub.id and not person.stub
    assert person.data["first_name"] == "First3"
    assert person.data["last_activity_at"] == "2024-10-01T10:00:00Z"  # the CRM does not own it
    assert hub.out()["person3@example.com"]["last_activity_at"] == "2024-10-01T10:00:00Z"


def test_a_replayed_message_rolls_up_too(hub: Hub) -> None:
    write_csv(hub.tmp / "crm" / "contacts.csv", [contact(1)])
    hub.run("contacts")
    hub.messages([_msg("m1", "the first of October", "person1@example.com")])
    failed = hub.engine.run("messages")
    assert failed.counts.dead_lettered == 1
    with hub.store.connect() as conn:
        (dead,) = hub.store.list_dead_letters(conn)
    hub.messages([_msg("m1", "2024-10-01T10:00:00Z", "person1@example.com")])
    outcome = replay(hub.engine, dead.id)
    assert outcome.status == "replayed" and outcome.counts.created == 1
    person = hub.person("person1@example.com")
    assert person.data["last_activity_at"] == "2024-10-01T10:00:00Z"
    assert [e["external_id"] for e in hub.contact_events(outcome.run_id)] == ["m1"]
    assert hub.owed("contacts") == 1
    assert hub.run("contacts").counts.written == 1


# -- end to end: a real mailbox, HubSpot as the CRM ----------------------------------------

HUBSPOT_CONTACT = """\
version: 1
extends: hubspot/contact
fields:
  last_activity_at: {path: properties.liaison_last_activity, in: [datetime]}
"""

E2E_CONFIG = """\
version: 1
store: sqlite:///{tmp}/liaison.db
systems:
  mail:
    category: email
    owner: Sales (shared mailbox)
    connection:
      connector: imap
      host: 127.0.0.1
      port: {port}
      ca_file: {ca}
      user: {user}
      password: ${{IMAP_PASSWORD}}
      folders: [INBOX]
  archive: {{category: files, owner: Ops, connection: {{connector: spreadsheet, path: {tmp}/archive}}}}
  book: {{category: files, owner: Sales, connection: {{connector: spreadsheet, path: {tmp}/book}}}}
  hubspot:
    category: crm
    owner: Sales
    connection: {{connector: hubspot, base_url: "{hubspot}", token: "${{HUBSPOT_TOKEN}}"}}
flows:
  mail: {{entity: message, from: mail, to: archive}}
  contacts: {{entity: contact, from: book, to: hubspot, mappings: {{hubspot: hubspot_contact.yaml}}}}
"""


def test_a_mail_from_a_hubspot_contact_sets_its_last_activity_in_hubspot(
        dovecot: Dovecot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    with HubSpotSandbox(seed=3, count=0, companies=0,
                        extra_properties=("liaison_last_activity",)) as sandbox:
        answer = httpx.post(f"{sandbox.base_url}/crm/v3/objects/contacts", timeout=5,
                            headers={"Authorization": f"Bearer {sandbox.token}"},
                            json={"properties": {"email": "ana@example.com",
                                                 "firstname": "Ana", "lastname": "Silva"}})
        assert answer.status_code == 201, answer.text
        ana = str(answer.json()["id"])

        user = dovecot.new_user("sales")
        for d in ("archive", "book"):
            (tmp_path / d).mkdir()
        (tmp_path / "hubspot_contact.yaml").write_text(HUBSPOT_CONTACT, encoding="utf-8")
        text = E2E_CONFIG.format(tmp=tmp_path, port=dovecot.imaps_port, ca=dovecot.ca_file,
                                 user=user, hubspot=sandbox.base_url)
        monkeypatch.setenv("IMAP_PASSWORD", dovecot.PASSWORD)
        monkeypatch.setenv("HUBSPOT_TOKEN", sandbox.token)
        settings = loads(text, file=str(tmp_path / "hub.yaml"))
        store = Store(settings.store_url)
        try:
            engine = SyncEngine(settings, store, observers=[AuditObserver(store)])
            # The sales address book lists Ana, who is already a HubSpot contact.
            write_csv(tmp_path / "book" / "contacts.csv", [
                {"id": "b1", "first_name": "Ana", "last_name": "Silva",
                 "email": "ana@example.com", "title": "", "updated_at": ""}])
            first = engine.run("contacts")
            assert first.status == "succeeded", first
            assert [c["id"] for c in sandbox.records("contacts")] == [ana]  # no duplicate
            assert not sandbox.get("contacts", ana)["properties"].get("liaison_last_activity")

            dovecot.append(user, "INBOX", (
                b"From: Ana Silva <Ana@Example.com>\r\nTo: sales@ours.example\r\n"
                b"Subject: Quote\r\nMessage-ID: <q1@example.com>\r\n"
                b"Date: Tue, 01 Oct 2024 12:00:00 +0200\r\n\r\nPlease send the quote.\r\n"
            ))
            mail = engine.run("mail")
            assert mail.status == "succeeded", mail
            assert mail.counts.created == 1

            delivered = engine.run("contacts")
            assert delivered.status == "succeeded", delivered
            assert delivered.counts.written == 1
            props = sandbox.get("contacts", ana)["properties"]
            assert props["liaison_last_activity"] == "2024-10-01T10:00:00Z"
            assert props["email"] == "ana@example.com"
            assert len(sandbox.records("contacts")) == 1

            again = engine.run("contacts")
            assert again.counts.written == 0
        finally:
            store.close()
