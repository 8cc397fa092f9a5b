"""The IMAP connector: a mailbox's folders as canonical messages (read-only).

Connection
    `host`, `port` (default 993 with security ssl, else 143), `security` ssl (implicit
    TLS, the default) | starttls | none, `ca_file` to trust a private CA, `timeout`.
    `auth` password (LOGIN with `user` and `password`) or xoauth2 (SASL XOAUTH2 with
    `user` and an OAuth2 `access_token`, as Gmail and Microsoft 365 want). Secrets are
    ${ENV} references read at log-in. The access token is used as given: refreshing it
    is up to whatever sets the variable.
Reads
    object "messages": every message of the folders in `folders` (default ["INBOX"]),
    folder by folder in ascending UID order. The native id is "<folder>:<uidvalidity>:
    <uid>". Incremental by UIDVALIDITY + UIDNEXT per folder; flag changes through
    CONDSTORE (CHANGEDSINCE) and expunges through QRESYNC (VANISHED), or by diffing UID
    lists on servers without them; expunged messages come as {"id", "deleted": true}
    records. The cursor and its stages: reader.py.
    Only metadata is fetched: BODYSTRUCTURE, the header fields below (at most
    `header_bytes`), FLAGS, INTERNALDATE, RFC822.SIZE and the first `preview_bytes` of
    the text part (HTML: four times as many), so a 50 MB message costs a few kilobytes.
    Folders are opened read-only (EXAMINE, BODY.PEEK): syncing never marks mail as read.
Native record (message)
    id, folder, uidvalidity, uid, flags [..], size (bytes), received (INTERNALDATE),
    subject, from {address, name} | null, to [..], cc [..], date (the Date header, UTC;
    the server's arrival time when it is missing or unreadable: date_source "received"),
    message_id, in_reply_to, references [..], thread_id (the oldest reference, else what
    it replies to, else its own Message-ID), snippet (first 200 characters of the plain
    text, else of the HTML stripped of tags), attachments [{name, size, content_type}],
    participants (every from/to/cc address, lower case, once), notes (what was odd about
    the message and how it was read anyway).
    An address that is not one ("undisclosed-recipients:;") keeps its text as the name with
    a null address. A message the server refuses to give is dead-lettered naming its
    folder and UID.
Writes
    None: IMAP is a read-only source here.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import ClassVar, cast

from connectors.imap import parse
from connectors.imap.client import AuthMethod, ImapSession, Security
from connectors.imap.reader import Reader
from hub.config.model import ConnectionConfig
from hub.connector import (
    BaseConnector,
    Capabilities,
    Cursor,
    EntitySupport,
    Health,
    NativeRecord,
    Page,
    WriteOp,
    WriteResult,
)
from hub.errors import ConnectorError, HubError, PermanentError

OBJECT = "messages"
SECURITY = ("ssl", "starttls", "none")
AUTH = ("password", "xoauth2")
DEFAULT_PREVIEW_BYTES = 4096
DEFAULT_HEADER_BYTES = 65536


class ImapConnector(BaseConnector):
    """Reads messages from IMAP folders (TLS or STARTTLS, password or XOAUTH2)."""

    name: ClassVar[str] = "imap"
    capabilities: ClassVar[Capabilities] = Capabilities(
        entities={"message": EntitySupport(object=OBJECT, read=True, write=False,
                                           incremental=True, deletes=True, archive=False)},
        batch_size=1,
        webhooks=False,
        settings={
            "host": "the IMAP server's host name, e.g. imap.example.com",
            "port": "the port (default 993 with security ssl, else 143)",
            "security": "ssl (TLS from the start, the default), starttls, or none "
                        "(unencrypted: only for a server on this machine)",
            "ca_file": "a CA certificate file (PEM) to trust, for a server whose certificate "
                       "a private CA signed; relative to the config file",
            "user": "the account's user name (often the email address)",
            "auth": "password (the default) or xoauth2 (an OAuth2 access token)",
            "password": "the account's password, as a ${ENV} reference (auth: password)",
            "access_token": "an OAuth2 access token with IMAP scope, as a ${ENV} reference "
                            "(auth: xoauth2)",
            "folders": "the folders to read (a list or comma-separated; default INBOX)",
            "preview_bytes": f"bytes of the text part read for the snippet (default "
                             f"{DEFAULT_PREVIEW_BYTES})",
            "header_bytes": f"most bytes of header fields read per message (default "
                            f"{DEFAULT_HEADER_BYTES})",
            "timeout": "seconds to wait for the server (default 30)",
        },
        secret_settings=frozenset({"password", "access_token"}),
    )

    def __init__(self, connection: ConnectionConfig) -> None:
        super().__init__(connection)
        security = str(connection.setting("security") or "ssl").lower()
        if security not in SECURITY:
            self._bad("security", f"must be one of {', '.join(SECURITY)}, got {security!r}")
        auth = str(connection.setting("auth") or "password").lower()
        if auth not in AUTH:
            self._bad("auth", f"must be one of {', '.join(AUTH)}, got {auth!r}")
        self.security = cast(Security, security)
        self.auth = cast(AuthMethod, auth)
        self.folders = self._folders()
        self.port = self._whole("port", 993 if security == "ssl" else 143, 1, 65535)
        self.preview_bytes = self._whole("preview_bytes", DEFAULT_PREVIEW_BYTES, 0, 1 << 20)
        self.header_bytes = self._whole("header_bytes", DEFAULT_HEADER_BYTES, 1024, 1 << 22)
        self.timeout = self.number_setting("timeout", 30.0)
        ca_file = connection.setting("ca_file")
        self.ca_file: Path | None = None
        if ca_file:
            path = Path(str(ca_file)).expanduser()
            self.ca_file = path if path.is_absolute() else connection.base_dir / path
        self._session: ImapSession | None = None

    # -- settings --------------------------------------------------------------------------

    def _bad(self, key: str, message: str) -> None:
        where = self.connection.where_of(key)
        at = f" ({where})" if where else ""
        raise ConnectorError(f"connection {self.connection.name}{at}: setting {key!r} "
                             f"{message}")

    def _whole(self, key: str, default: int, low: int, high: int) -> int:
        value = self.connection.setting(key, default)
        try:
            number = int(value)
        except (TypeError, ValueError):
            number = low - 1
        if not low <= number <= high or isinstance(value, bool):
            self._bad(key, f"must be a whole number from {low} to {high}, got {value!r}")
        return number

    def _folders(self) -> list[str]:
        raw = self.connection.setting("folders")
        if raw in (None, "", []):
            return ["INBOX"]
        items = raw if isinstance(raw, (list, tuple)) else str(raw).split(",")
        folders: list[str] = []
        for item in items:
            name = str(item).strip()
            if name and name not in folders:
                folders.append(name)
        if not folders:
            self._bad("folders", "names no folder")
        return folders

    def _secret(self) -> str:
        key = "access_token" if self.auth == "xoauth2" else "password"
        return self.required_setting(key)

    @property
    def session(self) -> ImapSession:
        """The IMAP session, built on first use (no I/O in the constructor)."""
        if self._session is None:
            self._session = ImapSession(
                connection=self.connection.name, host=self.required_setting("host"),
                port=self.port, security=self.security, user=self.required_setting("user"),
                auth=self.auth, secret=self._secret, ca_file=self.ca_file,
                timeout=self.timeout)
        return self._session

    def _reader(self, page_size: int) -> Reader:
        return Reader(self.session, self.folders, page_size=page_size,
                      header_bytes=self.header_bytes, preview_bytes=self.preview_bytes)

    @staticmethod
    def _check_object(object: str) -> None:
        if object != OBJECT:
            raise PermanentError(f"IMAP has no object {object!r} here (known: {OBJECT})")

    # -- the contract ----------------------------------------------------------------------

    def check(self) -> Health:
        """Log in and open each folder: proves the server, credentials and folders."""
        try:
            session = self.session
            session.open()
            counts = [f"{f}: {session.examine(f).exists} message(s)" for f in self.folders]
        except HubError as exc:
            return Health(ok=False, message=str(exc))
        return Health(ok=True, message=f"logged in to {session.host} as {session.user}; "
                                       + ", ".join(counts))

    def read(self, object: str, cursor: Cursor | None, *, incremental: bool,
             page_size: int) -> Iterator[Page]:
        """Pages of messages and deleted records (see reader.py for the cursor)."""
        self._check_object(object)
        yield from self._reader(page_size).pages(cursor, incremental=incremental)

    def fetch(self, object: str, external_id: str) -> NativeRecord | None:
        """One message as read() gives it; None when it is gone (or its folder renumbered)."""
        self._check_object(object)
        found = parse.split_id(external_id)
        if found is None:
            raise PermanentError(f"{external_id!r} is not an IMAP message id "
                                 "(<folder>:<uidvalidity>:<uid>)")
        folder, uidvalidity, uid = found
        if self.session.examine(folder).uidvalidity != uidvalidity:
            return None
        for _uid, record in self._reader(1).load(folder, uidvalidity, [uid]):
            return record
        return None

    def write(self, object: str, ops: Sequence[WriteOp]) -> list[WriteResult]:
        """IMAP is read-only here: every op fails in its result, saying so."""
        error = PermanentError(f"connection {self.connection.name}: the imap connector only "
                               "reads mail; make this system a flow's source, not a target")
        return [WriteResult(op.key, ok=False, error=error) for op in ops]

    def close(self) -> None:
        """Log out."""
        if self._session is not None:
            self._session.close()

    @property
    def bytes_received(self) -> int:
        """Bytes read from the server on the current connection (for tests and benches)."""
        return self._session.bytes_received if self._session is not None else 0

    def __repr__(self) -> str:
        return f"ImapConnector({self.connection.name!r}, folders={self.folders!r})"
