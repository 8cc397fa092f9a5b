"""`hub sandbox VENDOR --webhook-url URL`: the sandbox's subscription sends changes, signed.

Each test starts the same subscription `main` starts (not a subprocess) against a loopback
receiver, changes a record, and checks the delivery with the vendor connector's own
signature check.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from connectors.jira import webhooks as jira_webhooks
from connectors.jira.sandbox import JiraSandbox
from connectors.quickbooks import webhooks as qbo_webhooks
from connectors.quickbooks.sandbox import QuickBooksSandbox
from connectors.trello import webhooks as trello_webhooks
from connectors.trello.sandbox import TrelloSandbox
from connectors.xero import webhooks as xero_webhooks
from connectors.xero.sandbox import XeroSandbox
from hub.connector import WebhookRequest

WAIT = 5.0  # seconds a delivery may take at most
INTERVAL = 0.05  # the subscription's tick in these tests


class Receiver:
    """A loopback HTTP server that queues every POST as a WebhookRequest and answers 200."""

    def __init__(self) -> None:
        self.got: queue.Queue[WebhookRequest] = queue.Queue()
        got = self.got

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                got.put(WebhookRequest("POST", f"http://127.0.0.1{self.path}",
                                       {k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks/sandbox"
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def next(self) -> WebhookRequest:
        """The next delivery, waiting at most WAIT seconds."""
        return self.got.get(timeout=WAIT)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    try:
        yield r
    finally:
        r.close()


def test_xero_subscription_sends_signed_changes(receiver: Receiver) -> None:
    sandbox = XeroSandbox(seed=2, count=3).start()
    try:
        sandbox.subscribe(receiver.url, interval=INTERVAL)
        contact = sandbox.records("Contacts")[0]["ContactID"]
        sandbox.touch("Contacts", contact, Name="Changed in Xero")
        delivery = receiver.next()
        xero_webhooks.check_signature(delivery, sandbox.webhook_key)
        events = xero_webhooks.parse_events(delivery.body, sandbox.tenant_id)
        assert [e.external_id for e in events] == [contact]
    finally:
        sandbox.stop()


def test_trello_subscription_sends_signed_changes(receiver: Receiver) -> None:
    sandbox = TrelloSandbox(seed=2, count=3, boards=1).start()
    try:
        sandbox.subscribe(receiver.url, interval=INTERVAL)
        card = min(sandbox.cards)
        sandbox.update_card(card, name="Renamed in Trello")
        delivery = receiver.next()
        trello_webhooks.check_signature(delivery, sandbox.app_secret, receiver.url)
        assert b"updateCard" in delivery.body and card.encode() in delivery.body
    finally:
        sandbox.stop()


def test_quickbooks_subscription_sends_signed_changes(receiver: Receiver) -> None:
    sandbox = QuickBooksSandbox(seed=2, count=3).start()
    try:
        sandbox.subscribe(receiver.url, interval=INTERVAL)
        customer = sandbox.records("Customer")[0]["Id"]
        sandbox.touch("Customer", customer, CompanyName="Changed in QBO")
        delivery = receiver.next()
        qbo_webhooks.check_signature(delivery, sandbox.verifier_token)
        events = qbo_webhooks.parse_events(delivery.body, sandbox.realm_id)
        assert [e.external_id for e in events] == [customer]
    finally:
        sandbox.stop()


def test_jira_subscription_sends_signed_changes(receiver: Receiver) -> None:
    sandbox = JiraSandbox(count=3).start()
    try:
        sandbox.subscribe(receiver.url, interval=INTERVAL)
        issue = sandbox.issue_ids()[0]
        sandbox.touch(issue, summary="Edited in Jira")
        delivery = receiver.next()
        jira_webhooks.check_signature(delivery, sandbox.webhook_secret)
        assert b"jira:issue_updated" in delivery.body
    finally:
        sandbox.stop()


def test_a_stopped_sandbox_stops_delivering(receiver: Receiver) -> None:
    sandbox = JiraSandbox(count=3).start()
    pump = sandbox.subscribe(receiver.url, interval=INTERVAL)
    sandbox.stop()
    assert pump._thread is None
    sandbox.touch(sandbox.issue_ids()[0], summary="After stop")
    with pytest.raises(queue.Empty):
        receiver.got.get(timeout=4 * INTERVAL)
