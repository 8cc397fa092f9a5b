"""A stateful emulator of the Jira Cloud REST v3 subset the connector uses, on loopback.

Faithful to vendor-apis.md section 6 ([doc]/[obs] there) and Jira's published shapes:
Basic email:api_token auth (401 with errorMessages); GET /myself (the user's timeZone);
GET /project/search (startAt/maxResults/isLast/values, expand=description,lead,url) and
GET /project/{key}; POST|GET /search/jql with a real JQL parser (sandbox_jql.py),
`fields` (only `id` by default), maxResults (default 50, capped at `max_results_cap` when
fields are listed), opaque nextPageToken / isLast, tokens that expire (7 days, or at once
with `expire_tokens()`); the removed GET|POST /search answers 410; GET/PUT/DELETE
/issue/{id or key} (PUT and DELETE answer 204); POST /issue (201 {"id","key","self"});
POST /issue/bulk (at most 50; 201 with issues[] and errors[{status, elementErrors,
failedElementNumber}]); GET/POST /issue/{id}/transitions (a simplified workflow: any status
to any other). Quirks: descriptions only as ADF documents (a string is refused like v3
refuses it), datetimes as "2024-05-01T12:03:11.000+0200" in the user's time zone, JQL dates
read with minute precision in that zone, errors as {"errorMessages": [...], "errors": {...}},
status not settable by PUT ("cannot be set"), unbounded JQL refused.

Emulator assumptions ([emu]) where the docs are silent: nextPageToken is a keyset over the
ORDER BY (an issue changed while a search is paged moves behind it and is seen again; none
is skipped); `lazy_is_last` makes a page that ends exactly at the last issue still carry a
token, the next page being empty with isLast true [obs, configurable]; a bulk create in which
every issue fails answers 400 with the same body; rate-limit headers (X-RateLimit-Limit/
-Remaining/-Reset, X-RateLimit-NearLimit under 20 %) are sent on every answer when
`burst_limit` is set; search lags writes by `index_lag_ms` for new issues (eventual
consistency, 0 by default).

Faults (429 with Jira's headers, 5xx, slow answers, latency) are drawn from a seeded random
generator, so a run is reproducible. Responses are sent in one write with TCP_NODELAY.
Changes made after start-up become webhook events (jira:issue_created/updated/deleted),
delivered signed by `send_webhooks`.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import bisect
import gc
import hashlib
import hmac
import math
import random
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, ClassVar
from urllib.parse import parse_qs, unquote, urlsplit
from zoneinfo import ZoneInfo

import httpx
import orjson

from connectors.jira import fakedata
from connectors.jira.adf import is_adf_doc
from connectors.jira.sandbox_jql import JqlError, parse
from connectors.sandbox_http import SandboxHandler, SandboxServer, ServedSandbox
from connectors.sandbox_pump import WebhookPump

API = "/rest/api/3"
BULK_MAX = 50
SEARCH_DEFAULT = 50
SEARCH_IDS_MAX = 5000  # maxResults may reach this only when asking for id/key alone
PROJECT_PAGE_DEFAULT = 50
PROJECT_PAGE_MAX = 100
TOKEN_TTL_MS = 7 * 24 * 3600 * 1000
FIRST_ISSUE_ID = 10_000
# name -> (id, category key, category name, colour, category id)
STATUSES: dict[str, tuple[str, str, str, str, int]] = {
    "To Do": ("10000", "new", "To Do", "blue-gray", 2),
    "In Progress": ("3", "indeterminate", "In Progress", "yellow", 4),
    "Done": ("10001", "done", "Done", "green", 3),
}
INITIAL_STATUS = "To Do"
TRANSITIONS = {"11": "To Do", "21": "In Progress", "31": "Done"}  # id -> target status
PRIORITIES = {"Highest": "1", "High": "2", "Medium": "3", "Low": "4", "Lowest": "5"}
DEFAULT_PRIORITY = "Medium"
ISSUE_TYPES = {"Epic": "10000", "Task": "10001", "Story": "10002", "Bug": "10004"}
# What POST/PUT may set; anything else is "not on the appropriate screen, or unknown".
SETTABLE = frozenset({"project", "issuetype", "summary", "description", "priority",
                      "assignee", "duedate", "labels"})
ISSUE_PATH = re.compile(rf"^{API}/issue/([^/]+)(/transitions)?$")
PROJECT_PATH = re.compile(rf"^{API}/project/([^/]+)$")
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
NOT_FOUND_ISSUE = "Issue does not exist or you do not have permission to see it."
CANNOT_SET = "Field '{}' cannot be set. It is not on the appropriate screen, or unknown."


@dataclass(frozen=True)
class Faults:
    """Injected failures; every fraction is per request, drawn from `seed`."""

    rate_limit: float = 0.0  # answer 429 (jira-burst-based) with Retry-After
    server_error: float = 0.0  # answer 500/502/503 without doing anything
    slow: float = 0.0  # fraction of answers delayed by slow_seconds
    slow_seconds: float = 0.5
    latency: float = 0.0  # seconds added to every answer
    retry_after: int = 1  # the Retry-After seconds sent with injected 429s
    seed: int = 0
    burst_limit: int | None = None  # enforce N requests per burst_window (real 429s)
    burst_window: float = 10.0


class ApiError(Exception):
    """An error answer in Jira's {"errorMessages", "errors"} shape."""

    def __init__(self, status: int, messages: Sequence[str] = (),
                 errors: Mapping[str, str] | None = None) -> None:
        super().__init__("; ".join(messages) or str(errors))
        self.status = status
        self.body: dict[str, Any] = {"errorMessages": list(messages),
                                     "errors": dict(errors or {})}


@dataclass
class _Issue:
    """One stored issue (internal)."""

    id: int
    key: str
    project: str
    summary: str
    description: dict[str, Any] | None
    status: str
    priority: str | None
    assignee: str | None
    duedate: str | None
    labels: list[str]
    issuetype: str
    created_ms: int
    updated_ms: int
    resolved_ms: int | None = None

    def jql_value(self, name: str) -> Any:
        """The value a JQL clause compares (sandbox_jql.IssueView)."""
        if name == "updated":
            return self.updated_ms
        if name == "created":
            return self.created_ms
        if name == "project":
            return self.project
        if name == "key":
            return self.key
        if name == "id":
            return str(self.id)
        if name == "labels":
            return self.labels
        if name == "status":
            return self.status
        if name == "issuetype":
            return self.issuetype
        if name == "priority":
            return self.priority
        if name == "assignee":
            return self.assignee
        if name == "duedate":
            return self.duedate
        return self.summary


class _Rev:
    """Sorts a string in reverse (for ORDER BY <text field> DESC)."""

    __slots__ = ("v",)

    def __init__(self, v: Any) -> None:
        self.v = v

    def __lt__(self, other: _Rev) -> bool:
        return bool(self.v > other.v)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Rev) and self.v == other.v

    def __hash__(self) -> int:
        return hash(self.v)


class JiraSandbox(ServedSandbox):
    """The emulator: start it, point the connector at `.base_url` with `.email`/`.api_token`."""

    def __init__(self, seed: int = 1, count: int = 0, port: int = 0, *,
                 email: str = "sandbox@example.com", api_token: str = "sandbox-api-token",
                 projects: int = 3, time_zone: str = "America/New_York",
                 faults: Faults = Faults(), clock: Callable[[], int] | None = None,
                 max_results_cap: int = 100, lazy_is_last: bool = False,
                 reject_unbounded: bool = True, index_lag_ms: int = 0,
                 webhook_secret: str = "sandbox-webhook-secret") -> None:
        self.seed = seed
        self.count = count
        self.email = email
        self.api_token = api_token
        self.time_zone = time_zone
        self.faults = faults
        self.max_results_cap = max_results_cap
        self.lazy_is_last = lazy_is_last
        self.reject_unbounded = reject_unbounded
        self.index_lag_ms = index_lag_ms
        self.webhook_secret = webhook_secret
        self._clock = clock or (lambda: int(time.time() * 1000))
        self._requested_port = port
        self._lock = threading.RLock()
        self._fault_rng = random.Random(faults.seed)
        self._window: deque[float] = deque()
        self._server: SandboxServer | None = None
        self._thread: threading.Thread | None = None
        self._pump: WebhookPump | None = None
        self._token_epoch = 0
        self._version = 0
        self._search_cache: dict[tuple[str, int], tuple[list[tuple[Any, ...]], list[int]]] = {}
        self._ser_cache: dict[tuple[int, tuple[str, ...]], bytes] = {}
        self.users: dict[str, dict[str, str]] = {}
        self.me: dict[str, str] = {}
        self.projects: dict[str, dict[str, Any]] = {}
        self._issues: dict[int, _Issue] = {}
        self._by_key: dict[str, int] = {}
        self._counters: dict[str, int] = {}
        self._next_id = FIRST_ISSUE_ID
        self._next_project_id = 10_000
        # The latest requests seen and Retry-After values sent (bounded: the CLI runs for days)
        self.requests: deque[tuple[str, str]] = deque(maxlen=100_000)
        self.bodies: deque[Any] = deque(maxlen=1000)  # the latest JSON request bodies
        self.waits_sent: deque[float] = deque(maxlen=10_000)
        self.webhook_events: list[dict[str, Any]] = []  # changes not yet delivered
        self._recording = False
        self._load(fakedata.generate(seed, count, projects))
        self._recording = True
        if count >= 10_000:
            # Big data sets are long-lived: keep them out of the cyclic GC's full scans,
            # which otherwise cost more than serving the pages.
            gc.freeze()

    # -- lifecycle ------------------------------------------------------------------------

    label = "Jira"

    def _make_server(self) -> SandboxServer:
        return _Server(("127.0.0.1", self._requested_port), _Handler)

    def _before_stop(self) -> None:
        self.unsubscribe()

    @property
    def base_url(self) -> str:
        """The URL to configure as the connection's base_url."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def site(self) -> str:
        """The URL links in answers start with (also before start())."""
        return self.base_url if self._server is not None else "http://127.0.0.1"

    @property
    def zone(self) -> ZoneInfo:
        """The API user's time zone (JQL dates and answer timestamps use it)."""
        return ZoneInfo(self.time_zone)

    def now(self) -> int:
        """The sandbox clock, epoch ms."""
        return self._clock()

    # -- direct state access for tests ------------------------------------------------------

    def issue_ids(self) -> list[str]:
        """Ids of every issue, ascending."""
        with self._lock:
            return [str(i) for i in sorted(self._issues)]

    def issue(self, ident: str | int) -> dict[str, Any]:
        """One issue with every field, as GET /issue shows it."""
        with self._lock:
            return self._render(self._find(str(ident)), None)

    def add_project(self, key: str, name: str, *, description: str = "",
                    lead: str | None = None, url: str | None = None) -> str:
        """Create a project server-side; returns its key."""
        with self._lock:
            return self._add_project({"key": key, "name": name, "description": description,
                                      "lead": lead or next(iter(self.users)), "url": url})

    def add_issue(self, project: str, summary: str, *, at_ms: int | None = None,
                  **values: Any) -> str:
        """Create an issue server-side (as a Jira user would); returns its id."""
        with self._lock:
            now = at_ms or self.now()
            issue = self._insert(project, {"summary": summary, "created_ms": now,
                                           "updated_ms": now, **values})
            return str(issue.id)

    def touch(self, ident: str | int, *, at_ms: int | None = None, **values: Any) -> None:
        """Change an issue server-side (bumps `updated` to now or `at_ms`)."""
        with self._lock:
            issue = self._find(str(ident))
            for name, value in values.items():
                setattr(issue, name, value)
            self._changed(issue, at_ms or self.now())

    def delete_issue(self, ident: str | int) -> None:
        """Delete an issue server-side (it vanishes from search; a webhook event follows)."""
        with self._lock:
            self._remove(self._find(str(ident)))

    def expire_tokens(self) -> None:
        """Make every nextPageToken handed out so far invalid (as after 7 days)."""
        with self._lock:
            self._token_epoch += 1

    # -- loading ----------------------------------------------------------------------------

    def _load(self, data: fakedata.FakeData) -> None:
        for user in data.users:
            self.users[user["accountId"]] = {**user, "timeZone": self.time_zone}
        self.me = {"accountId": "5b10ac8d82e05b22cc7d4e00", "displayName": "Liaison Sync",
                   "emailAddress": self.email}
        self.users[self.me["accountId"]] = {**self.me, "timeZone": self.time_zone}
        for project in data.projects:
            self._add_project(project)
        for raw in data.issues:
            due = raw.pop("due_ms")
            raw["duedate"] = datetime.fromtimestamp(due / 1000, UTC).date().isoformat() \
                if due else None
            self._insert(raw.pop("project"), raw)

    def _add_project(self, raw: Mapping[str, Any]) -> str:
        key = str(raw["key"]).upper()
        if key in self.projects:
            raise ValueError(f"project {key} exists")
        self.projects[key] = {"id": str(self._next_project_id), "key": key,
                              "name": raw["name"], "description": raw.get("description") or "",
                              "lead": raw.get("lead"), "url": raw.get("url")}
        self._next_project_id += 1
        self._counters[key] = 0
        return key

    # -- state operations (call with the lock held) -------------------------------------------

    def _find(self, ident: str) -> _Issue:
        issue = None
        if ident.isdigit():
            issue = self._issues.get(int(ident))
        else:
            found = self._by_key.get(ident.upper())
            issue = self._issues.get(found) if found is not None else None
        if issue is None:
            raise ApiError(404, [NOT_FOUND_ISSUE])
        return issue

    def _insert(self, project: str, values: Mapping[str, Any]) -> _Issue:
        key = project.upper()
        self._counters[key] += 1
        now = self.now()
        issue = _Issue(
            id=self._next_id, key=f"{key}-{self._counters[key]}", project=key,
            summary=values["summary"], description=values.get("description"),
            status=values.get("status") or INITIAL_STATUS,
            priority=values.get("priority", DEFAULT_PRIORITY),
            assignee=values.get("assignee"), duedate=values.get("duedate"),
            labels=list(values.get("labels") or []),
            issuetype=values.get("issuetype") or "Task",
            created_ms=values.get("created_ms") or now,
            updated_ms=values.get("updated_ms") or now,
            resolved_ms=values.get("resolved_ms"))
        if issue.resolved_ms is None and STATUSES[issue.status][1] == "done":
            issue.resolved_ms = issue.updated_ms
        self._next_id += 1
        self._issues[issue.id] = issue
        self._by_key[issue.key] = issue.id
        self._version += 1
        self._announce("jira:issue_created", issue)
        return issue

    def _changed(self, issue: _Issue, at_ms: int) -> None:
        issue.updated_ms = at_ms
        self._version += 1
        for cache_key in [k for k in self._ser_cache if k[0] == issue.id]:
            del self._ser_cache[cache_key]
        self._announce("jira:issue_updated", issue)

    def _remove(self, issue: _Issue) -> None:
        self._announce("jira:issue_deleted", issue)
        del self._issues[issue.id]
        del self._by_key[issue.key]
        self._version += 1

    def _announce(self, event: str, issue: _Issue) -> None:
        if self._recording:
            self.webhook_events.append({
                "timestamp": self.now(), "webhookEvent": event,
                "issue_event_type_name": "issue_generic" if event.endswith("updated")
                else event.split("_", 1)[1],
                "user": self._user(self.me["accountId"]),
                "issue": self._render(issue, None)})

    # -- rendering ---------------------------------------------------------------------------

    def jira_time(self, ms: int) -> str:
        """Epoch ms as Jira writes datetimes: 2024-05-01T12:03:11.000+0200 (user's zone)."""
        local = datetime.fromtimestamp(ms / 1000, self.zone)
        return local.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}" + local.strftime("%z")

    def _user(self, account_id: str | None) -> dict[str, Any] | None:
        user = self.users.get(account_id or "")
        if user is None:
            return None
        return {"self": f"{self.site}{API}/user?accountId={user['accountId']}",
                "accountId": user["accountId"], "displayName": user["displayName"],
                "emailAddress": user["emailAddress"], "active": True,
                "timeZone": self.time_zone, "accountType": "atlassian"}  # [emu] one zone

    def _status(self, name: str) -> dict[str, Any]:
        sid, cat_key, cat_name, colour, cat_id = STATUSES[name]
        return {"self": f"{self.site}{API}/status/{sid}", "description": "",
                "iconUrl": f"{self.site}/", "name": name, "id": sid,
                "statusCategory": {"self": f"{self.site}{API}/statuscategory/{cat_id}",
                                   "id": cat_id, "key": cat_key, "colorName": colour,
                                   "name": cat_name}}

    def _field(self, issue: _Issue, name: str) -> Any:
        base = self.site
        if name == "summary":
            return issue.summary
        if name == "description":
            return issue.description
        if name == "status":
            return self._status(issue.status)
        if name == "priority":
            if issue.priority is None:
                return None
            pid = PRIORITIES[issue.priority]
            return {"self": f"{base}{API}/priority/{pid}", "name": issue.priority, "id": pid,
                    "iconUrl": f"{base}/images/icons/priorities/{issue.priority.lower()}.svg"}
        if name == "assignee":
            return self._user(issue.assignee)
        if name == "duedate":
            return issue.duedate
        if name == "labels":
            return list(issue.labels)
        if name == "resolutiondate":
            return self.jira_time(issue.resolved_ms) if issue.resolved_ms else None
        if name == "resolution":
            return {"name": "Done", "id": "10000"} if issue.resolved_ms else None
        if name == "project":
            project = self.projects[issue.project]
            return {"self": f"{base}{API}/project/{project['id']}", "id": project["id"],
                    "key": project["key"], "name": project["name"],
                    "projectTypeKey": "software", "simplified": False}
        if name == "issuetype":
            tid = ISSUE_TYPES[issue.issuetype]
            return {"self": f"{base}{API}/issuetype/{tid}", "id": tid,
                    "name": issue.issuetype, "subtask": False, "hierarchyLevel": 0}
        if name == "created":
            return self.jira_time(issue.created_ms)
        if name == "updated":
            return self.jira_time(issue.updated_ms)
        return None

    ALL_FIELDS = ("summary", "description", "status", "priority", "assignee", "duedate",
                  "labels", "resolutiondate", "resolution", "project", "issuetype", "created",
                  "updated")

    def _render(self, issue: _Issue, fields: Sequence[str] | None) -> dict[str, Any]:
        wanted = self.ALL_FIELDS if fields is None or "*all" in fields else fields
        return {"expand": "", "id": str(issue.id),
                "self": f"{self.site}{API}/issue/{issue.id}", "key": issue.key,
                "fields": {f: self._field(issue, f) for f in wanted
                           if f in self.ALL_FIELDS}}

    def _serialised(self, issue: _Issue, fields: tuple[str, ...]) -> bytes:
        cache_key = (issue.id, fields)
        data = self._ser_cache.get(cache_key)
        if data is None:
            if fields == ("id",):
                data = orjson.dumps({"id": str(issue.id)})
            else:
                data = orjson.dumps(self._render(issue, fields))
            self._ser_cache[cache_key] = data
        return data

    def _project_json(self, project: Mapping[str, Any], expand: set[str]) -> dict[str, Any]:
        base = self.site
        out: dict[str, Any] = {"expand": "description,lead,issueTypes,url,projectKeys",
                               "self": f"{base}{API}/project/{project['id']}",
                               "id": project["id"], "key": project["key"],
                               "name": project["name"], "projectTypeKey": "software",
                               "simplified": False, "style": "classic", "isPrivate": False}
        if "description" in expand:
            out["description"] = project["description"]
        if "lead" in expand:
            lead = self._user(project["lead"])
            if lead:
                out["lead"] = {k: lead[k] for k in ("self", "accountId", "displayName",
                                                     "active")}
        if "url" in expand and project.get("url"):
            out["url"] = project["url"]
        return out

    # -- endpoints ---------------------------------------------------------------------------

    def handle(self, method: str, path: str, query: dict[str, list[str]],
               body: Any) -> tuple[int, bytes | None]:
        """Route one authenticated request; returns (status, JSON bytes or None)."""
        with self._lock:
            return self._route(method, path, query, body)

    def _route(self, method: str, path: str, query: dict[str, list[str]],
               body: Any) -> tuple[int, bytes | None]:
        if path == f"{API}/myself" and method == "GET":
            return 200, orjson.dumps({**(self._user(self.me["accountId"]) or {}),
                                      "locale": "en_US"})
        if path == f"{API}/project/search" and method == "GET":
            return 200, self._project_search(query)
        if path == f"{API}/search/jql":
            if method == "POST":
                return 200, self._search(_dict(body))
            if method == "GET":
                return 200, self._search(_query_body(query))
        if path == f"{API}/search":
            raise ApiError(410, [("The requested API has been removed. Please migrate to the "
                                  "/rest/api/3/search/jql API.")])
        if path == f"{API}/issue" and method == "POST":
            return 201, orjson.dumps(self._create(_dict(body)))
        if path == f"{API}/issue/bulk" and method == "POST":
            return self._bulk(_dict(body))
        match = PROJECT_PATH.match(path)
        if match and method == "GET":
            key = unquote(match.group(1)).upper()
            project = self.projects.get(key) or next(
                (p for p in self.projects.values() if p["id"] == key), None)
            if project is None:
                raise ApiError(404, [f"No project could be found with key '{key}'."])
            return 200, orjson.dumps(self._project_json(project, {"description", "lead",
                                                                  "url"}))
        match = ISSUE_PATH.match(path)
        if match:
            issue = self._find(unquote(match.group(1)))
            if match.group(2):
                return self._transitions(method, issue, _dict(body))
            if method == "GET":
                fields = ",".join(query.get("fields", [])).split(",")
                wanted = [f for f in fields if f] or None
                return 200, orjson.dumps(self._render(issue, wanted))
            if method == "PUT":
                self._edit(issue, _dict(body))
                return 204, None
            if method == "DELETE":
                self._remove(issue)
                return 204, None
        raise ApiError(404, [f"No API at {method} {path}"])

    def _project_search(self, query: dict[str, list[str]]) -> bytes:
        start = _int_param(query, "startAt", 0)
        limit = _int_param(query, "maxResults", PROJECT_PAGE_DEFAULT)
        if start < 0 or limit < 0:
            raise ApiError(400, ["startAt and maxResults must not be negative."])
        limit = min(limit, PROJECT_PAGE_MAX)
        expand = {e.strip() for e in ",".join(query.get("expand", [])).split(",")}
        projects = sorted(self.projects.values(), key=lambda p: p["key"])
        chunk = projects[start:start + limit]
        is_last = start + limit >= len(projects)
        out: dict[str, Any] = {
            "self": f"{self.site}{API}/project/search?startAt={start}&maxResults={limit}",
            "maxResults": limit, "startAt": start, "total": len(projects), "isLast": is_last,
            "values": [self._project_json(p, expand) for p in chunk]}
        if not is_last:
            out["nextPage"] = (f"{self.site}{API}/project/search?startAt={start + limit}"
                               f"&maxResults={limit}")
        return orjson.dumps(out)

    # -- search ------------------------------------------------------------------------------

    def _search(self, body: dict[str, Any]) -> bytes:
        jql = body.get("jql")
        if not isinstance(jql, str):
            raise ApiError(400, ["The JQL query is required."])
        fields = tuple(str(f) for f in body.get("fields") or ()) or ("id",)
        ids_only = set(fields) <= {"id", "key"}
        requested = body.get("maxResults", SEARCH_DEFAULT)
        if not isinstance(requested, int) or requested < 0:
            raise ApiError(400, ["maxResults must be a positive number."])
        limit = min(requested, SEARCH_IDS_MAX if ids_only else self.max_results_cap)
        try:
            query = parse(jql, self.zone)
        except JqlError as exc:
            raise ApiError(400, [str(exc)]) from None
        if query.where is None and self.reject_unbounded:
            raise ApiError(400, [("Unbounded JQL queries are not allowed here. Please add a "
                                  "search restriction to your query.")])
        keys, ids = self._matching(jql, query)
        digest = hashlib.sha1(jql.encode()).hexdigest()[:12]
        start = 0
        token = body.get("nextPageToken")
        if token:
            start = self._resume(str(token), digest, keys, query.order)
        chunk = ids[start:start + limit]
        end = start + len(chunk)
        parts = [self._serialised(self._issues[i], fields) for i in chunk]
        more = end < len(ids) or (self.lazy_is_last and chunk and len(chunk) == limit)
        tail = b',"isLast":true}'
        if more and chunk:
            last = self._issues[chunk[-1]]
            token_text = self._token(digest, self._sort_values(last, query.order))
            tail = b',"nextPageToken":' + orjson.dumps(token_text) + b',"isLast":false}'
        return b'{"issues":[' + b",".join(parts) + b"]" + tail

    def _matching(self, jql: str, query: Any) -> tuple[list[tuple[Any, ...]], list[int]]:
        """(sort keys, ids) of the issues the query matches, in ORDER BY order."""
        cache_key = (jql, self._version)
        if not self.index_lag_ms:
            cached = self._search_cache.get(cache_key)
            if cached is not None:
                return cached
        visible_before = self.now() - self.index_lag_ms
        found = [i for i in self._issues.values()
                 if (query.where is None or query.where(i))
                 and (not self.index_lag_ms or i.created_ms <= visible_before)]
        pairs = sorted((self._sort_key(i, query.order), i.id) for i in found)
        result = ([k for k, _ in pairs], [i for _, i in pairs])
        if not self.index_lag_ms:
            if len(self._search_cache) > 16:
                self._search_cache.clear()
            self._search_cache[cache_key] = result
        return result

    @staticmethod
    def _sort_values(issue: _Issue, order: Sequence[tuple[str, bool]]) -> list[Any]:
        """The issue's ORDER BY values as JSON values, then its id (a total order)."""
        values: list[Any] = []
        for name, _ in order:
            if name == "key":
                project, _, number = issue.key.partition("-")
                values.append([project, int(number)])
            elif name == "id":
                values.append(issue.id)
            else:
                raw = issue.jql_value(name)
                if isinstance(raw, list):
                    raw = ",".join(raw)
                values.append(raw if isinstance(raw, int)
                              else "" if raw is None else str(raw).casefold())
        values.append(issue.id)
        return values

    def _sort_key(self, issue: _Issue, order: Sequence[tuple[str, bool]]) -> tuple[Any, ...]:
        return _key_of(self._sort_values(issue, order), order)

    def _token(self, digest: str, after: Any) -> str:
        raw = orjson.dumps({"q": digest, "a": after, "e": self._token_epoch,
                            "x": self.now() + TOKEN_TTL_MS})
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def _resume(self, token: str, digest: str, keys: list[tuple[Any, ...]],
                order: Sequence[tuple[str, bool]]) -> int:
        invalid = ApiError(400, ["The provided next page token is invalid or expired."])
        try:
            data = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        except (binascii.Error, orjson.JSONDecodeError, ValueError):
            raise invalid from None
        if not isinstance(data, dict) or data.get("q") != digest \
                or data.get("e") != self._token_epoch or int(data.get("x") or 0) < self.now():
            raise invalid
        try:
            return bisect.bisect_right(keys, _key_of(list(data["a"]), order))
        except (KeyError, TypeError, ValueError, IndexError):
            raise invalid from None

    # -- writes --------------------------------------------------------------------------------

    def _validated(self, fields: Any, *, creating: bool) -> dict[str, Any]:
        """Jira-shaped field values -> internal values; ApiError(400) listing every problem."""
        if not isinstance(fields, dict):
            raise ApiError(400, ["Issue must have fields set."] if creating
                           else ["No fields or update operations given."])
        errors: dict[str, str] = {}
        out: dict[str, Any] = {}
        for name in fields:
            if name not in SETTABLE or (name == "project" and not creating):
                errors[name] = CANNOT_SET.format(name)
        if creating or "project" in fields:
            project = _dict(fields.get("project"))
            key = str(project.get("key") or "").upper()
            if not key and project.get("id"):
                key = next((k for k, p in self.projects.items()
                            if p["id"] == str(project["id"])), "")
            if key not in self.projects:
                errors["project"] = "Specify a valid project ID or key"
            out["project"] = key
        if creating or "issuetype" in fields:
            kind = _dict(fields.get("issuetype"))
            name = kind.get("name") or next((n for n, i in ISSUE_TYPES.items()
                                             if i == str(kind.get("id"))), None)
            if name not in ISSUE_TYPES:
                errors["issuetype"] = ("Specify an issue type" if not kind
                                       else "The issue type selected is invalid.")
            out["issuetype"] = name
        if creating or "summary" in fields:
            summary = fields.get("summary")
            if not isinstance(summary, str) or not summary.strip():
                errors["summary"] = "You must specify a summary of the issue."
            elif len(summary) > 255 or "\n" in summary:
                errors["summary"] = "Summary must be less than 255 characters and on one line."
            out["summary"] = summary
        if "description" in fields:
            doc = fields["description"]
            if doc is not None and not _valid_adf(doc):
                errors["description"] = ("Operation value must be an Atlassian Document (see "
                                         "the Atlassian Document Format)")
            out["description"] = doc
        if "priority" in fields:
            priority = _dict(fields["priority"])
            name = priority.get("name") or next((n for n, i in PRIORITIES.items()
                                                 if i == str(priority.get("id"))), None)
            if name not in PRIORITIES:
                errors["priority"] = f"Priority name '{priority.get('name')}' is not valid"
            out["priority"] = name
        if "assignee" in fields:
            assignee = fields["assignee"]
            account = _dict(assignee).get("accountId") if assignee is not None else None
            if account is not None and account not in self.users:
                errors["assignee"] = f"User '{account}' cannot be assigned issues."
            out["assignee"] = account
        if "duedate" in fields:
            due = fields["duedate"]
            if due is not None and not (isinstance(due, str) and _real_date(due)):
                errors["duedate"] = f"Error parsing date string: {due}"
            out["duedate"] = due
        if "labels" in fields:
            labels = fields["labels"]
            if not isinstance(labels, list) or not all(isinstance(v, str) for v in labels):
                errors["labels"] = "Labels must be a list of strings."
            else:
                bad = next((v for v in labels if not v or " " in v or len(v) > 255), None)
                if bad is not None:
                    errors["labels"] = (f"The label '{bad}' contains spaces which is invalid."
                                        if " " in bad else f"The label '{bad}' is invalid.")
                out["labels"] = list(dict.fromkeys(labels))
        if errors:
            raise ApiError(400, [], errors)
        return out

    def _create(self, body: dict[str, Any]) -> dict[str, Any]:
        values = self._validated(body.get("fields"), creating=True)
        issue = self._insert(values.pop("project"), values)
        return {"id": str(issue.id), "key": issue.key,
                "self": f"{self.site}{API}/issue/{issue.id}"}

    def _bulk(self, body: dict[str, Any]) -> tuple[int, bytes]:
        updates = body.get("issueUpdates")
        if not isinstance(updates, list):
            raise ApiError(400, ["issueUpdates must be a list."])
        if len(updates) > BULK_MAX:
            raise ApiError(400, [(f"The number of issues to create ({len(updates)}) exceeds "
                                  f"the limit of {BULK_MAX}.")])
        issues: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        for n, update in enumerate(updates):
            try:
                issues.append(self._create(_dict(update)))
            except ApiError as exc:
                errors.append({"status": exc.status, "elementErrors": exc.body,
                               "failedElementNumber": n})
        status = 400 if errors and not issues else 201  # [emu] see the module docstring
        return status, orjson.dumps({"issues": issues, "errors": errors})

    def _edit(self, issue: _Issue, body: dict[str, Any]) -> None:
        values = self._validated(body.get("fields"), creating=False)
        changed = False
        for name, value in values.items():
            if getattr(issue, name) != value:
                setattr(issue, name, value)
                changed = True
        if changed:  # an edit that changes nothing leaves `updated` alone
            self._changed(issue, self.now())

    def _transitions(self, method: str, issue: _Issue,
                     body: dict[str, Any]) -> tuple[int, bytes | None]:
        if method == "GET":
            return 200, orjson.dumps({"expand": "transitions", "transitions": [
                {"id": tid, "name": target, "to": self._status(target), "hasScreen": False,
                 "isGlobal": True, "isInitial": False, "isAvailable": True,
                 "isConditional": False, "isLooped": False}
                for tid, target in TRANSITIONS.items() if target != issue.status]})
        if method == "POST":
            tid = str(_dict(body.get("transition")).get("id") or "")
            target = TRANSITIONS.get(tid)
            if target is None or target == issue.status:
                raise ApiError(400, [f"Transition id '{tid}' is not valid for this issue."])
            issue.status = target
            done = STATUSES[target][1] == "done"
            now = self.now()
            issue.resolved_ms = (issue.resolved_ms or now) if done else None
            self._changed(issue, now)
            return 204, None
        raise ApiError(405, [f"{method} is not allowed here."])

    # -- webhooks ----------------------------------------------------------------------------

    def send_webhooks(self, url: str, *, secret: str | None = None,
                      timestamp_ms: int | None = None,
                      tamper: Callable[[bytes], bytes] | None = None) -> list[httpx.Response]:
        """POST each pending change to `url` as Jira does, signed with `secret`.

        `timestamp_ms` overrides the body's timestamp (stale deliveries); `tamper` changes
        the body after it was signed. Delivered events are dropped from the pending list.
        """
        key = self.webhook_secret if secret is None else secret
        with self._lock:
            pending = list(self.webhook_events)
        answers = []
        for original in pending:
            event = original
            if timestamp_ms is not None:
                event = {**event, "timestamp": timestamp_ms}
            body, headers = signed_delivery(event, key)
            answer = httpx.post(url, content=tamper(body) if tamper else body,
                                headers=headers, timeout=5.0)
            answers.append(answer)
            if answer.is_success:
                with self._lock:
                    if original in self.webhook_events:
                        self.webhook_events.remove(original)
        return answers

    def subscribe(self, url: str, *, interval: float = 0.5) -> WebhookPump:
        """Send pending changes to `url` (send_webhooks) every `interval` s until stopped."""
        self.unsubscribe()

        def pending() -> bool:
            with self._lock:
                return bool(self.webhook_events)

        self._pump = WebhookPump("jira-sandbox-webhooks", pending,
                                 lambda: self.send_webhooks(url), interval=interval).start()
        return self._pump

    def unsubscribe(self) -> None:
        """Stop automatic delivery (changes not delivered yet stay pending)."""
        if self._pump is not None:
            self._pump.stop()
            self._pump = None

    # -- faults ------------------------------------------------------------------------------

    def fault_for(self) -> tuple[int, bytes, dict[str, str]] | float | None:
        """The injected fault for the next request: an answer, a delay (s), or None."""
        f = self.faults
        with self._lock:
            roll = self._fault_rng.random()
            slow_roll = self._fault_rng.random()
            if f.burst_limit is not None:
                now = time.monotonic()
                while self._window and now - self._window[0] > f.burst_window:
                    self._window.popleft()
                if len(self._window) >= f.burst_limit:
                    wait = max(0.0, f.burst_window - (now - self._window[0]))
                    return self._rate_limited(max(1, math.ceil(wait)))
                self._window.append(now)
        if roll < f.rate_limit:
            return self._rate_limited(f.retry_after)
        if roll < f.rate_limit + f.server_error:
            status = (500, 502, 503)[int(roll * 1000) % 3]
            return status, orjson.dumps({"errorMessages": ["Internal server error"],
                                         "errors": {}}), {}
        if slow_roll < f.slow:
            return f.slow_seconds
        return None

    def _rate_limited(self, wait: int) -> tuple[int, bytes, dict[str, str]]:
        self.waits_sent.append(float(wait))
        reset = datetime.fromtimestamp(time.time() + wait, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        headers = {"Retry-After": str(wait), "X-RateLimit-Reset": reset,
                   "X-RateLimit-Limit": str(self.faults.burst_limit or 100),
                   "X-RateLimit-Remaining": "0", "RateLimit-Reason": "jira-burst-based"}
        # [emu] Jira's 429 body is not documented; this is its usual error shape.
        return 429, orjson.dumps({"errorMessages": ["Rate limit exceeded."], "errors": {}}), \
            headers

    def rate_headers(self) -> dict[str, str]:
        """The rate-limit headers sent on ordinary answers when a burst limit is set [emu]."""
        f = self.faults
        if f.burst_limit is None:
            return {}
        with self._lock:
            remaining = max(0, f.burst_limit - len(self._window))
            oldest = self._window[0] if self._window else time.monotonic()
        reset_in = max(0.0, f.burst_window - (time.monotonic() - oldest))
        headers = {"X-RateLimit-Limit": str(f.burst_limit),
                   "X-RateLimit-Remaining": str(remaining),
                   "X-RateLimit-Reset": datetime.fromtimestamp(
                       time.time() + reset_in, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")}
        if remaining < f.burst_limit * 0.2:
            headers["X-RateLimit-NearLimit"] = "true"
        return headers

    def authorised(self, header: str | None) -> bool:
        """Whether an Authorization header carries this sandbox's email and API token."""
        if not header or not header.startswith("Basic "):
            return False
        try:
            given = base64.b64decode(header[6:].strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        expected = f"{self.email}:{self.api_token}".encode()
        return hmac.compare_digest(given, expected)


def signed_delivery(event: Mapping[str, Any], secret: str) -> tuple[bytes, dict[str, str]]:
    """(body, headers) of one admin-webhook delivery as Jira sends it."""
    body = orjson.dumps(event)
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return body, {"Content-Type": "application/json", "X-Hub-Signature": f"sha256={digest}",
                  "X-Atlassian-Webhook-Identifier": str(uuid.uuid4()),
                  "X-Atlassian-Webhook-Retry": "0"}


# -- HTTP plumbing --------------------------------------------------------------------------


class _Server(SandboxServer):
    sandbox: JiraSandbox


class _Handler(SandboxHandler):
    methods: ClassVar[frozenset[str]] = frozenset({"DELETE", "GET", "POST", "PUT"})
    server: _Server

    def _serve(self, method: str) -> None:
        sandbox = self.server.sandbox
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        sandbox.requests.append((method, parts.path))
        if sandbox.faults.latency:
            time.sleep(sandbox.faults.latency)
        if not sandbox.authorised(self.headers.get("Authorization")):
            self._send(401, orjson.dumps({
                "errorMessages": ["Client must be authenticated to access this resource."],
                "errors": {}}), {"WWW-Authenticate": 'Basic realm="protected-area"'})
            return
        fault = sandbox.fault_for()
        if isinstance(fault, tuple):
            self._send(*fault)
            return
        if isinstance(fault, float):
            time.sleep(fault)
        try:
            body = orjson.loads(raw) if raw else None
            sandbox.bodies.append(body)
            status, payload = sandbox.handle(method, parts.path, parse_qs(parts.query), body)
        except orjson.JSONDecodeError:
            status, payload = 400, orjson.dumps(ApiError(
                400, ["Unexpected character in the request body: it is not JSON."]).body)
        except ApiError as exc:
            status, payload = exc.status, orjson.dumps(exc.body)
        except (ValueError, TypeError, KeyError) as exc:
            status, payload = 400, orjson.dumps(ApiError(400, [f"Invalid request: {exc}"]).body)
        self._send(status, payload, sandbox.rate_headers())

    def _send(self, status: int, payload: bytes | None, headers: dict[str, str]) -> None:
        reason = self.responses.get(status, ("",))[0]
        lines = [f"HTTP/1.1 {status} {reason}"]
        if payload is not None:
            lines.append("Content-Type: application/json;charset=UTF-8")
        lines.append(f"Content-Length: {len(payload) if payload is not None else 0}")
        lines.extend(f"{k}: {v}" for k, v in headers.items())
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        # One write: headers and body in the same segment (Nagle + delayed ACK otherwise).
        self.wfile.write(head + payload if payload is not None else head)


# -- helpers --------------------------------------------------------------------------------


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _int_param(query: dict[str, list[str]], name: str, default: int) -> int:
    values = query.get(name)
    if not values or values[0] == "":
        return default
    try:
        return int(values[0])
    except ValueError:
        raise ApiError(400, [f"The value '{values[0]}' is invalid for {name}."]) from None


def _query_body(query: dict[str, list[str]]) -> dict[str, Any]:
    """GET /search/jql's query parameters as the POST body they stand for."""
    body: dict[str, Any] = {"jql": query.get("jql", [None])[0]}
    fields = ",".join(query.get("fields", []))
    if fields:
        body["fields"] = [f for f in fields.split(",") if f]
    if "maxResults" in query:
        body["maxResults"] = _int_param(query, "maxResults", SEARCH_DEFAULT)
    if "nextPageToken" in query:
        body["nextPageToken"] = query["nextPageToken"][0]
    return body


def _real_date(text: str) -> bool:
    if not DATE_RE.match(text):
        return False
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _valid_adf(doc: Any) -> bool:
    """An ADF document whose every node has a type and whose text nodes hold text."""
    if not is_adf_doc(doc):
        return False
    stack = list(doc["content"])
    while stack:
        node = stack.pop()
        if not isinstance(node, dict) or not isinstance(node.get("type"), str):
            return False
        if node["type"] == "text" and not (isinstance(node.get("text"), str) and node["text"]):
            return False
        content = node.get("content")
        if content is not None:
            if not isinstance(content, list):
                return False
            stack.extend(content)
    return True


def _key_of(values: list[Any], order: Sequence[tuple[str, bool]]) -> tuple[Any, ...]:
    """A sort key from ORDER BY values (JSON, as _sort_values gives them) and directions."""
    if len(values) != len(order) + 1:
        raise ValueError("the token does not fit the query's ORDER BY")
    parts: list[Any] = []
    for value, (name, descending) in zip(values, order, strict=False):
        if name == "key":
            value = (str(value[0]), int(value[1]))
        if isinstance(value, int) and not isinstance(value, bool):
            parts.append(-value if descending else value)
        else:
            parts.append(_Rev(value) if descending else value)
    parts.append(int(values[-1]))
    return tuple(parts)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the sandbox in the foreground and print how to connect to it."""
    parser = argparse.ArgumentParser(prog="hub sandbox jira",
                                     description="Run the Jira Cloud REST v3 emulator on "
                                                 "loopback.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--count", type=int, default=200, help="fake issues to create")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--projects", type=int, default=3, help="fake projects (at most 5)")
    parser.add_argument("--email", default="sandbox@example.com")
    parser.add_argument("--api-token", default="sandbox-api-token")
    parser.add_argument("--time-zone", default="America/New_York",
                        help="the API user's time zone (JQL dates are read in it)")
    parser.add_argument("--rate-limit", type=float, default=0.0,
                        help="fraction of requests answered 429")
    parser.add_argument("--server-error", type=float, default=0.0,
                        help="fraction of requests answered 5xx")
    parser.add_argument("--slow", type=float, default=0.0,
                        help="fraction of requests answered after --slow-seconds")
    parser.add_argument("--slow-seconds", type=float, default=0.5)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added per answer")
    parser.add_argument("--webhook-secret", default="sandbox-webhook-secret",
                        help="the secret webhook deliveries are signed with")
    parser.add_argument("--webhook-url", help="POST signed webhook events for changes here "
                        "(e.g. http://127.0.0.1:8000/webhooks/jira)")
    args = parser.parse_args(list(argv) if argv is not None else None)
    faults = Faults(rate_limit=args.rate_limit, server_error=args.server_error,
                    slow=args.slow, slow_seconds=args.slow_seconds, latency=args.latency,
                    seed=args.seed)
    sandbox = JiraSandbox(seed=args.seed, count=args.count, port=args.port,
                          projects=args.projects, email=args.email, api_token=args.api_token,
                          time_zone=args.time_zone, faults=faults,
                          webhook_secret=args.webhook_secret)
    with sandbox:
        print(f"Jira sandbox listening on {sandbox.base_url}")
        print(f"  {len(sandbox.issue_ids())} issues in {len(sandbox.projects)} projects "
              f"({', '.join(sorted(sandbox.projects))}; seed {args.seed}); user time zone "
              f"{sandbox.time_zone}")
        print("  connection settings:")
        print(f"    base_url: {sandbox.base_url}")
        print(f"    email: {sandbox.email}")
        print("    api_token: ${JIRA_API_TOKEN}")
        print("    webhook_secret: ${JIRA_WEBHOOK_SECRET}")
        print(f"  export JIRA_API_TOKEN={sandbox.api_token}   # a sandbox token, not a secret")
        print(f"  export JIRA_WEBHOOK_SECRET={sandbox.webhook_secret}")
        if args.webhook_url:
            sandbox.subscribe(args.webhook_url)
            print(f"  webhooks: changes are sent to {args.webhook_url}, signed with "
                  "${JIRA_WEBHOOK_SECRET}")
        print("Press Ctrl-C to stop.", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
