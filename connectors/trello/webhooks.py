"""Trello webhook deliveries: the X-Trello-Webhook signature and the changes announced.

Signature (Trello "Webhooks" docs):

    X-Trello-Webhook = base64(HMAC-SHA1(key=app secret, msg=rawBody + callbackURL))

`callbackURL` is the exact URL the webhook was registered with. The hub passes the URL it
was called on (WebhookRequest.url, built from `public_url` behind a proxy); a connection
whose registered URL differs (another host name, a trailing slash) sets `callback_url`.

Trello signs no timestamp, so a captured delivery could be replayed: the hub drops a
repeated action id (it remembers them for 48 hours), and deliveries whose action is older
than `max_age` seconds are refused as stale, which closes the window after that memory.

Trello creates a webhook only after a HEAD request to the callback URL answered 200; a
HEAD carries no body and no signature, and `parse_events` is not asked about it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson

from hub.connector import WebhookEvent, WebhookRequest
from hub.errors import WebhookRejected

SIGNATURE_HEADER = "x-trello-webhook"
DEFAULT_MAX_AGE = 3600  # seconds; Trello retries a failed delivery within minutes [obs]
FUTURE_SKEW = 300  # seconds an action's date may lie ahead of our clock

CARD_ACTIONS = {"createCard": "created", "updateCard": "updated", "deleteCard": "deleted",
                "copyCard": "created", "convertToCardFromCheckItem": "created",
                "moveCardToBoard": "updated", "moveCardFromBoard": "updated"}
BOARD_ACTIONS = {"createBoard": "created", "updateBoard": "updated"}


def signature(secret: str, body: bytes, callback_url: str) -> str:
    """Trello's signature of one delivery (base64 text)."""
    digest = hmac.new(secret.encode(), body + callback_url.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def check_signature(request: WebhookRequest, secret: str, callback_url: str) -> None:
    """Raise WebhookRejected(401) unless X-Trello-Webhook signs this body and URL."""
    received = request.headers.get(SIGNATURE_HEADER)
    if not received:
        raise WebhookRejected("missing X-Trello-Webhook header", status=401)
    expected = signature(secret, request.body, callback_url)
    # Bytes, not str: compare_digest refuses non-ASCII str and a forger picks the header.
    if not hmac.compare_digest(expected.encode(), received.strip().encode()):
        raise WebhookRejected("signature does not match (wrong webhook_secret, or the body or "
                              "callback URL differs from what Trello signed)", status=401)


def parse_events(body: bytes, *, now: float, max_age: float) -> list[WebhookEvent]:
    """The change a delivery announces (at most one); WebhookRejected if malformed or stale."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise WebhookRejected("body is not JSON (expected Trello's {action, model, webhook})",
                              status=400) from None
    action = data.get("action") if isinstance(data, Mapping) else None
    if not isinstance(action, Mapping):
        raise WebhookRejected("body has no action object", status=400)
    action_id, kind = action.get("id"), action.get("type")
    if not isinstance(action_id, str) or not action_id or not isinstance(kind, str):
        raise WebhookRejected("action.id or action.type is missing", status=400)
    occurred = _when(action.get("date"))
    if occurred is not None and max_age > 0:
        age = now - occurred.timestamp()
        if age > max_age:
            raise WebhookRejected(f"stale delivery: action {action_id} happened {int(age)} s "
                                  f"ago, at most {int(max_age)} s accepted", status=401)
        if -age > FUTURE_SKEW:
            raise WebhookRejected(f"action {action_id} is dated {int(-age)} s in the future",
                                  status=401)
    stamp = action.get("date") if occurred is not None else None
    payload = action.get("data")
    payload = payload if isinstance(payload, Mapping) else {}
    card, board = _ref(payload, "card"), _ref(payload, "board")
    if card is not None:
        return [WebhookEvent(action_id, "cards", card, CARD_ACTIONS.get(kind, "updated"),
                             stamp)]
    if board is not None and kind in BOARD_ACTIONS:
        return [WebhookEvent(action_id, "boards", board, BOARD_ACTIONS[kind], stamp)]
    return []  # lists, comments on nothing we sync...: accepted, not acted on


def _ref(payload: Mapping[str, Any], key: str) -> str | None:
    item = payload.get(key)
    value = item.get("id") if isinstance(item, Mapping) else None
    return value if isinstance(value, str) and value else None


def _when(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None
