"""Checks the schema cannot express: names that must match, cron syntax, files that exist.

Runs after (and alongside) the schema check on the same document, so it must never
assume a value has the right type: anything of the wrong shape was already reported by
the schema and is skipped here.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from croniter import CroniterBadDateError, croniter

from hub.config.messages import describe, did_you_mean
from hub.errors import Problem
from hub.relative_dates import relative_date
from hub.yamlsrc import Located, PathKey

# The canonical entities (hub.canonical is below hub.config in the layout, so the names are
# repeated here; tests/unit/test_config.py checks they agree with hub.canonical).
ENTITIES = ("company", "contact", "deal", "invoice", "payment", "product", "project", "task",
            "message")
STORE_SCHEMES = ("sqlite", "postgresql", "postgres")
BROKER_SCHEMES = ("inprocess", "redis", "rediss")
CONDITION_TESTS = ("equals", "not_equals", "in", "empty", "contains", "gt", "gte", "lt", "lte")
CONDITION_GROUPS = ("all", "any", "not")

_SLUG = re.compile(r"[a-z0-9][a-z0-9_-]*")
_CRON_EPOCH = datetime(2024, 1, 1, tzinfo=UTC)


def semantic_problems(doc: Located, base_dir: Path) -> list[Problem]:
    """Every cross-reference, cron, name and file problem in the document."""
    data = _block(doc.data)
    systems = _block(data.get("systems"))
    flows = _block(data.get("flows"))
    problems = _urls(doc, data)
    folders = [f for f in _list(data.get("mappings")) if isinstance(f, str) and f]
    for i, folder in enumerate(_list(data.get("mappings"))):
        if isinstance(folder, str) and folder and not resolve(base_dir, folder).is_dir():
            problems.append(doc.problem(("mappings", i), f"no folder {folder!r} "
                                        f"(looked in {resolve(base_dir, folder)})"))
    refs = _MappingRefs(doc, base_dir, [resolve(base_dir, f) for f in folders])
    for name, system in systems.items():
        problems += _system(doc, name, _block(system), refs)
    for name, flow in flows.items():
        problems += _flow(doc, name, _block(flow), systems, refs)
    return problems


def resolve(base_dir: Path, path: str) -> Path:
    """A path from the config, made absolute against the config's folder."""
    return (base_dir / Path(path).expanduser()).resolve()


def _block(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _names(value: Any) -> list[tuple[PathKey, str]]:
    """(relative path, name) for a `from`/`to` value that is a name or a list of names."""
    if isinstance(value, str):
        return [((), value)]
    return [((i,), v) for i, v in enumerate(_list(value)) if isinstance(v, str)]


def _scheme(url: str) -> str:
    try:
        return urlsplit(url.strip()).scheme.lower().split("+", 1)[0]
    except ValueError:
        return ""


def _urls(doc: Located, data: dict[str, Any]) -> list[Problem]:
    problems = []
    store, broker = data.get("store"), data.get("broker")
    if isinstance(store, str) and store and _scheme(store) not in STORE_SCHEMES:
        problems.append(doc.problem(("store",), "expected a database URL starting with "
                                    "sqlite:/// or postgresql:// (got a URL starting with "
                                    f"{(_scheme(store) or store.split(':')[0])!r})"))
    if isinstance(broker, str) and broker and _scheme(broker) not in BROKER_SCHEMES:
        problems.append(doc.problem(("broker",), "expected inprocess:// or a redis:// URL "
                                    f"(got a URL starting with {broker.split(':')[0]!r})"))
    return problems


def _slug(doc: Located, path: PathKey, what: str) -> list[Problem]:
    name = str(path[-1])
    if _SLUG.fullmatch(name):
        return []
    return [doc.problem(path, f"{what} name {name!r} must use only lowercase letters, digits, "
                              "'-' and '_', starting with a letter or digit (like crm-contacts)")]


def _entity(doc: Located, path: PathKey, entity: Any) -> list[Problem]:
    if not isinstance(entity, str) or entity in ENTITIES:
        return []
    return [doc.problem(path, f"unknown entity {entity!r}{did_you_mean(entity, ENTITIES)}; "
                              f"must be one of: {', '.join(ENTITIES)}")]


def is_mapping_file(base_dir: Path, ref: str) -> bool:
    """Whether a `mappings:` value is a file path (else a mapping name like hubspot/contact,
    found in the mapping folders): it ends in .yaml/.yml, starts with ./ ../ / or ~, or is
    an existing file."""
    return (ref.endswith((".yaml", ".yml")) or ref.startswith(("./", "../", "/", "~"))
            or resolve(base_dir, ref).is_file())


class _MappingRefs:
    """Checks `mappings:` values: a file next to the config, or a name in the config's
    mapping folders, then the built-in mappings/ (the order hub.mapping.loader looks in)."""

    def __init__(self, doc: Located, base_dir: Path, folders: list[Path]):
        self.doc, self.base_dir = doc, base_dir
        self.dirs = folders + _builtin_mapping_dirs()

    def problems(self, path: PathKey, value: Any, connector: Any) -> list[Problem]:
        if not isinstance(value, str) or not value:
            return []
        if is_mapping_file(self.base_dir, value):
            if resolve(self.base_dir, value).is_file():
                return []
            return [self.doc.problem(path, f"mapping file {value!r} not found "
                                           f"(looked for {resolve(self.base_dir, value)})")]
        if any((d / f"{value}{ext}").is_file() for d in self.dirs for ext in (".yaml", ".yml")):
            return []
        known = self.names(connector) if isinstance(connector, str) else []
        of = f"; mappings of connector {connector}: {', '.join(known) or 'none'}" \
            if isinstance(connector, str) else ""
        looked = ", ".join(str(d) for d in self.dirs) or "no folders"
        return [self.doc.problem(path, f"no mapping named {value!r}{did_you_mean(value, known)} "
                                       f"(looked for {value}.yaml in: {looked}){of}; or give "
                                       "a file path like ./my-mapping.yaml")]

    def names(self, connector: str) -> list[str]:
        """The mapping names found for a connector, like smtp/invoice_reminder."""
        return sorted({f"{connector}/{f.stem}" for d in self.dirs
                       for pattern in ("*.yaml", "*.yml") for f in (d / connector).glob(pattern)
                       if f.is_file()})


def _builtin_mapping_dirs() -> list[Path]:
    # The packaged mappings/ folder (data, not code: no layering concern).
    try:
        import mappings
    except ImportError:  # pragma: no cover - only when installed without the package
        return []
    return [Path(mappings.__file__).parent] if mappings.__file__ else []


def _retry(doc: Located, path: PathKey, retry: Any) -> list[Problem]:
    r = _block(retry)
    first, most = r.get("backoff_initial"), r.get("backoff_max")
    if (isinstance(first, (int, float)) and isinstance(most, (int, float))
            and not isinstance(first, bool) and not isinstance(most, bool) and most < first):
        return [doc.problem(path + ("backoff_max",),
                            f"must not be smaller than backoff_initial ({first})")]
    return []


def _system(doc: Located, name: str, system: dict[str, Any], refs: _MappingRefs
            ) -> list[Problem]:
    path: PathKey = ("systems", name)
    problems = _slug(doc, path, "system")
    conn = _block(system.get("connection"))
    for entity, file in _block(conn.get("mappings")).items():
        where = path + ("connection", "mappings", entity)
        problems += _entity(doc, where, entity) + refs.problems(where, file,
                                                                conn.get("connector"))
    return problems + _retry(doc, path + ("connection", "retry"), conn.get("retry"))


def _flow(doc: Located, name: str, flow: dict[str, Any], systems: dict[str, Any],
          refs: _MappingRefs) -> list[Problem]:
    path: PathKey = ("flows", name)
    problems = _slug(doc, path, "flow") + _entity(doc, path + ("entity",), flow.get("entity"))
    sources, targets = _names(flow.get("from")), _names(flow.get("to"))
    for key, names in (("from", sources), ("to", targets)):
        for rel, system in names:
            problems += _member(doc, path + (key,) + rel, system, systems)
    problems += _endpoints(doc, path, flow, sources, targets)
    members = {s for _, s in sources + targets}
    problems += _schedule(doc, path + ("schedule",), flow.get("schedule"))
    problems += _conflict(doc, path + ("conflict",), flow.get("conflict"), members)
    if "filter" in flow and isinstance(flow["filter"], dict):
        problems += _condition(doc, path + ("filter",), flow["filter"])
    for system, file in _block(flow.get("mappings")).items():
        where = path + ("mappings", system)
        if system not in members:
            problems.append(doc.problem(where, f"system {system!r} is not in this flow "
                                        f"(its systems: {', '.join(sorted(members)) or 'none'})"))
        connector = _block(_block(systems.get(system)).get("connection")).get("connector")
        problems += refs.problems(where, file, connector)
    return problems + _retry(doc, path + ("retry",), flow.get("retry"))


def _member(doc: Located, path: PathKey, system: str, systems: dict[str, Any]) -> list[Problem]:
    if system not in systems:
        known = ", ".join(sorted(systems)) or "none"
        return [doc.problem(path, f"no system named {system!r}"
                                  f"{did_you_mean(system, systems)}; declared systems: {known}")]
    if not isinstance(systems[system], dict) or systems[system].get("connection") is None:
        return [doc.problem(path, f"system {system!r} has no connection (it is a disconnected "
                                  "silo), so it cannot take part in a flow; give it a "
                                  "connection block or take it out of this flow")]
    return []


def _endpoints(doc: Located, path: PathKey, flow: dict[str, Any],
               sources: list[tuple[PathKey, str]],
               targets: list[tuple[PathKey, str]]) -> list[Problem]:
    if flow.get("direction") == "two-way":
        if len(sources) != 1 or len(targets) != 1:
            return [doc.problem(path + ("direction",), "a two-way flow needs exactly one system "
                                f"in from and one in to (got {len(sources)} in from and "
                                f"{len(targets)} in to)")]
        if sources[0][1] == targets[0][1]:
            return [doc.problem(path + ("to",), "a two-way flow needs two different systems")]
        return []
    source_names = {s for _, s in sources}
    return [doc.problem(path + ("to",) + rel, f"system {system!r} is both a source and a "
                                              "target of this one-way flow; for changes in both "
                                              "directions use direction: two-way")
            for rel, system in targets if system in source_names]


def _schedule(doc: Located, path: PathKey, expr: Any) -> list[Problem]:
    if not isinstance(expr, str):
        return []
    text = expr.strip()
    fields = text.split()
    example = 'like "*/15 * * * *" (every 15 minutes) or "0 6 * * mon-fri"'
    if not text.startswith("@") and len(fields) != 5:
        return [doc.problem(path, f"a cron expression has 5 fields (minute hour day-of-month "
                                  f"month day-of-week), got {len(fields)}; write it {example}")]
    if not croniter.is_valid(text):
        return [doc.problem(path, f"{expr!r} is not a valid cron expression; write it {example}")]
    try:
        croniter(text, _CRON_EPOCH).get_next(datetime)
    except CroniterBadDateError:
        return [doc.problem(path, f"{expr!r} never matches any date (check day and month)")]
    return []


def _conflict(doc: Located, path: PathKey, conflict: Any, members: set[str]) -> list[Problem]:
    if not isinstance(conflict, dict) or not isinstance(conflict.get("policy"), str):
        return []
    owners = conflict.get("owners")
    if conflict["policy"] != "field-owner":
        return [doc.problem(path + (key,), f"{key} only applies to policy: field-owner")
                for key in ("owners", "fallback") if key in conflict]
    if not isinstance(owners, dict) or not owners:
        if owners is not None and not isinstance(owners, dict):
            return []  # wrong type, reported by the schema
        return [doc.problem(path, "policy field-owner needs owners: a map of canonical field "
                                  "-> the system that owns it, like {emails: hubspot}")]
    return [doc.problem(path + ("owners", field), f"owner {system!r} is not a system of this "
                        f"flow (its systems: {', '.join(sorted(members)) or 'none'})"
                        f"{did_you_mean(system, members)}")
            for field, system in owners.items()
            if isinstance(system, str) and system not in members]


def _condition(doc: Located, path: PathKey, cond: Any) -> list[Problem]:
    """Structure of a filter condition (hub.mapping compiles and runs it)."""
    if not isinstance(cond, dict):
        return [doc.problem(path, "expected a condition like {path: emails[0].address, "
                                  f"empty: false}}, got {describe(cond)}")]
    keys = set(cond)
    groups = keys & set(CONDITION_GROUPS)
    if groups:
        if len(keys) != 1:
            return [doc.problem(path, f"a condition with {min(groups)} must have no other "
                                      f"keys (got {', '.join(sorted(keys))})")]
        group = groups.pop()
        if group == "not":
            return _condition(doc, path + ("not",), cond["not"])
        items = cond[group]
        if not isinstance(items, list) or not items:
            return [doc.problem(path + (group,), f"expected a list of conditions, got "
                                                 f"{describe(items)}")]
        return [p for i, c in enumerate(items) for p in _condition(doc, path + (group, i), c)]
    if "path" not in keys:
        return [doc.problem(path, "a condition needs path and one test ("
                                  f"{', '.join(CONDITION_TESTS)}), or all/any/not")]
    problems = []
    if not isinstance(cond["path"], str) or not cond["path"].strip():
        problems.append(doc.problem(path + ("path",), "expected a canonical field path like "
                                    f"emails[0].address, got {describe(cond['path'])}"))
    allowed = ("path",) + CONDITION_TESTS
    unknown = sorted(keys - set(allowed))
    for key in unknown:
        problems.append(doc.problem(path + (key,), f"unknown key {key!r}"
                                    f"{did_you_mean(key, allowed)}; allowed keys: "
                                    f"{', '.join(allowed)}"))
    tests = keys & set(CONDITION_TESTS)
    # A misspelt test ("equal") already explains why no test was found.
    if len(tests) > 1 or (not tests and not unknown):
        problems.append(doc.problem(path, "a condition needs exactly one test ("
                                    f"{', '.join(CONDITION_TESTS)}), got {len(tests)}"))
    if "in" in tests and not isinstance(cond["in"], list):
        problems.append(doc.problem(path + ("in",), f"expected a list of values, got "
                                    f"{describe(cond['in'])}"))
    if "empty" in tests and not isinstance(cond["empty"], bool):
        problems.append(doc.problem(path + ("empty",), f"expected true or false, got "
                                    f"{describe(cond['empty'])}"))
    for test in sorted(tests & {"gt", "gte", "lt", "lte"}):
        try:
            relative_date(cond[test])  # like today-14d; checked again when the flow runs
        except ValueError as exc:
            problems.append(doc.problem(path + (test,), str(exc)))
    return problems
