"""IMAP wire formats the connector needs beyond what imaplib parses: pure, no I/O.

- `parse_fetch(data)`: imaplib's FETCH answer (bytes lines and (prefix, literal) tuples)
  -> {uid: {item name: value}}, values as parsed lists, bytes strings, atoms and None (NIL);
  `parse_values` does the same for other answers (LIST lines).
- `UidSet`: a set of UIDs kept as ranges, written as an IMAP sequence set ("1:5,7,9:12").
- `mailbox_arg(name)`: a folder name as a quoted IMAP argument in modified UTF-7.
"""

from __future__ import annotations

import base64
import bisect
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any


class WireError(ValueError):
    """The server's answer does not follow the IMAP grammar where we read it."""


@dataclass(frozen=True, slots=True)
class Atom:
    """An IMAP atom (FLAGS entries, item names, numbers), as text."""

    text: str


Value = Any  # Atom | bytes | None | list[Value]

# -- FETCH answers ------------------------------------------------------------------------

_LITERAL_END = re.compile(rb"\{(\d+)\+?\}\s*$")
_SPECIAL = b"()\" \r\n"


class _Tokens:
    """Tokens of a FETCH answer; a literal is one token holding its bytes."""

    def __init__(self, data: Sequence[Any]) -> None:
        self.items: list[Any] = []  # "(", ")", Atom, bytes (string or literal), None
        for piece in data:
            if isinstance(piece, tuple):
                prefix, literal = piece[0], piece[1]
                found = _LITERAL_END.search(prefix)
                if found is None:
                    raise WireError(f"a literal without its {{size}} marker after {prefix[-60:]!r}")
                self._scan(prefix[:found.start()])
                self.items.append(bytes(literal))
            elif isinstance(piece, (bytes, bytearray)):
                self._scan(bytes(piece))
            elif piece is not None:
                raise WireError(f"unexpected piece {piece!r} in a FETCH answer")
        self.pos = 0

    def _scan(self, text: bytes) -> None:
        i, n = 0, len(text)
        while i < n:
            c = text[i:i + 1]
            if c in (b" ", b"\r", b"\n", b"\t"):
                i += 1
            elif c in (b"(", b")"):
                self.items.append(c.decode())
                i += 1
            elif c == b'"':
                i = self._quoted(text, i + 1)
            else:
                i = self._atom(text, i)

    def _quoted(self, text: bytes, i: int) -> int:
        out = bytearray()
        while i < len(text):
            c = text[i]
            if c == 0x5C and i + 1 < len(text):  # backslash escapes " and \
                out.append(text[i + 1])
                i += 2
            elif c == 0x22:
                self.items.append(bytes(out))
                return i + 1
            else:
                out.append(c)
                i += 1
        raise WireError(f"an unterminated quoted string: {bytes(out[:60])!r}")

    def _atom(self, text: bytes, i: int) -> int:
        start, depth = i, 0
        while i < len(text):
            c = text[i:i + 1]
            if c == b"[":
                depth += 1
            elif c == b"]":
                depth = max(0, depth - 1)
            elif depth == 0 and c in (b"(", b")", b" ", b"\r", b"\n", b'"'):
                break
            i += 1
        word = text[start:i].decode("latin-1")
        self.items.append(None if word.upper() == "NIL" else Atom(word))
        return i

    def next(self) -> Any:
        if self.pos >= len(self.items):
            raise WireError("the answer ended in the middle of a FETCH item")
        item = self.items[self.pos]
        self.pos += 1
        return item

    def done(self) -> bool:
        return self.pos >= len(self.items)

    def value(self) -> Value:
        """One value: a parenthesised list, an atom, a string or NIL."""
        item = self.next()
        if item == "(":
            out: list[Value] = []
            while True:
                if self.pos < len(self.items) and self.items[self.pos] == ")":
                    self.pos += 1
                    return out
                out.append(self.value())
        if item == ")":
            raise WireError("a ')' where a value was expected")
        return item


def parse_fetch(data: Sequence[Any]) -> dict[int, dict[str, Value]]:
    """{uid: {ITEM NAME (upper case): value}} from imaplib's list of FETCH answers.

    Answers for the same message are merged (a server may send unsolicited FLAGS updates
    in between); answers without a UID are ignored, since nothing here addresses
    messages by sequence number.
    """
    tokens = _Tokens(data)
    out: dict[int, dict[str, Value]] = {}
    while not tokens.done():
        seq = tokens.next()
        if not isinstance(seq, Atom) or not seq.text.isdigit():
            raise WireError(f"a FETCH answer starts with {seq!r}, not a message number")
        items = tokens.value()
        if not isinstance(items, list) or len(items) % 2:
            raise WireError(f"message {seq.text}: the FETCH items are not name/value pairs")
        found: dict[str, Value] = {}
        for name, value in zip(items[0::2], items[1::2], strict=True):
            if not isinstance(name, Atom):
                raise WireError(f"message {seq.text}: {name!r} is not a FETCH item name")
            found[name.text.upper()] = value
        uid = found.get("UID")
        if isinstance(uid, Atom) and uid.text.isdigit():
            out.setdefault(int(uid.text), {}).update(found)
    return out


def parse_values(data: Sequence[Any]) -> list[Value]:
    """Every value of an untagged answer that is not a FETCH (a LIST line, say)."""
    tokens = _Tokens(data)
    values: list[Value] = []
    while not tokens.done():
        values.append(tokens.value())
    return values


def text(value: Value, default: str = "") -> str:
    """An atom or string value as text (bytes decoded as UTF-8 with replacement)."""
    if isinstance(value, Atom):
        return value.text
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", errors="replace")
    return default


def number(value: Value) -> int | None:
    """A number value, or None when it is not one."""
    raw = text(value)
    return int(raw) if raw.isdigit() else None


# -- UID sets -------------------------------------------------------------------------------

class UidSet:
    """A set of UIDs stored as sorted, disjoint, non-adjacent [low, high] ranges."""

    __slots__ = ("_highs", "_lows")

    def __init__(self, uids: Iterable[int] = ()) -> None:
        self._lows: list[int] = []
        self._highs: list[int] = []
        for uid in sorted(set(uids)):
            self.add(uid)

    @classmethod
    def parse(cls, spec: str) -> UidSet:
        """From an IMAP sequence set of numbers ("1:5,7"); "" is empty. ValueError if bad."""
        out = cls()
        for part in filter(None, (p.strip() for p in spec.split(","))):
            low, _, high = part.partition(":")
            a, b = int(low), int(high) if high else int(low)
            if a < 1 or b < 1:
                raise ValueError(f"UID {min(a, b)} is not positive")
            out.add_range(min(a, b), max(a, b))
        return out

    def add_range(self, low: int, high: int) -> None:
        """Add every UID from low to high."""
        i = bisect.bisect_left(self._highs, low - 1)
        j = bisect.bisect_right(self._lows, high + 1)
        if i < j:
            low = min(low, self._lows[i])
            high = max(high, self._highs[j - 1])
        self._lows[i:j] = [low]
        self._highs[i:j] = [high]

    def add(self, uid: int) -> None:
        """Add one UID."""
        if self._highs and uid == self._highs[-1] + 1:
            self._highs[-1] = uid  # the common case: UIDs arrive in ascending order
            return
        self.add_range(uid, uid)

    def discard(self, uid: int) -> None:
        """Remove one UID if present."""
        i = bisect.bisect_right(self._lows, uid) - 1
        if i < 0 or uid > self._highs[i]:
            return
        low, high = self._lows[i], self._highs[i]
        pieces = [(a, b) for a, b in ((low, uid - 1), (uid + 1, high)) if a <= b]
        self._lows[i:i + 1] = [a for a, _ in pieces]
        self._highs[i:i + 1] = [b for _, b in pieces]

    def __contains__(self, uid: object) -> bool:
        if not isinstance(uid, int):
            return False
        i = bisect.bisect_right(self._lows, uid) - 1
        return i >= 0 and uid <= self._highs[i]

    def __iter__(self) -> Iterator[int]:
        for low, high in zip(self._lows, self._highs, strict=True):
            yield from range(low, high + 1)

    def __len__(self) -> int:
        return sum(high - low + 1 for low, high in zip(self._lows, self._highs, strict=True))

    def __bool__(self) -> bool:
        return bool(self._lows)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, UidSet) and str(self) == str(other)

    def __hash__(self) -> int:
        return hash(str(self))

    def __str__(self) -> str:
        return ",".join(str(low) if low == high else f"{low}:{high}"
                        for low, high in zip(self._lows, self._highs, strict=True))

    def __repr__(self) -> str:
        return f"UidSet({str(self)!r})"

    def max(self) -> int:
        """The highest UID (0 when empty)."""
        return self._highs[-1] if self._highs else 0


def sequence_set(uids: Iterable[int]) -> str:
    """UIDs as a compact IMAP sequence set."""
    return str(UidSet(uids))


# -- mailbox names ------------------------------------------------------------------------

def _utf7(chunk: str) -> str:
    raw = base64.b64encode(chunk.encode("utf-16-be")).decode("ascii").rstrip("=")
    return "&" + raw.replace("/", ",") + "-"


def encode_mailbox(name: str) -> str:
    """A folder name in IMAP's modified UTF-7 (RFC 3501 5.1.3): "Entwürfe" -> "Entw&APw-rfe"."""
    out: list[str] = []
    pending: list[str] = []
    for ch in name:
        if 0x20 <= ord(ch) <= 0x7E:
            if pending:
                out.append(_utf7("".join(pending)))
                pending = []
            out.append("&-" if ch == "&" else ch)
        else:
            pending.append(ch)
    if pending:
        out.append(_utf7("".join(pending)))
    return "".join(out)


def decode_mailbox(name: str) -> str:
    """The inverse of encode_mailbox (text that is not valid modified UTF-7 is kept)."""
    def one(found: re.Match[str]) -> str:
        body = found.group(1)
        if not body:
            return "&"
        raw = body.replace(",", "/")
        try:
            return base64.b64decode(raw + "=" * (-len(raw) % 4)).decode("utf-16-be")
        except (ValueError, UnicodeDecodeError):
            return found.group(0)
    return re.sub(r"&([A-Za-z0-9+,]*)-", one, name)


def quote(value: str) -> str:
    """A quoted IMAP string."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def mailbox_arg(name: str) -> str:
    """A folder name ready to send: modified UTF-7, quoted."""
    return quote(encode_mailbox(name))
