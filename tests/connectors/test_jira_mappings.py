"""The default Jira mappings load, map every sandbox record to valid canonical data, and
write back what they read (round trip), descriptions included."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.jira.connector import JiraConnector
from connectors.jira.sandbox import JiraSandbox
from hub.canonical.validate import validate
from hub.config.model import ConnectionConfig
from hub.connector import WriteOp
from hub.mapping import CompiledMapping, compile_mapping, load_mapping, preview

ENTITIES = {"project": "projects", "task": "issues"}


@pytest.fixture(scope="module")
def sandbox() -> Iterator[JiraSandbox]:
    with JiraSandbox(seed=9, count=300, projects=5) as sb:
        yield sb


@pytest.fixture(scope="module")
def connector(sandbox: JiraSandbox) -> Iterator[JiraConnector]:
    conn = ConnectionConfig(name="pm", connector="jira", base_dir=Path("."),
                            settings={"base_url": sandbox.base_url, "email": sandbox.email,
                                      "api_token": sandbox.api_token})
    with JiraConnector(conn) as c:
        yield c


@pytest.fixture(scope="module")
def native(connector: JiraConnector) -> dict[str, list[dict[str, Any]]]:
    """Records exactly as the connector reads them from a seeded sandbox."""
    return {obj: [r for p in connector.read(obj, None, incremental=False, page_size=100)
                  for r in p.records] for obj in ENTITIES.values()}


@functools.cache
def mapping(entity: str) -> CompiledMapping:
    return compile_mapping(load_mapping(f"jira/{entity}"))


@pytest.mark.parametrize("entity", sorted(ENTITIES))
def test_mapping_declares_the_connector_object(entity: str) -> None:
    m = load_mapping(f"jira/{entity}")
    assert m.connector == "jira" and m.entity == entity
    assert m.object == JiraConnector.capabilities.object_for(entity)


@pytest.mark.parametrize("entity", sorted(ENTITIES))
def test_every_record_maps_to_valid_canonical_data(entity: str,
                                                   native: dict[str, list[Any]]) -> None:
    m = mapping(entity)
    records = native[ENTITIES[entity]]
    assert len(records) >= 5
    for record in records:
        result = m.inbound(record, None)
        assert result.external_id == (record["key"] if entity == "project" else record["id"])
        assert result.deleted is False
        problems = validate(entity, result.data)
        assert not problems, (record.get("key"), problems)
        if entity == "task":
            assert result.updated_at and result.updated_at.endswith("Z")


def test_task_fields(native: dict[str, list[Any]]) -> None:
    records = native["issues"]
    record = next(r for r in records if r["fields"]["assignee"] and r["fields"]["description"]
                  and r["fields"]["status"]["name"] == "Done" and r["fields"]["duedate"])
    data, back = preview(mapping("task"), record)
    f = record["fields"]
    assert data["name"] == f["summary"] and data["status"] == "done"
    assert data["description"] == f["description_text"] and "\n" in data["description"]
    assert data["project"] == f["project"]["key"]
    assert data["assignees"] == [f["assignee"]["accountId"]]
    assert data["due_date"] == f["duedate"]
    assert data["completed_at"].endswith("Z") and data["url"].endswith("/browse/" + record["key"])
    assert back["fields"]["status"] == {"name": "Done"}
    assert back["fields"]["description_text"] == f["description_text"]
    assert "completed_at" not in back["fields"] and "url" not in back
    priorities = {r["fields"]["priority"]["name"]: preview(mapping("task"), r)[0]["priority"]
                  for r in records}
    assert priorities == {"Highest": "urgent", "High": "high", "Medium": "normal",
                          "Low": "low", "Lowest": "low"}


def test_project_fields(native: dict[str, list[Any]]) -> None:
    record = native["projects"][0]
    data, _ = preview(mapping("project"), record)
    assert data["owner"] == record["lead"]["accountId"] and data["status"] == "open"
    assert data["url"].endswith("/browse/" + record["key"])


@pytest.mark.parametrize("entity", sorted(ENTITIES))
def test_round_trip_is_stable(entity: str, native: dict[str, list[Any]]) -> None:
    """in(out(in(x))) == in(x): what we write back reads as the same canonical record."""
    m = mapping(entity)
    for record in native[ENTITIES[entity]][:150]:
        data, back = preview(m, record)
        again = _merged(record, back)
        assert preview(m, again)[0] == data


def _merged(record: dict[str, Any], back: dict[str, Any]) -> dict[str, Any]:
    out = dict(record)
    for key, value in back.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merged(out[key], value)
        else:
            out[key] = value
    return out


def test_written_tasks_read_back_as_the_same_canonical_record(
        connector: JiraConnector, native: dict[str, list[Any]]) -> None:
    """Through the API: outbound mapping -> connector write -> read -> inbound mapping."""
    m = mapping("task")
    for record in native["issues"][:8]:
        data, back = preview(m, record)
        result, = connector.write("issues", [WriteOp("create", f"rt-{record['id']}", back,
                                                     canonical_id=f"rt-{record['id']}")])
        assert result.ok, result.error
        stored = connector.fetch("issues", str(result.external_id))
        assert stored is not None
        again = preview(m, stored)[0]
        for field in ("name", "description", "status", "priority", "project", "assignees",
                      "due_date", "tags"):
            assert again.get(field) == data.get(field), field


@settings(max_examples=25, deadline=None)
@given(text=st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1,
                    max_size=80).map(lambda t: t.replace("\r", "")).filter(bool))
def test_any_description_survives_the_api(connector: JiraConnector, text: str) -> None:
    result, = connector.write("issues", [WriteOp("create", "d", {"fields": {
        "project": {"key": "OPS"}, "summary": "desc", "description_text": text}},
        canonical_id="")])
    stored = connector.fetch("issues", str(result.external_id))
    assert stored is not None and stored["fields"]["description_text"] == text
