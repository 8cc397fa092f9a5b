"""VTODO text <-> native task records (connectors/caldav/vtodo.py), without a server:
round-trip laws (hypothesis), best sane readings of bad tasks, and errors naming href/UID."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.caldav import vtodo
from connectors.dav.records import ERROR_KEY, RAW_KEY
from hub.errors import PermanentError

HREF = "/ana/tasks/t1.ics"


def calendar(*todo: str, extra: tuple[str, ...] = ()) -> str:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//test//EN", *extra, "BEGIN:VTODO",
             *todo, "END:VTODO", "END:VCALENDAR"]
    return "\r\n".join(lines) + "\r\n"


# -- strategies ---------------------------------------------------------------------------------

_CHARS = st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp"),
                       blacklist_characters="\u0085")
text = st.text(_CHARS | st.sampled_from(",;\\:\n\"'"), min_size=1, max_size=40).map(
    lambda s: s.strip()).filter(bool)
days = st.dates(date(1990, 1, 1), date(2090, 12, 31))
moments = st.datetimes(datetime(1990, 1, 1), datetime(2090, 12, 31)).map(
    lambda d: d.replace(microsecond=0, tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
records = st.fixed_dictionaries({"summary": text}, optional={
    "description": text, "location": text,
    "status": st.sampled_from(vtodo.STATUSES),
    "due": days.map(date.isoformat) | moments,
    "priority": st.integers(0, 9), "percent_complete": st.integers(0, 100),
    "categories": st.lists(text, max_size=3), "url": st.just("https://example.com/t/1")})


def fields_of(native: dict[str, Any], keys: Any) -> dict[str, Any]:
    return {k: native.get(k) if native.get(k) is not None else
            ([] if k == "categories" else None) for k in keys}


# -- round trips --------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(records)
def test_a_created_task_reads_back_as_written(record: dict[str, Any]) -> None:
    text = vtodo.create(record, "uid-1")
    native = vtodo.parse(text, HREF, '"e1"')
    assert native is not None and ERROR_KEY not in native, native
    assert fields_of(native, record) == fields_of(record, record)
    assert native["uid"] == "uid-1" and native["last_modified"] is not None
    if record.get("status") == "COMPLETED":
        assert native["completed"] is not None  # a completed task says when
    assert all(len(line.encode()) <= 75 for line in text.split("\r\n"))


@settings(max_examples=60, deadline=None)
@given(records, records)
def test_merging_writes_the_new_fields_and_keeps_the_lines_it_does_not_own(
        first: dict[str, Any], second: dict[str, Any]) -> None:
    alarm = ("BEGIN:VALARM\r\nACTION:DISPLAY\r\nDESCRIPTION:Reminder\r\nTRIGGER:-PT15M\r\n"
             "END:VALARM\r\nRRULE:FREQ=WEEKLY;COUNT=3\r\nX-APPLE-SORT-ORDER:12\r\nEND:VTODO")
    base = vtodo.create(first, "uid-1").replace("END:VTODO", alarm)
    merged = vtodo.merge(base, second, HREF)
    result = vtodo.parse(merged or base, HREF, None)
    assert result is not None and ERROR_KEY not in result
    keys = set(second) - {"due"}
    assert fields_of(result, keys) == fields_of(second, keys)
    if "due" in second:
        assert (result["due"] or "")[:10] == second["due"][:10]
    for kept in ("DESCRIPTION:Reminder", "TRIGGER:-PT15M", "RRULE:FREQ=WEEKLY;COUNT=3",
                 "X-APPLE-SORT-ORDER:12", "UID:uid-1"):
        assert kept in (merged or base)


@settings(max_examples=40, deadline=None)
@given(records)
def test_writing_back_what_was_read_changes_nothing(record: dict[str, Any]) -> None:
    text = vtodo.create(record, "uid-1")
    native = vtodo.parse(text, HREF, None)
    assert native is not None
    again = {k: native[k] for k in vtodo.OWNED}
    assert vtodo.merge(text, again, HREF) is None


# -- reading real-world tasks ---------------------------------------------------------------------


def test_dates_zones_and_the_master_of_a_recurring_task() -> None:
    text = calendar("UID:r1", "SUMMARY:Weekly report", "DTSTART;TZID=Europe/Berlin:"
                    "20240506T090000", "DUE;TZID=Europe/Berlin:20240506T170000",
                    "RRULE:FREQ=WEEKLY", "LAST-MODIFIED:20240501T100000Z",
                    "STATUS:IN-PROCESS", "PRIORITY:1", "CATEGORIES:work,reports") + ""
    override = ("BEGIN:VTODO\r\nUID:r1\r\nRECURRENCE-ID;TZID=Europe/Berlin:20240513T090000\r\n"
                "SUMMARY:Weekly report (moved)\r\nEND:VTODO\r\n")
    text = text.replace("END:VCALENDAR", override + "END:VCALENDAR")
    native = vtodo.parse(text, HREF, None)
    assert native is not None
    assert native["summary"] == "Weekly report"  # the master, not the moved occurrence
    assert native["dtstart"] == "2024-05-06T07:00:00Z" and native["due"] == "2024-05-06T15:00:00Z"
    assert native["status"] == "IN-PROCESS" and native["priority"] == 1
    assert native["categories"] == ["work", "reports"]
    assert native["last_modified"] == "2024-05-01T10:00:00Z"


def test_an_event_is_not_a_task() -> None:
    text = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VEVENT\r\nUID:e1\r\n"
            "DTSTART:20240501T100000Z\r\nSUMMARY:Meeting\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
    assert vtodo.parse(text, HREF, None) is None


def test_due_before_start_keeps_the_due_date() -> None:
    native = vtodo.parse(calendar("UID:t1", "DTSTART:20240510T100000Z",
                                  "DUE:20240501T100000Z"), HREF, None)
    assert native is not None and native["due"] == "2024-05-01T10:00:00Z"
    assert native["dtstart"] is None
    assert any("is before DTSTART" in w for w in native["warnings"])


def test_iso_style_dates_words_for_priority_and_junk_metadata_get_sane_readings() -> None:
    native = vtodo.parse(calendar("UID:t1", "DUE:2024-05-01", "COMPLETED:2024-05-02T10:00:00Z",
                                  "PRIORITY:high", "PERCENT-COMPLETE:most",
                                  "DTSTAMP:yesterday"), HREF, None)
    assert native is not None and ERROR_KEY not in native
    assert native["due"] == "2024-05-01" and native["completed"] == "2024-05-02T10:00:00Z"
    assert native["priority"] == 3 and native["percent_complete"] is None
    assert native["last_modified"] is None
    assert len(native["warnings"]) == 5


def test_values_the_connector_does_not_read_are_ignored_when_unreadable() -> None:
    text = calendar("UID:t1", "SUMMARY:x", "RRULE:FREQ=SOMETIMES", "GEO:here", "SEQUENCE:abc",
                    "BEGIN:VALARM", "ACTION:DISPLAY", "TRIGGER:soon", "END:VALARM")
    native = vtodo.parse(text, HREF, None)
    assert native is not None and ERROR_KEY not in native and native["summary"] == "x"
    assert sorted(w.split()[0] for w in native["warnings"]) == ["GEO", "RRULE", "SEQUENCE",
                                                                 "TRIGGER"]
    merged = vtodo.merge(text, {"summary": "y"}, HREF)
    assert merged is not None and "GEO:here" in merged and "TRIGGER:soon" in merged


def test_an_unknown_time_zone_reads_as_floating_time() -> None:
    native = vtodo.parse(calendar("UID:t1", "DUE;TZID=Mars/Olympus:20240501T100000"),
                         HREF, None)
    assert native is not None and native["due"] == "2024-05-01T10:00:00"
    assert any("Mars/Olympus" in w for w in native["warnings"])


@pytest.mark.parametrize(("text", "why"), [
    (calendar("UID:t-bad", "DUE:2024-13-45"), "DUE '2024-13-45' is not a date"),
    (calendar("UID:t-bad", "DTSTART:soon"), "DTSTART 'soon' is not a date"),
    (calendar("UID:t-bad", "COMPLETED;VALUE=DATE:2024"), "COMPLETED '2024' is not a date"),
    (calendar("UID:t-bad", "SUMMARY done"), "is not a content line"),
    ("BEGIN:VCALENDAR\r\nBEGIN:VTODO\r\nUID:t-bad\r\nEND:VCALENDAR\r\n", "is not closed"),
    ("BEGIN:VCALENDAR\r\nBEGIN:VTODO\r\nUID:t-bad\r\n", "no BEGIN:VCALENDAR"),
])
def test_broken_tasks_become_error_records_naming_href_uid_and_property(text: str,
                                                                        why: str) -> None:
    native = vtodo.parse(text, HREF, '"e9"')
    assert native is not None and set(native) == {ERROR_KEY, RAW_KEY}
    assert native[ERROR_KEY].startswith(f"VTODO {HREF} (UID t-bad): ")
    assert why in native[ERROR_KEY]


def test_completing_a_task_stamps_completed_and_reopening_clears_it() -> None:
    text = calendar("UID:t1", "SUMMARY:x", "STATUS:NEEDS-ACTION")
    done = vtodo.merge(text, {"status": "COMPLETED"}, HREF)
    assert done is not None
    native = vtodo.parse(done, HREF, None)
    assert native is not None and native["status"] == "COMPLETED" and native["completed"]
    reopened = vtodo.merge(done, {"status": "NEEDS-ACTION"}, HREF)
    assert reopened is not None and "COMPLETED:" not in reopened


def test_a_due_date_on_the_same_day_keeps_the_time_of_day() -> None:
    text = calendar("UID:t1", "DUE:20240501T170000Z")
    assert vtodo.merge(text, {"due": "2024-05-01"}, HREF) is None
    moved = vtodo.merge(text, {"due": "2024-05-02"}, HREF)
    assert moved is not None and "DUE;VALUE=DATE:20240502" in moved


def test_values_the_format_cannot_hold_are_refused_with_the_field_named() -> None:
    text = calendar("UID:t1")
    with pytest.raises(PermanentError, match="status: 'later' is not a task status"):
        vtodo.merge(text, {"status": "later"}, HREF)
    with pytest.raises(PermanentError, match="priority: 12 is not a whole number from 0 to 9"):
        vtodo.merge(text, {"priority": 12}, HREF)
    with pytest.raises(PermanentError, match="due: 'next week' is not a date"):
        vtodo.create({"due": "next week"}, "u")
