"""`hub demo`: the HubSpot sandbox synced into a spreadsheet folder, twice in the same place."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.conftest import Result, invoke, read_csv, run_hub


@dataclass
class Demo:
    """Two runs of `hub demo --count 50` in one folder."""

    dir: Path
    first: Result
    again: Result


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    """Run the demo, then run it again over the same folder."""
    base = tmp_path_factory.mktemp("demo")
    target = base / "liaison-demo"
    first = run_hub("demo", "--dir", str(target), "--count", "50", cwd=base)
    again = run_hub("demo", "--dir", str(target), "--count", "50", cwd=base)
    return Demo(target, first, again)


def test_demo_syncs_the_crm_into_sheets_and_names_the_silos(demo: Demo) -> None:
    assert demo.first.code == 0, str(demo.first)
    out = demo.first.out
    assert "with 50 contacts" in out
    assert "crm-contacts-to-sheets: succeeded; read 50, created 50" in out
    assert "still islands: xero, sales-mailbox" in out
    assert "without an owner: sales-mailbox" in out
    contacts = read_csv(demo.dir / "sheets" / "contacts.csv")
    assert len(contacts) == 50
    assert len({r["email"] for r in contacts}) == 50
    # Three job titles were changed in the CRM and the second sync carried them over.
    assert sum(r.get("title") == "Head of Partnerships" for r in contacts) >= 3
    assert (demo.dir / "sheets" / "companies.csv").is_file()


def test_demo_can_run_again_in_the_same_folder(demo: Demo) -> None:
    assert demo.again.code == 0, str(demo.again)
    assert "still islands: xero, sales-mailbox" in demo.again.out
    assert len(read_csv(demo.dir / "sheets" / "contacts.csv")) == 50, "no duplicate rows"
    config = str(demo.dir / "hub.yaml")
    verify = invoke("-c", config, "audit", "verify")
    assert verify.code == 0, str(verify)
    systems = {r["system"]: r for r in json.loads(invoke("-c", config, "systems", "--json").out)}
    assert systems["xero"]["connected"] is False
    assert systems["sales-mailbox"]["owner"] is None
    assert systems["hubspot"]["last_sync"] is not None


def test_demo_rerun_does_not_claim_everything_is_new(demo: Demo) -> None:
    assert "everything is new" not in demo.again.out
