"""Alembic environment: runs migrations on the connection hub.store hands over."""

from __future__ import annotations

from alembic import context

from hub.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only through hub.store.migrate
    raise RuntimeError("run migrations through `hub migrate`, which supplies the connection")

context.configure(connection=connection, target_metadata=metadata,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
