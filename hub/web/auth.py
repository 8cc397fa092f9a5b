"""Who may use the dashboard and its API, and proof that an action came from our own page.

Credentials come from the environment, never from the config file:

    HUB_DASHBOARD_TOKEN        a long random token: `Authorization: Bearer <token>` on the
                               API, or typed into the login form
    HUB_DASHBOARD_USER         a user name and password for the login form
    HUB_DASHBOARD_PASSWORD
    HUB_SECRET_KEY             signs session cookies; without it a random key is made per
                               process (sessions end when `hub serve` restarts)

The login form sets a signed session cookie (HMAC-SHA256; HttpOnly, SameSite=Strict,
Secure over https) that carries a per-session CSRF token. Every form that changes something
posts that token back; API calls with a bearer token need none, since a browser never adds
that header to a request another site makes. A POST whose Origin is another site is
refused either way. Its signing key is derived from the secret key and the credentials, so
changing a credential ends every session. Every comparison is constant-time.

`--no-auth` (loopback only) serves without login: a browser still gets an anonymous session
for the CSRF token, the API's POSTs must be JSON (which another site cannot send without a
CORS preflight the hub never grants), and a Host header that is not a loopback name is
refused (so a DNS-rebinding page cannot reach it).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson
from starlette.requests import Request

ENV_TOKEN = "HUB_DASHBOARD_TOKEN"
ENV_USER = "HUB_DASHBOARD_USER"
ENV_PASSWORD = "HUB_DASHBOARD_PASSWORD"
ENV_SECRET = "HUB_SECRET_KEY"
SESSION_COOKIE = "hub_session"
FLASH_COOKIE = "hub_flash"
SESSION_SECONDS = 12 * 3600
FLASH_SECONDS = 120
MIN_TOKEN = 16
MIN_PASSWORD = 8
FORM_MAX = 64 * 1024  # bytes of a form body; ours are a few hundred
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})

NO_CREDENTIALS = (
    f"The dashboard needs a credential: set {ENV_TOKEN} (a long random value, e.g. from "
    "`python3 -c 'import secrets; print(secrets.token_urlsafe(32))'`) or "
    f"{ENV_USER} and {ENV_PASSWORD} in the environment before `hub serve`. To try it on "
    "this machine only, `hub serve --no-auth` serves it without login on 127.0.0.1.")


def is_loopback(host: str) -> bool:
    """Whether `host` (a name or an address) only ever means this machine."""
    h = host.strip().lower()
    if h in LOOPBACK_NAMES:
        return True
    return h.startswith("127.") and all(p.isdigit() for p in h.split("."))


@dataclass(frozen=True)
class AuthConfig:
    """The credentials the dashboard accepts (all None with `--no-auth`)."""

    token: str | None = None
    user: str | None = None
    password: str | None = None
    secret_key: bytes = b""
    enabled: bool = True

    @classmethod
    def from_env(cls, environ: Mapping[str, str], *, no_auth: bool = False,
                 host: str = "127.0.0.1") -> AuthConfig:
        """Read the credentials; ValueError with what to set when they are missing or weak.

        `no_auth` is refused unless the server listens on a loopback address only.
        """
        key = environ.get(ENV_SECRET, "").encode() or secrets.token_bytes(32)
        if no_auth:
            if not is_loopback(host):
                raise ValueError(f"--no-auth serves the dashboard without login, so it is "
                                 f"only allowed on 127.0.0.1, not on --host {host}; set "
                                 f"{ENV_TOKEN} instead")
            return cls(secret_key=key, enabled=False)
        token = environ.get(ENV_TOKEN) or None
        user = environ.get(ENV_USER) or None
        password = environ.get(ENV_PASSWORD) or None
        if token is None and user is None and password is None:
            raise ValueError(NO_CREDENTIALS)
        if (user is None) != (password is None):
            missing = ENV_PASSWORD if password is None else ENV_USER
            raise ValueError(f"{ENV_USER} and {ENV_PASSWORD} go together: {missing} is not "
                             "set")
        if token is not None and len(token) < MIN_TOKEN:
            raise ValueError(f"{ENV_TOKEN} is too short ({len(token)} characters): use at "
                             f"least {MIN_TOKEN} random characters")
        if password is not None and len(password) < MIN_PASSWORD:
            raise ValueError(f"{ENV_PASSWORD} is too short: use at least {MIN_PASSWORD} "
                             "characters")
        return cls(token, user, password, key, True)

    def hidden_values(self) -> list[str]:
        """Values that must never appear in a response."""
        return [v for v in (self.token, self.password) if v]


@dataclass(frozen=True)
class Session:
    """A signed-in browser: who, its CSRF token, until when."""

    subject: str  # "token", the user name, or "anonymous" with --no-auth
    csrf: str
    expires: int


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


class Auth:
    """Checks credentials, signs and reads cookies, and guards POSTs."""

    def __init__(self, config: AuthConfig, *, public_url: str | None = None) -> None:
        self.config = config
        self.public_url = public_url
        # The credentials are mixed into the signing key: change one and old cookies die.
        material = b"\0".join(v.encode() for v in (config.token or "", config.user or "",
                                                   config.password or ""))
        self._key = hmac.new(config.secret_key, b"liaison-session\0" + material,
                             hashlib.sha256).digest()

    # -- signed values -----------------------------------------------------------------

    def sign(self, payload: dict[str, Any]) -> str:
        """`payload` as base64 JSON plus its HMAC."""
        body = _b64(orjson.dumps(payload))
        mac = _b64(hmac.new(self._key, body.encode(), hashlib.sha256).digest())
        return f"{body}.{mac}"

    def unsign(self, value: str | None) -> dict[str, Any] | None:
        """The payload of a value made by `sign`, or None when forged, altered or garbage."""
        if not value or value.count(".") != 1:
            return None
        body, mac = value.split(".")
        want = _b64(hmac.new(self._key, body.encode(), hashlib.sha256).digest())
        if not _same(mac, want):
            return None
        try:
            data = orjson.loads(_unb64(body))
        except (ValueError, orjson.JSONDecodeError):
            return None
        return data if isinstance(data, dict) else None

    # -- sessions ----------------------------------------------------------------------

    def new_session(self, subject: str) -> tuple[Session, str]:
        """A fresh session and its cookie value."""
        session = Session(subject, secrets.token_urlsafe(32), int(time.time()) + SESSION_SECONDS)
        return session, self.sign({"s": session.subject, "c": session.csrf,
                                   "e": session.expires})

    def session(self, request: Request) -> Session | None:
        """The request's valid, unexpired session, if any."""
        data = self.unsign(request.cookies.get(SESSION_COOKIE))
        if data is None:
            return None
        try:
            session = Session(str(data["s"]), str(data["c"]), int(data["e"]))
        except (KeyError, TypeError, ValueError):
            return None
        if session.expires < time.time():
            return None
        if self.config.enabled == (session.subject == "anonymous"):
            return None  # an anonymous cookie from a --no-auth run is no login
        return session

    def bearer_ok(self, request: Request) -> bool:
        """Whether the request carries `Authorization: Bearer <the token>`."""
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        token = self.config.token
        return bool(token) and scheme.lower() == "bearer" and _same(value.strip(), token or "")

    def check_login(self, form: Mapping[str, str]) -> str | None:
        """The session subject when the login form's credentials are right, else None.

        Both comparisons of user and password always run, so timing says nothing about
        which of them was wrong."""
        cfg = self.config
        token = form.get("token", "")
        if cfg.token and token:
            return "token" if _same(token, cfg.token) else None
        if cfg.user and cfg.password:
            user_ok = _same(form.get("user", ""), cfg.user)
            password_ok = _same(form.get("password", ""), cfg.password)
            return cfg.user if user_ok and password_ok else None
        return None

    def cookie_args(self, request: Request) -> dict[str, Any]:
        """Attributes every cookie we set carries."""
        https = request.url.scheme == "https" or (self.public_url or "").startswith("https:")
        return {"httponly": True, "samesite": "strict", "secure": https, "path": "/"}

    # -- what may pass -----------------------------------------------------------------

    def host_ok(self, request: Request) -> bool:
        """With --no-auth only loopback Host names are answered (DNS rebinding)."""
        if self.config.enabled:
            return True
        try:
            host = urlsplit("//" + (request.headers.get("host") or "")).hostname or ""
        except ValueError:
            return False
        return is_loopback(host)

    def foreign_origin(self, request: Request) -> bool:
        """Whether a POST comes from another site (Origin or Sec-Fetch-Site say so)."""
        origin = request.headers.get("origin")
        if origin and origin != "null":
            allowed = {f"{request.url.scheme}://{request.url.netloc}"}
            if self.public_url:
                parts = urlsplit(self.public_url)
                allowed.add(f"{parts.scheme}://{parts.netloc}")
            if origin.rstrip("/").lower() not in {a.lower() for a in allowed}:
                return True
        return request.headers.get("sec-fetch-site") in ("cross-site", "same-site")

    @staticmethod
    def csrf_ok(session: Session | None, sent: str | None) -> bool:
        """Whether a form's CSRF token is the session's."""
        return session is not None and bool(sent) and _same(sent or "", session.csrf)


async def read_form(request: Request) -> dict[str, str] | None:
    """An urlencoded form body as a dict (first value of each field); None when the body
    is not such a form or is too large."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded":
        return None
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > FORM_MAX:
            return None
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True)
    except (UnicodeDecodeError, ValueError):
        return None
    out: dict[str, str] = {}
    for k, v in pairs:
        out.setdefault(k, v)
    return out


def environ_auth(no_auth: bool, host: str) -> AuthConfig:
    """AuthConfig from this process's environment (see AuthConfig.from_env)."""
    return AuthConfig.from_env(os.environ, no_auth=no_auth, host=host)
