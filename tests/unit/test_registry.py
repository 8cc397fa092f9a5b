"""Connector discovery through the `hub.connectors` entry-point group."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import ClassVar

import pytest

from hub import registry
from hub.config.model import ConnectionConfig
from hub.connector import BaseConnector, Capabilities, EntitySupport
from hub.errors import ConnectorError


class FakeConnector(BaseConnector):
    """A connector class registered explicitly by the tests."""

    name: ClassVar[str] = "fake"
    capabilities: ClassVar[Capabilities] = Capabilities(
        entities={"contact": EntitySupport(object="people")})


def _connection(connector: str) -> ConnectionConfig:
    return ConnectionConfig(name="crm", connector=connector, settings={}, base_dir=Path("."),
                            where="hub.yaml:12")


@pytest.fixture
def plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder on sys.path holding an installed distribution with three connectors."""
    (tmp_path / "goodplug.py").write_text(textwrap.dedent("""
        from hub.connector import BaseConnector, Capabilities, EntitySupport

        class Good(BaseConnector):
            name = "goodplug"
            capabilities = Capabilities(entities={"task": EntitySupport(object="todos")})

        class Nameless:
            pass
    """))
    (tmp_path / "brokenplug.py").write_text("import not_a_module_anywhere_4711\n")
    info = tmp_path / "liaison_test_plugins-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: liaison-test-plugins\n"
                                   "Version: 1.0\n")
    (info / "entry_points.txt").write_text(textwrap.dedent("""
        [hub.connectors]
        goodplug = goodplug:Good
        brokenplug = brokenplug:Broken
        nameless = goodplug:Nameless
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    registry.reload()
    yield tmp_path
    for module in ("goodplug", "brokenplug"):
        sys.modules.pop(module, None)
    registry.reload()


def test_builtin_spreadsheet_is_found_through_the_entry_point_group() -> None:
    from connectors.spreadsheet import SpreadsheetConnector

    registry.reload()
    assert registry.available()["spreadsheet"] is SpreadsheetConnector


def test_unknown_name_lists_installed_connectors_and_suggests_the_close_one() -> None:
    # Every connector of the entry-point group (whatever is installed), in name order.
    broken = list(registry.failures())
    installed = sorted({ep.name for ep in entry_points(group="hub.connectors")}
                       - set(broken) | {"hubspot"})
    hubspot = type("HubSpot", (FakeConnector,), {"name": "hubspot"})
    with registry.register("hubspot", hubspot), pytest.raises(ConnectorError) as caught:
        registry.get("hubspt")
    assert {"hubspot", "smtp", "spreadsheet", "trello"} <= set(installed)
    note = f" (failed to load: {', '.join(broken)})" if broken else ""
    assert str(caught.value) == (f"unknown connector 'hubspt'; installed connectors: "
                                 f"{', '.join(installed)}{note} (did you mean 'hubspot'?)")


def test_unknown_name_without_a_close_match_makes_no_suggestion() -> None:
    with pytest.raises(ConnectorError, match="unknown connector 'zzz'") as caught:
        registry.get("zzz")
    assert "did you mean" not in str(caught.value)


def test_a_broken_entry_point_is_reported_and_skipped(plugins: Path) -> None:
    classes = registry.available()
    assert classes["goodplug"].__name__ == "Good"
    assert "spreadsheet" in classes  # the others still load
    assert "brokenplug" not in classes and "nameless" not in classes
    broken = registry.failures()
    assert "ModuleNotFoundError" in broken["brokenplug"]
    assert "not_a_module_anywhere_4711" in broken["brokenplug"]
    assert "has no `name`" in broken["nameless"]
    with pytest.raises(ConnectorError, match="'brokenplug' is installed but failed to load"):
        registry.get("brokenplug")


def test_failures_are_short_single_lines(plugins: Path) -> None:
    for reason in registry.failures().values():
        assert "\n" not in reason and len(reason) <= 200


@pytest.mark.parametrize(("cls", "reason"), [
    (type("NoCaps", (), {"name": "bad"}), "has no `capabilities`"),
    (type("Other", (FakeConnector,), {"name": "other"}), "declares name 'other'"),
    (FakeConnector(_connection("fake")), "not a class"),
])
def test_classes_that_are_not_connectors_are_refused(cls: object, reason: str) -> None:
    with pytest.raises(ConnectorError, match=reason):
        registry.validate("bad", cls)


def test_register_is_scoped_to_the_block() -> None:
    with registry.register("fake", FakeConnector):
        assert registry.get("fake") is FakeConnector
        connector = registry.create(_connection("fake"))
        assert isinstance(connector, FakeConnector)
    assert "fake" not in registry.available()


def test_create_turns_a_constructor_crash_into_a_connector_error() -> None:
    class Crashing(FakeConnector):
        def __init__(self, connection: ConnectionConfig) -> None:
            raise KeyError("base_url")

    with registry.register("fake", Crashing), pytest.raises(ConnectorError) as caught:
        registry.create(_connection("fake"))
    assert str(caught.value) == ("hub.yaml:12: connector 'fake' for system 'crm' could not be "
                                 "set up: KeyError: 'base_url'")


def test_create_passes_connector_errors_through_unchanged() -> None:
    with pytest.raises(ConnectorError, match="needs a 'path' setting"):
        registry.create(_connection("spreadsheet"))
