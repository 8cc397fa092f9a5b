"""The shipped conformance suite fits write-only targets: `observe` and `updates_check_existence`.

Each case runs the suite (in a pytest of its own) against a small in-memory write-only
connector, like an SMTP target: it cannot read, and an update is not looked up.
"""

from __future__ import annotations

import textwrap

import pytest

pytest_plugins = ("pytester",)

MODULE = textwrap.dedent('''
    from typing import ClassVar

    import pytest

    from hub.config.model import ConnectionConfig
    from hub.connector import BaseConnector, Capabilities, EntitySupport, WriteResult
    from hub.testing import conformance_suite

    class Outbox(BaseConnector):
        """Sends each create once (by key); an update sends nothing and is not looked up."""

        name: ClassVar[str] = "outbox"
        capabilities: ClassVar[Capabilities] = Capabilities(
            entities={"message": EntitySupport(object="messages", read=False)}, batch_size=5)
        UPDATE_SENDS = False

        def __init__(self, connection):
            super().__init__(connection)
            self.sent, self.by_key = [], {}

        def read(self, object, cursor, *, incremental, page_size):
            raise AssertionError("the suite read a write-only connector")

        def write(self, object, ops):
            results = []
            for op in ops:
                if op.action == "create" and op.key not in self.by_key:
                    self.by_key[op.key] = f"m{len(self.sent)}"
                    self.sent.append({**op.record, "id": self.by_key[op.key]})
                if op.action == "update" and self.UPDATE_SENDS:
                    self.sent.append({**op.record, "id": f"m{len(self.sent)}"})
                ext = self.by_key[op.key] if op.action == "create" else op.external_id
                results.append(WriteResult(op.key, True, external_id=ext))
            return results

    @pytest.fixture
    def outbox(tmp_path):
        return Outbox(ConnectionConfig(name="out", connector="outbox", settings={},
                                       base_dir=tmp_path))

    @pytest.fixture
    def observed():
        return lambda c: list(c.sent)

    TestOutbox = conformance_suite(
        "outbox", entity="message", new_record=lambda i: {"to": f"p{i}@example.com"},
        change=lambda r: r, id_of=lambda r: r["id"], upserts_by_match=True,
        updates_check_existence=False, OBSERVE)
''')

UPDATE_TESTS = ("test_update_changes_the_record",
                "test_update_of_an_unknown_record_fails_in_its_result",
                "test_repeated_create_makes_no_duplicate")


def run(pytester: pytest.Pytester, observe: str, *, update_sends: bool = False
        ) -> pytest.RunResult:
    """The suite against the outbox, with `observe` given as written."""
    source = MODULE.replace("OBSERVE", observe)
    if update_sends:
        source = source.replace("UPDATE_SENDS = False", "UPDATE_SENDS = True")
    pytester.makepyfile(test_outbox=source)
    return pytester.runpytest_inprocess("-v", "-rs", "-p", "no:cacheprovider")


@pytest.mark.parametrize("observe", ['observe="observed"', "observe=lambda c: list(c.sent)"],
                         ids=["fixture-name", "callable"])
def test_a_write_only_connector_passes_through_observe(pytester: pytest.Pytester,
                                                       observe: str) -> None:
    result = run(pytester, observe)
    # The read tests skip; the write tests that must see the records ran and passed.
    result.assert_outcomes(passed=7, skipped=6)
    result.stdout.fnmatch_lines_random([f"*::{name} PASSED*" for name in UPDATE_TESTS])


def test_without_observe_the_tests_that_must_see_records_skip_saying_why(
        pytester: pytest.Pytester) -> None:
    result = run(pytester, "observe=None")
    result.assert_outcomes(passed=4, skipped=9)
    result.stdout.fnmatch_lines_random([f"*::{name} SKIPPED*" for name in UPDATE_TESTS])
    # The three skip at the same place for the same reason, so -rs shows them as one line.
    result.stdout.fnmatch_lines([("SKIPPED [[]3[]] *: outbox does not declare read for message "
                                 "and the suite was given no `observe` to see the records "
                                 "written")])


def test_an_update_that_sends_a_message_fails_the_suite(pytester: pytest.Pytester) -> None:
    result = run(pytester, 'observe="observed"', update_sends=True)
    result.assert_outcomes(passed=5, failed=2, skipped=6)
    result.stdout.fnmatch_lines_random(["*an update created a record*",
                                        "*an update of an unknown id created one*"])
