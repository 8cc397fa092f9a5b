"""The Pipedrive sandbox's webhook side: record changes as v2 events, deliver them.

Faithful to Pipedrive's webhooks v2 (vendor-apis.md section 4): one event per POST, body
{"meta": {action, entity, entity_id, id, company_id, user_id, webhook_id, timestamp,
attempt, change_source, version: "2.0"}, "data": {...}, "previous": {...} | null}; no
signature, only optional HTTP Basic credentials. A delivery answered with anything but 2xx
is tried again with meta.attempt + 1, at most `ATTEMPTS_MAX` times.

Emulator assumptions [emu]: a delete event carries data null and the deleted record in
`previous`; meta.id is a UUID.
"""

from __future__ import annotations

import base64
import threading
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

import httpx
import orjson

ATTEMPTS_MAX = 3
COMPANY_ID = 7_654_321
USER_ID = 1001
WEBHOOK_ID = 42
ENTITIES = {"persons": "person", "organizations": "organization", "deals": "deal"}


def basic_auth(user: str, password: str) -> str:
    """The Authorization header value Pipedrive sends with http_auth_user/password."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


class WebhookOutbox:
    """Events waiting to be delivered (bounded, thread-safe)."""

    def __init__(self, clock: Callable[[], int], *, keep: int = 10_000) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._pending: deque[dict[str, Any]] = deque(maxlen=keep)
        self.delivered: deque[tuple[int, dict[str, Any]]] = deque(maxlen=1000)

    def record(self, object_type: str, action: str, entity_id: int, source: str, *,
               data: Mapping[str, Any] | None, previous: Mapping[str, Any] | None,
               **meta: Any) -> dict[str, Any]:
        """Note one change as a v2 event; returns it."""
        event = {
            "meta": {"action": action, "entity": ENTITIES[object_type],
                     "entity_id": str(entity_id), "id": str(uuid.uuid4()),
                     "company_id": COMPANY_ID, "user_id": USER_ID, "webhook_id": WEBHOOK_ID,
                     "timestamp": self._clock(), "attempt": 1, "change_source": source,
                     "version": "2.0", **meta},
            "data": dict(data) if data is not None else None,
            "previous": dict(previous) if previous is not None else None,
        }
        with self._lock:
            self._pending.append(event)
        return event

    def pending(self) -> list[dict[str, Any]]:
        """Events not delivered yet, oldest first."""
        with self._lock:
            return list(self._pending)

    def send(self, url: str, *, user: str | None, password: str | None,
             events: list[dict[str, Any]] | None = None,
             tamper: Callable[[bytes], bytes] | None = None,
             timeout: float = 10.0) -> list[httpx.Response]:
        """POST each event (default: every pending one) to `url`; the answers, in order.

        `user`/`password` None sends no credentials; `tamper` changes a body after it was
        built. Pending events whose delivery failed are put back with attempt + 1.
        """
        own = events is None
        with self._lock:
            todo = list(self._pending) if own else [dict(e) for e in events or ()]
            if own:
                self._pending.clear()
        headers = {"Content-Type": "application/json"}
        if user is not None and password is not None:
            headers["Authorization"] = basic_auth(user, password)
        answers: list[httpx.Response] = []
        for event in todo:
            body = orjson.dumps(event)
            try:
                answer = httpx.post(url, content=tamper(body) if tamper else body,
                                    headers=headers, timeout=timeout)
            except httpx.HTTPError:
                if own:
                    self._retry(event)
                continue
            answers.append(answer)
            self.delivered.append((answer.status_code, event))
            if own and not answer.is_success:
                self._retry(event)
        return answers

    def _retry(self, event: dict[str, Any]) -> None:
        attempt = int(event["meta"]["attempt"]) + 1
        if attempt <= ATTEMPTS_MAX:
            with self._lock:
                self._pending.append({**event, "meta": {**event["meta"], "attempt": attempt}})
