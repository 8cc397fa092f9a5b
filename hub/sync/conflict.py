"""Conflict policies: how an incoming version of a record is merged into the canonical one.

Granularity is the top-level canonical field. Every field remembers which system set it,
when (the source's own modified time) and in which run. A change is a *conflict* only when
the field was already changed in the same run by another system of the flow (both sides of
a two-way flow edited it since the last sync); anything else is an ordinary update and the
newest value is taken. On a conflict the flow's policy decides:

- source-wins: the system listed earlier in the flow (its `from`) keeps its value;
- target-wins: the system listed later (its `to`) keeps its value;
- last-modified-wins: the value with the newer modified time stays (ties: the incoming one);
- field-owner: the field's owning system wins; fields without an owner use the fallback.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from hub.config.model import ConflictConfig

Provenance = list[Any]  # [system, updated_at (RFC 3339), run_id]


class Merged(NamedTuple):
    """The result of merging: new data, new provenance and the field-level diff."""

    data: dict[str, Any]
    sources: dict[str, Provenance]
    diff: dict[str, list[Any]]
    conflicts: tuple[str, ...] = ()  # fields where the policy kept the existing value


def _ts(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


class Resolver:
    """Applies one flow's conflict policy; built once per run."""

    def __init__(self, conflict: ConflictConfig, systems: Sequence[str], run_id: int) -> None:
        self.conflict = conflict
        self.rank = {s: i for i, s in enumerate(systems)}
        self.run_id = run_id

    def _incoming_wins(self, policy: str, field: str, system: str, prov: Provenance,
                       updated_at: str) -> bool:
        other = str(prov[0])
        if policy == "field-owner":
            owner = self.conflict.owners.get(field)
            if owner == system or owner == other:
                return owner == system
            fallback = self.conflict.fallback
            if fallback == "field-owner":  # no owner to ask: fall back to the newest value
                fallback = "last-modified-wins"
            return self._incoming_wins(fallback, field, system, prov, updated_at)
        if policy == "source-wins":
            return self.rank.get(system, 1 << 30) <= self.rank.get(other, 1 << 30)
        if policy == "target-wins":
            return self.rank.get(system, -1) >= self.rank.get(other, -1)
        # last-modified-wins
        mine, theirs = _ts(updated_at), _ts(prov[1])
        if mine is None or theirs is None:
            return True
        return mine >= theirs

    def merge(self, data: Mapping[str, Any], sources: Mapping[str, Provenance],
              incoming: Mapping[str, Any], owned: Iterable[str], system: str,
              updated_at: str) -> Merged:
        """Merge `incoming` (the fields `owned` by the source's mapping) into `data`."""
        if not data:  # a new record: nothing to settle, every value is simply taken
            taken: Provenance = [system, updated_at, self.run_id]
            fresh = {k: v for k, v in incoming.items() if v is not None}
            provenance = dict.fromkeys(fresh, taken)  # one list shared: see encode_sources
            return Merged(fresh, {**sources, **provenance} if sources else provenance,
                          {k: [None, v] for k, v in fresh.items()})
        new_data = dict(data)
        new_sources = dict(sources)
        # One provenance list shared by every field this merge sets: the store groups
        # fields by it (hub.store.encode_sources). Nothing mutates provenance in place.
        taken = [system, updated_at, self.run_id]
        diff: dict[str, list[Any]] = {}
        conflicts: list[str] = []
        for name in owned:
            new = incoming.get(name)
            old = data.get(name)
            if new == old:
                continue
            prov = sources.get(name)
            if (prov is not None and prov[2] == self.run_id and prov[0] != system
                    and not self._incoming_wins(self.conflict.policy, name, system, prov,
                                                updated_at)):
                conflicts.append(name)
                continue
            if new is None:
                new_data.pop(name, None)
            else:
                new_data[name] = new
            new_sources[name] = taken
            diff[name] = [old, new]
        return Merged(new_data, new_sources, diff, tuple(conflicts))
