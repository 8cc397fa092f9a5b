"""The Xero Accounting connector: contacts (companies), invoices and payments.

Auth
    OAuth2 bearer tokens refreshed ahead of expiry; Xero's refresh tokens rotate on every
    use, so the current one is kept in `.liaison-tokens/<connection>.json` under the config
    folder, written atomically under a lock (connectors/oauth2.py). Every call carries
    the `xero-tenant-id` header (setting `tenant_id`).
Reads
    GET /{object} with `order=UpdatedDateUTC ASC`, 1-based `page`/`pageSize` (<= 1000),
    `includeArchived=true` for contacts, and for incremental reads the `If-Modified-Since`
    header (UTC, whole seconds). The read is a keyset walk over (UpdatedDateUTC, id): a page
    that reaches a later second restarts the query at that second with page 1, so a record
    changed while we page (it moves to the end) cannot shift an unread one onto a page we
    already passed. The header has no milliseconds, so the records of the cursor's second
    that were already read (older, or same millisecond and in `skip`) are dropped here.
    Cursor: {"since": ms, "skip": [ids at that ms]} plus "page" mid-run. A full read is the
    same walk without the header. Deletions come as data: ContactStatus ARCHIVED, invoice
    Status DELETED/VOIDED, payment Status DELETED (each bumps UpdatedDateUTC).
Writes
    Batches of up to 50 with `summarizeErrors=false` (per-element ValidationErrors become
    per-record results) and an Idempotency-Key made from the ops' keys, so a retried batch
    gets Xero's replay of the first answer instead of duplicates. Creates use PUT (create
    only), except invoices carrying an InvoiceNumber, which use POST (Xero updates the
    invoice with that number: an upsert by the canonical match key). Updates use POST with
    the record's id. Archive/delete: contacts ContactStatus=ARCHIVED; invoices Status=DELETED
    (drafts) or, where Xero refuses that, VOIDED (authorised); payments POST
    /Payments/{id} {"Status": "DELETED"}. Xero payments cannot be changed otherwise: an
    update that is not a deletion fails in its result.
Rate limits
    60 calls a minute per tenant: a Pacer slows down when X-MinLimit-Remaining runs low;
    429 answers carry Retry-After (hub.http honours it).
Webhooks
    verify_webhook checks x-xero-signature with the `webhook_key` setting
    (connectors/xero/webhooks.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import orjson

from connectors.oauth2 import DEFAULT_REFRESH_AHEAD, connection_auth, token_file_path
from connectors.xero import webhooks
from connectors.xero.client import (
    BATCH_MAX,
    DEFAULT_BASE_URL,
    DEFAULT_TOKEN_URL,
    ID_FIELD,
    PAGE_SIZE_MAX,
    VENDOR,
    XeroClient,
    if_modified_since,
    ms_of,
)
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
from hub.http import Pacer, make_client

_ALL = {"read": True, "write": True, "incremental": True, "deletes": True, "archive": True}
OBJECTS = ("Contacts", "Invoices", "Payments")
REQUIRED = ("tenant_id", "client_id", "client_secret")


class XeroConnector(BaseConnector):
    """Xero Accounting API 2.0 (OAuth2): contacts, invoices, payments."""

    name: ClassVar[str] = "xero"
    capabilities: ClassVar[Capabilities] = Capabilities(
        entities={
            "company": EntitySupport(object="Contacts", **_ALL),
            "invoice": EntitySupport(object="Invoices", **_ALL),
            "payment": EntitySupport(object="Payments", **_ALL),
        },
        batch_size=BATCH_MAX,
        webhooks=True,
        settings={
            "base_url": f"API base URL (default {DEFAULT_BASE_URL})",
            "token_url": f"OAuth2 token endpoint (default {DEFAULT_TOKEN_URL})",
            "tenant_id": "the Xero organisation (tenant) id, sent as xero-tenant-id",
            "client_id": "the Xero app's client id, as a ${ENV} reference",
            "client_secret": "the Xero app's client secret, as a ${ENV} reference",
            "refresh_token": "the refresh token from the consent flow, as a ${ENV} "
                             "reference; later ones are kept in token_file (omit it for a "
                             "custom connection: client_credentials)",
            "token_file": "where the rotating tokens are kept (default "
                          ".liaison-tokens/<system>.json next to the config file)",
            "refresh_ahead_seconds": "refresh the access token this long before it expires "
                                     f"(default {DEFAULT_REFRESH_AHEAD:g})",
            "webhook_key": "the webhook signing key, as a ${ENV} reference (only for webhooks)",
            "modified_since_rounding": "down (default: re-read the cursor's second and drop "
                                       "what was seen) or up (next second, as some clients "
                                       "do; may miss a change made in the same second)",
            "timeout": "seconds to wait for an answer (default 30)",
        },
        secret_settings=frozenset({"client_id", "client_secret", "refresh_token",
                                   "webhook_key"}),
    )

    def __init__(self, connection: ConnectionConfig) -> None:
        super().__init__(connection)
        self._api: XeroClient | None = None
        # Xero allows 60 calls a minute per tenant and says how many are left on every answer.
        self.pacer = Pacer(remaining_header="X-MinLimit-Remaining", interval_seconds=60.0,
                           reserve=5)

    # -- plumbing ------------------------------------------------------------------------

    @property
    def api(self) -> XeroClient:
        """The Xero client, built on first use (no I/O in the constructor)."""
        if self._api is None:
            for key in REQUIRED:
                self.required_setting(key)
            system = f"Xero ({self.connection.name})"
            timeout = float(self.connection.setting("timeout", 30.0))
            base_url = str(self.connection.setting("base_url") or DEFAULT_BASE_URL).rstrip("/")
            http = make_client(base_url, system=system, retry=self.connection.retry,
                               timeout=timeout, user_agent="liaison-hub/xero",
                               on_response=self.pacer)
            token_http = make_client(base_url, system=f"{system} token endpoint",
                                     retry=self.connection.retry, timeout=timeout,
                                     user_agent="liaison-hub/xero")
            auth = connection_auth(self, token_http, vendor=VENDOR,
                                   default_token_url=DEFAULT_TOKEN_URL,
                                   refresh_required=False)
            self._api = XeroClient(http, auth, self.required_setting("tenant_id"))
        return self._api

    def token_path(self) -> Path:
        """The file holding this connection's rotating tokens."""
        return token_file_path(self.connection)

    @staticmethod
    def _check_object(object: str) -> None:
        if object not in OBJECTS:
            raise PermanentError(f"Xero has no object {object!r} here (known: "
                                 f"{', '.join(OBJECTS)})")

    def check(self) -> Health:
        """Read one contact: proves the token, the tenant and the API."""
        try:
            self.api.probe()
        except AuthError as exc:
            return Health(ok=False, message=f"Xero refused the credentials: {exc}")
        except HubError as exc:
            return Health(ok=False, message=str(exc))
        return Health(ok=True, message="Xero answered and accepted the token and tenant")

    def verify_webhook(self, request: WebhookRequest) -> list[WebhookEvent]:
        """Check x-xero-signature, then list the contact/invoice events of this tenant."""
        webhooks.check_signature(request, self.required_setting("webhook_key"))
        return webhooks.parse_events(request.body, self.connection.setting("tenant_id"))

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
        if cursor and "page" in cursor:  # resuming a read that stopped mid-way
            state = dict(cursor)
        elif incremental and cursor and "since" in cursor:
            state = {"since": int(cursor["since"]), "skip": list(cursor.get("skip") or []),
                     "page": 1}
        else:  # first run, or a full refresh
            state = {"since": None, "skip": [], "page": 1}
        yield from self._walk(object, state, max(1, min(page_size, PAGE_SIZE_MAX)))

    def _walk(self, object: str, state: dict[str, Any], size: int) -> Iterator[Page]:
        since: int | None = state["since"]
        skip = {str(i) for i in state.get("skip") or ()}
        page_no = int(state.get("page") or 1)
        rounding = str(self.connection.setting("modified_since_rounding") or "down")
        id_field = ID_FIELD[object]
        # The newest (ms, ids at that ms) yielded so far: where the next query restarts.
        last_ms, at_last = (since, set(skip)) if since is not None else (None, set())
        while True:
            header = if_modified_since(since, rounding=rounding) if since is not None else None
            page = self.api.list_page(object, page=page_no, page_size=size,
                                      modified_since=header,
                                      include_archived=object == "Contacts")
            records = []
            for record in page.records:
                ms = ms_of(record.get("UpdatedDateUTC")) or 0
                rid = str(record.get(id_field))
                if since is not None and (ms < since or (ms == since and rid in skip)):
                    continue  # read before: the header has whole seconds only
                records.append(record)
                if last_ms is None or ms > last_ms:
                    last_ms, at_last = ms, {rid}
                elif ms == last_ms:
                    at_last.add(rid)
            done = len(page.records) < size or (page.page_count is not None
                                                and page.page_count <= page_no)
            if done:
                final: Cursor = {"since": last_ms or 0, "skip": sorted(at_last)}
                yield Page(records, final)
                return
            if last_ms is not None and (since is None or last_ms // 1000 > since // 1000):
                # Restart at the newest second reached: records changed meanwhile moved to
                # the end, so nothing unread can have slipped behind this point.
                since, skip, page_no = last_ms, set(at_last), 1
            else:
                page_no += 1  # a page within one second: no later point to restart from
            yield Page(records, {"since": since, "skip": sorted(skip), "page": page_no})

    def fetch(self, object: str, external_id: str) -> NativeRecord | None:
        """GET one record (None when Xero does not know it)."""
        self._check_object(object)
        try:
            return self.api.get_one(object, external_id)
        except PermanentError as exc:
            if exc.status in (400, 404):
                return None
            raise

    # -- writes -------------------------------------------------------------------------------

    def write(self, object: str, ops: Sequence[WriteOp]) -> list[WriteResult]:
        """Apply up to 50 ops; one WriteResult per op, in the same order."""
        self._check_object(object)
        if len(ops) > BATCH_MAX:
            raise PermanentError(f"Xero takes at most {BATCH_MAX} records per write, "
                                 f"got {len(ops)}")
        id_field = ID_FIELD[object]
        results: dict[int, WriteResult] = {}
        groups: dict[tuple[str, str], list[tuple[int, dict[str, Any]]]] = {}
        for i, op in enumerate(ops):
            planned = self._plan(object, id_field, op)
            if isinstance(planned, WriteResult):
                results[i] = planned
            elif object == "Payments" and op.external_id:
                results[i] = self._payment_change(op, planned[1])
            else:
                groups.setdefault(planned[0], []).append((i, planned[1]))
        for (method, kind), items in groups.items():
            results.update(self._send(object, method, kind, ops, items))
        return [results[i] for i in range(len(ops))]

    def _plan(self, object: str, id_field: str,
              op: WriteOp) -> tuple[tuple[str, str], dict[str, Any]] | WriteResult:
        """((method, kind), element) for one op, or its result when it cannot be sent."""
        record = {k: v for k, v in op.record.items() if k != id_field}
        if op.action in ("archive", "delete"):
            if not op.external_id:
                return WriteResult(op.key, False, error=PermanentError(
                    f"Xero {object}: cannot {op.action} record {op.key}: it has no Xero id "
                    f"(it was never written there)"))
            status = {"Contacts": ("ContactStatus", "ARCHIVED"),
                      "Invoices": ("Status", "DELETED"),
                      "Payments": ("Status", "DELETED")}[object]
            return ("POST", "remove"), {id_field: op.external_id, status[0]: status[1]}
        if op.external_id:
            return ("POST", "update"), {**record, id_field: op.external_id}
        if object == "Invoices" and (record.get("InvoiceNumber") or op.match.get("number")):
            # POST with an InvoiceNumber updates that invoice if it exists: an upsert.
            record.setdefault("InvoiceNumber", op.match.get("number"))
            return ("POST", "upsert"), record
        return ("PUT", "create"), record

    def _payment_change(self, op: WriteOp, element: dict[str, Any]) -> WriteResult:
        """Xero changes a payment only one way: POST /Payments/{id} {"Status": "DELETED"}."""
        changes = {k: v for k, v in element.items() if k != "PaymentID"}
        if changes.get("Status") != "DELETED":
            return WriteResult(op.key, False, external_id=op.external_id, error=PermanentError(
                f"Xero Payments: record {op.key} ({op.external_id}): Xero payments cannot be "
                f"changed, only deleted (delete it and create a new one)"))
        try:
            items = self.api.write("POST", "Payments", [{"Status": "DELETED"}],
                                   idempotency_key=_batch_key("Payments", "POST", [op.key],
                                                              [element]),
                                   record_id=str(op.external_id))
        except (AuthError, TransientError):
            raise
        except PermanentError as exc:
            return WriteResult(op.key, False, external_id=op.external_id, error=exc)
        return _element_result("Payments", "PaymentID", op, items[0] if items else None)

    def _send(self, object: str, method: str, kind: str, ops: Sequence[WriteOp],
              items: list[tuple[int, dict[str, Any]]]) -> dict[int, WriteResult]:
        id_field = ID_FIELD[object]
        key = _batch_key(object, f"{method}:{kind}", [ops[i].key for i, _ in items],
                         [e for _, e in items])
        try:
            answer = self.api.write(method, object, [e for _, e in items], idempotency_key=key)
        except (AuthError, TransientError):
            raise  # the whole call failed: the engine retries or stops the run
        except PermanentError as exc:
            if len(items) == 1:
                i = items[0][0]
                return {i: WriteResult(ops[i].key, False, external_id=ops[i].external_id,
                                       error=exc)}
            # Refused as a whole (not per element): find the bad records one at a time.
            out: dict[int, WriteResult] = {}
            for item in items:
                out.update(self._send(object, method, kind, ops, [item]))
            return out
        out = {}
        retry_void: list[tuple[int, dict[str, Any]]] = []
        for n, (i, element) in enumerate(items):
            returned = answer[n] if n < len(answer) and len(answer) == len(items) else None
            result = _element_result(object, id_field, ops[i], returned)
            if (not result.ok and object == "Invoices" and kind == "remove"
                    and element.get("Status") == "DELETED"):
                # Only drafts can be deleted; an authorised invoice is voided instead.
                retry_void.append((i, {**element, "Status": "VOIDED"}))
                continue
            out[i] = result
        if retry_void:
            out.update(self._send(object, method, "void", ops, retry_void))
        return out


# -- helpers ----------------------------------------------------------------------------------


def _batch_key(object: str, what: str, keys: Sequence[str],
               elements: Sequence[Mapping[str, Any]] = ()) -> str:
    """One Idempotency-Key per batch: the same ops with the same content give the same key.

    The content is part of it so that a batch reusing op keys with other records (which
    the engine never does, but a hand-made call might) is not answered with a stale replay.
    """
    digest = hashlib.sha256("\x1f".join([object, what, *keys]).encode())
    digest.update(orjson.dumps(list(elements), option=orjson.OPT_SORT_KEYS, default=str))
    return f"liaison-{digest.hexdigest()}"


def _errors_of(element: Mapping[str, Any]) -> list[str]:
    messages = [str(e.get("Message")) for e in element.get("ValidationErrors") or []
                if isinstance(e, Mapping) and e.get("Message")]
    failed = element.get("HasErrors") is True or element.get("HasValidationErrors") is True \
        or element.get("StatusAttributeString") == "ERROR"
    if failed and not messages:
        messages = ["refused without a message"]
    return messages


def _element_result(object: str, id_field: str, op: WriteOp,
                    element: Mapping[str, Any] | None) -> WriteResult:
    if element is None:  # the outcome is unknown; the Idempotency-Key makes a retry safe
        return WriteResult(op.key, False, external_id=op.external_id, error=TransientError(
            f"Xero {object}: the answer did not include record {op.key}"))
    problems = _errors_of(element)
    if problems:
        who = f"{op.key} ({op.external_id})" if op.external_id else op.key
        return WriteResult(op.key, False, external_id=op.external_id, error=PermanentError(
            f"Xero {object}: record {who} refused: {'; '.join(problems)}", status=400))
    ext = element.get(id_field) or op.external_id
    return WriteResult(op.key, True, external_id=str(ext) if ext else None,
                       record=dict(element))
