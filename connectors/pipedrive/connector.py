"""The Pipedrive CRM connector (API v2): persons, organizations and deals.

Auth
    API token in the `x-api-token` header (setting `api_token`, a ${ENV} reference), read
    at each request. OAuth is not implemented: an OAuth app would need the token endpoint's
    `api_domain` as base_url and a refresh-token store; the API token covers one company.
Reads
    full         the list endpoint in id order (`cursor` / additional_data.next_cursor,
                 limit <= 500); deals then also list status=deleted (deals deleted in the
                 last 30 days, is_deleted true), so mappings see those deletions.
                 Mid-run cursor: {"mode": "full", "phase", "cursor", "started", "max_seen"};
                 final cursor: {"since": RFC 3339} for the next incremental read.
    incremental  updated_since=<since> (>=) with sort_by=update_time&sort_direction=asc,
                 then (deals) the same with status=deleted. update_time has whole seconds,
                 so `>=` re-reads the records of the cursor's own second: a record changed
                 in the same second as the last one read is never missed. Mid-run cursor:
                 {"mode": "incremental", "since", "window", "phase", "cursor", "max_seen"};
                 final: {"since": newest update_time seen}.
    Pipedrive lists no deleted persons or organizations: their deletions reach Liaison
    through webhooks (verify_webhook) or fetch(), so only deals declare `deletes`.
Writes
    v2 has no batch and no idempotency key, so ops are sent one by one (batch_size 1).
    create   persons: de-duplicated first by `GET /persons/search?term=<email>&fields=email
             &exact_match=true`; a live person with that exact email is updated instead, so
             a repeated create makes no duplicate. A POST is never retried blindly (a lost
             answer may hide a stored record): persons are searched for again before each
             try; other objects are retried in place only after a 429. Organizations have
             no unique field Liaison could search (no domain; search by name would merge
             different firms that share a name), and deals none either: their creates are
             NOT idempotent; a create whose answer was lost may leave a duplicate, which
             the engine's link prevents only once the first answer arrived.
    update   PATCH with the fields given (partial). Persons are written with `name` only
             (v2 accepts no first_name/last_name): the connector joins them, reading the
             current person when an update carries only one of the two.
    archive / delete   DELETE (soft, kept 30 days); an unknown id counts as done.
Rate limits
    x-ratelimit-remaining / x-ratelimit-reset drive a Pacer that slows down before the 429.
Webhooks
    Pipedrive webhooks v2 are not signed: verify_webhook checks the HTTP Basic credentials
    (settings webhook_user / webhook_password) in constant time (see webhooks.py).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar

from connectors.pipedrive import webhooks
from connectors.pipedrive.client import (
    DEFAULT_BASE_URL,
    INT_FIELDS,
    LIST_LIMIT_MAX,
    OBJECTS,
    READ_ONLY,
    PipedriveClient,
    PipedrivePacer,
    api_root,
    from_rfc3339,
    to_rfc3339,
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
    ConnectorError,
    HubError,
    PermanentError,
    RateLimited,
    SyncError,
    TransientError,
)
from hub.http import HttpClient, inline_retries, make_client, no_inline_retries

DEFAULT_OVERLAP_SECONDS = 0
# The phases of a read, per object: deals also list the deals deleted in the last 30 days.
PHASES: Mapping[str, tuple[str | None, ...]] = {
    "persons": (None,), "organizations": (None,), "deals": (None, "deleted"),
}


class PipedriveConnector(BaseConnector):
    """Pipedrive API v2 (API token): persons, organizations and deals."""

    name: ClassVar[str] = "pipedrive"
    capabilities: ClassVar[Capabilities] = Capabilities(
        entities={
            "contact": EntitySupport(object="persons", incremental=True, archive=True),
            "company": EntitySupport(object="organizations", incremental=True, archive=True),
            "deal": EntitySupport(object="deals", incremental=True, deletes=True,
                                  archive=True),
        },
        batch_size=1,
        webhooks=True,
        settings={
            "base_url": "https://<companydomain>.pipedrive.com (default "
                        f"{DEFAULT_BASE_URL}; a trailing /api/v2 is ignored)",
            "api_token": "the Pipedrive API token (Settings > Personal preferences > API), "
                         "as a ${ENV} reference",
            "webhook_user": "HTTP Basic user set as http_auth_user on the Pipedrive webhook "
                            "(needed only for webhooks)",
            "webhook_password": "HTTP Basic password set as http_auth_password on the "
                                "Pipedrive webhook, as a ${ENV} reference",
            "overlap_seconds": "incremental reads start this many seconds before the cursor "
                               f"(default {DEFAULT_OVERLAP_SECONDS})",
            "timeout": "seconds to wait for an answer (default 30)",
        },
        secret_settings=frozenset({"api_token", "webhook_password"}),
    )

    def __init__(self, connection: ConnectionConfig) -> None:
        super().__init__(connection)
        self._api: PipedriveClient | None = None
        self.pacer = PipedrivePacer(remaining_header="x-ratelimit-remaining",
                                    interval_seconds=2.0, reserve=2)

    # -- plumbing ------------------------------------------------------------------------

    @property
    def api(self) -> PipedriveClient:
        """The Pipedrive client, built on first use (no I/O in the constructor)."""
        if self._api is None:
            base_url = api_root(str(self.connection.setting("base_url") or DEFAULT_BASE_URL))
            http: HttpClient = make_client(
                base_url, system=f"Pipedrive ({self.connection.name})",
                auth_headers=self._auth_headers, retry=self.connection.retry,
                timeout=float(self.connection.setting("timeout", 30.0)),
                user_agent="liaison-hub/pipedrive", on_response=self.pacer)
            self.pacer.max_wait = self.connection.retry.backoff_max
            self._api = PipedriveClient(http)
        return self._api

    def _missing(self, key: str, what: str) -> ConnectorError:
        where = f" ({self.connection.where_of(key)})" if self.connection.where else ""
        return ConnectorError(f"connection {self.connection.name}{where}: setting {key!r} "
                              f"is missing ({what})")

    def _auth_headers(self) -> dict[str, str]:
        token = self.connection.setting("api_token")  # revealed now, at use, never stored
        if not token:
            raise self._missing("api_token", "the Pipedrive API token, as ${ENV}")
        return {"x-api-token": str(token)}

    def _overlap(self) -> int:
        value = self.connection.setting("overlap_seconds", DEFAULT_OVERLAP_SECONDS)
        try:
            return max(0, int(value))
        except (TypeError, ValueError):
            raise ConnectorError(f"connection {self.connection.name}: setting "
                                 f"'overlap_seconds' must be a whole number, got "
                                 f"{value!r}") from None

    @staticmethod
    def _check_object(object: str) -> None:
        if object not in OBJECTS:
            raise PermanentError(f"Pipedrive has no object {object!r} here (known: "
                                 f"{', '.join(OBJECTS)})")

    def check(self) -> Health:
        """List one person: proves the API answers and accepts the token."""
        try:
            self.api.probe()
        except AuthError as exc:
            return Health(ok=False, message=f"Pipedrive refused the API token: {exc}")
        except HubError as exc:
            return Health(ok=False, message=str(exc))
        return Health(ok=True, message="Pipedrive answered and accepted the API token")

    def verify_webhook(self, request: WebhookRequest) -> list[WebhookEvent]:
        """Check a delivery's HTTP Basic credentials, then list the change it announces."""
        user = self.connection.setting("webhook_user")
        password = self.connection.setting("webhook_password")  # revealed now, at use
        if not user or not password:
            raise self._missing("webhook_user" if not user else "webhook_password",
                                "the http_auth_user / http_auth_password set on the "
                                "Pipedrive webhook; deliveries cannot be trusted without "
                                "them")
        webhooks.check_basic_auth(request, str(user), str(password))
        return webhooks.parse_event(request.body)

    def close(self) -> None:
        """Close the HTTP connections."""
        if self._api is not None:
            self._api.http.close()
            self._api = None

    # -- reads --------------------------------------------------------------------------------

    def read(self, object: str, cursor: Cursor | None, *, incremental: bool,
             page_size: int) -> Iterator[Page]:
        """Yield pages of native records (see the module docstring for the cursor shapes)."""
        self._check_object(object)
        limit = max(1, min(page_size, LIST_LIMIT_MAX))
        mode = cursor.get("mode") if cursor else None
        if cursor and mode == "full":
            yield from self._read_full(object, cursor, limit)
        elif cursor and mode == "incremental":
            yield from self._read_incremental(object, cursor, limit)
        elif incremental and cursor and cursor.get("since"):
            since = str(cursor["since"])
            window = to_rfc3339(from_rfc3339(since) - self._overlap())
            yield from self._read_incremental(object, {"since": since, "window": window},
                                              limit)
        else:  # first run, or a full refresh asked for
            yield from self._read_full(object, {"started": to_rfc3339(time.time())}, limit)

    def fetch(self, object: str, external_id: str) -> NativeRecord | None:
        """GET one record (a deleted one within 30 days reads with is_deleted true)."""
        self._check_object(object)
        try:
            record = self.api.get_one(object, external_id)
        except PermanentError as exc:
            if exc.status in (404, 410):
                return None
            raise
        return record or None

    def _read_full(self, object: str, cursor: Cursor, limit: int) -> Iterator[Page]:
        started = str(cursor.get("started") or to_rfc3339(time.time()))
        max_seen = _seconds(cursor.get("max_seen"))
        phases = PHASES[object]
        phase: str | None = cursor.get("phase")
        at = phases.index(phase) if phase in phases else 0
        page_cursor: str | None = cursor.get("cursor")
        while True:
            page = self.api.list_page(object, limit=limit, cursor=page_cursor,
                                      sort_by="id", status=phases[at])
            max_seen = _max_update(page.records, max_seen)
            page_cursor = page.next_cursor
            if page_cursor is None and at + 1 < len(phases):
                at += 1  # this phase is done: the next one starts from its beginning
            elif page_cursor is None:
                # Changes made while we paged may sit behind pages already read: the next
                # incremental read starts no later than when this read started.
                start_s = from_rfc3339(started)
                since = min(max_seen, start_s) if max_seen is not None else start_s
                yield Page(page.records, {"since": to_rfc3339(since)})
                return
            mid: Cursor = {"mode": "full", "phase": phases[at], "started": started}
            if page_cursor is not None:
                mid["cursor"] = page_cursor
            if max_seen is not None:
                mid["max_seen"] = to_rfc3339(max_seen)
            yield Page(page.records, mid)

    def _read_incremental(self, object: str, cursor: Cursor, limit: int) -> Iterator[Page]:
        since = str(cursor["since"])
        window = str(cursor.get("window") or since)
        max_seen = _seconds(cursor.get("max_seen")) or from_rfc3339(since)
        phases = PHASES[object]
        phase: str | None = cursor.get("phase")
        at = phases.index(phase) if phase in phases else 0
        page_cursor: str | None = cursor.get("cursor")
        while True:
            page = self.api.list_page(object, limit=limit, cursor=page_cursor,
                                      sort_by="update_time", updated_since=window,
                                      status=phases[at])
            max_seen = _max_update(page.records, max_seen) or max_seen
            page_cursor = page.next_cursor
            if page_cursor is None and at + 1 < len(phases):
                at += 1
            elif page_cursor is None:
                yield Page(page.records, {"since": to_rfc3339(max_seen)})
                return
            mid: Cursor = {"mode": "incremental", "since": since, "window": window,
                           "phase": phases[at], "max_seen": to_rfc3339(max_seen)}
            if page_cursor is not None:
                mid["cursor"] = page_cursor
            yield Page(page.records, mid)

    # -- writes -------------------------------------------------------------------------------

    def write(self, object: str, ops: Sequence[WriteOp]) -> list[WriteResult]:
        """Send the ops one by one; one WriteResult per op, in the same order.

        After a transient failure the rest of the ops are not sent (reported transient), so a
        rate-limited account is not pressed further; an AuthError stops the call.
        """
        self._check_object(object)
        results: list[WriteResult] = []
        halted: TransientError | None = None
        for op in ops:
            if halted is not None:
                results.append(WriteResult(op.key, False, external_id=op.external_id,
                                           error=TransientError(
                                               f"Pipedrive {object}: record {op.key} not sent "
                                               f"because an earlier one failed: {halted}")))
                continue
            try:
                results.append(self._write_one(object, op))
            except AuthError:
                raise
            except TransientError as exc:
                halted = exc
                results.append(WriteResult(op.key, False, external_id=op.external_id,
                                           error=exc))
        return results

    def _write_one(self, object: str, op: WriteOp) -> WriteResult:
        try:
            if op.action in ("archive", "delete"):
                return self._delete(object, op)
            if op.external_id:
                return self._update(object, op, op.external_id)
            return self._create(object, op)
        except PermanentError as exc:
            if isinstance(exc, AuthError):
                raise
            return WriteResult(op.key, False, external_id=op.external_id,
                               error=_record_error(object, op, exc))

    def _create(self, object: str, op: WriteOp) -> WriteResult:
        """POST a new record; persons are looked up by email first (before every try).

        The POST itself is never retried blindly by the HTTP layer: an answer lost after
        Pipedrive stored the record would make the retry a duplicate. A person is searched
        for again before each new try; other objects, which cannot be looked up, are tried
        again here only after a 429 (Pipedrive refused the call, nothing was stored).
        """
        body = self._body(object, op.record, None)
        email = _email_of(op) if object == "persons" else None
        retry = self.connection.retry
        tries = max(1, retry.attempts) if inline_retries() else 1
        for n in range(1, tries + 1):
            if email:
                existing = self.api.persons_by_email(email)
                if existing:  # written before (a retried create): update it instead
                    return self._update(object, op, str(existing[0]))
            try:
                with no_inline_retries():
                    return _ok(op, self.api.create(object, body))
            except TransientError as exc:
                if n == tries or not (email or isinstance(exc, RateLimited)):
                    raise
                wait = min(retry.backoff_max, retry.backoff_initial * 2 ** (n - 1))
                if isinstance(exc, RateLimited):  # wait for the window Pipedrive named
                    reset = exc.retry_after or self.pacer.last_reset or 0.0
                    wait = max(wait, min(reset, retry.backoff_max))
                self.pacer.sleep(wait)
        raise AssertionError("unreachable: the last try returns or raises")

    def _update(self, object: str, op: WriteOp, external_id: str) -> WriteResult:
        record = self.api.update(object, external_id,
                                 self._body(object, op.record, external_id))
        return _ok(op, record, external_id)

    def _delete(self, object: str, op: WriteOp) -> WriteResult:
        if not op.external_id:
            return WriteResult(op.key, False, error=PermanentError(
                f"Pipedrive {object}: cannot delete record {op.key}: it has no Pipedrive id "
                f"(it was never written there)"))
        try:
            self.api.delete(object, op.external_id)
        except PermanentError as exc:
            if exc.status != 404 or isinstance(exc, AuthError):
                raise
            # Already gone (deleted by someone else, or our earlier answer was lost).
        return WriteResult(op.key, True, external_id=op.external_id)

    def _body(self, object: str, record: NativeRecord, external_id: str | None) -> dict[str, Any]:
        """The JSON body of a create/update: read-only fields out, Pipedrive's quirks in."""
        read_only = READ_ONLY[object]
        body = {k: _as_int(v) if k in INT_FIELDS else v for k, v in record.items()
                if k not in read_only}
        if object == "persons":
            self._person_name(body, external_id)
            for key in ("emails", "phones"):
                if isinstance(body.get(key), list):
                    body[key] = _with_primary(body[key])
        return body

    def _person_name(self, body: dict[str, Any], external_id: str | None) -> None:
        """v2 writes take `name` only: join first_name/last_name into it."""
        has_first, has_last = "first_name" in body, "last_name" in body
        first, last = body.pop("first_name", None), body.pop("last_name", None)
        if "name" in body or not (has_first or has_last):
            return
        if external_id and has_first != has_last:
            # Only one half changed: keep the other from the stored person.
            current = self.api.get_one("persons", external_id)
            if not has_first:
                first = current.get("first_name")
            if not has_last:
                last = current.get("last_name")
        name = " ".join(str(p).strip() for p in (first, last) if p and str(p).strip())
        body["name"] = name or None


# -- helpers ----------------------------------------------------------------------------------


def _seconds(value: Any) -> int | None:
    return from_rfc3339(str(value)) if value else None


def _max_update(records: list[NativeRecord], current: int | None) -> int | None:
    best = current
    for record in records:
        stamp = record.get("update_time")
        if stamp:
            seconds = from_rfc3339(str(stamp))
            if best is None or seconds > best:
                best = seconds
    return best


def _as_int(value: Any) -> Any:
    """A reference resolved from a link is text ("42"): Pipedrive wants the number."""
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return value


def _email_of(op: WriteOp) -> str | None:
    """The match email, else the record's primary (or first) email."""
    value = op.match.get("email")
    if value and str(value).strip():
        return str(value).strip()
    emails = op.record.get("emails")
    if not isinstance(emails, list):
        return None
    items = [e for e in emails if isinstance(e, Mapping) and e.get("value")]
    primary = [e for e in items if e.get("primary") is True]
    chosen = (primary or items)[:1]
    return str(chosen[0]["value"]).strip() or None if chosen else None


def _with_primary(items: list[Any]) -> list[Any]:
    """Pipedrive wants exactly one primary email/phone: the first one unless one is marked."""
    out = [dict(i) if isinstance(i, Mapping) else i for i in items]
    dicts = [i for i in out if isinstance(i, dict)]
    if dicts and not any(i.get("primary") is True for i in dicts):
        dicts[0]["primary"] = True
    for i in dicts:
        i.setdefault("primary", False)
    return out


def _ok(op: WriteOp, record: dict[str, Any], external_id: str | None = None) -> WriteResult:
    ident = record.get("id", external_id)
    return WriteResult(op.key, True, external_id=str(ident) if ident is not None else None,
                       record=record or None)


def _record_error(object: str, op: WriteOp, exc: PermanentError) -> SyncError:
    which = f"record {op.external_id}" if op.external_id else f"new record {op.key}"
    return PermanentError(f"Pipedrive {object} {which}: {exc}", status=exc.status)
