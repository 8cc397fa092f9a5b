"""The metric objects a process counts into, created on first use.

They are made lazily, not at import, so that `hub serve` and `hub worker` can switch on
multiprocess mode (hub.metrics.multiproc) first: prometheus-client decides where a value
lives when the value is created.
"""

from __future__ import annotations

import atexit
import functools
import multiprocessing.util
import os
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics

from hub.metrics import multiproc
from hub.metrics import names as n

# Runs last from a minute to a day; the buckets spread over that range.
DURATION_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0,
                    21600.0, 86400.0)


@dataclass(frozen=True)
class Series:
    """The metrics counted where the work happens (the store-derived ones are computed at
    scrape time by hub.metrics.collector)."""

    read: Counter
    written: Counter
    unchanged: Counter
    skipped: Counter
    dead_lettered: Counter
    runs: Counter
    run_duration: Histogram
    retries: Counter
    quota: Gauge


def _short(spec: n.Spec, suffix: str = "") -> str:
    # prometheus-client adds _total to counters itself.
    name = spec.name.removesuffix("_total")
    return name + suffix


_armed_pid = 0


def _arm_retire() -> None:
    """Fold this process's counters into the archive when it ends (once per process)."""
    global _armed_pid
    folder = multiproc.current()
    if folder is None or _armed_pid == os.getpid():
        return
    _armed_pid = os.getpid()
    # dramatiq's worker processes leave through multiprocessing, which runs its finalizers
    # but not atexit; other processes run atexit. Retiring twice folds nothing the second time.
    atexit.register(multiproc.retire, folder)
    multiprocessing.util.Finalize(None, multiproc.retire, args=(folder,), exitpriority=1)


def series() -> Series:
    """This process's metric objects (created once, in multiprocess mode if it is on)."""
    _arm_retire()
    return _series()


@functools.cache
def _series() -> Series:
    multiproc.use_identity()
    # *_created samples exist only in single-process mode; leave them out everywhere so
    # that one exposition looks the same whichever mode served it.
    no_created: Any = disable_created_metrics  # untyped in prometheus-client
    no_created()

    def counter(spec: n.Spec) -> Counter:
        return Counter(_short(spec), spec.help, spec.labels, registry=None)

    return Series(
        read=counter(n.RECORDS_READ),
        written=counter(n.RECORDS_WRITTEN),
        unchanged=counter(n.RECORDS_UNCHANGED),
        skipped=counter(n.RECORDS_SKIPPED),
        dead_lettered=counter(n.RECORDS_DEAD),
        runs=counter(n.RUNS),
        run_duration=Histogram(n.RUN_DURATION.name, n.RUN_DURATION.help,
                               n.RUN_DURATION.labels, buckets=DURATION_BUCKETS,
                               registry=None),
        retries=counter(n.RETRIES),
        quota=Gauge(n.QUOTA.name, n.QUOTA.help, n.QUOTA.labels, registry=None,
                    multiprocess_mode="livemostrecent"),
    )


def close_files() -> None:
    """Stop this process writing its metrics files (before they are folded at exit)."""
    from prometheus_client import values

    close: Any = values.close_all_multiprocess_files  # untyped in prometheus-client
    close()
