"""Run one HubSpot sandbox in its own process for the benchmarks.

The sandbox holds every record pre-serialised (hundreds of MB at 1M records): keeping it in
a separate process means its memory and CPU never count towards the measured pipeline's
peak RSS. Prints one JSON line {"base_url", "token", "count", "seconds"} when it listens,
then serves until its stdin closes (the parent exits or closes the pipe).

    python bench/sandbox_proc.py --count 100000 --seed 1
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from connectors.hubspot.sandbox import HubSpotSandbox


def main() -> int:
    """Start the sandbox, announce it on stdout, serve until stdin reaches EOF."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--token", default="bench-token")
    args = parser.parse_args()
    started = time.perf_counter()
    sandbox = HubSpotSandbox(seed=args.seed, count=args.count, token=args.token)
    sandbox.start()
    print(orjson.dumps({"base_url": sandbox.base_url, "token": sandbox.token,
                        "count": args.count,
                        "seconds": round(time.perf_counter() - started, 2)}).decode(),
          flush=True)
    try:
        sys.stdin.read()  # blocks until the parent closes the pipe
    finally:
        sandbox.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
