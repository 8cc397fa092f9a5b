"""The connector conformance suite: a connector's whole contract test module is one call.

    from hub.testing import conformance_suite

    @pytest.fixture
    def sheet(tmp_path):                       # a connector against an empty system
        conn = ConnectionConfig(name="s", connector="spreadsheet",
                                settings={"path": str(tmp_path), "modified_column": "updated_at"},
                                base_dir=tmp_path)
        return SpreadsheetConnector(conn)

    TestSpreadsheetContacts = conformance_suite(
        "sheet",                               # a fixture name, or a zero-argument callable
        entity="contact",
        new_record=lambda i: {"email": f"p{i}@example.com", "updated_at": f"2024-01-{i + 1:02d}"},
        change=lambda r: {**r, "title": "Boss", "updated_at": "2030-01-01"},
        id_of=lambda r: r["id"],
        upserts_by_match=True,
    )

For an HTTP connector, the fixture starts (or resets) the sandbox on 127.0.0.1 and returns
a connector pointed at it; a session-scoped server with a per-test reset works well.

The connector source (`connector`) is a pytest fixture name or a zero-argument callable; it
gives a connector instance, or a zero-argument factory of them. Each test gets its own and
closes it. The system may already hold records: the suite only reasons about what it seeds
plus "nothing twice". Records are seeded by `seed(connector, records) -> external ids`, by
default with create writes (a read-only connector passes its own `seed`, e.g. straight into
its sandbox). A write-only connector passes `observe`: how the test sees the system's records
without read() (e.g. the messages an SMTP test server received); tests that must see the
records skip, with the reason, when the entity declares no `read` and no `observe` is given.

Tests (skipped when the capabilities do not declare the feature):
capabilities well formed; check() ok; an empty system reads without error; a full read
with a small page size returns every seeded record exactly once and every cursor is JSON;
resuming from each intermediate page cursor yields exactly the remaining records;
an incremental read after changing one record returns it, not everything; create returns
one result per op with the op's key and distinct external ids, and the records read back;
update changes the record in place; an update of an unknown id fails in its result (not
raised; with `updates_check_existence=False`, for a target that cannot look a record up, it
only creates nothing); a repeated create with the same key and match makes no duplicate
(`upserts_by_match`); delete (`deletes_on_write`) and archive (capability `archive`);
close() twice is harmless. "A batch larger than batch_size is never sent" is the engine's
side of the contract and is tested there, not here.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

from hub.connector import Capabilities, Connector, Cursor, NativeRecord, Page, WriteOp

ENTITIES = frozenset({"company", "contact", "deal", "invoice", "payment", "product",
                      "project", "task", "message"})

Factory = Callable[[], Any]
Seeder = Callable[[Connector, list[NativeRecord]], list[str]]
Observer = Callable[[Connector], list[NativeRecord]]


def contains(written: Any, read: Any) -> bool:
    """Whether everything written is in what was read (dicts compare key by key, recursively)."""
    if isinstance(written, Mapping):
        return isinstance(read, Mapping) and all(
            k in read and contains(v, read[k]) for k, v in written.items())
    return bool(written == read or str(written) == str(read))


def write_seed(connector: Connector, records: list[NativeRecord], object: str) -> list[str]:
    """Create the records through write(), batch_size at a time; their external ids."""
    size = max(1, connector.capabilities.batch_size)
    ids: list[str] = []
    counter = itertools.count()
    for start in range(0, len(records), size):
        ops = [WriteOp("create", f"seed-{next(counter)}", r) for r in records[start:start + size]]
        results = connector.write(object, ops)
        failed = [r for r in results if not r.ok]
        assert not failed, f"seeding failed: {failed[0].error}"
        ids.extend(str(r.external_id) for r in results)
    return ids


def conformance_suite(
    connector: str | Factory,
    *,
    entity: str,
    new_record: Callable[[int], NativeRecord],
    change: Callable[[NativeRecord], NativeRecord],
    id_of: Callable[[NativeRecord], str],
    seed_count: int = 7,
    page_size: int = 3,
    seed: Seeder | None = None,
    same: Callable[[NativeRecord, NativeRecord], bool] = contains,
    upserts_by_match: bool = False,
    match_of: Callable[[NativeRecord], Mapping[str, str]] | None = None,
    deletes_on_write: bool = False,
    archived: Callable[[NativeRecord], bool] | None = None,
    observe: str | Observer | None = None,
    updates_check_existence: bool = True,
) -> type:
    """A pytest test class checking one connector and entity against the connector contract.

    `new_record(i)` builds the i-th native record to create; `change(r)` returns `r` with a
    visible change (and a newer modified time where the connector needs one); `id_of` reads
    the external id off a native record as read. `same(written, read)` says whether a read
    record shows what was written (default: `contains`). `match_of(r)` gives the WriteOp
    match values for the repeated-create test. `archived(r)` says whether a read record is
    archived (an archived record may also simply disappear). Seed at least page_size * 2 + 1
    records so several page cursors get resumed from.

    `observe(connector)` lists the system's records as `id_of` and `same` understand them,
    for an entity the connector cannot read (a fixture name giving such a callable works
    too, so it can reach the test's server). `updates_check_existence=False` says an update
    is not looked up first (an email cannot be), so an unknown id need not fail; it must
    still create nothing.
    """
    if seed_count < 2 * page_size + 1:
        raise ValueError("seed_count must be at least 2 * page_size + 1 so reads span pages")

    class ConnectorConformance:
        """The contract tests; pytest collects the name this class is assigned to."""

        __test__ = True
        observer: Observer | None = None

        @pytest.fixture
        def conformance_connector(self, request: pytest.FixtureRequest) -> Iterator[Connector]:
            """The connector under test, closed after the test."""
            self.observer = request.getfixturevalue(observe) if isinstance(observe, str) \
                else observe
            made = request.getfixturevalue(connector) if isinstance(connector, str) \
                else connector()
            if not hasattr(made, "read") and callable(made):
                made = made()
            yield made
            made.close()

        # -- helpers ---------------------------------------------------------------------

        @staticmethod
        def obj(c: Connector) -> str:
            """The native object for the entity."""
            return c.capabilities.object_for(entity)

        def seeded(self, c: Connector, count: int = seed_count, offset: int = 0) -> list[str]:
            """Put `count` new records in the system; their external ids."""
            records = [new_record(offset + i) for i in range(count)]
            ids = seed(c, records) if seed else write_seed(c, records, self.obj(c))
            assert len(ids) == count and len(set(ids)) == count, \
                f"seeding {count} records gave ids {ids}"
            return ids

        def pages(self, c: Connector, cursor: Cursor | None = None, *,
                  incremental: bool = False) -> list[Page]:
            """Every page of a read, with cursors passed through JSON as the engine stores them."""
            if cursor is not None:
                cursor = json.loads(json.dumps(cursor))
            found = list(c.read(self.obj(c), cursor, incremental=incremental,
                                page_size=page_size))
            for page in found:
                assert len(page.records) <= page_size, \
                    f"a page holds {len(page.records)} records; page_size was {page_size}"
                assert json.loads(json.dumps(page.cursor)) == page.cursor, \
                    f"cursor {page.cursor!r} does not survive JSON"
            return found

        @staticmethod
        def ids(pages: list[Page]) -> list[str]:
            """External ids of every record, in read order."""
            return [id_of(r) for p in pages for r in p.records]

        def can_see(self, c: Connector) -> bool:
            """Whether the test can list the system's records (read, or `observe`)."""
            support = c.capabilities.entities.get(entity)
            return bool(support is not None and support.read) or self.observer is not None

        def needs_to_see(self, c: Connector) -> None:
            """Skip unless the test can list the system's records."""
            if not self.can_see(c):
                pytest.skip(f"{c.name} does not declare read for {entity} and the suite "
                            "was given no `observe` to see the records written")

        def seen(self, c: Connector) -> list[NativeRecord]:
            """Every record in the system: a full read, else what `observe` shows."""
            support = c.capabilities.entities.get(entity)
            if support is not None and support.read:
                return [r for p in self.pages(c) for r in p.records]
            assert self.observer is not None, "call needs_to_see() first"
            return list(self.observer(c))

        def by_id(self, c: Connector) -> dict[str, NativeRecord]:
            """Every record in the system (see `seen`), by external id."""
            return {id_of(r): r for r in self.seen(c)}

        def needs(self, c: Connector, feature: str) -> None:
            """Skip unless the entity declares `feature` (read, write, incremental, archive)."""
            support = c.capabilities.entities.get(entity)
            if support is None or not getattr(support, feature):
                pytest.skip(f"{c.name} does not declare {feature} for {entity}")

        # -- tests -----------------------------------------------------------------------

        def test_capabilities_are_well_formed(self, conformance_connector: Connector) -> None:
            """Name, entities (canonical), objects, batch size and settings are declared."""
            cls = type(conformance_connector)
            caps = cls.capabilities
            assert isinstance(cls.name, str) and cls.name
            assert isinstance(caps, Capabilities)
            assert entity in caps.entities, f"{cls.name} does not declare {entity}"
            unknown = set(caps.entities) - ENTITIES
            assert not unknown, f"not canonical entities: {sorted(unknown)}"
            for name, support in caps.entities.items():
                assert isinstance(support.object, str) and support.object, \
                    f"{name}: empty object name"
            assert isinstance(caps.batch_size, int) and caps.batch_size >= 1
            assert all(isinstance(k, str) and isinstance(v, str) and v
                       for k, v in caps.settings.items()), "settings need descriptions"
            assert caps.secret_settings <= set(caps.settings), "secret settings undeclared"
            assert isinstance(conformance_connector, Connector)

        def test_check_is_ok(self, conformance_connector: Connector) -> None:
            """check() passes against a working system."""
            health = conformance_connector.check()
            assert health.ok, health.message

        def test_reading_an_empty_or_unseeded_system_works(
                self, conformance_connector: Connector) -> None:
            """A read before anything was written raises nothing and returns no duplicates."""
            self.needs(conformance_connector, "read")
            found = self.ids(self.pages(conformance_connector))
            assert len(found) == len(set(found))

        def test_full_read_returns_every_record_once(
                self, conformance_connector: Connector) -> None:
            """No loss, no duplicates across small pages; mid-read pages carry a cursor."""
            self.needs(conformance_connector, "read")
            seeded = self.seeded(conformance_connector)
            pages = self.pages(conformance_connector)
            found = self.ids(pages)
            twice = [i for i, n in Counter(found).items() if n > 1]
            assert not twice, f"read more than once: {twice}"
            missing = set(seeded) - set(found)
            assert not missing, f"never read: {sorted(missing)}"
            for page in pages[:-1]:
                assert page.cursor is not None, "a page before the last has no cursor"

        def test_resuming_from_each_page_cursor_reads_the_rest(
                self, conformance_connector: Connector) -> None:
            """Resuming at any intermediate cursor yields exactly the records after it."""
            self.needs(conformance_connector, "read")
            self.seeded(conformance_connector)
            pages = self.pages(conformance_connector)
            assert len(pages) >= 3, f"{seed_count} records in pages of {page_size} " \
                                    f"came as {len(pages)} page(s)"
            for at, page in enumerate(pages[:-1]):
                rest = self.ids(self.pages(conformance_connector, page.cursor))
                expected = self.ids(pages[at + 1:])
                assert sorted(rest) == sorted(expected), \
                    f"resuming after page {at + 1} (cursor {page.cursor!r})"

        def test_incremental_read_returns_the_changed_record(
                self, conformance_connector: Connector) -> None:
            """After a full read, changing one record makes the next incremental read see it."""
            c = conformance_connector
            self.needs(c, "incremental")
            self.needs(c, "write")
            ids = self.seeded(c)
            first = self.pages(c, incremental=True)
            total = len(self.ids(first))
            cursor = first[-1].cursor
            assert cursor is not None, "an incremental read ended without a cursor"
            before = self.by_id(c)[ids[1]]
            after = change(before)
            result, = c.write(self.obj(c), [WriteOp("update", "chg", after, external_id=ids[1])])
            assert result.ok, result.error
            again = self.pages(c, cursor, incremental=True)
            found = {id_of(r): r for p in again for r in p.records}
            assert ids[1] in found, "the changed record was not read incrementally"
            assert same(after, found[ids[1]]), f"read {found[ids[1]]}, wrote {after}"
            assert len(found) < total, "an incremental read returned everything"

        def test_create_returns_one_result_per_op(self, conformance_connector: Connector) -> None:
            """Results match the ops' keys, carry distinct external ids, and read back."""
            c = conformance_connector
            self.needs(c, "write")
            count = min(3, c.capabilities.batch_size)
            records = [new_record(100 + i) for i in range(count)]
            ops = [WriteOp("create", f"create-{i}", r) for i, r in enumerate(records)]
            results = c.write(self.obj(c), ops)
            assert [r.key for r in results] == [op.key for op in ops]
            assert all(r.ok for r in results), [str(r.error) for r in results if not r.ok]
            ids = [r.external_id for r in results]
            assert all(isinstance(i, str) and i for i in ids), ids
            assert len(set(ids)) == len(ids), f"external ids repeat: {ids}"
            if self.can_see(c):
                stored = self.by_id(c)
                for record, ext in zip(records, ids, strict=True):
                    assert ext in stored, f"created {ext} is not read back"
                    assert same(record, stored[str(ext)]), f"wrote {record}, read {stored[ext]}"

        def test_update_changes_the_record(self, conformance_connector: Connector) -> None:
            """An update changes the record in place and creates nothing."""
            c = conformance_connector
            self.needs(c, "write")
            self.needs_to_see(c)
            ext, = self.seeded(c, 1, offset=200)
            count = len(self.by_id(c))
            changed = change(new_record(200))
            result, = c.write(self.obj(c), [WriteOp("update", "upd", changed, external_id=ext)])
            assert result.ok, result.error
            assert result.key == "upd" and result.external_id == ext
            stored = self.by_id(c)
            assert len(stored) == count, "an update created a record"
            assert same(changed, stored[ext]), f"wrote {changed}, read {stored[ext]}"

        def test_update_of_an_unknown_record_fails_in_its_result(
                self, conformance_connector: Connector) -> None:
            """A per-record failure is a result with an error, not an exception; an update
            that is not looked up (`updates_check_existence=False`) creates nothing."""
            c = conformance_connector
            self.needs(c, "write")
            if not updates_check_existence:
                self.needs_to_see(c)
                before = len(self.seen(c))
            result, = c.write(self.obj(c), [WriteOp("update", "ghost", new_record(300),
                                                    external_id="no-such-record-4711")])
            assert result.key == "ghost" and (result.ok or result.error is not None)
            if updates_check_existence:
                assert not result.ok and result.error is not None, \
                    "an update of an unknown id succeeded"
            else:
                assert len(self.seen(c)) == before, "an update of an unknown id created one"

        def test_repeated_create_makes_no_duplicate(
                self, conformance_connector: Connector) -> None:
            """The same create sent twice (a retried delivery) leaves one record."""
            c = conformance_connector
            self.needs(c, "write")
            if not upserts_by_match:
                pytest.skip("the connector does not declare upserts by key/match")
            self.needs_to_see(c)
            record = new_record(400)
            match = dict(match_of(record)) if match_of else {}
            op = WriteOp("create", "again", record, match=match)
            first, = c.write(self.obj(c), [op])
            second, = c.write(self.obj(c), [op])
            assert first.ok and second.ok, (first.error, second.error)
            assert first.external_id == second.external_id
            found = [id_of(r) for r in self.seen(c)]
            assert found.count(str(first.external_id)) == 1

        def test_delete_removes_the_record(self, conformance_connector: Connector) -> None:
            """A deleted record is gone from the next full read."""
            c = conformance_connector
            self.needs(c, "write")
            if not deletes_on_write:
                pytest.skip("the connector does not declare deletes on write")
            self.needs_to_see(c)
            gone, kept = self.seeded(c, 2, offset=500)
            result, = c.write(self.obj(c), [WriteOp("delete", "del", {}, external_id=gone)])
            assert result.ok, result.error
            stored = self.by_id(c)
            assert gone not in stored and kept in stored

        def test_archive_archives_the_record(self, conformance_connector: Connector) -> None:
            """An archived record is flagged archived or absent from the next full read."""
            c = conformance_connector
            self.needs(c, "archive")
            self.needs_to_see(c)
            ext, = self.seeded(c, 1, offset=600)
            result, = c.write(self.obj(c), [WriteOp("archive", "arc", {}, external_id=ext)])
            assert result.ok, result.error
            stored = self.by_id(c)
            if ext in stored:
                assert archived is not None and archived(stored[ext]), \
                    f"archived record reads as {stored[ext]}"

        def test_close_twice_is_harmless(self, conformance_connector: Connector) -> None:
            """close() may be called more than once (the fixture closes once more)."""
            conformance_connector.close()
            conformance_connector.close()

    ConnectorConformance.__name__ = f"ConnectorConformance_{entity}"
    ConnectorConformance.__qualname__ = ConnectorConformance.__name__
    return ConnectorConformance
