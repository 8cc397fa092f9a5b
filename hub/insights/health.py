"""The state of every flow and system, and the silo map built from them.

A flow is, in this order of precedence:

    disabled   `enabled: false` in the config (drawn, never judged)
    failing    its last finished run failed, or dead letters are rising: records of it
               dead-lettered in the last 24 hours are still open
    stale      its last success is older than it should be: with a schedule, no success
               since the STALE_SLOTS-th newest slot of that schedule (it missed
               STALE_SLOTS runs in a row: 3 x the interval); without one, none in the last
               24 hours. A flow that never succeeded is stale ("never synced")
    healthy    otherwise

A system is:

    disconnected  it has no connection, or no enabled flow uses it (a silo)
    failing       one of its enabled flows is failing
    stale         one of its enabled flows is stale (and none is failing)
    healthy       otherwise

Coverage is connected systems / declared systems, and the kinds of record (entities) that
flow between connected systems out of the canonical ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from croniter import croniter

from hub.config.model import CATEGORIES, FlowConfig, Settings
from hub.config.semantics import ENTITIES
from hub.insights.facts import DAY, Facts, parse_iso

STALE_SLOTS = 3
STATES = ("healthy", "failing", "stale", "disconnected")
_RANK = {"healthy": 0, "stale": 1, "failing": 2}


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


def _slot_before(schedule: str, now: datetime, n: int) -> datetime | None:
    """The n-th newest schedule slot at or before `now` (None for a bad expression)."""
    try:
        it = croniter(schedule, now)
        slot: datetime | None = None
        for _ in range(n):
            slot = it.get_prev(datetime)
        return slot
    except (ValueError, KeyError):
        return None


def stale_since(flow: FlowConfig, now: datetime) -> datetime:
    """A success before this moment is too old: the flow is stale."""
    if flow.schedule:
        slot = _slot_before(flow.schedule, now, STALE_SLOTS)
        if slot is not None:
            return slot
    return now - DAY


def _expected(flow: FlowConfig) -> str:
    if flow.schedule:
        return f"it should run on the schedule '{flow.schedule}' and missed {STALE_SLOTS} runs"
    return "it has no schedule and has not succeeded in the last 24 hours"


def flow_view(flow: FlowConfig, facts: Facts) -> FlowView:
    """Judge one flow from its facts (rules in the module docstring)."""
    ff = facts.flow(flow.name)
    groups = [g for g in facts.dead if g.flow == flow.name]
    open_dead, new_dead = sum(g.total for g in groups), sum(g.new for g in groups)
    finished = [r for r in ff.recent if r.finished]
    failures = sum(1 for r in finished if r.status == "failed")
    last = ff.last_finished
    reasons: list[str] = []
    if not flow.enabled:
        state = "disabled"
        reasons.append("paused in the config (enabled: false)")
    else:
        if last is not None and last.status == "failed":
            reasons.append(f"its last run (run {last.id}) failed: "
                           f"{last.error or 'no reason was recorded'}")
        if new_dead:
            reasons.append(f"{new_dead} record{'s' if new_dead != 1 else ''} dead-lettered in "
                           "the last 24 hours still need attention")
        if reasons:
            state = "failing"
        else:
            success = parse_iso(ff.last_success)
            if success is None:
                state = "stale"
                reasons.append("it has never synced successfully")
            elif success < stale_since(flow, facts.now):
                state = "stale"
                reasons.append(f"last success {ff.last_success[:16] if ff.last_success else ''}"
                               f" UTC; {_expected(flow)}")
            else:
                state = "healthy"
    return FlowView(flow.name, flow.entity, flow.sources, flow.targets, flow.direction,
                    flow.schedule, flow.enabled, state, tuple(reasons), ff.last_success,
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
    """Every declared system, silos included, in config order."""
    flows = flows if flows is not None else {
        n: flow_view(f, facts) for n, f in settings.flows.items()}
    out = []
    for name, system in settings.systems.items():
        used = [f for f in settings.flows.values() if f.enabled and name in f.systems]
        views = [flows[f.name] for f in used]
        reasons: list[str] = []
        if system.connection is None:
            state = "disconnected"
            reasons.append("no connection is configured: it is a silo")
        elif not used:
            state = "disconnected"
            reasons.append("connected, but no enabled flow uses it")
        else:
            state = max((v.state for v in views), key=lambda s: _RANK.get(s, 0))
            reasons.extend(f"flow {v.name}: {r}" for v in views if v.state == state
                           for r in v.reasons)
        times = [v.last_success for v in views if v.last_success]
        out.append(SystemView(
            name, system.category, system.owner, system.description,
            system.connection.connector if system.connection else None, state,
            tuple(reasons), tuple(f.name for f in used),
            _entities(used, name, inbound=True), _entities(used, name, inbound=False),
            max(times) if times else None, int(facts.today.get(name, 0))))
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
