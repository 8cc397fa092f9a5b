"""Run a flow: read each source page by page, commit each page with its cursor, deliver.

A one-way flow delivers after every page, so a long run streams. A two-way flow reads both
of its systems first and delivers afterwards, so that a field edited on both sides is
settled by the conflict policy before anything is written back.

A run whose process died stays in status `running`; the next run of the flow continues it
(same run id, counts and seen-marks) from the last committed cursor, and the outbox still
holds whatever was committed but not yet delivered.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError

from hub.config.model import Settings
from hub.errors import HubError, StoreError, SyncError
from hub.store import Store, now_iso
from hub.sync.conflict import Resolver
from hub.sync.context import ConnectorFactory, FlowContext
from hub.sync.deliver import Deliverer
from hub.sync.hooks import Observer, RunCounts, RunInfo
from hub.sync.ingest import Ingestor
from hub.sync.prefetch import Prefetch

STALE_AFTER = 120.0  # seconds without a heartbeat before a running run counts as dead


# Pages are committed together until this many records or seconds have accumulated: a
# commit per 100-record page cost more than the rest of the page's store work.
COMMIT_RECORDS = 1000
COMMIT_SECONDS = 1.0


class _Batch:
    """One open transaction spanning several pages, committed as a unit with its cursor."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.conn: Connection | None = None
        self._tx: Any = None
        self.records = 0
        self.started = 0.0

    def connection(self) -> Connection:
        """The batch's connection, beginning a transaction if none is open."""
        if self.conn is None:
            self.conn = self.store.engine.connect()
            self._tx = self.conn.begin()
            self.records, self.started = 0, time.monotonic()
        return self.conn

    def full(self) -> bool:
        """Whether it is time to commit."""
        return (self.records >= COMMIT_RECORDS
                or time.monotonic() - self.started >= COMMIT_SECONDS)

    def commit(self) -> None:
        """Commit and release the connection."""
        if self.conn is not None:
            try:
                self._tx.commit()
            except SQLAlchemyError as exc:
                raise StoreError(f"could not commit to the store: "
                                 f"{str(exc).splitlines()[0]}") from None
            finally:
                self._close()

    def rollback(self) -> None:
        """Undo whatever is open and release the connection."""
        if self.conn is not None:
            try:
                self._tx.rollback()
            finally:
                self._close()

    def _close(self) -> None:
        assert self.conn is not None
        self.conn.close()
        self.conn, self._tx = None, None


@dataclass(frozen=True)
class RunReport:
    """The outcome of one run, for the CLI and the caller."""

    run_id: int | None
    flow: str
    status: str  # succeeded|partial|failed|dry-run
    counts: RunCounts
    error: str | None = None
    resumed: bool = False
    notes: tuple[str, ...] = ()
    seconds: float = 0.0

    @property
    def exit_code(self) -> int:
        """0 when everything was (or, in a dry run, would be) delivered, 1 otherwise."""
        if self.status == "dry-run":
            return 1 if self.counts.dead_lettered else 0
        return 0 if self.status == "succeeded" else 1


def process_owner() -> str:
    """host:pid of this process, recorded on the runs it executes."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _owner_dead(owner: str) -> bool:
    """Whether the process that owned a run is known to be gone (same host, no such pid)."""
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _age(ts: str) -> float:
    then = datetime.fromisoformat(ts)
    return (datetime.now(UTC) - then).total_seconds()


class SyncEngine:
    """Runs flows against a store, with observers watching."""

    def __init__(self, settings: Settings, store: Store, *,
                 observers: Sequence[Observer] = (),
                 connector_factory: ConnectorFactory | None = None) -> None:
        self.settings = settings
        self.store = store
        self.observers = list(observers)
        self.factory = connector_factory

    def _open_run(self, flow: str, mode: str, trigger: str) -> tuple[int, RunCounts, bool]:
        with self.store.begin() as conn:
            old = self.store.unfinished_run(conn, flow)
            if old is not None:
                if _age(old.heartbeat_at) < STALE_AFTER and not _owner_dead(old.owner):
                    raise SyncError(f"flow {flow} is already running (run {old.id}, last sign "
                                    f"of life {old.heartbeat_at}); wait for it to finish")
                self.store.update_run(conn, old.id, resumes=old.resumes + 1,
                                      owner=process_owner())
                return int(old.id), RunCounts.from_row(old), True
            run_id = self.store.start_run(conn, flow, mode, trigger, owner=process_owner())
            return run_id, RunCounts(), False

    def run(self, flow_name: str, *, full: bool = False, dry_run: bool = False,
            trigger: str = "manual",
            progress: Callable[[RunCounts], None] | None = None) -> RunReport:
        """Run one flow now. Raises ConfigError for a bad config; everything else is reported."""
        started = time.perf_counter()
        flow = self.settings.flow(flow_name)
        ctx = FlowContext.build(self.settings, flow, self.factory)
        mode = "full" if full or flow.mode == "full" else "incremental"
        if dry_run:
            run_id, counts, resumed = 0, RunCounts(), False
        else:
            run_id, counts, resumed = self._open_run(flow.name, mode, trigger)
            if resumed:
                with self.store.connect() as conn:
                    row = self.store.get_run(conn, run_id)
                mode = row.mode if row is not None else mode
        run = RunInfo(run_id, flow.name, flow.entity, mode, dry_run)
        resolver = Resolver(flow.conflict, flow.systems, run_id)
        notes: list[str] = []
        for obs in self.observers:
            obs.run_started(run)
        status, error = "succeeded", None
        try:
            deliver_each_page = flow.direction == "one-way"
            for source, _targets in ctx.legs:
                self._read_source(ctx, run, counts, resolver, source, resumed, deliver_each_page,
                                  notes, progress)
            if not dry_run:
                self._deliver_all(ctx, run, counts)
        except (HubError, OSError) as exc:
            status, error = "failed", str(exc)
        finally:
            ctx.close()
        if status != "failed":
            if not dry_run:
                with self.store.connect() as conn:
                    counts.pending = self.store.outbox_count(conn, flow.name)
            if dry_run:
                status = "dry-run"
            elif counts.dead_lettered or counts.write_failed or counts.pending:
                status = "partial"
        if not dry_run:
            with self.store.begin() as conn:
                self.store.update_run(conn, run_id, status=status, error=error,
                                      finished_at=now_iso(),
                                      skip_reasons=orjson.dumps(counts.skip_reasons).decode(),
                                      **counts.as_row())
        for obs in self.observers:
            obs.run_finished(run, counts, status)
        return RunReport(run_id or None, flow.name, status, counts, error, resumed,
                         tuple(notes), time.perf_counter() - started)

    def _read_source(self, ctx: FlowContext, run: RunInfo, counts: RunCounts,
                     resolver: Resolver, source: str, resumed: bool, deliver_each_page: bool,
                     notes: list[str], progress: Callable[[RunCounts], None] | None) -> None:
        store, flow = self.store, ctx.flow
        ingestor = Ingestor(ctx, store, run, counts, resolver, source)
        full = run.mode == "full"
        cursor = None
        if resumed or not full:
            with store.connect() as conn:
                cursor = store.get_cursor(conn, flow.name, source)
        connector = ctx.connector(source)
        unsafe = False
        with store.connect() as conn:
            # Only then is it worth closing dead letters of records that now sync fine.
            had_dead = store.has_open_dead_letters(conn, flow.name, source)
        pages = Prefetch(connector.read(ingestor.mapping.object, cursor, incremental=not full,
                                        page_size=flow.page_size))
        batch = _Batch(store)
        dead: list[dict[str, Any]] = []
        try:
            while True:
                t0 = time.perf_counter()
                try:
                    page = next(pages)
                except StopIteration:
                    break
                counts.add_time("read", time.perf_counter() - t0)
                t1 = time.perf_counter()
                conn = batch.connection()
                result = ingestor.ingest(conn, page.records)
                t2 = time.perf_counter()
                if full and result.seen:
                    store.mark_seen(conn, source, flow.entity, result.seen, run.run_id)
                if had_dead and result.synced:
                    store.close_dead_letters(conn, flow.name, source,
                                             external_ids=result.synced)
                store.add_dead_letters(conn, result.dead)
                had_dead = had_dead or bool(result.dead)
                dead.extend(result.dead)
                for target in ingestor.targets:
                    store.outbox_add(conn, flow.name, target, result.to_deliver, run.run_id)
                for obs in self.observers:
                    obs.page_committing(conn, run, result.changes)
                if run.dry_run:
                    # At most this many writes would follow; nothing is kept.
                    counts.written += len(result.to_deliver) * len(ingestor.targets)
                else:
                    store.set_cursor(conn, flow.name, source, page.cursor)
                unsafe = unsafe or result.unsafe_for_deletes
                batch.records += len(page.records)
                if batch.full():
                    self._flush(batch, run, counts, source, dead, progress)
                    if deliver_each_page and not run.dry_run:
                        self._deliver_all(ctx, run, counts)
                counts.add_time("store", time.perf_counter() - t2)
                counts.add_time("page", time.perf_counter() - t1)
            self._flush(batch, run, counts, source, dead, progress)
        finally:
            pages.close()
            batch.rollback()  # anything not flushed (an error above) is undone
        if deliver_each_page and not run.dry_run:
            self._deliver_all(ctx, run, counts)
        if full and not run.dry_run:
            if unsafe:
                notes.append(f"deletions in {source} were not checked: some records could not "
                             "be identified (see the dead letters)")
                return
            with store.begin() as conn:
                changes = ingestor.detect_deletions(conn)
                if changes and flow.delete_policy != "ignore":
                    for target in ingestor.targets:
                        store.outbox_add(conn, flow.name, target,
                                         [c.canonical_id for c in changes if c.canonical_id],
                                         run.run_id)
                for obs in self.observers:
                    obs.page_committing(conn, run, changes)

    def _flush(self, batch: _Batch, run: RunInfo, counts: RunCounts, source: str,
               dead: list[dict[str, Any]],
               progress: Callable[[RunCounts], None] | None) -> None:
        """Commit the pages read so far with their cursor (roll back in a dry run)."""
        if batch.conn is None:
            return
        if run.dry_run:
            batch.rollback()
        else:
            self.store.update_run(batch.conn, run.run_id,
                                  skip_reasons=orjson.dumps(counts.skip_reasons).decode(),
                                  **counts.as_row())
            batch.commit()
        for d in dead:
            for obs in self.observers:
                obs.dead_lettered(run, source, d["stage"], d["error"])
        dead.clear()
        if progress is not None:
            progress(counts)

    def _deliver_all(self, ctx: FlowContext, run: RunInfo, counts: RunCounts) -> None:
        for target in ctx.delivery_targets:
            Deliverer(ctx, self.store, run, counts, target, self.observers).deliver()
