"""What the DAV connectors hand the engine for a resource they cannot read.

The engine dead-letters a native record holding `__error__` (the reason) and `__raw__`
(what could be read): the same convention as the spreadsheet connector's unreadable rows.
The reason always names the resource's href and UID, so an ops person can find it in the
address book or calendar app.
"""

from __future__ import annotations

import re
from typing import Any

ERROR_KEY = "__error__"
RAW_KEY = "__raw__"
RAW_KEEP = 4000  # characters of a broken resource kept in its dead letter
_AT_LINE = re.compile(r"^At line \d+:\s*")
_UID = re.compile(r"^UID(?:;[^:\r\n]*)?:(.*)$", re.MULTILINE | re.IGNORECASE)


def uid_hint(text: str) -> str:
    """The UID written in a text, found without parsing it ("?" when there is none)."""
    found = _UID.search(text)
    return found.group(1).strip() if found and found.group(1).strip() else "?"


def error_record(kind: str, href: str, etag: str | None, text: str,
                 problem: str) -> dict[str, Any]:
    """The record the engine dead-letters; `kind` is "vCard" or "VTODO"."""
    message = f"{kind} {href} (UID {uid_hint(text)}): {problem}"
    return {ERROR_KEY: message, RAW_KEY: {"href": href, "etag": etag, "text": text[:RAW_KEEP]}}


def reason(exc: BaseException) -> str:
    """An exception's message on one line (its type when it has none), without the parser's
    own line count ("At line 9:"), which counts differently from an editor."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return _AT_LINE.sub("", text)
