"""Drop two indexes no query uses, each a B-tree every ingested record had to update.

records.updated_at and links.canonical_id alone: links are always looked up with their
system and entity (uq_links_canonical covers that).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 11:30:00
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("records") as batch:
        batch.drop_index("ix_records_updated_at")
    with op.batch_alter_table("links") as batch:
        batch.drop_index("ix_links_canonical")


def downgrade() -> None:
    with op.batch_alter_table("links") as batch:
        batch.create_index("ix_links_canonical", ["canonical_id"])
    with op.batch_alter_table("records") as batch:
        batch.create_index("ix_records_updated_at", ["updated_at"])
