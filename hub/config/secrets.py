"""Secrets in the config: ${NAME} references, refusing literals, and redaction.

A secret is never written in the config file: a connection setting whose value is exactly
`${NAME}` becomes a `Secret` that reads the environment variable NAME at use. Literal
values under secret-looking keys are refused (without repeating the value), and `redact` /
`redact_text` keep secrets out of JSON output, audit rows and vendor error messages.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import quote, urlsplit

from hub.config.model import REDACTED, Secret, Settings
from hub.errors import Problem
from hub.yamlsrc import Located, PathKey, dotted

SECRET_KEYS = frozenset({
    "token", "secret", "password", "passwd", "api_key", "apikey", "client_secret",
    "refresh_token", "access_token", "credentials",
})
SECRET_SUFFIXES = ("_token", "_secret", "_password", "_key")
# Settings that name a column or field rather than hold a secret, despite the `_key` suffix.
NOT_SECRET_KEYS = frozenset({
    "primary_key", "sort_key", "partition_key", "foreign_key", "id_key", "match_key",
    "unique_key",
})

_FULL_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_ANY_REF = re.compile(r"\$\{[^}]*\}?")
_NOT_NAME = re.compile(r"[^A-Za-z0-9]+")


def is_secret_key(key: str) -> bool:
    """Whether a setting named `key` must hold a secret (token, password, *_key, ...)."""
    k = key.strip().lower().replace("-", "_")
    if k in NOT_SECRET_KEYS:
        return False
    return k in SECRET_KEYS or k.endswith(SECRET_SUFFIXES)


def ref_name(value: Any) -> str | None:
    """The NAME of a whole-value `${NAME}` reference, else None."""
    if isinstance(value, str):
        m = _FULL_REF.fullmatch(value.strip())
        if m:
            return m.group(1)
    return None


def in_connection(path: PathKey) -> bool:
    """Whether `path` points inside a system's connection block."""
    return len(path) >= 3 and path[0] == "systems" and path[2] == "connection"


def _suggested_name(path: PathKey) -> str:
    """An environment variable name an ops person could use: HUBSPOT_TOKEN."""
    parts = [str(path[1])] + [str(p) for p in path[3:] if isinstance(p, str)]
    if len(parts) > 2:  # system + the innermost key reads best: SALES_MAILBOX_PASSWORD
        parts = [parts[0], parts[-1]]
    return _NOT_NAME.sub("_", "_".join(parts)).strip("_").upper() or "SECRET"


def check_secrets(doc: Located) -> list[Problem]:
    """Every misuse of secrets in the document: literals, embedded or misplaced references."""
    problems: list[Problem] = []
    _walk(doc, doc.data, (), False, problems)
    return problems


def _walk(doc: Located, value: Any, path: PathKey, secretish: bool,
          problems: list[Problem]) -> None:
    if isinstance(value, dict):
        for key, child in value.items():
            child_path = path + (key,)
            # Secret-ness is inherited: everything under `credentials:` is secret.
            child_secret = secretish or (in_connection(child_path) and len(child_path) > 3
                                         and is_secret_key(key))
            _walk(doc, child, child_path, child_secret, problems)
        return
    if isinstance(value, list):
        for i, child in enumerate(value):
            _walk(doc, child, path + (i,), secretish, problems)
        return
    problem = _leaf_problem(value, path, secretish)
    if problem:
        problems.append(doc.problem(path, problem))


def _leaf_problem(value: Any, path: PathKey, secretish: bool) -> str | None:
    if isinstance(value, str) and "${" in value:
        if not in_connection(path):
            return ("environment references like ${NAME} are only allowed inside a system's "
                    "connection block")
        if ref_name(value) is not None:
            return None
        if _ANY_REF.fullmatch(value.strip()):
            return ("not a valid environment reference: the name inside ${...} may use "
                    "only letters, digits and _ and must not start with a digit")
        return ("${...} must be the whole value, not part of a longer text: put the complete "
                f"value in an environment variable and write ${{{_suggested_name(path)}}}")
    if secretish and value is not None:
        return (f"secrets must be environment references like ${{{_suggested_name(path)}}}, "
                "not literal values")
    if isinstance(value, str) and "://" in value and _url_password(value):
        return ("a password must not be written in the config file: take it out of the URL "
                "and provide it through the environment"
                + (" (PGPASSWORD for PostgreSQL)" if path == ("store",) else ""))
    return None


def _url_password(value: str) -> bool:
    try:
        return bool(urlsplit(value.strip()).password)
    except ValueError:
        return False


def with_secrets(value: Any, path: PathKey, doc: Located) -> Any:
    """A copy of a connection's settings with each ${NAME} turned into a Secret."""
    if isinstance(value, dict):
        return {k: with_secrets(v, path + (k,), doc) for k, v in value.items()}
    if isinstance(value, list):
        return [with_secrets(v, path + (i,), doc) for i, v in enumerate(value)]
    name = ref_name(value)
    if name is not None:
        return Secret(ref=name, where=f"{doc.file}:{doc.line_of(path)}")
    return value


def secrets_in(settings: Settings,
               systems: Iterable[str] | None = None) -> Iterator[tuple[str, Secret]]:
    """(dotted key, Secret) for every reference in the connections of `systems` (default all)."""
    wanted = set(settings.systems) if systems is None else set(systems)
    for name, system in settings.systems.items():
        if name in wanted and system.connection is not None:
            yield from _secrets_under(system.connection.settings,
                                      ("systems", name, "connection"))


def _secrets_under(value: Any, path: PathKey) -> Iterator[tuple[str, Secret]]:
    if isinstance(value, Secret):
        yield dotted(path), value
    elif isinstance(value, Mapping):
        for k, v in value.items():
            yield from _secrets_under(v, path + (str(k),))
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            yield from _secrets_under(v, path + (i,))


def missing_secrets(settings: Settings, systems: Iterable[str] | None = None) -> list[Problem]:
    """A Problem for each ${NAME} whose environment variable is unset or empty."""
    problems: list[Problem] = []
    for key, secret in secrets_in(settings, systems):
        value = os.environ.get(secret.ref)
        if value:
            continue
        state = "is not set" if value is None else "is empty"
        file, _, line = secret.where.rpartition(":")
        problems.append(Problem(
            file or str(settings.file), int(line) if line.isdigit() else None, key,
            f"environment variable {secret.ref} {state} (the config refers to it as "
            f"${{{secret.ref}}}); set it before starting the hub"))
    return problems


def redact(obj: Any) -> Any:
    """A copy with Secrets and values under secret-looking keys replaced by "***".

    Mappings and dataclasses come back as dicts, lists and tuples keep their type, other
    values are returned as they are; meant for --json output and audit rows.
    """
    if isinstance(obj, Secret):
        return REDACTED
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _redact_item(f.name, getattr(obj, f.name))
                for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {k: _redact_item(k, v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [redact(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(redact(v) for v in obj)
    return obj


def _redact_item(key: Any, value: Any) -> Any:
    if value is not None and isinstance(key, str) and is_secret_key(key):
        return REDACTED
    return redact(value)


def redact_text(text: str, settings: Settings) -> str:
    """`text` with every current secret value (and its URL-encoded form) replaced by "***"."""
    values: set[str] = set()
    for _, secret in secrets_in(settings):
        value = os.environ.get(secret.ref)
        if value:
            values.add(value)
            values.add(quote(value, safe=""))
    # Longest first, so a secret containing another is hidden whole.
    for value in sorted(values, key=len, reverse=True):
        text = text.replace(value, REDACTED)
    return text
