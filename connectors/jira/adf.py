"""Atlassian Document Format (ADF) <-> plain text, for Jira v3 rich-text fields.

Jira REST v3 takes and returns rich text (an issue's `description`) only as an ADF document:

    {"type": "doc", "version": 1, "content": [
        {"type": "paragraph", "content": [{"type": "text", "text": "Line one"},
                                          {"type": "hardBreak"},
                                          {"type": "text", "text": "line two", "marks": [...]}]},
        {"type": "bulletList", "content": [{"type": "listItem", "content": [paragraph]}]}]}

The canonical model holds plain text, so the connector converts in both directions:

    text -> ADF    paragraphs are separated by a blank line ("\\n\\n"); a single "\\n" inside
                   a paragraph is a hardBreak. Nothing else is inferred from the text.
    ADF -> text    the same rule backwards for paragraphs and headings; lists become
                   "- item" / "1. item" lines, a blockquote "> " lines, code blocks their text,
                   a rule "---", a table its rows with cells joined by " | "; mentions, emoji,
                   dates, status lozenges and inline cards become their visible text; marks
                   (bold, links, colours) are dropped. Media has no text and is left out.

Law: adf_to_text(text_to_adf(t)) == t for every non-empty text t (tested with hypothesis).
The other direction loses formatting by design, which is why the connector keeps Jira's own
document when the text it is asked to write equals the text that document already shows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

ADF_VERSION = 1


def text_to_adf(text: str | None) -> dict[str, Any] | None:
    """A minimal ADF document showing `text` (None for no text: Jira clears the field)."""
    if text is None or text == "":
        return None
    content = []
    for paragraph in text.split("\n\n"):
        inline: list[dict[str, Any]] = []
        for i, line in enumerate(paragraph.split("\n")):
            if i:
                inline.append({"type": "hardBreak"})
            if line:  # ADF forbids empty text nodes
                inline.append({"type": "text", "text": line})
        content.append({"type": "paragraph", "content": inline})
    return {"type": "doc", "version": ADF_VERSION, "content": content}


def adf_to_text(doc: Any) -> str | None:
    """The plain text an ADF document shows (None for no document).

    A plain string is returned as it is: v2 answers and some proxies hand text, not ADF.
    """
    if doc is None:
        return None
    if isinstance(doc, str):
        return doc
    if not isinstance(doc, Mapping):
        return None
    return "\n\n".join(_blocks(doc.get("content")))


def is_adf_doc(value: Any) -> bool:
    """Whether `value` has the outer shape of an ADF document (type doc, version, content)."""
    return (isinstance(value, Mapping) and value.get("type") == "doc"
            and value.get("version") == ADF_VERSION and isinstance(value.get("content"), list))


# -- blocks -----------------------------------------------------------------------------------


def _blocks(content: Any) -> list[str]:
    """The text of each block node in a content list (blocks without text are left out)."""
    out = []
    for node in content if isinstance(content, list) else ():
        if isinstance(node, Mapping):
            text = _block(node)
            if text is not None:
                out.append(text)
    return out


def _block(node: Mapping[str, Any]) -> str | None:
    kind = node.get("type")
    handler = _BLOCKS.get(kind) if isinstance(kind, str) else None
    if handler is not None:
        return handler(node)
    if kind in _INLINE or kind == "text":
        return _inline([node])  # an inline node where a block was expected: keep its text
    if isinstance(node.get("content"), list):  # panel, expand, layout...: their inner blocks
        return "\n\n".join(_blocks(node["content"]))
    return None  # media and other nodes without text


def _paragraph(node: Mapping[str, Any]) -> str:
    return _inline(node.get("content"))


def _list(node: Mapping[str, Any], ordered: bool) -> str:
    attrs = node.get("attrs")
    start = attrs.get("order", 1) if isinstance(attrs, Mapping) else 1
    number = start if isinstance(start, int) and not isinstance(start, bool) else 1
    lines = []
    for item in node.get("content") or ():
        if not isinstance(item, Mapping):
            continue
        bullet = f"{number}. " if ordered else "- "
        number += 1
        inner = "\n".join(_blocks(item.get("content"))).split("\n")
        lines.append(bullet + inner[0])
        pad = " " * len(bullet)
        lines.extend(pad + line if line else line for line in inner[1:])
    return "\n".join(lines)


def _quote(node: Mapping[str, Any]) -> str:
    text = "\n\n".join(_blocks(node.get("content")))
    return "\n".join("> " + line if line else ">" for line in text.split("\n"))


def _table(node: Mapping[str, Any]) -> str:
    rows = []
    for row in node.get("content") or ():
        if isinstance(row, Mapping):
            cells = [" ".join("\n".join(_blocks(cell.get("content"))).split("\n"))
                     for cell in row.get("content") or () if isinstance(cell, Mapping)]
            rows.append(" | ".join(cells))
    return "\n".join(rows)


_BLOCKS: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "paragraph": _paragraph,
    "heading": _paragraph,
    "codeBlock": _paragraph,
    "bulletList": lambda n: _list(n, ordered=False),
    "orderedList": lambda n: _list(n, ordered=True),
    "taskList": lambda n: _list(n, ordered=False),
    "decisionList": lambda n: _list(n, ordered=False),
    "blockquote": _quote,
    "rule": lambda n: "---",
    "table": _table,
}


# -- inline nodes -----------------------------------------------------------------------------


def _inline(content: Any) -> str:
    parts: list[str] = []
    for node in content if isinstance(content, list) else ():
        if not isinstance(node, Mapping):
            continue
        kind = node.get("type")
        if kind == "text":
            text = node.get("text")
            parts.append(text if isinstance(text, str) else "")
        elif kind == "hardBreak":
            parts.append("\n")
        elif isinstance(kind, str) and kind in _INLINE:
            parts.append(_INLINE[kind](_attrs(node)))
        elif isinstance(node.get("content"), list):
            parts.append(_inline(node["content"]))
    return "".join(parts)


def _attrs(node: Mapping[str, Any]) -> Mapping[str, Any]:
    attrs = node.get("attrs")
    return attrs if isinstance(attrs, Mapping) else {}


def _text_attr(*names: str) -> Callable[[Mapping[str, Any]], str]:
    def pick(attrs: Mapping[str, Any]) -> str:
        for name in names:
            value = attrs.get(name)
            if isinstance(value, str) and value:
                return value
        return ""
    return pick


def _date(attrs: Mapping[str, Any]) -> str:
    try:
        ms = int(str(attrs.get("timestamp")))
        return datetime.fromtimestamp(ms / 1000, UTC).date().isoformat()
    except (TypeError, ValueError, OverflowError, OSError):
        return ""


_INLINE: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "mention": _text_attr("text", "id"),
    "emoji": _text_attr("text", "shortName"),
    "inlineCard": _text_attr("url"),
    "status": _text_attr("text"),
    "date": _date,
}
