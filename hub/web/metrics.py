"""GET /metrics: the Prometheus exposition of the hub (see hub.metrics).

Prometheus usually scrapes over a private network without credentials, so /metrics is open
by default. Set HUB_METRICS_TOKEN to require `Authorization: Bearer <token>` (Prometheus:
`authorization: {credentials_file: ...}` in the scrape config); the token is compared in
constant time and never logged.
"""

from __future__ import annotations

import hmac
import os

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from hub.config.model import Settings
from hub.store import Store

TOKEN_ENV = "HUB_METRICS_TOKEN"


def metrics_route(settings: Settings, store: Store) -> Route:
    """The /metrics route for one hub (the token, if any, is read from the environment now)."""
    from hub.metrics.exposition import render, scrape_registry

    registry = scrape_registry(settings, store)
    token = os.environ.get(TOKEN_ENV) or None
    expected = f"Bearer {token}".encode() if token else b""

    async def metrics(request: Request) -> Response:
        if token is not None:
            given = request.headers.get("authorization", "").encode()
            if not hmac.compare_digest(given, expected):
                return PlainTextResponse(
                    f"/metrics needs the bearer token set in {TOKEN_ENV}\n", status_code=401,
                    headers={"WWW-Authenticate": 'Bearer realm="liaison metrics"'})
        # Store queries and file reads: off the event loop.
        body, content_type = await run_in_threadpool(render, registry,
                                                     request.headers.get("accept"))
        return Response(body, headers={"Content-Type": content_type})

    return Route("/metrics", metrics, methods=["GET"])
