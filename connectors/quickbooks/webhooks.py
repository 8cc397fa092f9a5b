"""QuickBooks Online webhook deliveries: the intuit-signature check and the events announced.

    intuit-signature   base64(HMAC-SHA256(key=verifier token, msg=rawBody))

Two payload formats arrive, and both are parsed:
- legacy: {"eventNotifications": [{"realmId", "dataChangeEvent": {"entities": [{"name",
  "id", "operation": Create|Update|Delete|Merge|Void|Emailed, "lastUpdated"}]}}]};
- CloudEvents (since 2025/26): a JSON array of {"specversion": "1.0", "id", "type":
  "qbo.invoice.updated.v1", "time", "intuitentityid", "intuitaccountid", "data"}.

The signature covers no timestamp, so a delivery's age cannot be proven: replays are dropped
downstream by event id (CloudEvents `id`; for legacy events an id built from the event's
own content, so the same event replayed gets the same id). Delivery is at-least-once and
unordered: every event only tells the engine to re-read the record. Entities Liaison does
not sync (Vendor, Bill, ...) and events of another realm connected to the same app are left
out, not refused, so QBO does not retry a delivery that was fine.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from hub.connector import WebhookEvent, WebhookRequest
from hub.errors import WebhookRejected

SIGNATURE_HEADER = "intuit-signature"
ENTITIES = {"customer": "Customer", "invoice": "Invoice", "payment": "Payment"}
# Legacy operations and CloudEvents verbs -> WebhookEvent.action. A voided or emailed
# invoice still exists: it changed. A merge folds one customer into another: the survivor
# changed and the other is gone; QBO names the survivor, so it reads as "merged".
ACTIONS = {"create": "created", "created": "created", "update": "updated",
           "updated": "updated", "delete": "deleted", "deleted": "deleted", "merge": "merged",
           "merged": "merged", "void": "updated", "voided": "updated", "emailed": "updated"}


def signature(verifier_token: str, body: bytes) -> str:
    """QBO's signature of a delivery body (base64 text)."""
    digest = hmac.new(verifier_token.encode(), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def check_signature(request: WebhookRequest, verifier_token: str) -> None:
    """Raise WebhookRejected(401) unless intuit-signature matches the raw body."""
    received = request.headers.get(SIGNATURE_HEADER)
    if not received:
        raise WebhookRejected("missing intuit-signature header", status=401)
    expected = signature(verifier_token, request.body)
    # Bytes, not str: compare_digest refuses non-ASCII text, and a forger picks the header.
    if not hmac.compare_digest(expected.encode(), received.strip().encode()):
        raise WebhookRejected("intuit-signature does not match the body (wrong verifier "
                              "token, or the body changed on the way)", status=401)


def parse_events(body: bytes, realm_id: str | None = None) -> list[WebhookEvent]:
    """The customer/invoice/payment events of a delivery in either format; 400 if neither."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise WebhookRejected("body is not JSON (expected QBO's eventNotifications object or "
                              "a CloudEvents array)", status=400) from None
    if isinstance(data, list):
        return [e for i, item in enumerate(data)
                if (e := _cloud_event(i, item, realm_id)) is not None]
    if isinstance(data, Mapping) and isinstance(data.get("eventNotifications"), list):
        events = []
        for n, note in enumerate(data["eventNotifications"]):
            events.extend(_notification(n, note, realm_id))
        return events
    raise WebhookRejected("body is neither {\"eventNotifications\": [...]} nor a CloudEvents "
                          "array", status=400)


def _notification(n: int, note: Any, realm_id: str | None) -> list[WebhookEvent]:
    if not isinstance(note, Mapping):
        raise WebhookRejected(f"eventNotifications[{n}] is not a JSON object", status=400)
    realm = str(note.get("realmId") or "")
    change = note.get("dataChangeEvent")
    entities = change.get("entities") if isinstance(change, Mapping) else None
    if not isinstance(entities, list):
        raise WebhookRejected(f"eventNotifications[{n}].dataChangeEvent.entities is not a "
                              f"list", status=400)
    if realm_id and realm and realm != realm_id:
        return []  # another company connected to the same app
    events = []
    for i, item in enumerate(entities):
        where = f"eventNotifications[{n}].dataChangeEvent.entities[{i}]"
        if not isinstance(item, Mapping):
            raise WebhookRejected(f"{where} is not a JSON object", status=400)
        for key in ("name", "id", "operation"):
            if not isinstance(item.get(key), str) or not item[key]:
                raise WebhookRejected(f"{where}: {key} is missing or not text", status=400)
        obj = ENTITIES.get(item["name"].lower())
        if obj is None:
            continue
        when = item.get("lastUpdated") if isinstance(item.get("lastUpdated"), str) else None
        event_id = f"{realm}:{obj}:{item['id']}:{item['operation']}:{when or ''}"
        events.append(WebhookEvent(event_id=event_id, object=obj, external_id=item["id"],
                                   action=ACTIONS.get(item["operation"].lower(), "updated"),
                                   occurred_at=_rfc3339(when)))
    return events


def _cloud_event(i: int, item: Any, realm_id: str | None) -> WebhookEvent | None:
    if not isinstance(item, Mapping):
        raise WebhookRejected(f"event {i} is not a JSON object", status=400)
    for key in ("id", "type", "intuitentityid"):
        if not isinstance(item.get(key), str) or not item[key]:
            raise WebhookRejected(f"event {i}: {key} is missing or not text", status=400)
    parts = item["type"].split(".")  # qbo.invoice.updated.v1
    if len(parts) < 3 or parts[0] != "qbo":
        raise WebhookRejected(f"event {i}: type {item['type']!r} is not like "
                              f"qbo.<entity>.<action>.v1", status=400)
    obj = ENTITIES.get(parts[1].lower())
    realm = str(item.get("intuitaccountid") or "")
    if obj is None or (realm_id and realm and realm != realm_id):
        return None
    when = item.get("time") if isinstance(item.get("time"), str) else None
    return WebhookEvent(event_id=item["id"], object=obj, external_id=item["intuitentityid"],
                        action=ACTIONS.get(parts[2].lower(), "updated"),
                        occurred_at=_rfc3339(when))


def _rfc3339(value: str | None) -> str | None:
    """QBO's "2024-05-01T17:00:00.000Z" (or an offset) as RFC 3339 UTC; None if unreadable."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    moment = parsed.astimezone(UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond // 1000:03d}"
    return text + "Z"
