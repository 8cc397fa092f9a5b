"""Fault tests of production mode: real Redis, real PostgreSQL, real `hub worker` processes.

Every test is bounded in time, stops what it starts, and prints its figures: records lost,
duplicates, recovery times, calls per record, waits honoured. The invariant everywhere is
the Kafka Connect one (reliability.md section 4): no source record missing from the target
and none in it twice.

The HubSpot target is the in-process sandbox with its seeded Faults; `Recording` only moves
where its 429/5xx answers are produced (inside `handle`, which sees the request body) so the
test knows which records every call carried and when.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

import orjson
import pytest

from connectors.hubspot.sandbox import ApiError, Faults, HubSpotSandbox
from hub.config import loads
from hub.http import no_inline_retries
from hub.jobs.actors import Jobs
from hub.jobs.broker import make_broker
from hub.store import Store
from tests.integration import cluster
from tests.integration.cluster import Cluster, RedisServer
from tests.integration.helpers import contact, write_csv

redis_db = cluster.redis_db  # the shared fixtures (pytest finds fixtures by name here)
cluster_factory = cluster.cluster_factory

TOKEN_ENV = "TEST_HUBSPOT_TOKEN"


# -- a sandbox that says which records each call carried ---------------------------------


@dataclass(frozen=True)
class Call:
    """One batch write the sandbox received."""

    at: float  # time.monotonic() when the body arrived
    emails: tuple[str, ...]
    outcome: str  # "ok", "429", "5xx", "drop" (done, connection closed) or "stall" (done, late)
    retry_after: float | None = None


class Recording(HubSpotSandbox):
    """The sandbox with its own Faults, recording every batch write.

    `stall` is the fraction of writes that are done but answered only after `stall_seconds`
    (longer than the client's timeout): the "committed, then the response was lost to a
    timeout" case. `drop_response` (a Faults field) is the same with a closed connection.
    """

    def __init__(self, faults: Faults, *, stall: float = 0.0, stall_seconds: float = 0.0,
                 **kw: Any) -> None:
        super().__init__(faults=faults, **kw)
        self.calls: list[Call] = []
        self.stall = stall
        self.stall_seconds = stall_seconds
        self._stall_rng = random.Random(faults.seed + 1)
        self._tls = threading.local()

    def fault_for(self) -> tuple[int, bytes, dict[str, str]] | str | None:
        """Draw the fault as usual; answer status faults from handle(), which sees the body."""
        fault = super().fault_for()
        self._tls.fault = fault
        return None if isinstance(fault, tuple) else fault

    def handle(self, method: str, path: str, query: dict[str, list[str]],
               body: Any) -> tuple[int, bytes | None]:
        """Record the call (which e-mails, what happened), then answer it."""
        fault, self._tls.fault = getattr(self._tls, "fault", None), None
        emails: tuple[str, ...] = ()
        if method == "POST" and "/batch/" in path and isinstance(body, dict):
            emails = tuple(str((i.get("properties") or {}).get("email") or i.get("id"))
                           for i in body.get("inputs") or [] if isinstance(i, dict))
        now = time.monotonic()
        if isinstance(fault, tuple):
            status, payload, headers = fault
            if emails:
                after = headers.get("Retry-After")
                self.calls.append(Call(now, emails, "429" if status == 429 else "5xx",
                                       float(after) if after else None))
            self._tls.headers = headers  # rate_headers() hands them to this answer
            raise ApiError(status, orjson.loads(payload).get("message", "error"),
                           "RATE_LIMITS" if status == 429 else "INTERNAL_ERROR")
        stall = False
        if emails and self.stall:
            with self._lock:
                stall = self._stall_rng.random() < self.stall
        answer = super().handle(method, path, query, body)
        if emails:
            outcome = "drop" if fault == "drop" else "stall" if stall else "ok"
            self.calls.append(Call(now, emails, outcome))
        if stall:
            time.sleep(self.stall_seconds)  # the write is done; the answer comes too late
        return answer

    def rate_headers(self) -> dict[str, str]:
        """The injected fault's own headers (Retry-After) when answering one."""
        headers: dict[str, str] | None = getattr(self._tls, "headers", None)
        if headers is not None:
            self._tls.headers = None
            return headers
        return super().rate_headers()

    def emails(self) -> list[str]:
        """The e-mail of every live contact stored, duplicates included."""
        return [str(r["properties"].get("email") or "")
                for r in self.records("contacts", archived=False)]


# Seconds a faulted run may take to finish: generous, since CI machines are shared and a
# run that never finishes (the failure these tests catch) still fails.
DONE_WITHIN = 180.0


def hubspot_target(sandbox: HubSpotSandbox, retry: str = "", timeout: float = 10.0) -> str:
    """The YAML block of a HubSpot system pointing at the sandbox."""
    extra = f", retry: {retry}" if retry else ""
    return (f'{{category: crm, owner: Ben, connection: {{connector: hubspot, base_url: '
            f'"{sandbox.base_url}", token: "${{{TOKEN_ENV}}}", timeout: {timeout}{extra}}}}}')


@pytest.fixture
def sandbox_token(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The sandbox's token in the environment the config (and the workers) read it from."""
    monkeypatch.setenv(TOKEN_ENV, "sandbox-token")
    yield "sandbox-token"


def per_record(calls: list[Call]) -> dict[str, list[Call]]:
    """Each e-mail's calls, in time order."""
    out: dict[str, list[Call]] = {}
    for call in sorted(calls, key=lambda c: c.at):
        for email in call.emails:
            out.setdefault(email, []).append(call)
    return out


# -- 0. no job sleeps (in process: no Redis or PostgreSQL needed) ------------------------


def _inprocess_hub(tmp: Path, sandbox: HubSpotSandbox, *, source: str) -> tuple[Jobs, Store]:
    """A hub on SQLite and the in-process broker: CSV -> HubSpot, or HubSpot -> CSV."""
    (tmp / "sheet").mkdir(parents=True)
    # A ceiling above the test's Retry-After: an in-place retry would sleep through it.
    crm = hubspot_target(sandbox, retry="{attempts: 3, backoff_initial: 0.1, backoff_max: 10}")
    flow = "from: sheet, to: crm" if source == "sheet" else "from: crm, to: sheet"
    text = f"""
version: 1
store: sqlite:///{tmp / 'liaison.db'}
systems:
  crm: {crm}
  sheet: {{category: files, owner: Ben, connection: {{connector: spreadsheet, path: ./sheet}}}}
flows:
  contacts: {{entity: contact, {flow}}}
"""
    (tmp / "hub.yaml").write_text(text, encoding="utf-8")
    settings = loads(text, file=str(tmp / "hub.yaml"))
    store = Store(settings.store_url)
    return Jobs(settings, store, make_broker("inprocess://")), store


def _delayed(jobs: Jobs, queue: str) -> list[int]:
    """Milliseconds from now until each message waiting in a delay queue is due."""
    from dramatiq import Message

    q = jobs.broker.queues[f"{queue}.DQ"]
    now = time.time() * 1000
    return [int(Message.decode(raw).options["eta"] - now) for raw in list(q.queue)]


def test_jobs_never_sleep_through_a_retry_after(tmp_path: Path, sandbox_token: str) -> None:
    """A 429 with Retry-After: 5 returns the job at once and schedules the retry instead."""
    wait = 5.0
    faults = Faults(rate_limit=1.0, retry_after=wait)
    with HubSpotSandbox(faults=faults, token=sandbox_token) as sandbox:
        # Writes: the outbox row is put off until the Retry-After has passed.
        jobs, store = _inprocess_hub(tmp_path / "w", sandbox, source="sheet")
        write_csv(tmp_path / "w" / "sheet" / "contacts.csv", [contact(i) for i in range(3)])
        with no_inline_retries():
            assert jobs.engine().run("contacts").status == "succeeded"  # read, owed
        sent_before = len(sandbox.requests)
        t0 = time.monotonic()
        jobs.deliver_flow("contacts", "crm")
        took = time.monotonic() - t0
        with store.connect() as conn:
            due = store.outbox_next_due(conn, "contacts", "crm")
            owed = store.outbox_count(conn)
        assert due is not None
        put_off = (datetime.fromisoformat(due) - datetime.now(UTC)).total_seconds()
        calls = len(sandbox.requests) - sent_before
        redelivery = _delayed(jobs, "deliveries")
        print(f"\n[no sleeping, write] job took {took:.2f} s after a 429 with Retry-After "
              f"{wait:g} s; {calls} call; outbox due again in {put_off:.1f} s; re-sent with "
              f"delay {redelivery} ms")
        assert took < 1.0, "the job waited for the Retry-After in its thread"
        assert calls == 1 and owed == 3
        assert put_off >= wait - took - 0.05
        assert redelivery and min(redelivery) >= (wait - took) * 1000
        store.close()

        # Reads: the job re-sends itself delayed, holding the flow so the sweeper waits too.
        jobs, store = _inprocess_hub(tmp_path / "r", sandbox, source="crm")
        sent_before = len(sandbox.requests)
        t0 = time.monotonic()
        jobs.sync_flow("contacts")
        took = time.monotonic() - t0
        calls = len(sandbox.requests) - sent_before
        continuation = _delayed(jobs, "flows")
        stalled = jobs.stalled()
        print(f"[no sleeping, read] job took {took:.2f} s; {calls} call; continues in "
              f"{continuation} ms; sweeper sees stalled: {stalled}")
        assert took < 1.0 and calls == 1
        assert continuation and min(continuation) >= wait * 1000
        assert "contacts" not in stalled, "the sweeper would resume the run before Retry-After"
        with store.connect() as conn:
            run = store.unfinished_run(conn, "contacts")
        assert run is not None and run.status == "running" and "429" in str(run.error)
        store.close()


def test_a_worker_that_lost_its_lease_leaves_the_run_alone(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    """A stalled worker whose lease was taken over must not mark the run failed."""
    from hub.errors import LeaseLost
    from hub.sync.lease import Fence
    from tests.integration.helpers import Hub

    hub = Hub(tmp_path)
    write_csv(hub.a / "contacts.csv", [contact(i) for i in range(300)])

    def taken_over(self: Fence, conn: Any) -> None:
        raise LeaseLost(f"{self.name}: another process took this work over")

    monkeypatch.setattr(Fence, "check", taken_over)
    with pytest.raises(LeaseLost):
        hub.engine.run("contacts")
    with hub.store.connect() as conn:
        run = hub.store.unfinished_run(conn, "contacts")
    print(f"\n[lease lost] the run is left {run.status if run else 'closed'}")
    assert run is not None and run.status == "running", "the loser closed the new holder's run"
    hub.close()


# -- a. Redis killed (and once wiped) mid-run ---------------------------------------------


def test_redis_killed_and_wiped_mid_run(tmp_path: Path, pg_url: str) -> None:
    rng = random.Random(11)
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    c = Cluster(tmp_path, pg_url, redis.url, 8000, env={"HUB_STEP_RECORDS": "300"})
    try:
        c.scheduler()
        workers = [c.worker(), c.worker()]
        c.enqueue()

        def jobs_started() -> int:
            # Every job takes its lease anew, which moves the fencing token on: the sum of
            # the tokens counts the jobs started, and a job starts only from a message.
            with c.store.connect() as conn:
                return int(conn.exec_driver_sql(
                    "SELECT coalesce(sum(token), 0) FROM leases WHERE name <> 'scheduler'"
                ).scalar() or 0)

        kills, wipes = 0, 0
        recoveries: list[str] = []
        downtimes: list[float] = []
        for round_ in range(4):
            before = jobs_started()
            deadline = time.monotonic() + 20
            while jobs_started() == before and not c.done() and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(rng.uniform(0.0, 0.3))
            if c.done():
                break
            wipe = round_ == 2
            redis.kill(wipe=wipe)
            kills, wipes = kills + 1, wipes + wipe
            down = rng.uniform(0.3, 1.5)
            time.sleep(down)
            downtimes.append(down + redis.start())
            # Resumed: a job started after the restart (the ones in hand do not count).
            before = jobs_started()
            t0 = time.monotonic()
            while jobs_started() == before and not c.done() and time.monotonic() - t0 < 40:
                time.sleep(0.05)
            recoveries.append(f"{time.monotonic() - t0:.1f}{' (wiped)' if wipe else ''}")
        seconds = c.wait_done(DONE_WITHIN)
        lost, dup = c.outcome()
        alive = sum(w.poll() is None for w in workers)
        logs = c.logs(tail=10**6)
        reconnects = logs.count("Restarting consumer")
        print(f"\n[Redis SIGKILL x{kills}, {wipes} wiped] 8000 records; lost {lost}, "
              f"duplicates {dup}; downtime {sum(downtimes) / max(1, len(downtimes)):.1f} s "
              f"avg; time to resume {', '.join(recoveries)} s; finished "
              f"{seconds:.1f} s after the last restart; workers alive {alive}/2, consumer "
              f"reconnects {reconnects}")
        assert kills >= 3 and wipes == 1, "the run finished before enough kills"
        assert (lost, dup) == (0, 0)
        assert alive == 2, "a worker died instead of reconnecting"
        assert reconnects > 0, "no worker noticed Redis going away"
    finally:
        c.close()
        redis.stop()


# -- b. PostgreSQL connections dropped mid-run --------------------------------------------


class Terminator:
    """Kills the hub's PostgreSQL sessions (by application_name) every few hundred ms."""

    def __init__(self, pg_url: str, app: str) -> None:
        self.url = pg_url.replace("+psycopg", "")
        self.app = app
        self.killed = 0
        self.rounds = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psycopg

        rng = random.Random(5)
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self._stop.wait(rng.uniform(0.2, 0.6)):
                rows = conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                    "WHERE application_name = %s AND pid <> "
                                    "pg_backend_pid()", (self.app,)).fetchall()
                self.killed += sum(1 for r in rows if r[0])
                self.rounds += 1

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def test_postgres_connections_dropped_mid_run(tmp_path: Path, pg_url: str,
                                              redis_db: str) -> None:
    app = "liaison-faults"
    hub_url = f"{pg_url}?application_name={app}"
    c = Cluster(tmp_path, hub_url, redis_db, 6000)
    c.store.close()
    c.store = Store(pg_url)  # the test's own sessions are not terminated
    ahead: list[tuple[int, int]] = []
    samples = 0
    try:
        c.scheduler()
        c.worker()
        c.worker()
        with Terminator(pg_url, app) as killer:
            c.enqueue()
            t0 = time.monotonic()
            while not c.done() and time.monotonic() - t0 < DONE_WITHIN:
                # One statement, one snapshot: the committed cursor and the records it covers.
                with c.store.connect() as conn:
                    row = conn.exec_driver_sql(
                        "SELECT (SELECT value FROM cursors WHERE flow = 'contacts' AND "
                        "system = 'a'), (SELECT count(*) FROM links WHERE system = 'a')"
                    ).first()
                assert row is not None
                cursor = orjson.loads(row[0]) if row[0] else None
                if isinstance(cursor, dict) and "row" in cursor:
                    samples += 1
                    if int(cursor["row"]) > int(row[1]):
                        ahead.append((int(cursor["row"]), int(row[1])))
                time.sleep(0.1)
            c.wait_done(max(1.0, DONE_WITHIN - (time.monotonic() - t0)))
            seconds = time.monotonic() - t0
        lost, dup = c.outcome()
        with c.store.connect() as conn:
            records = c.store.count_records(conn, "contact")
            linked = conn.exec_driver_sql(
                "SELECT count(DISTINCT canonical_id) FROM links WHERE system = 'a'").scalar()
            runs = c.store.list_runs(conn, "contacts", 50)
        audit = c.store.verify_audit()
        print(f"\n[PostgreSQL drops] {killer.killed} sessions terminated in {killer.rounds} "
              f"rounds; 6000 records in {seconds:.1f} s; lost {lost}, duplicates {dup}; "
              f"records {records}, linked to the source {linked}; runs {len(runs)}, read "
              f"{runs[-1].read}, resumes {runs[-1].resumes}; cursor ahead of committed records in "
              f"{len(ahead)}/{samples} samples; audit chain ok: {audit.ok}")
        assert killer.killed > 0, "no session was terminated: the test tested nothing"
        assert (lost, dup) == (0, 0)
        assert not ahead, f"the cursor got ahead of the committed records: {ahead[:5]}"
        assert records == linked == 6000
        assert len(runs) == 1, "a resumed run was started again as a new run"
        assert int(runs[0].read) == 6000, "records were counted twice or skipped"
        assert audit.ok, audit.message
    finally:
        c.close()


# -- c. 429 with Retry-After on 30% of calls, 5xx on 20% ----------------------------------


def test_rate_limits_and_server_errors_at_the_target(tmp_path: Path, pg_url: str,
                                                     redis_db: str, sandbox_token: str) -> None:
    # 55% of calls fail: with 20 attempts a record is dead-lettered with odds of ~1e-5.
    n, attempts = 3000, 20
    wait = 1.0
    # Resets: a tenth of the calls that get through have their connection closed unanswered.
    faults = Faults(rate_limit=0.3, server_error=0.2, drop_response=0.1, retry_after=wait,
                    seed=3)
    with Recording(faults, token=sandbox_token) as sandbox:
        c = Cluster(tmp_path, pg_url, redis_db, n, target=hubspot_target(sandbox),
                    flow_options=f"retry: {{attempts: {attempts}, backoff_initial: 0.2, "
                                 f"backoff_max: 2}}",
                    target_emails=sandbox.emails)
        try:
            c.scheduler()
            c.worker()
            c.worker()
            c.enqueue()
            seconds = c.wait_done(DONE_WITHIN)
            lost, dup = c.outcome()
            by_record = per_record(sandbox.calls)
            # The wait after a 429: from that answer to the first later call carrying any of
            # its records (both stamped by the sandbox, so no clocks are compared).
            waits: dict[int, tuple[float, float]] = {}
            for calls in by_record.values():
                for call, after in itertools.pairwise(calls):
                    if call.outcome == "429":
                        waited = after.at - call.at
                        if id(call) not in waits or waited < waits[id(call)][0]:
                            waits[id(call)] = (waited, call.retry_after or 0.0)
            honoured = sum(1 for waited, asked in waits.values() if waited >= asked)
            per = [len(calls) for calls in by_record.values()]
            outcomes = {k: sum(1 for call in sandbox.calls if call.outcome == k)
                        for k in ("ok", "429", "5xx", "drop")}
            with c.store.connect() as conn:
                dead = len(c.store.list_dead_letters(conn))
            shortest = min((w for w, _ in waits.values()), default=0.0)
            print(f"\n[429 30%, 5xx 20%, resets 5%] {n} records in {seconds:.1f} s; lost {lost}, "
                  f"duplicates {dup}, dead letters {dead}; write calls {outcomes}; calls per "
                  f"record {sum(per) / len(per):.2f} avg, {max(per)} max (bound {attempts}); "
                  f"waits after a 429 (per call) honoured {honoured}/{len(waits)} "
                  f"({100 * honoured / max(1, len(waits)):.0f}%), shortest {shortest:.2f} s "
                  f"for Retry-After {wait:g} s")
            assert (lost, dup, dead) == (0, 0, 0)
            assert outcomes["429"] > 0 and outcomes["5xx"] > 0 and outcomes["drop"] > 0
            assert len(waits) == outcomes["429"], "a rate-limited batch was never retried"
            assert honoured == len(waits), "a retry came before the Retry-After"
            assert max(per) <= attempts
        finally:
            c.close()


# -- d. the write is committed but the response is lost ------------------------------------


def test_lost_responses_create_no_duplicates(tmp_path: Path, pg_url: str, redis_db: str,
                                             sandbox_token: str) -> None:
    n = 3000
    faults = Faults(drop_response=0.25, seed=4)
    with Recording(faults, token=sandbox_token, stall=0.15, stall_seconds=1.5) as sandbox:
        # Retries set on the connection this time (test c sets them on the flow).
        target = hubspot_target(sandbox, retry="{attempts: 12, backoff_initial: 0.2, "
                                               "backoff_max: 2}", timeout=0.5)
        c = Cluster(tmp_path, pg_url, redis_db, n, target=target,
                    target_emails=sandbox.emails)
        try:
            c.scheduler()
            c.worker()
            c.worker()
            c.enqueue()
            seconds = c.wait_done(DONE_WITHIN)
            lost, dup = c.outcome()
            by_record = per_record(sandbox.calls)
            lost_answers = [call for call in sandbox.calls if call.outcome in ("drop", "stall")]
            repeated = sum(1 for calls in by_record.values()
                           if any(x.outcome in ("drop", "stall") for x in calls[:-1]))
            per = [len(calls) for calls in by_record.values()]
            print(f"\n[lost responses] {n} records in {seconds:.1f} s; lost {lost}, "
                  f"duplicates {dup}; write calls whose answer was lost: "
                  f"{sum(1 for x in lost_answers if x.outcome == 'drop')} dropped, "
                  f"{sum(1 for x in lost_answers if x.outcome == 'stall')} timed out; "
                  f"records written again after a lost answer {repeated}; calls per record "
                  f"{sum(per) / len(per):.2f} avg, {max(per)} max")
            assert lost_answers and repeated > 0, "no answer was lost: the test tested nothing"
            # Why a repeat is harmless: creates go out as upserts by e-mail (idProperty).
            writes = {path for method, path in sandbox.requests if "/batch/" in path}
            assert writes == {"/crm/v3/objects/contacts/batch/upsert"}, writes
            assert (lost, dup) == (0, 0)
            assert len(sandbox.emails()) == n
        finally:
            c.close()
