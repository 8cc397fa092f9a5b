"""A process that opens a store when told to, for tests/integration/test_store_open.py.

    python -m tests.integration.store_open_child URL

Prints "ready" once imported, opens the store at URL when a line arrives on stdin, and
prints "opened" or "failed: <why>".
"""

from __future__ import annotations

import sys

from hub.store import Store


def main(url: str) -> int:
    """Wait for the word, open, report."""
    print("ready", flush=True)
    sys.stdin.readline()
    try:
        Store(url).close()
    except Exception as exc:  # noqa: BLE001 - reported to the test, which fails on it
        print(f"failed: {exc}", flush=True)
        return 1
    print("opened", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
