"""Read the config file into frozen Settings, reporting every problem at once.

Order: YAML (syntax, duplicate keys) -> schema -> secrets -> cross-references; the last
three all run, so one `hub check` lists everything wrong with its file:line. Loading only
reads: a config that fails leaves nothing behind (no database, no folder).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, cast

from hub.config.messages import schema_problems
from hub.config.model import (
    ConflictConfig,
    ConnectionConfig,
    FlowConfig,
    RetryPolicy,
    Settings,
    SystemConfig,
)
from hub.config.secrets import check_secrets, with_secrets
from hub.config.semantics import is_mapping_file, resolve, semantic_problems
from hub.errors import ConfigError, Problem
from hub.yamlsrc import Located, PathKey, load_yaml, parse_yaml

CONFIG_ENV = "HUB_CONFIG"
DEFAULT_FILE = "hub.yaml"
DEFAULT_DB = "liaison.db"
# Settings of a connection block that belong to Liaison, not to the connector.
_CONNECTION_KEYS = ("connector", "mappings", "retry")


def find_config(path: str | Path | None = None, *, must_exist: bool = True) -> Path:
    """The config file: `path` (--config), else $HUB_CONFIG, else ./hub.yaml.

    A folder means the hub.yaml inside it. With must_exist (the default) a missing file is
    a ConfigError that says how to create one; `hub init` passes must_exist=False.
    """
    given = path if path is not None else os.environ.get(CONFIG_ENV) or DEFAULT_FILE
    file = Path(given).expanduser()
    if file.is_dir():
        file = file / DEFAULT_FILE
    if must_exist and not file.is_file():
        how = ("given with --config" if path is not None else
               f"from ${CONFIG_ENV}" if os.environ.get(CONFIG_ENV) else "the default")
        raise ConfigError(Problem(str(file), None, "", f"no config file here ({how}); give "
                                  f"--config PATH, set {CONFIG_ENV}, or run `hub init` to "
                                  "write an example"))
    return file


def load(path: str | Path | None = None) -> Settings:
    """Find, read and validate the config file; ConfigError lists every problem."""
    file = find_config(path)
    try:
        doc = load_yaml(file)
    except ConfigError as exc:
        try:
            text = file.read_text(encoding="utf-8", errors="replace")
        except OSError:
            raise exc from None
        raise _with_hint(exc, text) from None
    return build(doc, file.resolve())


def loads(text: str, file: str = DEFAULT_FILE) -> Settings:
    """Validate config text as if read from `file` (relative paths start at its folder)."""
    try:
        doc = parse_yaml(text, file)
    except ConfigError as exc:
        raise _with_hint(exc, text) from None
    return build(doc, Path(file).expanduser().resolve())


def _with_hint(error: ConfigError, text: str) -> ConfigError:
    """Explain the commonest YAML trap: ${NAME} or a[0] inside {...} / [...] needs quotes."""
    lines = text.splitlines()
    out = []
    for p in error.problems:
        line = lines[p.line - 1] if p.line and p.line <= len(lines) else ""
        if (p.message.startswith("YAML syntax error") and ("{" in line or "[" in line)
                and ("${" in line or "]." in line)):
            p = Problem(p.file, p.line, p.key, p.message + "; inside {...} or [...], put "
                        "values containing ${...} or [ ] in quotes, like "
                        "{token: \"${HUBSPOT_TOKEN}\", path: \"emails[0].address\"}")
        out.append(p)
    return ConfigError(out)


def build(doc: Located, file: Path) -> Settings:
    """Settings from a parsed document, or ConfigError with every problem found."""
    base_dir = file.parent
    problems = schema_problems(doc) + check_secrets(doc) + semantic_problems(doc, base_dir)
    if problems:
        raise ConfigError(_ordered(problems))
    data: dict[str, Any] = doc.data
    return Settings(
        file=file,
        systems={name: _system(doc, name, block, base_dir)
                 for name, block in (data.get("systems") or {}).items()},
        flows={name: _flow(doc, name, block, base_dir)
               for name, block in (data.get("flows") or {}).items()},
        store_url=store_url(data.get("store"), base_dir),
        broker_url=data.get("broker") or "inprocess://",
        mapping_dirs=tuple(resolve(base_dir, d) for d in data.get("mappings") or ()),
    )


def _ordered(problems: list[Problem]) -> list[Problem]:
    """Problems in file order, each once (several checks may see the same fault)."""
    unique = list(dict.fromkeys(problems))
    return sorted(unique, key=lambda p: p.line or 0)


def store_url(url: str | None, base_dir: Path) -> str:
    """The store URL with the default applied and a relative SQLite path made absolute."""
    if not url:
        return f"sqlite:///{base_dir / DEFAULT_DB}"
    scheme, sep, rest = url.partition(":///")
    if not sep or scheme.split("+", 1)[0] != "sqlite":
        return url
    path, q, query = rest.partition("?")
    if not path or path == ":memory:" or path.startswith("/"):
        return url
    return f"{scheme}:///{resolve(base_dir, path)}{q}{query}"


def _where(doc: Located, path: PathKey) -> str:
    return f"{doc.file}:{doc.line_of(path)}"


def _retry(block: dict[str, Any] | None) -> RetryPolicy | None:
    if block is None:
        return None
    default = RetryPolicy()
    return RetryPolicy(
        attempts=int(block.get("attempts", default.attempts)),
        backoff_initial=float(block.get("backoff_initial", default.backoff_initial)),
        backoff_max=float(block.get("backoff_max", default.backoff_max)),
    )


def _mapping_files(files: dict[str, str] | None, base_dir: Path) -> dict[str, str]:
    # A name (hubspot/contact) stays a name: hub.mapping finds it in the mapping folders.
    return {key: str(resolve(base_dir, file)) if is_mapping_file(base_dir, file) else file
            for key, file in (files or {}).items()}


def _system(doc: Located, name: str, block: dict[str, Any], base_dir: Path) -> SystemConfig:
    path: PathKey = ("systems", name)
    conn = block.get("connection")
    connection = None
    if conn is not None:
        cpath = path + ("connection",)
        settings = {k: with_secrets(v, cpath + (k,), doc)
                    for k, v in conn.items() if k not in _CONNECTION_KEYS}
        connection = ConnectionConfig(
            name=name, connector=conn["connector"], settings=settings, base_dir=base_dir,
            mappings=_mapping_files(conn.get("mappings"), base_dir),
            retry=_retry(conn.get("retry")) or RetryPolicy(), where=_where(doc, cpath),
            key_where={k: _where(doc, cpath + (k,)) for k in conn})
    return SystemConfig(name=name, category=block["category"], owner=block.get("owner"),
                        description=block.get("description"), connection=connection,
                        where=_where(doc, path))


def _conflict(value: str | dict[str, Any] | None, two_way: bool) -> ConflictConfig:
    if value is None:
        # "source" is ambiguous when both sides are sources: the newer change wins instead.
        return ConflictConfig(policy="last-modified-wins" if two_way else "source-wins")
    if isinstance(value, str):
        return ConflictConfig(policy=value)
    default = ConflictConfig()
    return ConflictConfig(policy=value["policy"], owners=dict(value.get("owners") or {}),
                          fallback=value.get("fallback", default.fallback))


def _systems(value: str | list[str]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


def _flow(doc: Located, name: str, block: dict[str, Any], base_dir: Path) -> FlowConfig:
    direction = block.get("direction", "one-way")
    return FlowConfig(
        name=name,
        entity=block["entity"],
        sources=_systems(block["from"]),
        targets=_systems(block["to"]),
        schedule=(block.get("schedule") or "").strip() or None,
        mode=cast(Literal["incremental", "full"], block.get("mode", "incremental")),
        direction=cast(Literal["one-way", "two-way"], direction),
        conflict=_conflict(block.get("conflict"), direction == "two-way"),
        delete_policy=cast(Literal["ignore", "archive", "delete"],
                           block.get("on_delete", "ignore")),
        filter=block.get("filter"),
        mappings=_mapping_files(block.get("mappings"), base_dir),
        page_size=int(block.get("page_size", 100)),
        retry=_retry(block.get("retry")),
        enabled=bool(block.get("enabled", True)),
        where=_where(doc, ("flows", name)),
    )
