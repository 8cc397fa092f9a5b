"""Series computed when Prometheus scrapes: from the store (backlog, last success, flow and
system states, judged by hub.health like the dashboard) and from the broker (queue depth).

A few indexed queries per scrape, each flow's newest runs read along ix_runs_flow_started.
A store or broker that does not answer is reported as liaison_store_up / liaison_broker_up
0 and its series are left out: a scrape never fails because of it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from hub.config.model import Settings
from hub.errors import HubError
from hub.health import DEAD_WINDOW
from hub.metrics import names as n
from hub.metrics.states import (
    FlowRuns,
    flow_state,
    parse_time,
    system_last_sync,
    system_states,
)
from hub.store import Store

log = logging.getLogger("hub.metrics")
REDIS_NAMESPACE = "dramatiq"  # dramatiq's RedisBroker default, which hub.jobs.broker keeps
BROKER_TIMEOUT = 2.0  # seconds: a scrape must not hang on a broker that went away


def _gauge(spec: n.Spec) -> GaugeMetricFamily:
    return GaugeMetricFamily(spec.name, spec.help, labels=spec.labels)


def _direction(stage: str) -> str:
    return "out" if stage == "write" else "in"


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _iso(when: datetime) -> str:
    """The store's timestamp form, to compare with its columns."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class StoreCollector(Collector):
    """Store- and broker-derived gauges for one hub."""

    def __init__(self, settings: Settings, store: Store,
                 clock: Callable[[], datetime] = _utcnow) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock  # "now" for staleness and new dead letters (tests pin it)
        self._redis: Any = None

    def connector_of(self, system: str) -> str:
        """The connector a system's connection uses ("" for a silo or an unknown name)."""
        found = self.settings.systems.get(system)
        return found.connection.connector if found and found.connection else ""

    def collect(self) -> Iterator[Any]:
        """Every store and broker series (what Prometheus calls at each scrape)."""
        yield from self._store_series()
        yield from self._broker_series()

    # -- store -----------------------------------------------------------------------------

    def read_runs(self, now: datetime
                  ) -> tuple[dict[str, FlowRuns], list[tuple[str, str, str, str, int]]]:
        """Each flow's newest runs and new dead letters, and the open dead letters."""
        runs: dict[str, FlowRuns] = {}
        with self.store.connect() as conn:
            # The same queries hub.insights.facts.gather reads for the dashboard.
            summary = self.store.dead_letter_summary(conn, _iso(now - DEAD_WINDOW))
            new: dict[str, int] = {}
            for row in summary:
                new[str(row.flow)] = new.get(str(row.flow), 0) + int(row.new or 0)
            for flow in self.settings.flows:
                status, finished, through = self.store.flow_run_times(conn, flow)
                runs[flow] = FlowRuns(status, parse_time(finished), parse_time(through),
                                      new.get(flow, 0))
        backlog = [(str(r.flow), str(r.system), str(r.entity), str(r.stage), int(r.total))
                   for r in summary]
        return runs, backlog

    def _store_series(self) -> Iterator[Any]:
        up = GaugeMetricFamily(n.STORE_UP.name, n.STORE_UP.help)
        now = self.clock()
        try:
            runs, backlog = self.read_runs(now)
        except HubError as exc:
            log.warning("metrics: the store did not answer: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        last, failing, stale = _gauge(n.LAST_SUCCESS), _gauge(n.FLOW_FAILING), \
            _gauge(n.FLOW_STALE)
        for name, flow in self.settings.flows.items():
            labels = [name, flow.entity]
            got = runs.get(name)
            through = got.last_through if got else None
            last.add_metric(labels, through.timestamp() if through else 0.0)
            state = flow_state(flow, got, now)
            failing.add_metric(labels, 1.0 if state == "failing" else 0.0)
            stale.add_metric(labels, 1.0 if state == "stale" else 0.0)
        yield from (last, failing, stale)
        dead = _gauge(n.DEAD_LETTERS_OPEN)
        for flow_name, system, entity, stage, count in backlog:
            dead.add_metric([system, self.connector_of(system), flow_name, entity,
                             _direction(stage)], count)
        yield dead
        yield from self._system_series(runs, now)

    def _system_series(self, runs: dict[str, FlowRuns], now: datetime) -> Iterator[Any]:
        states = system_states(self.settings, runs, now)
        totals = _gauge(n.SYSTEMS)
        for state in n.STATES:
            totals.add_metric([state], sum(1 for s in states.values() if s == state))
        one_hot = _gauge(n.SYSTEM_STATE)
        for system, state in states.items():
            for candidate in n.STATES:
                one_hot.add_metric([system, self.connector_of(system), candidate],
                                   1.0 if candidate == state else 0.0)
        synced = _gauge(n.SYSTEM_LAST_SYNC)
        for system, when in system_last_sync(self.settings, runs).items():
            if system in self.settings.systems:
                synced.add_metric([system, self.connector_of(system)], when.timestamp())
        yield from (totals, one_hot, synced)

    # -- broker ----------------------------------------------------------------------------

    def queue_lengths(self) -> dict[str, tuple[int, int]]:
        """(waiting, delayed) jobs per queue; zeros for the in-process broker."""
        url = self.settings.broker_url
        if urlsplit(url).scheme not in ("redis", "rediss"):
            return {q: (0, 0) for q in n.QUEUES}
        import redis

        if self._redis is None:
            self._redis = redis.Redis.from_url(url, socket_timeout=BROKER_TIMEOUT,
                                               socket_connect_timeout=BROKER_TIMEOUT)
        out = {}
        try:
            pipe = self._redis.pipeline(transaction=False)
            for q in n.QUEUES:
                # dramatiq keeps a queue's waiting message ids in a list and the delayed
                # ones (".DQ") in a hash of id -> message.
                pipe.llen(f"{REDIS_NAMESPACE}:{q}")
                pipe.hlen(f"{REDIS_NAMESPACE}:{q}.DQ.msgs")
            answers = pipe.execute()
        except redis.RedisError as exc:
            raise ConnectionError(str(exc)) from None
        for i, q in enumerate(n.QUEUES):
            out[q] = (int(answers[2 * i]), int(answers[2 * i + 1]))
        return out

    def _broker_series(self) -> Iterator[Any]:
        up = GaugeMetricFamily(n.BROKER_UP.name, n.BROKER_UP.help)
        try:
            lengths = self.queue_lengths()
        except ConnectionError as exc:
            log.warning("metrics: the broker did not answer: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        depth, delayed = _gauge(n.QUEUE_DEPTH), _gauge(n.QUEUE_DELAYED)
        for queue, (waiting, later) in lengths.items():
            depth.add_metric([queue], waiting)
            delayed.add_metric([queue], later)
        yield from (depth, delayed)

    def close(self) -> None:
        """Release the broker connection."""
        if self._redis is not None:
            self._redis.close()
            self._redis = None
