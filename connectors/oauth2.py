"""OAuth 2 access tokens refreshed ahead of expiry, with rotating refresh tokens kept on disk.

Used by the connectors whose vendors rotate refresh tokens (Xero, QuickBooks Online): every
refresh answers with a NEW refresh token and the old one is dead (reusing it gives
`invalid_grant`). So the current refresh token cannot live in the config file. It lives in a
small JSON file, `<base_dir>/.liaison-tokens/<connection>.json` (setting `token_file` to move
it):

    {"refresh_token": "...", "access_token": "...", "expires_at": 1719792000.0,
     "seed": "<sha256 of the configured refresh_token>"}

- The configured `refresh_token` (a ${ENV} reference) is only the first one, from the
  consent flow. Once used, the file's token is the current one. When an ops person
  re-authorises and puts a new token in the environment, its hash no longer matches `seed`,
  so the new configured token wins over the file.
- A refresh happens under a lock: a thread lock for this process and an exclusive `flock`
  on `<file>.lock` for other processes (workers on the same machine). Inside the lock the
  file is read again first: if another holder already refreshed, its access token is used
  and no second refresh is made (which would burn a refresh token).
- The file is written atomically (temporary file + rename, mode 0600) the moment the answer
  arrives, before the access token is used, so a crash cannot lose the rotated token except
  in the instant between the vendor's answer and the rename.
- Without a configured refresh token the connection uses `grant_type=client_credentials`
  (Xero's "custom connections": nothing rotates; the access token is still cached).

What differs between vendors is only their name in messages and what an `invalid_grant`
means there (`Vendor`).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson

from hub.config.model import ConnectionConfig
from hub.connector import BaseConnector
from hub.errors import AuthError, PermanentError
from hub.http import HttpClient

try:  # POSIX only; elsewhere the thread lock alone guards one process
    import fcntl
except ImportError:  # pragma: no cover - not on Linux
    fcntl = None  # type: ignore[assignment]

DEFAULT_REFRESH_AHEAD = 120.0  # seconds before expiry a token counts as expired

_THREAD_LOCKS: dict[str, threading.Lock] = {}
_THREAD_LOCKS_GUARD = threading.Lock()


def _thread_lock(path: Path) -> threading.Lock:
    with _THREAD_LOCKS_GUARD:
        return _THREAD_LOCKS.setdefault(str(path.resolve()), threading.Lock())


def fingerprint(secret: str) -> str:
    """A stable, non-reversible label of a secret (to notice that the configured one changed)."""
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class Vendor:
    """How a vendor's token endpoint is named in messages, and what its `invalid_grant`
    means (the refresh token's life there), e.g. "it was already used or is older than 60
    days"."""

    name: str
    invalid_grant: str


@dataclass
class TokenState:
    """What the token file holds."""

    refresh_token: str | None = None
    access_token: str | None = None
    expires_at: float = 0.0
    seed: str | None = None


class TokenFile:
    """The JSON file holding the current tokens, read and written atomically."""

    def __init__(self, path: Path, vendor: str = "OAuth") -> None:
        self.path = path
        self.vendor = vendor  # named in the message when the file cannot be read

    def load(self) -> TokenState:
        """The stored state (empty when the file does not exist yet)."""
        try:
            raw = orjson.loads(self.path.read_bytes())
        except FileNotFoundError:
            return TokenState()
        except (OSError, orjson.JSONDecodeError) as exc:
            raise AuthError(f"{self.vendor} token file {self.path} cannot be read ({exc}); delete it "
                            f"and set a fresh refresh_token on the connection") from None
        if not isinstance(raw, dict):
            return TokenState()
        return TokenState(refresh_token=_text(raw.get("refresh_token")),
                          access_token=_text(raw.get("access_token")),
                          expires_at=float(raw.get("expires_at") or 0.0),
                          seed=_text(raw.get("seed")))

    def save(self, state: TokenState) -> None:
        """Replace the file in one rename, readable by its owner only."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = orjson.dumps({"refresh_token": state.refresh_token,
                             "access_token": state.access_token,
                             "expires_at": state.expires_at, "seed": state.seed})
        fd, tmp = tempfile.mkstemp(prefix=".tokens-", dir=self.path.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold this file's refresh lock (threads of this process, then other processes)."""
        with _thread_lock(self.path):
            if fcntl is None:
                yield
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path.with_name(self.path.name + ".lock"), "a+b") as handle:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


class TokenAuth:
    """Gives a valid bearer token, refreshing it (once, under the lock) when it is due."""

    def __init__(self, http: HttpClient, token_url: str, file: TokenFile, *, vendor: Vendor,
                 client_id: Callable[[], str], client_secret: Callable[[], str],
                 refresh_token: Callable[[], str | None], refresh_ahead: float,
                 clock: Callable[[], float] = time.time) -> None:
        self.vendor = vendor
        self.http = http
        self.token_url = token_url
        self.file = file
        self._client_id = client_id
        self._client_secret = client_secret
        self._configured_refresh = refresh_token
        self.refresh_ahead = refresh_ahead
        self._clock = clock
        self._access: str | None = None
        self._expires_at = 0.0
        self.refreshes = 0  # refreshes this object made (for tests and metrics)

    def token(self) -> str:
        """A bearer token valid for at least `refresh_ahead` more seconds."""
        if self._access and self._expires_at - self.refresh_ahead > self._clock():
            return self._access
        with self.file.locked():
            state = self.file.load()
            configured = self._configured_refresh()
            seed = fingerprint(configured) if configured else None
            fresh = state.access_token and state.expires_at - self.refresh_ahead > self._clock()
            if fresh and state.seed == seed:
                # Another thread or process refreshed while we waited: use its token.
                self._access, self._expires_at = state.access_token, state.expires_at
                return str(state.access_token)
            if configured is None:
                new = self._request({"grant_type": "client_credentials"})
            else:
                current = state.refresh_token if state.seed == seed and state.refresh_token \
                    else configured
                new = self._request({"grant_type": "refresh_token", "refresh_token": current})
            access = _text(new.get("access_token"))
            if not access:
                raise AuthError(f"{self.vendor.name} token endpoint answered without an "
                                "access_token")
            expires_at = self._clock() + float(new.get("expires_in") or 1800)
            rotated = _text(new.get("refresh_token"))
            if configured is not None and rotated is None:
                rotated = state.refresh_token if state.seed == seed else configured
            self.file.save(TokenState(refresh_token=rotated, access_token=access,
                                      expires_at=expires_at, seed=seed))
            self.refreshes += 1
            self._access, self._expires_at = access, expires_at
            return access

    def invalidate(self, rejected: str) -> None:
        """Forget an access token the API refused (401), so the next call refreshes."""
        if self._access == rejected:
            self._access, self._expires_at = None, 0.0
        with self.file.locked():
            state = self.file.load()
            if state.access_token == rejected:
                state.access_token, state.expires_at = None, 0.0
                self.file.save(state)

    def _request(self, form: dict[str, Any]) -> dict[str, Any]:
        basic = base64.b64encode(f"{self._client_id()}:{self._client_secret()}".encode())
        body = urlencode(form).encode()
        try:
            response = self.http.request(
                "POST", self.token_url, content=body,
                headers={"Authorization": f"Basic {basic.decode('ascii')}",
                         "Content-Type": "application/x-www-form-urlencoded"})
        except AuthError as exc:
            raise AuthError(f"{self.vendor.name} refused the client_id/client_secret: {exc}",
                            status=exc.status) from None
        except PermanentError as exc:
            if "invalid_grant" in str(exc):
                raise AuthError(
                    f"{self.vendor.name} refused the refresh token (invalid_grant): "
                    f"{self.vendor.invalid_grant}. Re-authorise the app and put the new refresh "
                    f"token in the connection's refresh_token (token file: {self.file.path})",
                    status=exc.status) from None
            raise AuthError(f"{self.vendor.name} token refresh failed: {exc}",
                            status=exc.status) from None
        answer = self.http.parse_json(response, "POST", self.token_url)
        if not isinstance(answer, dict):
            raise AuthError(f"{self.vendor.name} token endpoint answered something other "
                            "than a JSON object")
        return answer


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def token_file_path(connection: ConnectionConfig) -> Path:
    """Where a connection keeps its rotating tokens: the `token_file` setting (relative to
    the config's folder), else `.liaison-tokens/<system>.json` beside the config."""
    configured = connection.setting("token_file")
    base = Path(connection.base_dir)
    if configured:
        path = Path(str(configured))
        return path if path.is_absolute() else base / path
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in connection.name)
    return base / ".liaison-tokens" / f"{safe}.json"


def connection_auth(connector: BaseConnector, http: HttpClient, *, vendor: Vendor,
                    default_token_url: str, refresh_required: bool) -> TokenAuth:
    """The TokenAuth of a connector's connection, from its settings: token_url (else
    `default_token_url`), client_id, client_secret, refresh_token (required, or optional:
    without one the connection uses client credentials), refresh_ahead_seconds and the
    token file (`token_file_path`). Secrets are revealed at each use, not here."""
    connection = connector.connection

    def refresh_token() -> str | None:
        if refresh_required:
            return connector.required_setting("refresh_token")
        return connection.setting("refresh_token") or None

    return TokenAuth(
        http, str(connection.setting("token_url") or default_token_url),
        TokenFile(token_file_path(connection), vendor.name), vendor=vendor,
        client_id=lambda: connector.required_setting("client_id"),
        client_secret=lambda: connector.required_setting("client_secret"),
        refresh_token=refresh_token,
        refresh_ahead=connector.number_setting("refresh_ahead_seconds", DEFAULT_REFRESH_AHEAD))
