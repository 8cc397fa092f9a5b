"""Inbound mapping of the commonest field shapes in one loop, without a call per step.

A compiled field maps a record in through three or four closures (the step, its getter,
its transforms, its setter): about 0.5 us a field in CPython, most of it calls. Most fields
of most mappings have the same few shapes: a native path of one or two keys
(`properties.email`), trim/lower/upper or one transform chain, and a canonical path of a
key, two keys or a key, a selector and a key (`emails[type=work].address`). For those the
compiler also emits a plan entry, a tuple that `run_plan` interprets inline: the same
steps the closures take, in the same order, with the same results (tests hold the two
equal). Every other field keeps its closure, called from the same loop, so field order
(which decides the order of list items such as a record's phones) is kept.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from hub.errors import RecordMappingError
from hub.mapping.paths import MISSING, Key, Segment, Select, text_of

InStep = Callable[[Any, dict[str, Any], Mapping[tuple[str, str], str]], None]

# (k1, k2, text_ops, fn, nested, set_kind, s1, s2, s3, s4, canonical, native path, step):
# a native path k1[.k2]; text ops (trim, lower, upper) or a transform chain `fn`; whether
# a null is dropped (below the top level); the setter's kind and keys. k1 None: call step.
Entry = tuple[str | None, str | None, tuple[Callable[[str], str], ...] | None,
              Callable[[Any], Any] | None, bool, int, str, str, str, str, str, str, InStep]

_SET_KEY, _SET_KEY_KEY, _SET_KEY_SELECT_KEY = 0, 1, 2


class FieldFailed(Exception):
    """A field could not be mapped; carries the canonical field and the native path."""

    def __init__(self, field: str, native: str, message: str):
        super().__init__(message)
        self.field = field
        self.native = native
        self.message = message


def call_entry(step: InStep) -> Entry:
    """An entry that calls the field's compiled step (a shape `run_plan` does not inline)."""
    return (None, None, None, None, False, 0, "", "", "", "", "", "", step)


def plan_entry(step: InStep, native: tuple[Segment, ...], canonical: tuple[Segment, ...],
               text_ops: tuple[Callable[[str], str], ...] | None,
               fn: Callable[[Any], Any] | None, nested: bool, canon: str,
               npath: str) -> Entry | None:
    """The inline entry for a field of a plain or transforms-only step, or None when its
    paths have another shape (it keeps `call_entry`). `text_ops` and `fn` exclude each
    other."""
    if not 1 <= len(native) <= 2 or not all(isinstance(s, Key) for s in native):
        return None
    k1 = native[0].name if isinstance(native[0], Key) else ""
    k2 = native[1].name if len(native) == 2 and isinstance(native[1], Key) else None
    shape = tuple(type(s) for s in canonical)
    if shape == (Key,):
        kind, keys = _SET_KEY, (_name(canonical[0]), "", "", "")
    elif shape == (Key, Key):
        kind, keys = _SET_KEY_KEY, (_name(canonical[0]), _name(canonical[1]), "", "")
    elif shape == (Key, Select, Key):
        sel = canonical[1]
        assert isinstance(sel, Select)
        kind = _SET_KEY_SELECT_KEY
        keys = (_name(canonical[0]), sel.key, sel.value, _name(canonical[2]))
    else:
        return None
    return (k1, k2, text_ops, fn, nested, kind, *keys, canon, npath, step)


def _name(seg: Segment) -> str:
    assert isinstance(seg, Key)
    return seg.name


def run_plan(plan: tuple[Entry, ...], native: dict[str, Any], data: dict[str, Any],
             refs: Mapping[tuple[str, str], str]) -> None:
    """Map `native` into `data` field by field (FieldFailed names a field that failed)."""
    # The object under the last two-key path's first key: most fields of a record sit under
    # one (`properties.*`), looked up and checked once for a run of them. Mapping only
    # reads `native`, so it does not change between fields.
    under, inner = None, None
    for k1, k2, ops, fn, nested, kind, s1, s2, s3, s4, canon, npath, step in plan:
        if k1 is None:
            step(native, data, refs)
            continue
        # The getter: an absent key, or a non-object on the way, reads as MISSING.
        if k2 is None:
            v = native.get(k1, MISSING)
        else:
            if k1 != under:
                under, inner = k1, native.get(k1)
                if not isinstance(inner, dict):
                    inner = None
            v = MISSING if inner is None else inner.get(k2, MISSING)
        if v is MISSING:
            continue  # absent: not set, so a merge keeps what the record had
        if ops is not None:
            if isinstance(v, str):  # a normaliser leaves numbers and booleans alone
                for op in ops:
                    v = op(v)
        elif fn is not None:
            try:
                v = fn(v)
            except RecordMappingError as exc:
                raise FieldFailed(canon, npath, str(exc)) from None
        if v is None and nested:
            continue  # a null below the top level would only make an empty element
        # The setter, creating the containers on the way.
        if kind == _SET_KEY:
            data[s1] = v
        elif kind == _SET_KEY_KEY:
            child = data.get(s1)
            if not isinstance(child, dict):
                child = data[s1] = {}
            child[s2] = v
        else:
            items = data.get(s1)
            if not isinstance(items, list):
                items = data[s1] = []
            for item in items:
                if isinstance(item, dict):
                    # selector_matches, inline: this runs for every list field of a record.
                    found = item.get(s2)
                    if found == s3 or (found is not None and text_of(found) == s3):
                        item[s4] = v
                        break
            else:
                items.append({s2: s3, s4: v})
