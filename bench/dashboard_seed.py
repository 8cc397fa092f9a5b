"""Fill a store with a month of a mid-sized company's history, fast, for bench/dashboard.py.

    python bench/dashboard_seed.py --store URL [--audit 1000000] [--records 100000]

Rows go straight into the store's tables (hub/store/tables.py) in bulk: executemany on
SQLite, COPY on PostgreSQL. They look like the engine's own: records of seven entities with
their links and match keys, runs of eight flows every 10 minutes to daily over 30 days with
counts (one flow failing now, one stale), dead letters in every status, and audit events
with field diffs spread over those runs, systems and 30 days, hash-chained exactly as
hub.store.repo.append_audit chains them (so `hub audit verify` passes and its cost is real).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hub.store import Store
from hub.store.repo import event_hash

DAYS = 30
CHUNK = 20_000


@dataclass(frozen=True)
class Flow:
    """A flow of the bench config."""

    name: str
    entity: str
    source: str
    target: str
    every_min: int  # how often it runs
    schedule: str


FLOWS = (
    Flow("crm-contacts-to-suppliers", "contact", "hubspot", "suppliers", 15, "*/15 * * * *"),
    Flow("supplier-companies-to-crm", "company", "suppliers", "hubspot", 60, "0 * * * *"),
    Flow("crm-deals-to-pipedrive", "deal", "hubspot", "pipedrive", 30, "*/30 * * * *"),
    Flow("invoices-to-quickbooks", "invoice", "xero", "quickbooks", 60, "0 * * * *"),
    Flow("payments-to-xero", "payment", "quickbooks", "xero", 60, "30 * * * *"),
    Flow("jira-tasks-to-trello", "task", "jira", "trello", 10, "*/10 * * * *"),
    Flow("jira-projects-to-trello", "project", "jira", "trello", 1440, "0 6 * * *"),
    Flow("pipedrive-persons-to-crm", "contact", "pipedrive", "hubspot", 60, "15 * * * *"),
)
FAILING = "invoices-to-quickbooks"  # its newest runs failed: the dashboard says why
STALE = "jira-projects-to-trello"  # stopped five days ago
# Shares of the canonical records per entity (contacts the most, as in a CRM-led company).
SHARES = {"contact": 0.40, "company": 0.10, "deal": 0.15, "invoice": 0.15, "payment": 0.10,
          "task": 0.08, "project": 0.02}

CONFIG = """\
version: 1
store: {store}
systems:
  hubspot:
    category: crm
    owner: Anna (Sales)
    connection: {{connector: hubspot, token: "${{BENCH_HUBSPOT_TOKEN}}"}}
  pipedrive:
    category: crm
    owner: Anna (Sales)
    connection: {{connector: pipedrive, api_token: "${{BENCH_PIPEDRIVE_TOKEN}}"}}
  xero:
    category: accounting
    owner: Chloe (Finance)
    connection:
      connector: xero
      client_id: "${{BENCH_XERO_ID}}"
      client_secret: "${{BENCH_XERO_SECRET}}"
      refresh_token: "${{BENCH_XERO_REFRESH}}"
      tenant_id: bench-tenant
  quickbooks:
    category: accounting
    owner: Chloe (Finance)
    connection:
      connector: quickbooks
      client_id: "${{BENCH_QB_ID}}"
      client_secret: "${{BENCH_QB_SECRET}}"
      refresh_token: "${{BENCH_QB_REFRESH}}"
      realm_id: "9130000000000001"
  jira:
    category: project
    owner: Dan (Engineering)
    connection:
      connector: jira
      base_url: https://bench.atlassian.net
      email: ops@example.com
      api_token: "${{BENCH_JIRA_TOKEN}}"
  trello:
    category: project
    owner: Dan (Engineering)
    connection:
      connector: trello
      api_key: "${{BENCH_TRELLO_KEY}}"
      token: "${{BENCH_TRELLO_TOKEN}}"
  suppliers:
    category: files
    owner: Ben (Purchasing)
    connection: {{connector: spreadsheet, path: {folder}/suppliers}}
  sales-mailbox:
    category: email
    owner: Chloe (Sales ops)
  support-mailbox:
    category: email
  payroll:
    category: other
    owner: Eve (HR)
  warehouse-sheets:
    category: files
flows:
{flows}
"""


def config_text(store_url: str, folder: Path) -> str:
    """The hub.yaml the seeded store belongs to."""
    flows = "\n".join(f"  {f.name}:\n    entity: {f.entity}\n    from: {f.source}\n"
                      f"    to: {f.target}\n    schedule: \"{f.schedule}\"" for f in FLOWS)
    return CONFIG.format(store=store_url, folder=folder, flows=flows)


def iso(when: datetime) -> str:
    """The store's timestamp form."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# -- the rows ---------------------------------------------------------------------------------

FIRST = ("Ada", "Bob", "Cy", "Di", "Eve", "Finn", "Gia", "Hal", "Ivy", "Jon", "Kai", "Lea")
LAST = ("Lovelace", "Smith", "Young", "Prince", "Moreau", "Berg", "Rossi", "Kato", "Novak")
TITLES = ("Buyer", "Engineer", "CFO", "Sales lead", "Office manager", "Planner")
STAGES = ("appointmentscheduled", "qualifiedtobuy", "contractsent", "closedwon", "closedlost")


def record_data(entity: str, i: int, rng: random.Random) -> dict[str, Any]:
    """The canonical data of record `i` of an entity, shaped like the schema's."""
    if entity == "contact":
        first, last = rng.choice(FIRST), rng.choice(LAST)
        return {"first_name": first, "last_name": last, "title": rng.choice(TITLES),
                "emails": [{"type": "work", "address": f"person{i}@example.com"}],
                "phones": [{"type": "work", "number": f"+4420{7000000 + i % 999999:07d}"}]}
    if entity == "company":
        return {"name": f"{rng.choice(LAST)} & Co {i}", "domain": f"company{i}.example.com",
                "address": {"country": rng.choice(("GB", "DE", "FR", "US"))}}
    if entity == "deal":
        return {"name": f"Deal {i}", "stage": rng.choice(STAGES),
                "amount": {"amount": f"{rng.randint(500, 90000)}.00", "currency": "EUR"}}
    if entity == "invoice":
        return {"number": f"INV-{i:06d}", "status": rng.choice(("draft", "open", "paid")),
                "total": {"amount": f"{rng.randint(50, 20000)}.00", "currency": "EUR"},
                "lines": [{"description": "Consulting", "quantity": "1",
                           "unit_price": {"amount": "100.00", "currency": "EUR"}}]}
    if entity == "payment":
        return {"amount": {"amount": f"{rng.randint(50, 20000)}.00", "currency": "EUR"},
                "date": "2026-11-01"}
    if entity == "task":
        return {"title": f"Task {i}", "status": rng.choice(("todo", "doing", "done"))}
    return {"name": f"Project {i}", "status": "active"}


def write_diff(entity: str, rng: random.Random) -> dict[str, list[Any]]:
    """A field diff as a target system sees it (native names)."""
    if entity == "contact":
        return {"firstname": [None, rng.choice(FIRST)], "jobtitle": [rng.choice(TITLES),
                                                                      rng.choice(TITLES)]}
    return {"name": [None, f"{entity} {rng.randint(1, 99999)}"],
            "status": ["open", rng.choice(("paid", "done", "closedwon"))]}


def read_diff(entity: str, data: dict[str, Any], rng: random.Random) -> dict[str, list[Any]]:
    """A canonical field diff: a create (every field) or an update of one or two."""
    if rng.random() < 0.3:
        return {k: [None, v] for k, v in data.items()}
    keys = rng.sample(sorted(data), k=min(2, len(data)))
    return {k: ["(old value)", data[k]] for k in keys}


@dataclass
class Plan:
    """What to write, decided up front so every table agrees with the others."""

    now: datetime
    ids: dict[str, list[str]]  # entity -> canonical ids
    runs: list[tuple[int, Flow, datetime, str]]  # (id, flow, started, status)


def plan(records: int, seed: int) -> Plan:
    """Canonical ids per entity and the run history of every flow."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    ids = {e: [str(uuid.UUID(int=rng.getrandbits(128), version=4))
               for _ in range(max(1, int(records * share)))] for e, share in SHARES.items()}
    runs: list[tuple[datetime, Flow]] = []
    start = now - timedelta(days=DAYS)
    for f in FLOWS:
        t = start + timedelta(minutes=rng.randint(0, f.every_min - 1))
        end = now - timedelta(days=5) if f.name == STALE else now - timedelta(minutes=2)
        while t < end:
            runs.append((t, f))
            t += timedelta(minutes=f.every_min)
    runs.sort(key=lambda r: r[0])
    out = []
    for i, (t, f) in enumerate(runs, 1):
        roll = rng.random()
        status = "failed" if roll < 0.03 else "partial" if roll < 0.09 else "succeeded"
        if f.name == FAILING and t > now - timedelta(hours=3):
            status = "failed"
        out.append((i, f, t, status))
    return Plan(now, ids, out)


def ext_id(system: str, entity: str, i: int) -> str:
    """An id as the system would give it."""
    return f"{system[:3]}-{entity[:2]}-{i}"


def endpoints(entity: str) -> tuple[str, str]:
    """(source, target) of the first flow of an entity: where its records are linked."""
    f = next(f for f in FLOWS if f.entity == entity)
    return f.source, f.target


def record_rows(p: Plan, rng: random.Random) -> Iterator[tuple[Any, ...]]:
    """records: id, entity, schema_version, data, sources, fingerprint, stub, deleted,
    created_at, updated_at."""
    span = DAYS * 86400
    for entity, ids in p.ids.items():
        src, _ = endpoints(entity)
        for i, cid in enumerate(ids):
            data = record_data(entity, i, rng)
            at = iso(p.now - timedelta(seconds=rng.randint(0, span)))
            sources = orjson.dumps([[sorted(data), src, at, 1]]).decode()
            yield (cid, entity, 1, orjson.dumps(data).decode(), sources,
                   f"{rng.getrandbits(128):032x}", False, rng.random() < 0.01, at, at)


def link_rows(p: Plan, rng: random.Random) -> Iterator[tuple[Any, ...]]:
    """links: system, entity, external_id, canonical_id, fingerprint, seen_run, updated_at."""
    at = iso(p.now - timedelta(days=1))
    for entity, ids in p.ids.items():
        for system in endpoints(entity):
            for i, cid in enumerate(ids):
                yield (system, entity, ext_id(system, entity, i), cid,
                       f"{rng.getrandbits(128):032x}", None, at)


def match_rows(p: Plan) -> Iterator[tuple[Any, ...]]:
    """match_keys: entity, name, value, canonical_id (contact emails, company domains)."""
    for i, cid in enumerate(p.ids["contact"]):
        yield ("contact", "email", f"person{i}@example.com", cid)
    for i, cid in enumerate(p.ids["company"]):
        yield ("company", "domain", f"company{i}.example.com", cid)


ERRORS = {
    "validate": "record {ext}: emails[0].address: 'someone-at-example' is not a valid email",
    "map": "record {ext}: amount: 'twelve' is not a decimal number (transform decimal)",
    "write": "{system} refused the record: 400 Bad Request: Property values were not valid "
             "(VALIDATION_ERROR)",
    "identity": "record {ext}: 2 records match email shared@example.com",
}
FAIL_REASON = ("Xero (xero) GET /api.xro/2.0/Invoices: 401 Unauthorized: token expired "
               "(check the credentials and scopes of the Xero (xero) connection)")


def run_rows(p: Plan, events_per_run: int, rng: random.Random) -> Iterator[tuple[Any, ...]]:
    """runs, every column but the id-less defaults (see RUN_COLUMNS)."""
    for rid, f, t, status in p.runs:
        took = timedelta(seconds=rng.uniform(0.5, 40))
        read = events_per_run * 2 if status != "failed" else 0
        dead = rng.randint(1, 5) if status == "partial" else 0
        created = read // 5
        updated = read // 3
        unchanged = max(0, read - created - updated - dead)
        yield (rid, f.name, "incremental", status, "schedule", "", iso(t), iso(t),
               iso(t + took), iso(t + took), read, created, updated, unchanged, 0, dead, 0,
               created + updated, 0, 0, 0, 0, "{}",
               FAIL_REASON if status == "failed" else None, 1)


RUN_COLUMNS = ("id", "flow", "mode", "status", "trigger", "owner", "fire_time", "started_at",
               "heartbeat_at", "finished_at", "read", "created", "updated", "unchanged",
               "skipped", "dead_lettered", "deleted", "written", "write_unchanged",
               "write_failed", "pending", "resumes", "skip_reasons", "error", "legs_done")


def dead_rows(p: Plan, count: int, rng: random.Random) -> Iterator[tuple[Any, ...]]:
    """dead_letters: run_id, flow, system, entity, stage, external_id, canonical_id,
    payload, error, attempts, first/last_failed_at, status, resolved_at."""
    partial = [r for r in p.runs if r[3] == "partial"] or p.runs
    for n in range(count):
        rid, f, t, _ = rng.choice(partial)
        stage = rng.choice(("validate", "validate", "map", "write", "identity"))
        system = f.target if stage == "write" else f.source
        i = rng.randrange(len(p.ids[f.entity]))
        ext = ext_id(system, f.entity, i)
        recent = n >= count - count // 20  # the newest 5% failed in the last day
        at = p.now - timedelta(hours=rng.uniform(0, 20)) if recent else t
        status = "open" if recent or rng.random() < 0.05 else rng.choice(
            ("replayed", "discarded", "resolved"))
        payload = orjson.dumps({"id": ext, "email": "someone-at-example",
                                "firstname": rng.choice(FIRST), "amount": "twelve"}).decode()
        yield (rid, f.name, system, f.entity, stage, ext,
               p.ids[f.entity][i] if stage == "write" else None, payload,
               ERRORS[stage].format(ext=ext, system=system), rng.randint(1, 4), iso(at),
               iso(at), status, None if status == "open" else iso(at + timedelta(hours=2)))


DEAD_COLUMNS = ("run_id", "flow", "system", "entity", "stage", "external_id", "canonical_id",
                "payload", "error", "attempts", "first_failed_at", "last_failed_at", "status",
                "resolved_at")
AUDIT_COLUMNS = ("seq", "at", "run_id", "flow", "entity", "canonical_id", "system",
                 "external_id", "action", "diff", "prev_hash", "hash")


def audit_rows(p: Plan, total: int, rng: random.Random,
               head: list[Any]) -> Iterator[tuple[Any, ...]]:
    """audit_events in chain order, spread over the runs that went through; `head` ends as
    [seq, hash] of the last one."""
    through = [r for r in p.runs if r[3] != "failed"]
    per, extra = divmod(total, len(through))
    seq, prev = 0, ""
    for k, (rid, f, t, _) in enumerate(through):
        ids = p.ids[f.entity]
        for j in range(per + (1 if k < extra else 0)):
            seq += 1
            i = rng.randrange(len(ids))
            at = iso(t + timedelta(milliseconds=10 * j))
            if rng.random() < 0.5:
                system, action = f.source, rng.choice(("create", "update", "update"))
                diff = read_diff(f.entity, record_data(f.entity, i, rng), rng)
            else:
                system, action = f.target, rng.choice(("write.create", "write.update"))
                diff = write_diff(f.entity, rng)
            ext = ext_id(system, f.entity, i)
            d = orjson.dumps(diff).decode()
            digest = event_hash(prev, seq, at, rid, f.name, f.entity, ids[i], system, ext,
                                action, d)
            yield (seq, at, rid, f.name, f.entity, ids[i], system, ext, action, d, prev, digest)
            prev = digest
    head[:] = [seq, prev]


# -- writing ----------------------------------------------------------------------------------


def _chunks(rows: Iterator[tuple[Any, ...]], size: int = CHUNK) -> Iterator[list[tuple[Any, ...]]]:
    chunk: list[tuple[Any, ...]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def bulk(store: Store, table: str, columns: Sequence[str],
         rows: Iterator[tuple[Any, ...]]) -> int:
    """Insert rows: COPY on PostgreSQL, executemany on SQLite; returns how many."""
    n = 0
    with store.engine.begin() as conn:
        if store.dialect == "postgresql":
            raw = conn.connection.driver_connection
            with raw.cursor() as cur, cur.copy(
                    f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
                    n += 1
            return n
        sql = (f"INSERT INTO {table} ({', '.join(columns)}) "
               f"VALUES ({', '.join('?' * len(columns))})")
        for chunk in _chunks(rows):
            conn.exec_driver_sql(sql, chunk)
            n += len(chunk)
    return n


def reset_postgres(url: str) -> None:
    """Empty the database at `url` (DROP SCHEMA public CASCADE): only ever the bench's own."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def seed(store_url: str, *, audit: int, records: int, dead: int = 5000, seed: int = 1,
         log: Any = print) -> dict[str, Any]:
    """Create the schema at `store_url` and fill it; returns counts and seconds per table."""
    if store_url.startswith("postgresql"):
        reset_postgres(store_url)
    else:
        Path(store_url.removeprefix("sqlite:///")).unlink(missing_ok=True)
    Store.migrate(store_url)
    store = Store(store_url)
    rng = random.Random(seed)
    p = plan(records, seed)
    through = sum(1 for r in p.runs if r[3] != "failed")
    figures: dict[str, Any] = {}
    head: list[Any] = [0, ""]
    steps: list[tuple[str, Sequence[str], Iterator[tuple[Any, ...]]]] = [
        ("records", ("id", "entity", "schema_version", "data", "sources", "fingerprint",
                     "stub", "deleted", "created_at", "updated_at"), record_rows(p, rng)),
        ("links", ("system", "entity", "external_id", "canonical_id", "fingerprint",
                   "seen_run", "updated_at"), link_rows(p, rng)),
        ("match_keys", ("entity", "name", "value", "canonical_id"), match_rows(p)),
        ("runs", RUN_COLUMNS, run_rows(p, max(1, audit // max(1, through)), rng)),
        ("dead_letters", DEAD_COLUMNS, dead_rows(p, dead, rng)),
        ("audit_events", AUDIT_COLUMNS, audit_rows(p, audit, rng, head)),
    ]
    try:
        for table, columns, rows in steps:
            started = time.perf_counter()
            n = bulk(store, table, columns, rows)
            figures[table] = {"rows": n, "seconds": round(time.perf_counter() - started, 1)}
            log(f"  {table}: {n:,} rows in {figures[table]['seconds']} s")
        with store.engine.begin() as conn:
            store.index_audit_events(conn)  # the search index append_audit would write
            conn.exec_driver_sql("DELETE FROM audit_head")
            mark = "?" if store.dialect == "sqlite" else "%s"
            conn.exec_driver_sql(f"INSERT INTO audit_head (id, seq, hash) VALUES (1, {mark}, "
                                 f"{mark})", (head[0], head[1]))
            if store.dialect == "postgresql":
                # COPY set ids explicitly: move the sequences past them, as inserts would.
                for table in ("runs", "dead_letters", "links"):
                    conn.exec_driver_sql(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"(SELECT max(id) FROM {table}))")
        if store.dialect == "postgresql":
            # What autovacuum does soon after a bulk load; without it the planner guesses.
            with store.engine.connect().execution_options(
                    isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM ANALYZE")
    finally:
        store.close()
    figures["runs_total"] = len(p.runs)
    return figures


def main() -> int:
    """Seed one store from the command line."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", required=True, help="sqlite:///path or postgresql://...")
    parser.add_argument("--audit", type=int, default=1_000_000)
    parser.add_argument("--records", type=int, default=100_000)
    args = parser.parse_args()
    seed(args.store, audit=args.audit, records=args.records)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
