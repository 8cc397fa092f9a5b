"""Leases with fencing tokens, accepted webhook events, one run per schedule slot.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 10:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "leases",
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("holder", sa.String(length=128), nullable=False),
        sa.Column("token", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "webhook_events",
        sa.Column("system", sa.String(length=64), nullable=False),
        sa.Column("event_id", sa.String(length=255), nullable=False),
        sa.Column("received_at", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("system", "event_id"),
    )
    op.create_index("ix_webhook_events_received_at", "webhook_events", ["received_at"])
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("fire_time", sa.String(length=32), nullable=True))
        batch.create_unique_constraint("uq_runs_fire_time", ["flow", "fire_time"])


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_constraint("uq_runs_fire_time", type_="unique")
        batch.drop_column("fire_time")
    op.drop_index("ix_webhook_events_received_at", table_name="webhook_events")
    op.drop_table("webhook_events")
    op.drop_table("leases")
