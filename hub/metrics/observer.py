"""Metrics as an observer of the pipeline, like the audit trail: the engine holds none of this.

Records are counted when the engine reports them committed (`records_committed`), so a page
rolled back and read again is counted once; runs when they finish. Vendor calls are seen
through hub.http's call listener: transient failures (retries, by cause) and the requests
left in the vendor's rate-limit window.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime

from hub.config.model import Settings
from hub.errors import HubError
from hub.http import CallOutcome, add_call_listener
from hub.metrics.series import series
from hub.metrics.states import parse_time
from hub.store import Store
from hub.sync.hooks import Observer, RunCounts, RunInfo

# RunCounts column -> (series attribute) for records read into the hub ...
_IN = {"read": "read", "created": "written", "updated": "written", "unchanged": "unchanged",
       "skipped": "skipped", "dead_lettered": "dead_lettered"}
# ... and for records delivered to a target.
_OUT = {"written": "written", "write_unchanged": "unchanged", "write_failed": "dead_lettered"}
_PAREN = re.compile(r"\(([^()]+)\)")


class MetricsObserver(Observer):
    """Counts records, runs and vendor calls into this process's metrics."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self.series = series()
        _calls.settings = settings
        add_call_listener(_calls)

    def connector_of(self, system: str) -> str:
        """The connector of a system's connection ("" when it has none)."""
        found = self.settings.systems.get(system)
        return found.connection.connector if found and found.connection else ""

    def records_committed(self, run: RunInfo, system: str, direction: str,
                          tally: Mapping[str, int]) -> None:
        """Add a committed batch's gains to the record counters."""
        columns = _IN if direction == "in" else _OUT
        labels = (system, self.connector_of(system), run.flow, run.entity, direction)
        for column, gained in tally.items():
            attr = columns.get(column)
            if attr is not None and gained > 0:
                getattr(self.series, attr).labels(*labels).inc(gained)

    def run_finished(self, run: RunInfo, counts: RunCounts, status: str) -> None:
        """Count the run and how long it took since it started (over all its steps)."""
        if run.dry_run or not run.run_id:
            return
        self.series.runs.labels(run.flow, run.entity, status).inc()
        try:
            with self.store.connect() as conn:
                row = self.store.get_run(conn, run.run_id)
        except HubError:
            return  # the run's end is counted; its duration is lost with the store
        started = parse_time(str(row.started_at)) if row is not None else None
        if started is not None:
            seconds = max(0.0, (datetime.now(UTC) - started).total_seconds())
            self.series.run_duration.labels(run.flow, run.entity).observe(seconds)


class _CallMetrics:
    """hub.http's listener: one per process, naming systems from the latest settings."""

    def __init__(self) -> None:
        self._settings: Settings | None = None
        self._names: dict[str, tuple[str, str]] = {}

    @property
    def settings(self) -> Settings | None:
        """The config whose systems name the clients."""
        return self._settings

    @settings.setter
    def settings(self, value: Settings) -> None:
        if value is not self._settings:
            self._settings, self._names = value, {}

    def _labels(self, label: str) -> tuple[str, str]:
        found = self._names.get(label)
        if found is None:
            # Clients are labelled "HubSpot (crm)" or "Xero (books) token endpoint": the
            # system's name is the one in parentheses.
            systems = self._settings.systems if self._settings is not None else {}
            found = (label, "")
            for name in reversed(_PAREN.findall(label)):
                if name in systems:
                    conn = systems[name].connection
                    found = (name, conn.connector if conn else "")
                    break
            self._names[label] = found
        return found

    def __call__(self, outcome: CallOutcome) -> None:
        system, connector = self._labels(outcome.system)
        s = series()
        if outcome.failure is not None:
            s.retries.labels(system, connector, outcome.failure).inc()
        for header, remaining in outcome.quota.items():
            s.quota.labels(system, connector, header).set(remaining)


_calls = _CallMetrics()
