"""Production mode for real: `hub worker` processes on Redis, PostgreSQL store, faults.

Each test prints its figures (records lost, duplicates, recovery time). dramatiq's recovery
knobs are tuned here as dramatiq's own tests do (heartbeat timeout, maintenance chance), and
the hub's lease and sweep intervals are shortened, so recovery takes seconds.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hub.config import loads
from hub.jobs.actors import Jobs
from hub.jobs.broker import make_broker
from hub.store import Store
from tests.integration.helpers import contact, read_csv, write_csv

REDIS_URL = "redis://127.0.0.1:6379/15"
ENV = {"HUB_LEASE_TTL": "3", "HUB_SWEEP_SECONDS": "2", "HUB_STEP_RECORDS": "500",
       "HUB_REDIS_HEARTBEAT_MS": "2000", "HUB_REDIS_MAINTENANCE_CHANCE": "100000"}


@pytest.fixture
def redis_db() -> Iterator[str]:
    """Redis database 15, emptied."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError:
        message = ("Redis is not answering on 127.0.0.1:6379; start it with: redis-server "
                   "--daemonize yes --bind 127.0.0.1 --port 6379 --save '' --appendonly no")
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message)
        pytest.skip(message)
    client.flushdb()
    yield REDIS_URL
    client.flushdb()


class Cluster:
    """A config on PostgreSQL + Redis, worker and scheduler processes, and a source CSV."""

    def __init__(self, tmp: Path, pg_url: str, redis_url: str, n: int) -> None:
        self.tmp = tmp
        (tmp / "a").mkdir()
        (tmp / "b").mkdir()
        self.n = n
        write_csv(tmp / "a" / "contacts.csv", [contact(i) for i in range(n)])
        text = f"""
version: 1
store: {pg_url}
broker: {redis_url}
systems:
  a: {{category: crm, owner: Anna, connection: {{connector: spreadsheet, path: ./a}}}}
  b: {{category: files, owner: Ben, connection: {{connector: spreadsheet, path: ./b}}}}
flows:
  contacts: {{entity: contact, from: a, to: b, page_size: 100}}
"""
        self.config = tmp / "hub.yaml"
        self.config.write_text(text, encoding="utf-8")
        self.settings = loads(text, file=str(self.config))
        self.store = Store(self.settings.store_url)
        self.procs: list[subprocess.Popen[bytes]] = []

    def _spawn(self, *args: str) -> subprocess.Popen[bytes]:
        env = dict(os.environ, **ENV)
        proc = subprocess.Popen([sys.executable, "-m", "hub.cli", "-c", str(self.config),
                                 *args], env=env, start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.procs.append(proc)
        return proc

    def worker(self) -> subprocess.Popen[bytes]:
        """A `hub worker` with 1 process of 2 threads."""
        return self._spawn("worker", "--processes", "1", "--threads", "2")

    def scheduler(self) -> subprocess.Popen[bytes]:
        """A `hub scheduler` (it also sweeps)."""
        return self._spawn("scheduler")

    def enqueue(self) -> None:
        """Ask for a run of the flow, as a schedule or a webhook would."""
        broker = make_broker(REDIS_URL)
        Jobs(self.settings, self.store, broker).sync_flow.send("contacts", "manual", False)
        broker.close()

    def read_count(self) -> int:
        with self.store.connect() as conn:
            runs = self.store.list_runs(conn, "contacts", 1)
        return int(runs[0].read) if runs else 0

    def done(self) -> bool:
        with self.store.connect() as conn:
            runs = self.store.list_runs(conn, "contacts", 5)
            owed = self.store.outbox_count(conn)
        return bool(runs) and runs[0].status in ("succeeded", "partial") and owed == 0 and \
            len(read_csv(self.tmp / "b" / "contacts.csv")) >= self.n

    def wait_done(self, timeout: float) -> float:
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if self.done():
                return time.monotonic() - start
            time.sleep(0.2)
        raise AssertionError(f"the run did not finish in {timeout:.0f} s: "
                             f"{self.read_count()} read")

    def outcome(self) -> tuple[int, int]:
        """(records lost, duplicates) in the target."""
        rows = read_csv(self.tmp / "b" / "contacts.csv")
        emails = [r["email"] for r in rows]
        want = {f"person{i}@example.com" for i in range(self.n)}
        return len(want - set(emails)), len(emails) - len(set(emails))

    @staticmethod
    def kill(proc: subprocess.Popen[bytes], sig: int) -> None:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                self.kill(proc, signal.SIGKILL)
        self.store.close()


@pytest.fixture
def cluster_factory(tmp_path: Path, pg_url: str, redis_db: str) -> Iterator[Any]:
    made: list[Cluster] = []

    def make(n: int) -> Cluster:
        made.append(Cluster(tmp_path, pg_url, redis_db, n))
        return made[-1]

    yield make
    for c in made:
        c.close()


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
