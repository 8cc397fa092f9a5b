"""The demo's last step: serve the dashboard over its store until Ctrl-C (or SIGTERM).

The dashboard gets a token made up for the session (printed once, and written to the demo
folder's README, which only its owner may read). "Run now" runs flows in this process,
against the sandboxes that keep running beside the server.
"""

from __future__ import annotations

import secrets
import signal
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn

from hub.config.model import Settings
from hub.demo import workspace
from hub.errors import HubError
from hub.store import Store
from hub.web.app import make_app
from hub.web.auth import ENV_TOKEN, AuthConfig
from hub.web.dashboard import Dashboard, run_now_trigger
from hub.web.trigger import FlowTrigger

HOST = "127.0.0.1"

LOGIN = """
The dashboard (while `hub demo` runs):

  {url}
  token: {token}

The token is made up for this session; the next `hub demo` makes another.
"""


def listen(port: int) -> socket.socket:
    """A listening socket on 127.0.0.1:`port` (0: any free port).

    The demo binds it before anything else, so a port in use is reported at once rather
    than after the syncs, and whoever reads the printed URL finds the server there."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((HOST, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise HubError(f"cannot serve the dashboard on {HOST}:{port}: "
                       f"{exc.strerror or exc}; choose another port with --port "
                       "(0: any free port)") from exc
    return sock


@contextmanager
def _stop_on_signals(server: Any) -> Iterator[None]:
    """SIGINT and SIGTERM end `server` gracefully, then the demo's cleanup runs.

    Installed before the URL is printed: a signal that comes before uvicorn has started
    still stops it (it checks `should_exit` as it starts). uvicorn puts its own handlers in
    place while it runs and re-raises the signal it caught once it has shut down; with
    these handlers back in place that re-raise only asks again for what is done, instead
    of killing the process before the sandboxes are stopped."""
    def stop(_sig: int, _frame: FrameType | None) -> None:
        server.should_exit = True

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def serve_dashboard(settings: Settings, store: Store, directory: Path, sock: socket.socket,
                    echo: Callable[[str], None]) -> None:
    """Serve the dashboard for `settings` on the listening `sock` until stopped."""
    token = secrets.token_urlsafe(32)
    # Only the session's token: a HUB_DASHBOARD_USER/PASSWORD in the shell is not the demo's.
    auth = AuthConfig.from_env({ENV_TOKEN: token}, host=HOST)
    # As `hub serve` does on the embedded default: webhooks and Run now both run flows in
    # this process, one queue each.
    webhooks = FlowTrigger(settings, store)
    runs = run_now_trigger(settings, store)
    try:
        dashboard = Dashboard(settings, store, auth, run_now=runs.enqueue)
        app = make_app(settings, store, webhooks, dashboard=dashboard)
        url = f"http://{HOST}:{sock.getsockname()[1]}/"
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        try:
            with _stop_on_signals(server):
                workspace.write_readme(directory, LOGIN.format(url=url, token=token))
                echo(f"Dashboard: {url}  token: {token}")
                echo(f"(also in {directory / workspace.README_FILE}; Ctrl-C stops the "
                     "dashboard and the sandboxes)")
                server.run(sockets=[sock])
        finally:
            workspace.write_readme(directory, login="")  # the token died with the server
    finally:
        webhooks.close()
        runs.close()
