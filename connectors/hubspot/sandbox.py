"""A stateful emulator of the HubSpot CRM v3 subset the connector uses, on loopback.

Faithful to the vendor's documentation (see the lead's vendor-apis.md, section 1):
Bearer auth (401 INVALID_AUTHENTICATION), list with `after` paging (limit <= 100), single
read (also by idProperty), search with filterGroups / one sort / `after` offsets and the
hard 10,000-result cap (400 past it), batch create/read/update/upsert/archive (<= 100
inputs, 207 with errors[] and numErrors on partial success), 409 on a duplicate email,
PATCH, DELETE (archive; archived records only with archived=true, carrying archivedAt),
v4 association batch read and default-associate (list and read return the association
types asked for with `associations=`; creates honour the deal association type ids 341/5
(company) and 3 (contact)). Deals are seeded with `deals=N` (fakedata: companies and
contacts of a seed stay the same whatever N is). Property values are always strings;
createdAt/updatedAt are ISO-8601 with milliseconds; lastmodifieddate (contacts) and
hs_lastmodifieddate (companies, deals) follow updatedAt. Webhooks (Webhooks API v3): every
change after start-up becomes a creation / propertyChange / deletion event, delivered signed
(signature v3) by `send_webhooks` or automatically after `subscribe` (sandbox_webhooks.py).

Emulator assumptions (marked [emu] below) where the docs are silent: batch results and
errors echo each input's objectWriteTraceId; a batch whose inputs all fail answers with the
first failure's status instead of 207; unknown properties are refused like HubSpot's
PROPERTY_DOESNT_EXIST unless declared with `extra_properties`.

Faults (429 with HubSpot's headers and body, 5xx, dropped responses, latency) are drawn
from a seeded random generator, so a run is reproducible. Responses are built in full and
sent in one write with TCP_NODELAY (Nagle + delayed ACK cost ~42 ms per page otherwise).
"""

from __future__ import annotations

import argparse
import bisect
import gc
import random
import re
import threading
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import httpx
import orjson

from connectors.hubspot import fakedata
from connectors.hubspot.client import PROPERTIES as CONNECTOR_PROPERTIES
from connectors.hubspot.sandbox_webhooks import WebhookOutbox
from connectors.sandbox_http import SandboxHandler, SandboxServer, ServedSandbox

OBJECT_TYPES = ("contacts", "companies", "deals")
MODIFIED_PROPERTY = {"contacts": "lastmodifieddate", "companies": "hs_lastmodifieddate",
                     "deals": "hs_lastmodifieddate"}
DEFAULT_PROPERTIES = {
    "contacts": ("firstname", "lastname", "email"),
    "companies": ("name", "domain"),
    "deals": ("dealname", "amount", "dealstage", "pipeline", "closedate"),
}
WRITABLE_PROPERTIES = {
    "contacts": frozenset({
        "email", "firstname", "lastname", "jobtitle", "phone", "mobilephone", "company",
        "website", "address", "city", "state", "zip", "country", "hubspot_owner_id",
        "lifecyclestage", "hs_lead_status", "fax", "industry", "message",
    }),
    "companies": frozenset({
        "name", "domain", "website", "industry", "description", "numberofemployees", "phone",
        "address", "address2", "city", "state", "zip", "country", "hubspot_owner_id",
        "lifecyclestage", "annualrevenue", "type", "timezone",
    }),
    "deals": frozenset({
        "dealname", "amount", "dealstage", "pipeline", "closedate", "hubspot_owner_id",
        "deal_currency_code", "description", "dealtype",
    }),
}
READ_ONLY_PROPERTIES = frozenset({"hs_object_id", "createdate", "lastmodifieddate",
                                  "hs_lastmodifieddate"})
NUMBER_PROPERTIES = frozenset({"numberofemployees", "annualrevenue", "amount"})
DATETIME_PROPERTIES = frozenset({"createdate", "lastmodifieddate", "hs_lastmodifieddate"})
UNIQUE_PROPERTIES = {"contacts": "email", "companies": "domain"}  # [emu] domain, see brief
SINGULAR = {"contacts": "contact", "companies": "company", "deals": "deal"}
ASSOCIATION_TYPE_IDS = {("contacts", "companies"): 1, ("companies", "contacts"): 2,
                        ("deals", "contacts"): 3, ("contacts", "deals"): 4,
                        ("deals", "companies"): 5, ("companies", "deals"): 6}
# HUBSPOT_DEFINED association type ids a create may carry, per object: type id -> target.
# [obs] ids from vendor-apis.md: contact->company 279 (primary 1), contact->deal 4,
# deal->contact 3, deal->company 341 (primary 5), company->contact 280, company->deal 342.
CREATE_ASSOCIATION_TYPES = {
    "contacts": {279: "companies", 1: "companies", 4: "deals"},
    "deals": {341: "companies", 5: "companies", 3: "contacts"},
    "companies": {280: "contacts", 342: "deals"},
}
LIST_LIMIT_MAX = 100
SEARCH_LIMIT_MAX = 200
BATCH_MAX = 100
SEARCH_CAP = 10_000
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
OBJECT_PATH = re.compile(r"^/crm/v3/objects/([a-z_]+)(?:/([^/]+))?(?:/([^/]+))?$")
ASSOC_BATCH_PATH = re.compile(r"^/crm/v4/associations/([a-z_]+)/([a-z_]+)/batch/([a-z/]+)$")
JSON_TYPE = b"application/json;charset=utf-8"


@dataclass(frozen=True)
class Faults:
    """Injected failures; every fraction is per request, drawn from `seed`."""

    rate_limit: float = 0.0  # answer 429 (TEN_SECONDLY_ROLLING) with Retry-After
    server_error: float = 0.0  # answer 502/503/500 without doing anything
    drop_response: float = 0.0  # do the work, then close the connection without answering
    latency: float = 0.0  # seconds added to every answer
    retry_after: float = 1.0  # the Retry-After seconds sent with injected 429s
    seed: int = 0
    burst_limit: int | None = None  # enforce N requests per 10 s window (real 429s)


def iso_ms(ms: int) -> str:
    """Epoch milliseconds as HubSpot's ISO-8601 with milliseconds, e.g. 2024-05-01T10:00:00.123Z."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def parse_ms(value: str) -> int | None:
    """An epoch-ms string or an ISO date(time) as epoch milliseconds; None if neither."""
    value = value.strip()
    if value.lstrip("-").isdigit():
        return int(value)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


class ApiError(Exception):
    """An error answer in HubSpot's `Error` shape."""

    def __init__(self, status: int, message: str, category: str = "VALIDATION_ERROR",
                 errors: list[dict[str, Any]] | None = None,
                 context: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"status": "error", "message": message,
                                     "correlationId": str(uuid.uuid4()), "category": category}
        if errors:
            self.body["errors"] = errors
        if context:
            self.body["context"] = context


@dataclass
class _Obj:
    """One stored record (internal)."""

    id: int
    props: dict[str, str | None]
    created_ms: int
    updated_ms: int
    archived: bool = False
    archived_ms: int | None = None


@dataclass
class _State:
    """Everything the sandbox stores, guarded by one lock."""

    objects: dict[str, dict[int, _Obj]] = field(default_factory=dict)
    order: dict[str, list[int]] = field(default_factory=dict)  # ids ascending (incl. archived)
    assoc: dict[tuple[str, str], dict[int, list[int]]] = field(default_factory=dict)
    unique: dict[str, dict[str, list[int]]] = field(default_factory=dict)  # lower value -> ids
    next_id: int = 1
    version: int = 0  # bumped on every change (invalidates search results)


class HubSpotSandbox(ServedSandbox):
    """The emulator: start it, point the connector at `.base_url` with `.token`."""

    def __init__(self, seed: int = 1, count: int = 0, port: int = 0,
                 token: str = "sandbox-token", faults: Faults = Faults(), *,
                 companies: int | None = None, deals: int = 0,
                 search_cap: int = SEARCH_CAP,
                 extra_properties: Iterable[str] = (),
                 clock: Callable[[], int] | None = None) -> None:
        self.seed = seed
        self.count = count
        self.token = token
        self.faults = faults
        self.search_cap = search_cap
        self.extra_properties = frozenset(extra_properties)
        self._clock = clock or (lambda: int(time.time() * 1000))
        self._requested_port = port
        self._lock = threading.RLock()
        self._fault_rng = random.Random(faults.seed)
        self._window: deque[float] = deque()
        self._state = _State()
        self._ser_cache: dict[tuple[str, tuple[str, ...], tuple[str, ...]],
                              dict[int, bytes]] = {}
        self._search_cache: OrderedDict[tuple[Any, ...], list[int]] = OrderedDict()
        self._server: SandboxServer | None = None
        self._thread: threading.Thread | None = None
        # The latest requests seen and Retry-After values sent (bounded: the CLI runs for days)
        self.requests: deque[tuple[str, str]] = deque(maxlen=100_000)
        self.waits_sent: deque[float] = deque(maxlen=10_000)
        # Changes become webhook events once the seed data is in (HubSpot would not announce
        # records that existed before the app subscribed).
        self.webhooks = WebhookOutbox(self._now)
        self._recording = False
        self._change_source = "CRM_UI"
        for t in OBJECT_TYPES:
            self._state.objects[t] = {}
            self._state.order[t] = []
            self._state.unique[t] = {}
        self._load(fakedata.generate(seed, count, companies, deals))
        self._recording = True
        if count >= 10_000:
            self.prewarm()
            # Big data sets are long-lived: keep them out of the cyclic GC's full scans,
            # which otherwise cost more than serving the pages.
            gc.freeze()

    # -- lifecycle --------------------------------------------------------------------------

    label = "HubSpot"

    def _make_server(self) -> SandboxServer:
        return _Server(("127.0.0.1", self._requested_port), _Handler)

    def _before_stop(self) -> None:
        self.webhooks.unsubscribe()

    @property
    def base_url(self) -> str:
        """The URL to configure as the connection's base_url."""
        return f"http://127.0.0.1:{self.port}"

    # -- direct state access for tests ------------------------------------------------------

    def records(self, object_type: str, *, archived: bool | None = None) -> list[dict[str, Any]]:
        """Every stored record of a type as the API would show it (all properties)."""
        with self._lock:
            objs = [self._state.objects[object_type][i] for i in self._state.order[object_type]]
            return [self._public(object_type, o, None, ()) for o in objs
                    if archived is None or o.archived == archived]

    def get(self, object_type: str, object_id: str | int) -> dict[str, Any]:
        """One stored record, archived or not."""
        with self._lock:
            return self._public(object_type, self._obj(object_type, int(object_id)), None, ())

    def create(self, object_type: str, at_ms: int | None = None, **props: str) -> str:
        """Create a record server-side (as a HubSpot user would); returns its id."""
        with self._lock:
            return str(self._insert(object_type, dict(props), at_ms or self._now()).id)

    def touch(self, object_type: str, object_id: str | int, *, at_ms: int | None = None,
              **props: str | None) -> dict[str, Any]:
        """Modify a record server-side (bumps updatedAt to now or `at_ms`)."""
        with self._lock:
            obj = self._obj(object_type, int(object_id))
            self._update_props(object_type, obj, props)
            self._modified(object_type, obj, at_ms or self._now())
            return self._public(object_type, obj, None, ())

    def archive(self, object_type: str, object_id: str | int, *, at_ms: int | None = None) -> None:
        """Archive a record server-side (moves it to the recycle bin)."""
        with self._lock:
            self._archive(object_type, self._obj(object_type, int(object_id)),
                          at_ms or self._now())

    def associations(self, from_type: str, object_id: str | int, to_type: str) -> list[str]:
        """Ids associated with a record."""
        with self._lock:
            ids = self._state.assoc.get((from_type, to_type), {}).get(int(object_id), [])
            return [str(i) for i in ids]

    # -- webhooks ---------------------------------------------------------------------------

    def send_webhooks(self, url: str, events: Sequence[Mapping[str, Any]] | None = None, *,
                      client_secret: str, timestamp_ms: int | None = None,
                      tamper: Callable[[bytes], bytes] | None = None) -> list[httpx.Response]:
        """POST signed v3 deliveries to `url`: `events`, or every change not yet delivered.

        `timestamp_ms` overrides X-HubSpot-Request-Timestamp (stale deliveries); `tamper`
        changes the body after it was signed. Returns the hub's answers, one per batch of
        100; pending changes whose delivery failed stay pending with attemptNumber + 1.
        """
        return self.webhooks.send(url, events, client_secret=client_secret,
                                  timestamp_ms=timestamp_ms, tamper=tamper)

    def subscribe(self, url: str, *, client_secret: str, interval: float = 0.2) -> None:
        """Deliver changes to `url` automatically, every `interval` seconds, until stop()."""
        self.webhooks.subscribe(url, client_secret=client_secret, interval=interval)

    def _announce(self, object_type: str, change: str, oid: int, **extra: Any) -> None:
        if self._recording:
            self.webhooks.record(SINGULAR[object_type], change, oid, self._change_source,
                                 **extra)

    def prewarm(self, properties: dict[str, tuple[str, ...]] | None = None) -> None:
        """Pre-serialise every record for the property lists the connector asks for."""
        wanted = properties or dict(CONNECTOR_PROPERTIES)
        with self._lock:
            for object_type, props in wanted.items():
                assoc = {"contacts": ("companies",),
                         "deals": ("companies", "contacts")}.get(object_type, ())
                for obj in self._state.objects[object_type].values():
                    self._serialised(object_type, obj, tuple(props), assoc)

    # -- loading ------------------------------------------------------------------------------

    def _load(self, data: fakedata.FakeData) -> None:
        company_ids: list[int] = []
        contact_ids: list[int] = []
        for props, (created, modified) in zip(data.companies, data.company_times):
            company_ids.append(self._insert("companies", _blank_none(props), created,
                                            modified).id)
        for props, (created, modified), ci in zip(data.contacts, data.contact_times,
                                                  data.contact_company):
            obj = self._insert("contacts", _blank_none(props), created, modified)
            contact_ids.append(obj.id)
            if ci is not None:
                self._associate("contacts", obj.id, "companies", company_ids[ci])
        for props, (created, modified), ci, people in zip(data.deals, data.deal_times,
                                                          data.deal_company,
                                                          data.deal_contacts):
            obj = self._insert("deals", _blank_none(props), created, modified)
            if ci is not None:
                self._associate("deals", obj.id, "companies", company_ids[ci])
            for pi in people:
                self._associate("deals", obj.id, "contacts", contact_ids[pi])

    def _now(self) -> int:
        return self._clock()

    # -- state operations (call with the lock held) ------------------------------------------

    def _obj(self, object_type: str, object_id: int) -> _Obj:
        try:
            return self._state.objects[object_type][object_id]
        except KeyError:
            raise ApiError(404, "Object not found.  objectId are usually numeric.",
                           "OBJECT_NOT_FOUND") from None

    def _insert(self, object_type: str, props: dict[str, str | None], created: int,
                modified: int | None = None) -> _Obj:
        oid = self._state.next_id
        self._state.next_id += 1
        obj = _Obj(oid, props, created, modified or created)
        obj.props["hs_object_id"] = str(oid)
        obj.props["createdate"] = iso_ms(created)
        obj.props[MODIFIED_PROPERTY[object_type]] = iso_ms(obj.updated_ms)
        self._index(object_type, obj, obj.props)
        self._state.objects[object_type][oid] = obj
        self._state.order[object_type].append(oid)  # ids only grow: stays sorted
        self._state.version += 1
        self._announce(object_type, "creation", oid, changeFlag="CREATED")
        return obj

    def _index(self, object_type: str, obj: _Obj, props: dict[str, str | None]) -> None:
        prop = UNIQUE_PROPERTIES.get(object_type)
        value = props.get(prop) if prop else None
        if value:
            self._state.unique[object_type].setdefault(value.lower(), []).append(obj.id)

    def _update_props(self, object_type: str, obj: _Obj, props: dict[str, str | None]) -> None:
        if self._recording:
            for name, value in props.items():  # one event per changed property, as HubSpot
                if name not in READ_ONLY_PROPERTIES and obj.props.get(name) != value:
                    self._announce(object_type, "propertyChange", obj.id, propertyName=name,
                                   propertyValue="" if value is None else value)
        prop = UNIQUE_PROPERTIES.get(object_type)
        if prop and prop in props and props[prop] != obj.props.get(prop):
            old = obj.props.get(prop)
            if old:
                ids = self._state.unique[object_type].get(old.lower(), [])
                if obj.id in ids:
                    ids.remove(obj.id)
            self._index(object_type, obj, props)
        obj.props.update(props)

    def _modified(self, object_type: str, obj: _Obj, at_ms: int) -> None:
        obj.updated_ms = at_ms
        obj.props[MODIFIED_PROPERTY[object_type]] = iso_ms(at_ms)
        self._invalidate(object_type, obj.id)

    def _archive(self, object_type: str, obj: _Obj, at_ms: int) -> None:
        if obj.archived:
            return
        obj.archived = True
        obj.archived_ms = at_ms
        obj.updated_ms = at_ms
        self._invalidate(object_type, obj.id)
        self._announce(object_type, "deletion", obj.id)

    def _invalidate(self, object_type: str, oid: int) -> None:
        self._state.version += 1
        for (t, _, _), cache in self._ser_cache.items():
            if t == object_type:
                cache.pop(oid, None)

    def _associate(self, from_type: str, from_id: int, to_type: str, to_id: int) -> None:
        for a, ai, b, bi in ((from_type, from_id, to_type, to_id),
                             (to_type, to_id, from_type, from_id)):
            ids = self._state.assoc.setdefault((a, b), {}).setdefault(ai, [])
            if bi not in ids:
                ids.append(bi)
                self._invalidate(a, ai)

    def _find_unique(self, object_type: str, prop: str, value: str) -> _Obj | None:
        wanted = value.strip().lower()
        if prop == UNIQUE_PROPERTIES.get(object_type):
            for oid in self._state.unique[object_type].get(wanted, ()):
                obj = self._state.objects[object_type][oid]
                if not obj.archived:
                    return obj
            return None
        for oid in self._state.order[object_type]:
            obj = self._state.objects[object_type][oid]
            if not obj.archived and (obj.props.get(prop) or "").lower() == wanted:
                return obj
        return None

    # -- serialisation ------------------------------------------------------------------------

    def _public(self, object_type: str, obj: _Obj, properties: Sequence[str] | None,
                with_assoc: tuple[str, ...]) -> dict[str, Any]:
        if properties is None:
            props = dict(obj.props)
        else:
            props = {p: obj.props.get(p) for p in properties}
            for p in ("hs_object_id", "createdate", MODIFIED_PROPERTY[object_type]):
                props[p] = obj.props.get(p)
        out: dict[str, Any] = {"id": str(obj.id), "properties": props,
                               "createdAt": iso_ms(obj.created_ms),
                               "updatedAt": iso_ms(obj.updated_ms), "archived": obj.archived}
        if obj.archived and obj.archived_ms is not None:
            out["archivedAt"] = iso_ms(obj.archived_ms)
        if with_assoc:
            assoc: dict[str, Any] = {}
            for (a, b), table in self._state.assoc.items():
                if a == object_type and b in with_assoc and table.get(obj.id):
                    kind = f"{SINGULAR[a]}_to_{SINGULAR[b]}"
                    assoc[b] = {"results": [{"id": str(i), "type": kind}
                                            for i in table[obj.id]]}
            if assoc:
                out["associations"] = assoc
        return out

    def _serialised(self, object_type: str, obj: _Obj, properties: tuple[str, ...],
                    with_assoc: tuple[str, ...]) -> bytes:
        cache = self._ser_cache.setdefault((object_type, properties, with_assoc), {})
        data = cache.get(obj.id)
        if data is None:
            data = orjson.dumps(self._public(object_type, obj, properties, with_assoc))
            cache[obj.id] = data
        return data

    def _props_param(self, object_type: str, raw: Iterable[str] | None) -> tuple[str, ...]:
        names = tuple(p for p in (raw or ()) if p)
        return names or DEFAULT_PROPERTIES[object_type]

    # -- endpoints ----------------------------------------------------------------------------

    def handle(self, method: str, path: str, query: dict[str, list[str]],
               body: Any) -> tuple[int, bytes | None]:
        """Route one authenticated request; returns (status, JSON bytes or None)."""
        with self._lock:
            self._change_source = "INTEGRATION"  # changes made through the API
            try:
                return self._route(method, path, query, body)
            finally:
                self._change_source = "CRM_UI"

    def _route(self, method: str, path: str, query: dict[str, list[str]],
               body: Any) -> tuple[int, bytes | None]:
        match = OBJECT_PATH.match(path)
        if match:
            object_type, second, third = match.groups()
            if object_type not in OBJECT_TYPES:
                raise ApiError(400, f"Unable to infer object type from: {object_type}")
            return self._object_route(method, object_type, second, third, query, body)
        match = ASSOC_BATCH_PATH.match(path)
        if match and method == "POST":
            from_type, to_type, action = match.groups()
            return self._assoc_batch(from_type, to_type, action, body)
        raise ApiError(404, f"No route for {method} {path}", "OBJECT_NOT_FOUND")

    def _object_route(self, method: str, object_type: str, second: str | None,
                      third: str | None, query: dict[str, list[str]],
                      body: Any) -> tuple[int, bytes | None]:
        if second is None:
            if method == "GET":
                return 200, self._list(object_type, query)
            if method == "POST":
                return 201, orjson.dumps(self._create_one(object_type, body))
        elif second == "search" and third is None and method == "POST":
            return 200, self._search(object_type, body)
        elif second == "batch" and third is not None and method == "POST":
            return self._batch(object_type, third, body)
        elif third is None:
            if method == "GET":
                return 200, self._read_one(object_type, second, query)
            if method == "PATCH":
                return 200, self._patch(object_type, second, query, body)
            if method == "DELETE":
                obj = self._state.objects[object_type].get(int(second)) \
                    if second.isdigit() else None
                if obj is not None:
                    self._archive(object_type, obj, self._now())
                return 204, None
        raise ApiError(405, f"{method} is not supported here", "METHOD_NOT_ALLOWED")

    def _list(self, object_type: str, query: dict[str, list[str]]) -> bytes:
        limit = _int_param(query, "limit", 10)
        if not 1 <= limit <= LIST_LIMIT_MAX:
            raise ApiError(400, f"limit must be between 1 and {LIST_LIMIT_MAX}, got {limit}")
        after = _int_param(query, "after", 0)
        archived = query.get("archived", ["false"])[0].lower() == "true"
        props = self._props_param(object_type, ",".join(query.get("properties", [])).split(","))
        with_assoc = _assoc_param(object_type, query)
        order = self._state.order[object_type]
        objects = self._state.objects[object_type]
        parts: list[bytes] = []
        i = bisect.bisect_left(order, after)
        while i < len(order) and len(parts) < limit:
            obj = objects[order[i]]
            if obj.archived == archived:
                parts.append(self._serialised(object_type, obj, props, with_assoc))
            i += 1
        while i < len(order) and objects[order[i]].archived != archived:
            i += 1  # so "next" is only offered when a record really follows
        paging = b""
        if i < len(order):
            nxt = order[i]
            paging = (b',"paging":{"next":{"after":"%d","link":"?after=%d"}}' % (nxt, nxt))
        return b'{"results":[' + b",".join(parts) + b"]" + paging + b"}"

    def _read_one(self, object_type: str, ident: str, query: dict[str, list[str]]) -> bytes:
        archived = query.get("archived", ["false"])[0].lower() == "true"
        id_property = query.get("idProperty", [None])[0]
        obj: _Obj | None
        if id_property:
            obj = self._find_unique(object_type, id_property, ident)
        else:
            obj = self._state.objects[object_type].get(int(ident)) if ident.isdigit() else None
        if obj is None or obj.archived != archived:
            raise ApiError(404, "Object not found.  objectId are usually numeric.",
                           "OBJECT_NOT_FOUND")
        props = self._props_param(object_type, ",".join(query.get("properties", [])).split(","))
        return self._serialised(object_type, obj, props, _assoc_param(object_type, query))

    def _create_one(self, object_type: str, body: Any) -> dict[str, Any]:
        props = self._validated(object_type, _dict(body).get("properties"), creating=True)
        self._check_duplicate(object_type, props)
        obj = self._insert(object_type, props, self._now())
        self._apply_associations(object_type, obj.id, _dict(body).get("associations"))
        return self._public(object_type, obj, list(props), ())

    def _patch(self, object_type: str, ident: str, query: dict[str, list[str]],
               body: Any) -> bytes:
        id_property = query.get("idProperty", [None])[0]
        obj = self._find_unique(object_type, id_property, ident) if id_property else (
            self._state.objects[object_type].get(int(ident)) if ident.isdigit() else None)
        if obj is None or obj.archived:
            raise ApiError(404, "Object not found.  objectId are usually numeric.",
                           "OBJECT_NOT_FOUND")
        props = self._validated(object_type, _dict(body).get("properties"), creating=False)
        self._check_duplicate(object_type, props, except_id=obj.id)
        self._update_props(object_type, obj, props)
        self._modified(object_type, obj, self._now())
        return orjson.dumps(self._public(object_type, obj, list(props), ()))

    # -- search -------------------------------------------------------------------------------

    def _search(self, object_type: str, body: Any) -> bytes:
        body = _dict(body)
        limit = int(body.get("limit", 10))
        if not 1 <= limit <= SEARCH_LIMIT_MAX:
            raise ApiError(400, f"limit must be between 1 and {SEARCH_LIMIT_MAX}")
        after = int(str(body.get("after") or "0"))
        if after >= self.search_cap:
            raise ApiError(400, f"Search results are limited to {self.search_cap} records; "
                                f"'after' = {after} pages past that. Narrow the filters.")
        groups = body.get("filterGroups") or []
        sorts = body.get("sorts") or []
        _check_filter_limits(groups)
        if len(sorts) > 1:
            raise ApiError(400, "Only one sort is supported")
        key = (object_type, orjson.dumps(groups), orjson.dumps(sorts), self._state.version)
        ids = self._search_cache.get(key)
        if ids is None:
            ids = self._matching(object_type, groups, sorts)
            self._search_cache[key] = ids
            while len(self._search_cache) > 16:
                self._search_cache.popitem(last=False)
        end = min(after + limit, len(ids), self.search_cap)
        props = self._props_param(object_type, body.get("properties"))
        objects = self._state.objects[object_type]
        parts = [self._serialised(object_type, objects[i], props, ()) for i in ids[after:end]]
        paging = b""
        if after + limit < len(ids):
            paging = b',"paging":{"next":{"after":"%d"}}' % (after + limit)
        return (b'{"total":%d,"results":[' % len(ids)) + b",".join(parts) + b"]" + paging + b"}"

    def _matching(self, object_type: str, groups: list[Any], sorts: list[Any]) -> list[int]:
        tests = [[_compile_filter(object_type, f) for f in _dict(g).get("filters") or []]
                 for g in groups]
        out = []
        for obj in self._state.objects[object_type].values():
            if obj.archived:  # search never returns archived records
                continue
            if not tests or any(all(t(obj) for t in group) for group in tests):
                out.append(obj)
        if sorts:
            sort = _dict(sorts[0])
            name = str(sort.get("propertyName", ""))
            reverse = str(sort.get("direction", "ASCENDING")).upper() == "DESCENDING"
            getter = _getter(object_type, name)
            out.sort(key=lambda o: (_sortable(getter(o)), o.id), reverse=reverse)
        else:
            out.sort(key=lambda o: o.id)
        return [o.id for o in out]

    # -- batch --------------------------------------------------------------------------------

    def _batch(self, object_type: str, action: str, body: Any) -> tuple[int, bytes | None]:
        inputs = _dict(body).get("inputs")
        if not isinstance(inputs, list):
            raise ApiError(400, "Invalid input JSON: 'inputs' must be a list")
        if len(inputs) > BATCH_MAX:
            raise ApiError(400, f"Batch input limit is {BATCH_MAX}, got {len(inputs)}")
        started = iso_ms(self._now())
        if action == "archive":
            for item in inputs:
                ident = str(_dict(item).get("id", ""))
                obj = self._state.objects[object_type].get(int(ident)) \
                    if ident.isdigit() else None
                if obj is not None:
                    self._archive(object_type, obj, self._now())
            return 204, None
        if action == "read":
            return 200, self._batch_read(object_type, _dict(body), inputs, started)
        handler = {"create": self._batch_create_one, "update": self._batch_update_one,
                   "upsert": self._batch_upsert_one}.get(action)
        if handler is None:
            raise ApiError(404, f"No batch action {action!r}", "OBJECT_NOT_FOUND")
        if action == "upsert":
            _check_no_duplicate_ids(inputs)
        results: list[dict[str, Any]] = []
        errors: list[ApiError] = []
        for item in inputs:
            item = _dict(item)
            trace = item.get("objectWriteTraceId")
            try:
                result = handler(object_type, item)
            except ApiError as exc:
                ctx = exc.body.setdefault("context", {})
                if trace is not None:
                    ctx["objectWriteTraceId"] = [str(trace)]  # [emu] see module docstring
                errors.append(exc)
                continue
            if trace is not None:
                result["objectWriteTraceId"] = str(trace)
            results.append(result)
        if errors and not results:  # [emu] nothing succeeded: a plain error answer
            first = errors[0]
            first.body = {**first.body, "errors": [dict(e.body) for e in errors]}
            raise first
        wrapper: dict[str, Any] = {"status": "COMPLETE", "results": results,
                                   "requestedAt": started, "startedAt": started,
                                   "completedAt": iso_ms(self._now())}
        if errors:
            wrapper["numErrors"] = len(errors)
            wrapper["errors"] = [e.body for e in errors]
            return 207, orjson.dumps(wrapper)
        return (201 if action == "create" else 200), orjson.dumps(wrapper)

    def _batch_read(self, object_type: str, body: dict[str, Any], inputs: list[Any],
                    started: str) -> bytes:
        id_property = body.get("idProperty")
        props = list(self._props_param(object_type, body.get("properties")))
        found = []
        for item in inputs:
            ident = str(_dict(item).get("id", ""))
            obj = self._find_unique(object_type, id_property, ident) if id_property else (
                self._state.objects[object_type].get(int(ident)) if ident.isdigit() else None)
            if obj is not None and not obj.archived:
                found.append(self._public(object_type, obj, props, ()))
        return orjson.dumps({"status": "COMPLETE", "results": found, "startedAt": started,
                             "completedAt": iso_ms(self._now())})

    def _batch_create_one(self, object_type: str, item: dict[str, Any]) -> dict[str, Any]:
        return self._create_one(object_type, item)

    def _batch_update_one(self, object_type: str, item: dict[str, Any]) -> dict[str, Any]:
        ident = str(item.get("id", ""))
        id_property = item.get("idProperty")
        obj = self._find_unique(object_type, id_property, ident) if id_property else (
            self._state.objects[object_type].get(int(ident)) if ident.isdigit() else None)
        if obj is None or obj.archived:
            raise ApiError(404, f"Object not found: {ident}", "OBJECT_NOT_FOUND",
                           context={"ids": [ident]})
        props = self._validated(object_type, item.get("properties"), creating=False,
                                ident=ident)
        self._check_duplicate(object_type, props, except_id=obj.id)
        self._update_props(object_type, obj, props)
        self._modified(object_type, obj, self._now())
        return self._public(object_type, obj, list(props), ())

    def _batch_upsert_one(self, object_type: str, item: dict[str, Any]) -> dict[str, Any]:
        ident = str(item.get("id", ""))
        id_property = item.get("idProperty")
        if id_property and id_property != UNIQUE_PROPERTIES.get(object_type):
            raise ApiError(400, f"{id_property} is not a unique property of {object_type}",
                           context={"ids": [ident]})
        props = dict(_dict(item.get("properties")))
        if id_property:
            props.setdefault(id_property, ident)
        clean = self._validated(object_type, props, creating=False, ident=ident)
        obj = self._find_unique(object_type, id_property, ident) if id_property else (
            self._state.objects[object_type].get(int(ident)) if ident.isdigit() else None)
        if obj is not None and obj.archived:
            obj = None
        if obj is None:
            if not id_property:
                raise ApiError(404, f"Object not found: {ident}", "OBJECT_NOT_FOUND",
                               context={"ids": [ident]})
            self._check_duplicate(object_type, clean)
            obj = self._insert(object_type, clean, self._now())
            created = True
        else:
            self._check_duplicate(object_type, clean, except_id=obj.id)
            self._update_props(object_type, obj, clean)
            self._modified(object_type, obj, self._now())
            created = False
        out = self._public(object_type, obj, list(clean), ())
        out["new"] = created
        return out

    def _assoc_batch(self, from_type: str, to_type: str, action: str,
                     body: Any) -> tuple[int, bytes | None]:
        if from_type not in OBJECT_TYPES or to_type not in OBJECT_TYPES:
            raise ApiError(400, f"Unknown association {from_type} -> {to_type}")
        inputs = _dict(body).get("inputs") or []
        if len(inputs) > BATCH_MAX * 10:
            raise ApiError(400, "Too many inputs")
        type_id = ASSOCIATION_TYPE_IDS.get((from_type, to_type), 0)
        if action == "read":
            table = self._state.assoc.get((from_type, to_type), {})
            results = []
            for item in inputs:
                ident = str(_dict(item).get("id", ""))
                ids = table.get(int(ident), []) if ident.isdigit() else []
                if ids:
                    results.append({"from": {"id": ident}, "to": [
                        {"toObjectId": i, "associationTypes": [
                            {"category": "HUBSPOT_DEFINED", "typeId": type_id, "label": None}]}
                        for i in ids]})
            return 200, orjson.dumps({"status": "COMPLETE", "results": results})
        if action == "associate/default":
            results = []
            for item in inputs:
                item = _dict(item)
                a = str(_dict(item.get("from")).get("id", ""))
                b = str(_dict(item.get("to")).get("id", ""))
                if not (a.isdigit() and b.isdigit()
                        and int(a) in self._state.objects[from_type]
                        and int(b) in self._state.objects[to_type]):
                    raise ApiError(400, f"Cannot associate {from_type} {a} with {to_type} {b}: "
                                        f"object not found")
                self._associate(from_type, int(a), to_type, int(b))
                results.append({"fromObjectTypeId": from_type, "fromObjectId": a,
                                "toObjectTypeId": to_type, "toObjectId": b,
                                "labels": []})
            return 200, orjson.dumps({"status": "COMPLETE", "results": results})
        raise ApiError(404, f"No association batch action {action!r}", "OBJECT_NOT_FOUND")

    # -- validation ---------------------------------------------------------------------------

    def _validated(self, object_type: str, raw: Any, *, creating: bool,
                   ident: str | None = None) -> dict[str, str | None]:
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise ApiError(400, "Invalid input JSON: 'properties' must be an object")
        writable = WRITABLE_PROPERTIES[object_type] | self.extra_properties
        out: dict[str, str | None] = {}
        problems: list[dict[str, Any]] = []
        for name, value in raw.items():
            text = _stringify(value)
            if name in READ_ONLY_PROPERTIES:
                problems.append(_prop_error(name, "READ_ONLY_VALUE",
                                            f"{name} is a read only property; its value cannot "
                                            f"be set."))
            elif name not in writable:
                problems.append(_prop_error(name, "PROPERTY_DOESNT_EXIST",
                                            f'Property "{name}" does not exist'))
            elif name == "email" and text and not EMAIL_RE.match(text):
                problems.append(_prop_error(name, "INVALID_EMAIL",
                                            f"Email address {text} is invalid"))
            elif name in NUMBER_PROPERTIES and text and not _is_number(text):
                problems.append(_prop_error(name, "INVALID_NUMBER",
                                            f"{text} was not a valid number."))
            else:
                out[name] = text if text != "" else None
        if problems:
            listing = ", ".join(p["message"] for p in problems)
            raise ApiError(400, f"Property values were not valid: [{listing}]",
                           errors=problems, context={"ids": [ident]} if ident else None)
        return out

    def _check_duplicate(self, object_type: str, props: dict[str, str | None],
                         except_id: int | None = None) -> None:
        if object_type != "contacts" or not props.get("email"):
            return
        other = self._find_unique(object_type, "email", str(props["email"]))
        if other is not None and other.id != except_id:
            raise ApiError(409, f"Contact already exists. Existing ID: {other.id}", "CONFLICT",
                           context={"ids": [str(other.id)]})

    def _apply_associations(self, object_type: str, oid: int, raw: Any) -> None:
        for assoc in raw or []:
            to_id = str(_dict(_dict(assoc).get("to")).get("id", ""))
            types = _dict(assoc).get("types") or [{}]
            type_id = _dict(types[0]).get("associationTypeId")
            target = CREATE_ASSOCIATION_TYPES.get(object_type, {}).get(int(type_id or 0))
            if target and to_id.isdigit() and int(to_id) in self._state.objects[target]:
                self._associate(object_type, oid, target, int(to_id))

    # -- faults -------------------------------------------------------------------------------

    def fault_for(self) -> tuple[int, bytes, dict[str, str]] | str | None:
        """Decide the injected fault for the next request (None: serve it normally)."""
        f = self.faults
        with self._lock:
            roll = self._fault_rng.random()
            drop_roll = self._fault_rng.random()
            if f.burst_limit is not None:
                now = time.monotonic()
                while self._window and now - self._window[0] > 10.0:
                    self._window.popleft()
                if len(self._window) >= f.burst_limit:
                    wait = max(0.0, 10.0 - (now - self._window[0]))
                    return self._rate_limited(wait, "TEN_SECONDLY_ROLLING")
                self._window.append(now)
        if roll < f.rate_limit:
            return self._rate_limited(f.retry_after, "TEN_SECONDLY_ROLLING")
        if roll < f.rate_limit + f.server_error:
            status = (502, 503, 500)[int(roll * 1000) % 3]
            return status, orjson.dumps({"status": "error", "message": "internal error",
                                         "correlationId": str(uuid.uuid4()),
                                         "category": "INTERNAL_ERROR"}), {}
        if drop_roll < f.drop_response:
            return "drop"
        return None

    def _rate_limited(self, wait: float, policy: str) -> tuple[int, bytes, dict[str, str]]:
        self.waits_sent.append(wait)
        body = orjson.dumps({"status": "error",
                             "message": "You have reached your ten_secondly_rolling limit.",
                             "errorType": "RATE_LIMIT", "correlationId": str(uuid.uuid4()),
                             "policyName": policy, "requestId": str(uuid.uuid4())})
        headers = {"Retry-After": f"{wait:g}", "X-HubSpot-RateLimit-Max": "190",
                   "X-HubSpot-RateLimit-Remaining": "0",
                   "X-HubSpot-RateLimit-Interval-Milliseconds": "10000"}
        return 429, body, headers

    def rate_headers(self) -> dict[str, str]:
        """The rate-limit headers HubSpot sends on every answer."""
        limit = self.faults.burst_limit or 190
        used = len(self._window)
        return {"X-HubSpot-RateLimit-Max": str(limit),
                "X-HubSpot-RateLimit-Remaining": str(max(0, limit - used)),
                "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
                "X-HubSpot-RateLimit-Daily": "500000",
                "X-HubSpot-RateLimit-Daily-Remaining": "499000"}


# -- HTTP plumbing --------------------------------------------------------------------------


class _Server(SandboxServer):
    sandbox: HubSpotSandbox


class _Handler(SandboxHandler):
    methods: ClassVar[frozenset[str]] = frozenset({"DELETE", "GET", "PATCH", "POST", "PUT"})
    server: _Server

    def _serve(self, method: str) -> None:
        sandbox = self.server.sandbox
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        sandbox.requests.append((method, parts.path))
        if sandbox.faults.latency:
            time.sleep(sandbox.faults.latency)
        if self.headers.get("Authorization") != f"Bearer {sandbox.token}":
            self._send(401, orjson.dumps({
                "status": "error", "category": "INVALID_AUTHENTICATION",
                "message": "Authentication credentials not found. This API supports OAuth 2.0 "
                           "authentication and you can find more details at "
                           "https://developers.hubspot.com/docs/methods/auth/oauth-overview",
                "correlationId": str(uuid.uuid4())}), {})
            return
        fault = sandbox.fault_for()
        if isinstance(fault, tuple):
            self._send(*fault)
            return
        try:
            body = orjson.loads(raw) if raw else None
            status, payload = sandbox.handle(method, parts.path, parse_qs(parts.query), body)
        except orjson.JSONDecodeError:
            status, payload = 400, orjson.dumps(ApiError(400, "Invalid input JSON").body)
        except ApiError as exc:
            status, payload = exc.status, orjson.dumps(exc.body)
        except (ValueError, TypeError) as exc:
            status, payload = 400, orjson.dumps(ApiError(400, f"Invalid input: {exc}").body)
        if fault == "drop":
            self.close_connection = True  # the work is done but the answer is lost
            return
        self._send(status, payload, sandbox.rate_headers())

    def _send(self, status: int, payload: bytes | None, headers: dict[str, str]) -> None:
        reason = self.responses.get(status, ("",))[0] or "Multi-Status"
        lines = [f"HTTP/1.1 {status} {reason}"]
        if payload is not None:
            lines.append("Content-Type: application/json;charset=utf-8")
        lines.append(f"Content-Length: {len(payload) if payload is not None else 0}")
        lines.extend(f"{k}: {v}" for k, v in headers.items())
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        # One write: headers and body in the same segment (see module docstring).
        self.wfile.write(head + payload if payload is not None else head)


# -- helpers ----------------------------------------------------------------------------------


def _blank_none(props: dict[str, str]) -> dict[str, str | None]:
    """HubSpot shows an empty property as null."""
    return {k: (v or None) for k, v in props.items()}


def _assoc_param(object_type: str, query: dict[str, list[str]]) -> tuple[str, ...]:
    """The association types asked for with `associations=a,b` that the object has."""
    asked = ",".join(query.get("associations", [])).split(",")
    return tuple(sorted({t.strip() for t in asked
                         if (object_type, t.strip()) in ASSOCIATION_TYPE_IDS}))


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _int_param(query: dict[str, list[str]], name: str, default: int) -> int:
    values = query.get(name)
    if not values or values[0] == "":
        return default
    try:
        return int(values[0])
    except ValueError:
        raise ApiError(400, f"{name} must be an integer, got {values[0]!r}") from None


def _stringify(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _prop_error(name: str, code: str, message: str) -> dict[str, Any]:
    return {"isValid": False, "message": message, "error": code, "name": name,
            "code": code, "context": {"propertyName": [name]}}


def _check_filter_limits(groups: list[Any]) -> None:
    if len(groups) > 5:
        raise ApiError(400, "Too many filter groups (at most 5)")
    total = 0
    for group in groups:
        n = len(_dict(group).get("filters") or [])
        if n > 10:
            raise ApiError(400, "Too many filters in a group (at most 10)")
        total += n
    if total > 25:
        raise ApiError(400, "Too many filters (at most 25 in all)")


def _check_no_duplicate_ids(inputs: list[Any]) -> None:
    seen: set[str] = set()
    for item in inputs:
        ident = str(_dict(item).get("id", "")).lower()
        if ident in seen:
            raise ApiError(400, f"Duplicate IDs found in batch input: [{ident}]. IDs must be "
                                f"unique")
        seen.add(ident)


def _getter(object_type: str, name: str) -> Callable[[_Obj], Any]:
    if name in ("hs_object_id", "id"):
        return lambda o: o.id
    if name in DATETIME_PROPERTIES:
        if name == MODIFIED_PROPERTY[object_type]:
            return lambda o: o.updated_ms
        if name == "createdate":
            return lambda o: o.created_ms
    return lambda o: o.props.get(name)


def _sortable(value: Any) -> tuple[int, Any]:
    if value is None:
        return (1, "")
    if isinstance(value, int):
        return (0, value)
    try:
        return (0, float(value))
    except ValueError:
        return (0, str(value).lower())


def _compile_filter(object_type: str, raw: Any) -> Callable[[_Obj], bool]:
    spec = _dict(raw)
    name = str(spec.get("propertyName", ""))
    op = str(spec.get("operator", "EQ")).upper()
    get = _getter(object_type, name)
    is_time = name in DATETIME_PROPERTIES

    def norm(value: Any) -> Any:
        if value is None:
            return None
        if is_time:
            return value if isinstance(value, int) else parse_ms(str(value))
        if isinstance(value, int):
            return value
        text = str(value)
        try:
            return float(text)
        except ValueError:
            return text.lower()

    if op == "HAS_PROPERTY":
        return lambda o: get(o) not in (None, "")
    if op == "NOT_HAS_PROPERTY":
        return lambda o: get(o) in (None, "")
    if op in ("IN", "NOT_IN"):
        wanted = {norm(v) for v in spec.get("values") or []}
        if op == "IN":
            return lambda o: norm(get(o)) in wanted
        return lambda o: norm(get(o)) not in wanted
    if op == "CONTAINS_TOKEN":
        token = str(spec.get("value", "")).lower().strip("*")
        return lambda o: token in str(get(o) or "").lower()
    if op == "NOT_CONTAINS_TOKEN":
        token = str(spec.get("value", "")).lower().strip("*")
        return lambda o: token not in str(get(o) or "").lower()
    target = norm(spec.get("value"))
    if op == "BETWEEN":
        high = norm(spec.get("highValue"))
        return lambda o: _cmp(norm(get(o)), target, ">=") and _cmp(norm(get(o)), high, "<=")
    symbol = {"EQ": "==", "NEQ": "!=", "GT": ">", "GTE": ">=", "LT": "<", "LTE": "<="}.get(op)
    if symbol is None:
        raise ApiError(400, f"Unknown filter operator {op}")
    return lambda o: _cmp(norm(get(o)), target, symbol)


def _cmp(left: Any, right: Any, symbol: str) -> bool:
    if symbol == "!=":
        return bool(left != right)
    if left is None or right is None:
        return False
    if type(left) is not type(right) and not (isinstance(left, (int, float))
                                              and isinstance(right, (int, float))):
        left, right = str(left), str(right)
    if symbol == "==":
        return bool(left == right)
    if symbol == ">":
        return bool(left > right)
    if symbol == ">=":
        return bool(left >= right)
    if symbol == "<":
        return bool(left < right)
    return bool(left <= right)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the sandbox in the foreground and print how to connect to it."""
    parser = argparse.ArgumentParser(prog="hub sandbox hubspot",
                                     description="Run the HubSpot CRM v3 emulator on loopback.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--count", type=int, default=1000, help="fake contacts to create")
    parser.add_argument("--deals", type=int, default=0, help="fake deals to create")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--token", default="sandbox-token")
    parser.add_argument("--rate-limit", type=float, default=0.0,
                        help="fraction of requests answered 429")
    parser.add_argument("--retry-after", type=float, default=1.0,
                        help="seconds of Retry-After sent with the injected 429s")
    parser.add_argument("--server-error", type=float, default=0.0,
                        help="fraction of requests answered 5xx")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added per answer")
    parser.add_argument("--webhook-url", help="POST signed webhook events for changes here "
                        "(e.g. http://127.0.0.1:8000/webhooks/hubspot)")
    parser.add_argument("--client-secret", default="sandbox-client-secret",
                        help="the app client secret webhook deliveries are signed with")
    args = parser.parse_args(list(argv) if argv is not None else None)
    faults = Faults(rate_limit=args.rate_limit, server_error=args.server_error,
                    latency=args.latency, seed=args.seed, retry_after=args.retry_after)
    sandbox = HubSpotSandbox(seed=args.seed, count=args.count, port=args.port,
                             token=args.token, faults=faults, deals=args.deals)
    with sandbox:
        print(f"HubSpot sandbox listening on {sandbox.base_url}")
        print(f"  {len(sandbox.records('contacts'))} contacts, "
              f"{len(sandbox.records('companies'))} companies, "
              f"{len(sandbox.records('deals'))} deals (seed {args.seed})")
        print("  connection settings:")
        print(f"    base_url: {sandbox.base_url}")
        print("    token: ${HUBSPOT_TOKEN}")
        print(f"  export HUBSPOT_TOKEN={sandbox.token}   # a sandbox token, not a real secret")
        if args.webhook_url:
            sandbox.subscribe(args.webhook_url, client_secret=args.client_secret)
            print(f"  webhooks: changes are sent to {args.webhook_url}; set client_secret: "
                  "${HUBSPOT_CLIENT_SECRET} on the connection and")
            print(f"  export HUBSPOT_CLIENT_SECRET={args.client_secret}   # a sandbox secret")
        print("Press Ctrl-C to stop.", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
