"""The measurements the dashboard's judgements are made from, read from the store at once.

`gather` issues a handful of small indexed queries (per flow: its newest runs, when it last
went through and this week's run statuses; per system: today's audit events; open dead letters grouped; live
records per entity). Everything in hub.insights.health, .nextsteps and .maturity is then a
pure function of the settings and these facts, so it can be tested with facts built by hand.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from hub.config.model import Settings
from hub.health import DEAD_WINDOW, FINISHED
from hub.store import Store

RECENT_RUNS = 10  # runs per flow looked at for "keeps failing"
WEEK = timedelta(days=7)


def iso(when: datetime) -> str:
    """A datetime in the store's timestamp form (RFC 3339 UTC, microseconds)."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso(text: str | None) -> datetime | None:
    """A store timestamp as an aware datetime (None for None or garbage)."""
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


@dataclass(frozen=True)
class RunFact:
    """What one run did, as far as the judgements need it."""

    id: int
    status: str  # running|queued|succeeded|partial|failed
    started_at: str
    finished_at: str | None = None
    error: str | None = None
    dead: int = 0  # records dead-lettered while reading or writing
    trigger: str = "manual"

    @property
    def finished(self) -> bool:
        """Whether the run has ended (succeeded, partial or failed)."""
        return self.status in FINISHED


@dataclass(frozen=True)
class FlowFacts:
    """One flow's run history."""

    recent: tuple[RunFact, ...] = ()  # newest first, at most RECENT_RUNS
    last_success: str | None = None  # when its newest run that went through (succeeded or
    #                                   partial, see hub.health) finished
    week: Mapping[str, int] = field(default_factory=dict)  # status -> runs started this week

    @property
    def last_finished(self) -> RunFact | None:
        """The newest run that has ended."""
        return next((r for r in self.recent if r.finished), None)


@dataclass(frozen=True)
class DeadGroup:
    """Open dead letters of one flow, system, entity and stage."""

    flow: str
    system: str
    entity: str
    stage: str
    total: int
    new: int  # first failed within hub.health.DEAD_WINDOW (the last 24 hours)


@dataclass(frozen=True)
class Facts:
    """Everything measured, at `now`."""

    now: datetime
    flows: Mapping[str, FlowFacts] = field(default_factory=dict)
    dead: tuple[DeadGroup, ...] = ()
    records: Mapping[str, int] = field(default_factory=dict)  # entity -> live records
    today: Mapping[str, int] = field(default_factory=dict)  # system -> audit events today

    def flow(self, name: str) -> FlowFacts:
        """A flow's facts (empty when it never ran)."""
        return self.flows.get(name, FlowFacts())


def _run_fact(row: Any) -> RunFact:
    return RunFact(id=int(row.id), status=str(row.status), started_at=str(row.started_at),
                   finished_at=row.finished_at, error=row.error,
                   dead=int(row.dead_lettered or 0) + int(row.write_failed or 0),
                   trigger=str(row.trigger or "manual"))


def gather(settings: Settings, store: Store, now: datetime | None = None) -> Facts:
    """Read the facts for every declared flow and system."""
    now = now or datetime.now(UTC)
    week_ago, day_ago = iso(now - WEEK), iso(now - DEAD_WINDOW)
    midnight = iso(now.replace(hour=0, minute=0, second=0, microsecond=0))
    with store.connect() as conn:
        flows = {name: FlowFacts(
            recent=tuple(_run_fact(r) for r in store.list_runs(conn, name, RECENT_RUNS)),
            # the same query the metrics collector reads "last success" with
            last_success=store.flow_run_times(conn, name)[2],
            week=store.run_status_counts(conn, name, week_ago)) for name in settings.flows}
        dead = tuple(DeadGroup(str(r.flow), str(r.system), str(r.entity), str(r.stage),
                               int(r.total), int(r.new or 0))
                     for r in store.dead_letter_summary(conn, day_ago))
        records = store.live_records_by_entity(conn)
        today = {name: store.audit_count_since(conn, name, midnight)
                 for name in settings.systems}
    return Facts(now=now, flows=flows, dead=dead, records=records, today=today)
