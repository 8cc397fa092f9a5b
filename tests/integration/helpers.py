"""Small helpers for pipeline tests: CSV folders as systems, an engine over a store."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hub.audit import AuditObserver
from hub.config import loads
from hub.store import Store
from hub.sync.engine import RunReport, SyncEngine

FIELDS = ["id", "first_name", "last_name", "email", "title", "updated_at"]


def write_csv(path: Path, rows: Sequence[dict[str, Any]], fields: Sequence[str] = FIELDS) -> None:
    """Write rows to a CSV file (header = fields)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(fields), extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow(r)


def read_csv(path: Path) -> list[dict[str, str]]:
    """Rows of a CSV file as dicts ([] when the file does not exist)."""
    if not path.exists():
        return []
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def contact(i: int, **over: Any) -> dict[str, Any]:
    """A source contact row."""
    row = {"id": str(i), "first_name": f"First{i}", "last_name": f"Last{i}",
           "email": f"person{i}@example.com", "title": "Engineer",
           "updated_at": "2024-05-01T10:00:00Z"}
    row.update(over)
    return row


class Hub:
    """A config in tmp_path with two CSV systems (a, b) and a silo, plus engine and store."""

    def __init__(self, tmp: Path, *, store_url: str | None = None, flow: str = "",
                 modified_column: bool = False) -> None:
        self.tmp = tmp
        self.a = tmp / "a"
        self.b = tmp / "b"
        self.a.mkdir(exist_ok=True)
        self.b.mkdir(exist_ok=True)
        mod = ", modified_column: updated_at" if modified_column else ""
        store = store_url or f"sqlite:///{tmp / 'liaison.db'}"
        self.text = f"""
version: 1
store: {store}
systems:
  a:
    category: crm
    owner: Anna
    connection: {{connector: spreadsheet, path: {self.a}{mod}}}
  b:
    category: files
    owner: Ben
    connection: {{connector: spreadsheet, path: {self.b}{mod}}}
  mailbox:
    category: email
flows:
{flow or '''  contacts:
    entity: contact
    from: a
    to: b
    page_size: 50'''}
"""
        (tmp / "hub.yaml").write_text(self.text, encoding="utf-8")
        self.settings = loads(self.text, file=str(tmp / "hub.yaml"))
        self.store = Store(self.settings.store_url)
        self.engine = SyncEngine(self.settings, self.store,
                                 observers=[AuditObserver(self.store)])

    def sync(self, flow: str = "contacts", **kw: Any) -> RunReport:
        """Run a flow and check the per-record accounting holds."""
        report = self.engine.run(flow, **kw)
        assert report.counts.balanced(), report.counts
        return report

    def rows(self, side: str = "b", obj: str = "contacts") -> list[dict[str, str]]:
        """The rows of one system's CSV."""
        return read_csv((self.a if side == "a" else self.b) / f"{obj}.csv")

    def dead(self) -> list[Any]:
        """Open dead letters."""
        with self.store.connect() as conn:
            return self.store.list_dead_letters(conn)

    def close(self) -> None:
        """Release the store."""
        self.store.close()
