"""What the pipeline tells its observers (audit, metrics, logging), and the run's counters.

Observers follow dramatiq's middleware idea: every hook is a no-op by default, the engine
calls them at fixed points and holds none of their code. `page_committing` runs inside the
page's transaction, so an observer that writes (the audit trail) commits or rolls back with
the records it describes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, NamedTuple

import orjson
from sqlalchemy import Connection

_NO_DIFF: Mapping[str, Any] = MappingProxyType({})


@dataclass
class RunCounts:
    """A run's counters. Per record read: read = created + updated + unchanged + skipped +
    dead_lettered. Deliveries to targets are counted apart (written, write_unchanged,
    write_failed, pending)."""

    read: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    dead_lettered: int = 0
    deleted: int = 0
    written: int = 0
    write_unchanged: int = 0
    write_failed: int = 0
    pending: int = 0
    skip_reasons: Counter[str] = field(default_factory=Counter)
    timings: dict[str, float] = field(default_factory=dict)

    COLUMNS = ("read", "created", "updated", "unchanged", "skipped", "dead_lettered",
               "deleted", "written", "write_unchanged", "write_failed", "pending")

    def balanced(self) -> bool:
        """Whether every record read is accounted for exactly once."""
        return self.read == (self.created + self.updated + self.unchanged + self.skipped
                             + self.dead_lettered)

    def as_row(self) -> dict[str, int]:
        """The counters as run-table columns."""
        return {c: getattr(self, c) for c in self.COLUMNS}

    def add_time(self, stage: str, seconds: float) -> None:
        """Accumulate time spent in a pipeline stage (for benchmarks and diagnosis)."""
        self.timings[stage] = self.timings.get(stage, 0.0) + seconds

    @classmethod
    def from_row(cls, row: Any) -> RunCounts:
        """Counters restored from a run row (a resumed run continues its counts)."""
        counts = cls()
        for c in cls.COLUMNS:
            setattr(counts, c, int(getattr(row, c) or 0))
        counts.skip_reasons.update(orjson.loads(row.skip_reasons or "{}"))
        return counts


IN_COLUMNS = ("read", "created", "updated", "unchanged", "skipped", "dead_lettered", "deleted")
OUT_COLUMNS = ("written", "write_unchanged", "write_failed")


class Tally:
    """What some of a run's counters gained since the last `take` (for observers that count
    per commit: a resumed run's counters start from its earlier steps, not from zero)."""

    def __init__(self, counts: RunCounts, columns: Sequence[str]) -> None:
        self.counts = counts
        self.columns = tuple(columns)
        self._seen = [getattr(counts, c) for c in self.columns]

    def take(self) -> dict[str, int]:
        """The non-zero gains since the last call."""
        now = [getattr(self.counts, c) for c in self.columns]
        gained = {c: n - s for c, n, s in zip(self.columns, now, self._seen, strict=True)
                  if n != s}
        self._seen = now
        return gained


@dataclass(frozen=True)
class RunInfo:
    """Which run the hooks are about."""

    run_id: int
    flow: str
    entity: str
    mode: str
    dry_run: bool = False


class Change(NamedTuple):
    """One change Liaison made: to a canonical record, or a write to an external system.

    A NamedTuple rather than a frozen dataclass: one is made per record changed, and a
    frozen dataclass's __init__ costs several times a tuple's.
    """

    action: str  # create|update|delete|restore|write.create|write.update|write.archive|...
    entity: str
    canonical_id: str | None
    system: str | None = None
    external_id: str | None = None
    diff: Mapping[str, Any] = _NO_DIFF  # field -> [old, new]
    sensitive: frozenset[str] = frozenset()  # fields whose values must be redacted
    # The diff as the audit trail stores it (redacted, hub.canonical.diffs), when already
    # worked out: for a record created from its data alone, from what a read-ahead child
    # prepared.
    audit: str | None = None


class CreatedDiff(Mapping[str, Any]):
    """The diff of a record created from `data` (its JSON): every field [None, value].

    Decoded only if an observer reads it: the audit trail takes the prepared text
    (`Change.audit`) and most flows have no roll-up that looks.
    """

    __slots__ = ("_diff", "_text")

    def __init__(self, text: bytes) -> None:
        self._text = text
        self._diff: dict[str, list[Any]] | None = None

    def _load(self) -> dict[str, list[Any]]:
        if self._diff is None:
            self._diff = {k: [None, v] for k, v in orjson.loads(self._text).items()}
        return self._diff

    def __getitem__(self, key: str) -> list[Any]:
        return self._load()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._load())

    def __len__(self) -> int:
        return len(self._load())


class Observer:
    """Base class for pipeline observers; override the hooks you need."""

    def run_started(self, run: RunInfo) -> None:
        """A run began (or resumed)."""

    def page_committing(self, conn: Connection, run: RunInfo,
                        changes: Sequence[Change]) -> None:
        """Changes are about to be committed in `conn`'s transaction."""

    def dead_lettered(self, run: RunInfo, system: str, stage: str, error: str) -> None:
        """A record was dead-lettered."""

    def records_committed(self, run: RunInfo, system: str, direction: str,
                          tally: Mapping[str, int]) -> None:
        """Records read from `system` (direction "in") or delivered to it ("out") were
        committed; `tally` holds what the run's counters (RunCounts columns) gained since
        the last call for that direction. Not called in a dry run (nothing is committed)."""

    def run_finished(self, run: RunInfo, counts: RunCounts, status: str) -> None:
        """A run ended with `status` (succeeded, partial or failed)."""
