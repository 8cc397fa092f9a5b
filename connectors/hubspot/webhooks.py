"""HubSpot webhook deliveries: signature v3 checks and the events a delivery announces.

Signature v3 (HubSpot "Validating requests", and `hubspot/utils/signature.py` in HubSpot's
Python SDK):

    X-HubSpot-Signature-v3      base64(HMAC-SHA256(key=client_secret,
                                                   msg=method + uri + rawBody + timestamp))
    X-HubSpot-Request-Timestamp epoch milliseconds; older than 5 minutes is refused

`uri` is the full URL HubSpot called (scheme, host, path, query) with the documented escapes
decoded first (%3A : %2F / %3F ? %40 @ %21 ! %24 $ %27 ' %28 ( %29 ) %2A * %2C , %3B ;).
The v1/v2 signatures HubSpot still sends alongside are ignored: they carry no timestamp, so
a captured delivery could be replayed forever.

The body is a JSON array of up to 100 events; each becomes a WebhookEvent. Events of objects
Liaison does not sync (tickets, conversations...) are left out rather than refused, so
HubSpot does not retry a delivery that was fine.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from collections.abc import Mapping
from typing import Any

import orjson

from hub.connector import WebhookEvent, WebhookRequest
from hub.errors import WebhookRejected

SIGNATURE_HEADER = "x-hubspot-signature-v3"
TIMESTAMP_HEADER = "x-hubspot-request-timestamp"
MAX_AGE_MS = 5 * 60 * 1000  # HubSpot's documented window; also the tolerance for clock skew

# The escapes HubSpot's docs say to decode before signing. Only these: decoding everything
# (urllib's unquote) would turn %25 or %2B into characters HubSpot signed as escapes.
_URI_DECODES = {"3A": ":", "2F": "/", "3F": "?", "40": "@", "21": "!", "24": "$", "27": "'",
                "28": "(", "29": ")", "2A": "*", "2C": ",", "3B": ";"}
_URI_ESCAPE = re.compile(r"%(3A|2F|3F|40|21|24|27|28|29|2A|2C|3B)", re.IGNORECASE)

# subscriptionType "contact.propertyChange" -> object, action
OBJECTS = {"contact": "contacts", "company": "companies", "deal": "deals"}
# The generic "object.*" subscriptions name the type by objectTypeId instead.
OBJECT_TYPE_IDS = {"0-1": "contacts", "0-2": "companies", "0-3": "deals"}
ACTIONS = {"creation": "created", "propertyChange": "updated", "deletion": "deleted",
           "privacyDeletion": "deleted", "restore": "restored", "merge": "merged",
           "associationChange": "updated"}


def decode_uri(uri: str) -> str:
    """The URI with HubSpot's listed escapes decoded (one pass: '%253A' stays as it is)."""
    return _URI_ESCAPE.sub(lambda m: _URI_DECODES[m.group(1).upper()], uri)


def signature_v3(client_secret: str, method: str, uri: str, body: bytes,
                 timestamp: str) -> str:
    """HubSpot's v3 signature of one request (base64 text)."""
    message = method.encode() + decode_uri(uri).encode() + body + timestamp.encode()
    digest = hmac.new(client_secret.encode(), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def check_signature(request: WebhookRequest, client_secret: str, *,
                    now_ms: int | None = None) -> None:
    """Raise WebhookRejected(401) unless the request carries a fresh, valid v3 signature."""
    headers = request.headers
    received = headers.get(SIGNATURE_HEADER)
    stamp = headers.get(TIMESTAMP_HEADER)
    if not received:
        raise WebhookRejected("missing X-HubSpot-Signature-v3 header", status=401)
    if not stamp:
        raise WebhookRejected("missing X-HubSpot-Request-Timestamp header", status=401)
    try:
        sent_ms = int(stamp.strip())
    except ValueError:
        raise WebhookRejected("X-HubSpot-Request-Timestamp is not epoch milliseconds",
                              status=401) from None
    now = int(time.time() * 1000) if now_ms is None else now_ms
    if now - sent_ms > MAX_AGE_MS:
        raise WebhookRejected(f"timestamp too old: sent {(now - sent_ms) // 1000} s ago, "
                              f"at most {MAX_AGE_MS // 1000} s accepted", status=401)
    if sent_ms - now > MAX_AGE_MS:
        raise WebhookRejected(f"timestamp is {(sent_ms - now) // 1000} s in the future, "
                              f"at most {MAX_AGE_MS // 1000} s of clock skew accepted",
                              status=401)
    expected = signature_v3(client_secret, request.method.upper(), request.url, request.body,
                            stamp)
    # Compared as bytes: compare_digest refuses non-ASCII str, and a forger chooses the header.
    if not hmac.compare_digest(expected.encode(), received.strip().encode()):
        raise WebhookRejected("signature does not match (wrong client secret, or the body or "
                              "URL changed on the way)", status=401)


def parse_events(body: bytes) -> list[WebhookEvent]:
    """The events of a delivery body; WebhookRejected(400) if it is not HubSpot's shape."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise WebhookRejected("body is not JSON (expected an array of HubSpot events)",
                              status=400) from None
    if not isinstance(data, list):
        raise WebhookRejected(f"body is a JSON {_kind(data)}, expected an array of events",
                              status=400)
    events = []
    for i, item in enumerate(data):
        event = _event(i, item)
        if event is not None:
            events.append(event)
    return events


def _event(i: int, item: Any) -> WebhookEvent | None:
    if not isinstance(item, Mapping):
        raise WebhookRejected(f"event {i} is a JSON {_kind(item)}, expected an object",
                              status=400)
    for key in ("eventId", "subscriptionType", "objectId"):
        value = item.get(key)
        if value is None or isinstance(value, (bool, dict, list)) or value == "":
            raise WebhookRejected(f"event {i}: {key} is missing or not a value", status=400)
    kind = str(item["subscriptionType"])
    prefix, _, suffix = kind.partition(".")
    obj = (OBJECT_TYPE_IDS.get(str(item.get("objectTypeId"))) if prefix == "object"
           else OBJECTS.get(prefix))
    if obj is None or not suffix:
        return None  # an object Liaison does not sync: accepted, not acted on
    occurred = item.get("occurredAt")
    return WebhookEvent(event_id=str(item["eventId"]), object=obj,
                        external_id=str(item["objectId"]),
                        # A change of a kind not listed still means "read it again".
                        action=ACTIONS.get(suffix, "updated"),
                        occurred_at=_rfc3339(occurred) if isinstance(occurred, int)
                        and not isinstance(occurred, bool) else None)


def _rfc3339(ms: int) -> str | None:
    try:
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + \
            f".{ms % 1000:03d}Z"
    except (OverflowError, OSError, ValueError):
        return None


def _kind(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean",
            type(None): "null"}.get(type(value), "number")
