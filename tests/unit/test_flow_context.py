"""FlowContext.build turns a flow filter that cannot compile into a located ConfigError."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from hub.config import loads
from hub.errors import ConfigError
from hub.sync.context import FlowContext


def test_a_filter_that_cannot_compile_is_a_config_error_naming_the_flow(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    settings = loads(f"""
version: 1
store: sqlite:///{tmp_path / 'x.db'}
systems:
  a: {{category: crm, owner: A, connection: {{connector: spreadsheet, path: {tmp_path / 'a'}}}}}
  b: {{category: files, owner: B, connection: {{connector: spreadsheet, path: {tmp_path / 'b'}}}}}
flows:
  contacts: {{entity: contact, from: a, to: b, filter: {{path: title, equals: CEO}}}}
""", file=str(tmp_path / "hub.yaml"))
    flow = settings.flows["contacts"]
    # Built by hand past the config check: an operator the condition language lacks.
    broken = dataclasses.replace(flow, filter={"path": "title", "resembles": "CEO"})
    with pytest.raises(ConfigError) as info:
        FlowContext.build(settings, broken)
    text = str(info.value)
    assert "hub.yaml:8: flows.contacts.filter:" in text
    assert "resembles" in text
