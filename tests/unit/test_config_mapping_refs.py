"""`mappings:` in a config takes a file path or a mapping name; filters take relative dates."""

from __future__ import annotations

from pathlib import Path

import pytest

import mappings
from hub.config import loads
from hub.errors import ConfigError
from hub.sync.context import mapping_for

# Line numbers matter: the expected messages below point into this text.
BASE = """\
version: 1
systems:
  crm:
    category: crm
    connection: {connector: hubspot, token: '${CRM_TOKEN}'}
  sheet:
    category: files
    connection: {connector: spreadsheet, path: ./data}
flows:
  contacts:
    entity: contact
    from: crm
    to: [sheet]
"""
HUBSPOT = "hubspot/company, hubspot/contact, hubspot/deal"


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in an empty folder holding data/ and a mapping file m.yaml."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CRM_TOKEN", "t")
    (tmp_path / "data").mkdir()
    (tmp_path / "m.yaml").write_text("version: 1\n")
    return tmp_path


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        loads(text)
    return [str(p) for p in info.value.problems]


def test_a_built_in_mapping_name_is_kept_as_a_name_and_resolves_at_run_time() -> None:
    settings = loads(BASE + "    mappings: {crm: hubspot/contact}\n")
    assert settings.flows["contacts"].mappings == {"crm": "hubspot/contact"}
    mapping = mapping_for(settings, settings.flows["contacts"], "crm", "contact")
    assert Path(mapping.file).parts[-3:] == ("mappings", "hubspot", "contact.yaml")
    assert mapping.connector == "hubspot" and mapping.entity == "contact"


def test_a_name_in_the_configs_mapping_folder_comes_before_the_built_in_one(
        in_tmp: Path) -> None:
    mine = in_tmp / "maps" / "hubspot"
    mine.mkdir(parents=True)
    builtin = Path(mappings.__file__).parent / "hubspot" / "contact.yaml"
    (mine / "contact.yaml").write_text(f"version: 1\nextends: {builtin}\n")
    (mine / "vip.yml").write_text(f"version: 1\nextends: {builtin}\n")
    settings = loads("mappings: [./maps]\n" + BASE + "    mappings: {crm: hubspot/vip}\n")
    assert mapping_for(settings, settings.flows["contacts"], "crm", "contact").file \
        == str(mine / "vip.yml")
    settings = loads("mappings: [./maps]\n" + BASE + "    mappings: {crm: hubspot/contact}\n")
    assert mapping_for(settings, settings.flows["contacts"], "crm", "contact").file \
        == str(mine / "contact.yaml")


def test_an_unknown_name_names_the_line_the_close_name_and_the_connectors_mappings(
        in_tmp: Path) -> None:
    got = problems(BASE + "    mappings: {crm: hubspot/contct}\n")
    assert len(got) == 1
    assert got[0].startswith("hub.yaml:14: flows.contacts.mappings.crm: no mapping named "
                             "'hubspot/contct' (did you mean 'hubspot/contact'?) (looked for "
                             "hubspot/contct.yaml in: ")
    assert got[0].endswith(f"; mappings of connector hubspot: {HUBSPOT}; or give a file path "
                           "like ./my-mapping.yaml")


def test_the_mapping_list_includes_the_configs_own_folder(in_tmp: Path) -> None:
    (in_tmp / "maps" / "hubspot").mkdir(parents=True)
    (in_tmp / "maps" / "hubspot" / "lead.yaml").write_text("version: 1\n")
    got = problems("mappings: [./maps]\n" + BASE + "    mappings: {crm: nope}\n")
    assert got[0].startswith("hub.yaml:15: flows.contacts.mappings.crm: no mapping named "
                             f"'nope' (looked for nope.yaml in: {in_tmp.resolve() / 'maps'}, ")
    assert f"mappings of connector hubspot: {HUBSPOT}, hubspot/lead;" in got[0]


def test_a_connection_mapping_takes_a_name_too() -> None:
    text = BASE.replace("token: '${CRM_TOKEN}'}",
                        "token: '${CRM_TOKEN}', mappings: {contact: hubspot/contact}}")
    assert loads(text).connection("crm").mappings == {"contact": "hubspot/contact"}
    got = problems(text.replace("{contact: hubspot/contact}", "{contact: hubspot/x}"))
    assert got[0].startswith("hub.yaml:5: systems.crm.connection.mappings.contact: no "
                             "mapping named 'hubspot/x' ")


@pytest.mark.parametrize(("value", "expected"), [
    ("./m.yaml", None),
    ("m.yaml", None),
    ("m", "mapping file 'm' not found"),  # no such name either; an existing file wins
    ("./nope.yaml", "mapping file './nope.yaml' not found (looked for {tmp}/nope.yaml)"),
    ("../nope.yml", "mapping file '../nope.yml' not found"),
])
def test_file_paths_are_still_files(in_tmp: Path, value: str, expected: str | None) -> None:
    text = BASE + f"    mappings: {{crm: '{value}'}}\n"
    if expected is None:
        assert loads(text).flows["contacts"].mappings["crm"] == str(in_tmp.resolve() / value)
        return
    if value == "m":
        got = problems(text)
        assert "no mapping named 'm'" in got[0]
        (in_tmp / "m").write_text("version: 1\n")
        assert loads(text).flows["contacts"].mappings["crm"] == str(in_tmp.resolve() / "m")
        return
    got = problems(text)
    assert got[0].startswith("hub.yaml:14: flows.contacts.mappings.crm: "
                             + expected.replace("{tmp}", str(in_tmp.resolve())))


@pytest.mark.parametrize("value", ["today", "today-14d", "now-1h", "'now + 30m'", "TODAY",
                                   "'2024-06-01'", "nowhere"])
def test_a_filter_takes_relative_dates(value: str) -> None:
    settings = loads(BASE + f"    filter: {{path: due_date, lt: {value}}}\n")
    assert settings.flows["contacts"].filter == {"path": "due_date",
                                                 "lt": value.strip("'")}


@pytest.mark.parametrize(("value", "message"), [
    ("today-14", ("'today-14' is not a relative date: write today or now, optionally followed "
                 "by + or - a number and a unit (d days, h hours, m minutes), like today, "
                 "today-14d, now-1h or now+30m")),
    ("today-2h", ("'today-2h': today moves by whole days (like today-14d); for hours or minutes "
                 "start from now (like now-2h)")),
    ("now-1w", "'now-1w' is not a relative date"),
])
def test_an_unparseable_relative_date_names_file_line_and_key(value: str, message: str
                                                               ) -> None:
    got = problems(BASE + f"    filter: {{all: [{{path: status, equals: open}},\n"
                          f"                   {{path: due_date, gte: {value}}}]}}\n")
    assert len(got) == 1
    assert got[0].startswith("hub.yaml:15: flows.contacts.filter.all[1].gte: " + message)
