"""Multiprocess metrics for real: worker processes count into $PROMETHEUS_MULTIPROC_DIR and one
scrape of a real `hub serve` process adds them up; processes that end (or are killed) are
folded into the archive without the totals moving; `hub worker` processes on Redis and
PostgreSQL, and a worker host's own exporter (`hub worker --metrics-port`)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hub.metrics import multiproc
from tests.integration import cluster
from tests.integration.helpers import contact, write_csv
from tests.integration.metrics_support import Samples, parse, value

ROOT = Path(__file__).resolve().parents[2]
WAIT = 30.0  # seconds a process gets to start answering


def _config(tmp: Path) -> Path:
    for name, ids in (("a", range(6)), ("c", range(100, 104))):
        write_csv(tmp / name / "contacts.csv", [contact(i) for i in ids])
        (tmp / f"{name}-out").mkdir()
    text = f"""
version: 1
store: sqlite:///{tmp / 'liaison.db'}
systems:
  a: {{category: crm, owner: Anna, connection: {{connector: spreadsheet, path: ./a}}}}
  b: {{category: files, owner: Ben, connection: {{connector: spreadsheet, path: ./a-out}}}}
  c: {{category: crm, owner: Anna, connection: {{connector: spreadsheet, path: ./c}}}}
  d: {{category: files, owner: Ben, connection: {{connector: spreadsheet, path: ./c-out}}}}
flows:
  one: {{entity: contact, from: a, to: b}}
  two: {{entity: contact, from: c, to: d}}
"""
    config = tmp / "hub.yaml"
    config.write_text(text, encoding="utf-8")
    return config


class Procs:
    """Processes started by a test; every one is stopped at the end."""

    def __init__(self, tmp: Path, env: dict[str, str]) -> None:
        self.tmp = tmp
        self.env = {**os.environ, **env, "PYTHONPATH": str(ROOT)}
        self.env.pop("HUB_METRICS_TOKEN", None)
        # `hub serve` wants a dashboard credential; /metrics itself needs none.
        self.env["HUB_DASHBOARD_TOKEN"] = "dashboard-token-for-tests-0123456789"
        self.procs: list[subprocess.Popen[str]] = []

    def start(self, *args: str, stdin: bool = False) -> subprocess.Popen[str]:
        log = (self.tmp / f"proc{len(self.procs)}.log").open("w")
        proc = subprocess.Popen([sys.executable, *args], env=self.env, cwd=self.tmp,
                                stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                stdout=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                stderr=log, text=True, start_new_session=True)
        log.close()
        self.procs.append(proc)
        return proc

    def serve(self, config: Path) -> str:
        """A `hub serve` on a free port; its base URL once /healthz answers."""
        port = cluster.free_port()
        proc = self.start("-m", "hub.cli", "-c", str(config), "serve", "--port", str(port))
        base = f"http://127.0.0.1:{port}"
        wait_answer(f"{base}/healthz", proc, self.logs)
        return base

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}"
                         for p in sorted(self.tmp.glob("proc*.log")))

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


def wait_answer(url: str, proc: subprocess.Popen[Any], logs: Any) -> httpx.Response:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{proc.args} exited {proc.returncode}\n{logs()}")
        try:
            answer = httpx.get(url, timeout=2)
            if answer.status_code == 200:
                return answer
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} did not answer in {WAIT:.0f} s\n{logs()}")


def scrape(base: str) -> Samples:
    answer = httpx.get(f"{base}/metrics", timeout=10)
    assert answer.status_code == 200, answer.text
    return parse(answer.text)


def files(folder: Path) -> set[str]:
    return {p.name for p in folder.glob("*.db")}


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Procs]:
    folder = tmp_path / "metrics"
    folder.mkdir()
    p = Procs(tmp_path, {multiproc.ENV: str(folder)})
    yield p
    p.close()


def test_one_scrape_of_hub_serve_adds_up_two_worker_processes(
        procs: Procs, tmp_path: Path) -> None:
    config = _config(tmp_path)
    folder = tmp_path / "metrics"
    children = [procs.start("-m", "tests.integration.metrics_child", str(config), flow,
                            stdin=True) for flow in ("one", "two")]
    reports = []
    for child in children:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line, procs.logs()
        reports.append(json.loads(line))
    assert [(r["read"], r["written"]) for r in reports] == [(6, 6), (4, 4)], reports
    pids = {multiproc.identity(c.pid) for c in children}
    assert all(any(name.endswith(f"_{ident}.db") for name in files(folder)) for ident in pids)

    base = procs.serve(config)
    live = scrape(base)
    assert value(live, "liaison_records_read_total", direction="in") == 10
    assert value(live, "liaison_records_read_total", flow="one") == 6
    assert value(live, "liaison_records_written_total", direction="out") == 10
    assert value(live, "liaison_runs_total", status="succeeded") == 2
    assert value(live, "liaison_run_duration_seconds_count") == 2
    assert value(live, "liaison_store_up") == 1  # the store gauges come along

    # One child ends normally (its counters are folded into the archive), the other is
    # killed (its files stay until a sweep folds them): the totals never move.
    first, second = children
    assert first.stdin is not None
    first.stdin.close()
    assert first.wait(timeout=WAIT) == 0
    assert not any(name.endswith(f"_{multiproc.identity(first.pid)}.db")
                   for name in files(folder))
    assert "counter_archive.db" in files(folder)
    os.killpg(second.pid, signal.SIGKILL)
    second.wait(timeout=WAIT)
    assert any(name.endswith(f"_{multiproc.identity(second.pid)}.db") for name in files(folder))
    assert value(scrape(base), "liaison_records_read_total") == 10
    assert multiproc.sweep(folder) == 1
    left = files(folder)
    assert not any(name.endswith(f"_{multiproc.identity(second.pid)}.db") for name in left)
    folded = scrape(base)
    for name in ("liaison_records_read_total", "liaison_records_written_total",
                 "liaison_runs_total", "liaison_run_duration_seconds_count",
                 "liaison_run_duration_seconds_bucket"):
        assert value(folded, name) == value(live, name), name


def test_a_killed_process_live_gauges_are_removed(procs: Procs, tmp_path: Path) -> None:
    folder = tmp_path / "metrics"
    script = ("import sys, time\n"
              "from hub.metrics.series import series\n"
              "series().quota.labels('crm', 'hubspot', 'x-ratelimit-remaining').set(7)\n"
              "series().retries.labels('crm', 'hubspot', 'timeout').inc(3)\n"
              "print('ready', flush=True)\n"
              "time.sleep(60)\n")
    child = procs.start("-c", script, stdin=True)
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "ready", procs.logs()
    ident = multiproc.identity(child.pid)
    assert f"gauge_livemostrecent_{ident}.db" in files(folder)
    os.killpg(child.pid, signal.SIGKILL)
    child.wait(timeout=WAIT)
    multiproc.sweep(folder)
    assert files(folder) == {"counter_archive.db"}
    registry_text = _render(folder)
    assert value(registry_text, "liaison_retries_total", cause="timeout") == 3
    assert not [k for k in registry_text if k[0] == "liaison_api_quota_remaining"]


def _render(folder: Path) -> Samples:
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(multiproc.collector(folder))
    return parse(generate_latest(registry).decode())


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[cluster.RedisServer]:
    server = cluster.RedisServer(tmp_path / "redis")
    try:
        try:
            server.start()
        except (OSError, AssertionError) as exc:
            cluster.unavailable(f"redis-server could not start: {exc}")
        yield server
    finally:
        server.stop()


def test_hub_workers_on_redis_and_postgresql_are_seen_by_one_scrape(
        tmp_path: Path, pg_url: str, redis_server: cluster.RedisServer, procs: Procs) -> None:
    folder = tmp_path / "metrics"
    work = tmp_path / "cluster"
    work.mkdir()
    c = cluster.Cluster(work, pg_url, redis_server.url, 1200,
                        env={multiproc.ENV: str(folder), "HUB_STEP_RECORDS": "200"})
    try:
        exporter_port = cluster.free_port()
        c.worker()
        exported = c._spawn("worker", "--processes", "1", "--threads", "2",
                            "--metrics-port", str(exporter_port))
        c.enqueue()
        c.wait_done(120)
        base = procs.serve(c.config)
        deadline = time.monotonic() + WAIT
        while True:  # the last delivery's commit and its count land a moment apart
            s = scrape(base)
            if value(s, "liaison_records_written_total", direction="out") >= 1200 or \
                    time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert value(s, "liaison_records_read_total", system="a", direction="in") == 1200
        assert value(s, "liaison_records_written_total", system="b", direction="out") == 1200
        assert value(s, "liaison_runs_total", flow="contacts", status="succeeded") == 1
        assert value(s, "liaison_queue_depth", queue="flows") == 0
        own = wait_answer(f"http://127.0.0.1:{exporter_port}/metrics", exported, c.logs)
        mine = parse(own.text)
        # Same folder on this machine: the exporter sees every worker process too, and no
        # store gauges (those come from `hub serve` only, not once per worker).
        assert value(mine, "liaison_records_read_total") == 1200
        assert "liaison_store_up" not in {k[0] for k in mine}
    finally:
        c.close()
