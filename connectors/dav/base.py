"""DavConnector: what the CardDAV and CalDAV connectors share (settings, check, read, write).

Settings
    base_url           the collection's URL (the address book or calendar itself)
    username/password  HTTP Basic credentials; the password only as a ${ENV} reference
    sync               auto (default) | sync-token | etag: how changes are found (reading.py);
                       auto uses sync-token when the collection lists the sync-collection
                       report and has a sync-token, else the ETag fallback
    create_collection  true: create the collection (extended MKCOL) when it does not exist
    timeout            seconds to wait for the server (default 30)
Writes (one request or two per op; external ids are the members' hrefs)
    create   PUT If-None-Match: * to <collection>/<name>.<ext>, the name (and the UID,
             unless the record brings one) derived from the canonical id (else the op's
             key): a repeated create finds its own resource (412) and updates it instead
    update   GET, merge the record into the text (only the properties the record has, and
             only when their value changes: everything else is kept), PUT If-Match: <ETag>
             (no PUT at all when nothing changes)
    delete   DELETE (If-Match when this connector read it); already gone counts as done
    archive  what the format has for it (CalDAV: STATUS:CANCELLED); CardDAV has none
Concurrent edits (baseline.py)
    A two-way run reads the collection before it writes to it. A member changed on the server
    after that read (its ETag is not one this instance read, listed or wrote; in sync-token
    mode found by one sync-collection REPORT per write call), or between our GET and PUT
    (412 Precondition Failed), is not overwritten: that op's result is a TransientError
    saying so. The engine keeps the delivery owed; the next run reads the new version, the
    flow's conflict policy merges it, and the delivery is planned again from the merged
    record (usually finding nothing left to write). An instance that never read the
    collection (a delivery job on another worker) has the engine's word instead: in a
    two-way flow each update carries `as_last_seen`, which compares the member as GET finds
    it with what Liaison last read or wrote there (the link's fingerprint), so an edit made
    since is not overwritten either. In a one-way flow into the collection the hub's record
    is meant to win: only a change between our own GET and PUT is refused there.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from connectors.dav import xml
from connectors.dav.baseline import Baseline
from connectors.dav.client import DavClient, Resource
from connectors.dav.reading import Reader
from connectors.dav.records import ERROR_KEY
from hub.config.model import ConnectionConfig
from hub.connector import (
    BaseConnector,
    Cursor,
    Health,
    NativeRecord,
    Page,
    WriteOp,
    WriteResult,
)
from hub.errors import (
    AuthError,
    ConnectorError,
    HubError,
    PermanentError,
    TransientError,
)

BATCH_MAX = 50  # ops per write() call: each is a request or two
SYNC_MODES = ("auto", "sync-token", "etag")
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_NAMESPACE = uuid.UUID("5b0f2c3e-9a3d-4c55-8a8e-2f4d1e7c6b10")  # Liaison's names for members

SETTINGS: Mapping[str, str] = {
    "username": "the user to log in as",
    "password": "the user's password or app password, as a ${ENV} reference",
    "sync": "how changes are found: auto (default), sync-token (RFC 6578 sync-collection) "
            "or etag (compare ETags; for servers without sync-collection)",
    "create_collection": "true: create the collection when it does not exist (default false)",
    "timeout": "seconds to wait for the server (default 30)",
}


@dataclass(frozen=True)
class Kind:
    """What differs between CardDAV and CalDAV: names, formats and the text codec."""

    label: str  # "CardDAV"
    object: str  # the native object name, "contacts"
    collection: str  # "address book"
    extension: str  # ".vcf"
    content_type: str
    resource_type: str  # Clark name of the collection's resourcetype
    report: str  # Clark name of the multiget report
    data: str  # Clark name of the data property (address-data, calendar-data)
    mkcol: bytes  # the extended MKCOL body creating the collection
    parse: Callable[[str, str, str | None], NativeRecord | None]
    create: Callable[[Mapping[str, Any], str], str]
    merge: Callable[[str, Mapping[str, Any], str], str | None]
    archive: Callable[[str, str], str | None] | None = None


def member_name(ident: str) -> str:
    """The name Liaison gives a member for a canonical id: the id when it is URL-safe, else a
    UUID derived from it (the same every time, so a repeated create finds its resource)."""
    if _SAFE_NAME.fullmatch(ident):
        return ident
    return str(uuid.uuid5(_NAMESPACE, ident))


class DavConnector(BaseConnector):
    """A CardDAV or CalDAV collection; subclasses set `name`, `capabilities` and `kind`."""

    kind: ClassVar[Kind]

    def __init__(self, connection: ConnectionConfig) -> None:
        super().__init__(connection)
        self._client: DavClient | None = None
        self._offers_sync: bool | None = None  # None: the collection not checked yet
        self._baseline = Baseline()  # what this instance saw: to catch others' edits

    # -- plumbing ----------------------------------------------------------------------------

    @property
    def client(self) -> DavClient:
        """The WebDAV client, built on first use (no I/O in the constructor)."""
        if self._client is None:
            retry = self.connection.retry
            self._client = DavClient(
                self.required_setting("base_url"), connection=self.connection.name,
                credentials=lambda: (self.required_setting("username"),
                                     self.required_setting("password")),
                retry=retry, timeout=self.number_setting("timeout", 30.0))
        return self._client

    def _flag(self, key: str) -> bool:
        value = self.connection.setting(key, False)
        return str(value).strip().lower() in ("1", "true", "yes", "on")

    def sync_mode(self) -> str:
        """sync-token or etag: the setting, or what the collection offers (auto)."""
        chosen = str(self.connection.setting("sync", "auto") or "auto").strip().lower()
        if chosen not in SYNC_MODES:
            where = self.connection.where_of("sync")
            at = f" ({where})" if where else ""
            raise ConnectorError(f"connection {self.connection.name}{at}: setting 'sync' must "
                                 f"be one of {', '.join(SYNC_MODES)}, got {chosen!r}")
        if chosen != "auto":
            return chosen
        offers = self._offers_sync if self._offers_sync is not None else self.collection()
        return "sync-token" if offers else "etag"

    def collection(self) -> bool:
        """Check the collection exists and is the right kind (creating it when the settings
        say so); whether it offers sync-collection with a sync-token."""
        client, kind = self.client, self.kind
        props = (xml.RESOURCETYPE, xml.SUPPORTED_REPORTS, xml.SYNC_TOKEN)
        try:
            answer = client.propfind(client.path, props)
        except PermanentError as exc:
            if exc.status != 404 or isinstance(exc, AuthError):
                raise
            if not self._flag("create_collection"):
                raise PermanentError(
                    f"{kind.label} {kind.collection} {client.path} does not exist on "
                    f"{client.origin}: check base_url of connection {self.connection.name}, "
                    "or set create_collection: true", status=404) from None
            client.mkcol(kind.mkcol)
            answer = client.propfind(client.path, props)
        found = next((r for r in answer.responses if r.href == client.path),
                     answer.responses[0] if answer.responses else None)
        if found is None or not found.has(xml.RESOURCETYPE, kind.resource_type):
            raise PermanentError(f"{client.path} on {client.origin} is not a {kind.label} "
                                 f"{kind.collection}: set base_url of connection "
                                 f"{self.connection.name} to the {kind.collection}'s own URL")
        self._offers_sync = found.has(xml.SUPPORTED_REPORTS, xml.SYNC_COLLECTION) and \
            found.text(xml.SYNC_TOKEN) is not None
        return self._offers_sync

    def _ready(self) -> None:
        if self._offers_sync is None:
            self.collection()

    def _check_object(self, object: str) -> None:
        if object != self.kind.object:
            raise PermanentError(f"{self.kind.label} has no object {object!r} here (known: "
                                 f"{self.kind.object})")

    # -- the contract ------------------------------------------------------------------------

    def check(self) -> Health:
        """PROPFIND the collection: it answers, accepts the login and is the right kind."""
        try:
            sync = self.collection()
            mode = self.sync_mode()
        except HubError as exc:
            return Health(ok=False, message=str(exc))
        offered = "offers" if sync else "does not offer"
        return Health(ok=True, message=f"{self.kind.label} {self.kind.collection} "
                                       f"{self.client.path} answers; it {offered} "
                                       f"sync-collection; changes are found by {mode}")

    def read(self, object: str, cursor: Cursor | None, *, incremental: bool,
             page_size: int) -> Iterator[Page]:
        """Pages of native records (see connectors.dav.reading for the cursors)."""
        self._check_object(object)
        self._ready()
        reader = Reader(self.client, report=self.kind.report, data=self.kind.data,
                        parse=self.kind.parse, label=self.kind.label,
                        baseline=self._baseline)
        if self.sync_mode() == "sync-token":
            yield from reader.by_token(cursor, incremental, page_size)
        else:
            yield from reader.by_etag(cursor, incremental, page_size)

    def fetch(self, object: str, external_id: str) -> NativeRecord | None:
        """The current version of one member (None: gone, or not of this connector's kind)."""
        self._check_object(object)
        found = self.client.get(self.client.member(external_id))
        if found is None:
            return None
        self._baseline.saw(found.href, found.etag)
        return self.kind.parse(found.text, found.href, found.etag)

    def write(self, object: str, ops: Sequence[WriteOp]) -> list[WriteResult]:
        """Apply up to 50 ops, one at a time; one WriteResult per op, in order."""
        self._check_object(object)
        if len(ops) > BATCH_MAX:
            raise PermanentError(f"{self.kind.label} takes at most {BATCH_MAX} records per "
                                 f"write, got {len(ops)}")
        self._ready()
        self._baseline.refresh(self.client)
        results: list[WriteResult] = []
        for i, op in enumerate(ops):
            try:
                results.append(self._write_one(op))
            except AuthError:
                raise  # the whole connection is refused: the engine stops the run
            except TransientError as exc:
                # The server is down or overloaded: leave the rest for later too.
                results.extend(WriteResult(o.key, False, o.external_id, error=exc)
                               for o in ops[i:])
                break
            except PermanentError as exc:
                results.append(WriteResult(op.key, False, op.external_id, error=exc))
        return results

    def close(self) -> None:
        """Close the HTTP connections (harmless when called twice)."""
        if self._client is not None:
            self._client.close()
            self._client = None

    # -- writes --------------------------------------------------------------------------------

    def _write_one(self, op: WriteOp) -> WriteResult:
        if op.action == "create":
            return self._create(op)
        if not op.external_id:
            raise PermanentError(f"{self.kind.label}: cannot {op.action} record {op.key}: it "
                                 "has no href (it was never written there)")
        href = self.client.member(op.external_id)
        if op.action == "update":
            return self._change(op, href, lambda text: self.kind.merge(text, op.record, href))
        if op.action == "archive":
            archive = self.kind.archive
            if archive is None:
                raise PermanentError(f"{self.kind.label} {self.kind.collection}s have no "
                                     "archive: set the flow's delete_policy to delete or ignore")
            return self._change(op, href, lambda text: archive(text, href))
        return self._delete(op, href)

    def _create(self, op: WriteOp) -> WriteResult:
        ident = op.canonical_id or op.key
        name = member_name(ident)
        href = self.client.member(name + self.kind.extension)
        uid = str(op.record.get("uid") or "").strip() or name
        text = self.kind.create(op.record, uid)
        self._readable(text, href)
        try:
            etag = self.client.put(href, text, self.kind.content_type, create_only=True)
        except PermanentError as exc:
            if exc.status != 412 or isinstance(exc, AuthError):
                raise
            # Created before (a delivery retried after a crash): update it instead.
            return self._change(op, href, lambda old: self.kind.merge(old, op.record, href))
        return self._done(op, href, text, etag)

    def _change(self, op: WriteOp, href: str,
                change: Callable[[str], str | None]) -> WriteResult:
        current = self.client.get(href)
        if current is None:
            raise PermanentError(f"{self.kind.label} {href}: cannot {op.action} it: it does not "
                                 "exist on the server (deleted there?)", status=404)
        why = self._baseline.conflict(href, current.etag) or self._changed_since(op, current)
        if why is not None:
            return self._conflict(op, href, why)
        new = change(current.text)
        if new is None:  # nothing to change: no PUT, the resource stays as it is
            return self._done(op, href, current.text, current.etag)
        self._readable(new, href)
        try:
            etag = self.client.put(href, new, self.kind.content_type,
                                   if_match=current.etag or self._baseline.etags.get(href))
        except PermanentError as exc:
            if exc.status == 412 and not isinstance(exc, AuthError):
                return self._conflict(op, href, "it changed on the server while we wrote it "
                                                "(412 Precondition Failed)")
            raise
        return self._done(op, href, new, etag)

    def _changed_since(self, op: WriteOp, current: Resource) -> str | None:
        """Why `current` is not the version Liaison last read or wrote (WriteOp.as_last_seen):
        what an instance that never read the collection (a delivery job on another worker)
        knows of the record's history."""
        if op.as_last_seen is None:
            return None
        record = self.kind.parse(current.text, current.href, current.etag)
        if record is None or ERROR_KEY in record or op.as_last_seen(record):
            return None  # what cannot be read is refused by the merge, with its own words
        return "it changed on the server after Liaison last read or wrote it"

    def _delete(self, op: WriteOp, href: str) -> WriteResult:
        if href in self._baseline.foreign:
            return self._conflict(op, href, "it changed on the server after this run read it")
        try:
            self.client.delete(href, if_match=self._baseline.etags.get(href))
        except PermanentError as exc:
            if exc.status == 412 and not isinstance(exc, AuthError):
                return self._conflict(op, href, "it changed on the server after this run "
                                                "read it (412 Precondition Failed)")
            raise
        self._baseline.forget(href)
        return WriteResult(op.key, True, href)

    def _readable(self, text: str, href: str) -> None:
        """Never PUT what we could not read back ourselves."""
        record = self.kind.parse(text, href, None)
        if record is None or ERROR_KEY in record:
            why = record[ERROR_KEY] if record else "no entity in it"
            raise PermanentError(f"{self.kind.label} {href}: the text built for it cannot be "
                                 f"read back ({why}); nothing was written")

    def _done(self, op: WriteOp, href: str, text: str, etag: str | None) -> WriteResult:
        if etag is None:
            # The server changed what we sent, or sends no ETag on PUT: read what it keeps.
            stored: Resource | None = self.client.get(href)
            if stored is not None:
                text, etag = stored.text, stored.etag
        self._baseline.saw(href, etag)
        record = self.kind.parse(text, href, etag)
        if record is not None and ERROR_KEY in record:
            record = None
        return WriteResult(op.key, True, href, record=record)

    def _conflict(self, op: WriteOp, href: str, why: str) -> WriteResult:
        message = (f"{self.kind.label} {href}: not overwritten: {why}. The next run reads the "
                   "new version, the flow's conflict policy settles it, and this write is "
                   "planned again")
        return WriteResult(op.key, False, href, error=TransientError(message, status=412))
