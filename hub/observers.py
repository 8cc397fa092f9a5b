"""The observers every sync run has, wherever it is started.

`hub sync`, `hub dlq replay`, a worker's job, a webhook, the dashboard's Run now and replay
buttons all build their engine with this list, so the audit trail and /metrics see every
run the same way (a run the dashboard started is counted like any other).
"""

from __future__ import annotations

from hub.audit import AuditObserver
from hub.config.model import Settings
from hub.metrics.observer import MetricsObserver
from hub.store import Store
from hub.sync.hooks import Observer


def run_observers(settings: Settings, store: Store) -> list[Observer]:
    """The audit trail and the metrics, observing runs of `settings` kept in `store`."""
    return [AuditObserver(store), MetricsObserver(settings, store)]
