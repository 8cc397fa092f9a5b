"""Thin typed calls to the Xero Accounting API endpoints the connector uses.

Every call goes through `hub.http` (retries, timeouts, error translation) with a bearer token
from `connectors.oauth2.TokenAuth` and the `xero-tenant-id` header Xero requires on every call. This module
knows URLs, headers, the wrapped answer shape ({"Id", "Status": "OK", ..., "Invoices": [...]})
and Xero's MS-JSON dates; the connector decides what to call.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from connectors.oauth2 import TokenAuth, Vendor
from hub.errors import AuthError
from hub.http import HttpClient

DEFAULT_BASE_URL = "https://api.xero.com/api.xro/2.0"
DEFAULT_TOKEN_URL = "https://identity.xero.com/connect/token"
# Xero's refresh tokens are single use and expire after 60 days.
VENDOR = Vendor("Xero", "it was already used or is older than 60 days")
PAGE_SIZE_MAX = 1000  # since 2024-07 [obs]; the default is 100
BATCH_MAX = 50  # Xero advises about 50 elements (and < 3.5 MB) per write [obs]
IDEMPOTENCY_KEY_MAX = 128
TENANT_HEADER = "xero-tenant-id"
ID_FIELD: Mapping[str, str] = {"Contacts": "ContactID", "Invoices": "InvoiceID",
                               "Payments": "PaymentID"}
_MS_DATE = re.compile(r"/Date\((-?\d+)(?:[+-]\d{4})?\)/")


def ms_of(value: Any) -> int | None:
    """Epoch milliseconds of a Xero date: "/Date(1541176290160+0000)/" or ISO text."""
    if not isinstance(value, str) or not value:
        return None
    match = _MS_DATE.fullmatch(value.strip())
    if match:
        return int(match.group(1))
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


def if_modified_since(ms: int, *, rounding: str = "down") -> str:
    """The If-Modified-Since value for a time: UTC, whole seconds (Xero refuses milliseconds).

    "down" may re-read records of that second (the connector drops those it already saw);
    "up" never re-reads but would miss a change made later in the same second.
    """
    seconds = ms / 1000
    whole = math.ceil(seconds) if rounding == "up" else math.floor(seconds)
    return datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S")


@dataclass(frozen=True)
class ListPage:
    """One page of a list endpoint."""

    records: list[dict[str, Any]]
    page: int
    page_count: int | None  # from the `pagination` object, when Xero sent one


class XeroClient:
    """The Xero endpoints the connector calls, with auth and the tenant header."""

    def __init__(self, http: HttpClient, auth: TokenAuth, tenant_id: str) -> None:
        self.http = http
        self.auth = auth
        self.tenant_id = tenant_id

    def call(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
             json: Any = None, headers: Mapping[str, str] | None = None) -> Any:
        """One request with auth; a refused (401) token is refreshed once and the call repeated."""
        for attempt in (1, 2):
            token = self.auth.token()
            sent = {"Authorization": f"Bearer {token}", TENANT_HEADER: self.tenant_id,
                    **(headers or {})}
            try:
                response = self.http.request(method, path, params=params, json=json,
                                             headers=sent)
            except AuthError as exc:
                if exc.status == 401 and attempt == 1:
                    self.auth.invalidate(token)  # revoked or expired early: refresh, retry
                    continue
                if exc.status == 403:
                    raise AuthError(f"{exc} (Xero answers 403 when the tenant is wrong: check "
                                    f"the connection's tenant_id)", status=403) from None
                raise
            return self.http.parse_json(response, method, path)
        raise AssertionError("unreachable: the second attempt returns or raises")

    def list_page(self, object: str, *, page: int, page_size: int,
                  modified_since: str | None, include_archived: bool) -> ListPage:
        """GET /{object}: one 1-based page, oldest change first."""
        params: dict[str, Any] = {"page": page, "pageSize": min(page_size, PAGE_SIZE_MAX),
                                  "order": "UpdatedDateUTC ASC"}
        if include_archived:
            params["includeArchived"] = "true"
        headers = {"If-Modified-Since": modified_since} if modified_since else None
        body = self.call("GET", f"/{object}", params=params, headers=headers)
        body = body if isinstance(body, dict) else {}
        pagination = body.get("pagination") if isinstance(body.get("pagination"), dict) else {}
        count = pagination.get("pageCount") if pagination else None
        return ListPage(list(body.get(object) or []), page,
                        int(count) if isinstance(count, int) else None)

    def get_one(self, object: str, record_id: str) -> dict[str, Any] | None:
        """GET /{object}/{id}: the record (Xero still wraps it in a list)."""
        body = self.call("GET", f"/{object}/{record_id}")
        items = body.get(object) if isinstance(body, dict) else None
        return items[0] if isinstance(items, list) and items else None

    def write(self, method: str, object: str, elements: Sequence[Mapping[str, Any]], *,
              idempotency_key: str, record_id: str | None = None) -> list[dict[str, Any]]:
        """PUT (create only) or POST (create or update) elements; each answer element in order.

        summarizeErrors=false makes Xero answer 200 with per-element ValidationErrors
        instead of refusing the whole batch for one bad element.
        """
        path = f"/{object}/{record_id}" if record_id else f"/{object}"
        # POST /{object}/{id} takes the bare element (e.g. Xero's PaymentDelete body).
        sent: Any = dict(elements[0]) if record_id else {object: list(elements)}
        body = self.call(method, path, params={"summarizeErrors": "false"}, json=sent,
                         headers={"Idempotency-Key": idempotency_key[:IDEMPOTENCY_KEY_MAX]})
        items = body.get(object) if isinstance(body, dict) else None
        return list(items) if isinstance(items, list) else []

    def probe(self) -> None:
        """The cheapest authenticated call: one contact."""
        self.call("GET", "/Contacts", params={"page": 1, "pageSize": 1})
