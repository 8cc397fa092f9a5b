"""POST /webhooks/{system}: check a vendor's delivery, drop replays, hand the changes on.

What the vendor is told:
    200  accepted (also when every event was a replay: a 2xx stops the vendor's retries)
    400  malformed body; 401 forged, tampered or stale (the connector's WebhookRejected)
    404  no connected system of that name, or its connector takes no webhooks
    413  body larger than BODY_MAX
    503  the hub cannot take it now (store down, secret not set): the vendor retries later

Answers carry a short reason, never a secret or the signature received. An event id is
remembered only in the transaction that also hands the events to `on_events`, so a
delivery the hub failed to hand on is not mistaken for a replay when the vendor retries.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse

from hub import registry
from hub.config.model import Settings
from hub.connector import Connector, WebhookEvent, WebhookRequest
from hub.errors import HubError, WebhookRejected
from hub.store import Store

log = logging.getLogger("hub.web.webhooks")

OnEvents = Callable[[str, list[WebhookEvent]], None]
ConnectorFactory = Callable[..., Connector]
BODY_MAX = 1 << 20  # HubSpot sends at most 100 events (~40 kB); nothing legitimate is near
KEEP_EVENT_IDS = timedelta(hours=48)  # HubSpot retries a delivery for about 24 hours
PRUNE_EVERY = 3600.0  # seconds between clean-ups of old event ids
REASON_MAX = 200


class _NotFound(Exception):
    """The system cannot take webhooks; the message says why."""


def webhook_systems(settings: Settings) -> list[str]:
    """Connected systems whose connector declares webhooks, in config order."""
    out = []
    for name, system in settings.systems.items():
        if system.connection is None:
            continue
        try:
            cls = registry.get(system.connection.connector)
        except HubError:
            continue
        if cls.capabilities.webhooks:
            out.append(name)
    return out


def delivery_url(request: Request, public_url: str | None) -> str:
    """The URL the vendor called (and signed): `public_url` as the base when behind a proxy."""
    scope = request.scope
    raw = scope.get("raw_path") or quote(scope["path"]).encode()
    path = raw.split(b"?", 1)[0].decode("latin-1")
    query = scope.get("query_string") or b""
    base = public_url.rstrip("/") if public_url else \
        f"{request.url.scheme}://{request.url.netloc}"
    return base + path + ("?" + query.decode("latin-1") if query else "")


def _reply(status: int, **body: Any) -> JSONResponse:
    return JSONResponse(body, status_code=status)


def _short(text: str, request: WebhookRequest) -> str:
    """A reason safe to send back: no echoed signature header, one short line."""
    for name, value in request.headers.items():
        if "signature" in name and value and len(value) >= 8:
            text = text.replace(value, "***")
    text = " ".join(text.split())
    return text if len(text) <= REASON_MAX else text[: REASON_MAX - 3] + "..."


class WebhookReceiver:
    """Verifies deliveries with each system's connector, remembers event ids, calls on_events."""

    def __init__(self, settings: Settings, store: Store, on_events: OnEvents, *,
                 public_url: str | None = None,
                 connector_factory: ConnectorFactory = registry.create) -> None:
        self.settings = settings
        self.store = store
        self.on_events = on_events
        self.public_url = public_url
        self.factory = connector_factory
        self._connectors: dict[str, Connector] = {}
        self._lock = threading.Lock()
        self._last_prune = 0.0

    # -- HTTP -------------------------------------------------------------------------------

    async def endpoint(self, request: Request) -> JSONResponse:
        """The Starlette endpoint: read the raw body, do the blocking work in a thread."""
        system = str(request.path_params["system"])
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > BODY_MAX:
            return _reply(413, error=f"body larger than {BODY_MAX} bytes")
        chunks: list[bytes] = []
        size = 0
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if size > BODY_MAX:
                    return _reply(413, error=f"body larger than {BODY_MAX} bytes")
                chunks.append(chunk)
        except ClientDisconnect:
            return _reply(400, error="the sender disconnected before the body was complete")
        incoming = WebhookRequest(method=request.method,
                                  url=delivery_url(request, self.public_url),
                                  headers={k.lower(): v for k, v in request.headers.items()},
                                  body=b"".join(chunks))
        status, body = await run_in_threadpool(self.handle, system, incoming)
        return _reply(status, **body)

    # -- the work (blocking; runs in the thread pool) ---------------------------------------

    def handle(self, system: str, request: WebhookRequest) -> tuple[int, dict[str, Any]]:
        """Verify, de-duplicate and hand on one delivery; returns (status, JSON body)."""
        try:
            connector = self.connector(system)
        except _NotFound as exc:
            return 404, {"error": str(exc)}
        except HubError as exc:
            log.error("webhook for %s: connector could not be set up: %s", system, exc)
            return 503, {"error": f"the hub cannot take webhooks for {system} right now "
                                  "(see the hub's log)"}
        try:
            events = self._verify(connector, request)
        except WebhookRejected as exc:
            reason = _short(str(exc), request)
            log.warning("webhook for %s refused (%s): %s", system, exc.status, reason)
            return exc.status, {"error": reason}
        except NotImplementedError:
            return 404, {"error": f"system {system} does not take webhooks"}
        except HubError as exc:  # a config problem on our side (secret not set...)
            log.error("webhook for %s could not be checked: %s", system, exc)
            return 503, {"error": f"the hub cannot check webhooks for {system} right now "
                                  "(see the hub's log)"}
        try:
            new = self._accept(system, events)
        except HubError as exc:
            log.error("webhook for %s not recorded (the vendor will retry): %s", system, exc)
            return 503, {"error": "the hub could not record the delivery; try again later"}
        except Exception:  # on_events is a plug-in point: its failure must not lose events
            log.exception("webhook for %s: handing the events on failed", system)
            return 503, {"error": "the hub could not record the delivery; try again later"}
        return 200, {"accepted": len(new), "duplicates": len(events) - len(new)}

    def connector(self, system: str) -> Connector:
        """The system's connector, created on first use and kept for later deliveries."""
        with self._lock:
            found = self._connectors.get(system)
            if found is not None:
                return found
            sys_ = self.settings.systems.get(system)
            if sys_ is None or sys_.connection is None:
                raise _NotFound(f"no connected system named {system!r}")
            cls = registry.get(sys_.connection.connector)
            if not cls.capabilities.webhooks:
                raise _NotFound(f"system {system} (connector {sys_.connection.connector}) "
                                "does not take webhooks")
            made = self.factory(sys_.connection)
            self._connectors[system] = made
            return made

    @staticmethod
    def _verify(connector: Connector, request: WebhookRequest) -> list[WebhookEvent]:
        verify: Callable[[WebhookRequest], list[WebhookEvent]] | None = getattr(
            connector, "verify_webhook", None)
        if verify is None:
            raise NotImplementedError
        return verify(request)

    def _accept(self, system: str, events: Sequence[WebhookEvent]) -> list[WebhookEvent]:
        """Events not seen before, handed to on_events in the transaction remembering them."""
        if not events:
            return []
        with self.store.begin() as conn:
            fresh = set(self.store.accept_webhook_events(conn, system,
                                                         [e.event_id for e in events]))
            new = []
            for event in events:
                if event.event_id in fresh:
                    fresh.discard(event.event_id)  # the same id twice in one delivery: once
                    new.append(event)
            if new:
                self.on_events(system, new)
            self._maybe_prune(conn)
        return new

    def _maybe_prune(self, conn: Any) -> None:
        now = time.monotonic()
        if now - self._last_prune < PRUNE_EVERY:
            return
        self._last_prune = now
        cutoff = (datetime.now(UTC) - KEEP_EVENT_IDS).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        self.store.prune_webhook_events(conn, cutoff)

    def close(self) -> None:
        """Close the connectors opened for deliveries."""
        with self._lock:
            for connector in self._connectors.values():
                try:
                    connector.close()
                except Exception:  # closing one must not stop the others
                    log.warning("closing a connector failed", exc_info=True)
            self._connectors.clear()
