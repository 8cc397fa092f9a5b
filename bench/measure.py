"""One measurement, run in a process of its own by bench/run.py.

    python bench/measure.py KIND --base-url URL --token T [--target-url URL] [--records N]

KIND is one of: ingest, plain, dlt, flow, incremental. The sandbox(es) run in other
processes, so the peak RSS printed here is the measured pipeline's alone. The last line of
stdout is `RESULT {json}`; everything before it is free text for a human.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import os
import resource
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TOKEN_VAR = "LIAISON_BENCH_HUBSPOT_TOKEN"
TARGET_TOKEN_VAR = "LIAISON_BENCH_TARGET_TOKEN"
PAGE = 100

# Quoted paths: `[ ]` inside a {...} flow mapping must be in quotes in YAML.
CONFIG = """\
version: 1
store: sqlite:///{db}
systems:
  crm:
    category: crm
    owner: Bench
    connection:
      connector: hubspot
      base_url: {base_url}
      token: ${{{token_var}}}
  crm-b:
    category: crm
    owner: Bench
    connection:
      connector: hubspot
      base_url: {target_url}
      token: ${{{target_token_var}}}
flows:
  contacts:
    entity: contact
    from: crm
    to: crm-b
    page_size: {page}
"""


def peak_rss_mb() -> float:
    """Peak resident set size of this process (and of any children it waited for), MB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, kids) / 1024.0  # Linux reports kilobytes


# -- the hub's engine ---------------------------------------------------------------------


def _engine(args: argparse.Namespace, workdir: Path, *, with_target: bool) -> Any:
    from hub.audit import AuditObserver
    from hub.config import loads
    from hub.store import Store
    from hub.sync.engine import SyncEngine

    os.environ[TOKEN_VAR] = args.token
    os.environ[TARGET_TOKEN_VAR] = args.target_token or args.token
    text = CONFIG.format(db=workdir / "hub.db", base_url=args.base_url,
                         target_url=args.target_url or args.base_url, token_var=TOKEN_VAR,
                         target_token_var=TARGET_TOKEN_VAR, page=PAGE)
    settings = loads(text, file=str(workdir / "hub.yaml"))
    if not with_target:
        # Ingest only: the same flow with no targets (the loader wants a `to`).
        flow = dataclasses.replace(settings.flows["contacts"], targets=())
        settings = dataclasses.replace(settings, flows={"contacts": flow})
    store = Store(settings.store_url)
    from hub.runtime import tune_gc

    tune_gc()  # as `hub sync`, `hub run` and `hub worker` do
    return SyncEngine(settings, store, observers=[AuditObserver(store)]), store


def _report_dict(report: Any, seconds: float) -> dict[str, Any]:
    c = report.counts
    n = max(1, c.read)
    return {
        "status": report.status, "error": report.error, "seconds": seconds,
        "records": c.read, "records_per_s": c.read / seconds if seconds else 0.0,
        "us_per_record": seconds / n * 1e6,
        "counts": c.as_row(),
        "stages_us": {k: v / n * 1e6 for k, v in sorted(c.timings.items())},
    }


def run_ingest(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Source -> mapping -> validation -> identity -> store + links + audit; no targets."""
    engine, store = _engine(args, workdir, with_target=False)
    t0 = time.perf_counter()
    report = engine.run("contacts")
    out = _report_dict(report, time.perf_counter() - t0)
    store.close()
    return out


def run_flow(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Sandbox A -> engine -> sandbox B (batch upserts); every record written to B."""
    engine, store = _engine(args, workdir, with_target=True)
    t0 = time.perf_counter()
    report = engine.run("contacts")
    out = _report_dict(report, time.perf_counter() - t0)
    out["written"] = report.counts.written
    store.close()
    return out


def run_incremental(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Ingest everything (untimed), then `--rounds` times: change `--changes` records
    through the API and time an incremental run. Reports the median round."""
    import statistics

    import httpx

    engine, store = _engine(args, workdir, with_target=False)
    first = engine.run("contacts")
    headers = {"Authorization": f"Bearer {args.token}"}
    rounds: list[dict[str, Any]] = []
    with httpx.Client(base_url=args.base_url, headers=headers, timeout=30) as http:
        for i in range(args.rounds):
            # Spread the changed records over the whole id range, different ones each round.
            ids = _sample_ids(http, args.records, args.changes, args.rep * args.rounds + i)
            stamp = f"bench {time.time():.3f}"
            for oid in ids:
                r = http.patch(f"/crm/v3/objects/contacts/{oid}",
                               json={"properties": {"jobtitle": stamp}})
                r.raise_for_status()
            t0 = time.perf_counter()
            report = engine.run("contacts")
            out = _report_dict(report, time.perf_counter() - t0)
            out["changed"] = len(ids)
            rounds.append(out)
    rounds.sort(key=lambda r: r["seconds"])
    result = dict(rounds[len(rounds) // 2])
    result["rounds_seconds"] = [r["seconds"] for r in rounds]
    result["median_seconds"] = statistics.median(r["seconds"] for r in rounds)
    result["first_run_records"] = first.counts.read
    result["first_run_seconds"] = first.seconds
    store.close()
    return result


def _sample_ids(http: Any, total: int, n: int, rep: int) -> list[str]:
    first = http.get("/crm/v3/objects/contacts", params={"limit": 1, "properties": ""})
    first.raise_for_status()
    lo = int(first.json()["results"][0]["id"])
    step = max(1, total // n)
    return [str(lo + (i * step + rep) % total) for i in range(n)]


# -- the plain script: the practical limit ------------------------------------------------


def run_plain(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """httpx paging + orjson + dict renames + sqlite3 executemany upsert, one transaction."""
    import httpx

    from connectors.hubspot.client import PROPERTIES

    db = sqlite3.connect(workdir / "plain.db", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE contacts (id TEXT PRIMARY KEY, email TEXT, first_name TEXT, "
               "last_name TEXT, title TEXT, phone TEXT, company_id TEXT, city TEXT, "
               "country TEXT, lifecycle TEXT, updated_at TEXT)")
    sql = ("INSERT INTO contacts VALUES (?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET "
           "email=excluded.email, first_name=excluded.first_name, "
           "last_name=excluded.last_name, title=excluded.title, phone=excluded.phone, "
           "company_id=excluded.company_id, city=excluded.city, country=excluded.country, "
           "lifecycle=excluded.lifecycle, updated_at=excluded.updated_at")
    params: dict[str, Any] = {"limit": PAGE, "properties": ",".join(PROPERTIES["contacts"]),
                              "associations": "companies", "archived": "false"}
    t_http = t_parse = t_map = t_db = 0.0
    n = 0
    t0 = time.perf_counter()
    db.execute("BEGIN")
    with httpx.Client(base_url=args.base_url, timeout=30,
                      headers={"Authorization": f"Bearer {args.token}"}) as http:
        while True:
            a = time.perf_counter()
            resp = http.get("/crm/v3/objects/contacts", params=params)
            resp.raise_for_status()
            b = time.perf_counter()
            body = orjson.loads(resp.content)
            c = time.perf_counter()
            rows = []
            for r in body["results"]:
                p = r["properties"]
                comp = (r.get("associations") or {}).get("companies", {}).get("results") or ()
                rows.append((r["id"], (p.get("email") or "").strip().lower() or None,
                             p.get("firstname"), p.get("lastname"), p.get("jobtitle"),
                             p.get("phone"), comp[0]["id"] if comp else None, p.get("city"),
                             p.get("country"), p.get("lifecyclestage"), r["updatedAt"]))
            d = time.perf_counter()
            db.executemany(sql, rows)
            e = time.perf_counter()
            n += len(rows)
            t_http += b - a
            t_parse += c - b
            t_map += d - c
            t_db += e - d
            after = ((body.get("paging") or {}).get("next") or {}).get("after")
            if not after:
                break
            params["after"] = after
    a = time.perf_counter()
    db.execute("COMMIT")
    t_db += time.perf_counter() - a
    seconds = time.perf_counter() - t0
    db.close()
    k = max(1, n) / 1e6
    return {"status": "succeeded", "seconds": seconds, "records": n,
            "records_per_s": n / seconds, "us_per_record": seconds / max(1, n) * 1e6,
            "stages_us": {"http": t_http / k, "parse": t_parse / k, "map": t_map / k,
                          "db": t_db / k}}


# -- dlt: the peer a user would otherwise pick --------------------------------------------


def run_dlt(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """dlt RESTClient + JSONResponseCursorPaginator into the sqlalchemy destination (SQLite)."""
    os.environ.setdefault("RUNTIME__LOG_LEVEL", "WARNING")
    os.environ["DLT_DATA_DIR"] = str(workdir / "dlt-data")
    os.environ["DLT_PROJECT_DIR"] = str(workdir)
    os.environ["RUNTIME__DLTHUB_TELEMETRY"] = "false"
    import dlt
    from dlt.sources.helpers.rest_client import RESTClient
    from dlt.sources.helpers.rest_client.auth import BearerTokenAuth
    from dlt.sources.helpers.rest_client.paginators import JSONResponseCursorPaginator

    from connectors.hubspot.client import PROPERTIES

    client = RESTClient(base_url=args.base_url, auth=BearerTokenAuth(args.token),
                        paginator=JSONResponseCursorPaginator(cursor_path="paging.next.after",
                                                              cursor_param="after"),
                        data_selector="results")
    params = {"limit": PAGE, "properties": ",".join(PROPERTIES["contacts"]),
              "associations": "companies", "archived": "false"}

    @dlt.resource(name="contacts", primary_key="id", write_disposition="append")
    def contacts() -> Iterator[Any]:
        yield from client.paginate("/crm/v3/objects/contacts", params=params)

    pipeline = dlt.pipeline(pipeline_name="bench_dlt", pipelines_dir=str(workdir / "pipes"),
                            destination=dlt.destinations.sqlalchemy(
                                f"sqlite:///{workdir / 'dlt.db'}"),
                            dataset_name="hubspot")
    t0 = time.perf_counter()
    pipeline.extract(contacts())
    t1 = time.perf_counter()
    pipeline.normalize()
    t2 = time.perf_counter()
    pipeline.load()
    t3 = time.perf_counter()
    seconds = t3 - t0
    with sqlite3.connect(workdir / "dlt.db") as db:
        names = [r[0] for r in db.execute("PRAGMA database_list")]
        n = 0
        for schema in names:
            try:
                n = db.execute(f'SELECT count(*) FROM "{schema}".contacts').fetchone()[0]
                break
            except sqlite3.Error:
                continue
    if not n:
        n = args.records
    k = max(1, n) / 1e6
    return {"status": "succeeded", "seconds": seconds, "records": n,
            "records_per_s": n / seconds, "us_per_record": seconds / max(1, n) * 1e6,
            "stages_us": {"extract": (t1 - t0) / k, "normalize": (t2 - t1) / k,
                          "load": (t3 - t2) / k}}


KINDS = {"ingest": run_ingest, "plain": run_plain, "dlt": run_dlt, "flow": run_flow,
         "incremental": run_incremental}


def main() -> int:
    """Run one measurement and print `RESULT {json}` as the last line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("kind", choices=sorted(KINDS))
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--target-url")
    parser.add_argument("--target-token")
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--changes", type=int, default=100)
    parser.add_argument("--rep", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=3, help="incremental runs to time")
    parser.add_argument("--profile", help="write a cProfile dump here (diagnosis only)")
    args = parser.parse_args()
    gc.collect()
    with tempfile.TemporaryDirectory(prefix=f"liaison-bench-{args.kind}-") as tmp:
        func = KINDS[args.kind]
        try:
            if args.profile:
                import cProfile

                prof = cProfile.Profile()
                result = prof.runcall(func, args, Path(tmp))
                prof.dump_stats(args.profile)
            else:
                result = func(args, Path(tmp))
        except Exception as exc:  # noqa: BLE001 - the runner prints why and goes on
            result = {"status": "error", "error": f"{type(exc).__name__}: {exc}"}
    result["kind"] = args.kind
    result["peak_rss_mb"] = peak_rss_mb()
    print("RESULT " + orjson.dumps(result).decode(), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
