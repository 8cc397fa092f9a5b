"""Xero webhook deliveries: the x-xero-signature check and the events a delivery announces.

    x-xero-signature   base64(HMAC-SHA256(key=webhook_key, msg=rawBody))

Xero's "intent to receive" check sends deliveries with `events: []`, some correctly signed
(answer 200) and some deliberately mis-signed (answer 401): both fall out of checking every
delivery the same way. The signature covers no timestamp, so an old delivery cannot be told
from a new one by its signature; replays are dropped downstream by event id, which is built
from the event's own content (the same event replayed gets the same id).

Payloads are thin (resourceId, eventCategory, eventType): each becomes a WebhookEvent that
tells the engine to re-read the record. Categories Liaison does not sync (CREDITNOTE,
SUBSCRIPTION) and events of another tenant of the same app are left out, not refused, so
Xero does not retry a delivery that was fine.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

import orjson

from hub.connector import WebhookEvent, WebhookRequest
from hub.errors import WebhookRejected

SIGNATURE_HEADER = "x-xero-signature"
CATEGORIES = {"CONTACT": "Contacts", "INVOICE": "Invoices"}
ACTIONS = {"CREATE": "created", "UPDATE": "updated"}


def signature(webhook_key: str, body: bytes) -> str:
    """Xero's signature of a delivery body (base64 text)."""
    digest = hmac.new(webhook_key.encode(), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def check_signature(request: WebhookRequest, webhook_key: str) -> None:
    """Raise WebhookRejected(401) unless x-xero-signature matches the raw body."""
    received = request.headers.get(SIGNATURE_HEADER)
    if not received:
        raise WebhookRejected("missing x-xero-signature header", status=401)
    expected = signature(webhook_key, request.body)
    # Bytes, not str: compare_digest refuses non-ASCII text, and a forger picks the header.
    if not hmac.compare_digest(expected.encode(), received.strip().encode()):
        raise WebhookRejected("x-xero-signature does not match the body (wrong webhook key, "
                              "or the body changed on the way)", status=401)


def parse_events(body: bytes, tenant_id: str | None = None) -> list[WebhookEvent]:
    """The contact/invoice events of a delivery; WebhookRejected(400) if it is not Xero's shape."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise WebhookRejected("body is not JSON (expected Xero's {\"events\": [...]})",
                              status=400) from None
    if not isinstance(data, Mapping) or not isinstance(data.get("events"), list):
        raise WebhookRejected("body has no \"events\" list", status=400)
    events = []
    for i, item in enumerate(data["events"]):
        event = _event(i, item, tenant_id)
        if event is not None:
            events.append(event)
    return events


def _event(i: int, item: Any, tenant_id: str | None) -> WebhookEvent | None:
    if not isinstance(item, Mapping):
        raise WebhookRejected(f"event {i} is not a JSON object", status=400)
    for key in ("resourceId", "eventCategory", "eventType"):
        if not isinstance(item.get(key), str) or not item[key]:
            raise WebhookRejected(f"event {i}: {key} is missing or not text", status=400)
    obj = CATEGORIES.get(item["eventCategory"])
    if obj is None:
        return None  # a category Liaison does not sync: accepted, not acted on
    if tenant_id and item.get("tenantId") and str(item["tenantId"]) != tenant_id:
        return None  # another organisation connected to the same app
    when = item.get("eventDateUtc")
    occurred = _rfc3339(when) if isinstance(when, str) else None
    event_id = f"{item['eventCategory']}:{item['resourceId']}:{item['eventType']}:{when or ''}"
    return WebhookEvent(event_id=event_id, object=obj, external_id=item["resourceId"],
                        action=ACTIONS.get(item["eventType"], "updated"),
                        occurred_at=occurred)


def _rfc3339(value: str) -> str | None:
    """Xero's "2024-06-21T01:15:39.902" (UTC, no zone) as "2024-06-21T01:15:39.902Z"."""
    text = value.strip()
    if not text or not text[:4].isdigit():
        return None
    return text if text.endswith("Z") else text + "Z"
