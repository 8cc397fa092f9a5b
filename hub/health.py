"""The one definition of healthy / failing / stale / disconnected, and of "last success".

The dashboard and its JSON API (hub.insights.health) and the Prometheus gauges
(hub.metrics.collector: liaison_flow_*, liaison_system_*) both judge with these functions;
they differ only in how they read the evidence from the store. Pure: no I/O.

Words:

    went through     a finished run whose status is succeeded or partial (THROUGH). A partial
                     run delivered what it could and dead-lettered the rest: the flow runs.
    last success     when the flow's newest run that went through finished.
    dead letters     the flow's open dead letters first failed in the last DEAD_WINDOW
    growing          (24 hours). A record that keeps failing updates its one open dead letter,
                     so a single bad record stops counting after a day; new bad records keep
                     the flow failing.

A flow is, first rule that holds:

    disabled   `enabled: false` in the config: drawn, never judged (neither failing nor stale)
    failing    its newest finished run failed, or its dead letters are growing
    stale      no success since stale_since: with a schedule, since its STALE_SLOTS-th newest
               slot (it missed STALE_SLOTS runs in a row: 3 x the interval); without one (or
               with an unreadable one), in the last UNSCHEDULED_STALE (24 hours). A flow that
               never went through is stale ("never synced")
    healthy    otherwise

So a partial run counts as a success: it keeps the flow from being stale and sets its last
success. It makes the flow failing only while its dead letters are growing.

A system is, first rule that holds:

    disconnected  it has no connection, or no enabled flow uses it (a silo)
    failing       one of the enabled flows using it is failing
    stale         one of the enabled flows using it is stale
    healthy       otherwise

A system's last sync is the newest last success of any flow using it (paused ones too: their
runs did touch it); none when no such flow ever went through.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from croniter import croniter

from hub.config.model import FlowConfig, Settings

THROUGH = ("succeeded", "partial")
FINISHED = ("succeeded", "partial", "failed")
FLOW_STATES = ("healthy", "failing", "stale", "disabled")
SYSTEM_STATES = ("healthy", "failing", "stale", "disconnected")
STALE_SLOTS = 3
UNSCHEDULED_STALE = timedelta(hours=24)
DEAD_WINDOW = timedelta(hours=24)

# Why a flow or system is in its state (the dashboard turns these into sentences).
PAUSED = "paused"
LAST_RUN_FAILED = "last-run-failed"
DEAD_GROWING = "dead-letters-growing"
NEVER_SYNCED = "never-synced"
OVERDUE = "overdue"
NO_CONNECTION = "no-connection"
NO_ENABLED_FLOW = "no-enabled-flow"

_RANK = {"healthy": 0, "stale": 1, "failing": 2}


@dataclass(frozen=True)
class FlowEvidence:
    """What the store says of one flow, as far as its state needs it."""

    last_status: str | None = None  # of its newest finished run (succeeded|partial|failed)
    last_success: datetime | None = None  # when its newest run that went through finished
    new_dead: int = 0  # open dead letters first failed within DEAD_WINDOW


@dataclass(frozen=True)
class Verdict:
    """A state and the causes behind it (empty for healthy)."""

    state: str
    causes: tuple[str, ...] = ()


def went_through(status: str | None) -> bool:
    """Whether a run with this status counts as a success (succeeded or partial)."""
    return status in THROUGH


def _slot_before(schedule: str, now: datetime, n: int) -> datetime | None:
    """The n-th newest schedule slot at or before `now` (None for a bad expression)."""
    try:
        it = croniter(schedule, now)
        slot: datetime | None = None
        for _ in range(n):
            slot = it.get_prev(datetime)
    except (ValueError, KeyError):
        return None
    if slot is not None and slot.tzinfo is None:
        slot = slot.replace(tzinfo=UTC)
    return slot


def stale_since(flow: FlowConfig, now: datetime) -> datetime:
    """A last success before this moment is too old: the flow is stale."""
    if flow.schedule:
        slot = _slot_before(flow.schedule, now, STALE_SLOTS)
        if slot is not None:
            return slot
    return now - UNSCHEDULED_STALE


def judge_flow(flow: FlowConfig, evidence: FlowEvidence, now: datetime) -> Verdict:
    """A flow's state (rules in the module docstring)."""
    if not flow.enabled:
        return Verdict("disabled", (PAUSED,))
    failing = tuple(cause for cause, holds in (
        (LAST_RUN_FAILED, evidence.last_status == "failed"),
        (DEAD_GROWING, evidence.new_dead > 0)) if holds)
    if failing:
        return Verdict("failing", failing)
    if evidence.last_success is None:
        return Verdict("stale", (NEVER_SYNCED,))
    if evidence.last_success < stale_since(flow, now):
        return Verdict("stale", (OVERDUE,))
    return Verdict("healthy")


def flows_using(settings: Settings, system: str) -> list[FlowConfig]:
    """The enabled flows that read from or write to a system, in config order."""
    return [f for f in settings.flows.values() if f.enabled and system in f.systems]


def judge_system(settings: Settings, system: str, flow_states: Mapping[str, str]) -> Verdict:
    """A declared system's state from its connection and its enabled flows' states."""
    if settings.systems[system].connection is None:
        return Verdict("disconnected", (NO_CONNECTION,))
    used = flows_using(settings, system)
    if not used:
        return Verdict("disconnected", (NO_ENABLED_FLOW,))
    return Verdict(worst(flow_states.get(f.name, "stale") for f in used))


def worst(states: Iterable[str]) -> str:
    """The most urgent of some flow states: failing, then stale, then healthy."""
    return max(states, key=lambda s: _RANK.get(s, 0), default="healthy")


def judge_all(settings: Settings, evidence: Mapping[str, FlowEvidence],
              now: datetime) -> tuple[dict[str, Verdict], dict[str, Verdict]]:
    """(every flow's verdict, every system's verdict), in config order."""
    flows = {name: judge_flow(f, evidence.get(name, FlowEvidence()), now)
             for name, f in settings.flows.items()}
    states = {name: v.state for name, v in flows.items()}
    systems = {name: judge_system(settings, name, states) for name in settings.systems}
    return flows, systems


def last_sync(settings: Settings, last_success: Mapping[str, datetime | None]
              ) -> dict[str, datetime]:
    """Per system, the newest last success of any flow using it (never synced: left out)."""
    out: dict[str, datetime] = {}
    for flow in settings.flows.values():
        when = last_success.get(flow.name)
        if when is None:
            continue
        for system in flow.systems:
            if system not in out or out[system] < when:
                out[system] = when
    return out
