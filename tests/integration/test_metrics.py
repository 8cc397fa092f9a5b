"""/metrics of a real hub: records, runs, retries and quotas counted from real syncs (a
HubSpot sandbox with injected 429s and 5xx, CSV folders), gauges read from the store and
from a real Redis broker, the optional bearer token."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from connectors.hubspot.sandbox import Faults, HubSpotSandbox
from hub.audit import AuditObserver
from hub.config import loads
from hub.config.model import Settings
from hub.jobs.actors import Jobs
from hub.jobs.broker import make_broker
from hub.metrics import names
from hub.metrics.observer import MetricsObserver
from hub.store import Store
from hub.sync.engine import RunReport, SyncEngine
from hub.web.app import make_app
from hub.web.metrics import TOKEN_ENV
from tests.integration import cluster
from tests.integration.metrics_support import (
    TOKEN_VAR,
    Samples,
    hub_config,
    labelled,
    parse,
    value,
)

CRM = {"system": "crm", "connector": "hubspot", "flow": "crm-to-sheet", "entity": "contact"}
SUPPLIERS = {"system": "suppliers", "connector": "spreadsheet", "flow": "suppliers-to-sheet",
             "entity": "contact"}


class Hub:
    """A config, store and engine (audit and metrics observing) in a tmp folder."""

    def __init__(self, tmp: Path, sandbox: HubSpotSandbox, **config: str) -> None:
        self.text = hub_config(tmp, sandbox.base_url, **config)
        self.settings: Settings = loads(self.text, file=str(tmp / "hub.yaml"))
        self.store = Store(self.settings.store_url, auto_migrate=True)
        self.engine = SyncEngine(self.settings, self.store, observers=[
            AuditObserver(self.store), MetricsObserver(self.settings, self.store)])
        self.app = make_app(self.settings, self.store, lambda _s, _e: None)

    def sync(self, flow: str) -> RunReport:
        """Run a flow now."""
        return self.engine.run(flow)

    def scrape(self, **headers: str) -> Samples:
        """GET /metrics; the samples."""
        with TestClient(self.app) as client:
            answer = client.get("/metrics", headers=headers)
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
        return parse(answer.text)


@pytest.fixture
def sandbox() -> Iterator[HubSpotSandbox]:
    faults = Faults(rate_limit=0.25, server_error=0.2, retry_after=0.01, seed=3)
    with HubSpotSandbox(seed=5, count=30, faults=faults) as sb:
        yield sb


@pytest.fixture
def hub(tmp_path: Path, sandbox: HubSpotSandbox, monkeypatch: pytest.MonkeyPatch) -> Iterator[Hub]:
    monkeypatch.setenv(TOKEN_VAR, sandbox.token)
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    h = Hub(tmp_path, sandbox)
    yield h
    h.store.close()


def _delta(after: Samples, before: Samples, name: str, **labels: str) -> float:
    # Counters live as long as the test process: compare with a scrape taken before.
    return value(after, name, **labels) - value(before, name, **labels)


def test_a_sync_moves_the_record_counters(hub: Hub) -> None:
    before = hub.scrape()
    crm = hub.sync("crm-to-sheet")
    first = hub.sync("suppliers-to-sheet")
    again = hub.sync("suppliers-to-sheet")  # nothing changed: all unchanged, bad row again
    assert (crm.status, first.status, again.status) == ("succeeded", "partial", "partial")
    after = hub.scrape()

    def d(name: str, **labels: str) -> float:
        return _delta(after, before, f"liaison_records_{name}_total", **labels)

    assert d("read", **CRM, direction="in") == crm.counts.read == 30
    assert d("written", **CRM, direction="in") == 30  # created in the hub
    assert d("read", **SUPPLIERS, direction="in") == 10
    assert d("written", **SUPPLIERS, direction="in") == 4
    assert d("unchanged", **SUPPLIERS, direction="in") == 4
    assert d("dead_lettered", **SUPPLIERS, direction="in") == 2
    assert d("written", system="sheet", connector="spreadsheet", direction="out") == 34
    assert d("written", system="sheet", flow="crm-to-sheet", direction="out") == 30
    assert d("read", direction="out") == 0
    for spec in (names.RECORDS_READ, names.RECORDS_WRITTEN, names.RECORDS_UNCHANGED,
                 names.RECORDS_DEAD):
        label_sets = labelled(after, spec.name)
        assert label_sets, spec.name
        assert all(set(ls) == set(names.RECORD_LABELS) for ls in label_sets), label_sets
    runs = _delta(after, before, "liaison_runs_total", flow="suppliers-to-sheet",
                  status="partial")
    assert runs == 2
    assert _delta(after, before, "liaison_run_duration_seconds_count",
                  flow="crm-to-sheet") == 1


def test_retries_by_cause_and_the_vendor_quota_come_from_the_http_layer(
        hub: Hub, sandbox: HubSpotSandbox) -> None:
    before = hub.scrape()
    sent_before = len(sandbox.waits_sent)
    report = hub.sync("crm-to-sheet")
    assert report.status == "succeeded", report
    after = hub.scrape()
    rate_limited = _delta(after, before, "liaison_retries_total", system="crm",
                          connector="hubspot", cause="rate_limit")
    assert rate_limited == len(sandbox.waits_sent) - sent_before > 0
    assert _delta(after, before, "liaison_retries_total", system="crm",
                  cause="server_error") > 0
    assert all(set(ls) == {"system", "connector", "cause"}
               for ls in labelled(after, "liaison_retries_total"))
    daily = value(after, "liaison_api_quota_remaining", system="crm", connector="hubspot",
                  header="x-hubspot-ratelimit-daily-remaining")
    assert daily == 499000
    window = labelled(after, "liaison_api_quota_remaining")
    assert {"system": "crm", "connector": "hubspot",
            "header": "x-hubspot-ratelimit-remaining"} in window


def test_store_gauges_backlog_last_success_and_system_states(
        hub: Hub, monkeypatch: pytest.MonkeyPatch) -> None:
    t0 = time.time()
    assert hub.sync("crm-to-sheet").status == "succeeded"
    assert hub.sync("suppliers-to-sheet").status == "partial"
    s = hub.scrape()
    assert value(s, "liaison_store_up") == 1
    last = value(s, "liaison_flow_last_success_timestamp_seconds", flow="crm-to-sheet",
                 entity="contact")
    assert t0 - 1 <= last <= time.time() + 1
    # A partial run went through: a success, not a stale flow (hub.health)...
    assert value(s, "liaison_flow_last_success_timestamp_seconds",
                 flow="suppliers-to-sheet") >= t0 - 1
    assert value(s, "liaison_flow_stale", flow="suppliers-to-sheet") == 0
    assert value(s, "liaison_dead_letters_open", **SUPPLIERS, direction="in") == 1
    assert value(s, "liaison_dead_letters_open", direction="out") == 0
    # ...but the record it dead-lettered is new: dead letters are growing, so it is failing,
    # as the dashboard says too.
    assert value(s, "liaison_flow_failing", flow="suppliers-to-sheet") == 1
    assert value(s, "liaison_system_state", system="suppliers", state="failing") == 1
    assert value(s, "liaison_system_state", system="mailbox", state="disconnected") == 1
    assert value(s, "liaison_system_state", system="crm", state="healthy") == 1
    assert value(s, "liaison_systems", state="failing") == 2  # suppliers and sheet
    assert value(s, "liaison_systems", state="disconnected") == 1
    assert value(s, "liaison_flow_stale", flow="crm-to-sheet") == 0
    assert value(s, "liaison_system_last_sync_timestamp_seconds", system="sheet") >= t0 - 1

    # The bad row is given up on: nothing grows any more, every connected system is healthy.
    with hub.store.begin() as conn:
        for row in hub.store.list_dead_letters(conn, flow="suppliers-to-sheet"):
            hub.store.resolve_dead_letter(conn, int(row.id), "discarded")
    s = hub.scrape()
    assert value(s, "liaison_flow_failing", flow="suppliers-to-sheet") == 0
    assert value(s, "liaison_systems", state="healthy") == 3

    # The CRM token is revoked: the next run fails, and so do the systems it touches.
    monkeypatch.setenv(TOKEN_VAR, "revoked-token")
    assert hub.sync("crm-to-sheet").status == "failed"
    s = hub.scrape()
    assert value(s, "liaison_flow_failing", flow="crm-to-sheet") == 1
    assert value(s, "liaison_flow_failing", flow="suppliers-to-sheet") == 0
    assert value(s, "liaison_system_state", system="crm", state="failing") == 1
    assert value(s, "liaison_system_state", system="sheet", state="failing") == 1
    assert value(s, "liaison_system_state", system="suppliers", state="healthy") == 1
    assert value(s, "liaison_systems", state="failing") == 2
    # the last success is still the earlier run's
    assert value(s, "liaison_flow_last_success_timestamp_seconds",
                 flow="crm-to-sheet") == last


def test_a_flow_never_run_is_stale(hub: Hub) -> None:
    s = hub.scrape()
    assert value(s, "liaison_flow_stale", flow="crm-to-sheet") == 1
    assert value(s, "liaison_flow_last_success_timestamp_seconds", flow="crm-to-sheet") == 0
    assert value(s, "liaison_systems", state="stale") == 3
    assert not labelled(s, "liaison_system_last_sync_timestamp_seconds")


def test_the_optional_bearer_token(tmp_path: Path, sandbox: HubSpotSandbox,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "metrics-token-5c1f"
    monkeypatch.setenv(TOKEN_ENV, secret)
    monkeypatch.setenv(TOKEN_VAR, sandbox.token)
    hub = Hub(tmp_path, sandbox)
    try:
        with TestClient(hub.app) as client:
            for headers in ({}, {"Authorization": "Bearer wrong"},
                            {"Authorization": secret}):
                refused = client.get("/metrics", headers=headers)
                assert refused.status_code == 401
                assert TOKEN_ENV in refused.text and secret not in refused.text
                assert refused.headers["www-authenticate"].startswith("Bearer")
            ok = client.get("/metrics", headers={"Authorization": f"Bearer {secret}"})
            assert ok.status_code == 200 and "liaison_store_up 1.0" in ok.text
            assert secret not in ok.text
            assert client.get("/healthz").status_code == 200  # probes need no token
    finally:
        hub.store.close()


def test_queue_depth_from_a_real_redis_and_a_broker_that_went_away(
        tmp_path: Path, sandbox: HubSpotSandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN_VAR, sandbox.token)
    server = cluster.RedisServer(tmp_path / "redis")
    try:
        try:
            server.start()
        except (OSError, AssertionError) as exc:
            cluster.unavailable(f"redis-server could not start: {exc}")
        hub = Hub(tmp_path, sandbox, broker=server.url)
        broker = make_broker(server.url)
        try:
            jobs = Jobs(hub.settings, hub.store, broker)
            assert {jobs.sync_flow.queue_name, jobs.deliver_flow.queue_name} == \
                set(names.QUEUES)
            for _ in range(3):
                jobs.sync_flow.send("crm-to-sheet", "manual", False)
            jobs.deliver_flow.send("crm-to-sheet", "sheet")
            jobs.deliver_flow.send_with_options(args=("crm-to-sheet", "sheet"), delay=600_000)
            s = hub.scrape()
            assert value(s, "liaison_broker_up") == 1
            assert value(s, "liaison_queue_depth", queue="flows") == 3
            assert value(s, "liaison_queue_depth", queue="deliveries") == 1
            assert value(s, "liaison_queue_delayed", queue="deliveries") == 1
            server.kill()
            s = hub.scrape()  # still answers, says the broker is down
            assert value(s, "liaison_broker_up") == 0
            assert not labelled(s, "liaison_queue_depth")
            assert value(s, "liaison_store_up") == 1
        finally:
            broker.close()
            hub.store.close()
    finally:
        server.stop()


def test_the_in_process_broker_has_nothing_queued(hub: Hub) -> None:
    s = hub.scrape()
    assert value(s, "liaison_broker_up") == 1
    assert {ls["queue"] for ls in labelled(s, "liaison_queue_depth")} == set(names.QUEUES)
    assert value(s, "liaison_queue_depth") == 0


def test_a_store_that_does_not_answer_is_reported_not_fatal(
        hub: Hub, tmp_path: Path) -> None:
    with TestClient(hub.app) as client:
        db = tmp_path / "liaison.db"
        hub.store.close()
        db.rename(tmp_path / "gone.db")
        db.mkdir()  # SQLite cannot open a folder: every query fails
        answer = client.get("/metrics")
    assert answer.status_code == 200
    s = parse(answer.text)
    assert value(s, "liaison_store_up") == 0
    assert not labelled(s, "liaison_flow_last_success_timestamp_seconds")
