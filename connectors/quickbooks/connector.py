"""The QuickBooks Online Accounting connector: customers (companies), invoices and payments.

Auth
    OAuth2 bearer tokens (3600 s) refreshed ahead of expiry. Intuit's refresh tokens rotate,
    so the current one is kept in `.liaison-tokens/<connection>.json` under the config
    folder, written atomically under a thread + file lock so only one refresh happens at a
    time (connectors/oauth2.py, shared with Xero). A 401 refreshes once and repeats the call.
Reads
    The query endpoint on MetaData.LastUpdatedTime (CDC alone caps at 1000 objects and 30
    days, the query does not):
        SELECT * FROM Invoice WHERE MetaData.LastUpdatedTime >= '<since>'
          ORDERBY MetaData.LastUpdatedTime STARTPOSITION n MAXRESULTS m
    Customers add `Active IN (true,false)`, or QBO hides inactive ("deleted") ones. Times
    have whole seconds, so the read is a keyset walk over (second, Id): `>=` the cursor's
    second, dropping the records of that second already read, known by "Id:SyncToken" (a
    record changed again in the same second has a new SyncToken and is read again). A page
    reaching a later second restarts the query there at STARTPOSITION 1, so a record changed
    while we page (it moves to the end) cannot shift an unread one onto a page already
    passed. The walk ends on a short page (an empty answer is `{"QueryResponse": {}}`).
Deletions
    Customers are never deleted; `Active: false` is their deletion, seen by the query.
    Deleted invoices and payments vanish from queries, so an incremental read first asks
    CDC for them (`GET /cdc?entities=Invoice&changedSince=<cdc>`; tombstones are
    {"Id", "status": "Deleted"}). `cdc` is QBO's own time at the previous read (whole
    seconds, so a deletion in that second is seen twice rather than missed). When CDC is
    saturated (1000 objects) the window is narrowed by asking again from the newest change
    it returned; a cursor older than the 30-day lookback cannot see deletions any more:
    that is logged and the window starts at the oldest allowed time.
    Cursor: {"since": epoch s, "skip": ["Id:SyncToken", ...], "cdc": epoch s} plus "start"
    (mid-walk) or "deleted_from" (mid-tombstones).
Writes
    One POST /batch (up to 30 items, per-item results) per write() with `?requestid=` made
    from the ops' keys and content, so a repeated write gets QBO's replay of the first
    answer instead of duplicates. Updates are sparse and carry the record's current
    SyncToken (remembered from reads and writes, else read with one `Id IN (...)` query);
    a 5010 "Stale Object Error" re-reads those records and retries them once. Archive or
    delete of a customer: sparse update `Active: false`; delete of an invoice or payment:
    batch operation delete {Id, SyncToken}. Invoices and payments cannot be archived.
    Invoice lines written without DetailType are sales lines (SalesItemLineDetail); a
    payment with one line and no line Amount applies its TotalAmt to it.
    Read invoices lose QBO's computed SubTotalLineDetail line (the mapping language cannot
    skip a list element, and the line only repeats TotalAmt).
Rate limits
    No rate-limit headers exist: a per-realm RateGate keeps us under 10 requests/s and
    500/min, and a 429 (sent without Retry-After) counts as Retry-After `rate_limit_wait`
    (60 s), which hub.http honours or hands to the job layer.
Webhooks
    verify_webhook checks intuit-signature with the `webhook_verifier` setting and parses
    both the legacy and the CloudEvents format (connectors/quickbooks/webhooks.py).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, ClassVar

import orjson

from connectors.oauth2 import DEFAULT_REFRESH_AHEAD, connection_auth, token_file_path
from connectors.quickbooks import webhooks
from connectors.quickbooks.client import (
    BATCH_MAX,
    DEFAULT_BASE_URL,
    DEFAULT_MINOR_VERSION,
    DEFAULT_TOKEN_URL,
    OBJECT_NOT_FOUND,
    REQUEST_ID_MAX,
    STALE_OBJECT,
    VENDOR,
    QuickBooksClient,
    QuickBooksFault,
    ResponseHook,
    fault_of,
    gate_for,
    qbo_time,
    seconds_of,
)
from connectors.quickbooks.query import MAX_RESULTS, build
from hub.config.model import ConnectionConfig
from hub.connector import (
    BaseConnector,
    Capabilities,
    Cursor,
    EntitySupport,
    Health,
    NativeRecord,
    Page,
    WebhookEvent,
    WebhookRequest,
    WriteOp,
    WriteResult,
)
from hub.errors import (
    AuthError,
    HubError,
    PermanentError,
    TransientError,
)
from hub.http import make_client

log = logging.getLogger(__name__)

OBJECTS = ("Customer", "Invoice", "Payment")
DELETABLE = ("Invoice", "Payment")  # reported by CDC; customers only become inactive
REQUIRED = ("realm_id", "client_id", "client_secret", "refresh_token")
UPDATED = "MetaData.LastUpdatedTime"
CDC_CAP = 1000
CDC_LOOKBACK_DAYS = 30.0
RATE_LIMIT_WAIT = 60.0
TOKEN_CACHE_MAX = 50_000
_ALL = {"read": True, "write": True, "incremental": True, "deletes": True}


class QuickBooksConnector(BaseConnector):
    """QuickBooks Online Accounting API v3 (OAuth2): customers, invoices, payments."""

    name: ClassVar[str] = "quickbooks"
    capabilities: ClassVar[Capabilities] = Capabilities(
        entities={
            "company": EntitySupport(object="Customer", archive=True, **_ALL),
            "invoice": EntitySupport(object="Invoice", **_ALL),
            "payment": EntitySupport(object="Payment", **_ALL),
        },
        batch_size=BATCH_MAX,
        webhooks=True,
        settings={
            "base_url": f"API root (default {DEFAULT_BASE_URL}; the development sandbox is "
                        "https://sandbox-quickbooks.api.intuit.com)",
            "token_url": f"OAuth2 token endpoint (default {DEFAULT_TOKEN_URL})",
            "realm_id": "the QuickBooks company id (realmId)",
            "client_id": "the Intuit app's client id, as a ${ENV} reference",
            "client_secret": "the Intuit app's client secret, as a ${ENV} reference",
            "refresh_token": "the refresh token from the consent flow, as a ${ENV} reference; "
                             "the rotated ones are kept in token_file",
            "token_file": "where the rotating tokens are kept (default "
                          ".liaison-tokens/<system>.json next to the config file)",
            "refresh_ahead_seconds": "refresh the access token this long before it expires "
                                     f"(default {DEFAULT_REFRESH_AHEAD:g})",
            "minor_version": f"the API minorversion sent on every call (default "
                             f"{DEFAULT_MINOR_VERSION})",
            "webhook_verifier": "the webhook verifier token, as a ${ENV} reference (only for "
                                "webhooks)",
            "rate_limit_wait": "seconds to wait after a 429, which QBO sends without "
                               f"Retry-After (default {RATE_LIMIT_WAIT:g})",
            "requests_per_second": "most requests a second to this company (default 10; "
                                   "0: no pacing)",
            "requests_per_minute": "most requests a minute to this company (default 500; "
                                   "0: no pacing)",
            "cdc_lookback_days": f"how far back CDC can see deletions (default "
                                 f"{CDC_LOOKBACK_DAYS:g})",
            "cdc_cap": f"most objects one CDC answer holds (default {CDC_CAP}); a full "
                       "answer makes the connector ask again from its newest change",
            "timeout": "seconds to wait for an answer (default 30)",
        },
        secret_settings=frozenset({"client_id", "client_secret", "refresh_token",
                                   "webhook_verifier"}),
    )

    def __init__(self, connection: ConnectionConfig) -> None:
        super().__init__(connection)
        self._api: QuickBooksClient | None = None
        # The SyncToken last seen per record: saves a read before most updates; a stale one
        # costs one 5010 and a re-read.
        self._tokens: dict[tuple[str, str], str] = {}

    # -- plumbing ------------------------------------------------------------------------

    @property
    def api(self) -> QuickBooksClient:
        """The QBO client, built on first use (no I/O in the constructor)."""
        if self._api is None:
            for key in REQUIRED:
                self.required_setting(key)
            system = f"QuickBooks ({self.connection.name})"
            timeout = self.number_setting("timeout", 30.0)
            base_url = str(self.connection.setting("base_url") or DEFAULT_BASE_URL).rstrip("/")
            hook = ResponseHook(self.number_setting("rate_limit_wait", RATE_LIMIT_WAIT))
            http = make_client(base_url, system=system, retry=self.connection.retry,
                               timeout=timeout, user_agent="liaison-hub/quickbooks",
                               on_response=hook)
            token_http = make_client(base_url, system=f"{system} token endpoint",
                                     retry=self.connection.retry, timeout=timeout,
                                     user_agent="liaison-hub/quickbooks")
            auth = connection_auth(self, token_http, vendor=VENDOR,
                                   default_token_url=DEFAULT_TOKEN_URL,
                                   refresh_required=True)
            realm = self.required_setting("realm_id")
            gate = gate_for(base_url, realm, int(self.number_setting("requests_per_second", 10)),
                            int(self.number_setting("requests_per_minute", 500)))
            self._api = QuickBooksClient(
                http, auth, realm, hook=hook, gate=gate,
                minor_version=str(self.connection.setting("minor_version")
                                  or DEFAULT_MINOR_VERSION))
        return self._api

    def token_path(self) -> Path:
        """The file holding this connection's rotating tokens."""
        return token_file_path(self.connection)

    @staticmethod
    def _check_object(object: str) -> None:
        if object not in OBJECTS:
            raise PermanentError(f"QuickBooks has no object {object!r} here (known: "
                                 f"{', '.join(OBJECTS)})")

    def check(self) -> Health:
        """Read one customer: proves the token, the realm and the API."""
        try:
            self.api.probe()
        except AuthError as exc:
            return Health(ok=False, message=f"QuickBooks refused the credentials: {exc}")
        except HubError as exc:
            return Health(ok=False, message=str(exc))
        return Health(ok=True, message="QuickBooks answered and accepted the token and realm")

    def verify_webhook(self, request: WebhookRequest) -> list[WebhookEvent]:
        """Check intuit-signature, then list this company's customer/invoice/payment events."""
        webhooks.check_signature(request, self.required_setting("webhook_verifier"))
        return webhooks.parse_events(request.body, self.connection.setting("realm_id"))

    def close(self) -> None:
        """Close the HTTP connections."""
        if self._api is not None:
            self._api.http.close()
            self._api.auth.http.close()
            self._api = None

    # -- reads --------------------------------------------------------------------------------

    def read(self, object: str, cursor: Cursor | None, *, incremental: bool,
             page_size: int) -> Iterator[Page]:
        """Yield pages oldest change first (see the module docstring for the cursor)."""
        self._check_object(object)
        size = max(1, min(page_size, MAX_RESULTS))
        if cursor and "deleted_from" in cursor:  # resuming among the tombstones
            yield from self._incremental(object, dict(cursor), size)
        elif cursor and "start" in cursor:  # resuming a walk that stopped mid-way
            yield from self._walk(object, dict(cursor), size)
        elif incremental and cursor and "since" in cursor:
            yield from self._incremental(object, dict(cursor), size)
        else:  # first run, or a full refresh
            yield from self._walk(object, {"since": None, "skip": [], "start": 1,
                                           "cdc": None}, size)

    def _incremental(self, object: str, state: dict[str, Any], size: int) -> Iterator[Page]:
        since = int(state["since"]) if state.get("since") is not None else 0
        skip = list(state.get("skip") or [])
        cdc = state.get("cdc")
        walk = {"since": since, "skip": skip, "start": 1, "cdc": cdc}
        if object not in DELETABLE or cdc is None:
            yield from self._walk(object, walk, size)
            return
        tombstones, now = self._deleted_since(object, int(cdc))
        done = int(state.get("deleted_from") or 0)
        rest = tombstones[done:]
        for at in range(0, len(rest), size):
            chunk = rest[at:at + size]
            if at + size < len(rest):
                yield Page(chunk, {"since": since, "skip": skip, "cdc": cdc,
                                   "deleted_from": done + at + size})
            else:
                yield Page(chunk, {**walk, "cdc": now})
        yield from self._walk(object, {**walk, "cdc": now}, size)

    def _deleted_since(self, object: str, cdc: int) -> tuple[list[NativeRecord], int]:
        """Tombstones since `cdc`, oldest first, and QBO's time of the first answer."""
        lookback = self.number_setting("cdc_lookback_days", CDC_LOOKBACK_DAYS) * 86_400
        oldest = int(time.time() - lookback) + 3600  # an hour's margin for clock skew
        if cdc < oldest:
            log.warning("QuickBooks (%s): the last read of %s deletions was more than %g days "
                        "ago; CDC cannot see further back, so deletions before %s are not "
                        "reported (run a full refresh to compare)", self.connection.name,
                        object, lookback / 86_400, time.strftime("%Y-%m-%d", time.gmtime(oldest)))
            cdc = oldest
        cap = int(self.number_setting("cdc_cap", CDC_CAP))
        found: dict[str, NativeRecord] = {}
        first_time: int | None = None
        since = cdc
        while True:
            changed, answered = self.api.cdc([object], since)
            first_time = answered if first_time is None else first_time
            items = changed.get(object, [])
            for item in items:
                if item.get("status") == "Deleted":
                    found[str(item.get("Id"))] = item
            if len(items) < cap:
                break
            newest = max((seconds_of((i.get("MetaData") or {}).get("LastUpdatedTime")) or 0
                          for i in items), default=since)
            if newest <= since:
                log.warning("QuickBooks (%s): more than %d %s changes in one second; some "
                            "deletions may not be reported", self.connection.name, cap,
                            object)
                break
            since = newest  # saturated: narrow the window to after what we got
        ordered = sorted(found.values(), key=lambda t: (
            seconds_of((t.get("MetaData") or {}).get("LastUpdatedTime")) or 0,
            _id_order(t.get("Id"))))
        return ordered, first_time if first_time is not None else int(time.time())

    def _walk(self, object: str, state: dict[str, Any], size: int) -> Iterator[Page]:
        since: int | None = state["since"]
        skip = {str(i) for i in state.get("skip") or ()}
        start = int(state.get("start") or 1)
        cdc: int | None = state.get("cdc")
        # The newest (second, "Id:SyncToken"s at that second) yielded so far.
        last, at_last = (since, set(skip)) if since is not None else (None, set())
        while True:
            where: list[tuple[str, str, Any]] = []
            if object == "Customer":
                where.append(("Active", "IN", (True, False)))  # inactive ones too
            if since is not None:
                where.append((UPDATED, ">=", qbo_time(since)))
            page = self.api.query(build(object, where, order_by=UPDATED, start=start,
                                        max_results=size), object)
            if cdc is None:
                cdc = page.time if page.time is not None else int(time.time())
            records = []
            for record in page.records:
                at = seconds_of((record.get("MetaData") or {}).get("LastUpdatedTime")) or 0
                token = f"{record.get('Id')}:{record.get('SyncToken')}"
                if since is not None and (at < since or (at == since and token in skip)):
                    continue  # read before: `>=` repeats the cursor's second
                records.append(self._seen(object, record))
                if last is None or at > last:
                    last, at_last = at, {token}
                elif at == last:
                    at_last.add(token)
            if len(page.records) < size:
                yield Page(records, {"since": last if last is not None else 0,
                                     "skip": sorted(at_last), "cdc": cdc})
                return
            if last is not None and (since is None or last > since):
                # Restart at the newest second reached: records changed meanwhile moved to
                # the end, so nothing unread can have slipped behind this point.
                since, skip, start = last, set(at_last), 1
            else:
                start += size  # a page inside one second: no later point to restart from
            yield Page(records, {"since": since, "skip": sorted(skip), "start": start,
                                 "cdc": cdc})

    def _seen(self, object: str, record: NativeRecord) -> NativeRecord:
        """Remember the record's SyncToken; drop an invoice's computed subtotal line."""
        rid, token = record.get("Id"), record.get("SyncToken")
        if rid is not None and token is not None:
            if len(self._tokens) >= TOKEN_CACHE_MAX:
                self._tokens.pop(next(iter(self._tokens)))
            self._tokens[(object, str(rid))] = str(token)
        if object == "Invoice" and isinstance(record.get("Line"), list):
            record["Line"] = [line for line in record["Line"] if not (
                isinstance(line, dict) and line.get("DetailType") == "SubTotalLineDetail")]
        return record

    def fetch(self, object: str, external_id: str) -> NativeRecord | None:
        """The current record (None when QBO does not know it or it was deleted)."""
        self._check_object(object)
        found = self._current(object, [external_id])
        return found.get(str(external_id))

    def _current(self, object: str, ids: Sequence[str]) -> dict[str, NativeRecord]:
        """The current records with these ids, by id (one query; absent ones left out)."""
        where: list[tuple[str, str, Any]] = [("Id", "IN", tuple(str(i) for i in ids))]
        if object == "Customer":
            where.append(("Active", "IN", (True, False)))
        page = self.api.query(build(object, where, max_results=MAX_RESULTS), object)
        return {str(r.get("Id")): self._seen(object, r) for r in page.records}

    # -- writes -------------------------------------------------------------------------------

    def write(self, object: str, ops: Sequence[WriteOp]) -> list[WriteResult]:
        """Apply up to 30 ops in one batch; one WriteResult per op, in the same order."""
        self._check_object(object)
        if len(ops) > BATCH_MAX:
            raise PermanentError(f"QuickBooks takes at most {BATCH_MAX} records per write, "
                                 f"got {len(ops)}")
        results: dict[int, WriteResult] = {}
        planned: dict[int, tuple[str, dict[str, Any]]] = {}
        for i, op in enumerate(ops):
            plan = self._plan(object, op)
            if isinstance(plan, WriteResult):
                results[i] = plan
            else:
                planned[i] = plan
        if planned:
            results.update(self._send(object, ops, planned, retry=False))
        return [results[i] for i in range(len(ops))]

    def _plan(self, object: str, op: WriteOp) -> tuple[str, dict[str, Any]] | WriteResult:
        """(batch operation, entity body without SyncToken) for one op, or its result."""
        record = {k: v for k, v in op.record.items()
                  if k not in ("Id", "SyncToken", "sparse", "MetaData")}
        if op.action in ("archive", "delete"):
            if not op.external_id:
                return _failed(op, f"QuickBooks {object}: cannot {op.action} record {op.key}: "
                                   f"it has no QuickBooks id (it was never written there)")
            if object == "Customer":  # customers are never deleted, only made inactive
                return "update", {"Id": op.external_id, "sparse": True, "Active": False}
            if op.action == "archive":
                return _failed(op, f"QuickBooks {object}: record {op.key} ({op.external_id}): "
                                   f"QuickBooks cannot archive a {object.lower()}, only "
                                   f"delete it (set the flow's delete_policy to delete)")
            return "delete", {"Id": op.external_id}
        if object == "Invoice":
            record = _sales_lines(record)
        elif object == "Payment":
            record = _applied_lines(record)
        if op.external_id:
            return "update", {**record, "Id": op.external_id, "sparse": True}
        return "create", record

    def _send(self, object: str, ops: Sequence[WriteOp],
              planned: dict[int, tuple[str, dict[str, Any]]], *,
              retry: bool) -> dict[int, WriteResult]:
        results: dict[int, WriteResult] = {}
        ids = [str(body["Id"]) for _op, body in planned.values() if "Id" in body]
        missing = [i for i in ids if retry or (object, i) not in self._tokens]
        current = self._current(object, missing) if missing else {}
        items: list[dict[str, Any]] = []
        for i, (operation, body) in planned.items():
            if "Id" in body:
                rid = str(body["Id"])
                if missing and rid in missing and rid not in current:
                    results[i] = _failed(ops[i], f"QuickBooks {object}: record {ops[i].key}: "
                                                 f"QuickBooks has no {object} {rid} (deleted "
                                                 f"or never there)", code=OBJECT_NOT_FOUND)
                    continue
                body = {**body, "SyncToken": self._tokens[(object, rid)]}
            items.append({"bId": str(i), "operation": operation, object: body})
        if not items:
            return results
        request_id = _request_id(object, "retry" if retry else "batch",
                                 [ops[int(it["bId"])].key for it in items],
                                 [planned[int(it["bId"])] for it in items])
        try:
            answers = self.api.batch(items, request_id)
        except (AuthError, TransientError):
            raise  # the whole call failed: the engine retries or stops the run
        except PermanentError as exc:
            if len(items) == 1:
                i = int(items[0]["bId"])
                results[i] = WriteResult(ops[i].key, False, external_id=ops[i].external_id,
                                         error=exc)
                return results
            # Refused as a whole (not per item): find the bad records one at a time.
            for item in items:
                i = int(item["bId"])
                results.update(self._send(object, ops, {i: planned[i]}, retry=retry))
            return results
        stale: dict[int, tuple[str, dict[str, Any]]] = {}
        for item in items:
            i = int(item["bId"])
            answer = answers.get(item["bId"])
            result = self._result(object, ops[i], answer)
            if isinstance(result.error, QuickBooksFault) and result.error.code == STALE_OBJECT:
                if not retry:
                    stale[i] = planned[i]  # changed in QBO meanwhile: re-read, try once more
                    continue
                result = WriteResult(ops[i].key, False, external_id=ops[i].external_id,
                                     error=TransientError(
                                         f"{result.error} (changed in QuickBooks again while "
                                         f"we wrote it; it will be retried)", status=400))
            results[i] = result
        if stale:
            results.update(self._send(object, ops, stale, retry=True))
        return results

    def _result(self, object: str, op: WriteOp, answer: Mapping[str, Any] | None) -> WriteResult:
        who = f"{op.key} ({op.external_id})" if op.external_id else op.key
        if answer is None:  # the outcome is unknown; the requestid makes a retry safe
            return WriteResult(op.key, False, external_id=op.external_id, error=TransientError(
                f"QuickBooks {object}: the batch answer did not include record {who}"))
        fault = fault_of(answer)
        if fault is not None:
            return WriteResult(op.key, False, external_id=op.external_id,
                               error=fault.error(f"QuickBooks {object}: record {who} refused",
                                                 status=400))
        stored = answer.get(object)
        if not isinstance(stored, dict) or not stored.get("Id"):
            return WriteResult(op.key, False, external_id=op.external_id, error=TransientError(
                f"QuickBooks {object}: the answer for record {who} holds no {object}"))
        rid = str(stored["Id"])
        if stored.get("status") == "Deleted":
            self._tokens.pop((object, rid), None)
            return WriteResult(op.key, True, external_id=rid)
        return WriteResult(op.key, True, external_id=rid,
                           record=self._seen(object, dict(stored)))


# -- helpers ----------------------------------------------------------------------------------


def _id_order(value: Any) -> tuple[int, str]:
    text = str(value)
    return (int(text), "") if text.isdigit() else (0, text)


def _failed(op: WriteOp, message: str, *, code: str | None = None) -> WriteResult:
    error: PermanentError = QuickBooksFault(message, code=code) if code \
        else PermanentError(message)
    return WriteResult(op.key, False, external_id=op.external_id, error=error)


def _request_id(object: str, what: str, keys: Sequence[str], bodies: Sequence[Any]) -> str:
    """One requestid per batch (<= 50 characters): the same ops and content, the same id.

    The content is part of it so that a batch reusing op keys with other records is not
    answered with a stale replay; SyncTokens are not (they change between tries).
    """
    digest = hashlib.sha256("\x1f".join([object, what, *keys]).encode())
    digest.update(orjson.dumps(list(bodies), option=orjson.OPT_SORT_KEYS, default=str))
    return f"lh-{digest.hexdigest()}"[:REQUEST_ID_MAX]


def _sales_lines(record: dict[str, Any]) -> dict[str, Any]:
    """Invoice lines: no computed subtotal, DetailType SalesItemLineDetail where unset."""
    lines = record.get("Line")
    if not isinstance(lines, list):
        return record
    out = []
    for line in lines:
        if not isinstance(line, dict):
            out.append(line)
            continue
        if line.get("DetailType") == "SubTotalLineDetail":
            continue
        line = dict(line)
        if not line.get("DetailType"):
            line["DetailType"] = "SalesItemLineDetail"
        if line["DetailType"] == "SalesItemLineDetail":
            detail = dict(line.get("SalesItemLineDetail") or {})
            line["SalesItemLineDetail"] = detail
            if line.get("Amount") is None:
                amount = _times(detail.get("Qty"), detail.get("UnitPrice"))
                if amount is not None:
                    line["Amount"] = amount
        out.append(line)
    return {**record, "Line": out}


def _applied_lines(record: dict[str, Any]) -> dict[str, Any]:
    """A payment's one line without Amount applies TotalAmt; LinkedTxn defaults to Invoice."""
    lines = record.get("Line")
    if not isinstance(lines, list):
        return record
    out = []
    for line in lines:
        if isinstance(line, dict):
            line = dict(line)
            if line.get("Amount") is None and len(lines) == 1:
                line["Amount"] = record.get("TotalAmt")
            linked = line.get("LinkedTxn")
            if isinstance(linked, list):
                line["LinkedTxn"] = [{"TxnType": "Invoice", **t} if isinstance(t, dict) else t
                                     for t in linked]
        out.append(line)
    return {**record, "Line": out}


def _times(qty: Any, price: Any) -> float | None:
    try:
        value = Decimal(str(qty)) * Decimal(str(price))
    except (InvalidOperation, ValueError):
        return None
    return float(value.quantize(Decimal("0.01")))
