"""One IMAP session (stdlib imaplib) and the ONE place its errors become hub errors.

Every call into imaplib, the socket or ssl goes through `ImapSession._guard`, which turns
them into TransientError (timeouts, resets, the server going away, RFC 5530 UNAVAILABLE /
INUSE / LIMIT / SERVERBUG) or PermanentError (TLS trust, a NO to a command, a folder that
does not exist), and AuthError for refused credentials, each naming the connection and
the server so an ops person knows what to fix. No imaplib, socket or ssl exception leaves
this module.

The session opens folders read-only (EXAMINE) and reads bodies with BODY.PEEK, so syncing
never marks mail as read. It enables QRESYNC (or CONDSTORE) when the server offers it.
"""

from __future__ import annotations

import imaplib
import re
import socket
import ssl
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from connectors.imap.parse import HEADER_FIELDS
from connectors.imap.wire import (
    UidSet,
    Value,
    WireError,
    decode_mailbox,
    mailbox_arg,
    parse_fetch,
    parse_values,
    quote,
    sequence_set,
    text,
)
from hub.errors import AuthError, PermanentError, SyncError, TransientError

Security = Literal["ssl", "starttls", "none"]
AuthMethod = Literal["password", "xoauth2"]
SEARCH_WINDOW = 10_000  # UIDs per SEARCH: keeps each answer line far below imaplib's limit
_CODE = re.compile(rb"^\s*\[([A-Z-]+)")
_BUSY_CODES = {"UNAVAILABLE", "INUSE", "LIMIT"}  # RFC 5530: the server, not the message
_TRANSIENT_CODES = _BUSY_CODES | {"SERVERBUG"}


def xoauth2_string(user: str, token: str) -> bytes:
    """The XOAUTH2 SASL initial response before base64 (imaplib adds the base64):
    "user=<user>^Aauth=Bearer <token>^A^A" as Google and Microsoft document it."""
    return f"user={user}\x01auth=Bearer {token}\x01\x01".encode()


@dataclass(frozen=True)
class FolderStatus:
    """What EXAMINE said about a folder."""

    name: str
    uidvalidity: int
    uidnext: int | None
    exists: int
    highestmodseq: int | None  # None: the server keeps no mod-sequences for it


class _Counting:
    """Counts the bytes read from the server (tests prove big bodies are not fetched)."""

    bytes_received: int = 0

    def read(self, size: int) -> bytes:
        data: bytes = super().read(size)  # type: ignore[misc]
        self.bytes_received += len(data)
        return data

    def readline(self) -> bytes:
        data: bytes = super().readline()  # type: ignore[misc]
        self.bytes_received += len(data)
        return data


class _Plain(_Counting, imaplib.IMAP4):
    """IMAP over TCP (then optionally STARTTLS)."""


class _Tls(_Counting, imaplib.IMAP4_SSL):
    """IMAP over implicit TLS (port 993)."""


class ImapSession:
    """A logged-in IMAP connection to one account; `open()` connects, `close()` logs out."""

    def __init__(self, *, connection: str, host: str, port: int, security: Security,
                 user: str, auth: AuthMethod, secret: Callable[[], str],
                 ca_file: Path | None = None, timeout: float = 30.0) -> None:
        self.connection = connection
        self.host = host
        self.port = port
        self.security = security
        self.user = user
        self.auth = auth
        self._secret = secret  # called at login, never stored
        self.ca_file = ca_file
        self.timeout = timeout
        self._imap: imaplib.IMAP4 | None = None
        self.capabilities: frozenset[str] = frozenset()
        self.condstore = False
        self.qresync = False
        self.selected: str | None = None

    # -- the error boundary ----------------------------------------------------------

    @property
    def where(self) -> str:
        """The server and connection, as every message names them."""
        return f"IMAP server {self.host}:{self.port} (connection {self.connection!r})"

    @contextmanager
    def _guard(self, doing: str) -> Iterator[None]:
        """Translate whatever imaplib, ssl or the socket raise while `doing` something."""
        try:
            yield
        except SyncError:
            raise
        except imaplib.IMAP4.abort as exc:  # before IMAP4.error: abort is a subclass
            self._drop()
            raise TransientError(f"{self.where} dropped the connection while {doing}: "
                                 f"{_plain(exc)}; the next run reconnects") from None
        except imaplib.IMAP4.error as exc:
            raise self._refused(doing, _plain(exc)) from None
        except ssl.SSLCertVerificationError as exc:
            self._drop()
            hint = ("set ca_file to the CA certificate that signed it" if self.ca_file is None
                    else f"ca_file {self.ca_file} did not sign it")
            raise PermanentError(f"{self.where}: its TLS certificate is not trusted "
                                 f"({exc.verify_message}); {hint}") from None
        except ssl.SSLError as exc:
            self._drop()
            raise PermanentError(f"{self.where}: the TLS handshake failed while {doing} "
                                 f"({exc.reason or exc}); check `security` (port 993 is "
                                 "usually ssl, 143 starttls)") from None
        except TimeoutError:
            self._drop()
            hint = ("; if it never answers, check `security` (port 993 is usually ssl, 143 "
                    "starttls)" if doing == "connecting" else "")
            raise TransientError(f"{self.where} did not answer within {self.timeout:g} s "
                                 f"while {doing}{hint}") from None
        except socket.gaierror as exc:
            self._drop()
            if exc.errno in (socket.EAI_AGAIN,):
                raise TransientError(f"{self.where}: the name {self.host!r} could not be "
                                     f"looked up just now ({exc.strerror})") from None
            raise PermanentError(f"{self.where}: the host name {self.host!r} is not known "
                                 f"({exc.strerror}); check the `host` setting") from None
        except ConnectionRefusedError:
            self._drop()
            raise TransientError(f"{self.where} refused the connection: is the server "
                                 "running and are `host` and `port` right?") from None
        except OSError as exc:
            self._drop()
            raise TransientError(f"{self.where}: network error while {doing}: "
                                 f"{exc.strerror or exc}") from None
        except WireError as exc:
            raise PermanentError(f"{self.where} answered something unreadable while "
                                 f"{doing}: {exc}") from None

    def _refused(self, doing: str, message: str) -> SyncError:
        found = _CODE.match(message.encode(errors="replace"))
        code = found.group(1).decode() if found else ""
        if code in _TRANSIENT_CODES:
            return TransientError(f"{self.where} is busy or unavailable while {doing}: "
                                  f"{message}")
        return PermanentError(f"{self.where} refused {doing}: {message}")

    def _ok(self, answer: tuple[str, Any], doing: str) -> list[Any]:
        """The data of an OK answer; a NO or BAD raises (translated)."""
        typ, data = answer
        if typ == "OK":
            return list(data or [])
        message = " ".join(_plain(d) for d in data or [] if d is not None)
        raise self._refused(doing, message or typ)

    def _drop(self) -> None:
        imap, self._imap, self.selected = self._imap, None, None
        if imap is not None:
            try:
                imap.shutdown()
            except (OSError, imaplib.IMAP4.error):
                pass  # already gone; nothing left to release

    @property
    def imap(self) -> imaplib.IMAP4:
        """The live imaplib connection (opened on first use)."""
        if self._imap is None:
            self.open()
        assert self._imap is not None
        return self._imap

    @property
    def connected(self) -> bool:
        """Whether a connection is open (a dropped one is closed by the error boundary)."""
        return self._imap is not None

    @property
    def bytes_received(self) -> int:
        """Bytes read from the server by this connection so far."""
        return getattr(self._imap, "bytes_received", 0)

    # -- connecting ------------------------------------------------------------------------

    def _context(self) -> ssl.SSLContext:
        try:
            return ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)
        except (OSError, ssl.SSLError) as exc:  # before the network: a setting is wrong
            reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or exc
            raise PermanentError(f"{self.where}: ca_file {self.ca_file} cannot be used as a "
                                 f"CA certificate ({reason}); it must be a PEM file") from None

    def open(self) -> None:
        """Connect, secure the connection, log in, and enable QRESYNC/CONDSTORE."""
        if self._imap is not None:
            return
        secret = self._secret()  # a missing secret is named before any network traffic
        with self._guard("connecting"):
            if self.security == "ssl":
                self._imap = _Tls(self.host, self.port, ssl_context=self._context(),
                                  timeout=self.timeout)
            else:
                self._imap = _Plain(self.host, self.port, timeout=self.timeout)
                if self.security == "starttls":
                    if "STARTTLS" not in self._imap.capabilities:
                        self._drop()
                        raise PermanentError(f"{self.where} does not offer STARTTLS; use "
                                             "security: ssl (usually port 993)")
                    self._ok(self._imap.starttls(ssl_context=self._context()), "STARTTLS")
        try:
            self._login(secret)
            with self._guard("reading its capabilities"):
                self.capabilities = frozenset(
                    c.upper() for c in self._ok(self.imap.capability(), "CAPABILITY")[0]
                    .decode(errors="replace").split())
                self.qresync = "QRESYNC" in self.capabilities
                self.condstore = self.qresync or "CONDSTORE" in self.capabilities
                if "ENABLE" in self.capabilities and self.condstore:
                    self._ok(self.imap.enable("QRESYNC" if self.qresync else "CONDSTORE"),
                             "ENABLE")
        except BaseException:
            self._drop()
            raise

    def _login(self, secret: str) -> None:
        assert self._imap is not None
        imap = self._imap
        xoauth2 = self.auth == "xoauth2"
        with self._guard("logging in"):
            if xoauth2 and "AUTH=XOAUTH2" not in imap.capabilities:
                raise PermanentError(f"{self.where} does not offer XOAUTH2 log-in; use "
                                     "auth: password")
            try:
                if xoauth2:
                    initial = xoauth2_string(self.user, secret)
                    sent: list[bool] = []

                    def respond(_challenge: bytes) -> bytes:
                        # A second challenge carries the server's error details; answering
                        # it with nothing lets the server finish with its NO.
                        if sent:
                            return b""
                        sent.append(True)
                        return initial

                    imap.authenticate("XOAUTH2", respond)
                else:
                    imap.login(quote(self.user), secret)
            except imaplib.IMAP4.abort:
                raise
            except imaplib.IMAP4.error as exc:
                message = _plain(exc)
                found = _CODE.match(message.encode(errors="replace"))
                if found and found.group(1).decode() in _TRANSIENT_CODES:
                    raise TransientError(f"{self.where} could not log in user {self.user!r} "
                                         f"just now: {message}") from None
                what, fix = (("access token", "the token may have expired: get a new one")
                             if xoauth2 else ("user name or password",
                                              "check the `user` and `password` settings"))
                raise AuthError(f"{self.where} refused the {what} for user {self.user!r}: "
                                f"{message}; {fix}") from None

    def close(self) -> None:
        """Log out (harmless when not connected or called twice)."""
        imap = self._imap
        if imap is None:
            return
        try:
            with self._guard("logging out"):
                imap.logout()
        except SyncError:
            pass  # the server went away first: nothing to release
        self._imap = None
        self.selected = None

    # -- folders ---------------------------------------------------------------------------

    def folders(self) -> list[str]:
        """Every folder name on the account (decoded from modified UTF-7)."""
        with self._guard("listing folders"):
            data = self._ok(self.imap.list(), "LIST")
            names = []
            for line in data:
                if line is None:
                    continue
                parsed = parse_values([line])
                if len(parsed) >= 3:
                    names.append(decode_mailbox(text(parsed[2])))
            return names

    def examine(self, folder: str) -> FolderStatus:
        """Open a folder read-only; its UIDVALIDITY, UIDNEXT, message count, HIGHESTMODSEQ."""
        with self._guard(f"opening folder {folder!r}"):
            imap = self.imap
            self.selected = None
            typ, data = imap.select(mailbox_arg(folder), readonly=True)
            if typ != "OK":
                message = " ".join(_plain(d) for d in data or [] if d is not None)
                known = ", ".join(self.folders()) or "none"
                raise PermanentError(f"{self.where}: folder {folder!r} cannot be opened "
                                     f"({message}); the account has: {known}")
            self.selected = folder
            validity = _number(imap.response("UIDVALIDITY")[1])
            if validity is None:
                raise PermanentError(f"{self.where}: folder {folder!r} has no UIDVALIDITY, "
                                     "so it cannot be read incrementally")
            modseq = _number(imap.response("HIGHESTMODSEQ")[1]) if self.condstore else None
            return FolderStatus(folder, validity, _number(imap.response("UIDNEXT")[1]),
                                _number(data) or 0, modseq)

    # -- UIDs ------------------------------------------------------------------------------

    def search(self, low: int, upto: int | None) -> list[int]:
        """UIDs from `low` on, ascending, in windows (the last window open-ended, so mail
        that arrived after EXAMINE is included)."""
        out: list[int] = []
        start = max(1, low)
        with self._guard(f"listing messages of {self.selected!r}"):
            while upto is not None and start <= upto:
                end = min(upto, start + SEARCH_WINDOW - 1)
                out.extend(self._search(f"{start}:{end}"))
                start = end + 1
            out.extend(u for u in self._search(f"{start}:*") if u >= start)
        return sorted(set(out))

    def _search(self, uids: str) -> list[int]:
        data = self._ok(self.imap.uid("SEARCH", "UID", uids), "UID SEARCH")
        found: list[int] = []
        for line in data:
            if isinstance(line, bytes):
                found.extend(int(w) for w in line.split() if w.isdigit())
        return found

    def changes(self, modseq: int, upto: int) -> tuple[list[int], UidSet]:
        """(UIDs below `upto` whose flags changed since `modseq`, UIDs expunged since then).

        The expunged set comes from QRESYNC's VANISHED (EARLIER) answer; without QRESYNC it
        is empty and the caller diffs UID lists instead.
        """
        if upto < 1:
            return [], UidSet()
        with self._guard(f"asking {self.selected!r} for changes"):
            imap = self.imap
            gone = self._vanished()
            extra = f"(CHANGEDSINCE {modseq}{' VANISHED' if self.qresync else ''})"
            data = self._ok(imap.uid("FETCH", f"1:{upto}", "(UID FLAGS)", extra),
                            "UID FETCH CHANGEDSINCE")
            changed = sorted(u for u in parse_fetch(data) if u <= upto)
            for uid in self._vanished():
                gone.add(uid)
            return changed, gone

    def _vanished(self) -> UidSet:
        out = UidSet()
        for line in self.imap.response("VANISHED")[1] or []:
            if not isinstance(line, bytes):
                continue
            spec = line.decode(errors="replace").replace("(EARLIER)", "").strip()
            try:
                for uid in UidSet.parse(spec):
                    out.add(uid)
            except ValueError:
                raise WireError(f"VANISHED {spec[:60]!r} is not a UID set") from None
        return out

    # -- messages --------------------------------------------------------------------------

    def summaries(self, uids: Sequence[int],
                  header_bytes: int) -> tuple[dict[int, dict[str, Value]], str | None]:
        """Flags, dates, size, structure and (capped) header fields of some messages, and
        the server's refusal when it could not give some of them (see `_fetch`)."""
        if not uids:
            return {}, None
        fields = " ".join(HEADER_FIELDS)
        items = (f"(UID FLAGS INTERNALDATE RFC822.SIZE BODYSTRUCTURE "
                 f"BODY.PEEK[HEADER.FIELDS ({fields})]<0.{header_bytes}>)")
        return self._fetch(uids, items, f"reading messages of {self.selected!r}")

    def partials(self, section: str, uids: Sequence[int],
                 limit: int) -> tuple[dict[int, bytes], str | None]:
        """The first `limit` bytes of one body section of some messages, and the server's
        refusal when it could not give some of them."""
        if not uids:
            return {}, None
        found, refusal = self._fetch(uids, f"(UID BODY.PEEK[{section}]<0.{limit}>)",
                                     f"reading message text in {self.selected!r}")
        out: dict[int, bytes] = {}
        for uid, items in found.items():
            for key, value in items.items():
                if key.startswith(f"BODY[{section}]") and isinstance(value, bytes):
                    out[uid] = value
        return out, refusal

    def _fetch(self, uids: Sequence[int], items: str,
               doing: str) -> tuple[dict[int, dict[str, Value]], str | None]:
        # A server that cannot read one message (a damaged file) answers the others and
        # then NO; Dovecot hangs up if that message is asked for again on the same
        # connection. So a NO is returned with what did arrive, for the caller to turn the
        # missing messages into dead letters, instead of retrying them here.
        with self._guard(doing):
            imap = self.imap
            typ, data = imap.uid("FETCH", sequence_set(uids), items)
            if typ == "OK":
                return parse_fetch([d for d in data or [] if d is not None]), None
            message = " ".join(_plain(d) for d in data or [] if d is not None) or typ
            found = _CODE.match(message.encode(errors="replace"))
            if typ != "NO" or (found and found.group(1).decode() in _BUSY_CODES):
                raise self._refused(doing, message)
            arrived = [d for d in imap.response("FETCH")[1] or [] if d is not None]
            return parse_fetch(arrived), f"{self.where} refused {doing}: {message}"

    def check(self) -> str:
        """NOOP: proves the logged-in connection answers."""
        with self._guard("checking the connection"):
            return " ".join(_plain(d) for d in self._ok(self.imap.noop(), "NOOP") if d)


def _plain(value: Any) -> str:
    """An imaplib error or data item as one line of text."""
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    elif isinstance(value, BaseException):
        value = str(value)
        if value.startswith(("b'", 'b"')):
            value = value[2:-1]
    return " ".join(str(value).split())


def _number(data: Any) -> int | None:
    for item in data or []:
        if isinstance(item, bytes) and item.strip().isdigit():
            return int(item.strip())
    return None
