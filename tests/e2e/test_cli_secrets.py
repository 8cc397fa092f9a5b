"""Secrets never leave the environment: not in output, not in the store."""

from __future__ import annotations

import json
import socket
import sqlite3
from collections.abc import Iterator

import pytest

from connectors.hubspot.sandbox import HubSpotSandbox
from tests.e2e.conftest import Workspace, write_csv

CANARY = "canary-7f3a9b2c-do-not-print"
ENV = {"CRM_TOKEN": CANARY}

CONFIG = """\
version: 1
systems:
  crm:
    category: crm
    owner: Anna
    connection:
      connector: hubspot
      base_url: {base_url}
      token: ${{CRM_TOKEN}}
      retry: {{attempts: 1, backoff_initial: 0.01, backoff_max: 0.01}}
  sheet:
    category: files
    owner: Ben
    connection:
      connector: spreadsheet
      path: ./sheet
flows:
  crm-to-sheet:
    entity: contact
    from: crm
    to: sheet
  sheet-to-crm:
    entity: contact
    from: sheet
    to: crm
"""


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _store_dump(ws: Workspace) -> str:
    conn = sqlite3.connect(ws.db)
    try:
        return "\n".join(conn.iterdump())
    finally:
        conn.close()


@pytest.fixture
def sandbox() -> Iterator[HubSpotSandbox]:
    """The HubSpot emulator on 127.0.0.1; it expects a token other than the canary."""
    sb = HubSpotSandbox(seed=3, count=3)
    sb.start()
    try:
        yield sb
    finally:
        sb.stop()


def test_the_token_never_appears_in_output_or_store(ws: Workspace) -> None:
    ws.write_config(CONFIG.format(base_url=f"http://127.0.0.1:{_closed_port()}"))
    write_csv(ws.root / "sheet" / "contacts.csv",
              [["r1", "Zoe", "Quinn", "zoe@example.com", ""]])
    outputs = []

    check = ws.cli("check", "--json", env=ENV)
    assert check.code == 0, str(check)
    assert json.loads(check.out)["ok"] is True
    outputs.append(check)
    systems = ws.cli("systems", "--json", env=ENV)
    assert systems.code == 0, str(systems)
    outputs.append(systems)

    read = ws.hub("sync", "crm-to-sheet", "--json", env=ENV)
    assert read.code == 1, str(read)
    # The source could not be reached: the run stays open and resumes next time.
    assert json.loads(read.out)["status"] == "retry"
    assert "connection failed" in json.loads(read.out)["error"]
    outputs.append(read)

    write = ws.hub("sync", "sheet-to-crm", "--json", env=ENV)
    assert write.code == 1, str(write)
    assert json.loads(write.out)["counts"]["write_failed"] == 1
    outputs.append(write)

    dead = ws.cli("dlq", "list", "--json", env=ENV)
    [dl] = json.loads(dead.out)
    assert dl["stage"] == "write" and dl["system"] == "crm"
    outputs += [dead, ws.cli("dlq", "show", str(dl["id"]), "--json", env=ENV),
                ws.cli("runs", "--json", env=ENV), ws.cli("audit", "--json", env=ENV),
                ws.cli("sync", "sheet-to-crm", env=ENV)]

    for res in outputs:
        assert CANARY not in res.text, f"the token leaked:\n{res}"
    dump = _store_dump(ws)
    assert "zoe@example.com" in dump, "the dump is not of the store the syncs used"
    assert CANARY not in dump


def test_a_rejected_token_is_not_echoed(ws: Workspace, sandbox: HubSpotSandbox) -> None:
    assert sandbox.token != CANARY
    ws.write_config(CONFIG.format(base_url=sandbox.base_url))
    res = ws.hub("sync", "crm-to-sheet", "--json", env=ENV)
    assert res.code == 1, str(res)
    error = json.loads(res.out)["error"]
    assert "401" in error and "credentials" in error
    assert sandbox.requests, "the token was never sent, so the test proves nothing"
    assert CANARY not in res.text
    assert CANARY not in _store_dump(ws)


def test_a_rejected_token_gives_one_hint(ws: Workspace, sandbox: HubSpotSandbox) -> None:
    ws.write_config(CONFIG.format(base_url=sandbox.base_url))
    # Was: "(check the credentials and scopes of ...) (check the credentials of ...)".
    res = ws.cli("sync", "crm-to-sheet", "--json", env=ENV)
    assert res.code == 1, str(res)
    assert json.loads(res.out)["error"].count("check the credentials") == 1
