"""The hub's HTTP face (Starlette): webhooks in, /healthz for probes.

    POST /webhooks/{system}   a vendor's signed delivery (see hub.web.webhooks)
    GET  /healthz             {"status": "ok", "store": "ok"}; 503 when the store is down
    GET  /metrics             Prometheus exposition (see hub.web.metrics, hub.metrics)
    /, /api/v1/...            the dashboard and its JSON API, when given (hub.web.dashboard)

Every response carries the security headers of hub.web.security.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from hub.config.model import Settings
from hub.errors import HubError
from hub.store import Store
from hub.web.dashboard import Dashboard
from hub.web.metrics import metrics_route
from hub.web.security import SecurityHeaders
from hub.web.webhooks import OnEvents, WebhookReceiver


def make_app(settings: Settings, store: Store, on_events: OnEvents, *,
             public_url: str | None = None, dashboard: Dashboard | None = None) -> Starlette:
    """The ASGI app for `settings`.

    `on_events(system, events)` receives each delivery's new events (replays removed); it is
    called while the event ids are being recorded, so it must be quick (put work on a queue)
    and raise if it could not take them: the vendor is then told to retry. `public_url` is
    the base URL vendors call when the hub sits behind a proxy (signatures cover the URL).
    `dashboard` adds the dashboard's pages and API (each behind its own login).
    """
    receiver = WebhookReceiver(settings, store, on_events, public_url=public_url)

    async def healthz(_request: Request) -> JSONResponse:
        try:
            await run_in_threadpool(store.ping)
        except HubError:
            return JSONResponse({"status": "unavailable", "store": "unreachable"},
                                status_code=503)
        return JSONResponse({"status": "ok", "store": "ok"})

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await run_in_threadpool(receiver.close)

    async def handshake(_request: Request) -> Response:
        # Some vendors (Trello) check a callback URL with a HEAD before they deliver to
        # it; nothing is read or trusted here, the deliveries themselves are verified.
        return Response(status_code=200)

    app = Starlette(routes=[
        Route("/webhooks/{system}", receiver.endpoint, methods=["POST"]),
        Route("/webhooks/{system}", handshake, methods=["HEAD"]),
        Route("/healthz", healthz, methods=["GET"]),
        metrics_route(settings, store),
        *(dashboard.routes() if dashboard is not None else []),
    ], lifespan=lifespan)
    app.add_middleware(SecurityHeaders)
    app.state.receiver = receiver
    return app
