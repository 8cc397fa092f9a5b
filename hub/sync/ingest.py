"""Ingest one page from a source: map in, validate, resolve identity, merge, stage for commit.

Everything about a page is decided with a handful of batched queries (links, match keys,
records) and written by the caller in ONE transaction together with the cursor: either the
whole page is committed or none of it is, so the cursor never passes an uncommitted record.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection

from hub.canonical import (
    SCHEMA_VERSION,
    fingerprint_json,
    normalise_match_value,
    stable_json,
)
from hub.canonical.diffs import created_text
from hub.mapping import CompiledMapping, Inbound, split_namespace
from hub.store import RecordRow, Store, encode_sources, now_iso
from hub.sync.conflict import Resolver
from hub.sync.context import FlowContext
from hub.sync.hooks import Change, CreatedDiff, RunCounts, RunInfo
from hub.sync.ids import new_id
from hub.sync.mapped import (
    ERROR_KEY,
    RAW_KEY,
    REF_CACHE_SIZE,
    Finished,
    Mapped,
    MappedPage,
    PageJson,
    finish,
    incoming,
    map_page,
    payload,
    swap_tokens,
    wanted_refs,
)

__all__ = ["ERROR_KEY", "RAW_KEY", "Ingestor", "PageResult", "new_id"]


@dataclass
class PageResult:
    """What ingesting one page changed, for the caller's transaction and the observers."""

    changes: list[Change] = field(default_factory=list)
    dead: list[dict[str, Any]] = field(default_factory=list)
    to_deliver: list[str] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)
    synced: list[str] = field(default_factory=list)  # external ids that went through fine
    unsafe_for_deletes: bool = False  # a record without a readable id: deletion detection off


# A page's record on its way to the store: its source (the native record or, mapped in a
# child process, its JSON or its index in the page's JSON: Ingestor._text), the mapped
# record, its fingerprint, the JSON fingerprinted (which is the JSON it is stored as:
# record_json), its match keys (None: not worked out yet) and, when a child process
# prepared it as created, what it prepared (else None).
_Item = tuple[Any, Inbound, str, bytes, dict[str, str] | None, Finished | None]


class Ingestor:
    """Ingests pages of one source system for one run."""

    def __init__(self, ctx: FlowContext, store: Store, run: RunInfo, counts: RunCounts,
                 resolver: Resolver, source: str) -> None:
        self.ctx = ctx
        self.store = store
        self.run = run
        self.counts = counts
        self.resolver = resolver
        self.source = source
        self.mapping: CompiledMapping = ctx.mappings[source]
        self.entity = ctx.flow.entity
        self.owned = ctx.owned[source]
        self.full = run.mode == "full"
        flow = ctx.flow
        self.targets = ctx.delivery_targets if flow.direction == "two-way" else flow.targets
        self.deliver_deletes = flow.delete_policy != "ignore"
        # References by link resolved so far in this read (a thousand contacts name a few
        # dozen companies: looking each up again per page was a tenth of ingest's time).
        # A link is made once and only removed with its record's deletion, when a reference
        # kept from a page ago names what resolving it a page ago named anyway. A dry run
        # rolls its pages back, stubs included, so it keeps nothing. References by match key
        # are not kept: the owner of an address can change within a run.
        self._link_refs: dict[tuple[str, str], str] = {}
        self._learned: list[tuple[tuple[str, str], str]] = []  # since take_learned()
        self.learning = False  # whether to keep them for take_learned()
        self._cache_refs = not run.dry_run
        self._page_json: PageJson | None = None  # the JSON of the page being ingested

    def _text(self, source: Any) -> bytes | None:
        """An item's source as JSON, if it came from a child process (its own JSON, or its
        index in the page's JSON); None for a native record (`payload` writes it)."""
        if type(source) is int:
            assert self._page_json is not None
            return self._page_json.record(source)
        return source if isinstance(source, bytes) else None

    def take_learned(self) -> list[tuple[tuple[str, str], str]]:
        """References by link resolved since the last call (for a read-ahead child, which
        then maps them itself): ((entity, native id), canonical id) pairs."""
        learned, self._learned = self._learned, []
        return learned

    # -- helpers -------------------------------------------------------------------------

    def _dead(self, out: PageResult, stage: str, error: str, native: Any,
              external_id: str | None = None, canonical_id: str | None = None, *,
              text: bytes | None = None) -> None:
        """Dead-letter a record; `text` is the native record already as JSON."""
        self.counts.dead_lettered += 1
        out.dead.append({"run_id": self.run.run_id, "flow": self.run.flow,
                         "system": self.source, "entity": self.entity, "stage": stage,
                         "external_id": external_id, "canonical_id": canonical_id,
                         "payload": text.decode() if text is not None else payload(native),
                         "error": error})

    def _skip(self, reason: str) -> None:
        self.counts.skipped += 1
        self.counts.skip_reasons[reason] += 1

    def _resolve_refs(self, conn: Connection, refs_wanted: Sequence[tuple[str, str]]
                      ) -> dict[tuple[str, str], str]:
        """Canonical ids for the records this page refers to; stubs for unknown ones.

        A stub is an empty placeholder record that the referenced record fills when it
        arrives: by its link (a native id of this system) or by its match key (a
        reference `by: email` makes a stub owning that address, so the contact that later
        comes from the CRM with the same address is recognised as the same person).
        """
        wanted: dict[str, set[str]] = {}
        refs: dict[tuple[str, str], str] = {}
        known = self._link_refs
        for key in refs_wanted:
            cid = known.get(key)
            if cid is not None:
                refs[key] = cid
            else:
                wanted.setdefault(key[0], set()).add(key[1])
        for ns, ids in wanted.items():
            ent, by = split_namespace(ns)
            if by is None:
                self._refs_by_link(conn, ent, ids, refs)
                if self._cache_refs:
                    if len(known) > REF_CACHE_SIZE:
                        known.clear()
                    resolved = [(k, refs[k]) for k in ((ns, nid) for nid in ids)]
                    known.update(resolved)
                    if self.learning:
                        self._learned.extend(resolved)
            else:
                self._refs_by_key(conn, ns, ent, by, ids, refs)
        return refs

    def _stub(self, ent: str, cid: str, now: str) -> dict[str, Any]:
        return {"id": cid, "entity": ent, "schema_version": SCHEMA_VERSION, "data": "{}",
                "sources": "{}", "fingerprint": "", "stub": True, "deleted": False,
                "created_at": now, "updated_at": now}

    def _refs_by_link(self, conn: Connection, ent: str, ids: set[str],
                      refs: dict[tuple[str, str], str]) -> None:
        now = now_iso()
        found = self.store.links_by_external(conn, self.source, ent, ids)
        stubs, stub_links = [], []
        for nid in ids:
            link = found.get(nid)
            if link is not None:
                refs[(ent, nid)] = link.canonical_id
                continue
            cid = new_id()
            refs[(ent, nid)] = cid
            stubs.append(self._stub(ent, cid, now))
            stub_links.append({"system": self.source, "entity": ent, "external_id": nid,
                               "canonical_id": cid, "fingerprint": "", "updated_at": now})
        self.store.insert_stubs(conn, stubs)
        if stub_links:
            self.store.upsert_links(conn, stub_links)

    def _refs_by_key(self, conn: Connection, ns: str, ent: str, by: str, ids: set[str],
                     refs: dict[tuple[str, str], str]) -> None:
        normal = {nid: normalise_match_value(ent, by, nid) for nid in ids}
        values = {v for v in normal.values() if v is not None}
        owners = self.store.match_lookup(conn, ent, ((by, v) for v in values))
        now = now_iso()
        stubs: list[dict[str, Any]] = []
        created: dict[str, str] = {}  # value -> new stub id (two spellings, one stub)
        for nid, value in normal.items():
            if value is None:
                continue  # an empty address refers to nobody: the reference stays unset
            cid = owners.get((by, value)) or created.get(value)
            if cid is None:
                cid = created[value] = new_id()
                stubs.append(self._stub(ent, cid, now))
            refs[(ns, nid)] = cid
        self.store.insert_stubs(conn, stubs)
        if created:
            self.store.replace_match_keys(
                conn, ent, {cid: {by: value} for value, cid in created.items()},
                new=set(created.values()))

    # -- the page ------------------------------------------------------------------------

    def ingest(self, conn: Connection, natives: Sequence[dict[str, Any]]) -> PageResult:
        """Map and process one page inside `conn`'s transaction; the caller commits."""
        t0 = time.perf_counter()
        refs = (self._resolve_refs(conn, wanted_refs(self.mapping, natives))
                if self.mapping.has_references else {})
        entries = map_page(self.mapping, natives, refs)
        return self._ingest(conn, len(natives), entries, refs, t0)

    def ingest_mapped(self, conn: Connection, page: MappedPage) -> PageResult:
        """Process one page mapped in a child process (hub.sync.readahead): its reference
        tokens are resolved here, inside `conn`'s transaction; the caller commits."""
        t0 = time.perf_counter()
        refs = self._resolve_refs(conn, page.wanted) if page.wanted else {}
        self._page_json = None if page.natives_json is None else PageJson(page.natives_json)
        try:
            return self._ingest(conn, page.size, page.entries, refs, t0)
        finally:
            self._page_json = None

    def _ingest(self, conn: Connection, size: int, entries: Sequence[Mapped],
                refs: dict[tuple[str, str], str], t0: float) -> PageResult:
        out = PageResult()
        counts = self.counts
        counts.read += size
        items: dict[str, _Item] = {}
        mapping, roots, keep = self.mapping, self.mapping.ref_roots, self.ctx.filter
        in_page = self._page_json is not None  # records without their own JSON: by index
        for index, entry in enumerate(entries):
            inb = entry.inb
            if inb is None:
                if entry.stage == "read" or entry.record_id is None:
                    out.unsafe_for_deletes = True
                else:
                    out.seen.append(entry.record_id)
                self._dead(out, entry.stage or "map", entry.error or "", entry.native,
                           entry.record_id, text=entry.payload)
                continue
            source = (entry.payload if entry.payload is not None
                      else index if in_page else entry.native)
            out.seen.append(inb.external_id)
            if inb.skip_reason:
                self._skip(inb.skip_reason)
                continue
            done = entry.done
            if done is None:  # not finished in a child process: references resolved here
                if entry.tokens:
                    swap_tokens(inb.data, roots, refs)
                done = finish(mapping, inb, keep, keys=False)
            if done.errors:
                self._dead(out, "validate",
                           f"record {inb.external_id}: " + "; ".join(done.errors),
                           entry.native, inb.external_id, text=self._text(source))
                continue
            if done.filtered:
                self._skip("filtered out by the flow's filter")
                continue
            if inb.external_id in items:
                self._skip("the same record appeared twice in one page; the later copy was used")
            items[inb.external_id] = (source, inb, fingerprint_json(done.text), done.text,
                                      done.keys, done if done.sources is not None else None)
        t1 = time.perf_counter()
        counts.add_time("map+validate", t1 - t0)

        if items:
            self._identify_and_merge(conn, items, out)
        counts.add_time("identity+merge", time.perf_counter() - t1)
        return out

    def _identify_and_merge(self, conn: Connection,
                            items: dict[str, _Item],
                            out: PageResult) -> None:
        store, entity, source, counts = self.store, self.entity, self.source, self.counts
        links = store.links_by_external(conn, source, entity, items.keys())

        # Fast path: the system shows exactly what we last saw or wrote there (no change,
        # and no echo of our own write in a two-way flow).
        pending: dict[str, _Item] = {}
        for ext, item in items.items():
            link = links.get(ext)
            if link is not None and link.fingerprint == item[2] and not item[1].deleted:
                counts.unchanged += 1
                out.synced.append(ext)
            else:
                pending[ext] = item
        if not pending:
            return

        # Identity: link first, then match keys, else a new canonical id.
        ids: dict[str, str] = {ext: links[ext].canonical_id for ext in pending if ext in links}
        keys_of: dict[str, dict[str, str]] = {}
        fresh: set[str] = set()
        unlinked = [ext for ext in pending if ext not in ids]
        if unlinked:
            wanted: list[tuple[str, str]] = []
            for ext in unlinked:
                known = pending[ext][4]
                keys_of[ext] = known if known is not None else self.mapping.match_keys(
                    pending[ext][1].data)
                wanted.extend(keys_of[ext].items())
            owners = store.match_lookup(conn, entity, wanted) if wanted else {}
            claimed: dict[tuple[str, str], str] = {}
            candidates: dict[str, str] = {}
            for ext in unlinked:
                mine = keys_of[ext].items()
                # Loops, not next() over a generator: this runs for every new record.
                dup = match = None
                for k in mine:
                    if k in claimed:
                        dup = k
                        break
                if dup is not None:
                    native = pending.pop(ext)[0]
                    self._dead(out, "identity",
                               f"record {ext}: duplicate {dup[0]} {dup[1]!r}: record "
                               f"{claimed[dup]} in the same batch has it too; merge the two "
                               f"in {source} or change one", native, ext, text=self._text(native))
                    continue
                for k in mine:
                    claimed[k] = ext
                for k in mine:
                    if k in owners:
                        match = owners[k]
                        break
                if match is not None:
                    candidates[ext] = match
            taken = store.links_by_canonical(conn, source, entity, candidates.values())
            for ext, cid in candidates.items():
                other = taken.get(cid)
                if other is not None and other.external_id != ext:
                    native = pending.pop(ext)[0]
                    key = next(iter(keys_of[ext].items()))
                    self._dead(out, "identity",
                               f"record {ext}: duplicate {key[0]} {key[1]!r}: {source} record "
                               f"{other.external_id} already has it; merge the two in "
                               f"{source} or change one", native, ext, text=self._text(native))
                    continue
                ids[ext] = cid
            for ext in pending:
                if ext not in ids:
                    ids[ext] = cid = new_id()
                    fresh.add(cid)

        # A fresh id has no record yet: only the others are looked up.
        existing = store.get_records(conn, [cid for cid in ids.values() if cid not in fresh])
        self._merge(conn, pending, ids, existing, keys_of, out)

    def _merge(self, conn: Connection, pending: dict[str, _Item],
               ids: dict[str, str], existing: dict[str, RecordRow],
               keys_of: dict[str, dict[str, str]], out: PageResult) -> None:
        counts, entity, source = self.counts, self.entity, self.source
        now = now_iso()
        record_rows: list[dict[str, Any]] = []
        link_rows: list[dict[str, Any]] = []
        new_keys: dict[str, dict[str, str]] = {}
        created: set[str] = set()
        sensitive = self.mapping.sensitive_fields
        full, run_id = self.full, self.run.run_id
        for ext, (_native, inb, fp, text, keys, prepared) in pending.items():
            cid = ids[ext]
            old = existing.get(cid)
            if (prepared is not None and keys is not None
                    and (old is None or (old.stub and not old.data and not old.sources))):
                # Created from this data alone, all of it prepared in the read-ahead child:
                # what Resolver.merge and the audit trail would make of it, without either.
                link: dict[str, Any] = {"system": source, "entity": entity,
                                        "external_id": ext, "canonical_id": cid,
                                        "fingerprint": fp, "updated_at": now}
                if full:
                    link["seen_run"] = run_id
                link_rows.append(link)
                stored = text.decode()
                record_rows.append({"id": cid, "entity": entity,
                                    "schema_version": SCHEMA_VERSION, "data": stored,
                                    "sources": prepared.sources, "fingerprint": fp,
                                    "stub": False, "deleted": False, "created_at": now,
                                    "updated_at": now})
                out.changes.append(Change("create", entity, cid, source, ext,
                                          CreatedDiff(text), sensitive,
                                          prepared.audit or created_text(stored)))
                counts.created += 1
                if old is None:
                    created.add(cid)
                new_keys[cid] = keys
                out.to_deliver.append(cid)
                continue
            link_row: dict[str, Any] = {"system": source, "entity": entity, "external_id": ext,
                                        "canonical_id": cid, "fingerprint": fp,
                                        "updated_at": now}
            if full:
                link_row["seen_run"] = run_id
            link_rows.append(link_row)
            if inb.deleted:
                if old is None or old.stub or old.deleted:
                    if old is None or old.stub:
                        self._skip("deleted in the source before it was ever synced")
                    else:
                        counts.unchanged += 1
                    continue
                record_rows.append(self._row(old, old.data, old.sources, deleted=True, now=now))
                out.changes.append(Change("delete", entity, cid, source, ext,
                                          {"deleted": [False, True]}, sensitive))
                counts.updated += 1
                counts.deleted += 1
                if self.deliver_deletes:
                    out.to_deliver.append(cid)
                continue
            base_data = old.data if old is not None else {}
            base_sources = old.sources if old is not None else {}
            data = incoming(inb, prepared)
            merged = self.resolver.merge(base_data, base_sources, data, self.owned,
                                         source, inb.updated_at or now)
            is_new = old is None or old.stub
            restored = old is not None and old.deleted
            if not merged.diff and not is_new and not restored:
                counts.unchanged += 1
                if merged.conflicts:
                    out.to_deliver.append(cid)  # put the winning value back into the source
                continue
            # A record made from this data alone is stored as it was fingerprinted
            # (record_json): one serialisation instead of two.
            as_stored = (text, fp) if not base_data else None
            record_rows.append(self._row(old, merged.data, merged.sources, deleted=False,
                                         now=now, cid=cid, stored=as_stored))
            action = "create" if is_new else ("restore" if restored else "update")
            out.changes.append(Change(action, entity, cid, source, ext, merged.diff, sensitive))
            if is_new:
                counts.created += 1
                if old is None:
                    created.add(cid)
            else:
                counts.updated += 1
            new_keys[cid] = keys_of.get(ext) or self.mapping.match_keys(merged.data)
            out.to_deliver.append(cid)

        out.synced.extend(pending)  # every pending record got its link row above
        store = self.store
        if record_rows:
            store.upsert_records(conn, record_rows)
        store.upsert_links(conn, link_rows)
        store.replace_match_keys(conn, entity, new_keys, created)

    def _row(self, old: RecordRow | None, data: dict[str, Any], sources: dict[str, Any], *,
             deleted: bool, now: str, cid: str | None = None,
             stored: tuple[bytes, str] | None = None) -> dict[str, Any]:
        # `stored`: the data's JSON and fingerprint, when already worked out.
        text, fp = stored if stored is not None else (stable_json(data), None)
        return {"id": old.id if old is not None else cid, "entity": self.entity,
                "schema_version": SCHEMA_VERSION, "data": text.decode(),
                "sources": encode_sources(sources),
                "fingerprint": fp if fp is not None else fingerprint_json(text),
                "stub": False, "deleted": deleted,
                "created_at": old.created_at if old is not None and not old.stub else now,
                "updated_at": now}

    def detect_deletions(self, conn: Connection) -> list[Change]:
        """After a full read: records linked to the source but not seen were deleted there."""
        gone = self.store.unseen_links(conn, self.source, self.entity, self.run.run_id)
        if not gone:
            return []
        existing = self.store.get_records(conn, [g.canonical_id for g in gone])
        now = now_iso()
        changes: list[Change] = []
        rows = []
        for link in gone:
            rec = existing.get(link.canonical_id)
            if rec is None or rec.stub or rec.deleted:
                continue
            rows.append(self._row(rec, rec.data, rec.sources, deleted=True, now=now))
            changes.append(Change("delete", self.entity, rec.id, self.source, link.external_id,
                                  {"deleted": [False, True]}))
            self.counts.deleted += 1
        if rows:
            self.store.upsert_records(conn, rows)
        self.store.delete_links(conn, self.source, self.entity,
                                [g.canonical_id for g in gone])
        return changes
