"""One HTTP client factory for every HTTP connector: timeouts, auth, retries, error mapping.

`make_client` returns an `HttpClient` wrapping one `httpx.Client`. Every call goes through
`HttpClient.request`, which is the single boundary where httpx exceptions and error statuses
become `hub.errors`:

    429                              -> RateLimited(retry_after)   (transient)
    5xx, timeouts, resets, refused   -> TransientError
    401, 403                         -> AuthError                  (permanent)
    other 4xx                        -> PermanentError

Transient failures are retried in place (tenacity) with exponential backoff and jitter, at
most `RetryPolicy.attempts` tries and `RetryPolicy.backoff_max` seconds per wait. A
Retry-After the vendor sends (on 429/503) is honoured; when it is longer than one allowed
wait the client stops retrying and raises `RateLimited(retry_after=...)`, so the job layer
schedules the retry (dramatiq `Retry(delay=...)`) instead of a worker thread sleeping.

Worker mode retries nothing in place: inside `no_inline_retries()` (every job of
`hub.jobs.actors.Jobs` runs in it) or with `HUB_HTTP_INLINE_RETRIES=0` in the environment
(`hub worker` processes set it), each request is tried once and a 429/5xx/timeout surfaces
at once as `RateLimited`/`TransientError`. The outbox then puts the delivery off (its next
attempt no sooner than the Retry-After) and a read's job is re-sent with a delay, so no
worker thread ever sleeps through a backoff. The switch is read at each request, so a client
built before it was set obeys it too.

Messages name the system, method, path and the vendor's own message; never a header or token.

Observers (hub.metrics) learn what each attempt showed through `add_call_listener`: the
requests left in the vendor's rate-limit windows (X-RateLimit-Remaining, HubSpot's, Xero's,
Trello's... headers) and the cause of a transient failure. Connectors know nothing of it.
"""

from __future__ import annotations

import contextlib
import email.utils
import functools
import logging
import os
import random
import ssl
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Self

import httpx
import orjson
import tenacity

from hub.config.model import RetryPolicy
from hub.errors import (
    AuthError,
    PermanentError,
    RateLimited,
    SyncError,
    TransientError,
)

AuthHeaders = Callable[[], Mapping[str, str]] | Mapping[str, str] | None
INLINE_RETRIES_ENV = "HUB_HTTP_INLINE_RETRIES"
# None: follow $HUB_HTTP_INLINE_RETRIES. A ContextVar, not a global, so that a job running on
# one thread of `hub run` does not change how another thread's client behaves.
_INLINE: ContextVar[bool | None] = ContextVar("hub_http_inline_retries", default=None)
ResponseHook = Callable[[httpx.Response], None]
Sleep = Callable[[float], None]

VENDOR_MESSAGE_MAX = 300  # characters of a vendor's error text kept in our messages
_REDACTED = "***"


@dataclass(frozen=True)
class CallOutcome:
    """What one attempt of a vendor call showed, for observers such as metrics."""

    system: str  # the client's system label, e.g. "HubSpot (crm)"
    quota: Mapping[str, int]  # rate-limit header (lower case) -> requests left in its window
    failure: str | None = None  # transient failure: timeout|rate_limit|server_error|connection


CallListener = Callable[[CallOutcome], None]
# Replaced, never mutated, so that a thread iterating it is not disturbed by another adding.
_LISTENERS: tuple[CallListener, ...] = ()


def add_call_listener(listener: CallListener) -> None:
    """Have `listener` told the outcome of every attempt made by every client (any thread)."""
    global _LISTENERS
    if listener not in _LISTENERS:
        _LISTENERS = (*_LISTENERS, listener)


def remove_call_listener(listener: CallListener) -> None:
    """Stop telling `listener`."""
    global _LISTENERS
    _LISTENERS = tuple(x for x in _LISTENERS if x is not listener)


def capture_calls() -> list[CallOutcome]:
    """For a child process that reads for the engine (hub.sync.readahead): stop telling the
    listeners inherited from the engine's process (their metrics live there) and collect
    every outcome in the returned list instead, to be sent back and told there
    (`replay_calls`)."""
    global _LISTENERS
    collected: list[CallOutcome] = []
    _LISTENERS = (collected.append,)
    return collected


def replay_calls(outcomes: Iterable[CallOutcome]) -> None:
    """Tell this process's listeners the outcomes collected in a child (`capture_calls`)."""
    for outcome in outcomes:
        _tell(outcome.system, outcome.quota, outcome.failure)


def quota_headers(headers: Mapping[str, str]) -> dict[str, int]:
    """The rate-limit "remaining" counts a response carries, by lower-case header name.

    Vendors name them differently (X-RateLimit-Remaining, X-HubSpot-RateLimit-Daily-Remaining,
    X-MinLimit-Remaining, x-rate-limit-api-token-remaining, x-daily-requests-left...): any
    header naming a limit and ending in -remaining or -left counts.
    """
    out: dict[str, int] = {}
    for name, value in headers.items():
        low = name.lower()
        if "limit" not in low and "requests" not in low:
            continue
        if not low.endswith(("-remaining", "-left")):
            continue
        try:
            out[low] = int(float(value))
        except ValueError:
            continue
    return out


def _failure_cause(status: int, headers: Mapping[str, str]) -> str | None:
    if status == 429 or (status == 503 and "retry-after" in headers):
        return "rate_limit"
    if status >= 500:
        return "server_error"
    return None


def _tell(system: str, quota: Mapping[str, int], failure: str | None) -> None:
    outcome = CallOutcome(system, quota, failure)
    for listener in _LISTENERS:
        try:
            listener(outcome)
        except Exception:  # an observer must never fail a vendor call
            logging.getLogger("hub.http").exception("a call listener failed")


def inline_retries() -> bool:
    """Whether requests made now retry in place (False in worker mode: see the module doc)."""
    chosen = _INLINE.get()
    if chosen is not None:
        return chosen
    return os.environ.get(INLINE_RETRIES_ENV, "1").strip().lower() not in ("0", "false", "no",
                                                                           "off")


@contextlib.contextmanager
def no_inline_retries() -> Iterator[None]:
    """Within this block (this thread or task), every request is tried once, never slept on."""
    token = _INLINE.set(False)
    try:
        yield
    finally:
        _INLINE.reset(token)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date); None if absent."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = datetime.now(UTC).timestamp() if now is None else now
    return max(0.0, when.timestamp() - current)


def vendor_message(response: httpx.Response) -> str:
    """The vendor's own error text from a response body (JSON where possible), truncated."""
    text = ""
    try:
        body = orjson.loads(response.content) if response.content else None
    except orjson.JSONDecodeError:
        body = None
        text = response.text.strip()
    if body is not None:
        text = _message_from_json(body)
    text = " ".join(text.split())
    if len(text) > VENDOR_MESSAGE_MAX:
        text = text[:VENDOR_MESSAGE_MAX - 3] + "..."
    return text


def _message_from_json(body: Any) -> str:
    """Find the human message in the common vendor error shapes."""
    if isinstance(body, list) and body:
        return _message_from_json(body[0])
    if not isinstance(body, dict):
        return str(body)
    for key in ("message", "Message", "error_description", "detail", "title", "error"):
        value = body.get(key)
        if isinstance(value, str) and value:
            category = body.get("category")
            return f"{value} ({category})" if isinstance(category, str) else value
        if isinstance(value, dict):
            return _message_from_json(value)
    errors = body.get("errors") or body.get("Elements")
    if isinstance(errors, list) and errors:
        return _message_from_json(errors[0])
    return orjson.dumps(body).decode()[:VENDOR_MESSAGE_MAX]


@dataclass
class Pacer:
    """Slows down before a rate limit bites, from "remaining / interval" response headers.

    Use as (part of) an `on_response` hook. When the vendor says only `reserve` or fewer
    requests remain in its window, it spreads the rest of the window over them, so a
    well-behaved client rarely sees a 429 at all.
    """

    remaining_header: str
    interval_ms_header: str | None = None
    interval_seconds: float = 10.0  # used when the interval header is absent
    reserve: int = 5
    sleep: Sleep = time.sleep
    waited: list[float] = field(default_factory=list)  # every pause taken, for tests/metrics

    def __call__(self, response: httpx.Response) -> None:
        if response.status_code == 429:
            return  # the retry wait (Retry-After) already covers this one
        remaining = _int_header(response, self.remaining_header)
        if remaining is None or remaining > self.reserve:
            return
        interval = self.interval_seconds
        if self.interval_ms_header:
            ms = _int_header(response, self.interval_ms_header)
            if ms is not None and ms > 0:
                interval = ms / 1000.0
        pause = interval / (remaining + 1)
        self.waited.append(pause)
        self.sleep(pause)


def _int_header(response: httpx.Response, name: str) -> int | None:
    value = response.headers.get(name)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


class HttpClient:
    """An httpx client that retries transient failures and raises only `hub.errors`."""

    def __init__(self, client: httpx.Client, *, system: str, auth_headers: AuthHeaders,
                 retry: RetryPolicy, on_response: ResponseHook | None, sleep: Sleep,
                 rng: random.Random) -> None:
        self._client = client
        self.system = system
        self._auth_headers = auth_headers
        self.retry = retry
        self._on_response = on_response
        self._sleep = sleep
        self._rng = rng
        self.attempts_made = 0  # total attempts over the client's life (for tests/metrics)

    # -- public calls -------------------------------------------------------------------

    def request(self, method: str, url: str, *, params: Mapping[str, Any] | None = None,
                json: Any = None, headers: Mapping[str, str] | None = None,
                content: bytes | None = None) -> httpx.Response:
        """Send one request with retries; a 2xx/3xx response, or a `hub.errors` exception."""
        if json is not None:
            content = orjson.dumps(json)
            headers = {**(headers or {}), "Content-Type": "application/json"}
        # In worker mode one try: the job layer schedules the retry (see the module doc).
        tries = max(1, self.retry.attempts) if inline_retries() else 1
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(tries),
            wait=self._wait,
            retry=tenacity.retry_if_exception(self._should_retry),
            sleep=self._sleep,
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    return self._send_once(method, url, params, headers, content)
        except TransientError as exc:
            raise self._gave_up(exc, method, url, tries) from None
        raise AssertionError("unreachable: tenacity either returns or raises")

    def get_json(self, url: str, *, params: Mapping[str, Any] | None = None) -> Any:
        """GET and parse the JSON body."""
        return self.parse_json(self.request("GET", url, params=params), "GET", url)

    def post_json(self, url: str, body: Any, *, params: Mapping[str, Any] | None = None) -> Any:
        """POST a JSON body and parse the JSON answer (None for an empty body)."""
        return self.parse_json(self.request("POST", url, json=body, params=params), "POST", url)

    def parse_json(self, response: httpx.Response, method: str, url: str) -> Any:
        """The response's JSON (None when empty); a PermanentError naming the call if not JSON."""
        if not response.content:
            return None
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise PermanentError(f"{self._where(method, url)}: the answer is not JSON "
                                 f"(starts {response.text[:60]!r})",
                                 status=response.status_code) from None

    def close(self) -> None:
        """Close the pooled connections."""
        self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- one attempt ----------------------------------------------------------------------

    def _send_once(self, method: str, url: str, params: Mapping[str, Any] | None,
                   headers: Mapping[str, str] | None, content: bytes | None) -> httpx.Response:
        self.attempts_made += 1
        auth = self._resolve_auth()
        merged = {**auth, **headers} if headers else auth
        try:
            response = self._client.request(method, url, params=params, headers=merged,
                                            content=content)
        except httpx.TimeoutException as exc:
            if _LISTENERS:
                _tell(self.system, {}, "timeout")
            raise TransientError(f"{self._where(method, url)}: timed out "
                                 f"({type(exc).__name__})") from None
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            raise PermanentError(f"{self._where(method, url)}: bad URL: "
                                 f"{self._scrub(str(exc), auth)}") from None
        except httpx.TooManyRedirects:
            raise PermanentError(f"{self._where(method, url)}: too many redirects") from None
        except httpx.TransportError as exc:
            if _LISTENERS:
                _tell(self.system, {}, "connection")
            reason = self._scrub(str(exc), auth) or type(exc).__name__
            raise TransientError(f"{self._where(method, url)}: connection failed: "
                                 f"{reason}") from None
        except httpx.HTTPError as exc:
            if _LISTENERS:
                _tell(self.system, {}, "connection")
            raise TransientError(f"{self._where(method, url)}: "
                                 f"{type(exc).__name__}") from None
        if _LISTENERS:
            _tell(self.system, quota_headers(response.headers),
                  _failure_cause(response.status_code, response.headers))
        if self._on_response is not None:
            self._on_response(response)
        if response.status_code >= 400:
            raise self._status_error(method, url, response, auth)
        return response

    def _status_error(self, method: str, url: str, response: httpx.Response,
                      auth: Mapping[str, str]) -> SyncError:
        status = response.status_code
        said = self._scrub(vendor_message(response), auth)
        text = f"{self._where(method, url)}: {status} {response.reason_phrase}"
        if said:
            text += f": {said}"
        retry_after = None
        if status in (429, 503):
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
        if status == 429:
            return RateLimited(text, retry_after=retry_after)
        if status == 503 and retry_after is not None:
            return RateLimited(text, retry_after=retry_after, status=503)
        if status >= 500:
            return TransientError(text, status=status)
        if status in (401, 403):
            return AuthError(f"{text} (check the credentials and scopes of the "
                             f"{self.system} connection)", status=status)
        return PermanentError(text, status=status)

    # -- retry policy -----------------------------------------------------------------------

    def _should_retry(self, exc: BaseException) -> bool:
        if not isinstance(exc, TransientError):
            return False
        if isinstance(exc, RateLimited) and exc.retry_after is not None:
            # A wait longer than we may sleep goes back to the job layer, which can delay
            # the job without holding a worker thread.
            return exc.retry_after <= self.retry.backoff_max
        return True

    def _wait(self, state: tenacity.RetryCallState) -> float:
        n = state.attempt_number  # attempts made so far (1 after the first failure)
        ceiling = min(self.retry.backoff_max, self.retry.backoff_initial * (2 ** (n - 1)))
        # "Equal jitter": at least half the exponential step, so waits still grow.
        backoff = ceiling / 2 + self._rng.uniform(0, ceiling / 2)
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, RateLimited) and exc.retry_after is not None:
            return float(max(exc.retry_after, min(backoff, self.retry.backoff_max)))
        return float(backoff)

    def _gave_up(self, exc: TransientError, method: str, url: str,
                 tries: int) -> TransientError:
        if isinstance(exc, RateLimited) and exc.retry_after is not None \
                and exc.retry_after > self.retry.backoff_max:
            return exc  # not retried here on purpose: the job layer schedules it
        note = f" (gave up after {tries} attempts)"
        if tries <= 1:
            return exc
        if isinstance(exc, RateLimited):
            return RateLimited(f"{exc}{note}", retry_after=exc.retry_after,
                               status=exc.status or 429)
        return TransientError(f"{exc}{note}", status=exc.status)

    # -- helpers ---------------------------------------------------------------------------

    def _resolve_auth(self) -> Mapping[str, str]:
        source = self._auth_headers
        if source is None:
            return {}
        return source() if callable(source) else source

    def _where(self, method: str, url: str) -> str:
        path = httpx.URL(url).path if "://" in url else url.split("?", 1)[0]
        return f"{self.system} {method} {path}"

    @staticmethod
    def _scrub(text: str, auth: Mapping[str, str]) -> str:
        """Remove any credential value (and its bare token part) from a message."""
        for value in auth.values():
            for secret in (value, value.split(" ", 1)[-1]):
                if len(secret) >= 4 and secret in text:
                    text = text.replace(secret, _REDACTED)
        return text


def tls_context() -> ssl.SSLContext:
    """The verifying TLS context every client shares: httpx's own default (certifi's CA
    bundle, or $SSL_CERT_FILE / $SSL_CERT_DIR when set), built once per process.

    Building one reads the whole CA bundle: about 16 ms of CPU that every connector paid
    when it was made (a sync's read-ahead child, each worker job, each health check).
    """
    return _tls_context(os.environ.get("SSL_CERT_FILE") or None,
                        os.environ.get("SSL_CERT_DIR") or None)


@functools.lru_cache(maxsize=4)
def _tls_context(cafile: str | None, capath: str | None) -> ssl.SSLContext:
    if cafile:
        return ssl.create_default_context(cafile=cafile)
    if capath:
        return ssl.create_default_context(capath=capath)
    import certifi  # httpx's own dependency, and its default

    return ssl.create_default_context(cafile=certifi.where())


def make_client(base_url: str, *, system: str, retry: RetryPolicy,
                auth_headers: AuthHeaders = None, timeout: float = 30.0,
                connect_timeout: float = 5.0, user_agent: str = "liaison-hub",
                on_response: ResponseHook | None = None, sleep: Sleep = time.sleep,
                seed: int | None = None,
                transport: httpx.BaseTransport | None = None) -> HttpClient:
    """Build the `HttpClient` every HTTP connector uses.

    `auth_headers` may be a callable so secrets are read at use (each attempt), not stored.
    `sleep` and `seed` make the retry waits observable and reproducible in tests.
    """
    client = httpx.Client(
        base_url=base_url,
        timeout=httpx.Timeout(timeout, connect=connect_timeout),
        headers={"User-Agent": user_agent, "Accept": "application/json"},
        follow_redirects=False,  # a redirect to another host could leak the token
        transport=transport,
        verify=tls_context() if transport is None else True,
    )
    return HttpClient(client, system=system, auth_headers=auth_headers, retry=retry,
                      on_response=on_response, sleep=sleep, rng=random.Random(seed))
