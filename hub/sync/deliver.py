"""Deliver owed changes (the outbox) to one target system.

For each owed record: map it out, and compare what the target would then show (the record
mapped out and back in, fingerprinted) with the fingerprint stored on the link. Equal means
the target already has it: nothing is written. Otherwise create or update, in batches of the
connector's size, and record the link and fingerprint in the same transaction that clears
the outbox row, so a repeated delivery finds the link and does not create a duplicate.

The transaction is not held while the target is called: ops are prepared from committed
rows, the connector writes, and the outcome is committed afterwards.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from hub.canonical import fingerprint_json, record_json
from hub.connector import NativeRecord, WriteOp, WriteResult
from hub.errors import HubError, RateLimited, TransientError
from hub.mapping import CompiledMapping, split_namespace
from hub.store import LinkRow, Store, now_iso
from hub.sync.context import FlowContext
from hub.sync.hooks import OUT_COLUMNS, Change, Observer, RunCounts, RunInfo, Tally


@dataclass
class _Planned:
    row_id: int
    attempts: int
    canonical_id: str
    op: WriteOp
    view_fp: str


def view_fingerprint(mapping: CompiledMapping, native: dict[str, Any], external_id: str | None,
                     refs_back: dict[tuple[str, str], str]) -> str:
    """Fingerprint of a native record as its system's mapping reads it back."""
    # As ingest fingerprints what it reads (record_json): equal when nothing changed.
    return fingerprint_json(record_json(mapping.view(native, external_id or "-", refs_back)))


def backoff(attempt: int, initial: float, ceiling: float) -> float:
    """Exponential backoff with full jitter, capped."""
    base: float = min(ceiling, initial * (2.0 ** max(0, attempt - 1)))
    return base * (0.5 + random.random() / 2)


class Deliverer:
    """Delivers one flow's outbox to one target."""

    def __init__(self, ctx: FlowContext, store: Store, run: RunInfo, counts: RunCounts,
                 target: str, observers: Sequence[Observer], *, fence: Any = None) -> None:
        self.ctx = ctx
        self.store = store
        self.run = run
        self.counts = counts
        self.target = target
        self.observers = observers
        self.mapping = ctx.mappings[target]
        self.entity = ctx.flow.entity
        self.policy = ctx.flow.delete_policy
        self.retry = ctx.retry(target)
        self.fence = fence  # the run's lease: a commit after losing it is refused
        self._refs_back: dict[tuple[str, str], str] = {}
        # The target is also read: an edit made there since Liaison last saw the record is
        # read by the next run and settled by the conflict policy, not overwritten.
        self.two_way = ctx.flow.direction == "two-way"
        with store.connect() as conn:
            self._had_dead = store.has_open_dead_letters(conn, run.flow, target)

    def _plan(self, rows: Sequence[Any]) -> tuple[list[_Planned], list[int]]:
        store, mapping, entity, target = self.store, self.mapping, self.entity, self.target
        done: list[int] = []
        planned: list[_Planned] = []
        with store.connect() as conn:
            recs = store.get_records(conn, [r.canonical_id for r in rows])
            links = store.links_by_canonical(conn, target, entity, recs.keys())
            refs: dict[tuple[str, str], str] = {}
            if mapping.has_references:
                wanted: dict[str, set[str]] = {}
                for rec in recs.values():
                    for ent, cid in mapping.canonical_refs(rec.data):
                        wanted.setdefault(ent, set()).add(cid)
                for ns, cids in wanted.items():
                    ent, by = split_namespace(ns)
                    if by is not None:  # the target names the record by a match key
                        for cid, value in store.match_values_of(conn, ent, by, cids).items():
                            refs[(ns, cid)] = value
                        continue
                    for cid, ref in store.links_by_canonical(conn, target, ent, cids).items():
                        refs[(ns, cid)] = ref.external_id
        refs_back = {(ent, nid): cid for (ent, cid), nid in refs.items()}
        self._refs_back = refs_back
        for row in rows:
            found = recs.get(row.canonical_id)
            link = links.get(row.canonical_id)
            if found is None or found.stub:
                done.append(row.id)
                continue
            rec = found
            if rec.deleted:
                if link is None or self.policy == "ignore":
                    done.append(row.id)
                    continue
                op = WriteOp(action="archive" if self.policy == "archive" else "delete",
                             key=f"{rec.id}:{self.policy}", record={},
                             external_id=link.external_id, canonical_id=rec.id,
                             as_last_seen=self._last_seen(link))
                planned.append(_Planned(row.id, row.attempts, rec.id, op, ""))
                continue
            native = mapping.outbound(rec.data, refs)
            fp = view_fingerprint(mapping, native, link.external_id if link else None,
                                  refs_back)
            if link is not None and link.fingerprint == fp:
                self.counts.write_unchanged += 1
                done.append(row.id)
                continue
            op = WriteOp(action="update" if link else "create", key=f"{rec.id}:{fp[:16]}",
                         record=native, external_id=link.external_id if link else None,
                         match=mapping.match_keys(rec.data), canonical_id=rec.id,
                         as_last_seen=self._last_seen(link) if link else None)
            planned.append(_Planned(row.id, row.attempts, rec.id, op, fp))
        return planned, done

    def _last_seen(self, link: LinkRow) -> Callable[[NativeRecord], bool] | None:
        """WriteOp.as_last_seen for a record linked in the target: in a two-way flow, whether
        the target's record still shows what the link's fingerprint says Liaison last read or
        wrote there (the same view and fingerprint ingest compares to tell a change from an
        echo, so an edit of a field the mapping does not read is no conflict). One-way flows
        get no check: the source is meant to win there."""
        if not self.two_way:
            return None
        mapping, refs_back = self.mapping, self._refs_back
        external_id, seen = link.external_id, link.fingerprint

        def as_last_seen(native: NativeRecord) -> bool:
            try:
                return view_fingerprint(mapping, native, external_id, refs_back) == seen
            except HubError:
                return False  # it no longer maps as it did: changed, by definition
        return as_last_seen

    def _write(self, planned: Sequence[_Planned]) -> list[WriteResult]:
        connector = self.ctx.connector(self.target)
        size = max(1, connector.capabilities.batch_size)
        obj = self.mapping.object
        results: list[WriteResult] = []
        for i in range(0, len(planned), size):
            ops = [p.op for p in planned[i:i + size]]
            try:
                got = {r.key: r for r in connector.write(obj, ops)}
            except TransientError as exc:
                got = {op.key: WriteResult(op.key, False, error=exc) for op in ops}
            # A PermanentError for the whole call (credentials refused, the target folder is
            # missing) is about the connection, not the records: it fails the run and the
            # deliveries stay owed, instead of dead-lettering every record for one cause.
            for op in ops:
                results.append(got.get(op.key) or WriteResult(
                    op.key, False, error=TransientError(
                        f"{self.target} gave no result for this record")))
        return results

    def deliver(self, dry_run: bool = False) -> None:
        """Deliver everything owed to the target that is due now."""
        store, counts = self.store, self.counts
        after = 0
        batch = max(100, self.ctx.flow.page_size)
        tally = Tally(counts, OUT_COLUMNS)
        while True:
            t0 = time.perf_counter()
            with store.connect() as conn:
                rows = store.outbox_due(conn, self.run.flow, self.target, batch, after)
            if not rows:
                return
            after = rows[-1].id
            planned, done = self._plan(rows)
            t1 = time.perf_counter()
            counts.add_time("deliver.plan", t1 - t0)
            if dry_run:
                counts.written += len(planned)
                continue
            results = self._write(planned) if planned else []
            t2 = time.perf_counter()
            counts.add_time("deliver.write", t2 - t1)
            self._commit(planned, results, done)
            counts.add_time("deliver.commit", time.perf_counter() - t2)
            gained = tally.take()
            if gained:
                for obs in self.observers:
                    obs.records_committed(self.run, self.target, "out", gained)

    def _commit(self, planned: Sequence[_Planned], results: Sequence[WriteResult],
                done: list[int]) -> None:
        store, counts, entity, target = self.store, self.counts, self.entity, self.target
        now = now_iso()
        links: list[dict[str, Any]] = []
        unlink: list[str] = []
        dead: list[dict[str, Any]] = []
        changes: list[Change] = []
        retries: list[tuple[int, int, float, str]] = []
        for p, res in zip(planned, results, strict=True):
            if res.ok:
                ext = res.external_id or p.op.external_id
                if p.op.action in ("archive", "delete"):
                    unlink.append(p.canonical_id)
                elif ext:
                    fp = p.view_fp
                    if res.record is not None:
                        try:
                            # What the target stored (it may normalise values) is what
                            # it will show us next time: fingerprint that.
                            fp = view_fingerprint(self.mapping, res.record, ext,
                                                  self._refs_back)
                        except HubError:
                            fp = p.view_fp
                    links.append({"system": target, "entity": entity, "external_id": ext,
                                  "canonical_id": p.canonical_id, "fingerprint": fp,
                                  "updated_at": now})
                diff = {k: [None, v] for k, v in p.op.record.items()}
                changes.append(Change(f"write.{p.op.action}", entity, p.canonical_id, target,
                                      ext, diff, self.mapping.sensitive_fields))
                counts.written += 1
                done.append(p.row_id)
                continue
            err = res.error or TransientError("unknown failure")
            attempts = p.attempts + 1
            if isinstance(err, TransientError) and attempts < self.retry.attempts:
                delay = backoff(attempts, self.retry.backoff_initial, self.retry.backoff_max)
                if isinstance(err, RateLimited) and err.retry_after:
                    delay = max(delay, err.retry_after)
                retries.append((p.row_id, attempts, delay, str(err)))
                continue
            reason = str(err) if not isinstance(err, TransientError) else (
                f"gave up after {attempts} attempts: {err}")
            dead.append({"run_id": self.run.run_id, "flow": self.run.flow, "system": target,
                         "entity": entity, "stage": "write", "external_id": p.op.external_id,
                         "canonical_id": p.canonical_id,
                         "payload": orjson.dumps(p.op.record, default=str).decode(),
                         "error": reason, "attempts": attempts})
            counts.write_failed += 1
            for obs in self.observers:
                obs.dead_lettered(self.run, target, "write", reason)
            done.append(p.row_id)
        with store.begin() as conn:
            if self.fence is not None:
                self.fence.check(conn)
            if self._had_dead:
                store.close_dead_letters(conn, self.run.flow, target, canonical_ids=[
                    p.canonical_id for p, r in zip(planned, results, strict=True) if r.ok])
            if links:
                store.upsert_links(conn, links)
            if unlink:
                store.delete_links(conn, target, entity, unlink)
            store.add_dead_letters(conn, dead)
            store.outbox_done(conn, done)
            for row_id, attempts, delay, error in retries:
                store.outbox_retry(conn, row_id, attempts, delay, error)
            for obs in self.observers:
                obs.page_committing(conn, self.run, changes)
