"""Jira webhook deliveries: the admin-webhook signature and the change a delivery announces.

An admin webhook registered with a secret is signed (vendor-apis.md section 6):

    X-Hub-Signature                  sha256=<hex HMAC-SHA256(key=secret, msg=rawBody)>
    X-Atlassian-Webhook-Identifier   the delivery's id; a retry carries the same id, so the
                                     hub's event store drops it as a replay
    X-Atlassian-Webhook-Retry        the retry number (not needed here)

The signature covers only the body, so freshness comes from the body's own "timestamp"
(epoch ms, signed with it): a delivery older than `max_age_ms` is refused as stale, which
keeps replays of old captures out once their identifier has left the hub's replay memory
(48 h). The default age of 24 h leaves Jira's retries of a failed delivery room.

Body: {"timestamp", "webhookEvent": "jira:issue_created|jira:issue_updated|jira:issue_deleted",
"issue": {"id", "key", "fields"...}, "changelog"...}. Comment events (comment_created...)
change the issue they belong to, so they read as issue updates; project_created/updated/
deleted concern projects (keyed by project key, as the connector reads them). Other events
are accepted and not acted on, so Jira does not retry a delivery that was fine.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from typing import Any

import orjson

from hub.connector import WebhookEvent, WebhookRequest
from hub.errors import WebhookRejected

SIGNATURE_HEADER = "x-hub-signature"
IDENTIFIER_HEADER = "x-atlassian-webhook-identifier"
MAX_AGE_MS = 24 * 3600 * 1000
MAX_SKEW_MS = 5 * 60 * 1000  # a timestamp this far in the future is still accepted

ISSUE_EVENTS = {"jira:issue_created": "created", "jira:issue_updated": "updated",
                "jira:issue_deleted": "deleted"}
PROJECT_EVENTS = {"project_created": "created", "project_updated": "updated",
                  "project_deleted": "deleted", "project_soft_deleted": "deleted"}


def signature(secret: str, body: bytes) -> str:
    """The X-Hub-Signature value Jira sends for `body`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def check_signature(request: WebhookRequest, secret: str) -> None:
    """Raise WebhookRejected(401) unless X-Hub-Signature is the body's HMAC with `secret`."""
    received = request.headers.get(SIGNATURE_HEADER)
    if not received:
        raise WebhookRejected("missing X-Hub-Signature header (is the webhook registered "
                              "with a secret?)", status=401)
    method, _, digest = received.strip().partition("=")
    if method.lower() != "sha256" or not digest:
        raise WebhookRejected("X-Hub-Signature is not of the form sha256=<hex>", status=401)
    expected = hmac.new(secret.encode(), request.body, hashlib.sha256).hexdigest()
    # Compared as bytes: compare_digest refuses non-ASCII str, and a forger chooses the header.
    if not hmac.compare_digest(expected.encode(), digest.strip().lower().encode()):
        raise WebhookRejected("signature does not match (wrong webhook_secret, or the body "
                              "changed on the way)", status=401)


def parse_event(request: WebhookRequest, *, now_ms: int | None = None,
                max_age_ms: int = MAX_AGE_MS) -> list[WebhookEvent]:
    """The change one (signature-checked) delivery announces; [] for events not synced."""
    try:
        data = orjson.loads(request.body)
    except orjson.JSONDecodeError:
        raise WebhookRejected("body is not JSON (expected a Jira webhook event)",
                              status=400) from None
    if not isinstance(data, Mapping):
        raise WebhookRejected("body is not a JSON object (expected a Jira webhook event)",
                              status=400)
    kind = data.get("webhookEvent")
    if not isinstance(kind, str) or not kind:
        raise WebhookRejected("webhookEvent is missing", status=400)
    stamp = data.get("timestamp")
    if not isinstance(stamp, int) or isinstance(stamp, bool):
        raise WebhookRejected("timestamp is missing or not epoch milliseconds", status=400)
    now = int(time.time() * 1000) if now_ms is None else now_ms
    if now - stamp > max_age_ms:
        raise WebhookRejected(f"stale delivery: sent {(now - stamp) // 1000} s ago, at most "
                              f"{max_age_ms // 1000} s accepted", status=401)
    if stamp - now > MAX_SKEW_MS:
        raise WebhookRejected(f"timestamp is {(stamp - now) // 1000} s in the future",
                              status=401)
    target = _target(kind, data)
    if target is None:
        return []
    obj, external_id, action = target
    event_id = request.headers.get(IDENTIFIER_HEADER) or f"{kind}:{external_id}:{stamp}"
    return [WebhookEvent(event_id=event_id.strip(), object=obj, external_id=external_id,
                         action=action, occurred_at=_rfc3339(stamp))]


def _target(kind: str, data: Mapping[str, Any]) -> tuple[str, str, str] | None:
    if kind in ISSUE_EVENTS or kind.startswith("comment_"):
        issue = data.get("issue")
        ident = issue.get("id") if isinstance(issue, Mapping) else None
        if ident in (None, "") or isinstance(ident, (bool, dict, list)):
            raise WebhookRejected(f"{kind}: issue.id is missing", status=400)
        return "issues", str(ident), ISSUE_EVENTS.get(kind, "updated")
    if kind in PROJECT_EVENTS:
        project = data.get("project")
        key = project.get("key") if isinstance(project, Mapping) else None
        if not isinstance(key, str) or not key:
            raise WebhookRejected(f"{kind}: project.key is missing", status=400)
        return "projects", key, PROJECT_EVENTS[kind]
    return None


def _rfc3339(ms: int) -> str | None:
    try:
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + \
            f".{ms % 1000:03d}Z"
    except (OverflowError, OSError, ValueError):
        return None
