"""Indexes the dashboard's pages need on a store with a million audit events.

Measured by bench/dashboard.py (1,000,000 audit events, 100,000 records):

- runs (flow, id): a flow's newest runs (`list_runs`) were read in full and sorted on
  SQLite (ix_runs_flow_started is ordered by started_at, the listing by id).
- records (entity, stub, deleted) in place of records (entity): the live-record count per
  entity on every overview page becomes an index-only scan instead of a table scan.
- audit_events (at) and (flow, at): the audit search is ordered newest first by (at, seq),
  so a time range, a flow, or nothing at all reads an index backwards and stops after a
  page; (system, at) already serves a system.
- Not audit_events (external_id): it would cost every audited change an index entry on
  the ingest path; a search by a system's id finds the record's canonical ids through
  the links table instead and reads the trail by ix_audit_canonical.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 14:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.create_index("ix_runs_flow_id", ["flow", "id"])
    with op.batch_alter_table("records") as batch:
        batch.drop_index("ix_records_entity")
        batch.create_index("ix_records_entity_live", ["entity", "stub", "deleted"])
    with op.batch_alter_table("audit_events") as batch:
        batch.create_index("ix_audit_at", ["at"])
        batch.create_index("ix_audit_flow_at", ["flow", "at"])


def downgrade() -> None:
    with op.batch_alter_table("audit_events") as batch:
        batch.drop_index("ix_audit_flow_at")
        batch.drop_index("ix_audit_at")
    with op.batch_alter_table("records") as batch:
        batch.drop_index("ix_records_entity_live")
        batch.create_index("ix_records_entity", ["entity"])
    with op.batch_alter_table("runs") as batch:
        batch.drop_index("ix_runs_flow_id")
