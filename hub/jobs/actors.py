"""The jobs: thin actors over the sync engine. Every one is safe to run twice.

    sync_flow(flow)            one step of the flow's open run (or a new run): reads up to
                               STEP_RECORDS, commits, then sends itself again to continue;
                               deliveries it leaves owed go to deliver_flow jobs
    deliver_flow(flow, target) delivers what the outbox owes one target, under a lease, so no
                               canonical record is ever written to a target by two workers
    sweep()                    re-sends jobs for runs whose worker died (lease expired) and for
                               deliveries that are due: SQL is the source of truth, a lost
                               message only delays work

`Jobs(settings, store, broker)` declares the actors on a broker; the worker entry point and
`hub run` both use it, so the embedded and distributed modes run the same code.

No job sleeps through a retry: jobs run with hub.http's in-place retries off, so a 429, 5xx
or timeout surfaces at once. A delivery that failed is postponed in the outbox (due again
after max(backoff, Retry-After)) and deliver_flow re-sends itself, delayed, for when it is
due; a read that failed re-sends sync_flow delayed the same way, holding the flow's lease
meanwhile so the sweeper does not resume the run early.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Callable
from typing import Any

import dramatiq

from hub.config.model import RetryPolicy, Settings
from hub.errors import ConfigError, HubError, LeaseLost, SyncError
from hub.http import no_inline_retries
from hub.jobs.broker import STEP_RECORDS
from hub.observers import run_observers
from hub.store import Store, now_iso
from hub.sync.context import FlowContext
from hub.sync.deliver import Deliverer, backoff
from hub.sync.engine import SyncEngine
from hub.sync.hooks import Observer, RunCounts, RunInfo
from hub.sync.lease import LEASE_TTL, Fence, holder_dead, holder_id

log = logging.getLogger("hub.jobs")

# A retried read's message is delayed this much past its hold on the flow's lease, so it
# finds the hold expired instead of the flow "running elsewhere".
RETRY_MARGIN_MS = 100


class Jobs:
    """The actors of one hub, bound to one broker."""

    def __init__(self, settings: Settings, store: Store, broker: dramatiq.Broker) -> None:
        self.settings = settings
        self.store = store
        self.broker = broker
        self.observers: list[Observer] = run_observers(settings, store)
        # A bad config will not fix itself: no retries for it.
        opts: dict[str, Any] = {"broker": broker, "throws": (ConfigError,)}
        self.sync_flow = dramatiq.actor(actor_name="sync_flow", queue_name="flows",
                                        **opts)(_no_sleeping(self._sync_flow))
        self.deliver_flow = dramatiq.actor(actor_name="deliver_flow", queue_name="deliveries",
                                           **opts)(_no_sleeping(self._deliver_flow))
        self.sweep = dramatiq.actor(actor_name="sweep", queue_name="flows", **opts)(self._sweep)

    def engine(self) -> SyncEngine:
        """An engine with the audit trail on; delivery is left to deliver_flow jobs."""
        return SyncEngine(self.settings, self.store, observers=self.observers,
                          deliver_inline=False)

    # -- actors ------------------------------------------------------------------------

    def _sync_flow(self, flow: str, trigger: str = "manual", full: bool = False,
                   run_id: int | None = None, attempt: int = 0) -> None:
        try:
            report = self.engine().step(flow, full=full, trigger=trigger,
                                        max_records=STEP_RECORDS, only_run=run_id)
        except (SyncError, LeaseLost) as exc:  # another worker holds the flow and carries on
            log.info("sync_flow %s: %s", flow, exc)
            return
        if report is None:
            return  # a duplicate of a continuation whose run has finished
        for target in _targets(self.settings, flow):
            self.deliver_flow.send(flow, target)
        if report.status == "continuing":
            self.sync_flow.send(flow, trigger, False, report.run_id)
        elif report.status == "retry":
            # The source failed transiently: continue after a backoff that grows with each
            # failure in a row and is never shorter than the source's Retry-After.
            policy = _read_policy(self.settings, flow)
            wait = max(backoff(attempt + 1, policy.backoff_initial, policy.backoff_max),
                       report.retry_after or 0.0)
            self._hold(flow, wait)
            self.sync_flow.send_with_options(
                args=(flow, trigger, False, report.run_id, attempt + 1),
                delay=int(1000 * wait) + RETRY_MARGIN_MS)
        else:
            with self.store.connect() as conn:
                queued = self.store.unfinished_run(conn, flow)
            if queued is not None:
                self.sync_flow.send(flow, str(queued.trigger), False, int(queued.id))

    def _deliver_flow(self, flow: str, target: str) -> None:
        fence = self._lease(f"deliver:{flow}:{target}")
        if fence is None:
            return  # another worker is delivering to this target; it takes what is owed
        try:
            cfg = self.settings.flow(flow)
            ctx = FlowContext.build(self.settings, cfg)
            try:
                run = RunInfo(0, flow, cfg.entity, "deliver")
                Deliverer(ctx, self.store, run, RunCounts(), target,
                          self.observers, fence=fence).deliver()
            finally:
                ctx.close()
        finally:
            fence.release()
        delay = self._next_due(flow, target)
        if delay is not None:
            self.deliver_flow.send_with_options(args=(flow, target), delay=delay)

    def _sweep(self) -> None:
        for flow, targets in self.stalled().items():
            if targets is None:
                with self.store.connect() as conn:
                    run = self.store.unfinished_run(conn, flow)
                # Name the run: a sweep that arrives after it finished must not start another.
                if run is not None:
                    self.sync_flow.send(flow, "sweeper", False, int(run.id))
            for target in targets or ():
                self.deliver_flow.send(flow, target)

    def send_sweep(self) -> None:
        """Ask a worker to sweep (the scheduler calls this while it leads)."""
        self.sweep.send()

    # -- helpers -----------------------------------------------------------------------

    def _hold(self, flow: str, seconds: float) -> None:
        """Keep the flow's lease taken while its run waits to retry.

        Otherwise the sweeper (which resumes open runs nobody holds) would resume it at
        once, before the Retry-After. If the delayed message is lost, the hold simply
        expires and the sweeper resumes the run then.
        """
        with self.store.begin() as conn:
            self.store.acquire_lease(conn, f"flow:{flow}", f"retry-wait:{holder_id()}",
                                     seconds)

    def _lease(self, name: str) -> Fence | None:
        with self.store.begin() as conn:
            token = self.store.acquire_lease(conn, name, holder_id(), LEASE_TTL,
                                             dead=holder_dead)
        return Fence(self.store, name, token) if token is not None else None

    def _next_due(self, flow: str, target: str) -> int | None:
        """Milliseconds until the next postponed delivery to `target` is due, if any."""
        from datetime import UTC, datetime

        with self.store.connect() as conn:
            due = self.store.outbox_next_due(conn, flow, target)
        if due is None:
            return None
        when = datetime.fromisoformat(due)
        return max(0, int((when - datetime.now(UTC)).total_seconds() * 1000)) + 50

    def stalled(self) -> dict[str, list[str] | None]:
        """Flows whose open run nobody is working on (None), and owed deliveries per flow."""
        out: dict[str, list[str] | None] = {}
        now = now_iso()
        with self.store.connect() as conn:
            for flow in self.settings.flows:
                run = self.store.unfinished_run(conn, flow)
                if run is not None and not self.store.lease_held(conn, f"flow:{flow}", now):
                    out[flow] = None
            for flow, target in self.store.outbox_due_targets(conn, now):
                if flow in self.settings.flows and out.get(flow, []) is not None:
                    out.setdefault(flow, [])
                    entry = out[flow]
                    assert entry is not None
                    entry.append(target)
        return out


def _no_sleeping(job: Callable[..., None]) -> Callable[..., None]:
    """The job, run with in-place HTTP retries off: a failed call surfaces at once and is
    retried by a delayed job or a postponed outbox row, never by a sleeping worker thread."""
    @functools.wraps(job)
    def run(*args: Any, **kwargs: Any) -> None:
        with no_inline_retries():
            job(*args, **kwargs)
    return run


def _read_policy(settings: Settings, flow: str) -> RetryPolicy:
    """How patiently a flow's reads are retried: the flow's policy, else its first source's."""
    cfg = settings.flow(flow)
    if cfg.retry is not None:
        return cfg.retry
    readers = cfg.systems if cfg.direction == "two-way" else cfg.sources
    for system in readers:
        with contextlib.suppress(HubError):
            return settings.connection(system).retry
    return RetryPolicy()


def _targets(settings: Settings, flow: str) -> tuple[str, ...]:
    """The systems a flow delivers to."""
    cfg = settings.flow(flow)
    return cfg.systems if cfg.direction == "two-way" else cfg.targets


def send_sync(jobs: Jobs) -> Callable[[str], None]:
    """A callable that enqueues a run of a flow (for the scheduler and webhooks)."""
    def send(flow: str, trigger: str = "schedule") -> None:
        jobs.sync_flow.send(flow, trigger, False)
    return send
