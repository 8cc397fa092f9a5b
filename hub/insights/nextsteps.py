"""What to do next, worked out from measured data, most urgent first.

    fix-flow        a flow keeps failing: at least FAILING_RUNS failed runs among its last
                    RECENT_RUNS finished runs, or its last run failed; ranked by failures
    data-quality    an entity whose open dead letters are at least POOR_QUALITY of its
                    records (dead / (live records + dead)); ranked by that share, with the
                    part that failed validation or mapping shown apart
    stale-flow      an enabled flow that stopped syncing (see hub.insights.health)
    assign-owner    a declared system with no owner
    connect-silo    a disconnected system, ranked by what connecting it would join: live
                    records of the entities it would share with the enabled flows between
                    connected systems (its connector's entities when it has a connection,
                    else the usual entities of its category, CATEGORY_ENTITIES), then by
                    those flows. The text says how many of them are failing or stale
                    (hub.health): only healthy ones are called syncing
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hub import registry
from hub.config.model import Settings
from hub.config.semantics import ENTITIES
from hub.errors import HubError
from hub.insights.facts import RECENT_RUNS, Facts
from hub.insights.health import FlowView, SiloMap, SystemView, silo_map

FAILING_RUNS = 2
POOR_QUALITY = 0.01
# What a system of each category usually holds, for silos whose connector is not known yet.
CATEGORY_ENTITIES: dict[str, tuple[str, ...]] = {
    "crm": ("company", "contact", "deal"),
    "accounting": ("company", "contact", "invoice", "payment", "product"),
    "email": ("contact", "message"),
    "project": ("project", "task"),
    "files": ("company", "contact", "product"),
    "other": (),
}
INVALID_STAGES = ("map", "validate")
PRIORITY = ("fix-flow", "data-quality", "stale-flow", "assign-owner", "connect-silo")


@dataclass(frozen=True)
class Step:
    """One recommended action with the measurement behind it."""

    kind: str  # one of PRIORITY
    subject: str  # the flow, entity or system it is about
    title: str  # what to do, one sentence
    detail: str  # why: the measured figures
    rank: int  # 1-based order within its kind
    link: str  # the dashboard page where it is done
    figures: dict[str, Any] = field(default_factory=dict)


def _sentences(parts: tuple[str, ...]) -> str:
    """Reasons as sentences: capitalised, each ending in a full stop."""
    out = []
    for p in parts:
        p = p[:1].upper() + p[1:]
        out.append(p if p.endswith((".", ")")) else p + ".")
    return " ".join(out)


def _s(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def failing_flows(flows: tuple[FlowView, ...]) -> list[Step]:
    """Flows that keep failing, most failures first."""
    bad = [f for f in flows if f.enabled and (
        f.failures >= FAILING_RUNS or f.last_run_status == "failed")]
    bad.sort(key=lambda f: (-f.failures, f.name))
    return [Step("fix-flow", f.name, f"Fix flow {f.name}: it keeps failing",
                 f"{f.failures} of its last {f.recent_runs} finished runs failed "
                 f"(looked at up to {RECENT_RUNS}). " + _sentences(f.reasons),
                 i, f"/flows/{f.name}", {"failures": f.failures, "runs": f.recent_runs})
            for i, f in enumerate(bad, 1)]


def quality(facts: Facts) -> list[Step]:
    """Entities with a poor share of dead-lettered records, worst first."""
    rows = []
    for entity in ENTITIES:
        groups = [g for g in facts.dead if g.entity == entity]
        dead = sum(g.total for g in groups)
        if not dead:
            continue
        invalid = sum(g.total for g in groups if g.stage in INVALID_STAGES)
        share = dead / (facts.records.get(entity, 0) + dead)
        if share >= POOR_QUALITY:
            rows.append((share, entity, dead, invalid))
    rows.sort(key=lambda r: (-r[0], r[1]))
    return [Step("data-quality", entity,
                 f"Clean up {entity} records: {share:.1%} could not be synced",
                 f"{_s(dead, 'open dead letter')} against "
                 f"{_s(facts.records.get(entity, 0), 'synced record')}; {invalid:,} of them "
                 "failed validation or mapping. Open Dead letters to see the reasons.",
                 i, f"/dead-letters?entity={entity}",
                 {"share": round(share, 4), "dead": dead, "invalid": invalid,
                  "records": facts.records.get(entity, 0)})
            for i, (share, entity, dead, invalid) in enumerate(rows, 1)]


def stale_flows(flows: tuple[FlowView, ...]) -> list[Step]:
    """Enabled flows that stopped syncing."""
    stale = [f for f in flows if f.state == "stale"]
    return [Step("stale-flow", f.name, f"Check flow {f.name}: it has stopped syncing",
                 _sentences(f.reasons), i, f"/flows/{f.name}",
                 {"last_success": f.last_success})
            for i, f in enumerate(stale, 1)]


def ownerless(systems: tuple[SystemView, ...]) -> list[Step]:
    """Systems nobody is named as owner of, in config order."""
    missing = [s for s in systems if s.owner_missing]
    return [Step("assign-owner", s.name, f"Name an owner for {s.name}",
                 f"{s.name} ({s.category}) has no owner in the config: nobody is asked when "
                 "it breaks. Add `owner:` under it in hub.yaml.", i, "/silo-map",
                 {"category": s.category})
            for i, s in enumerate(missing, 1)]


def candidate_entities(settings: Settings, system: str) -> tuple[str, ...]:
    """The entities a system would bring: its connector's, else its category's usual ones."""
    sys_ = settings.systems[system]
    if sys_.connection is not None:
        try:
            caps = registry.get(sys_.connection.connector).capabilities
            return tuple(e for e in ENTITIES if e in caps.entities)
        except HubError:
            pass  # an unknown connector: `hub check` reports it; guess by category
    return CATEGORY_ENTITIES.get(sys_.category, ())


def _flows_text(joins: list[str], states: dict[str, str]) -> str:
    """'2 enabled flows (1 syncing, 1 failing)', '1 enabled flow (stale)': the flows a silo
    would join, by state; only a healthy flow is called syncing."""
    counts = {s: sum(1 for f in joins if states.get(f) == s) for s in ("failing", "stale")}
    counts = {"syncing": len(joins) - sum(counts.values()), **counts}
    parts = [s if len(joins) == 1 else f"{n:,} {s}" for s, n in counts.items() if n]
    return f"{_s(len(joins), 'enabled flow')} ({', '.join(parts)})"


def silos_to_connect(settings: Settings, facts: Facts, smap: SiloMap) -> list[Step]:
    """Disconnected systems ranked by the records and flows connecting them would join."""
    flowing = [f for f in settings.flows.values() if f.enabled
               and all(settings.systems[s].connection is not None for s in f.systems)]
    scored = []
    for s in smap.systems:
        if s.state != "disconnected":
            continue
        wanted = candidate_entities(settings, s.name)
        joins = [f for f in flowing if f.entity in wanted]
        shared = tuple(dict.fromkeys(f.entity for f in joins))
        records = sum(facts.records.get(e, 0) for e in shared)
        scored.append((records, [f.name for f in joins], s, shared, wanted))
    scored.sort(key=lambda x: (-x[0], -len(x[1]), x[2].name))
    states = {f.name: f.state for f in smap.flows}
    steps = []
    for i, (records, names, s, shared, wanted) in enumerate(scored, 1):
        how = ("give it a flow" if s.connector else "give it a connection and a flow")
        if shared:
            detail = (f"It would share {', '.join(shared)} with "
                      f"{_flows_text(names, states)} and join {_s(records, 'record')} "
                      "already synced.")
        elif wanted:
            detail = (f"No enabled flow carries its records yet ({', '.join(wanted)}): "
                      "connecting it starts a new kind of record flowing.")
        else:
            detail = "Its category says nothing about which records it holds."
        steps.append(Step("connect-silo", s.name, f"Connect {s.name} ({s.category}): {how}",
                          detail, i, "/silo-map",
                          {"records": records, "flows": len(names),
                           "entities": list(shared)}))
    return steps


def next_steps(settings: Settings, facts: Facts, smap: SiloMap | None = None) -> list[Step]:
    """Every recommended step, most urgent kind first (PRIORITY), ranked within a kind."""
    smap = smap or silo_map(settings, facts)
    return (failing_flows(smap.flows) + quality(facts) + stale_flows(smap.flows)
            + ownerless(smap.systems) + silos_to_connect(settings, facts, smap))
