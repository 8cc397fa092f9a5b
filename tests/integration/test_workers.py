"""Production mode for real: `hub worker` processes on Redis, PostgreSQL store, faults.

Each test prints its figures (records lost, duplicates, recovery time). dramatiq's recovery
knobs are tuned here as dramatiq's own tests do (heartbeat timeout, maintenance chance), and
the hub's lease and sweep intervals are shortened, so recovery takes seconds.
"""

from __future__ import annotations

import random
import signal
import time
from typing import Any

from tests.integration import cluster

# The shared fixtures (pytest finds fixtures by name in the test module).
redis_db = cluster.redis_db
cluster_factory = cluster.cluster_factory


def test_two_workers_share_a_run(cluster_factory: Any) -> None:
    c = cluster_factory(3000)
    c.worker()
    c.worker()
    c.enqueue()
    seconds = c.wait_done(120)
    lost, dup = c.outcome()
    print(f"\n[two workers] 3000 records in {seconds:.1f} s; lost {lost}, duplicates {dup}")
    assert (lost, dup) == (0, 0)


def test_sigterm_hands_work_back_and_the_run_completes(cluster_factory: Any) -> None:
    c = cluster_factory(4000)
    c.scheduler()
    w = c.worker()
    c.enqueue()
    deadline = time.monotonic() + 60
    while c.read_count() < 500 and time.monotonic() < deadline:
        time.sleep(0.05)
    t0 = time.monotonic()
    c.kill(w, signal.SIGTERM)
    shutdown = time.monotonic() - t0
    assert w.returncode is not None
    c.worker()
    seconds = c.wait_done(120)
    lost, dup = c.outcome()
    print(f"\n[SIGTERM] shutdown {shutdown:.1f} s, then done in {seconds:.1f} s; lost {lost}, "
          f"duplicates {dup}")
    assert (lost, dup) == (0, 0)


def test_sigkilled_workers_lose_and_duplicate_nothing(cluster_factory: Any) -> None:
    rng = random.Random(7)
    c = cluster_factory(10_000)
    c.scheduler()
    workers = [c.worker(), c.worker()]
    c.enqueue()
    kills, recoveries = 0, []
    deadline = time.monotonic() + 240
    while not c.done() and kills < 20 and time.monotonic() < deadline:
        time.sleep(rng.uniform(0.05, 0.35))
        victim = workers.pop(rng.randrange(len(workers)))
        before = c.read_count()
        c.kill(victim, signal.SIGKILL)
        kills += 1
        workers.append(c.worker())
        t0 = time.monotonic()
        while c.read_count() == before and not c.done() and time.monotonic() - t0 < 60:
            time.sleep(0.1)
        recoveries.append(time.monotonic() - t0)
    seconds = c.wait_done(180)
    lost, dup = c.outcome()
    recoveries.sort()
    p95 = recoveries[int(0.95 * (len(recoveries) - 1))] if recoveries else 0.0
    print(f"\n[SIGKILL x{kills}] 10000 records; lost {lost}, duplicates {dup}; "
          f"recovery p95 {p95:.1f} s; finished {seconds:.1f} s after the last kill")
    assert kills >= 5, "the run finished before enough kills; make it bigger"
    assert (lost, dup) == (0, 0)
