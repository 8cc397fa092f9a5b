"""The smtp connector against the shipped conformance suite, with a real SMTP server.

SMTP cannot read back what it sent, so the suite sees the system through `observe`: the
messages the test server received. An email cannot be changed once sent nor looked up by
id, so `change` changes nothing and `updates_check_existence=False`: the suite then checks
that an update (of a known or unknown Message-ID) keeps its id and sends nothing, and that
a repeated create (a retried delivery) arrives once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from connectors.smtp.connector import SmtpConnector
from hub.config.model import ConnectionConfig
from hub.connector import Connector, NativeRecord
from hub.testing import conformance_suite
from tests.connectors.smtp_server import SmtpServer


@pytest.fixture
def server() -> Iterator[SmtpServer]:
    """An SMTP server recording what arrives."""
    with SmtpServer() as s:
        yield s


@pytest.fixture
def mailer(server: SmtpServer, tmp_path: Path) -> SmtpConnector:
    """An smtp connector pointed at the server, with its sent log in tmp_path."""
    return SmtpConnector(ConnectionConfig(name="mailer", connector="smtp",
                                          settings=server.settings(), base_dir=tmp_path))


def new_message(i: int) -> NativeRecord:
    return {"to": f"p{i}@example.com", "subject": f"Hello {i}", "text": f"Message {i}"}


def received(server: SmtpServer) -> list[NativeRecord]:
    """The messages the server received, as the records that were written (the body
    without the line break an email's text always ends with)."""
    return [{"message_id": m.message_id, "to": str(m.message["To"]),
             "subject": str(m.message["Subject"]), "text": m.text().rstrip("\n")}
            for m in server.messages]


@pytest.fixture
def observed(server: SmtpServer) -> Callable[[Connector], list[NativeRecord]]:
    """The suite's view of the system: what the server received."""
    return lambda _connector: received(server)


TestSmtpMessages = conformance_suite(
    "mailer", entity="message", new_record=new_message,
    change=lambda r: r,  # a sent email cannot be changed: an update must leave it as it is
    id_of=lambda r: str(r["message_id"]), observe="observed",
    updates_check_existence=False, upserts_by_match=True)
