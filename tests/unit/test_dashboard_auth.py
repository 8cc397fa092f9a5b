"""Dashboard credentials, signed cookies and security headers, without a server."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from hub.web.auth import NO_CREDENTIALS, Auth, AuthConfig, is_loopback
from hub.web.dashboard import _safe_next
from hub.web.security import CSP, SecurityHeaders

TOKEN = "a-long-dashboard-token-123"


@pytest.mark.parametrize(("env", "kw", "expected"), [
    ({}, {}, NO_CREDENTIALS),
    ({"HUB_DASHBOARD_TOKEN": "short"}, {}, "too short (5 characters)"),
    ({"HUB_DASHBOARD_USER": "ops"}, {}, "HUB_DASHBOARD_PASSWORD is not set"),
    ({"HUB_DASHBOARD_PASSWORD": "long enough"}, {}, "HUB_DASHBOARD_USER is not set"),
    ({"HUB_DASHBOARD_USER": "ops", "HUB_DASHBOARD_PASSWORD": "short"}, {}, "too short"),
    ({}, {"no_auth": True, "host": "0.0.0.0"}, "only allowed on 127.0.0.1"),
    ({}, {"no_auth": True, "host": "192.168.1.5"}, "only allowed on 127.0.0.1"),
])
def test_missing_or_weak_credentials_are_refused_with_what_to_set(
        env: dict[str, str], kw: dict[str, Any], expected: str) -> None:
    with pytest.raises(ValueError) as exc:
        AuthConfig.from_env(env, **kw)
    assert expected in str(exc.value)


def test_credentials_are_read_from_the_environment() -> None:
    cfg = AuthConfig.from_env({"HUB_DASHBOARD_TOKEN": TOKEN, "HUB_SECRET_KEY": "k"})
    assert (cfg.token, cfg.user, cfg.enabled, cfg.secret_key) == (TOKEN, None, True, b"k")
    both = AuthConfig.from_env({"HUB_DASHBOARD_USER": "ops",
                                "HUB_DASHBOARD_PASSWORD": "long enough"})
    assert (both.user, both.password, both.token) == ("ops", "long enough", None)
    assert len(both.secret_key) == 32  # generated per process when not given
    assert both.hidden_values() == ["long enough"]
    open_ = AuthConfig.from_env({}, no_auth=True, host="localhost")
    assert not open_.enabled and open_.hidden_values() == []


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.1.2.3", True), ("localhost", True), ("::1", True),
    ("[::1]", True), ("0.0.0.0", False), ("10.0.0.1", False), ("127.evil.com", False),
    ("localhost.evil.com", False)])
def test_loopback_names(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


@given(st.dictionaries(st.text(max_size=8), st.one_of(st.text(), st.integers(-2**63, 2**63 - 1),
                                                      st.booleans()), max_size=5))
def test_signed_values_round_trip_and_any_change_is_refused(payload: dict[str, Any]) -> None:
    auth = Auth(AuthConfig(TOKEN, secret_key=b"key"))
    signed = auth.sign(payload)
    assert auth.unsign(signed) == payload
    body, mac = signed.split(".")
    flipped = mac[:-1] + ("A" if mac[-1] != "A" else "B")
    assert auth.unsign(f"{body}.{flipped}") is None
    assert auth.unsign(f"{body}x.{mac}") is None
    assert Auth(AuthConfig(TOKEN, secret_key=b"other")).unsign(signed) is None


def test_changing_a_credential_ends_every_session() -> None:
    old = Auth(AuthConfig(TOKEN, secret_key=b"key"))
    _, cookie = old.new_session("token")
    assert old.unsign(cookie) is not None
    assert Auth(AuthConfig(TOKEN + "2", secret_key=b"key")).unsign(cookie) is None
    assert Auth(AuthConfig(TOKEN, "ops", "password1", b"key")).unsign(cookie) is None


def test_login_checks_each_credential() -> None:
    auth = Auth(AuthConfig(TOKEN, "ops", "password1", b"key"))
    assert auth.check_login({"token": TOKEN}) == "token"
    assert auth.check_login({"token": TOKEN[:-1]}) is None
    assert auth.check_login({"user": "ops", "password": "password1"}) == "ops"
    assert auth.check_login({"user": "ops", "password": "password2"}) is None
    assert auth.check_login({"user": "OPS", "password": "password1"}) is None
    assert auth.check_login({}) is None
    token_only = Auth(AuthConfig(TOKEN, secret_key=b"key"))
    assert token_only.check_login({"user": "", "password": ""}) is None


@pytest.mark.parametrize(("value", "safe"), [
    ("/flows/x?y=1", "/flows/x?y=1"), (None, "/"), ("", "/"), ("https://evil.example", "/"),
    ("//evil.example", "/"), ("/\\evil.example", "/"), ("flows", "/")])
def test_after_login_only_local_paths_are_followed(value: str | None, safe: str) -> None:
    assert _safe_next(value) == safe


def test_security_headers_are_added_but_never_override_an_endpoints_own() -> None:
    async def plain(_request: Any) -> PlainTextResponse:
        return PlainTextResponse("hi")

    async def framed(_request: Any) -> PlainTextResponse:
        return PlainTextResponse("hi", headers={"X-Frame-Options": "SAMEORIGIN"})

    app = Starlette(routes=[Route("/", plain), Route("/framed", framed)])
    app.add_middleware(SecurityHeaders)
    client = TestClient(app)
    r = client.get("/")
    assert r.headers["content-security-policy"] == CSP
    assert (r.headers["x-frame-options"], r.headers["x-content-type-options"],
            r.headers["referrer-policy"]) == ("DENY", "nosniff", "no-referrer")
    assert client.get("/framed").headers.get_list("x-frame-options") == ["SAMEORIGIN"]
    assert client.get("/missing").headers["x-frame-options"] == "DENY"
