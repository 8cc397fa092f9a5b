"""A stateful emulator of the Pipedrive API v2 subset the connector uses, on loopback.

Faithful to vendor-apis.md section 4:
- auth: `x-api-token` header or `?api_token=`; otherwise 401 `"unauthorized access"` with
  errorCode. Every answer is wrapped {"success", "data", "additional_data"}; errors are
  {"success": false, "error", "error_info", "data": null, "additional_data": null}.
- GET /api/v2/{persons|organizations|deals}: `limit` (default 100, max 500), opaque
  `cursor` / additional_data.next_cursor (null on the last page), sort_by=id|update_time|
  add_time, sort_direction=asc|desc, updated_since (>=) / updated_until (<), RFC 3339;
  deals take status=open,won,lost,deleted ("deleted": deals deleted in the last 30 days).
  Deleted records are never listed otherwise.
- GET/PATCH/DELETE /api/v2/{object}/{id}, POST /api/v2/{object}; DELETE is soft and
  answers {"success": true, "data": {"id": 1}}.
- GET /api/v2/persons/search?term&fields&exact_match (a wrapper of itemSearch).
- Timestamps "2024-01-04T10:44:11Z" (whole seconds); emails/phones [{value, primary,
  label}]; custom fields under custom_fields with 40-character hash keys.
- Rate limits: a burst window of 2 s (`burst_limit` requests, default 120: api_token on
  Enterprise) and a daily token budget spent at ~2 per single GET, 20 per list, 10 per
  update, 40 per search [obs]; headers x-ratelimit-limit / -remaining / -reset (seconds)
  and x-daily-requests-left on every answer; 429 past either limit, with the same headers
  and no Retry-After.
- Webhooks v2: every change after start-up becomes an event (sandbox_webhooks.py).

Emulator assumptions [emu], where the reference is silent:
- A body field the object does not have is refused (400), so a mapping that invents a
  field is caught here; `first_name`/`last_name` are read-only (v2 writes take `name`,
  which is split at the first space into first_name/last_name).
- A deleted record still reads by id (GET) with is_deleted true; PATCH/DELETE on it 404.
  Deleting a deal sets status "deleted" and is_deleted true; deleting bumps update_time.
- Search answers {"items": [{"result_score", "item": {id, type, name, emails: [text],
  phones: [text], ...}}]}, never deleted persons, and lags writes by `search_lag` seconds.
- The cursor is base64 JSON of the sort and the last key: keyset paging, so a record
  changed mid-read moves behind the cursor instead of shifting the pages. A cursor made
  for another sort is refused (400).
- Creates answer 201, other successes 200.

Faults (429 with Pipedrive's headers, 5xx, dropped answers, latency) come from a seeded
random generator, so a run is reproducible. Answers are written in one piece with
TCP_NODELAY.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import random
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import httpx
import orjson

from connectors.pipedrive import fakedata
from connectors.pipedrive.sandbox_webhooks import WebhookOutbox
from connectors.sandbox_http import SandboxHandler, SandboxServer, ServedSandbox

OBJECT_TYPES = ("persons", "organizations", "deals")
SINGULAR = {"persons": "Person", "organizations": "Organization", "deals": "Deal"}
LIST_LIMIT_MAX = 500
IDS_MAX = 100
DELETED_KEPT_S = 30 * 86_400
BURST_WINDOW_S = 2.0
COSTS = {"get": 2, "list": 20, "search": 40, "update": 10, "create": 10, "delete": 6}
ERROR_INFO = "Please check developers.pipedrive.com for more information about Pipedrive API."
COMMON_WRITABLE = frozenset({"owner_id", "visible_to", "label_ids", "custom_fields",
                             "add_time", "update_time"})
WRITABLE = {
    "persons": COMMON_WRITABLE | {"name", "org_id", "emails", "phones", "marketing_status"},
    "organizations": COMMON_WRITABLE | {"name", "address"},
    "deals": COMMON_WRITABLE | {"title", "person_id", "org_id", "pipeline_id", "stage_id",
                                "value", "currency", "status", "probability", "lost_reason",
                                "expected_close_date", "is_archived", "close_time",
                                "won_time", "lost_time"},
}
REQUIRED = {"persons": "name", "organizations": "name", "deals": "title"}
ADDRESS_KEYS = frozenset({"value", "street_number", "route", "sublocality", "subpremise",
                          "locality", "admin_area_level_1", "admin_area_level_2", "country",
                          "postal_code", "formatted_address"})
SEARCH_FIELDS = frozenset({"name", "email", "phone", "notes", "custom_fields"})
SORTS = ("id", "update_time", "add_time")
PATH = re.compile(r"^/api/v2/([a-z]+)(?:/([^/]+))?$")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class Faults:
    """Injected failures; every fraction is per request, drawn from `seed`."""

    rate_limit: float = 0.0  # answer 429 as if the burst window were spent
    server_error: float = 0.0  # answer 500/502/503 without doing anything
    drop_response: float = 0.0  # do the work, then close the connection without answering
    latency: float = 0.0  # seconds added to every answer
    reset_seconds: int = 1  # x-ratelimit-reset sent with injected 429s
    seed: int = 0


def rfc3339(seconds: int) -> str:
    """Epoch seconds as Pipedrive's v2 timestamp."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def parse_rfc3339(value: str) -> int | None:
    """An RFC 3339 timestamp as epoch seconds; None if it is not one."""
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None  # RFC 3339 requires the offset
    return int(parsed.timestamp())


class ApiError(Exception):
    """An error answer in Pipedrive's shape."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"success": False, "error": message,
                                     "error_info": ERROR_INFO, "data": None,
                                     "additional_data": None, **extra}


class PipedriveSandbox(ServedSandbox):
    """The emulator: start it, point the connector at `.base_url` with `.api_token`."""

    def __init__(self, seed: int = 1, count: int = 0, port: int = 0,
                 api_token: str = "sandbox-api-token", faults: Faults = Faults(), *,
                 organizations: int | None = None, deals: int | None = None,
                 burst_limit: int = 120, daily_budget: int = 30_000 * 4 * 10,
                 search_lag: int = 0, clock: Callable[[], int] | None = None) -> None:
        self.seed = seed
        self.count = count
        self.api_token = api_token
        self.faults = faults
        self.burst_limit = burst_limit
        self.daily_budget = daily_budget
        self.daily_left = daily_budget
        self.search_lag = search_lag
        self._clock = clock or (lambda: int(time.time()))
        self._requested_port = port
        self._lock = threading.RLock()
        self._fault_rng = random.Random(faults.seed)
        self._window_start = 0.0
        self._window_used = 0
        self._records: dict[str, dict[int, dict[str, Any]]] = {t: {} for t in OBJECT_TYPES}
        self._deleted_at: dict[str, dict[int, int]] = {t: {} for t in OBJECT_TYPES}
        self._indexed_at: dict[int, int] = {}  # person id -> when search sees its change
        self._next_id = {t: 1 for t in OBJECT_TYPES}
        self._server: SandboxServer | None = None
        self._thread: threading.Thread | None = None
        self.requests: deque[tuple[str, str, str]] = deque(maxlen=100_000)  # method, path, query
        self.limited: deque[tuple[str, int]] = deque(maxlen=10_000)  # (why, reset) of 429s
        self.webhooks = WebhookOutbox(self._clock)
        self._recording = False
        self._source = "app"
        self._load(fakedata.generate(seed, count, organizations, deals))
        self._recording = True

    # -- lifecycle --------------------------------------------------------------------------

    label = "Pipedrive"

    def _make_server(self) -> SandboxServer:
        return _Server(("127.0.0.1", self._requested_port), _Handler)

    @property
    def base_url(self) -> str:
        """The URL to configure as the connection's base_url."""
        return f"http://127.0.0.1:{self.port}"

    # -- direct state access for tests ------------------------------------------------------

    def records(self, object_type: str, *, deleted: bool | None = False) -> list[dict[str, Any]]:
        """Stored records of a type in id order (default: live ones; None: all)."""
        with self._lock:
            return [dict(r) for _, r in sorted(self._records[object_type].items())
                    if deleted is None or r["is_deleted"] == deleted]

    def get(self, object_type: str, object_id: int | str) -> dict[str, Any]:
        """One stored record, deleted or not (KeyError if unknown)."""
        with self._lock:
            return dict(self._records[object_type][int(object_id)])

    def create(self, object_type: str, *, at: int | None = None, **fields: Any) -> int:
        """Create a record server-side (as a Pipedrive user would); returns its id."""
        with self._lock:
            return int(self._insert(object_type, self._clean(object_type, fields, True),
                                    at or self._clock())["id"])

    def touch(self, object_type: str, object_id: int | str, *, at: int | None = None,
              **fields: Any) -> dict[str, Any]:
        """Change a record server-side; update_time becomes now (or `at`)."""
        with self._lock:
            record = self._live(object_type, int(object_id))
            self._apply(object_type, record, self._clean(object_type, fields, False),
                        at or self._clock())
            return dict(record)

    def delete(self, object_type: str, object_id: int | str, *, at: int | None = None) -> None:
        """Delete a record server-side (soft, as Pipedrive's trash)."""
        with self._lock:
            self._delete(object_type, self._live(object_type, int(object_id)),
                         at or self._clock())

    def send_webhooks(self, url: str, *, user: str | None, password: str | None,
                      events: list[dict[str, Any]] | None = None,
                      tamper: Callable[[bytes], bytes] | None = None) -> list[httpx.Response]:
        """POST the pending change events (or `events`) to `url` with Basic credentials."""
        return self.webhooks.send(url, user=user, password=password, events=events,
                                  tamper=tamper)

    # -- state (call with the lock held) ------------------------------------------------------

    def _load(self, data: fakedata.FakeData) -> None:
        org_ids = []
        for fields, (added, updated) in zip(data.organizations, data.times["organizations"]):
            org_ids.append(self._insert("organizations", dict(fields), added, updated)["id"])
        person_ids = []
        for fields, org, (added, updated) in zip(data.persons, data.person_org,
                                                 data.times["persons"]):
            fields = {**fields, "org_id": org_ids[org] if org is not None else None}
            person_ids.append(self._insert("persons", fields, added, updated)["id"])
        for fields, (person, org), (added, updated) in zip(data.deals, data.deal_links,
                                                           data.times["deals"]):
            fields = dict(fields)
            for key in ("close_time", "won_time", "lost_time"):
                fields[key] = rfc3339(fields[key]) if fields[key] is not None else None
            fields["person_id"] = person_ids[person] if person is not None else None
            fields["org_id"] = org_ids[org] if org is not None else None
            record = self._insert("deals", fields, added, updated)
            record["stage_change_time"] = rfc3339(updated)

    def _insert(self, object_type: str, fields: dict[str, Any], added: int,
                updated: int | None = None) -> dict[str, Any]:
        oid = self._next_id[object_type]
        self._next_id[object_type] += 1
        record = _blank(object_type)
        record.update(fields)
        record.update(id=oid, add_time=rfc3339(added), update_time=rfc3339(updated or added),
                      is_deleted=False)
        if object_type == "persons":
            _split_name(record)
            self._indexed_at[oid] = (updated or added) + self.search_lag
        if object_type == "deals" and record["status"] != "open" and not record["close_time"]:
            record["close_time"] = record["update_time"]
        self._records[object_type][oid] = record
        self._announce(object_type, "create", record, None)
        return record

    def _live(self, object_type: str, oid: int) -> dict[str, Any]:
        record = self._records[object_type].get(oid)
        if record is None or record["is_deleted"]:
            raise ApiError(404, f"{SINGULAR[object_type]} not found")
        return record

    def _apply(self, object_type: str, record: dict[str, Any], fields: dict[str, Any],
               now: int) -> None:
        previous = {k: record.get(k) for k, v in fields.items() if record.get(k) != v}
        stamp = rfc3339(now)
        if object_type == "deals":
            if "stage_id" in fields and fields["stage_id"] != record["stage_id"]:
                record["stage_change_time"] = stamp
            status = fields.get("status")
            if status is not None and status != record["status"]:
                record["close_time"] = stamp if status in ("won", "lost") else None
                record["won_time"] = stamp if status == "won" else None
                record["lost_time"] = stamp if status == "lost" else None
        for key, value in fields.items():
            if key == "custom_fields":
                record["custom_fields"] = {**record["custom_fields"], **value}
            elif key not in ("add_time", "update_time"):
                record[key] = value
        if object_type == "persons":
            if "name" in fields:
                _split_name(record)
            self._indexed_at[record["id"]] = now + self.search_lag
        record["update_time"] = stamp
        self._announce(object_type, "change", record, previous)

    def _delete(self, object_type: str, record: dict[str, Any], now: int) -> None:
        record["is_deleted"] = True
        if object_type == "deals":
            record["status"] = "deleted"
        record["update_time"] = rfc3339(now)
        self._deleted_at[object_type][record["id"]] = now
        self._announce(object_type, "delete", None, record)

    def _announce(self, object_type: str, action: str, data: dict[str, Any] | None,
                  previous: dict[str, Any] | None) -> None:
        if self._recording:
            ident = (data or previous or {}).get("id", 0)
            self.webhooks.record(object_type, action, int(ident), self._source,
                                 data=data, previous=previous)

    def _clean(self, object_type: str, raw: Any, creating: bool) -> dict[str, Any]:
        """A write body checked against the object's fields, or a 400."""
        if not isinstance(raw, dict):
            raise ApiError(400, "Validation failed: the body must be a JSON object")
        problems: list[str] = []
        out: dict[str, Any] = {}
        for key, value in raw.items():
            problem = self._field_problem(object_type, key, value)
            if problem:
                problems.append(f"{key}: {problem}")
            else:
                out[key] = value
        required = REQUIRED[object_type]
        if creating and not str(raw.get(required) or "").strip():
            problems.append(f"{required}: is required")
        elif required in raw and not str(raw.get(required) or "").strip():
            problems.append(f"{required}: must not be empty")
        if problems:
            raise ApiError(400, "Validation failed: " + "; ".join(problems))
        return out

    def _field_problem(self, object_type: str, key: str, value: Any) -> str | None:
        if key not in WRITABLE[object_type]:
            return "is not a field of this object" if key not in ("first_name", "last_name") \
                else "is read-only (write name)"
        if value is None:
            return None if key not in ("emails", "phones", "custom_fields") else "may not be null"
        if key in ("owner_id", "org_id", "person_id", "pipeline_id", "stage_id", "visible_to"):
            if not isinstance(value, int) or isinstance(value, bool):
                return "must be an integer"
            target = {"org_id": "organizations", "person_id": "persons"}.get(key)
            if target and value not in self._records[target]:
                return f"{SINGULAR[target]} {value} not found"
        elif key in ("emails", "phones"):
            return _labelled_problem(value)
        elif key == "custom_fields":
            if not isinstance(value, dict):
                return "must be an object keyed by custom field hash"
            unknown = set(value) - set(fakedata.CUSTOM_FIELDS[object_type])
            if unknown:
                return f"unknown custom field(s) {', '.join(sorted(unknown))}"
        elif key == "address":
            if not isinstance(value, dict) or set(value) - ADDRESS_KEYS:
                return f"must be an object with {', '.join(sorted(ADDRESS_KEYS))}"
        elif key in ("value", "probability"):
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                return "must be a number"
            if key == "probability" and not 0 <= value <= 100:
                return "must be between 0 and 100"
        elif key == "currency":
            if not (isinstance(value, str) and re.fullmatch(r"[A-Z]{3}", value)):
                return "must be a 3-letter currency code"
        elif key == "status":
            if value not in ("open", "won", "lost"):
                return "must be one of open, won, lost"
        elif key == "expected_close_date":
            if not (isinstance(value, str) and DATE.match(value)) or not _is_date(value):
                return "must be a date YYYY-MM-DD"
        elif key == "label_ids":
            if not isinstance(value, list) or not all(isinstance(i, int) for i in value):
                return "must be a list of integers"
        elif key in ("name", "title", "lost_reason", "marketing_status") \
                and not isinstance(value, str):
            return "must be a string"
        return None

    # -- endpoints ----------------------------------------------------------------------------

    def handle(self, method: str, path: str, query: dict[str, list[str]],
               body: Any) -> tuple[int, bytes]:
        """Route one authenticated request; (status, JSON bytes)."""
        with self._lock:
            self._source = "api"
            try:
                return self._route(method, path, query, body)
            finally:
                self._source = "app"

    def _route(self, method: str, path: str, query: dict[str, list[str]],
               body: Any) -> tuple[int, bytes]:
        match = PATH.match(path)
        if not match or match.group(1) not in OBJECT_TYPES:
            raise ApiError(404, f"Unknown method {method} {path}")
        object_type, ident = match.groups()
        if ident == "search" and object_type == "persons" and method == "GET":
            return 200, self._search(query)
        if ident is None:
            if method == "GET":
                return 200, self._list(object_type, query)
            if method == "POST":
                record = self._insert(object_type, self._clean(object_type, body, True),
                                      self._clock())
                return 201, _ok(record)
        else:
            oid = _id(ident)
            if method == "GET":
                found = self._records[object_type].get(oid)
                if found is None:
                    raise ApiError(404, f"{SINGULAR[object_type]} not found")
                return 200, _ok(found)
            if method == "PATCH":
                record = self._live(object_type, oid)
                self._apply(object_type, record, self._clean(object_type, body, False),
                            self._clock())
                return 200, _ok(record)
            if method == "DELETE":
                self._delete(object_type, self._live(object_type, oid), self._clock())
                return 200, _ok({"id": oid})
        raise ApiError(405, f"Method {method} is not allowed here")

    def _list(self, object_type: str, query: dict[str, list[str]]) -> bytes:
        limit = _int(query, "limit", 100)
        if not 1 <= limit <= LIST_LIMIT_MAX:
            raise ApiError(400, f"Validation failed: limit: must be between 1 and "
                                f"{LIST_LIMIT_MAX}")
        sort_by = _one(query, "sort_by") or "id"
        direction = _one(query, "sort_direction") or "asc"
        if sort_by not in SORTS:
            raise ApiError(400, f"Validation failed: sort_by: must be one of {', '.join(SORTS)}")
        if direction not in ("asc", "desc"):
            raise ApiError(400, "Validation failed: sort_direction: must be asc or desc")
        since = _time_param(query, "updated_since")
        until = _time_param(query, "updated_until")
        statuses = self._statuses(object_type, _one(query, "status"))
        ids = _ids(query)
        now = self._clock()
        chosen = []
        for record in self._records[object_type].values():
            if record["is_deleted"]:
                gone = self._deleted_at[object_type].get(record["id"], now)
                if "deleted" not in statuses or now - gone > DELETED_KEPT_S:
                    continue
            elif statuses and record.get("status") not in statuses:
                continue
            if ids is not None and record["id"] not in ids:
                continue
            updated = parse_rfc3339(record["update_time"]) or 0
            if (since is not None and updated < since) or (until is not None
                                                           and updated >= until):
                continue
            chosen.append(record)
        key = _sort_key(sort_by)
        chosen.sort(key=key, reverse=direction == "desc")
        after = _decode_cursor(_one(query, "cursor"), sort_by, direction)
        if after is not None:
            if direction == "asc":
                chosen = [r for r in chosen if key(r) > after]
            else:
                chosen = [r for r in chosen if key(r) < after]
        page = chosen[:limit]
        next_cursor = _encode_cursor(sort_by, direction, key(page[-1])) \
            if len(chosen) > limit else None
        return orjson.dumps({"success": True, "data": page,
                             "additional_data": {"next_cursor": next_cursor}})

    @staticmethod
    def _statuses(object_type: str, raw: str | None) -> set[str]:
        if not raw:
            return set()
        if object_type != "deals":
            raise ApiError(400, "Validation failed: status: not a parameter of this endpoint")
        values = {v.strip() for v in raw.split(",") if v.strip()}
        bad = values - {"open", "won", "lost", "deleted"}
        if bad:
            raise ApiError(400, f"Validation failed: status: unknown {', '.join(sorted(bad))}")
        return values

    def _search(self, query: dict[str, list[str]]) -> bytes:
        term = (_one(query, "term") or "").strip()
        exact = (_one(query, "exact_match") or "false").lower() == "true"
        if len(term) < (1 if exact else 2):
            raise ApiError(400, "Validation failed: term: must be at least 2 characters "
                                "(1 with exact_match)")
        fields = {f for f in (_one(query, "fields") or "").split(",") if f} or SEARCH_FIELDS
        if fields - SEARCH_FIELDS:
            raise ApiError(400, f"Validation failed: fields: unknown "
                                f"{', '.join(sorted(fields - SEARCH_FIELDS))}")
        limit = _int(query, "limit", 100)
        if not 1 <= limit <= LIST_LIMIT_MAX:
            raise ApiError(400, f"Validation failed: limit: must be between 1 and "
                                f"{LIST_LIMIT_MAX}")
        start = _int(query, "cursor", 0)  # [emu] the cursor is an offset here
        wanted = term.lower()
        now = self._clock()
        items = []
        for oid, person in sorted(self._records["persons"].items()):
            if person["is_deleted"] or self._indexed_at.get(oid, 0) > now:
                continue
            texts = []
            if "email" in fields:
                texts += [str(e.get("value", "")) for e in person["emails"]]
            if "name" in fields:
                texts.append(str(person.get("name") or ""))
            if "phone" in fields:
                texts += [str(p.get("value", "")) for p in person["phones"]]
            hit = any(t.lower() == wanted if exact else wanted in t.lower() for t in texts)
            if hit:
                items.append({"result_score": 1.0 if exact else 0.5, "item": _search_item(
                    person, self._records["organizations"])})
        page = items[start:start + limit]
        nxt = str(start + limit) if start + limit < len(items) else None
        return orjson.dumps({"success": True, "data": {"items": page},
                             "additional_data": {"next_cursor": nxt}})

    # -- rate limits and faults ---------------------------------------------------------------

    def admit(self, method: str, path: str) -> tuple[int, bytes, dict[str, str]] | str | None:
        """Count the request against the limits; a 429/5xx answer, "drop", or None."""
        f = self.faults
        with self._lock:
            now = time.monotonic()
            if now - self._window_start >= BURST_WINDOW_S:
                self._window_start, self._window_used = now, 0
            reset = max(1, round(BURST_WINDOW_S - (now - self._window_start)))
            if self._window_used >= self.burst_limit:
                return self._limited("burst", reset)
            cost = _cost(method, path)
            if self.daily_left < cost:
                return self._limited("daily", _seconds_to_midnight())
            self._window_used += 1
            self.daily_left -= cost
            roll = self._fault_rng.random()
            drop_roll = self._fault_rng.random()
        if roll < f.rate_limit:
            return self._limited("injected", f.reset_seconds)
        if roll < f.rate_limit + f.server_error:
            status = (500, 502, 503)[int(roll * 1000) % 3]
            return status, orjson.dumps(ApiError(status, "Internal server error").body), {}
        if drop_roll < f.drop_response:
            return "drop"
        return None

    def _limited(self, why: str, reset: int) -> tuple[int, bytes, dict[str, str]]:
        self.limited.append((why, reset))
        body = ApiError(429, "Request over limit", errorCode=429).body
        headers = {**self.rate_headers(), "x-ratelimit-remaining": "0",
                   "x-ratelimit-reset": str(reset)}
        return 429, orjson.dumps(body), headers

    def rate_headers(self) -> dict[str, str]:
        """The rate-limit headers Pipedrive sends on every answer."""
        with self._lock:
            elapsed = time.monotonic() - self._window_start
            reset = max(1, round(BURST_WINDOW_S - elapsed)) if elapsed < BURST_WINDOW_S \
                else int(BURST_WINDOW_S)
            return {"x-ratelimit-limit": str(self.burst_limit),
                    "x-ratelimit-remaining": str(max(0, self.burst_limit - self._window_used)),
                    "x-ratelimit-reset": str(reset),
                    "x-daily-requests-left": str(max(0, self.daily_left))}


# -- HTTP plumbing --------------------------------------------------------------------------


class _Server(SandboxServer):
    sandbox: PipedriveSandbox


class _Handler(SandboxHandler):
    methods: ClassVar[frozenset[str]] = frozenset({"DELETE", "GET", "PATCH", "POST", "PUT"})
    server: _Server

    def _serve(self, method: str) -> None:
        sandbox = self.server.sandbox
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        query = parse_qs(parts.query, keep_blank_values=True)
        sandbox.requests.append((method, parts.path, parts.query))
        if sandbox.faults.latency:
            time.sleep(sandbox.faults.latency)
        token = self.headers.get("x-api-token") or _one(query, "api_token")
        if token != sandbox.api_token:
            self._send(401, orjson.dumps(ApiError(401, "unauthorized access",
                                                  errorCode=401).body), {})
            return
        verdict = sandbox.admit(method, parts.path)
        if isinstance(verdict, tuple):
            self._send(*verdict)
            return
        try:
            body = orjson.loads(raw) if raw else None
            status, payload = sandbox.handle(method, parts.path, query, body)
        except orjson.JSONDecodeError:
            status, payload = 400, orjson.dumps(ApiError(400, "Invalid JSON body").body)
        except ApiError as exc:
            status, payload = exc.status, orjson.dumps(exc.body)
        if verdict == "drop":
            self.close_connection = True  # the work is done but the answer is lost
            return
        self._send(status, payload, sandbox.rate_headers())

    def _send(self, status: int, payload: bytes, headers: dict[str, str]) -> None:
        reason = self.responses.get(status, ("",))[0]
        lines = [f"HTTP/1.1 {status} {reason}", "Content-Type: application/json",
                 f"Content-Length: {len(payload)}"]
        lines.extend(f"{k}: {v}" for k, v in headers.items())
        if self.close_connection:
            lines.append("Connection: close")
        # One write: headers and body in the same segment (Nagle + delayed ACK otherwise).
        self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload)


# -- helpers ----------------------------------------------------------------------------------


def _blank(object_type: str) -> dict[str, Any]:
    """Every field a v2 record of the type carries, empty."""
    common: dict[str, Any] = {"id": 0, "owner_id": None, "add_time": None, "update_time": None,
                              "is_deleted": False, "visible_to": 3, "label_ids": [],
                              "custom_fields": {}}
    if object_type == "persons":
        return {**common, "name": None, "first_name": None, "last_name": None,
                "org_id": None, "emails": [], "phones": []}
    if object_type == "organizations":
        return {**common, "name": None, "address": None}
    return {**common, "title": None, "person_id": None, "org_id": None, "pipeline_id": 1,
            "stage_id": 1, "value": 0, "currency": "USD", "stage_change_time": None,
            "is_archived": False, "status": "open", "probability": None, "lost_reason": None,
            "close_time": None, "won_time": None, "lost_time": None,
            "expected_close_date": None}


def _split_name(record: dict[str, Any]) -> None:
    first, _, last = str(record.get("name") or "").strip().partition(" ")
    record["first_name"] = first or None
    record["last_name"] = last.strip() or None


def _labelled_problem(value: Any) -> str | None:
    if not isinstance(value, list):
        return "must be a list of {value, primary, label}"
    primaries = 0
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("value"), str) \
                or set(item) - {"value", "primary", "label"}:
            return "items must be {value (text), primary, label}"
        primaries += item.get("primary") is True
    if value and primaries != 1:
        return "exactly one item must be primary"
    return None


def _is_date(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _search_item(person: dict[str, Any], orgs: dict[int, dict[str, Any]]) -> dict[str, Any]:
    org = orgs.get(person["org_id"]) if person.get("org_id") else None
    return {"id": person["id"], "type": "person", "name": person["name"],
            "phones": [p["value"] for p in person["phones"]],
            "emails": [e["value"] for e in person["emails"]],
            "visible_to": person["visible_to"], "owner": {"id": person["owner_id"]},
            "organization": {"id": org["id"], "name": org["name"]} if org else None,
            "update_time": person["update_time"]}


def _ok(data: dict[str, Any]) -> bytes:
    return orjson.dumps({"success": True, "data": data, "additional_data": None})


def _sort_key(sort_by: str) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    if sort_by == "id":
        return lambda r: (r["id"],)
    return lambda r: (r[sort_by] or "", r["id"])  # RFC 3339 UTC text sorts as time


def _encode_cursor(sort_by: str, direction: str, key: tuple[Any, ...]) -> str:
    raw = orjson.dumps({"s": sort_by, "d": direction, "k": list(key)})
    return base64.urlsafe_b64encode(raw).decode("ascii")


def _decode_cursor(text: str | None, sort_by: str, direction: str) -> tuple[Any, ...] | None:
    if not text:
        return None
    try:
        data = orjson.loads(base64.urlsafe_b64decode(text.encode("ascii")))
        if data["s"] != sort_by or data["d"] != direction:
            raise ValueError("another sort")
        return tuple(data["k"])
    except (binascii.Error, ValueError, KeyError, TypeError, orjson.JSONDecodeError,
            UnicodeEncodeError):
        raise ApiError(400, "Validation failed: cursor: invalid cursor for this query") from None


def _one(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[0] if values else None


def _int(query: dict[str, list[str]], name: str, default: int) -> int:
    raw = _one(query, name)
    if raw in (None, ""):
        return default
    try:
        return int(str(raw))
    except ValueError:
        raise ApiError(400, f"Validation failed: {name}: must be an integer") from None


def _id(text: str) -> int:
    if not text.isdigit():
        raise ApiError(400, f"Validation failed: id: must be an integer, got {text!r}")
    return int(text)


def _ids(query: dict[str, list[str]]) -> set[int] | None:
    raw = _one(query, "ids")
    if not raw:
        return None
    parts = [p.strip() for p in raw.split(",") if p.strip()]
    if len(parts) > IDS_MAX or not all(p.isdigit() for p in parts):
        raise ApiError(400, f"Validation failed: ids: up to {IDS_MAX} integers")
    return {int(p) for p in parts}


def _time_param(query: dict[str, list[str]], name: str) -> int | None:
    raw = _one(query, name)
    if raw in (None, ""):
        return None
    seconds = parse_rfc3339(str(raw))
    if seconds is None:
        raise ApiError(400, f"Validation failed: {name}: must be RFC3339, e.g. "
                            f"2025-01-01T10:20:00Z")
    return seconds


def _cost(method: str, path: str) -> int:
    if path.endswith("/search"):
        return COSTS["search"]
    if method == "GET":
        match = PATH.match(path)
        return COSTS["list"] if match is not None and match.group(2) is None else COSTS["get"]
    return {"POST": COSTS["create"], "PATCH": COSTS["update"],
            "DELETE": COSTS["delete"]}.get(method, COSTS["get"])


def _seconds_to_midnight() -> int:
    now = time.time()
    return int(86_400 - now % 86_400) or 1


def main(argv: Sequence[str] | None = None) -> int:
    """Run the sandbox in the foreground and print how to connect to it."""
    parser = argparse.ArgumentParser(prog="hub sandbox pipedrive",
                                     description="Run the Pipedrive API v2 emulator on loopback.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--count", type=int, default=1000, help="fake persons to create")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--api-token", default="sandbox-api-token")
    parser.add_argument("--burst-limit", type=int, default=120,
                        help="requests per 2-second window before 429")
    parser.add_argument("--rate-limit", type=float, default=0.0,
                        help="fraction of requests answered 429")
    parser.add_argument("--server-error", type=float, default=0.0,
                        help="fraction of requests answered 5xx")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added per answer")
    parser.add_argument("--webhook-url", help="POST change events here every second "
                        "(e.g. http://127.0.0.1:8000/webhooks/pipedrive)")
    parser.add_argument("--webhook-user", default="liaison")
    parser.add_argument("--webhook-password", default="sandbox-webhook-password")
    args = parser.parse_args(list(argv) if argv is not None else None)
    faults = Faults(rate_limit=args.rate_limit, server_error=args.server_error,
                    latency=args.latency, seed=args.seed)
    sandbox = PipedriveSandbox(seed=args.seed, count=args.count, port=args.port,
                               api_token=args.api_token, faults=faults,
                               burst_limit=args.burst_limit)
    with sandbox:
        print(f"Pipedrive sandbox listening on {sandbox.base_url}")
        print(f"  {len(sandbox.records('persons'))} persons, "
              f"{len(sandbox.records('organizations'))} organizations, "
              f"{len(sandbox.records('deals'))} deals (seed {args.seed})")
        print("  connection settings:")
        print(f"    base_url: {sandbox.base_url}")
        print("    api_token: ${PIPEDRIVE_API_TOKEN}")
        print(f"  export PIPEDRIVE_API_TOKEN={sandbox.api_token}   # a sandbox token, "
              "not a real secret")
        if args.webhook_url:
            print(f"  webhooks: changes are POSTed to {args.webhook_url} with Basic auth; set "
                  f"webhook_user: {args.webhook_user} and webhook_password: "
                  "${PIPEDRIVE_WEBHOOK_PASSWORD}")
            print(f"  export PIPEDRIVE_WEBHOOK_PASSWORD={args.webhook_password}   # a sandbox "
                  "secret")
        print("Press Ctrl-C to stop.", flush=True)
        try:
            while True:
                time.sleep(1.0)
                if args.webhook_url and sandbox.webhooks.pending():
                    sandbox.send_webhooks(args.webhook_url, user=args.webhook_user,
                                          password=args.webhook_password)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
