"""Webhook-triggered syncs over real HTTP on loopback: the hub's app served by uvicorn, the
HubSpot sandbox signing deliveries as HubSpot does (signature v3)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from connectors.hubspot.sandbox import HubSpotSandbox
from connectors.hubspot.sandbox_webhooks import signed_headers
from hub.audit import AuditObserver
from hub.config import loads
from hub.config.model import Settings
from hub.connector import WebhookEvent
from hub.store import Store
from hub.sync.engine import SyncEngine
from hub.web import make_app
from hub.web.trigger import FlowTrigger
from hub.web.webhooks import webhook_systems
from tests.integration.helpers import read_csv
from tests.integration.metrics_support import Served as ServedApp

SECRET = "hs-client-secret-9f8e7d"
SECRET_VAR = "T_WEBHOOK_HS_SECRET"
TOKEN_VAR = "T_WEBHOOK_HS_TOKEN"
STARTUP = 10.0  # seconds the server gets to start listening
E2E_WAIT = 10.0  # seconds a webhook-triggered sync gets to reach the spreadsheet


class Served(ServedApp):
    """The hub's app served on loopback, with the webhook URL of each system."""

    def url(self, system: str) -> str:
        """The webhook URL of a system."""
        return f"{self.base}/webhooks/{system}"


def _config(tmp: Path, sandbox_url: str, flows: str = "") -> str:
    return f"""
version: 1
store: sqlite:///{tmp / 'liaison.db'}
systems:
  crm:
    category: crm
    owner: Anna
    connection:
      connector: hubspot
      base_url: {sandbox_url}
      token: ${{{TOKEN_VAR}}}
      client_secret: ${{{SECRET_VAR}}}
  sheets:
    category: files
    owner: Ben
    connection: {{connector: spreadsheet, path: "{tmp / 'sheets'}"}}
  mailbox:
    category: email
flows:
{flows or '''  crm-contacts:
    entity: contact
    from: crm
    to: sheets'''}
"""


class Recorder:
    """An on_events callback that remembers what it was given."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[WebhookEvent]]] = []
        self.fail = False
        self.lock = threading.Lock()

    def __call__(self, system: str, events: list[WebhookEvent]) -> None:
        if self.fail:
            raise RuntimeError("the queue is down")
        with self.lock:
            self.calls.append((system, list(events)))


@pytest.fixture
def sandbox() -> Iterator[HubSpotSandbox]:
    with HubSpotSandbox(seed=5, count=3) as sb:
        yield sb


@pytest.fixture
def hub_env(tmp_path: Path, sandbox: HubSpotSandbox,
            monkeypatch: pytest.MonkeyPatch) -> tuple[Settings, Store]:
    monkeypatch.setenv(SECRET_VAR, SECRET)
    monkeypatch.setenv(TOKEN_VAR, sandbox.token)
    (tmp_path / "sheets").mkdir()
    text = _config(tmp_path, sandbox.base_url)
    settings = loads(text, file=str(tmp_path / "hub.yaml"))
    store = Store(settings.store_url)
    return settings, store


@pytest.fixture
def served(hub_env: tuple[Settings, Store]) -> Iterator[tuple[Served, Recorder, list[str]]]:
    """The app with a recording on_events; the third item collects every response text."""
    settings, store = hub_env
    recorder = Recorder()
    texts: list[str] = []
    with Served(make_app(settings, store, recorder)) as srv:
        yield srv, recorder, texts
    store.close()
    # Whatever happened in the test, the secret never went back over the wire.
    assert all(SECRET not in t for t in texts)


def _events(*ids: int, kind: str = "contact.propertyChange") -> list[dict[str, Any]]:
    return [{"eventId": i, "subscriptionId": 1002, "portalId": 62515, "appId": 54321,
             "occurredAt": int(time.time() * 1000), "subscriptionType": kind,
             "attemptNumber": 0, "objectId": 500 + i, "propertyName": "firstname",
             "propertyValue": "X", "changeSource": "CRM_UI"} for i in ids]


def _send(sandbox: HubSpotSandbox, url: str, texts: list[str], events: list[dict[str, Any]],
          **kw: Any) -> httpx.Response:
    answers = sandbox.send_webhooks(url, events, client_secret=kw.pop("secret", SECRET), **kw)
    assert len(answers) == 1
    texts.append(answers[0].text + str(answers[0].headers))
    return answers[0]


# -- the endpoint -------------------------------------------------------------------------


def test_a_valid_signed_delivery_is_accepted_and_handed_on(
        served: tuple[Served, Recorder, list[str]], sandbox: HubSpotSandbox) -> None:
    srv, recorder, texts = served
    answer = _send(sandbox, srv.url("crm"), texts,
                   _events(1, 2) + _events(3, kind="company.creation"))
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"accepted": 3, "duplicates": 0}
    assert len(recorder.calls) == 1
    system, events = recorder.calls[0]
    assert system == "crm"
    assert [(e.event_id, e.object, e.external_id, e.action) for e in events] == [
        ("1", "contacts", "501", "updated"), ("2", "contacts", "502", "updated"),
        ("3", "companies", "503", "created")]
    assert all(e.occurred_at and e.occurred_at.endswith("Z") for e in events)


def test_a_forged_signature_is_refused(served: tuple[Served, Recorder, list[str]],
                                       sandbox: HubSpotSandbox) -> None:
    srv, recorder, texts = served
    answer = _send(sandbox, srv.url("crm"), texts, _events(1), secret="guessed-secret")
    assert answer.status_code == 401
    assert "signature" in answer.json()["error"]
    assert recorder.calls == []


def test_a_body_changed_after_signing_is_refused(served: tuple[Served, Recorder, list[str]],
                                                 sandbox: HubSpotSandbox) -> None:
    srv, recorder, texts = served
    answer = _send(sandbox, srv.url("crm"), texts, _events(1),
                   tamper=lambda body: body.replace(b'"objectId":501', b'"objectId":666'))
    assert answer.status_code == 401
    assert recorder.calls == []


def test_a_stale_delivery_is_refused_as_too_old(served: tuple[Served, Recorder, list[str]],
                                                sandbox: HubSpotSandbox) -> None:
    srv, recorder, texts = served
    six_minutes_ago = int(time.time() * 1000) - 6 * 60 * 1000
    answer = _send(sandbox, srv.url("crm"), texts, _events(1), timestamp_ms=six_minutes_ago)
    assert answer.status_code == 401
    assert "too old" in answer.json()["error"]
    assert recorder.calls == []


def test_a_replayed_delivery_is_answered_200_but_not_handed_on_again(
        served: tuple[Served, Recorder, list[str]], sandbox: HubSpotSandbox) -> None:
    srv, recorder, texts = served
    first = _send(sandbox, srv.url("crm"), texts, _events(7, 8))
    again = _send(sandbox, srv.url("crm"), texts, _events(7, 8))  # re-signed, fresh stamp
    partly = _send(sandbox, srv.url("crm"), texts, _events(8, 9))
    assert (first.status_code, again.status_code, partly.status_code) == (200, 200, 200)
    assert again.json() == {"accepted": 0, "duplicates": 2}
    assert partly.json() == {"accepted": 1, "duplicates": 1}
    assert [[e.event_id for e in events] for _, events in recorder.calls] == [["7", "8"],
                                                                            ["9"]]


def test_unknown_systems_and_systems_without_webhooks_are_404(
        served: tuple[Served, Recorder, list[str]], sandbox: HubSpotSandbox) -> None:
    srv, recorder, texts = served
    for system in ("nope", "mailbox", "sheets"):
        answer = _send(sandbox, srv.url(system), texts, _events(1))
        assert answer.status_code == 404, system
        assert system in answer.json()["error"]
    assert recorder.calls == []


def test_malformed_json_with_a_valid_signature_is_400(
        served: tuple[Served, Recorder, list[str]], sandbox: HubSpotSandbox) -> None:
    srv, recorder, texts = served
    for body in (b"[{not json", b'{"eventId": 1}', b'[{"eventId": 1}]'):
        answer = sandbox.webhooks.deliver(srv.url("crm"), body, client_secret=SECRET)
        texts.append(answer.text)
        assert answer.status_code == 400, body
        assert answer.json()["error"]
    assert recorder.calls == []


def test_missing_signature_headers_are_401_and_nothing_is_echoed(
        served: tuple[Served, Recorder, list[str]], sandbox: HubSpotSandbox) -> None:
    srv, recorder, texts = served
    body = orjson.dumps(_events(1))
    plain = httpx.post(srv.url("crm"), content=body, timeout=10)
    texts.append(plain.text)
    assert plain.status_code == 401
    headers = signed_headers("wrong", "POST", srv.url("crm"), body, int(time.time() * 1000))
    forged = httpx.post(srv.url("crm"), content=body, headers=headers, timeout=10)
    texts.append(forged.text)
    assert forged.status_code == 401
    assert headers["X-HubSpot-Signature-v3"] not in forged.text
    assert recorder.calls == []


def test_a_delivery_the_hub_could_not_hand_on_is_not_taken_for_a_replay(
        served: tuple[Served, Recorder, list[str]], sandbox: HubSpotSandbox) -> None:
    srv, recorder, texts = served
    recorder.fail = True
    failed = _send(sandbox, srv.url("crm"), texts, _events(11))
    assert failed.status_code == 503  # HubSpot retries non-2xx answers
    recorder.fail = False
    retried = _send(sandbox, srv.url("crm"), texts, _events(11))
    assert retried.status_code == 200
    assert retried.json() == {"accepted": 1, "duplicates": 0}
    assert [e.event_id for e in recorder.calls[0][1]] == ["11"]


def test_an_oversized_body_is_413(served: tuple[Served, Recorder, list[str]],
                                  sandbox: HubSpotSandbox) -> None:
    srv, recorder, texts = served
    answer = sandbox.webhooks.deliver(srv.url("crm"), b"[" + b" " * (2 << 20) + b"]",
                                      client_secret=SECRET)
    texts.append(answer.text)
    assert answer.status_code == 413
    assert recorder.calls == []


def test_a_missing_secret_is_503_without_details(
        served: tuple[Served, Recorder, list[str]], sandbox: HubSpotSandbox,
        monkeypatch: pytest.MonkeyPatch) -> None:
    srv, recorder, texts = served
    monkeypatch.delenv(SECRET_VAR)
    answer = _send(sandbox, srv.url("crm"), texts, _events(1))
    assert answer.status_code == 503
    assert SECRET_VAR not in answer.text  # the config's details stay in the hub's log
    assert recorder.calls == []


def test_healthz_reports_the_store(served: tuple[Served, Recorder, list[str]]) -> None:
    srv, _, texts = served
    answer = httpx.get(f"{srv.base}/healthz", timeout=10)
    texts.append(answer.text)
    assert answer.status_code == 200
    assert answer.json() == {"status": "ok", "store": "ok"}


def test_healthz_is_503_when_the_store_is_gone(tmp_path: Path,
                                               hub_env: tuple[Settings, Store]) -> None:
    settings, _ = hub_env
    broken = Store(f"sqlite:///{tmp_path / 'gone' / 'x.db'}")
    broken.close()
    shutil.rmtree(tmp_path / "gone")  # the database's folder vanished (a lost volume)
    with Served(make_app(settings, broken, Recorder())) as srv:
        answer = httpx.get(f"{srv.base}/healthz", timeout=10)
    assert answer.status_code == 503
    assert answer.json()["store"] == "unreachable"


def test_behind_a_proxy_the_public_url_is_what_is_signed(
        hub_env: tuple[Settings, Store], sandbox: HubSpotSandbox) -> None:
    settings, store = hub_env
    recorder = Recorder()
    public = "https://hub.example.com/liaison"
    with Served(make_app(settings, store, recorder, public_url=public + "/")) as srv:
        body = orjson.dumps(_events(21))
        stamp = int(time.time() * 1000)
        # HubSpot signs the address it was given (the proxy's), then reaches us through it.
        as_public = signed_headers(SECRET, "POST", f"{public}/webhooks/crm?src=hs%40x",
                                   body, stamp)
        ok = httpx.post(srv.url("crm") + "?src=hs%40x", content=body, headers=as_public,
                        timeout=10)
        as_local = signed_headers(SECRET, "POST", srv.url("crm"), body, stamp)
        refused = httpx.post(srv.url("crm"), content=body, headers=as_local, timeout=10)
    assert ok.status_code == 200, ok.text
    assert refused.status_code == 401
    assert len(recorder.calls) == 1


def test_webhook_systems_lists_connected_systems_whose_connector_takes_webhooks(
        hub_env: tuple[Settings, Store]) -> None:
    assert webhook_systems(hub_env[0]) == ["crm"]


# -- the store ------------------------------------------------------------------------------


def test_event_ids_are_accepted_once_per_system_and_pruned(store_url: str) -> None:
    store = Store(store_url)
    try:
        with store.begin() as conn:
            assert store.accept_webhook_events(conn, "crm", ["1", "2", "2", "3"]) == \
                ["1", "2", "3"]
        with store.begin() as conn:
            assert store.accept_webhook_events(conn, "crm", ["3", "4"]) == ["4"]
            assert store.accept_webhook_events(conn, "other", ["3"]) == ["3"]
            assert store.accept_webhook_events(conn, "crm", []) == []
        with store.begin() as conn:
            assert store.prune_webhook_events(conn, "2000-01-01T00:00:00Z") == 0
            assert store.prune_webhook_events(conn, "9999-01-01T00:00:00Z") == 5
        with store.begin() as conn:
            assert store.accept_webhook_events(conn, "crm", ["1"]) == ["1"]
    finally:
        store.close()


# -- the default trigger -------------------------------------------------------------------


def test_the_trigger_queues_matching_flows_once(hub_env: tuple[Settings, Store],
                                                tmp_path: Path) -> None:
    text = _config(tmp_path, "http://127.0.0.1:9", flows="""  crm-contacts:
    entity: contact
    from: crm
    to: sheets
  crm-companies:
    entity: company
    from: crm
    to: sheets
  sheet-contacts:
    entity: contact
    from: sheets
    to: crm
  paused:
    entity: contact
    from: crm
    to: sheets
    enabled: false""")
    settings = loads(text, file=str(tmp_path / "hub.yaml"))
    started, release = threading.Event(), threading.Event()
    ran: list[str] = []

    def run_flow(flow: str) -> None:
        started.set()
        release.wait(10)
        ran.append(flow)

    trigger = FlowTrigger(settings, hub_env[1], run_flow=run_flow)
    try:
        contact = WebhookEvent("1", "contacts", "5", "updated")
        company = WebhookEvent("2", "companies", "6", "created")
        assert trigger.flows_for("crm", [contact]) == ["crm-contacts"]
        assert trigger.flows_for("crm", [company, contact]) == ["crm-contacts",
                                                                "crm-companies"]
        assert trigger.flows_for("sheets", [contact]) == ["sheet-contacts"]
        trigger("crm", [contact])
        assert started.wait(10)
        for _ in range(5):  # a burst while the first run is still going
            trigger("crm", [contact])
        release.set()
        assert trigger.wait_idle(10)
        assert ran == ["crm-contacts", "crm-contacts"]  # the running one + one coalesced
    finally:
        trigger.close()


def test_a_run_that_could_not_start_is_tried_again(hub_env: tuple[Settings, Store]) -> None:
    settings, store = hub_env
    calls: list[str] = []

    def run_flow(flow: str) -> None:
        calls.append(flow)
        if len(calls) == 1:
            from hub.errors import SyncError
            raise SyncError("flow crm-contacts is already running")

    trigger = FlowTrigger(settings, store, run_flow=run_flow, retry_delay=0.05)
    try:
        trigger("crm", [WebhookEvent("1", "contacts", "5", "updated")])
        assert trigger.wait_idle(10)
        assert calls == ["crm-contacts", "crm-contacts"]
    finally:
        trigger.close()


# -- end to end -------------------------------------------------------------------------------


def _wait_for(check: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


def _emails(sheets: Path) -> set[str]:
    return {v for row in read_csv(sheets / "contacts.csv") for v in row.values() if "@" in v}


def test_a_contact_created_in_hubspot_reaches_the_spreadsheet_through_a_webhook(
        hub_env: tuple[Settings, Store], sandbox: HubSpotSandbox, tmp_path: Path) -> None:
    settings, store = hub_env
    sheets = tmp_path / "sheets"
    first = SyncEngine(settings, store, observers=[AuditObserver(store)]).run("crm-contacts")
    assert first.status == "succeeded", first
    before = _emails(sheets)
    assert len(before) == 3
    trigger = FlowTrigger(settings, store)
    try:
        with Served(make_app(settings, store, trigger)) as srv:
            sandbox.create("contacts", email="webhook.person@example.com",
                           firstname="Webby", lastname="Hook")
            answers = sandbox.send_webhooks(srv.url("crm"), client_secret=SECRET)
            assert [a.status_code for a in answers] == [200]
            assert _wait_for(lambda: "webhook.person@example.com" in _emails(sheets),
                             E2E_WAIT), "the contact did not reach contacts.csv"
            # Automatic delivery, as a subscribed HubSpot app gets it.
            sandbox.subscribe(srv.url("crm"), client_secret=SECRET, interval=0.05)
            sandbox.create("contacts", email="second.person@example.com", firstname="Sec")
            assert _wait_for(lambda: "second.person@example.com" in _emails(sheets),
                             E2E_WAIT), "the automatic delivery did not reach contacts.csv"
            assert trigger.wait_idle(E2E_WAIT)
    finally:
        trigger.close()
    with store.connect() as conn:
        runs = store.list_runs(conn, "crm-contacts")
    assert [r.trigger for r in runs][:2] == ["webhook", "webhook"]
    assert all(r.status == "succeeded" for r in runs)
    store.close()


# -- the command ------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_hub_serve_prints_the_webhook_urls_serves_and_stops_on_ctrl_c(
        hub_env: tuple[Settings, Store], tmp_path: Path, sandbox: HubSpotSandbox) -> None:
    hub_env[1].close()
    (tmp_path / "hub.yaml").write_text(_config(tmp_path, sandbox.base_url), encoding="utf-8")
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "hub.cli", "-c", str(tmp_path / "hub.yaml"), "serve",
         "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # The dashboard `hub serve` also serves refuses to start without a credential.
        env={**os.environ, "PYTHONUNBUFFERED": "1",
             "HUB_DASHBOARD_TOKEN": "webhook-test-dashboard-token",
             # Metric files in this test's folder, not a default one that outlives it.
             "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics")})
    try:
        base = f"http://127.0.0.1:{port}"
        assert _wait_for(lambda: _answers(f"{base}/healthz"), STARTUP * 3), \
            "hub serve did not answer /healthz"
        answers = sandbox.send_webhooks(f"{base}/webhooks/crm", _events(1),
                                        client_secret=SECRET)
        assert [a.status_code for a in answers] == [200]
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert f"crm: POST {base}/webhooks/crm" in out
    assert "sheets" not in out  # a spreadsheet takes no webhooks
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert SECRET not in out + err
    assert any((tmp_path / "metrics").glob("*.db")), "metric files left outside the test"


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
