"""Relative dates in conditions: `today`, `today-14d`, `now`, `now-1h`, `now+30m`.

    {path: due_date, lt: today}            due before today (any earlier date)
    {path: due_date, lte: "today-14d"}     due 14 days ago or earlier
    {path: updated_at, gt: "now-1h"}       changed in the last hour

A value is relative when it is `today` or `now`, alone or followed by + or - a number and a
unit: d (days), h (hours), m (minutes); `today` moves by whole days only. It is worked out
when the condition is checked, not when it is compiled, so a flow that runs every day
always compares with that day. Times are UTC: `today` is the current UTC date.

`today` compares by calendar day: a date-time counts as its (UTC) day, so
`{path: due_at, lt: today}` is false for any moment of today. `now` compares instants: a
plain date counts as its midnight UTC. A value that is neither a date nor a date-time
(ISO 8601, like 2024-05-01 or 2024-05-01T09:30:00Z) satisfies no comparison.

A leaf module (it imports nothing from hub) so the config check and the mapping conditions
share one grammar.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

EXAMPLES = "today, today-14d, now-1h or now+30m"
_UNITS = {"d": timedelta(days=1), "h": timedelta(hours=1), "m": timedelta(minutes=1)}
# `today` or `now` as a word of its own: "nowhere" and "todays-list" stay plain text.
_LOOKS = re.compile(r"\s*(today|now)(?![a-z0-9_])", re.IGNORECASE)
_FULL = re.compile(r"\s*(today|now)\s*(?:([+-])\s*(\d{1,5})\s*([a-z]+)\s*)?", re.IGNORECASE)


@dataclass(frozen=True)
class RelativeDate:
    """A parsed relative value: `today` or `now` moved by `offset`."""

    base: str  # "today" or "now"
    offset: timedelta
    text: str  # as written

    def at(self, now: datetime) -> date | datetime:
        """The value at the instant `now`: a date for `today`, an aware UTC date-time for
        `now`."""
        instant = now.astimezone(UTC) if now.tzinfo else now.replace(tzinfo=UTC)
        if self.base == "today":
            return instant.date() + self.offset
        return instant + self.offset


def relative_date(value: Any) -> RelativeDate | None:
    """The relative date `value` spells, None when it is not meant as one (not text, or
    text not starting with the word today or now); ValueError when it is meant as one but
    is written wrongly."""
    if not isinstance(value, str) or not _LOOKS.match(value):
        return None
    found = _FULL.fullmatch(value)
    why = (f"{value!r} is not a relative date: write today or now, optionally followed by "
           "+ or - a number and a unit (d days, h hours, m minutes), like " + EXAMPLES)
    if found is None:
        raise ValueError(why)
    base, sign, amount, unit = found.groups()
    base = base.lower()
    if unit is None:
        return RelativeDate(base, timedelta(0), value)
    step = _UNITS.get(unit.lower())
    if step is None:
        raise ValueError(why)
    if base == "today" and step != _UNITS["d"]:
        raise ValueError(f"{value!r}: today moves by whole days (like today-14d); for hours "
                         f"or minutes start from now (like now-{amount}{unit.lower()})")
    offset = step * int(amount)
    return RelativeDate(base, -offset if sign == "-" else offset, value)


def moment(value: Any) -> date | datetime | None:
    """A date or an aware date-time read from `value` (ISO 8601 text, date, datetime);
    None when it is neither. A date-time without a zone is taken as UTC."""
    if isinstance(value, datetime):
        found: date | datetime = value
    elif isinstance(value, date):
        return value
    elif isinstance(value, str):
        text = value.strip()
        try:
            found = date.fromisoformat(text) if len(text) == 10 \
                else datetime.fromisoformat(text)
        except ValueError:
            return None
    else:
        return None
    if isinstance(found, datetime) and found.tzinfo is None:
        return found.replace(tzinfo=UTC)
    return found


def compare(value: Any, bound: date | datetime) -> int | None:
    """-1, 0 or 1 as `value` is before, at or after `bound` (by day when `bound` is a date);
    None when `value` is not a date or date-time."""
    found = moment(value)
    if found is None:
        return None
    if isinstance(bound, datetime):
        if not isinstance(found, datetime):
            found = datetime.combine(found, time(), UTC)
        return (found > bound) - (found < bound)
    day = found.astimezone(UTC).date() if isinstance(found, datetime) else found
    return (day > bound) - (day < bound)
