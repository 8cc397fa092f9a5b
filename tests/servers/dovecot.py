"""A real Dovecot IMAP server on loopback, configured from scratch in a temporary folder.

    with Dovecot() as server:                  # IMAP (plain + STARTTLS) and IMAPS, free ports
        user = server.new_user()               # a fresh, empty mailbox (any name works)
        uid = server.append(user, "INBOX", raw_message_bytes)
        server.settings(user)                  # imap connector settings for that mailbox
        server.token(user)                     # an OAuth2 access token (XOAUTH2) for it

Every user logs in with `Dovecot.PASSWORD` (a static passdb), so each test takes a new
user name and gets an empty maildir: one server serves a whole session. XOAUTH2 goes
through Dovecot's oauth2 passdb, which asks a small introspection endpoint run here
(RFC 7662, POST token=...) whether a token is active and whose it is. The certificate is
self-signed for 127.0.0.1 and localhost; `ca_file` trusts it. `capability=` replaces
what the server advertises after log-in (e.g. without CONDSTORE and QRESYNC).

Runs as root (mail processes as the `dovecot` user, logins as `dovenull`, as the Debian
package sets them up) or as any other user (everything as that user). Without
/usr/sbin/dovecot the `dovecot` fixture skips, or fails when CI=true; CI installs it with
`apt-get install -y dovecot-imapd` (.ci/system-packages).
"""

from __future__ import annotations

import contextlib
import imaplib
import itertools
import json
import os
import pwd
import re
import secrets
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar, Self

import pytest

from connectors.imap.wire import mailbox_arg

DOVECOT = "/usr/sbin/dovecot"
HOST = "127.0.0.1"
START_TIMEOUT = 20.0  # seconds for the server to greet
_users = itertools.count(1)


def unavailable(what: str) -> None:
    """Skip the test, or fail it under CI=true (CI installs what is missing)."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(what)
    pytest.skip(what)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


class _Introspection(BaseHTTPRequestHandler):
    """RFC 7662 token introspection: {"active": true, "username": ...} for issued tokens."""

    tokens: ClassVar[dict[str, str]] = {}  # token -> user; each server gets its own dict

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        form = urllib.parse.parse_qs(self.rfile.read(length).decode())
        user = self.tokens.get((form.get("token") or [""])[0])
        body = json.dumps({"active": True, "username": user} if user else
                          {"active": False}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        """Quiet: pytest output is for failures."""


class Dovecot:
    """One Dovecot instance (see the module docstring)."""

    PASSWORD = "imap-test-password"

    def __init__(self, *, capability: str | None = None) -> None:
        self.capability = capability
        # A short path under /tmp: Dovecot's unix sockets live in base_dir (108-byte limit)
        # and the unprivileged mail user must be able to reach the maildirs.
        self.root = Path(tempfile.mkdtemp(prefix="liaison-dovecot-"))
        self.root.chmod(0o755)
        self.imap_port = 0
        self.imaps_port = 0
        self.ca_file = self.root / "cert.pem"
        self._proc: subprocess.Popen[bytes] | None = None
        self._http: ThreadingHTTPServer | None = None
        self._tokens: dict[str, str] = {}

    # -- lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Write the config, start `dovecot -F` and wait for its greeting."""
        self._certificate()
        handler = type("Introspection", (_Introspection,), {"tokens": self._tokens})
        self._http = ThreadingHTTPServer((HOST, 0), handler)
        threading.Thread(target=self._http.serve_forever, daemon=True).start()
        for attempt in range(3):  # a free port can be taken between choosing and binding
            self.imap_port, self.imaps_port = _free_port(), _free_port()
            self._write_config()
            log = (self.root / "master.log").open("ab")
            self._proc = subprocess.Popen([DOVECOT, "-F", "-c", str(self.root / "dovecot.conf")],
                                          stdout=log, stderr=subprocess.STDOUT)
            log.close()
            if self._wait_ready():
                return
            self._stop_process()
            if "in use" not in self.log() or attempt == 2:
                raise RuntimeError(f"dovecot did not start:\n{self.log()[-3000:]}")

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._proc is None or self._proc.poll() is not None:
                return False
            with (contextlib.suppress(OSError),
                  socket.create_connection((HOST, self.imap_port), timeout=2) as sock):
                if sock.recv(100).startswith(b"* OK"):
                    return True
            time.sleep(0.1)
        return False

    def _stop_process(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)

    def stop(self) -> None:
        """Stop the server and the introspection endpoint; remove the folder."""
        self._stop_process()
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None
        shutil.rmtree(self.root, ignore_errors=True)

    def log(self) -> str:
        """Dovecot's log so far (for failure messages)."""
        parts = []
        for name in ("master.log", "dovecot.log"):
            path = self.root / name
            if path.exists():
                parts.append(path.read_text(errors="replace"))
        return "\n".join(parts)

    # -- configuration ---------------------------------------------------------------------

    def _certificate(self) -> None:
        if shutil.which("openssl") is None:
            unavailable("openssl is not installed (apt-get install openssl)")
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
             "-keyout", str(self.root / "key.pem"), "-out", str(self.ca_file), "-days", "2",
             "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
            check=True, capture_output=True, timeout=60)

    def _accounts(self) -> tuple[str, str, str, int]:
        """(internal user, login user, mail user, its uid) for the running identity."""
        if os.geteuid() != 0:
            me = pwd.getpwuid(os.geteuid()).pw_name
            return me, me, me, os.geteuid()
        def exists(name: str) -> bool:
            try:
                pwd.getpwnam(name)
            except KeyError:
                return False
            return True
        internal = "dovecot" if exists("dovecot") else "nobody"
        login = "dovenull" if exists("dovenull") else "nobody"
        return internal, login, internal, pwd.getpwnam(internal).pw_uid

    def _write_config(self) -> None:
        internal, login, mail_user, mail_uid = self._accounts()
        mail = self.root / "mail"
        mail.mkdir(exist_ok=True)
        if os.geteuid() == 0:
            os.chown(mail, mail_uid, pwd.getpwnam(mail_user).pw_gid)
        assert self._http is not None
        (self.root / "oauth2.conf.ext").write_text(
            "introspection_mode = post\n"
            f"introspection_url = http://{HOST}:{self._http.server_address[1]}/introspect\n"
            "username_attribute = username\nactive_attribute = active\nactive_value = true\n")
        capability = (f"protocol imap {{\n  imap_capability = {self.capability}\n}}\n"
                      if self.capability else "")
        r = self.root
        (r / "dovecot.conf").write_text(f"""\
instance_name = {r.name}
base_dir = {r}/run
state_dir = {r}/state
log_path = {r}/dovecot.log
listen = {HOST}
protocols = imap
ssl = yes
ssl_cert = <{self.ca_file}
ssl_key = <{r}/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login xoauth2 oauthbearer
auth_failure_delay = 0
default_internal_user = {internal}
default_login_user = {login}
first_valid_uid = {1 if mail_uid else 0}
mail_location = maildir:{mail}/%u
mail_fsync = never
imap_fetch_failure = no-after
passdb {{
  driver = static
  mechanisms = plain login
  args = password={self.PASSWORD} nodelay=y
}}
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {r}/oauth2.conf.ext
}}
userdb {{
  driver = static
  args = uid={mail_user} gid={pwd.getpwnam(mail_user).pw_gid} home={mail}/%u
}}
# No growing delays after failed log-ins: tests fail log-ins on purpose.
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service imap-login {{
  inet_listener imap {{
    address = {HOST}
    port = {self.imap_port}
  }}
  inet_listener imaps {{
    address = {HOST}
    port = {self.imaps_port}
    ssl = yes
  }}
}}
{capability}""")
        for sub in ("run", "state"):
            (r / sub).mkdir(exist_ok=True)

    # -- accounts and mail -----------------------------------------------------------------

    def new_user(self, stem: str = "user") -> str:
        """A user name nobody has used on this server: its mailbox starts empty."""
        return f"{stem}{next(_users)}-{secrets.token_hex(3)}"

    def token(self, user: str) -> str:
        """A fresh OAuth2 access token that the server accepts for `user`."""
        value = secrets.token_urlsafe(24)
        self._tokens[value] = user
        return value

    def settings(self, user: str, **over: Any) -> dict[str, Any]:
        """imap connector settings for `user` over IMAPS, trusting the test certificate."""
        settings: dict[str, Any] = {"host": HOST, "port": self.imaps_port, "security": "ssl",
                                    "ca_file": str(self.ca_file), "user": user,
                                    "password": self.PASSWORD}
        settings.update(over)
        return settings

    @contextlib.contextmanager
    def session(self, user: str) -> Iterator[imaplib.IMAP4_SSL]:
        """A logged-in imaplib session (the test's own, to deliver and change mail)."""
        ctx = ssl.create_default_context(cafile=str(self.ca_file))
        imap = imaplib.IMAP4_SSL(HOST, self.imaps_port, ssl_context=ctx, timeout=15)
        try:
            imap.login(user, self.PASSWORD)
            yield imap
        finally:
            with contextlib.suppress(imaplib.IMAP4.error, OSError):
                imap.logout()

    def append(self, user: str, folder: str, message: bytes, flags: str = "") -> int:
        """APPEND a message (creating the folder if needed); its UID."""
        with self.session(user) as imap:
            return append(imap, folder, message, flags)

    def uidvalidity(self, user: str, folder: str) -> int:
        """The folder's current UIDVALIDITY."""
        with self.session(user) as imap:
            typ, data = imap.status(mailbox_arg(folder), "(UIDVALIDITY)")
            assert typ == "OK", data
            found = re.search(rb"UIDVALIDITY (\d+)", data[0] or b"")
            assert found, data
            return int(found.group(1))


def append(imap: imaplib.IMAP4, folder: str, message: bytes, flags: str = "") -> int:
    """APPEND through an open session, creating the folder first if needed; the UID."""
    quoted = mailbox_arg(folder)
    typ, data = imap.append(quoted, f"({flags})" if flags else None, None, message)
    if typ != "OK":
        imap.create(quoted)
        typ, data = imap.append(quoted, f"({flags})" if flags else None, None, message)
    assert typ == "OK", data
    found = re.search(rb"APPENDUID \d+ (\d+)", data[0] or b"")
    assert found, f"no APPENDUID in {data!r}"
    return int(found.group(1))


def dovecot_or_skip() -> None:
    """Skip (fail when CI=true) without the Dovecot binary."""
    if not Path(DOVECOT).exists():
        unavailable(f"Dovecot is not installed ({DOVECOT} is missing); install it with: "
                    "apt-get install -y dovecot-imapd")


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Dovecot]:
    """One Dovecot for the session; each test takes its own user (`new_user()`)."""
    dovecot_or_skip()
    with Dovecot() as server:
        yield server


@pytest.fixture(scope="session")
def dovecot_plain() -> Iterator[Dovecot]:
    """A Dovecot that advertises neither CONDSTORE nor QRESYNC after log-in."""
    dovecot_or_skip()
    with Dovecot(capability="IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ "
                            "UIDPLUS NAMESPACE CHILDREN") as server:
        yield server
