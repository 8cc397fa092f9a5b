"""The migrations build exactly the schema the models declare, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from hub.store import Store
from hub.store.db import current_revision, head_revision
from hub.store.tables import metadata


def test_migrations_match_the_models(store_url: str) -> None:
    store = Store(store_url)
    assert current_revision(store.engine) == head_revision()
    with store.engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diffs == [], f"models and migrations disagree: {diffs}"
    store.close()


def test_migrate_is_idempotent(store_url: str) -> None:
    Store(store_url).close()
    before, after = Store.migrate(store_url)
    assert before == after == head_revision()
