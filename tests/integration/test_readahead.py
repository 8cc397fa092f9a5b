"""Reading and mapping in a child process (hub.sync.readahead) changes nothing but speed.

Each scenario runs twice, with HUB_READ_AHEAD=0 (in-process reading) and =1 (a forked child
reads and maps), each time in a fresh process (tests.integration.readahead_runner: the
engine does not fork beside other threads, and a test process keeps earlier tests'), and
the stores are compared record by record: canonical data (references followed to the
record they name), links, match keys, per-run counts and dead letters.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest

from hub.canonical import fingerprint
from hub.store import Store, decode_sources
from hub.sync import readahead
from tests.integration.helpers import contact, read_csv, write_csv

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("crm", "a")
FIELDS = ["id", "first_name", "last_name", "email", "title", "updated_at", "company_id"]


@contextmanager
def _sandbox(*args: str) -> Iterator[tuple[str, str]]:
    """A HubSpot sandbox in a process of its own: a server thread in this process would
    (rightly) keep the engine from forking its reader (hub.sync.readahead._alone)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", ("import sys; from connectors.hubspot.sandbox import main; "
                                "sys.exit(main(sys.argv[1:]))"), *args],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        base_url = token = ""
        deadline = time.monotonic() + 60
        assert proc.stdout is not None
        while not token and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            if "base_url:" in line:
                base_url = line.split("base_url:", 1)[1].strip()
            if "export HUBSPOT_TOKEN=" in line:
                token = line.split("=", 1)[1].split()[0]
        assert base_url and token, "the sandbox did not start"
        yield base_url, token
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _write_config(tmp: Path, flows: str, systems: str) -> Path:
    text = f"""
version: 1
store: sqlite:///{tmp / 'liaison.db'}
systems:
{systems}
flows:
{flows}
"""
    path = tmp / "hub.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _run(tmp: Path, flows: str, systems: str, plan: list[tuple[str, dict[str, Any]]], *,
         read_ahead: bool, kill: bool = False) -> dict[str, Any]:
    """Run the flows in a fresh process (tests.integration.readahead_runner)."""
    config = _write_config(tmp, flows, systems)
    env = dict(os.environ, **{readahead.ENV_SWITCH: "1" if read_ahead else "0"})
    done = subprocess.run(
        [sys.executable, "-m", "tests.integration.readahead_runner", str(config),
         orjson.dumps(plan).decode(), *(["--kill-reader"] if kill else [])],
        capture_output=True, text=True, timeout=300, env=env, cwd=str(ROOT), check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    out: dict[str, Any] = orjson.loads(done.stdout.strip().splitlines()[-1])
    assert (out["forks"] > 0) == read_ahead, f"read ahead {read_ahead}, forks: {out}"
    assert out["children_left"] == []
    return out


def _store(tmp: Path) -> Store:
    return Store(f"sqlite:///{tmp / 'liaison.db'}")


def _snapshot(store: Store) -> dict[str, Any]:
    """The store with canonical ids replaced by what they stand for, to compare two runs."""
    with store.connect() as conn:
        links = conn.exec_driver_sql(
            "SELECT system, entity, external_id, canonical_id, fingerprint FROM links").all()
        records = conn.exec_driver_sql(
            "SELECT id, entity, data, stub, deleted, fingerprint, sources FROM records").all()
        audit = conn.exec_driver_sql(
            "SELECT action, entity, canonical_id, system, external_id, diff "
            "FROM audit_events").all()
        keys = conn.exec_driver_sql(
            "SELECT entity, name, value, canonical_id FROM match_keys").all()
        dead = conn.exec_driver_sql(
            "SELECT system, entity, stage, external_id, payload, error FROM dead_letters").all()
        runs = conn.exec_driver_sql(
            "SELECT flow, status, read, created, updated, unchanged, skipped, dead_lettered "
            "FROM runs ORDER BY id").all()
    name: dict[str, str] = {}
    for system, entity, ext, cid, _fp in links:
        name.setdefault(cid, f"{entity}:{system}:{ext}")
    for entity, key, value, cid in keys:
        name.setdefault(cid, f"{entity}:{key}:{value}")

    def rename(value: Any) -> Any:
        if isinstance(value, str):
            return name.get(value, value)
        if isinstance(value, list):
            return [rename(v) for v in value]
        if isinstance(value, dict):
            return {k: rename(v) for k, v in value.items()}
        return value

    assert len(name) == len(records), "a record neither linked nor owning a match key"
    data_of = {cid: data for cid, _e, data, _s, _d, _f, _p in records}
    snap = {
        "records": sorted((name[cid], entity, orjson.dumps(rename(orjson.loads(data)),
                                                           option=orjson.OPT_SORT_KEYS),
                           bool(stub), bool(deleted),
                           # stored as fingerprinted (a stub has no fingerprint)
                           fp == fingerprint(orjson.loads(data)) or (bool(stub) and not fp),
                           # which system set each field, when (the source's own time) and
                           # in which run
                           sorted(decode_sources(sources).items()))
                          for cid, entity, data, stub, deleted, fp, sources in records),
        # The trail in the order it was written, diffs included (what read-ahead prepares
        # for a new record must be what the audit observer makes of it in-process).
        "audit": [(action, entity, name.get(cid, cid), system, ext if system in SOURCES else "*",
                   orjson.dumps(rename(orjson.loads(diff)), option=orjson.OPT_SORT_KEYS))
                  for action, entity, cid, system, ext, diff in audit],
        # Fingerprints cover canonical ids, which differ between two stores: compared is
        # whether each link's fingerprint is that of its record's data.
        # A target's ids are made up by the target (the spreadsheet's are random).
        "links": sorted((s, e, x if s in SOURCES else "*", name[c],
                         fp == fingerprint(orjson.loads(data_of[c])))
                        for s, e, x, c, fp in links),
        "keys": sorted((e, k, v, name[c]) for e, k, v, c in keys),
        "dead": sorted(tuple(str(v) for v in row) for row in dead),
        "runs": [tuple(r) for r in runs],
    }
    assert all(r[-2] for r in snap["records"]), "a record stored under another fingerprint"
    assert store.verify_audit().ok, "the audit chain does not verify"
    return snap


def _both_ways(tmp_path: Path, scenario: Any) -> None:
    snaps = {}
    for read_ahead in (False, True):
        tmp = tmp_path / f"read-ahead-{int(read_ahead)}"
        tmp.mkdir()
        snaps[read_ahead] = scenario(tmp, read_ahead)
    assert snaps[True] == snaps[False]


def test_hubspot_contacts_with_company_references_store_the_same(tmp_path: Path) -> None:
    with _sandbox("--seed", "5", "--count", "430") as (base_url, token):
        os.environ["TEST_RA_TOKEN"] = token
        systems = f"""  crm:
    category: crm
    owner: Anna
    connection: {{connector: hubspot, base_url: "{base_url}", token: "${{TEST_RA_TOKEN}}"}}
  sheet: {{category: files, owner: Ben, connection: {{connector: spreadsheet, path: ./sheet}}}}"""
        flows = """  contacts: {entity: contact, from: crm, to: sheet, page_size: 50}
  companies: {entity: company, from: crm, to: sheet, page_size: 50}"""
        plan: list[tuple[str, dict[str, Any]]] = [
            ("contacts", {}), ("companies", {}), ("contacts", {"full": True})]

        def scenario(tmp: Path, read_ahead: bool) -> dict[str, Any]:
            (tmp / "sheet").mkdir()
            out = _run(tmp, flows, systems, plan, read_ahead=read_ahead)
            reports = out["reports"]
            assert [r["status"] for r in reports] == ["succeeded"] * 3
            assert reports[0]["created"] == 430 and reports[2]["unchanged"] == 430
            store = _store(tmp)
            snap = _snapshot(store)
            store.close()
            snap["sheet"] = sorted(r["email"] for r in read_csv(tmp / "sheet" / "contacts.csv"))
            snap["reports"] = reports
            return snap

        _both_ways(tmp_path, scenario)


def test_bad_rows_are_dead_lettered_the_same(tmp_path: Path) -> None:
    rows = [contact(i, company_id=f"c{i % 7}") for i in range(260)]
    rows[10]["email"] = "not an address"  # fails validation
    rows[11]["id"] = ""  # no id: the connector cannot read it
    rows[150]["updated_at"] = "last Tuesday"  # not a time: cannot be mapped
    rows[70]["email"] = rows[71]["email"]  # the same person twice in one page
    rows[120]["company_id"] = ""  # no reference: the field stays unset
    systems = """  a: {category: crm, owner: Anna, connection: {connector: spreadsheet, path: ./a}}
  b: {category: files, owner: Ben, connection: {connector: spreadsheet, path: ./b}}"""
    flows = "  contacts: {entity: contact, from: a, to: b, page_size: 40, mode: full}"

    def scenario(tmp: Path, read_ahead: bool) -> dict[str, Any]:
        (tmp / "b").mkdir()
        write_csv(tmp / "a" / "contacts.csv", rows, FIELDS)
        with (tmp / "a" / "contacts.csv").open("a", encoding="utf-8") as fh:
            fh.write("999,Ragged,Row,r@example.com,x,2024-05-01T10:00:00Z,c1,extra\r\n")
        report = _run(tmp, flows, systems, [("contacts", {})],
                      read_ahead=read_ahead)["reports"][0]
        assert report["balanced"] and report["dead_lettered"] == 5, report
        store = _store(tmp)
        snap = _snapshot(store)
        store.close()
        return snap

    _both_ways(tmp_path, scenario)


@pytest.mark.parametrize("fault", ["bad token", "always rate limited"])
def test_source_errors_reach_the_run_as_in_process(tmp_path: Path, fault: str) -> None:
    faults = ["--rate-limit", "1", "--retry-after", "0.05"] if fault != "bad token" else []
    with _sandbox("--seed", "2", "--count", "120", *faults) as (base_url, token):
        os.environ["TEST_RA_TOKEN"] = "wrong" if fault == "bad token" else token
        systems = f"""  crm:
    category: crm
    owner: Anna
    connection: {{connector: hubspot, base_url: "{base_url}", token: "${{TEST_RA_TOKEN}}"}}
  sheet: {{category: files, owner: Ben, connection: {{connector: spreadsheet, path: ./sheet}}}}"""
        flows = "  contacts: {entity: contact, from: crm, to: sheet}"
        outcome: dict[bool, tuple[Any, ...]] = {}
        for read_ahead in (False, True):
            tmp = tmp_path / str(read_ahead)
            (tmp / "sheet").mkdir(parents=True)
            r = _run(tmp, flows, systems, [("contacts", {})],
                     read_ahead=read_ahead)["reports"][0]
            outcome[read_ahead] = (r["status"], r["error"], r["retry_after"], r["read"])
        assert outcome[True] == outcome[False]
        assert outcome[True][0] == ("failed" if fault == "bad token" else "retry")
        assert outcome[True][1]  # in words


def test_a_reader_killed_mid_run_fails_the_run_and_the_next_run_finishes(
        tmp_path: Path) -> None:
    n = 15000  # more than the pipe holds (about 1 MB): the reader is still at work
    write_csv(tmp_path / "a" / "contacts.csv", [contact(i) for i in range(n)])
    (tmp_path / "b").mkdir()
    systems = """  a: {category: crm, owner: Anna, connection: {connector: spreadsheet, path: ./a}}
  b: {category: files, owner: Ben, connection: {connector: spreadsheet, path: ./b}}"""
    flows = "  contacts: {entity: contact, from: a, to: b}"
    out = _run(tmp_path, flows, systems, [("contacts", {})], read_ahead=True, kill=True)
    assert out["killed"] == 1, "no reading process was running"
    first = out["reports"][0]
    assert first["status"] == "failed"
    assert "stopped unexpectedly" in first["error"] and "run the flow again" in first["error"]
    assert 0 < first["read"] < n
    second = _run(tmp_path, flows, systems, [("contacts", {})], read_ahead=True)
    assert second["reports"][0]["status"] == "succeeded"
    rows = read_csv(tmp_path / "b" / "contacts.csv")
    assert len(rows) == n and len({r["email"] for r in rows}) == n
