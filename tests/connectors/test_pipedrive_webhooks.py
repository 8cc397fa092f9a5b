"""Pipedrive webhook v2 deliveries: Basic credentials checked, events parsed.

The sandbox delivers its change events over real HTTP to a receiver on 127.0.0.1; the
receiver hands each raw delivery to PipedriveConnector.verify_webhook.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest

from connectors.pipedrive.connector import PipedriveConnector
from connectors.pipedrive.sandbox import PipedriveSandbox
from hub.config.model import ConnectionConfig
from hub.connector import WebhookEvent, WebhookRequest
from hub.errors import ConnectorError, WebhookRejected

USER, PASSWORD = "liaison", "s3cret-webhook-password"


def connector(**settings: Any) -> PipedriveConnector:
    base = {"api_token": "unused", "webhook_user": USER, "webhook_password": PASSWORD}
    return PipedriveConnector(ConnectionConfig(
        name="crm", connector="pipedrive", base_dir=Path("."), settings={**base, **settings}))


class Receiver:
    """A loopback HTTP endpoint that checks each delivery with verify_webhook."""

    def __init__(self, pd: PipedriveConnector) -> None:
        self.pd = pd
        self.accepted: list[WebhookEvent] = []
        self.rejected: list[WebhookRejected] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                request = WebhookRequest("POST", f"http://127.0.0.1{self.path}",
                                         {k.lower(): v for k, v in self.headers.items()}, body)
                try:
                    receiver.accepted.extend(receiver.pd.verify_webhook(request))
                    status = 200
                except WebhookRejected as exc:
                    receiver.rejected.append(exc)
                    status = exc.status
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks/pipedrive"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(connector())
    yield r
    r.close()


@pytest.fixture
def sandbox() -> Iterator[PipedriveSandbox]:
    with PipedriveSandbox(seed=2, count=20) as sb:
        yield sb


def request(body: Any, user: str = USER, password: str = PASSWORD,
            header: str | None = None) -> WebhookRequest:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    auth = header if header is not None else f"Basic {token}"
    return WebhookRequest("POST", "https://hub.example/webhooks/pipedrive",
                          {"authorization": auth} if auth else {}, raw)


def event(action: str = "change", entity: str = "person", **meta: Any) -> dict[str, Any]:
    return {"meta": {"action": action, "entity": entity, "entity_id": "12", "id": "ev-1",
                     "timestamp": 1727447128, "attempt": 1, "version": "2.0", **meta},
            "data": {"id": 12}, "previous": None}


def test_sandbox_changes_arrive_as_events(sandbox: PipedriveSandbox,
                                          receiver: Receiver) -> None:
    person = sandbox.records("persons")[0]["id"]
    sandbox.touch("persons", person, name="Changed Name")
    deal = sandbox.create("deals", title="Webhook deal")
    sandbox.delete("organizations", sandbox.records("organizations")[0]["id"])
    answers = sandbox.send_webhooks(receiver.url, user=USER, password=PASSWORD)
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert [(e.object, e.external_id, e.action) for e in receiver.accepted] == [
        ("persons", str(person), "updated"), ("deals", str(deal), "created"),
        ("organizations", "1", "deleted")]
    assert len({e.event_id for e in receiver.accepted}) == 3
    assert all(e.occurred_at and e.occurred_at.endswith("Z") for e in receiver.accepted)
    assert not sandbox.webhooks.pending()


def test_wrong_or_missing_credentials_are_refused_and_redelivered(
        sandbox: PipedriveSandbox, receiver: Receiver) -> None:
    sandbox.touch("persons", 1, name="Someone Else")
    forged = sandbox.send_webhooks(receiver.url, user=USER, password="guess")
    assert [a.status_code for a in forged] == [401]
    bare = sandbox.send_webhooks(receiver.url, user=None, password=None)
    assert [a.status_code for a in bare] == [401]
    assert receiver.accepted == [] and len(receiver.rejected) == 2
    pending = sandbox.webhooks.pending()
    assert len(pending) == 1 and pending[0]["meta"]["attempt"] == 3  # Pipedrive retries
    sandbox.send_webhooks(receiver.url, user=USER, password=PASSWORD)
    assert [e.external_id for e in receiver.accepted] == ["1"]


def test_replayed_delivery_keeps_its_event_id() -> None:
    """No timestamp is signed, so a replay is recognised downstream by meta.id."""
    pd = connector()
    first = pd.verify_webhook(request(event()))
    again = pd.verify_webhook(request(event(attempt=2)))
    assert first[0].event_id == again[0].event_id == "ev-1"


@pytest.mark.parametrize("header", [
    "", "Bearer abc", "Basic !!!not-base64!!!",
    "Basic " + base64.b64encode(b"no-colon").decode(),
    "Basic " + base64.b64encode(f"{USER}:{PASSWORD}x".encode()).decode(),
    "Basic " + base64.b64encode(f"other:{PASSWORD}".encode()).decode(),
])
def test_bad_credentials_are_401(header: str) -> None:
    with pytest.raises(WebhookRejected) as info:
        connector().verify_webhook(request(event(), header=header))
    assert info.value.status == 401
    assert PASSWORD not in str(info.value)


@pytest.mark.parametrize("body", [b"not json", b"[]", orjson.dumps({"data": {}}),
                                  orjson.dumps({"meta": {"action": "change"}})])
def test_malformed_bodies_are_400(body: bytes) -> None:
    with pytest.raises(WebhookRejected) as info:
        connector().verify_webhook(request(body))
    assert info.value.status == 400


def test_actions_entities_and_merges() -> None:
    pd = connector()
    assert pd.verify_webhook(request(event("create", "organization")))[0].action == "created"
    deleted = pd.verify_webhook(request(event("delete", "deal")))[0]
    assert (deleted.object, deleted.action) == ("deals", "deleted")
    merged = event("delete", "person")
    merged["previous"] = {"id": 12, "merged_to_id": 40}
    assert pd.verify_webhook(request(merged))[0].action == "merged"
    assert pd.verify_webhook(request(event("change", "activity"))) == []
    stamp = pd.verify_webhook(request(event()))[0].occurred_at
    assert stamp == "2024-09-27T14:25:28Z"


def test_credentials_must_be_configured() -> None:
    with pytest.raises(ConnectorError, match="webhook_password"):
        connector(webhook_password=None).verify_webhook(request(event()))
