"""The whole exception tree of Liaison, grouped by what the engine should do.

    HubError                         root; every message is meant for an ops person
    ├── ConfigError                  the config file or a mapping file is wrong (exit 2);
    │   │                            carries every problem found, each with file:line
    │   └── MappingError             a mapping file is wrong
    ├── SecretError                  a ${ENV} reference names an unset variable
    ├── ConnectorError               a connector could not be loaded or configured
    ├── StoreError                   the store could not be opened, migrated or written
    │   └── StoreUnavailable         the database connection failed (resume later)
    ├── WebhookRejected              a webhook delivery failed its signature or time check
    ├── LeaseLost                    another process took over our lease (fencing token moved)
    └── SyncError                    a record or call failed while syncing
        ├── TransientError           worth retrying: timeouts, resets, 429, 5xx
        │   └── RateLimited          429; carries retry_after seconds when the vendor said
        ├── PermanentError           retrying will not help: 4xx, validation; dead-letter it
        │   ├── RecordInvalid        a canonical record fails its JSON Schema
        │   ├── RecordMappingError   a native record cannot be mapped (bad value, missing field)
        │   └── AuthError            401/403: credentials are wrong or lack a scope
        └── SkippableError           count it and go on (a filtered record, say)

Foreign exceptions (httpx, SQLAlchemy, openpyxl, ...) are translated into this tree at
exactly one boundary each (hub.http for HTTP, hub.store for SQL), so the sync engine never
sees them.
"""

from __future__ import annotations

from dataclasses import dataclass


class HubError(Exception):
    """Root of every error Liaison raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One problem found in a file: where it is and what was expected."""

    file: str
    line: int | None
    key: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        key = f" {self.key}:" if self.key else ""
        return f"{where}:{key} {self.message}"


class ConfigError(HubError):
    """The config (or a file it names) is wrong; holds every problem, not just the first."""

    def __init__(self, problems: list[Problem] | Problem | str):
        if isinstance(problems, str):
            problems = [Problem(file="", line=None, key="", message=problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems: list[Problem] = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class MappingError(ConfigError):
    """A mapping file is wrong: unknown field, transform, entity or bad structure."""


class SecretError(HubError):
    """A secret reference could not be resolved (the environment variable is unset)."""


class ConnectorError(HubError):
    """A connector could not be found, loaded or configured."""


class StoreError(HubError):
    """The store (database) could not be opened, migrated or written."""


class LeaseLost(HubError):
    """Another process took over the work we held a lease for; stop without writing."""


class StoreUnavailable(StoreError):
    """The database went away (dropped connection, failover): worth resuming, not a bug."""


class WebhookRejected(HubError):
    """A webhook delivery was refused: forged, tampered, stale or malformed."""

    def __init__(self, message: str, *, status: int = 401):
        super().__init__(message)
        self.status = status


class SyncError(HubError):
    """A record or a call to an external system failed during a sync."""

    def __init__(self, message: str, *, status: int | None = None):
        super().__init__(message)
        self.status = status


class TransientError(SyncError):
    """Worth retrying later: timeouts, connection resets, 429 and 5xx answers."""


class RateLimited(TransientError):
    """The system said 429 (too many requests); retry no sooner than retry_after seconds."""

    def __init__(self, message: str, *, retry_after: float | None = None, status: int = 429):
        super().__init__(message, status=status)
        self.retry_after = retry_after


class PermanentError(SyncError):
    """Retrying will not help (validation, other 4xx): the record goes to the dead letters."""


class RecordInvalid(PermanentError):
    """A canonical record does not satisfy its entity's JSON Schema."""

    def __init__(self, message: str, *, errors: list[str] | None = None):
        super().__init__(message)
        self.errors = errors or [message]


class RecordMappingError(PermanentError):
    """A record could not be mapped: names the record, the field and what was expected."""

    def __init__(self, message: str, *, record_id: str | None = None, field: str | None = None):
        parts = []
        if record_id is not None:
            parts.append(f"record {record_id}")
        if field:
            parts.append(f"field {field}")
        prefix = ": ".join(parts)
        super().__init__(f"{prefix}: {message}" if prefix else message)
        self.record_id = record_id
        self.field = field


class AuthError(PermanentError):
    """The system refused our credentials (401/403)."""


class SkippableError(SyncError):
    """The record is skipped on purpose; it is counted with its reason and the run goes on."""
