"""`hub check`: everything that can be verified without touching the store or a vendor.

Collects every problem (mappings that do not compile, unknown connectors, unknown or missing
connector settings, literal values where a secret reference is required, unset environment
variables) and raises one ConfigError naming file:line for each.
"""

from __future__ import annotations

import difflib
from typing import Any

from hub import registry
from hub.config import missing_secrets
from hub.config.model import Secret, Settings
from hub.errors import ConfigError, ConnectorError, Problem
from hub.sync.context import FlowContext

# Settings every connection understands, whatever its connector.
COMMON_SETTINGS = frozenset({"connector", "mappings", "retry"})


def _where(where: str, fallback: str) -> tuple[str, int | None]:
    file, _, line = where.rpartition(":")
    if file and line.isdigit():
        return file, int(line)
    return fallback, None


def check_settings(settings: Settings) -> dict[str, Any]:
    """Validate what `load` cannot: connectors, their settings, mappings, secrets."""
    problems: list[Problem] = []
    file = str(settings.file)
    for name, system in settings.systems.items():
        conn = system.connection
        if conn is None:
            continue
        key = f"systems.{name}.connection"
        try:
            cls = registry.get(conn.connector)
        except ConnectorError as exc:
            problems.append(Problem(*_where(conn.where_of("connector"), file),
                                    f"{key}.connector", str(exc)))
            continue
        caps = cls.capabilities
        if caps.settings:
            for setting in conn.settings:
                if setting not in caps.settings and setting not in COMMON_SETTINGS:
                    known = ", ".join(sorted(caps.settings))
                    close = difflib.get_close_matches(setting, list(caps.settings), n=1)
                    hint = f" (did you mean '{close[0]}'?)" if close else ""
                    problems.append(Problem(*_where(conn.where_of(setting), file),
                                            f"{key}.{setting}",
                                            f"unknown setting for connector {conn.connector}"
                                            f"{hint}; known settings: {known}"))
        for secret in caps.secret_settings:
            value = conn.settings.get(secret)
            if value is not None and not isinstance(value, Secret):
                problems.append(Problem(*_where(conn.where_of(secret), file), f"{key}.{secret}",
                                        "must be an environment reference like ${NAME}"))
    problems.extend(missing_secrets(settings))
    mappings = 0
    for flow in settings.flows.values():
        try:
            ctx = FlowContext.build(settings, flow)
            mappings += len(ctx.mappings)
            for sys_name in ctx.mappings:
                conn = settings.connection(sys_name)
                try:
                    caps = registry.get(conn.connector).capabilities
                except ConnectorError:
                    continue
                support = caps.entities.get(flow.entity)
                at, line = _where(flow.where, file)
                if support is None:
                    problems.append(Problem(at, line, f"flows.{flow.name}.entity",
                                            f"connector {conn.connector} (system {sys_name}) "
                                            f"does not handle {flow.entity}"))
                elif sys_name in flow.targets and not support.write:
                    problems.append(Problem(at, line, f"flows.{flow.name}.to",
                                            f"connector {conn.connector} cannot write "
                                            f"{flow.entity}"))
        except ConfigError as exc:
            problems.extend(exc.problems)
    if problems:
        # The same problem can be found twice (a connector used by a flow): report it once.
        raise ConfigError(list(dict.fromkeys(problems)))
    connected = sum(1 for s in settings.systems.values() if s.connection is not None)
    return {"file": file, "systems": len(settings.systems), "connected": connected,
            "silos": len(settings.systems) - connected, "flows": len(settings.flows),
            "mappings": mappings, "ok": True}
