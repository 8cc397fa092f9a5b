"""The dashboard's audit check: the newer events in the request, the rest in the background.

The page and the API answer from the verified checkpoint: they re-hash only the events
appended since (asserted as counts, not times); a full check runs in a thread and shows
its progress and result on the next page load.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from hub.store import AuditInput, Store, VerifyResult
from hub.web.auditcheck import AuditCheck
from tests.integration.test_dashboard_http import (
    BEARER,
    SECRET,
    SECRET_VAR,
    Served,
    Site,
    csrf_of,
    login,
)

WAIT = 30.0  # seconds a background check gets to finish


def _append(store: Store, n: int) -> None:
    with store.begin() as conn:
        store.append_audit(conn, [AuditInput(entity="contact", action="update",
                                             canonical_id=f"x{i}", system="a",
                                             diff={"title": [None, i]}) for i in range(n)])


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    s = Store(store_url)
    yield s
    s.close()


class Gate:
    """Holds Store.verify_audit in the background thread until opened (so a test can see
    a check while it runs); the check itself is the real one."""

    def __init__(self, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
        self.opened = threading.Event()
        real = store.verify_audit

        def held(*args: Any, **kw: Any) -> VerifyResult:
            if threading.current_thread().name.startswith("audit-check"):
                assert self.opened.wait(WAIT)
            return real(*args, **kw)

        monkeypatch.setattr(store, "verify_audit", held)


def test_check_new_verifies_only_the_appended_events(store: Store) -> None:
    check = AuditCheck(store)
    _append(store, 5)
    first = check.check_new()
    assert first["result"]["checked"] == 5 and first["result"]["trusted"] == 0
    assert first["checkpoint"]["seq"] == first["checkpoint"]["full_seq"] == 5
    _append(store, 3)
    before = check.status()
    assert (before["head"], before["unverified"], before["result"]) == (8, 3, None)
    second = check.check_new()
    assert second["result"]["ok"] is True
    assert (second["result"]["checked"], second["result"]["trusted"]) == (3, 5)
    assert (second["checkpoint"]["seq"], second["checkpoint"]["full_seq"]) == (8, 5)
    assert second["unverified"] == 0 and second["background"] is None


def test_many_unverified_events_are_checked_in_the_background(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    check = AuditCheck(store, inline_limit=4)
    _append(store, 6)
    gate = Gate(store, monkeypatch)
    started = check.check_new()
    assert started["result"] is None, "more than the limit: nothing hashed in the request"
    bg = started["background"]
    assert (bg["kind"], bg["total"], bg["running"]) == ("new", 6, True)
    assert check.check_new()["background"]["running"], "a second request waits for it"
    started, message = check.start_full()
    assert not started and "already running" in message
    gate.opened.set()
    assert check.wait(WAIT)
    done = check.status()
    assert done["background"]["ok"] is True and done["background"]["checked"] == 6
    assert done["checkpoint"]["seq"] == 6 and done["unverified"] == 0
    _append(store, 2)
    inline = check.check_new()
    assert (inline["result"]["checked"], inline["result"]["trusted"]) == (2, 6)


def test_full_check_in_the_background_finds_an_edit_before_the_checkpoint(
        store: Store) -> None:
    check = AuditCheck(store)
    _append(store, 6)
    assert check.check_new()["result"]["ok"]
    with store.begin() as conn:
        conn.execute(text("UPDATE audit_events SET canonical_id = 'y' WHERE seq = 2"))
    _append(store, 1)
    trusting = check.check_new()["result"]
    assert (trusting["ok"], trusting["checked"], trusting["trusted"]) == (True, 1, 6)
    started, message = check.start_full()
    assert started and "full check of the audit trail (7 events) started" in message
    assert check.wait(WAIT)
    bg = check.status()["background"]
    assert (bg["kind"], bg["ok"], bg["bad_seq"], bg["done"]) == ("full", False, 2, 1)
    assert check.status()["checkpoint"] is None
    after = check.check_new()["result"]
    assert (after["ok"], after["bad_seq"], after["trusted"]) == (False, 2, 0)


# -- over HTTP ------------------------------------------------------------------------------


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Site, Served]]:
    monkeypatch.setenv(SECRET_VAR, SECRET)
    s = Site(tmp_path, seed=True)
    try:
        with Served(s.app) as srv:
            yield s, srv
    finally:
        s.dashboard.audit_check.wait(WAIT)
        s.close()


def _attr(page: str, testid: str, name: str) -> str:
    found = re.search(rf'data-testid="{testid}"[^>]*\b{name}="([^"]*)"', page)
    assert found, (testid, name)
    return found.group(1)


def test_audit_page_and_api_check_only_the_newer_events(site: tuple[Site, Served]) -> None:
    s, srv = site
    c = login(s, srv)
    head = s.store.audit_head_seq()
    assert head > 0
    fresh = c.get("/audit").text
    assert _attr(fresh, "audit-checkpoint", "data-seq") == "0"
    assert f"The trail ({head} events) has not been verified yet" in fresh

    first = c.get("/audit?verify=1").text
    assert _attr(first, "audit-verify", "data-ok") == "true"
    assert (_attr(first, "audit-verify", "data-checked"),
            _attr(first, "audit-verify", "data-trusted")) == (str(head), "0")
    assert _attr(first, "audit-checkpoint", "data-seq") == str(head)
    assert f"Events 1–{head} were verified at" in first

    _append(s.store, 3)
    listed = c.get("/audit").text
    assert _attr(listed, "audit-checkpoint", "data-unverified") == "3"
    assert "3 newer events not checked yet" in listed
    page = c.get("/audit?verify=1").text
    assert (_attr(page, "audit-verify", "data-checked"),
            _attr(page, "audit-verify", "data-trusted")) == ("3", str(head))
    assert "3 newer events verified now" in page and f"events 1–{head} were verified at" in page

    _append(s.store, 2)
    api = c.get("/api/v1/audit/verify", headers=BEARER).json()
    assert (api["ok"], api["checked"], api["trusted"]) == (True, 2, head + 3)
    assert api["checkpoint"]["seq"] == api["head"] == head + 5
    assert api["checkpoint"]["full_seq"] == head and api["unverified"] == 0


def test_full_check_runs_in_the_background_and_shows_on_the_next_load(
        site: tuple[Site, Served]) -> None:
    s, srv = site
    c = login(s, srv)
    check = s.dashboard.audit_check
    assert c.get("/audit?verify=1").status_code == 200  # the checkpoint: every event
    head = s.store.audit_head_seq()
    with s.store.begin() as conn:  # an old, verified event is edited
        conn.execute(text("UPDATE audit_events SET external_id = 'forged' WHERE seq = 1"))
    assert _attr(c.get("/audit?verify=1").text, "audit-verify", "data-ok") == "true", \
        "the quick check trusts the verified events"

    r = c.post("/audit/verify-full", data={"csrf": csrf_of(c.get("/audit").text)})
    assert (r.status_code, r.headers["location"]) == (303, "/audit")
    assert check.wait(WAIT)
    page = c.get("/audit").text
    assert f"A full check of the audit trail ({head} events) started" in page  # the flash
    assert _attr(page, "audit-background", "data-state") == "broken"
    assert _attr(page, "audit-background", "data-kind") == "full"
    assert "found the trail altered at event 1" in page
    assert _attr(page, "audit-checkpoint", "data-seq") == "0", "nothing is trusted any more"

    api = c.post("/api/v1/audit/verify/full", headers=BEARER)
    assert api.status_code == 202 and api.json()["started"] is True
    assert check.wait(WAIT)
    answer = c.get("/api/v1/audit/verify", headers=BEARER).json()
    assert answer["background"]["ok"] is False and answer["background"]["bad_seq"] == 1
    assert (answer["ok"], answer["bad_seq"], answer["trusted"]) == (False, 1, 0)
