"""The dashboard and its API over real HTTP: the hub's app served by uvicorn on loopback,
a store seeded by real syncs between CSV folders (one record dead-lettered on the way)."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Self

import httpx
import orjson
import pytest
import uvicorn
from click.testing import CliRunner
from starlette.applications import Starlette
from starlette.routing import Route

from hub.audit import AuditObserver
from hub.cli import main
from hub.config import loads
from hub.config.model import Settings
from hub.store import Store
from hub.sync.engine import SyncEngine
from hub.web.api import PREFIX, ROUTES
from hub.web.app import make_app
from hub.web.auth import AuthConfig
from hub.web.dashboard import Dashboard, run_now_trigger
from hub.web.openapi import document
from hub.web.trigger import FlowTrigger
from tests.integration.helpers import contact, read_csv, write_csv
from tests.integration.metrics_support import parse, value

TOKEN = "dash-token-0123456789abcdef"
USER, PASSWORD = "ops", "correct horse battery"
SECRET_VAR = "T_DASH_SHEET_SECRET"
SECRET = "s3cr3t-sheet-value-77f1"
STARTUP = 10.0  # seconds uvicorn gets to listen
RUN_WAIT = 30.0  # seconds a Run now gets to finish

PAGES = ["/", "/silo-map", "/flows", "/flows/contacts", "/dead-letters",
         "/dead-letters?status=all", "/audit", "/audit?verify=1&record=2", "/next-steps"]


class Served:
    """An ASGI app served by uvicorn on 127.0.0.1 (a free port) in a background thread."""

    def __init__(self, app: Starlette) -> None:
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0,
                                                    log_level="warning", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Self:
        self.thread.start()
        deadline = time.monotonic() + STARTUP
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start within the startup wait")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    @property
    def base(self) -> str:
        """http://127.0.0.1:<port>"""
        return f"http://127.0.0.1:{self.server.servers[0].sockets[0].getsockname()[1]}"


CONFIG = """
version: 1
store: sqlite:///{tmp}/liaison.db
systems:
  a:
    category: crm
    owner: Anna
    connection: {{connector: spreadsheet, path: "{tmp}/a", token: "${{{var}}}"}}
  b:
    category: files
    owner: Ben
    connection: {{connector: spreadsheet, path: "{tmp}/b"}}
  mailbox:
    category: email
flows:
  contacts:
    entity: contact
    from: a
    to: b
"""


class Site:
    """A config, a store, the app served, and every response body seen (for secret checks)."""

    def __init__(self, tmp: Path, *, seed: bool, auth: AuthConfig | None = None) -> None:
        (tmp / "a").mkdir()
        (tmp / "b").mkdir()
        self.tmp = tmp
        self.settings: Settings = loads(CONFIG.format(tmp=tmp, var=SECRET_VAR),
                                        file=str(tmp / "hub.yaml"))
        self.store = Store(self.settings.store_url, auto_migrate=True)
        self.rows = [contact(i) for i in range(6)]
        if seed:
            self.rows[3]["email"] = "not-an-email"
            write_csv(tmp / "a" / "contacts.csv", self.rows)
            engine = SyncEngine(self.settings, self.store, observers=[AuditObserver(self.store)])
            assert engine.run("contacts").status == "partial"
            with self.store.begin() as conn:  # a vendor that echoed a secret in its answer
                self.store.add_dead_letters(conn, [{
                    "run_id": 1, "flow": "contacts", "system": "b", "entity": "contact",
                    "stage": "write", "external_id": None, "canonical_id": None,
                    "payload": orjson.dumps({"api_key": SECRET, "note": f"key {SECRET}"}).decode(),
                    "error": f"400 Bad Request: token {SECRET} has no write scope"}])
        self.runs: FlowTrigger = run_now_trigger(self.settings, self.store)
        auth = auth or AuthConfig(TOKEN, USER, PASSWORD, b"k" * 32)
        self.dashboard = Dashboard(self.settings, self.store, auth, run_now=self.runs.enqueue)
        self.app = make_app(self.settings, self.store, lambda s, e: None,
                            dashboard=self.dashboard)
        self.texts: list[str] = []

    def client(self, base: str, **kw: Any) -> httpx.Client:
        """An HTTP client that remembers every body it received."""
        def keep(response: httpx.Response) -> None:
            response.read()
            self.texts.append(response.text)
            self.texts.append(str(response.headers))

        return httpx.Client(base_url=base, timeout=30, event_hooks={"response": [keep]},
                            follow_redirects=False, **kw)

    def dead_letter(self, stage: str = "validate") -> int:
        with self.store.connect() as conn:
            return next(int(r.id) for r in self.store.list_dead_letters(conn, status=None)
                        if r.stage == stage)

    def close(self) -> None:
        self.runs.close()
        self.store.close()


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Site, Served]]:
    monkeypatch.setenv(SECRET_VAR, SECRET)
    s = Site(tmp_path, seed=True)
    try:
        with Served(s.app) as srv:
            yield s, srv
    finally:
        s.close()
    for text in s.texts:  # whatever the test did, no secret ever went over the wire
        for secret in (SECRET, TOKEN, PASSWORD):
            assert secret not in text


def login(site: Site, srv: Served, **form: str) -> httpx.Client:
    c = site.client(srv.base)
    r = c.post("/login", data=form or {"token": TOKEN, "next": "/"})
    assert r.status_code == 303, r.text
    return c


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, "the page has no CSRF field"
    return found.group(1)


BEARER = {"Authorization": f"Bearer {TOKEN}"}


# -- who may come in ----------------------------------------------------------------------


def test_pages_redirect_to_login_and_the_api_answers_401_without_credentials(
        site: tuple[Site, Served]) -> None:
    s, srv = site
    c = s.client(srv.base)
    for page in PAGES:
        r = c.get(page)
        assert r.status_code == 302, page
        assert r.headers["location"].startswith("/login?next=%2F"), page
    for route in ROUTES:
        path = PREFIX + route.path.format(name="contacts", dl_id=1, run_id=1)
        r = c.request(route.method, path)
        assert r.status_code == 401, path
        assert r.headers["www-authenticate"] == 'Bearer realm="liaison"'
        assert "Bearer" in r.json()["error"]
    assert c.get("/api/v1/flows", headers={"Authorization": "Bearer wrong"}).status_code == 401
    # Webhooks, /healthz and the stylesheet need no login.
    assert c.get("/healthz").status_code == 200
    assert c.get("/static/dashboard.css").status_code == 200
    assert c.post("/webhooks/mailbox", content=b"{}").status_code == 404


def test_login_with_the_token_or_the_password_sets_a_strict_session_cookie(
        site: tuple[Site, Served]) -> None:
    s, srv = site
    c = s.client(srv.base)
    r = c.post("/login", data={"token": TOKEN, "next": "/flows/contacts"})
    assert (r.status_code, r.headers["location"]) == (303, "/flows/contacts")
    cookie = r.headers["set-cookie"].lower()
    assert "hub_session=" in cookie and "httponly" in cookie and "samesite=strict" in cookie
    assert c.get("/flows/contacts").status_code == 200
    by_password = login(s, srv, user=USER, password=PASSWORD)
    assert by_password.get("/").status_code == 200
    assert by_password.get("/api/v1/flows").status_code == 200  # the API takes the session


def test_wrong_credentials_and_foreign_redirects_are_refused(site: tuple[Site, Served]) -> None:
    s, srv = site
    c = s.client(srv.base)
    for form in ({"token": "nope"}, {"user": USER, "password": "wrong"},
                 {"user": "someone", "password": PASSWORD}, {}):
        r = c.post("/login", data=form)
        assert r.status_code == 401 and "did not match" in r.text
        assert "hub_session" not in r.headers.get("set-cookie", "")
    r = c.post("/login", data={"token": TOKEN, "next": "//evil.example/x"})
    assert r.headers["location"] == "/"
    forged = s.client(srv.base)
    forged.cookies.set("hub_session", "eyJzIjoidG9rZW4ifQ.forged")
    assert forged.get("/").status_code == 302
    authed = login(s, srv)
    good = authed.cookies["hub_session"]
    body, mac = good.split(".")
    tampered = body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1] + "." + mac
    altered = s.client(srv.base)
    altered.cookies.set("hub_session", tampered)
    assert altered.get("/").status_code == 302


def test_logout_ends_the_session(site: tuple[Site, Served]) -> None:
    s, srv = site
    c = login(s, srv)
    csrf = csrf_of(c.get("/").text)
    r = c.post("/logout", data={"csrf": csrf})
    assert (r.status_code, r.headers["location"]) == (303, "/login")
    assert c.get("/").status_code == 302


# -- headers and secrets ------------------------------------------------------------------


def test_every_response_carries_the_security_headers(site: tuple[Site, Served]) -> None:
    s, srv = site
    c = login(s, srv)
    responses = [c.get(p) for p in PAGES] + [c.get("/api/v1/silo-map"), c.get("/healthz"),
                                               s.client(srv.base).get("/login"),
                                               s.client(srv.base).get("/api/v1/flows")]
    for r in responses:
        csp = r.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["referrer-policy"] == "no-referrer"
    for r in responses[:len(PAGES) + 1]:
        assert r.headers["cache-control"] == "no-store", r.url


def test_pages_have_no_inline_script_or_style(site: tuple[Site, Served]) -> None:
    s, srv = site
    c = login(s, srv)
    for page in PAGES:
        html = c.get(page).text
        assert re.search(r"<script(?![^>]*\bsrc=)", html) is None, page
        assert " style=" not in html and "<style" not in html, page
        assert re.search(r"\son[a-z]+=", html) is None, page


def test_no_secret_appears_in_any_page_or_api_answer(site: tuple[Site, Served]) -> None:
    s, srv = site
    c = login(s, srv)
    echoed = s.dead_letter("write")
    pages = PAGES + [f"/dead-letters/{echoed}", f"/dead-letters/{s.dead_letter()}"]
    api = [PREFIX + r.path.format(name="a" if "systems" in r.path else "contacts",
                                  dl_id=echoed, run_id=1)
           for r in ROUTES if r.method == "GET"]
    bodies = [c.get(p).text for p in pages] + [c.get(p, headers=BEARER).text for p in api]
    assert all(SECRET not in b and TOKEN not in b and PASSWORD not in b for b in bodies)
    detail = c.get(f"/api/v1/dead-letters/{echoed}", headers=BEARER).json()["dead_letter"]
    assert detail["payload"] == {"api_key": "***", "note": "key ***"}
    assert detail["error"] == "400 Bad Request: token *** has no write scope"
    # the fixture checks every other response this test received, headers included


# -- actions ------------------------------------------------------------------------------


def test_forms_without_the_csrf_token_or_from_another_site_are_refused(
        site: tuple[Site, Served]) -> None:
    s, srv = site
    dl = s.dead_letter()
    c = login(s, srv)
    csrf = csrf_of(c.get(f"/dead-letters/{dl}").text)
    for data, headers in (({}, {}), ({"csrf": "forged"}, {}),
                          ({"csrf": csrf}, {"Origin": "https://evil.example"}),
                          ({"csrf": csrf}, {"Sec-Fetch-Site": "cross-site"})):
        r = c.post(f"/dead-letters/{dl}/discard", data=data, headers=headers)
        assert r.status_code == 403, (data, headers)
        assert "nothing was done" in r.text.lower() or "not carried out" in r.text
    r = c.post("/flows/contacts/run", data={"csrf": csrf}, headers={"Origin": "null",
                                                                  "Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 403
    # Without a session at all, the POST is sent to the login page.
    anon = s.client(srv.base).post(f"/dead-letters/{dl}/discard", data={"csrf": csrf})
    assert anon.status_code == 303 and anon.headers["location"].startswith("/login")
    # The API: a cookie session needs the CSRF header, a bearer token never does, and
    # another site's Origin is refused either way.
    assert c.post(f"/api/v1/dead-letters/{dl}/discard").status_code == 403
    assert c.post(f"/api/v1/dead-letters/{dl}/discard",
                  headers={"Content-Type": "application/json"}).status_code == 403
    foreign = {**BEARER, "Origin": "https://evil.example"}
    assert s.client(srv.base).post(f"/api/v1/dead-letters/{dl}/discard",
                                   headers=foreign).status_code == 403
    assert s.client(srv.base).get(f"/api/v1/dead-letters/{dl}", headers=BEARER).json()[
        "dead_letter"]["status"] == "open"
    ok = c.post(f"/api/v1/dead-letters/{dl}/discard", headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 200 and ok.json()["status"] == "discarded"


def test_replay_from_the_api_delivers_the_fixed_record(site: tuple[Site, Served]) -> None:
    s, srv = site
    dl = s.dead_letter()
    assert "person3@example.com" not in {r["email"] for r in read_csv(s.tmp / "b" /
                                                                      "contacts.csv")}
    s.rows[3]["email"] = "person3@example.com"  # fixed at the source
    write_csv(s.tmp / "a" / "contacts.csv", s.rows)
    c = s.client(srv.base, headers=BEARER)
    r = c.post(f"/api/v1/dead-letters/{dl}/replay")
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["delivered"] is True and out["status"] == "replayed"
    assert out["counts"]["written"] == 1 and "delivered" in out["message"]
    target = [row for row in read_csv(s.tmp / "b" / "contacts.csv")
              if row["email"] == "person3@example.com"]
    assert len(target) == 1
    again = c.post(f"/api/v1/dead-letters/{dl}/replay").json()
    assert again["status"] == "already-replayed" and again["delivered"] is False
    assert len(read_csv(s.tmp / "b" / "contacts.csv")) == 6, "a repeated replay adds nothing"
    assert c.get(f"/api/v1/dead-letters/{dl}").json()["dead_letter"]["status"] == "replayed"
    runs = c.get("/api/v1/runs?flow=contacts").json()["runs"]
    assert runs[0]["trigger"] == "replay" and runs[0]["status"] == "succeeded"
    assert c.post("/api/v1/dead-letters/999/replay").status_code == 404


def test_replay_and_discard_buttons_work_and_say_what_happened(
        site: tuple[Site, Served]) -> None:
    s, srv = site
    dl = s.dead_letter()
    c = login(s, srv)
    page = c.get(f"/dead-letters/{dl}").text
    assert 'data-testid="replay-button"' in page and 'data-testid="discard-button"' in page
    assert "not-an-email" in page and "What to do" in page
    r = c.post(f"/dead-letters/{dl}/replay", data={"csrf": csrf_of(page)})
    assert (r.status_code, r.headers["location"]) == (303, f"/dead-letters/{dl}")
    after = c.get(f"/dead-letters/{dl}").text
    # Not fixed at the source: it fails again, and the page says so.
    assert 'data-testid="flash"' in after and "failed again" in after
    assert 'data-status="replayed"' in after
    assert 'data-testid="flash"' not in c.get(f"/dead-letters/{dl}").text  # shown once
    fresh = max(d["id"] for d in c.get("/api/v1/dead-letters").json()["dead_letters"])
    page = c.get(f"/dead-letters/{fresh}").text
    c.post(f"/dead-letters/{fresh}/discard", data={"csrf": csrf_of(page)})
    after = c.get(f"/dead-letters/{fresh}").text
    assert f"dead letter {fresh} discarded" in after and 'data-status="discarded"' in after
    assert 'data-testid="replay-button"' not in after


def test_run_now_queues_a_run_from_the_api_and_the_button(site: tuple[Site, Served]) -> None:
    s, srv = site
    api = s.client(srv.base, headers=BEARER)
    r = api.post("/api/v1/flows/contacts/run")
    assert r.status_code == 202 and r.json()["flow"] == "contacts"
    assert s.runs.wait_idle(RUN_WAIT)
    runs = api.get("/api/v1/runs?flow=contacts").json()["runs"]
    assert runs[0]["trigger"] == "dashboard" and runs[0]["status"] in ("succeeded", "partial")
    assert api.post("/api/v1/flows/nope/run").status_code == 404
    c = login(s, srv)
    page = c.get("/flows/contacts").text
    assert 'data-testid="run-now"' in page
    r = c.post("/flows/contacts/run", data={"csrf": csrf_of(page)})
    assert r.status_code == 303
    assert "was queued" in c.get("/flows/contacts").text or \
        "already waiting" in c.get("/flows/contacts").text
    assert s.runs.wait_idle(RUN_WAIT)


def test_runs_and_replays_from_the_dashboard_are_counted_in_metrics(
        site: tuple[Site, Served]) -> None:
    s, srv = site
    api = s.client(srv.base, headers=BEARER)

    def counted(name: str, **labels: str) -> float:
        return value(parse(api.get("/metrics").text), name, flow="contacts", **labels)

    # Counters are per process: other tests in this process may have counted flows named
    # "contacts" too, so compare each series with itself.
    runs = counted("liaison_runs_total")
    written = counted("liaison_records_written_total", system="b")
    assert api.post("/api/v1/flows/contacts/run").status_code == 202
    assert s.runs.wait_idle(RUN_WAIT)
    assert counted("liaison_runs_total") == runs + 1
    s.rows[3]["email"] = "person3@example.com"  # fixed at the source, then replayed
    write_csv(s.tmp / "a" / "contacts.csv", s.rows)
    r = api.post(f"/api/v1/dead-letters/{s.dead_letter()}/replay")
    assert r.status_code == 200 and r.json()["delivered"] is True, r.text
    assert counted("liaison_records_written_total", system="b") > written


# -- pages --------------------------------------------------------------------------------


def test_each_page_renders_the_seeded_store(site: tuple[Site, Served]) -> None:
    s, srv = site
    c = login(s, srv)
    home = c.get("/").text
    assert 'data-testid="silo-map"' in home
    nodes = dict(re.findall(r'data-testid="silo-node"\s+data-system="([^"]+)"\s+'
                            r'data-state="([^"]+)"', home))
    assert nodes == {"a": "failing", "b": "failing", "mailbox": "disconnected"}
    assert "✕ failing" in home and "○ disconnected" in home  # a word, not only a colour
    assert "2 of 3 systems" in home
    flow = c.get("/flows/contacts").text
    assert 'data-testid="run-error"' in flow and "could not be synced" in flow
    dead = c.get("/dead-letters").text
    assert dead.count('data-testid="dead-letter-row"') == 2
    audit = c.get("/audit?record=2&verify=1").text
    assert 'data-testid="audit-verify" data-ok="true"' in audit
    # Record 2's history: created from a, then written to b.
    assert re.findall(r'data-testid="audit-event" data-seq="\d+" data-action="([^"]+)"',
                      audit) == ["write.create", "create"]
    listed = c.get("/audit").text
    assert 'data-testid="audit-diff"' in listed and "person0@example.com" in listed
    steps = c.get("/next-steps").text
    assert 'data-kind="assign-owner" data-subject="mailbox"' in steps
    assert 'data-kind="data-quality" data-subject="contact"' in steps
    assert 'data-testid="maturity" data-phase="2"' in steps
    assert c.get("/audit?since=yesterday").text.count('data-testid="audit-problem"') == 1
    missing = c.get("/flows/nope")
    assert missing.status_code == 404 and "no flow named nope" in missing.text
    assert c.get("/dead-letters/12345").status_code == 404
    assert "Traceback" not in "".join(s.texts)


def test_each_page_renders_an_empty_store_with_what_to_do(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_VAR, SECRET)
    s = Site(tmp_path, seed=False)
    try:
        with Served(s.app) as srv:
            c = login(s, srv)
            texts = {p: c.get(p) for p in PAGES}
            assert all(r.status_code == 200 for r in texts.values())
            assert "has not run yet" in texts["/flows/contacts"].text
            assert "Nothing is waiting" in texts["/dead-letters"].text
            assert "No changes are recorded yet" in texts["/audit"].text
            assert "No changes match" in texts["/audit?verify=1&record=2"].text
            assert 'data-ok="true"' in texts["/audit?verify=1&record=2"].text
            assert 'data-state="stale"' in texts["/flows"].text  # never synced
            assert c.get("/api/v1/runs", headers=BEARER).json() == {"runs": []}
            assert c.get("/api/v1/dead-letters", headers=BEARER).json() == {"dead_letters": []}
    finally:
        s.close()


# -- the API's contract -------------------------------------------------------------------


def test_openapi_documents_every_route_and_every_documented_path_answers(
        site: tuple[Site, Served]) -> None:
    s, srv = site
    c = s.client(srv.base, headers=BEARER)
    doc = c.get("/api/v1/openapi.json").json()
    assert doc["openapi"].startswith("3.1") and doc == document()
    served = {(m, r.path) for r in s.app.routes if isinstance(r, Route)
              and r.path.startswith(PREFIX) for m in (r.methods or ()) if m != "HEAD"}
    documented = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    assert served == documented
    schemas = doc["components"]["schemas"]
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            for resp in op["responses"].values():
                ref = resp["content"]["application/json"]["schema"]["$ref"]
                assert ref.rsplit("/", 1)[1] in schemas
            if method == "post":
                continue  # actions are exercised by their own tests
            url = path.format(name="a" if path.startswith(f"{PREFIX}/systems") else "contacts",
                              dl_id=s.dead_letter(), run_id=1)
            r = c.get(url)
            assert str(r.status_code) in op["responses"], (url, r.status_code)
            assert r.status_code == 200, (url, r.text)
            for key in schemas[op["responses"]["200"]["content"]["application/json"][
                    "schema"]["$ref"].rsplit("/", 1)[1]].get("required", []):
                assert key in r.json(), (url, key)


def test_api_answers_bad_parameters_with_400_in_words(site: tuple[Site, Served]) -> None:
    s, srv = site
    c = s.client(srv.base, headers=BEARER)
    r = c.get("/api/v1/audit?since=last-week")
    assert r.status_code == 400 and "use e.g. 2026-11-01" in r.json()["error"]
    assert c.get("/api/v1/runs?limit=0").status_code == 400
    assert "status must be one of" in c.get("/api/v1/dead-letters?status=x").json()["error"]
    assert c.get("/api/v1/runs/999").status_code == 404
    assert c.get("/api/v1/systems/nope").status_code == 404
    events = c.get("/api/v1/audit?record=2").json()["events"]
    assert [e["action"] for e in events] == ["write.create", "create"]
    assert events[0]["diff"]["email"] == [None, "person2@example.com"]  # field-level diff
    assert events[1]["diff"]["title"] == [None, "Engineer"]
    until = c.get("/api/v1/audit?until=2000-01-01").json()["events"]
    assert until == []


# -- no-auth mode and `hub serve` ---------------------------------------------------------


def test_no_auth_mode_answers_only_loopback_hosts_and_keeps_csrf(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_VAR, SECRET)
    s = Site(tmp_path, seed=True, auth=AuthConfig.from_env({}, no_auth=True))
    try:
        with Served(s.app) as srv:
            c = s.client(srv.base)
            page = c.get("/")
            assert page.status_code == 200 and "No login" in page.text
            assert c.get("/", headers={"Host": "evil.example:80"}).status_code == 403
            assert c.get("/api/v1/flows", headers={"Host": "evil.example"}).status_code == 403
            dl = s.dead_letter()
            assert c.post(f"/dead-letters/{dl}/discard", data={}).status_code == 403
            # A form another site could send is refused; a JSON POST is not such a form.
            assert s.client(srv.base).post(f"/api/v1/dead-letters/{dl}/discard",
                                           data={"x": "1"}).status_code == 403
            r = s.client(srv.base).post(f"/api/v1/dead-letters/{dl}/discard", json={})
            assert r.status_code == 200 and r.json()["status"] == "discarded"
    finally:
        s.close()


def test_hub_serve_refuses_to_start_without_a_credential(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("HUB_DASHBOARD_TOKEN", "HUB_DASHBOARD_USER", "HUB_DASHBOARD_PASSWORD"):
        monkeypatch.delenv(var, raising=False)
    (tmp_path / "hub.yaml").write_text(CONFIG.format(tmp=tmp_path, var=SECRET_VAR),
                                       encoding="utf-8")
    runner = CliRunner()
    cfg = ["-c", str(tmp_path / "hub.yaml"), "serve", "--port", "1"]
    r = runner.invoke(main, cfg)
    assert r.exit_code == 2 and "HUB_DASHBOARD_TOKEN" in r.output and "--no-auth" in r.output
    r = runner.invoke(main, [*cfg, "--no-auth", "--host", "0.0.0.0"])
    assert r.exit_code == 2 and "only allowed on 127.0.0.1" in r.output
    r = runner.invoke(main, cfg, env={"HUB_DASHBOARD_TOKEN": "short"})
    assert r.exit_code == 2 and "too short" in r.output
    r = runner.invoke(main, cfg, env={"HUB_DASHBOARD_USER": "ops"})
    assert r.exit_code == 2 and "HUB_DASHBOARD_PASSWORD is not set" in r.output
    assert not (tmp_path / "liaison.db").exists(), "refused before touching the store"
