"""`hub runs`, `hub audit` (search and filters) and `hub audit verify` against tampering."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Workspace


def audit(ws: Workspace, *filters: str) -> list[dict[str, Any]]:
    """`hub audit --json` with filters."""
    res = ws.cli("audit", "--json", *filters)
    assert res.code == 0, str(res)
    events: list[dict[str, Any]] = json.loads(res.out)
    return events


def test_runs_lists_both_runs_with_counts(synced: Workspace) -> None:
    res = synced.cli("runs", "--json")
    assert res.code == 0, str(res)
    runs = json.loads(res.out)
    assert [r["id"] for r in runs] == [2, 1], "newest first"
    first, second = runs[1], runs[0]
    assert all(r["flow"] == "contacts" and r["status"] == "succeeded" for r in runs)
    assert (first["read"], first["created"], first["written"]) == (3, 3, 3)
    assert (second["updated"], second["unchanged"], second["written"]) == (1, 2, 1)
    assert first["finished_at"] >= first["started_at"]
    table = synced.cli("runs")
    assert table.out.splitlines()[0].split()[:4] == ["RUN", "FLOW", "MODE", "STATUS"]
    assert len(table.out.splitlines()) == 3
    assert json.loads(synced.cli("runs", "--flow", "other", "--json").out) == []


def test_runs_json_gives_skip_reasons_as_an_object(synced: Workspace) -> None:
    runs = json.loads(synced.cli("runs", "--json").out)
    assert all(isinstance(r["skip_reasons"], dict) for r in runs), runs


def test_audit_records_each_change_newest_first(synced: Workspace) -> None:
    events = audit(synced)
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(seqs, reverse=True) and seqs[-1] == 1
    assert len(seqs) == len(set(seqs))
    actions = [(e["action"], e["system"]) for e in reversed(events)]
    # Run 1: three records read from src, three rows written to dst; run 2: one of each.
    assert actions.count(("create", "src")) == 3
    assert actions.count(("write.create", "dst")) == 3
    assert actions.count(("update", "src")) == 1
    assert actions.count(("write.update", "dst")) == 1
    update = next(e for e in events if e["action"] == "update")
    assert update["external_id"] == "c2"
    assert update["diff"] == {"last_name": ["Smith", "Smithers"]}
    assert update["run_id"] == 2 and update["flow"] == "contacts"


def test_a_create_lists_every_field_as_new(synced: Workspace) -> None:
    create = next(e for e in audit(synced, "--record", "c1") if e["action"] == "create")
    assert create["diff"]["first_name"] == [None, "Ada"]
    assert create["diff"]["last_name"] == [None, "Lovelace"]
    assert all(old is None for old, _new in create["diff"].values()), create["diff"]
    # Stored in the created form (hub.canonical.diffs): the record's values, once.
    ((raw,),) = synced.sql("SELECT diff FROM audit_events WHERE seq = ?", (create["seq"],))
    assert json.loads(raw) == {"+": {k: new for k, (_old, new) in create["diff"].items()}}


def test_audit_filters_by_record_system_and_time(synced: Workspace) -> None:
    events = audit(synced)
    canonical = next(e["canonical_id"] for e in events if e["external_id"] == "c2")
    by_id = audit(synced, "--record", canonical)
    assert {e["canonical_id"] for e in by_id} == {canonical}
    assert [e["action"] for e in by_id] == ["write.update", "update", "write.create", "create"]
    # An external id finds the same record, in every system it reached.
    assert audit(synced, "--record", "c2") == by_id

    dst = audit(synced, "--system", "dst")
    assert dst and all(e["system"] == "dst" for e in dst)
    assert len(dst) + len(audit(synced, "--system", "src")) == len(events)

    assert audit(synced, "--since", "2999-01-01") == []
    assert len(audit(synced, "--since", "2000-01-01")) == len(events)
    newest = events[0]["at"]
    assert [e["seq"] for e in audit(synced, "--since", newest)] == [
        e["seq"] for e in events if e["at"] >= newest]
    assert audit(synced, "--record", "nobody") == []
    text = synced.cli("audit", "--record", "c2")
    assert "last_name: 'Smith' -> 'Smithers'" in text.out


def test_audit_by_external_id_shows_the_records_whole_history(synced: Workspace) -> None:
    # Was: only the source-side events matched, ops staff had to find the canonical id first.
    events = audit(synced, "--record", "c2")
    assert {(e["action"], e["system"]) for e in events} == {
        ("create", "src"), ("update", "src"), ("write.create", "dst"), ("write.update", "dst")}
    assert len({e["canonical_id"] for e in events}) == 1


def test_audit_since_rejects_something_that_is_not_a_time(synced: Workspace) -> None:
    # Was: accepted and silently matched nothing.
    res = synced.hub("audit", "--since", "yesterday")
    assert res.code == 2, str(res)
    assert "'yesterday' is not a date or time" in res.err
    assert "2026-11-01" in res.err, "the message shows the expected form"
    assert res.out == ""


def test_audit_since_understands_an_offset(synced: Workspace) -> None:
    events = audit(synced)
    assert len(audit(synced, "--since", "2000-01-01T08:00:00+01:00")) == len(events)
    assert audit(synced, "--since", "2999-01-01T08:00:00+01:00") == []


def test_audit_verify_intact(synced: Workspace) -> None:
    ok = synced.hub("audit", "verify")
    assert ok.code == 0, str(ok)
    total = len(audit(synced))
    assert f"Audit chain intact: {total} events verified." in ok.out


def _edit_diff(ws: Workspace) -> int:
    ws.sql("UPDATE audit_events SET diff = ? WHERE seq = 3",
           (json.dumps({"first_name": [None, "Mallory"]}),))
    return 3


def _delete_middle(ws: Workspace) -> int:
    ws.sql("DELETE FROM audit_events WHERE seq = 4")
    return 4


def _swap_seq(ws: Workspace) -> int:
    ws.sql("UPDATE audit_events SET seq = -1 WHERE seq = 2")
    ws.sql("UPDATE audit_events SET seq = 2 WHERE seq = 3")
    ws.sql("UPDATE audit_events SET seq = 3 WHERE seq = -1")
    return 2


def _drop_newest(ws: Workspace) -> int:
    (newest,) = ws.sql("SELECT max(seq) FROM audit_events")[0]
    ws.sql("DELETE FROM audit_events WHERE seq = ?", (newest,))
    return int(newest)


@pytest.mark.parametrize("tamper", [_edit_diff, _delete_middle, _swap_seq, _drop_newest],
                         ids=["edit-diff", "delete-middle", "swap-seq", "drop-newest"])
def test_audit_verify_names_the_tampered_event(synced: Workspace, tmp_path: Path,
                                               tamper: Any) -> None:
    ws = synced.copy(tmp_path / "copy")
    assert ws.cli("audit", "verify").code == 0
    bad_seq = tamper(ws)
    # One case as a real process (exit code on stderr), the others in-process, to be quick.
    res = ws.hub("audit", "verify") if tamper is _edit_diff else ws.cli("audit", "verify")
    assert res.code == 1, str(res)
    assert f"Audit chain BROKEN at event {bad_seq}:" in res.err, str(res)
    assert res.out == ""
