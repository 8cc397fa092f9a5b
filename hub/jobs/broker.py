"""Choosing the broker from the config's `broker` URL; nothing above this module knows which.

    inprocess://            dramatiq's StubBroker: jobs run on worker threads of this process
                            (`hub run`); the embedded default
    redis://host:port/db    dramatiq's RedisBroker: `hub worker` processes on any machine share
                            the jobs

A record or a vendor call that fails transiently is put off by the hub itself (the outbox
keeps a delivery due later, an open run resumes from its cursor), scheduled from SQL state,
never by sleeping in a worker thread. Dramatiq's Retries middleware only covers a job that
crashed outright (the database went away mid-commit): it is retried with backoff.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

import dramatiq
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import (
    AgeLimit,
    Callbacks,
    Pipelines,
    Retries,
    ShutdownNotifications,
    TimeLimit,
)

from hub.errors import ConfigError, Problem

# One step of a run reads at most this many records before handing the run on, so a large
# run is shared by the workers and a killed worker loses at most one step's work.
STEP_RECORDS = int(os.environ.get("HUB_STEP_RECORDS", "5000"))
JOB_TIME_LIMIT_MS = 30 * 60 * 1000


def _middleware() -> list[dramatiq.Middleware]:
    return [AgeLimit(), TimeLimit(time_limit=JOB_TIME_LIMIT_MS), ShutdownNotifications(),
            Callbacks(), Pipelines(),
            Retries(max_retries=20, min_backoff=1000, max_backoff=60_000)]


def make_broker(url: str) -> dramatiq.Broker:
    """The broker for `url`; ConfigError for a scheme Liaison does not know."""
    scheme = urlsplit(url).scheme
    if scheme == "inprocess":
        return StubBroker(middleware=_middleware())
    if scheme in ("redis", "rediss"):
        from dramatiq.brokers.redis import RedisBroker

        # Recovery of a killed worker's messages: dramatiq re-queues them once the worker's
        # heartbeat is older than heartbeat_timeout; the sweeper resumes the run sooner.
        heartbeat = int(os.environ.get("HUB_REDIS_HEARTBEAT_MS", "60000"))
        maintenance = int(os.environ.get("HUB_REDIS_MAINTENANCE_CHANCE", "1000"))
        return RedisBroker(  # type: ignore[no-untyped-call]
            url=url, middleware=_middleware(), heartbeat_timeout=heartbeat,
            maintenance_chance=maintenance)
    raise ConfigError(Problem("", None, "broker", f"unknown broker {url!r}: use inprocess:// "
                                                  "or redis://host:6379/0"))


def is_shared(url: str) -> bool:
    """Whether other processes can take jobs from this broker."""
    return urlsplit(url).scheme in ("redis", "rediss")
