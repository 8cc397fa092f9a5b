"""The sql connector inside the sync engine: a legacy table as source and as target."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hub.audit import AuditObserver
from hub.config import loads
from hub.store import Store
from hub.sync.engine import RunReport, SyncEngine
from tests.connectors.sql_servers import Database, db  # noqa: F401 - the fixture
from tests.integration.helpers import contact, read_csv, write_csv

LEGACY = ("id {auto}, first_name VARCHAR(100), last_name VARCHAR(100) NOT NULL, "
          "job_title VARCHAR(100), email VARCHAR(200) UNIQUE, phone VARCHAR(50), "
          "mobile VARCHAR(50), company_id INTEGER, city VARCHAR(100), country VARCHAR(100), "
          "tags VARCHAR(255), modified_at {ts}, deleted_at {ts}")


class Pipeline:
    """A config with a sql system `erp` and a CSV folder `sheet`, an engine over SQLite."""

    def __init__(self, tmp: Path, database: Database, table: str, flows: str) -> None:
        self.db, self.table, self.sheet = database, table, tmp / "sheet"
        self.sheet.mkdir()
        text = f"""
version: 1
store: sqlite:///{tmp / 'liaison.db'}
systems:
  erp:
    category: other
    owner: Olga
    connection:
      connector: sql
      url: ${{HUB_SQLCONN_URL}}
      tables:
        contacts: {{table: {table}, updated_at: modified_at, soft_delete: deleted_at}}
  sheet:
    category: files
    owner: Ben
    connection: {{connector: spreadsheet, path: {self.sheet}}}
flows:
{flows}
"""
        (tmp / "hub.yaml").write_text(text, encoding="utf-8")
        self.settings = loads(text, file=str(tmp / "hub.yaml"))
        self.store = Store(self.settings.store_url)
        self.engine = SyncEngine(self.settings, self.store,
                                 observers=[AuditObserver(self.store)])

    def sync(self, flow: str, **kw: Any) -> RunReport:
        report = self.engine.run(flow, **kw)
        assert report.counts.balanced(), report.counts
        return report

    def insert(self, i: int, **over: Any) -> None:
        row = {"first_name": f"First{i}", "last_name": f"Last{i}", "email": f"p{i}@x.org",
               "job_title": "Engineer", "modified_at": f"2024-05-01 10:00:{i:02d}", **over}
        names = ", ".join(row)
        self.db.sql(f"INSERT INTO {self.table} ({names}) VALUES "
                    f"({', '.join(':' + n for n in row)})", row)

    def dead(self) -> list[Any]:
        with self.store.connect() as conn:
            return self.store.list_dead_letters(conn)


@pytest.fixture
def pipeline(db: Database, tmp_path: Path, request: pytest.FixtureRequest,  # noqa: F811
             monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    auto = "INT AUTO_INCREMENT PRIMARY KEY" if db.mysql else "SERIAL PRIMARY KEY"
    ts = "DATETIME(6) NULL" if db.mysql else "TIMESTAMP(6) NULL"
    table = db.table(LEGACY.replace("{auto}", auto).replace("{ts}", ts))
    monkeypatch.setenv("HUB_SQLCONN_URL", db.url)
    p = Pipeline(tmp_path, db, table, request.param)
    yield p
    p.store.close()


OUT = """  out:
    entity: contact
    from: erp
    to: sheet
    on_delete: archive
    page_size: 2"""
IN = """  in:
    entity: contact
    from: sheet
    to: erp
    page_size: 3"""


@pytest.mark.parametrize("pipeline", [OUT], indirect=True, ids=["out"])
def test_a_legacy_table_feeds_a_sheet_changes_and_deletions_included(
        pipeline: Pipeline) -> None:
    p = pipeline
    for i in range(1, 6):
        p.insert(i)
    first = p.sync("out")
    assert (first.status, first.counts.read, first.counts.created) == ("succeeded", 5, 5)
    assert sorted(r["email"] for r in read_csv(p.sheet / "contacts.csv")) == \
        [f"p{i}@x.org" for i in range(1, 6)]
    p.db.sql(f"UPDATE {p.table} SET job_title = 'CTO', modified_at = '2024-06-01 00:00:00' "
             "WHERE email = 'p2@x.org'")
    second = p.sync("out")
    assert second.counts.updated == 1 and second.counts.written == 1
    rows = {r["email"]: r for r in read_csv(p.sheet / "contacts.csv")}
    assert rows["p2@x.org"]["title"] == "CTO"
    # A soft delete is seen incrementally; a hard delete by the full refresh.
    p.db.sql(f"UPDATE {p.table} SET deleted_at = '2024-06-02 00:00:00', "
             "modified_at = '2024-06-02 00:00:00' WHERE email = 'p3@x.org'")
    p.db.sql(f"DELETE FROM {p.table} WHERE email = 'p4@x.org'")
    p.sync("out")
    p.sync("out", full=True)
    rows = {r["email"]: r for r in read_csv(p.sheet / "contacts.csv")}
    assert rows["p3@x.org"].get("archived") == "true"
    assert rows["p4@x.org"].get("archived") == "true"
    assert rows["p1@x.org"].get("archived") in (None, "")


@pytest.mark.parametrize("pipeline", [IN], indirect=True, ids=["in"])
def test_a_sheet_feeds_a_legacy_table_and_a_refused_row_is_dead_lettered(
        pipeline: Pipeline) -> None:
    p = pipeline
    rows = [contact(i) for i in range(1, 8)]
    rows[3]["last_name"] = ""  # the table's last_name is NOT NULL
    write_csv(p.sheet / "contacts.csv", rows)
    report = p.sync("in")
    assert report.counts.write_failed == 1 and report.exit_code == 1
    stored = p.db.rows(p.table, "email")
    assert [r["email"] for r in stored] == [f"person{i}@example.com" for i in (1, 2, 3, 5, 6, 7)]
    assert all(r["modified_at"] is not None for r in stored)  # stamped on write
    dead, = p.dead()
    assert dead.stage == "write" and "NOT NULL" in dead.error and p.table in dead.error
    again = p.sync("in")
    assert again.counts.written == 0
    assert len(p.db.rows(p.table)) == 6
