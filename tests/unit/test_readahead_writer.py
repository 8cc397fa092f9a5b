"""The read-ahead child's pipe writer: Connection framing, no waiting under its backlog."""

from __future__ import annotations

import multiprocessing
import os
import threading

import pytest

from hub.sync import readahead
from hub.sync.readahead import _Writer


def _pipe() -> tuple[multiprocessing.connection.Connection, multiprocessing.connection.Connection]:
    recv, send = multiprocessing.Pipe(duplex=False)
    return recv, send


def test_messages_arrive_whole_and_in_order_through_a_full_pipe() -> None:
    recv, send = _pipe()
    writer = _Writer(send.fileno())
    bodies = [b"", b"x" * 10, os.urandom(100_000), os.urandom(3_000_000), b"last"]
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.extend(recv.recv_bytes() for _ in bodies))
    reader.start()
    for body in bodies[:-1]:
        writer.send(body)  # the 3 MB one overflows pipe and backlog: written as it drains
    writer.send(bodies[-1], wait=True)
    reader.join(timeout=10)
    assert got == bodies
    recv.close()
    send.close()


def test_under_the_backlog_a_send_returns_with_the_rest_pending(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(readahead, "_BACKLOG_BYTES", 8 << 20)
    recv, send = _pipe()
    writer = _Writer(send.fileno())
    body = os.urandom(4 << 20)  # more than any pipe holds, less than the backlog
    sending = threading.Thread(target=writer.send, args=(body,), daemon=True)
    sending.start()
    sending.join(timeout=5)  # nobody reads yet: the send must not wait for a reader
    returned = not sending.is_alive()
    pending = writer._size
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(recv.recv_bytes()))
    reader.start()  # (also lets a send that wrongly waited finish)
    sending.join(timeout=10)
    assert returned and pending > 0
    writer.send(b"done", wait=True)
    reader.join(timeout=10)
    assert got == [body] and recv.recv_bytes() == b"done" and writer._size == 0
    recv.close()
    send.close()


def test_a_reader_that_left_is_a_broken_pipe() -> None:
    recv, send = _pipe()
    writer = _Writer(send.fileno())
    recv.close()
    with pytest.raises(BrokenPipeError):
        writer.send(b"page", wait=True)
    send.close()
