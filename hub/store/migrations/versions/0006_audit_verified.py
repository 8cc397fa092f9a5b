"""The audit chain's verified checkpoint: how far the chain was last found intact.

One row (id 1): the last event of the range last found intact (seq, hash, verified_at) and
the end and time of the last full check (full_seq, full_at). The dashboard's check reads
only the events after `seq`, starting from `hash` (Store.verify_audit(since_checkpoint=True)),
instead of the whole trail: 21-29 s at 1,000,000 events (bench/dashboard.py). A separate
table, not columns of audit_head: that row is locked by every append, and a check must not
wait for (or hold up) the ingest path.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 15:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_verified",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("verified_at", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("full_seq", sa.Integer(), nullable=False),
        sa.Column("full_at", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("audit_verified")
