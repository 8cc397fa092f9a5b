"""The WebDAV calls the CardDAV and CalDAV connectors make, over `hub.http`.

`hub.http` is the boundary where httpx failures become hub.errors (timeouts, resets and
5xx -> TransientError, 4xx -> PermanentError); this client adds what WebDAV needs on top:

    401                      AuthError "wrong user or password for connection X"
    403                      AuthError "user U may not ... the collection"
    403/409 valid-sync-token InvalidSyncToken (the token expired: the reader starts over)
    3xx                      PermanentError naming the Location (base_url must be the collection)
    unreadable 207 body      PermanentError naming the call

Requests carry HTTP Basic credentials read at each attempt; hub.http removes them (and the
encoded form) from every message it builds.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from connectors.dav import xml
from hub.config.model import RetryPolicy
from hub.errors import AuthError, PermanentError, SyncError
from hub.http import HttpClient, make_client

Credentials = Callable[[], tuple[str, str]]  # (username, password), read at use
XML_TYPE = "application/xml; charset=utf-8"


class InvalidSyncToken(PermanentError):
    """The server no longer knows the sync-token we sent (RFC 6578 DAV:valid-sync-token)."""


@dataclass(frozen=True)
class Resource:
    """One member resource as fetched: its text and ETag (None if the server sent none)."""

    href: str
    text: str
    etag: str | None


class DavClient:
    """PROPFIND/REPORT/GET/PUT/DELETE/MKCOL against one collection; raises only hub.errors."""

    def __init__(self, collection_url: str, *, connection: str, credentials: Credentials,
                 retry: RetryPolicy, timeout: float = 30.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        parts = urlsplit(collection_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise PermanentError(f"connection {connection}: base_url {collection_url!r} is not "
                                 "an http(s) URL of the address book or calendar")
        self.origin = f"{parts.scheme}://{parts.netloc}"
        path = xml.normalize_href(parts.path or "/")
        self.path = path if path.endswith("/") else path + "/"
        self.connection = connection
        self._credentials = credentials
        self._last: httpx.Response | None = None
        self.http: HttpClient = make_client(
            self.origin, system=connection, retry=retry, auth_headers=self._auth,
            timeout=timeout, on_response=self._remember, transport=transport)

    def _auth(self) -> dict[str, str]:
        user, password = self._credentials()
        token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        return {"Authorization": f"Basic {token}"}

    def _remember(self, response: httpx.Response) -> None:
        # hub.http raises before handing us a 4xx answer; keeping it lets us read a
        # WebDAV precondition (valid-sync-token) out of its body.
        self._last = response

    # -- the calls ------------------------------------------------------------------------

    def member(self, name: str) -> str:
        """The href of a member: an absolute path stays, a bare name goes under the collection."""
        if name.startswith("/") or "://" in name:
            return xml.normalize_href(name)
        return xml.normalize_href(self.path + name)

    def request(self, method: str, path: str, *, body: bytes | None = None,
                headers: Mapping[str, str] | None = None) -> httpx.Response:
        """One request with the WebDAV error translation of the module doc."""
        self._last = None
        try:
            response = self.http.request(method, path, content=body, headers=headers)
        except SyncError as exc:
            raise self._translate(exc, method, path) from None
        if 300 <= response.status_code < 400:
            where = response.headers.get("Location", "?")
            raise PermanentError(f"{self.connection} {method} {path}: the server redirects to "
                                 f"{where}; set base_url to the collection's own URL",
                                 status=response.status_code)
        return response

    def _translate(self, exc: SyncError, method: str, path: str) -> SyncError:
        status = exc.status
        body = self._last.text if self._last is not None and self._last.content else ""
        if status in (403, 409) and "valid-sync-token" in body:
            return InvalidSyncToken(f"{self.connection}: the server no longer knows our "
                                    "sync-token", status=status)
        if status == 401:
            user = self._user()
            return AuthError(f"wrong user or password for connection {self.connection} "
                             f"(user {user!r}; {method} {path} answered 401)", status=401)
        if status == 403:
            return AuthError(f"connection {self.connection}: user {self._user()!r} may not "
                             f"{method} {path} (403 Forbidden); check the user's rights on "
                             "the collection", status=403)
        return exc

    def _user(self) -> str:
        try:
            return self._credentials()[0]
        except Exception:  # noqa: BLE001 - a missing secret must not hide the real error
            return "?"

    def multistatus(self, method: str, path: str, body: bytes, depth: str) -> xml.MultiStatus:
        """PROPFIND or REPORT, parsed; PermanentError naming the call when it is not XML."""
        response = self.request(method, path, body=body,
                                headers={"Depth": depth, "Content-Type": XML_TYPE,
                                         "Accept": "application/xml, text/xml"})
        if response.status_code != 207:
            raise PermanentError(f"{self.connection} {method} {path}: expected 207 "
                                 f"Multi-Status, got {response.status_code}",
                                 status=response.status_code)
        try:
            return xml.parse_multistatus(response.content)
        except ValueError as exc:
            raise PermanentError(f"{self.connection} {method} {path}: the answer is {exc}",
                                 status=response.status_code) from None

    def propfind(self, path: str, names: Iterable[str], depth: str = "0") -> xml.MultiStatus:
        """PROPFIND the named properties."""
        return self.multistatus("PROPFIND", path, xml.propfind(names), depth)

    def sync_collection(self, token: str, props: Iterable[str]) -> xml.MultiStatus:
        """RFC 6578 sync-collection from `token` ("" = every member); InvalidSyncToken."""
        return self.multistatus("REPORT", self.path, xml.sync_collection(token, props), "0")

    def multiget(self, report: str, data: str, hrefs: list[str]) -> xml.MultiStatus:
        """addressbook-multiget / calendar-multiget of the given members."""
        return self.multistatus("REPORT", self.path, xml.multiget(report, data, hrefs), "1")

    def get(self, href: str) -> Resource | None:
        """GET one member; None when it does not exist (404/410)."""
        try:
            response = self.request("GET", href, headers={"Accept": "*/*"})
        except PermanentError as exc:
            if exc.status in (404, 410) and not isinstance(exc, AuthError):
                return None
            raise
        return Resource(href, response.text, response.headers.get("ETag"))

    def put(self, href: str, text: str, content_type: str, *, if_match: str | None = None,
            create_only: bool = False) -> str | None:
        """PUT a member with If-Match / If-None-Match: *; its new ETag (None if not sent).

        A failed precondition raises PermanentError with status 412: the caller decides
        what it means (already created, or changed by someone else).
        """
        headers = {"Content-Type": content_type}
        if if_match:
            headers["If-Match"] = if_match
        if create_only:
            headers["If-None-Match"] = "*"
        response = self.request("PUT", href, body=text.encode("utf-8"), headers=headers)
        etag: str | None = response.headers.get("ETag")
        return etag

    def delete(self, href: str, *, if_match: str | None = None) -> bool:
        """DELETE a member; False when it was already gone."""
        try:
            self.request("DELETE", href, headers={"If-Match": if_match} if if_match else None)
        except PermanentError as exc:
            if exc.status in (404, 410) and not isinstance(exc, AuthError):
                return False
            raise
        return True

    def mkcol(self, body: bytes) -> None:
        """Create the collection itself (extended MKCOL, RFC 5689)."""
        self.request("MKCOL", self.path, body=body, headers={"Content-Type": XML_TYPE})

    def close(self) -> None:
        """Close the pooled connections."""
        self.http.close()
