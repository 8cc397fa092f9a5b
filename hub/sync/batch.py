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
# to the log once per commit, not once per page. The write lock is held no longer than the
# second. A flow that delivers after each batch (one-way, in the same process) commits
# every STREAM_RECORDS, so its deliveries keep pace with the reading; the others (two-way
# flows, which deliver after reading both sides, and every flow in worker mode, where
# other workers deliver) every COMMIT_RECORDS, where in practice the second decides.
# That limit was 5,000 for all: on a 1,000,000-contact ingest the match keys' index
# outgrows the page cache and each commit rewrote most of its pages, 23.8 GB written to
# the log; at 20,000 (commits by the second, about 14,000 records) 19.7 GB, and 12,300-
# 13,000 -> 14,600-15,400 records/s. At 100,000 records no difference (25,400 against
# 26,600/s, within the noise). The full flow to a second sandbox, by contrast, ran 15-20%
# slower with 8 MB more memory at 20,000 (3,700-4,100 against 4,700-4,900 records/s):
# hence the two limits. HUB_COMMIT_RECORDS sets both (tests that stop a run between two
# commits use small batches).
_FROM_ENV = os.environ.get("HUB_COMMIT_RECORDS")
COMMIT_RECORDS = int(_FROM_ENV or 20_000)
STREAM_RECORDS = int(_FROM_ENV or 5_000)
COMMIT_SECONDS = 1.0


class Batch:
    """One open transaction spanning several pages, committed as a unit with its cursor."""

    def __init__(self, store: Store, max_records: int | None = None) -> None:
        self.store = store
        self.max_records = COMMIT_RECORDS if max_records is None else max_records
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
        return (self.records >= self.max_records
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
