"""A background thread that delivers a sandbox's pending webhook changes every so often.

Used by `hub sandbox VENDOR --webhook-url URL` for the sandboxes whose changes are kept in
a pending list and sent, signed, by their own delivery function (Xero, Trello, QuickBooks,
Jira). The pump only decides *when*: `pending()` says whether anything changed since the
last delivery and `send()` delivers it with the vendor's signing. A delivery that gets no
answer (the hub is not up yet) is tried again on the next tick, as far as the sandbox's
own delivery function keeps undelivered changes pending.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import httpx


class WebhookPump:
    """Calls `send()` every `interval` seconds while `pending()` is true, until `stop()`."""

    def __init__(self, name: str, pending: Callable[[], bool], send: Callable[[], object],
                 *, interval: float = 0.5) -> None:
        self.name = name
        self.interval = interval
        self.errors = 0  # deliveries that got no answer
        self._pending = pending
        self._send = send
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> WebhookPump:
        """Start the daemon thread (once)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop delivering (changes not delivered yet stay pending)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                if self._pending():
                    self._send()
            except (httpx.HTTPError, httpx.InvalidURL, OSError):
                self.errors += 1  # no answer: the changes stay pending, tried next tick
