"""The HubSpot sandbox's webhook side: record changes as HubSpot events, deliver them signed.

Faithful to HubSpot's Webhooks API v3 (vendor-apis.md section 1): a delivery is a POST whose
body is a JSON array of at most 100 events, carrying X-HubSpot-Signature-v3 (base64 HMAC
SHA-256 of method + uri + body + timestamp, keyed with the app's client secret) and
X-HubSpot-Request-Timestamp (epoch ms); the older v1 signature and
X-HubSpot-Signature-Version are sent alongside, as HubSpot does. A delivery answered with
anything but 2xx is tried again later with attemptNumber + 1, at most 10 times.

The signing here is written independently of connectors/hubspot/webhooks.py (the verifier)
on purpose: if both used one function, a mistake in it would sign and verify alike and no
test would notice.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import httpx
import orjson

BATCH_MAX = 100  # events per delivery
ATTEMPTS_MAX = 10
PORTAL_ID = 62515
APP_ID = 54321
SUBSCRIPTION_IDS = {"creation": 1001, "propertyChange": 1002, "deletion": 1003,
                    "restore": 1004, "merge": 1005}
# HubSpot's documented list of escapes the signed URI has decoded.
_DECODED = (("%3A", ":"), ("%2F", "/"), ("%3F", "?"), ("%40", "@"), ("%21", "!"),
            ("%24", "$"), ("%27", "'"), ("%28", "("), ("%29", ")"), ("%2A", "*"),
            ("%2C", ","), ("%3B", ";"))


def _signed_uri(uri: str) -> str:
    for escape, char in _DECODED:
        uri = uri.replace(escape, char).replace(escape.lower(), char)
    return uri


def signed_headers(client_secret: str, method: str, uri: str, body: bytes,
                   timestamp_ms: int) -> dict[str, str]:
    """The headers HubSpot sends with a delivery of `body` to `uri`."""
    stamp = str(timestamp_ms)
    source = method.encode() + _signed_uri(uri).encode() + body + stamp.encode()
    v3 = base64.b64encode(hmac.new(client_secret.encode(), source, hashlib.sha256).digest())
    v1 = hashlib.sha256(client_secret.encode() + body).hexdigest()
    return {"Content-Type": "application/json", "X-HubSpot-Signature-v3": v3.decode(),
            "X-HubSpot-Request-Timestamp": stamp, "X-HubSpot-Signature": v1,
            "X-HubSpot-Signature-Version": "v1"}


class WebhookOutbox:
    """Changes waiting to be delivered as HubSpot webhook events (bounded, thread-safe)."""

    def __init__(self, clock: Callable[[], int], *, keep: int = 10_000) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._pending: deque[dict[str, Any]] = deque(maxlen=keep)
        self._ids = itertools.count(1)
        self._stop: threading.Event | None = None
        self._thread: threading.Thread | None = None
        self.delivered: deque[tuple[int, list[dict[str, Any]]]] = deque(maxlen=1000)

    # -- recording ----------------------------------------------------------------------------

    def record(self, singular: str, change: str, object_id: int, source: str,
               **extra: Any) -> None:
        """Note one change, e.g. ("contact", "propertyChange", 12, "CRM_UI", propertyName=..)."""
        event = {"eventId": next(self._ids), "subscriptionId": SUBSCRIPTION_IDS.get(change, 1000),
                 "portalId": PORTAL_ID, "appId": APP_ID, "occurredAt": self._clock(),
                 "subscriptionType": f"{singular}.{change}", "attemptNumber": 0,
                 "objectId": object_id, "changeSource": source}
        event.update(extra)
        with self._lock:
            self._pending.append(event)

    def pending(self) -> list[dict[str, Any]]:
        """Events not delivered yet, oldest first."""
        with self._lock:
            return list(self._pending)

    def take(self) -> list[dict[str, Any]]:
        """Remove and return every pending event."""
        with self._lock:
            events = list(self._pending)
            self._pending.clear()
            return events

    def put_back(self, events: Iterable[dict[str, Any]]) -> None:
        """Events whose delivery failed: tried again next time, as HubSpot retries."""
        with self._lock:
            for event in events:
                if event["attemptNumber"] + 1 < ATTEMPTS_MAX:
                    self._pending.append({**event, "attemptNumber": event["attemptNumber"] + 1})

    # -- delivering ---------------------------------------------------------------------------

    def deliver(self, url: str, body: bytes, *, client_secret: str,
                timestamp_ms: int | None = None,
                tamper: Callable[[bytes], bytes] | None = None,
                timeout: float = 10.0) -> httpx.Response:
        """POST `body` to `url` signed as HubSpot would; `tamper` alters it after signing."""
        # The wall clock, not the sandbox's (which tests may move): HubSpot stamps the send.
        stamp = now_ms() if timestamp_ms is None else timestamp_ms
        headers = signed_headers(client_secret, "POST", url, body, stamp)
        sent = tamper(body) if tamper is not None else body
        return httpx.post(url, content=sent, headers=headers, timeout=timeout)

    def send(self, url: str, events: Sequence[Mapping[str, Any]] | None = None, *,
             client_secret: str, timestamp_ms: int | None = None,
             tamper: Callable[[bytes], bytes] | None = None) -> list[httpx.Response]:
        """Deliver `events` (default: every pending one) in batches of 100; answers in order.

        Pending events a batch failed to deliver (non-2xx, or no answer) are put back.
        """
        own = events is None
        todo = self.take() if own else [dict(e) for e in events or ()]
        answers: list[httpx.Response] = []
        for start in range(0, len(todo), BATCH_MAX):
            batch = todo[start:start + BATCH_MAX]
            body = orjson.dumps(batch)
            try:
                answer = self.deliver(url, body, client_secret=client_secret,
                                      timestamp_ms=timestamp_ms, tamper=tamper)
            except (httpx.HTTPError, httpx.InvalidURL):  # no answer: HubSpot retries later
                if own:
                    self.put_back(batch)
                continue
            answers.append(answer)
            self.delivered.append((answer.status_code, batch))
            if own and not answer.is_success:
                self.put_back(batch)
        return answers

    def subscribe(self, url: str, *, client_secret: str, interval: float = 0.2) -> None:
        """Deliver pending events to `url` every `interval` seconds until `unsubscribe`."""
        self.unsubscribe()
        stop = threading.Event()

        def loop() -> None:
            while not stop.wait(interval):
                if self.pending():
                    self.send(url, client_secret=client_secret)

        self._stop = stop
        self._thread = threading.Thread(target=loop, name="hubspot-sandbox-webhooks",
                                        daemon=True)
        self._thread.start()

    def unsubscribe(self, timeout: float = 5.0) -> None:
        """Stop automatic delivery (pending events stay pending)."""
        if self._stop is not None:
            self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
        self._stop = self._thread = None


def now_ms() -> int:
    """The current time in epoch milliseconds."""
    return int(time.time() * 1000)
