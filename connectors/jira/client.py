"""Thin typed calls to the Jira Cloud REST v3 endpoints the connector uses.

Every call goes through `hub.http` (retries, timeouts, error translation); this module knows
URLs, request bodies, answer shapes, Jira's error bodies and rate-limit headers, and how to
write a JQL datetime literal.

Error bodies. Jira answers 4xx with {"errorMessages": [...], "errors": {"field": "msg"}},
which `hub.http.vendor_message` does not know (it would quote the raw JSON). `ErrorCapture`
(an on_response hook) keeps the body of the last error answer of the calling thread, so
`JiraClient` re-raises the same exception with Jira's own words, and the bulk create reads
its per-issue errors from a 400 answer in which every issue failed.
LOCAL WORKAROUND: once hub.http understands the errorMessages/errors shape, the message
rewrite can go (the capture is still needed for the bulk 400 body).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import Any

import httpx
import orjson

from hub.errors import AuthError, RateLimited, SyncError
from hub.http import HttpClient

API = "/rest/api/3"
SEARCH_MAX_RESULTS = 100  # what we ask for; Jira may send fewer when many fields are listed
PROJECT_PAGE_MAX = 100
BULK_MAX = 50  # POST /issue/bulk takes at most 50 issues
PROJECT_EXPAND = "description,lead,url"
# What a read asks for: search/jql returns only the id unless fields are listed.
ISSUE_FIELDS: tuple[str, ...] = (
    "summary", "description", "status", "priority", "assignee", "duedate", "labels",
    "resolutiondate", "project", "issuetype", "created", "updated",
)
JQL_DATETIME = "%Y-%m-%d %H:%M"


def jql_string(value: str) -> str:
    """A JQL string literal: double quotes, with backslash and quote escaped."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def jql_datetime(ms: int, zone: tzinfo) -> str:
    """The latest "yyyy-MM-dd HH:mm" literal that, read in `zone`, is at or before `ms`.

    JQL reads datetime literals with minute precision in the user's time zone. Flooring to
    the minute errs early (a record re-read, never one skipped). In the hour a clock goes
    back, a wall time names two instants and Jira may take the later one, so such a literal
    is moved back an hour until both readings are at or before `ms`.
    """
    local = datetime.fromtimestamp(ms / 1000, zone).replace(second=0, microsecond=0)
    naive = local.replace(tzinfo=None)
    for _ in range(3):
        latest = max(naive.replace(tzinfo=zone, fold=f).timestamp() for f in (0, 1))
        if latest * 1000 <= ms:
            break
        naive -= timedelta(hours=1)
    return naive.strftime(JQL_DATETIME)


def jira_error_text(body: Any) -> str:
    """Jira's error body as one line: the errorMessages, then "field: message" pairs."""
    if not isinstance(body, Mapping):
        return ""
    parts = [str(m) for m in body.get("errorMessages") or () if m]
    errors = body.get("errors")
    if isinstance(errors, Mapping):
        parts.extend(f"{k}: {v}" for k, v in errors.items())
    return "; ".join(parts)


@dataclass
class ErrorCapture:
    """on_response hook: remembers the JSON body of the calling thread's last error answer."""

    _local: threading.local = field(default_factory=threading.local)

    def __call__(self, response: httpx.Response) -> None:
        if response.status_code < 400:
            return
        try:
            body = orjson.loads(response.content) if response.content else None
        except orjson.JSONDecodeError:
            body = None
        self._local.body = body

    def take(self) -> Any:
        """The last error body seen on this thread (once), or None."""
        body = getattr(self._local, "body", None)
        self._local.body = None
        return body


@dataclass
class JiraPacer:
    """Slows down before Jira's burst limit bites, from its rate-limit headers.

    When X-RateLimit-Remaining is at or below `reserve`, the rest of the window (until
    X-RateLimit-Reset, an ISO timestamp; `window_seconds` if absent or unreadable) is spread
    over the requests left. X-RateLimit-NearLimit: true (under 20 % left) adds a short pause.
    """

    reserve: int = 3
    window_seconds: float = 10.0
    near_limit_pause: float = 0.05
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.time
    waited: list[float] = field(default_factory=list)

    def __call__(self, response: httpx.Response) -> None:
        if response.status_code == 429:
            return  # Retry-After already covers this one (hub.http)
        pause = 0.0
        remaining = _int(response.headers.get("X-RateLimit-Remaining"))
        if remaining is not None and remaining <= self.reserve:
            pause = self._window(response.headers.get("X-RateLimit-Reset")) / (remaining + 1)
        elif response.headers.get("X-RateLimit-NearLimit", "").lower() == "true":
            pause = self.near_limit_pause
        if pause > 0:
            self.waited.append(pause)
            self.sleep(pause)

    def _window(self, reset: str | None) -> float:
        if reset:
            try:
                when = datetime.fromisoformat(reset.strip())
                seconds = when.timestamp() - self.clock()
                if 0 < seconds <= 60 * 60:
                    return seconds
                if seconds <= 0:
                    return 0.0
            except ValueError:
                pass
        return self.window_seconds


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


@dataclass(frozen=True)
class SearchPage:
    """One answer of POST /search/jql."""

    issues: list[dict[str, Any]]
    next_token: str | None  # None: this was the last page (isLast, or no token)


@dataclass(frozen=True)
class ProjectPage:
    """One answer of GET /project/search."""

    values: list[dict[str, Any]]
    is_last: bool
    start_at: int


@dataclass(frozen=True)
class BulkAnswer:
    """POST /issue/bulk: the created issues (in input order) and the per-element errors."""

    issues: list[dict[str, Any]]
    errors: dict[int, str]  # failedElementNumber -> Jira's message
    statuses: dict[int, int]  # failedElementNumber -> HTTP status of that element


class JiraClient:
    """The Jira endpoints the connector calls."""

    def __init__(self, http: HttpClient, capture: ErrorCapture) -> None:
        self.http = http
        self.capture = capture

    # -- plumbing ---------------------------------------------------------------------------

    def call(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
             json: Any = None) -> Any:
        """One request; the parsed JSON answer (None when empty), or a hub error in Jira's words."""
        self.capture.take()  # forget an error body left by an earlier call
        try:
            response = self.http.request(method, path, params=params, json=json)
        except SyncError as exc:
            raise self._explained(exc) from None
        return self.http.parse_json(response, method, path)

    def _explained(self, exc: SyncError) -> SyncError:
        body = self.capture.take()
        said = jira_error_text(body)
        if not said:
            exc.body = body  # type: ignore[attr-defined]  # e.g. the bulk 400's element errors
            return exc
        head = str(exc).split(': {"', 1)[0]  # drop the raw JSON hub.http quoted
        text = f"{head}: {said}"
        if isinstance(exc, AuthError):
            text += " (check the email and api_token of the Jira connection)"
        if isinstance(exc, RateLimited):
            out: SyncError = RateLimited(text, retry_after=exc.retry_after,
                                         status=exc.status or 429)
        else:
            out = type(exc)(text, status=exc.status)
        out.body = body  # type: ignore[attr-defined]  # Jira's error body, for per-item errors
        return out

    # -- calls ------------------------------------------------------------------------------

    def myself(self) -> dict[str, Any]:
        """GET /myself: the API user (accountId, timeZone...)."""
        body: dict[str, Any] = self.call("GET", f"{API}/myself")
        return body

    def project_page(self, start_at: int, max_results: int) -> ProjectPage:
        """GET /project/search: one page of projects ordered by key."""
        body = self.call("GET", f"{API}/project/search", params={
            "startAt": start_at, "maxResults": min(max_results, PROJECT_PAGE_MAX),
            "orderBy": "key", "expand": PROJECT_EXPAND})
        values = list(body.get("values") or [])
        # isLast may be missing on old answers: an empty or short page is the end then.
        is_last = bool(body.get("isLast", len(values) < int(body.get("maxResults") or 1)))
        return ProjectPage(values, is_last or not values, int(body.get("startAt") or start_at))

    def project(self, key: str) -> dict[str, Any]:
        """GET /project/{key}."""
        body: dict[str, Any] = self.call("GET", f"{API}/project/{key}",
                                         params={"expand": PROJECT_EXPAND})
        return body

    def search(self, jql: str, fields: Sequence[str], max_results: int,
               token: str | None) -> SearchPage:
        """POST /search/jql: one page; next_token None when Jira says it was the last."""
        request: dict[str, Any] = {"jql": jql, "fields": list(fields),
                                   "maxResults": min(max_results, SEARCH_MAX_RESULTS)}
        if token:
            request["nextPageToken"] = token
        body = self.call("POST", f"{API}/search/jql", json=request)
        issues = list(body.get("issues") or [])
        token = body.get("nextPageToken") or None
        if body.get("isLast") is True or not token:
            return SearchPage(issues, None)
        return SearchPage(issues, str(token))

    def issue(self, issue_id: str, fields: Sequence[str]) -> dict[str, Any]:
        """GET /issue/{id}."""
        body: dict[str, Any] = self.call("GET", f"{API}/issue/{issue_id}",
                                         params={"fields": ",".join(fields)})
        return body

    def create(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        """POST /issue: 201 {"id", "key", "self"}."""
        body: dict[str, Any] = self.call("POST", f"{API}/issue", json={"fields": fields})
        return body

    def bulk_create(self, issues: Sequence[Mapping[str, Any]]) -> BulkAnswer:
        """POST /issue/bulk with at most 50 issues; per-element errors, also from a 400."""
        try:
            body = self.call("POST", f"{API}/issue/bulk",
                             json={"issueUpdates": [{"fields": f} for f in issues]})
        except SyncError as exc:
            body = getattr(exc, "body", None)
            # A 400 whose body lists element errors is a per-issue answer (every one failed);
            # anything else (auth, 5xx, a malformed request) concerns the whole call.
            if exc.status != 400 or not isinstance(body, Mapping) \
                    or not isinstance(body.get("errors"), list):
                raise
        errors: dict[int, str] = {}
        statuses: dict[int, int] = {}
        for item in body.get("errors") or ():
            if not isinstance(item, Mapping):
                continue
            try:
                index = int(item["failedElementNumber"])
            except (KeyError, TypeError, ValueError):
                continue
            errors[index] = jira_error_text(item.get("elementErrors")) or "refused"
            statuses[index] = int(item.get("status") or 400)
        return BulkAnswer(list(body.get("issues") or []), errors, statuses)

    def update(self, issue_id: str, fields: Mapping[str, Any]) -> None:
        """PUT /issue/{id}: 204."""
        self.call("PUT", f"{API}/issue/{issue_id}", json={"fields": fields})

    def delete(self, issue_id: str) -> None:
        """DELETE /issue/{id}: 204."""
        self.call("DELETE", f"{API}/issue/{issue_id}")

    def transitions(self, issue_id: str) -> list[dict[str, Any]]:
        """GET /issue/{id}/transitions: the transitions possible from the current status."""
        body = self.call("GET", f"{API}/issue/{issue_id}/transitions")
        return [t for t in body.get("transitions") or [] if isinstance(t, dict)]

    def transition(self, issue_id: str, transition_id: str) -> None:
        """POST /issue/{id}/transitions: 204."""
        self.call("POST", f"{API}/issue/{issue_id}/transitions",
                  json={"transition": {"id": transition_id}})
