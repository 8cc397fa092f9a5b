"""Several processes opening one new SQLite store at the same moment (a worker and
`hub serve` started together on a fresh install) all get a migrated store."""

from __future__ import annotations

import threading
from pathlib import Path

from hub.store import Store
from hub.store.db import current_revision, head_revision

OPENERS = 4
ROUNDS = 30  # before the fix, about one round in seven failed


def test_a_new_store_opened_at_once_by_several_connections_opens_for_all(
        tmp_path: Path) -> None:
    # Threads stand in for processes: each Store has connections of its own, and SQLite
    # locks them against each other the same way. The two failures this held off were
    # switching a new file to WAL ("database is locked" at once, without waiting) and
    # reading the revision before a migration committed and its tables after.
    failures: list[str] = []

    def open_store(url: str, start: threading.Barrier, opened: list[Store]) -> None:
        start.wait(timeout=10)
        try:
            opened.append(Store(url))
        except Exception as exc:  # noqa: BLE001 - every failure is reported below
            failures.append(f"{url}: {exc}")

    for round_ in range(ROUNDS):
        url = f"sqlite:///{tmp_path / f'new{round_}.db'}"
        start = threading.Barrier(OPENERS)
        opened: list[Store] = []
        failed_before = len(failures)
        threads = [threading.Thread(target=open_store, args=(url, start, opened))
                   for _ in range(OPENERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not any(thread.is_alive() for thread in threads)
        assert len(opened) + len(failures) == OPENERS + failed_before
        for store in opened:
            assert current_revision(store.engine) == head_revision()
            with store.connect() as conn:
                mode = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
            assert mode == "wal"
            store.close()
    assert failures == []
