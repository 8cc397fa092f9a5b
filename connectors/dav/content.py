"""Content lines of vCard (RFC 6350/2426) and iCalendar (RFC 5545) text, kept verbatim.

Parsing values is the job of vobject and icalendar; this module only works on whole lines,
so that an update can replace the properties Liaison owns and keep every other line exactly
as the server had it (photos, X- properties, alarms, parameters we do not know).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

FOLD_OCTETS = 75
_NEWLINES = re.compile(r"\r\n|\n|\r")
_HEAD = re.compile(r"[^;:]*")


def unfold(text: str) -> list[str]:
    """The logical lines of a text: folded continuations joined, blank lines dropped."""
    out: list[str] = []
    for raw in _NEWLINES.split(text):
        if raw[:1] in (" ", "\t") and out:
            out[-1] += raw[1:]
        elif raw.strip():
            out.append(raw)
    return out


def fold(line: str) -> str:
    """One line folded at 75 octets, never inside a UTF-8 character."""
    if len(line.encode("utf-8")) <= FOLD_OCTETS:
        return line
    parts: list[str] = []
    current, size, limit = "", 0, FOLD_OCTETS
    for char in line:
        width = len(char.encode("utf-8"))
        if size + width > limit:
            parts.append(current)
            current, size, limit = "", 0, FOLD_OCTETS - 1  # the leading space counts
        current += char
        size += width
    parts.append(current)
    return "\r\n ".join(parts)


def render(lines: Iterable[str]) -> str:
    """Lines joined as the RFCs want them: folded, CRLF after each."""
    return "".join(fold(line) + "\r\n" for line in lines)


def name_of(line: str) -> tuple[str | None, str]:
    """(group, NAME) of a content line: "item1.EMAIL;TYPE=x:a" -> ("ITEM1", "EMAIL")."""
    head = _HEAD.match(line)
    group, _, name = (head.group(0) if head else "").rpartition(".")
    return (group.upper() or None), name.strip().upper()


def escape(value: str) -> str:
    """A TEXT value escaped for a content line (backslash, comma, semicolon, newline)."""
    return (value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
            .replace("\r\n", "\\n").replace("\n", "\\n").replace("\r", "\\n"))


def span(lines: Sequence[str], component: str, start: int = 0) -> tuple[int, int] | None:
    """Indexes of BEGIN:<component> and its matching END (nested ones skipped), or None."""
    begin = f"BEGIN:{component}"
    end = f"END:{component}"
    depth, first = 0, -1
    for index in range(start, len(lines)):
        text = lines[index].strip().upper()
        if text == begin:
            if depth == 0:
                first = index
            depth += 1
        elif text == end and depth:
            depth -= 1
            if depth == 0:
                return first, index
    return None


def top_level(lines: Sequence[str], begin: int, end: int) -> list[int]:
    """Indexes of the lines directly inside a component (not inside nested ones)."""
    out, depth = [], 0
    for index in range(begin + 1, end):
        _, name = name_of(lines[index])
        if name == "BEGIN":
            depth += 1
        elif name == "END":
            depth -= 1
        elif depth == 0:
            out.append(index)
    return out


def replace(lines: Sequence[str], begin: int, end: int, names: Iterable[str],
            new: Sequence[str]) -> list[str]:
    """The lines with the component's own properties `names` replaced by `new`.

    The new lines go where the first removed one was (else just before END). A removed
    line's group mates that are X- labels (Apple's item1.X-ABLabel) go with it.
    """
    wanted = {n.upper() for n in names}
    inside = top_level(lines, begin, end)
    drop: set[int] = set()
    groups: set[str] = set()
    for index in inside:
        group, name = name_of(lines[index])
        if name in wanted:
            drop.add(index)
            if group:
                groups.add(group)
    for index in inside:
        group, name = name_of(lines[index])
        if group in groups and name.startswith("X-"):
            drop.add(index)
    at = min(drop) if drop else end
    out: list[str] = []
    for index, line in enumerate(lines):
        if index == at:
            out.extend(new)
        if index not in drop:
            out.append(line)
    return out
