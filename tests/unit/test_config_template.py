"""The example config `hub init` writes: it loads, and it explains every option."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hub.config import Secret, example_config, load, missing_secrets

# Every key an ops person may write, as it appears in the template (active or commented).
KEYS = ["version", "store", "broker", "mappings", "systems", "category", "owner",
        "description", "connection", "connector", "base_url", "token", "retry", "attempts",
        "backoff_initial", "backoff_max", "path", "flows", "entity", "from", "to", "schedule",
        "mode", "direction", "conflict", "policy", "owners", "fallback", "on_delete", "filter",
        "page_size", "enabled"]


@pytest.fixture
def written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("HUBSPOT_TOKEN", raising=False)
    (tmp_path / "data").mkdir()
    file = tmp_path / "hub.yaml"
    file.write_text(example_config(), encoding="utf-8")
    return file


def test_template_loads_cleanly(written: Path) -> None:
    s = load(written)
    assert s.store_url == f"sqlite:///{written.parent.resolve()}/liaison.db"
    hubspot = s.connection("hubspot")
    assert hubspot.connector == "hubspot"
    assert hubspot.settings["base_url"] == "http://127.0.0.1:8001"
    assert isinstance(hubspot.settings["token"], Secret)
    assert hubspot.settings["token"].ref == "HUBSPOT_TOKEN"
    assert s.connection("suppliers").settings["path"] == "./data"
    silos = [name for name, sys_ in s.systems.items() if sys_.connection is None]
    assert silos and all(s.systems[n].owner is None for n in silos)
    assert any(f.enabled and f.schedule for f in s.flows.values())
    assert [p.key for p in missing_secrets(s)] == ["systems.hubspot.connection.token"]


def test_template_explains_every_key() -> None:
    text = example_config()
    for key in KEYS:
        assert re.search(rf"(?<![\w-]){key}:", text), key
    # The first time each key appears it carries a comment or sits right under one.
    lines = text.splitlines()
    for key in KEYS:
        i = next(n for n, line in enumerate(lines) if re.search(rf"(?<![\w-]){key}:", line))
        above = lines[i - 1].strip() if i else ""
        assert "#" in lines[i] or above.startswith("#"), lines[i]


def test_template_contains_no_secret_values() -> None:
    for line in example_config().splitlines():
        m = re.match(r"\s*(token|password|secret|api_key):\s*(\S+)", line)
        if m:
            assert m.group(2).startswith("${"), line
