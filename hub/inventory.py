"""The inventory of systems: owner, connection and last successful sync of each."""

from __future__ import annotations

from typing import Any

from hub.config.model import Settings
from hub.store import Store


def inventory(settings: Settings, store: Store) -> list[dict[str, Any]]:
    """One row per declared system, silos included, in config order."""
    with store.connect() as conn:
        last = store.last_success(conn)
    rows = []
    for name, system in settings.systems.items():
        flows = [f for f in settings.flows.values() if name in f.systems]
        times = [last[f.name] for f in flows if f.name in last]
        rows.append({"system": name, "category": system.category, "owner": system.owner,
                     "connector": system.connection.connector if system.connection else None,
                     "connected": system.connection is not None,
                     "flows": [f.name for f in flows],
                     "last_sync": max(times) if times else None})
    return rows
