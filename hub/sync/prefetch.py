"""Read the next pages while the current one is processed.

A source's pages come over the network; waiting for the next one while mapping and storing
the current one wastes the time the vendor (or the sandbox) spends producing it. The
iterator runs in one background thread, pages are handed over in order through a small
queue, and an exception raised while reading is re-raised in the caller at the point the
failed page would have arrived. Closing the wrapper stops the reader.
"""

from __future__ import annotations

import contextvars
import queue
import threading
from collections.abc import Iterator
from typing import Generic, TypeVar

T = TypeVar("T")
_DONE = object()


class Prefetch(Generic[T]):
    """Iterate `source` in a background thread, at most `depth` items ahead."""

    def __init__(self, source: Iterator[T], depth: int = 2) -> None:
        self._queue: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._source = source
        # The reader runs in the caller's context, so context settings made by the caller
        # (hub.http.no_inline_retries() in a job) hold for the reads too.
        self._thread = threading.Thread(target=contextvars.copy_context().run,
                                        args=(self._run,), name="liaison-prefetch",
                                        daemon=True)
        self._thread.start()

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            for item in self._source:
                if not self._put(item):
                    return
            self._put(_DONE)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, who re-raises
            self._put(_Failure(exc))

    def __iter__(self) -> Iterator[T]:
        return self

    def __next__(self) -> T:
        item = self._queue.get()
        if item is _DONE:
            self._queue.put(_DONE)  # stay exhausted
            raise StopIteration
        if isinstance(item, _Failure):
            raise item.exc
        return item  # type: ignore[return-value]

    def close(self) -> None:
        """Stop reading ahead and wait (briefly) for the reader to notice."""
        self._stop.set()
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._thread.join(timeout=5)


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc
