"""A stateful emulator of the QuickBooks Online API subset the connector uses, on loopback.

Faithful to vendor-apis.md section 5 (record rules in sandbox_store.py); [emu] marks
choices the reference leaves open:
- OAuth2 token endpoint at /oauth2/v1/tokens/bearer (Basic client auth,
  grant_type=refresh_token): answers {access_token, refresh_token, token_type: "bearer",
  expires_in: 3600, x_refresh_token_expires_in} and ROTATES the refresh token on every use;
  a used or unknown one gets 400 {"error": "invalid_grant"}.
- The API under /v3/company/{realmId}: Bearer auth; a missing, unknown or expired token
  gets 401 with QBO's lower-case body {"fault": {"error": [...], "type": "AUTHENTICATION"}}
  plus `WWW-Authenticate: Bearer realm="Intuit", error="invalid_token"`; every answer
  carries an `intuit_tid` header. An unknown realm is 403 [emu: same body shape].
- GET /query?query=... and POST /query (Content-Type application/text): the query
  language of query.py; {"QueryResponse": {"<Entity>": [...], "startPosition", "maxResults"},
  "time"}, and `{"QueryResponse": {}}` with the entity key ABSENT when nothing matches;
  inactive customers are hidden unless the query tests Active. A bad query is 400 Fault
  code 4000 "Error parsing query" [emu code].
- GET /cdc?entities=A,B&changedSince=<iso>: {"CDCResponse": [{"QueryResponse": [{"<A>":
  [...], "startPosition", "maxResults", "totalCount"}, ...]}], "time"}; changedSince at most
  `cdc_lookback_days` (30) back (else 400 Fault [emu code 6000]); at most 1000 objects over all
  entities, oldest first [emu order]; deleted ones as {"Id", "status": "Deleted", ...}.
- POST /customer|/invoice|/payment (create, or update when the body has an Id;
  `?operation=delete` with {Id, SyncToken} for invoices and payments) -> {"<Entity>": {...},
  "time"}; POST /batch {"BatchItemRequest": [{"bId", "operation": create|update|delete,
  "<Entity>": {...}}]} (at most `batch_max` = 30 items [emu: else 400]) ->
  {"BatchItemResponse": [{"bId", "<Entity>": {...}} | {"bId", "Fault": {...}}], "time"}.
- Validation faults are 400 {"Fault": {"Error": [{"Message", "Detail", "code", "element"}],
  "type": "ValidationFault"}, "time"}; with `faults_as_200` they come with HTTP 200, as QBO
  sometimes does.
- `?requestid=` (at most 50 characters) on writes replays the first answer to that id.
- Rate limits per realm: `per_second` (10) and `per_minute` (500) requests, `batch_per_minute`
  (40) batches; over a limit: 429 with NO Retry-After and no rate-limit headers, body in the
  lower-case fault shape [emu].
- `?minorversion=` is recorded (`minor_versions`) so tests can see the connector sends it.
- Webhooks: changes after start-up are kept and sent, signed with `intuit-signature`, by
  `send_webhooks` in the legacy eventNotifications format or the CloudEvents array format.
- Faults (429, 5xx, latency) drawn from a seeded generator, so a run is reproducible.
Responses are built in full and sent in one write with TCP_NODELAY.
"""

from __future__ import annotations

import argparse
import base64
import random
import re
import secrets
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar, Literal
from urllib.parse import parse_qs, urlsplit

import httpx
import orjson

from connectors.quickbooks import fakedata
from connectors.quickbooks.query import QueryError, parse
from connectors.quickbooks.sandbox_store import ENTITIES, Fault, QboStore, iso, parse_time
from connectors.quickbooks.webhooks import SIGNATURE_HEADER, signature
from connectors.sandbox_http import SandboxHandler, SandboxServer, ServedSandbox
from connectors.sandbox_pump import WebhookPump

TOKEN_PATH = "/oauth2/v1/tokens/bearer"
API_PREFIX = "/v3/company/"
REQUEST_ID_MAX = 50
REFRESH_TOKEN_TTL = 8_726_400  # ~101 days, as Intuit answers x_refresh_token_expires_in
_PATH = re.compile(r"^/v3/company/([^/]+)/([a-z]+)$")
WRITE_PATHS = {"customer": "Customer", "invoice": "Invoice", "payment": "Payment"}


@dataclass(frozen=True)
class Faults:
    """Injected failures; every fraction is per API request, drawn from `seed`."""

    rate_limit: float = 0.0  # answer 429 (no Retry-After, as QBO)
    server_error: float = 0.0  # answer 500/503 without doing anything
    latency: float = 0.0  # seconds added to every answer
    seed: int = 0


class QuickBooksSandbox(ServedSandbox):
    """The emulator: start it, point a connection at `.base_url` and `.token_url`."""

    def __init__(self, seed: int = 1, count: int = 0, port: int = 0,
                 faults: Faults = Faults(), *, per_second: int = 10, per_minute: int = 500,
                 batch_per_minute: int = 40, batch_max: int = 30, token_ttl: float = 3600.0,
                 cdc_lookback_days: float = 30.0, cdc_cap: int = 1000,
                 faults_as_200: bool = False,
                 clock: Callable[[], float] = time.time) -> None:
        rng = random.Random(seed)
        self.seed = seed
        self.faults = faults
        self.per_second = per_second
        self.per_minute = per_minute
        self.batch_per_minute = batch_per_minute
        self.batch_max = batch_max
        self.token_ttl = token_ttl
        self.cdc_lookback_days = cdc_lookback_days
        self.cdc_cap = cdc_cap
        self.faults_as_200 = faults_as_200
        self.clock = clock
        self.client_id = "sandbox-client-id"
        self.client_secret = "sandbox-client-secret"
        self.verifier_token = "sandbox-verifier-token"
        self.realm_id = str(4620816365000000000 + rng.randrange(10**9))
        self._requested_port = port
        self._lock = threading.RLock()
        self._fault_rng = random.Random(faults.seed)
        self._calls: deque[float] = deque()
        self._batches: deque[float] = deque()
        self._access: dict[str, float] = {}  # access token -> expiry (epoch seconds)
        self._refresh: set[str] = set()
        self._replays: dict[str, tuple[int, bytes]] = {}
        self.requests: deque[tuple[str, str, dict[str, str], str]] = deque(maxlen=10_000)
        self.minor_versions: list[str] = []
        # Called (under the lock) before each batch is applied: a test's stand-in for a QBO
        # user editing records while our write is on its way.
        self.before_batch: Callable[[], None] | None = None
        self.token_requests = 0
        self.store = QboStore(clock)
        self.store.load(fakedata.generate(seed, count))
        self.store.recording = True
        self.refresh_token = self.issue_refresh_token()
        self._server: SandboxServer | None = None
        self._thread: threading.Thread | None = None
        self._pump: WebhookPump | None = None

    # -- lifecycle --------------------------------------------------------------------------

    label = "QuickBooks"

    def _make_server(self) -> SandboxServer:
        return _Server(("127.0.0.1", self._requested_port), _Handler)

    def _before_stop(self) -> None:
        self.unsubscribe()

    @property
    def base_url(self) -> str:
        """The connection's base_url (the API root; the connector adds /v3/company/{realm})."""
        return self.origin

    @property
    def token_url(self) -> str:
        """The connection's token_url."""
        return self.origin + TOKEN_PATH

    # -- helpers for tests ------------------------------------------------------------------

    def issue_refresh_token(self) -> str:
        """A fresh refresh token, as if the user had just gone through the consent flow."""
        with self._lock:
            token = "AB11" + secrets.token_hex(20)
            self._refresh.add(token)
            return token

    def expire_access_tokens(self) -> None:
        """Make every access token expire now (the API answers 401 until refreshed)."""
        with self._lock:
            self._access.clear()

    def records(self, entity: str) -> list[dict[str, Any]]:
        """Every stored record of an entity (inactive customers too) as the API shows it."""
        with self._lock:
            return [_as_json(self.store.public(entity, rid)) for rid in self.store.records[entity]]

    def get(self, entity: str, rid: str) -> dict[str, Any] | None:
        """One stored record as the API shows it (None when deleted or unknown)."""
        with self._lock:
            if rid not in self.store.records[entity]:
                return None
            return _as_json(self.store.public(entity, rid))

    def create(self, entity: str, body: dict[str, Any]) -> dict[str, Any]:
        """Create one record server-side through the API's rules."""
        with self._lock:
            return _as_json(self.store.create(entity, body))

    def touch(self, entity: str, rid: str, **fields: Any) -> dict[str, Any]:
        """A QBO user's edit: bumps SyncToken and LastUpdatedTime."""
        with self._lock:
            return _as_json(self.store.touch(entity, rid, **fields))

    def delete(self, entity: str, rid: str) -> None:
        """A QBO user deletes an invoice or payment."""
        with self._lock:
            current = self.store.records[entity][rid]
            self.store.delete(entity, {"Id": rid, "SyncToken": current["SyncToken"]})

    def reset_rate_limits(self) -> None:
        """Forget the calls counted so far."""
        with self._lock:
            self._calls.clear()
            self._batches.clear()

    def api_requests(self, path_end: str = "") -> list[tuple[str, str, dict[str, str], str]]:
        """(method, path, headers, query string) of API calls whose path ends so."""
        with self._lock:
            return [r for r in self.requests if r[1].startswith(API_PREFIX)
                    and r[1].endswith(path_end)]

    # -- webhooks ---------------------------------------------------------------------------

    def send_webhooks(self, url: str, *, style: Literal["legacy", "cloudevents"] = "legacy",
                      changes: Sequence[tuple[str, str, str, int]] | None = None,
                      key: str | None = None, realm_id: str | None = None,
                      tamper: Callable[[bytes], bytes] | None = None) -> httpx.Response:
        """POST one signed delivery (default: every change not yet delivered).

        `key` signs with another verifier token (a forged delivery); `tamper` changes the body
        after signing. Pending changes are dropped once the receiver answered 200.
        """
        with self._lock:
            pending = list(self.store.changes) if changes is None else list(changes)
        realm = realm_id or self.realm_id
        if style == "legacy":
            payload: Any = {"eventNotifications": [{"realmId": realm, "dataChangeEvent": {
                "entities": [{"name": e, "id": rid, "operation": op,
                              "lastUpdated": _utc(at)} for e, rid, op, at in pending]}}]}
        else:
            payload = [{"specversion": "1.0", "id": str(uuid.uuid4()),
                        "source": "intuit.dsnBgbseACLLRZNxo2dfc4evmEJdxde58xeeYcZliOU=",
                        "type": f"qbo.{e.lower()}.{_past(op)}.v1",
                        "datacontenttype": "application/json", "time": _utc(at),
                        "intuitentityid": rid, "intuitaccountid": realm, "data": {}}
                       for e, rid, op, at in pending]
        body = orjson.dumps(payload)
        sig = signature(key or self.verifier_token, body)
        response = httpx.post(url, content=tamper(body) if tamper else body, timeout=5.0,
                              headers={SIGNATURE_HEADER: sig,
                                       "Content-Type": "application/json"})
        if changes is None and response.status_code == 200:
            with self._lock:
                del self.store.changes[:len(pending)]
        return response

    def subscribe(self, url: str, *, style: Literal["legacy", "cloudevents"] = "legacy",
                  interval: float = 0.5) -> WebhookPump:
        """Send pending changes to `url` (send_webhooks) every `interval` s until stopped."""
        self.unsubscribe()

        def pending() -> bool:
            with self._lock:
                return bool(self.store.changes)

        self._pump = WebhookPump("qbo-sandbox-webhooks", pending,
                                 lambda: self.send_webhooks(url, style=style),
                                 interval=interval).start()
        return self._pump

    def unsubscribe(self) -> None:
        """Stop automatic delivery (changes not delivered yet stay pending)."""
        if self._pump is not None:
            self._pump.stop()
            self._pump = None

    # -- token endpoint ---------------------------------------------------------------------

    def token(self, authorization: str | None, form: dict[str, list[str]]) -> tuple[int, bytes]:
        """POST /oauth2/v1/tokens/bearer."""
        with self._lock:
            self.token_requests += 1
            expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode())
            if authorization != f"Basic {expected.decode()}":
                return 401, orjson.dumps({"error": "invalid_client"})
            if form.get("grant_type", [""])[0] != "refresh_token":
                return 400, orjson.dumps({"error": "unsupported_grant_type"})
            old = form.get("refresh_token", [""])[0]
            if old not in self._refresh:
                return 400, orjson.dumps({"error": "invalid_grant"})
            self._refresh.discard(old)
            access = "eyJ" + secrets.token_hex(24)
            self._access[access] = self.clock() + self.token_ttl
            return 200, orjson.dumps({"access_token": access,
                                      "refresh_token": self.issue_refresh_token(),
                                      "token_type": "bearer", "expires_in": int(self.token_ttl),
                                      "x_refresh_token_expires_in": REFRESH_TOKEN_TTL})

    # -- API gate ---------------------------------------------------------------------------

    def gate(self, authorization: str | None, realm: str,
             batch: bool) -> tuple[int, bytes, dict[str, str]] | None:
        """Auth, realm, rate limits and faults; the answer to send instead, or None."""
        with self._lock:
            token = (authorization or "")[7:] if (authorization or "").startswith("Bearer ") \
                else ""
            expiry = self._access.get(token)
            if expiry is None or expiry <= self.clock():
                detail = "Token expired: " + token[:8] + "..." if token else "No token"
                return 401, _auth_fault("AuthenticationFailed", "003200", 401, detail,
                                        "AUTHENTICATION"), {
                    "WWW-Authenticate": 'Bearer realm="Intuit", error="invalid_token"'}
            if realm != self.realm_id:
                return 403, _auth_fault("ApplicationAuthorizationFailed", "003100", 403,
                                        f"realm {realm} is not connected to this app",
                                        "AUTHORIZATION"), {}
            now = time.monotonic()
            for window, span in ((self._calls, 60.0), (self._batches, 60.0)):
                while window and now - window[0] >= span:
                    window.popleft()
            last_second = sum(1 for t in self._calls if now - t < 1.0)
            if last_second >= self.per_second or len(self._calls) >= self.per_minute or (
                    batch and len(self._batches) >= self.batch_per_minute):
                return self._throttled()
            self._calls.append(now)
            if batch:
                self._batches.append(now)
            roll = self._fault_rng.random()
        if roll < self.faults.rate_limit:
            return self._throttled()
        if roll < self.faults.rate_limit + self.faults.server_error:
            status = 503 if int(roll * 1000) % 2 else 500
            return status, _auth_fault("InternalServerError", "003500", status,
                                       "An internal error occurred", "SERVICE"), {}
        return None

    @staticmethod
    def _throttled() -> tuple[int, bytes, dict[str, str]]:
        # QBO sends no Retry-After and no rate-limit headers: clients must wait 60 s.
        return 429, _auth_fault("ThrottleExceeded", "003001", 429,
                                "The request limit was reached.", "SERVICE"), {}

    # -- API routes -------------------------------------------------------------------------

    def handle(self, method: str, resource: str, query: dict[str, list[str]],
               content_type: str, raw: bytes) -> tuple[int, bytes]:
        """Route one authorised API request; (status, JSON body)."""
        if "minorversion" in query:
            self.minor_versions.append(query["minorversion"][0])
        request_id = query.get("requestid", [None])[0]
        if method == "POST" and request_id is not None:
            if len(request_id) > REQUEST_ID_MAX:
                return self._fault(Fault("6000", "A business validation error has occurred "
                                         "while processing your request", f"requestid must "
                                         f"be at most {REQUEST_ID_MAX} characters"))
            with self._lock:
                if request_id in self._replays:
                    return self._replays[request_id]
        with self._lock:
            answer = self._route(method, resource, query, content_type, raw)
            if method == "POST" and request_id is not None and resource != "query":
                self._replays[request_id] = answer
            return answer

    def _route(self, method: str, resource: str, query: dict[str, list[str]],
               content_type: str, raw: bytes) -> tuple[int, bytes]:
        try:
            if resource == "query":
                if method == "GET":
                    text = query.get("query", [""])[0]
                elif "application/text" in content_type:
                    text = raw.decode("utf-8", "replace")
                else:
                    return self._fault(Fault("4000", "Error parsing query", "QueryParserError: "
                                             "POST /query needs Content-Type: "
                                             "application/text"))
                return 200, self._dump({"QueryResponse": self._query(text)})
            if resource == "cdc" and method == "GET":
                return 200, self._dump({"CDCResponse": [{"QueryResponse": self._cdc(query)}]})
            if method != "POST":
                return 405, self._dump({"Fault": Fault("405", "Method not allowed",
                                                       f"{method} /{resource}").body()})
            try:
                body = orjson.loads(raw) if raw else None
            except orjson.JSONDecodeError:
                raise Fault("2010", "Request has invalid or unsupported property",
                            "the request body is not valid JSON") from None
            if resource == "batch":
                if self.before_batch is not None:
                    self.before_batch()
                return 200, self._dump({"BatchItemResponse": self._batch(body)})
            entity = WRITE_PATHS.get(resource)
            if entity is None:
                return 404, self._dump({"Fault": Fault("404", "Not found",
                                                       f"no resource /{resource}").body()})
            operation = query.get("operation", [""])[0]
            if operation == "delete":
                return 200, self._dump({entity: self.store.delete(entity, body)})
            if operation not in ("", "update", "create"):
                raise Fault("2010", "Request has invalid or unsupported property",
                            f"operation {operation!r} is not supported here")
            if isinstance(body, dict) and body.get("Id") not in (None, ""):
                return 200, self._dump({entity: self.store.update(entity, body)})
            return 200, self._dump({entity: self.store.create(entity, body)})
        except Fault as fault:
            return self._fault(fault)

    def _query(self, text: str) -> dict[str, Any]:
        try:
            parsed = parse(text)
        except QueryError as exc:
            raise Fault("4000", "Error parsing query", f"QueryParserError: {exc}") from None
        found = self.store.query(parsed)
        if isinstance(found, int):
            return {"totalCount": found}
        if not found:
            return {}  # QBO's empty answer: the entity key is absent
        return {parsed.entity: found, "startPosition": parsed.start, "maxResults": len(found)}

    def _cdc(self, query: dict[str, list[str]]) -> list[dict[str, Any]]:
        names = [n.strip() for n in query.get("entities", [""])[0].split(",") if n.strip()]
        unknown = [n for n in names if n not in ENTITIES]
        if not names or unknown:
            raise Fault("2010", "Request has invalid or unsupported property",
                        f"entities must name {', '.join(ENTITIES)}; got {', '.join(unknown)}")
        since_text = query.get("changedSince", [""])[0]
        try:
            since = parse_time(since_text)
        except ValueError:
            raise Fault("2010", "Request has invalid or unsupported property",
                        f"changedSince must be a date-time, got {since_text!r}") from None
        if since < self.clock() - self.cdc_lookback_days * 86_400:
            raise Fault("6000", "A business validation error has occurred while processing "
                        "your request", f"changedSince cannot be more than "
                        f"{self.cdc_lookback_days:g} days ago")  # [emu code]
        found, _capped = self.store.cdc(names, since, cap=self.cdc_cap)
        out = []
        for name in names:
            items = found[name]
            out.append({name: items, "startPosition": 1, "maxResults": len(items),
                        "totalCount": len(items)} if items else {})
        return out

    def _batch(self, body: Any) -> list[dict[str, Any]]:
        items = body.get("BatchItemRequest") if isinstance(body, dict) else None
        if not isinstance(items, list) or not items:
            raise Fault("2010", "Request has invalid or unsupported property",
                        "the body must be {\"BatchItemRequest\": [...]}")
        if len(items) > self.batch_max:
            raise Fault("6000", "A business validation error has occurred while processing "
                        "your request", f"a batch takes at most {self.batch_max} items, got "
                        f"{len(items)}")  # [emu]
        out = []
        for item in items:
            bid = str(item.get("bId", "")) if isinstance(item, dict) else ""
            try:
                out.append({"bId": bid, **self._batch_item(item)})
            except Fault as fault:
                out.append({"bId": bid, "Fault": fault.body()})
        return out

    def _batch_item(self, item: Any) -> dict[str, Any]:
        if not isinstance(item, dict) or not item.get("bId"):
            raise Fault("2020", "Required param missing, need to supply the required value "
                        "for the API", "every batch item needs a bId", "bId")
        entities = [e for e in ENTITIES if e in item]
        if len(entities) != 1:
            raise Fault("2010", "Request has invalid or unsupported property",
                        f"a batch item names one of {', '.join(ENTITIES)}")
        entity = entities[0]
        operation = item.get("operation")
        if operation == "create":
            return {entity: self.store.create(entity, item[entity])}
        if operation == "update":
            return {entity: self.store.update(entity, item[entity])}
        if operation == "delete":
            return {entity: self.store.delete(entity, item[entity])}
        raise Fault("2010", "Request has invalid or unsupported property",
                    f"operation must be create, update or delete, got {operation!r}",
                    "operation")

    def _fault(self, fault: Fault) -> tuple[int, bytes]:
        return (200 if self.faults_as_200 else 400), self._dump({"Fault": fault.body()})

    def _dump(self, answer: dict[str, Any]) -> bytes:
        return orjson.dumps({**answer, "time": iso(self.clock(), ms=True)},
                            default=_json_default)


# -- HTTP plumbing --------------------------------------------------------------------------


class _Server(SandboxServer):
    sandbox: QuickBooksSandbox


class _Handler(SandboxHandler):
    methods: ClassVar[frozenset[str]] = frozenset({"GET", "POST"})
    server: _Server

    def _serve(self, method: str) -> None:
        sandbox = self.server.sandbox
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        headers = {k.lower(): v for k, v in self.headers.items()}
        with sandbox._lock:
            sandbox.requests.append((method, parts.path, headers, parts.query))
        if parts.path == TOKEN_PATH and method == "POST":
            self._send(*sandbox.token(headers.get("authorization"),
                                      parse_qs(raw.decode("utf-8", "replace"))), {})
            return
        match = _PATH.match(parts.path)
        if match is None:
            self._send(404, orjson.dumps({"Fault": Fault("404", "Not found",
                                                         parts.path).body()}), {})
            return
        if sandbox.faults.latency:
            time.sleep(sandbox.faults.latency)
        realm, resource = match.groups()
        refused = sandbox.gate(headers.get("authorization"), realm, resource == "batch")
        if refused is not None:
            self._send(*refused)
            return
        status, payload = sandbox.handle(method, resource, parse_qs(parts.query),
                                         headers.get("content-type", ""), raw)
        self._send(status, payload, {})

    def _send(self, status: int, payload: bytes, headers: dict[str, str]) -> None:
        reason = self.responses.get(status, ("",))[0]
        lines = [f"HTTP/1.1 {status} {reason}", "Content-Type: application/json;charset=UTF-8",
                 f"Content-Length: {len(payload)}", f"intuit_tid: {uuid.uuid4()}"]
        lines.extend(f"{k}: {v}" for k, v in headers.items())
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.wfile.write(head + payload)  # one write: headers and body in one segment


# -- helpers ----------------------------------------------------------------------------------


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)  # QBO's JSON numbers: 100.0
    raise TypeError(f"cannot serialise {type(value).__name__}")


def _as_json(record: dict[str, Any]) -> dict[str, Any]:
    """A record exactly as a client would decode it (numbers as floats, not Decimals)."""
    decoded: dict[str, Any] = orjson.loads(orjson.dumps(record, default=_json_default))
    return decoded


def _auth_fault(message: str, code: str, status: int, detail: str, kind: str) -> bytes:
    """QBO's platform error body, with its lower-case keys."""
    return orjson.dumps({"warnings": None, "intuitObject": None, "fault": {"error": [{
        "message": f"message={message}; errorCode={code}; statusCode={status}",
        "detail": detail, "code": code.lstrip("0"), "element": None}], "type": kind},
        "report": None, "responseRequestId": None, "batchItemResponse": [],
        "attachableResponse": [], "syncErrorResponse": None, "requestId": None, "time": None,
        "status": None, "cdcresponse": []})


def _utc(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(seconds))


def _past(operation: str) -> str:
    """Legacy operation names as CloudEvents type verbs (Create -> created)."""
    return {"Create": "created", "Update": "updated", "Delete": "deleted", "Merge": "merged",
            "Void": "voided", "Emailed": "emailed"}.get(operation, operation.lower())


def main(argv: Sequence[str] | None = None) -> int:
    """Run the sandbox in the foreground and print how to connect to it."""
    parser = argparse.ArgumentParser(prog="hub sandbox quickbooks",
                                     description="Run the QuickBooks Online API emulator on "
                                                 "loopback.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--count", type=int, default=200, help="fake customers to create "
                        "(about two invoices each)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--per-second", type=int, default=10,
                        help="requests a second per realm before 429 (QBO: 10)")
    parser.add_argument("--per-minute", type=int, default=500,
                        help="requests a minute per realm before 429 (QBO: 500)")
    parser.add_argument("--rate-limit", type=float, default=0.0,
                        help="fraction of requests answered 429")
    parser.add_argument("--server-error", type=float, default=0.0,
                        help="fraction of requests answered 5xx")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added per answer")
    parser.add_argument("--webhook-url", help="POST signed webhook notifications for changes "
                        "here (e.g. http://127.0.0.1:8000/webhooks/quickbooks)")
    parser.add_argument("--webhook-style", choices=("legacy", "cloudevents"), default="legacy",
                        help="the delivery format: eventNotifications or CloudEvents")
    parser.add_argument("--verifier-token", default="sandbox-verifier-token",
                        help="the webhook verifier token deliveries are signed with")
    args = parser.parse_args(list(argv) if argv is not None else None)
    faults = Faults(rate_limit=args.rate_limit, server_error=args.server_error,
                    latency=args.latency, seed=args.seed)
    sandbox = QuickBooksSandbox(seed=args.seed, count=args.count, port=args.port,
                                faults=faults, per_second=args.per_second,
                                per_minute=args.per_minute)
    sandbox.verifier_token = args.verifier_token
    with sandbox:
        counts = {e: len(sandbox.store.records[e]) for e in ENTITIES}
        print(f"QuickBooks Online sandbox listening on {sandbox.base_url}")
        print(f"  {counts['Customer']} customers, {counts['Invoice']} invoices, "
              f"{counts['Payment']} payments (seed {args.seed})")
        print("  connection settings:")
        print(f"    base_url: {sandbox.base_url}")
        print(f"    token_url: {sandbox.token_url}")
        print(f"    realm_id: \"{sandbox.realm_id}\"")
        print("    client_id: ${QBO_CLIENT_ID}")
        print("    client_secret: ${QBO_CLIENT_SECRET}")
        print("    refresh_token: ${QBO_REFRESH_TOKEN}")
        print("    webhook_verifier: ${QBO_WEBHOOK_VERIFIER}")
        print("  sandbox credentials, not real secrets (the refresh token works once; the "
              "connector keeps the rotated ones in .liaison-tokens/):")
        print(f"  export QBO_CLIENT_ID={sandbox.client_id}")
        print(f"  export QBO_CLIENT_SECRET={sandbox.client_secret}")
        print(f"  export QBO_REFRESH_TOKEN={sandbox.refresh_token}")
        print(f"  export QBO_WEBHOOK_VERIFIER={sandbox.verifier_token}")
        if args.webhook_url:
            sandbox.subscribe(args.webhook_url, style=args.webhook_style)
            print(f"  webhooks: changes are sent to {args.webhook_url} ({args.webhook_style}), "
                  "signed with ${QBO_WEBHOOK_VERIFIER} (set webhook_verifier on the "
                  "connection)")
        print("Press Ctrl-C to stop.", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
