"""Read and map a source's pages in a child process while this one stores the last ones.

Ingest is CPU-bound Python: reading a page (HTTP, JSON) and mapping its records cost about
as much as identity, merge and storing them, and threads cannot overlap the two (the GIL).
A forked child runs the connector's read and the inbound mapping of each page and hands the
engine `MappedPage`s through a pipe, up to a few MB ahead (`_Writer`); the engine resolves
the references the child left as tokens (hub.sync.mapped), then identifies, merges and
commits as before. A record the child could finish (no token left) it also validates and
prepares as created (provenance, audit diff: `Prepare`), so that a new record costs the
engine only its identity lookups, its hash, its id and its rows. Two cores do the work of
one run.

Only connectors that declare `reads_in_child` are read this way: their reads keep no state
the engine's process needs afterwards (a refreshed OAuth token, say). The child builds its
own connector (no socket is shared with the parent) and ends with os._exit: it never
touches the parent's database connections. An error while reading travels back and is
raised where the failed page would have arrived, as with in-process reading; a child that
dies without a word is reported as an error naming its exit code.
"""

from __future__ import annotations

import collections
import contextlib
import importlib
import multiprocessing
import os
import pickle
import select
import signal
import struct
import sys
import threading
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from typing import Any

try:
    import fcntl
except ImportError:  # not on Windows, where fork is not available either
    fcntl = None  # type: ignore[assignment]

from hub.connector import Connector, Cursor
from hub.errors import HubError
from hub.http import capture_calls, replay_calls
from hub.mapping import CompiledMapping
from hub.store import checkpoint
from hub.sync.mapped import (
    REF_CACHE_SIZE,
    MappedPage,
    Prepare,
    child_page,
)

ENV_SWITCH = "HUB_READ_AHEAD"  # "0" turns reading in a child process off

_PAGE, _DONE, _FAIL = 0, 1, 2
# Threads of our own that hold no lock a child could need (hub.store.checkpoint's checkpoints
# run on their own SQLite connection, which the child never touches).
_QUIET_THREADS = frozenset({checkpoint.THREAD_NAME})
POLL_SECONDS = 1.0  # how often a wait for the child's next page checks that it is alive
_HINTS_PER_FRAME = 32  # resolved references per write to the child (one atomic write)
PIPE_BYTES = 1 << 20  # about six pages of a hundred mapped contacts
_BACKLOG_BYTES = 2 << 20  # written pages the child holds while the pipe is full


def available(connector: Connector, mapping: CompiledMapping) -> bool:
    """Whether this source may be read and mapped in a child process."""
    return (os.environ.get(ENV_SWITCH, "1") != "0"
            and "fork" in multiprocessing.get_all_start_methods()
            and bool(getattr(connector.capabilities, "reads_in_child", False))
            and mapping.refs_deferrable
            and _alone())


def _alone() -> bool:
    """Whether this thread is the only one that could hold a lock the child would need.

    A fork copies every lock in the state it is in, and only the forking thread: a lock
    another thread held then (in a library, in the interpreter's C extensions) is held
    for ever in the child, which would hang on it. So a process with other threads at work
    (a worker's job threads, `hub run`, `hub serve`) reads in-process, and gains its
    parallelism from more worker processes instead; `hub sync` and the benchmark fork.
    Threads that only sleep between short jobs of their own are let through.
    """
    me = threading.current_thread()
    return all(t is me or t.name in _QUIET_THREADS or not t.is_alive()
               for t in threading.enumerate())


class ReadAhead:
    """Iterate the MappedPages of one read, produced by a forked child process."""

    def __init__(self, make_connector: Callable[[], Connector], mapping: CompiledMapping,
                 cursor: Cursor | None, *, incremental: bool, page_size: int,
                 keep: Callable[[dict[str, Any]], bool] | None = None,
                 prepare: Prepare | None = None) -> None:
        ctx = multiprocessing.get_context("fork")
        self._recv, send = ctx.Pipe(duplex=False)
        _widen(send.fileno())
        # Back to the child: references the engine resolved, so the child maps them itself.
        hints_in, self._hints = os.pipe()
        os.set_blocking(self._hints, False)
        _widen(self._hints)
        self._proc = ctx.Process(target=_child, name="liaison-read-ahead", daemon=True,
                                 args=(send, (self._recv.fileno(), self._hints), hints_in,
                                       make_connector, mapping, cursor, incremental,
                                       page_size, keep, prepare))
        self._proc.start()
        send.close()  # the child holds its own end: EOF here when it is gone
        os.close(hints_in)
        self._done = False

    def tell(self, resolved: list[tuple[tuple[str, str], str]]) -> None:
        """Pass resolved references by link on to the child. Best effort: what does not
        fit in the pipe now is left out, and the child leaves those as tokens."""
        if self._done:
            return
        start = 0
        while start < len(resolved):
            count = min(len(resolved) - start, _HINTS_PER_FRAME)
            while True:
                body = pickle.dumps(resolved[start:start + count],
                                    protocol=pickle.HIGHEST_PROTOCOL)
                if len(body) + 4 <= select.PIPE_BUF or count == 1:
                    break
                count //= 2
            frame = len(body).to_bytes(4, "little") + body
            if len(frame) > select.PIPE_BUF:
                start += count  # one huge id: not worth a torn frame
                continue
            try:
                os.write(self._hints, frame)  # at most PIPE_BUF: written whole or not at all
            except (BlockingIOError, BrokenPipeError):
                return
            start += count

    def __iter__(self) -> Iterator[MappedPage]:
        return self

    def __next__(self) -> MappedPage:
        if self._done:
            raise StopIteration
        try:
            # A page may take long (a slow vendor, Retry-After): wait as long as the child
            # lives, but not for ever on one that died without closing its end.
            while not self._recv.poll(POLL_SECONDS):
                if not self._proc.is_alive():
                    raise EOFError
            kind, body, calls = pickle.loads(self._recv.recv_bytes())
        except (EOFError, OSError):  # OSError: it died half way through a page
            self._done = True
            self._proc.join(timeout=5)
            raise HubError("the process reading the source stopped unexpectedly (exit code "
                           f"{self._proc.exitcode}); run the flow again") from None
        replay_calls(calls)  # the vendor calls it made: retries and quota for the metrics
        if kind == _PAGE:
            return MappedPage(*body)
        self._done = True
        if kind == _FAIL:
            raise _revive(body)
        raise StopIteration

    def close(self) -> None:
        """Stop the child (it may be blocked handing over a page) and wait for it."""
        self._done = True
        if self._proc.is_alive():
            with contextlib.suppress(OSError):
                os.kill(self._proc.pid or 0, signal.SIGKILL)
        self._proc.join(timeout=5)
        self._recv.close()
        with contextlib.suppress(OSError):
            os.close(self._hints)


def _child(send: Connection, parents: tuple[int, int], hints: int,
           make_connector: Callable[[], Connector], mapping: CompiledMapping,
           cursor: Cursor | None, incremental: bool, page_size: int,
           keep: Callable[[dict[str, Any]], bool] | None, prepare: Prepare | None) -> None:
    for fd in parents:  # the engine's ends of both pipes
        with contextlib.suppress(OSError):
            os.close(fd)
    os.set_blocking(hints, False)
    known: dict[tuple[str, str], str] = {}
    pending = bytearray()
    calls = capture_calls()

    def message(kind: int, body: Any) -> bytes:
        sent = list(calls)
        calls.clear()
        return pickle.dumps((kind, body, sent), protocol=pickle.HIGHEST_PROTOCOL)

    out = _Writer(send.fileno())

    try:
        connector = make_connector()
        try:
            for page in connector.read(mapping.object, cursor, incremental=incremental,
                                       page_size=page_size):
                _take_hints(hints, pending, known)
                body = child_page(mapping, page.cursor, page.records, known=known,
                                  keep=keep, prepare=prepare)
                out.send(message(_PAGE, tuple(body)))
            out.send(message(_DONE, None), wait=True)
        finally:
            with contextlib.suppress(Exception):
                connector.close()
    except BrokenPipeError:
        pass  # the engine stopped reading (an error, or enough for this step)
    except BaseException as exc:  # noqa: BLE001 - handed to the engine, which raises it
        with contextlib.suppress(BrokenPipeError, OSError):
            out.send(message(_FAIL, _flatten(exc)), wait=True)
    finally:
        send.close()
        os._exit(0)  # no atexit handlers, no finalizers of the parent's objects


class _Writer:
    """Writes the child's messages in multiprocessing.Connection's framing (which the
    engine's `recv_bytes` reads) without waiting for room in the pipe.

    The engine takes pages unevenly (a commit, a checkpoint): with a blocking write the
    child then stopped, a page ahead, instead of reading and mapping the next one. Up to
    `_BACKLOG_BYTES` wait here and go out with the next pages as the pipe has room (the
    pipe itself holds about six); past that the child waits, which bounds its memory.
    """

    def __init__(self, fd: int) -> None:
        os.set_blocking(fd, False)
        self._fd = fd
        self._pending: collections.deque[memoryview] = collections.deque()
        self._size = 0

    def send(self, body: bytes, *, wait: bool = False) -> None:
        """Queue one message and write what the pipe takes now (all of it with `wait`,
        or while more than the backlog is pending); BrokenPipeError once the engine left."""
        n = len(body)
        header = struct.pack("!i", n) if n <= 0x7FFFFFFF else struct.pack("!iQ", -1, n)
        self._pending.append(memoryview(header))
        self._pending.append(memoryview(body))
        self._size += len(header) + n
        self._flush()
        while self._pending and (wait or self._size > _BACKLOG_BYTES):
            select.select([], [self._fd], [], POLL_SECONDS)
            self._flush()

    def _flush(self) -> None:
        pending = self._pending
        while pending:
            try:
                written = os.write(self._fd, pending[0])
            except BlockingIOError:
                return
            self._size -= written
            if written == len(pending[0]):
                pending.popleft()
            else:
                pending[0] = pending[0][written:]


def _take_hints(fd: int, pending: bytearray, known: dict[tuple[str, str], str]) -> None:
    """Read whatever resolved references the engine has sent (without waiting)."""
    while True:
        try:
            chunk = os.read(fd, 1 << 16)
        except BlockingIOError:
            break
        if not chunk:
            break  # the engine closed its end
        pending += chunk
    while len(pending) >= 4:
        size = int.from_bytes(pending[:4], "little")
        if len(pending) < 4 + size:
            break
        for key, cid in pickle.loads(bytes(pending[4:4 + size])):
            known[key] = cid
        del pending[:4 + size]
    if len(known) > REF_CACHE_SIZE:
        known.clear()  # a bound on memory; the engine resolves what is left as tokens


def _widen(fd: int) -> None:
    """Let a pipe hold a few pages (Linux), so the child reads the next page instead of
    waiting for the engine to take the last one; elsewhere the default size does."""
    set_size = getattr(fcntl, "F_SETPIPE_SZ", 1031) if fcntl is not None else None
    if set_size is None or not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError):
        fcntl.fcntl(fd, set_size, PIPE_BYTES)


def _flatten(exc: BaseException) -> tuple[str, str, tuple[Any, ...], dict[str, Any]]:
    """An exception as picklable parts: hub errors carry keyword-only fields that the
    default pickling (calling the class with `args`) cannot restore."""
    state = {k: v for k, v in vars(exc).items() if _picklable(v)}
    args = exc.args if _picklable(exc.args) else (str(exc),)
    return type(exc).__module__, type(exc).__qualname__, args, state


def _revive(parts: tuple[str, str, tuple[Any, ...], dict[str, Any]]) -> BaseException:
    module, name, args, state = parts
    try:
        cls: Any = importlib.import_module(module)
        for part in name.split("."):
            cls = getattr(cls, part)
        if not (isinstance(cls, type) and issubclass(cls, BaseException)):
            raise TypeError(name)
        exc: BaseException = cls.__new__(cls)
        exc.args = args
        exc.__dict__.update(state)
        return exc
    except (ImportError, AttributeError, TypeError):
        return HubError(f"{name}: {args[0] if args else ''}")


def _picklable(value: Any) -> bool:
    try:
        pickle.dumps(value)
    except Exception:  # noqa: BLE001 - anything that cannot cross the pipe is left out
        return False
    return True
