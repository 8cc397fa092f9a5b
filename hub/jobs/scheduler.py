"""`hub scheduler`: fires flows on their cron schedules, one active scheduler at a time.

Two guards keep a schedule slot from producing two runs: a lease (only its holder fires;
a standby takes over once it expires, within LEASE_SECONDS + TICK_SECONDS of the holder
dying) and the store's unique key on (flow, fire time), inserted with the queued run, which
holds even if two schedulers both think they lead. After downtime only the newest missed
slot fires: one catch-up run, not a burst. The scheduler also sweeps: jobs for runs whose
worker died and for deliveries that are due are sent again.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from croniter import croniter

from hub.config.model import Settings
from hub.store import Store

log = logging.getLogger("hub.scheduler")

LEASE_SECONDS = 20.0
TICK_SECONDS = 2.0
SWEEP_SECONDS = float(os.environ.get("HUB_SWEEP_SECONDS", "10"))


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Scheduler:
    """Decides which flows are due and queues one run per slot."""

    def __init__(self, settings: Settings, store: Store, enqueue: Callable[[str], None],
                 holder: str, *, sweep: Callable[[], None] | None = None,
                 lease_seconds: float = LEASE_SECONDS) -> None:
        self.settings = settings
        self.store = store
        self.enqueue = enqueue
        self.holder = holder
        self.sweep = sweep
        self.lease_seconds = lease_seconds
        self.started = datetime.now(UTC)
        self._last_sweep = 0.0

    def due(self, now: datetime) -> list[tuple[str, str]]:
        """(flow, fire time) of the newest slot of each scheduled flow at or before `now`."""
        out = []
        for flow in self.settings.flows.values():
            if flow.schedule and flow.enabled:
                slot = croniter(flow.schedule, now).get_prev(datetime)
                out.append((flow.name, _iso(slot)))
        return out

    def tick(self, now: datetime | None = None) -> list[str]:
        """Fire what is due if we lead; returns the flows queued. Safe to call often."""
        now = now or datetime.now(UTC)
        fired: list[str] = []
        with self.store.begin() as conn:
            token = self.store.acquire_lease(conn, "scheduler", self.holder, self.lease_seconds)
            if token is None:
                return []  # a standby: another scheduler leads
            for flow, slot in self.due(now):
                last = self.store.last_fire_time(conn, flow)
                # Never fire for slots before this scheduler's first start (no history).
                if last is None and slot < _iso(self.started):
                    continue
                if last is not None and slot <= last:
                    continue
                pending = self.store.unfinished_run(conn, flow)
                if pending is not None and pending.status == "queued":
                    continue  # the queued run has not started yet: it covers this slot too
                mode = self.settings.flow(flow).mode
                if self.store.queue_run(conn, flow, mode, "schedule", slot) is not None:
                    fired.append(flow)
        for flow in fired:
            log.info("flow %s is due: queued a run", flow)
            self.enqueue(flow)
        return fired

    def leads(self) -> bool:
        """Whether this scheduler holds the lease now."""
        with self.store.connect() as conn:
            row = conn.exec_driver_sql("SELECT holder, expires_at FROM leases WHERE name = "
                                       "'scheduler'").first()
        return row is not None and row[0] == self.holder and str(row[1]) > _iso(
            datetime.now(UTC))

    def serve(self, stop: threading.Event, tick: float = TICK_SECONDS) -> None:
        """Tick until `stop` is set; sweep every SWEEP_SECONDS while leading."""
        import time

        while not stop.is_set():
            try:
                self.tick()
                if self.sweep is not None and self.leads() and \
                        time.monotonic() - self._last_sweep >= SWEEP_SECONDS:
                    self._last_sweep = time.monotonic()
                    self.sweep()
            except Exception:
                log.exception("scheduler tick failed; trying again")
            stop.wait(tick)
