"""Production mode for real, shared by the worker and fault tests.

`Cluster` writes a config on PostgreSQL + Redis, starts `hub worker` / `hub scheduler`
processes and checks the target; `RedisServer` is a private redis-server on a free loopback
port (a test may kill and wipe it without touching the machine's Redis); the `redis_db`
and `cluster_factory` fixtures give a clean Redis database 15 and clusters stopped at the
end. dramatiq's recovery knobs are tuned as dramatiq's own tests do (heartbeat timeout,
maintenance chance), and the hub's lease and sweep intervals are shortened, so recovery
takes seconds.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
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
CSV_TARGET = "{category: files, owner: Ben, connection: {connector: spreadsheet, path: ./b}}"


def unavailable(message: str) -> None:
    """Fail in CI (CI=true), skip on a laptop: the service the test needs is missing."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def redis_db() -> Iterator[str]:
    """Redis database 15, emptied."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError:
        unavailable("Redis is not answering on 127.0.0.1:6379; start it with: redis-server "
                    "--daemonize yes --bind 127.0.0.1 --port 6379 --save '' --appendonly no")
    client.flushdb()
    yield REDIS_URL
    client.flushdb()


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """A redis-server of our own (AOF, fsync every second) in `folder`: kill it, wipe it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The broker URL of this server."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> float:
        """Start (or restart, replaying the AOF) and wait until it answers; seconds taken."""
        import redis

        t0 = time.monotonic()
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir",
             str(self.folder), "--appendonly", "yes", "--appendfsync", "everysec",
             "--save", "", "--daemonize", "no", "--logfile", str(self.folder / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        while time.monotonic() - t0 < 10:
            try:
                client.ping()
                return time.monotonic() - t0
            except redis.RedisError:
                time.sleep(0.05)
            finally:
                client.close()
        raise AssertionError(f"redis-server on port {self.port} did not start in 10 s")

    def kill(self, *, wipe: bool = False) -> None:
        """SIGKILL the server; with `wipe`, delete its data too (it restarts empty)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        if wipe:
            for path in sorted(self.folder.rglob("*"), reverse=True):
                if path.name.startswith("appendonly") or path.suffix in (".aof", ".rdb",
                                                                          ".manifest"):
                    if path.is_dir():
                        path.rmdir()
                    else:
                        path.unlink()

    def stop(self) -> None:
        """Stop for good (the test's finally)."""
        self.kill()


class Cluster:
    """A config on PostgreSQL + Redis, worker and scheduler processes, and a source CSV.

    System `a` is a CSV folder holding `n` contacts; system `b` (the target) is a CSV folder
    unless `target` gives another system block, in which case `target_emails` says how to
    read back the e-mails the target holds.
    """

    def __init__(self, tmp: Path, pg_url: str, redis_url: str, n: int, *,
                 target: str = CSV_TARGET, flow_options: str = "",
                 target_emails: Callable[[], list[str]] | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.tmp = tmp
        (tmp / "a").mkdir()
        (tmp / "b").mkdir()
        self.n = n
        self.redis_url = redis_url
        # The processes' metric files go to this test's folder, not the default
        # <temp>/liaison-metrics-<hash> that would outlive it (a test may choose its own).
        self.env = {"PROMETHEUS_MULTIPROC_DIR": str(tmp / "metrics"), **ENV, **(env or {})}
        write_csv(tmp / "a" / "contacts.csv", [contact(i) for i in range(n)])
        options = f", {flow_options}" if flow_options else ""
        text = f"""
version: 1
store: {pg_url}
broker: {redis_url}
systems:
  a: {{category: crm, owner: Anna, connection: {{connector: spreadsheet, path: ./a}}}}
  b: {target}
flows:
  contacts: {{entity: contact, from: a, to: b, page_size: 100{options}}}
"""
        self.config = tmp / "hub.yaml"
        self.config.write_text(text, encoding="utf-8")
        self.settings = loads(text, file=str(self.config))
        self.store = Store(self.settings.store_url)
        self.procs: list[subprocess.Popen[bytes]] = []
        self._target_emails = target_emails or (
            lambda: [r["email"] for r in read_csv(tmp / "b" / "contacts.csv")])

    def _spawn(self, *args: str) -> subprocess.Popen[bytes]:
        env = dict(os.environ, **self.env)
        log = (self.tmp / f"proc{len(self.procs)}-{args[0]}.log").open("wb")
        proc = subprocess.Popen([sys.executable, "-m", "hub.cli", "-c", str(self.config),
                                 *args], env=env, start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=log)
        log.close()  # the child holds its own copy
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
        broker = make_broker(self.redis_url)
        Jobs(self.settings, self.store, broker).sync_flow.send("contacts", "manual", False)
        broker.close()

    def read_count(self) -> int:
        """Records the newest run has read (and committed)."""
        with self.store.connect() as conn:
            runs = self.store.list_runs(conn, "contacts", 1)
        return int(runs[0].read) if runs else 0

    def target_emails(self) -> list[str]:
        """The e-mail of every contact in the target, duplicates included."""
        return self._target_emails()

    def done(self) -> bool:
        """The run finished, nothing is owed, and the target holds at least n records."""
        with self.store.connect() as conn:
            runs = self.store.list_runs(conn, "contacts", 5)
            owed = self.store.outbox_count(conn)
        return bool(runs) and runs[0].status in ("succeeded", "partial") and owed == 0 and \
            len(self.target_emails()) >= self.n

    def wait_done(self, timeout: float) -> float:
        """Seconds until done(); AssertionError (with the workers' last words) after timeout."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if self.done():
                return time.monotonic() - start
            time.sleep(0.2)
        raise AssertionError(f"the run did not finish in {timeout:.0f} s: "
                             f"{self.read_count()} read, {len(self.target_emails())} in the "
                             f"target\n{self.logs()}")

    def logs(self, tail: int = 2000) -> str:
        """The end of each process's stderr, for failure messages."""
        out = []
        for path in sorted(self.tmp.glob("proc*.log")):
            text = path.read_text(encoding="utf-8", errors="replace")
            out.append(f"--- {path.name}\n{text[-tail:]}")
        return "\n".join(out)

    def outcome(self) -> tuple[int, int]:
        """(records lost, duplicates) in the target."""
        emails = [e.lower() for e in self.target_emails()]
        want = {f"person{i}@example.com" for i in range(self.n)}
        return len(want - set(emails)), len(emails) - len(set(emails))

    @staticmethod
    def kill(proc: subprocess.Popen[bytes], sig: int) -> None:
        """Send `sig` to a process group and wait for it (SIGKILL after 30 s)."""
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
        """Kill every process still running and release the store."""
        for proc in self.procs:
            if proc.poll() is None:
                self.kill(proc, signal.SIGKILL)
        self.store.close()


@pytest.fixture
def cluster_factory(tmp_path: Path, pg_url: str, redis_db: str) -> Iterator[Any]:
    """make(n, **options) -> a Cluster on Redis db 15; every one is stopped at the end."""
    made: list[Cluster] = []

    def make(n: int, **options: Any) -> Cluster:
        made.append(Cluster(tmp_path, pg_url, options.pop("redis_url", redis_db), n,
                            **options))
        return made[-1]

    yield make
    for c in made:
        c.close()
