"""The imap connector passes the shipped conformance suite against a real Dovecot.

IMAP is read-only here, so the suite seeds the mailbox with APPEND (its `seed` hook) and
skips the write tests; each test gets a new, empty mailbox.
"""

from __future__ import annotations

import imaplib
import ssl
from pathlib import Path

import pytest

from connectors.imap.connector import ImapConnector
from hub.config.model import ConnectionConfig
from hub.connector import Connector, NativeRecord
from hub.testing import conformance_suite
from tests.servers.dovecot import Dovecot, append, dovecot  # noqa: F401 - the fixture


@pytest.fixture
def imap(dovecot: Dovecot) -> ImapConnector:  # noqa: F811 - the fixture imported above
    """A connector on a fresh mailbox."""
    user = dovecot.new_user("conf")
    return ImapConnector(ConnectionConfig(name="mail", connector="imap",
                                          settings=dovecot.settings(user), base_dir=Path(".")))


def new_message(i: int) -> NativeRecord:
    return {"subject": f"Order {i}", "from": f"buyer{i}@example.com",
            "message_id": f"<order-{i}@example.com>"}


def seed(connector: Connector, records: list[NativeRecord]) -> list[str]:
    """APPEND each record as a message to INBOX; the ids the connector will read them as."""
    settings = connector.connection.settings  # type: ignore[attr-defined]
    ctx = ssl.create_default_context(cafile=settings["ca_file"])
    with imaplib.IMAP4_SSL(settings["host"], settings["port"], ssl_context=ctx,
                           timeout=15) as session:
        session.login(settings["user"], settings["password"])
        ids = []
        for record in records:
            raw = (f"From: {record['from']}\r\nTo: shop@example.com\r\n"
                   f"Subject: {record['subject']}\r\nMessage-ID: {record['message_id']}\r\n"
                   "Date: Mon, 6 May 2024 09:00:00 +0000\r\n\r\nPlease send it.\r\n").encode()
            uid = append(session, "INBOX", raw)
            _typ, data = session.status("INBOX", "(UIDVALIDITY)")
            validity = data[0].split(b"UIDVALIDITY ")[1].rstrip(b")").decode()
            ids.append(f"INBOX:{validity}:{uid}")
    return ids


TestImapMessages = conformance_suite(
    "imap", entity="message", new_record=new_message, change=lambda r: r,
    id_of=lambda r: r["id"], seed_count=7, page_size=3, seed=seed)
