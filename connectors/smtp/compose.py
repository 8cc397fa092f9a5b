"""Native record -> the exact bytes of one email, checked field by field.

Every refusal is a ComposeError whose message names the field and what was expected; the
connector turns it into that record's PermanentError (dead letter). Nothing unsafe reaches
the wire: addresses are parsed strictly (addresses.py), a subject's line breaks are folded
into spaces (a subject from a multi-line memo is harmless, an injected "Bcc:" is not), any
other header value with a line break is refused, and header names the message itself
owns (From, To, Message-ID, Content-*, ...) cannot be set through `headers`.

Non-ASCII: names and subjects are RFC 2047 encoded, domains IDNA; bodies are UTF-8 in
quoted-printable when they are not plain short-lined ASCII (so no server needs 8BITMIME);
only a non-ASCII local part makes the message SMTPUTF8 (`needs_utf8`).
"""

from __future__ import annotations

import base64
import email.header
import email.policy
import email.utils
import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from typing import Any

from connectors.smtp.addresses import AddressError, Mailbox, mailboxes
from connectors.smtp.templates import TemplateError, TemplateFolder

# Headers the message builds itself; a record cannot set them through `headers`.
RESERVED_HEADERS = frozenset({
    "from", "to", "cc", "bcc", "subject", "message-id", "date", "mime-version",
    "content-type", "content-transfer-encoding", "content-disposition", "in-reply-to",
    "references", "reply-to", "sender", "return-path", "received"})
_HEADER_NAME = re.compile(r"[!-9;-~]{1,76}")  # RFC 5322 ftext
_MSG_ID = re.compile(r"<[!-;=?-~]{1,250}@[!-;=?-~]{1,250}>")  # printable ASCII, no < > space
_LINE_BREAK = re.compile(r"[\r\n\x00]")
_MAX_LINE = 998


class ComposeError(ValueError):
    """A record cannot become an email; the message names the field and the problem."""


@dataclass(frozen=True)
class Defaults:
    """Connection settings that fill what a record leaves out."""

    sender: str | None = None  # setting `from`
    reply_to: str | None = None
    bcc: str | None = None
    message_id_domain: str | None = None
    max_bytes: int = 10_000_000


@dataclass(frozen=True)
class Outgoing:
    """One composed email: envelope, bytes, and what the sent log and results need."""

    token: str
    message_id: str
    sender: Mailbox
    recipients: tuple[Mailbox, ...]  # To + Cc + Bcc, each once
    data: bytes
    subject: str
    needs_utf8: bool

    @property
    def envelope_to(self) -> list[str]:
        """Recipient addresses for RCPT TO."""
        return [m.address for m in self.recipients]


def message_token(system: str, identity: str, template: str | None) -> str:
    """A stable token for one message: the same record (and template) on the same system
    always gives the same token, so a retried write is recognised."""
    digest = hashlib.sha256(f"{system}\0{identity}\0{template or ''}".encode()).digest()
    return base64.b32encode(digest[:20]).decode("ascii").lower()


def normalise_message_id(value: Any, field: str) -> str:
    """"<id@host>" (angle brackets added when missing); ComposeError when it cannot be one."""
    if not isinstance(value, str):
        raise ComposeError(f"{field}: {value!r} is not a Message-ID (expected <id@host>)")
    text = value.strip()
    if not text.startswith("<"):
        text = f"<{text}>"
    if not _MSG_ID.fullmatch(text):
        raise ComposeError(f"{field}: {value!r} is not a Message-ID (expected <id@host>, "
                           "printable ASCII without spaces)")
    return text


def _text(record: dict[str, Any], key: str) -> str | None:
    value = record.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ComposeError(f"{key}: expected text, got {type(value).__name__} {value!r}")
    return value


def _one_line(value: str) -> str:
    """Fold line breaks and runs of blanks into single spaces (no header injection)."""
    return " ".join(value.replace("\x00", " ").split())


class _EncodedSubject(str):
    """A subject that itself looks like RFC 2047 ("=?utf-8?q?...?="): sent encoded, or the
    reader's mail program would decode the literal text. The email package only encodes
    non-ASCII, so this header folds itself (the generator calls `fold`)."""

    name = "Subject"

    def fold(self, *, policy: email.policy.EmailPolicy) -> str:
        """The header line, every word encoded."""
        encoded = email.header.Header(str(self), "utf-8", header_name=self.name)
        return f"{self.name}: {encoded.encode(linesep=policy.linesep)}{policy.linesep}"


def _references(value: Any) -> list[str]:
    if value is None or value == "" or value == []:
        return []
    items = value.split() if isinstance(value, str) else value
    if not isinstance(items, list):
        raise ComposeError(f"references: expected a list of Message-IDs, got {value!r}")
    return [normalise_message_id(v, f"references[{i}]") for i, v in enumerate(items)]


def _header_value(name: str, value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ComposeError(f"headers.{name}: expected text, got {value!r}")
    text = str(value)
    if _LINE_BREAK.search(text):
        raise ComposeError(f"headers.{name}: holds a line break, which could add headers "
                           "of its own; refused")
    return text


def _extra_headers(value: Any) -> list[tuple[str, str]]:
    if value is None or value == {}:
        return []
    if not isinstance(value, dict):
        raise ComposeError(f"headers: expected name: value pairs, got {value!r}")
    out = []
    for name, raw in value.items():
        if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
            raise ComposeError(f"headers: {name!r} is not a header name (printable ASCII "
                               "without spaces or colons)")
        if name.lower() in RESERVED_HEADERS:
            raise ComposeError(f"headers.{name}: set by the connector itself (map the "
                               f"record's own field instead)")
        if raw is not None:
            out.append((name, _header_value(name, raw)))
    return out


def _address(m: Mailbox) -> Address:
    return Address(display_name=m.name, username=m.local, domain=m.domain)


def _cte(text: str) -> str:
    """7bit for short-lined ASCII, else quoted-printable: no 8BITMIME needed anywhere."""
    if text.isascii() and all(len(line) <= _MAX_LINE for line in text.splitlines()):
        return "7bit"
    return "quoted-printable"


def _one(value: Any, field: str) -> Mailbox | None:
    found = mailboxes(value, field)
    if len(found) > 1:
        raise ComposeError(f"{field}: one address expected, got {len(found)}")
    return found[0] if found else None


def _unique(*groups: list[Mailbox]) -> tuple[Mailbox, ...]:
    seen: dict[str, Mailbox] = {}
    for group in groups:
        for m in group:
            seen.setdefault(m.address.lower(), m)
    return tuple(seen.values())


@dataclass(frozen=True)
class _People:
    sender: Mailbox
    to: list[Mailbox]
    cc: list[Mailbox]
    bcc: list[Mailbox]
    reply_to: list[Mailbox]


def _content(record: dict[str, Any], templates: TemplateFolder | None
             ) -> tuple[str, str | None, str | None]:
    """(subject, text, html): from the template when the record names one."""
    subject, body, body_html = None, _text(record, "text"), _text(record, "html")
    template = record.get("template")
    if template not in (None, ""):
        if templates is None:
            raise ComposeError(f"template: {template!r} is named but the connection has no "
                               "templates (set templates_dir)")
        try:
            subject, body, rendered_html = templates.get(template).render(record)
        except TemplateError as exc:
            raise ComposeError(f"template: {exc}") from None
        body_html = rendered_html if rendered_html is not None else body_html
    subject = _one_line(subject if subject is not None else (_text(record, "subject") or ""))
    if not subject:
        raise ComposeError("subject: the email has no subject (map one to `subject`, or "
                           "start the template with a Subject: line)")
    if body is None and body_html is None:
        raise ComposeError("text: the email has no body (map `text` or `html`, or name a "
                           "`template`)")
    return subject, body, body_html


def _people(record: dict[str, Any], defaults: Defaults) -> _People:
    """Sender and recipients, checked; the settings fill what the record leaves out."""
    try:
        sender = _one(record.get("from"), "from") or _one(defaults.sender, "setting from")
        if sender is None:
            raise ComposeError("from: no sender (map `from`, or set the connection's `from` "
                               "setting)")
        people = _People(
            sender, mailboxes(record.get("to"), "to"), mailboxes(record.get("cc"), "cc"),
            mailboxes(record.get("bcc"), "bcc") + mailboxes(defaults.bcc, "setting bcc"),
            mailboxes(record.get("reply_to"), "reply_to")
            or mailboxes(defaults.reply_to, "setting reply_to"))
    except AddressError as exc:
        raise ComposeError(str(exc)) from None
    if not people.to and not people.cc:
        raise ComposeError("to: no recipient (map an address to `to`)")
    return people


def _ids(record: dict[str, Any], token: str, domain: str
         ) -> tuple[str, str | None, list[str]]:
    """(Message-ID, In-Reply-To, References)."""
    mid = record.get("message_id")
    message_id = normalise_message_id(mid, "message_id") if mid not in (None, "") \
        else f"<{token}.liaison@{domain}>"
    in_reply_to = record.get("in_reply_to")
    parent = normalise_message_id(in_reply_to, "in_reply_to") \
        if in_reply_to not in (None, "") else None
    references = _references(record.get("references"))
    if parent and not references:
        references = [parent]
    return message_id, parent, references


def _bodies(msg: EmailMessage, body: str | None, body_html: str | None) -> None:
    if body is not None:
        msg.set_content(body, subtype="plain", charset="utf-8", cte=_cte(body))
        if body_html is not None:
            msg.add_alternative(body_html, subtype="html", charset="utf-8",
                                cte=_cte(body_html))
    elif body_html is not None:
        msg.set_content(body_html, subtype="html", charset="utf-8", cte=_cte(body_html))


def compose(record: dict[str, Any], *, token: str, defaults: Defaults,
            templates: TemplateFolder | None, now: datetime | None = None) -> Outgoing:
    """The email for one native record (see the package docstring for its fields)."""
    subject, body, body_html = _content(record, templates)
    p = _people(record, defaults)
    message_id, parent, references = _ids(
        record, token, defaults.message_id_domain or p.sender.domain)
    extra = _extra_headers(record.get("headers"))
    recipients = _unique(p.to, p.cc, p.bcc)
    needs_utf8 = any(m.needs_utf8 for m in (p.sender, *recipients, *p.reply_to))
    policy = email.policy.SMTPUTF8 if needs_utf8 else email.policy.SMTP
    try:
        msg = EmailMessage(policy=policy)
        msg["From"] = _address(p.sender)
        for name, group in (("To", p.to), ("Cc", p.cc), ("Reply-To", p.reply_to)):
            if group:
                msg[name] = [_address(m) for m in group]
        msg["Subject"] = _EncodedSubject(subject) if "=?" in subject else subject
        msg["Date"] = email.utils.format_datetime(now or datetime.now(UTC))
        msg["Message-ID"] = message_id
        if parent:
            msg["In-Reply-To"] = parent
        if references:
            msg["References"] = " ".join(references)
        for name, value in extra:
            msg[name] = value
        _bodies(msg, body, body_html)
        data = msg.as_bytes(policy=policy)
    except (ValueError, TypeError, LookupError) as exc:
        # Checked above field by field; this is the email package refusing something we
        # did not foresee, still about this record only.
        raise ComposeError(f"the email cannot be built: {exc}") from None
    if len(data) > defaults.max_bytes:
        raise ComposeError(f"text: the email is {len(data):,} bytes, over the limit of "
                           f"{defaults.max_bytes:,} (setting max_message_bytes)")
    return Outgoing(token, message_id, p.sender, recipients, data, subject, needs_utf8)
