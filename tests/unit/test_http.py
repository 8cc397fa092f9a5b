"""hub.http against a real scripted HTTP server on 127.0.0.1 (no mocks)."""

from __future__ import annotations

import socket
import ssl
import threading
from collections import deque
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import orjson
import pytest

from hub.config.model import RetryPolicy
from hub.errors import AuthError, PermanentError, RateLimited, TransientError
from hub.http import Pacer, make_client, parse_retry_after, vendor_message

TOKEN = "tok-SECRET-1234567890"
Reply = tuple[int, dict[str, str], bytes]


class Script:
    """Replies served in order; the last one repeats. Records every request seen."""

    def __init__(self) -> None:
        self.replies: deque[Reply] = deque()
        self.seen: list[dict[str, Any]] = []

    def add(self, status: int, body: Any = None, **headers: str) -> Script:
        raw = orjson.dumps(body) if body is not None else b""
        self.replies.append((status, {k.replace("_", "-"): v for k, v in headers.items()}, raw))
        return self

    def next(self) -> Reply:
        return self.replies.popleft() if len(self.replies) > 1 else self.replies[0]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Any

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        script: Script = self.server.script
        script.seen.append({"method": self.command, "path": self.path,
                            "auth": self.headers.get("Authorization"), "body": body})
        status, headers, raw = script.next()
        head = [f"HTTP/1.1 {status} X", f"Content-Length: {len(raw)}",
                "Content-Type: application/json"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode() + raw)

    do_GET = do_POST = _serve


@pytest.fixture
def server() -> Iterator[tuple[str, Script]]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.daemon_threads = True
    srv.script = Script()  # type: ignore[attr-defined]
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}", srv.script  # type: ignore[attr-defined]
    srv.shutdown()
    srv.server_close()


class Sleeps(list[float]):
    """An injected sleep that records waits instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def client(base: str, sleeps: Sleeps, attempts: int = 4, backoff_max: float = 10.0,
           **kw: Any) -> Any:
    return make_client(base, system="Acme CRM",
                       retry=RetryPolicy(attempts=attempts, backoff_initial=0.5,
                                         backoff_max=backoff_max),
                       auth_headers=lambda: {"Authorization": f"Bearer {TOKEN}"},
                       sleep=sleeps, seed=7, timeout=2.0, connect_timeout=1.0, **kw)


def test_retries_500_then_succeeds(server: tuple[str, Script]) -> None:
    base, script = server
    script.add(500, {"message": "boom"}).add(502).add(200, {"ok": True})
    sleeps = Sleeps()
    with client(base, sleeps) as http:
        assert http.get_json("/things") == {"ok": True}
    assert len(script.seen) == 3
    assert len(sleeps) == 2
    assert 0.25 <= sleeps[0] <= 0.5 and 0.5 <= sleeps[1] <= 1.0  # exponential, jittered
    assert all(s["auth"] == f"Bearer {TOKEN}" for s in script.seen)


def test_429_retry_after_seconds_is_honoured(server: tuple[str, Script]) -> None:
    base, script = server
    script.add(429, {"message": "slow down"}, Retry_After="3").add(200, {"ok": 1})
    sleeps = Sleeps()
    with client(base, sleeps) as http:
        assert http.get_json("/x") == {"ok": 1}
    assert list(sleeps) == [pytest.approx(3.0)]


def test_429_retry_after_http_date_is_honoured(server: tuple[str, Script]) -> None:
    base, script = server
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=5), usegmt=True)
    script.add(429, {}, Retry_After=when).add(200, {"ok": 1})
    sleeps = Sleeps()
    with client(base, sleeps) as http:
        http.get_json("/x")
    assert len(sleeps) == 1 and 3.0 <= sleeps[0] <= 5.0


def test_retry_after_beyond_cap_raises_rate_limited_without_sleeping(
        server: tuple[str, Script]) -> None:
    base, script = server
    script.add(429, {"message": "daily limit"}, Retry_After="120")
    sleeps = Sleeps()
    with client(base, sleeps, backoff_max=30) as http, pytest.raises(RateLimited) as info:
        http.get_json("/x")
    assert info.value.retry_after == pytest.approx(120)
    assert sleeps == [] and len(script.seen) == 1
    assert "daily limit" in str(info.value)


def test_attempts_are_bounded(server: tuple[str, Script]) -> None:
    base, script = server
    script.add(503, {"message": "down for maintenance"})
    sleeps = Sleeps()
    with client(base, sleeps, attempts=3) as http, pytest.raises(TransientError) as info:
        http.get_json("/x")
    assert len(script.seen) == 3 and len(sleeps) == 2
    message = str(info.value)
    assert "Acme CRM GET /x: 503" in message and "down for maintenance" in message
    assert "3 attempts" in message
    assert info.value.status == 503


def test_404_is_permanent_and_not_retried(server: tuple[str, Script]) -> None:
    base, script = server
    script.add(404, {"status": "error", "message": "Object not found", "category": "OBJECT_NOT_FOUND"})
    sleeps = Sleeps()
    with client(base, sleeps) as http, pytest.raises(PermanentError) as info:
        http.get_json("/crm/v3/objects/contacts/9?archived=false")
    assert not isinstance(info.value, TransientError)
    assert len(script.seen) == 1 and sleeps == []
    assert str(info.value).startswith("Acme CRM GET /crm/v3/objects/contacts/9: 404")
    assert "Object not found (OBJECT_NOT_FOUND)" in str(info.value)


@pytest.mark.parametrize("status", [401, 403])
def test_401_403_are_auth_errors(server: tuple[str, Script], status: int) -> None:
    base, script = server
    script.add(status, {"message": f"token {TOKEN} is invalid"})
    with client(base, Sleeps()) as http, pytest.raises(AuthError) as info:
        http.get_json("/x")
    assert len(script.seen) == 1
    assert TOKEN not in str(info.value) and "***" in str(info.value)


def test_connection_refused_is_transient() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    sleeps = Sleeps()
    with client(f"http://127.0.0.1:{port}", sleeps, attempts=2) as http, \
            pytest.raises(TransientError) as info:
        http.get_json("/x")
    assert "connection failed" in str(info.value) and len(sleeps) == 1
    assert TOKEN not in str(info.value)


def test_token_never_in_messages(server: tuple[str, Script]) -> None:
    base, script = server
    script.add(400, {"message": f"bad request with Bearer {TOKEN}"})
    with client(base, Sleeps()) as http, pytest.raises(PermanentError) as info:
        http.post_json("/x", {"a": 1})
    assert TOKEN not in str(info.value) and TOKEN not in repr(info.value.args)
    assert orjson.loads(script.seen[0]["body"]) == {"a": 1}


def test_non_json_error_body_is_truncated(server: tuple[str, Script]) -> None:
    base, script = server
    script.replies.append((400, {}, b"x" * 5000))
    with client(base, Sleeps()) as http, pytest.raises(PermanentError) as info:
        http.get_json("/x")
    assert len(str(info.value)) < 400


def test_auth_headers_read_at_every_attempt(server: tuple[str, Script]) -> None:
    base, script = server
    script.add(500).add(200, {})
    tokens = iter(["one", "two"])
    http = make_client(base, system="S", retry=RetryPolicy(attempts=2),
                       auth_headers=lambda: {"Authorization": f"Bearer {next(tokens)}"},
                       sleep=Sleeps())
    http.get_json("/x")
    assert [s["auth"] for s in script.seen] == ["Bearer one", "Bearer two"]


def test_pacer_slows_down_when_few_requests_remain(server: tuple[str, Script]) -> None:
    base, script = server
    script.add(200, {}, X_RateLimit_Remaining="50", X_RateLimit_Interval="10000")
    script.add(200, {}, X_RateLimit_Remaining="1", X_RateLimit_Interval="10000")
    pauses = Sleeps()
    pacer = Pacer(remaining_header="X-RateLimit-Remaining",
                  interval_ms_header="X-RateLimit-Interval", reserve=5, sleep=pauses)
    with client(base, Sleeps(), on_response=pacer) as http:
        http.get_json("/x")
        assert pauses == []
        http.get_json("/x")
    assert list(pauses) == [pytest.approx(5.0)]  # 10 s window spread over the last request + 1


def test_pacer_ignores_429(server: tuple[str, Script]) -> None:
    base, script = server
    script.add(429, {}, Retry_After="1", X_RateLimit_Remaining="0").add(200, {})
    pauses, sleeps = Sleeps(), Sleeps()
    pacer = Pacer(remaining_header="X-RateLimit-Remaining", sleep=pauses)
    with client(base, sleeps, on_response=pacer) as http:
        http.get_json("/x")
    assert pauses == [] and list(sleeps) == [pytest.approx(1.0)]


def test_parse_retry_after() -> None:
    assert parse_retry_after("2.5") == 2.5
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0


def test_vendor_message_shapes() -> None:
    def resp(body: Any) -> httpx.Response:
        return httpx.Response(400, content=orjson.dumps(body))
    assert vendor_message(resp({"error": {"message": "nested"}})) == "nested"
    assert vendor_message(resp({"errors": [{"message": "first"}]})) == "first"
    assert vendor_message(resp([{"Message": "xero"}])) == "xero"


def test_clients_share_one_tls_context_per_certificate_setting(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import certifi

    from hub.http import tls_context

    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    first = make_client("http://127.0.0.1:9", system="A", retry=RetryPolicy())
    second = make_client("http://127.0.0.1:9", system="B", retry=RetryPolicy())
    shared = tls_context()
    assert shared.verify_mode == ssl.CERT_REQUIRED and shared.check_hostname
    for http in (first, second):
        assert http._client._transport._pool._ssl_context is shared  # type: ignore[attr-defined]
    # $SSL_CERT_FILE still chooses the CA bundle, as with httpx's own default.
    monkeypatch.setenv("SSL_CERT_FILE", certifi.where())
    own = make_client("http://127.0.0.1:9", system="C", retry=RetryPolicy())
    assert own._client._transport._pool._ssl_context is tls_context() is not shared  # type: ignore[attr-defined]
