"""The Jira connector passes the shipped conformance suite against its sandbox."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.jira.connector import JiraConnector
from connectors.jira.sandbox import JiraSandbox
from hub.config.model import ConnectionConfig, RetryPolicy
from hub.connector import Connector, NativeRecord
from hub.testing import conformance_suite


def connector_for(sandbox: JiraSandbox) -> JiraConnector:
    """A connector pointed at `sandbox`, with quick retries."""
    return JiraConnector(ConnectionConfig(
        name="pm", connector="jira", base_dir=Path("."),
        settings={"base_url": sandbox.base_url, "email": sandbox.email,
                  "api_token": sandbox.api_token},
        retry=RetryPolicy(attempts=3, backoff_initial=0.01, backoff_max=1.0)))


@pytest.fixture
def jira() -> Iterator[JiraConnector]:
    """A connector against a fresh sandbox with three projects and no issues."""
    with JiraSandbox(count=0) as sandbox:
        connector = connector_for(sandbox)
        connector.sandbox = sandbox  # type: ignore[attr-defined]  # for seed_projects
        yield connector


def new_issue(i: int) -> NativeRecord:
    return {"fields": {"project": {"key": "OPS"}, "summary": f"Task {i}",
                       "description_text": f"Line {i}\n\nSecond paragraph {i}",
                       "labels": [f"batch-{i}"], "priority": {"name": "High"}}}


def renamed(record: NativeRecord) -> NativeRecord:
    return {"fields": {"summary": "Renamed task", "duedate": "2031-02-03"}}


def new_project(i: int) -> NativeRecord:
    return {"key": f"PRJ{i}", "name": f"Project {i}", "description": f"About {i}"}


def seed_projects(connector: Connector, records: list[NativeRecord]) -> list[str]:
    """Projects are read-only through the connector: create them in the sandbox."""
    sandbox: JiraSandbox = connector.sandbox  # type: ignore[attr-defined]
    return [sandbox.add_project(r["key"], r["name"], description=r["description"])
            for r in records]


TestJiraIssues = conformance_suite(
    "jira", entity="task", new_record=new_issue, change=renamed, id_of=lambda r: r["id"],
    seed_count=7, page_size=3, upserts_by_match=True, deletes_on_write=True)

TestJiraProjects = conformance_suite(
    "jira", entity="project", new_record=new_project, change=lambda r: r,
    id_of=lambda r: r["key"], seed_count=7, page_size=3, seed=seed_projects)
