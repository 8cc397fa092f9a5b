"""The metrics endpoint of a `hub worker` host (`hub worker --metrics-port`).

dramatiq runs `serve` in a process of its own beside the worker processes (its
--fork-function); it serves what every worker process of this host counted, from the
multiprocess folder, and folds the files of worker processes that died every minute. Use it
where the workers do not share a folder with `hub serve` (separate machines or pods):
Prometheus then scrapes each worker host as well.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

ADDRESS_ENV = "HUB_WORKER_METRICS_ADDRESS"  # host:port, set by `hub worker --metrics-port`
SWEEP_SECONDS = 60.0


def serve() -> None:
    """Serve /metrics on $HUB_WORKER_METRICS_ADDRESS until the process is stopped."""
    from prometheus_client import start_http_server

    from hub.metrics import multiproc
    from hub.metrics.exposition import pipeline_registry

    host, _, port = os.environ[ADDRESS_ENV].rpartition(":")
    folder = multiproc.current()
    if folder is None:
        raise SystemExit(f"{multiproc.ENV} is not set: `hub worker` sets it")
    start_http_server(int(port), addr=host or "0.0.0.0", registry=pipeline_registry())
    while True:
        time.sleep(SWEEP_SECONDS)
        multiproc.sweep(Path(folder))
