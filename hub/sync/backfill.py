"""Owe a flow's targets the records its sources already hold.

Ingest owes a delivery only for what changed: a record that another flow already brought
in from the same source reads back unchanged, so a flow added later (or a target added to
a flow) would never receive it. Before a flow's first run (and every run of a source that
keeps no cursor) and on every full refresh, the records that a source of the flow holds but a target has no link to (and is not already
owed) are put in the outbox, through the flow's filter like any other delivery.
"""

from __future__ import annotations

from sqlalchemy import Connection

from hub.store import Store
from hub.sync.context import FlowContext

_CHUNK = 1000  # ids per outbox insert: bounded memory on a large store


def needs_backfill(store: Store, conn: Connection, ctx: FlowContext, full: bool) -> bool:
    """A full refresh, or a flow that has never committed a page from any source."""
    if full:
        return True
    return all(store.get_cursor(conn, ctx.flow.name, s) is None for s in ctx.flow.sources)


def owe_missing(store: Store, conn: Connection, ctx: FlowContext, run_id: int) -> int:
    """Owe each target of the flow the records it lacks; returns how many were added."""
    flow, keep = ctx.flow, ctx.filter
    added = 0
    for source, targets in ctx.legs:
        for target in targets:
            # Collected before writing: the outbox is part of the query being read.
            ids = [cid for cid, data in store.records_missing_in(conn, flow.entity, [source],
                                                                 target)
                   if keep is None or keep(data)]
            for at in range(0, len(ids), _CHUNK):
                store.outbox_add(conn, flow.name, target, ids[at:at + _CHUNK], run_id)
            added += len(ids)
    return added
