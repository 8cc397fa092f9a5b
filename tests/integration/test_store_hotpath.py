"""The store's hot-path forms: grouped provenance and the background WAL checkpoint."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from hub.store import Store, checkpoint, decode_sources, encode_sources
from hub.store.db import make_engine

FIELDS = st.sampled_from(["first_name", "emails", "phones", "custom", "company", "title"])
PROVENANCE = st.tuples(st.sampled_from(["crm", "sheet", "erp"]),
                       st.sampled_from(["2024-05-01T10:00:00Z", "2024-05-02T10:00:00.5Z"]),
                       st.integers(min_value=1, max_value=3)).map(list)


@given(st.dictionaries(FIELDS, PROVENANCE), st.booleans())
def test_provenance_round_trips_through_its_stored_form(
        sources: dict[str, list[Any]], share: bool) -> None:
    if share and sources:  # one list object for every field, as a merge of a new record
        first = next(iter(sources.values()))
        sources = dict.fromkeys(sources, first)
    assert decode_sources(encode_sources(sources)) == sources


def test_provenance_is_stored_grouped_and_the_older_form_still_reads() -> None:
    taken = ["crm", "2024-05-01T10:00:00Z", 7]
    stored = encode_sources({"first_name": taken, "title": taken, "phones": ["sheet", "t", 8]})
    assert stored.count("crm") == 1  # one provenance, written once
    older = '{"first_name": ["crm", "2024-05-01T10:00:00Z", 7]}'
    assert decode_sources(older) == {"first_name": ["crm", "2024-05-01T10:00:00Z", 7]}
    assert decode_sources("{}") == decode_sources("[]") == decode_sources(None) == {}


def test_records_keep_their_provenance_in_the_store(store_url: str) -> None:
    store = Store(store_url)
    taken = ["crm", "2024-05-01T10:00:00Z", 1]
    sources = {"first_name": taken, "last_name": taken, "title": ["sheet", "t", 2]}
    with store.begin() as conn:
        store.upsert_records(conn, [{
            "id": "r1", "entity": "contact", "schema_version": 1, "data": "{}",
            "sources": encode_sources(sources), "fingerprint": "", "stub": False,
            "deleted": False, "created_at": "t", "updated_at": "t"}])
    with store.connect() as conn:
        assert store.get_records(conn, ["r1"])["r1"].sources == sources
    store.close()


def _fill_log(path: Path, megabytes: int) -> sqlite3.Connection:
    """A connection that wrote about `megabytes` to the log, automatic checkpoints off."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute("CREATE TABLE IF NOT EXISTS filler (x BLOB)")
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO filler VALUES (?)",
                     [(bytes(1000),) for _ in range(megabytes * 1000)])
    conn.execute("COMMIT")
    return conn


def test_a_long_log_is_checkpointed_and_a_short_one_left_alone(tmp_path: Path) -> None:
    db = tmp_path / "hub.db"
    # Made in WAL mode by a store, closed so that its background thread leaves it alone.
    Store(f"sqlite:///{db}").close()
    writer = _fill_log(db, 1)
    try:
        before = db.stat().st_size
        assert not checkpoint.checkpoint_if_large(str(db))  # 1 MB: under the limit
        assert db.stat().st_size == before  # the rows are still only in the log
        _fill_log(db, 5).close()
        assert checkpoint.checkpoint_if_large(str(db))
        assert db.stat().st_size > before + (5 << 20)  # copied into the database file
        probe = sqlite3.connect(db)
        assert probe.execute("SELECT count(*) FROM filler").fetchone()[0] == 6000
        probe.close()
    finally:
        writer.close()


def _write(conn: Any, megabytes: float) -> None:
    cur = conn.cursor()
    cur.execute("BEGIN IMMEDIATE")
    cur.execute("CREATE TABLE IF NOT EXISTS filler (x BLOB)")
    cur.executemany("INSERT INTO filler VALUES (?)",
                    [(bytes(1000),) for _ in range(int(megabytes * 1000))])
    cur.execute("COMMIT")


def test_a_checkpointed_log_waits_until_it_is_long_again(tmp_path: Path) -> None:
    db = tmp_path / "hub.db"
    Store(f"sqlite:///{db}").close()
    engine = make_engine(f"sqlite:///{db}")
    writer = engine.raw_connection()  # a store connection (its pragmas), nobody watching
    wal = Path(f"{db}-wal")
    try:
        writer.execute("PRAGMA wal_autocheckpoint=0")
        _write(writer, 5)
        assert checkpoint.checkpoint_if_large(str(db))
        # Copied, and the log not written since: nothing to do, though its file is long.
        assert wal.stat().st_size > checkpoint.WAL_BYTES
        assert not checkpoint.checkpoint_if_large(str(db))
        # The next write restarts the copied log and cuts its file back: short again.
        _write(writer, 0.1)
        assert wal.stat().st_size <= checkpoint.LOG_KEEP_BYTES
        assert not checkpoint.checkpoint_if_large(str(db))
        _write(writer, 5)
        assert checkpoint.checkpoint_if_large(str(db))
        probe = sqlite3.connect(db)
        assert probe.execute("SELECT count(*) FROM filler").fetchone()[0] == 10_100
        probe.close()
    finally:
        writer.close()
        engine.dispose()


def test_a_removed_database_is_not_created_again(tmp_path: Path) -> None:
    db = tmp_path / "gone.db"
    _fill_log(db, 5).close()  # closing the last connection removes the log too
    (tmp_path / "gone.db-wal").write_bytes(bytes(5 << 20))
    db.unlink()
    assert not checkpoint.checkpoint_if_large(str(db))
    assert not db.exists()


def test_each_store_of_a_file_is_counted(tmp_path: Path) -> None:
    db = tmp_path / "hub.db"
    first, second = Store(f"sqlite:///{db}"), Store(f"sqlite:///{db}")
    path = os.path.abspath(db)
    assert checkpoint._watched[path] == 2
    first.close()
    first.close()  # a second close does not stop watching for the other store
    assert checkpoint._watched[path] == 1
    second.close()
    assert path not in checkpoint._watched


def test_new_sqlite_stores_get_16k_pages_and_old_ones_keep_theirs(tmp_path: Path) -> None:
    new = Store(f"sqlite:///{tmp_path / 'new.db'}", auto_migrate=True)
    old_path = tmp_path / "old.db"
    made = sqlite3.connect(old_path)  # as Liaison made databases before 16 KiB pages
    made.execute("PRAGMA page_size=4096")
    made.execute("PRAGMA journal_mode=WAL")
    made.execute("CREATE TABLE kept (x TEXT)")
    made.execute("INSERT INTO kept VALUES ('still here')")
    made.commit()
    made.close()
    old = Store(f"sqlite:///{old_path}", auto_migrate=True)
    try:
        with new.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA page_size").scalar() == 16384
            # the commit-time checkpoint limit stays 16 MiB whatever the page size
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 1024
        with old.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA page_size").scalar() == 4096
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 4096
            assert conn.exec_driver_sql("SELECT x FROM kept").scalar() == "still here"
            assert conn.exec_driver_sql("SELECT count(*) FROM records").scalar() == 0
    finally:
        new.close()
        old.close()
