"""The HubSpot CRM connector: contacts, companies, deals; full and incremental reads, batch writes.

Reads
    full         the list endpoint in id order (`after` tokens), then the archived records
                 (archived=true), which come back with "archived": true so mappings see
                 deletions. Mid-run cursor: {"mode": "full", "phase", "after", "since",
                 "started"}; final cursor: {"since": ms} for the next incremental read.
    incremental  search on lastmodifieddate / hs_lastmodifieddate GTE the cursor's "since",
                 oldest first. Search stops at 10,000 results per query, so before paging
                 past that it restarts with GTE the last timestamp seen, skipping the ids
                 already yielded at exactly that timestamp. Search never returns archived
                 records, so the archived list is read after it (only those archived since).
                 Mid-run cursor: {"since", "after", "skip"?}; final: {"since": max seen}.
    properties   every read asks for the built-in properties (client.PROPERTIES) plus the
                 connection's `extra_properties` (custom ones a mapping uses; properties.py).
Writes
    create/update with a match value (email for contacts, domain for companies): batch
    upsert by that property, so a repeated create updates instead of duplicating; update
    with a HubSpot id: batch update; archive/delete: batch archive. 207 answers are split
    record by record; a batch HubSpot refuses as a whole is retried one record at a time
    so one bad record cannot sink the other 99.
    Deals have no unique property, so a deal without a HubSpot id is batch-created and
    every later write goes by the id the engine linked it to (batch update). HubSpot has no
    idempotency key: if a create's answer is lost (timeout, dropped connection after
    HubSpot did the work) the retry creates the deal a second time. objectWriteTraceId ties
    answered results to their inputs, but cannot help with an answer that never came.
Associations
    Contacts are read with their companies, deals with their companies and contacts (list
    `associations=`, or v4 batch read after a search). Writes add default associations
    (v4 batch associate/default) to the ids the mapped record names under
    associations.<type>.results: the first company; every contact of a deal. Associations
    are only added, never removed.
Webhooks
    verify_webhook checks HubSpot's signature v3 with the `client_secret` setting and lists
    the contact/company changes a delivery announces (connectors/hubspot/webhooks.py).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar

from connectors.hubspot import webhooks
from connectors.hubspot.client import (
    ASSOCIATED,
    ASSOCIATION_KIND,
    BATCH_MAX,
    DEFAULT_BASE_URL,
    LIST_LIMIT_MAX,
    MANY_ASSOCIATED,
    MODIFIED_PROPERTY,
    PROPERTIES,
    READ_ONLY_PROPERTIES,
    SEARCH_CAP,
    SEARCH_LIMIT_MAX,
    UNIQUE_PROPERTY,
    BatchAnswer,
    HubSpotClient,
    iso_to_ms,
)
from connectors.hubspot.properties import SETTING as EXTRA_SETTING
from connectors.hubspot.properties import extra_properties, read_properties
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
from hub.http import HttpClient, Pacer, make_client

_FULL_SUPPORT = {"read": True, "write": True, "incremental": True, "deletes": True,
                 "archive": True}
DEFAULT_OVERLAP_MS = 2_000  # search indexes lag writes by a few seconds: re-read that much


class HubSpotConnector(BaseConnector):
    """HubSpot CRM v3 (private-app token): contacts, companies and deals."""

    name: ClassVar[str] = "hubspot"
    capabilities: ClassVar[Capabilities] = Capabilities(
        entities={
            "contact": EntitySupport(object="contacts", **_FULL_SUPPORT),
            "company": EntitySupport(object="companies", **_FULL_SUPPORT),
            "deal": EntitySupport(object="deals", **_FULL_SUPPORT),
        },
        batch_size=BATCH_MAX,
        webhooks=True,
        settings={
            "base_url": f"API base URL (default {DEFAULT_BASE_URL})",
            "token": "private-app access token, as a ${ENV} reference",
            "client_secret": "the app's client secret, as a ${ENV} reference: checks the "
                             "signature of webhook deliveries (needed only for webhooks)",
            "search_overlap_ms": "incremental reads re-read this many ms before the cursor, "
                                 f"because search lags writes (default {DEFAULT_OVERLAP_MS})",
            "search_cap": f"results one search may page through (default {SEARCH_CAP})",
            "timeout": "seconds to wait for an answer (default 30)",
            EXTRA_SETTING: "custom properties to read besides the built-in ones, per object, "
                           "e.g. {contacts: [liaison_last_activity]}: HubSpot returns only "
                           "the properties asked for, so a mapping that reads or writes a "
                           "custom property (in a two-way flow) needs it listed here, or "
                           "reads see it empty and clear it",
        },
        secret_settings=frozenset({"token", "client_secret"}),
        reads_in_child=True,  # a static token: reading changes nothing the engine keeps
    )

    def __init__(self, connection: ConnectionConfig) -> None:
        super().__init__(connection)
        # What each object's reads ask for; a bad `extra_properties` fails here, before I/O.
        self.properties = read_properties(extra_properties(connection))
        self._api: HubSpotClient | None = None
        self.pacer = Pacer(remaining_header="X-HubSpot-RateLimit-Remaining",
                           interval_ms_header="X-HubSpot-RateLimit-Interval-Milliseconds",
                           reserve=3)

    # -- plumbing ------------------------------------------------------------------------

    @property
    def api(self) -> HubSpotClient:
        """The HubSpot client, built on first use (no I/O in the constructor)."""
        if self._api is None:
            base_url = str(self.connection.setting("base_url") or DEFAULT_BASE_URL).rstrip("/")
            http: HttpClient = make_client(
                base_url, system=f"HubSpot ({self.connection.name})",
                auth_headers=self._auth_headers, retry=self.connection.retry,
                timeout=float(self.connection.setting("timeout", 30.0)),
                user_agent="liaison-hub/hubspot", on_response=self.pacer)
            self._api = HubSpotClient(http)
        return self._api

    def _auth_headers(self) -> dict[str, str]:
        token = self.connection.setting("token")  # revealed now, at use, never stored
        if not token:
            where = f" ({self.connection.where})" if self.connection.where else ""
            raise ConnectorError(f"connection {self.connection.name}{where}: setting 'token' "
                                 f"is missing (a HubSpot private-app token, as ${{ENV}})")
        return {"Authorization": f"Bearer {token}"}

    def _int_setting(self, key: str, default: int) -> int:
        value = self.connection.setting(key, default)
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ConnectorError(f"connection {self.connection.name}: setting {key!r} must be "
                                 f"a whole number, got {value!r}") from None

    @staticmethod
    def _check_object(object: str) -> None:
        if object not in PROPERTIES:
            known = ", ".join(sorted(PROPERTIES))
            raise PermanentError(f"HubSpot has no object {object!r} here (known: {known})")

    def check(self) -> Health:
        """Fetch one contact id: proves the API answers and accepts the token."""
        try:
            self.api.probe()
        except AuthError as exc:
            return Health(ok=False, message=f"HubSpot refused the token: {exc}")
        except TransientError as exc:
            return Health(ok=False, message=f"HubSpot did not answer properly (a temporary "
                                            f"failure, worth retrying later): {exc}")
        except HubError as exc:
            return Health(ok=False, message=str(exc))
        return Health(ok=True, message="HubSpot answered and accepted the token")

    def verify_webhook(self, request: WebhookRequest) -> list[WebhookEvent]:
        """Check a delivery's v3 signature and age, then list its contact/company events."""
        secret = self.connection.setting("client_secret")  # revealed now, at use
        if not secret:
            where = f" ({self.connection.where})" if self.connection.where else ""
            raise ConnectorError(f"connection {self.connection.name}{where}: setting "
                                 "'client_secret' is missing (the HubSpot app's client "
                                 "secret, as ${ENV}); webhooks cannot be checked without it")
        webhooks.check_signature(request, str(secret))
        return webhooks.parse_events(request.body)

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
        if cursor and cursor.get("mode") == "full":
            yield from self._read_full(object, cursor, page_size)
        elif cursor and cursor.get("phase") == "archived":
            yield from self._read_archived_since(object, cursor, page_size)
        elif incremental and cursor and "since" in cursor:
            yield from self._read_incremental(object, cursor, page_size)
        else:  # first run, or a full refresh asked for
            since = int(cursor["since"]) if cursor and "since" in cursor else 0
            yield from self._read_full(object, {"since": since}, page_size)

    def fetch(self, object: str, external_id: str) -> NativeRecord | None:
        """GET one record with the properties and associations a read returns."""
        self._check_object(object)
        params: dict[str, Any] = {"properties": ",".join(self.properties[object])}
        if object in ASSOCIATED:
            params["associations"] = ",".join(ASSOCIATED[object])
        try:
            record: NativeRecord = self.api.http.get_json(
                f"/crm/v3/objects/{object}/{external_id}", params=params)
        except PermanentError as exc:
            if exc.status == 404:
                return None
            raise
        return record

    def _read_full(self, object: str, cursor: Cursor, page_size: int) -> Iterator[Page]:
        started = int(cursor.get("started") or time.time() * 1000)
        max_seen = int(cursor.get("max_seen", 0))
        phase = cursor.get("phase", "active")
        after: str | None = cursor.get("after")
        limit = max(1, min(page_size, LIST_LIMIT_MAX))
        props = self.properties[object]
        assoc = ASSOCIATED.get(object, ())
        while True:
            page = self.api.list_page(object, properties=props, after=after, limit=limit,
                                      archived=phase == "archived", associations=assoc)
            if page.results:
                # One conversion per page: ISO strings compare as times, except that within
                # one second "…:00Z" sorts after "…:00.500Z"; that errs early, which only
                # re-reads a record, never skips one.
                newest = max(record["updatedAt"] for record in page.results)
                max_seen = max(max_seen, iso_to_ms(newest))
            after = page.after
            if after is not None:
                yield Page(page.results, {"mode": "full", "phase": phase, "after": after,
                                          "max_seen": max_seen, "started": started})
                continue
            if phase == "active":
                phase = "archived"
                yield Page(page.results, {"mode": "full", "phase": phase,
                                          "max_seen": max_seen, "started": started})
                continue
            # Changes made while we paged may sit behind pages already read: the next
            # incremental read starts no later than when this read started.
            since = min(max_seen, started) if max_seen else started
            yield Page(page.results, {"since": since})
            return

    def _read_incremental(self, object: str, cursor: Cursor, page_size: int) -> Iterator[Page]:
        cap = self._int_setting("search_cap", SEARCH_CAP)
        if "after" in cursor:  # resuming mid-run: the window is exactly where it was
            window = int(cursor["since"])
        else:
            window = max(0, int(cursor["since"]) - self._int_setting("search_overlap_ms",
                                                                      DEFAULT_OVERLAP_MS))
        after = int(cursor.get("after") or 0)
        skip = {str(i) for i in cursor.get("skip", ())}
        limit = max(1, min(page_size, SEARCH_LIMIT_MAX, cap))
        max_seen = int(cursor.get("max_seen") or cursor["since"])
        last_ts, at_last = window, set(skip)
        modified = MODIFIED_PROPERTY[object]
        while True:
            page = self.api.search_page(object, modified_gte=window,
                                        properties=self.properties[object], after=after,
                                        limit=limit)
            records = []
            for record in page.results:
                ms = _modified_ms(record, modified)
                if ms == window and record["id"] in skip:
                    continue  # already yielded before the restart at this timestamp
                records.append(record)
                if ms > last_ts:
                    last_ts, at_last = ms, {record["id"]}
                elif ms == last_ts:
                    at_last.add(record["id"])
            max_seen = max(max_seen, last_ts)
            self._add_associations(object, records)
            if page.after is None:
                yield Page(records, {"phase": "archived", "since": int(cursor["since"]),
                                     "window": window, "max_seen": max_seen})
                yield from self._read_archived_since(
                    object, {"since": int(cursor["since"]), "window": window,
                             "max_seen": max_seen}, page_size)
                return
            next_after = int(page.after)
            if next_after + limit <= cap:
                after = next_after
                yield Page(records, _mid_cursor(window, after, skip, max_seen))
                continue
            # The next page would cross the search cap: start a new search at the last
            # timestamp seen. If the whole window shares one timestamp no progress is
            # possible that way, so fall back to a full read (a superset, nothing lost).
            if last_ts == window:
                yield Page(records, {"mode": "full", "phase": "active", "max_seen": max_seen,
                                     "started": window})
                yield from self._read_full(object, {"mode": "full", "started": window,
                                                    "max_seen": max_seen}, page_size)
                return
            window, after, skip = last_ts, 0, set(at_last)
            yield Page(records, _mid_cursor(window, after, skip, max_seen))

    def _read_archived_since(self, object: str, cursor: Cursor,
                             page_size: int) -> Iterator[Page]:
        """Archived records (search never returns them) archived at or after the window."""
        window = int(cursor.get("window") or cursor["since"])
        max_seen = int(cursor.get("max_seen") or cursor["since"])
        after: str | None = cursor.get("after")
        limit = max(1, min(page_size, LIST_LIMIT_MAX))
        while True:
            page = self.api.list_page(object, properties=self.properties[object], after=after,
                                      limit=limit, archived=True)
            records = [r for r in page.results
                       if iso_to_ms(r.get("archivedAt") or r["updatedAt"]) >= window]
            after = page.after
            if after is None:
                yield Page(records, {"since": max_seen})
                return
            yield Page(records, {"phase": "archived", "since": int(cursor["since"]),
                                 "window": window, "max_seen": max_seen, "after": after})

    def _add_associations(self, object: str, records: list[NativeRecord]) -> None:
        """Search answers carry no associations: fetch them so mappings see the same shape."""
        if not records:
            return
        for to_type in ASSOCIATED.get(object, ()):
            found = self.api.associations(object, to_type, [r["id"] for r in records])
            kind = ASSOCIATION_KIND.get((object, to_type), "")
            for record in records:
                ids = found.get(record["id"])
                if ids:
                    record.setdefault("associations", {})[to_type] = {"results": [
                        {"id": i, "type": kind} for i in ids]}

    # -- writes -------------------------------------------------------------------------------

    def write(self, object: str, ops: Sequence[WriteOp]) -> list[WriteResult]:
        """Apply up to 100 ops; one WriteResult per op, in the same order."""
        self._check_object(object)
        if len(ops) > BATCH_MAX:
            raise PermanentError(f"HubSpot takes at most {BATCH_MAX} records per write, "
                                 f"got {len(ops)}")
        results: dict[int, WriteResult] = {}
        unique = UNIQUE_PROPERTY.get(object)
        archives: list[int] = []
        updates: list[int] = []
        upserts: list[int] = []
        creates: list[int] = []
        for i, op in enumerate(ops):
            if op.action in ("archive", "delete"):
                archives.append(i)
            elif op.external_id:
                updates.append(i)
            elif unique and _unique_value(op, unique):
                upserts.append(i)
            else:
                creates.append(i)
        if archives:
            results.update(self._archive(object, ops, archives))
        if updates:
            results.update(self._send(object, "update", ops, updates, unique))
        for round_ in _distinct_rounds(ops, upserts, unique or ""):
            results.update(self._send(object, "upsert", ops, round_, unique))
        if creates:
            results.update(self._send(object, "create", ops, creates, unique))
        self._write_associations(object, ops, results)
        return [results[i] for i in range(len(ops))]

    def _archive(self, object: str, ops: Sequence[WriteOp],
                 idx: list[int]) -> dict[int, WriteResult]:
        out: dict[int, WriteResult] = {}
        ids = []
        for i in idx:
            if ops[i].external_id:
                ids.append(i)
            else:
                out[i] = WriteResult(ops[i].key, False, error=PermanentError(
                    f"HubSpot {object}: cannot archive record {ops[i].key}: "
                    f"it has no HubSpot id (it was never written there)"))
        if ids:
            self.api.batch(object, "archive", [{"id": ops[i].external_id} for i in ids])
            for i in ids:
                out[i] = WriteResult(ops[i].key, True, external_id=ops[i].external_id)
        return out

    def _send(self, object: str, action: str, ops: Sequence[WriteOp], idx: list[int],
              unique: str | None) -> dict[int, WriteResult]:
        inputs = [_input(action, ops[i], i, unique) for i in idx]
        try:
            answer = self.api.batch(object, action, inputs)
        except (AuthError, TransientError):
            raise  # the whole call failed: the engine retries or stops the run
        except PermanentError as exc:
            if len(idx) == 1:
                return {idx[0]: WriteResult(ops[idx[0]].key, False, error=exc)}
            # HubSpot refused the batch as a whole: find the bad records one by one.
            out: dict[int, WriteResult] = {}
            for i in idx:
                out.update(self._send(object, action, ops, [i], unique))
            return out
        return _match_results(object, action, ops, idx, answer, unique)

    def _write_associations(self, object: str, ops: Sequence[WriteOp],
                            results: dict[int, WriteResult]) -> None:
        """Default-associate each written record with the ids its mapped record names.

        Associations are only added, never removed: a record that lost one in another
        system keeps it in HubSpot (removing needs the v4 batch archive, not used here).
        """
        for to_type in ASSOCIATED.get(object, ()):
            pairs: list[tuple[str, str]] = []
            owners: set[int] = set()
            for i, op in enumerate(ops):
                result = results[i]
                if not (result.ok and result.external_id and op.action in ("create",
                                                                           "update")):
                    continue
                targets = _associations(op.record, to_type)
                if (object, to_type) not in MANY_ASSOCIATED:
                    targets = targets[:1]
                for target in targets:
                    pairs.append((result.external_id, target))
                    owners.add(i)
            if not pairs:
                continue
            try:
                self.api.associate_default(object, to_type, pairs)
            except (AuthError, TransientError):
                raise
            except PermanentError as exc:
                for i in sorted(owners):
                    old = results[i]
                    results[i] = WriteResult(old.key, False, old.external_id, old.record,
                                             error=PermanentError(
                                                 f"record {old.external_id} was written but "
                                                 f"its {to_type} association was refused: "
                                                 f"{exc}"))


# -- helpers ----------------------------------------------------------------------------------


def _modified_ms(record: NativeRecord, prop: str) -> int:
    value = (record.get("properties") or {}).get(prop) or record["updatedAt"]
    return int(value) if value.isdigit() else iso_to_ms(value)


def _mid_cursor(window: int, after: int, skip: set[str], max_seen: int) -> Cursor:
    cursor: Cursor = {"since": window, "after": str(after), "max_seen": max_seen}
    if skip:
        cursor["skip"] = sorted(skip)
    return cursor


def _unique_value(op: WriteOp, unique: str) -> str | None:
    value = op.match.get(unique) or (op.record.get("properties") or {}).get(unique)
    return str(value).strip() or None if value else None


def _distinct_rounds(ops: Sequence[WriteOp], idx: list[int], unique: str) -> list[list[int]]:
    """Split upserts so no batch holds one match value twice (HubSpot refuses that batch)."""
    rounds: list[list[int]] = []
    seen: list[set[str]] = []
    for i in idx:
        value = (_unique_value(ops[i], unique) or "").lower()
        for r, values in zip(rounds, seen):
            if value not in values:
                r.append(i)
                values.add(value)
                break
        else:
            rounds.append([i])
            seen.append({value})
    return rounds


def _properties(record: NativeRecord) -> dict[str, Any]:
    props = record.get("properties") or {}
    return {k: ("" if v is None else v) for k, v in props.items()
            if k not in READ_ONLY_PROPERTIES}


def _input(action: str, op: WriteOp, index: int, unique: str | None) -> dict[str, Any]:
    # objectWriteTraceId ties each result or error back to its input.
    item: dict[str, Any] = {"properties": _properties(op.record),
                            "objectWriteTraceId": str(index)}
    if action == "update":
        item["id"] = op.external_id
    elif action == "upsert" and unique:
        value = _unique_value(op, unique) or ""
        item["id"] = value
        item["idProperty"] = unique
        item["properties"].setdefault(unique, value)
    return item


def _associations(record: NativeRecord, to_type: str) -> list[str]:
    """The ids a mapped record names under associations.<to_type>.results[*].id, in order."""
    try:
        results = record["associations"][to_type]["results"]
    except (KeyError, TypeError):
        return []
    out: list[str] = []
    for item in results if isinstance(results, list) else ():
        value = item.get("id") if isinstance(item, Mapping) else None
        if value not in (None, "") and str(value) not in out:
            out.append(str(value))
    return out


def _match_results(object: str, action: str, ops: Sequence[WriteOp], idx: list[int],
                   answer: BatchAnswer, unique: str | None) -> dict[int, WriteResult]:
    """Map a batch answer's results and errors back to the ops that caused them."""
    out: dict[int, WriteResult] = {}
    by_ext = {str(ops[i].external_id): i for i in idx if ops[i].external_id}
    by_unique = {(_unique_value(ops[i], unique) or "").lower(): i for i in idx} if unique \
        else {}
    for result in answer.results:
        i = _owner(result.get("objectWriteTraceId"), idx)
        if i is None and action == "update":
            i = by_ext.get(str(result.get("id")))
        if i is None and unique:
            value = str((result.get("properties") or {}).get(unique) or "").lower()
            i = by_unique.get(value)
        if i is not None:
            out[i] = WriteResult(ops[i].key, True, external_id=str(result["id"]),
                                 record=result)
    for error in answer.errors:
        context = error.get("context") or {}
        owners = [_owner(t, idx) for t in context.get("objectWriteTraceId") or []]
        if not any(o is not None for o in owners):
            owners = [by_ext.get(str(v)) for v in context.get("ids") or []]
            owners += [by_unique.get(str(v).lower()) for v in context.get("ids") or []]
        exc = _record_error(object, action, error)
        for i in owners:
            if i is not None and i not in out:
                out[i] = WriteResult(ops[i].key, False, external_id=ops[i].external_id,
                                     error=exc)
    for i in idx:
        if i not in out:  # the outcome is unknown; upserts and updates are safe to repeat
            out[i] = WriteResult(ops[i].key, False, external_id=ops[i].external_id,
                                 error=TransientError(
                                     f"HubSpot {object} batch {action} (status "
                                     f"{answer.status}) returned no result for record "
                                     f"{ops[i].key}"))
    return out


def _owner(trace: Any, idx: list[int]) -> int | None:
    if trace is None:
        return None
    try:
        i = int(str(trace))
    except ValueError:
        return None
    return i if i in idx else None


def _record_error(object: str, action: str, error: Mapping[str, Any]) -> SyncError:
    message = str(error.get("message") or "refused")
    category = str(error.get("category") or "")
    details = [str(e.get("message")) for e in error.get("errors") or []
               if isinstance(e, Mapping) and e.get("message")]
    text = f"HubSpot {object} batch {action}: {message}"
    if category:
        text += f" ({category})"
    if details and not all(d in message for d in details):
        text += ": " + "; ".join(details)
    if category == "RATE_LIMIT":
        return RateLimited(text)
    return PermanentError(text)
