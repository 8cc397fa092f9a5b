"""One transaction spanning several pages of a source, committed with its cursor."""

from __future__ import annotations

import os
import time
from typing import Any

from sqlalchemy import Connection

from hub.store import Store

# Pages are committed together until this many records or seconds have accumulated: a
# commit per 100-record page cost more than the rest of the page's store work, and an index
# page that several pages of a batch touch (match keys by address land anywhere) is written
# to the log once per commit, not once per page. In practice the second decides (the write
# lock is never held much longer than that); the record limit only caps a batch on a fast
# machine. It was 5,000: on a 1,000,000-contact ingest the match keys' index outgrows the
# page cache and each commit rewrote most of its pages, 23.8 GB written to the log; at
# 20,000 (commits by the second, about 14,000 records) 19.7 GB, and 12,300-13,000 -> 14,600
# records/s. At 100,000 records no difference (25,400 against 26,600/s, within the noise).
# HUB_COMMIT_RECORDS sets the record limit (tests that stop a run between two commits use
# small batches).
COMMIT_RECORDS = int(os.environ.get("HUB_COMMIT_RECORDS", "20000"))
COMMIT_SECONDS = 1.0


class Batch:
    """One open transaction spanning several pages, committed as a unit with its cursor."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.conn: Connection | None = None
        self._tx: Any = None
        self.records = 0
        self.started = 0.0

    def connection(self) -> Connection:
        """The batch's connection, beginning a transaction if none is open."""
        if self.conn is None:
            with self.store.errors():
                self.conn = self.store.engine.connect()
                self._tx = self.conn.begin()
            self.records, self.started = 0, time.monotonic()
        return self.conn

    def full(self) -> bool:
        """Whether it is time to commit."""
        return (self.records >= COMMIT_RECORDS
                or time.monotonic() - self.started >= COMMIT_SECONDS)

    def commit(self) -> None:
        """Commit and release the connection."""
        if self.conn is not None:
            try:
                with self.store.errors():
                    self._tx.commit()
            finally:
                self._close()

    def rollback(self) -> None:
        """Undo whatever is open and release the connection."""
        if self.conn is not None:
            try:
                with self.store.errors():
                    self._tx.rollback()
            finally:
                self._close()

    def _close(self) -> None:
        assert self.conn is not None
        self.conn.close()
        self.conn, self._tx = None, None
