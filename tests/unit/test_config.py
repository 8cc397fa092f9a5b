"""The config loader: every invalid config names file:line, key and what was expected."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.config import (
    ENTITIES,
    ConflictConfig,
    RetryPolicy,
    Secret,
    find_config,
    load,
    loads,
)
from hub.errors import ConfigError

# Line numbers matter: the expected messages below point into this text.
BASE = """\
version: 1
systems:
  crm:
    category: crm
    owner: Anna
    connection:
      connector: hubspot
      token: ${CRM_TOKEN}
  sheet:
    category: files
    connection: {connector: spreadsheet, path: ./data}
  mailbox:
    category: email
flows:
  contacts:
    entity: contact
    from: crm
    to: [sheet]
"""
FLOW_KEYS = ("entity, from, to, schedule, mode, direction, conflict, on_delete, filter, "
             "mappings, page_size, retry, enabled")
CRON_HINT = 'write it like "*/15 * * * *" (every 15 minutes) or "0 6 * * mon-fri"'
SILO = ("system 'mailbox' has no connection (it is a disconnected silo), so it cannot take "
        "part in a flow; give it a connection block or take it out of this flow")


def with_lines(**replace: str) -> str:
    """BASE with whole lines replaced: with_lines(to="    to: 42")."""
    lines = BASE.splitlines()
    index = {"category": 3, "token": 7, "entity": 15, "from": 16, "to": 17}
    for key, line in replace.items():
        lines[index[key]] = line
    return "\n".join(lines) + "\n"


INVALID = [
    ("malformed yaml", "systems: {crm: [}\n",
     ["hub.yaml:1: YAML syntax error: expected the node content, but found '}'"]),
    ("not a mapping", "- crm\n- sheet\n",
     ["hub.yaml:1: expected a config with keys like version, systems and flows, got a list"]),
    ("duplicate key", BASE + "  contacts:\n    entity: contact\n",
     ["hub.yaml:19: flows.contacts: duplicate key (first given on line 15)"]),
    ("missing systems", "version: 1\n", ["hub.yaml:1: missing required key 'systems'"]),
    ("wrong version", BASE.replace("version: 1", "version: 2"),
     ["hub.yaml:1: version: must be 1 (got 2)"]),
    ("unknown key with suggestion", BASE + "    shedule: '*/5 * * * *'\n",
     [("hub.yaml:19: flows.contacts.shedule: unknown key 'shedule' (did you mean 'schedule'?); "
      f"allowed keys: {FLOW_KEYS}")]),
    ("unknown top-level key", "sytems: {}\n" + BASE,
     [("hub.yaml:1: sytems: unknown key 'sytems' (did you mean 'systems'?); allowed keys: "
      "version, store, broker, mappings, systems, flows")]),
    ("wrong type for to", with_lines(to="    to: 42"),
     [("hub.yaml:18: flows.contacts.to: expected a system name or a list of system names, "
      "got 42")]),
    ("wrong type in a list", with_lines(to="    to: [sheet, 7]"),
     ["hub.yaml:18: flows.contacts.to[1]: expected a system name, got 7"]),
    ("wrong type for page_size", BASE + "    page_size: lots\n",
     [("hub.yaml:19: flows.contacts.page_size: expected a whole number of records, "
      "got 'lots'")]),
    ("bad enum", with_lines(category="    category: crmm"),
     [("hub.yaml:4: systems.crm.category: must be one of: crm, accounting, email, project, "
      "files, other (got 'crmm'; did you mean 'crm'?)")]),
    ("bad mode", BASE + "    mode: sometimes\n",
     ["hub.yaml:19: flows.contacts.mode: must be one of: incremental, full (got 'sometimes')"]),
    ("missing connector", BASE.replace("{connector: spreadsheet, path: ./data}",
                                       "{path: ./data}"),
     ["hub.yaml:11: systems.sheet.connection: missing required key 'connector'"]),
    ("unknown system", with_lines(to="    to: [shet]"),
     [("hub.yaml:18: flows.contacts.to[0]: no system named 'shet' (did you mean 'sheet'?); "
      "declared systems: crm, mailbox, sheet")]),
    ("silo in a flow", with_lines(to="    to: [sheet, mailbox]"),
     [f"hub.yaml:18: flows.contacts.to[1]: {SILO}"]),
    ("silo as source", with_lines(**{"from": "    from: mailbox"}),
     [f"hub.yaml:17: flows.contacts.from: {SILO}"]),
    ("cron with 3 fields", BASE + "    schedule: '* * *'\n",
     [("hub.yaml:19: flows.contacts.schedule: a cron expression has 5 fields (minute hour "
      f"day-of-month month day-of-week), got 3; {CRON_HINT}")]),
    ("cron out of range", BASE + "    schedule: '61 * * * *'\n",
     [(f"hub.yaml:19: flows.contacts.schedule: '61 * * * *' is not a valid cron expression; "
      f"{CRON_HINT}")]),
    ("cron that never fires", BASE + "    schedule: '0 0 30 2 *'\n",
     [("hub.yaml:19: flows.contacts.schedule: '0 0 30 2 *' never matches any date "
      "(check day and month)")]),
    ("embedded reference", BASE.replace("      token:", "      base_url: http://${HOST}/api\n"
                                        "      token:"),
     [("hub.yaml:8: systems.crm.connection.base_url: ${...} must be the whole value, not part "
      "of a longer text: put the complete value in an environment variable and write "
      "${CRM_BASE_URL}")]),
    ("bad reference name", with_lines(token="      token: ${1TOKEN}"),
     [("hub.yaml:8: systems.crm.connection.token: not a valid environment reference: the name "
      "inside ${...} may use only letters, digits and _ and must not start with a digit")]),
    ("reference outside a connection", BASE.replace("owner: Anna", "owner: ${OWNER}"),
     [("hub.yaml:5: systems.crm.owner: environment references like ${NAME} are only allowed "
      "inside a system's connection block")]),
    ("password in the store URL", "store: postgresql://hub:pw@db/hub\n" + BASE,
     [("hub.yaml:1: store: a password must not be written in the config file: take it out of "
      "the URL and provide it through the environment (PGPASSWORD for PostgreSQL)")]),
    ("unsupported store", "store: mysql://db/hub\n" + BASE,
     [("hub.yaml:1: store: expected a database URL starting with sqlite:/// or postgresql:// "
      "(got a URL starting with 'mysql')")]),
    ("unsupported broker", "broker: amqp://mq\n" + BASE,
     [("hub.yaml:1: broker: expected inprocess:// or a redis:// URL (got a URL starting with "
      "'amqp')")]),
    ("two-way with two sources",
     with_lines(**{"from": "    from: [crm, sheet]", "to": "    to: crm"})
     + "    direction: two-way\n",
     [("hub.yaml:19: flows.contacts.direction: a two-way flow needs exactly one system in from "
      "and one in to (got 2 in from and 1 in to)")]),
    ("one-way into its own source", with_lines(to="    to: [sheet, crm]"),
     [("hub.yaml:18: flows.contacts.to[1]: system 'crm' is both a source and a target of this "
      "one-way flow; for changes in both directions use direction: two-way")]),
    ("field-owner without owners", BASE + "    conflict: {policy: field-owner}\n",
     [("hub.yaml:19: flows.contacts.conflict: policy field-owner needs owners: a map of "
      "canonical field -> the system that owns it, like {emails: hubspot}")]),
    ("field-owner naming another system",
     BASE + "    conflict:\n      policy: field-owner\n      owners: {emails: mailbox}\n",
     [("hub.yaml:21: flows.contacts.conflict.owners.emails: owner 'mailbox' is not a system of "
      "this flow (its systems: crm, sheet)")]),
    ("owners without field-owner",
     BASE + "    conflict: {policy: source-wins, owners: {emails: crm}}\n",
     [("hub.yaml:19: flows.contacts.conflict.owners: owners only applies to policy: "
      "field-owner")]),
    ("bad conflict name", BASE + "    conflict: newest\n",
     [("hub.yaml:19: flows.contacts.conflict: must be one of: source-wins, target-wins, "
      "last-modified-wins, field-owner (got 'newest')")]),
    ("unknown entity", with_lines(entity="    entity: contacts"),
     [("hub.yaml:16: flows.contacts.entity: unknown entity 'contacts' (did you mean "
      "'contact'?); must be one of: company, contact, deal, invoice, payment, product, "
      "project, task, message")]),
    ("flow name not a slug", BASE.replace("  contacts:", "  Contacts Flow:"),
     [("hub.yaml:15: flows.Contacts Flow: flow name 'Contacts Flow' must use only lowercase "
      "letters, digits, '-' and '_', starting with a letter or digit (like crm-contacts)")]),
    ("system name not a slug", BASE.replace("  mailbox:", "  Mail_Box:"),
     [("hub.yaml:12: systems.Mail_Box: system name 'Mail_Box' must use only lowercase "
      "letters, digits, '-' and '_', starting with a letter or digit (like crm-contacts)")]),
    ("missing mapping override", BASE + "    mappings: {crm: ./nope.yaml}\n",
     [("hub.yaml:19: flows.contacts.mappings.crm: mapping file './nope.yaml' not found "
      "(looked for {tmp}/nope.yaml)")]),
    ("mapping override for a system outside the flow",
     BASE + "    mappings: {mailbox: ./m.yaml}\n",
     [("hub.yaml:19: flows.contacts.mappings.mailbox: system 'mailbox' is not in this flow "
      "(its systems: crm, sheet)")]),
    ("missing mapping folder", "mappings: [./mine]\n" + BASE,
     ["hub.yaml:1: mappings[0]: no folder './mine' (looked in {tmp}/mine)"]),
    ("bad filter", BASE + "    filter: {path: title, equal: CEO}\n",
     [("hub.yaml:19: flows.contacts.filter.equal: unknown key 'equal' (did you mean "
      "'equals'?); allowed keys: path, equals, not_equals, in, empty, contains, gt, gte, lt, "
      "lte")]),
    ("filter with two tests", BASE + "    filter: {path: title, equals: CEO, empty: false}\n",
     [("hub.yaml:19: flows.contacts.filter: a condition needs exactly one test (equals, "
      "not_equals, in, empty, contains, gt, gte, lt, lte), got 2")]),
    ("filter group with extra keys", BASE + "    filter: {any: [], path: x}\n",
     [("hub.yaml:19: flows.contacts.filter: a condition with any must have no other keys "
      "(got any, path)")]),
    ("retry ceiling below start", BASE + "    retry: {backoff_initial: 10, backoff_max: 1}\n",
     [("hub.yaml:19: flows.contacts.retry.backoff_max: must not be smaller than "
      "backoff_initial (10)")]),
    ("several problems at once",
     with_lines(category="    category: crmm", entity="    entity: lead", to="    to: 42"),
     [("hub.yaml:4: systems.crm.category: must be one of: crm, accounting, email, project, "
      "files, other (got 'crmm'; did you mean 'crm'?)"),
      ("hub.yaml:16: flows.contacts.entity: unknown entity 'lead'; must be one of: company, "
      "contact, deal, invoice, payment, product, project, task, message"),
      ("hub.yaml:18: flows.contacts.to: expected a system name or a list of system names, "
      "got 42")]),
]


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in an empty folder holding data/ and a mapping file m.yaml."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "m.yaml").write_text("version: 1\n")
    return tmp_path


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in INVALID],
                         ids=[c[0] for c in INVALID])
def test_invalid_config_lists_every_problem(in_tmp: Path, text: str,
                                            expected: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        loads(text)
    got = [str(p) for p in info.value.problems]
    assert got == [e.replace("{tmp}", str(in_tmp.resolve())) for e in expected]
    assert str(info.value) == "\n".join(got)


def test_literal_secret_is_refused_without_echoing_it(in_tmp: Path) -> None:
    canary = "canary-8f3e2a1b-not-for-your-eyes"
    books = ("  books:\n    category: accounting\n    connection:\n      connector: xero\n"
             f"      client_secret: '{canary}'\n      credentials: {{user: bob, pass: {canary}}}\n"
             f"      retry: {{attempts: {canary}}}\n")
    text = with_lines(token=f"      token: {canary}").replace("flows:\n", books + "flows:\n")
    with pytest.raises(ConfigError) as info:
        loads(text)
    assert canary not in str(info.value)
    assert [str(p) for p in info.value.problems[:1]] == [
        ("hub.yaml:8: systems.crm.connection.token: secrets must be environment references "
        "like ${CRM_TOKEN}, not literal values")]
    keys = [p.key for p in info.value.problems]
    assert "systems.books.connection.client_secret" in keys
    assert "systems.books.connection.credentials.pass" in keys


@pytest.mark.parametrize("key", ["password", "api_key", "apikey", "refresh_token",
                                 "webhook_secret", "smtp_password", "access_token", "passwd"])
def test_every_secret_looking_key_refuses_literals(in_tmp: Path, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        loads(BASE.replace("      token: ${CRM_TOKEN}", f"      {key}: opensesame"))
    assert [p.key for p in info.value.problems] == [f"systems.crm.connection.{key}"]
    assert "opensesame" not in str(info.value)


def test_ordinary_settings_named_like_keys_are_not_secrets(in_tmp: Path) -> None:
    settings = loads(BASE.replace("path: ./data}", "path: ./data, key: id, primary_key: id}"))
    assert settings.connection("sheet").settings["primary_key"] == "id"


def test_valid_config_applies_defaults(in_tmp: Path) -> None:
    s = loads(BASE)
    assert s.file == in_tmp.resolve() / "hub.yaml"
    assert s.store_url == f"sqlite:///{in_tmp.resolve()}/liaison.db"
    assert s.broker_url == "inprocess://"
    assert s.mapping_dirs == ()
    crm = s.systems["crm"]
    assert (crm.category, crm.owner, crm.description) == ("crm", "Anna", None)
    assert crm.where == "hub.yaml:3"
    assert crm.connection is not None
    assert crm.connection.connector == "hubspot"
    assert crm.connection.settings == {"token": Secret("CRM_TOKEN", "hub.yaml:8")}
    assert crm.connection.retry == RetryPolicy(attempts=5, backoff_initial=0.5, backoff_max=60)
    assert crm.connection.base_dir == in_tmp.resolve()
    assert s.systems["mailbox"].connection is None
    assert s.systems["mailbox"].owner is None
    assert s.connection("sheet").settings == {"path": "./data"}
    flow = s.flows["contacts"]
    assert (flow.sources, flow.targets) == (("crm",), ("sheet",))
    assert flow.entity == "contact" and flow.schedule is None
    assert (flow.mode, flow.direction, flow.delete_policy) == ("incremental", "one-way", "ignore")
    assert flow.conflict == ConflictConfig(policy="source-wins")
    assert (flow.page_size, flow.retry, flow.enabled, flow.filter) == (100, None, True, None)
    assert flow.where == "hub.yaml:15"


def test_valid_config_with_every_option(in_tmp: Path) -> None:
    (in_tmp / "maps").mkdir()
    text = (
        "store: sqlite:///state/hub.db?timeout=5\nbroker: redis://127.0.0.1:6379/0\n"
        "mappings: [./maps]\n" + BASE.replace("version: 1\n", "").replace(
            "      token: ${CRM_TOKEN}\n",
            "      token: ${CRM_TOKEN}\n      mappings: {contact: ./m.yaml}\n"
            "      retry: {attempts: 2, backoff_max: 5}\n      nested: [{secret: '${S2}'}]\n")
        + "    schedule: '*/15 * * * *'\n    mode: full\n    on_delete: archive\n"
          "    filter: {all: [{path: 'emails[0].address', empty: false},"
          " {not: {path: tags, contains: test}}]}\n"
          "    mappings: {sheet: ./m.yaml}\n    page_size: 500\n"
          "    retry: {attempts: 9}\n    enabled: false\n"
        + "  two:\n    entity: company\n    from: crm\n    to: sheet\n    direction: two-way\n"
          "    conflict: {policy: field-owner, owners: {domain: crm}}\n"
        + "  both:\n    entity: deal\n    from: [crm]\n    to: [sheet]\n    direction: two-way\n")
    s = loads(text)
    root = in_tmp.resolve()
    assert s.store_url == f"sqlite:///{root}/state/hub.db?timeout=5"
    assert s.broker_url == "redis://127.0.0.1:6379/0"
    assert s.mapping_dirs == (root / "maps",)
    conn = s.connection("crm")
    assert conn.mappings == {"contact": str(root / "m.yaml")}
    assert conn.retry == RetryPolicy(attempts=2, backoff_initial=0.5, backoff_max=5.0)
    assert conn.settings["nested"] == [{"secret": Secret("S2", "hub.yaml:13")}]
    flow = s.flows["contacts"]
    assert (flow.schedule, flow.mode, flow.delete_policy) == ("*/15 * * * *", "full", "archive")
    assert flow.filter == {"all": [{"path": "emails[0].address", "empty": False},
                                   {"not": {"path": "tags", "contains": "test"}}]}
    assert flow.mappings == {"sheet": str(root / "m.yaml")}
    assert (flow.page_size, flow.enabled) == (500, False)
    assert flow.retry == RetryPolicy(attempts=9)
    two = s.flows["two"]
    assert (two.sources, two.targets, two.direction) == (("crm",), ("sheet",), "two-way")
    assert two.conflict == ConflictConfig(policy="field-owner", owners={"domain": "crm"},
                                          fallback="last-modified-wins")
    # "source" is ambiguous in a two-way flow, so the default there is the newer change.
    assert s.flows["both"].conflict.policy == "last-modified-wins"


@pytest.mark.parametrize(("store", "expected"), [
    ("sqlite:////var/lib/hub.db", "sqlite:////var/lib/hub.db"),
    ("sqlite://", "sqlite://"),
    ("sqlite:///:memory:", "sqlite:///:memory:"),
    ("sqlite+pysqlite:///x.db", "sqlite+pysqlite:///{root}/x.db"),
    ("postgresql+psycopg://hub@db:5432/hub", "postgresql+psycopg://hub@db:5432/hub"),
])
def test_store_urls(in_tmp: Path, store: str, expected: str) -> None:
    s = loads(f"store: '{store}'\n" + BASE)
    assert s.store_url == expected.replace("{root}", str(in_tmp.resolve()))


def test_empty_connection_means_a_silo(in_tmp: Path) -> None:
    s = loads(BASE.replace("    category: email\n", "    category: email\n    connection:\n"))
    assert s.systems["mailbox"].connection is None
    with pytest.raises(ConfigError) as info:
        loads(BASE.replace("    category: email\n", "    category: email\n    connection:\n")
              .replace("    to: [sheet]", "    to: [mailbox]"))
    assert [p.key for p in info.value.problems] == ["flows.contacts.to[0]"]


def test_yaml_hint_for_unquoted_references_in_braces(in_tmp: Path) -> None:
    text = BASE.replace("{connector: spreadsheet, path: ./data}",
                        "{connector: spreadsheet, path: ./data, token: ${SHEET_TOKEN}}")
    with pytest.raises(ConfigError) as info:
        loads(text)
    assert str(info.value) == (
        "hub.yaml:11: YAML syntax error: expected ',' or '}', but got '{'; inside {...} or "
        "[...], put values containing ${...} or [ ] in quotes, like "
        '{token: "${HUBSPOT_TOKEN}", path: "emails[0].address"}')
    (in_tmp / "hub.yaml").write_text(text)
    with pytest.raises(ConfigError) as from_file:
        load("hub.yaml")
    assert str(from_file.value) == str(info.value)
    quoted = loads(text.replace("${SHEET_TOKEN}", '"${SHEET_TOKEN}"'))
    assert quoted.connection("sheet").settings["token"] == Secret("SHEET_TOKEN", "hub.yaml:11")


def test_settings_are_frozen(in_tmp: Path) -> None:
    s = loads(BASE)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.store_url = "sqlite://"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.flows["contacts"].enabled = False  # type: ignore[misc]


def test_load_finds_the_file(in_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HUB_CONFIG", raising=False)
    (in_tmp / "hub.yaml").write_text(BASE)
    other = in_tmp / "conf"
    other.mkdir()
    (other / "data").mkdir()
    (other / "prod.yaml").write_text(BASE)
    assert load().file == in_tmp.resolve() / "hub.yaml"
    assert load(str(other / "prod.yaml")).base_dir == other.resolve()
    monkeypatch.setenv("HUB_CONFIG", str(other / "prod.yaml"))
    assert find_config(None) == other / "prod.yaml"
    assert find_config(str(in_tmp)) == in_tmp / "hub.yaml"  # a folder means its hub.yaml
    assert load().store_url == f"sqlite:///{other.resolve()}/liaison.db"


def test_missing_file_says_how_to_make_one(in_tmp: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HUB_CONFIG", raising=False)
    with pytest.raises(ConfigError) as info:
        load("nowhere.yaml")
    assert str(info.value) == ("nowhere.yaml: no config file here (given with --config); give "
                               "--config PATH, set HUB_CONFIG, or run `hub init` to write an "
                               "example")
    assert find_config(None, must_exist=False) == Path("hub.yaml")


def test_failed_load_has_no_side_effects(in_tmp: Path) -> None:
    (in_tmp / "hub.yaml").write_text("store: sqlite:///state/x.db\n"
                                     + with_lines(to="    to: [nowhere]"))
    before = sorted(p.name for p in in_tmp.rglob("*"))
    with pytest.raises(ConfigError):
        load("hub.yaml")
    loads("store: sqlite:///state/x.db\n" + BASE)  # a good load creates nothing either
    assert sorted(p.name for p in in_tmp.rglob("*")) == before


def test_entities_agree_with_the_canonical_model() -> None:
    canonical = pytest.importorskip("hub.canonical")
    assert set(ENTITIES) == set(canonical.ENTITIES)


def test_yaml_errors_never_raise_foreign_exceptions(in_tmp: Path) -> None:
    for text in ["a: !!python/object:os.system x\n", "\t- bad\n", "a: *nope\n", "{]"]:
        with pytest.raises(ConfigError):
            loads(text)


def test_no_traceback_for_odd_shapes(in_tmp: Path) -> None:
    odd = ["systems: 3\n", "systems: {a: 3}\nflows: {f: 3}\n", ("systems: {a: {category: crm, "
           "connection: 5}}\nflows: {f: {entity: 3, from: {}, to: [[]], conflict: {owners: 1},"
           " filter: 4, schedule: 5, retry: 6, mappings: 7}}\n"),
           ("systems: {a: {category: crm, connection: {connector: x, mappings: 3, retry: []}}}\n"
           "flows: {f: {entity: deal, from: a, to: a, direction: two-way, "
           "filter: {any: 3}}}\n")]
    for text in odd:
        with pytest.raises(ConfigError) as info:
            loads(text)
        assert all(p.line for p in info.value.problems), str(info.value)


def test_loading_does_not_read_secrets(in_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Secrets are resolved at use: a set variable does not change the Settings."""
    monkeypatch.delenv("CRM_TOKEN", raising=False)
    unset = loads(BASE)
    monkeypatch.setenv("CRM_TOKEN", "x")
    assert loads(BASE) == unset


_WORDS = st.sampled_from([
    "version", "store", "broker", "mappings", "systems", "flows", "crm", "sheet", "category",
    "owner", "connection", "connector", "token", "retry", "attempts", "backoff_max", "entity",
    "from", "to", "schedule", "conflict", "policy", "owners", "fallback", "filter", "path",
    "any", "not", "equals", "direction", "two-way", "field-owner", "contact", "page_size"])
_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.floats(allow_nan=False),
                     _WORDS, st.sampled_from(["${X}", "a${X}", "${1}", "*/5 * * * *",
                                              "sqlite:///x.db", "redis://h", "./m.yaml"]))
_DOCS = st.recursive(_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(_WORDS, inner, max_size=4)), max_leaves=25)


@settings(max_examples=300, deadline=None)
@given(doc=st.dictionaries(_WORDS, _DOCS, max_size=5))
def test_any_document_loads_or_gives_located_problems(doc: dict[str, object]) -> None:
    """Never a traceback: any YAML either loads or yields problems that each have a line."""
    text = yaml.safe_dump(doc)
    try:
        loads(text, file="/nonexistent/hub.yaml")
    except ConfigError as exc:
        assert exc.problems
        assert all(p.line and p.file == "/nonexistent/hub.yaml" for p in exc.problems), exc
