"""The Trello connector passes the shipped conformance suite against its sandbox."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.trello.connector import TrelloConnector
from connectors.trello.sandbox import TrelloSandbox
from hub.config.model import ConnectionConfig, RetryPolicy
from hub.connector import NativeRecord
from hub.testing import conformance_suite


@pytest.fixture
def trello() -> Iterator[TrelloConnector]:
    """A connector against a fresh sandbox: one board with To Do/Doing/Done, no cards."""
    with TrelloSandbox(count=0, boards=1, token_limit=10_000, key_limit=10_000) as sandbox:
        board = next(iter(sandbox.boards))
        settings = {"base_url": sandbox.base_url, "api_key": sandbox.api_key,
                    "token": sandbox.token, "board_ids": [board],
                    "default_list_id": sandbox.list_named(board, "To Do")["id"]}
        yield TrelloConnector(ConnectionConfig(
            name="pm", connector="trello", settings=settings, base_dir=Path("."),
            retry=RetryPolicy(attempts=3, backoff_initial=0.01, backoff_max=1.0)))


def new_card(i: int) -> NativeRecord:
    return {"name": f"Card {i}", "desc": f"Do thing {i}", "dueComplete": False}


def new_board(i: int) -> NativeRecord:
    return {"name": f"Board {i}", "desc": f"About {i}"}


def renamed(record: NativeRecord) -> NativeRecord:
    return {"name": f"{record['name']} (renamed)", "desc": "changed"}


TestTrelloCards = conformance_suite(
    "trello", entity="task", new_record=new_card, change=renamed, id_of=lambda r: r["id"],
    seed_count=7, page_size=3, upserts_by_match=True, deletes_on_write=True,
    archived=lambda r: r["closed"] is True)

TestTrelloBoards = conformance_suite(
    "trello", entity="project", new_record=new_board, change=renamed,
    id_of=lambda r: r["id"], seed_count=7, page_size=3, upserts_by_match=True,
    archived=lambda r: r["closed"] is True)
