"""Email addresses from native records: parsed strictly, refused with a reason, never guessed.

A native address is a bare address ("ana@example.com"), a named one
("Ana Silva <ana@example.com>", the name may be "quoted"), a mailbox object
({"address": ..., "name": ...}) as the canonical model has it, or a list of those; a text
may hold several addresses separated by "," or ";". What is refused, with the reason:
line breaks and other control characters anywhere (header injection), anything that is not
local@domain, quoted local parts and IP-literal domains (legal, but never what a record
means), domains without a dot, over-long parts.

Non-ASCII: a domain is converted to its ASCII (IDNA "xn--") form, which every server
accepts; a non-ASCII local part ("josé@example.com") can only travel over SMTPUTF8, so
the mailbox says so (`needs_utf8`) and the sender checks that the server offers it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

# RFC 5322 atext: what a dot-atom local part may hold, besides dots.
_ATEXT = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+")
_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_NAMED = re.compile(r"^(?P<name>[^<>]*?)\s*<(?P<addr>[^<>]*)>$")


class AddressError(ValueError):
    """A value is not a usable email address; the message says why."""


@dataclass(frozen=True)
class Mailbox:
    """One checked address: `address` is what goes on the envelope (domain in ASCII)."""

    local: str
    domain: str  # ASCII (IDNA) form
    name: str = ""

    @property
    def address(self) -> str:
        """local@domain, the domain in ASCII."""
        return f"{self.local}@{self.domain}"

    @property
    def needs_utf8(self) -> bool:
        """A non-ASCII local part can only be sent with SMTPUTF8."""
        return not self.local.isascii()


def _check_local(local: str, shown: str) -> None:
    if not local:
        raise AddressError(f"{shown!r} has nothing before the @")
    if len(local.encode()) > 64:
        raise AddressError(f"{shown!r}: the part before the @ is longer than 64 bytes")
    if local.startswith('"'):
        raise AddressError(f"{shown!r}: quoted names before the @ are not accepted")
    for atom in local.split("."):
        if not atom:
            raise AddressError(f"{shown!r}: a dot at the start, the end or twice in a row "
                               "before the @")
        # Non-ASCII letters are allowed (SMTPUTF8); ASCII must be RFC 5322 atext.
        ascii_part = "".join(ch for ch in atom if ch.isascii())
        if ascii_part and not _ATEXT.fullmatch(ascii_part):
            bad = next(ch for ch in ascii_part if not _ATEXT.fullmatch(ch))
            raise AddressError(f"{shown!r}: the character {bad!r} is not allowed in an "
                               "address")
        if any(not ch.isascii() and not ch.isprintable() for ch in atom):
            raise AddressError(f"{shown!r}: holds an invisible character")


def _ascii_domain(domain: str, shown: str) -> str:
    if not domain:
        raise AddressError(f"{shown!r} has nothing after the @")
    if domain.startswith("["):
        raise AddressError(f"{shown!r}: IP-address domains are not accepted")
    domain = domain.rstrip(".")
    try:
        ascii_domain = domain.encode("idna").decode("ascii") if not domain.isascii() \
            else domain
    except UnicodeError:
        raise AddressError(f"{shown!r}: the domain {domain!r} is not a valid domain name") \
            from None
    labels = ascii_domain.split(".")
    if len(labels) < 2:
        raise AddressError(f"{shown!r}: the domain {domain!r} has no dot (expected "
                           "name@example.com)")
    if len(ascii_domain) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise AddressError(f"{shown!r}: the domain {domain!r} is not a valid domain name")
    return ascii_domain.lower()


def parse_address(text: str, name: str = "") -> Mailbox:
    """One address (bare or "Name <addr>"); AddressError saying what is wrong."""
    if _CONTROL.search(text) or _CONTROL.search(name):
        raise AddressError(f"{text!r} holds a line break or control character")
    text = text.strip()
    named = _NAMED.match(text)
    if named:
        name = name or named.group("name").strip()
        text = named.group("addr").strip()
    if len(name) >= 2 and name[0] == name[-1] == '"':
        name = name[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    if not text:
        raise AddressError("the address is empty")
    if any(ch in text for ch in ' <>,;()[]\\"') and not text.startswith('"'):
        raise AddressError(f"{text!r} is not an email address (expected name@example.com)")
    local, at, domain = text.rpartition("@")
    if not at:
        raise AddressError(f"{text!r} is not an email address (it has no @)")
    if "@" in local and not local.startswith('"'):
        raise AddressError(f"{text!r} is not an email address (it has more than one @)")
    _check_local(local, text)
    mailbox = Mailbox(local, _ascii_domain(domain, text), " ".join(name.split()))
    if len(mailbox.address.encode()) > 254:
        raise AddressError(f"{text!r} is longer than 254 bytes")
    return mailbox


def _split(text: str) -> Iterator[str]:
    """Split on , and ; outside quotes and angle brackets."""
    depth, quoted, start = 0, False, 0
    for i, ch in enumerate(text):
        if ch == '"' and (i == 0 or text[i - 1] != "\\"):
            quoted = not quoted
        elif not quoted and ch == "<":
            depth += 1
        elif not quoted and ch == ">":
            depth = max(0, depth - 1)
        elif not quoted and depth == 0 and ch in ",;":
            yield text[start:i]
            start = i + 1
    yield text[start:]


def mailboxes(value: Any, field: str) -> list[Mailbox]:
    """Every address in a native value (text, mailbox object, list); AddressError naming
    the field (e.g. "to[1]") and what is wrong."""
    if value is None or value == "" or value == []:
        return []
    items = value if isinstance(value, list) else [value]
    out: list[Mailbox] = []
    for i, item in enumerate(items):
        at = f"{field}[{i}]" if isinstance(value, list) else field
        if item is None or item == "":
            continue
        try:
            if isinstance(item, dict):
                address = item.get("address")
                if not isinstance(address, str) or not address.strip():
                    raise AddressError(f"the mailbox {item!r} has no address")
                name = item.get("name") or ""
                if not isinstance(name, str):
                    raise AddressError(f"the name {name!r} is not text")
                out.append(parse_address(address, name))
            elif isinstance(item, str):
                out.extend(parse_address(part) for part in _split(item) if part.strip())
            else:
                raise AddressError(f"{item!r} is not an address (expected text like "
                                   "ana@example.com or {address: ..., name: ...})")
        except AddressError as exc:
            raise AddressError(f"{at}: {exc}") from None
    return out
