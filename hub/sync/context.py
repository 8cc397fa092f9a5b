"""Everything a run of one flow needs, prepared once: mappings compiled, connectors opened.

Mapping resolution order for a system in a flow: the flow's own override
(`flows.X.mappings.<system>`), then the connection's (`connection.mappings.<entity>`), then
the default `mappings/<connector>/<entity>.yaml` shipped with Liaison or found in the
config's extra mapping folders.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hub import registry
from hub.config import missing_secrets
from hub.config.model import FlowConfig, RetryPolicy, Settings
from hub.connector import Connector
from hub.errors import ConfigError, ConnectorError, Problem
from hub.mapping import CompiledMapping, compile_mapping, find_default, load_mapping
from hub.mapping.conditions import compile_condition
from hub.mapping.specerror import SpecError

ConnectorFactory = Callable[..., Connector]


def top_field(path: str) -> str:
    """The top-level canonical field of a path: emails[type=work].address -> emails."""
    return path.split(".", 1)[0].split("[", 1)[0]


def mapping_for(settings: Settings, flow: FlowConfig | None, system: str,
                entity: str) -> CompiledMapping:
    """The compiled mapping a system uses for an entity (in a flow, if given)."""
    conn = settings.connection(system)
    ref: str | Path | None = None
    if flow is not None and system in flow.mappings:
        ref = flow.mappings[system]
    elif entity in conn.mappings:
        ref = conn.mappings[entity]
    if ref is not None and not Path(ref).is_absolute() and (settings.base_dir / ref).exists():
        ref = settings.base_dir / ref
    if ref is None:
        ref = find_default(conn.connector, entity, settings.mapping_dirs)
        if ref is None:
            where = flow.where if flow is not None else conn.where
            raise ConfigError(Problem(where or str(settings.file), None, system,
                                      f"no mapping for {entity} in connector {conn.connector}: "
                                      f"add mappings/{conn.connector}/{entity}.yaml or name "
                                      "one under the connection's `mappings`"))
    mapping = compile_mapping(load_mapping(ref, search_dirs=settings.mapping_dirs))
    if mapping.entity != entity:
        raise ConfigError(Problem(str(mapping.file), None, "entity",
                                  f"mapping is for {mapping.entity}, but the flow syncs {entity}"))
    return mapping


@dataclass
class FlowContext:
    """A flow with its compiled mappings, its connectors (opened on first use) and policies."""

    settings: Settings
    flow: FlowConfig
    mappings: dict[str, CompiledMapping]
    factory: ConnectorFactory
    filter: Callable[[dict[str, Any]], bool] | None = None
    owned: dict[str, tuple[str, ...]] = field(default_factory=dict)
    _connectors: dict[str, Connector] = field(default_factory=dict)

    @classmethod
    def build(cls, settings: Settings, flow: FlowConfig,
              factory: ConnectorFactory | None = None) -> FlowContext:
        """Compile every mapping of the flow; ConfigError with every problem found."""
        mappings: dict[str, CompiledMapping] = {}
        problems: list[Problem] = list(missing_secrets(settings, flow.systems))
        for system in flow.systems:
            conn = settings.connection(system)
            try:
                registry.get(conn.connector)
            except ConnectorError as exc:
                file, _, line = conn.where_of("connector").rpartition(":")
                problems.append(Problem(file or str(settings.file),
                                        int(line) if line.isdigit() else None,
                                        f"systems.{system}.connection.connector", str(exc)))
                continue
            try:
                mappings[system] = mapping_for(settings, flow, system, flow.entity)
            except ConfigError as exc:
                problems.extend(exc.problems)
        if problems:
            raise ConfigError(problems)
        owned = {s: tuple(dict.fromkeys(top_field(f) for f in m.fields))
                 for s, m in mappings.items()}
        predicate = None
        if flow.filter:
            try:
                predicate = compile_condition(dict(flow.filter)).test
            except SpecError as exc:  # the config check catches most; never a traceback
                file, _, line = flow.where.rpartition(":")
                raise ConfigError([Problem(file or str(settings.file),
                                           int(line) if line.isdigit() else None,
                                           f"flows.{flow.name}.filter", str(exc))]) from None
        return cls(settings, flow, mappings, factory or registry.create,
                   filter=predicate, owned=owned)

    @property
    def legs(self) -> list[tuple[str, tuple[str, ...]]]:
        """(source, its targets) pairs; a two-way flow reads both of its systems."""
        if self.flow.direction == "two-way":
            src, dst = self.flow.sources[0], self.flow.targets[0]
            return [(src, (dst,)), (dst, (src,))]
        return [(s, self.flow.targets) for s in self.flow.sources]

    @property
    def delivery_targets(self) -> tuple[str, ...]:
        """Systems that receive changes: both sides of a two-way flow, else the targets."""
        if self.flow.direction == "two-way":
            return self.flow.systems
        return self.flow.targets

    def connector(self, system: str) -> Connector:
        """The connector of `system`, created on first use."""
        if system not in self._connectors:
            self._connectors[system] = self.factory(self.settings.connection(system))
        return self._connectors[system]

    def retry(self, system: str) -> RetryPolicy:
        """The retry policy for deliveries to `system` (the flow's overrides the connection's)."""
        return self.flow.retry or self.settings.connection(system).retry

    def close(self) -> None:
        """Close every connector opened for this run."""
        for conn in self._connectors.values():
            # Closing must not mask the run's own outcome.
            with contextlib.suppress(Exception):
                conn.close()
        self._connectors.clear()
