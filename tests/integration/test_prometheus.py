"""A real Prometheus scrapes a real hub: the hub's app on uvicorn (a free loopback port) after
real syncs (HubSpot sandbox with injected 429s, CSV folders), Prometheus with a generated
config (1 s scrapes, the alert rules of deploy/prometheus/rules.yml, storage in tmp), its
HTTP API polled until the series are there."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from connectors.hubspot.sandbox import Faults, HubSpotSandbox
from hub.audit import AuditObserver
from hub.config import loads
from hub.metrics.observer import MetricsObserver
from hub.store import Store
from hub.sync.engine import SyncEngine
from hub.web.app import make_app
from hub.web.metrics import TOKEN_ENV
from tests.integration import cluster
from tests.integration.metrics_support import TOKEN_VAR, Served, hub_config

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "rules.yml"
WAIT = 30.0  # seconds Prometheus gets to start and to show the series


def _prometheus() -> str:
    found = shutil.which("prometheus")
    if found is None:
        cluster.unavailable("the prometheus binary is not installed (Debian: apt-get install "
                            "prometheus)")
    assert found is not None
    return found


class Prometheus:
    """A prometheus process scraping `target` every second, with the hub's alert rules."""

    def __init__(self, tmp: Path, target: str) -> None:
        self.folder = tmp / "prometheus"
        self.folder.mkdir()
        shutil.copy(RULES, self.folder / "rules.yml")
        config = {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                  "rule_files": ["rules.yml"],
                  "scrape_configs": [{"job_name": "liaison",
                                      "static_configs": [{"targets": [target]}]}]}
        (self.folder / "prometheus.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
        self.port = cluster.free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, binary: str) -> None:
        log = (self.folder / "prometheus.log").open("wb")
        self.proc = subprocess.Popen(
            [binary, f"--config.file={self.folder / 'prometheus.yml'}",
             f"--storage.tsdb.path={self.folder / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
            stdout=log, stderr=log, start_new_session=True)
        log.close()
        self.until(lambda: httpx.get(f"{self.base}/-/ready", timeout=2).status_code == 200,
                   "Prometheus did not become ready")

    def query(self, expr: str) -> list[dict[str, Any]]:
        answer = httpx.get(f"{self.base}/api/v1/query", params={"query": expr}, timeout=5)
        answer.raise_for_status()
        body = answer.json()
        assert body["status"] == "success", body
        return list(body["data"]["result"])

    def scalar(self, expr: str) -> float:
        """The single value of an instant query (AssertionError unless exactly one)."""
        result = self.query(expr)
        assert len(result) == 1, (expr, result)
        return float(result[0]["value"][1])

    def until(self, check: Any, what: str) -> None:
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            assert self.proc is None or self.proc.poll() is None, self.log()
            try:
                if check():
                    return
            except (httpx.HTTPError, AssertionError):
                pass
            time.sleep(0.25)
        raise AssertionError(f"{what} within {WAIT:.0f} s\n{self.log()}")

    def log(self) -> str:
        path = self.folder / "prometheus.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)


@pytest.fixture
def binary() -> str:
    return _prometheus()


@pytest.fixture
def sandbox() -> Iterator[HubSpotSandbox]:
    faults = Faults(rate_limit=0.25, retry_after=0.01, seed=3)
    with HubSpotSandbox(seed=7, count=25, faults=faults) as sb:
        yield sb


def test_prometheus_scrapes_the_hub_and_evaluates_its_rules(
        binary: str, tmp_path: Path, sandbox: HubSpotSandbox,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN_VAR, sandbox.token)
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    settings = loads(hub_config(tmp_path, sandbox.base_url), file=str(tmp_path / "hub.yaml"))
    store = Store(settings.store_url, auto_migrate=True)
    engine = SyncEngine(settings, store, observers=[AuditObserver(store),
                                                     MetricsObserver(settings, store)])
    before = _local_reads("crm")
    assert engine.run("crm-to-sheet").status == "succeeded"
    assert engine.run("suppliers-to-sheet").status == "partial"
    monkeypatch.setenv(TOKEN_VAR, "revoked")
    assert engine.run("crm-to-sheet").status == "failed"
    prometheus: Prometheus | None = None
    try:
        with Served(make_app(settings, store, lambda _s, _e: None)) as served:
            prometheus = Prometheus(tmp_path, f"127.0.0.1:{served.port}")
            prometheus.start(binary)
            p = prometheus
            p.until(lambda: p.query('liaison_records_read_total{system="crm"}'),
                    "the hub's series did not appear")
            assert p.scalar('up{job="liaison"}') == 1
            assert p.scalar('sum(liaison_records_read_total{system="crm",direction="in"})') \
                - before == 25
            assert p.scalar('sum(liaison_records_written_total{system="sheet",'
                            'flow="crm-to-sheet",direction="out"})') >= 25
            assert p.scalar('sum(liaison_retries_total{system="crm",cause="rate_limit"})') > 0
            assert p.scalar('liaison_system_state{system="mailbox",state="disconnected"}') == 1
            assert p.scalar('liaison_flow_failing{flow="crm-to-sheet"}') == 1
            assert p.scalar('liaison_dead_letters_open{system="suppliers",direction="in"}') == 1
            assert p.scalar('liaison_queue_depth{queue="flows"}') == 0
            assert p.query('liaison_api_quota_remaining{system="crm",'
                           'header="x-hubspot-ratelimit-daily-remaining"}')
            # The deploy rules load and evaluate against the hub's real series: the failing
            # flow's alert is pending (it fires after its `for`), and no rule errs.
            p.until(lambda: _alert_state(p, "LiaisonFlowFailing") == "pending",
                    "LiaisonFlowFailing did not become pending")
            groups = httpx.get(f"{p.base}/api/v1/rules", timeout=5).json()["data"]["groups"]
            rules = [r for g in groups for r in g["rules"]]
            assert len(rules) >= 5
            assert all(r["health"] == "ok" for r in rules), [
                (r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"]
    finally:
        if prometheus is not None:
            prometheus.stop()
        store.close()


def _alert_state(p: Prometheus, name: str) -> str | None:
    alerts = httpx.get(f"{p.base}/api/v1/alerts", timeout=5).json()["data"]["alerts"]
    states = [a["state"] for a in alerts if a["labels"].get("alertname") == name]
    return states[0] if states else None


def _local_reads(system: str) -> float:
    # Counters live as long as the test process: earlier tests may have counted already.
    from hub.metrics.series import series

    total = 0.0
    for family in series().read.collect():
        for sample in family.samples:
            if sample.name.endswith("_total") and sample.labels.get("system") == system:
                total += sample.value
    return total
