"""Relative dates in conditions (today, today-14d, now-1h): parsed once, worked out per check."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.errors import MappingError
from hub.mapping import compile_mapping, parse_mapping
from hub.mapping.conditions import compile_condition
from hub.mapping.specerror import SpecError
from hub.relative_dates import RelativeDate, compare, moment, relative_date

NOW = datetime(2024, 6, 15, 10, 30, tzinfo=UTC)
instants = st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2090, 1, 1),
                        timezones=st.just(UTC))


def at(now: datetime) -> Any:
    """A clock stopped at `now`."""
    return lambda: now


@pytest.mark.parametrize(("text", "expected"), [
    ("today", date(2024, 6, 15)),
    ("TODAY", date(2024, 6, 15)),
    ("today-14d", date(2024, 6, 1)),
    ("today + 1d", date(2024, 6, 16)),
    (" today-0d ", date(2024, 6, 15)),
    ("now", NOW),
    ("now-1h", NOW - timedelta(hours=1)),
    ("now+30m", NOW + timedelta(minutes=30)),
    ("Now - 2D", NOW - timedelta(days=2)),
])
def test_values(text: str, expected: date) -> None:
    rel = relative_date(text)
    assert rel is not None and rel.at(NOW) == expected


@pytest.mark.parametrize("text", ["2024-06-01", "nowhere", "todays", "", "open", "now_ish"])
def test_other_text_is_not_a_relative_date(text: str) -> None:
    assert relative_date(text) is None


@pytest.mark.parametrize(("text", "why"), [
    ("today-14", "is not a relative date"),
    ("today-14days", "is not a relative date"),
    ("now-1w", "is not a relative date"),
    ("now-", "is not a relative date"),
    ("today 14d", "is not a relative date"),
    ("today-1h", ("today moves by whole days (like today-14d); for hours or minutes start "
                 "from now (like now-1h)")),
])
def test_wrong_relative_dates_say_how_to_write_them(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=r"today-14d"):
        relative_date(text)
    with pytest.raises(SpecError) as info:
        compile_condition({"all": [{"path": "due_date", "lt": text}]})
    (where, message), = info.value.problems
    assert where == ("all", 0, "lt") and why in message


@given(instants, st.integers(-3650, 3650))
def test_today_moves_by_whole_days(now: datetime, days: int) -> None:
    sign = "-" if days < 0 else "+"
    rel = relative_date(f"today{sign}{abs(days)}d")
    assert rel == RelativeDate("today", timedelta(days=days), f"today{sign}{abs(days)}d")
    assert rel.at(now) == now.date() + timedelta(days=days)


@given(instants, st.integers(-99999, 99999), st.sampled_from([("h", 3600), ("m", 60),
                                                              ("d", 86400)]))
def test_now_moves_by_the_unit(now: datetime, amount: int, unit: tuple[str, int]) -> None:
    sign = "-" if amount < 0 else "+"
    rel = relative_date(f"now{sign}{abs(amount)}{unit[0]}")
    assert rel is not None
    assert rel.at(now) - now == timedelta(seconds=amount * unit[1])


@given(instants, st.integers(-400, 400))
def test_a_due_date_is_before_today_exactly_when_it_is_an_earlier_day(
        now: datetime, days: int) -> None:
    due = (now.date() + timedelta(days=days)).isoformat()
    for op, expected in (("lt", days < 0), ("lte", days <= 0), ("gt", days > 0),
                         ("gte", days >= 0)):
        cond = compile_condition({"path": "due_date", op: "today"}, clock=at(now))
        assert cond.test({"due_date": due}) is expected, (op, due)


@given(instants, st.integers(-10**6, 10**6))
def test_an_instant_is_after_now_minus_an_hour_exactly_when_it_is_later(
        now: datetime, seconds: int) -> None:
    when = now - timedelta(hours=1) + timedelta(seconds=seconds)
    cond = compile_condition({"path": "t", "gt": "now-1h"}, clock=at(now))
    for shown in (when.isoformat(), when.isoformat().replace("+00:00", "Z"),
                  when.astimezone(timezone(timedelta(hours=-5))).isoformat(), when):
        assert cond.test({"t": shown}) is (seconds > 0)


@pytest.mark.parametrize(("value", "op", "bound", "expected"), [
    # A date-time counts as its UTC day against today...
    ("2024-06-15T23:59:59Z", "lt", "today", False),
    ("2024-06-15T00:00:00Z", "lte", "today", True),
    ("2024-06-14T23:59:59Z", "lt", "today", True),
    ("2024-06-15T01:00:00+02:00", "lt", "today", True),   # 2024-06-14 23:00 UTC
    ("2024-06-14 12:00:00", "lt", "today", True),          # no zone: UTC
    # ...and a date as its midnight UTC against now.
    ("2024-06-15", "lt", "now", True),
    ("2024-06-15", "gt", "now-11h", True),                # 2024-06-14 23:30
    ("2024-06-15", "gt", "now-10h", False),
    ("2024-06-15", "gte", "now-10h30m", None),             # unparseable: compile error
    # Not a date: no comparison holds (like an absent value).
    ("soon", "lt", "today", False),
    ("soon", "gt", "today", False),
    (None, "lt", "today", False),
    (20240601, "lt", "today", False),
])
def test_mixed_values(value: Any, op: str, bound: str, expected: bool | None) -> None:
    raw = {"path": "due", op: bound}
    if expected is None:
        with pytest.raises(SpecError):
            compile_condition(raw)
        return
    assert compile_condition(raw, clock=at(NOW)).test({"due": value}) is expected


def test_an_absent_value_satisfies_no_relative_comparison() -> None:
    for op in ("lt", "lte", "gt", "gte"):
        assert compile_condition({"path": "due", op: "today"}).test({}) is False


def test_the_clock_is_read_at_each_check_not_at_compile_time() -> None:
    now = [datetime(2024, 6, 15, 12, tzinfo=UTC)]
    cond = compile_condition({"path": "due_date", "lt": "today"}, clock=lambda: now[0])
    record = {"due_date": "2024-06-15"}
    assert cond.test(record) is False
    now[0] += timedelta(days=1)
    assert cond.test(record) is True


def test_the_default_clock_is_the_current_time() -> None:
    yesterday = (datetime.now(UTC) - timedelta(days=2)).date().isoformat()
    tomorrow = (datetime.now(UTC) + timedelta(days=2)).date().isoformat()
    cond = compile_condition({"path": "d", "lt": "today"})
    assert cond.test({"d": yesterday}) and not cond.test({"d": tomorrow})


def test_plain_dates_still_compare_as_text() -> None:
    cond = compile_condition({"path": "d", "lt": "2024-06-01"})
    assert cond.test({"d": "2024-05-31"}) and not cond.test({"d": "2024-06-02"})


def test_moment_reads_iso_text_dates_and_datetimes() -> None:
    assert moment("2024-06-01") == date(2024, 6, 1)
    assert moment(" 2024-06-01T10:00:00Z ") == datetime(2024, 6, 1, 10, tzinfo=UTC)
    assert moment(datetime(2024, 6, 1, 10)) == datetime(2024, 6, 1, 10, tzinfo=UTC)
    assert moment("June 1st") is None and moment(None) is None
    assert compare("2024-06-01", date(2024, 6, 1)) == 0


def test_a_wrong_relative_date_in_a_mapping_names_file_and_line() -> None:
    text = ("version: 1\nconnector: acme\nentity: invoice\nobject: invoices\nid: id\n"
            "skip_when: {path: due_date, lt: today-2w}\nfields:\n  number: n\n")
    with pytest.raises(MappingError) as info:
        parse_mapping(text, "reminder.yaml")
    assert str(info.value) == (
        "reminder.yaml:6: skip_when.lt: 'today-2w' is not a relative date: write today or "
        "now, optionally followed by + or - a number and a unit (d days, h hours, m minutes), "
        "like today, today-14d, now-1h or now+30m")


def test_a_mappings_skip_when_compares_with_the_current_day() -> None:
    text = ("version: 1\nconnector: acme\nentity: invoice\nobject: invoices\nid: id\n"
            "skip_when: {path: due_date, gte: today}\nfields:\n  number: n\n")
    mapping = compile_mapping(parse_mapping(text, "reminder.yaml"))
    past, future = (datetime.now(UTC) + timedelta(days=d) for d in (-30, 30))
    assert mapping.skip_reason({"id": "1", "due_date": past.date().isoformat()}) is None
    assert mapping.skip_reason({"id": "2", "due_date": future.date().isoformat()}) == \
        "skipped: skip_when due_date gte 'today'"
