"""The parts of hub.metrics that are plain logic: staleness and system states (judged by
hub.health; tests/unit/test_health_rules.py checks the collector against the dashboard), the quota
headers hub.http reports, the call listener against a real loopback server (timeouts,
refused connections, 5xx, 429), the per-commit tally, multiprocess file names."""

from __future__ import annotations

import http.server
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.config import loads
from hub.config.model import RetryPolicy
from hub.errors import RateLimited, TransientError
from hub.health import stale_since
from hub.http import (
    CallOutcome,
    add_call_listener,
    make_client,
    quota_headers,
    remove_call_listener,
)
from hub.metrics import multiproc
from hub.metrics.states import FlowRuns, flow_state, system_states
from hub.sync.hooks import IN_COLUMNS, RunCounts, Tally

NOW = datetime(2026, 11, 23, 12, 7, tzinfo=UTC)  # a Monday

CONFIG = """
version: 1
systems:
  crm: {category: crm, owner: Anna, connection: {connector: spreadsheet, path: ./crm}}
  sheet: {category: files, owner: Ben, connection: {connector: spreadsheet, path: ./sheet}}
  books: {category: accounting, owner: Chloe, connection: {connector: spreadsheet, path: ./b}}
  lonely: {category: files, owner: Dan, connection: {connector: spreadsheet, path: ./l}}
  mailbox: {category: email}
flows:
  contacts: {entity: contact, from: crm, to: sheet, schedule: "*/15 * * * *"}
  invoices: {entity: invoice, from: books, to: sheet}
  paused: {entity: company, from: lonely, to: sheet, enabled: false}
"""


def _settings(tmp: Path):  # type: ignore[no-untyped-def]
    return loads(CONFIG, file=str(tmp / "hub.yaml"))


def _runs(status: str | None, through_ago: timedelta | None, new_dead: int = 0) -> FlowRuns:
    through = NOW - through_ago if through_ago is not None else None
    return FlowRuns(status, NOW, through, new_dead)


@pytest.mark.parametrize(("schedule", "expected"), [
    ("*/15 * * * *", datetime(2026, 11, 23, 11, 30, tzinfo=UTC)),
    ("0 * * * *", datetime(2026, 11, 23, 10, 0, tzinfo=UTC)),
    ("0 6 * * mon-fri", datetime(2026, 11, 19, 6, 0, tzinfo=UTC)),  # Thursday: 3 slots back
    (None, NOW - timedelta(hours=24)),
])
def test_a_flow_is_stale_from_its_schedules_third_newest_slot(
        tmp_path: Path, schedule: str | None, expected: datetime) -> None:
    flow = _settings(tmp_path).flow("contacts")
    flow = type(flow)(**{**flow.__dict__, "schedule": schedule})
    assert stale_since(flow, NOW) == expected
    just_in = expected + timedelta(seconds=1)
    assert flow_state(flow, FlowRuns("succeeded", NOW, just_in), NOW) == "healthy"
    assert flow_state(flow, FlowRuns("partial", NOW, just_in), NOW) == "healthy"
    too_old = expected - timedelta(seconds=1)
    assert flow_state(flow, FlowRuns("partial", NOW, too_old), NOW) == "stale"
    assert flow_state(flow, None, NOW) == "stale"  # never ran


@pytest.mark.parametrize(("contacts", "invoices", "expected"), [
    (_runs("succeeded", timedelta(minutes=10)), _runs("partial", timedelta(hours=2)),
     {"crm": "healthy", "sheet": "healthy", "books": "healthy"}),
    (_runs("failed", timedelta(minutes=20)), _runs("succeeded", timedelta(hours=2)),
     {"crm": "failing", "sheet": "failing", "books": "healthy"}),
    (_runs("succeeded", timedelta(minutes=40)), _runs("succeeded", timedelta(hours=2)),
     {"crm": "stale", "sheet": "stale", "books": "healthy"}),
    (None, _runs("failed", timedelta(hours=30)),
     {"crm": "stale", "sheet": "failing", "books": "failing"}),
    # partial with records newly dead-lettered: the dead letters are growing
    (_runs("succeeded", timedelta(minutes=10)), _runs("partial", timedelta(hours=2), 3),
     {"crm": "healthy", "sheet": "failing", "books": "failing"}),
])
def test_system_states(tmp_path: Path, contacts: FlowRuns | None, invoices: FlowRuns,
                       expected: dict[str, str]) -> None:
    runs = {"invoices": invoices, **({"contacts": contacts} if contacts else {})}
    states = system_states(_settings(tmp_path), runs, NOW)
    # lonely is connected but only a paused flow uses it: a silo, like mailbox
    assert states == {**expected, "lonely": "disconnected", "mailbox": "disconnected"}


def test_quota_headers_of_each_vendor() -> None:
    headers = {
        "X-HubSpot-RateLimit-Remaining": "187", "X-HubSpot-RateLimit-Max": "190",
        "X-HubSpot-RateLimit-Daily-Remaining": "499000", "X-MinLimit-Remaining": "58",
        "X-DayLimit-Remaining": "4990", "x-rate-limit-api-token-remaining": "99",
        "x-ratelimit-remaining": "39", "x-daily-requests-left": "9000",
        "X-RateLimit-Reset": "2026-11-23T12:00Z", "Content-Length": "12",
        "X-RateLimit-Remaining-Broken": "n/a", "x-ratelimit-nearlimit-remaining": "soon",
    }
    assert quota_headers(headers) == {
        "x-hubspot-ratelimit-remaining": 187, "x-hubspot-ratelimit-daily-remaining": 499000,
        "x-minlimit-remaining": 58, "x-daylimit-remaining": 4990,
        "x-rate-limit-api-token-remaining": 99, "x-ratelimit-remaining": 39,
        "x-daily-requests-left": 9000}


@given(st.dictionaries(st.from_regex(r"[A-Za-z][A-Za-z-]{0,30}", fullmatch=True),
                       st.integers(min_value=0, max_value=10**9).map(str), max_size=8))
def test_only_limit_headers_count_as_quota(headers: dict[str, str]) -> None:
    found = quota_headers(headers)
    for name, remaining in found.items():
        assert name == name.lower()
        assert "limit" in name or "requests" in name
        assert name.endswith(("-remaining", "-left"))
        assert any(k.lower() == name and int(v) == remaining for k, v in headers.items())


@given(st.lists(st.tuples(st.sampled_from(IN_COLUMNS), st.integers(0, 1000)), max_size=30),
       st.sets(st.integers(0, 29)))
def test_tallies_taken_add_up_to_what_the_counters_gained(
        steps: list[tuple[str, int]], takes: set[int]) -> None:
    counts = RunCounts(read=7, unchanged=3)  # a resumed run starts from earlier steps
    tally = Tally(counts, IN_COLUMNS)
    total: dict[str, int] = {}
    for i, (column, n) in enumerate(steps):
        setattr(counts, column, getattr(counts, column) + n)
        if i in takes:
            for k, v in tally.take().items():
                assert v > 0
                total[k] = total.get(k, 0) + v
    for k, v in tally.take().items():
        total[k] = total.get(k, 0) + v
    gained: dict[str, int] = {}
    for column, n in steps:
        if n:
            gained[column] = gained.get(column, 0) + n
    assert total == gained


class _Slow(http.server.BaseHTTPRequestHandler):
    """Answers by path: /slow sleeps, /busy is 429, /down is 502, else 200 with quota."""

    def do_GET(self) -> None:
        if self.path.startswith("/slow"):
            time.sleep(0.5)
        status = {"/busy": 429, "/down": 502}.get(self.path, 200)
        self.send_response(status)
        if status == 429:
            self.send_header("Retry-After", "0")
        self.send_header("X-RateLimit-Remaining", "41")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Slow)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_the_call_listener_hears_every_attempt_and_its_cause(server: str) -> None:
    heard: list[CallOutcome] = []
    add_call_listener(heard.append)
    policy = RetryPolicy(attempts=2, backoff_initial=0.0, backoff_max=0.0)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    try:
        with make_client(server, system="Vendor (crm)", retry=policy, timeout=0.2,
                         sleep=lambda _s: None) as client:
            client.get_json("/ok")
            with pytest.raises(TransientError):
                client.get_json("/slow")
            with pytest.raises(RateLimited):
                client.get_json("/busy")
            with pytest.raises(TransientError):
                client.get_json("/down")
        with make_client(closed, system="Vendor (crm)", retry=policy,
                         sleep=lambda _s: None) as client, pytest.raises(TransientError):
            client.get_json("/")
    finally:
        remove_call_listener(heard.append)
    assert [h.failure for h in heard] == [None, "timeout", "timeout", "rate_limit",
                                         "rate_limit", "server_error", "server_error",
                                         "connection", "connection"]
    assert heard[0] == CallOutcome("Vendor (crm)", {"x-ratelimit-remaining": 41}, None)
    assert all(h.system == "Vendor (crm)" for h in heard)


def test_a_failing_listener_never_fails_the_call(server: str) -> None:
    def broken(_outcome: CallOutcome) -> None:
        raise RuntimeError("metrics are down")

    add_call_listener(broken)
    try:
        with make_client(server, system="Vendor (crm)", retry=RetryPolicy()) as client:
            assert client.get_json("/ok") == {}
    finally:
        remove_call_listener(broken)


def test_multiprocess_files_are_named_by_host_and_pid(tmp_path: Path) -> None:
    ident = multiproc.identity(1234)
    host, _, pid = ident.rpartition("-")
    assert pid == "1234" and host and "_" not in ident
    assert multiproc._owner(f"/x/counter_{ident}.db") == ("counter", ident)
    assert multiproc._owner(f"/x/gauge_livemostrecent_{ident}.db") == (
        "gauge_livemostrecent", ident)
    a, b = tmp_path / "a" / "hub.yaml", tmp_path / "b" / "hub.yaml"
    assert multiproc.default_dir(a) == multiproc.default_dir(a)
    assert multiproc.default_dir(a) != multiproc.default_dir(b)
