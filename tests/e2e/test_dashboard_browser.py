"""The dashboard in a real browser: headless Chromium (Debian's) driven by Playwright against
`hub serve` running as its own process, over a store filled by real syncs.

The workspace has two spreadsheet systems (`sheets` -> `archive`), a HubSpot emulator
(`crm`) that the config reaches with a wrong token, and two silos without a connection.
Seeding runs `hub sync` twice: `contacts` dead-letters two rows whose email is invalid,
`crm-contacts` fails on the wrong token. The tests then act as an ops person would: sign in,
read the map, find the failing flow's reason, fix a row at its source and press Replay,
discard the other, press Run now. Screenshots of each page go to test-artifacts/dashboard/
(or $HUB_TEST_ARTIFACTS/dashboard).

The tests share one server and run in file order: the replay and discard change the store
that Run now reads afterwards.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from connectors.hubspot.sandbox import HubSpotSandbox
from tests.e2e.browser_support import HubServer, artifacts_dir, launch, require_browser
from tests.e2e.conftest import Workspace, hub_env, read_csv

TOKEN = "browser-dashboard-token-7c1e5a"
WRONG_HUBSPOT_TOKEN = "pat-eu1-wrong-token-0000"
RUN_WAIT = 60.0  # seconds a Run now gets to show up finished in the history
WAIT_MS = 20_000  # how long a page element may take to appear on a busy machine

CONFIG = """\
version: 1
systems:
  sheets:
    category: files
    owner: Ben (Purchasing)
    description: The contact sheets
    connection: {{connector: spreadsheet, path: ./src}}
  archive:
    category: files
    owner: Anna (Sales)
    connection: {{connector: spreadsheet, path: ./dst}}
  crm:
    category: crm
    owner: Carla (Sales)
    connection:
      connector: hubspot
      base_url: {hubspot}
      token: ${{HUBSPOT_TOKEN}}
      retry: {{attempts: 1}}
  sales-mailbox:
    category: email
    description: nobody owns it and it is not connected
  accounts:
    category: accounting
    owner: Chloe (Finance)
flows:
  contacts:
    entity: contact
    from: sheets
    to: archive
  crm-contacts:
    entity: contact
    from: crm
    to: archive
"""

ROWS = [
    ["c1", "Ada", "Lovelace", "ada@example.com", "+442071234567"],
    ["c2", "Bob", "Smith", "bob-at-example", "+14155552671"],  # fixed later, then replayed
    ["c3", "Cy", "Young", "cy@example.com", ""],
    ["c4", "Di", "Prince", "di@@example", ""],  # discarded
]
BOB_FIXED = ["c2", "Bob", "Smith", "bob@example.com", "+14155552671"]


class Site:
    """The seeded workspace, the served hub and what the seeding left behind."""

    def __init__(self, ws: Workspace, server: HubServer, dead: dict[str, int]) -> None:
        self.ws = ws
        self.server = server
        self.base = server.base
        self.dead = dead  # external id -> dead letter id

    def url(self, path: str) -> str:
        """An absolute URL on the served hub."""
        return self.base + path

    def dead_letters(self) -> dict[str, str]:
        """external id -> status of every dead letter, from `hub dlq list --all`."""
        out = self.ws.cli("dlq", "list", "--all", "--json")
        assert out.code == 0, str(out)
        return {d["external_id"]: d["status"] for d in json.loads(out.out)}

    def archive_emails(self) -> list[str]:
        """The email column of the target sheet, in file order."""
        return [r["email"] for r in read_csv(self.ws.dst / "contacts.csv")]


@pytest.fixture(scope="module")
def sync_api() -> Any:
    """playwright.sync_api, or skip/fail when Chromium or Playwright is missing."""
    api = require_browser()
    api.expect.set_options(timeout=WAIT_MS)  # the default 5 s is short for a busy CI machine
    return api


@pytest.fixture(scope="module")
def site(sync_api: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """Seed a store with real syncs, then serve it with `hub serve` (a child process)."""
    root = tmp_path_factory.mktemp("dashboard") / "hub"
    with HubSpotSandbox(count=3, token="sandbox-right-token") as crm:
        ws = Workspace(root, CONFIG.format(hubspot=crm.base_url))
        ws.sources(ROWS)
        wrong = {"HUBSPOT_TOKEN": WRONG_HUBSPOT_TOKEN}
        first = ws.cli("sync", "contacts", env=wrong)
        assert first.code == 1 and "dead-lettered 2" in first.out, str(first)
        failed = ws.cli("sync", "crm-contacts", env=wrong)
        assert failed.code == 1 and "failed" in failed.out, str(failed)
        listed = json.loads(ws.cli("dlq", "list", "--json").out)
        dead = {d["external_id"]: int(d["id"]) for d in listed}
        assert set(dead) == {"c2", "c4"}, listed

        env = hub_env({"HUB_DASHBOARD_TOKEN": TOKEN, "HUB_SECRET_KEY": "browser-tests-key",
                       **wrong})
        server = HubServer(ws.config, env, root / "serve.log").start()
        try:
            yield Site(ws, server, dead)
        finally:
            server.stop()
        assert "Traceback" not in server.log(), server.log()


@pytest.fixture(scope="module")
def browser(sync_api: Any) -> Iterator[Any]:
    """One headless Chromium for the module."""
    pw = sync_api.sync_playwright().start()
    try:
        chromium = launch(pw)
        try:
            yield chromium
        finally:
            chromium.close()
    finally:
        pw.stop()


def _new_page(browser: Any) -> Any:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    return page


def _shot(page: Any, name: str) -> None:
    page.screenshot(path=str(artifacts_dir() / f"{name}.png"), full_page=True)


def _sign_in(page: Any, token: str) -> None:
    page.fill("[data-testid=login-token]", token)
    page.click("[data-testid=login-button]")


@pytest.fixture(scope="module")
def page(browser: Any, site: Site) -> Iterator[Any]:
    """A browser tab signed in through the login form, shared by the tests of the module."""
    tab = _new_page(browser)
    tab.goto(site.url("/login"))
    _sign_in(tab, TOKEN)
    tab.wait_for_url(site.url("/"))
    try:
        yield tab
    finally:
        tab.context.close()


def _expect(sync_api: Any, locator: Any) -> Any:
    return sync_api.expect(locator)


# -- who may look -----------------------------------------------------------------------------


def test_without_signing_in_pages_go_to_the_login_and_the_api_answers_401(site: Site) -> None:
    with httpx.Client(base_url=site.base, follow_redirects=False, timeout=10) as http:
        for path in ("/", "/silo-map", "/flows/crm-contacts", f"/dead-letters/{site.dead['c2']}",
                     "/audit", "/next-steps"):
            r = http.get(path)
            assert r.status_code == 302, (path, r.status_code)
            assert r.headers["location"].startswith("/login?next="), r.headers
        action = http.post(f"/dead-letters/{site.dead['c2']}/replay", data={"csrf": "x"})
        assert action.status_code == 303 and action.headers["location"].startswith("/login")
        for headers in ({}, {"Authorization": "Bearer not-the-token-at-all"}):
            api = http.get("/api/v1/flows", headers=headers)
            assert api.status_code == 401, api.text
            assert "not signed in" in api.json()["error"]
        run = http.post("/api/v1/flows/contacts/run")
        assert run.status_code == 401
        ok = http.get("/api/v1/flows", headers={"Authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 200
    assert site.dead_letters() == {"c2": "open", "c4": "open"}, "nothing may have been done"


def test_the_login_form_refuses_a_wrong_token_and_then_signs_in(
        sync_api: Any, browser: Any, site: Site) -> None:
    tab = _new_page(browser)
    try:
        tab.goto(site.url("/flows/contacts"))
        assert tab.url.startswith(site.url("/login?next=")), tab.url
        _expect(sync_api, tab.get_by_test_id("login-form")).to_be_visible()

        _sign_in(tab, "not-the-dashboard-token")
        _expect(sync_api, tab.get_by_test_id("login-error")).to_be_visible()
        assert tab.url.startswith(site.url("/login")), tab.url
        assert tab.get_by_test_id("nav").count() == 0, "a refused login shows no dashboard"
        assert not [c for c in tab.context.cookies() if c["name"] == "hub_session"]
        _shot(tab, "login-refused")

        _sign_in(tab, TOKEN)
        tab.wait_for_url(site.url("/flows/contacts"))  # back to the page first asked for
        _expect(sync_api, tab.get_by_test_id("flow-state")).to_be_visible()
        [cookie] = [c for c in tab.context.cookies() if c["name"] == "hub_session"]
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        assert TOKEN not in tab.content()
    finally:
        tab.context.close()


# -- what it shows ----------------------------------------------------------------------------


def test_the_silo_map_shows_the_disconnected_silos(sync_api: Any, page: Any, site: Site) -> None:
    page.goto(site.url("/silo-map"))
    nodes = page.get_by_test_id("silo-node")
    _expect(sync_api, nodes).to_have_count(5)
    states = {n.get_attribute("data-system"): n.get_attribute("data-state")
              for n in nodes.all()}
    assert states == {"sheets": "failing", "archive": "failing", "crm": "failing",
                      "sales-mailbox": "disconnected", "accounts": "disconnected"}
    for silo in ("sales-mailbox", "accounts"):
        node = page.locator(f"[data-testid=silo-node][data-system={silo}]")
        _expect(sync_api, node).to_contain_text(silo)
        _expect(sync_api, node).to_contain_text("disconnected")
        row = page.locator(f"[data-testid=system-row][data-system={silo}]")
        _expect(sync_api, row).to_contain_text("not connected")
        _expect(sync_api, row).to_contain_text("no connection is configured: it is a silo",
                                               ignore_case=True)
    _expect(sync_api, page.locator("[data-testid=system-row][data-system=sales-mailbox] "
                                   "[data-testid=owner-missing]")).to_be_visible()
    _expect(sync_api, page.get_by_test_id("coverage")).to_contain_text(
        "3 of 5 systems connected")
    edges = {(e.get_attribute("data-source"), e.get_attribute("data-target"))
             for e in page.get_by_test_id("silo-edge").all()}
    assert edges == {("sheets", "archive"), ("crm", "archive")}
    assert page.locator("#silo-map").bounding_box()["width"] > 300, "the map is drawn"
    _shot(page, "silo-map")

    page.goto(site.url("/"))
    _expect(sync_api, page.get_by_test_id("card-coverage")).to_have_attribute(
        "data-declared", "5")
    _expect(sync_api, page.get_by_test_id("silo-node")).to_have_count(5)
    _shot(page, "overview")


def test_a_failing_flow_says_why_in_words_on_its_page(sync_api: Any, page: Any,
                                                     site: Site) -> None:
    page.goto(site.url("/flows"))
    row = page.locator("[data-testid=flow-row][data-flow=crm-contacts]")
    _expect(sync_api, row).to_have_attribute("data-state", "failing")
    row.get_by_role("link", name="crm-contacts").click()
    page.wait_for_url(site.url("/flows/crm-contacts"))

    _expect(sync_api, page.get_by_test_id("flow-state")).to_have_attribute("data-state",
                                                                           "failing")
    error = page.get_by_test_id("run-error")
    _expect(sync_api, error).to_have_count(1)
    text = error.inner_text()
    assert "The run stopped" in text, text
    assert "HubSpot (crm)" in text and "401 Unauthorized" in text, text
    assert "check the credentials and scopes of the HubSpot (crm) connection" in text, text
    assert "Fix that, then run the flow again" in text, text
    _expect(sync_api, page.get_by_test_id("flow-reasons")).to_contain_text("failed")
    assert WRONG_HUBSPOT_TOKEN not in page.content(), "a secret reached the page"
    _shot(page, "flow-failing")


# -- what it does -----------------------------------------------------------------------------


def test_replay_from_the_dead_letter_page_delivers_the_fixed_record(
        sync_api: Any, page: Any, site: Site) -> None:
    assert "bob@example.com" not in site.archive_emails()
    page.goto(site.url("/dead-letters"))
    rows = page.get_by_test_id("dead-letter-row")
    _expect(sync_api, rows).to_have_count(2)
    _shot(page, "dead-letters")

    # The ops person fixes Bob's email in the sheet, then presses Replay.
    site.ws.sources([ROWS[0], BOB_FIXED, ROWS[2], ROWS[3]])
    bob = site.dead["c2"]
    page.locator(f"[data-testid=dead-letter-row][data-id='{bob}']").get_by_role(
        "link", name=str(bob)).click()
    page.wait_for_url(site.url(f"/dead-letters/{bob}"))
    _expect(sync_api, page.get_by_test_id("dead-letter-reason")).to_contain_text(
        "'bob-at-example' is not a valid email")
    _expect(sync_api, page.get_by_test_id("dead-letter-advice")).to_contain_text("replay")
    _shot(page, "dead-letter")
    page.get_by_test_id("replay-button").click()

    flash = page.get_by_test_id("flash")
    _expect(sync_api, flash).to_contain_text(f"dead letter {bob} replayed: delivered")
    _expect(sync_api, flash).to_have_attribute("data-kind", "ok")
    _expect(sync_api, page.get_by_test_id("dead-letter-status")).to_have_attribute(
        "data-status", "replayed")
    _expect(sync_api, page.get_by_test_id("replay-button")).to_have_count(0)
    _shot(page, "dead-letter-replayed")

    emails = site.archive_emails()
    assert emails.count("bob@example.com") == 1, emails
    assert site.dead_letters() == {"c2": "replayed", "c4": "open"}

    page.reload()  # the message was for one page load only
    _expect(sync_api, page.get_by_test_id("flash")).to_have_count(0)


def test_discard_asks_first_and_then_marks_the_dead_letter_discarded(
        sync_api: Any, page: Any, site: Site) -> None:
    di = site.dead["c4"]
    page.goto(site.url(f"/dead-letters/{di}"))
    asked: list[str] = []

    def answer(accept: bool) -> Any:
        def handle(dialog: Any) -> None:
            asked.append(dialog.message)
            dialog.accept() if accept else dialog.dismiss()
        return handle

    page.once("dialog", answer(False))
    page.get_by_test_id("discard-button").click()
    assert asked and f"Give up on dead letter {di}?" in asked[0], asked
    _expect(sync_api, page.get_by_test_id("dead-letter-status")).to_have_attribute(
        "data-status", "open")
    assert site.dead_letters()["c4"] == "open", "a cancelled discard must do nothing"

    page.once("dialog", answer(True))
    page.get_by_test_id("discard-button").click()
    _expect(sync_api, page.get_by_test_id("flash")).to_contain_text(
        f"dead letter {di} discarded")
    _expect(sync_api, page.get_by_test_id("dead-letter-status")).to_have_attribute(
        "data-status", "discarded")
    assert len(asked) == 2
    assert site.dead_letters() == {"c2": "replayed", "c4": "discarded"}
    assert not any("di@" in e for e in site.archive_emails())

    page.goto(site.url("/dead-letters"))
    _expect(sync_api, page.get_by_test_id("empty-state")).to_contain_text("Nothing is waiting")


def test_run_now_starts_a_run_that_shows_in_the_history(sync_api: Any, page: Any,
                                                        site: Site) -> None:
    page.goto(site.url("/flows/contacts"))
    before = {r.get_attribute("data-run") for r in page.get_by_test_id("run-row").all()}
    page.get_by_test_id("run-now").click()
    page.wait_for_url(site.url("/flows/contacts"))
    _expect(sync_api, page.get_by_test_id("flash")).to_contain_text("A run of contacts was "
                                                                    "queued")
    deadline = time.monotonic() + RUN_WAIT
    new: list[Any] = []
    while time.monotonic() < deadline:
        page.reload()
        new = [r for r in page.get_by_test_id("run-row").all()
               if r.get_attribute("data-run") not in before]
        if new and new[0].get_attribute("data-status") not in ("running", "queued"):
            break
        time.sleep(0.5)
    assert len(new) == 1, f"no finished run of contacts appeared within {RUN_WAIT:.0f} s"
    cells = [c.inner_text() for c in new[0].locator("td").all()]
    assert cells[2] == "dashboard", cells  # started by
    assert cells[5] == "4", cells  # read the four rows of the sheet
    # Di's row is still invalid at the source and her old dead letter was discarded: the
    # run keeps her as a new dead letter rather than dropping her.
    assert new[0].get_attribute("data-status") == "partial", cells
    _shot(page, "flow-run-now")
    assert site.archive_emails().count("bob@example.com") == 1, "no duplicate after a rerun"


def test_audit_trail_and_next_steps_show_what_happened_and_what_to_do(
        sync_api: Any, page: Any, site: Site) -> None:
    page.goto(site.url("/audit"))
    page.fill("#a-record", "c2")
    page.click("#audit-search-button")
    page.wait_for_url("**/audit?record=c2*")
    events = page.get_by_test_id("audit-event")
    _expect(sync_api, events.first).to_be_visible()
    diffs = page.locator("[data-testid=audit-diff] tr[data-field]")
    fields = {d.get_attribute("data-field") for d in diffs.all()}
    assert any(f and f.startswith("emails") for f in fields), fields
    _expect(sync_api, page.get_by_test_id("audit-table")).to_contain_text("bob@example.com")
    page.get_by_test_id("audit-verify-button").click()
    _expect(sync_api, page.get_by_test_id("audit-verify")).to_have_attribute("data-ok", "true")
    _shot(page, "audit")

    page.goto(site.url("/next-steps"))
    steps = {(s.get_attribute("data-kind"), s.get_attribute("data-subject"))
             for s in page.get_by_test_id("next-step").all()}
    assert ("fix-flow", "crm-contacts") in steps, steps
    assert ("connect-silo", "sales-mailbox") in steps and ("connect-silo", "accounts") in steps
    assert ("assign-owner", "sales-mailbox") in steps, steps
    _expect(sync_api, page.get_by_test_id("maturity")).to_be_visible()
    _shot(page, "next-steps")
