"""`hub sync` of overdue-invoice reminders from a spreadsheet to an SMTP server, end to end.

The `hub` command runs as a real process (tests/e2e's run_hub); the SMTP server is aiosmtpd
on loopback in this process, recording what arrives. The books spreadsheet holds contacts
and invoices; the contacts flow gives the store the contacts (and their email addresses),
the reminders flow sends one email per overdue invoice through mappings/smtp/
invoice_reminder.yaml, whose recipient is the invoice's contact `by: email`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from connectors.smtp.connector import SmtpConnector
from hub.config import loads
from hub.config.model import ConnectionConfig
from hub.connector import WriteResult
from hub.store import Store
from hub.sync.engine import SyncEngine
from tests.connectors.smtp_server import SmtpServer
from tests.e2e.conftest import CONTACT_FIELDS, Result, hub_env, invoke, run_hub, write_csv

ROOT = Path(__file__).resolve().parents[2]
INVOICE_FIELDS = ["id", "number", "status", "contact_id", "issue_date", "due_date",
                  "currency", "total_amount", "balance", "memo"]
CONTACTS = [["c1", "Ada", "Lovelace", "ada@example.com", ""],
            ["c2", "Bob", "Smith", "bob@example.com", ""],
            ["c3", "Cy", "Young", "cy@example.com", ""]]
INVOICES = [
    # overdue and open: a reminder
    ["i1", "INV-1", "open", "c1", "2024-02-01", "2024-03-01", "EUR", "120.00", "120.00", ""],
    # paid: none
    ["i2", "INV-2", "paid", "c2", "2024-02-01", "2024-03-01", "EUR", "80.00", "0", ""],
    # not due yet (far in the future, so `due_date lt today` stays false): none
    ["i3", "INV-3", "open", "c3", "2024-05-01", "2099-09-01", "EUR", "50.00", "50.00", ""],
    # overdue and part paid: a reminder
    ["i4", "INV-4", "partially_paid", "c2", "2024-03-01", "2024-05-15", "EUR", "300.00",
     "100.00", "PO 77"],
]
CONFIG = """\
version: 1
systems:
  books:
    category: accounting
    owner: Chloe (Finance)
    connection: {{connector: spreadsheet, path: ./books}}
  addressbook:
    category: files
    owner: Ops
    connection: {{connector: spreadsheet, path: ./addressbook}}
  mailer:
    category: email
    owner: Chloe (Finance)
    connection:
      connector: smtp
      host: 127.0.0.1
      port: {port}
      security: none
      from: Accounts <accounts@example.com>
      timeout: 10
flows:
  contacts:
    entity: contact
    from: books
    to: addressbook
    mode: full
  reminders:
    entity: invoice
    from: books
    to: mailer
    mode: full
    mappings: {{mailer: smtp/invoice_reminder}}
    # Which invoices get a reminder: open or part paid, and due before today.
    filter:
      all:
        - {{path: status, in: [open, partially_paid]}}
        - {{path: due_date, lt: today}}
"""


class Books:
    """A workspace: hub.yaml, the books spreadsheet, and `hub` run in a subprocess."""

    def __init__(self, root: Path, server: SmtpServer) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        (root / "addressbook").mkdir(exist_ok=True)
        self.config = root / "hub.yaml"
        self.config.write_text(CONFIG.format(port=server.port), encoding="utf-8")
        write_csv(root / "books" / "contacts.csv", CONTACTS, CONTACT_FIELDS)
        self.invoices(INVOICES)

    def invoices(self, rows: list[list[str]]) -> None:
        """Replace books/invoices.csv."""
        write_csv(self.root / "books" / "invoices.csv", rows, INVOICE_FIELDS)

    def hub(self, *args: str) -> Result:
        """`hub -c hub.yaml ARGS` as a process, exactly as an ops person runs it."""
        return run_hub("-c", str(self.config), *args, cwd=self.root)

    def cli(self, *args: str) -> Result:
        """The same command in this process (for set-up steps and listings: a process start
        costs seconds and shows nothing more there)."""
        return invoke("-c", str(self.config), *args)

    def sync_all(self) -> Result:
        """Both flows, contacts first (the reminders need their addresses); the reminders
        run is a `hub` process."""
        contacts = self.cli("sync", "contacts")
        assert contacts.code == 0, str(contacts)
        return self.hub("sync", "reminders", "--json")

    def dead_letters(self) -> list[dict[str, Any]]:
        """Open dead letters."""
        listed = self.cli("dlq", "list", "--json")
        assert listed.code == 0, str(listed)
        rows: list[dict[str, Any]] = json.loads(listed.out)
        return rows


@pytest.fixture
def server() -> Iterator[SmtpServer]:
    """The company's mail server."""
    with SmtpServer() as s:
        yield s


@pytest.fixture
def books(tmp_path: Path, server: SmtpServer) -> Books:
    """A workspace whose mailer points at `server`."""
    return Books(tmp_path / "hub", server)


def counts(result: Result) -> dict[str, int]:
    data: dict[str, Any] = json.loads(result.out)
    c: dict[str, int] = data["counts"]
    return c


def reminders(server: SmtpServer) -> dict[str, tuple[str, ...]]:
    """Subject -> recipients of every message that arrived (fails on a duplicate)."""
    subjects = [str(m.message["Subject"]) for m in server.messages]
    assert len(subjects) == len(set(subjects)), f"a reminder arrived twice: {subjects}"
    return {str(m.message["Subject"]): m.rcpt_tos for m in server.messages}


def test_overdue_invoices_get_one_reminder_across_runs(books: Books,
                                                       server: SmtpServer) -> None:
    first = books.sync_all()
    assert first.code == 0, str(first)
    assert reminders(server) == {
        "Reminder: invoice INV-1 is overdue": ("ada@example.com",),
        "Reminder: invoice INV-4 is overdue": ("bob@example.com",),
    }
    inv4 = next(m for m in server.messages if "INV-4" in str(m.message["Subject"]))
    assert "was due on 2024-05-15" in inv4.text() and "100.00 EUR" in inv4.text()
    assert "PO 77" in inv4.text() and str(inv4.message["From"]) == \
        "Accounts <accounts@example.com>"
    c = counts(first)
    assert (c["read"], c["created"], c["skipped"], c["written"]) == (4, 2, 2, 2)

    second = books.hub("sync", "reminders", "--json")
    assert second.code == 0, str(second)
    assert counts(second)["written"] == 0
    assert len(server.messages) == 2

    # A payment lowers INV-4's balance: the invoice changed, but an email is not resent.
    changed = [row[:] for row in INVOICES]
    changed[3][8] = "40.00"
    books.invoices(changed)
    third = books.hub("sync", "reminders", "--json")
    assert third.code == 0, str(third)
    assert counts(third)["updated"] == 1
    assert len(server.messages) == 2
    assert books.dead_letters() == []


def test_an_invoice_whose_contact_has_no_address_is_dead_lettered_with_the_reason(
        books: Books, server: SmtpServer) -> None:
    books.invoices(INVOICES + [["i5", "INV-5", "open", "c9", "2024-01-01", "2024-02-01",
                                "EUR", "10.00", "10.00", ""]])
    run = books.sync_all()
    assert run.code == 1, str(run)
    assert len(server.messages) == 2  # the others still went out
    dead, = books.dead_letters()
    assert dead["system"] == "mailer" and "to: no recipient" in dead["error"]


def _kill_hub_at_first_message(books: Books, server: SmtpServer) -> None:
    """Run `hub sync reminders`; the server kills it once the first message has fully
    arrived and before answering 250: the sender never learns it was accepted."""
    ready = threading.Event()
    pid: list[int] = []

    def kill(_got: Any) -> None:
        ready.wait(30)
        if pid:
            os.kill(pid[0], signal.SIGKILL)
        server.recorder.on_data = None

    server.recorder.on_data = kill
    proc = subprocess.Popen([sys.executable, "-m", "hub.cli", "-c", str(books.config), "sync",
                             "reminders"], cwd=books.root, env=hub_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pid.append(proc.pid)
    ready.set()
    assert proc.wait(timeout=60) == -signal.SIGKILL


def test_a_sync_killed_mid_send_never_sends_a_duplicate(books: Books,
                                                        server: SmtpServer) -> None:
    assert books.cli("sync", "contacts").code == 0
    _kill_hub_at_first_message(books, server)
    assert len(server.messages) == 1
    cut_off = server.messages[0].message_id

    again = books.hub("sync", "reminders")
    assert again.code == 1, str(again)
    assert len(reminders(server)) == 2, "the other reminder is sent, the cut-off one not again"
    dead, = books.dead_letters()
    assert "may have arrived" in dead["error"] and cut_off in dead["error"]
    command = dead["error"].split("then run: ")[1].split(", and replay")[0]
    assert command.startswith("python -m connectors.smtp.sentlog ")

    # The operator finds it in the customer's mailbox, says so, and replays the record.
    settle = subprocess.run(command.replace("sent|unsent", "sent"), shell=True, cwd=ROOT,
                            capture_output=True, text=True, timeout=60, check=False)
    assert settle.returncode == 0, settle.stderr
    replay = books.cli("dlq", "replay", str(dead["id"]))
    assert replay.code == 0, str(replay)
    assert books.dead_letters() == []
    final = books.cli("sync", "reminders", "--json")
    assert final.code == 0 and counts(final)["written"] == 0, str(final)
    assert len(reminders(server)) == 2


class _Crash(BaseException):
    """The process dies: nothing after it runs (not an Exception, so nothing catches it)."""


class _DiesAfterSending(SmtpConnector):
    """Sends for real, then 'dies' before the engine can store the links."""

    def write(self, object: str, ops: Any) -> list[WriteResult]:
        super().write(object, ops)
        raise _Crash


def test_dying_after_the_server_accepted_but_before_the_link_is_stored(
        books: Books, server: SmtpServer) -> None:
    settings = loads(books.config.read_text(encoding="utf-8"), file=str(books.config))
    store = Store(settings.store_url)
    try:
        def factory(conn: ConnectionConfig) -> Any:
            if conn.connector == "smtp":
                return _DiesAfterSending(conn)
            from hub import registry
            return registry.create(conn)

        SyncEngine(settings, store).run("contacts")
        with pytest.raises(_Crash):
            SyncEngine(settings, store, connector_factory=factory).run("reminders")
        assert len(server.messages) == 2
    finally:
        store.close()
    # The next run (a new process) owes both deliveries again: they are recorded, not sent.
    rerun = books.hub("sync", "reminders", "--json")
    assert rerun.code == 0, str(rerun)
    assert counts(rerun)["written"] == 2
    assert len(reminders(server)) == 2
    assert books.cli("sync", "reminders").code == 0
    assert len(server.messages) == 2


def test_hub_check_and_connectors_list_the_smtp_connection(books: Books) -> None:
    check = books.cli("check")
    assert check.code == 0, str(check)
    listed = books.cli("connectors")
    assert listed.code == 0 and "smtp" in listed.out


def test_a_password_written_in_the_config_is_refused(books: Books) -> None:
    text = books.config.read_text(encoding="utf-8")
    books.config.write_text(text.replace("security: none", "security: none\n      user: u\n"
                                         "      password: hunter2"), encoding="utf-8")
    check = books.cli("check")
    assert check.code == 2, str(check)
    assert "password" in check.err and "environment reference" in check.err
    assert "hunter2" not in check.text
