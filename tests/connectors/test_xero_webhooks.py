"""Xero webhook deliveries from the sandbox to a loopback receiver that asks the connector.

The receiver answers 200 when verify_webhook accepts a delivery and the status of
WebhookRejected (401 forged, 400 malformed) when not, as Xero's intent-to-receive expects.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest

from connectors.xero import webhooks
from connectors.xero.connector import XeroConnector
from connectors.xero.sandbox import XeroSandbox
from hub.config.model import ConnectionConfig
from hub.connector import WebhookEvent, WebhookRequest
from hub.errors import ConnectorError, WebhookRejected


class Receiver:
    """A loopback HTTP server passing each delivery to verify_webhook."""

    def __init__(self, connector: XeroConnector) -> None:
        self.connector = connector
        self.events: list[list[WebhookEvent]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                request = WebhookRequest("POST", f"http://127.0.0.1{self.path}",
                                         {k.lower(): v for k, v in self.headers.items()}, body)
                try:
                    receiver.events.append(receiver.connector.verify_webhook(request))
                    status = 200
                except WebhookRejected as exc:
                    status = exc.status
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True,
                                       kwargs={"poll_interval": 0.05})
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks/xero"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[XeroSandbox, Receiver]]:
    with XeroSandbox(seed=4, count=10) as sb:
        conn = ConnectionConfig(name="books", connector="xero", base_dir=tmp_path,
                                settings={"tenant_id": sb.tenant_id,
                                          "webhook_key": sb.webhook_key})
        receiver = Receiver(XeroConnector(conn))
        yield sb, receiver
        receiver.close()


def test_intent_to_receive_passes(setup: tuple[XeroSandbox, Receiver]) -> None:
    sandbox, receiver = setup
    assert sandbox.intent_to_receive(receiver.url)
    assert receiver.events == [[]]  # only the well-signed empty delivery was accepted


def test_changes_arrive_as_thin_events(setup: tuple[XeroSandbox, Receiver]) -> None:
    sandbox, receiver = setup
    contact = sandbox.records("Contacts")[0]
    sandbox.touch("Contacts", contact["ContactID"], TaxNumber="1")
    created = sandbox.create("Contacts", {"Name": "Hook Ltd"})
    answer = sandbox.send_webhooks(receiver.url)
    assert answer.status_code == 200
    events = receiver.events[-1]
    assert [(e.object, e.external_id, e.action) for e in events] == [
        ("Contacts", contact["ContactID"], "updated"),
        ("Contacts", created["ContactID"], "created")]
    assert all(e.occurred_at and e.occurred_at.endswith("Z") for e in events)
    assert sandbox.store.changes == []  # delivered


def test_forged_and_tampered_deliveries_get_401(setup: tuple[XeroSandbox, Receiver]) -> None:
    sandbox, receiver = setup
    sandbox.touch("Invoices", sandbox.records("Invoices")[0]["InvoiceID"], Reference="x")
    forged = sandbox.send_webhooks(receiver.url, key="guessed-key")
    tampered = sandbox.send_webhooks(receiver.url, tamper=lambda b: b.replace(b"UPDATE",
                                                                             b"CREATE"))
    assert forged.status_code == tampered.status_code == 401
    assert receiver.events == [] and sandbox.store.changes  # still pending, not lost


def test_a_replayed_delivery_repeats_its_event_ids(setup: tuple[XeroSandbox, Receiver]) -> None:
    """The signature has no timestamp: replays are recognised by event id downstream."""
    sandbox, receiver = setup
    sandbox.touch("Invoices", sandbox.records("Invoices")[0]["InvoiceID"], Reference="x")
    pending = list(sandbox.store.changes)
    assert sandbox.send_webhooks(receiver.url, pending).status_code == 200
    assert sandbox.send_webhooks(receiver.url, pending).status_code == 200
    first, second = receiver.events
    assert [e.event_id for e in first] == [e.event_id for e in second]
    assert first[0].object == "Invoices"


def test_other_categories_and_tenants_are_left_out() -> None:
    body = orjson.dumps({"events": [
        {"resourceId": "a", "eventCategory": "CREDITNOTE", "eventType": "CREATE",
         "tenantId": "t1"},
        {"resourceId": "b", "eventCategory": "INVOICE", "eventType": "UPDATE",
         "tenantId": "someone-else"},
        {"resourceId": "c", "eventCategory": "CONTACT", "eventType": "CREATE",
         "tenantId": "t1", "eventDateUtc": "2024-06-21T01:15:39.902"}]})
    events = webhooks.parse_events(body, "t1")
    assert [(e.object, e.external_id, e.occurred_at) for e in events] == [
        ("Contacts", "c", "2024-06-21T01:15:39.902Z")]


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"events": [{"resourceId": 1}]}'])
def test_malformed_deliveries_get_400(body: bytes) -> None:
    with pytest.raises(WebhookRejected) as info:
        webhooks.parse_events(body)
    assert info.value.status == 400


def test_signature_is_checked_on_the_raw_bytes() -> None:
    body = b'{"events":[],"firstEventSequence":0,"lastEventSequence":0,"entropy":"X"}'
    good = WebhookRequest("POST", "http://h/x", {"x-xero-signature":
                                                 webhooks.signature("k", body)}, body)
    webhooks.check_signature(good, "k")
    for headers in ({}, {"x-xero-signature": "é"}, {"x-xero-signature":
                                                    webhooks.signature("k", body + b" ")}):
        with pytest.raises(WebhookRejected) as info:
            webhooks.check_signature(WebhookRequest("POST", "http://h/x", headers, body), "k")
        assert info.value.status == 401


def test_a_missing_webhook_key_is_a_config_error(tmp_path: Path) -> None:
    conn = ConnectionConfig(name="books", connector="xero", base_dir=tmp_path,
                            settings={"tenant_id": "t"})
    with pytest.raises(ConnectorError, match="webhook_key"):
        XeroConnector(conn).verify_webhook(WebhookRequest("POST", "u", {}, b"{}"))
