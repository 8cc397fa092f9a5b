"""A real SMTP server on loopback (aiosmtpd) that records what arrives, for the smtp tests.

    with SmtpServer() as server:                    # 127.0.0.1, a free port
        ...                                         # server.port, server.messages
    with SmtpServer(tls=cert, users={"u": "pw"}):   # STARTTLS and AUTH (over TLS only)
    with SmtpServer(tls=cert, implicit_tls=True):   # SMTPS (the `ssl` security setting)

Behaviour can be scripted per test: `refuse_rcpt[address] = "550 5.1.1 No such user"`,
`data_replies` (the next final replies to DATA, e.g. "451 4.3.0 Try again"), and
`on_data(received)` which runs after a message has fully arrived and before the server
answers (a test kills its client there to cut the connection between "." and 250).
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import os
import shutil
import ssl
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Self, cast

import pytest

HOST = "127.0.0.1"


def _unavailable(what: str) -> None:
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(what)
    pytest.skip(what)


def aiosmtpd_or_skip() -> None:
    """Skip (fail in CI) when aiosmtpd is not installed."""
    try:
        import aiosmtpd  # noqa: F401
    except ImportError:
        _unavailable("aiosmtpd is not installed: python3 -m pip install -e '.[test]'")


@dataclass(frozen=True)
class Certificate:
    """A self-signed certificate for 127.0.0.1/localhost, and its key."""

    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        """A TLS server context with this certificate."""
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.cert, self.key)
        return ctx


def make_certificate(folder: Path) -> Certificate:
    """Create a self-signed certificate with openssl (skips, or fails in CI, without it)."""
    if shutil.which("openssl") is None:
        _unavailable("openssl is not installed (apt-get install openssl)")
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
         "-out", str(cert), "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True, timeout=60)
    return Certificate(cert, key)


@dataclass(frozen=True)
class Received:
    """One message as the server received it."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    mail_options: tuple[str, ...]
    authenticated_as: str | None
    tls: bool

    @property
    def message(self) -> EmailMessage:
        """The message parsed (headers decoded)."""
        parsed = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed

    @property
    def message_id(self) -> str:
        """The Message-ID header."""
        return str(self.message["Message-ID"])

    def text(self) -> str:
        """The plain-text body, decoded, with line ends as \n."""
        part = self.message.get_body(("plain",))
        assert part is not None, "no text/plain part"
        return str(part.get_content()).replace("\r\n", "\n")

    def html(self) -> str | None:
        """The HTML body, decoded (line ends as \n), if any."""
        part = self.message.get_body(("html",))
        if part is None:
            return None
        return str(part.get_content()).replace("\r\n", "\n")


@dataclass
class Recorder:
    """The aiosmtpd handler: records messages, answers as scripted."""

    messages: list[Received] = field(default_factory=list)
    refuse_rcpt: dict[str, str] = field(default_factory=dict)
    data_replies: list[str] = field(default_factory=list)
    on_data: Callable[[Received], None] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        """Accept the recipient unless the test scripted a refusal for it."""
        refusal = self.refuse_rcpt.get(address.lower())
        if refusal:
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """Record the message (unless a scripted reply refuses it), then answer."""
        got = Received(envelope.mail_from, tuple(envelope.rcpt_tos),
                       bytes(envelope.original_content or envelope.content),
                       tuple(envelope.mail_options),
                       session.auth_data.login.decode() if session.auth_data else None,
                       session.ssl is not None
                       or server.transport.get_extra_info("ssl_object") is not None)
        with self.lock:
            reply = self.data_replies.pop(0) if self.data_replies else None
            if reply is None or reply.startswith("2"):
                self.messages.append(got)
        if self.on_data is not None:
            self.on_data(got)
        return reply or "250 2.0.0 Ok: queued"


class SmtpServer:
    """aiosmtpd on 127.0.0.1 and a free port, in a thread; stop() (or `with`) ends it."""

    def __init__(self, *, tls: Certificate | None = None, implicit_tls: bool = False,
                 users: dict[str, str] | None = None, size_limit: int | None = None,
                 smtputf8: bool = True) -> None:
        aiosmtpd_or_skip()
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult, LoginPassword

        class _Controller(Controller):
            """Binds port 0 and learns the port the system picked."""

            def _trigger_server(self) -> None:
                server = cast(asyncio.Server, self.server)
                self.port = server.sockets[0].getsockname()[1]
                super()._trigger_server()  # type: ignore[no-untyped-call]

        self.recorder = Recorder()
        self.users = dict(users or {})

        def authenticator(server: Any, session: Any, envelope: Any, mechanism: str,
                          auth_data: Any) -> AuthResult:
            ok = isinstance(auth_data, LoginPassword) and self.users.get(
                auth_data.login.decode()) == auth_data.password.decode()
            return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

        kwargs: dict[str, Any] = {"enable_SMTPUTF8": smtputf8, "data_size_limit": size_limit,
                                  "timeout": 30}
        if tls is not None and implicit_tls:
            kwargs["ssl_context"] = tls.server_context()
        elif tls is not None:
            kwargs["tls_context"] = tls.server_context()
        if users is not None:
            kwargs["authenticator"] = authenticator
            kwargs["auth_required"] = True
        self.controller = _Controller(self.recorder, hostname=HOST, port=0, **kwargs)
        self.host = HOST
        self.port = 0

    def start(self) -> Self:
        """Start serving; the port is known afterwards."""
        self.controller.start()
        self.port = int(self.controller.port)
        return self

    def stop(self) -> None:
        """Stop serving (idempotent)."""
        if self.controller._thread is not None:
            self.controller.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def messages(self) -> list[Received]:
        """Every message accepted so far."""
        with self.recorder.lock:
            return list(self.recorder.messages)

    def settings(self, **extra: Any) -> dict[str, Any]:
        """Connection settings for the smtp connector pointing here (no TLS by default)."""
        base: dict[str, Any] = {"host": self.host, "port": self.port, "security": "none",
                                "from": "Accounts <accounts@example.com>", "timeout": 10}
        base.update(extra)
        return base
