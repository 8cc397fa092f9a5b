"""A page of native records mapped in: one entry per record, in order, ready for ingest.

Mapping can run here in the engine's process (references already resolved) or in a child
process that reads the source (hub.sync.readahead). A child cannot resolve references: that
needs the store, inside the page's transaction, where a reference to a record not seen yet
creates its placeholder. So the child maps with stand-ins (`TokenRefs`): every reference
comes out as a token naming what it refers to, and the engine swaps the tokens for
canonical ids (`swap_tokens`) once it has resolved the page's references. The result is
the data in-process mapping gives: an unresolved reference is left unset, and dropped from
a list of references. A record without tokens the child finishes (`finish`): checked,
serialised and, with `Prepare`, made ready to store as a new record; the engine uses
that only when identity finds the record new, and merges as usual otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple

import orjson

from hub.canonical import stable_json, validate, without_nulls
from hub.canonical.diffs import created_values_text
from hub.canonical.redact import redact_values
from hub.errors import HubError, RecordMappingError
from hub.mapping import CompiledMapping, Inbound
from hub.store import encode_shared_source

# A connector that cannot read a record properly (a ragged or non-UTF-8 CSV row) yields
# {"__error__": "file.csv:17: why", "__raw__": what it could read}; it is dead-lettered.
ERROR_KEY = "__error__"
RAW_KEY = "__raw__"

# A reference stand-in: (TOKEN, namespace, native id). Mapped data is built from JSON and
# transforms, so it holds lists and never tuples: a tuple there is one of these.
TOKEN = "\x00liaison-ref"

REF_CACHE_SIZE = 50_000  # resolved references kept per read (engine and child): a bound


class Mapped(NamedTuple):
    """One native record mapped in, or why it could not be."""

    inb: Inbound | None  # None: the record failed (stage, error)
    native: Any  # the native record; None when it came from a child (see payload)
    # The native record as JSON, for a dead letter (child only; None when the page's JSON
    # holds it, MappedPage.natives_json)
    payload: bytes | None
    stage: str | None  # "read" or "map" when it failed
    error: str | None
    record_id: str | None  # the failed record's own id, when it has one
    tokens: bool  # inb.data holds reference tokens to swap
    done: Finished | None = None  # checked and serialised already (in the child)


class Finished(NamedTuple):
    """What the engine needs of a mapped record besides its data: the result of the
    entity's schema, the flow's filter, its JSON (which the engine fingerprints) and match
    keys."""

    errors: list[str]  # validation messages; [] when the record is valid
    filtered: bool  # the flow's filter leaves it out
    text: bytes  # the data as stored and fingerprinted (record_json)
    keys: dict[str, str] | None  # match keys; None: not worked out (not in a child process)
    # The rest of a record created from this data alone, prepared in a child process
    # (`Prepare`): its provenance as stored and its create diff as the audit trail stores
    # it, "" when that is `text` as it is (hub.canonical.diffs: nothing in it redacted,
    # the usual case); None (both): not prepared. Its fingerprint and, if it is new, its
    # canonical id the engine makes (see `finish`).
    sources: str | None = None
    audit: str | None = None


class Prepare(NamedTuple):
    """What a child process needs to prepare records as created: the source system, the
    run (provenance names it) and the fields whose values the audit trail redacts."""

    system: str
    run_id: int
    sensitive: frozenset[str]


def finish(mapping: CompiledMapping, inb: Inbound,
           keep: Callable[[dict[str, Any]], bool] | None, *, keys: bool,
           prepare: Prepare | None = None) -> Finished:
    """Validate, filter and serialise a mapped record. With `keys` (in a child process)
    also its match keys and, with `prepare`, the rest of what creating it from this data
    alone takes. The engine hashes `text` and makes a new record's id itself: that costs
    either process the same; when this was measured the child was the slower side (3.1
    against 2.4 ms a page), and handing it back after the child stopped waiting on the
    pipe measured within noise."""
    return _new(Finished, _finished(mapping, inb, keep, keys, prepare))


def _finished(mapping: CompiledMapping, inb: Inbound,
              keep: Callable[[dict[str, Any]], bool] | None, keys: bool,
              prepare: Prepare | None) -> tuple[Any, ...]:
    # `finish` as the plain tuple a child process sends (its fields in Finished's order).
    data = inb.data
    errors: list[str] = [] if inb.deleted else validate(mapping.entity, data)
    filtered = not inb.deleted and not errors and keep is not None and not keep(data)
    fresh = without_nulls(data)  # as stored: record_json, without a second look for nulls
    text = stable_json(fresh)
    if not keys or errors or filtered:
        return (errors, filtered, text, None, None, None)
    match = mapping.match_keys(data)
    if prepare is None or inb.deleted or not inb.updated_at:
        # Without the source's own time, provenance takes the engine's clock at commit.
        return (errors, filtered, text, match, None, None)
    # What Resolver.merge and the audit trail make of a record with nothing before it.
    values = redact_values(fresh, prepare.sensitive)
    audit = "" if values is fresh else created_values_text(values)
    return (errors, filtered, text, match,
            encode_shared_source(fresh, [prepare.system, inb.updated_at, prepare.run_id]),
            audit)


class MappedPage(NamedTuple):
    """A page read and mapped in a child process."""

    cursor: Any
    size: int  # native records read
    wire: list[tuple[Any, ...]]  # the entries as plain tuples (`map_page_wire`)
    wanted: list[tuple[str, str]]  # (namespace, native id) of every reference on the page
    # The native records as one JSON array (`page_json`), for a dead letter the engine
    # makes; None when the page could not be written as one (each entry then carries its
    # record's own JSON).
    natives_json: bytes | None = None

    @property
    def entries(self) -> list[Mapped]:
        """The page's entries (rebuilt from their wire form)."""
        return [from_wire(w) for w in self.wire]


_new = tuple.__new__


def from_wire(w: tuple[Any, ...]) -> Mapped:
    """The entry of one of `map_page_wire`'s tuples."""
    # tuple.__new__ builds the named tuples without their Python-level __new__: half the
    # cost, paid for every record a child sends.
    if len(w) == 4:
        return _new(Mapped, (None, None, w[3], w[0], w[1], w[2], False, None))
    return _new(Mapped, (Inbound(w[0], NOT_SENT if w[1] is None else w[1], w[2], w[3], w[4]),
                         None, w[5], None, None, None, w[6],
                         None if w[7] is None else _new(Finished, w[7])))


# The data of a record prepared as created, which the child does not send: `text` holds
# it without its nulls, which a merge treats as absent anyway (`incoming`). Never filled.
NOT_SENT: dict[str, Any] = {}


def incoming(inb: Inbound, done: Finished | None) -> dict[str, Any]:
    """A mapped record's data, decoded from its stored JSON when the child did not send it."""
    if inb.data is NOT_SENT and done is not None:
        data: dict[str, Any] = orjson.loads(done.text)
        return data
    return inb.data


def payload(native: Any) -> str:
    """A native record as JSON text, for a dead letter (anything JSON cannot hold: repr)."""
    return payload_json(native).decode()


def payload_json(native: Any) -> bytes:
    """`payload` as UTF-8 bytes: what a dead letter keeps of a record."""
    try:
        return orjson.dumps(native, default=str)
    except TypeError:
        return orjson.dumps(repr(native))


def page_json(natives: Sequence[Any]) -> bytes | None:
    """A page's native records as one JSON array, as `payload_json` writes each (None if
    one of them needs its repr): what a child process sends for the engine's rare dead
    letter of a record it mapped. One dump a page costs less than half of one per record
    (orjson's fixed cost per call), and one bytes object crosses the pipe instead of a
    hundred."""
    try:
        return orjson.dumps(natives, default=str)
    except TypeError:
        return None


class PageJson:
    """`page_json` of a page, read only when the engine dead-letters one of its records."""

    __slots__ = ("_records", "_text")

    def __init__(self, text: bytes) -> None:
        self._text = text
        self._records: list[Any] | None = None

    def record(self, index: int) -> bytes:
        """The JSON of the page's record at `index`, byte for byte what `payload_json`
        makes of it (a compact dump; JSON read back dumps as it was)."""
        if self._records is None:
            self._records = orjson.loads(self._text)
        return orjson.dumps(self._records[index])


class TokenRefs(Mapping[tuple[str, str], Any]):
    """References as stand-ins, for mapping without the store: the ones in `known` (ids
    the engine resolved for earlier pages) directly, the others as tokens (noted in
    `used`)."""

    def __init__(self, known: Mapping[tuple[str, str], str] | None = None) -> None:
        self.used = False
        self.known = known if known is not None else {}

    def get(self, key: tuple[str, str], default: Any = None) -> Any:
        found = self.known.get(key)
        if found is not None:
            return found
        self.used = True
        return (TOKEN, key[0], key[1])

    def __getitem__(self, key: tuple[str, str]) -> Any:
        return self.get(key)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(())

    def __len__(self) -> int:
        return 0


def map_page(mapping: CompiledMapping, natives: Sequence[Any],
             refs: Mapping[tuple[str, str], str] | None) -> list[Mapped]:
    """Map each native record in, references resolved by `refs` (in the engine's process;
    a child process maps with `map_page_wire`)."""
    out: list[Mapped] = []
    append = out.append
    inbound = mapping.inbound
    for native in natives:
        if ERROR_KEY in native:
            raw = native.get(RAW_KEY, {k: v for k, v in native.items() if k != ERROR_KEY})
            append(Mapped(None, raw, None, "read", str(native[ERROR_KEY]), None, False))
            continue
        try:
            inb = inbound(native, refs)
        except RecordMappingError as exc:
            append(Mapped(None, native, None, "map", str(exc), exc.record_id, False))
            continue
        except HubError as exc:
            append(Mapped(None, native, None, "map", str(exc), None, False))
            continue
        append(Mapped(inb, native, None, None, None, None, False))
    return out


def map_page_wire(mapping: CompiledMapping, natives: Sequence[Any], *,
                  known: Mapping[tuple[str, str], str] | None = None,
                  keep: Callable[[dict[str, Any]], bool] | None = None,
                  prepare: Prepare | None = None,
                  each_json: bool = True) -> list[tuple[Any, ...]]:
    """Map a page in a child process, straight into the plain tuples it sends (`from_wire`
    reads them; unpickling named tuples and dataclasses runs Python code per object).

    References not `known` become tokens; a record without tokens is finished here
    (`finish`, with `keep` the flow's filter and `prepare` what preparing it as created
    needs). A record prepared as created is sent without its data: the engine needs it
    only if the record turns out to exist already, and then decodes it from the finished
    JSON (NOT_SENT). The engine no longer has the native records: a record that failed
    carries its JSON, and so does every record with `each_json` (else the page's JSON,
    `page_json`, travels beside the entries: MappedPage.natives_json)."""
    out: list[tuple[Any, ...]] = []
    append = out.append
    inbound = mapping.inbound
    tokens = TokenRefs(known)
    for native in natives:
        if ERROR_KEY in native:
            raw = native.get(RAW_KEY, {k: v for k, v in native.items() if k != ERROR_KEY})
            append(("read", str(native[ERROR_KEY]), None, payload_json(raw)))
            continue
        tokens.used = False
        try:
            inb = inbound(native, tokens)
        except RecordMappingError as exc:
            append(("map", str(exc), exc.record_id, payload_json(native)))
            continue
        except HubError as exc:
            append(("map", str(exc), None, payload_json(native)))
            continue
        used = tokens.used
        done = (_finished(mapping, inb, keep, True, prepare)
                if not used and not inb.skip_reason else None)
        append((inb.external_id, None if done is not None and done[4] is not None else inb.data,
                inb.updated_at, inb.deleted, inb.skip_reason,
                payload_json(native) if each_json else None, used, done))
    return out


def child_page(mapping: CompiledMapping, cursor: Any, natives: Sequence[Any], *,
               known: Mapping[tuple[str, str], str],
               keep: Callable[[dict[str, Any]], bool] | None = None,
               prepare: Prepare | None = None) -> MappedPage:
    """What a child process sends of a page it read (`cursor` after it): the entries
    (`map_page_wire`), the references it could not resolve from `known` (the engine
    resolves them inside the page's transaction) and the page's JSON."""
    wanted = ([k for k in wanted_refs(mapping, natives) if k not in known]
              if mapping.has_references else [])
    blob = page_json(natives)
    return MappedPage(cursor, len(natives),
                      map_page_wire(mapping, natives, known=known, keep=keep, prepare=prepare,
                                    each_json=blob is None),
                      wanted, blob)


def wanted_refs(mapping: CompiledMapping, natives: Sequence[Any]) -> list[tuple[str, str]]:
    """(namespace, native id) of every reference in the records, once each."""
    wanted: dict[tuple[str, str], None] = {}
    for native in natives:
        try:
            for key in mapping.native_refs(native):
                wanted[key] = None
        except HubError:
            continue  # the record's own mapping fails and dead-letters it with words
    return list(wanted)


def swap_tokens(data: dict[str, Any], roots: frozenset[str],
                refs: Mapping[tuple[str, str], str]) -> None:
    """Replace the reference tokens under `roots` by canonical ids; unresolved ones go."""
    for key in roots:
        if key in data:
            value = _swap(data[key], refs)
            if value is _GONE:
                del data[key]
            else:
                data[key] = value


_GONE = object()


def _swap(value: Any, refs: Mapping[tuple[str, str], str]) -> Any:
    if type(value) is tuple and len(value) == 3 and value[0] == TOKEN:
        found = refs.get((value[1], value[2]))
        return _GONE if found is None else found
    if type(value) is list:
        out = []
        for item in value:
            swapped = _swap(item, refs)
            if swapped is not _GONE:
                out.append(swapped)
        return out
    if type(value) is dict:
        for k in list(value):
            swapped = _swap(value[k], refs)
            if swapped is _GONE:
                del value[k]
            else:
                value[k] = swapped
    return value
