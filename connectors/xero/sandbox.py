"""A stateful emulator of the Xero Accounting API subset the connector uses, on loopback.

Faithful to vendor-apis.md section 2 (rules in sandbox_store.py):
- OAuth2 token endpoint at /connect/token (Basic client auth): refresh_token grants rotate
  the refresh token on every use and answer 400 {"error": "invalid_grant"} to a used or
  unknown one; client_credentials grants give an access token only. Access tokens expire
  after `token_ttl` seconds (1800 like Xero).
- The API under /api.xro/2.0: Bearer auth (401 with Xero's problem body), the required
  `xero-tenant-id` header (403 with the same body when missing or wrong), answers wrapped
  as {"Id", "Status": "OK", "ProviderName", "DateTimeUTC", "<Objects>": [...]} with
  MS-JSON dates, `pagination` on paged lists (1-based page, pageSize <= 1000), `order`,
  `If-Modified-Since` (whole seconds; milliseconds are refused with 400 [emu]),
  `includeArchived`, `IDs`/`Statuses`/`InvoiceNumbers`/`ContactIDs` filters, GET by id
  (still wrapped in a list), PUT (create only) and POST (create or update) batches with
  `summarizeErrors`, POST /{Objects}/{id}, POST /Payments/{id} {"Status": "DELETED"}.
- Idempotency-Key (<= 128 characters) on PUT/POST replays the first answer to that key.
- Rate limits per tenant: `minute_limit` (60) and `day_limit` (5000) calls; every answer
  carries X-MinLimit-Remaining, X-DayLimit-Remaining and X-AppMinLimit-Remaining; over the
  limit, 429 with Retry-After and X-Rate-Limit-Problem (minute or day).
- Webhooks: changes after start-up are recorded as thin CONTACT/INVOICE events and sent,
  signed with x-xero-signature, by `send_webhooks`; `intent_to_receive` runs Xero's check
  (one well-signed and one mis-signed empty delivery: 200 and 401 expected).
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
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import httpx
import orjson

from connectors.sandbox_http import SandboxHandler, SandboxServer, ServedSandbox
from connectors.sandbox_pump import WebhookPump
from connectors.xero import fakedata
from connectors.xero.sandbox_store import OBJECTS, NotFound, Refused, XeroStore
from connectors.xero.webhooks import signature

API_PREFIX = "/api.xro/2.0"
TOKEN_PATH = "/connect/token"
IDEMPOTENCY_KEY_MAX = 128
APP_MINUTE_LIMIT = 10_000
_PATH = re.compile(r"^/([A-Za-z]+)(?:/([^/]+))?$")
_NO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:Z|[+-]00:?00)?$")


@dataclass(frozen=True)
class Faults:
    """Injected failures; every fraction is per API request, drawn from `seed`."""

    rate_limit: float = 0.0  # answer 429 (minute) with Retry-After
    server_error: float = 0.0  # answer 500/503 without doing anything
    latency: float = 0.0  # seconds added to every answer
    retry_after: float = 1.0  # Retry-After seconds sent with injected 429s
    seed: int = 0


class XeroSandbox(ServedSandbox):
    """The emulator: start it, point a connection at `.base_url` and `.token_url`."""

    def __init__(self, seed: int = 1, count: int = 0, port: int = 0,
                 faults: Faults = Faults(), *, minute_limit: int = 60,
                 day_limit: int = 5000, token_ttl: float = 1800.0,
                 clock: Callable[[], int] | None = None) -> None:
        rng = random.Random(seed)
        self.seed = seed
        self.faults = faults
        self.minute_limit = minute_limit
        self.day_limit = day_limit
        self.token_ttl = token_ttl
        self.client_id = "sandbox-client-id"
        self.client_secret = "sandbox-client-secret"
        self.webhook_key = "sandbox-webhook-key"
        self.tenant_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        self._clock = clock or (lambda: int(time.time() * 1000))
        self._requested_port = port
        self._lock = threading.RLock()
        self._fault_rng = random.Random(faults.seed)
        self._minute: deque[float] = deque()
        self._day_used = 0
        self._access: dict[str, float] = {}  # access token -> expiry (ms)
        self._refresh: set[str] = set()  # refresh tokens not used yet
        self._used_refresh: set[str] = set()
        self._replays: dict[str, tuple[int, bytes]] = {}
        self.requests: deque[tuple[str, str, dict[str, str]]] = deque(maxlen=10_000)
        self.token_requests = 0
        self.store = XeroStore(self._clock)
        self.store.load(fakedata.generate(seed, count))
        self.store.recording = True
        self.refresh_token = self.issue_refresh_token()
        self._server: SandboxServer | None = None
        self._thread: threading.Thread | None = None
        self._pump: WebhookPump | None = None

    # -- lifecycle --------------------------------------------------------------------------

    label = "Xero"

    def _make_server(self) -> SandboxServer:
        return _Server(("127.0.0.1", self._requested_port), _Handler)

    def _before_stop(self) -> None:
        self.unsubscribe()

    @property
    def base_url(self) -> str:
        """The connection's base_url."""
        return self.origin + API_PREFIX

    @property
    def token_url(self) -> str:
        """The connection's token_url."""
        return self.origin + TOKEN_PATH

    # -- helpers for tests ------------------------------------------------------------------

    def issue_refresh_token(self) -> str:
        """A fresh refresh token, as if the user had just gone through the consent flow."""
        with self._lock:
            token = "rt-" + secrets.token_hex(16)
            self._refresh.add(token)
            return token

    def expire_access_tokens(self) -> None:
        """Make every access token expire now (the API answers 401 until refreshed)."""
        with self._lock:
            self._access.clear()

    def records(self, object: str) -> list[dict[str, Any]]:
        """Every stored record of an object as the API shows it."""
        with self._lock:
            return [_as_json(self.store.public(object, rid))
                    for rid in self.store.records[object]]

    def get(self, object: str, rid: str) -> dict[str, Any]:
        """One stored record as the API shows it."""
        with self._lock:
            return _as_json(self.store.public(object, rid))

    def touch(self, object: str, rid: str, at_ms: int | None = None,
              **fields: Any) -> dict[str, Any]:
        """Change a record server-side (a Xero user's edit): bumps UpdatedDateUTC."""
        with self._lock:
            return _as_json(self.store.touch(object, rid, at_ms or self._clock(), **fields))

    def create(self, object: str, element: dict[str, Any]) -> dict[str, Any]:
        """Create one record server-side through the API's rules; the stored record."""
        with self._lock:
            status, body = self.store.write(object, "PUT", [element], summarize=True)
            if status != 200:
                raise ValueError(body["Elements"][0]["ValidationErrors"])
            return _as_json(body[object][0])

    def reset_rate_limits(self) -> None:
        """Forget the calls counted so far."""
        with self._lock:
            self._minute.clear()
            self._day_used = 0

    # -- webhooks ---------------------------------------------------------------------------

    def send_webhooks(self, url: str, events: Sequence[dict[str, Any]] | None = None, *,
                      key: str | None = None,
                      tamper: Callable[[bytes], bytes] | None = None) -> httpx.Response:
        """POST one signed delivery of `events` (default: every change not yet delivered).

        `key` signs with another key (a forged delivery); `tamper` changes the body after
        signing. Pending changes are dropped once the receiver answered 200.
        """
        with self._lock:
            pending = list(self.store.changes) if events is None else list(events)
        payload = {"events": [self._event(e) for e in pending],
                   "firstEventSequence": 1, "lastEventSequence": max(1, len(pending)),
                   "entropy": secrets.token_hex(10).upper()}
        body = orjson.dumps(payload)
        sig = signature(key or self.webhook_key, body)
        response = httpx.post(url, content=tamper(body) if tamper else body, timeout=5.0,
                              headers={"x-xero-signature": sig,
                                       "Content-Type": "application/json"})
        if events is None and response.status_code == 200:
            with self._lock:
                del self.store.changes[:len(pending)]
        return response

    def subscribe(self, url: str, *, interval: float = 0.5) -> WebhookPump:
        """Send pending changes to `url` (send_webhooks) every `interval` s until stopped."""
        self.unsubscribe()

        def pending() -> bool:
            with self._lock:
                return bool(self.store.changes)

        self._pump = WebhookPump("xero-sandbox-webhooks", pending,
                                 lambda: self.send_webhooks(url), interval=interval).start()
        return self._pump

    def unsubscribe(self) -> None:
        """Stop automatic delivery (changes not delivered yet stay pending)."""
        if self._pump is not None:
            self._pump.stop()
            self._pump = None

    def intent_to_receive(self, url: str) -> bool:
        """Xero's subscription check: 200 to a well-signed empty delivery, 401 to a mis-signed one."""
        good = self.send_webhooks(url, [])
        bad = self.send_webhooks(url, [], key=self.webhook_key + "-wrong")
        return good.status_code == 200 and bad.status_code == 401

    def _event(self, change: dict[str, Any]) -> dict[str, Any]:
        path = {"CONTACT": "Contacts", "INVOICE": "Invoices"}.get(change["eventCategory"],
                                                                  "Unknown")
        return {"resourceUrl": f"https://api.xero.com/api.xro/2.0/{path}/"
                               f"{change['resourceId']}",
                "tenantId": self.tenant_id, "tenantType": "ORGANISATION", **change}

    # -- token endpoint ---------------------------------------------------------------------

    def token(self, authorization: str | None, form: dict[str, list[str]]) -> tuple[int, bytes]:
        """POST /connect/token."""
        with self._lock:
            self.token_requests += 1
            expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode())
            if authorization != f"Basic {expected.decode()}":
                return 401, orjson.dumps({"error": "invalid_client"})
            grant = form.get("grant_type", [""])[0]
            answer: dict[str, Any] = {"token_type": "Bearer", "expires_in": int(self.token_ttl),
                                      "scope": "accounting.transactions accounting.contacts "
                                               "offline_access"}
            if grant == "refresh_token":
                old = form.get("refresh_token", [""])[0]
                if old not in self._refresh:
                    return 400, orjson.dumps({"error": "invalid_grant"})
                self._refresh.discard(old)
                self._used_refresh.add(old)
                answer["refresh_token"] = self.issue_refresh_token()
            elif grant != "client_credentials":
                return 400, orjson.dumps({"error": "unsupported_grant_type"})
            access = "at-" + secrets.token_hex(16)
            self._access[access] = self._clock() + self.token_ttl * 1000
            answer["access_token"] = access
            return 200, orjson.dumps(answer)

    # -- API --------------------------------------------------------------------------------

    def gate(self, authorization: str | None,
             tenant: str | None) -> tuple[int, bytes, dict[str, str]] | None:
        """Auth, tenant, rate limits and faults; the answer to send instead, or None."""
        with self._lock:
            token = (authorization or "")[7:] if (authorization or "").startswith("Bearer ") \
                else ""
            expiry = self._access.get(token)
            if expiry is None or expiry <= self._clock():
                return 401, _problem("Unauthorized", 401), {}
            if tenant != self.tenant_id:
                return 403, _problem("Forbidden", 403), {}
            now = time.monotonic()
            while self._minute and now - self._minute[0] >= 60.0:
                self._minute.popleft()
            if self._day_used >= self.day_limit:
                return self._limited(3600.0, "day")
            if len(self._minute) >= self.minute_limit:
                return self._limited(max(1.0, 60.0 - (now - self._minute[0])), "minute")
            self._minute.append(now)
            self._day_used += 1
            roll = self._fault_rng.random()
        if roll < self.faults.rate_limit:
            return self._limited(self.faults.retry_after, "minute")
        if roll < self.faults.rate_limit + self.faults.server_error:
            status = 503 if int(roll * 1000) % 2 else 500
            return status, _problem("Internal Server Error", status), self.rate_headers()
        return None

    def _limited(self, wait: float, problem: str) -> tuple[int, bytes, dict[str, str]]:
        headers = {**self.rate_headers(), "Retry-After": str(int(wait + 0.999)),
                   "X-Rate-Limit-Problem": problem}
        return 429, _problem("Too Many Requests", 429, f"Rate limit exceeded: {problem}"), headers

    def rate_headers(self) -> dict[str, str]:
        """The limit headers Xero sends on every answer."""
        return {"X-DayLimit-Remaining": str(max(0, self.day_limit - self._day_used)),
                "X-MinLimit-Remaining": str(max(0, self.minute_limit - len(self._minute))),
                "X-AppMinLimit-Remaining": str(APP_MINUTE_LIMIT - len(self._minute))}

    def handle(self, method: str, path: str, query: dict[str, list[str]],
               headers: dict[str, str], raw: bytes) -> tuple[int, bytes]:
        """Route one authorised API request; (status, JSON body)."""
        key = headers.get("idempotency-key")
        if key is not None and method in ("PUT", "POST"):
            if len(key) > IDEMPOTENCY_KEY_MAX:
                return 400, _error(f"Idempotency-Key must be at most {IDEMPOTENCY_KEY_MAX} "
                                   f"characters, got {len(key)}")
            with self._lock:
                if key in self._replays:
                    return self._replays[key]
        with self._lock:
            answer = self._route(method, path, query, headers, raw)
            if key is not None and method in ("PUT", "POST"):
                self._replays[key] = answer
            return answer

    def _route(self, method: str, path: str, query: dict[str, list[str]],
               headers: dict[str, str], raw: bytes) -> tuple[int, bytes]:
        match = _PATH.match(path)
        if not match or match.group(1) not in OBJECTS:
            return 404, _problem("NotFound", 404, "The resource you're looking for cannot "
                                 "be found")
        object, rid = match.groups()
        try:
            if method == "GET":
                return self._get(object, rid, query, headers)
            if method not in ("PUT", "POST") or (rid and method == "PUT"):
                return 405, _error(f"{method} is not supported on {path}")
            try:
                body = orjson.loads(raw) if raw else None
            except orjson.JSONDecodeError:
                return 400, _error("The request body is not valid JSON", "PostDataInvalidException")
            summarize = query.get("summarizeErrors", ["true"])[0].lower() != "false"
            if rid and object == "Payments":
                return 200, self._wrap(self.store.delete_payment(rid, body))
            elements = body.get(object) if isinstance(body, dict) else None
            if elements is None and isinstance(body, dict) and rid:
                elements = [body]
            if not isinstance(elements, list):
                return 400, _error(f"The body must be {{\"{object}\": [...]}}",
                                   "PostDataInvalidException")
            if rid:
                if rid not in self.store.records[object]:
                    raise NotFound(rid)
                elements = [{**e, f"{object[:-1]}ID": rid} if isinstance(e, dict) else e
                            for e in elements[:1]]
            status, answer = self.store.write(object, method, elements, summarize)
            return status, self._wrap(answer) if status == 200 else orjson.dumps(
                answer, default=_json_default)
        except NotFound:
            return 404, _problem("NotFound", 404, "The resource you're looking for cannot be "
                                 "found")
        except Refused as exc:
            return 400, orjson.dumps({"ErrorNumber": 10, "Type": "ValidationException",
                                      "Message": "A validation exception occurred",
                                      "Elements": [{"ValidationErrors": [
                                          {"Message": m} for m in exc.messages]}]})

    def _get(self, object: str, rid: str | None, query: dict[str, list[str]],
             headers: dict[str, str]) -> tuple[int, bytes]:
        if rid:
            return 200, self._wrap({object: [self.store.get(object, rid)]})
        if "where" in query:
            return 400, _error("This sandbox does not emulate `where` filters")
        since = headers.get("if-modified-since")
        since_ms = None
        if since:
            if not _NO_MS.fullmatch(since.strip()):
                return 400, _error(f"If-Modified-Since '{since}' must be a UTC date and time "
                                   "without milliseconds, like 2024-05-01T10:00:00")
            text = since.strip().replace("Z", "")[:19]
            since_ms = int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)
        page = _int(query, "page")
        if page is not None and page < 1:
            return 400, _error("page must be 1 or more")
        filters = {}
        for param, field in (("IDs", f"{object[:-1]}ID"), ("Statuses", "Status"),
                             ("InvoiceNumbers", "InvoiceNumber"), ("ContactIDs", "ContactID")):
            if param in query:
                filters[field] = {v.strip().upper() for v in query[param][0].split(",")}
        include_archived = query.get("includeArchived", ["false"])[0].lower() == "true"
        items, pagination = self.store.list_records(
            object, page=page, page_size=_int(query, "pageSize"), since_ms=since_ms,
            include_archived=include_archived, order=query.get("order", [None])[0],
            filters=filters)
        answer: dict[str, Any] = {object: items}
        if pagination is not None:
            answer = {"pagination": pagination, **answer}
        return 200, self._wrap(answer)

    def _wrap(self, answer: dict[str, Any]) -> bytes:
        return orjson.dumps({"Id": str(uuid.uuid4()), "Status": "OK",
                             "ProviderName": "Liaison Xero sandbox",
                             "DateTimeUTC": fakedata.ms_date(self._clock()), **answer},
                            default=_json_default)


# -- HTTP plumbing --------------------------------------------------------------------------


class _Server(SandboxServer):
    sandbox: XeroSandbox


class _Handler(SandboxHandler):
    methods: ClassVar[frozenset[str]] = frozenset({"GET", "POST", "PUT"})
    server: _Server

    def _serve(self, method: str) -> None:
        sandbox = self.server.sandbox
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        headers = {k.lower(): v for k, v in self.headers.items()}
        sandbox.requests.append((method, parts.path, headers))
        if parts.path == TOKEN_PATH and method == "POST":
            self._send(*sandbox.token(headers.get("authorization"),
                                      parse_qs(raw.decode("utf-8", "replace"))), {})
            return
        if not parts.path.startswith(API_PREFIX + "/"):
            self._send(404, _problem("NotFound", 404), {})
            return
        if sandbox.faults.latency:
            time.sleep(sandbox.faults.latency)
        if "json" not in headers.get("accept", ""):
            # Xero answers XML by default; this sandbox speaks JSON only.
            self._send(406, _error("Send Accept: application/json"), {})
            return
        refused = sandbox.gate(headers.get("authorization"), headers.get("xero-tenant-id"))
        if refused is not None:
            self._send(*refused)
            return
        status, payload = sandbox.handle(method, parts.path[len(API_PREFIX):],
                                         parse_qs(parts.query), headers, raw)
        self._send(status, payload, sandbox.rate_headers())

    def _send(self, status: int, payload: bytes, headers: dict[str, str]) -> None:
        reason = self.responses.get(status, ("",))[0]
        lines = [f"HTTP/1.1 {status} {reason}", "Content-Type: application/json; charset=utf-8",
                 f"Content-Length: {len(payload)}"]
        lines.extend(f"{k}: {v}" for k, v in headers.items())
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.wfile.write(head + payload)  # one write: headers and body in one segment


# -- helpers ----------------------------------------------------------------------------------


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)  # Xero's JSON numbers: 115.0
    raise TypeError(f"cannot serialise {type(value).__name__}")


def _as_json(record: dict[str, Any]) -> dict[str, Any]:
    """A record exactly as a client would decode it (numbers as floats, not Decimals)."""
    decoded: dict[str, Any] = orjson.loads(orjson.dumps(record, default=_json_default))
    return decoded


def _problem(title: str, status: int, detail: str = "AuthenticationUnsuccessful") -> bytes:
    """Xero's problem body (401/403 use Detail "AuthenticationUnsuccessful")."""
    return orjson.dumps({"Type": None, "Title": title, "Status": status, "Detail": detail,
                         "Instance": str(uuid.uuid4()), "Extensions": {}})


def _error(message: str, kind: str = "ValidationException") -> bytes:
    return orjson.dumps({"ErrorNumber": 10 if kind == "ValidationException" else 14,
                         "Type": kind, "Message": message})


def _int(query: dict[str, list[str]], name: str) -> int | None:
    values = query.get(name)
    if not values or not values[0].strip():
        return None
    try:
        return int(values[0])
    except ValueError:
        return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the sandbox in the foreground and print how to connect to it."""
    parser = argparse.ArgumentParser(prog="hub sandbox xero",
                                     description="Run the Xero Accounting API emulator on "
                                                 "loopback.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--count", type=int, default=200, help="fake contacts to create "
                        "(about two invoices each)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--minute-limit", type=int, default=60,
                        help="calls a minute per tenant before 429 (Xero: 60)")
    parser.add_argument("--rate-limit", type=float, default=0.0,
                        help="fraction of requests answered 429")
    parser.add_argument("--server-error", type=float, default=0.0,
                        help="fraction of requests answered 5xx")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added per answer")
    parser.add_argument("--webhook-url", help="POST signed webhook events for changes here "
                        "(e.g. http://127.0.0.1:8000/webhooks/xero)")
    parser.add_argument("--webhook-key", default="sandbox-webhook-key",
                        help="the webhook key deliveries are signed with")
    args = parser.parse_args(list(argv) if argv is not None else None)
    faults = Faults(rate_limit=args.rate_limit, server_error=args.server_error,
                    latency=args.latency, seed=args.seed)
    sandbox = XeroSandbox(seed=args.seed, count=args.count, port=args.port, faults=faults,
                          minute_limit=args.minute_limit)
    sandbox.webhook_key = args.webhook_key
    with sandbox:
        counts = {o: len(sandbox.store.records[o]) for o in OBJECTS}
        print(f"Xero sandbox listening on {sandbox.base_url}")
        print(f"  {counts['Contacts']} contacts, {counts['Invoices']} invoices, "
              f"{counts['Payments']} payments (seed {args.seed})")
        print("  connection settings:")
        print(f"    base_url: {sandbox.base_url}")
        print(f"    token_url: {sandbox.token_url}")
        print(f"    tenant_id: {sandbox.tenant_id}")
        print("    client_id: ${XERO_CLIENT_ID}")
        print("    client_secret: ${XERO_CLIENT_SECRET}")
        print("    refresh_token: ${XERO_REFRESH_TOKEN}")
        print("    webhook_key: ${XERO_WEBHOOK_KEY}")
        print("  sandbox credentials, not real secrets (the refresh token works once; the "
              "connector keeps the rotated ones in .liaison-tokens/):")
        print(f"  export XERO_CLIENT_ID={sandbox.client_id}")
        print(f"  export XERO_CLIENT_SECRET={sandbox.client_secret}")
        print(f"  export XERO_REFRESH_TOKEN={sandbox.refresh_token}")
        print(f"  export XERO_WEBHOOK_KEY={sandbox.webhook_key}")
        if args.webhook_url:
            sandbox.subscribe(args.webhook_url)
            print(f"  webhooks: changes are sent to {args.webhook_url}, signed with "
                  "${XERO_WEBHOOK_KEY} (set webhook_key on the connection)")
        print("Press Ctrl-C to stop.", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
