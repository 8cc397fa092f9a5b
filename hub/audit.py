"""The audit trail: an observer that appends every change to the store's hash chain.

It runs inside the page's transaction (`page_committing`), so an audit event exists exactly
when the change it describes was committed. Values of fields a mapping marks `sensitive`,
and of fields whose names look like secrets, are replaced by "***" before they are written:
the audit log never holds a secret.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection

from hub.canonical.diffs import encode_diff
from hub.canonical.redact import redact_diff
from hub.store import AuditInput, Store
from hub.sync.hooks import Change, Observer, RunInfo


class AuditObserver(Observer):
    """Writes one hash-chained audit event per change, in the change's own transaction."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def page_committing(self, conn: Connection, run: RunInfo,
                        changes: Sequence[Change]) -> None:
        """Append the page's changes to the chain (skipped in a dry run)."""
        if run.dry_run or not changes:
            return
        run_id, flow = run.run_id, run.flow
        events = [AuditInput(c.entity, c.action, c.canonical_id, c.system, c.external_id,
                             c.audit if c.audit is not None else _diff_text(c), run_id, flow)
                  for c in changes]
        self.store.append_audit(conn, events)


def _diff_text(change: Change) -> str:
    """The change's diff redacted, in the form the trail stores (hub.canonical.diffs)."""
    canonical = not change.action.startswith("write.")  # writes hold native fields
    return encode_diff(redact_diff(change.diff, change.sensitive, canonical=canonical),
                       created=change.action == "create")
