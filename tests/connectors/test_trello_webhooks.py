"""Trello webhooks: X-Trello-Webhook (HMAC-SHA1 of body + callback URL) against an
independently computed vector, staleness, event parsing, and real deliveries from the sandbox
through the hub's webhook endpoint (replays dropped, HEAD handshake)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Self

import orjson
import pytest
import uvicorn

from connectors.trello.connector import TrelloConnector
from connectors.trello.fakedata import iso
from connectors.trello.sandbox import TrelloSandbox, sign
from connectors.trello.webhooks import check_signature, parse_events, signature
from hub import registry
from hub.config import loads
from hub.config.model import ConnectionConfig, Secret
from hub.connector import WebhookEvent, WebhookRequest
from hub.errors import ConnectorError, SecretError, WebhookRejected
from hub.store import Store
from hub.web import make_app

SECRET = "trello-app-secret-42"
URL = "https://hub.example.com/webhooks/pm"


def _action(kind: str = "updateCard", card: str | None = "c" * 24, age: float = 0.0,
            action_id: str = "a" * 24) -> dict[str, Any]:
    data: dict[str, Any] = {"board": {"id": "b" * 24, "name": "B"}}
    if card:
        data["card"] = {"id": card, "name": "Card", "idShort": 1, "shortLink": "abcdEFGH"}
    return {"id": action_id, "idMemberCreator": "m" * 24, "type": kind,
            "date": iso(int((time.time() - age) * 1000)), "data": data,
            "memberCreator": {"id": "m" * 24, "username": "ana", "fullName": "Ana"}}


def _body(action: dict[str, Any]) -> bytes:
    return orjson.dumps({"action": action, "model": {"id": "b" * 24},
                         "webhook": {"id": "w" * 24, "idModel": "b" * 24,
                                     "callbackURL": URL, "active": True}})


def _request(body: bytes, sig: str | None, url: str = URL, method: str = "POST") -> WebhookRequest:
    headers = {"x-trello-webhook": sig} if sig is not None else {}
    return WebhookRequest(method=method, url=url, headers=headers, body=body)


def _connector(**settings: Any) -> TrelloConnector:
    return TrelloConnector(ConnectionConfig(
        name="pm", connector="trello", base_dir=Path("."),
        settings={"webhook_secret": SECRET, **settings}))


def test_signature_matches_an_independently_computed_vector() -> None:
    body = b'{"action":{"id":"1"}}'
    expected = base64.b64encode(hmac.new(SECRET.encode(), body + URL.encode(),
                                         hashlib.sha1).digest()).decode()
    assert signature(SECRET, body, URL) == expected


def test_a_valid_signature_passes_and_anything_changed_fails() -> None:
    body = _body(_action())
    good = signature(SECRET, body, URL)
    check_signature(_request(body, good), SECRET, URL)
    for request, callback in ((_request(body + b" ", good), URL),          # body
                              (_request(body, good), URL + "/"),            # callback URL
                              (_request(body, good[:-2] + "AA"), URL),      # signature
                              (_request(body, "é" * 28), URL),              # non-ASCII
                              (_request(body, None), URL)):                 # missing
        with pytest.raises(WebhookRejected) as info:
            check_signature(request, SECRET, callback)
        assert info.value.status == 401


def test_verify_webhook_uses_the_request_url_or_the_configured_callback() -> None:
    body = _body(_action("createCard"))
    events = _connector().verify_webhook(_request(body, signature(SECRET, body, URL)))
    assert events == [WebhookEvent("a" * 24, "cards", "c" * 24, "created", events[0].occurred_at)]
    registered = "https://public.example.com/trello"
    signed = signature(SECRET, body, registered)
    assert _connector(callback_url=registered).verify_webhook(_request(body, signed))
    with pytest.raises(WebhookRejected):
        _connector().verify_webhook(_request(body, signed))


def test_stale_and_future_actions_are_refused_unless_disabled() -> None:
    old = _body(_action(age=7200))
    with pytest.raises(WebhookRejected, match="stale"):
        _connector().verify_webhook(_request(old, signature(SECRET, old, URL)))
    assert _connector(webhook_max_age=0).verify_webhook(
        _request(old, signature(SECRET, old, URL)))
    assert _connector(webhook_max_age=10_000).verify_webhook(
        _request(old, signature(SECRET, old, URL)))
    ahead = _body(_action(age=-3600))
    with pytest.raises(WebhookRejected, match="future"):
        _connector().verify_webhook(_request(ahead, signature(SECRET, ahead, URL)))


@pytest.mark.parametrize(("kind", "card", "expected"), [
    ("createCard", "c" * 24, ("cards", "created")),
    ("updateCard", "c" * 24, ("cards", "updated")),
    ("deleteCard", "c" * 24, ("cards", "deleted")),
    ("commentCard", "c" * 24, ("cards", "updated")),
    ("updateBoard", None, ("boards", "updated")),
    ("createList", None, None),
])
def test_actions_become_events(kind: str, card: str | None,
                               expected: tuple[str, str] | None) -> None:
    events = parse_events(_body(_action(kind, card)), now=time.time(), max_age=3600)
    if expected is None:
        assert events == []
    else:
        assert [(e.object, e.action) for e in events] == [expected]
        stamp = events[0].occurred_at
        assert events[0].event_id == "a" * 24 and stamp is not None and stamp.endswith("Z")


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"action": 1}', b'{"action": {}}'])
def test_malformed_bodies_are_400(body: bytes) -> None:
    with pytest.raises(WebhookRejected) as info:
        parse_events(body, now=time.time(), max_age=3600)
    assert info.value.status == 400


def test_head_handshake_and_missing_secret() -> None:
    assert _connector().verify_webhook(_request(b"", None, method="HEAD")) == []
    conn = ConnectionConfig(name="pm", connector="trello", base_dir=Path("."),
                            settings={"webhook_secret": Secret("T_TRELLO_NOT_SET_XYZ")})
    body = _body(_action())
    with pytest.raises(SecretError, match="T_TRELLO_NOT_SET_XYZ"):
        TrelloConnector(conn).verify_webhook(_request(body, "x"))
    with pytest.raises(ConnectorError, match="webhook_secret"):
        TrelloConnector(ConnectionConfig(name="pm", connector="trello", base_dir=Path("."),
                                         settings={})).verify_webhook(_request(body, "x"))


def test_capabilities_declare_webhooks_and_secret_settings() -> None:
    caps = TrelloConnector.capabilities
    assert caps.webhooks
    assert {"api_key", "token", "webhook_secret"} <= caps.secret_settings


# -- real deliveries through the hub's endpoint ------------------------------------------------


class _Served:
    def __init__(self, app: Any) -> None:
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0,
                                                    log_level="warning", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Self:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive()
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    @property
    def url(self) -> str:
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/webhooks/pm"


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
        ) -> Iterator[tuple[TrelloSandbox, _Served, list[tuple[str, list[WebhookEvent]]]]]:
    got: list[tuple[str, list[WebhookEvent]]] = []
    with TrelloSandbox(seed=3, count=5, boards=1, app_secret=SECRET) as sb, \
            registry.register("trello", TrelloConnector):
        monkeypatch.setenv("T_TRELLO_KEY", sb.api_key)
        monkeypatch.setenv("T_TRELLO_TOKEN", sb.token)
        monkeypatch.setenv("T_TRELLO_SECRET", SECRET)
        settings = loads(f"""
version: 1
store: sqlite:///{tmp_path / 'hub.db'}
systems:
  pm:
    category: project
    owner: Ana
    connection:
      connector: trello
      base_url: {sb.base_url}
      api_key: ${{T_TRELLO_KEY}}
      token: ${{T_TRELLO_TOKEN}}
      webhook_secret: ${{T_TRELLO_SECRET}}
""", file=str(tmp_path / "hub.yaml"))
        store = Store(settings.store_url)
        try:
            with _Served(make_app(settings, store, lambda s, e: got.append((s, e)))) as srv:
                yield sb, srv, got
        finally:
            store.close()


def test_a_sandbox_delivery_is_accepted_once_and_a_replay_is_dropped(
        hub: tuple[TrelloSandbox, _Served, list[Any]]) -> None:
    sb, srv, got = hub
    card = min(sb.cards)
    sb.update_card(card, name="Renamed in Trello")
    first, = sb.deliver_pending(srv.url)
    assert first.status_code == 200, first.text
    assert [(e.object, e.external_id, e.action) for _, e in got for e in e] == [
        ("cards", card, "updated")]
    again = sb.deliver(srv.url, sb.card_actions(min(sb.boards))[0])  # a replay
    assert again.status_code == 200 and again.json() == {"accepted": 0, "duplicates": 1}
    assert len(got) == 1
    forged = sb.deliver(srv.url, sb.card_actions(min(sb.boards))[0], secret="guess")
    assert forged.status_code == 401 and SECRET not in forged.text
    tampered = sb.deliver(srv.url, sb.card_actions(min(sb.boards))[0],
                          tamper=lambda b: b.replace(b"Renamed", b"Hacked"))
    assert tampered.status_code == 401


def test_the_hub_answers_trellos_head_handshake(
        hub: tuple[TrelloSandbox, _Served, list[Any]]) -> None:
    sb, srv, _ = hub
    assert sb.handshake(srv.url) == 200


def test_what_the_sandbox_signs_the_connector_accepts() -> None:
    body = _body(_action())
    assert sign(SECRET, body, URL) == signature(SECRET, body, URL)
