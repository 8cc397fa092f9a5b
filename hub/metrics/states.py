"""The states the store-derived gauges export, judged by hub.health (the one definition the
dashboard uses too; its docstring has the rules).

    liaison_flow_failing / liaison_flow_stale   1 when the flow's state is failing / stale
                                                (a disabled flow is neither)
    liaison_flow_last_success_timestamp_seconds its newest run that went through (succeeded
                                                or partial)
    liaison_system_state, liaison_systems       each system's state, and how many per state

Pure functions: the collector reads the store.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from hub import health
from hub.config.model import FlowConfig, Settings


@dataclass(frozen=True)
class FlowRuns:
    """What the store says of one flow's runs and dead letters."""

    latest_status: str | None  # of the newest finished run
    latest_finished: datetime | None
    last_through: datetime | None  # newest run that succeeded or was partial
    new_dead: int = 0  # open dead letters first failed within hub.health.DEAD_WINDOW

    def evidence(self) -> health.FlowEvidence:
        """The same facts in the shape hub.health judges."""
        return health.FlowEvidence(self.latest_status, self.last_through, self.new_dead)


def parse_time(value: str | None) -> datetime | None:
    """A store timestamp (RFC 3339, Z) as an aware datetime; None when absent or unreadable."""
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def flow_state(flow: FlowConfig, runs: FlowRuns | None, now: datetime) -> str:
    """healthy, failing, stale or disabled (hub.health.judge_flow)."""
    evidence = runs.evidence() if runs else health.FlowEvidence()
    return health.judge_flow(flow, evidence, now).state


def system_states(settings: Settings, runs: dict[str, FlowRuns],
                  now: datetime) -> dict[str, str]:
    """The state of every declared system, in config order (hub.health.judge_system)."""
    evidence = {name: r.evidence() for name, r in runs.items()}
    _, systems = health.judge_all(settings, evidence, now)
    return {name: v.state for name, v in systems.items()}


def system_last_sync(settings: Settings, runs: dict[str, FlowRuns]) -> dict[str, datetime]:
    """When a run that went through last touched each system (systems never synced left out)."""
    return health.last_sync(settings, {name: r.last_through for name, r in runs.items()})
