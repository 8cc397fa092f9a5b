"""Thin typed calls to the QuickBooks Online Accounting API endpoints the connector uses.

Every call goes through `hub.http` (retries, timeouts, error translation) with a bearer
token from `connectors.oauth2.TokenAuth` (the rotating-token store Xero uses too) and
`?minorversion=` on every request. This module knows the URLs, QBO's two error shapes
({"Fault": {"Error": [...]}} and the lower-case {"fault": {"error": [...]}} of 401s), that
a Fault can arrive with HTTP 200, and that QBO's 429 carries no Retry-After (we supply
`rate_limit_wait`, 60 s by default, as Intuit's docs say). The connector decides what to call.

QBO sends no rate-limit headers, so there is nothing for a `hub.http.Pacer` to read. Instead
`RateGate` keeps us under the documented limits on our side (10 requests a second and 500 a
minute per realm) before a 429 can happen; one gate per realm is shared by every connector
object of the process.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson

from connectors.oauth2 import TokenAuth, Vendor
from hub.errors import AuthError, PermanentError
from hub.http import HttpClient

DEFAULT_BASE_URL = "https://quickbooks.api.intuit.com"
DEFAULT_TOKEN_URL = "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer"
# Intuit's refresh tokens rotate and expire after 100 days unused.
VENDOR = Vendor("Intuit", "it was already used (they rotate), was idle for 100 days or was "
                "revoked")
DEFAULT_MINOR_VERSION = "75"
BATCH_MAX = 30
REQUEST_ID_MAX = 50
STALE_OBJECT = "5010"
DUPLICATE_NAME = "6240"
OBJECT_NOT_FOUND = "610"


class QuickBooksFault(PermanentError):
    """A QBO Fault (validation or business rule): its code, element and message."""

    def __init__(self, message: str, *, code: str, element: str = "",
                 status: int | None = None) -> None:
        super().__init__(message, status=status)
        self.code = code
        self.element = element


@dataclass(frozen=True)
class FaultInfo:
    """The first error of a QBO Fault body, in either key case."""

    code: str
    message: str
    detail: str
    element: str
    type: str

    def text(self) -> str:
        """One line for an ops person: code, message and the detail when it adds something."""
        detail = self.detail if self.detail and self.detail != self.message else ""
        where = f" (field {self.element})" if self.element else ""
        return f"QBO error {self.code} {self.message}{where}" + (f": {detail}" if detail else "")

    def error(self, prefix: str, status: int | None = None) -> QuickBooksFault:
        """This fault as a QuickBooksFault with `prefix` saying which call or record."""
        return QuickBooksFault(f"{prefix}: {self.text()}", code=self.code,
                               element=self.element, status=status)


def fault_of(body: Any) -> FaultInfo | None:
    """The Fault in a decoded answer ({"Fault": ...} or {"fault": ...}), or None."""
    if not isinstance(body, Mapping):
        return None
    fault = body.get("Fault") if "Fault" in body else body.get("fault")
    if not isinstance(fault, Mapping):
        return None
    errors = fault.get("Error") if "Error" in fault else fault.get("error")
    first = errors[0] if isinstance(errors, list) and errors else {}
    if not isinstance(first, Mapping):
        first = {}

    def pick(*keys: str) -> str:
        for key in keys:
            value = first.get(key)
            if value not in (None, ""):
                return str(value)
        return ""
    return FaultInfo(code=pick("code"), message=pick("Message", "message") or "refused",
                     detail=pick("Detail", "detail"), element=pick("element"),
                     type=str(fault.get("type") or ""))


def qbo_time(seconds: float) -> str:
    """Epoch seconds as the ISO text we send QBO (UTC offset written out, whole seconds)."""
    return datetime.fromtimestamp(int(seconds), UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def seconds_of(value: Any) -> int | None:
    """QBO time text ("2024-05-01T10:00:00-07:00", any offset) as whole epoch seconds."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp())


class RateGate:
    """Keeps requests under N a second and M a minute (sleeping before, never after, a call)."""

    def __init__(self, per_second: int, per_minute: int, *,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.per_second = per_second
        self.per_minute = per_minute
        self._sleep = sleep
        self._clock = clock
        self._sent: deque[float] = deque()
        self._lock = threading.Lock()
        self.waited: list[float] = []  # every pause taken, for tests/metrics

    def acquire(self) -> None:
        """Wait until one more request fits in both windows, then count it."""
        if self.per_second <= 0 and self.per_minute <= 0:
            return
        with self._lock:
            while True:
                now = self._clock()
                while self._sent and now - self._sent[0] >= 60.5:
                    self._sent.popleft()
                pause = 0.0
                # Windows a little longer than QBO's: it counts a request when it arrives,
                # later than we send it, so an exact window could still overflow by one.
                if self.per_minute > 0 and len(self._sent) >= self.per_minute:
                    pause = 60.5 - (now - self._sent[-self.per_minute])
                if self.per_second > 0 and len(self._sent) >= self.per_second:
                    pause = max(pause, 1.05 - (now - self._sent[-self.per_second]))
                if pause <= 0:
                    self._sent.append(now)
                    return
                self.waited.append(pause)
                self._sleep(pause)


_GATES: dict[tuple[str, str], RateGate] = {}
_GATES_GUARD = threading.Lock()


def gate_for(base_url: str, realm_id: str, per_second: int, per_minute: int) -> RateGate:
    """The process-wide gate of one realm (limits are per realm, not per connector object)."""
    with _GATES_GUARD:
        gate = _GATES.get((base_url, realm_id))
        if gate is None or (gate.per_second, gate.per_minute) != (per_second, per_minute):
            gate = _GATES[(base_url, realm_id)] = RateGate(per_second, per_minute)
        return gate


class ResponseHook:
    """`on_response` for hub.http: a Retry-After for QBO's bare 429s, and the Fault kept.

    hub.http turns a 4xx into an exception holding only a message; the QBO Fault code
    (5010, 6240...) is read here from the body first, per thread, so the client can raise
    a QuickBooksFault carrying it.
    """

    def __init__(self, rate_limit_wait: float) -> None:
        self.rate_limit_wait = rate_limit_wait
        self._local = threading.local()

    def __call__(self, response: httpx.Response) -> None:
        if response.status_code == 429 and "retry-after" not in response.headers:
            response.headers["Retry-After"] = f"{self.rate_limit_wait:g}"
        if response.status_code >= 400:
            try:
                body = orjson.loads(response.content) if response.content else None
            except orjson.JSONDecodeError:
                body = None
            self._local.fault = fault_of(body)

    def take(self) -> FaultInfo | None:
        """The Fault of this thread's last error answer (once)."""
        fault: FaultInfo | None = getattr(self._local, "fault", None)
        self._local.fault = None
        return fault


@dataclass(frozen=True)
class QueryPage:
    """One answer of /query: the records (empty when the entity key is absent) and QBO's time."""

    records: list[dict[str, Any]]
    time: int | None  # the answer's "time", epoch seconds


class QuickBooksClient:
    """The QBO endpoints the connector calls, with auth, minorversion and pacing."""

    def __init__(self, http: HttpClient, auth: TokenAuth, realm_id: str, *,
                 hook: ResponseHook, gate: RateGate,
                 minor_version: str = DEFAULT_MINOR_VERSION) -> None:
        self.http = http
        self.auth = auth
        self.realm_id = realm_id
        self.hook = hook
        self.gate = gate
        self.minor_version = minor_version

    def call(self, method: str, resource: str, *, params: Mapping[str, Any] | None = None,
             json: Any = None, content: bytes | None = None,
             headers: Mapping[str, str] | None = None) -> Any:
        """One request; a refused (401) token is refreshed once and the call repeated."""
        path = f"/v3/company/{self.realm_id}/{resource}"
        sent_params = {**(params or {}), "minorversion": self.minor_version}
        for attempt in (1, 2):
            token = self.auth.token()
            self.gate.acquire()
            self.hook.take()  # forget a Fault kept from an earlier (retried) answer
            try:
                response = self.http.request(
                    method, path, params=sent_params, json=json, content=content,
                    headers={"Authorization": f"Bearer {token}", **(headers or {})})
            except AuthError as exc:
                fault = self.hook.take()
                if exc.status == 401 and attempt == 1:
                    self.auth.invalidate(token)  # expired or revoked early: refresh, retry
                    continue
                said = f": {fault.detail or fault.message}" if fault else ""
                raise AuthError(f"QuickBooks {method} /{resource}: {exc.status} refused{said} "
                                f"(check the connection's realm_id, client and refresh token)",
                                status=exc.status) from None
            except PermanentError as exc:
                fault = self.hook.take()
                if fault is None:
                    raise
                raise fault.error(f"QuickBooks {method} /{resource}", exc.status) from None
            body = self.http.parse_json(response, method, path)
            fault = fault_of(body)
            if fault is not None:  # QBO sometimes answers a Fault with HTTP 200
                raise fault.error(f"QuickBooks {method} /{resource}", response.status_code)
            return body
        raise AssertionError("unreachable: the second attempt returns or raises")

    def query(self, text: str, entity: str) -> QueryPage:
        """GET /query: the records of `entity` (QBO leaves the key out when there are none)."""
        body = self.call("GET", "query", params={"query": text})
        answer = body.get("QueryResponse") if isinstance(body, dict) else None
        items = answer.get(entity) if isinstance(answer, dict) else None
        return QueryPage(list(items) if isinstance(items, list) else [],
                         seconds_of(body.get("time")) if isinstance(body, dict) else None)

    def cdc(self, entities: Sequence[str], changed_since: float) -> tuple[
            dict[str, list[dict[str, Any]]], int | None]:
        """GET /cdc: the changed (and deleted) objects per entity, and QBO's time."""
        body = self.call("GET", "cdc", params={"entities": ",".join(entities),
                                               "changedSince": qbo_time(changed_since)})
        found: dict[str, list[dict[str, Any]]] = {e: [] for e in entities}
        outer = body.get("CDCResponse") if isinstance(body, dict) else None
        for block in outer if isinstance(outer, list) else []:
            responses = block.get("QueryResponse") if isinstance(block, dict) else None
            for response in responses if isinstance(responses, list) else []:
                if not isinstance(response, dict):
                    continue
                for entity in entities:
                    items = response.get(entity)
                    if isinstance(items, list):
                        found[entity].extend(i for i in items if isinstance(i, dict))
        return found, seconds_of(body.get("time")) if isinstance(body, dict) else None

    def batch(self, items: Sequence[Mapping[str, Any]], request_id: str) -> dict[str, Any]:
        """POST /batch: the answers by bId (a bId QBO did not answer is absent)."""
        body = self.call("POST", "batch", params={"requestid": request_id[:REQUEST_ID_MAX]},
                         json={"BatchItemRequest": list(items)})
        answers = body.get("BatchItemResponse") if isinstance(body, dict) else None
        return {str(a.get("bId")): a for a in answers if isinstance(a, dict)} \
            if isinstance(answers, list) else {}

    def probe(self) -> None:
        """The cheapest authenticated call: one customer."""
        self.call("GET", "query", params={"query": "SELECT * FROM Customer STARTPOSITION 1 "
                                                   "MAXRESULTS 1"})
