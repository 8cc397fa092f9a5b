"""Secrets in the config: references, missing variables, redaction, literal refusal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.config import (
    Secret,
    is_secret_key,
    loads,
    missing_secrets,
    redact,
    redact_text,
)
from hub.config.secrets import ref_name
from hub.errors import ConfigError

CONFIG = """\
systems:
  crm:
    category: crm
    connection:
      connector: hubspot
      token: ${LIAISON_TEST_TOKEN}
      oauth: {client_id: abc, client_secret: "${LIAISON_TEST_CLIENT_SECRET}"}
  books:
    category: accounting
    connection: {connector: xero, api_key: "${LIAISON_TEST_TOKEN}"}
  sheet:
    category: files
    connection: {connector: spreadsheet, path: ./data}
flows: {}
"""
CANARY = "canary-7d1c9e0f-token"
CANARY_2 = "canary/with spaces&symbols"


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    monkeypatch.chdir(tmp_path)
    for name in ("LIAISON_TEST_TOKEN", "LIAISON_TEST_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_references_become_secrets_that_print_as_references(clean_env: pytest.MonkeyPatch,
                                                            ) -> None:
    s = loads(CONFIG)
    token = s.connection("crm").settings["token"]
    assert token == Secret("LIAISON_TEST_TOKEN", "hub.yaml:6")
    assert str(token) == "${LIAISON_TEST_TOKEN}"
    assert s.connection("crm").settings["oauth"] == {
        "client_id": "abc", "client_secret": Secret("LIAISON_TEST_CLIENT_SECRET", "hub.yaml:7")}
    clean_env.setenv("LIAISON_TEST_TOKEN", CANARY)
    assert s.connection("crm").setting("token") == CANARY
    assert CANARY not in repr(s)


def test_missing_secrets_names_file_line_and_variable(clean_env: pytest.MonkeyPatch) -> None:
    s = loads(CONFIG)
    assert [str(p) for p in missing_secrets(s)] == [
        ("hub.yaml:6: systems.crm.connection.token: environment variable LIAISON_TEST_TOKEN is "
        "not set (the config refers to it as ${LIAISON_TEST_TOKEN}); set it before starting "
        "the hub"),
        ("hub.yaml:7: systems.crm.connection.oauth.client_secret: environment variable "
        "LIAISON_TEST_CLIENT_SECRET is not set (the config refers to it as "
        "${LIAISON_TEST_CLIENT_SECRET}); set it before starting the hub"),
        ("hub.yaml:10: systems.books.connection.api_key: environment variable LIAISON_TEST_TOKEN "
        "is not set (the config refers to it as ${LIAISON_TEST_TOKEN}); set it before starting "
        "the hub"),
    ]
    assert [p.key for p in missing_secrets(s, systems=["books", "sheet"])] == [
        "systems.books.connection.api_key"]
    clean_env.setenv("LIAISON_TEST_TOKEN", "")
    clean_env.setenv("LIAISON_TEST_CLIENT_SECRET", "x")
    assert [p.message.split(" (")[0] for p in missing_secrets(s)] == [
        "environment variable LIAISON_TEST_TOKEN is empty"] * 2
    clean_env.setenv("LIAISON_TEST_TOKEN", CANARY)
    assert missing_secrets(s) == []


def test_redact_hides_secrets_everywhere(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("LIAISON_TEST_TOKEN", CANARY)
    s = loads(CONFIG)
    out = json.dumps(redact(s), default=str)
    assert CANARY not in out and "LIAISON_TEST_TOKEN" not in out
    assert redact(s)["systems"]["crm"]["connection"]["settings"]["token"] == "***"
    record = {"name": "x", "Password": CANARY, "nested": [{"refresh_token": CANARY_2}],
              "auth": (Secret("X"), "plain"), "api-key": None, "primary_key": "id"}
    assert redact(record) == {"name": "x", "Password": "***", "nested": [{"refresh_token": "***"}],
                              "auth": ("***", "plain"), "api-key": None, "primary_key": "id"}


def test_redact_text_hides_revealed_values(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("LIAISON_TEST_TOKEN", CANARY)
    clean_env.setenv("LIAISON_TEST_CLIENT_SECRET", CANARY_2)
    s = loads(CONFIG)
    vendor = (f"401: bad token {CANARY} in header; url=/x?secret=canary%2Fwith%20spaces%26symbols"
              f" body={CANARY_2}")
    assert redact_text(vendor, s) == "401: bad token *** in header; url=/x?secret=*** body=***"
    assert redact_text("nothing secret here", s) == "nothing secret here"


@pytest.mark.parametrize(("key", "secret"), [
    ("token", True), ("Token", True), ("api-key", True), ("apikey", True), ("passwd", True),
    ("client_secret", True), ("bot_token", True), ("db_password", True), ("private_key", True),
    ("credentials", True), ("key", False), ("base_url", False), ("path", False),
    ("primary_key", False), ("tokens_per_minute", False), ("monkey", False),
])
def test_secret_looking_keys(key: str, secret: bool) -> None:
    assert is_secret_key(key) is secret


_PRINTABLE = st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp"))


@settings(max_examples=60, deadline=None)
@given(value=st.text(_PRINTABLE, min_size=12, max_size=40).filter(
    lambda v: ref_name(v) is None and v.strip() == v and len(set(v)) > 3))
def test_literal_secrets_are_never_echoed(value: str) -> None:
    text = ("systems:\n  crm:\n    category: crm\n    connection:\n      connector: hubspot\n"
            f"      token: {json.dumps(value)}\n")
    with pytest.raises(ConfigError) as info:
        loads(text, file="/nonexistent/hub.yaml")
    assert value not in str(info.value)
    assert [p.key for p in info.value.problems] == ["systems.crm.connection.token"]


_KEYS = st.sampled_from(["token", "password", "name", "client_secret", "items", "url"])
_TREE = st.recursive(
    st.one_of(st.just(CANARY), st.integers(), st.none()),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(_KEYS, inner, max_size=3)),
    max_leaves=12)


@settings(max_examples=100, deadline=None)
@given(tree=_TREE)
def test_redact_leaves_no_value_under_a_secret_key(tree: object) -> None:
    def secret_values(obj: object, under_secret: bool) -> list[object]:
        if isinstance(obj, dict):
            return [v for k, c in obj.items() for v in secret_values(c, under_secret
                                                                    or is_secret_key(k))]
        if isinstance(obj, (list, tuple)):
            return [v for c in obj for v in secret_values(c, under_secret)]
        return [obj] if under_secret and obj is not None and obj != "***" else []

    redacted = redact({"wrapper": tree, "token": Secret("X")})
    assert secret_values(redacted, False) == []
    # Values outside secret keys survive untouched.
    assert redact({"items": tree}) == {"items": redact(tree)}
