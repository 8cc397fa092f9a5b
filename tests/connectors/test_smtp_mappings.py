"""The default smtp mappings: canonical records become native records the connector sends."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from connectors.smtp.connector import SmtpConnector
from hub.canonical.validate import validate
from hub.config.model import ConnectionConfig
from hub.connector import WriteOp
from hub.mapping import CompiledMapping, compile_mapping, load_mapping, reference_namespace
from tests.connectors.smtp_server import SmtpServer


@pytest.fixture
def server() -> Iterator[SmtpServer]:
    """An SMTP server recording what arrives."""
    with SmtpServer() as s:
        yield s


@pytest.fixture
def mailer(server: SmtpServer, tmp_path: Path) -> Iterator[SmtpConnector]:
    """An smtp connector for the server."""
    with SmtpConnector(ConnectionConfig(name="mailer", connector="smtp", base_dir=tmp_path,
                                        settings=server.settings())) as c:
        yield c


def mapping(name: str) -> CompiledMapping:
    return compile_mapping(load_mapping(f"smtp/{name}"))


MESSAGE: dict[str, Any] = {
    "subject": "Your quote", "from": {"address": "sales@example.com", "name": "Sales"},
    "to": [{"address": "ana@example.com", "name": "Ana Silva"}],
    "cc": [{"address": "boss@example.com", "name": None}],
    "in_reply_to": "<q1@example.com>", "references": ["<q1@example.com>"],
    "custom": {"body": "Here it is.\n", "html": "<p>Here it is.</p>"},
}


def test_a_canonical_message_is_sent_as_it_says(mailer: SmtpConnector,
                                                server: SmtpServer) -> None:
    validate("message", MESSAGE)
    m = mapping("message")
    native = m.outbound(MESSAGE)
    result, = mailer.write(m.object, [WriteOp("create", "k", native, canonical_id="msg-1")])
    assert result.ok, result.error
    got, = server.messages
    msg = got.message
    assert str(msg["Subject"]) == "Your quote" and str(msg["From"]) == "Sales <sales@example.com>"
    assert str(msg["To"]) == "Ana Silva <ana@example.com>"
    assert str(msg["Cc"]) == "boss@example.com"
    assert str(msg["In-Reply-To"]) == "<q1@example.com>"
    assert got.text() == "Here it is.\n" and got.html() == "<p>Here it is.</p>\n"
    # What the engine fingerprints: the sent record read back through the same mapping.
    assert result.record is not None and result.external_id is not None
    back = m.view(result.record, result.external_id)
    assert back["message_id"] == result.external_id == got.message_id
    assert {k: v for k, v in back.items() if k != "message_id"} == MESSAGE


INVOICE: dict[str, Any] = {
    "number": "INV-42", "status": "open", "contact": "cid-ana", "due_date": "2024-03-01",
    "currency": "EUR", "total_amount": "1200", "balance": "200.5", "memo": "Order 7",
}


def test_the_invoice_reminder_writes_the_contacts_address_and_two_decimals(
        mailer: SmtpConnector, server: SmtpServer) -> None:
    validate("invoice", INVOICE)
    m = mapping("invoice_reminder")
    refs = {(reference_namespace("contact", "email"), "cid-ana"): "ana@example.com"}
    native = m.outbound(INVOICE, refs)
    assert native["to"] == "ana@example.com" and native["template"] == "overdue_invoice"
    assert (native["total_amount"], native["balance"]) == ("1200.00", "200.50")
    result, = mailer.write(m.object, [WriteOp("create", "k", native, canonical_id="inv-42")])
    assert result.ok, result.error
    got, = server.messages
    assert got.rcpt_tos == ("ana@example.com",)
    assert str(got.message["Subject"]) == "Reminder: invoice INV-42 is overdue"
    assert "still open is 200.50 EUR" in got.text() and "Order 7" in got.text()


def test_an_invoice_whose_contact_has_no_address_is_refused_not_sent(
        mailer: SmtpConnector, server: SmtpServer) -> None:
    native = mapping("invoice_reminder").outbound(INVOICE, {})
    assert "to" not in native
    result, = mailer.write("messages", [WriteOp("create", "k", native, canonical_id="inv-42")])
    assert not result.ok and "to: no recipient" in str(result.error)
    assert server.messages == []
