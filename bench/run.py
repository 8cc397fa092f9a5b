"""Liaison's benchmark suite: prints figures, asserts nothing.

    python bench/run.py [--records N] [--quick] [--repeat K] [--full-scale] [--skip-dlt]

Every measurement runs in a process of its own (bench/measure.py), so each peak RSS is that
measurement's alone; the HubSpot sandboxes run in further processes (bench/sandbox_proc.py)
so their memory and pre-serialised pages do not count. Measurements are interleaved
(ingest, plain, dlt, ingest, plain, dlt, ...) and the medians of the repeats are printed,
with the JSON written to bench/results/latest.json and a markdown table for the README.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import orjson

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
TIMEOUT = 3600  # seconds one measurement may take (1M records through dlt is slow)

TARGETS = {"records_per_s": 20_000, "floor_records_per_s": 10_000, "plain_ratio": 3.0,
           "peak_rss_mb": 150, "incremental_s": 2.0}


@dataclass
class Sandbox:
    """A HubSpot sandbox running in a child process."""

    proc: subprocess.Popen[str]
    base_url: str
    token: str
    count: int
    seconds: float

    @classmethod
    def start(cls, count: int, seed: int = 1, token: str = "bench-token") -> Sandbox:
        """Start one and wait until it listens (it prints one JSON line)."""
        proc = subprocess.Popen(
            [sys.executable, str(HERE / "sandbox_proc.py"), "--count", str(count),
             "--seed", str(seed), "--token", token],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise SystemExit(f"the sandbox (count={count}) did not start")
        info = orjson.loads(line)
        return cls(proc, info["base_url"], info["token"], count, info["seconds"])

    def stop(self) -> None:
        """Close its stdin: it stops serving and exits."""
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def measure(kind: str, source: Sandbox, *, target: Sandbox | None = None, rep: int = 0,
            extra: list[str] | None = None, log: TextIO = sys.stderr) -> dict[str, Any]:
    """Run one measurement in a fresh process; returns its RESULT dict."""
    cmd = [sys.executable, str(HERE / "measure.py"), kind, "--base-url", source.base_url,
           "--token", source.token, "--records", str(source.count), "--rep", str(rep)]
    if target is not None:
        cmd += ["--target-url", target.base_url, "--target-token", target.token]
    cmd += extra or []
    started = time.perf_counter()
    try:
        done = subprocess.run(cmd, check=False, capture_output=True, text=True, cwd=ROOT, timeout=TIMEOUT,
                              env={**os.environ, "PYTHONHASHSEED": "0"})
    except subprocess.TimeoutExpired:
        return {"kind": kind, "status": "error", "error": f"timed out after {TIMEOUT}s"}
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")]
    if not lines:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        return {"kind": kind, "status": "error",
                "error": f"exit {done.returncode}: " + " | ".join(tail)}
    result: dict[str, Any] = orjson.loads(lines[-1][len("RESULT "):])
    print(f"  {kind:<12} rep {rep + 1}: {_short(result)} "
          f"({time.perf_counter() - started:.0f}s wall)", file=log, flush=True)
    return result


def _short(r: dict[str, Any]) -> str:
    if r.get("status") == "error":
        return "ERROR " + str(r.get("error"))
    return (f"{r['records']:,} records in {r['seconds']:.2f}s = "
            f"{r['records_per_s']:,.0f}/s, peak RSS {r['peak_rss_mb']:.0f} MB")


def median_of(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median time, with every numeric figure replaced by its median."""
    ok = [r for r in results if r.get("status") not in ("error", "failed")]
    if not ok:
        return results[-1] if results else {"status": "error", "error": "not run"}
    ok.sort(key=lambda r: r["seconds"])
    out = dict(ok[len(ok) // 2])
    for key in ("seconds", "records_per_s", "us_per_record", "peak_rss_mb"):
        out[key] = statistics.median(r[key] for r in ok)
    stages = {k for r in ok for k in r.get("stages_us", {})}
    out["stages_us"] = {k: statistics.median(r.get("stages_us", {}).get(k, 0.0) for r in ok)
                        for k in sorted(stages)}
    out["repeats"] = len(ok)
    out["spread_records_per_s"] = [min(r["records_per_s"] for r in ok),
                                   max(r["records_per_s"] for r in ok)]
    return out


# -- output -----------------------------------------------------------------------------


def _stages(r: dict[str, Any]) -> str:
    keep = ("read", "map+validate", "identity+merge", "store", "deliver.plan",
            "deliver.write", "deliver.commit", "http", "parse", "map", "db", "extract",
            "normalize", "load")
    parts = [f"{k} {r['stages_us'][k]:.1f}" for k in keep if k in r.get("stages_us", {})]
    return ", ".join(parts)


def table_rows(res: dict[str, Any]) -> list[tuple[str, str, str, str, str, str]]:
    """(measurement, records, records/s, us/record, stages us/record, peak RSS) rows."""
    rows = []
    labels = {"ingest": "ingest (engine, SQLite, audit on)",
              "plain": "plain script (httpx + sqlite3)",
              "dlt": "dlt -> SQLite (sqlalchemy)",
              "flow": "full flow sandbox A -> B",
              "incremental": "incremental, 100 changed"}
    for key, label in labels.items():
        r = res.get(key)
        if r is None:
            continue
        if r.get("status") == "error":
            rows.append((label, "-", "-", "-", "error: " + str(r.get("error"))[:90], "-"))
            continue
        rows.append((label, f"{r['records']:,}", f"{r['records_per_s']:,.0f}",
                     f"{r['us_per_record']:.1f}", _stages(r), f"{r['peak_rss_mb']:.0f} MB"))
    for n, r in sorted(res.get("scale", {}).items(), key=lambda kv: int(kv[0])):
        if r.get("status") == "error":
            rows.append((f"ingest at {int(n):,}", "-", "-", "-", "error", "-"))
            continue
        rows.append((f"ingest at {int(n):,}", f"{r['records']:,}",
                     f"{r['records_per_s']:,.0f}", f"{r['us_per_record']:.1f}", _stages(r),
                     f"{r['peak_rss_mb']:.0f} MB"))
    return rows


def summary_lines(res: dict[str, Any]) -> list[str]:
    """The ratios and the verdict against each target."""
    out = []
    ing, plain, dlt = res.get("ingest"), res.get("plain"), res.get("dlt")
    good = [r for r in (ing, plain, dlt) if r and r.get("status") != "error"]

    def ok(flag: bool) -> str:
        return "met" if flag else "MISSED"

    if ing in good:
        rps = ing["records_per_s"]
        out.append(f"ingest: {rps:,.0f} records/s (target 20,000, floor 10,000): "
                   f"{ok(rps >= TARGETS['records_per_s'])}")
        out.append(f"ingest peak RSS {ing['peak_rss_mb']:.0f} MB (target < 150 MB): "
                   f"{ok(ing['peak_rss_mb'] < TARGETS['peak_rss_mb'])}")
        if plain in good:
            ratio = ing["seconds"] / plain["seconds"]
            out.append(f"ingest time / plain script time = {ratio:.2f}x (target <= 3x): "
                       f"{ok(ratio <= TARGETS['plain_ratio'])}")
        if dlt in good:
            ratio = dlt["seconds"] / ing["seconds"]
            out.append(f"dlt time / ingest time = {ratio:.2f}x (target > 1, ingest ahead of "
                       f"dlt): {ok(ratio > 1)}")
        elif dlt is not None:
            out.append(f"dlt: not measured ({dlt.get('error')})")
    inc = res.get("incremental")
    if inc and inc.get("status") != "error":
        out.append(f"incremental: {inc['seconds']:.2f}s, {inc['records']} records read for "
                   f"{inc.get('changed')} changed (target < 2 s): "
                   f"{ok(inc['seconds'] < TARGETS['incremental_s'])}")
    scale = {int(k): v for k, v in res.get("scale", {}).items() if v.get("status") != "error"}
    if len(scale) >= 2:
        rss = [scale[k]["peak_rss_mb"] for k in sorted(scale)]
        flat = max(rss) - min(rss) <= 0.25 * min(rss)
        out.append("peak RSS by size: " + ", ".join(
            f"{k:,}: {scale[k]['peak_rss_mb']:.0f} MB" for k in sorted(scale))
            + f" (flat within 25%: {ok(flat)})")
    return out


def print_table(rows: list[tuple[str, ...]], out: TextIO = sys.stdout) -> None:
    """A fixed-width table for the terminal."""
    head = ("measurement", "records", "records/s", "us/record", "stages (us/record)",
            "peak RSS")
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    for r in [head, tuple("-" * w for w in widths), *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip(),
              file=out)


def markdown(rows: list[tuple[str, ...]], lines: list[str], meta: dict[str, Any]) -> str:
    """The same figures as a markdown table the README can carry."""
    title = (f"Liaison benchmark, {meta['date']}, {meta['machine']}, {meta['records']:,} "
             f"contacts in pages of 100, medians of {meta['repeat']}:")
    out = [title, "",
           "| measurement | records | records/s | µs/record | stages (µs/record) | peak RSS |",
           "|---|---:|---:|---:|---|---:|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    out += [""] + [f"- {ln}" for ln in lines]
    return "\n".join(out)


# -- the run ----------------------------------------------------------------------------


def main() -> int:
    """Run the suite and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--quick", action="store_true",
                        help="one repeat, no RSS scaling series (about a minute)")
    parser.add_argument("--repeat", type=int, default=None, help="repeats (default 3, quick 1)")
    parser.add_argument("--full-scale", action="store_true",
                        help="add the 1,000,000-record ingest to the RSS series (minutes)")
    parser.add_argument("--skip-dlt", action="store_true")
    parser.add_argument("--only", default="",
                        help="comma list of ingest,plain,dlt,flow,incremental,scale")
    args = parser.parse_args()
    repeat = args.repeat or (1 if args.quick else 3)
    only = set(filter(None, args.only.split(",")))

    def wanted(kind: str) -> bool:
        return not only or kind in only

    n = args.records
    res: dict[str, Any] = {}
    runs: dict[str, list[dict[str, Any]]] = {}
    started = time.perf_counter()
    print(f"Starting the HubSpot sandbox with {n:,} contacts...", file=sys.stderr, flush=True)
    source = Sandbox.start(n)
    try:
        side_by_side = [k for k in ("ingest", "plain", "dlt")
                        if wanted(k) and not (k == "dlt" and args.skip_dlt)]
        if not args.skip_dlt and "dlt" in side_by_side:
            try:
                import dlt  # noqa: F401
            except ImportError as exc:
                side_by_side.remove("dlt")
                res["dlt"] = {"status": "error",
                              "error": f"dlt is not installed ({exc}); pip install "
                                       "'dlt[sqlalchemy]' or the project's bench extra"}
        print(f"Side by side, interleaved, {repeat}x: {', '.join(side_by_side)}",
              file=sys.stderr)
        for rep in range(repeat):
            for kind in side_by_side:
                runs.setdefault(kind, []).append(measure(kind, source, rep=rep))
        if wanted("incremental"):
            # One process ingests once, then times `repeat` incremental runs (median).
            runs.setdefault("incremental", []).append(
                measure("incremental", source, extra=["--rounds", str(repeat)]))
        if wanted("flow"):
            # The slowest measurement: repeated only when asked (--repeat).
            for rep in range(args.repeat or 1):
                # A fresh, empty target each time: every record is a real create.
                target = Sandbox.start(0, token="bench-target-token")
                try:
                    runs.setdefault("flow", []).append(
                        measure("flow", source, target=target, rep=rep))
                finally:
                    target.stop()
    finally:
        source.stop()
    for kind, got in runs.items():
        res[kind] = median_of(got)

    if wanted("scale") and not args.quick:
        sizes = [10_000, 100_000] + ([1_000_000] if args.full_scale else [])
        res["scale"] = {}
        for size in sizes:
            if size == n and "ingest" in res:
                res["scale"][str(size)] = res["ingest"]
                continue
            print(f"RSS series: sandbox with {size:,} contacts...", file=sys.stderr, flush=True)
            sb = Sandbox.start(size)
            try:
                res["scale"][str(size)] = measure("ingest", sb)
            finally:
                sb.stop()

    meta = {"date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, "
                       f"Python {platform.python_version()}",
            "records": n, "repeat": repeat,
            "wall_seconds": round(time.perf_counter() - started, 1)}
    rows = table_rows(res)
    lines = summary_lines(res)
    print()
    print_table(rows)
    print()
    for ln in lines:
        print(ln)
    md = markdown(rows, lines, meta)
    print("\nMarkdown for the README:\n")
    print(md)
    RESULTS.mkdir(exist_ok=True)
    payload = {"meta": meta, "targets": TARGETS, "results": res, "runs": runs,
               "summary": lines, "markdown": md}
    (RESULTS / "latest.json").write_bytes(orjson.dumps(payload, option=orjson.OPT_INDENT_2))
    print(f"\nWritten {RESULTS / 'latest.json'} ({meta['wall_seconds']}s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
