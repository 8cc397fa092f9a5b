"""Thin typed calls to the HubSpot CRM v3/v4 endpoints the connector uses.

Every call goes through `hub.http` (retries, timeouts, error translation); this module only
knows URLs, request bodies and answer shapes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hub.http import HttpClient

DEFAULT_BASE_URL = "https://api.hubapi.com"
LIST_LIMIT_MAX = 100
SEARCH_LIMIT_MAX = 200
BATCH_MAX = 100
SEARCH_CAP = 10_000  # HubSpot answers 400 when search pages past this many results

# The properties read for each object: what the default mappings use, plus the timestamps.
# HubSpot returns only the properties asked for, so a mapping that needs another property
# must have it listed here, or (a custom property) in the connection's `extra_properties`
# setting (connectors/hubspot/properties.py).
PROPERTIES: Mapping[str, tuple[str, ...]] = {
    "contacts": (
        "email", "firstname", "lastname", "jobtitle", "phone", "mobilephone", "company",
        "website", "address", "city", "state", "zip", "country", "hubspot_owner_id",
        "lifecyclestage", "createdate", "lastmodifieddate",
    ),
    "companies": (
        "name", "domain", "website", "industry", "description", "numberofemployees", "phone",
        "address", "address2", "city", "state", "zip", "country", "hubspot_owner_id",
        "lifecyclestage", "createdate", "hs_lastmodifieddate",
    ),
    "deals": (
        "dealname", "amount", "dealstage", "pipeline", "closedate", "hubspot_owner_id",
        "deal_currency_code", "description", "createdate", "hs_lastmodifieddate",
    ),
}
MODIFIED_PROPERTY: Mapping[str, str] = {
    "contacts": "lastmodifieddate", "companies": "hs_lastmodifieddate",
    "deals": "hs_lastmodifieddate",
}
# Deals have no unique property: they are created (batch/create), never upserted.
UNIQUE_PROPERTY: Mapping[str, str] = {"contacts": "email", "companies": "domain"}
READ_ONLY_PROPERTIES = frozenset({"hs_object_id", "createdate", "lastmodifieddate",
                                  "hs_lastmodifieddate"})
# object -> the associated types read with it (and written from the mapped record)
ASSOCIATED: Mapping[str, tuple[str, ...]] = {"contacts": ("companies",),
                                             "deals": ("companies", "contacts")}
ASSOCIATION_KIND: Mapping[tuple[str, str], str] = {
    ("contacts", "companies"): "contact_to_company",
    ("deals", "companies"): "deal_to_company",
    ("deals", "contacts"): "deal_to_contact",
}
# Associations a written record may have several of; for the others only the first
# (the primary company) is written.
MANY_ASSOCIATED = frozenset({("deals", "contacts")})


def iso_to_ms(value: str) -> int:
    """HubSpot's ISO-8601 timestamp (e.g. 2024-05-01T10:00:00.123Z) as epoch milliseconds."""
    return int(datetime.fromisoformat(value).timestamp() * 1000)


@dataclass(frozen=True)
class ListPage:
    """One page of the list or search endpoint."""

    results: list[dict[str, Any]]
    after: str | None  # the next page's token, None on the last page
    total: int | None = None  # search only


@dataclass(frozen=True)
class BatchAnswer:
    """A batch endpoint's answer: successes and per-input errors (207)."""

    status: int
    results: list[dict[str, Any]]
    errors: list[dict[str, Any]]


class HubSpotClient:
    """The HubSpot endpoints the connector calls."""

    def __init__(self, http: HttpClient) -> None:
        self.http = http

    def list_page(self, object_type: str, *, properties: Sequence[str], after: str | None,
                  limit: int, archived: bool = False,
                  associations: Iterable[str] = ()) -> ListPage:
        """GET /crm/v3/objects/{type}: one page in id order."""
        params: dict[str, Any] = {"limit": min(limit, LIST_LIMIT_MAX),
                                  "properties": ",".join(properties),
                                  "archived": "true" if archived else "false"}
        assoc = ",".join(associations)
        if assoc:
            params["associations"] = assoc
        if after:
            params["after"] = after
        body = self.http.get_json(f"/crm/v3/objects/{object_type}", params=params)
        return ListPage(body.get("results") or [], _next_after(body))

    def search_page(self, object_type: str, *, modified_gte: int, properties: Sequence[str],
                    after: int, limit: int) -> ListPage:
        """POST /crm/v3/objects/{type}/search: records modified at or after a time, oldest first."""
        prop = MODIFIED_PROPERTY[object_type]
        body = self.http.post_json(f"/crm/v3/objects/{object_type}/search", {
            "filterGroups": [{"filters": [
                {"propertyName": prop, "operator": "GTE", "value": str(modified_gte)}]}],
            "sorts": [{"propertyName": prop, "direction": "ASCENDING"}],
            "properties": list(properties),
            "limit": min(limit, SEARCH_LIMIT_MAX),
            "after": str(after),
        })
        return ListPage(body.get("results") or [], _next_after(body), body.get("total"))

    def get_one(self, object_type: str, object_id: str) -> dict[str, Any]:
        """GET /crm/v3/objects/{type}/{id}."""
        result: dict[str, Any] = self.http.get_json(f"/crm/v3/objects/{object_type}/{object_id}")
        return result

    def probe(self) -> None:
        """The cheapest authenticated call: one contact id."""
        self.http.get_json("/crm/v3/objects/contacts", params={"limit": 1, "properties": ""})

    def batch(self, object_type: str, action: str, inputs: list[dict[str, Any]]) -> BatchAnswer:
        """POST /crm/v3/objects/{type}/batch/{action} with at most 100 inputs."""
        response = self.http.request("POST", f"/crm/v3/objects/{object_type}/batch/{action}",
                                     json={"inputs": inputs})
        body = self.http.parse_json(response, "POST", f"/crm/v3/objects/{object_type}/batch")
        if not isinstance(body, dict):
            return BatchAnswer(response.status_code, [], [])
        return BatchAnswer(response.status_code, body.get("results") or [],
                           body.get("errors") or [])

    def associations(self, from_type: str, to_type: str,
                     ids: Sequence[str]) -> dict[str, list[str]]:
        """v4 batch read: each id's associated ids of another type."""
        out: dict[str, list[str]] = {}
        for start in range(0, len(ids), BATCH_MAX * 10):
            chunk = ids[start:start + BATCH_MAX * 10]
            body = self.http.post_json(f"/crm/v4/associations/{from_type}/{to_type}/batch/read",
                                       {"inputs": [{"id": i} for i in chunk]})
            for item in (body or {}).get("results") or []:
                out[str(item["from"]["id"])] = [str(t["toObjectId"]) for t in item.get("to", [])]
        return out

    def associate_default(self, from_type: str, to_type: str,
                          pairs: Sequence[tuple[str, str]]) -> None:
        """v4 batch default association of (from id, to id) pairs."""
        for start in range(0, len(pairs), BATCH_MAX):
            chunk = pairs[start:start + BATCH_MAX]
            self.http.post_json(
                f"/crm/v4/associations/{from_type}/{to_type}/batch/associate/default",
                {"inputs": [{"from": {"id": a}, "to": {"id": b}} for a, b in chunk]})


def _next_after(body: Any) -> str | None:
    paging = body.get("paging") if isinstance(body, dict) else None
    nxt = paging.get("next") if isinstance(paging, dict) else None
    after = nxt.get("after") if isinstance(nxt, dict) else None
    return str(after) if after not in (None, "") else None
