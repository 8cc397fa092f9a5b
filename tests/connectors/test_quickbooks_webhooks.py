"""QuickBooks webhook deliveries (legacy and CloudEvents) from the sandbox to a loopback
receiver that asks the connector: valid, forged, tampered, replayed, other realms."""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest

from connectors.quickbooks import webhooks
from connectors.quickbooks.connector import QuickBooksConnector
from connectors.quickbooks.sandbox import QuickBooksSandbox
from hub.config.model import ConnectionConfig
from hub.connector import WebhookEvent, WebhookRequest
from hub.errors import ConnectorError, WebhookRejected


class Receiver:
    """A loopback HTTP server passing each delivery to verify_webhook."""

    def __init__(self, connector: QuickBooksConnector) -> None:
        self.connector = connector
        self.events: list[list[WebhookEvent]] = []
        self.statuses: list[int] = []
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
                receiver.statuses.append(status)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True,
                                       kwargs={"poll_interval": 0.05})
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks/quickbooks"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[QuickBooksSandbox, Receiver]]:
    with QuickBooksSandbox(seed=4, count=10) as sb:
        conn = ConnectionConfig(name="books", connector="quickbooks", base_dir=tmp_path,
                                settings={"realm_id": sb.realm_id,
                                          "webhook_verifier": sb.verifier_token})
        receiver = Receiver(QuickBooksConnector(conn))
        yield sb, receiver
        receiver.close()


def test_signature_matches_an_independently_computed_vector() -> None:
    body = b'{"eventNotifications":[]}'
    expected = base64.b64encode(hmac.new(b"verifier", body, hashlib.sha256).digest()).decode()
    assert webhooks.signature("verifier", body) == expected


@pytest.mark.parametrize("style", ["legacy", "cloudevents"])
def test_changes_arrive_in_both_formats(setup: tuple[QuickBooksSandbox, Receiver],
                                        style: str) -> None:
    sandbox, receiver = setup
    customer = sandbox.records("Customer")[0]["Id"]
    sandbox.touch("Customer", customer, CompanyName="Changed")
    invoice = next(i for i in sandbox.records("Invoice") if not i["LinkedTxn"])["Id"]
    sandbox.delete("Invoice", invoice)
    response = sandbox.send_webhooks(receiver.url, style=style)  # type: ignore[arg-type]
    assert response.status_code == 200
    events = receiver.events[-1]
    assert [(e.object, e.external_id, e.action) for e in events] == [
        ("Customer", customer, "updated"), ("Invoice", invoice, "deleted")]
    assert all(e.occurred_at and e.occurred_at.endswith("Z") for e in events)
    assert sandbox.store.changes == []  # delivered


def test_forged_and_tampered_deliveries_are_401(setup: tuple[QuickBooksSandbox,
                                                             Receiver]) -> None:
    sandbox, receiver = setup
    change = [("Customer", "1", "Update", 1_714_582_800)]
    forged = sandbox.send_webhooks(receiver.url, changes=change, key="not-the-verifier")
    tampered = sandbox.send_webhooks(receiver.url, changes=change,
                                     tamper=lambda b: b.replace(b'"1"', b'"2"'))
    assert forged.status_code == 401 and tampered.status_code == 401
    assert receiver.events == []


def test_replays_keep_their_event_ids(setup: tuple[QuickBooksSandbox, Receiver]) -> None:
    """The signature has no timestamp: a replay passes it, and dedup by event id drops it."""
    sandbox, receiver = setup
    change = [("Invoice", "7", "Update", 1_714_582_800)]
    for style in ("legacy", "legacy"):
        sandbox.send_webhooks(receiver.url, style=style, changes=change)
    first, second = receiver.events
    assert first[0].event_id == second[0].event_id
    assert first[0].occurred_at == "2024-05-01T17:00:00Z"


def test_other_realms_and_entities_are_left_out() -> None:
    body = orjson.dumps({"eventNotifications": [
        {"realmId": "111", "dataChangeEvent": {"entities": [
            {"name": "Customer", "id": "1", "operation": "Create", "lastUpdated": "x"}]}},
        {"realmId": "222", "dataChangeEvent": {"entities": [
            {"name": "Vendor", "id": "2", "operation": "Create"},
            {"name": "Invoice", "id": "3", "operation": "Void"},
            {"name": "Customer", "id": "4", "operation": "Merge"}]}}]})
    events = webhooks.parse_events(body, "222")
    assert [(e.object, e.external_id, e.action) for e in events] == [
        ("Invoice", "3", "updated"), ("Customer", "4", "merged")]
    cloud = orjson.dumps([
        {"specversion": "1.0", "id": "a", "type": "qbo.payment.created.v1",
         "intuitentityid": "9", "intuitaccountid": "222", "time": "2025-11-12T10:00:00Z"},
        {"specversion": "1.0", "id": "b", "type": "qbo.bill.created.v1",
         "intuitentityid": "8", "intuitaccountid": "222"},
        {"specversion": "1.0", "id": "c", "type": "qbo.invoice.updated.v1",
         "intuitentityid": "7", "intuitaccountid": "333"}])
    events = webhooks.parse_events(cloud, "222")
    assert [(e.event_id, e.object, e.external_id, e.action) for e in events] == [
        ("a", "Payment", "9", "created")]


@pytest.mark.parametrize(("body", "message"), [
    (b"not json", "not JSON"),
    (b'{"events": []}', "neither"),
    (b'{"eventNotifications": [{"realmId": "1"}]}', "entities is not a list"),
    (b'{"eventNotifications": [{"dataChangeEvent": {"entities": [{"name": "Customer"}]}}]}',
     "id is missing"),
    (b'[{"id": "a", "type": "invoice.updated", "intuitentityid": "1"}]', "qbo.<entity>"),
])
def test_malformed_bodies_are_400(body: bytes, message: str) -> None:
    with pytest.raises(WebhookRejected, match=message) as caught:
        webhooks.parse_events(body)
    assert caught.value.status == 400


def test_missing_signature_and_missing_verifier(tmp_path: Path) -> None:
    request = WebhookRequest("POST", "http://127.0.0.1/w", {}, b"[]")
    with pytest.raises(WebhookRejected, match="missing intuit-signature"):
        webhooks.check_signature(request, "v")
    conn = ConnectionConfig(name="books", connector="quickbooks", base_dir=tmp_path,
                            settings={})
    with pytest.raises(ConnectorError, match="webhook_verifier"):
        QuickBooksConnector(conn).verify_webhook(request)
    caps = QuickBooksConnector.capabilities
    assert caps.webhooks and "webhook_verifier" in caps.secret_settings
