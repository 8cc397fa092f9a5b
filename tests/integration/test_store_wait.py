"""A long-running process started before its database waits for it (Store(wait=...)).

PostgreSQL is reached through a loopback forwarder that starts listening only after a
while, the way a database container comes up after the workers in a compose start-up.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from hub.errors import StoreUnavailable
from hub.store import Store
from tests.integration.cluster import free_port


def _pump(src: socket.socket, dst: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := src.recv(65536):
            dst.sendall(data)
    with contextlib.suppress(OSError):
        dst.shutdown(socket.SHUT_WR)


@contextlib.contextmanager
def _late_forwarder(port: int, target: tuple[str, int], after: float) -> Iterator[None]:
    """Listen on `port` only `after` seconds from now; forward every connection to target."""
    stop = threading.Event()
    socks: list[socket.socket] = []

    def serve() -> None:
        if stop.wait(after):
            return
        with socket.create_server(("127.0.0.1", port)) as server:
            server.settimeout(0.2)
            while not stop.is_set():
                try:
                    client, _ = server.accept()
                except TimeoutError:
                    continue
                upstream = socket.create_connection(target, timeout=5)
                socks.extend((client, upstream))
                for a, b in ((client, upstream), (upstream, client)):
                    threading.Thread(target=_pump, args=(a, b), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)
        for s in socks:
            with contextlib.suppress(OSError):
                s.close()


def _via(url: str, port: int) -> str:
    parts = urlsplit(url)
    return url.replace(parts.netloc, f"{parts.username}@127.0.0.1:{port}", 1)


@pytest.mark.postgres
def test_a_store_opened_before_its_database_answers_waits_for_it(pg_url: str) -> None:
    port = free_port()
    target = (urlsplit(pg_url).hostname or "127.0.0.1", urlsplit(pg_url).port or 5432)
    with _late_forwarder(port, target, after=1.5):
        t0 = time.monotonic()
        store = Store(_via(pg_url, port), auto_migrate=True, wait=20)
        waited = time.monotonic() - t0
        try:
            store.ping()
        finally:
            store.close()
    assert 1.4 <= waited < 15, waited


@pytest.mark.postgres
def test_a_database_that_never_answers_is_reported_after_the_wait(pg_url: str) -> None:
    port = free_port()  # nothing listens there
    t0 = time.monotonic()
    with pytest.raises(StoreUnavailable) as caught:
        Store(_via(pg_url, port), wait=1.2)
    assert 1.1 <= time.monotonic() - t0 < 10
    assert f"127.0.0.1:{port}" in str(caught.value)
    assert "cannot open the store" in str(caught.value)
