"""Process-wide tuning for long syncs, applied by the commands that run them.

CPython's cyclic garbage collector rescans every tracked object on its older generations;
a hub process holds hundreds of thousands of long-lived objects (modules, schemas, compiled
mappings) that never become garbage. Freezing them once after start-up and collecting the
young generation less often took ingest from about 5,700 to 7,200 records/s (bench/). The
pipeline creates few reference cycles, so memory stays flat (peak RSS measured the same).
"""

from __future__ import annotations

import gc

_done = False


def tune_gc() -> None:
    """Freeze what exists now and collect less often; idempotent."""
    global _done
    if _done:
        return
    _done = True
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 20, 20)
