"""The state of every flow and system, and the silo map built from them.

The states and "last success" are defined once, in hub.health (read its docstring): a run
that went through is one that succeeded or was partial; a flow is disabled, failing (newest
finished run failed, or dead letters first failed in the last 24 hours are still open),
stale (no success since its STALE_SLOTS-th newest schedule slot, or in 24 hours without a
schedule; never synced) or healthy; a system is disconnected (no connection, or no enabled
flow uses it), failing, stale or healthy after its enabled flows. The Prometheus gauges
judge with the same functions. This module reads the evidence from the Facts and says the
causes in words.

Coverage is connected systems / declared systems, and the kinds of record (entities) that
flow between connected systems out of the canonical ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from hub import health
from hub.config.model import CATEGORIES, FlowConfig, Settings
from hub.config.semantics import ENTITIES
from hub.health import STALE_SLOTS, FlowEvidence
from hub.insights.facts import Facts, FlowFacts, iso, parse_iso

STATES = health.SYSTEM_STATES


@dataclass(frozen=True)
class FlowView:
    """A flow as the dashboard shows it."""

    name: str
    entity: str
    sources: tuple[str, ...]
    targets: tuple[str, ...]
    direction: str
    schedule: str | None
    enabled: bool
    state: str  # healthy|failing|stale|disabled
    reasons: tuple[str, ...]  # why it is in that state, in words
    last_success: str | None
    last_run_status: str | None
    failures: int  # failed runs among the recent ones
    recent_runs: int
    open_dead: int
    new_dead: int


@dataclass(frozen=True)
class SystemView:
    """A declared system as the dashboard shows it."""

    name: str
    category: str
    owner: str | None
    description: str | None
    connector: str | None
    state: str  # healthy|failing|stale|disconnected
    reasons: tuple[str, ...]
    flows: tuple[str, ...]  # enabled flows using it
    entities_in: tuple[str, ...]  # kinds of record written to it
    entities_out: tuple[str, ...]  # kinds of record read from it
    last_sync: str | None  # newest success of its flows
    records_today: int  # audit events about it since 00:00 UTC

    @property
    def owner_missing(self) -> bool:
        """Whether nobody is named as its owner."""
        return not (self.owner or "").strip()


@dataclass(frozen=True)
class Edge:
    """One source -> target leg of a flow on the silo map."""

    flow: str
    entity: str
    source: str
    target: str
    two_way: bool
    state: str


@dataclass(frozen=True)
class Coverage:
    """How much of the declared landscape is connected."""

    connected: int
    declared: int
    entities_covered: tuple[str, ...]
    entities_total: int = len(ENTITIES)

    @property
    def ratio(self) -> float:
        """connected / declared (0 with nothing declared)."""
        return self.connected / self.declared if self.declared else 0.0


@dataclass(frozen=True)
class SiloMap:
    """Systems by category, flows as edges, and the coverage figure."""

    categories: tuple[str, ...]  # in CATEGORIES order, only those with systems
    systems: tuple[SystemView, ...]
    flows: tuple[FlowView, ...]
    edges: tuple[Edge, ...]
    coverage: Coverage
    by_state: dict[str, int] = field(default_factory=dict)


def _expected(flow: FlowConfig) -> str:
    if flow.schedule:
        return f"it should run on the schedule '{flow.schedule}' and missed {STALE_SLOTS} runs"
    return "it has no schedule and has not succeeded in the last 24 hours"


def evidence(flow: str, facts: Facts) -> FlowEvidence:
    """What the facts say of one flow, in the shape hub.health judges."""
    ff = facts.flow(flow)
    last = ff.last_finished
    return FlowEvidence(last.status if last else None, parse_iso(ff.last_success),
                        sum(g.new for g in facts.dead if g.flow == flow))


def _reason(cause: str, flow: FlowConfig, ff: FlowFacts, new_dead: int) -> str:
    last = ff.last_finished
    if cause == health.PAUSED:
        return "paused in the config (enabled: false)"
    if cause == health.LAST_RUN_FAILED and last is not None:
        return f"its last run (run {last.id}) failed: {last.error or 'no reason was recorded'}"
    if cause == health.DEAD_GROWING:
        return (f"{new_dead} record{'s' if new_dead != 1 else ''} dead-lettered in the last "
                "24 hours still need attention")
    if cause == health.NEVER_SYNCED:
        return "it has never synced successfully (no run succeeded or was partial)"
    return f"last success {(ff.last_success or '')[:16]} UTC; {_expected(flow)}"


def flow_view(flow: FlowConfig, facts: Facts) -> FlowView:
    """Judge one flow from its facts (rules in hub.health)."""
    ff = facts.flow(flow.name)
    groups = [g for g in facts.dead if g.flow == flow.name]
    open_dead, new_dead = sum(g.total for g in groups), sum(g.new for g in groups)
    finished = [r for r in ff.recent if r.finished]
    failures = sum(1 for r in finished if r.status == "failed")
    last = ff.last_finished
    verdict = health.judge_flow(flow, evidence(flow.name, facts), facts.now)
    reasons = tuple(_reason(c, flow, ff, new_dead) for c in verdict.causes)
    return FlowView(flow.name, flow.entity, flow.sources, flow.targets, flow.direction,
                    flow.schedule, flow.enabled, verdict.state, reasons, ff.last_success,
                    last.status if last else None, failures, len(finished), open_dead,
                    new_dead)


def _entities(flows: list[FlowConfig], name: str, *, inbound: bool) -> tuple[str, ...]:
    out = []
    for f in flows:
        side = f.targets if inbound else f.sources
        if name in side or (f.direction == "two-way" and name in f.systems):
            out.append(f.entity)
    return tuple(dict.fromkeys(out))


def system_views(settings: Settings, facts: Facts,
                 flows: dict[str, FlowView] | None = None) -> list[SystemView]:
    """Every declared system, silos included, in config order (rules in hub.health)."""
    flows = flows if flows is not None else {
        n: flow_view(f, facts) for n, f in settings.flows.items()}
    states = {n: v.state for n, v in flows.items()}
    synced = health.last_sync(settings, {n: parse_iso(facts.flow(n).last_success)
                                         for n in settings.flows})
    out = []
    for name, system in settings.systems.items():
        used = health.flows_using(settings, name)
        verdict = health.judge_system(settings, name, states)
        reasons: list[str] = []
        if health.NO_CONNECTION in verdict.causes:
            reasons.append("no connection is configured: it is a silo")
        elif health.NO_ENABLED_FLOW in verdict.causes:
            reasons.append("connected, but no enabled flow uses it")
        else:
            reasons.extend(f"flow {flows[f.name].name}: {r}" for f in used
                           if flows[f.name].state == verdict.state
                           for r in flows[f.name].reasons)
        when = synced.get(name)
        out.append(SystemView(
            name, system.category, system.owner, system.description,
            system.connection.connector if system.connection else None, verdict.state,
            tuple(reasons), tuple(f.name for f in used),
            _entities(used, name, inbound=True), _entities(used, name, inbound=False),
            iso(when) if when else None, int(facts.today.get(name, 0))))
    return out


def coverage(settings: Settings, systems: list[SystemView]) -> Coverage:
    """Connected systems out of the declared ones; entities flowing between them."""
    connected = {s.name for s in systems if s.state != "disconnected"}
    entities = [f.entity for f in settings.flows.values()
                if f.enabled and set(f.systems) <= connected]
    ordered = tuple(e for e in ENTITIES if e in set(entities))
    return Coverage(len(connected), len(systems), ordered)


def silo_map(settings: Settings, facts: Facts) -> SiloMap:
    """The whole map: categories as columns, systems as nodes, flows as edges."""
    flows = {n: flow_view(f, facts) for n, f in settings.flows.items()}
    systems = system_views(settings, facts, flows)
    edges = []
    for f in settings.flows.values():
        seen: set[frozenset[str]] = set()
        for src in f.sources:
            for dst in f.targets:
                pair = frozenset((src, dst))
                if src == dst or (f.direction == "two-way" and pair in seen):
                    continue
                seen.add(pair)
                edges.append(Edge(f.name, f.entity, src, dst, f.direction == "two-way",
                                  flows[f.name].state))
    used = {s.category for s in systems}
    by_state = {s: sum(1 for v in systems if v.state == s) for s in STATES}
    return SiloMap(tuple(c for c in CATEGORIES if c in used), tuple(systems),
                   tuple(flows.values()), tuple(edges), coverage(settings, systems), by_state)


def since_text(when: str | None, now: datetime) -> str:
    """'5 minutes ago', '3 hours ago', '2 days ago' or 'never'."""
    at = parse_iso(when)
    if at is None:
        return "never"
    secs = max(0, int((now - at) / timedelta(seconds=1)))
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if secs >= size:
            n = secs // size
            return f"{n} {unit}{'s' if n != 1 else ''} ago"
    return "just now"
