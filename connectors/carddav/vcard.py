"""vCard text <-> the connector's native contact record.

Reading (vobject parses; vCard 3.0 and 4.0): the native record is

    {"href", "etag", "uid", "version", "fn", "n": {family, given, additional, prefix, suffix},
     "emails": [{"value", "type"}], "tels": [{"value", "type"}],
     "adrs": [{"box", "extended", "street", "locality", "region", "postal_code", "country",
               "type"}],
     "org", "title", "note", "categories": [...], "rev", "warnings": [...]}

`type` is the first TYPE that says something (INTERNET, PREF and VOICE are dropped), lower
case, or None. `org` is the organisation name (ORG's first component). `rev` is REV as RFC
3339 UTC, None when absent or unreadable.

Bad input gets the best sane reading, noted in "warnings" (and logged): a repeated FN, N,
TITLE, ORG or NOTE -> the first one is used; no N -> the name is split from FN (given names,
then the family name last), unless the card is an organisation or group; no FN -> composed
from N. Text that is not a vCard at all (a line without a colon, no BEGIN:VCARD) becomes an
`__error__` record naming the href and UID, which the engine dead-letters.

Writing: a new card is vCard 3.0 (what every client reads). An update rewrites only the
properties whose keys are in the record, and only when their value changes; every other
line (PHOTO, X- properties, parameters) is kept as it was, and the card keeps its VERSION:
the forms written (TYPE=work, plain text values) are valid in 3.0 and 4.0 alike.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import vobject

from connectors.dav import content, records
from connectors.dav.records import ERROR_KEY
from hub.errors import PermanentError

PRODID = "-//Liaison//Liaison hub//EN"

# native key -> the vCard properties it owns on write
OWNED: Mapping[str, tuple[str, ...]] = {
    "fn": ("FN",), "n": ("N",), "emails": ("EMAIL",), "tels": ("TEL",), "adrs": ("ADR",),
    "org": ("ORG",), "title": ("TITLE",), "note": ("NOTE",), "categories": ("CATEGORIES",),
}
N_PARTS = ("family", "given", "additional", "prefix", "suffix")
ADR_PARTS = ("box", "extended", "street", "locality", "region", "postal_code", "country")
_VOBJECT_ADR = {"locality": "city", "postal_code": "code"}
_QUIET_TYPES = {
    "EMAIL": {"internet", "pref", "x400"},
    "TEL": {"voice", "pref"},
    "ADR": {"pref", "postal", "parcel", "dom", "intl"},
}
_SINGLE = ("FN", "N", "TITLE", "ORG", "NOTE")
_REV_FORMATS = ("%Y%m%dT%H%M%SZ", "%Y-%m-%dT%H:%M:%SZ", "%Y%m%dT%H%M%S", "%Y-%m-%dT%H:%M:%S",
                "%Y%m%d", "%Y-%m-%d")


def error_record(href: str, etag: str | None, text: str, problem: str) -> dict[str, Any]:
    """The record the engine dead-letters for an unreadable card."""
    return records.error_record("vCard", href, etag, text, problem)


# -- reading --------------------------------------------------------------------------------


def parse(text: str, href: str, etag: str | None) -> dict[str, Any]:
    """A vCard resource -> its native record (or an `__error__` record naming why not)."""
    try:
        cards = [c for c in vobject.readComponents(text) if c.name == "VCARD"]
    except Exception as exc:  # noqa: BLE001 - vobject raises many types for broken text
        return error_record(href, etag, text, f"is not a readable vCard: {records.reason(exc)}")
    if not cards:
        return error_record(href, etag, text, "holds no vCard (BEGIN:VCARD ... END:VCARD)")
    warnings: list[str] = []
    if len(cards) > 1:
        warnings.append(f"{len(cards)} vCards in one resource: the first is used")
    try:
        record = _native(cards[0], href, etag, warnings)
    except Exception as exc:  # noqa: BLE001 - vobject decodes some values lazily
        return error_record(href, etag, text, f"has a value that cannot be read: {records.reason(exc)}")
    return record


def _lines(card: Any, name: str) -> list[Any]:
    return list(card.contents.get(name.lower(), []))


def _text(value: Any) -> str | None:
    if isinstance(value, list):
        value = " ".join(str(v) for v in value if str(v).strip())
    text = str(value).strip() if value is not None else ""
    return text or None


def _native(card: Any, href: str, etag: str | None, warnings: list[str]) -> dict[str, Any]:
    for name in _SINGLE:
        found = _lines(card, name)
        if len(found) > 1:
            warnings.append(f"{name} appears {len(found)} times: the first is used")
    fns = [t for t in (_text(line.value) for line in _lines(card, "FN")) if t]
    names = _lines(card, "N")
    n = _name(names[0].value) if names else None
    kind = (_text(_first(card, "KIND")) or _text(_first(card, "X-ADDRESSBOOKSERVER-KIND"))
            or "").lower()
    if n is None and fns and kind not in ("org", "group"):
        n = split_name(fns[0])
        warnings.append("no N: the name was split from FN")
    fn = fns[0] if fns else (compose(n) if n else None)
    if not fns:
        warnings.append("no FN" + (": composed from N" if fn else " and no N: no name"))
    org = _first(card, "ORG")
    return {
        "href": href,
        "etag": etag,
        "uid": _text(_first(card, "UID")),
        "version": _text(_first(card, "VERSION")),
        "fn": fn,
        "n": n,
        "emails": [{"value": v, "type": _type(line, "EMAIL")}
                   for line in _lines(card, "EMAIL") if (v := _text(line.value))],
        "tels": [{"value": _tel(v), "type": _type(line, "TEL")}
                 for line in _lines(card, "TEL") if (v := _text(line.value))],
        "adrs": [a for line in _lines(card, "ADR") if (a := _address(line))],
        "org": _text(org[0] if isinstance(org, list) and org else org),
        "title": _text(_first(card, "TITLE")),
        "note": _text(_first(card, "NOTE")),
        "categories": _categories(_lines(card, "CATEGORIES")),
        "rev": _rev(_text(_first(card, "REV")), warnings),
        "warnings": warnings,
    }


def _first(card: Any, name: str) -> Any:
    found = _lines(card, name)
    return found[0].value if found else None


def _name(value: Any) -> dict[str, str | None]:
    if isinstance(value, str):  # vobject leaves N as text when it cannot split it
        parts = value.split(";")
        return {k: _text(parts[i]) if i < len(parts) else None for i, k in enumerate(N_PARTS)}
    return {k: _text(getattr(value, k, None)) for k in N_PARTS}


def split_name(full: str) -> dict[str, str | None]:
    """Best reading of a full name as N: the last word is the family name."""
    words = full.split()
    family = words[-1] if len(words) > 1 else None
    given = " ".join(words[:-1]) if len(words) > 1 else (full.strip() or None)
    return {"family": family, "given": given, "additional": None, "prefix": None,
            "suffix": None}


def compose(n: Mapping[str, Any] | None) -> str:
    """The display name N stands for: prefix given additional family suffix."""
    if not n:
        return ""
    words = (n.get(k) for k in ("prefix", "given", "additional", "family", "suffix"))
    return " ".join(str(w).strip() for w in words if w and str(w).strip())


def _type(line: Any, prop: str) -> str | None:
    quiet = _QUIET_TYPES.get(prop, set())
    for raw in line.params.get("TYPE", []):
        for one in str(raw).split(","):
            kind = one.strip().strip('"').lower()
            if kind and kind not in quiet:
                return kind
    return None


def _tel(value: str) -> str:
    return value[4:].strip() if value.lower().startswith("tel:") else value


def _address(line: Any) -> dict[str, Any] | None:
    value = line.value
    if isinstance(value, str):
        parts = value.split(";")
        fields = {k: _text(parts[i]) if i < len(parts) else None
                  for i, k in enumerate(ADR_PARTS)}
    else:
        fields = {k: _text(getattr(value, _VOBJECT_ADR.get(k, k), None)) for k in ADR_PARTS}
    if not any(fields.values()):
        return None
    return {**fields, "type": _type(line, "ADR")}


def _categories(lines: Iterable[Any]) -> list[str]:
    out: list[str] = []
    for line in lines:
        values = line.value if isinstance(line.value, list) else str(line.value).split(",")
        out.extend(t for v in values if (t := _text(v)))
    return out


def _rev(value: str | None, warnings: list[str]) -> str | None:
    if value is None:
        return None
    for fmt in _REV_FORMATS:
        try:
            when = datetime.strptime(value, fmt)
        except ValueError:
            continue
        return when.replace(tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    warnings.append(f"REV {value!r} is not a timestamp: ignored")
    return None


# -- writing --------------------------------------------------------------------------------


def _esc(value: Any) -> str:
    return content.escape(str(value).strip()) if value is not None else ""


def _typed(prop: str, kind: Any, value: str) -> str:
    kind_text = str(kind).strip() if kind is not None else ""
    if kind_text and re.fullmatch(r"[A-Za-z0-9-]+", kind_text):
        return f"{prop};TYPE={kind_text}:{value}"
    return f"{prop}:{value}"


def lines_for(key: str, value: Any) -> list[str]:
    """The content lines for one native key's value (no lines: the property is removed)."""
    if value is None or value == "" or value == []:
        return []
    if key in ("fn", "title", "note"):
        return [f"{OWNED[key][0]}:{_esc(value)}"]
    if key == "org":
        return [f"ORG:{_esc(value)}"]
    if key == "n":
        n = _mapping(key, value)
        return ["N:" + ";".join(_esc(n.get(k)) for k in N_PARTS)]
    if key in ("emails", "tels"):
        prop = "EMAIL" if key == "emails" else "TEL"
        out = []
        for item in _items(key, value):
            text = item.get("value")
            if text not in (None, ""):
                out.append(_typed(prop, item.get("type"), _esc(text)))
        return out
    if key == "adrs":
        out = []
        for item in _items(key, value):
            if any(item.get(k) for k in ADR_PARTS):
                out.append(_typed("ADR", item.get("type"),
                                  ";".join(_esc(item.get(k)) for k in ADR_PARTS)))
        return out
    if key == "categories":
        values = value if isinstance(value, list) else str(value).split(",")
        texts = [_esc(v) for v in values if v is not None and str(v).strip()]
        return [f"CATEGORIES:{','.join(texts)}"] if texts else []
    raise PermanentError(f"vCard: {key!r} is not a field the CardDAV connector writes")


def _mapping(key: str, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise PermanentError(f"vCard field {key}: expected an object like "
                             f"{{given: ..., family: ...}}, got {value!r}")
    return value


def _items(key: str, value: Any) -> list[Mapping[str, Any]]:
    items = value if isinstance(value, list) else [value]
    out = []
    for item in items:
        if isinstance(item, str):
            item = {"value": item}
        if not isinstance(item, Mapping):
            raise PermanentError(f"vCard field {key}: expected a list of objects like "
                                 f"{{value: ..., type: work}}, got {item!r}")
        out.append(item)
    return out


def _now() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def writable(record: Mapping[str, Any]) -> dict[str, Any]:
    """The record's keys the connector writes (others, like href or rev, are read-only)."""
    return {k: v for k, v in record.items() if k in OWNED}


def create(record: Mapping[str, Any], uid: str) -> str:
    """A new vCard 3.0 for the record."""
    fields = writable(record)
    n = dict(fields.get("n") or {}) if isinstance(fields.get("n"), Mapping) else {}
    fn = fields.get("fn") or compose(n) or _first_value(fields.get("emails")) or ""
    lines = ["BEGIN:VCARD", "VERSION:3.0", f"PRODID:{PRODID}", f"UID:{uid}",
             f"FN:{_esc(fn)}", "N:" + ";".join(_esc(n.get(k)) for k in N_PARTS)]
    for key, value in fields.items():
        if key not in ("fn", "n"):
            lines.extend(lines_for(key, value))
    lines += [f"REV:{_now()}", "END:VCARD"]
    return content.render(lines)


def _first_value(items: Any) -> str | None:
    if isinstance(items, list) and items and isinstance(items[0], Mapping):
        value = items[0].get("value")
        return str(value) if value else None
    return None


def _reread(key: str, lines: Sequence[str]) -> Any:
    """How the connector reads a key back from lines it would write (for "unchanged?")."""
    head = ["BEGIN:VCARD", "VERSION:3.0", "FN:x"] if key != "fn" else ["BEGIN:VCARD",
                                                                      "VERSION:3.0"]
    if key != "n":
        head.append("N:;;;;")
    text = content.render([*head, *lines, "END:VCARD"])
    cards = list(vobject.readComponents(text))
    return _native(cards[0], "", None, [])[key]


def merge(text: str, record: Mapping[str, Any], href: str) -> str | None:
    """The card's text with the record's fields written in; None when nothing changes."""
    old = parse(text, href, None)
    if ERROR_KEY in old:
        raise PermanentError(f"cannot update {href}: the card on the server cannot be read "
                             f"({old[ERROR_KEY]}); fix or delete it there")
    fields = writable(record)
    if isinstance(fields.get("n"), Mapping):
        merged_n: dict[str, Any] = dict.fromkeys(N_PARTS)
        merged_n.update(old["n"] or {})
        merged_n.update({k: _text(v) for k, v in fields["n"].items() if k in N_PARTS})
        fields["n"] = merged_n
        # FN follows N when it was N's composition (or missing), not when someone wrote
        # their own display name ("Dr. Ana Doe (ACME)").
        if "fn" not in fields and (not old["fn"] or old["fn"] == compose(old["n"])):
            fields["fn"] = compose(merged_n) or old["fn"]
    lines = content.unfold(text)
    where = content.span(lines, "VCARD")
    if where is None:
        raise PermanentError(f"cannot update {href}: no BEGIN:VCARD ... END:VCARD in it")
    changed = False
    for key, value in fields.items():
        new = lines_for(key, value)
        try:
            same = _reread(key, new) == old[key]
        except Exception:  # noqa: BLE001 - unreadable new text: the PUT's check will say so
            same = False
        if same:
            continue
        if key == "fn" and not new:
            new = [f"FN:{_esc(compose(fields.get('n') or old['n']))}"]  # FN is required
        lines = content.replace(lines, *where, OWNED[key], new)
        where = content.span(lines, "VCARD") or where
        changed = True
    if not changed:
        return None
    lines = content.replace(lines, *where, ("REV",), [f"REV:{_now()}"])
    return content.render(lines)
