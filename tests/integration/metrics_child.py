"""A worker-like process for the multiprocess metrics tests.

    python -m tests.integration.metrics_child CONFIG FLOW

Runs FLOW once with the metrics observer (in multiprocess mode when
$PROMETHEUS_MULTIPROC_DIR is set), prints the run's counters as JSON, then stays alive until
its stdin is closed, and exits normally (a SIGKILL instead leaves its files behind).
"""

from __future__ import annotations

import json
import sys

from hub.audit import AuditObserver
from hub.config import load
from hub.metrics.observer import MetricsObserver
from hub.store import Store
from hub.sync.engine import SyncEngine


def main(config: str, flow: str) -> int:
    """Run the flow, report, wait for stdin to close."""
    settings = load(config)
    store = Store(settings.store_url)
    engine = SyncEngine(settings, store, observers=[AuditObserver(store),
                                                     MetricsObserver(settings, store)])
    report = engine.run(flow)
    print(json.dumps({"status": report.status, **report.counts.as_row()}), flush=True)
    sys.stdin.read()
    store.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1], sys.argv[2]))
