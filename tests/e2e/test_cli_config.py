"""`hub init`, `hub check`, bad configs, `hub connectors`, `hub systems`, `hub migrate`."""

from __future__ import annotations

import json
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from tests.e2e.conftest import Workspace, invoke, line_of, run_hub

# -- init and check ------------------------------------------------------------------------


def test_init_writes_a_config_that_checks_once_its_secret_is_set(tmp_path: Path) -> None:
    target = tmp_path / "company"
    made = run_hub("init", str(target), cwd=tmp_path)
    assert made.code == 0, str(made)
    assert (target / "hub.yaml").is_file()
    assert (target / "data").is_dir()
    assert "hub check" in made.out

    ok = run_hub("-c", str(target / "hub.yaml"), "check", cwd=tmp_path,
                 env={"HUBSPOT_TOKEN": "pat-test-123"})
    assert ok.code == 0, str(ok)
    assert "OK" in ok.out
    assert "pat-test-123" not in ok.text
    assert not (target / "liaison.db").exists(), "check must not touch the store"

    as_json = invoke("-c", str(target / "hub.yaml"), "check", "--json",
                     env={"HUBSPOT_TOKEN": "pat-test-123"})
    summary = json.loads(as_json.out)
    assert summary["ok"] is True
    assert (summary["systems"], summary["connected"], summary["silos"]) == (3, 2, 1)


def test_init_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    assert run_hub("init", "c", cwd=tmp_path).code == 0
    (tmp_path / "c" / "hub.yaml").write_text("# mine\n", encoding="utf-8")
    again = run_hub("init", "c", cwd=tmp_path)
    assert again.code == 1
    assert "--force" in again.err
    assert (tmp_path / "c" / "hub.yaml").read_text(encoding="utf-8") == "# mine\n"
    assert run_hub("init", "c", "--force", cwd=tmp_path).code == 0
    assert "systems:" in (tmp_path / "c" / "hub.yaml").read_text(encoding="utf-8")


def test_check_without_the_secret_names_the_variable_and_the_line(tmp_path: Path) -> None:
    assert run_hub("init", "c", cwd=tmp_path).code == 0
    config = tmp_path / "c" / "hub.yaml"
    line = line_of(config.read_text(encoding="utf-8"), "token: ${HUBSPOT_TOKEN}")
    bad = run_hub("-c", str(config), "check", cwd=tmp_path)
    assert bad.code == 2, str(bad)
    assert f"{config}:{line}: systems.hubspot.connection.token" in bad.err
    assert "HUBSPOT_TOKEN" in bad.err and "not set" in bad.err
    assert not (tmp_path / "c" / "liaison.db").exists()


def test_a_missing_config_file_says_how_to_make_one(tmp_path: Path) -> None:
    missing = run_hub("check", cwd=tmp_path)
    assert missing.code == 2
    assert "hub init" in missing.err
    assert not (tmp_path / "liaison.db").exists()


# -- bad configs ---------------------------------------------------------------------------

BASE = """\
version: 1
systems:
  src:
    category: files
    owner: Ben
    connection:
      connector: spreadsheet
      path: ./src
  dst:
    category: files
    connection:
      connector: spreadsheet
      path: ./dst
"""
FLOW = """\
flows:
  f:
    entity: contact
    from: src
    to: dst
"""
LITERAL = "pat-na1-0b5e-LITERAL-4c2d"

# id -> (config text, the line's unique text, the key named, words the message must hold)
BAD_CONFIGS: dict[str, tuple[str, str, str | None, tuple[str, ...]]] = {
    "malformed-yaml": (
        BASE.replace("owner: Ben", "owner: Ben: Smith") + FLOW,
        "owner: Ben: Smith", None, ("YAML syntax error",)),
    "flow-style-secret-unquoted": (
        BASE + "  crm:\n    category: crm\n"
        "    connection: {connector: hubspot, token: ${CRM_TOKEN}}\n" + FLOW,
        "connection: {connector", None, ("YAML syntax error", "quotes")),
    "duplicate-key": (
        BASE.replace("owner: Ben\n", "owner: Ben\n    owner: Ann\n") + FLOW,
        "owner: Ann", "systems.src.owner", ("duplicate key",)),
    "unknown-key": (
        BASE.replace("owner: Ben\n", "owner: Ben\n    colour: red\n") + FLOW,
        "colour: red", "systems.src.colour", ("unknown key", "category")),
    "wrong-type": (
        BASE + FLOW + "    page_size: lots\n",
        "page_size: lots", "flows.f.page_size", ("whole number", "lots")),
    "bad-category": (
        BASE.replace("category: files\n    owner: Ben", "category: spreadsheet\n    owner: Ben")
        + FLOW,
        "category: spreadsheet", "systems.src.category", ("crm",)),
    "flow-names-unknown-system": (
        BASE + FLOW.replace("to: dst", "to: nowhere"),
        "to: nowhere", "flows.f.to", ("nowhere", "src", "dst")),
    "literal-secret": (
        BASE + f"  crm:\n    category: crm\n    connection:\n      connector: hubspot\n"
        f"      token: {LITERAL}\n" + FLOW,
        f"token: {LITERAL}", "systems.crm.connection.token", ("${CRM_TOKEN}",)),
}

AS_PROCESS = {"malformed-yaml", "literal-secret", "flow-names-unknown-system"}


@pytest.mark.parametrize("case", list(BAD_CONFIGS))
def test_bad_config_exits_2_naming_file_line_and_key(ws: Workspace, case: str) -> None:
    text, needle, key, words = BAD_CONFIGS[case]
    ws.write_config(text)
    line = line_of(text, needle)
    for command in (("check",), ("sync", "f"), ("systems", "--json"), ("runs",)):
        # A few as a real process (exit code, stderr); the rest in-process, to be quick.
        real = command == ("check",) and case in AS_PROCESS
        bad = ws.hub(*command) if real else ws.cli(*command)
        assert bad.code == 2, str(bad)
        where = f"{ws.config}:{line}:" + (f" {key}:" if key else "")
        assert where in bad.err, f"expected {where!r}:\n{bad}"
        for word in words:
            assert word in bad.err, f"expected {word!r}:\n{bad}"
        assert LITERAL not in bad.text
        assert bad.out == "", "problems go to stderr"
        assert not ws.db.exists(), f"`hub {' '.join(command)}` created the store"


# Every installed connector, in the order the message lists them (from the entry points,
# so adding a connector does not break this test).
INSTALLED = ", ".join(sorted(ep.name for ep in entry_points(group="hub.connectors")))
UNKNOWN_CONNECTOR = (BASE + "  crm:\n    category: crm\n    connection:\n"
                     "      connector: salesforce\n" + FLOW)


def test_check_names_an_unknown_connector_and_the_installed_ones(ws: Workspace) -> None:
    ws.write_config(UNKNOWN_CONNECTOR)
    bad = ws.hub("check")
    assert bad.code == 2, str(bad)
    assert f"{ws.config}:" in bad.err
    assert ": systems.crm.connection.connector: unknown connector 'salesforce'" in bad.err
    assert INSTALLED in bad.err
    assert bad.out == ""
    assert not ws.db.exists()


@pytest.mark.parametrize("case", ["unknown-connector", "unknown-setting"])
def test_connection_problems_are_reported_at_their_own_line(ws: Workspace, case: str) -> None:
    text, needle, key = {
        "unknown-connector": (UNKNOWN_CONNECTOR, "connector: salesforce",
                              "systems.crm.connection.connector"),
        "unknown-setting": (BASE.replace("path: ./src", "pth: ./src") + FLOW, "pth: ./src",
                            "systems.src.connection.pth"),
    }[case]
    ws.write_config(text)
    bad = ws.cli("check")
    assert bad.code == 2, str(bad)
    assert f"{ws.config}:{line_of(text, needle)}: {key}:" in bad.err, str(bad)


def test_check_lists_each_problem_once(ws: Workspace) -> None:
    ws.write_config(UNKNOWN_CONNECTOR.replace("to: dst", "to: crm"))
    bad = ws.cli("check")
    assert bad.code == 2, str(bad)
    problems = [line for line in bad.err.splitlines() if line.startswith("  ")]
    assert len(problems) == len(set(problems)), str(bad)
    assert "1 problem:" in bad.err


def test_sync_names_the_unknown_connector(ws: Workspace) -> None:
    # Was: only "crm: no mapping for contact in connector salesforce".
    ws.write_config(UNKNOWN_CONNECTOR.replace("to: dst", "to: crm"))
    bad = ws.cli("sync", "f")
    assert bad.code == 2, str(bad)
    assert "systems.crm.connection.connector: unknown connector 'salesforce'" in bad.err
    assert INSTALLED in bad.err
    assert not ws.db.exists()


def test_every_problem_is_listed_at_once(ws: Workspace) -> None:
    text = BASE.replace("owner: Ben\n", "owner: Ben\n    colour: red\n") + FLOW.replace(
        "to: dst", "to: nowhere")
    ws.write_config(text)
    bad = ws.cli("check")
    assert bad.code == 2
    assert "2 problems" in bad.err
    assert f":{line_of(text, 'colour: red')}: systems.src.colour" in bad.err
    assert f":{line_of(text, 'to: nowhere')}: flows.f.to" in bad.err


OVERRIDE = """\
version: 1
extends: spreadsheet/contact
fields:
  title: {path: job_title, in: [trim]}
  favourite_colour: colour
"""


def _override_config(ws: Workspace) -> Path:
    override = ws.root / "my-contact.yaml"
    override.write_text(OVERRIDE, encoding="utf-8")
    ws.write_config(BASE.replace("path: ./src\n", "path: ./src\n"
                                 "      mappings: {contact: ./my-contact.yaml}\n") + FLOW)
    return override


def test_override_mapping_with_an_unknown_field_fails_check(ws: Workspace) -> None:
    override = _override_config(ws)
    bad = ws.hub("check")
    assert bad.code == 2, str(bad)
    line = line_of(OVERRIDE, "favourite_colour")
    assert f"{override}:{line}: fields.favourite_colour" in bad.err, str(bad)
    assert "first_name" in bad.err, "the message lists the known fields"
    assert not ws.db.exists()


def test_sync_with_a_bad_override_mapping_creates_no_store(ws: Workspace) -> None:
    # Was: the store was opened (created) before the flow's mappings were compiled.
    _override_config(ws)
    bad = ws.cli("sync", "f")
    assert bad.code == 2, str(bad)
    assert "favourite_colour" in bad.err
    assert not ws.db.exists()


@pytest.mark.parametrize("problem", ["unknown-flow", "unset-secret"])
def test_sync_that_cannot_start_creates_no_store(ws: Workspace, problem: str) -> None:
    # Was: liaison.db was created before the flow or the secret was looked at.
    if problem == "unset-secret":
        ws.write_config(BASE + "  crm:\n    category: crm\n    connection:\n"
                        "      connector: hubspot\n      token: ${CRM_TOKEN}\n"
                        + FLOW.replace("from: src", "from: crm"))
        bad = ws.cli("sync", "f")
        assert "CRM_TOKEN" in bad.err
    else:
        ws.write_config(BASE + FLOW)
        bad = ws.cli("sync", "no-such-flow")
        assert "no-such-flow" in bad.err and "f" in bad.err
    assert bad.code == 2, str(bad)
    assert not ws.db.exists()


def test_unknown_field_message_reads_as_a_sentence(ws: Workspace) -> None:
    # Was: "unknown field 'favourite_colour' for contact known fields: ..."
    _override_config(ws)
    bad = ws.cli("check")
    assert bad.code == 2
    assert "unknown field 'favourite_colour' for contact; known fields: first_name" in bad.err


# -- connectors and systems ----------------------------------------------------------------


def test_connectors_lists_both_builtins_with_entities(tmp_path: Path) -> None:
    table = invoke("connectors")
    assert table.code == 0, str(table)
    lines = {line.split()[0]: line for line in table.out.splitlines()[1:] if line.strip()}
    assert set(lines) >= {"hubspot", "spreadsheet"}
    assert "contact" in lines["hubspot"] and "company" in lines["hubspot"]
    assert "invoice" in lines["spreadsheet"]

    data = json.loads(invoke("connectors", "--json").out)
    by_name = {c["name"]: c for c in data["connectors"]}
    assert set(by_name["hubspot"]["entities"]) == {"contact", "company", "deal"}
    assert set(by_name["spreadsheet"]["entities"]) == {
        "company", "contact", "deal", "invoice", "payment", "product", "project", "task",
        "message"}
    contact = by_name["hubspot"]["entities"]["contact"]
    assert contact == {"object": "contacts", "read": True, "write": True,
                       "incremental": True, "deletes": True}
    assert by_name["spreadsheet"]["entities"]["contact"]["object"] == "contacts"
    assert data["failed"] == {}
    assert not (tmp_path / "liaison.db").exists()


def test_connectors_json_describes_the_token_setting(tmp_path: Path) -> None:
    data = json.loads(invoke("connectors", "--json").out)
    hubspot = next(c for c in data["connectors"] if c["name"] == "hubspot")
    # Was "***": the description of a secret setting is not itself a secret.
    assert "token" in hubspot["settings"]["token"]
    assert "${" in hubspot["settings"]["token"], "it says the token is an env reference"


def test_systems_lists_silos_and_systems_without_owner(ws: Workspace) -> None:
    listed = ws.hub("systems", "--json")
    assert listed.code == 0, str(listed)
    rows = {r["system"]: r for r in json.loads(listed.out)}
    assert set(rows) == {"src", "dst", "sales-mailbox", "accounts"}
    assert rows["src"]["connected"] is True and rows["src"]["connector"] == "spreadsheet"
    assert rows["src"]["owner"] == "Ben (Purchasing)"
    assert rows["src"]["flows"] == ["contacts"]
    assert rows["sales-mailbox"]["connected"] is False
    assert rows["sales-mailbox"]["owner"] is None
    assert rows["sales-mailbox"]["category"] == "email"
    assert rows["accounts"]["connected"] is False
    assert rows["accounts"]["owner"] == "Chloe (Finance)"
    assert all(r["last_sync"] is None for r in rows.values())

    table = ws.cli("systems")
    mailbox = next(line for line in table.out.splitlines() if line.startswith("sales-mailbox"))
    assert "(no owner!)" in mailbox and "not connected" in mailbox


def test_systems_shows_the_last_successful_sync(ws: Workspace) -> None:
    ws.sources([["c1", "Ada", "L", "ada@example.com", ""]])
    assert ws.cli("sync", "contacts").code == 0
    rows = {r["system"]: r for r in json.loads(ws.cli("systems", "--json").out)}
    assert rows["src"]["last_sync"] and rows["dst"]["last_sync"]
    assert rows["sales-mailbox"]["last_sync"] is None


def test_check_summary_uses_singular_for_one(ws: Workspace) -> None:
    ws.write_config(BASE + "  box:\n    category: email\n" + FLOW)
    # Was: "1 disconnected silos", "1 flows".
    ok = ws.cli("check")
    assert ok.code == 0, str(ok)
    assert "3 systems (2 connected, 1 disconnected silo), 1 flow, " in ok.out


# -- migrate -------------------------------------------------------------------------------


def test_migrate_creates_then_reports_up_to_date(ws: Workspace) -> None:
    first = ws.hub("migrate")
    assert first.code == 0, str(first)
    assert "migrated from empty to" in first.out
    assert ws.db.exists()
    tables = {r[0] for r in ws.sql("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"audit_events", "dead_letters"} <= tables
    second = ws.hub("migrate")
    assert second.code == 0
    assert "up to date" in second.out
    assert "migrated" not in second.out
