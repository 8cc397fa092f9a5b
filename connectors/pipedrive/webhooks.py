"""Pipedrive webhook (v2) deliveries: HTTP Basic credentials and the change a delivery announces.

Pipedrive does not sign webhooks (vendor-apis.md section 4): the only protection is the
optional HTTP Basic user and password set when the webhook is created
(`POST /v1/webhooks {..., http_auth_user, http_auth_password}`), sent back on every
delivery as `Authorization: Basic base64(user:password)`. Both are compared in constant
time, and both always, so the answer time says nothing about which one was wrong.

There is no timestamp to check freshness against a replay: Pipedrive retries failed
deliveries for a long time, and `meta.timestamp` sits in the (unsigned) body anyway. A
replay is dropped by event id (`meta.id`) downstream; knowing the password is what it takes
to forge one.

Body (one event per delivery):
    {"meta": {"action": "create|change|delete", "entity": "person", "entity_id": "1",
              "id": "<event id>", "timestamp": 1727447128, "attempt": 1, ...},
     "data": {...} | null, "previous": {...} | null}
A merge arrives as a delete (carrying `merged_to_id`) plus a change of the survivor.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import time
from collections.abc import Mapping
from typing import Any

import orjson

from hub.connector import WebhookEvent, WebhookRequest
from hub.errors import WebhookRejected

OBJECTS = {"person": "persons", "organization": "organizations", "deal": "deals"}
ACTIONS = {"create": "created", "change": "updated", "delete": "deleted"}


def check_basic_auth(request: WebhookRequest, user: str, password: str) -> None:
    """Raise WebhookRejected(401) unless the delivery carries exactly these credentials."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.strip().partition(" ")
    if not header or scheme.lower() != "basic":
        raise WebhookRejected("missing HTTP Basic credentials (set http_auth_user and "
                              "http_auth_password on the Pipedrive webhook)", status=401)
    try:
        decoded = base64.b64decode(token.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise WebhookRejected("Authorization header is not valid Basic credentials",
                              status=401) from None
    got_user, sep, got_password = decoded.partition(b":")
    # Both compared every time (`&`, not `and`): no early exit that timing could reveal.
    same_user = hmac.compare_digest(got_user, user.encode())
    same_password = hmac.compare_digest(got_password, password.encode())
    if not (sep and same_user & same_password):
        raise WebhookRejected("webhook credentials do not match the connection's "
                              "webhook_user / webhook_password", status=401)


def parse_event(body: bytes) -> list[WebhookEvent]:
    """The change a delivery announces (empty for objects Liaison does not sync)."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise WebhookRejected("body is not JSON (expected a Pipedrive v2 webhook event)",
                              status=400) from None
    if not isinstance(data, Mapping):
        raise WebhookRejected("body is not a JSON object with a meta block", status=400)
    meta = data.get("meta")
    if not isinstance(meta, Mapping):
        raise WebhookRejected("meta is missing: is the webhook set to version 2.0?",
                              status=400)
    for key in ("action", "entity", "entity_id", "id"):
        value = meta.get(key)
        if value is None or value == "" or isinstance(value, (bool, dict, list)):
            raise WebhookRejected(f"meta.{key} is missing or not a value", status=400)
    obj = OBJECTS.get(str(meta["entity"]))
    if obj is None:
        return []  # activities, notes...: accepted, not acted on (no retry storm)
    action = ACTIONS.get(str(meta["action"]), "updated")  # an unknown kind: read it again
    if action == "deleted" and _merged_to(data) is not None:
        action = "merged"
    return [WebhookEvent(event_id=str(meta["id"]), object=obj,
                         external_id=str(meta["entity_id"]), action=action,
                         occurred_at=_rfc3339(meta.get("timestamp")))]


def _merged_to(data: Mapping[str, Any]) -> Any:
    for part in ("meta", "previous", "data"):
        block = data.get(part)
        if isinstance(block, Mapping) and block.get("merged_to_id") not in (None, ""):
            return block["merged_to_id"]
    return None


def _rfc3339(stamp: Any) -> str | None:
    """meta.timestamp (epoch seconds) as RFC 3339 UTC; None if absent or not a number."""
    if isinstance(stamp, bool) or not isinstance(stamp, (int, float, str)):
        return None
    try:
        seconds = int(float(stamp))
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))
    except (OverflowError, OSError, ValueError):
        return None
