"""A dropped connection at ANY commit of a run: the run resumes and counts each record once.

Every transaction a run commits (opening the run, each batch of pages with its cursor, the
end of a leg, the final status, deliveries) is failed in turn, the way a database that goes
away mid-commit fails it; the flow is then run again until it finishes. Whatever commit
failed, the source is read to the end once in the run's counts, the target gets every
record once, and no second run is started.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from hub.errors import StoreUnavailable
from tests.integration.helpers import Hub, contact, write_csv

N = 120  # three pages of 50


class _DropAt:
    """Fail the `at`-th commit on the store's engine (1-based); 0 counts without failing."""

    def __init__(self, at: int) -> None:
        self.at = at
        self.seen = 0

    def __call__(self, _conn: Any) -> None:
        self.seen += 1
        if self.seen == self.at:
            raise OperationalError("COMMIT", {}, Exception("server closed the connection"))


def _hub(tmp: Path, mode: str) -> Hub:
    flow = f"""  contacts:
    entity: contact
    from: a
    to: b
    mode: {mode}
    page_size: 50"""
    hub = Hub(tmp, flow=flow)
    write_csv(hub.a / "contacts.csv", [contact(i) for i in range(N)])
    return hub


def _commits_in_a_clean_run(tmp: Path, mode: str) -> int:
    hub = _hub(tmp, mode)
    counter = _DropAt(0)
    event.listen(hub.store.engine, "commit", counter)
    report = hub.engine.run("contacts")
    hub.close()
    assert report.status == "succeeded"
    return counter.seen


@pytest.mark.parametrize("mode", ["incremental", "full"])
def test_a_commit_lost_anywhere_in_a_run_neither_rereads_nor_duplicates(
        tmp_path: Path, mode: str) -> None:
    (tmp_path / "clean").mkdir()
    commits = _commits_in_a_clean_run(tmp_path / "clean", mode)
    assert commits >= 4, "the run committed too little for the test to mean anything"
    for at in range(1, commits + 1):
        tmp = tmp_path / f"drop-{at}"
        tmp.mkdir()
        hub = _hub(tmp, mode)
        drop = _DropAt(at)
        event.listen(hub.store.engine, "commit", drop)
        statuses = []
        for _attempt in range(4):
            try:
                report = hub.engine.run("contacts")
            except StoreUnavailable:
                statuses.append("raised")
                continue
            statuses.append(report.status)
            if report.status == "succeeded":
                break
        assert statuses[-1] == "succeeded", (at, statuses)
        with hub.store.connect() as conn:
            runs = hub.store.list_runs(conn, "contacts", 10)
            owed = hub.store.outbox_count(conn)
        assert len(runs) == 1, f"commit {at}: a new run was started: {statuses}"
        assert int(runs[0].read) == N, (
            f"commit {at} of {commits} failed: the run counted {runs[0].read} records read "
            f"for {N} ({statuses})")
        assert int(runs[0].created) == N
        assert owed == 0
        emails = [r["email"] for r in hub.rows("b")]
        assert len(emails) == N and len(set(emails)) == N, f"commit {at}: {len(emails)} rows"
        assert hub.store.verify_audit().ok
        hub.close()
