"""The smtp connector: sends one email per record written, at most once (see __init__.py)."""

from __future__ import annotations

import logging
import shlex
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import ClassVar, cast

from connectors.smtp.client import (
    DEFAULT_PORTS,
    MaybeSent,
    NotSent,
    Security,
    ServerConfig,
    SmtpSession,
)
from connectors.smtp.compose import (
    ComposeError,
    Defaults,
    compose,
    message_token,
    normalise_message_id,
)
from connectors.smtp.sentlog import Entry, SentLog, sent_log_location
from connectors.smtp.templates import BUILTIN_DIR, TemplateFolder
from hub.config.model import ConnectionConfig, Secret
from hub.connector import (
    BaseConnector,
    Capabilities,
    Cursor,
    EntitySupport,
    Health,
    Page,
    WriteOp,
    WriteResult,
)
from hub.errors import AuthError, ConnectorError, HubError, PermanentError, TransientError

ENTITIES = ("message", "invoice", "contact", "company", "deal", "payment", "product",
            "project", "task")
OBJECT = "messages"
SECURITY = ("starttls", "ssl", "none")

logger = logging.getLogger(__name__)


class SmtpConnector(BaseConnector):
    """Sends records as emails through an SMTP server; write-only, never sends twice."""

    name: ClassVar[str] = "smtp"
    capabilities: ClassVar[Capabilities] = Capabilities(
        # Any record can become an email through a mapping and a template (an overdue
        # invoice, a new contact...); a mailbox is read with the imap connector.
        entities={e: EntitySupport(object=OBJECT, read=False, write=True, incremental=False,
                                   deletes=False, archive=False) for e in ENTITIES},
        batch_size=20,
        settings={
            "host": "the SMTP server's name, e.g. smtp.example.com",
            "port": "its port (default: 587 for starttls, 465 for ssl, 25 for none)",
            "security": "starttls (default), ssl, or none (only for a relay on this machine)",
            "user": "login name (leave out for a server that needs no login)",
            "password": "login password, as ${ENV}",
            "from": "the default sender, e.g. 'Accounts <accounts@example.com>'",
            "reply_to": "a default Reply-To address",
            "bcc": "an address that gets a copy of every email (to see what was sent)",
            "templates_dir": "the folder of email templates (<name>.txt, <name>.html); "
                             "relative to the config file; the built-in ones are used "
                             "after it",
            "sent_log": "where what was sent is remembered: a file (default "
                        ".liaison-sent/<system>.sqlite beside the config), or a database "
                        "URL shared by workers on several machines, e.g. "
                        "postgresql://liaison@db.internal/liaison",
            "message_id_domain": "the domain in generated Message-IDs (default: the "
                                 "sender's domain)",
            "max_message_bytes": "the largest email to send, in bytes (default 10000000; "
                                 "the server's own limit also applies)",
            "timeout": "seconds to wait for the server (default 30)",
            "tls_verify": "check the server's certificate (default true)",
            "ca_file": "a CA certificate file to trust (a company's own CA)",
            "helo": "the name to greet the server with (default: this machine's name)",
        },
        secret_settings=frozenset({"password"}),
    )

    def __init__(self, connection: ConnectionConfig) -> None:
        super().__init__(connection)
        security = str(connection.setting("security", "starttls") or "starttls").lower()
        if security not in SECURITY:
            raise self._bad("security", f"must be one of {', '.join(SECURITY)}, "
                                        f"got {security!r}")
        self.security = cast(Security, security)
        self.max_bytes = int(self.number_setting("max_message_bytes", 10_000_000))
        self.timeout = self.number_setting("timeout", 30)
        port = self.number_setting("port", DEFAULT_PORTS[security])
        if not port.is_integer() or not 0 < port < 65536:
            raise self._bad("port", f"must be a port number, got {port}")
        self.port = int(port)
        base = Path(connection.base_dir)
        folders = []
        configured = connection.setting("templates_dir")
        if configured:
            folder = Path(str(configured)).expanduser()
            folders.append(folder if folder.is_absolute() else base / folder)
        folders.append(BUILTIN_DIR)
        self.templates = TemplateFolder(folders)
        self.log = SentLog(sent_log_location(connection))
        self._session: SmtpSession | None = None

    def _bad(self, key: str, message: str) -> ConnectorError:
        where = self.connection.where_of(key)
        at = f" ({where})" if where else ""
        return ConnectorError(f"connection {self.connection.name}{at}: setting {key!r} "
                              f"{message}")

    def _flag(self, key: str, default: bool) -> bool:
        value = self.connection.setting(key, default)
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "yes", "1", "on"):
            return True
        if text in ("false", "no", "0", "off"):
            return False
        raise self._bad(key, f"must be true or false, got {value!r}")

    def _server(self) -> ServerConfig:
        conn = self.connection
        raw_password = conn.settings.get("password")
        password = None
        if raw_password is not None:
            # Revealed at login only, never kept.
            def password() -> str:
                return str(raw_password.reveal() if isinstance(raw_password, Secret)
                           else raw_password)
        user = conn.setting("user")
        ca_file = conn.setting("ca_file")
        if ca_file and not Path(str(ca_file)).is_absolute():
            ca_file = str(Path(conn.base_dir) / str(ca_file))
        helo = conn.setting("helo")
        return ServerConfig(
            host=self.required_setting("host"), port=self.port, security=self.security,
            user=str(user) if user else None, password=password, timeout=self.timeout,
            tls_verify=self._flag("tls_verify", True),
            ca_file=str(ca_file) if ca_file else None, helo=str(helo) if helo else None)

    def _defaults(self) -> Defaults:
        def text(key: str) -> str | None:
            value = self.connection.setting(key)
            return str(value) if value else None
        return Defaults(sender=text("from"), reply_to=text("reply_to"), bcc=text("bcc"),
                        message_id_domain=text("message_id_domain"), max_bytes=self.max_bytes)

    # -- the contract --------------------------------------------------------------------

    def check(self) -> Health:
        """Connect, EHLO, STARTTLS, log in, NOOP, QUIT; also the templates and the sent log."""
        try:
            session = SmtpSession(self._server())
            session.open()
        except AuthError as exc:
            return Health(ok=False, message=f"the mail server refused the login: {exc}")
        except HubError as exc:
            return Health(ok=False, message=str(exc))
        try:
            session.noop()
            features = [name for name in ("starttls", "smtputf8", "8bitmime")
                        if session.offers(name)]
            limit = session.size_limit
        except HubError as exc:
            return Health(ok=False, message=str(exc))
        finally:
            session.close()
        problems = self.templates.problems()
        try:
            self.log.entries()
        except Exception as exc:  # noqa: BLE001 - any failure means the log is unusable
            problems.append(f"cannot use the sent log {self.log.where}: {exc}")
        if not self.connection.setting("from"):
            problems.append("setting 'from' is not set: every record must then map `from`")
        how = "TLS" if session.tls else "no encryption"
        who = f", logged in as {session.config.user}" if session.logged_in else ""
        size = f", messages up to {limit:,} bytes" if limit else ""
        extras = f" ({', '.join(features)})" if features else ""
        message = f"{session.config.label} answered: {how}{who}{size}{extras}"
        if problems:
            return Health(ok=False, message=message + "; but " + "; ".join(problems))
        return Health(ok=True, message=message)

    def read(self, object: str, cursor: Cursor | None, *, incremental: bool,
             page_size: int) -> Iterator[Page]:
        """SMTP only sends; reading a mailbox is the imap connector's job."""
        raise PermanentError(f"system {self.connection.name}: the smtp connector only sends "
                             "email; to read a mailbox use the imap connector")

    def write(self, object: str, ops: Sequence[WriteOp]) -> list[WriteResult]:
        """Send each create (at most once, see __init__.py); update/archive/delete are ok
        and send nothing, since an email cannot be changed or recalled."""
        results: list[WriteResult] = []
        try:
            for i, op in enumerate(ops):
                try:
                    results.append(self._write_one(op))
                except TransientError as exc:
                    # The server went away: what was sent stays reported ok, the rest
                    # were not tried and are retried later.
                    results.extend(self._fail(o, exc) for o in ops[i:])
                    break
        finally:
            self._close_session()
        return results

    def close(self) -> None:
        """Close the session and the sent log; harmless twice."""
        self._close_session()
        self.log.close()

    # -- one op --------------------------------------------------------------------------

    def _token(self, op: WriteOp) -> str:
        mid = op.record.get("message_id") if isinstance(op.record, dict) else None
        if mid not in (None, ""):
            # The record names its own Message-ID: that is its identity.
            return message_token(self.connection.name,
                                 "mid:" + normalise_message_id(mid, "message_id"), None)
        identity = f"record:{op.canonical_id}" if op.canonical_id else f"key:{op.key}"
        template = op.record.get("template") if isinstance(op.record, dict) else None
        return message_token(self.connection.name, identity,
                             template if isinstance(template, str) else None)

    def _ok(self, op: WriteOp, message_id: str) -> WriteResult:
        return WriteResult(op.key, True, external_id=message_id,
                           record={**op.record, "message_id": message_id})

    def _fail(self, op: WriteOp, error: PermanentError | TransientError) -> WriteResult:
        return WriteResult(op.key, False, error=error)

    def _unsure(self, entry: Entry) -> PermanentError:
        command = (f"python -m connectors.smtp.sentlog {shlex.quote(self.log.where)} "
                   f"sent|unsent {shlex.quote(entry.message_id)}")
        return PermanentError(
            f"an earlier attempt to send {entry.message_id} to {entry.recipients} (started "
            f"{entry.started_at}) was cut off after the whole message had gone to the mail "
            "server, so it may have arrived. It is not sent again on its own, to avoid a "
            "duplicate. Check the recipient's mailbox (or the Bcc copy), then run: "
            f"{command}, and replay this dead letter")

    def _write_one(self, op: WriteOp) -> WriteResult:
        if op.action != "create":
            # An email cannot be changed or recalled: the link keeps pointing at the one
            # that was sent, and nothing is sent again.
            return WriteResult(op.key, True, external_id=op.external_id,
                               record=dict(op.record) if op.record else None)
        if not isinstance(op.record, dict):
            return self._fail(op, PermanentError(f"expected a record (an object), got "
                                                 f"{op.record!r}"))
        try:
            token = self._token(op)
        except ComposeError as exc:
            return self._fail(op, PermanentError(str(exc)))
        entry = self.log.get(token)
        if entry is not None:
            return self._ok(op, entry.message_id) if entry.status == "sent" \
                else self._fail(op, self._unsure(entry))
        try:
            out = compose(op.record, token=token, defaults=self._defaults(),
                          templates=self.templates)
        except ComposeError as exc:
            return self._fail(op, PermanentError(str(exc)))
        session = self._open_session()

        def mark_sending() -> None:
            if not self.log.begin(token, out.message_id, out.envelope_to, out.subject):
                raise _AlreadyLogged()

        try:
            reply = session.send(out, mark_sending)
        except _AlreadyLogged:
            self._session = None
            entry = self.log.get(token)
            if entry is not None and entry.status == "sent":
                return self._ok(op, entry.message_id)
            return self._fail(op, self._unsure(entry) if entry else TransientError(
                f"{out.message_id}: another process is sending it right now"))
        except NotSent as exc:
            if not exc.alive:
                self._session = None
            # The "sending" mark may have been written just before a definite refusal.
            self.log.forget(token)
            if isinstance(exc.error, AuthError):
                raise exc.error from None  # about the connection: every record would fail
            error = exc.error
            assert isinstance(error, (PermanentError, TransientError))
            return self._fail(op, error)
        except MaybeSent as exc:
            self._session = None
            entry = self.log.get(token)
            assert entry is not None
            return self._fail(op, PermanentError(f"{exc}. {self._unsure(entry)}"))
        try:
            self.log.sent(token, reply)
        except TransientError as exc:
            # The server accepted it: report it sent, so the engine links the record and
            # never retries it. The log keeps "sending", which only matters to a retry.
            logger.warning("%s was sent, but the sent log could not record it: %s",
                        out.message_id, exc)
        return self._ok(op, out.message_id)

    # -- the session ---------------------------------------------------------------------

    def _open_session(self) -> SmtpSession:
        """The write call's session, (re)opened on demand; SyncError if the server cannot be
        reached or refuses us (about the connection, so raised for the whole call)."""
        if self._session is None:
            session = SmtpSession(self._server())
            session.open()
            self._session = session
        return self._session

    def _close_session(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            session.close()


class _AlreadyLogged(Exception):
    """Another attempt logged this message between our look-up and our send."""
