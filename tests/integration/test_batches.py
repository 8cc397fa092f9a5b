"""How many records a run commits at a time: small batches while deliveries follow the
reading (a one-way flow), large ones when they come after it (hub.sync.batch).

Records are committed in batches of pages. A one-way flow delivers after each batch, so its
batches stay small and the deliveries keep pace; a two-way flow delivers once both sides
are read (and in worker mode other workers deliver), so it takes larger ones, which on
large stores write far less to SQLite's log. The clock's limit is switched off here, so the
records alone decide.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.sync import batch
from hub.sync.hooks import RunCounts
from tests.integration.helpers import Hub, contact, write_csv

N = 12_000


@pytest.mark.parametrize(("flow", "largest"), [
    ("  contacts: {entity: contact, from: a, to: b, page_size: 500}", batch.STREAM_RECORDS),
    ("  contacts: {entity: contact, from: a, to: b, direction: two-way, page_size: 500}",
     batch.COMMIT_RECORDS),
])
def test_a_run_commits_in_batches_sized_for_what_follows_the_reading(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flow: str, largest: int) -> None:
    assert batch.STREAM_RECORDS < N < batch.COMMIT_RECORDS  # what this test can tell apart
    monkeypatch.setattr(batch, "COMMIT_SECONDS", float("inf"))
    hub = Hub(tmp_path, flow=flow)
    write_csv(hub.a / "contacts.csv", [contact(i) for i in range(N)])
    committed: list[int] = []

    def progress(counts: RunCounts) -> None:  # called after each commit
        committed.append(counts.read)

    try:
        report = hub.sync(progress=progress)
    finally:
        hub.close()
    assert report.status == "succeeded" and report.counts.read == N
    sizes = [b - a for a, b in zip([0, *committed], committed, strict=False) if b > a]
    assert sum(sizes) == N and max(sizes) <= largest, sizes
    if largest == batch.STREAM_RECORDS:
        assert len(sizes) >= N // batch.STREAM_RECORDS, sizes  # committed as it went
    else:
        assert sizes == [N], sizes  # one batch: it never reached the limit
