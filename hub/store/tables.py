"""The store's tables, declared once with SQLModel; queries live in hub.store.repo.

JSON payloads are kept as text serialised with orjson rather than a JSON column type: the
hot path writes thousands of rows a second and the driver-level JSON codecs differ between
SQLite and PostgreSQL. Timestamps are RFC 3339 UTC strings with microseconds, which sort
correctly as text on both databases.
"""

from __future__ import annotations

from sqlalchemy import Index, MetaData, Table, UniqueConstraint
from sqlmodel import Field, SQLModel


class CanonicalRecord(SQLModel, table=True):
    """One canonical record: the hub's own copy of a company, contact, invoice..."""

    __tablename__ = "records"
    # Entity first serves every lookup by entity; stub and deleted make the live count per
    # entity (every dashboard overview) an index-only scan.
    __table_args__ = (Index("ix_records_entity_live", "entity", "stub", "deleted"),)
    id: str = Field(primary_key=True, max_length=36)
    entity: str = Field(max_length=32)
    schema_version: int = 1
    data: str = "{}"  # orjson of the entity's data fields
    sources: str = "{}"  # per-field provenance: {field: [system, updated_at]}
    fingerprint: str = Field(default="", max_length=64)
    stub: bool = False  # created for a reference before the record itself was read
    deleted: bool = False
    created_at: str = Field(max_length=32)
    updated_at: str = Field(max_length=32)


class Link(SQLModel, table=True):
    """The id a canonical record has in one system and the fingerprint last seen there."""

    __tablename__ = "links"
    __table_args__ = (
        UniqueConstraint("system", "entity", "external_id", name="uq_links_external"),
        UniqueConstraint("system", "entity", "canonical_id", name="uq_links_canonical"),
    )
    id: int | None = Field(default=None, primary_key=True)
    system: str = Field(max_length=64)
    entity: str = Field(max_length=32)
    external_id: str = Field(max_length=255)
    canonical_id: str = Field(max_length=36)
    fingerprint: str = Field(default="", max_length=64)  # of the record as this system sees it
    seen_run: int | None = None  # last full-refresh run that read it (deletion detection)
    updated_at: str = Field(max_length=32)


class MatchKey(SQLModel, table=True):
    """A normalised identity key (contact email, company domain) owned by one record."""

    __tablename__ = "match_keys"
    __table_args__ = (Index("ix_match_keys_canonical", "canonical_id"),)
    entity: str = Field(primary_key=True, max_length=32)
    name: str = Field(primary_key=True, max_length=32)
    value: str = Field(primary_key=True, max_length=255)
    canonical_id: str = Field(max_length=36)


class CursorRow(SQLModel, table=True):
    """How far a flow has read one source system."""

    __tablename__ = "cursors"
    flow: str = Field(primary_key=True, max_length=64)
    system: str = Field(primary_key=True, max_length=64)
    value: str = "null"  # orjson of the connector's cursor dict
    updated_at: str = Field(max_length=32)


class Run(SQLModel, table=True):
    """One execution of a flow and its counters."""

    __tablename__ = "runs"
    __table_args__ = (
        Index("ix_runs_flow_started", "flow", "started_at"),
        Index("ix_runs_flow_id", "flow", "id"),  # a flow's newest runs, by id
        # A scheduled fire time produces at most one run, however many schedulers there are.
        UniqueConstraint("flow", "fire_time", name="uq_runs_fire_time"),
    )
    id: int | None = Field(default=None, primary_key=True)
    flow: str = Field(max_length=64)
    mode: str = Field(max_length=16)
    status: str = Field(default="running", max_length=16)  # running|succeeded|partial|failed
    trigger: str = Field(default="manual", max_length=16)
    owner: str = Field(default="", max_length=128)  # host:pid of the process running it
    fire_time: str | None = Field(default=None, max_length=32)  # the schedule slot it fills
    legs_done: int = 0  # sources of the flow read completely by this run
    started_at: str = Field(max_length=32)
    heartbeat_at: str = Field(max_length=32)
    finished_at: str | None = Field(default=None, max_length=32)
    read: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    dead_lettered: int = 0
    deleted: int = 0
    written: int = 0
    write_unchanged: int = 0
    write_failed: int = 0
    pending: int = 0  # deliveries waiting to be retried
    resumes: int = 0
    skip_reasons: str = "{}"  # orjson {reason: count}
    error: str | None = None


class DeadLetter(SQLModel, table=True):
    """A record that could not be synced, kept with its payload and reason until resolved."""

    __tablename__ = "dead_letters"
    __table_args__ = (Index("ix_dead_letters_status", "status", "flow"),)
    id: int | None = Field(default=None, primary_key=True)
    run_id: int | None = None
    flow: str = Field(max_length=64)
    system: str = Field(max_length=64)
    entity: str = Field(max_length=32)
    stage: str = Field(max_length=16)  # read|map|validate|identity|write
    external_id: str | None = Field(default=None, max_length=255)
    canonical_id: str | None = Field(default=None, max_length=36)
    payload: str = "null"  # orjson of the native (or canonical, for writes) record
    error: str = ""
    attempts: int = 1
    first_failed_at: str = Field(max_length=32)
    last_failed_at: str = Field(max_length=32)
    status: str = Field(default="open", max_length=16)  # open|replayed|discarded
    resolved_at: str | None = Field(default=None, max_length=32)


class Outbox(SQLModel, table=True):
    """A delivery still owed to a target: written in the same transaction as the change."""

    __tablename__ = "outbox"
    __table_args__ = (
        UniqueConstraint("flow", "system", "canonical_id", name="uq_outbox_pending"),
    )
    id: int | None = Field(default=None, primary_key=True)
    flow: str = Field(max_length=64)
    system: str = Field(max_length=64)
    canonical_id: str = Field(max_length=36)
    run_id: int | None = None
    attempts: int = 0
    next_attempt_at: str = Field(max_length=32)
    last_error: str | None = None
    created_at: str = Field(max_length=32)


class AuditEvent(SQLModel, table=True):
    """An append-only, hash-chained row for every change Liaison makes.

    Indexed by canonical id only: searches by system, flow and time go through
    `audit_batches`, which costs an append one row per system and flow instead of three
    index entries per event.
    """

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_canonical", "canonical_id"),)
    seq: int = Field(primary_key=True)
    at: str = Field(max_length=32)
    run_id: int | None = None
    flow: str | None = Field(default=None, max_length=64)
    entity: str = Field(max_length=32)
    canonical_id: str | None = Field(default=None, max_length=36)
    system: str | None = Field(default=None, max_length=64)
    external_id: str | None = Field(default=None, max_length=255)
    action: str = Field(max_length=32)
    diff: str = "{}"  # hub.canonical.diffs' forms ({field: [old, new]}), values redacted
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class AuditBatch(SQLModel, table=True):
    """The events of one append that share a system and a flow: an index of the trail.

    An append (one page's changes, one delivery batch) gives all its events one time; its
    events of each (system, flow) make one row here, from the first event's sequence
    number to the last one's, with how many there are (other groups' events of the same
    append may lie between). A search by system, flow or time finds the sequence ranges it
    has to read here (Store.query_audit) and a count per system adds up `events`. Not part
    of the hash chain (`hub audit verify` does not read it): it says where events are,
    never what they say.
    """

    __tablename__ = "audit_batches"
    __table_args__ = (
        Index("ix_audit_batches_system_at", "system", "at"),
        Index("ix_audit_batches_flow_at", "flow", "at"),
        Index("ix_audit_batches_at", "at"),
    )
    first_seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    last_seq: int
    at: str = Field(max_length=32)
    system: str | None = Field(default=None, max_length=64)
    flow: str | None = Field(default=None, max_length=64)
    events: int


class AuditHead(SQLModel, table=True):
    """The chain's last sequence number, hash and time; its row lock serialises appends."""

    __tablename__ = "audit_head"
    id: int = Field(default=1, primary_key=True)
    seq: int = 0
    hash: str = Field(default="", max_length=64)
    at: str = Field(default="", max_length=32)  # the last append's time ("": none yet)


class AuditVerified(SQLModel, table=True):
    """How far the audit chain was last found intact (one row, id 1; none: never checked).

    `seq`/`hash`: the last event of the range 1..seq found intact at `verified_at` (by a full
    check, or by a check of the newer events that trusted an earlier one); `full_seq`/`full_at`:
    the end and time of the last full check that passed (0/None: none since the checkpoint
    was last reset). A check that finds the chain broken removes the row.
    """

    __tablename__ = "audit_verified"
    id: int = Field(default=1, primary_key=True)
    seq: int = 0
    hash: str = Field(default="", max_length=64)
    verified_at: str = Field(max_length=32)
    full_seq: int = 0
    full_at: str | None = Field(default=None, max_length=32)


class Lease(SQLModel, table=True):
    """A time-limited right to do one thing alone (run a flow, be the scheduler).

    `token` grows by one at every new grant: a holder whose lease expired and was taken over
    finds its token stale when it next writes (a fencing token), and stops.
    """

    __tablename__ = "leases"
    name: str = Field(primary_key=True, max_length=128)
    holder: str = Field(default="", max_length=128)
    token: int = 0
    expires_at: str = Field(max_length=32)


class WebhookEvent(SQLModel, table=True):
    """A webhook event already accepted, so a replayed delivery is dropped."""

    __tablename__ = "webhook_events"
    system: str = Field(primary_key=True, max_length=64)
    event_id: str = Field(primary_key=True, max_length=255)
    received_at: str = Field(index=True, max_length=32)


metadata: MetaData = SQLModel.metadata


def table(model: type[SQLModel]) -> Table:
    """The SQLAlchemy Core table of a model (Core is used on the hot path)."""
    return model.__table__  # type: ignore[attr-defined, no-any-return]


records = table(CanonicalRecord)
links = table(Link)
match_keys = table(MatchKey)
cursors = table(CursorRow)
runs = table(Run)
dead_letters = table(DeadLetter)
outbox = table(Outbox)
audit_events = table(AuditEvent)
audit_batches = table(AuditBatch)
audit_head = table(AuditHead)
audit_verified = table(AuditVerified)
leases = table(Lease)
webhook_events = table(WebhookEvent)
