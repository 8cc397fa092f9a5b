"""Jira webhooks: X-Hub-Signature (sha256=hex HMAC of the raw body) valid, forged, tampered,
stale and replayed deliveries, event parsing, and the sandbox's signed deliveries over HTTP."""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import orjson
import pytest

from connectors.jira.connector import JiraConnector
from connectors.jira.sandbox import JiraSandbox, signed_delivery
from connectors.jira.webhooks import MAX_AGE_MS, check_signature, parse_event, signature
from hub.config.model import ConnectionConfig, Secret
from hub.connector import WebhookRequest
from hub.errors import ConnectorError, WebhookRejected

SECRET = "jira-webhook-secret"
NOW = 1_714_557_600_000


def event(kind: str = "jira:issue_updated", stamp: int = NOW, **extra: Any) -> dict[str, Any]:
    return {"timestamp": stamp, "webhookEvent": kind, "issue_event_type_name": "issue_generic",
            "issue": {"id": "10001", "key": "OPS-1", "fields": {}}, **extra}


def request(body: bytes, headers: dict[str, str]) -> WebhookRequest:
    return WebhookRequest(method="POST", url="https://hub.example.com/webhooks/jira",
                          headers={k.lower(): v for k, v in headers.items()}, body=body)


@pytest.fixture(autouse=True)
def secret_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The config refers to the secret as ${JIRA_WEBHOOK_SECRET}."""
    monkeypatch.setenv("JIRA_WEBHOOK_SECRET", SECRET)


def connector(secret: bool = True) -> JiraConnector:
    values: dict[str, Any] = {"base_url": "https://acme.atlassian.net"}
    if secret:
        values["webhook_secret"] = Secret("JIRA_WEBHOOK_SECRET")
    return JiraConnector(ConnectionConfig(name="pm", connector="jira", base_dir=Path("."),
                                          settings=values))


def test_signature_matches_an_independently_computed_vector() -> None:
    body = b'{"webhookEvent":"jira:issue_created"}'
    digest = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert signature(SECRET, body) == f"sha256={digest}"


def test_a_valid_delivery_becomes_one_event() -> None:
    body, headers = signed_delivery(event(stamp=NOW), SECRET)
    delivered = request(body, headers)
    check_signature(delivered, SECRET)
    found, = parse_event(delivered, now_ms=NOW + 1000)
    assert (found.object, found.external_id, found.action) == ("issues", "10001", "updated")
    assert found.event_id == headers["X-Atlassian-Webhook-Identifier"]
    assert found.occurred_at == "2024-05-01T10:00:00.000Z"


def test_forged_and_tampered_deliveries_are_refused() -> None:
    body, headers = signed_delivery(event(), SECRET)
    forged = {**headers, "X-Hub-Signature": signature("not-the-secret", body)}
    upper = {**headers, "X-Hub-Signature": headers["X-Hub-Signature"].upper()}
    for bad in (request(body + b" ", headers),                      # tampered body
                request(body, forged),                               # wrong secret
                request(body, {**headers, "X-Hub-Signature": "sha1=" + "0" * 40}),
                request(body, {**headers, "X-Hub-Signature": "sha256=é"}),
                request(body, {k: v for k, v in headers.items() if k != "X-Hub-Signature"})):
        with pytest.raises(WebhookRejected) as info:
            check_signature(bad, SECRET)
        assert info.value.status == 401
    check_signature(request(body, upper), SECRET)  # hex case does not matter


def test_stale_and_future_deliveries_are_refused() -> None:
    old = signed_delivery(event(stamp=NOW - MAX_AGE_MS - 1), SECRET)
    with pytest.raises(WebhookRejected, match="stale") as info:
        parse_event(request(*old), now_ms=NOW)
    assert info.value.status == 401
    future = signed_delivery(event(stamp=NOW + 3_600_000), SECRET)
    with pytest.raises(WebhookRejected, match="future"):
        parse_event(request(*future), now_ms=NOW)
    recent = signed_delivery(event(stamp=NOW - 3_600_000), SECRET)  # a retry an hour later
    assert parse_event(request(*recent), now_ms=NOW)


def test_a_replayed_delivery_carries_the_same_event_id() -> None:
    """The hub drops replays by event id; a retry of a delivery keeps its identifier."""
    now = int(time.time() * 1000)
    body, headers = signed_delivery(event(stamp=now), SECRET)
    retry = {**headers, "X-Atlassian-Webhook-Retry": "1"}
    first = connector().verify_webhook(request(body, headers))
    again = connector().verify_webhook(request(body, retry))
    assert first[0].event_id == again[0].event_id
    no_id = {k: v for k, v in headers.items() if k != "X-Atlassian-Webhook-Identifier"}
    a, b = (connector().verify_webhook(request(body, no_id)) for _ in range(2))
    assert a[0].event_id == b[0].event_id == f"jira:issue_updated:10001:{now}"


def test_event_kinds() -> None:
    def parsed(payload: dict[str, Any]) -> list[Any]:
        return parse_event(request(orjson.dumps(payload), {}), now_ms=NOW)
    deleted, = parsed(event("jira:issue_deleted"))
    assert deleted.action == "deleted" and deleted.object == "issues"
    comment, = parsed(event("comment_created"))
    assert comment.action == "updated"
    project, = parsed({"timestamp": NOW, "webhookEvent": "project_updated",
                       "project": {"id": 10000, "key": "OPS"}})
    assert (project.object, project.external_id) == ("projects", "OPS")
    assert parsed({"timestamp": NOW, "webhookEvent": "sprint_started"}) == []
    for bad in (b"not json", b"[]", orjson.dumps({"timestamp": NOW}),
                orjson.dumps(event(stamp="yesterday")),  # type: ignore[arg-type]
                orjson.dumps({"timestamp": NOW, "webhookEvent": "jira:issue_created"})):
        with pytest.raises(WebhookRejected) as info:
            parse_event(request(bad, {}), now_ms=NOW)
        assert info.value.status == 400


def test_verify_webhook_needs_the_secret_setting() -> None:
    body, headers = signed_delivery(event(), SECRET)
    with pytest.raises(ConnectorError, match="webhook_secret"):
        connector(secret=False).verify_webhook(request(body, headers))
    assert JiraConnector.capabilities.webhooks
    assert "webhook_secret" in JiraConnector.capabilities.secret_settings


class _Receiver(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[dict[str, str], bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    _Receiver.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/webhooks/jira", _Receiver.received
    server.shutdown()
    server.server_close()


def test_sandbox_changes_arrive_signed_and_verify(
        receiver: tuple[str, list[tuple[dict[str, str], bytes]]]) -> None:
    url, received = receiver
    with JiraSandbox(count=3, webhook_secret=SECRET) as sb:
        assert sb.webhook_events == []  # seed data is not announced
        new = sb.add_issue("OPS", "From a user")
        sb.touch(new, summary="Edited")
        sb.delete_issue(new)
        answers = sb.send_webhooks(url)
        assert [a.status_code for a in answers] == [200, 200, 200]
        assert sb.webhook_events == []
        hub_side = connector()
        events = [e for headers, body in received
                  for e in hub_side.verify_webhook(WebhookRequest("POST", url, headers, body))]
    assert [(e.action, e.external_id) for e in events] == [
        ("created", new), ("updated", new), ("deleted", new)]
    assert len({e.event_id for e in events}) == 3
