"""`hub sync` between two CSV folders, dead letters (`hub dlq ...`) and `--dry-run`."""

from __future__ import annotations

import json
from typing import Any

from tests.e2e.conftest import GOOD_ROWS, Workspace


def summary(result: Any) -> dict[str, Any]:
    """The --json summary of a sync, checked to balance."""
    data: dict[str, Any] = json.loads(result.out)
    c = data["counts"]
    assert c["read"] == (c["created"] + c["updated"] + c["unchanged"] + c["skipped"]
                         + c["dead_lettered"]), data
    assert data["balanced"] is True
    return data


def open_dead_letters(ws: Workspace) -> list[dict[str, Any]]:
    listed = ws.cli("dlq", "list", "--json")
    assert listed.code == 0, str(listed)
    rows: list[dict[str, Any]] = json.loads(listed.out)
    return rows


# -- happy path ----------------------------------------------------------------------------


def test_sync_creates_then_writes_nothing_then_updates_a_changed_row(ws: Workspace) -> None:
    ws.sources(GOOD_ROWS)
    first = ws.hub("sync", "contacts")
    assert first.code == 0, str(first)
    assert "read 3: created 3, updated 0, unchanged 0, skipped 0, dead-lettered 0" in first.out
    assert "written 3," in first.out
    rows = ws.by_email()
    assert set(rows) == {"ada@example.com", "bob@example.com", "cy@example.com"}
    assert rows["ada@example.com"]["first_name"] == "Ada"
    assert rows["ada@example.com"]["phone"] == "+442071234567"
    assert rows["bob@example.com"]["last_name"] == "Smith"
    before = (ws.dst / "contacts.csv").read_bytes()

    second = ws.hub("sync", "contacts", "--json")
    assert second.code == 0, str(second)
    data = summary(second)
    assert data["status"] == "succeeded"
    assert data["counts"]["read"] == 3 and data["counts"]["unchanged"] == 3
    assert data["counts"]["written"] == 0
    assert (ws.dst / "contacts.csv").read_bytes() == before, "an idle sync rewrote the target"

    bob_key = rows["bob@example.com"]["id"]
    ws.sources([GOOD_ROWS[0], ["c2", "Bob", "Smithers", "bob@example.com", "+14155552671"],
                GOOD_ROWS[2]])
    third = ws.cli("sync", "contacts", "--json")
    assert third.code == 0, str(third)
    c = summary(third)["counts"]
    assert (c["updated"], c["unchanged"], c["created"], c["written"]) == (1, 2, 0, 1)
    after = ws.by_email()
    assert len(after) == 3
    assert after["bob@example.com"]["last_name"] == "Smithers"
    assert after["bob@example.com"]["id"] == bob_key, "the update must land on the same row"
    assert after["ada@example.com"] == rows["ada@example.com"]


def test_sync_of_an_unknown_flow_lists_the_known_ones(ws: Workspace) -> None:
    bad = ws.cli("sync", "contcats")
    assert bad.code == 2, str(bad)
    assert "contcats" in bad.err and "contacts" in bad.err


# -- dead letters --------------------------------------------------------------------------

# Bob's phone is a national UK number: the default mapping wants international form.
NATIONAL = [GOOD_ROWS[0], ["c2", "Bob", "Smith", "bob@example.com", "020 7946 0958"],
            GOOD_ROWS[2]]
GB_OVERRIDE = """\
version: 1
extends: spreadsheet/contact
fields:
  phones[type=work].number: {path: phone, in: [{phone: {region: GB}}]}
"""


def _dead_letter_bob(ws: Workspace, phone: str) -> dict[str, Any]:
    ws.sources([GOOD_ROWS[0], ["c2", "Bob", "Smith", "bob@example.com", phone], GOOD_ROWS[2]])
    run = ws.cli("sync", "contacts")
    assert run.code == 1, str(run)
    assert "dead-lettered 1" in run.out and "hub dlq list" in run.out
    dead = open_dead_letters(ws)
    assert len(dead) == 1, dead
    return dead[0]


def test_invalid_value_is_dead_lettered_with_record_and_field(ws: Workspace) -> None:
    ws.sources(NATIONAL)
    run = ws.hub("sync", "contacts", "--json")
    assert run.code == 1, str(run)
    data = summary(run)
    assert data["status"] == "partial"
    assert (data["counts"]["created"], data["counts"]["dead_lettered"]) == (2, 1)
    assert set(ws.by_email()) == {"ada@example.com", "cy@example.com"}, "the rest is delivered"

    [dl] = open_dead_letters(ws)
    assert (dl["flow"], dl["system"], dl["external_id"], dl["status"]) == (
        "contacts", "src", "c2", "open")
    assert "c2" in dl["error"] and "phones[type=work].number" in dl["error"]
    assert "020 7946 0958" in dl["error"]

    shown = ws.cli("dlq", "show", str(dl["id"]), "--json")
    assert shown.code == 0
    assert json.loads(shown.out)["payload"]["phone"] == "020 7946 0958"


def test_replay_after_fixing_the_mapping_delivers_once(ws: Workspace) -> None:
    dl = _dead_letter_bob(ws, "020 7946 0958")
    (ws.root / "gb.yaml").write_text(GB_OVERRIDE, encoding="utf-8")
    ws.write_config(ws.text.replace("path: ./src\n",
                                    "path: ./src\n      mappings: {contact: ./gb.yaml}\n"))

    replayed = ws.hub("dlq", "replay", str(dl["id"]))
    assert replayed.code == 0, str(replayed)
    assert "delivered" in replayed.out
    rows = ws.by_email()
    assert rows["bob@example.com"]["phone"] == "+442079460958"
    assert len(rows) == 3

    again = ws.hub("dlq", "replay", str(dl["id"]))
    assert again.code == 0, str(again)
    assert "already replayed" in again.out
    assert len(ws.by_email()) == 3, "a repeated replay must not add a row"
    assert open_dead_letters(ws) == []
    listed = json.loads(ws.cli("dlq", "list", "--all", "--json").out)
    assert [(d["id"], d["status"]) for d in listed] == [(dl["id"], "replayed")]

    idle = ws.cli("sync", "contacts", "--json")
    assert idle.code == 0, str(idle)
    assert summary(idle)["counts"]["written"] == 0


def test_replay_after_fixing_the_source_row_delivers_once(ws: Workspace) -> None:
    # Was: replay re-sent the payload stored at failure time and failed again.
    dl = _dead_letter_bob(ws, "notaphone")
    assert "notaphone" in dl["error"]
    ws.sources(GOOD_ROWS)
    replayed = ws.hub("dlq", "replay", str(dl["id"]))
    assert replayed.code == 0, str(replayed)
    assert f"dead letter {dl['id']} replayed: delivered" in replayed.out
    rows = ws.by_email()
    assert len(rows) == 3
    assert rows["bob@example.com"]["phone"] == "+14155552671"
    assert open_dead_letters(ws) == []

    again = ws.hub("dlq", "replay", str(dl["id"]))
    assert again.code == 0, str(again)
    assert "already replayed; nothing to do" in again.out
    assert ws.by_email() == rows, "a repeated replay must change nothing"


def test_a_replay_that_fails_again_stays_on_the_open_list(ws: Workspace) -> None:
    dl = _dead_letter_bob(ws, "notaphone")
    # Was: the old dead letter was updated and then marked replayed: the record vanished.
    replayed = ws.cli("dlq", "replay", str(dl["id"]))
    assert replayed.code == 1, str(replayed)
    assert "failed again" in replayed.out
    [fresh] = open_dead_letters(ws)
    assert fresh["external_id"] == "c2" and fresh["id"] != dl["id"]
    assert "notaphone" in fresh["error"]
    assert "bob@example.com" not in ws.by_email()


def test_a_record_delivered_later_closes_its_dead_letter(ws: Workspace) -> None:
    # Was: the dead letter stayed open after a later sync delivered the fixed row.
    _dead_letter_bob(ws, "notaphone")
    ws.sources(GOOD_ROWS)
    run = ws.cli("sync", "contacts")
    assert run.code == 0, str(run)
    assert ws.by_email()["bob@example.com"]["phone"] == "+14155552671"
    assert open_dead_letters(ws) == []


def test_discard_marks_one_dead_letter_discarded(ws: Workspace) -> None:
    ws.sources([["c1", "Ada", "L", "ada@example.com", "notaphone"],
                ["c2", "Bob", "S", "bob@example.com", "alsonotaphone"]])
    assert ws.cli("sync", "contacts").code == 1
    dead = {d["external_id"]: d["id"] for d in open_dead_letters(ws)}
    assert set(dead) == {"c1", "c2"}

    gone = ws.hub("dlq", "discard", str(dead["c1"]))
    assert gone.code == 0, str(gone)
    assert f"dead letter {dead['c1']} discarded" in gone.out
    assert [d["external_id"] for d in open_dead_letters(ws)] == ["c2"]
    every = {d["external_id"]: d["status"]
             for d in json.loads(ws.cli("dlq", "list", "--all", "--json").out)}
    assert every == {"c1": "discarded", "c2": "open"}

    again = ws.cli("dlq", "discard", str(dead["c1"]))
    assert again.code == 0 and "already discarded" in again.out
    replay = ws.cli("dlq", "replay", str(dead["c1"]))
    assert replay.code == 0 and "already discarded" in replay.out
    audit = json.loads(ws.cli("audit", "--json").out)
    assert [e["action"] for e in audit if e["external_id"] == "c1"] == ["dlq.discard"]
    assert ws.targets() == []

    missing = ws.cli("dlq", "replay", "999")
    assert missing.code == 1 and "no dead letter 999" in missing.err


def test_ragged_row_is_dead_lettered_with_file_and_line(ws: Workspace) -> None:
    ws.sources([GOOD_ROWS[0], ["c2", "Bob", "Smith", "bob@example.com", "+14155552671", "x"],
                GOOD_ROWS[2]])
    run = ws.hub("sync", "contacts", "--json")
    assert run.code == 1, str(run)
    c = summary(run)["counts"]
    assert (c["read"], c["created"], c["dead_lettered"]) == (3, 2, 1)
    assert set(ws.by_email()) == {"ada@example.com", "cy@example.com"}
    [dl] = open_dead_letters(ws)
    assert "contacts.csv:3" in dl["error"], dl  # header is line 1, Bob's row line 3
    assert "6 cells" in dl["error"] and "header has 5" in dl["error"]


def test_a_ragged_row_is_dead_lettered_once_across_syncs(ws: Workspace) -> None:
    # A scheduled flow must not pile up one dead letter per run for the same broken row.
    ws.sources([GOOD_ROWS[0], ["c2", "Bob", "Smith", "bob@example.com", "+1415555", "x"]])
    assert ws.cli("sync", "contacts").code == 1
    assert ws.cli("sync", "contacts").code == 1
    [dl] = open_dead_letters(ws)
    assert dl["attempts"] == 2


# -- dry run -------------------------------------------------------------------------------


def test_dry_run_counts_but_changes_nothing(ws: Workspace) -> None:
    ws.sources(GOOD_ROWS + [["c4", "Di", "P", "di@example.com", "notaphone"]])
    dry = ws.hub("sync", "contacts", "--dry-run")
    assert dry.code == 1, str(dry)  # a record would be dead-lettered
    assert ("read 4: created 3, updated 0, unchanged 0, skipped 0, would be dead-lettered 1"
            in dry.out)
    assert "would write 3" in dry.out
    assert not (ws.dst / "contacts.csv").exists()
    assert json.loads(ws.cli("runs", "--json").out) == []
    assert json.loads(ws.cli("audit", "--json").out) == []
    assert open_dead_letters(ws) == []

    as_json = ws.cli("sync", "contacts", "--dry-run", "--json")
    data = summary(as_json)
    assert (data["status"], data["run"], data["counts"]["written"]) == ("dry-run", None, 3)

    # After a real run, a dry run of a change leaves the target byte for byte as it was.
    ws.sources(GOOD_ROWS)
    assert ws.cli("sync", "contacts").code == 0
    before = (ws.dst / "contacts.csv").read_bytes()
    runs_before = json.loads(ws.cli("runs", "--json").out)
    audit_before = json.loads(ws.cli("audit", "--json").out)
    ws.sources([["c1", "Ada", "Byron", "ada@example.com", "+442071234567"]] + GOOD_ROWS[1:])
    dry = ws.cli("sync", "contacts", "--dry-run", "--json")
    assert dry.code == 0, str(dry)
    c = summary(dry)["counts"]
    assert (c["updated"], c["written"]) == (1, 1)
    assert (ws.dst / "contacts.csv").read_bytes() == before
    assert json.loads(ws.cli("runs", "--json").out) == runs_before
    assert json.loads(ws.cli("audit", "--json").out) == audit_before
    real = ws.cli("sync", "contacts", "--json")
    assert summary(real)["counts"]["updated"] == 1, "the dry run must not have used the change"


def test_dry_run_title_reads_well(ws: Workspace) -> None:
    ws.sources(GOOD_ROWS)
    # Was: "Dry run of of flow contacts".
    dry = ws.cli("sync", "contacts", "--dry-run")
    assert dry.code == 0, str(dry)
    assert dry.out.startswith("Dry run of flow contacts ")
    assert "of of" not in dry.out
