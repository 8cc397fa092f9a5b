"""What a scrape returns: the pipeline's counters (from every process sharing the
multiprocess folder, or from this process alone) and the store- and broker-derived gauges."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from hub.config.model import Settings
from hub.metrics import multiproc
from hub.metrics.collector import StoreCollector
from hub.metrics.series import series
from hub.store import Store


class _ThisProcess(Collector):
    """The counters of this process only (multiprocess mode off)."""

    def collect(self) -> Iterator[Any]:
        s = series()
        for metric in (s.read, s.written, s.unchanged, s.skipped, s.dead_lettered, s.runs,
                       s.run_duration, s.retries, s.quota):
            yield from metric.collect()


def pipeline_registry() -> CollectorRegistry:
    """A registry of the counted series only (what a worker's own exporter serves)."""
    registry = CollectorRegistry(auto_describe=False)
    folder = multiproc.current()
    registry.register(multiproc.collector(folder) if folder is not None else _ThisProcess())
    return registry


def scrape_registry(settings: Settings, store: Store) -> CollectorRegistry:
    """The registry `hub serve`'s /metrics renders: counted and store/broker series."""
    registry = pipeline_registry()
    registry.register(StoreCollector(settings, store))
    return registry


def render(registry: CollectorRegistry, accept: str | None) -> tuple[bytes, str]:
    """The exposition text (or OpenMetrics, if the scraper asks) and its content type."""
    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry), content_type
