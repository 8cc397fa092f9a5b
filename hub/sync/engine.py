"""Run a flow: read each source page by page, commit each page with its cursor, deliver.

A one-way flow delivers after every page, so a long run streams. A two-way flow reads both
of its systems first and delivers afterwards, so that a field edited on both sides is
settled by the conflict policy before anything is written back.

A run whose process died stays in status `running`; the next run of the flow continues it
(same run id, counts and seen-marks) from the last committed cursor, and the outbox still
holds whatever was committed but not yet delivered.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection

from hub.config.model import Settings
from hub.connector import Page
from hub.errors import (
    HubError,
    LeaseLost,
    RateLimited,
    StoreUnavailable,
    SyncError,
    TransientError,
)
from hub.store import Store, now_iso
from hub.sync import readahead
from hub.sync.backfill import needs_backfill, owe_missing
from hub.sync.batch import STREAM_RECORDS, Batch
from hub.sync.conflict import Resolver
from hub.sync.context import ConnectorFactory, FlowContext
from hub.sync.deliver import Deliverer
from hub.sync.hooks import IN_COLUMNS, Observer, RunCounts, RunInfo, Tally
from hub.sync.ingest import Ingestor
from hub.sync.lease import LEASE_TTL, Fence, holder_dead, holder_id, process_owner
from hub.sync.mapped import MappedPage, Prepare
from hub.sync.prefetch import Prefetch
from hub.sync.readahead import ReadAhead
from hub.sync.rollup import RollUp


@dataclass(frozen=True)
class RunReport:
    """The outcome of one run, for the CLI and the caller."""

    run_id: int | None
    flow: str
    status: str  # succeeded|partial|failed|dry-run, or continuing|retry (run still open)
    counts: RunCounts
    error: str | None = None
    resumed: bool = False
    notes: tuple[str, ...] = ()
    seconds: float = 0.0
    retry_after: float | None = None  # status "retry": the source asked us to wait this long

    @property
    def exit_code(self) -> int:
        """0 when everything was (or, in a dry run, would be) delivered, 1 otherwise."""
        if self.status == "dry-run":
            return 1 if self.counts.dead_lettered else 0
        return 0 if self.status == "succeeded" else 1


def _next_page(pages: Iterator[Page | MappedPage]) -> Page | MappedPage | None:
    """The next page, or None at the end of the read."""
    try:
        return next(pages)
    except StopIteration:
        return None


class _Budget:
    """How many records one call may read before it hands the run on."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.used = 0

    def spend(self, n: int) -> None:
        self.used += n

    def spent(self) -> bool:
        return self.limit is not None and self.used >= self.limit


class SyncEngine:
    """Runs flows against a store, with observers watching."""

    def __init__(self, settings: Settings, store: Store, *,
                 observers: Sequence[Observer] = (),
                 connector_factory: ConnectorFactory | None = None,
                 deliver_inline: bool = True) -> None:
        self.settings = settings
        self.store = store
        self.observers = list(observers)
        self.factory = connector_factory
        # False in worker mode: deliveries are owed through the outbox and taken by
        # deliver_flow jobs, which other workers run beside the reading.
        self.deliver_inline = deliver_inline

    def _acquire(self, flow: str) -> Fence:
        """The flow's lease: no other process or thread runs this flow meanwhile."""
        holder = holder_id()
        with self.store.begin() as conn:
            token = self.store.acquire_lease(conn, f"flow:{flow}", holder, LEASE_TTL,
                                             dead=holder_dead)
        if token is None:
            raise SyncError(f"flow {flow} is already running in another process; wait for "
                            "it to finish (see `hub runs`)")
        return Fence(self.store, f"flow:{flow}", token)

    def _is_open(self, run_id: int) -> bool:
        with self.store.connect() as conn:
            row = self.store.get_run(conn, run_id)
        return row is not None and row.status in ("running", "queued")

    def _open_run(self, flow: str, mode: str, trigger: str
                  ) -> tuple[int, RunCounts, bool, int, str]:
        """The run to work on: an unfinished one (resumed) or a new one."""
        with self.store.begin() as conn:
            old = self.store.unfinished_run(conn, flow)
            if old is not None:
                resumed = old.status == "running"
                self.store.update_run(conn, old.id, status="running", owner=process_owner(),
                                      resumes=old.resumes + (1 if resumed else 0))
                return (int(old.id), RunCounts.from_row(old), resumed, int(old.legs_done),
                        str(old.mode))
            run_id = self.store.start_run(conn, flow, mode, trigger, owner=process_owner())
            return run_id, RunCounts(), False, 0, mode

    def run(self, flow_name: str, *, full: bool = False, dry_run: bool = False,
            trigger: str = "manual", progress: Callable[[RunCounts], None] | None = None,
            max_records: int | None = None) -> RunReport:
        """Run one flow now. Raises ConfigError for a bad config; everything else is reported.

        With `max_records`, stop after about that many records have been read and committed
        and report status "continuing": the run stays open and the next call (from any
        process) carries on from its cursor. That is how workers share a large run.
        """
        report = self.step(flow_name, full=full, dry_run=dry_run, trigger=trigger,
                           progress=progress, max_records=max_records)
        assert report is not None
        return report

    def step(self, flow_name: str, *, full: bool = False, dry_run: bool = False,
             trigger: str = "manual", progress: Callable[[RunCounts], None] | None = None,
             max_records: int | None = None, only_run: int | None = None
             ) -> RunReport | None:
        """`run`, for jobs: with `only_run`, only continue that run, and return None if it
        has already finished (a duplicated continuation message must not start a new run).
        """
        started = time.perf_counter()
        flow = self.settings.flow(flow_name)
        ctx = FlowContext.build(self.settings, flow, self.factory)
        mode = "full" if full or flow.mode == "full" else "incremental"
        fence: Fence | None = None
        try:
            legs_done = 0
            if dry_run:
                run_id, counts, resumed = 0, RunCounts(), False
            else:
                fence = self._acquire(flow.name)
                if only_run is not None and not self._is_open(only_run):
                    return None
                run_id, counts, resumed, legs_done, mode = self._open_run(flow.name, mode,
                                                                          trigger)
            return self._execute(ctx, RunInfo(run_id, flow.name, flow.entity, mode, dry_run),
                                 counts, resumed, legs_done, fence, progress, max_records,
                                 started)
        finally:
            ctx.close()
            if fence is not None:
                fence.release()

    def _execute(self, ctx: FlowContext, run: RunInfo, counts: RunCounts, resumed: bool,
                 legs_done: int, fence: Fence | None,
                 progress: Callable[[RunCounts], None] | None, max_records: int | None,
                 started: float) -> RunReport:
        flow = ctx.flow
        resolver = Resolver(flow.conflict, flow.systems, run.run_id)
        notes: list[str] = []
        for obs in self.observers:
            obs.run_started(run)
        status, error = "succeeded", None
        retry_after: float | None = None
        budget = _Budget(max_records)
        try:
            if not run.dry_run and not resumed and legs_done == 0:
                self._backfill(ctx, run, notes, fence)
            streaming = flow.direction == "one-way" and self.deliver_inline
            for index, (source, targets) in enumerate(ctx.legs):
                if index < legs_done:
                    continue
                done = self._read_source(ctx, run, counts, resolver, source, index,
                                         resumed or index > 0 or legs_done > 0,
                                         streaming and bool(targets), notes, progress, fence,
                                         budget)
                if not done:
                    status = "continuing"
                    break
            if not run.dry_run and self.deliver_inline and status != "continuing":
                self._deliver_all(ctx, run, counts, fence)
        except TransientError as exc:
            # The source is busy or down: the run stays open and resumes from its cursor.
            status, error = "retry", str(exc)
            retry_after = exc.retry_after if isinstance(exc, RateLimited) else None
        except LeaseLost:
            raise  # another process took the run over: the run's row is its to update now
        except StoreUnavailable as exc:
            # A dropped connection or a failover: the open transaction rolled back with its
            # cursor, so the run stays open and resumes from its last commit.
            status, error = "retry", str(exc)
        except (HubError, OSError) as exc:
            status, error = "failed", str(exc)
        if status not in ("failed", "continuing", "retry"):
            if not run.dry_run and self.deliver_inline:
                # Deliveries still owed after this run delivered: waiting for a retry. (In
                # worker mode, deliver_flow jobs are delivering them right now.)
                with self.store.connect() as conn:
                    counts.pending = self.store.outbox_count(conn, flow.name)
            if run.dry_run:
                status = "dry-run"
            elif counts.dead_lettered or counts.write_failed or counts.pending:
                status = "partial"
        if not run.dry_run:
            open_ = status in ("continuing", "retry")
            finished = {} if open_ else {"status": status, "finished_at": now_iso()}
            # A run that will retry keeps the counts committed with its cursor: the counts
            # in hand include pages that were rolled back and will be read again.
            tally: dict[str, Any] = {} if status == "retry" else {
                "skip_reasons": orjson.dumps(counts.skip_reasons).decode(), **counts.as_row()}
            with self.store.begin() as conn:
                self.store.update_run(conn, run.run_id, error=error, **finished, **tally)
        if status not in ("continuing", "retry"):
            for obs in self.observers:
                obs.run_finished(run, counts, status)
        return RunReport(run.run_id or None, flow.name, status, counts, error, resumed,
                         tuple(notes), time.perf_counter() - started, retry_after)

    def _backfill(self, ctx: FlowContext, run: RunInfo, notes: list[str],
                  fence: Fence | None) -> None:
        """Owe the targets what the sources already hold (a new flow, a full refresh)."""
        store = self.store
        with store.begin() as conn:
            if fence is not None:
                fence.check(conn)
            if needs_backfill(store, conn, ctx, run.mode == "full"):
                owed = owe_missing(store, conn, ctx, run.run_id)
                if owed:
                    notes.append(f"{owed} record(s) already in Liaison from this flow's "
                                 "sources were owed to its targets")

    def _read_source(self, ctx: FlowContext, run: RunInfo, counts: RunCounts,
                     resolver: Resolver, source: str, leg: int, resumed: bool,
                     deliver_each_page: bool,
                     notes: list[str], progress: Callable[[RunCounts], None] | None,
                     fence: Fence | None, budget: _Budget) -> bool:
        """Read one source to its end (True) or until the budget is spent (False).

        The end of the leg (its last cursor, deletion detection after a full read, and the
        run's count of finished legs) commits in one transaction: a run resumed after any
        failure either finishes the leg's last pages or finds the leg done.
        """
        store, flow = self.store, ctx.flow
        ingestor = Ingestor(ctx, store, run, counts, resolver, source)
        rollup = RollUp(self.settings, store, run, notes)
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
        pages: Prefetch[Page] | ReadAhead
        if readahead.available(connector, ingestor.mapping):
            ingestor.learning = True  # resolved references go on to the child
            pages = ReadAhead(lambda: ctx.factory(self.settings.connection(source)),
                              ingestor.mapping, cursor, incremental=not full,
                              page_size=flow.page_size, keep=ctx.filter,
                              prepare=Prepare(source, run.run_id,
                                              ingestor.mapping.sensitive_fields))
        else:
            pages = Prefetch(connector.read(ingestor.mapping.object, cursor,
                                            incremental=not full, page_size=flow.page_size))
        batch = Batch(store, STREAM_RECORDS if deliver_each_page else None)
        tally = Tally(counts, IN_COLUMNS)
        dead: list[dict[str, Any]] = []
        # SQL errors anywhere in the page loop become StoreError (the store's boundary).
        with store.errors():
            try:
                t0 = time.perf_counter()
                page = _next_page(pages)
                counts.add_time("read", time.perf_counter() - t0)
                while page is not None:
                    t1 = time.perf_counter()
                    conn = batch.connection()
                    if isinstance(page, MappedPage):
                        result = ingestor.ingest_mapped(conn, page)
                        size = page.size
                        if isinstance(pages, ReadAhead):
                            pages.tell(ingestor.take_learned())
                    else:
                        result = ingestor.ingest(conn, page.records)
                        size = len(page.records)
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
                    # Derived values (a contact's last activity) commit with their page.
                    derived = rollup.apply(conn, result.changes)
                    for obs in self.observers:
                        obs.page_committing(conn, run, result.changes + derived)
                    if run.dry_run:
                        # At most this many writes would follow; nothing is kept.
                        counts.written += len(result.to_deliver) * len(ingestor.targets)
                    else:
                        store.set_cursor(conn, flow.name, source, page.cursor)
                    unsafe = unsafe or result.unsafe_for_deletes
                    batch.records += size
                    budget.spend(size)
                    counts.add_time("store", time.perf_counter() - t2)
                    counts.add_time("page", time.perf_counter() - t1)
                    # One page ahead (usually read already): the last page must commit with
                    # the end of the leg, or a retry after a failure between the two would
                    # read the whole source again from the cursor's "from the start".
                    t0 = time.perf_counter()
                    page = _next_page(pages)
                    counts.add_time("read", time.perf_counter() - t0)
                    if page is None:
                        break
                    if batch.full() or budget.spent():
                        self._flush(batch, run, counts, source, dead, progress, fence, tally)
                        if deliver_each_page and not run.dry_run:
                            self._deliver_all(ctx, run, counts, fence)
                        if budget.spent():
                            return False  # more to read: the next step carries on
                if full and not run.dry_run:
                    # Records linked to the source but not seen in this full read were
                    # deleted there; decided in the leg's last transaction.
                    if unsafe:
                        notes.append(f"deletions in {source} were not checked: some records "
                                     "could not be identified (see the dead letters)")
                    else:
                        self._detect_deletions(batch.connection(), ctx, run, ingestor)
                self._flush(batch, run, counts, source, dead, progress, fence, tally,
                            legs_done=leg + 1)
            finally:
                pages.close()
                batch.rollback()  # anything not flushed (an error above) is undone
            if deliver_each_page and not run.dry_run:
                self._deliver_all(ctx, run, counts, fence)
            return True

    def _detect_deletions(self, conn: Connection, ctx: FlowContext, run: RunInfo,
                          ingestor: Ingestor) -> None:
        changes = ingestor.detect_deletions(conn)
        if changes and ctx.flow.delete_policy != "ignore":
            for target in ingestor.targets:
                self.store.outbox_add(conn, ctx.flow.name, target,
                                      [c.canonical_id for c in changes if c.canonical_id],
                                      run.run_id)
        for obs in self.observers:
            obs.page_committing(conn, run, changes)

    def _flush(self, batch: Batch, run: RunInfo, counts: RunCounts, source: str,
               dead: list[dict[str, Any]], progress: Callable[[RunCounts], None] | None,
               fence: Fence | None, tally: Tally, legs_done: int | None = None) -> None:
        """Commit the pages read so far with their cursor (roll back in a dry run); with
        `legs_done`, the run's finished legs commit with them."""
        if batch.conn is None and (legs_done is None or run.dry_run):
            return
        leg = {} if legs_done is None else {"legs_done": legs_done}
        conn = batch.connection()
        if run.dry_run:
            batch.rollback()
        else:
            if fence is not None:
                try:
                    fence.check(conn)
                except LeaseLost:
                    batch.rollback()
                    raise
            self.store.update_run(conn, run.run_id,
                                  skip_reasons=orjson.dumps(counts.skip_reasons).decode(),
                                  **counts.as_row(), **leg)
            batch.commit()
            gained = tally.take()
            if gained:
                for obs in self.observers:
                    obs.records_committed(run, source, "in", gained)
        for d in dead:
            for obs in self.observers:
                obs.dead_lettered(run, source, d["stage"], d["error"])
        dead.clear()
        if progress is not None:
            progress(counts)

    def _deliver_all(self, ctx: FlowContext, run: RunInfo, counts: RunCounts,
                     fence: Fence | None = None) -> None:
        for target in ctx.delivery_targets:
            Deliverer(ctx, self.store, run, counts, target, self.observers,
                      fence=fence).deliver()
