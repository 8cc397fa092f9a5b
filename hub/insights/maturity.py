"""Where the company stands, as one of five phases, from measured criteria.

The measurements (all shown on the dashboard next to their thresholds):

    coverage         connected systems / declared systems (hub.insights.health)
    failure rate     failed runs / finished runs started in the last 7 days (0 with no runs)
    owners           systems with an owner / declared systems
    dead-letter      open dead letters / (live canonical records + open dead letters)
      share
    automation       enabled flows that run by themselves (a cron schedule, or a source
                     whose connector pushes webhooks) / enabled flows
    synced           at least one run has delivered records (succeeded, or partial: some
                     records dead-lettered)

The phases form a ladder: a company is in the highest phase whose criteria, and those of
every phase below it, are all met.

    1 duct-taped basics      (no criteria: where everyone starts)
    2 growing pains          >= 2 systems connected, and a sync has succeeded
    3 team silos             failure rate <= 20%, dead-letter share <= 5%
                             (syncs work, but many systems are still islands)
    4 connected foundations  coverage >= 50%, owners >= 80%, failure rate <= 10%,
                             dead-letter share <= 2%
    5 ready to automate      coverage >= 80%, owners = 100%, failure rate <= 5%,
                             dead-letter share <= 1%, automation >= 80%
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from hub import registry
from hub.config.model import Settings
from hub.errors import HubError
from hub.insights.facts import Facts
from hub.insights.health import SiloMap, silo_map

PHASES = ("duct-taped basics", "growing pains", "team silos", "connected foundations",
          "ready to automate")


@dataclass(frozen=True)
class Measures:
    """The figures the phases are judged on."""

    connected: int
    declared: int
    coverage: float
    failure_rate: float
    finished_runs: int
    owners: float
    dead_share: float
    automation: float
    synced: bool


@dataclass(frozen=True)
class Criterion:
    """One threshold of one phase, with the measured value and whether it is met."""

    phase: int
    name: str
    wanted: str  # the threshold in words, e.g. ">= 50%"
    measured: str  # the value in words
    met: bool


@dataclass(frozen=True)
class Maturity:
    """The phase reached, every criterion, and what the next phase still needs."""

    phase: int  # 1..5
    name: str
    measures: Measures
    criteria: tuple[Criterion, ...]

    @property
    def missing(self) -> tuple[Criterion, ...]:
        """Unmet criteria of the next phase (empty in the last phase)."""
        return tuple(c for c in self.criteria if c.phase == self.phase + 1 and not c.met)


def _pct(x: float) -> str:
    return f"{x:.0%}" if x in (0.0, 1.0) or x >= 0.1 else f"{x:.1%}"


def _automated(settings: Settings, system: str) -> bool:
    sys_ = settings.systems.get(system)
    if sys_ is None or sys_.connection is None:
        return False
    try:
        return bool(registry.get(sys_.connection.connector).capabilities.webhooks)
    except HubError:
        return False


def measure(settings: Settings, facts: Facts, smap: SiloMap) -> Measures:
    """The figures, from the silo map and the facts."""
    declared = len(smap.systems)
    finished = sum(n for ff in facts.flows.values() for s, n in ff.week.items()
                   if s in ("succeeded", "partial", "failed"))
    failed = sum(ff.week.get("failed", 0) for ff in facts.flows.values())
    owned = sum(1 for s in smap.systems if not s.owner_missing)
    dead = sum(g.total for g in facts.dead)
    records = sum(facts.records.values())
    enabled = [f for f in settings.flows.values() if f.enabled]
    auto = sum(1 for f in enabled
               if f.schedule or any(_automated(settings, s) for s in f.sources))
    return Measures(
        connected=smap.coverage.connected, declared=declared, coverage=smap.coverage.ratio,
        failure_rate=failed / finished if finished else 0.0, finished_runs=finished,
        owners=owned / declared if declared else 0.0,
        dead_share=dead / (records + dead) if records + dead else 0.0,
        automation=auto / len(enabled) if enabled else 0.0,
        synced=any(ff.last_success or any(r.status == "partial" for r in ff.recent)
                   for ff in facts.flows.values()))


Check = tuple[int, str, str, Callable[[Measures], bool], Callable[[Measures], str]]

CHECKS: tuple[Check, ...] = (
    (2, "systems connected", ">= 2", lambda m: m.connected >= 2, lambda m: str(m.connected)),
    (2, "a sync has succeeded", "yes", lambda m: m.synced,
     lambda m: "yes" if m.synced else "no"),
    (3, "failure rate (7 days)", "<= 20%", lambda m: m.failure_rate <= 0.20,
     lambda m: f"{_pct(m.failure_rate)} of {m.finished_runs} runs"),
    (3, "dead-letter share", "<= 5%", lambda m: m.dead_share <= 0.05,
     lambda m: _pct(m.dead_share)),
    (4, "coverage", ">= 50%", lambda m: m.coverage >= 0.5,
     lambda m: f"{_pct(m.coverage)} ({m.connected} of {m.declared})"),
    (4, "systems with an owner", ">= 80%", lambda m: m.owners >= 0.8,
     lambda m: _pct(m.owners)),
    (4, "failure rate (7 days)", "<= 10%", lambda m: m.failure_rate <= 0.10,
     lambda m: f"{_pct(m.failure_rate)} of {m.finished_runs} runs"),
    (4, "dead-letter share", "<= 2%", lambda m: m.dead_share <= 0.02,
     lambda m: _pct(m.dead_share)),
    (5, "coverage", ">= 80%", lambda m: m.coverage >= 0.8,
     lambda m: f"{_pct(m.coverage)} ({m.connected} of {m.declared})"),
    (5, "systems with an owner", "100%", lambda m: m.owners >= 1.0, lambda m: _pct(m.owners)),
    (5, "failure rate (7 days)", "<= 5%", lambda m: m.failure_rate <= 0.05,
     lambda m: f"{_pct(m.failure_rate)} of {m.finished_runs} runs"),
    (5, "dead-letter share", "<= 1%", lambda m: m.dead_share <= 0.01,
     lambda m: _pct(m.dead_share)),
    (5, "flows that run by themselves", ">= 80%", lambda m: m.automation >= 0.8,
     lambda m: _pct(m.automation)),
)


def judge(m: Measures) -> Maturity:
    """The phase for these figures (the ladder in the module docstring)."""
    criteria = tuple(Criterion(p, name, wanted, show(m), bool(ok(m)))
                     for p, name, wanted, ok, show in CHECKS)
    phase = 1
    for p in range(2, len(PHASES) + 1):
        if all(c.met for c in criteria if c.phase == p):
            phase = p
        else:
            break
    return Maturity(phase, PHASES[phase - 1], m, criteria)


def assess(settings: Settings, facts: Facts, smap: SiloMap | None = None) -> Maturity:
    """The phase the company is in, with the criteria shown."""
    smap = smap or silo_map(settings, facts)
    return judge(measure(settings, facts, smap))
