"""The in-process reaction to webhooks: run the flows the changes concern, one at a time.

A webhook only says "something changed"; the flow's normal incremental run reads it, so
nothing here depends on which record changed. Runs happen in ONE background thread, in
order; a flow already waiting is not queued twice (a burst of 100 deliveries is one run).
A flow that changes while it runs is queued again, so no change waits for the schedule.
A run that could not start (the flow was already running elsewhere) is tried again a few
times after `retry_delay` seconds. Production swaps this for a job-queue enqueue.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Sequence

from hub import registry
from hub.config.model import Settings
from hub.connector import WebhookEvent
from hub.errors import HubError
from hub.observers import run_observers
from hub.store import Store
from hub.sync.engine import SyncEngine

log = logging.getLogger("hub.web.trigger")

RunFlow = Callable[[str], object]


def flow_routes(settings: Settings) -> dict[tuple[str, str], list[str]]:
    """(system, native object) -> enabled flows that read that object from that system."""
    routes: dict[tuple[str, str], list[str]] = {}
    for flow in settings.flows.values():
        if not flow.enabled:
            continue
        readers = flow.systems if flow.direction == "two-way" else flow.sources
        for system in readers:
            sys_ = settings.systems.get(system)
            if sys_ is None or sys_.connection is None:
                continue
            try:
                support = registry.get(sys_.connection.connector).capabilities.entities
            except HubError:
                continue  # `hub check` reports the unknown connector
            if flow.entity in support:
                key = (system, support[flow.entity].object)
                routes.setdefault(key, []).append(flow.name)
    return routes


class FlowTrigger:
    """on_events for `hub serve`: queue the matching flows; one worker thread runs them."""

    def __init__(self, settings: Settings, store: Store, *, run_flow: RunFlow | None = None,
                 retry_delay: float = 5.0, attempts: int = 3) -> None:
        self.settings = settings
        self.store = store
        self.routes = flow_routes(settings)
        self.run_flow = run_flow or self._run
        self.retry_delay = retry_delay
        self.attempts = attempts
        self._queue: queue.Queue[tuple[str, int] | None] = queue.Queue()
        self._waiting: set[str] = set()
        self._busy = 0  # flows queued or running, for wait_idle
        self._timers: set[threading.Timer] = set()
        self._cond = threading.Condition()
        self._closed = False
        self._worker = threading.Thread(target=self._work, name="hub-webhook-runs", daemon=True)
        self._worker.start()

    def flows_for(self, system: str, events: Sequence[WebhookEvent]) -> list[str]:
        """The flows to run for these events of `system`, in config order, once each."""
        wanted = {name for obj in {e.object for e in events}
                  for name in self.routes.get((system, obj), ())}
        return [name for name in self.settings.flows if name in wanted]

    def __call__(self, system: str, events: list[WebhookEvent]) -> None:
        """Queue the flows these events concern (returns at once)."""
        for name in self.flows_for(system, events):
            self.enqueue(name)

    def enqueue(self, flow: str, attempt: int = 1) -> bool:
        """Queue a run of `flow` unless one is already waiting; True if queued."""
        with self._cond:
            if self._closed or flow in self._waiting:
                return False
            self._waiting.add(flow)
            self._busy += 1
        self._queue.put((flow, attempt))
        return True

    def wait_idle(self, timeout: float) -> bool:
        """Block until nothing is queued or running (or `timeout` s pass); True if idle."""
        with self._cond:
            return self._cond.wait_for(lambda: self._busy == 0 and not self._timers, timeout)

    def close(self, timeout: float = 30.0) -> None:
        """Stop taking work, cancel retries, let the current run finish (up to `timeout` s)."""
        with self._cond:
            self._closed = True
            timers, self._timers = list(self._timers), set()
            self._cond.notify_all()
        for timer in timers:
            timer.cancel()
        self._queue.put(None)
        self._worker.join(timeout)

    # -- the worker -------------------------------------------------------------------------

    def _run(self, flow: str) -> object:
        engine = SyncEngine(self.settings, self.store,
                            observers=run_observers(self.settings, self.store))
        report = engine.run(flow, trigger="webhook")
        log.info("webhook run of %s: %s (run %s)", flow, report.status, report.run_id)
        return report

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            flow, attempt = item
            with self._cond:
                # From here on a new change queues another run: this one may read too early.
                self._waiting.discard(flow)
                closed = self._closed
            try:
                if not closed:
                    self.run_flow(flow)
            except Exception as exc:  # the worker must outlive any one run
                if isinstance(exc, HubError):
                    log.warning("webhook run of %s could not run (attempt %d): %s", flow,
                                attempt, exc)
                else:
                    log.exception("webhook run of %s crashed (attempt %d)", flow, attempt)
                if attempt < self.attempts:
                    self._retry_later(flow, attempt + 1)
            finally:
                with self._cond:
                    self._busy -= 1
                    self._cond.notify_all()

    def _retry_later(self, flow: str, attempt: int) -> None:
        def fire() -> None:
            self.enqueue(flow, attempt)  # before forgetting the timer: wait_idle stays honest
            with self._cond:
                self._timers.discard(timer)
                self._cond.notify_all()

        timer = threading.Timer(self.retry_delay, fire)
        timer.daemon = True
        with self._cond:
            if self._closed:
                return
            self._timers.add(timer)
        timer.start()
