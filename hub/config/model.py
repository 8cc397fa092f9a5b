"""The frozen settings the rest of Liaison reads: what `hub.config.load` returns.

Nothing here does I/O except `Secret.reveal`, which reads one environment variable at the
moment a connector needs it (secrets are resolved at use, never stored resolved).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from hub.errors import ConfigError, Problem, SecretError

CATEGORIES = ("crm", "accounting", "email", "project", "files", "other")
MODES = ("incremental", "full")
DIRECTIONS = ("one-way", "two-way")
CONFLICT_POLICIES = ("source-wins", "target-wins", "last-modified-wins", "field-owner")
DELETE_POLICIES = ("ignore", "archive", "delete")

REDACTED = "***"


@dataclass(frozen=True)
class Secret:
    """A reference to an environment variable holding a secret; prints as ${NAME} only."""

    ref: str
    where: str = ""  # file:line of the reference, for messages

    def reveal(self) -> str:
        """The secret's value, read from the environment now."""
        value = os.environ.get(self.ref)
        if value is None:
            at = f"{self.where}: " if self.where else ""
            raise SecretError(f"{at}environment variable {self.ref} is not set "
                              f"(the config refers to it as ${{{self.ref}}})")
        return value

    def is_set(self) -> bool:
        """Whether the environment variable exists (without reading it into anything)."""
        return self.ref in os.environ

    def __str__(self) -> str:
        return f"${{{self.ref}}}"

    def __repr__(self) -> str:
        return f"Secret(${{{self.ref}}})"


def reveal(value: Any) -> Any:
    """Resolve a setting value: a Secret becomes its value, anything else is returned as is."""
    return value.reveal() if isinstance(value, Secret) else value


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a transient failure is retried."""

    attempts: int = 5
    backoff_initial: float = 0.5  # seconds
    backoff_max: float = 60.0  # ceiling of one wait, seconds


@dataclass(frozen=True)
class ConnectionConfig:
    """One configured instance of a connector: the system it belongs to and its settings."""

    name: str  # the system's name; a system has at most one connection
    connector: str
    settings: Mapping[str, Any]  # Secret objects where the config said ${VAR}
    base_dir: Path  # the config file's folder: relative paths in settings start here
    mappings: Mapping[str, str] = field(default_factory=dict)  # entity -> mapping file
    retry: RetryPolicy = RetryPolicy()
    where: str = ""  # file:line of the connection block
    key_where: Mapping[str, str] = field(default_factory=dict)  # key -> file:line of it

    def where_of(self, key: str) -> str:
        """file:line of one key of the connection (the block's line if unknown)."""
        return self.key_where.get(key, self.where)

    def setting(self, key: str, default: Any = None) -> Any:
        """A setting's value with secrets revealed (call at use, not at load)."""
        return reveal(self.settings.get(key, default))


@dataclass(frozen=True)
class SystemConfig:
    """A tool the company uses; without a connection it is a disconnected silo."""

    name: str
    category: str
    owner: str | None = None
    description: str | None = None
    connection: ConnectionConfig | None = None
    where: str = ""


@dataclass(frozen=True)
class ConflictConfig:
    """How to settle a field changed on both sides of a flow."""

    policy: str = "source-wins"
    owners: Mapping[str, str] = field(default_factory=dict)  # field -> system (field-owner)
    fallback: str = "last-modified-wins"  # for fields with no owner under field-owner


@dataclass(frozen=True)
class FlowConfig:
    """A sync route for one entity between source and target systems."""

    name: str
    entity: str
    sources: tuple[str, ...]
    targets: tuple[str, ...]
    schedule: str | None = None  # cron expression
    mode: Literal["incremental", "full"] = "incremental"
    direction: Literal["one-way", "two-way"] = "one-way"
    conflict: ConflictConfig = ConflictConfig()
    delete_policy: Literal["ignore", "archive", "delete"] = "ignore"
    filter: Mapping[str, Any] | None = None  # a condition on canonical fields
    mappings: Mapping[str, str] = field(default_factory=dict)  # system -> mapping file
    page_size: int = 100
    retry: RetryPolicy | None = None
    enabled: bool = True
    where: str = ""

    @property
    def systems(self) -> tuple[str, ...]:
        """Every system this flow touches, sources first."""
        return self.sources + tuple(t for t in self.targets if t not in self.sources)


@dataclass(frozen=True)
class Settings:
    """The whole validated config: systems, flows, store and broker."""

    file: Path
    systems: Mapping[str, SystemConfig]
    flows: Mapping[str, FlowConfig]
    store_url: str
    broker_url: str = "inprocess://"
    mapping_dirs: tuple[Path, ...] = ()  # searched before the built-in mappings/

    @property
    def base_dir(self) -> Path:
        """The folder of the config file; relative paths in the config start here."""
        return self.file.parent

    def connection(self, system: str) -> ConnectionConfig:
        """The connection of `system`; ConfigError if it has none."""
        sys_ = self.systems.get(system)
        if sys_ is None:
            known = ", ".join(sorted(self.systems)) or "none"
            raise ConfigError(Problem(str(self.file), None, system,
                                      f"no system named {system!r} (known: {known})"))
        if sys_.connection is None:
            raise ConfigError(Problem(str(self.file), None, system,
                                      f"system {system!r} has no connection (it is a silo)"))
        return sys_.connection

    def flow(self, name: str) -> FlowConfig:
        """The flow called `name`; ConfigError listing the known flows if there is none."""
        try:
            return self.flows[name]
        except KeyError:
            known = ", ".join(sorted(self.flows)) or "none"
            raise ConfigError(Problem(str(self.file), None, name,
                                      f"no flow named {name!r} (known: {known})")) from None
