"""End-to-end fixtures: the `hub` command run as a real process against a folder on disk.

A workspace is a tmp folder holding hub.yaml (two spreadsheet systems, `src` and `dst`,
each a folder of CSV files, plus two silos) and the store liaison.db next to it once a
command has needed it. `Workspace.hub` goes through `python -m hub.cli`, so exit codes, stdout
and stderr are exactly what an ops person sees, and each step starts from a cold process as
a scheduled job would; a traceback on stderr fails the test. `Workspace.cli` runs the same
command in-process (click's CliRunner) for listings and queries, where a process start
(about a second of imports) would only make the suite slow.
"""

from __future__ import annotations

import csv
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Variables a developer's shell may hold that would change what the CLI does.
_SCRUB = ("HUB_CONFIG", "HUBSPOT_TOKEN", "LIAISON_DEMO_HUBSPOT_TOKEN")
TIMEOUT = 60  # seconds: a hung command fails its test instead of the whole session

CONTACT_FIELDS = ["id", "first_name", "last_name", "email", "phone"]

CONFIG = """\
version: 1
systems:
  src:
    category: files
    owner: Ben (Purchasing)
    description: The source sheets
    connection:
      connector: spreadsheet
      path: ./src
  dst:
    category: files
    owner: Anna (Sales)
    connection:
      connector: spreadsheet
      path: ./dst
  sales-mailbox:
    category: email
    description: nobody owns it and it is not connected
  accounts:
    category: accounting
    owner: Chloe (Finance)
flows:
  contacts:
    entity: contact
    from: src
    to: dst
"""


@dataclass
class Result:
    """What one `hub` command did."""

    args: tuple[str, ...]
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        """stdout and stderr together (for 'never appears anywhere' checks)."""
        return self.out + self.err

    def __str__(self) -> str:
        return (f"hub {' '.join(self.args)} -> exit {self.code}\n--- stdout\n{self.out}"
                f"--- stderr\n{self.err}")


def hub_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a `hub` process: ours minus hub variables, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k not in _SCRUB}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(extra or {})
    return env


def run_hub(*args: str, cwd: Path, env: Mapping[str, str] | None = None,
            traceback_ok: bool = False) -> Result:
    """Run `python -m hub.cli ARGS` in `cwd`; fail the test on a traceback."""
    proc = subprocess.run([sys.executable, "-m", "hub.cli", *args], cwd=cwd,
                          env=hub_env(env), capture_output=True, text=True,
                          timeout=TIMEOUT, check=False)
    result = Result(tuple(args), proc.returncode, proc.stdout, proc.stderr)
    if not traceback_ok:
        assert "Traceback" not in result.err, f"a traceback reached the user:\n{result}"
    return result


def invoke(*args: str, env: Mapping[str, str] | None = None) -> Result:
    """Run `hub ARGS` in this process (click's CliRunner): for read-only listings, where a
    subprocess adds nothing but start-up time. An unexpected exception fails the test."""
    from click.testing import CliRunner

    from hub.cli import main

    scrub: dict[str, str | None] = dict.fromkeys(_SCRUB)
    scrub.update(env or {})
    res = CliRunner().invoke(main, list(args), env=scrub, catch_exceptions=True)
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise AssertionError(f"hub {' '.join(args)} raised {res.exception!r}") \
            from res.exception
    return Result(tuple(args), res.exit_code, res.stdout, res.stderr)


def write_csv(path: Path, rows: Iterable[Sequence[str]],
              header: Sequence[str] = CONTACT_FIELDS) -> None:
    """Write a CSV file: `header`, then each row as given (rows may be ragged on purpose)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)


def read_csv(path: Path) -> list[dict[str, str]]:
    """Rows of a CSV file as dicts ([] when the file does not exist)."""
    if not path.exists():
        return []
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def line_of(text: str, needle: str) -> int:
    """The 1-based line number of the only line of `text` containing `needle`."""
    hits = [i for i, line in enumerate(text.splitlines(), 1) if needle in line]
    assert len(hits) == 1, f"{needle!r} is on lines {hits}, expected exactly one"
    return hits[0]


class Workspace:
    """A folder with hub.yaml, src/ and dst/ CSV folders; runs `hub -c hub.yaml ...` in it."""

    def __init__(self, root: Path, config: str = CONFIG) -> None:
        self.root = root
        self.src = root / "src"
        self.dst = root / "dst"
        self.src.mkdir(parents=True, exist_ok=True)
        self.dst.mkdir(parents=True, exist_ok=True)
        self.config = root / "hub.yaml"
        self.db = root / "liaison.db"
        self.write_config(config)

    def write_config(self, text: str) -> None:
        """Replace hub.yaml."""
        self.text = text
        self.config.write_text(text, encoding="utf-8")

    def hub(self, *args: str, env: Mapping[str, str] | None = None) -> Result:
        """`hub -c <this hub.yaml> ARGS`, run from the workspace folder."""
        return run_hub("-c", str(self.config), *args, cwd=self.root, env=env)

    def sources(self, rows: Iterable[Sequence[str]],
                header: Sequence[str] = CONTACT_FIELDS) -> None:
        """Write src/contacts.csv."""
        write_csv(self.src / "contacts.csv", rows, header)

    def targets(self) -> list[dict[str, str]]:
        """The rows of dst/contacts.csv."""
        return read_csv(self.dst / "contacts.csv")

    def by_email(self) -> dict[str, dict[str, str]]:
        """Target rows keyed by email (target keys are the target's own ids)."""
        rows = self.targets()
        emails = [r["email"] for r in rows]
        assert len(emails) == len(set(emails)), f"duplicate rows in the target: {rows}"
        return {r["email"]: r for r in rows}

    def cli(self, *args: str, env: Mapping[str, str] | None = None) -> Result:
        """`hub -c <this hub.yaml> ARGS` in this process (see `invoke`)."""
        return invoke("-c", str(self.config), *args, env=env)

    def sql(self, query: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run SQL on the store directly (to inspect or to tamper)."""
        conn = sqlite3.connect(self.db)
        try:
            with conn:
                return conn.execute(query, params).fetchall()
        finally:
            conn.close()

    def copy(self, dest: Path) -> Workspace:
        """A full copy (config, CSV folders and store) at `dest`."""
        shutil.copytree(self.root, dest)
        return Workspace(dest, self.text)


# Three contacts that sync cleanly, in international phone form.
GOOD_ROWS = [
    ["c1", "Ada", "Lovelace", "ada@example.com", "+442071234567"],
    ["c2", "Bob", "Smith", "bob@example.com", "+14155552671"],
    ["c3", "Cy", "Young", "cy@example.com", ""],
]


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    """A fresh workspace with an empty src/ and dst/."""
    return Workspace(tmp_path / "hub")


@pytest.fixture(scope="module")
def synced(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """A workspace after two runs of `contacts` (three created, then one updated).

    Shared by read-only tests in a module; tests that change it must `copy()` it first.
    """
    w = Workspace(tmp_path_factory.mktemp("synced") / "hub")
    w.sources(GOOD_ROWS)
    first = w.hub("sync", "contacts")
    assert first.code == 0, str(first)
    w.sources([GOOD_ROWS[0], ["c2", "Bob", "Smithers", "bob@example.com", "+14155552671"],
               GOOD_ROWS[2]])
    second = w.hub("sync", "contacts")
    assert second.code == 0, str(second)
    return w
