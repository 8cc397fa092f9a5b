"""Load YAML while remembering the line of every key, so errors can say file:line.

`load_yaml(path)` returns a `Located` document: the plain Python data plus `line_of(path)`,
where `path` is the tuple of keys and list indexes leading to a value (the same shape as
jsonschema's `error.absolute_path`). Syntax errors and duplicate keys become `ConfigError`s
naming the file and line; nothing here raises a PyYAML exception to callers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hub.errors import ConfigError, Problem

PathKey = tuple[str | int, ...]


@dataclass
class Located:
    """A parsed YAML document and the line (1-based) where each key or item starts."""

    data: Any
    file: str
    lines: dict[PathKey, int] = field(default_factory=dict)

    def line_of(self, path: Sequence[str | int]) -> int | None:
        """The line of `path`, or of its nearest ancestor that has one."""
        p = tuple(path)
        while True:
            if p in self.lines:
                return self.lines[p]
            if not p:
                return None
            p = p[:-1]

    def problem(self, path: Sequence[str | int], message: str) -> Problem:
        """A Problem located at `path` in this document."""
        return Problem(self.file, self.line_of(path), dotted(path), message)


def dotted(path: Sequence[str | int]) -> str:
    """Render a key path the way an ops person reads it: flows[0].targets."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _construct(node: yaml.Node, path: PathKey, lines: dict[PathKey, int], file: str,
               problems: list[Problem]) -> Any:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                problems.append(Problem(file, key_node.start_mark.line + 1, dotted(path),
                                        "YAML merge keys (<<) are not supported; repeat the keys"))
                continue
            key = yaml.SafeLoader.construct_object(_LOADER, key_node)
            if not isinstance(key, (str, int, float, bool)) or key is None:
                problems.append(Problem(file, key_node.start_mark.line + 1, dotted(path),
                                        "keys must be plain names"))
                continue
            key = str(key)
            child = path + (key,)
            if key in out:
                problems.append(Problem(file, key_node.start_mark.line + 1, dotted(child),
                                        f"duplicate key (first given on line {lines[child]})"))
                continue
            lines[child] = key_node.start_mark.line + 1
            out[key] = _construct(value_node, child, lines, file, problems)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_construct(item, path + (i,), lines, file, problems)
                for i, item in enumerate(node.value)]
    return _LOADER.construct_object(node)


class _ScalarLoader(yaml.SafeLoader):
    """Safe scalar construction only; no Python tags, no arbitrary objects."""

    def __init__(self) -> None:
        super().__init__("")


_LOADER = _ScalarLoader()


def parse_yaml(text: str, file: str) -> Located:
    """Parse YAML text; raise ConfigError naming file:line for any syntax problem."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        what = exc.problem or exc.context or "invalid YAML"
        raise ConfigError(Problem(file, line, "", f"YAML syntax error: {what}")) from None
    except yaml.YAMLError as exc:
        raise ConfigError(Problem(file, None, "", f"YAML syntax error: {exc}")) from None
    if node is None:
        return Located({}, file, {(): 1})
    problems: list[Problem] = []
    lines: dict[PathKey, int] = {}
    try:
        data = _construct(node, (), lines, file, problems)
    except yaml.constructor.ConstructorError as exc:
        mark = exc.problem_mark
        raise ConfigError(Problem(file, mark.line + 1 if mark else None, "",
                                  f"unsupported YAML value: {exc.problem}")) from None
    if problems:
        raise ConfigError(problems)
    return Located(data, file, lines)


def load_yaml(path: Path | str) -> Located:
    """Read and parse a YAML file; errors name the file and line."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise ConfigError(Problem(str(p), None, "", f"cannot read file: {exc.strerror}")) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(Problem(str(p), line, "", "file is not UTF-8 text")) from None
    return parse_yaml(text, str(p))
