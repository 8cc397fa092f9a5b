"""Run flows in a process of its own, for tests of reading ahead (hub.sync.readahead).

The engine forks its reader only when no other thread could hold a lock the child needs;
a test process keeps threads of earlier tests (servers, browsers), so the runs are made
here, in a fresh interpreter. Prints one JSON line: each run's report, how many reads
forked, and whether a reader was killed.

    python -m tests.integration.readahead_runner CONFIG '[["contacts", {"full": false}]]'
        [--kill-reader]
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
from typing import Any

import orjson

from hub.audit import AuditObserver
from hub.config import load
from hub.store import Store
from hub.sync import engine as engine_module
from hub.sync import readahead


def main(argv: list[str]) -> int:
    """Run the flows named in argv[1] against the config argv[0]; print the outcome."""
    config, plan = argv[0], orjson.loads(argv[1])
    kill = "--kill-reader" in argv
    forks: list[int] = []
    killed: list[int] = []

    class Counted(readahead.ReadAhead):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            forks.append(1)

    engine_module.ReadAhead = Counted  # type: ignore[misc]

    def kill_the_reader(_counts: Any) -> None:
        for child in multiprocessing.active_children():
            if kill and child.name == "liaison-read-ahead" and child.pid and not killed:
                os.kill(child.pid, signal.SIGKILL)
                killed.append(child.pid)

    settings = load(config)
    store = Store(settings.store_url)
    engine = engine_module.SyncEngine(settings, store, observers=[AuditObserver(store)])
    reports = []
    for flow, options in plan:
        r = engine.run(flow, progress=kill_the_reader, **options)
        c = r.counts
        reports.append({"status": r.status, "error": r.error, "retry_after": r.retry_after,
                        "balanced": c.balanced(),
                        **{k: getattr(c, k) for k in ("read", "created", "updated",
                                                      "unchanged", "skipped",
                                                      "dead_lettered", "written")}})
    store.close()
    left = [c.name for c in multiprocessing.active_children()]
    print(orjson.dumps({"reports": reports, "forks": len(forks), "killed": len(killed),
                        "children_left": left}).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
