"""iCalendar VTODO text <-> the connector's native task record.

Reading (icalendar parses): the native record of a resource holding a VTODO is

    {"href", "etag", "uid", "summary", "description", "location", "url", "status",
     "due", "dtstart", "completed", "priority", "percent_complete", "categories",
     "last_modified", "warnings": [...]}

`due` and `dtstart` are "2024-05-01" for a date, "2024-05-01T15:00:00Z" for a time with a
zone (converted to UTC) and "2024-05-01T17:00:00" for a floating time. `completed` and
`last_modified` (LAST-MODIFIED, else DTSTAMP) are RFC 3339 UTC. `status` is the VTODO
status as written (NEEDS-ACTION, IN-PROCESS, COMPLETED, CANCELLED). Of a recurring task the
master component is read (the one without RECURRENCE-ID). A resource without a VTODO (an
event in a mixed calendar) is not a task: `parse` returns None for it.

Bad input gets the best sane reading, noted in "warnings": a date written ISO 8601 style
(2024-05-01, 2024-05-01T17:00:00Z) is read as meant; DUE before DTSTART keeps the due date
and ignores the start; PRIORITY "high"/"medium"/"low" becomes 3/5/7, any other non-number
is ignored; an unreadable PERCENT-COMPLETE, DTSTAMP, LAST-MODIFIED or CREATED is ignored,
and so is any other property whose value cannot be read (GEO, SEQUENCE, RRULE, an alarm's
TRIGGER: left as it is on the server); a TZID the zone database does not know is read as
floating time; a repeated property: the first is used. A DUE, DTSTART or COMPLETED that is no date at all, and text that is not
iCalendar (a component not closed, a line without a colon), become an `__error__` record
naming the href, the UID and the property, which the engine dead-letters.

Writing: a new resource is one VCALENDAR with one VTODO. An update rewrites only the
master VTODO's properties whose keys are in the record, and only when their value
changes; every other line (alarms, RRULE, X- properties, other components, time zones)
is kept as it was. A status changed to COMPLETED adds COMPLETED (now) when the task has
none; changed away from it, COMPLETED is removed (unless the record sets `completed`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

import icalendar
from icalendar.parser import Contentline
from icalendar.prop import TypesFactory, vDDDTypes

from connectors.dav import content, records
from connectors.dav.records import ERROR_KEY
from hub.errors import PermanentError

PRODID = "-//Liaison//Liaison hub//EN"
OWNED: Mapping[str, tuple[str, ...]] = {
    "summary": ("SUMMARY",), "description": ("DESCRIPTION",), "location": ("LOCATION",),
    "url": ("URL",), "status": ("STATUS",), "due": ("DUE",), "dtstart": ("DTSTART",),
    "completed": ("COMPLETED",), "priority": ("PRIORITY",),
    "percent_complete": ("PERCENT-COMPLETE",), "categories": ("CATEGORIES",),
}
STATUSES = ("NEEDS-ACTION", "IN-PROCESS", "COMPLETED", "CANCELLED")
TASK_DATES = ("DUE", "DTSTART", "COMPLETED")
META_DATES = ("DTSTAMP", "LAST-MODIFIED", "CREATED")
PRIORITY_WORDS = {"urgent": 1, "highest": 1, "high": 3, "medium": 5, "normal": 5, "low": 7,
                  "lowest": 9}
_TYPES = TypesFactory()
_EXPECTED_DATE = "expected a date like 20240501 or a time like 20240501T170000Z"


def error_record(href: str, etag: str | None, text: str, problem: str) -> dict[str, Any]:
    """The record the engine dead-letters for an unreadable task."""
    return records.error_record("VTODO", href, etag, text, problem)


# -- reading --------------------------------------------------------------------------------


def parse(text: str, href: str, etag: str | None) -> dict[str, Any] | None:
    """A calendar resource -> its native task record, None if it holds no VTODO, or an
    `__error__` record naming why it cannot be read."""
    lines = content.unfold(text)
    calendar = content.span(lines, "VCALENDAR")
    if calendar is None:
        return error_record(href, etag, text, "is not iCalendar text: no BEGIN:VCALENDAR ... "
                                              "END:VCALENDAR (cut short?)")
    todos = _todo_spans(lines, calendar)
    opened = sum(1 for line in lines if line.strip().upper() == "BEGIN:VTODO")
    if len(todos) != opened:
        return error_record(href, etag, text, "a VTODO component is not closed (BEGIN:VTODO "
                                              "without END:VTODO)")
    if not todos:
        return None
    warnings: list[str] = []
    fixed: list[str | None] = list(lines)
    own = {i for begin, end in todos for i in content.top_level(lines, begin, end)}
    for index in range(calendar[0] + 1, calendar[1]):
        problem = _sanitize(fixed, index, warnings, strict=index in own)
        if problem:
            return error_record(href, etag, text, problem)
    kept = [line for line in fixed if line is not None]
    try:
        parsed = icalendar.Calendar.from_ical(content.render(kept))
        components = list(parsed.walk("VTODO"))
    except Exception as exc:  # noqa: BLE001 - icalendar raises ValueError, KeyError, ...
        problem = _diagnose(kept) or f"is not valid iCalendar: {records.reason(exc)}"
        return error_record(href, etag, text, problem)
    if not components:
        return None
    master = next((c for c in components if "RECURRENCE-ID" not in c), components[0])
    try:
        return _native(master, href, etag, warnings)
    except Exception as exc:  # noqa: BLE001 - a value icalendar accepted but cannot give
        return error_record(href, etag, text, f"has a value that cannot be read: "
                                              f"{records.reason(exc)}")


def _todo_spans(lines: Sequence[str], calendar: tuple[int, int]) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    at = calendar[0] + 1
    while True:
        found = content.span(lines, "VTODO", at)
        if found is None or found[1] > calendar[1]:
            return spans
        spans.append(found)
        at = found[1] + 1


def _parts(line: str) -> tuple[str, Any, str]:
    name, params, value = Contentline(line).parts()  # type: ignore[no-untyped-call]
    return str(name).upper(), params, str(value)


def _sanitize(lines: list[str | None], index: int, warnings: list[str], *,
              strict: bool) -> str | None:
    """Fix or drop one line the sane way (for reading only: the server's text is kept);
    the problem when the task cannot be read. `strict`: a property of a VTODO itself."""
    line = lines[index]
    assert line is not None
    try:
        name, params, value = _parts(line)
    except Exception:  # noqa: BLE001 - icalendar's content-line parser
        return f"the line {line[:80]!r} is not a content line (expected NAME:value)"
    if name in ("BEGIN", "END"):
        return None
    if not strict or name not in TASK_DATES + META_DATES + ("PRIORITY", "PERCENT-COMPLETE"):
        if not _readable(name, params, value):
            lines[index] = None
            warnings.append(f"{name} {value[:60]!r} cannot be read: ignored (left as it is "
                            "on the server)")
        return None
    if name in TASK_DATES + META_DATES:
        if _date_ok(value):
            return None
        basic = _from_iso(value)
        if basic is not None:
            lines[index] = Contentline.from_parts(name, params, basic).to_ical().decode()
            warnings.append(f"{name} {value!r} is written ISO 8601 style: read as {basic}")
            return None
        if name in META_DATES:
            lines[index] = None
            warnings.append(f"{name} {value!r} is not a time: ignored")
            return None
        return f"{name} {value!r} is not a date ({_EXPECTED_DATE})"
    if name in ("PRIORITY", "PERCENT-COMPLETE"):
        top = 9 if name == "PRIORITY" else 100
        number = _int(value)
        if number is None and name == "PRIORITY":
            number = PRIORITY_WORDS.get(value.strip().lower())
            if number is not None:
                warnings.append(f"PRIORITY {value!r} is a word: read as {number}")
        if number is None or not 0 <= number <= top:
            lines[index] = None
            warnings.append(f"{name} {value!r} is not a number from 0 to {top}: ignored")
        else:
            lines[index] = f"{name}:{number}"
    return None


def _readable(name: str, params: Any, value: str) -> bool:
    kind: Any = _TYPES.for_property(name, params.get("VALUE"))
    try:
        kind.from_ical(value)
    except Exception:  # noqa: BLE001 - any of icalendar's value parsers
        return False
    return True


def _date_ok(value: str) -> bool:
    try:
        vDDDTypes.from_ical(value)  # type: ignore[no-untyped-call]
    except Exception:  # noqa: BLE001 - icalendar's date parser
        return False
    return True


def _from_iso(value: str) -> str | None:
    """20240501 / 20240501T170000Z for ISO 8601 text with dashes, None if it is not that."""
    text = value.strip()
    if "-" not in text[:8]:
        return None
    try:
        if len(text) <= 10:
            return date.fromisoformat(text).strftime("%Y%m%d")
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    if when.tzinfo is not None:
        return when.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return when.strftime("%Y%m%dT%H%M%S")


def _int(value: str) -> int | None:
    try:
        return int(value.strip())
    except ValueError:
        return None


def _diagnose(lines: Sequence[str]) -> str | None:
    """Which line icalendar cannot read, when one line is the cause."""
    for line in lines:
        try:
            name, params, value = _parts(line)
        except Exception:  # noqa: BLE001
            return f"the line {line[:80]!r} is not a content line (expected NAME:value)"
        if name in ("BEGIN", "END"):
            continue
        kind: Any = _TYPES.for_property(name, params.get("VALUE"))
        try:
            kind.from_ical(value)
        except Exception as exc:  # noqa: BLE001 - any of icalendar's value parsers
            return f"{name} {value[:60]!r} cannot be read ({records.reason(exc)})"
    return None


def _native(todo: Any, href: str, etag: str | None, warnings: list[str]) -> dict[str, Any]:
    def one(name: str) -> Any:
        value = todo.get(name)
        if isinstance(value, list):
            warnings.append(f"{name} appears {len(value)} times: the first is used")
            value = value[0] if value else None
        return value

    due, dtstart = one("DUE"), one("DTSTART")
    for name, prop in (("DUE", due), ("DTSTART", dtstart)):
        zone = prop.params.get("TZID") if prop is not None else None
        dt = prop.dt if prop is not None else None
        if zone and isinstance(dt, datetime) and dt.tzinfo is None:
            warnings.append(f"{name} has time zone {zone!r}, which is not known here: read as "
                            "floating time")
    due_text, start_text = _when(due), _when(dtstart)
    if due is not None and dtstart is not None and _naive(due.dt) < _naive(dtstart.dt):
        warnings.append(f"DUE {due_text} is before DTSTART {start_text}: the start is ignored")
        start_text = None
    modified = one("LAST-MODIFIED")
    if modified is None:
        modified = one("DTSTAMP")
    status = _text(one("STATUS"))
    return {
        "href": href,
        "etag": etag,
        "uid": _text(one("UID")),
        "summary": _text(one("SUMMARY")),
        "description": _text(one("DESCRIPTION")),
        "location": _text(one("LOCATION")),
        "url": _text(one("URL")),
        "status": status.upper() if status else None,
        "due": due_text,
        "dtstart": start_text,
        "completed": _utc(one("COMPLETED")),
        "priority": _number(one("PRIORITY")),
        "percent_complete": _number(one("PERCENT-COMPLETE")),
        "categories": _categories(todo.get("CATEGORIES")),
        "last_modified": _utc(modified),
        "warnings": warnings,
    }


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _number(value: Any) -> int | None:
    return int(value) if value is not None else None


def _categories(value: Any) -> list[str]:
    props = value if isinstance(value, list) else [value] if value is not None else []
    out: list[str] = []
    for prop in props:
        for cat in getattr(prop, "cats", [prop]):
            if (text := _text(cat)) is not None:
                out.append(text)
    return out


def _naive(value: date) -> datetime:
    """A comparable form: dates at midnight, zoned times in UTC without the zone."""
    if not isinstance(value, datetime):
        return datetime(value.year, value.month, value.day)
    if value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


def _when(prop: Any) -> str | None:
    if prop is None:
        return None
    value = prop.dt
    if not isinstance(value, datetime):
        return str(value.isoformat())
    if value.tzinfo is None:
        return value.strftime("%Y-%m-%dT%H:%M:%S")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _utc(prop: Any) -> str | None:
    if prop is None:
        return None
    return _naive(prop.dt).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- writing --------------------------------------------------------------------------------


def writable(record: Mapping[str, Any]) -> dict[str, Any]:
    """The record's keys the connector writes (others, like href or uid, are read-only)."""
    return {k: v for k, v in record.items() if k in OWNED}


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def _date_value(key: str, value: Any, *, utc: bool) -> str:
    """;VALUE=DATE:20240501 or :20240501T170000Z (or floating) for a date/time value."""
    if isinstance(value, datetime):
        when: date | datetime = value
    elif isinstance(value, date):
        when = value
    else:
        text = str(value).strip()
        try:
            when = (date.fromisoformat(text) if len(text) <= 10
                    else datetime.fromisoformat(text))
        except ValueError:
            raise PermanentError(f"VTODO field {key}: {value!r} is not a date (expected "
                                 "2024-05-01 or 2024-05-01T17:00:00Z)") from None
    if not isinstance(when, datetime):
        if utc:  # COMPLETED must be a UTC time
            return f":{when.strftime('%Y%m%d')}T000000Z"
        return f";VALUE=DATE:{when.strftime('%Y%m%d')}"
    if when.tzinfo is not None or utc:
        return f":{_naive(when).strftime('%Y%m%dT%H%M%SZ')}"
    return f":{when.strftime('%Y%m%dT%H%M%S')}"


def _bounded(key: str, value: Any, top: int) -> int:
    try:
        number = int(str(value).strip())
    except ValueError:
        number = -1
    if not 0 <= number <= top:
        raise PermanentError(f"VTODO field {key}: {value!r} is not a whole number from 0 to "
                             f"{top}")
    return number


def lines_for(key: str, value: Any) -> list[str]:
    """The content lines for one native key's value (no lines: the property is removed)."""
    if value is None or value == "" or value == []:
        return []
    prop = OWNED[key][0] if key in OWNED else key.upper()
    if key in ("summary", "description", "location"):
        return [f"{prop}:{content.escape(str(value))}"]
    if key == "url":
        return [f"URL:{str(value).strip()}"]
    if key == "status":
        status = str(value).strip().upper()
        if status not in STATUSES:
            raise PermanentError(f"VTODO field status: {value!r} is not a task status (one of "
                                 f"{', '.join(STATUSES)}); check the status map of the mapping")
        return [f"STATUS:{status}"]
    if key in ("due", "dtstart", "completed"):
        return [prop + _date_value(key, value, utc=key == "completed")]
    if key == "priority":
        return [f"PRIORITY:{_bounded(key, value, 9)}"]
    if key == "percent_complete":
        return [f"PERCENT-COMPLETE:{_bounded(key, value, 100)}"]
    if key == "categories":
        values = value if isinstance(value, list) else str(value).split(",")
        texts = [content.escape(str(v).strip()) for v in values
                 if v is not None and str(v).strip()]
        return [f"CATEGORIES:{','.join(texts)}"] if texts else []
    raise PermanentError(f"VTODO: {key!r} is not a field the CalDAV connector writes")


def create(record: Mapping[str, Any], uid: str) -> str:
    """A new VCALENDAR holding one VTODO for the record."""
    now = _stamp()
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", f"PRODID:{PRODID}", "BEGIN:VTODO",
             f"UID:{uid}", f"DTSTAMP:{now}", f"CREATED:{now}", f"LAST-MODIFIED:{now}"]
    fields = writable(record)
    _complete(fields, None)
    for key, value in fields.items():
        lines.extend(lines_for(key, value))
    lines += ["END:VTODO", "END:VCALENDAR"]
    return content.render(lines)


def _complete(fields: dict[str, Any], old: Mapping[str, Any] | None) -> None:
    """COMPLETED follows a status change unless the record says when itself."""
    if "status" not in fields or "completed" in fields:
        return
    new = str(fields["status"] or "").strip().upper()
    if old is not None and new == (old.get("status") or ""):
        return
    had = old.get("completed") if old is not None else None
    if new == "COMPLETED" and not had:
        fields["completed"] = datetime.now(UTC).replace(microsecond=0)
    elif new != "COMPLETED" and had:
        fields["completed"] = None


def _reread(key: str, lines: Sequence[str]) -> Any:
    """How the connector reads a key back from lines it would write (for "unchanged?")."""
    text = content.render(["BEGIN:VCALENDAR", "VERSION:2.0", f"PRODID:{PRODID}",
                           "BEGIN:VTODO", "UID:x", *lines, "END:VTODO", "END:VCALENDAR"])
    found = parse(text, "", None)
    if found is None or ERROR_KEY in found:
        return object()  # never equal: write it, and let the server judge
    return found[key]


def _unchanged(key: str, value: Any, new: Sequence[str], old: Mapping[str, Any]) -> bool:
    current = old.get(key)
    if key in ("due", "dtstart") and isinstance(value, str) and len(value.strip()) == 10 \
            and isinstance(current, str) and current[:10] == value.strip():
        return True  # the same day: keep the time of day the task has
    return bool(_reread(key, new) == current)


def merge(text: str, record: Mapping[str, Any], href: str) -> str | None:
    """The resource's text with the record's fields written into its master VTODO; None
    when nothing changes."""
    old = parse(text, href, None)
    if old is None:
        raise PermanentError(f"cannot update {href}: it holds no VTODO (is it an event?)")
    if ERROR_KEY in old:
        raise PermanentError(f"cannot update {href}: the task on the server cannot be read "
                             f"({old[ERROR_KEY]}); fix or delete it there")
    lines = content.unfold(text)
    fields = writable(record)
    _complete(fields, old)
    changed = False
    for key, value in fields.items():
        new = lines_for(key, value)
        if _unchanged(key, value, new, old):
            continue
        lines = content.replace(lines, *_master(lines), OWNED[key], new)
        changed = True
    if not changed:
        return None
    now = _stamp()
    lines = content.replace(lines, *_master(lines), ("DTSTAMP",), [f"DTSTAMP:{now}"])
    lines = content.replace(lines, *_master(lines), ("LAST-MODIFIED",), [f"LAST-MODIFIED:{now}"])
    return content.render(lines)


def _master(lines: Sequence[str]) -> tuple[int, int]:
    calendar = content.span(lines, "VCALENDAR")
    assert calendar is not None  # parse() checked it
    spans = _todo_spans(lines, calendar)
    for begin, end in spans:
        names = {content.name_of(lines[i])[1] for i in content.top_level(lines, begin, end)}
        if "RECURRENCE-ID" not in names:
            return begin, end
    return spans[0]
