"""What the dashboard knows: measurements from the store and judgements made from them.

    listings     runs, dead letters and audit events as dicts (shared with the CLI)
    facts        the measurements, read from the store in one go (`gather`)
    health       flow and system states, the silo map, coverage
    nextsteps    what to do next, from the measurements
    maturity     which of five phases the company is in, with the criteria shown

Everything but `listings` and `facts.gather` is a pure function of Settings and Facts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from hub.config.model import Settings
from hub.insights.facts import Facts, gather
from hub.insights.health import SiloMap, silo_map
from hub.insights.maturity import Maturity, assess
from hub.insights.nextsteps import Step, next_steps
from hub.store import Store


@dataclass(frozen=True)
class Overview:
    """Everything judged from one set of facts."""

    facts: Facts
    map: SiloMap
    steps: tuple[Step, ...]
    maturity: Maturity


def judge(settings: Settings, facts: Facts) -> Overview:
    """Silo map, next steps and maturity from the facts (pure)."""
    smap = silo_map(settings, facts)
    return Overview(facts, smap, tuple(next_steps(settings, facts, smap)),
                    assess(settings, facts, smap))


def overview(settings: Settings, store: Store, now: datetime | None = None) -> Overview:
    """Measure the store now and judge it."""
    return judge(settings, gather(settings, store, now))


__all__ = ["Overview", "judge", "overview"]
