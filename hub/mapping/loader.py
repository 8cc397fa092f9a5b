"""Load mapping files: YAML with lines, schema check, `extends` resolution, semantic check.

`load_mapping("hubspot/contact")` finds `<dir>/hubspot/contact.yaml` in the search dirs
(then the packaged `mappings/` directory); `load_mapping(Path("my/contact.yaml"))` reads
that file. `extends:` names a parent the same way, or a file path relative to the file
that extends it (anything ending in .yaml/.yml or starting with ./ ../ or /). A child's
fields replace the parent's by canonical path; `field: null` removes an inherited field;
other top-level keys replace the parent's. Every problem in every file of the chain is
collected and raised as one MappingError.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, ValidationError

from hub.errors import ConfigError, MappingError, Problem
from hub.mapping.engine import compile_mapping
from hub.mapping.spec import REQUIRED, SCHEMA, MappingSpec, Origin, spec_from_dict
from hub.yamlsrc import Located, load_yaml, parse_yaml

_VALIDATOR = Draft202012Validator(SCHEMA)
_TYPE_WORDS = {"string": "text", "object": "an object", "array": "a list", "boolean":
               "true or false", "null": "null", "integer": "a whole number",
               "number": "a number"}


def default_search_dirs() -> list[Path]:
    """The packaged default mappings directory (the top-level `mappings` package)."""
    try:
        import mappings
    except ImportError:  # pragma: no cover - only when installed without the package
        return []
    return [Path(mappings.__file__).parent]


def _dirs(search_dirs: Sequence[Path | str]) -> list[Path]:
    return [Path(d) for d in search_dirs] + default_search_dirs()


def _looks_like_file(ref: str) -> bool:
    return ref.endswith((".yaml", ".yml")) or ref.startswith(("./", "../", "/"))


def find_default(connector: str, entity: str, search_dirs: Sequence[Path | str] = ()
                 ) -> Path | None:
    """The mapping file for connector/entity in the search dirs (then the packaged ones)."""
    return _find_named(f"{connector}/{entity}", search_dirs)


def _find_named(name: str, search_dirs: Sequence[Path | str]) -> Path | None:
    for d in _dirs(search_dirs):
        for suffix in (".yaml", ".yml"):
            candidate = d / f"{name}{suffix}"
            if candidate.is_file():
                return candidate
    return None


def load_mapping(ref: str | Path, *, search_dirs: Sequence[Path | str] = ()) -> MappingSpec:
    """Load, resolve and check a mapping (a file path or a name like hubspot/contact)."""
    if isinstance(ref, Path) or _looks_like_file(ref) or Path(ref).is_file():
        path = Path(ref)
    else:
        found = _find_named(ref, search_dirs)
        if found is None:
            looked = ", ".join(str(d) for d in _dirs(search_dirs)) or "(no directories)"
            raise MappingError(Problem(ref, None, "", f"cannot find mapping '{ref}' "
                                                      f"(looked for {ref}.yaml in: {looked})"))
        path = found
    return _finish(_Resolver(search_dirs).resolve(path, ()))


def parse_mapping(text: str, file: str = "<mapping>", *,
                  search_dirs: Sequence[Path | str] = ()) -> MappingSpec:
    """Like load_mapping, for mapping YAML already in memory (`extends` paths from cwd)."""
    try:
        located = parse_yaml(text, file)
    except ConfigError as exc:
        raise MappingError(exc.problems) from None
    return _finish(_Resolver(search_dirs).resolve_located(located, Path(file), ()))


@dataclass
class _Merged:
    """A mapping with its parents applied; every key remembers the file it came from."""

    file: str
    top: dict[str, tuple[Any, Located]] = field(default_factory=dict)
    fields: dict[str, tuple[Any, Located]] = field(default_factory=dict)
    chain: tuple[str, ...] = ()
    problems: list[Problem] = field(default_factory=list)


class _Resolver:
    """Reads a mapping file and its `extends` chain, collecting problems as it goes."""

    def __init__(self, search_dirs: Sequence[Path | str]):
        self.search_dirs = search_dirs

    def resolve(self, path: Path, stack: tuple[Path, ...]) -> _Merged:
        try:
            located = load_yaml(path)
        except ConfigError as exc:
            return _Merged(str(path), problems=list(exc.problems))
        return self.resolve_located(located, path, stack)

    def resolve_located(self, located: Located, path: Path, stack: tuple[Path, ...]
                        ) -> _Merged:
        me = _Merged(located.file)
        data = located.data
        schema_problems, bad = _schema_check(located)
        me.problems.extend(schema_problems)
        if () in bad:
            return me
        # Keep checking what is well-formed, so one run reports every problem: drop only
        # the top-level keys and fields that failed the schema.
        data = {k: v for k, v in data.items() if (k,) not in bad or k == "fields"}
        if ("fields",) in bad:
            data.pop("fields", None)
        elif isinstance(data.get("fields"), dict):
            data["fields"] = {k: v for k, v in data["fields"].items()
                              if ("fields", k) not in bad}
        parent: _Merged | None = None
        ref = data.get("extends")
        if ref is not None:
            parent = self.parent(located, path, ref, stack)
            if parent is not None:
                me.problems.extend(parent.problems)
                me.top.update(parent.top)
                me.fields.update(parent.fields)
                me.chain = (parent.file, *parent.chain)
        for key, value in data.items():
            if key not in ("fields", "extends"):
                me.top[key] = (value, located)
        for canon, value in (data.get("fields") or {}).items():
            if value is not None:
                me.fields[canon] = (value, located)
            elif canon in me.fields:
                del me.fields[canon]
            elif parent is not None or ref is None:
                what = (f"{parent.file} does not map it" if parent is not None
                        else "this file extends nothing (null removes an inherited field)")
                me.problems.append(located.problem(("fields", canon),
                                                   f"cannot remove '{canon}': {what}"))
        return me

    def parent(self, located: Located, path: Path, ref: str, stack: tuple[Path, ...]
               ) -> _Merged:
        target = self.locate_parent(located, path, ref)
        if isinstance(target, Problem):
            return _Merged(ref, problems=[target])
        seen = (*stack, path.resolve())
        if target.resolve() in seen:
            cycle = " -> ".join(str(p) for p in (*seen, target.resolve()))
            return _Merged(str(target), problems=[
                located.problem(("extends",), f"these files extend each other in a loop: "
                                              f"{cycle}")])
        return self.resolve(target, seen)

    def locate_parent(self, located: Located, path: Path, ref: str) -> Path | Problem:
        if _looks_like_file(ref):
            candidate = path.parent / ref
            if candidate.is_file():
                return candidate
            return located.problem(("extends",), f"file not found: {candidate}")
        found = _find_named(ref, self.search_dirs)
        if found is None:
            looked = ", ".join(str(d) for d in _dirs(self.search_dirs))
            return located.problem(("extends",), f"cannot find mapping '{ref}' "
                                                 f"(looked for {ref}.yaml in: {looked})")
        return found


def _finish(merged: _Merged) -> MappingSpec:
    problems = list(merged.problems)
    root_located = _root(merged)
    missing = [k for k in REQUIRED if k not in merged.top and k != "fields"]
    if not merged.top and problems:
        raise MappingError(problems)  # nothing usable was read: the file-level problem says why
    for key in missing:
        problems.append(Problem(merged.file, root_located.line_of(()) if root_located
                                else None, "", f"missing required key '{key}'"))
    if missing:
        raise MappingError(_ordered(problems))
    data = {k: v for k, (v, _) in merged.top.items()}
    data["fields"] = {k: v for k, (v, _) in merged.fields.items()}
    origins = {k: Origin(loc.file, (k,), loc) for k, (_, loc) in merged.top.items()}
    field_origins = {k: Origin(loc.file, ("fields", k), loc)
                     for k, (_, loc) in merged.fields.items()}
    spec = spec_from_dict(data, merged.file, origins, field_origins, merged.chain)
    try:
        compile_mapping(spec)
    except MappingError as exc:
        problems.extend(exc.problems)
    if problems:
        raise MappingError(_ordered(problems))
    return spec


def _ordered(problems: list[Problem]) -> list[Problem]:
    """Problems by file, then line, as an ops person reads them; duplicates dropped."""
    seen: dict[Problem, None] = dict.fromkeys(problems)
    return sorted(seen, key=lambda p: (p.file, p.line or 0))


def _root(merged: _Merged) -> Located | None:
    for _, loc in merged.top.values():
        if loc.file == merged.file:
            return loc
    return None


# ---------------------------------------------------------------- schema messages

def schema_check(located: Located) -> list[Problem]:
    """Every shape problem of one mapping document, each at file:line: key, in file order."""
    return _schema_check(located)[0]


def _schema_check(located: Located) -> tuple[list[Problem], set[tuple[str | int, ...]]]:
    """(problems, the top-level keys / fields they make unusable: (key,) or (fields, name))."""
    if not isinstance(located.data, dict):
        return [located.problem((), "a mapping file is an object with version, connector, "
                                    "entity, object, id and fields")], {()}
    problems: list[Problem] = []
    bad: set[tuple[str | int, ...]] = set()
    for error in _VALIDATOR.iter_errors(located.data):
        problems.extend(_explain(error, located))
        path = tuple(error.absolute_path)
        if not path:
            if error.validator != "additionalProperties":
                bad.add(())
        elif path[0] == "fields" and len(path) > 1:
            bad.add(path[:2])
        else:
            bad.add(path[:1])
    problems.sort(key=lambda p: (p.line or 0, p.key))
    return problems, bad


def _explain(error: ValidationError, located: Located) -> list[Problem]:
    path = tuple(error.absolute_path)
    schema = error.schema if isinstance(error.schema, dict) else {}
    kind = error.validator
    if kind == "additionalProperties" and isinstance(error.instance, dict):
        allowed = list(schema.get("properties", {}))
        out = []
        for extra in sorted(set(error.instance) - set(allowed)):
            close = difflib.get_close_matches(extra, allowed, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            out.append(located.problem(path + (extra,), f"unknown key '{extra}'{hint}; "
                                                        f"expected one of: {', '.join(allowed)}"))
        return out
    if kind == "required":
        missing = [k for k in error.validator_value if k not in error.instance]
        return [located.problem(path, f"missing required key '{k}'") for k in missing]
    if kind == "type":
        expected = schema.get("x-expected") or " or ".join(
            _TYPE_WORDS.get(t, t) for t in ([error.validator_value]
                                            if isinstance(error.validator_value, str)
                                            else error.validator_value))
        return [located.problem(path, f"expected {expected}, got {_kind(error.instance)}")]
    if kind == "enum":
        options = ", ".join(str(v) for v in error.validator_value)
        return [located.problem(path, f"expected one of {options}, got {error.instance!r}")]
    if kind == "const":
        return [located.problem(path, f"expected {error.validator_value!r}, "
                                      f"got {error.instance!r}")]
    if kind == "minLength":
        return [located.problem(path, "must not be empty")]
    return [located.problem(path, error.message)]


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, str):
        return f"text {value!r}"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, list):
        return "a list"
    return "an object"
