"""The connector contract: what every connector declares and the calls the engine makes.

A connector talks to one kind of system in that system's own (native) record shapes. It
never sees canonical records, the store or the sync engine: mappings translate, the engine
decides. Built-in and third-party connectors register through the `hub.connectors`
entry-point group (see `hub.registry`).

The engine calls, in this order:

    connector = ConnectorClass(connection)         # no I/O in the constructor
    connector.check()                              # a cheap authenticated call
    for page in connector.read(object, cursor, incremental=..., page_size=...):
        ...                                        # page.cursor is where to resume after it
    results = connector.write(object, ops)         # one WriteResult per WriteOp, same keys
    connector.close()

Cursors are small JSON-serialisable dicts whose meaning only the connector knows
(a modified-since timestamp, a page token, a mailbox UID). The engine stores the cursor of
a page only after everything read on that page is committed, so a connector must be able to
resume from any cursor it has yielded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol, Self, runtime_checkable

from hub.config.model import ConnectionConfig
from hub.errors import ConnectorError, SyncError

Cursor = dict[str, Any]
NativeRecord = dict[str, Any]
WriteAction = Literal["create", "update", "archive", "delete"]


@dataclass(frozen=True)
class EntitySupport:
    """What a connector can do with one canonical entity, and its native object name."""

    object: str  # the native object type, e.g. "contacts" for HubSpot
    read: bool = True
    write: bool = True
    incremental: bool = False  # can read only what changed since a cursor
    deletes: bool = False  # reports deletions (archived flag, status, tombstone)
    archive: bool = False  # can archive a record (soft delete) on write


@dataclass(frozen=True)
class Capabilities:
    """Everything a connector declares about itself; shown by `hub connectors`."""

    entities: Mapping[str, EntitySupport]
    batch_size: int = 1  # most records one write() call sends in one request
    webhooks: bool = False
    settings: Mapping[str, str] = field(default_factory=dict)  # setting name -> description
    secret_settings: frozenset[str] = frozenset()  # settings that must be ${ENV} references
    # Its reads keep no state the engine's process needs later (no refreshed OAuth token,
    # no local sent log...), so the engine may read and map them in a child process.
    reads_in_child: bool = False

    def object_for(self, entity: str) -> str:
        """The native object name for a canonical entity."""
        return self.entities[entity].object


@dataclass(frozen=True)
class Page:
    """One page of native records and the cursor that resumes right after it."""

    records: list[NativeRecord]
    cursor: Cursor | None


@dataclass(frozen=True)
class WriteOp:
    """One record to write to a target system.

    `key` is the engine's idempotency key for this write (stable for the same canonical
    record and content); connectors pass it to the vendor where the API accepts one.
    `match` holds the record's match-key values (e.g. {"email": "a@b.com"}) so a connector
    whose API can upsert by a unique property does so, making a repeated create harmless.
    `canonical_id` is Liaison's stable id of the record; a connector whose target lets the
    caller choose ids (a spreadsheet key column) uses it for a new record, so a create that
    is repeated after a crash finds the row it already wrote instead of adding another.
    `as_last_seen`, set in two-way flows on every op about a record already linked there,
    tells whether the record as the target holds it now is still the version Liaison last
    read or wrote there. A connector that reads a record before changing it (CardDAV and
    CalDAV updates and archives) does not overwrite one that fails it: someone edited it
    since, and the next run reads that edit and settles it under the flow's conflict
    policy. None: no such check (creates; one-way flows, where the source is meant to win).
    """

    action: WriteAction
    key: str
    record: NativeRecord
    external_id: str | None = None
    match: Mapping[str, str] = field(default_factory=dict)
    canonical_id: str = ""
    as_last_seen: Callable[[NativeRecord], bool] | None = None


@dataclass(frozen=True)
class WriteResult:
    """What happened to one WriteOp; `error` is a TransientError or PermanentError if not ok."""

    key: str
    ok: bool
    external_id: str | None = None
    record: NativeRecord | None = None  # the record as the target stored it, when returned
    error: SyncError | None = None


@dataclass(frozen=True)
class WebhookRequest:
    """A webhook delivery as received: raw bytes, so signatures can be checked exactly."""

    method: str
    url: str  # the full URL the vendor called, scheme, host and query included
    headers: Mapping[str, str]  # lower-case names
    body: bytes


@dataclass(frozen=True)
class WebhookEvent:
    """One change a vendor told us about."""

    event_id: str  # the vendor's id of the event (replays are dropped by it)
    object: str  # the native object type, e.g. "contacts"
    external_id: str  # the record's id in the system
    action: str  # created|updated|deleted|...
    occurred_at: str | None = None  # RFC 3339 UTC


@dataclass(frozen=True)
class Health:
    """The result of a connector's health check."""

    ok: bool
    message: str = ""


@runtime_checkable
class Connector(Protocol):
    """The contract every connector class fulfils."""

    name: ClassVar[str]
    capabilities: ClassVar[Capabilities]

    def __init__(self, connection: ConnectionConfig) -> None: ...

    def check(self) -> Health:
        """A cheap call proving the system answers and accepts our credentials."""
        ...

    def read(self, object: str, cursor: Cursor | None, *, incremental: bool,
             page_size: int) -> Iterator[Page]:
        """Yield pages of native records from `cursor` on (None: from the beginning).

        incremental=False reads every record (a full refresh); True reads only those changed
        since the cursor. Transient failures raise TransientError, others PermanentError.
        """
        ...

    def write(self, object: str, ops: Sequence[WriteOp]) -> list[WriteResult]:
        """Apply the ops (at most capabilities.batch_size) and report one result per op.

        A failure that concerns the whole call (the system is down) may raise a
        TransientError instead; per-record failures are reported in the results.
        """
        ...

    def close(self) -> None:
        """Release connections and files."""
        ...


class BaseConnector:
    """Convenience base: stores the connection, no-op close, default check."""

    name: ClassVar[str] = ""
    capabilities: ClassVar[Capabilities] = Capabilities(entities={})

    def __init__(self, connection: ConnectionConfig) -> None:
        self.connection = connection

    def required_setting(self, key: str) -> str:
        """A setting's value (a secret is revealed now, at use); ConnectorError naming the
        config line and what the setting is for when it is missing."""
        value = self.connection.setting(key)
        if not value:
            where = self.connection.where_of(key)
            at = f" ({where})" if where else ""
            what = self.capabilities.settings.get(key, "required")
            raise ConnectorError(f"connection {self.connection.name}{at}: setting {key!r} is "
                                 f"missing ({what})")
        return str(value)

    def number_setting(self, key: str, default: float) -> float:
        """A numeric setting; ConnectorError naming it when it is not a number."""
        value = self.connection.setting(key, default)
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConnectorError(f"connection {self.connection.name}: setting {key!r} must be "
                                 f"a number, got {value!r}") from None

    def check(self) -> Health:
        """Override with a real call; the default only says the connector loaded."""
        return Health(ok=True, message="loaded")

    def verify_webhook(self, request: WebhookRequest) -> list[WebhookEvent]:
        """Check a webhook's signature and freshness, and list the changes it announces.

        Optional: raise hub.errors.WebhookRejected (status 401 forged or stale, 400
        malformed) for a delivery that must not be trusted. Connectors without webhooks
        leave this raising NotImplementedError.
        """
        raise NotImplementedError

    def fetch(self, object: str, external_id: str) -> NativeRecord | None:
        """The current version of one record (None: it no longer exists).

        Optional: `hub dlq replay` uses it to re-read a record that was fixed at its source.
        Connectors that cannot read a single record leave this raising NotImplementedError,
        and replay re-sends the payload that failed instead.
        """
        raise NotImplementedError

    def close(self) -> None:
        """Nothing to release by default."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
