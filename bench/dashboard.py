"""The dashboard's speed on a big store: every page, every API GET and /metrics, timed.

    python bench/dashboard.py [--audit 1000000] [--records 100000] [--requests 20]
                              [--only sqlite,postgresql] [--pg-url URL] [--keep DIR]

For each database it fills a store (bench/dashboard_seed.py: a month of history, 1,000,000
audit events and 100,000 canonical records by default), starts `hub serve` on it as its own
process (so the client does not share its interpreter), signs in like a browser (session
cookie) and a script (bearer token), then requests every page and API endpoint REQUESTS times
after two warm-up requests, and prints the median and 95th percentile per endpoint. Targets:
every page under 300 ms median, /metrics under 100 ms. Figures only: nothing fails.

PostgreSQL: --pg-url (or $LIAISON_BENCH_PG), default database `liaison_bench` on
127.0.0.1:5432, which is EMPTIED first (DROP SCHEMA public CASCADE): give it a database of
its own (`createdb -h 127.0.0.1 -U postgres liaison_bench`).
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from dashboard_seed import FAILING, FLOWS, config_text, ext_id, seed

RESULTS = HERE / "results"
TOKEN = "bench-dashboard-token-0123456789"
PAGE_TARGET_MS = 300.0
METRICS_TARGET_MS = 100.0
SLOW_REQUESTS = 3  # for endpoints that read the whole audit trail (chain verification)
SERVE_WAIT = 120.0
PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/liaison_bench"


@dataclass(frozen=True)
class Endpoint:
    """One URL to time."""

    label: str
    path: str
    kind: str  # page|api|metrics|health
    repeat: int | None = None  # None: --requests

    @property
    def target_ms(self) -> float | None:
        """The median it should stay under."""
        if self.kind == "metrics":
            return METRICS_TARGET_MS
        return PAGE_TARGET_MS if self.kind in ("page", "api") else None


def endpoints(store_url: str) -> list[Endpoint]:
    """Every page and API GET with real ids from the seeded store."""
    from sqlalchemy import create_engine, text

    engine = create_engine(store_url.replace("postgresql://", "postgresql+psycopg://", 1)
                           if store_url.startswith("postgresql://") else store_url)
    with engine.connect() as conn:
        dl_open = conn.execute(text("SELECT max(id) FROM dead_letters WHERE status = 'open'"))\
            .scalar()
        run = conn.execute(text("SELECT max(id) FROM runs")).scalar()
        cid, ext = conn.execute(text(
            "SELECT canonical_id, external_id FROM audit_events ORDER BY seq DESC LIMIT 1"))\
            .one()
        old_cid = conn.execute(text("SELECT canonical_id FROM audit_events WHERE seq = 1"))\
            .scalar()
    engine.dispose()
    flow = FLOWS[0].name
    now = datetime.now(UTC)
    day = (now - timedelta(days=12)).strftime("%Y-%m-%d")
    next_day = (now - timedelta(days=11)).strftime("%Y-%m-%d")
    src_ext = ext_id(FLOWS[0].source, FLOWS[0].entity, 7)
    pages = [
        ("overview", "/"), ("silo map", "/silo-map"), ("flows", "/flows"),
        ("flows of a system", f"/flows?system={FLOWS[0].source}"),
        ("flow", f"/flows/{flow}"), ("flow (failing)", f"/flows/{FAILING}"),
        ("dead letters (open)", "/dead-letters"),
        ("dead letters (all)", "/dead-letters?status=all"),
        ("dead letters (flow, entity)", f"/dead-letters?status=all&flow={flow}&entity=contact"),
        ("dead letter", f"/dead-letters/{dl_open}"),
        ("audit (newest)", "/audit"),
        ("audit: record (our id)", f"/audit?record={cid}"),
        ("audit: record (old, our id)", f"/audit?record={old_cid}"),
        ("audit: record (system id)", f"/audit?record={ext}"),
        ("audit: record (source id)", f"/audit?record={src_ext}"),
        ("audit: system", f"/audit?system={FLOWS[3].target}"),
        ("audit: flow", f"/audit?flow={FLOWS[6].name}"),
        ("audit: one day 12 days ago", f"/audit?since={day}&until={next_day}"),
        ("audit: system + day", f"/audit?system={FLOWS[0].source}&since={day}&until={next_day}"),
        ("next steps", "/next-steps"),
    ]
    api = [
        ("silo-map", "/silo-map"), ("systems", "/systems"),
        ("system", f"/systems/{FLOWS[0].source}"), ("flows", "/flows"),
        ("flow", f"/flows/{flow}"), ("runs", "/runs"), ("runs of a flow", f"/runs?flow={flow}"),
        ("run", f"/runs/{run}"), ("dead-letters", "/dead-letters"),
        ("dead-letters (all, 1000)", "/dead-letters?status=all&limit=1000"),
        ("dead-letter", f"/dead-letters/{dl_open}"), ("audit", "/audit"),
        ("audit (1000)", "/audit?limit=1000"), ("audit: record", f"/audit?record={ext}"),
        ("audit: one day", f"/audit?since={day}&until={next_day}"),
        ("next-steps", "/next-steps"), ("maturity", "/maturity"),
        ("openapi.json", "/openapi.json"),
    ]
    out = [Endpoint(f"page {label}", path, "page") for label, path in pages]
    out.append(Endpoint("page audit + verify chain", "/audit?verify=1", "page", SLOW_REQUESTS))
    out += [Endpoint(f"api {label}", "/api/v1" + path, "api") for label, path in api]
    out.append(Endpoint("api audit/verify", "/api/v1/audit/verify", "api", SLOW_REQUESTS))
    out += [Endpoint("/metrics", "/metrics", "metrics"), Endpoint("/healthz", "/healthz",
                                                                  "health")]
    return out


# -- serving ------------------------------------------------------------------------------------


def free_port() -> int:
    """A port nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """`hub -c CONFIG serve` in a child process."""

    def __init__(self, config: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = config.parent / "serve.log"
        env = {**os.environ, "HUB_DASHBOARD_TOKEN": TOKEN, "HUB_SECRET_KEY": "bench",
               "PYTHONDONTWRITEBYTECODE": "1"}
        self._fh = self.log.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hub.cli", "-c", str(config), "serve", "--host",
             "127.0.0.1", "--port", str(self.port)], cwd=config.parent, env=env,
            stdout=self._fh, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + SERVE_WAIT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                if httpx.get(self.base + "/healthz", timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        self.stop()
        raise SystemExit(f"hub serve did not start:\n{self.log.read_text(errors='replace')}")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)
        self._fh.close()


# -- timing -------------------------------------------------------------------------------------


def p95(samples: list[float]) -> float:
    """The 95th percentile (nearest rank)."""
    ordered = sorted(samples)
    return ordered[max(0, round(0.95 * len(ordered)) - 1)]


def time_endpoints(base: str, eps: list[Endpoint], requests: int) -> list[dict[str, Any]]:
    """Median and p95 per endpoint, in ms; a page with a session, the API with the token."""
    browser = httpx.Client(base_url=base, timeout=600, follow_redirects=False)
    signed = browser.post("/login", data={"token": TOKEN, "next": "/"})
    assert signed.status_code == 303 and "hub_session" in browser.cookies, signed.text
    script = httpx.Client(base_url=base, timeout=600,
                          headers={"Authorization": f"Bearer {TOKEN}"})
    out = []
    try:
        for ep in eps:
            client = browser if ep.kind == "page" else script
            n = ep.repeat or requests
            samples, statuses, size = [], set(), 0
            for i in range(n + 2):
                started = time.perf_counter()
                r = client.get(ep.path)
                elapsed = (time.perf_counter() - started) * 1000
                statuses.add(r.status_code)
                size = len(r.content)
                if i >= 2 or ep.repeat:  # slow ones: no warm-up, they are not cached
                    samples.append(elapsed)
                if ep.repeat and len(samples) >= n:
                    break
            row = {"label": ep.label, "path": ep.path, "kind": ep.kind, "n": len(samples),
                   "median_ms": statistics.median(samples), "p95_ms": p95(samples),
                   "target_ms": ep.target_ms, "status": sorted(statuses), "bytes": size}
            out.append(row)
            print(f"    {ep.label:<36} {row['median_ms']:9.1f} ms median "
                  f"{row['p95_ms']:9.1f} ms p95  {statuses}", file=sys.stderr, flush=True)
    finally:
        browser.close()
        script.close()
    return out


def print_table(db: str, rows: list[dict[str, Any]]) -> None:
    """One fixed-width table per database."""
    print(f"\n{db}")
    head = ("endpoint", "median ms", "p95 ms", "target", "verdict", "HTTP", "KB")
    body = []
    for r in rows:
        target = r["target_ms"]
        verdict = "-" if target is None else ("ok" if r["median_ms"] < target else "MISS")
        body.append((r["label"], f"{r['median_ms']:.1f}", f"{r['p95_ms']:.1f}",
                     f"< {target:.0f}" if target else "", verdict,
                     ",".join(map(str, r["status"])), f"{r['bytes'] / 1024:.0f}"))
    widths = [max(len(str(x[i])) for x in [head, *body]) for i in range(len(head))]
    for line in [head, tuple("-" * w for w in widths), *body]:
        print("  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                        for i, (c, w) in enumerate(zip(line, widths, strict=True))))
    misses = [r["label"] for r in rows if r["target_ms"] and r["median_ms"] >= r["target_ms"]]
    print(f"missed: {', '.join(misses) if misses else 'none'}")


def bench_one(db: str, store_url: str, folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Seed, serve, time one database."""
    if not args.no_seed:
        print(f"{db}: seeding {args.audit:,} audit events, {args.records:,} records...",
              file=sys.stderr, flush=True)
    started = time.perf_counter()
    if args.no_seed:
        figures = {"runs_total": "?", "reused": True}
    else:
        figures = seed(store_url, audit=args.audit, records=args.records,
                       log=lambda m: print(m, file=sys.stderr, flush=True))
    seeded = time.perf_counter() - started
    (folder / "suppliers").mkdir(parents=True, exist_ok=True)
    config = folder / "hub.yaml"
    config.write_text(config_text(store_url, folder), encoding="utf-8")
    server = Server(config)
    try:
        print(f"{db}: timing ({server.base})", file=sys.stderr, flush=True)
        rows = time_endpoints(server.base, endpoints(store_url), args.requests)
    finally:
        server.stop()
    return {"seed": figures, "seed_seconds": round(seeded, 1), "endpoints": rows}


def main() -> int:
    """Run the benchmark and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--audit", type=int, default=1_000_000)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--only", default="sqlite,postgresql")
    parser.add_argument("--pg-url", default=os.environ.get("LIAISON_BENCH_PG", PG_DEFAULT))
    parser.add_argument("--keep", type=Path, default=None,
                        help="build the SQLite store and configs here (kept afterwards)")
    parser.add_argument("--no-seed", action="store_true",
                        help="time the stores a run with --keep left (SQLite) or the one at "
                             "--pg-url as they are")
    args = parser.parse_args()
    wanted = [d for d in args.only.split(",") if d]
    results: dict[str, Any] = {
        "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "cpus": os.cpu_count(),
        "python": platform.python_version(), "audit": args.audit, "records": args.records,
        "requests": args.requests, "load_before": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory(prefix="liaison-dash-bench-") as tmp:
        root = args.keep or Path(tmp)
        for db in wanted:
            folder = root / db
            folder.mkdir(parents=True, exist_ok=True)
            url = f"sqlite:///{folder / 'liaison.db'}" if db == "sqlite" else args.pg_url
            results[db] = bench_one(db, url, folder, args)
    print(f"\nLiaison dashboard benchmark, {results['when']}, {results['cpus']} CPUs, Python "
          f"{results['python']}, {args.audit:,} audit events, {args.records:,} records, "
          f"median and p95 of {args.requests} requests (chain checks: {SLOW_REQUESTS}); load "
          f"average before: {results['load_before']:.1f}")
    for db in wanted:
        seed_info = results[db]["seed"]
        print(f"\n{db}: seeded in {results[db]['seed_seconds']} s "
              f"({seed_info['runs_total']} runs)")
        print_table(db, results[db]["endpoints"])
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "dashboard.json").write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
