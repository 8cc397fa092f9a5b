"""`hub run`: the whole hub in one process (the embedded default).

Worker threads take jobs from the in-process broker while the scheduler fires schedules
and sweeps, exactly as `hub worker` and `hub scheduler` do across machines.
"""

from __future__ import annotations

import threading

import dramatiq
from dramatiq import Worker

from hub.config.model import Settings
from hub.jobs.actors import Jobs, send_sync
from hub.jobs.broker import make_broker
from hub.jobs.scheduler import Scheduler
from hub.store import Store
from hub.sync.lease import holder_id


class Embedded:
    """Broker, worker threads and scheduler of one process; start(), then stop()."""

    def __init__(self, settings: Settings, store: Store, *, threads: int = 2) -> None:
        self.broker = make_broker(settings.broker_url)
        dramatiq.set_broker(self.broker)
        self.jobs = Jobs(settings, store, self.broker)
        self.worker = Worker(self.broker, worker_threads=threads, worker_timeout=100)
        self.scheduler = Scheduler(settings, store, send_sync(self.jobs), holder_id(),
                                   sweep=self.jobs.send_sweep)
        self.stop_event = threading.Event()
        self._thread = threading.Thread(target=self.scheduler.serve, args=(self.stop_event,),
                                        name="hub-scheduler", daemon=True)

    def start(self) -> None:
        """Start the worker threads and the scheduler."""
        self.worker.start()
        self._thread.start()

    def stop(self) -> None:
        """Stop the scheduler, let in-flight jobs finish, stop the workers."""
        self.stop_event.set()
        self._thread.join(timeout=10)
        self.worker.stop()
