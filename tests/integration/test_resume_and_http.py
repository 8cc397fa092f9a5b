"""A killed `hub sync` resumes without duplicates; HubSpot over real HTTP; no loss, no dups."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.hubspot.sandbox import HubSpotSandbox
from hub.audit import AuditObserver
from hub.config import loads
from hub.store import Store
from hub.sync.engine import SyncEngine
from tests.integration.helpers import Hub, contact, read_csv, write_csv


def _read_count(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=1) as conn:
            row = conn.execute("SELECT read FROM runs ORDER BY id DESC LIMIT 1").fetchone()
            return int(row[0]) if row else 0
    except sqlite3.Error:
        return 0


def test_sigkilled_sync_resumes_from_last_committed_page_without_duplicates(
        tmp_path: Path) -> None:
    flow = """  contacts:
    entity: contact
    from: a
    to: b
    page_size: 100"""
    hub = Hub(tmp_path, flow=flow)
    n = 8000
    write_csv(hub.a / "contacts.csv", [contact(i) for i in range(n)])
    hub.close()
    cmd = [sys.executable, "-m", "hub.cli", "-c", str(tmp_path / "hub.yaml"), "sync",
           "contacts"]
    # Batches of 1,000 records: the run commits several times before it ends.
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "HUB_COMMIT_RECORDS": "1000"})
    deadline = time.monotonic() + 60
    killed_at = 0
    while time.monotonic() < deadline and proc.poll() is None:
        killed_at = _read_count(tmp_path / "liaison.db")
        if killed_at >= 1000:
            os.kill(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.01)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert 0 < killed_at < n

    partial = read_csv(hub.b / "contacts.csv")
    assert len(partial) < n
    resumed = subprocess.run(cmd + ["--json"], capture_output=True, text=True, timeout=120,
                             check=False)
    assert resumed.returncode == 0, resumed.stderr
    assert '"resumed": true' in resumed.stdout
    rows = read_csv(hub.b / "contacts.csv")
    assert len(rows) == n
    assert len({r["email"] for r in rows}) == n and len({r["id"] for r in rows}) == n
    store = Store(f"sqlite:///{tmp_path / 'liaison.db'}")
    with store.connect() as conn:
        assert store.count_records(conn, "contact") == n
        assert store.outbox_count(conn) == 0
    assert store.verify_audit().ok
    store.close()


def _hubspot_hub(tmp_path: Path, sandbox: HubSpotSandbox) -> tuple[SyncEngine, Store]:
    os.environ["TEST_HUBSPOT_TOKEN"] = sandbox.token
    (tmp_path / "sheet").mkdir()
    text = f"""
version: 1
store: sqlite:///{tmp_path / 'liaison.db'}
systems:
  crm:
    category: crm
    owner: Anna
    connection: {{connector: hubspot, base_url: "{sandbox.base_url}", token: "${{TEST_HUBSPOT_TOKEN}}", search_overlap_ms: 0}}
  sheet:
    category: files
    owner: Ben
    connection: {{connector: spreadsheet, path: "{tmp_path / 'sheet'}"}}
flows:
  companies:
    entity: company
    from: crm
    to: sheet
  contacts:
    entity: contact
    from: crm
    to: sheet
  sheet-contacts-to-crm:
    entity: contact
    from: sheet
    to: crm
"""
    settings = loads(text, file=str(tmp_path / "hub.yaml"))
    store = Store(settings.store_url)
    return SyncEngine(settings, store, observers=[AuditObserver(store)]), store


def test_hubspot_over_http_to_a_spreadsheet_and_back(tmp_path: Path) -> None:
    with HubSpotSandbox(seed=3, count=250) as sandbox:
        engine, store = _hubspot_hub(tmp_path, sandbox)
        companies = engine.run("companies")
        contacts = engine.run("contacts")
        assert companies.status == contacts.status == "succeeded"
        assert contacts.counts.created == 250 and contacts.counts.written == 250
        rows = read_csv(tmp_path / "sheet" / "contacts.csv")
        sheet_companies = {r["id"] for r in read_csv(tmp_path / "sheet" / "companies.csv")}
        assert len(rows) == 250
        # References survive: each contact's company is the sheet's id of that company.
        with_company = [r for r in rows if r.get("company_id")]
        assert with_company and all(r["company_id"] in sheet_companies for r in with_company)

        # Incremental: only the changed contact moves.
        target = sandbox.records("contacts")[5]
        sandbox.touch("contacts", target["id"], jobtitle="Chief Listener")
        again = engine.run("contacts")
        assert again.counts.updated == 1 and again.counts.written == 1
        assert [r["title"] for r in read_csv(tmp_path / "sheet" / "contacts.csv")
                if r["email"] == target["properties"]["email"]] == ["Chief Listener"]

        # A contact typed into the sheet reaches the CRM once, however often we sync.
        rows = read_csv(tmp_path / "sheet" / "contacts.csv")
        rows.append({"id": "new-1", "first_name": "New", "last_name": "Person",
                     "email": "new.person@example.org"})
        write_csv(tmp_path / "sheet" / "contacts.csv", rows, fields=list(rows[0]))
        for _ in range(3):
            back = engine.run("sheet-contacts-to-crm")
            assert back.status == "succeeded", back.error
        emails = [r["properties"].get("email") for r in sandbox.records("contacts")]
        assert emails.count("new.person@example.org") == 1
        assert len(emails) == 251
        store.close()


emails = st.integers(min_value=0, max_value=30).map(lambda i: f"p{i}@example.com")
bad_or_good = st.one_of(emails, st.sampled_from(["", "not-an-email", "x@"]))


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(bad_or_good, st.text(min_size=0, max_size=12)), min_size=1,
                max_size=60), st.integers(min_value=1, max_value=25))
def test_nothing_lost_nothing_duplicated(tmp_path_factory: Any,
                                         records: list[tuple[str, str]],
                                         page_size: int) -> None:
    tmp = tmp_path_factory.mktemp("prop")
    flow = f"""  contacts:
    entity: contact
    from: a
    to: b
    page_size: {page_size}"""
    hub = Hub(tmp, flow=flow)
    clean = [t.replace("\r", " ").replace("\n", " ").replace("\x00", "") for _, t in records]
    rows = [contact(i, email=e, title=clean[i]) for i, (e, _t) in enumerate(records)]
    write_csv(hub.a / "contacts.csv", rows)
    for _ in range(2):  # a repeat changes nothing
        report = hub.sync()
        counts = report.counts
        assert counts.balanced()
    target = hub.rows()
    dead = {d.external_id for d in hub.dead()}
    delivered = [r.get("email", "") for r in target]
    with_email = [e for e in delivered if e]
    # Nothing duplicated: one target row per person (people are told apart by email).
    assert len(with_email) == len(set(with_email)), "duplicate in the target"
    assert len({r["id"] for r in target}) == len(target)
    # Nothing lost: every source row is delivered or dead-lettered with a reason.
    for row in rows:
        email = row["email"].strip().lower()
        assert row["id"] in dead or (email in with_email if email else True), row
    blank_sources = [r for r in rows if not r["email"] and r["id"] not in dead]
    assert delivered.count("") == len(blank_sources)
    hub.close()
