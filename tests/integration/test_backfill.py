"""A flow added later, or a full refresh, delivers what Liaison already holds.

Ingest owes deliveries only for changes; a record that another flow already brought in
from the same source reads back unchanged. Without a backfill, a second flow from the CRM
to a new target would deliver nothing (seen when building `hub demo`).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.helpers import Hub, contact, read_csv, write_csv

FLOWS = '''  contacts:
    entity: contact
    from: a
    to: b
  vip-contacts:
    entity: contact
    from: a
    to: mailbox-sheet
    filter: {path: title, equals: Director}'''


@pytest.fixture
def hub(tmp_path: Path, store_url: str) -> Hub:
    """Systems a and b of the helper, plus a third folder system c for the VIP flow."""
    hub = Hub(tmp_path, store_url=store_url)
    (tmp_path / "c").mkdir()
    extra = f"""  mailbox-sheet:
    category: files
    owner: Cleo
    connection: {{connector: spreadsheet, path: {tmp_path / 'c'}}}
"""
    head = hub.text.split("flows:\n")[0]
    return _with_config(hub, head + extra + "flows:\n" + FLOWS + "\n")


def _with_config(hub: Hub, config: str) -> Hub:
    from hub.audit import AuditObserver
    from hub.config import loads
    from hub.store import Store
    from hub.sync.engine import SyncEngine

    hub.close()
    hub.text = config
    hub.settings = loads(config, file=str(hub.tmp / "hub.yaml"))
    hub.store = Store(hub.settings.store_url)
    hub.engine = SyncEngine(hub.settings, hub.store, observers=[AuditObserver(hub.store)])
    return hub


def test_a_flow_added_later_delivers_the_records_another_flow_brought_in(hub: Hub) -> None:
    rows = [contact(i) for i in range(1, 6)]
    rows[1]["title"] = rows[3]["title"] = "Director"
    write_csv(hub.a / "contacts.csv", rows)
    first = hub.sync("contacts")
    assert first.counts.created == 5 and len(hub.rows("b")) == 5

    later = hub.sync("vip-contacts")
    assert later.counts.created == 0 and later.counts.skipped == 3  # filtered out
    assert later.counts.written == 2
    vips = read_csv(hub.tmp / "c" / "contacts.csv")
    assert sorted(r["email"] for r in vips) == ["person2@example.com", "person4@example.com"]
    assert any("owed" in note for note in later.notes)

    again = hub.sync("vip-contacts")
    assert again.counts.written == 0
    assert len(read_csv(hub.tmp / "c" / "contacts.csv")) == 2
    try:
        assert not hub.dead()
    finally:
        hub.close()


def test_a_full_refresh_refills_a_target_that_lost_its_records(tmp_path: Path,
                                                              store_url: str) -> None:
    hub = Hub(tmp_path, store_url=store_url, modified_column=True)  # reads leave a cursor
    write_csv(hub.a / "contacts.csv", [contact(i) for i in range(1, 4)])
    hub.sync("contacts")
    with hub.store.begin() as conn:  # the target forgot one record (its link is gone)
        conn.exec_driver_sql("DELETE FROM links WHERE system = 'b' AND external_id IN "
                             "(SELECT external_id FROM links WHERE system = 'b' LIMIT 1)")
    incremental = hub.sync("contacts")
    assert incremental.counts.written == 0  # an incremental run only delivers changes
    full = hub.sync("contacts", full=True)
    assert full.counts.written == 1
    hub.close()
