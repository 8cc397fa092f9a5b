"""The CalDAV connector against a real Radicale server: tasks read by sync-token and by the
ETag fallback (deletions included), events left alone, bad tasks, writes that keep alarms and
repeats, archive as CANCELLED, and concurrent edits."""

from __future__ import annotations

import json
from typing import Any

import pytest

from connectors.caldav.connector import CalDavConnector
from hub.connector import Cursor, NativeRecord, Page, WriteOp
from hub.errors import TransientError
from tests.connectors.radicale_server import Radicale, radicale_fixture  # noqa: F401

MODES = ["sync-token", "etag"]
ICS = "text/calendar; charset=utf-8"


def ics(uid: str, *lines: str, component: str = "VTODO") -> str:
    body = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//test//EN", f"BEGIN:{component}",
            f"UID:{uid}", "DTSTAMP:20240101T000000Z", *lines, f"END:{component}",
            "END:VCALENDAR"]
    return "\r\n".join(body) + "\r\n"


def pages(c: CalDavConnector, cursor: Cursor | None = None, *, incremental: bool = True,
          size: int = 100) -> list[Page]:
    if cursor is not None:
        cursor = json.loads(json.dumps(cursor))
    return list(c.read("tasks", cursor, incremental=incremental, page_size=size))


def records(found: list[Page]) -> list[NativeRecord]:
    return [r for p in found for r in p.records]


def by_uid(found: list[Page]) -> dict[str, NativeRecord]:
    return {r["uid"]: r for r in records(found) if "uid" in r}


@pytest.fixture
def cal(radicale: Radicale) -> str:
    """A new empty calendar's path."""
    return radicale.calendar()


def connector(server: Radicale, cal: str, **settings: Any) -> CalDavConnector:
    return CalDavConnector(server.connection("caldav", cal, **settings))


@pytest.mark.parametrize("mode", MODES)
def test_tasks_are_read_incrementally_with_deletions_and_events_are_left_alone(
        radicale: Radicale, cal: str, mode: str) -> None:
    radicale.put(f"{cal}t1.ics", ics("t1", "SUMMARY:Write report", "DUE;VALUE=DATE:20240501",
                                     "STATUS:NEEDS-ACTION", "PRIORITY:2"), ICS)
    radicale.put(f"{cal}t2.ics", ics("t2", "SUMMARY:Call Bea"), ICS)
    radicale.put(f"{cal}e1.ics", ics("e1", "SUMMARY:Lunch", "DTSTART:20240501T120000Z",
                                     component="VEVENT"), ICS)
    c = connector(radicale, cal, sync=mode)
    first = pages(c, size=1)
    found = by_uid(first)
    assert sorted(found) == ["t1", "t2"], "an event is not a task"
    assert found["t1"]["due"] == "2024-05-01" and found["t1"]["priority"] == 2
    assert found["t1"]["status"] == "NEEDS-ACTION"

    radicale.put(f"{cal}t1.ics", ics("t1", "SUMMARY:Write report", "STATUS:COMPLETED",
                                     "COMPLETED:20240502T080000Z"), ICS)
    radicale.request("DELETE", f"{cal}t2.ics")
    again = records(pages(c, first[-1].cursor))
    assert [r for r in again if r.get("deleted")] == [{"href": f"{cal}t2.ics", "deleted": True}]
    done = [r for r in again if r.get("uid") == "t1"]
    assert done and done[0]["completed"] == "2024-05-02T08:00:00Z"


def test_bad_tasks_are_read_the_sane_way_and_broken_files_do_not_stop_the_read(
        radicale: Radicale, cal: str) -> None:
    # Radicale takes these by PUT: the connector reads them the sane way.
    for uid, lines in (("early-due", ("DTSTART:20240510T100000Z", "DUE:20240501T100000Z")),
                       ("words", ("PRIORITY:high", "PERCENT-COMPLETE:most")),
                       ("mars", ("DUE;TZID=Mars/Olympus:20240501T100000",)),
                       ("junk", ("GEO:here", "SEQUENCE:abc"))):
        answer = radicale.put(f"{cal}{uid}.ics", ics(uid, "SUMMARY:x", *lines), ICS)
        assert answer.status_code == 201, (uid, answer.text)
    # Radicale refuses these by PUT, so they are planted in its storage the way another
    # client or a restore might leave them: Radicale skips them, the read goes on.
    folder = radicale.folder(cal)
    (folder / "bad-due.ics").write_text(ics("bad-due", "DUE:2024-13-45"), encoding="utf-8")
    (folder / "cut.ics").write_text(ics("cut", "SUMMARY:x").replace("END:VTODO\r\n", ""),
                                    encoding="utf-8")
    for mode in MODES:
        found = by_uid(pages(connector(radicale, cal, sync=mode), size=2))
        assert sorted(found) == ["early-due", "junk", "mars", "words"], mode
        assert found["early-due"]["due"] == "2024-05-01T10:00:00Z"
        assert found["early-due"]["dtstart"] is None
        assert found["words"]["priority"] == 3 and found["words"]["percent_complete"] is None
        assert found["mars"]["due"] == "2024-05-01T10:00:00"
        assert found["junk"]["summary"] == "x" and len(found["junk"]["warnings"]) == 2
        assert all(found[u]["warnings"] for u in found)


def test_an_update_keeps_alarms_and_repeats_and_archive_cancels(
        radicale: Radicale, cal: str) -> None:
    radicale.put(f"{cal}t1.ics", ics("t1", "SUMMARY:Water plants", "RRULE:FREQ=WEEKLY",
                                     "BEGIN:VALARM", "ACTION:DISPLAY", "DESCRIPTION:Plants!",
                                     "TRIGGER:-PT10M", "END:VALARM", "X-APPLE-SORT-ORDER:3",
                                     "DESCRIPTION:the ones in the hall"), ICS)
    c = connector(radicale, cal)
    href = by_uid(pages(c))["t1"]["href"]
    result, = c.write("tasks", [WriteOp("update", "k", {
        "summary": "Water the plants", "description": None, "status": "IN-PROCESS",
        "due": "2024-06-01"}, external_id=href)])
    assert result.ok, result.error
    stored = radicale.request("GET", href).text
    for kept in ("RRULE:FREQ=WEEKLY", "DESCRIPTION:Plants!", "TRIGGER:-PT10M",
                 "X-APPLE-SORT-ORDER:3"):
        assert kept in stored, f"{kept} was lost:\n{stored}"
    assert "the ones in the hall" not in stored and "SUMMARY:Water the plants" in stored
    assert "DUE;VALUE=DATE:20240601" in stored

    archived, = c.write("tasks", [WriteOp("archive", "a", {}, external_id=href)])
    assert archived.ok and archived.record is not None
    assert archived.record["status"] == "CANCELLED"
    assert by_uid(pages(c))["t1"]["status"] == "CANCELLED"


def test_a_task_changed_since_it_was_read_is_not_overwritten(
        radicale: Radicale, cal: str) -> None:
    radicale.put(f"{cal}t1.ics", ics("t1", "SUMMARY:Plan"), ICS)
    c = connector(radicale, cal, sync="etag")
    href = by_uid(pages(c))["t1"]["href"]
    radicale.put(href, ics("t1", "SUMMARY:Plan the offsite"), ICS)
    result, = c.write("tasks", [WriteOp("update", "k", {"summary": "Plan Q3"},
                                        external_id=href)])
    assert not result.ok and isinstance(result.error, TransientError)
    assert result.error.status == 412 and "conflict policy" in str(result.error)
    assert "SUMMARY:Plan the offsite" in radicale.request("GET", href).text


def test_a_new_task_gets_a_name_from_its_canonical_id_and_the_values_it_can_hold(
        radicale: Radicale, cal: str) -> None:
    c = connector(radicale, cal)
    ok, bad = c.write("tasks", [
        WriteOp("create", "k1", {"summary": "Ship it", "priority": 1, "status": "NEEDS-ACTION",
                                 "categories": ["release", "q3"]}, canonical_id="cid-1"),
        WriteOp("create", "k2", {"summary": "Oops", "status": "someday"},
                canonical_id="cid-2")])
    assert ok.ok and ok.external_id == f"{cal}cid-1.ics"
    assert not bad.ok and "status: 'someday' is not a task status" in str(bad.error)
    found = by_uid(pages(c))
    assert list(found) == ["cid-1"] and found["cid-1"]["categories"] == ["release", "q3"]
