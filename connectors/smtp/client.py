"""One SMTP session (stdlib smtplib), and the one boundary where its errors are translated.

    4xx replies, refused or dropped connections, timeouts, DNS failures -> TransientError
    5xx replies (550 mailbox unknown, 552 too big, 554 rejected)       -> PermanentError
    535 and other refused logins                                       -> AuthError
    an untrusted certificate, no STARTTLS, no AUTH, TLS on a plain port -> PermanentError

Each message carries the server's reply in words ("smtp.example.com:587 answered 550 5.1.1
<bob@example.com>: Recipient address rejected"). No smtplib, ssl or socket exception
leaves this module.

`send` splits the DATA phase so the caller can record "sending" at the last moment: after
the message body has been transmitted and before the terminating "." that makes the server
accept it. Failures before that "." are certain non-deliveries (`NotSent`); a failure after
it is `MaybeSent`: the server may have kept the message (RFC 1047).
"""

from __future__ import annotations

import re
import smtplib
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from connectors.smtp.compose import Outgoing
from hub.errors import AuthError, HubError, PermanentError, SyncError, TransientError

Security = Literal["starttls", "ssl", "none"]
DEFAULT_PORTS: dict[str, int] = {"starttls": 587, "ssl": 465, "none": 25}
_DOT = re.compile(rb"(?m)^\.")


@dataclass(frozen=True)
class ServerConfig:
    """Where and how to connect; the password is read from the environment at login."""

    host: str
    port: int
    security: Security = "starttls"
    user: str | None = None
    password: Callable[[], str] | None = None
    timeout: float = 30.0
    tls_verify: bool = True
    ca_file: str | None = None
    helo: str | None = None

    @property
    def label(self) -> str:
        """host:port, for messages."""
        return f"{self.host}:{self.port}"


class NotSent(Exception):
    """The message certainly did not reach the server; `error` says why (and whether a retry
    may help). `alive` is False when the session cannot be used for the next message."""

    def __init__(self, error: SyncError, *, alive: bool = True) -> None:
        super().__init__(str(error))
        self.error = error
        self.alive = alive


class MaybeSent(Exception):
    """The connection broke after the end of the message was sent: it may have arrived."""


def _words(reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    return " ".join(text.split())


def _reply_error(label: str, code: int, reply: bytes | str, doing: str) -> SyncError:
    """A server reply code -> TransientError (4xx) or PermanentError (5xx and others)."""
    text = f"{label} answered {code} {_words(reply)} to {doing}"
    if code == 535 or code == 534 or code == 530:
        return AuthError(text, status=code)
    if 400 <= code < 500:
        return TransientError(text, status=code)
    return PermanentError(text, status=code)


def translate(exc: BaseException, label: str, doing: str) -> SyncError:
    """The boundary: any smtplib/ssl/socket exception -> a hub error with words."""
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return AuthError(f"{label} refused the login ({exc.smtp_code} "
                         f"{_words(exc.smtp_error)}): check the user and password settings",
                         status=exc.smtp_code)
    if isinstance(exc, smtplib.SMTPResponseException):
        return _reply_error(label, exc.smtp_code, exc.smtp_error, doing)
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return PermanentError(f"{label}: {exc} ({doing})")
    if isinstance(exc, ssl.SSLCertVerificationError):
        return PermanentError(f"{label}: the server's certificate is not trusted "
                              f"({exc.verify_message}); set ca_file to the certificate of the "
                              "authority that signed it")
    if isinstance(exc, ssl.SSLError) and "WRONG_VERSION_NUMBER" in str(exc):
        return PermanentError(f"{label} did not answer in TLS: check `security` (ssl is "
                              "usually port 465, starttls port 587)")
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return TransientError(f"{label} did not answer in time ({doing})")
    if isinstance(exc, socket.gaierror):
        return TransientError(f"cannot find the mail server {label}: {exc.strerror}")
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return TransientError(f"{label} closed the connection ({doing}): {exc}")
    if isinstance(exc, (OSError, smtplib.SMTPException)):
        detail = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        return TransientError(f"cannot talk to {label} ({doing}): {detail}")
    return TransientError(f"{label}: {type(exc).__name__}: {exc} ({doing})")


class SmtpSession:
    """A connected, (optionally) logged-in session; closed with close()."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.smtp: smtplib.SMTP | None = None
        self.tls = False
        self.logged_in = False

    def _context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=self.config.ca_file or None)
        if not self.config.tls_verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx

    def open(self) -> None:
        """Connect, EHLO, STARTTLS and log in as configured; raises SyncError."""
        cfg = self.config
        doing = "connecting"
        try:
            if cfg.security == "ssl":
                self.smtp = smtplib.SMTP_SSL(cfg.host, cfg.port, local_hostname=cfg.helo,
                                             timeout=cfg.timeout, context=self._context())
                self.tls = True
            else:
                self.smtp = smtplib.SMTP(cfg.host, cfg.port, local_hostname=cfg.helo,
                                         timeout=cfg.timeout)
            doing = "EHLO"
            self.smtp.ehlo()
            if cfg.security == "starttls":
                if not self.smtp.has_extn("starttls"):
                    raise PermanentError(f"{cfg.label} does not offer STARTTLS; Liaison will "
                                         "not send mail or passwords unencrypted (set "
                                         "security: ssl, or security: none for a relay on "
                                         "this machine)")
                doing = "STARTTLS"
                self.smtp.starttls(context=self._context())
                self.tls = True
                doing = "EHLO after STARTTLS"
                self.smtp.ehlo()
            if cfg.user:
                if not self.smtp.has_extn("auth"):
                    raise PermanentError(f"{cfg.label} offers no login (AUTH) on this "
                                         "connection; remove user/password, or use "
                                         "security: starttls or ssl")
                doing = f"the login of {cfg.user}"
                secret = cfg.password() if cfg.password else ""
                self.smtp.login(cfg.user, secret)
                self.logged_in = True
        except HubError:  # ours already (no STARTTLS, an unset password variable)
            self.close()
            raise
        except Exception as exc:  # noqa: BLE001 - the one translation boundary
            self.close()
            raise translate(exc, cfg.label, doing) from None

    @property
    def size_limit(self) -> int | None:
        """The largest message the server accepts (EHLO SIZE), when it says."""
        assert self.smtp is not None
        raw = self.smtp.esmtp_features.get("size", "").strip()
        return int(raw) if raw.isdigit() and int(raw) > 0 else None

    def offers(self, extension: str) -> bool:
        """Whether the server announced an ESMTP extension."""
        return self.smtp is not None and self.smtp.has_extn(extension)

    def noop(self) -> None:
        """A NOOP round trip (check())."""
        assert self.smtp is not None
        try:
            code, reply = self.smtp.noop()
        except Exception as exc:  # noqa: BLE001 - boundary
            raise translate(exc, self.config.label, "NOOP") from None
        if code != 250:
            raise _reply_error(self.config.label, code, reply, "NOOP")

    def _reset(self) -> bool:
        """RSET after a refused message; False when the session is no longer usable."""
        try:
            assert self.smtp is not None
            return self.smtp.rset()[0] == 250
        except Exception:  # noqa: BLE001 - a dead session is simply reopened
            return False

    def _refused(self, error: SyncError) -> NotSent:
        return NotSent(error, alive=self._reset())

    def send(self, out: Outgoing, before_end: Callable[[], None]) -> str:
        """Send one message; the server's acceptance reply.

        `before_end` is called after the body was transmitted and before the final "."
        (the caller records "sending" there); an exception from it aborts the message.
        Raises NotSent (certainly not delivered) or MaybeSent (may have been).
        """
        smtp, label = self.smtp, self.config.label
        assert smtp is not None
        limit = self.size_limit
        if limit is not None and len(out.data) > limit:
            raise NotSent(PermanentError(
                f"the email is {len(out.data):,} bytes; {label} accepts at most {limit:,} "
                "(EHLO SIZE)"))
        options: list[str] = []
        if out.needs_utf8:
            if not smtp.has_extn("smtputf8"):
                odd = [m.address for m in (out.sender, *out.recipients) if m.needs_utf8]
                raise NotSent(PermanentError(
                    f"the address {odd[0]} has non-ASCII letters before the @, which needs "
                    f"SMTPUTF8, and {label} does not offer it"))
            options.append("SMTPUTF8")
            if smtp.has_extn("8bitmime"):
                options.append("BODY=8BITMIME")
        if limit is not None:
            options.append(f"SIZE={len(out.data)}")
        doing = "MAIL FROM"
        try:
            code, reply = smtp.mail(out.sender.address, options)
            if code != 250:
                raise self._refused(_reply_error(label, code, reply,
                                                 f"MAIL FROM:<{out.sender.address}>"))
            doing = "RCPT TO"
            refused: list[tuple[str, int, bytes]] = []
            for address in out.envelope_to:
                code, reply = smtp.rcpt(address)
                if code not in (250, 251):
                    refused.append((address, code, reply))
            if refused:
                worst = max(refused, key=lambda r: r[1])
                told = "; ".join(f"{a}: {c} {_words(r)}" for a, c, r in refused)
                kind: type[SyncError] = TransientError if worst[1] < 500 else PermanentError
                raise self._refused(kind(f"{label} refused recipient(s), so nothing was "
                                         f"sent: {told}", status=worst[1]))
            doing = "DATA"
            smtp.putcmd("data")
            code, reply = smtp.getreply()
            if code != 354:
                raise self._refused(_reply_error(label, code, reply, "DATA"))
            body = _DOT.sub(b"..", out.data)
            if not body.endswith(b"\r\n"):
                body += b"\r\n"
            doing = "sending the message"
            smtp.send(body)
        except NotSent:
            raise
        except Exception as exc:  # noqa: BLE001 - boundary: nothing was accepted yet
            raise NotSent(translate(exc, label, doing), alive=False) from None
        try:
            before_end()
        except BaseException:
            self.close()  # the message must not be completed by a later command
            raise
        try:
            smtp.send(b".\r\n")
            code, reply = smtp.getreply()
        except Exception as exc:  # noqa: BLE001 - boundary: the end was (maybe) sent
            self.close()
            raise MaybeSent(str(translate(exc, label, "the end of the message"))) from None
        if code != 250:
            raise self._refused(_reply_error(label, code, reply, "the end of the message"))
        return f"{code} {_words(reply)}"

    def close(self) -> None:
        """QUIT politely, then drop the socket; never raises."""
        smtp, self.smtp = self.smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except Exception:  # noqa: BLE001 - closing must not mask the outcome
            smtp.close()
