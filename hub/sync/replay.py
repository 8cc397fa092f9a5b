"""Replaying and discarding dead letters.

Replay is idempotent: a dead letter is marked replayed in the same transaction that either
re-ingests its record or owes its delivery again (outbox), so replaying twice does nothing
the second time, and a crash in between leaves it open to be replayed again. A record that
fails again gets a fresh dead letter with the new reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from hub.errors import HubError
from hub.store import AuditInput, now_iso
from hub.sync.conflict import Resolver
from hub.sync.context import FlowContext
from hub.sync.deliver import Deliverer
from hub.sync.engine import SyncEngine
from hub.sync.hooks import RunCounts, RunInfo
from hub.sync.ingest import Ingestor
from hub.sync.rollup import RollUp


@dataclass(frozen=True)
class ReplayOutcome:
    """What a replay did."""

    dead_letter: int
    status: str  # replayed|already-replayed|already-discarded
    run_id: int | None
    counts: RunCounts
    message: str


def _load(engine: SyncEngine, dl_id: int) -> Any:
    with engine.store.connect() as conn:
        dl = engine.store.get_dead_letter(conn, dl_id)
    if dl is None:
        raise HubError(f"there is no dead letter {dl_id} (see `hub dlq list`)")
    return dl


def _current(ctx: FlowContext, dl: Any) -> dict[str, Any]:
    """The record to replay: re-read from its source when the connector can (so a record
    fixed at the source goes through), else the payload that failed."""
    stored: dict[str, Any] = orjson.loads(dl.payload)
    if dl.external_id is None:
        if dl.stage == "read":
            raise HubError(f"dead letter {dl.id} is a row that could not be read ({dl.error}); "
                           "fix it in the source and run the flow again, then discard this "
                           f"dead letter with `hub dlq discard {dl.id}`")
        return stored
    connector = ctx.connector(dl.system)
    try:
        fresh = connector.fetch(ctx.mappings[dl.system].object, dl.external_id)  # type: ignore[attr-defined]
    except (NotImplementedError, AttributeError):
        return stored
    if fresh is None:
        raise HubError(f"record {dl.external_id} no longer exists in {dl.system}; "
                       f"discard dead letter {dl.id} with `hub dlq discard {dl.id}`")
    return dict(fresh)


def replay(engine: SyncEngine, dl_id: int) -> ReplayOutcome:
    """Send a dead-lettered record through its flow again."""
    store = engine.store
    dl = _load(engine, dl_id)
    if dl.status != "open":
        return ReplayOutcome(dl_id, f"already-{dl.status}", None, RunCounts(),
                             f"dead letter {dl_id} was already {dl.status}; nothing to do")
    flow = engine.settings.flow(dl.flow)
    ctx = FlowContext.build(engine.settings, flow, engine.factory)
    counts = RunCounts()
    notes: list[str] = []
    try:
        record = _current(ctx, dl) if dl.stage != "write" else None
    except HubError:
        ctx.close()
        raise
    with store.begin() as conn:
        run_id = store.start_run(conn, flow.name, "replay", trigger="replay")
    run = RunInfo(run_id, flow.name, flow.entity, "replay")
    try:
        if dl.stage == "write":
            with store.begin() as conn:
                store.outbox_add(conn, flow.name, dl.system, [dl.canonical_id], run_id)
                store.resolve_dead_letter(conn, dl_id, "replayed")
            Deliverer(ctx, store, run, counts, dl.system, engine.observers).deliver()
        else:
            ingestor = Ingestor(ctx, store, run, counts, Resolver(flow.conflict, flow.systems,
                                                                  run_id), dl.system)
            with store.begin() as conn:
                result = ingestor.ingest(conn, [record or {}])
                # Resolved first: a failure now is a new dead letter, not an update of it.
                store.resolve_dead_letter(conn, dl_id, "replayed")
                store.add_dead_letters(conn, result.dead)
                for target in ingestor.targets:
                    store.outbox_add(conn, flow.name, target, result.to_deliver, run_id)
                derived = RollUp(engine.settings, store, run, notes).apply(conn, result.changes)
                for obs in engine.observers:
                    obs.page_committing(conn, run, result.changes + derived)
            for target in ingestor.targets:
                Deliverer(ctx, store, run, counts, target, engine.observers).deliver()
    finally:
        ctx.close()
    failed = counts.dead_lettered + counts.write_failed
    status = "partial" if failed else "succeeded"
    with store.begin() as conn:
        store.update_run(conn, run_id, status=status, finished_at=now_iso(), **counts.as_row())
    msg = (f"dead letter {dl_id} replayed: it failed again and is kept as a new dead letter"
           if failed else f"dead letter {dl_id} replayed: delivered")
    msg = "; ".join([msg, *notes])
    return ReplayOutcome(dl_id, "replayed", run_id, counts, msg)


def discard(engine: SyncEngine, dl_id: int) -> ReplayOutcome:
    """Give up on a dead letter on purpose (kept, marked discarded, audited)."""
    store = engine.store
    dl = _load(engine, dl_id)
    if dl.status != "open":
        return ReplayOutcome(dl_id, f"already-{dl.status}", None, RunCounts(),
                             f"dead letter {dl_id} was already {dl.status}; nothing to do")
    with store.begin() as conn:
        store.resolve_dead_letter(conn, dl_id, "discarded")
        store.append_audit(conn, [AuditInput(entity=dl.entity, action="dlq.discard",
                                             canonical_id=dl.canonical_id, system=dl.system,
                                             external_id=dl.external_id, flow=dl.flow,
                                             diff={"dead_letter": [dl_id, None]})])
    return ReplayOutcome(dl_id, "discarded", None, RunCounts(),
                         f"dead letter {dl_id} discarded")
