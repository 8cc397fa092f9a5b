"""Reading a CardDAV/CalDAV collection page by page: by sync-token, or by ETags.

sync-token (RFC 6578 sync-collection REPORT)
    A full read asks for every member (token ""), an incremental read for the members
    changed since the cursor's token; members the server reports 404 are deletions
    (tombstones {"href", "deleted": true}). Members are fetched with a multiget REPORT,
    page_size at a time, in href order.
    Cursors: final {"sync": "token", "token": T}. Mid-read they also hold "after" (the last
    href done) and either "full": true or "from" (the token the changes were asked from).
    A resumed read asks again (from "" or "from"), skips hrefs up to "after", and ends with
    the token of the FIRST ask: anything changed meanwhile is read again next time, so a
    resume never loses a change (it may read one twice, which the engine absorbs).
    A token the server no longer knows (403/409 valid-sync-token) starts a full read.
ETag fallback (PROPFIND Depth 1 getetag)
    For servers without sync-collection (or `sync: etag`). The cursor keeps a short digest
    of every member's ETag: {"sync": "etag", "etags": {name: digest}} (name relative to the
    collection). An incremental read lists the members and fetches those whose digest is new
    or different; names in the cursor but no longer listed are deletions. Each page's cursor
    is the digests with that page applied, so resuming from any of them is the same
    comparison again. Mid-read cursors of a full read add "full": true.
Both modes note what they saw in the connector's Baseline (baseline.py): the ETag of each
member fetched (and, by ETags, listed) and the sync-token reached, so writes can tell a
member someone else changed after the read.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from connectors.dav import xml
from connectors.dav.baseline import Baseline
from connectors.dav.client import DavClient, InvalidSyncToken
from connectors.dav.records import ERROR_KEY
from hub.connector import Cursor, NativeRecord, Page
from hub.errors import PermanentError

log = logging.getLogger(__name__)

Parse = Callable[[str, str, str | None], NativeRecord | None]


def digest(etag: str | None) -> str:
    """A short stand-in for an ETag in the cursor (only equality matters)."""
    return hashlib.blake2b((etag or "").encode("utf-8"), digest_size=8).hexdigest()


@dataclass(frozen=True)
class Fetched:
    """A member as the multiget returned it (text None: it is gone)."""

    href: str
    etag: str | None
    text: str | None


class Reader:
    """One read of one collection; what it sees goes into `baseline`."""

    def __init__(self, client: DavClient, *, report: str, data: str, parse: Parse,
                 label: str, baseline: Baseline) -> None:
        self.client = client
        self.report = report
        self.data = data
        self.parse = parse
        self.label = label
        self.baseline = baseline

    # -- the two modes -----------------------------------------------------------------------

    def by_token(self, cursor: Cursor | None, incremental: bool, size: int) -> Iterator[Page]:
        """Pages read with sync-collection (see the module doc for the cursors)."""
        mine = cursor if cursor and cursor.get("sync") == "token" and cursor.get("token") \
            else None
        if mine is not None and mine.get("full"):
            yield from self._all_by_token(size, str(mine["token"]), mine.get("after"))
        elif incremental and mine is not None:
            resuming = "from" in mine
            since = str(mine["from"] if resuming else mine["token"])
            yield from self._changes_by_token(since, size, str(mine["token"]) if resuming
                                              else None, mine.get("after") if resuming else None)
        else:
            yield from self._all_by_token(size, None, None)

    def _all_by_token(self, size: int, keep: str | None, after: Any) -> Iterator[Page]:
        answer = self.client.sync_collection("", (xml.GETETAG,))
        token = keep or answer.sync_token
        if not token:
            raise PermanentError(f"{self.label} {self.client.path}: the server answered "
                                 "sync-collection without a sync-token; set `sync: etag` on "
                                 "the connection")
        hrefs = sorted(r.href for r in answer.responses
                       if self._member(r.href) and r.status not in (404, 410))
        if after:
            hrefs = [h for h in hrefs if h > str(after)]
        self.baseline.token = token

        def cursor(last: str | None) -> Cursor:
            if last is None:
                return {"sync": "token", "token": token}
            return {"sync": "token", "token": token, "full": True, "after": last}
        yield from self._pages(hrefs, set(), size, cursor, incremental=False)

    def _changes_by_token(self, since: str, size: int, keep: str | None,
                          after: Any) -> Iterator[Page]:
        try:
            answer = self.client.sync_collection(since, (xml.GETETAG,))
        except InvalidSyncToken:
            log.warning("%s %s: the server no longer knows the sync-token; reading every "
                        "member again", self.label, self.client.path)
            yield from self._all_by_token(size, None, None)
            return
        token = keep or answer.sync_token or since
        changed: set[str] = set()
        gone: set[str] = set()
        for response in answer.responses:
            if self._member(response.href):
                (gone if response.status in (404, 410) else changed).add(response.href)
        hrefs = sorted(changed | gone)
        if after:
            hrefs = [h for h in hrefs if h > str(after)]
        self.baseline.token = token

        def cursor(last: str | None) -> Cursor:
            if last is None:
                return {"sync": "token", "token": token}
            return {"sync": "token", "token": token, "from": since, "after": last}
        yield from self._pages(hrefs, gone, size, cursor, incremental=True)

    def by_etag(self, cursor: Cursor | None, incremental: bool, size: int) -> Iterator[Page]:
        """Pages read by comparing ETags with the cursor's (see the module doc)."""
        mine = cursor if cursor and cursor.get("sync") == "etag" \
            and isinstance(cursor.get("etags"), Mapping) else None
        full = mine is None or bool(mine.get("full")) or not incremental
        known: dict[str, str] = dict(mine["etags"]) if mine is not None and \
            (mine.get("full") or incremental) else {}
        listing = self.list_etags()
        for href, etag in listing.items():
            self.baseline.saw(href, etag)
        changed = {h for h, e in listing.items() if known.get(self._name(h)) != digest(e)}
        gone = set() if full else {self._href(n) for n in known} - set(listing)
        if full:
            known = {n: d for n, d in known.items() if self._href(n) in listing}

        def cursor_for(last: str | None) -> Cursor:
            found: Cursor = {"sync": "etag", "etags": dict(known)}
            if full and last is not None:
                found["full"] = True
            return found

        def applied(href: str, etag: str | None, present: bool) -> None:
            if present:
                known[self._name(href)] = digest(etag if etag is not None else listing.get(href))
            else:
                known.pop(self._name(href), None)
        yield from self._pages(sorted(changed | gone), gone, size, cursor_for,
                               incremental=not full, applied=applied)

    def list_etags(self) -> dict[str, str | None]:
        """Every member of the collection and its ETag (PROPFIND Depth 1)."""
        answer = self.client.propfind(self.client.path, (xml.RESOURCETYPE, xml.GETETAG), "1")
        return {r.href: r.etag for r in answer.responses
                if self._member(r.href) and not r.has(xml.RESOURCETYPE, xml.COLLECTION)}

    # -- pages ---------------------------------------------------------------------------------

    def _pages(self, hrefs: list[str], gone: set[str], size: int,
               cursor: Callable[[str | None], Cursor], *, incremental: bool,
               applied: Callable[[str, str | None, bool], None] | None = None
               ) -> Iterator[Page]:
        if not hrefs:
            yield Page([], cursor(None))
            return
        size = max(1, size)
        for start in range(0, len(hrefs), size):
            chunk = hrefs[start:start + size]
            fetched = self.fetch_many([h for h in chunk if h not in gone])
            records: list[NativeRecord] = []
            for href in chunk:
                got = fetched.get(href)
                if href in gone or got is None or got.text is None:
                    if incremental:
                        records.append({"href": href, "deleted": True})
                    if applied is not None:
                        applied(href, None, False)
                    continue
                if applied is not None:
                    applied(href, got.etag, True)
                record = self.record(got)
                if record is not None:
                    records.append(record)
            last = start + size >= len(hrefs)
            yield Page(records, cursor(None if last else chunk[-1]))

    def fetch_many(self, hrefs: list[str]) -> dict[str, Fetched]:
        """The members' text and ETags by multiget; members gone come back with text None."""
        if not hrefs:
            return {}
        answer = self.client.multiget(self.report, self.data, hrefs)
        out: dict[str, Fetched] = {}
        for response in answer.responses:
            text = response.text(self.data)
            if response.status in (404, 410) or text is None:
                out[response.href] = Fetched(response.href, None, None)
            else:
                out[response.href] = Fetched(response.href, response.etag, text)
        return out

    def record(self, got: Fetched) -> NativeRecord | None:
        """The native record of a fetched member (None: not an entity of this connector)."""
        assert got.text is not None
        self.baseline.saw(got.href, got.etag)
        record = self.parse(got.text, got.href, got.etag)
        if record is None:
            return None
        if ERROR_KEY in record:
            log.warning("%s", record[ERROR_KEY])
        for warning in record.get("warnings") or ():
            log.warning("%s %s (UID %s): %s", self.label, got.href, record.get("uid") or "?",
                        warning)
        return record

    # -- hrefs ---------------------------------------------------------------------------------

    def _member(self, href: str) -> bool:
        return href != self.client.path and not href.endswith("/")

    def _name(self, href: str) -> str:
        return href.removeprefix(self.client.path)

    def _href(self, name: str) -> str:
        return name if name.startswith("/") else self.client.path + name
