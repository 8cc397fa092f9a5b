"""TrelloConnector against the Trello sandbox over real HTTP on 127.0.0.1: the fiddly parts."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.trello.connector import TrelloConnector, marker
from connectors.trello.sandbox import Faults, TrelloSandbox
from hub.config.model import ConnectionConfig, RetryPolicy
from hub.connector import Page, WriteOp
from hub.errors import AuthError, PermanentError, RateLimited

ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
BIG = 100_000  # requests per window: no 429s unless a test wants them


def connection(sb: TrelloSandbox, token: str | None = None, attempts: int = 3,
               **settings: Any) -> ConnectionConfig:
    return ConnectionConfig(
        name="pm", connector="trello", base_dir=Path("."),
        settings={"base_url": sb.base_url, "api_key": sb.api_key,
                  "token": token or sb.token, **settings},
        retry=RetryPolicy(attempts=attempts, backoff_initial=0.01, backoff_max=0.5))


@pytest.fixture
def sandbox() -> Iterator[TrelloSandbox]:
    with TrelloSandbox(seed=4, count=60, boards=3, token_limit=BIG, key_limit=BIG) as sb:
        yield sb


@pytest.fixture
def trello(sandbox: TrelloSandbox) -> Iterator[TrelloConnector]:
    with TrelloConnector(connection(sandbox)) as connector:
        yield connector


def read_all(connector: TrelloConnector, object: str, cursor: dict[str, Any] | None = None,
             *, incremental: bool = False,
             page_size: int = 100) -> tuple[list[Page], list[dict[str, Any]]]:
    pages = list(connector.read(object, cursor, incremental=incremental, page_size=page_size))
    return pages, [r for p in pages for r in p.records]


def board_of(sb: TrelloSandbox, i: int = 0) -> str:
    return sorted(sb.boards)[i]


# -- reads ------------------------------------------------------------------------------------


def test_full_read_returns_every_card_once_with_list_names_and_archived(
        trello: TrelloConnector, sandbox: TrelloSandbox) -> None:
    pages, cards = read_all(trello, "cards", page_size=7)
    ids = [c["id"] for c in cards]
    assert sorted(ids) == sorted(sandbox.cards) and len(ids) == len(set(ids)) == 60
    assert all(len(p.records) <= 7 for p in pages)
    assert any(c["closed"] for c in cards), "archived cards come with /cards/all"
    for card in cards:
        native = sandbox.cards[card["id"]]
        assert card["list"]["name"] == sandbox.lists[native["idList"]]["name"]
        assert card["labelNames"] == [label["name"] for label in native["labels"]]
        assert ISO_MS.match(card["dateLastActivity"])
        assert card["due"] is None or ISO_MS.match(card["due"])
    final = pages[-1].cursor
    assert final is not None and set(final) == {"boards"}
    assert set(final["boards"]) == set(sandbox.boards)


def test_full_read_resumes_from_every_cursor(trello: TrelloConnector) -> None:
    pages, cards = read_all(trello, "cards", page_size=6)
    everything = [c["id"] for c in cards]
    for i, page in enumerate(pages[:-1]):
        _, rest = read_all(trello, "cards", page.cursor, page_size=6)
        done = [c["id"] for p in pages[: i + 1] for c in p.records]
        assert done + [c["id"] for c in rest] == everything


def test_a_card_added_during_a_read_is_not_lost(trello: TrelloConnector,
                                                sandbox: TrelloSandbox) -> None:
    """Each board's mark is taken before its cards are read: a card added meanwhile is
    read by this full read or by the next incremental one."""
    reader = trello.read("cards", None, incremental=False, page_size=5)
    pages = [next(reader)]
    new = sandbox.create_card(sandbox.list_named(board_of(sandbox, 0), "Doing")["id"],
                              name="Mid-read")
    pages.extend(reader)
    seen = {c["id"] for p in pages for c in p.records}
    assert pages[-1].cursor is not None
    _, later = read_all(trello, "cards", pages[-1].cursor, incremental=True)
    assert new["id"] in seen | {c["id"] for c in later}
    assert new["id"] in {c["id"] for c in later}  # board 0 was marked before the card


def _final_cursor(connector: TrelloConnector) -> dict[str, Any]:
    pages, _ = read_all(connector, "cards")
    assert pages[-1].cursor is not None
    return pages[-1].cursor


def test_incremental_reads_changes_creations_and_deletions_from_the_actions_feed(
        trello: TrelloConnector, sandbox: TrelloSandbox) -> None:
    cursor = _final_cursor(trello)
    board = board_of(sandbox, 1)
    some = sorted(c for c, v in sandbox.cards.items() if v["idBoard"] == board)
    moved, gone = some[0], some[1]
    sandbox.update_card(moved, idList=sandbox.list_named(board, "Done")["id"])
    sandbox.delete_card(gone)
    made = sandbox.create_card(sandbox.list_named(board, "To Do")["id"], name="New one")
    pages, records = read_all(trello, "cards", cursor, incremental=True)
    by_id = {r["id"]: r for r in records}
    assert set(by_id) == {moved, gone, made["id"]}
    assert by_id[moved]["list"]["name"] == "Done"
    assert by_id[gone] == {"id": gone, "deleted": True}
    assert by_id[made["id"]]["name"] == "New one"
    newest = sandbox.card_actions(board)[0]["id"]
    assert pages[-1].cursor is not None and pages[-1].cursor["boards"][board] == newest
    # Nothing changed since: nothing read, the marks stay.
    again_pages, again = read_all(trello, "cards", pages[-1].cursor, incremental=True)
    assert again == [] and again_pages[-1].cursor == pages[-1].cursor


def test_the_newest_first_feed_is_paged_back_with_before(sandbox: TrelloSandbox) -> None:
    with TrelloConnector(connection(sandbox, actions_limit=4)) as trello:
        cursor = _final_cursor(trello)
        board = board_of(sandbox, 0)
        ids = sorted(c for c, v in sandbox.cards.items() if v["idBoard"] == board)[:10]
        for i, card in enumerate(ids):
            sandbox.update_card(card, name=f"Changed {i}")
        sandbox.requests.clear()
        pages, records = read_all(trello, "cards", cursor, incremental=True, page_size=3)
    assert sorted(r["id"] for r in records) == ids
    assert {r["name"] for r in records} == {f"Changed {i}" for i in range(10)}
    feed = [path for _, path in sandbox.requests if f"/boards/{board}/actions" in path]
    assert len(feed) == 3 and all("before=" in p for p in feed[1:])  # 4 + 4 + 2
    assert all(len(p.records) <= 3 for p in pages)


def test_an_incremental_read_resumes_from_every_cursor(trello: TrelloConnector,
                                                       sandbox: TrelloSandbox) -> None:
    cursor = _final_cursor(trello)
    for board in sorted(sandbox.boards):
        for card in sorted(c for c, v in sandbox.cards.items() if v["idBoard"] == board)[:4]:
            sandbox.update_card(card, desc="touched")
    pages, records = read_all(trello, "cards", cursor, incremental=True, page_size=3)
    everything = [r["id"] for r in records]
    assert len(everything) == 12
    for i, page in enumerate(pages[:-1]):
        _, rest = read_all(trello, "cards", page.cursor, incremental=True, page_size=3)
        done = [r["id"] for p in pages[: i + 1] for r in p.records]
        assert done + [r["id"] for r in rest] == everything


def test_a_board_without_card_actions_is_marked_by_trellos_clock() -> None:
    with TrelloSandbox(seed=2, count=5, boards=1, token_limit=BIG, key_limit=BIG) as sb, \
            TrelloConnector(connection(sb)) as trello:
        cursor = _final_cursor(trello)
        mark = cursor["boards"][board_of(sb)]
        assert ISO_MS.match(mark), "no action yet: the mark is a date (Trello's Date header)"
        made = sb.create_card(sb.list_named(board_of(sb), "To Do")["id"], name="After")
        _, records = read_all(trello, "cards", cursor, incremental=True)
    assert [r["id"] for r in records] == [made["id"]]


def test_board_ids_limits_the_cards_read(sandbox: TrelloSandbox) -> None:
    board = board_of(sandbox, 2)
    with TrelloConnector(connection(sandbox, board_ids=board)) as trello:
        _, cards = read_all(trello, "cards")
        _, boards = read_all(trello, "boards")
    assert {c["idBoard"] for c in cards} == {board}
    assert len(boards) == 3  # projects are every board of the member


def test_boards_read_incrementally_by_date_last_activity(trello: TrelloConnector,
                                                         sandbox: TrelloSandbox) -> None:
    pages, boards = read_all(trello, "boards", page_size=2)
    assert len(boards) == 3 and [len(p.records) for p in pages] == [2, 1]
    cursor = pages[-1].cursor
    assert cursor is not None and ISO_MS.match(cursor["since"])
    board = board_of(sandbox, 0)
    card = next(c for c, v in sandbox.cards.items() if v["idBoard"] == board)
    sandbox.update_card(card, name="Activity")  # moves the board's dateLastActivity
    _, changed = read_all(trello, "boards", cursor, incremental=True)
    # ">= since": the board(s) at the mark itself are read again (a tie is never lost).
    at_mark = {b["id"] for b in boards if b["dateLastActivity"] == cursor["since"]}
    assert board in {b["id"] for b in changed}
    assert {b["id"] for b in changed} <= {board} | at_mark


def test_fetch_reads_one_record_and_none_when_gone(trello: TrelloConnector,
                                                   sandbox: TrelloSandbox) -> None:
    card_id = min(sandbox.cards)
    card = trello.fetch("cards", card_id)
    assert card is not None and card["id"] == card_id and "name" in card["list"]
    sandbox.delete_card(card_id)
    assert trello.fetch("cards", card_id) is None  # 404 The requested resource was not found.
    assert trello.fetch("cards", "not-an-id") is None  # 400 invalid id
    board = trello.fetch("boards", board_of(sandbox))
    assert board is not None and board["id"] == board_of(sandbox)


# -- auth, errors, rate limits ------------------------------------------------------------------


def test_credentials_never_appear_in_a_url_or_a_log(sandbox: TrelloSandbox,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with TrelloConnector(connection(sandbox)) as trello:
        read_all(trello, "cards")
        trello.write("cards", [WriteOp("update", "u", {"name": "x"}, external_id="bad")])
    assert sandbox.requests and set(sandbox.auth_seen) == {"header"}
    for _, path in sandbox.requests:
        assert sandbox.token not in path and sandbox.api_key not in path
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "127.0.0.1" in logged  # httpx did log the URLs...
    assert sandbox.token not in logged and sandbox.api_key not in logged  # ...without secrets


def test_the_sandbox_takes_query_credentials_too_and_answers_plain_text(
        sandbox: TrelloSandbox) -> None:
    url = f"{sandbox.base_url}/members/me/boards"
    ok = httpx.get(url, params={"key": sandbox.api_key, "token": sandbox.token})
    assert ok.status_code == 200 and len(ok.json()) == 3
    bad = httpx.get(url, params={"key": sandbox.api_key, "token": "nope"})
    assert (bad.status_code, bad.text) == (401, "invalid token")
    assert bad.headers["content-type"].startswith("text/plain")
    assert httpx.get(url).text == "invalid key"
    auth = {"key": sandbox.api_key, "token": sandbox.token}
    invalid = httpx.get(f"{sandbox.base_url}/cards/xyz", params=auth)
    assert (invalid.status_code, invalid.text) == (400, "invalid id")
    missing = httpx.get(f"{sandbox.base_url}/cards/{'0' * 24}", params=auth)
    assert (missing.status_code, missing.text) == (404, "The requested resource was not found.")
    too_many = httpx.get(f"{sandbox.base_url}/boards/{board_of(sandbox)}/actions",
                         params={**auth, "limit": 1001})
    assert (too_many.status_code, too_many.text) == (400, "invalid value for limit")


def test_a_wrong_token_is_an_auth_error_that_names_no_secret(sandbox: TrelloSandbox) -> None:
    with TrelloConnector(connection(sandbox, token="wrong-token-123")) as trello:
        health = trello.check()
        assert not health.ok and "invalid token" in health.message
        assert "wrong-token-123" not in health.message
        with pytest.raises(AuthError) as info:
            read_all(trello, "cards")
    assert "invalid token" in str(info.value) and "wrong-token-123" not in str(info.value)


def test_a_missing_secret_names_the_setting(sandbox: TrelloSandbox) -> None:
    conn = ConnectionConfig(name="pm", connector="trello", base_dir=Path("."),
                            settings={"base_url": sandbox.base_url, "token": "t"})
    with TrelloConnector(conn) as trello:
        health = trello.check()
    assert not health.ok and "api_key" in health.message


def test_the_pacer_slows_down_before_the_token_limit() -> None:
    with TrelloSandbox(seed=1, count=30, boards=6, token_limit=12, key_limit=1000,
                       interval_ms=600) as sb, TrelloConnector(connection(sb)) as trello:
        _, cards = read_all(trello, "cards")  # 1 + 6 * 3 requests in a 12-per-0.6 s window
    assert len(cards) == 30
    assert trello.pacer.waited, "the pacer never slowed down"


def test_429s_are_retried_and_name_trellos_error_when_they_persist() -> None:
    with TrelloSandbox(seed=1, count=5, boards=1, faults=Faults(rate_limit=0.3, seed=3),
                       token_limit=BIG, key_limit=BIG) as sb, \
            TrelloConnector(connection(sb, attempts=8)) as trello:
        _, cards = read_all(trello, "cards")
        assert len(cards) == 5
    with TrelloSandbox(seed=1, count=5, boards=1, faults=Faults(rate_limit=1.0),
                       token_limit=BIG, key_limit=BIG) as sb, \
            TrelloConnector(connection(sb, attempts=2)) as trello, \
            pytest.raises(RateLimited) as info:
        read_all(trello, "cards")
    assert "Rate limit exceeded" in str(info.value) and sb.token not in str(info.value)


# -- writes -------------------------------------------------------------------------------------


def test_create_goes_to_the_list_its_status_names(trello: TrelloConnector,
                                                  sandbox: TrelloSandbox) -> None:
    board = board_of(sandbox, 1)
    ops = [WriteOp("create", "a", {"name": "Ship it", "idBoard": board,
                                   "list": {"name": "Doing"}, "due": "2024-05-01",
                                   "idMembers": [next(iter(sandbox.members))]},
                   canonical_id="task-a"),
           WriteOp("create", "b", {"name": "Nowhere", "idBoard": board,
                                   "list": {"name": "Parked"}}, canonical_id="task-b"),
           WriteOp("create", "c", {"name": "First list", "idBoard": board},
                   canonical_id="task-c")]
    a, b, c = trello.write("cards", ops)
    assert a.ok and c.ok and not b.ok
    assert "no list named 'Parked'" in str(b.error) and "'Doing'" in str(b.error)
    stored = sandbox.cards[str(a.external_id)]
    assert sandbox.lists[stored["idList"]]["name"] == "Doing"
    assert stored["due"] == "2024-05-01T00:00:00.000Z"
    assert stored["desc"] == marker("task-a")  # the repeat-safety marker, cut on read
    assert a.record is not None and a.record["desc"] == ""
    assert sandbox.lists[sandbox.cards[str(c.external_id)]["idList"]]["name"] == "To Do"


def test_a_repeated_create_finds_its_marker_instead_of_duplicating(
        trello: TrelloConnector, sandbox: TrelloSandbox) -> None:
    board = board_of(sandbox, 0)
    op = WriteOp("create", "k1", {"name": "Once", "desc": "Only once", "idBoard": board},
                 canonical_id="01HTASK")
    first, = trello.write("cards", [op])
    retried = WriteOp("create", "k2", {"name": "Once, edited", "desc": "Only once",
                                       "idBoard": board}, canonical_id="01HTASK")
    second, = trello.write("cards", [retried])
    assert first.ok and second.ok and first.external_id == second.external_id
    named = [c for c in sandbox.cards.values() if c["name"].startswith("Once")]
    assert len(named) == 1 and named[0]["name"] == "Once, edited"
    assert named[0]["desc"] == "Only once\n\n[liaison:01HTASK]"
    card = trello.fetch("cards", str(first.external_id))
    assert card is not None and card["desc"] == "Only once"


def test_update_moves_the_card_to_the_list_of_its_status(trello: TrelloConnector,
                                                         sandbox: TrelloSandbox) -> None:
    card_id = sorted(sandbox.cards)[3]
    result, = trello.write("cards", [WriteOp("update", "u", {"name": "Moved",
                                                             "list": {"name": "Done"}},
                                             external_id=card_id)])
    assert result.ok and result.record is not None
    assert sandbox.lists[sandbox.cards[card_id]["idList"]]["name"] == "Done"
    assert result.record["list"]["name"] == "Done"


def test_one_bad_record_does_not_sink_the_others(trello: TrelloConnector,
                                                 sandbox: TrelloSandbox) -> None:
    ids = sorted(sandbox.cards)[:2]
    results = trello.write("cards", [
        WriteOp("update", "1", {"name": "One"}, external_id=ids[0]),
        WriteOp("update", "2", {"due": "not a date"}, external_id=ids[1]),
        WriteOp("update", "3", {"name": "Three"}, external_id="f" * 24),
        WriteOp("archive", "4", {}, external_id=ids[1]),
    ])
    assert [r.ok for r in results] == [True, False, False, True]
    assert "invalid value for due" in str(results[1].error)
    assert isinstance(results[2].error, PermanentError) and results[2].error.status == 404
    assert sandbox.cards[ids[1]]["closed"] is True


def test_a_rate_limit_that_outlasts_the_retries_fails_the_rest_of_the_call() -> None:
    with TrelloSandbox(seed=1, count=3, boards=1, faults=Faults(rate_limit=1.0),
                       token_limit=BIG, key_limit=BIG) as sb, \
            TrelloConnector(connection(sb, attempts=1)) as trello:
        ids = sorted(sb.cards)
        results = trello.write("cards", [WriteOp("update", str(i), {"name": "x"},
                                                 external_id=c) for i, c in enumerate(ids)])
    assert [r.key for r in results] == ["0", "1", "2"]
    assert all(isinstance(r.error, RateLimited) for r in results)


def test_delete_is_repeat_safe_and_boards_are_closed_not_deleted(
        trello: TrelloConnector, sandbox: TrelloSandbox) -> None:
    card_id = min(sandbox.cards)
    op = WriteOp("delete", "d", {}, external_id=card_id)
    assert trello.write("cards", [op])[0].ok and card_id not in sandbox.cards
    assert trello.write("cards", [op])[0].ok  # already gone: done
    board = board_of(sandbox, 2)
    closed, = trello.write("boards", [WriteOp("delete", "b", {}, external_id=board)])
    assert closed.ok and sandbox.boards[board]["closed"] is True


def test_a_new_board_gets_trellos_default_lists_and_a_repeat_safe_marker(
        trello: TrelloConnector, sandbox: TrelloSandbox) -> None:
    op = WriteOp("create", "x", {"name": "Launch", "desc": "Q4"}, canonical_id="01HPROJ")
    first, = trello.write("boards", [op])
    second, = trello.write("boards", [op])
    assert first.ok and first.external_id == second.external_id
    assert [v["name"] for v in sandbox.board_lists(str(first.external_id))] == [
        "To Do", "Doing", "Done"]
    _, boards = read_all(trello, "boards")
    launch = [b for b in boards if b["name"] == "Launch"]
    assert len(launch) == 1 and launch[0]["desc"] == "Q4"


def test_sandbox_ids_carry_their_creation_time(sandbox: TrelloSandbox) -> None:
    board = board_of(sandbox)
    made = sandbox.create_card(sandbox.list_named(board, "To Do")["id"], name="t")
    seconds = int(made["id"][:8], 16)
    assert ISO_MS.match(made["dateLastActivity"])
    assert made["dateLastActivity"].startswith(
        time.strftime("%Y-%m-%dT%H:%M", time.gmtime(seconds)))
