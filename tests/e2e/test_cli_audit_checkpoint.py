"""`hub audit verify` (full by default) and `--since-checkpoint` (only the newer events)."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.conftest import GOOD_ROWS, Workspace


def test_since_checkpoint_reads_only_newer_events_and_full_finds_an_old_edit(
        synced: Workspace, tmp_path: Path) -> None:
    ws = synced.copy(tmp_path / "copy")
    (total,) = ws.sql("SELECT count(*) FROM audit_events")[0]
    full = ws.cli("audit", "verify")
    assert full.code == 0 and f"Audit chain intact: {total} events verified." in full.out, \
        str(full)
    (at,) = ws.sql("SELECT verified_at FROM audit_verified")[0]

    ws.sources([*GOOD_ROWS, ["c4", "Di", "Prince", "di@example.com", ""]])
    assert ws.hub("sync", "contacts").code == 0
    (head,) = ws.sql("SELECT seq FROM audit_head")[0]
    new = ws.cli("audit", "verify", "--since-checkpoint")
    assert new.code == 0, str(new)
    assert (f"Audit chain intact: {head - total} new events verified; events 1-{total} were "
            f"verified at {at} and not re-read") in new.out

    ws.sql("UPDATE audit_events SET action = 'delete' WHERE seq = 2")
    trusted = ws.cli("audit", "verify", "--since-checkpoint")
    assert trusted.code == 0 and "Audit chain intact: 0 new events verified" in trusted.out, \
        "the quick check trusts what was verified before"
    broken = ws.hub("audit", "verify")
    assert broken.code == 1 and "Audit chain BROKEN at event 2:" in broken.err, str(broken)
    # Nothing is trusted after a failed check: the quick check reads everything again.
    again = ws.cli("audit", "verify", "--since-checkpoint")
    assert again.code == 1 and "Audit chain BROKEN at event 2:" in again.err, str(again)
