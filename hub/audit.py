"""The audit trail: an observer that appends every change to the store's hash chain.

It runs inside the page's transaction (`page_committing`), so an audit event exists exactly
when the change it describes was committed. Values of fields a mapping marks `sensitive`,
and of fields whose names look like secrets, are replaced by "***" before they are written:
the audit log never holds a secret.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from sqlalchemy import Connection

from hub.config.model import REDACTED
from hub.store import AuditInput, Store
from hub.sync.hooks import Change, Observer, RunInfo

SECRET_NAME = re.compile(
    r"(^|_)(password|passwd|secret|token|api_?key|credentials?|client_secret)($|_)", re.IGNORECASE)
_SECRET_WORDS = re.compile(r"passw|secret|token|api_?key|credential", re.IGNORECASE)
_SCALARS = frozenset({str, int, float, bool})


@functools.lru_cache(maxsize=4096)
def _secret_name(name: str) -> bool:
    # Field names repeat on every record: match each distinct name against the regex once.
    return SECRET_NAME.search(name) is not None


def _redact_value(name: str, value: Any, sensitive: frozenset[str]) -> Any:
    if name in sensitive or _secret_name(name):
        return REDACTED if value is not None else None
    if value is None or type(value) in _SCALARS:  # the common case, without ABC checks
        return value
    if isinstance(value, Mapping):
        return {k: _redact_value(str(k), v, sensitive) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact_value(name, v, frozenset()) if isinstance(v, Mapping) else v
                for v in value]
    return value


def redact_diff(diff: Mapping[str, Any], sensitive: frozenset[str]) -> dict[str, Any]:
    """A field diff with sensitive and secret-looking values replaced by ***."""
    if not sensitive:
        # Fast path for the usual record: no field is marked sensitive and no secret-like
        # word occurs anywhere in it (a superset of what SECRET_NAME can match in a name),
        # so walking every nested key would change nothing.
        try:
            text = orjson.dumps(diff).decode()
        except TypeError:
            text = "secret"  # not plain JSON: take the careful walk below
        if not _SECRET_WORDS.search(text):
            return dict(diff)
    out: dict[str, Any] = {}
    for name, change in diff.items():
        top = name.split(".", 1)[0].split("[", 1)[0]
        if name in sensitive or top in sensitive or _secret_name(name):
            out[name] = [REDACTED if v is not None else None for v in change]
        else:
            out[name] = [_redact_value(name, v, sensitive) for v in change]
    return out


class AuditObserver(Observer):
    """Writes one hash-chained audit event per change, in the change's own transaction."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def page_committing(self, conn: Connection, run: RunInfo,
                        changes: Sequence[Change]) -> None:
        """Append the page's changes to the chain (skipped in a dry run)."""
        if run.dry_run or not changes:
            return
        events = [AuditInput(entity=c.entity, action=c.action, canonical_id=c.canonical_id,
                             system=c.system, external_id=c.external_id,
                             diff=redact_diff(c.diff, c.sensitive), run_id=run.run_id,
                             flow=run.flow) for c in changes]
        self.store.append_audit(conn, events)
