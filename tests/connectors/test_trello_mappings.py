"""The default Trello mappings load, map every sandbox record to valid canonical data, and
write back what they read (round trip)."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.trello.connector import TrelloConnector
from connectors.trello.sandbox import TrelloSandbox
from hub.canonical.validate import validate
from hub.config.model import ConnectionConfig
from hub.mapping import CompiledMapping, compile_mapping, load_mapping, preview

ENTITIES = {"project": "boards", "task": "cards"}


@pytest.fixture(scope="module")
def native() -> Iterator[dict[str, list[dict[str, Any]]]]:
    """Records exactly as the connector reads them from a seeded sandbox."""
    with TrelloSandbox(seed=9, count=300, boards=4, token_limit=10_000) as sb:
        conn = ConnectionConfig(name="pm", connector="trello", base_dir=Path("."),
                                settings={"base_url": sb.base_url, "api_key": sb.api_key,
                                          "token": sb.token})
        with TrelloConnector(conn) as connector:
            yield {obj: [r for p in connector.read(obj, None, incremental=False,
                                                   page_size=100) for r in p.records]
                   for obj in ENTITIES.values()}


@functools.cache
def mapping(entity: str) -> CompiledMapping:
    return compile_mapping(load_mapping(f"trello/{entity}"))


@pytest.mark.parametrize("entity", sorted(ENTITIES))
def test_mapping_declares_the_connector_object(entity: str) -> None:
    m = load_mapping(f"trello/{entity}")
    assert m.connector == "trello" and m.entity == entity
    assert m.object == TrelloConnector.capabilities.object_for(entity)


@pytest.mark.parametrize("entity", sorted(ENTITIES))
def test_every_record_maps_to_valid_canonical_data(entity: str,
                                                   native: dict[str, list[Any]]) -> None:
    m = mapping(entity)
    records = native[ENTITIES[entity]]
    assert len(records) >= 4
    for record in records:
        result = m.inbound(record, None)
        assert result.external_id == record["id"]
        assert result.updated_at and result.updated_at.endswith("Z")
        problems = validate(entity, result.data)
        assert not problems, (record["id"], problems)


def test_task_fields(native: dict[str, list[Any]]) -> None:
    card = next(c for c in native["cards"] if c["due"] and c["labelNames"] and c["idMembers"])
    data, back = preview(mapping("task"), card)
    assert data["status"] == {"To Do": "open", "Doing": "in_progress",
                              "Done": "done"}[card["list"]["name"]]
    assert data["project"] == card["idBoard"]
    assert data["due_date"] == card["due"][:10]
    assert data["tags"] == card["labelNames"] and data["assignees"] == card["idMembers"]
    assert data["url"] == card["url"]
    assert back["list"] == {"name": card["list"]["name"]} and back["idBoard"] == card["idBoard"]
    assert "url" not in back and "labelNames" not in back  # read-only fields are not written


def test_unknown_list_names_read_as_no_status() -> None:
    card = {"id": "c1", "name": "x", "list": {"id": "l", "name": "Parking lot"},
            "dateLastActivity": "2024-05-01T10:00:00.000Z"}
    data, back = preview(mapping("task"), card)
    assert data["status"] is None and back["list"] == {"name": None}


def test_archived_and_deleted_cards_are_deleted_tasks(native: dict[str, list[Any]]) -> None:
    archived = next(c for c in native["cards"] if c["closed"])
    assert mapping("task").inbound(archived, None).deleted is True
    live = next(c for c in native["cards"] if not c["closed"])
    assert mapping("task").inbound(live, None).deleted is False
    tombstone = mapping("task").inbound({"id": "abc", "deleted": True}, None)
    assert tombstone.deleted is True and tombstone.external_id == "abc"


def test_board_status_both_ways(native: dict[str, list[Any]]) -> None:
    board = native["boards"][0]
    data, back = preview(mapping("project"), board)
    assert data["status"] == "open" and back["closed"] is False
    closed = mapping("project").outbound({"name": "x", "status": "archived"}, None)
    assert closed["closed"] is True


@pytest.mark.parametrize("entity", sorted(ENTITIES))
def test_round_trip_is_stable(entity: str, native: dict[str, list[Any]]) -> None:
    """in(out(in(x))) == in(x): what we write back reads as the same canonical record."""
    m = mapping(entity)
    for record in native[ENTITIES[entity]][:150]:
        data, back = preview(m, record)
        again = {**record, **back}
        assert preview(m, again)[0] == data


@settings(max_examples=60, deadline=None)
@given(name=st.text(min_size=1, max_size=30).filter(lambda s: s.strip() == s and s.strip()),
       desc=st.text(max_size=60),
       status=st.sampled_from(["open", "in_progress", "done", "closed"]),
       due=st.dates().map(lambda d: d.isoformat()))
def test_task_round_trip_property(name: str, desc: str, status: str, due: str) -> None:
    data = {"name": name, "description": desc, "status": status, "due_date": due}
    native = mapping("task").outbound(data, None)
    read = {"id": "c", **native, "dateLastActivity": "2024-05-01T10:00:00.000Z"}
    assert mapping("task").inbound(read, None).data == data
