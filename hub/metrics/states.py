"""Which state each declared system is in, from the config and the store's runs.

    disconnected   the system has no connection: a silo, listed but not synced
    failing        the newest finished run of an enabled flow touching it failed
    stale          connected, but no enabled flow touches it, or one of them has not gone
                   through (succeeded or partial) recently: since the second-newest slot of
                   its schedule, or within STALE_UNSCHEDULED for a flow without a schedule
    healthy        connected, and every enabled flow touching it runs and goes through

A partial run (some records dead-lettered) counts as gone through: dead letters are reported
by their own series. Pure functions: the caller reads the store.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from croniter import croniter

from hub.config.model import FlowConfig, Settings

STALE_UNSCHEDULED = timedelta(hours=24)


@dataclass(frozen=True)
class FlowRuns:
    """What the store says of one flow's runs."""

    latest_status: str | None  # of the newest finished run
    latest_finished: datetime | None
    last_through: datetime | None  # newest run that succeeded or was partial


def parse_time(value: str | None) -> datetime | None:
    """A store timestamp (RFC 3339, Z) as an aware datetime; None when absent or unreadable."""
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def stale_since(flow: FlowConfig, now: datetime) -> datetime:
    """A flow is stale when it has not gone through since this time.

    For a scheduled flow: its second-newest slot, so a run still working on the newest slot
    is not yet late. Without a schedule: STALE_UNSCHEDULED ago.
    """
    if not flow.schedule:
        return now - STALE_UNSCHEDULED
    slots = croniter(flow.schedule, now)
    slots.get_prev(datetime)
    second: datetime = slots.get_prev(datetime)
    return second if second.tzinfo else second.replace(tzinfo=UTC)


def flow_stale(flow: FlowConfig, runs: FlowRuns | None, now: datetime) -> bool:
    """Whether an enabled flow has not gone through recently enough (never counts)."""
    if not flow.enabled:
        return False
    through = runs.last_through if runs else None
    return through is None or through < stale_since(flow, now)


def flow_failing(runs: FlowRuns | None) -> bool:
    """Whether the flow's newest finished run failed."""
    return runs is not None and runs.latest_status == "failed"


def system_states(settings: Settings, runs: dict[str, FlowRuns],
                  now: datetime) -> dict[str, str]:
    """The state of every declared system, in config order."""
    out: dict[str, str] = {}
    for name, system in settings.systems.items():
        if system.connection is None:
            out[name] = "disconnected"
            continue
        flows = [f for f in settings.flows.values() if f.enabled and name in f.systems]
        if any(flow_failing(runs.get(f.name)) for f in flows):
            out[name] = "failing"
        elif not flows or any(flow_stale(f, runs.get(f.name), now) for f in flows):
            out[name] = "stale"
        else:
            out[name] = "healthy"
    return out


def system_last_sync(settings: Settings, runs: dict[str, FlowRuns]) -> dict[str, datetime]:
    """When a run that went through last touched each system (systems never synced left out)."""
    out: dict[str, datetime] = {}
    for flow in settings.flows.values():
        through = runs.get(flow.name)
        if through is None or through.last_through is None:
            continue
        for system in flow.systems:
            if system not in out or out[system] < through.last_through:
                out[system] = through.last_through
    return out
