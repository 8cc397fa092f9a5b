"""Thin typed calls to the Pipedrive API v2 endpoints the connector uses, and its Pacer.

Every call goes through `hub.http` (retries, timeouts, error translation); this module only
knows URLs, parameters and answer shapes (vendor-apis.md section 4):

    GET    /api/v2/{object}?limit&cursor&sort_by&sort_direction&updated_since[&status]
    GET    /api/v2/{object}/{id}
    POST   /api/v2/{object}             create (JSON body)
    PATCH  /api/v2/{object}/{id}        partial update
    DELETE /api/v2/{object}/{id}        soft delete (kept 30 days)
    GET    /api/v2/persons/search?term&fields=email&exact_match=true

Every answer is wrapped: {"success": true, "data": ..., "additional_data": {"next_cursor"}}.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from hub.http import HttpClient, Pacer, inline_retries

DEFAULT_BASE_URL = "https://api.pipedrive.com"  # or https://{companydomain}.pipedrive.com
API = "/api/v2"
LIST_LIMIT_MAX = 500
OBJECTS = ("persons", "organizations", "deals")

# Fields Pipedrive sets itself: never sent back on a write.
READ_ONLY: Mapping[str, frozenset[str]] = {
    "persons": frozenset({"id", "add_time", "update_time", "is_deleted", "picture_id"}),
    "organizations": frozenset({"id", "add_time", "update_time", "is_deleted"}),
    "deals": frozenset({"id", "add_time", "update_time", "is_deleted", "stage_change_time",
                        "close_time", "won_time", "lost_time"}),
}
# Id fields Pipedrive wants as JSON integers; Liaison's links hold ids as text.
INT_FIELDS = frozenset({"owner_id", "org_id", "person_id", "pipeline_id", "stage_id",
                        "visible_to"})


def to_rfc3339(seconds: float) -> str:
    """Epoch seconds as Pipedrive's v2 timestamp, e.g. 2024-01-04T10:44:11Z."""
    return datetime.fromtimestamp(int(seconds), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def from_rfc3339(value: str) -> int:
    """A v2 timestamp ("2024-01-04T10:44:11Z", any RFC 3339 offset) as epoch seconds."""
    parsed = datetime.fromisoformat(value.strip())
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp())


def api_root(base_url: str) -> str:
    """The host part of a configured base_url: ops staff may paste it with /api/v2 or /v1."""
    root = base_url.strip().rstrip("/")
    for suffix in ("/api/v2", "/api/v1", "/v1"):
        if root.endswith(suffix):
            return root[: -len(suffix)]
    return root


@dataclass(frozen=True)
class ListPage:
    """One page of a list endpoint."""

    records: list[dict[str, Any]]
    next_cursor: str | None  # None on the last page


@dataclass
class PipedrivePacer(Pacer):
    """Pacer for Pipedrive's burst window: x-ratelimit-remaining and x-ratelimit-reset (s).

    Pipedrive states the seconds until its window resets instead of the window's length, so
    the rest of that time is spread over the requests that remain. A 429 carries no
    Retry-After, only the same headers: in inline-retry mode the pacer waits out the reset
    (at most `max_wait` seconds) so the retry that follows lands in a fresh window; in
    worker mode it never sleeps (the job layer reschedules).
    """

    reset_header: str = "x-ratelimit-reset"
    max_wait: float = 10.0
    last_reset: float | None = None  # the seconds-to-reset of the latest answer

    def __call__(self, response: httpx.Response) -> None:
        reset = _float_header(response, self.reset_header)
        self.last_reset = reset
        if response.status_code == 429:
            if reset is not None and reset > 0 and inline_retries():
                pause = min(reset, self.max_wait)
                self.waited.append(pause)
                self.sleep(pause)
            return
        if reset is not None and reset > 0:
            self.interval_seconds = reset
        super().__call__(response)


def _float_header(response: httpx.Response, name: str) -> float | None:
    value = response.headers.get(name)
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None


class PipedriveClient:
    """The Pipedrive v2 endpoints the connector calls."""

    def __init__(self, http: HttpClient) -> None:
        self.http = http

    def list_page(self, object_type: str, *, limit: int, cursor: str | None,
                  sort_by: str = "id", updated_since: str | None = None,
                  status: str | None = None) -> ListPage:
        """GET /api/v2/{object}: one page, ascending by `sort_by`."""
        params: dict[str, Any] = {"limit": max(1, min(limit, LIST_LIMIT_MAX)),
                                  "sort_by": sort_by, "sort_direction": "asc"}
        if cursor:
            params["cursor"] = cursor
        if updated_since:
            params["updated_since"] = updated_since
        if status:
            params["status"] = status
        body = self.http.get_json(f"{API}/{object_type}", params=params)
        data = body.get("data") if isinstance(body, dict) else None
        return ListPage(list(data or []), _next_cursor(body))

    def get_one(self, object_type: str, object_id: str) -> dict[str, Any]:
        """GET /api/v2/{object}/{id}: the record (PermanentError status 404 if unknown)."""
        return _data(self.http.get_json(f"{API}/{object_type}/{object_id}"))

    def create(self, object_type: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST /api/v2/{object}: the created record."""
        return _data(self.http.post_json(f"{API}/{object_type}", dict(body)))

    def update(self, object_type: str, object_id: str,
               body: Mapping[str, Any]) -> dict[str, Any]:
        """PATCH /api/v2/{object}/{id} with only the fields given: the updated record."""
        path = f"{API}/{object_type}/{object_id}"
        response = self.http.request("PATCH", path, json=dict(body))
        return _data(self.http.parse_json(response, "PATCH", path))

    def delete(self, object_type: str, object_id: str) -> None:
        """DELETE /api/v2/{object}/{id}: a soft delete Pipedrive keeps for 30 days."""
        self.http.request("DELETE", f"{API}/{object_type}/{object_id}")

    def persons_by_email(self, email: str) -> list[int]:
        """Ids of live persons whose email is exactly `email` (search is case-insensitive)."""
        body = self.http.get_json(f"{API}/persons/search", params={
            "term": email, "fields": "email", "exact_match": "true", "limit": 10})
        data = body.get("data") if isinstance(body, dict) else None
        items = data.get("items") if isinstance(data, dict) else None
        wanted = email.strip().lower()
        found: list[int] = []
        for entry in items or []:
            item = entry.get("item") if isinstance(entry, dict) else None
            if not isinstance(item, dict) or item.get("id") is None:
                continue
            emails = item.get("emails")
            # Trust the search only as far as the exact address: the index matches tokens.
            if isinstance(emails, list) and emails and wanted not in {
                    _email_text(e).strip().lower() for e in emails}:
                continue
            found.append(int(item["id"]))
        return sorted(found)

    def probe(self) -> None:
        """The cheapest authenticated call: one person."""
        self.http.get_json(f"{API}/persons", params={"limit": 1})


def _email_text(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("value") or "")
    return str(value or "")


def _data(body: Any) -> dict[str, Any]:
    data = body.get("data") if isinstance(body, dict) else None
    return data if isinstance(data, dict) else {}


def _next_cursor(body: Any) -> str | None:
    extra = body.get("additional_data") if isinstance(body, dict) else None
    cursor = extra.get("next_cursor") if isinstance(extra, dict) else None
    return str(cursor) if cursor not in (None, "") else None
