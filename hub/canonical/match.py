"""Match keys: the normalised values that recognise the same record across systems."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from hub.canonical.paths import Field, Index, Select, Step, parse_path
from hub.canonical.schemas import ENTITIES, check_entity
from hub.errors import ConfigError


@dataclass(frozen=True, slots=True)
class MatchKey:
    """Where a match key's value lives (canonical path) and how it is normalised."""

    path: str
    normalisers: tuple[str, ...]


def normalise_domain(value: str) -> str:
    """'https://www.Example.com:443/x?y' -> 'example.com' (no scheme, www., port, path)."""
    text = value.strip().lower()
    if "://" in text:
        text = text.split("://", 1)[1]
    elif text.startswith("//"):
        text = text[2:]
    for stop in "/?#":
        text = text.split(stop, 1)[0]
    text = text.rsplit("@", 1)[-1].split(":", 1)[0].strip().rstrip(".")
    return text.removeprefix("www.")


NORMALISERS: Mapping[str, Callable[[str], str]] = MappingProxyType({
    "trim": str.strip,
    "lower": str.lower,
    "upper": str.upper,
    "domain": normalise_domain,
})
"""Named normalisers a match key may use, applied in order."""

MATCH_KEYS: Mapping[str, Mapping[str, MatchKey]] = MappingProxyType({
    "company": MappingProxyType({"domain": MatchKey("domain", ("domain",))}),
    "contact": MappingProxyType({"email": MatchKey("emails[0].address", ("trim", "lower"))}),
    "product": MappingProxyType({"sku": MatchKey("sku", ("trim",))}),
    "invoice": MappingProxyType({"number": MatchKey("number", ("trim",))}),
    **{e: MappingProxyType({}) for e in ENTITIES
       if e not in ("company", "contact", "product", "invoice")},
})
"""Default match keys per entity: key name -> MatchKey."""


class UnknownMatchKeyError(ConfigError):
    """A match key name the entity does not have."""


Getter = Callable[[Any], Any]


def _getter(steps: tuple[Step, ...]) -> Getter:
    plan: list[tuple[str | None, int]] = []
    for step in steps:
        if isinstance(step, Field):
            plan.append((step.name, 0))
        elif isinstance(step, Index):
            plan.append((None, step.index))
        else:
            break  # a selector: the general walk below
    else:
        return _plain_getter(tuple(plan))

    def get(data: Any) -> Any:
        node = data
        for step in steps:
            if isinstance(step, Field):
                node = node.get(step.name) if isinstance(node, dict) else None
            elif isinstance(step, Index):
                node = node[step.index] if isinstance(node, list) and step.index < len(node) else None
            else:
                node = _select(node, step)
            if node is None:
                return None
        return node

    return get


def _plain_getter(plan: tuple[tuple[str | None, int], ...]) -> Getter:
    # A path of fields and positions (emails[0].address, domain), the commonest shape:
    # `_getter`'s steps without telling each step's kind apart per record (a match key is
    # worked out for every record a read-ahead child finishes). A name, or None: a position.
    def get(data: Any) -> Any:
        node = data
        for name, index in plan:
            if name is not None:
                node = node.get(name) if isinstance(node, dict) else None
            else:
                node = node[index] if isinstance(node, list) and index < len(node) else None
            if node is None:
                return None
        return node
    return get


def _select(node: Any, step: Select) -> Any:
    if not isinstance(node, list):
        return None
    for item in node:
        if isinstance(item, dict) and item.get(step.key) == step.value:
            return item
    return None


def _compile(key: MatchKey) -> Callable[[Any], str | None]:
    get = _getter(parse_path(key.path))
    normalisers = tuple(NORMALISERS[name] for name in key.normalisers)

    def value(data: Any) -> str | None:
        raw = get(data)
        if raw is None or isinstance(raw, (dict, list, bool)):
            return None
        text = raw if isinstance(raw, str) else str(raw)
        for normalise in normalisers:
            text = normalise(text)
        return text or None

    return value


_COMPILED: dict[str, tuple[tuple[str, Callable[[Any], str | None]], ...]] = {
    entity: tuple((name, _compile(key)) for name, key in keys.items())
    for entity, keys in MATCH_KEYS.items()
}


def _selected(entity: str, names: Iterable[str] | None
              ) -> tuple[tuple[str, Callable[[Any], str | None]], ...]:
    compiled = _COMPILED.get(entity)
    if compiled is None:
        check_entity(entity)
        compiled = ()
    if names is not None:
        wanted = set(names)
        unknown = wanted - {name for name, _ in compiled}
        if unknown:
            known = ", ".join(MATCH_KEYS[entity]) or "(none)"
            raise UnknownMatchKeyError(
                f"unknown match key {', '.join(sorted(map(repr, unknown)))} for {entity}; "
                f"known match keys: {known}")
        compiled = tuple(item for item in compiled if item[0] in wanted)
    return compiled


def match_values(
    entity: str, data: Mapping[str, Any], names: Iterable[str] | None = None
) -> dict[str, str]:
    """Normalised match values of `data` (empty ones left out); `names` limits which keys."""
    out: dict[str, str] = {}
    for name, value in _selected(entity, names):
        found = value(data)
        if found is not None:
            out[name] = found
    return out


def match_selector(entity: str, names: Iterable[str] | None = None
                   ) -> Callable[[Mapping[str, Any]], dict[str, str]]:
    """`match_values` for one entity and selection, with the names checked once (for the
    per-record path); UnknownMatchKeyError right away for an unknown name."""
    compiled = _selected(entity, names)
    if len(compiled) == 1:
        ((only, value),) = compiled

        def one(data: Mapping[str, Any]) -> dict[str, str]:
            found = value(data)
            return {} if found is None else {only: found}
        return one

    def many(data: Mapping[str, Any]) -> dict[str, str]:
        out: dict[str, str] = {}
        for name, get in compiled:
            found = get(data)
            if found is not None:
                out[name] = found
        return out
    return many


def normalise_match_value(entity: str, name: str, value: Any) -> str | None:
    """`value` normalised as match key `name` of `entity` stores it ("Ana@X.com " ->
    "ana@x.com"); None when it is empty or not a scalar. The key must exist."""
    if value is None or isinstance(value, (dict, list, bool)):
        return None
    text = value if isinstance(value, str) else str(value)
    for normaliser in MATCH_KEYS[entity][name].normalisers:
        text = NORMALISERS[normaliser](text)
    return text or None
