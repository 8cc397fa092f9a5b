"""The HTTP plumbing every vendor sandbox shares: a threaded loopback server and a handler.

A sandbox's handler only implements `_serve(method)` (its routes, auth and faults); this
module gives it TCP_NODELAY and quiet logs, dispatches the methods the vendor's API uses and
refuses the others with 405. Responses must go out in one write (headers and body in the
same segment): with Nagle's algorithm and delayed ACKs, a split response costs ~40 ms on
loopback, which would make every benchmark measure the sandbox instead of the hub.
"""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Self


class SandboxServer(ThreadingHTTPServer):
    """A threaded HTTP server whose threads never keep the process alive."""

    daemon_threads = True
    request_queue_size = 128
    sandbox: Any  # the sandbox whose routes the handler serves


class SandboxHandler(BaseHTTPRequestHandler):
    """Base handler: subclasses set `methods` and implement `_serve(method)`."""

    protocol_version = "HTTP/1.1"
    methods: ClassVar[frozenset[str]] = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})

    def setup(self) -> None:
        """Disable Nagle's algorithm on the accepted connection."""
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request log line."""

    def _serve(self, method: str) -> None:
        raise NotImplementedError

    def _dispatch(self, method: str) -> None:
        if method not in self.methods:
            body = b"method not allowed"
            self.wfile.write(f"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: {len(body)}"
                             "\r\n\r\n".encode("latin-1") + body)
            return
        self._serve(method)

    def do_GET(self) -> None:
        """Serve a GET."""
        self._dispatch("GET")

    def do_POST(self) -> None:
        """Serve a POST."""
        self._dispatch("POST")

    def do_PUT(self) -> None:
        """Serve a PUT."""
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        """Serve a PATCH."""
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        """Serve a DELETE."""
        self._dispatch("DELETE")


class ServedSandbox:
    """The lifecycle every sandbox shares: serve on 127.0.0.1 in a thread, stop, `with`.

    A subclass sets `_requested_port` (0: any free port) in its constructor, names itself in
    `label`, builds its server in `_make_server()` and, if it delivers webhooks, stops them
    in `_before_stop()`.
    """

    label: ClassVar[str] = "sandbox"
    _requested_port: int
    _server: SandboxServer | None = None
    _thread: threading.Thread | None = None

    def _make_server(self) -> SandboxServer:
        raise NotImplementedError

    def _before_stop(self) -> None:
        """Stop what runs beside the server (webhook deliveries); nothing by default."""

    def start(self) -> Self:
        """Listen on 127.0.0.1 (port 0: any free port) in a background thread."""
        server = self._make_server()
        server.sandbox = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, name=f"{self.label.lower()}-sandbox",
            kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and close the socket."""
        self._before_stop()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The port the sandbox listens on (after start)."""
        if self._server is None:
            raise RuntimeError(f"the {self.label} sandbox is not started")
        return int(self._server.server_address[1])

    @property
    def origin(self) -> str:
        """Scheme, host and port of the running sandbox."""
        return f"http://127.0.0.1:{self.port}"
