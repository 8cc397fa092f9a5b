"""The HTTP plumbing every vendor sandbox shares: a threaded loopback server and a handler.

A sandbox's handler only implements `_serve(method)` (its routes, auth and faults); this
module gives it TCP_NODELAY and quiet logs, dispatches the methods the vendor's API uses and
refuses the others with 405. Responses must go out in one write (headers and body in the
same segment): with Nagle's algorithm and delayed ACKs, a split response costs ~40 ms on
loopback, which would make every benchmark measure the sandbox instead of the hub.
"""

from __future__ import annotations

import socket
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar


class SandboxServer(ThreadingHTTPServer):
    """A threaded HTTP server whose threads never keep the process alive."""

    daemon_threads = True
    request_queue_size = 128


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
