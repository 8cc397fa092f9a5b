"""`hub demo`: four vendor sandboxes, a config of every category, two rounds of syncs, then
the dashboard until stopped.

The module runs the demo twice in one folder (`--no-serve`): first as the `hub` process an
ops person starts, then in this process, where the credentials it makes up can be read
back from the environment and looked for in everything it wrote. One more run serves the
dashboard and is stopped with a signal.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from hub.demo import run_demo
from hub.demo.sandboxes import ENV_PREFIX
from tests.e2e.conftest import Result, hub_env, invoke, read_csv, run_hub

COUNT = 30  # contacts in the CRM (3 companies): small, the demo runs in CI
FLOWS = ("crm-companies-to-sheets-and-xero", "crm-contacts-to-sheets",
         "onboarding-checklist-to-trello", "jira-issues-to-trello")
FAILING = "jira-issues-to-trello"
SERVE_DEADLINE = 120.0  # seconds for the demo to reach its URL line on a busy CI machine
ENV_NAMES = ("HUBSPOT_TOKEN", "XERO_CLIENT_ID", "XERO_CLIENT_SECRET", "XERO_REFRESH_TOKEN",
             "TRELLO_KEY", "TRELLO_TOKEN", "JIRA_TOKEN")


@dataclass
class Demo:
    """Two runs of the demo in one folder, and the secrets of the second."""

    dir: Path
    first: Result
    again_code: int
    again_out: str
    secrets: dict[str, str] = field(default_factory=dict)

    @property
    def config(self) -> str:
        """The config the demo wrote."""
        return str(self.dir / "hub.yaml")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    """Run the demo as a process, then again over the same folder in this process."""
    base = tmp_path_factory.mktemp("demo")
    target = base / "liaison-demo"
    first = run_hub("demo", "--dir", str(target), "--count", str(COUNT), "--no-serve",
                    cwd=base)
    lines: list[str] = []
    with pytest.MonkeyPatch.context() as mp:
        for name in ENV_NAMES:  # restored afterwards: the demo sets them for its connectors
            mp.setenv(ENV_PREFIX + name, "placeholder")
        code = run_demo(target, COUNT, echo=lines.append)
        secrets = {name: os.environ[ENV_PREFIX + name] for name in ENV_NAMES}
    return Demo(target, first, code, "\n".join(lines) + "\n", secrets)


def _run_lines(out: str) -> dict[str, list[str]]:
    """flow -> its run lines in the demo's output, in order."""
    runs: dict[str, list[str]] = {}
    for line in out.splitlines():
        m = re.match(r"\s+([a-z-]+): (succeeded|failed|partial);", line)
        if m:
            runs.setdefault(m.group(1), []).append(line.strip())
    return runs


def _audit(config: str, *args: str) -> list[dict[str, Any]]:
    res = invoke("-c", config, "audit", "--json", "--limit", "1000", *args)
    assert res.code == 0, str(res)
    events: list[dict[str, Any]] = json.loads(res.out)
    return events


def test_demo_declares_systems_of_every_category_some_still_islands(demo: Demo) -> None:
    assert demo.first.code == 0, str(demo.first)
    systems = {r["system"]: r for r in json.loads(
        invoke("-c", demo.config, "systems", "--json").out)}
    categories = {r["category"] for r in systems.values()}
    assert {"crm", "accounting", "email", "project", "files"} <= categories
    islands = sorted(n for n, r in systems.items() if not r["connected"])
    assert len(islands) >= 2, islands
    assert systems["sales-mailbox"]["category"] == "email"
    assert not systems["sales-mailbox"]["connected"]
    assert [n for n, r in systems.items() if not r["owner"]] == ["sales-mailbox"]
    for name in ("hubspot", "xero", "onboarding-board", "shared-sheets"):
        assert systems[name]["connected"] and systems[name]["last_sync"] is not None, name
    assert "still islands: sales-mailbox, legacy-erp; without an owner: sales-mailbox" \
        in demo.first.out
    assert f"HubSpot has {COUNT} contacts" in demo.first.out


def test_demo_flows_succeed_but_the_one_meant_to_fail(demo: Demo) -> None:
    runs = _run_lines(demo.first.out)
    assert sorted(runs) == sorted(FLOWS), demo.first.out
    assert all(len(lines) == 2 for lines in runs.values()), runs  # two rounds
    for flow in FLOWS:
        status = "failed" if flow == FAILING else "succeeded"
        assert all(f"{flow}: {status};" in line for line in runs[flow]), runs[flow]
    assert runs["crm-contacts-to-sheets"][0].startswith(
        f"crm-contacts-to-sheets: succeeded; read {COUNT}, created {COUNT}")
    # 3 companies, each written to the spreadsheets and to Xero
    assert "created 3," in runs["crm-companies-to-sheets-and-xero"][0]
    assert "written to targets 6 " in runs["crm-companies-to-sheets-and-xero"][0]
    assert "read 4, created 4," in runs["onboarding-checklist-to-trello"][0]
    # Round two moves only the changes: 3 job titles, 1 phone, 1 item ticked, 1 added.
    assert "updated 3," in runs["crm-contacts-to-sheets"][1]
    assert "created 0, updated 1," in runs["crm-companies-to-sheets-and-xero"][1]
    assert "created 1, updated 1," in runs["onboarding-checklist-to-trello"][1]

    contacts = read_csv(demo.dir / "sheets" / "contacts.csv")
    assert len(contacts) == COUNT
    assert sum(r.get("title") == "Head of Partnerships" for r in contacts) == 3
    assert len(read_csv(demo.dir / "sheets" / "companies.csv")) == 3


def test_the_failed_flow_says_what_to_do(demo: Demo) -> None:
    out = demo.first.out
    # where (the system, the call), what happened, which settings to check ...
    assert ("error: Jira (jira) GET /rest/api/3/myself: 401 Unauthorized" in out
            and "(check the email and api_token of the Jira connection)" in out), out
    # ... and, for the demo's planted failure, the variable and how to get a new token
    assert f"Jira refuses the API token in ${{{ENV_PREFIX}JIRA_TOKEN}}" in out
    assert "create a new token at https://id.atlassian.com" in out
    runs = json.loads(invoke("-c", demo.config, "runs", "--json").out)
    failed = [r for r in runs if r["status"] == "failed"]
    assert {r["flow"] for r in failed} == {FAILING}
    assert all("401 Unauthorized" in r["error"] for r in failed)
    assert all("Fix that, then run the flow again" in r["problem"] for r in failed)


def test_run_history_and_audit_show_the_second_round(demo: Demo) -> None:
    runs = json.loads(invoke("-c", demo.config, "runs", "--json").out)
    per_flow = {flow: sum(r["flow"] == flow for r in runs) for flow in FLOWS}
    assert per_flow == dict.fromkeys(FLOWS, 2)
    events = _audit(demo.config)
    actions = [(e["system"], e["action"]) for e in events]
    assert actions.count(("xero", "write.create")) == 3
    assert actions.count(("xero", "write.update")) == 1  # the new phone number
    # the ticked-off checklist item moved its Trello card to the Done list
    moves = [e for e in events if e["system"] == "onboarding-board"
             and e["action"] == "write.update"]
    assert len(moves) == 1 and moves[0]["diff"]["list"][1] == {"name": "Done"}, moves
    verify = invoke("-c", demo.config, "audit", "verify")
    assert verify.code == 0, str(verify)


def test_demo_can_run_again_in_the_same_folder(demo: Demo) -> None:
    assert demo.again_code == 0, demo.again_out
    assert "still islands: sales-mailbox, legacy-erp" in demo.again_out
    assert "everything is new" not in demo.again_out
    assert len(read_csv(demo.dir / "sheets" / "contacts.csv")) == COUNT, "no duplicate rows"
    assert len(read_csv(demo.dir / "sheets" / "tasks.csv")) == 5
    runs = _run_lines(demo.again_out)
    assert all(len(lines) == 2 for lines in runs.values()), runs  # a fresh store each time
    verify = invoke("-c", demo.config, "audit", "verify")
    assert verify.code == 0, str(verify)


def test_no_secret_value_is_printed_or_written(demo: Demo) -> None:
    secrets = demo.secrets
    assert all(len(v) >= 16 and v != "placeholder" for v in secrets.values()), secrets
    config = (demo.dir / "hub.yaml").read_text()
    for name in ENV_NAMES:
        assert f"${{{ENV_PREFIX}{name}}}" in config  # a reference, never the value
    places = {"output": demo.again_out, "config": config,
              "readme": (demo.dir / "README.txt").read_text(),
              "audit": json.dumps(_audit(demo.config)),
              "runs": invoke("-c", demo.config, "runs", "--json").out}
    places.update({f.name: f.read_text() for f in (demo.dir / "sheets").glob("*.csv")})
    store = (demo.dir / "liaison.db").read_bytes()
    for name, value in secrets.items():
        for where, text in places.items():
            assert value not in text, f"{name} appears in the {where}"
        assert value.encode() not in store, f"{name} is in the store"


def test_the_demo_config_passes_hub_check_given_its_credentials(demo: Demo) -> None:
    env = {ENV_PREFIX + name: value for name, value in demo.secrets.items()}
    res = invoke("-c", demo.config, "check", env=env)
    assert res.code == 0, str(res)
    assert "7 systems (5 connected, 2 disconnected silos), 4 flows" in res.out
    for value in env.values():
        assert value not in res.text


def test_demo_refuses_a_port_in_use_before_starting_anything(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        res = invoke("demo", "--dir", str(tmp_path / "d"), "--count", "10", "--port",
                     str(port))
    assert res.code == 1, str(res)
    assert f"cannot serve the dashboard on 127.0.0.1:{port}" in res.err
    assert "choose another port with --port (0: any free port)" in res.err
    assert "Sandboxes" not in res.out and not (tmp_path / "d" / "hub.yaml").exists()


def test_demo_leaves_a_folder_with_someone_elses_config_alone(tmp_path: Path) -> None:
    config = tmp_path / "hub.yaml"
    config.write_text("version: 1\n", encoding="utf-8")
    (tmp_path / "liaison.db").write_bytes(b"theirs")
    res = invoke("demo", "--dir", str(tmp_path), "--count", "10", "--no-serve")
    assert res.code == 1, str(res)
    assert f"{config} was not written by `hub demo`" in res.err
    assert "choose another folder with --dir" in res.err
    assert config.read_text() == "version: 1\n"
    assert (tmp_path / "liaison.db").read_bytes() == b"theirs"


# -- serving -----------------------------------------------------------------------------


class Lines:
    """A process's stdout, line by line, with a deadline on waiting."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.seen: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._pump, args=(proc,), daemon=True)
        self._thread.start()

    def _pump(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self._queue.put(line)
        self._queue.put(None)

    def until(self, prefix: str, deadline: float) -> str:
        """The first line starting with `prefix`; fails when the process ends or time is up."""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail(f"no {prefix!r} line in time; output so far:\n{''.join(self.seen)}")
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                pytest.fail(f"the demo ended before {prefix!r}:\n{''.join(self.seen)}")
            self.seen.append(line)
            if line.startswith(prefix):
                return line

    def rest(self, timeout: float) -> str:
        """Everything the process printed after the last line read (it has ended)."""
        self._thread.join(timeout)
        while not self._queue.empty():
            item = self._queue.get()
            if item is not None:
                self.seen.append(item)
        return "".join(self.seen)


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except OSError:
        return True
    return False


@pytest.fixture
def serving(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Lines, Path]]:
    """`hub demo --port 0` running; stopped (and waited for) whatever the test does."""
    target = tmp_path / "liaison-demo"
    proc = subprocess.Popen(
        [sys.executable, "-m", "hub.cli", "demo", "--dir", str(target), "--count", "20",
         "--port", "0"], cwd=tmp_path, env=hub_env(), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    try:
        yield proc, Lines(proc), target
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()


def test_demo_serves_the_dashboard_until_stopped(
        serving: tuple[subprocess.Popen[str], Lines, Path]) -> None:
    proc, lines, target = serving
    deadline = time.monotonic() + SERVE_DEADLINE
    sandboxes = lines.until("Sandboxes on this machine:", deadline)
    ports = [int(p) for p in re.findall(r"http://127\.0\.0\.1:(\d+)", sandboxes)]
    assert len(ports) == 4, sandboxes
    m = re.match(r"Dashboard: (http://127\.0\.0\.1:(\d+)/)  token: (\S+)$",
                 lines.until("Dashboard:", deadline).rstrip("\n"))
    assert m, lines.seen[-1]
    url, port, token = m.group(1), int(m.group(2)), m.group(3)
    assert port != 0 and len(token) >= 32
    readme = target / "README.txt"
    assert token in readme.read_text()
    assert stat.S_IMODE(readme.stat().st_mode) == 0o600

    with httpx.Client(base_url=url, timeout=10, follow_redirects=False) as http:
        health = http.get("/healthz")
        assert health.status_code == 200 and health.json()["status"] == "ok"
        assert http.get("/").status_code in (302, 303, 401)  # no login, no page
        assert http.post("/login", data={"token": "not-the-token"}).status_code != 303
        login = http.post("/login", data={"token": token, "next": "/"})
        assert login.status_code in (302, 303), login.text
        page = http.get("/")
        assert page.status_code == 200
        assert FAILING in page.text and "sales-mailbox" in page.text
        assert token not in page.text

        api = {"Authorization": f"Bearer {token}"}
        flows = {f["name"]: f for f in http.get("/api/v1/flows", headers=api).json()["flows"]}
        assert flows[FAILING]["last_run_status"] == "failed"
        assert flows["onboarding-checklist-to-trello"]["last_run_status"] == "succeeded"
        # Run now: the sandboxes are still there to answer it.
        flow = "onboarding-checklist-to-trello"
        queued = http.post(f"/api/v1/flows/{flow}/run", headers=api, json={})
        assert queued.status_code in (200, 202) and queued.json()["queued"], queued.text
        ran: list[dict[str, Any]] = []
        until = time.monotonic() + 30
        while time.monotonic() < until:
            runs = http.get("/api/v1/runs", headers=api).json()["runs"]
            ran = [r for r in runs if r["flow"] == flow and r["status"] != "running"]
            if len(ran) >= 3:
                break
            time.sleep(0.2)
        assert len(ran) == 3 and all(r["status"] == "succeeded" for r in ran), ran
        assert [r["trigger"] for r in ran].count("dashboard") == 1, ran

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    out = lines.rest(timeout=10)
    assert "Stopped the dashboard and the sandboxes." in out
    assert proc.stderr is not None and "Traceback" not in proc.stderr.read()
    for p in [port, *ports]:
        assert _refused(p), f"port {p} still answers after the demo stopped"
    assert token not in readme.read_text(), "the README still holds a dead login"
