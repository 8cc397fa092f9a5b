"""`get`/`create` import only the connector they name; listing still imports them all."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from hub import registry
from hub.connector import BaseConnector, Capabilities, EntitySupport
from hub.errors import ConnectorError

_MODULES = ("lazyone", "lazytwo", "lazybroken")


@pytest.fixture
def plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An installed distribution with two good connectors, a broken one and a non-class."""
    for n in ("one", "two"):
        (tmp_path / f"lazy{n}.py").write_text(textwrap.dedent(f"""
            from hub.connector import BaseConnector, Capabilities, EntitySupport

            class Plug(BaseConnector):
                name = "lazy{n}"
                capabilities = Capabilities(entities={{"task": EntitySupport(object="t")}})

            class Nameless:
                pass
        """))
    (tmp_path / "lazybroken.py").write_text("import not_a_module_anywhere_4712\n")
    info = tmp_path / "liaison_lazy_plugins-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: liaison-lazy-plugins\n"
                                   "Version: 1.0\n")
    (info / "entry_points.txt").write_text(textwrap.dedent("""
        [hub.connectors]
        lazyone = lazyone:Plug
        lazytwo = lazytwo:Plug
        lazybroken = lazybroken:Plug
        lazynameless = lazytwo:Nameless
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    registry.reload()
    yield tmp_path
    for module in _MODULES:
        sys.modules.pop(module, None)
    registry.reload()


def test_get_imports_only_the_named_connector(plugins: Path) -> None:
    assert registry.get("lazyone").__module__ == "lazyone"
    assert "lazytwo" not in sys.modules


def test_a_broken_named_connector_is_reported_without_importing_the_others(
        plugins: Path) -> None:
    with pytest.raises(ConnectorError, match="'lazybroken' is installed but failed to load: "
                       "cannot import lazybroken:Plug: ModuleNotFoundError"):
        registry.get("lazybroken")
    with pytest.raises(ConnectorError, match="'lazynameless' is installed but failed to load: "
                       ".*has no `name`"):
        registry.get("lazynameless")
    assert "lazyone" not in sys.modules


def test_a_registered_class_shadows_the_entry_point_without_importing_it(
        plugins: Path) -> None:
    class Fake(BaseConnector):
        name: ClassVar[str] = "lazyone"
        capabilities: ClassVar[Capabilities] = Capabilities(
            entities={"task": EntitySupport(object="t")})

    with registry.register("lazyone", Fake):
        assert registry.get("lazyone") is Fake
    assert "lazyone" not in sys.modules
    assert registry.get("lazyone").__module__ == "lazyone"


def test_listing_after_a_named_load_still_sees_every_connector(plugins: Path) -> None:
    one = registry.get("lazyone")
    classes = registry.available()
    assert classes["lazyone"] is one
    assert classes["lazytwo"].__module__ == "lazytwo"
    assert set(registry.failures()) >= {"lazybroken", "lazynameless"}


def test_hub_check_imports_only_the_configured_connectors(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    config = tmp_path / "hub.yaml"
    config.write_text(textwrap.dedent("""
        version: 1
        store: sqlite:///liaison.db
        systems:
          sheet:
            category: files
            owner: Ben
            connection: {connector: spreadsheet, path: ./data, key: id}
    """))
    code = textwrap.dedent(f"""
        import sys
        from hub.cli import main
        try:
            main(["--config", {str(config)!r}, "check"])
        except SystemExit as exc:
            assert not exc.code, exc.code
        print(" ".join(sorted({{m.split(".")[1] for m in sys.modules
                                if m.startswith("connectors.")}})))
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path, env=dict(os.environ), check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1].split() == ["spreadsheet"]
