"""Leases: a time-limited right to do one thing alone, with a fencing token.

A flow's run, a target's deliveries and the scheduler each hold one. Every grant to a new
holder increments the token; the holder renews its lease in each transaction that commits
(Fence.check), so a holder that stalled past its lease and was taken over finds its token
stale and its commit refused (Kleppmann's fencing). A holder on this machine whose process is
gone is replaced at once instead of after the lease runs out.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading

from sqlalchemy import Connection

from hub.errors import HubError, LeaseLost
from hub.store import Store

LEASE_TTL = float(os.environ.get("HUB_LEASE_TTL", "60"))  # seconds; renewed each commit


def holder_id() -> str:
    """host:pid:thread of the caller: who holds a lease."""
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def holder_dead(holder: str) -> bool:
    """Whether a lease holder's process is known to be gone (same host, no such pid)."""
    host, _, rest = holder.partition(":")
    return _owner_dead(f"{host}:{rest.partition(':')[0]}")


class Fence:
    """A held lease and its fencing token, checked in every transaction that commits."""

    def __init__(self, store: Store, name: str, token: int) -> None:
        self.store = store
        self.name = name
        self.token = token

    def check(self, conn: Connection) -> None:
        """Renew the lease in `conn`'s transaction; LeaseLost if another took it over."""
        if not self.store.renew_lease(conn, self.name, self.token, LEASE_TTL):
            raise LeaseLost(f"{self.name}: another process took this work over (fencing "
                            f"token {self.token} is stale); stopping without writing")

    def release(self) -> None:
        """Give the lease up."""
        with contextlib.suppress(HubError), self.store.begin() as conn:
            self.store.release_lease(conn, self.name, self.token)



def process_owner() -> str:
    """host:pid of this process, recorded on the runs it executes."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _owner_dead(owner: str) -> bool:
    """Whether the process that owned a run is known to be gone (same host, no such pid)."""
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
