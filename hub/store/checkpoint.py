"""Copy SQLite's write-ahead log into the database file in the background.

In WAL mode a commit appends the pages it changed to `<db>-wal`; a *checkpoint* copies
them into the database file and syncs both files to disk. Left to itself SQLite runs that
inside whichever commit makes the log pass its limit, and that commit waits for the disk:
during an ingest, checkpoints were about three quarters of the time spent committing. Here
one daemon thread per process checkpoints every watched database whose log has grown past
WAL_BYTES, on a connection of its own and in PASSIVE mode (it never blocks a reader or a
writer, and does not wait for them), so that commits only append.

The log's file size is the measure of its length because the store's connections set
`journal_size_limit` (hub.store.db): when a writer restarts a fully checkpointed log it
cuts the file back to LOG_KEEP_BYTES. Without that the file keeps its largest size, and
the size check would pass on every poll after the first checkpoint: a connection opened,
its schema read and an empty checkpoint run five times a second, idle or not. A log that
has not changed since its last checkpoint is not checkpointed again.

Durability does not change: a commit is in the log either way, and a checkpoint is what it
was (the same copy and the same syncs), only in another thread. The connections keep their
own automatic checkpoint, with a higher limit (hub.store.db), as the safety net for a
process whose thread is not running (a forked child before its first Store).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections import Counter
from pathlib import Path

log = logging.getLogger(__name__)

THREAD_NAME = "liaison-wal-checkpoint"  # read-ahead knows it holds no lock a fork needs
WAL_BYTES = 4 << 20  # SQLite's own default limit: 1,000 pages of 4 KiB
LOG_KEEP_BYTES = 1 << 20  # journal_size_limit: below WAL_BYTES, so a restarted log reads short
POLL_SECONDS = 0.2

_lock = threading.Lock()
_watched: Counter[str] = Counter()  # database file -> how many open Stores use it
_done: dict[str, tuple[int, int]] = {}  # database file -> its log's (size, mtime) when checkpointed
_thread: threading.Thread | None = None


def watch(path: str) -> None:
    """Keep the log of the SQLite database at `path` short until `unwatch(path)`."""
    global _thread
    with _lock:
        _watched[path] += 1
        if _thread is None or not _thread.is_alive():
            _thread = threading.Thread(target=_run, name=THREAD_NAME,
                                       daemon=True)
            _thread.start()


def unwatch(path: str) -> None:
    """Stop watching `path` (once per `watch`); the thread ends with the last database."""
    with _lock:
        _watched[path] -= 1
        if _watched[path] <= 0:
            del _watched[path]
            _done.pop(path, None)


def checkpoint_if_large(path: str, limit: int = WAL_BYTES) -> bool:
    """Checkpoint the database at `path` if its log has reached `limit` bytes (PASSIVE:
    copies what no reader still needs, waits for nobody). Returns whether it ran; not
    when the log is as it was after the last checkpoint here (nothing new to copy)."""
    try:
        st = os.stat(f"{path}-wal")
    except OSError:
        return False  # no log: not in WAL mode, not written yet, or already gone
    state = (st.st_size, st.st_mtime_ns)
    if st.st_size < limit or _done.get(path) == state:
        return False
    try:
        # mode=rw: never create a database that was removed meanwhile.
        conn = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=rw", uri=True,
                               timeout=0, isolation_level=None)
        try:
            # (busy, frames in the log, frames copied): all copied, or to be tried again.
            _busy, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        # Busy or gone: the next round (or the committing connection's own automatic
        # checkpoint) does it; nothing is lost by skipping one.
        log.debug("background checkpoint of %s skipped: %s", path, exc)
        return False
    # All copied: the log as seen before it is done with (a checkpoint writes the database
    # file, not the log; a write since changes the log's size or time).
    if frames == copied:
        _done[path] = state
    return True


def _run() -> None:
    global _thread
    while True:
        time.sleep(POLL_SECONDS)
        with _lock:
            paths = list(_watched)
            if not paths:
                _thread = None
                return
        for path in paths:
            checkpoint_if_large(path)


def _after_fork_in_child() -> None:
    # The parent's thread does not exist in the child, and its lock may have been held.
    global _lock, _thread
    _lock = threading.Lock()
    _thread = None
    _done.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)
