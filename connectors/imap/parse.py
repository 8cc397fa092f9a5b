"""One message as the server describes it -> the connector's native record: pure, no I/O.

The inputs are what the client fetched (see client.py): the BODYSTRUCTURE, a capped block
of header fields, FLAGS, INTERNALDATE, RFC822.SIZE and the first bytes of one text part.
Nothing here raises on bad mail: unknown charsets decode with replacement characters, a
missing or unreadable Date falls back to the server's arrival time, an address that is not
an address keeps its text as the name, and each such fix is written to the record's
`notes` so an ops person can see why a field looks the way it does.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import email.header
import email.utils
import html
import itertools
import re
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from email.parser import HeaderParser
from email.policy import compat32
from html.parser import HTMLParser
from typing import Any

from connectors.imap.wire import Atom, Value, number, text

SNIPPET_CHARS = 200
HEADER_FIELDS = ("DATE", "FROM", "TO", "CC", "SUBJECT", "MESSAGE-ID", "IN-REPLY-TO",
                 "REFERENCES")
# The same pattern the canonical schema checks addresses with (hub/canonical/schemas).
_ADDRESS = re.compile(r"^[^@ \t\r\n<>]+@[^@ \t\r\n<>]+\.[^@ \t\r\n<>.]+$")
_MSGID = re.compile(r"<[^<>\s]+>")
_FOLD = re.compile(r"\r?\n(?=[ \t])")
_SPACE = re.compile(r"\s+")
_MONTHS = {m: i for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul",
                                       "aug", "sep", "oct", "nov", "dec"), start=1)}
_INTERNALDATE = re.compile(r"\s*(\d{1,2})-([A-Za-z]{3})-(\d{4}) (\d\d):(\d\d):(\d\d) "
                           r"([+-])(\d\d)(\d\d)\s*$")
_PARAM_NAME = re.compile(r"^(?P<name>[^*]+)(?:\*(?P<index>\d+))?(?P<encoded>\*)?$")


def record_id(folder: str, uidvalidity: int, uid: int) -> str:
    """The native id of a message: "<folder>:<uidvalidity>:<uid>" (stable while the
    folder's UIDVALIDITY is; the folder name may itself hold colons)."""
    return f"{folder}:{uidvalidity}:{uid}"


def split_id(external_id: str) -> tuple[str, int, int] | None:
    """(folder, uidvalidity, uid) of a native id, or None when it is not one."""
    folder, sep, rest = external_id.rpartition(":")
    folder, sep2, validity = folder.rpartition(":")
    if not sep or not sep2 or not folder or not rest.isdigit() or not validity.isdigit():
        return None
    return folder, int(validity), int(rest)


def iso(moment: datetime) -> str:
    """An aware datetime as RFC 3339 UTC with a 4-digit year ("2024-05-01T10:00:00Z")."""
    u = moment.astimezone(UTC)
    return (f"{u.year:04d}-{u.month:02d}-{u.day:02d}T{u.hour:02d}:{u.minute:02d}:"
            f"{u.second:02d}Z")


# -- text decoding ------------------------------------------------------------------------

def _charset_ok(charset: str | None) -> bool:
    if not charset:
        return False
    try:
        codecs.lookup(charset)
    except LookupError:
        return False
    return True


def decode_bytes(raw: bytes, charset: str | None, notes: list[str] | None = None) -> str:
    """Bytes in a declared charset as text; unknown charsets read as UTF-8, never raising."""
    name = (charset or "").strip().strip('"').lower() or None
    if name in (None, "us-ascii", "ascii", "unknown-8bit", "x-unknown", "8bit"):
        name = "utf-8"  # mislabelled 8-bit text is far more often UTF-8 than anything else
    if not _charset_ok(name):
        if notes is not None:
            note = f"charset {charset!r} is unknown: read as UTF-8 with replacement characters"
            if note not in notes:
                notes.append(note)
        name = "utf-8"
    try:
        return raw.decode(str(name), errors="replace")
    except (LookupError, UnicodeError, ValueError):  # codecs that refuse `errors=`
        return raw.decode("utf-8", errors="replace")


def decode_words(value: str, notes: list[str] | None = None) -> str:
    """RFC 2047 encoded words ("=?utf-8?q?Gr=C3=BC=C3=9Fe?=") decoded; anything else kept."""
    if "=?" not in value:
        return value
    try:
        pieces = email.header.decode_header(value)
    except (ValueError, binascii.Error, UnicodeError):
        return value
    out = []
    for chunk, charset in pieces:
        out.append(decode_bytes(chunk, charset, notes) if isinstance(chunk, bytes) else chunk)
    return "".join(out)


# -- headers ------------------------------------------------------------------------------

def header_block(raw: bytes) -> dict[str, list[str]]:
    """{lower-case name: [unfolded raw values]} of a header block (8-bit bytes as UTF-8,
    else Windows-1252)."""
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError:
        decoded = raw.decode("cp1252", errors="replace")
    message = HeaderParser(policy=compat32).parsestr(decoded, headersonly=True)
    out: dict[str, list[str]] = {}
    for name, value in message.items():
        if isinstance(value, email.header.Header):
            value = str(value)
        out.setdefault(name.lower(), []).append(_FOLD.sub("", str(value)).strip())
    return out


def _first(headers: dict[str, list[str]], name: str) -> str | None:
    values = headers.get(name)
    return values[0] if values else None


def mailboxes(values: Sequence[str], notes: list[str]) -> list[dict[str, Any]]:
    """[{"address", "name"}] of address headers; a non-address keeps its text as the name."""
    out: list[dict[str, Any]] = []
    for name, address in email.utils.getaddresses(list(values)):
        name, address = decode_words(name, notes).strip(), address.strip()
        if not name and not address:
            continue
        if _ADDRESS.match(address):
            out.append({"address": address, "name": name or None})
        else:
            out.append({"address": None, "name": name or address})
            notes.append(f"{address or name!r} is not an email address: kept as a name")
    return out


def message_ids(value: str | None) -> list[str]:
    """The <...> ids in a Message-ID, In-Reply-To or References header, in order."""
    return _MSGID.findall(value) if value else []


def header_date(value: str | None) -> datetime | None:
    """A Date header as an aware datetime, or None when there is none or it is not a date."""
    if not value:
        return None
    try:
        moment = email.utils.parsedate_to_datetime(value)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC)  # a zone offset can push year 1 or 9999 out of range
    except (TypeError, ValueError, IndexError, OverflowError, AttributeError):
        return None


def internal_date(value: str) -> datetime | None:
    """INTERNALDATE ("26-Nov-2024 12:44:39 +0100") as an aware datetime (None if not one)."""
    found = _INTERNALDATE.match(value)
    if not found:
        return None
    day, month, year, hh, mm, ss, sign, oh, om = found.groups()
    if month.lower() not in _MONTHS:
        return None
    try:
        naive = datetime(int(year), _MONTHS[month.lower()], int(day), int(hh), int(mm), int(ss))
        offset = (int(oh) * 60 + int(om)) * (-1 if sign == "-" else 1)
        return naive.replace(tzinfo=timezone(timedelta(minutes=offset))).astimezone(UTC)
    except (ValueError, OverflowError):
        return None


# -- structure ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Part:
    """One leaf of a message's MIME tree, as BODYSTRUCTURE describes it."""

    section: str  # "1", "2.1": the part number BODY[...] fetches
    type: str  # "text/plain", lower case
    params: dict[str, str] = field(default_factory=dict)
    encoding: str = "7bit"
    octets: int | None = None
    disposition: str | None = None  # "attachment", "inline"
    disposition_params: dict[str, str] = field(default_factory=dict)

    @property
    def filename(self) -> str | None:
        """The file name the sender gave (Content-Disposition filename, else type name)."""
        return self.disposition_params.get("filename") or self.params.get("name") or None

    @property
    def is_attachment(self) -> bool:
        """An attached file: marked as attachment, or named, or an embedded message."""
        return (self.disposition == "attachment" or self.filename is not None
                or self.type == "message/rfc822")

    @property
    def size(self) -> int | None:
        """The decoded size in bytes: the sender's stated size, else worked out from the
        encoded size (base64: 3 bytes per 4 characters, a line break per 76)."""
        stated = self.disposition_params.get("size", "")
        if stated.isdigit():
            return int(stated)
        if self.octets is None:
            return None
        if self.encoding == "base64":
            # Lines of 76 characters + CRLF (RFC 2045); the last line may or may not end in
            # CRLF, and base64 text comes in blocks of 4, which settles which. The "="
            # padding is not known without fetching the end, so this may be 2 bytes over.
            lines = -(-self.octets // 78)
            chars = self.octets - 2 * lines
            if chars % 4:
                chars += 2
            return max(0, chars * 3 // 4)
        return self.octets


def _param_pairs(value: Value) -> list[tuple[str, bytes]]:
    if not isinstance(value, list):
        return []
    out = []
    for key, val in zip(value[0::2], value[1::2], strict=False):
        if isinstance(val, Atom):
            val = val.text.encode()
        out.append((text(key).lower(), val if isinstance(val, bytes) else b""))
    return out


def params(value: Value, notes: list[str] | None = None) -> dict[str, str]:
    """A BODYSTRUCTURE parameter list as {name: text}, RFC 2231 continuations and charsets
    ("filename*0*=utf-8''%E2%82%AC...") and RFC 2047 words in names decoded."""
    plain: dict[str, str] = {}
    pieces: dict[str, list[tuple[int, bool, bytes]]] = {}
    for key, raw in _param_pairs(value):
        found = _PARAM_NAME.match(key)
        if found is None or (found["index"] is None and not found["encoded"]):
            plain[key] = decode_words(raw.decode("utf-8", errors="replace"), notes)
            continue
        index = int(found["index"] or 0)
        pieces.setdefault(found["name"], []).append((index, bool(found["encoded"]), raw))
    for name, parts in pieces.items():
        parts.sort(key=lambda p: p[0])
        charset: str | None = None
        data = bytearray()
        for n, (_, encoded, raw) in enumerate(parts):
            if encoded:
                chunk = raw.decode("latin-1")
                if n == 0 and chunk.count("'") >= 2:
                    charset, _lang, chunk = chunk.split("'", 2)
                data += urllib.parse.unquote_to_bytes(chunk)
            else:
                data += raw
        plain[name] = decode_words(decode_bytes(bytes(data), charset, notes), notes)
    return plain


def _disposition(value: Value, notes: list[str]) -> tuple[str | None, dict[str, str]]:
    if isinstance(value, list) and value:
        return text(value[0]).lower() or None, params(value[1] if len(value) > 1 else None,
                                                      notes)
    return None, {}


def parts(structure: Value, notes: list[str], section: str = "") -> list[Part]:
    """The leaf parts of a BODYSTRUCTURE, depth first; an embedded message is one leaf."""
    if not isinstance(structure, list) or not structure:
        raise ValueError(f"part {section or 'of the message'} is not a body structure")
    if isinstance(structure[0], list):  # multipart: children first, then the subtype
        out: list[Part] = []
        children = list(itertools.takewhile(lambda c: isinstance(c, list), structure))
        for index, child in enumerate(children, start=1):
            out.extend(parts(child, notes, f"{section}.{index}" if section else str(index)))
        return out
    if len(structure) < 7:
        raise ValueError(f"part {section or '1'} has {len(structure)} fields, not at least 7")
    media = f"{text(structure[0]).lower()}/{text(structure[1]).lower()}"
    extras = {"text": 9, "message/rfc822": 11}
    at = extras.get(media, extras.get(media.split("/")[0], 8))
    kind, disposition = _disposition(structure[at] if len(structure) > at else None, notes)
    return [Part(section=section or "1", type=media, params=params(structure[2], notes),
                 encoding=text(structure[5], "7bit").lower(), octets=number(structure[6]),
                 disposition=kind, disposition_params=disposition)]


def structure(value: Value) -> tuple[list[Part] | None, Part | None, list[str]]:
    """(leaf parts, the text part for the snippet, notes) of a BODYSTRUCTURE; a structure
    that cannot be read gives (None, None, [why]) instead of raising."""
    notes: list[str] = []
    try:
        leaves = parts(value, notes)
    except (ValueError, TypeError, IndexError) as exc:
        why = f"the MIME structure could not be read ({exc}): no snippet or attachments"
        return None, None, [why]
    return leaves, text_part(leaves), notes


def text_part(leaves: Sequence[Part]) -> Part | None:
    """The part a snippet is cut from: the first plain text, else the first HTML."""
    for wanted in ("text/plain", "text/html"):
        for part in leaves:
            if part.type == wanted and not part.is_attachment:
                return part
    return None


def attachments(leaves: Sequence[Part], body: Part | None) -> list[dict[str, Any]]:
    """Name, size and content type of each attached file (never its content)."""
    return [{"name": p.filename, "size": p.size, "content_type": p.type}
            for p in leaves if p is not body and p.is_attachment]


# -- snippet ------------------------------------------------------------------------------

class _Text(HTMLParser):
    """Visible text of an HTML fragment (script and style dropped)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in ("script", "style", "head", "title"):
            self.hidden += 1
        elif tag in ("br", "p", "div", "li", "tr"):
            self.out.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "head", "title"):
            self.hidden = max(0, self.hidden - 1)

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.out.append(data)


def strip_html(markup: str) -> str:
    """The visible text of HTML, entities decoded (never raises on broken markup)."""
    parser = _Text()
    try:
        parser.feed(markup)
        parser.close()
    except (AssertionError, ValueError):  # html.parser gives up on some garbage
        return html.unescape(re.sub(r"<[^>]*>", " ", markup))
    return "".join(parser.out)


def transfer_decode(raw: bytes, encoding: str) -> bytes:
    """The first bytes of a part, undone from its transfer encoding (the cut may fall
    anywhere: an incomplete base64 quantum or quoted-printable escape at the end is
    dropped)."""
    if encoding == "base64":
        data = re.sub(rb"[^A-Za-z0-9+/=]", b"", raw)
        data = data[:len(data) // 4 * 4]
        try:
            return base64.b64decode(data)
        except (binascii.Error, ValueError):
            return b""
    if encoding == "quoted-printable":
        cut = raw.rfind(b"=", max(0, len(raw) - 2))
        if cut != -1 and not raw.endswith((b"=\n", b"=\r\n")):
            raw = raw[:cut]
        return binascii.a2b_qp(raw)
    return raw


def snippet(raw: bytes | None, part: Part | None, notes: list[str],
            chars: int = SNIPPET_CHARS) -> str | None:
    """The first `chars` characters of a text part's content, whitespace collapsed."""
    if raw is None or part is None:
        return None
    body = decode_bytes(transfer_decode(raw, part.encoding), part.params.get("charset"),
                        notes)
    if part.type == "text/html":
        body = strip_html(body)
    # A multi-byte character cut by the byte limit decodes as one replacement character.
    body = _SPACE.sub(" ", body.rstrip("\ufffd"))
    return body.strip()[:chars].rstrip() or None


# -- the record ---------------------------------------------------------------------------

def _flags(value: Value) -> list[str]:
    # \Recent belongs to whichever session saw the message first: it would make a message
    # look changed whenever someone opens the mailbox, so it is left out.
    if not isinstance(value, list):
        return []
    return sorted(t for t in (text(v) for v in value if isinstance(v, (Atom, bytes)))
                  if t.lower() != "\\recent")


def _thread(message_id: str | None, in_reply_to: str | None, refs: list[str]) -> str | None:
    # The first message of a conversation: the oldest reference, else what it answers,
    # else the message itself. Replies in one conversation then share it.
    return refs[0] if refs else in_reply_to or message_id


def build_record(folder: str, uidvalidity: int, uid: int, items: dict[str, Value],
                 headers_raw: bytes | None, preview: bytes | None,
                 part: Part | None, leaves: list[Part] | None,
                 notes: list[str] | None = None) -> dict[str, Any]:
    """The native record of one message (see connector.py for its fields); `notes` are
    those structure() found, more are added here."""
    notes = list(notes or [])
    headers = header_block(headers_raw or b"")
    subject = _first(headers, "subject")
    senders = mailboxes(headers.get("from", []), notes)
    to = mailboxes(headers.get("to", []), notes)
    cc = mailboxes(headers.get("cc", []), notes)
    ids = message_ids(_first(headers, "message-id"))
    message_id = ids[0] if ids else (_first(headers, "message-id") or None)
    replied = message_ids(_first(headers, "in-reply-to"))
    refs = message_ids(" ".join(headers.get("references", [])))
    received = internal_date(text(items.get("INTERNALDATE")))
    raw_date = _first(headers, "date")
    moment = header_date(raw_date)
    date_source = "header"
    if moment is None:
        moment = received
        date_source = "received"
        notes.append("no Date header: the date is when the server received the message"
                     if raw_date is None else
                     f"Date header {raw_date[:80]!r} is not a date: the date is when the "
                     "server received the message")
    if message_id is None:
        notes.append("no Message-ID header")
    participants: list[str] = []
    for box in (*senders, *to, *cc):
        address = (box["address"] or "").lower()
        if address and address not in participants:
            participants.append(address)
    return {
        "id": record_id(folder, uidvalidity, uid),
        "folder": folder,
        "uidvalidity": uidvalidity,
        "uid": uid,
        "flags": _flags(items.get("FLAGS")),
        "size": number(items.get("RFC822.SIZE")),
        "received": iso(received) if received else None,
        "subject": decode_words(subject, notes) if subject is not None else None,
        "from": senders[0] if senders else None,
        "to": to,
        "cc": cc,
        "date": iso(moment) if moment else None,
        "date_source": date_source if moment else None,
        "message_id": message_id,
        "in_reply_to": replied[0] if replied else None,
        "references": refs,
        "thread_id": _thread(message_id, replied[0] if replied else None, refs),
        "snippet": snippet(preview, part, notes),
        "attachments": attachments(leaves, part) if leaves is not None else [],
        "participants": participants,
        "notes": notes,
    }


def tombstone(folder: str, uidvalidity: int, uid: int) -> dict[str, Any]:
    """The record of a message that is no longer in its folder (expunged, or its folder's
    UIDVALIDITY changed): the mapping's `deleted` condition reads `deleted`."""
    return {"id": record_id(folder, uidvalidity, uid), "folder": folder,
            "uidvalidity": uidvalidity, "uid": uid, "deleted": True}
