"""`hub check --connect`: each connected system is called, and the answer said per system.

`hub` runs as a real process against real systems on loopback: the HubSpot sandbox (right
and wrong token, a port that never answers), a spreadsheet folder, PostgreSQL (a table that
does not exist). Exit codes: 0 all answered, 1 a system failed, 2 the config is wrong.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from connectors.hubspot.sandbox import HubSpotSandbox
from hub import registry
from hub.connector import BaseConnector, Capabilities, EntitySupport, Health
from tests.conftest import PG_START, PG_URL, _unavailable
from tests.e2e.conftest import Workspace, line_of

WRONG = "pat-wrong-7f3c9a1e"  # a token the sandbox refuses; must never be printed

CONFIG = """\
version: 1
systems:
  src:
    category: files
    owner: Ben (Purchasing)
    connection:
      connector: spreadsheet
      path: ./src
  crm:
    category: crm
    owner: Anna (Sales)
    connection:
      connector: hubspot
      base_url: {base_url}
      token: ${{HUBSPOT_TOKEN}}
{crm_extra}\
  sales-mailbox:
    category: email
    description: nobody owns it and it is not connected
flows:
  contacts: {{entity: contact, from: src, to: crm}}
"""


def config(base_url: str, crm_extra: str = "") -> str:
    return CONFIG.format(base_url=base_url, crm_extra=crm_extra)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[HubSpotSandbox]:
    with HubSpotSandbox(seed=4, count=2) as sb:
        yield sb


def _json(out: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(out)
    return data


def _by_system(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["system"]: c for c in data["connections"]}


# -- all answering ----------------------------------------------------------------------------


def test_every_system_answers_and_the_silo_is_listed_not_failed(
        ws: Workspace, sandbox: HubSpotSandbox) -> None:
    ws.write_config(config(sandbox.base_url))
    env = {"HUBSPOT_TOKEN": sandbox.token}
    ok = ws.hub("check", "--connect", env=env)
    assert ok.code == 0, str(ok)
    assert "src (spreadsheet): ok: " in ok.out
    assert "crm (hubspot): ok: HubSpot answered and accepted the token" in ok.out
    assert "sales-mailbox: not connected (a silo)" in ok.out
    assert "All 2 connected systems answered." in ok.out
    assert sandbox.token not in ok.text
    assert not ws.db.exists(), "check --connect must not touch the store"

    as_json = ws.hub("check", "--connect", "--json", env=env)
    assert as_json.code == 0, str(as_json)
    data = _json(as_json.out)
    assert data["ok"] is True
    checks = _by_system(data)
    assert [c["system"] for c in data["connections"]] == ["src", "crm", "sales-mailbox"]
    assert (checks["src"]["status"], checks["crm"]["status"]) == ("ok", "ok")
    assert checks["sales-mailbox"] == {**checks["sales-mailbox"], "status": "not connected",
                                       "connector": None,
                                       "message": "not connected (a silo)"}
    assert sandbox.token not in as_json.text


# -- a system that fails its check ------------------------------------------------------------


def test_a_wrong_token_fails_that_system_names_the_variable_and_hides_the_token(
        ws: Workspace, sandbox: HubSpotSandbox) -> None:
    ws.write_config(config(sandbox.base_url))
    env = {"HUBSPOT_TOKEN": WRONG}
    plain = ws.hub("check", env=env)
    assert plain.code == 0, "without --connect nothing is called: " + str(plain)

    bad = ws.hub("check", "--connect", env=env)
    assert bad.code == 1, str(bad)
    crm_line = line_of(ws.text, "connector: hubspot") - 1  # the connection block's line
    assert "crm (hubspot): FAILED: HubSpot refused the token: " in bad.out
    assert "401" in bad.out
    assert (f"what to do: check the connection's settings at {ws.config}:{crm_line} and the "
            "environment variable HUBSPOT_TOKEN") in bad.out
    assert "src (spreadsheet): ok: " in bad.out  # the others are still checked
    assert "1 of 2 connected systems failed the check: crm" in bad.err
    assert WRONG not in bad.text

    as_json = ws.hub("check", "--connect", "--json", env=env)
    assert as_json.code == 1, str(as_json)
    data = _json(as_json.out)
    assert data["ok"] is False
    crm = _by_system(data)["crm"]
    assert crm["status"] == "failed" and "HUBSPOT_TOKEN" in crm["hint"]
    assert crm["where"] == f"{ws.config}:{crm_line}"
    assert WRONG not in as_json.text


def test_a_system_that_never_answers_is_reported_after_the_timeout(ws: Workspace) -> None:
    # A socket that listens but never accepts: the connection opens, no answer ever comes.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        ws.write_config(config(f"http://127.0.0.1:{port}"))
        bad = ws.hub("check", "--connect", "--timeout", "1", env={"HUBSPOT_TOKEN": WRONG})
    assert bad.code == 1, str(bad)
    assert "crm (hubspot): FAILED (no answer): no answer within 1 second\n" in bad.out
    assert "check that crm is up and reachable from this machine" in bad.out
    assert "hub check --connect --timeout 60" in bad.out
    assert "src (spreadsheet): ok: " in bad.out


def test_a_missing_folder_says_which_setting(ws: Workspace, sandbox: HubSpotSandbox) -> None:
    ws.write_config(config(sandbox.base_url).replace("path: ./src", "path: ./gone"))
    bad = ws.hub("check", "--connect", env={"HUBSPOT_TOKEN": sandbox.token})
    assert bad.code == 1, str(bad)
    assert f"src (spreadsheet): FAILED: folder {ws.root / 'gone'} does not exist " \
           "(setting 'path' of system 'src')" in bad.out
    assert "crm (hubspot): ok" in bad.out


# -- wrong connection settings: the config is wrong -------------------------------------------


def test_settings_the_connector_refuses_are_a_config_problem(
        ws: Workspace, sandbox: HubSpotSandbox) -> None:
    extra = "      extra_properties: {contacts: liaison_last_activity}\n"
    ws.write_config(config(sandbox.base_url, extra))
    bad = ws.hub("check", "--connect", env={"HUBSPOT_TOKEN": sandbox.token})
    assert bad.code == 2, str(bad)
    at = f"{ws.config}:{line_of(ws.text, 'extra_properties')}"
    assert (f"crm (hubspot): FAILED (connection settings are wrong): cannot be set up: "
            f"connection crm ({at}): setting 'extra_properties': contacts must be a list of "
            "property names") in bad.out
    assert "src (spreadsheet): ok" in bad.out


# -- SQL: a table that does not exist ---------------------------------------------------------

SQL_CONFIG = """\
version: 1
systems:
  erp:
    category: accounting
    owner: Chloe (Finance)
    connection:
      connector: sql
      url: ${ERP_DB_URL}
      tables:
        contacts: no_such_table_for_check
  sales-mailbox: {category: email}
flows: {}
"""


def _pg_url_with_password(password: str) -> str:
    import sqlalchemy as sa

    try:
        import psycopg

        psycopg.connect(PG_URL.replace("+psycopg", ""), connect_timeout=3).close()
    except Exception:  # noqa: BLE001 - any failure means the server is not usable here
        _unavailable("PostgreSQL on 127.0.0.1:5432", PG_START)
    # Trust auth ignores the password: it is there to prove it is never printed.
    url = sa.make_url(PG_URL).set(password=password)
    return url.render_as_string(hide_password=False)


def test_a_sql_table_that_does_not_exist_is_named_without_the_password(ws: Workspace) -> None:
    password = "pw-9d2e-s3cret"
    ws.write_config(SQL_CONFIG)
    bad = ws.hub("check", "--connect", env={"ERP_DB_URL": _pg_url_with_password(password)})
    assert bad.code == 1, str(bad)
    assert "erp (sql): FAILED: system 'erp': there is no table 'no_such_table_for_check'" \
        in bad.out
    assert f"(set by tables.contacts ({ws.config}:{line_of(SQL_CONFIG, 'tables:')}))" \
        in bad.out
    assert "the environment variable ERP_DB_URL" in bad.out
    assert "sales-mailbox: not connected (a silo)" in bad.out
    assert password not in bad.text


# -- a connector that breaks: words, not a traceback ------------------------------------------


class _Exploding(BaseConnector):
    """A plugin whose check() has a bug (and puts its secret in the exception)."""

    name: ClassVar[str] = "exploding"
    capabilities: ClassVar[Capabilities] = Capabilities(
        entities={"contact": EntitySupport(object="contacts")},
        settings={"api_key": "the key, as ${ENV}"}, secret_settings=frozenset({"api_key"}))

    def check(self) -> Health:
        raise RuntimeError(f"boom: could not use key {self.connection.setting('api_key')}\n"
                           "second line")


def test_a_connector_bug_is_reported_in_words_with_the_secret_hidden(tmp_path: Path) -> None:
    secret = "k-5b7f0c-super"
    ws = Workspace(tmp_path / "hub", """\
version: 1
systems:
  odd: {category: other, owner: Ops, connection: {connector: exploding, api_key: "${ODD_KEY}"}}
flows: {}
""")
    with registry.register("exploding", _Exploding):
        bad = ws.cli("check", "--connect", env={"ODD_KEY": secret})
    assert bad.code == 1, str(bad)
    assert ("odd (exploding): FAILED (connector error): the exploding connector failed "
            "unexpectedly: RuntimeError: boom: could not use key ***") in bad.out
    assert "second line" not in bad.out and "Traceback" not in bad.text
    assert "a bug in the exploding connector" in bad.out
    assert secret not in bad.text
