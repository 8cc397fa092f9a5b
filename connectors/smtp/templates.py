"""Email templates: files with `{placeholders}` filled from a native record, nothing more.

A template is named by the record's `template` field (e.g. `overdue_invoice`) and found as
`<name>.txt` in the connection's `templates_dir`, then among the templates shipped with
Liaison (mappings/smtp/templates/). The file:

    Subject: Invoice {number} is overdue
                                                  <- one empty line after the Subject line
    Dear customer,
    invoice {number} for {total_amount} {currency} was due on {due_date}.
    {memo?}

`{path}` is a record path as in mappings (`number`, `contact.name`, `lines[0].amount`);
`{path?}` may be empty (absent or null gives ""); `{{` and `}}` are literal braces. A
required placeholder with no value fails that record (PermanentError naming the template
file, its line and the placeholder), it never sends "Dear None". Without a Subject line the
record's own `subject` is used. An optional `<name>.html` next to it is the HTML part,
filled the same way with every value HTML-escaped.

Why not Jinja or str.format: both reach attributes of the values (`{x.__class__}`), which
turns a template into code. Here a placeholder can only read a record path; there are no
expressions, filters, loops or attribute access, so an ops person's template cannot run
anything.
"""

from __future__ import annotations

import html
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hub.mapping import MISSING
from hub.mapping.paths import compile_getter, text_of
from hub.mapping.specerror import SpecError

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
BUILTIN_DIR = Path(__file__).resolve().parents[2] / "mappings" / "smtp" / "templates"
_SUBJECT = re.compile(r"(?i)subject:[ \t]*")


class TemplateError(ValueError):
    """A template cannot be found, parsed or filled; the message names file:line."""


@dataclass(frozen=True)
class _Slot:
    """One placeholder: its record path, whether it may be empty, and where it is."""

    path: str
    get: Callable[[Any], Any]
    optional: bool
    line: int


Part = str | _Slot


def _parse(text: str, file: str, first_line: int) -> tuple[Part, ...]:
    """Text -> literal strings and slots; TemplateError at file:line for a bad brace/path."""
    parts: list[Part] = []
    buf: list[str] = []
    line = first_line
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in "{}" and i + 1 < n and text[i + 1] == ch:
            buf.append(ch)
            i += 2
            continue
        if ch == "}":
            raise TemplateError(f"{file}:{line}: '}}' without '{{' (write }}}} for a brace)")
        if ch == "{":
            close = text.find("}", i)
            inner = text[i + 1:close] if close >= 0 else ""
            if close < 0 or "\n" in inner or "{" in inner:
                raise TemplateError(f"{file}:{line}: '{{' is not closed on its line (write "
                                    "{{ for a brace)")
            path = inner.strip()
            optional = path.endswith("?")
            path = path.removesuffix("?").strip()
            if not path:
                raise TemplateError(f"{file}:{line}: an empty placeholder {{}}")
            try:
                get = compile_getter(path)
            except SpecError as exc:
                raise TemplateError(f"{file}:{line}: placeholder {{{inner}}}: {exc}") from None
            if buf:
                parts.append("".join(buf))
                buf = []
            parts.append(_Slot(path, get, optional, line))
            i = close + 1
            continue
        if ch == "\n":
            line += 1
        buf.append(ch)
        i += 1
    if buf:
        parts.append("".join(buf))
    return tuple(parts)


def _text(value: Any, slot: _Slot, file: str) -> str:
    if isinstance(value, list) and all(not isinstance(v, (dict, list)) for v in value):
        return ", ".join(text_of(v) for v in value if v is not None)
    if isinstance(value, dict) and isinstance(value.get("address"), str):
        name = value.get("name")
        return f"{name} <{value['address']}>" if name else str(value["address"])
    if isinstance(value, (dict, list)):
        raise TemplateError(f"{file}:{slot.line}: {{{slot.path}}} is a "
                            f"{'list' if isinstance(value, list) else 'group of fields'}, not "
                            "text; name one of its parts, like {" + slot.path + "[0]}")
    return text_of(value)


def _fill(parts: tuple[Part, ...], record: dict[str, Any], file: str,
          escape: Callable[[str], str] | None) -> str:
    out: list[str] = []
    for part in parts:
        if isinstance(part, str):
            out.append(part)
            continue
        value = part.get(record)
        if value is MISSING or value is None or value == "":
            if part.optional:
                continue
            have = ", ".join(sorted(k for k, v in record.items()
                                    if v not in (None, "") and not k.startswith("_")))
            raise TemplateError(f"{file}:{part.line}: {{{part.path}}} has no value in this "
                                f"record (it has: {have or 'nothing'}); map a value to "
                                f"{part.path} or write {{{part.path}?}} to allow it empty")
        text = _text(value, part, file)
        out.append(escape(text) if escape else text)
    return "".join(out)


@dataclass(frozen=True)
class Template:
    """A parsed template: optional subject, text body, optional HTML body."""

    name: str
    file: str
    subject: tuple[Part, ...] | None
    text: tuple[Part, ...]
    html_file: str | None = None
    html: tuple[Part, ...] | None = None

    def render(self, record: dict[str, Any]) -> tuple[str | None, str, str | None]:
        """(subject or None, text, html or None) for one record; TemplateError if a required
        placeholder has no value."""
        subject = _fill(self.subject, record, self.file, None) if self.subject else None
        text = _fill(self.text, record, self.file, None)
        body_html = None
        if self.html is not None:
            body_html = _fill(self.html, record, self.html_file or self.file, html.escape)
        return subject, text, body_html


def parse_template(name: str, text: str, file: str, html_text: str | None = None,
                   html_file: str | None = None) -> Template:
    """A Template from the file contents; TemplateError naming file:line for a mistake."""
    text = text.replace("\r\n", "\n").removeprefix("\ufeff")
    subject = None
    first = 1
    head, sep, rest = text.partition("\n")
    found = _SUBJECT.match(head)
    if found:
        if sep and rest.strip(" \t").partition("\n")[0].strip():
            raise TemplateError(f"{file}:2: the Subject line must be followed by an empty "
                                "line, then the body")
        subject = _parse(head[found.end():].strip(), file, 1)
        text = rest.partition("\n")[2] if rest else ""
        first = 3
    body = _parse(text, file, first)
    parsed_html = None
    if html_text is not None:
        parsed_html = _parse(html_text.replace("\r\n", "\n").removeprefix("\ufeff"),
                             html_file or file, 1)
    return Template(name, file, subject, body, html_file, parsed_html)


class TemplateFolder:
    """Finds and parses templates by name; parsed files are kept until they change."""

    def __init__(self, folders: list[Path]) -> None:
        self.folders = folders
        self._cache: dict[str, tuple[tuple[float, float], Template]] = {}

    def find(self, name: str) -> Path | None:
        """The <name>.txt file, from the first folder that has it."""
        for folder in self.folders:
            candidate = folder / f"{name}.txt"
            if candidate.is_file():
                return candidate
        return None

    def get(self, name: Any) -> Template:
        """The template called `name`; TemplateError when the name or the file is wrong."""
        if not isinstance(name, str) or not NAME.fullmatch(name) or ".." in name:
            raise TemplateError(f"template name {name!r} is not a plain file name (letters, "
                                "digits, _ . -; no folders)")
        path = self.find(name)
        if path is None:
            looked = ", ".join(str(f) for f in self.folders) or "(no folders)"
            raise TemplateError(f"template {name!r} not found: no {name}.txt in {looked}")
        html_path = path.with_suffix(".html")
        try:
            stamp = (os.stat(path).st_mtime,
                     os.stat(html_path).st_mtime if html_path.is_file() else 0.0)
            cached = self._cache.get(name)
            if cached is not None and cached[0] == stamp:
                return cached[1]
            text = path.read_text(encoding="utf-8")
            html_text = html_path.read_text(encoding="utf-8") if html_path.is_file() else None
        except (OSError, UnicodeDecodeError) as exc:
            raise TemplateError(f"cannot read template {path}: {exc}") from None
        template = parse_template(name, text, str(path), html_text,
                                  str(html_path) if html_text is not None else None)
        self._cache[name] = (stamp, template)
        return template

    def problems(self) -> list[str]:
        """Every template in the folders that does not parse (for check())."""
        found: list[str] = []
        for folder in self.folders:
            if not folder.is_dir():
                continue
            for path in sorted(folder.glob("*.txt")):
                try:
                    self.get(path.stem)
                except TemplateError as exc:
                    found.append(str(exc))
        return found
