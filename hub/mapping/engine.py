"""Compile a MappingSpec once into closures that map native <-> canonical records fast.

`compile_mapping` checks the whole spec (entity, canonical paths, native paths,
transforms, references, conditions, match keys) and raises one MappingError listing every
problem, each at file:line: key. The result, `CompiledMapping`, holds only closures and
tuples: the per-record path does no spec lookups and no parsing.

Absent and null differ: a value absent from the native record is not set in the canonical
data (so a merge keeps what it had), an explicit null sets None. A reference whose native
id the caller could not resolve (missing from `refs`) is left unset, for the same reason.
A record that is deleted or filtered out (skip_when/only_when) comes back with empty data:
a tombstone need not be mappable. A field's `when` condition reads the native record and
applies on the way in only; on the way out a field is written whenever the data has it.
"""

from __future__ import annotations

import copy
import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from hub.errors import MappingError, Problem, RecordMappingError
from hub.mapping import transforms as tf
from hub.mapping.conditions import Condition, compile_condition
from hub.mapping.paths import (
    MISSING,
    Getter,
    Setter,
    compile_getter,
    compile_setter,
    parse_path,
    text_of,
)
from hub.mapping.plan import Entry, call_entry, plan_entry, run_plan
from hub.mapping.plan import FieldFailed as _Failed
from hub.mapping.spec import DIRECTIONS, FieldSpec, MappingSpec, Origin
from hub.mapping.specerror import SpecError

Refs = Mapping[tuple[str, str], str]
InStep = Callable[[Any, dict[str, Any], Refs], None]
OutStep = Callable[[Any, dict[str, Any], Refs], None]
RefCollector = Callable[[Any, list[tuple[str, str]]], None]

_NO_REFS: Refs = MappingProxyType({})
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BY = "#"  # separates entity and match key in a reference's namespace: "contact#email"


def reference_namespace(entity: str, by: str | None) -> str:
    """The key under which a reference's ids are resolved: the entity, or entity#match key.

    A plain reference ("contact") pairs a native id with a canonical id through the links
    of the system being synced. A reference `by` a match key ("contact#email") names the
    record by that key's value instead: a mailbox knows people only by address.
    """
    return f"{entity}{_BY}{by}" if by else entity


def split_namespace(namespace: str) -> tuple[str, str | None]:
    """"contact#email" -> ("contact", "email"); "company" -> ("company", None)."""
    entity, _, by = namespace.partition(_BY)
    return entity, by or None


@dataclass(slots=True)
class Inbound:
    """The result of mapping one native record in."""

    external_id: str
    data: dict[str, Any]
    updated_at: str | None = None
    deleted: bool = False
    skip_reason: str | None = None


def _copy(value: Any) -> Any:
    # Constants are shared by every record; containers must not be shared with callers.
    return copy.deepcopy(value) if isinstance(value, (dict, list)) else value


def _resolve_ref(entity: str, value: Any, refs: Refs) -> Any:
    """Native/canonical id (or list of them) -> the other side's id; MISSING if unresolved."""
    if isinstance(value, list):
        out = []
        for item in value:
            if item is None:
                continue
            found = refs.get((entity, text_of(item)))
            if found is not None:
                out.append(found)
        return out
    found = refs.get((entity, text_of(value)))
    return MISSING if found is None else found


def _collect_ids(entity: str, value: Any, into: list[tuple[str, str]]) -> None:
    if value is MISSING or value is None:
        return
    for item in value if isinstance(value, list) else (value,):
        if item is not None and not isinstance(item, (dict, list)):
            text = text_of(item)
            if text:
                into.append((entity, text))


@dataclass(frozen=True)
class _Field:
    """A compiled field: its steps in each direction and its reference collectors."""

    canonical: str
    in_step: InStep | None
    out_step: OutStep | None
    native_refs: RefCollector | None
    canonical_refs: RefCollector | None
    sensitive: tuple[str, ...]
    # Canonical paths the inbound side sets from resolved references (a list field's own
    # path followed by its sub-field's, relative to an item).
    ref_paths: tuple[tuple[str, ...], ...] = ()
    plan: Entry | None = None  # in_step inlined for run_plan (hub.mapping.plan), if it can be


class CompiledMapping:
    """A mapping ready for records: inbound/outbound plus what the sync engine asks of it."""

    def __init__(self, spec: MappingSpec, fields: tuple[_Field, ...], id_get: Getter,
                 updated: Callable[[Any], Any] | None, deleted: Condition | None,
                 skip_when: Condition | None, only_when: Condition | None,
                 match: tuple[str, ...] | None,
                 constants: tuple[tuple[Setter, Any], ...]):
        self.spec = spec
        self.connector = spec.connector
        self.entity = spec.entity
        self.object = spec.object
        self.file = spec.file
        self.sensitive_fields: frozenset[str] = frozenset(
            p for f in fields for p in f.sensitive)
        self.fields: tuple[str, ...] = tuple(f.canonical for f in fields if f.in_step)
        self._in: tuple[Entry, ...] = tuple(
            f.plan or call_entry(f.in_step) for f in fields if f.in_step is not None)
        self._out = tuple(f.out_step for f in fields if f.out_step is not None)
        self._native_refs = tuple(f.native_refs for f in fields if f.native_refs is not None)
        self._canonical_refs = tuple(
            f.canonical_refs for f in fields if f.canonical_refs is not None)
        self._id_get = id_get
        self._id_path = spec.id
        self._id_set = compile_setter(spec.id)
        self.has_references = bool(self._native_refs or self._canonical_refs)
        ref_paths = [p for f in fields if f.native_refs is not None for p in f.ref_paths]
        # Top-level keys whose values hold resolved references; when every such path is a
        # chain of plain keys, a child process can map with stand-ins for the references
        # and the engine resolves them afterwards (hub.sync.mapped).
        self.ref_roots: frozenset[str] = frozenset(p[0] for p in ref_paths)
        self.refs_deferrable = all(_PLAIN_KEY.fullmatch(k) for p in ref_paths for k in p)
        self._updated = updated
        self._deleted = deleted.test if deleted else None
        self._skip = skip_when
        self._only = only_when
        self._match = match
        self._match_keys: Callable[[Mapping[str, Any]], dict[str, str]] | None = None
        self._constants = constants

    def __repr__(self) -> str:
        return f"<CompiledMapping {self.connector}/{self.entity} from {self.file}>"

    def external_id(self, native: Any) -> str:
        """The native record's own id as text; RecordMappingError when it has none."""
        value = self._id_get(native) if isinstance(native, dict) else MISSING
        if value is MISSING or value is None or value == "" or isinstance(value, (dict, list)):
            raise RecordMappingError(f"record has no id at {self._id_path}")
        return value if type(value) is str else text_of(value)

    def skip_reason(self, native: Any) -> str | None:
        """Why skip_when/only_when filter this record out, or None to keep it."""
        if self._skip is not None and self._skip.test(native):
            return f"skipped: skip_when {self._skip.text}"
        if self._only is not None and not self._only.test(native):
            return f"skipped: only_when {self._only.text} does not hold"
        return None

    def inbound(self, native: dict[str, Any], refs: Refs | None = None) -> Inbound:
        """Native record -> canonical data (plus id, updated_at, deleted, skip reason)."""
        ext = self._id_get(native) if type(native) is dict else MISSING
        if type(ext) is not str or not ext:
            ext = self.external_id(native)  # the slow path: converts or raises
        updated = None
        if self._updated is not None:
            try:
                updated = self._updated(native)
            except _Failed as exc:
                raise RecordMappingError(f"{exc.message} (at {exc.native})", record_id=ext,
                                         field="updated_at") from None
        deleted = self._deleted(native) if self._deleted is not None else False
        skip = self.skip_reason(native) if self._skip or self._only else None
        if skip is not None or deleted:
            # A tombstone or a filtered record needs no data, and may not be mappable.
            return Inbound(ext, {}, updated, deleted, skip)
        data: dict[str, Any] = {}
        r = _NO_REFS if refs is None else refs
        try:
            run_plan(self._in, native, data, r)
        except _Failed as exc:
            raise RecordMappingError(f"{exc.message} (at {exc.native})", record_id=ext,
                                     field=exc.field) from None
        return Inbound(ext, data, updated, False, None)

    def outbound(self, data: Mapping[str, Any], refs: Refs | None = None, *,
                 record_id: str | None = None) -> dict[str, Any]:
        """Canonical data -> native record; absent fields and unresolved references omitted."""
        native: dict[str, Any] = {}
        r = _NO_REFS if refs is None else refs
        try:
            for step in self._out:
                step(data, native, r)
        except _Failed as exc:
            raise RecordMappingError(f"{exc.message} (writing {exc.native})",
                                     record_id=record_id, field=exc.field) from None
        for setter, value in self._constants:
            setter(native, _copy(value))
        return native

    def view(self, native: dict[str, Any], external_id: str,
             refs: Refs | None = None) -> dict[str, Any]:
        """The canonical data this system would show for `native` once stored under
        `external_id`: what the engine fingerprints to recognise its own writes (echoes)."""
        record = dict(native)
        if self._id_get(record) in (MISSING, None, ""):
            self._id_set(record, external_id)
        return self.inbound(record, refs).data

    def native_refs(self, native: Any) -> list[tuple[str, str]]:
        """(namespace, native id) of every reference in a native record, for batch
        resolution; the namespace is the entity, or entity#match key (`split_namespace`)."""
        out: list[tuple[str, str]] = []
        for collect in self._native_refs:
            collect(native, out)
        return out

    def canonical_refs(self, data: Any) -> list[tuple[str, str]]:
        """(namespace, canonical id) of every reference the outbound side will write."""
        out: list[tuple[str, str]] = []
        for collect in self._canonical_refs:
            collect(data, out)
        return out

    def match_keys(self, data: Mapping[str, Any]) -> dict[str, str]:
        """The normalised match values of canonical data (this mapping's `match` selection)."""
        select = self._match_keys
        if select is None:  # built on first use; hub.canonical is imported lazily here
            from hub.canonical import match_selector

            select = self._match_keys = match_selector(self.entity, self._match)
        return select(data)


# ---------------------------------------------------------------- compiler

class _Compiler:
    """Compiles a spec while collecting every problem instead of stopping at the first."""

    def __init__(self, spec: MappingSpec):
        self.spec = spec
        self.problems: list[Problem] = []
        from hub.canonical import ENTITIES

        self.entities: tuple[str, ...] = tuple(ENTITIES)
        self.entity_ok = spec.entity in self.entities

    def report(self, origin: Origin, sub: tuple[str | int, ...], message: str) -> None:
        self.problems.append(origin.problem(sub, message))

    def reported(self, origin: Origin, sub: tuple[str | int, ...], exc: SpecError) -> None:
        for rel, message in exc.problems:
            self.report(origin, sub + rel, message)

    def getter(self, origin: Origin, sub: tuple[str | int, ...], path: str) -> Getter | None:
        try:
            return compile_getter(path)
        except SpecError as exc:
            self.reported(origin, sub, exc)
            return None

    def setter(self, origin: Origin, sub: tuple[str | int, ...], path: str) -> Setter | None:
        try:
            return compile_setter(path)
        except SpecError as exc:
            self.reported(origin, sub, exc)
            return None

    def condition(self, origin: Origin, sub: tuple[str | int, ...], raw: Any
                  ) -> Condition | None:
        try:
            return compile_condition(raw)
        except SpecError as exc:
            self.reported(origin, sub, exc)
            return None

    def chain(self, origin: Origin, key: str, raws: tuple[Any, ...]
              ) -> list[tf.Transform] | None:
        out: list[tf.Transform] = []
        ok = True
        for i, raw in enumerate(raws):
            try:
                out.append(tf.build_transform(raw))
            except SpecError as exc:
                self.reported(origin, (key, i), exc)
                ok = False
        return out if ok else None

    def entity_known(self, origin: Origin, sub: tuple[str | int, ...], entity: str,
                     what: str) -> bool:
        if entity in self.entities:
            return True
        close = difflib.get_close_matches(entity, self.entities, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        self.report(origin, sub, f"unknown {what} '{entity}'{hint}; known entities: "
                                 f"{', '.join(self.entities)}")
        return False

    def match_key_known(self, origin: Origin, entity: str, name: str) -> bool:
        from hub.canonical import MATCH_KEYS

        known = list(MATCH_KEYS.get(entity, {}))
        if name in known:
            return True
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        names = ", ".join(known) or "(none: it can only be referenced by id)"
        self.report(origin, ("by",), f"{entity} has no match key '{name}'{hint}; its match "
                                     f"keys: {names}")
        return False

    def canonical_path(self, f: FieldSpec, shown: str) -> bool:
        if not self.entity_ok:
            return False
        from hub.canonical import check_path

        problem = check_path(self.spec.entity, shown)
        if problem is not None:
            self.report(f.origin, (), problem)
            return False
        return True

    # -- one field

    def field(self, f: FieldSpec, prefix: str = "") -> _Field | None:
        o = f.origin
        sources = [k for k, present in (("path", f.path is not None),
                                        ("value", f.has_value),
                                        ("template", f.template is not None),
                                        ("each", f.each is not None)) if present]
        if len(sources) != 1:
            found = ", ".join(sources) if sources else "none"
            self.report(o, (), "a field needs exactly one of path, value, template or "
                               f"each (found: {found})")
            return None
        kind = sources[0]
        if f.fields and kind != "each":
            self.report(o, ("fields",), "fields (sub-fields) only go with each: <native list>")
        shown = f"{prefix}[0].{f.canonical}" if prefix else f.canonical
        label = f"{prefix}[].{f.canonical}" if prefix else f.canonical
        path_ok = self.canonical_path(f, shown)
        direction = f.direction or ("in" if kind in ("value", "template") else "both")
        if direction not in DIRECTIONS:
            direction = "both"
        if kind in ("value", "template") and direction != "in":
            self.report(o, ("direction",), f"a {kind} field can only be read "
                                           "(direction: in): there is no native path to write")
            return None
        if f.reference is not None:
            if self.entity_known(o, ("reference",), f.reference, "reference entity") \
                    and f.by is not None:
                self.match_key_known(o, f.reference, f.by)
        elif f.by is not None:
            self.report(o, ("by",), "names a match key of a referenced record, but the "
                                    "field has no reference: add reference: <entity>")
        when = self.condition(o, ("when",), f.when) if f.when is not None else None
        t_in = self.chain(o, "in", f.transforms_in)
        t_out = self.chain(o, "out", f.transforms_out) if f.transforms_out is not None else []
        if kind == "each":
            return self.each_field(f, direction, path_ok, when)
        cset = self.setter(o, (), f.canonical)
        cget = self.getter(o, (), f.canonical)
        nget: Getter | None
        nset: Setter | None = None
        if kind == "path":
            assert f.path is not None
            nget = self.getter(o, ("path",), f.path)
            if direction != "in":
                nset = self.setter(o, ("path",), f.path)
        elif kind == "template":
            nget = self.template(o, f.template or "")
        else:
            value = f.value

            def nget(_native: Any) -> Any:
                return _copy(value)
        if t_in is None or t_out is None or nget is None or cset is None or cget is None \
                or not path_ok or (direction != "in" and nset is None):
            return None
        out_fn: tf.Fn | None
        if f.transforms_out is not None:
            out_fn = tf.compile_chain(t_out)
        else:
            out_fn, blocker = tf.compile_inverse(t_in)
            if blocker is not None and direction != "in":
                self.report(o, ("in",), f"transform {blocker} cannot be undone for writing; "
                                        "give `out:` transforms or set direction: in")
                return None
        native_path = f.path or (f"template {f.template!r}" if kind == "template" else "value")
        in_step = out_step = None
        if direction != "out":
            in_step = _in_step(f, f.canonical, native_path, nget, cset, t_in, when)
        if direction != "in":
            assert nset is not None
            out_step = _out_step(f, f.canonical, native_path, cget, nset, out_fn)
        nrefs = crefs = None
        if f.reference is not None:
            in_fn = tf.compile_chain(t_in)
            ns = reference_namespace(f.reference, f.by)
            nrefs = _native_ref_collector(ns, nget, in_fn)
            crefs = _canonical_ref_collector(ns, cget)
        plan = (_in_plan(f, native_path, in_step, t_in, when)
                if in_step is not None and kind == "path" else None)
        return _Field(f.canonical, in_step, out_step, nrefs if in_step else None,
                      crefs if out_step else None,
                      (label,) if f.sensitive else (),
                      ((f.canonical,),) if f.reference is not None else (), plan)

    def template(self, o: Origin, text: str) -> Getter | None:
        try:
            parts = _parse_template(text)
        except SpecError as exc:
            self.reported(o, ("template",), exc)
            return None
        return _template_getter(parts)

    def each_field(self, f: FieldSpec, direction: str, path_ok: bool,
                   when: Condition | None) -> _Field | None:
        o = f.origin
        if f.transforms_in or f.transforms_out is not None or f.reference or f.has_default:
            self.report(o, (), "a list field (each) takes no in/out/reference/default; "
                               "put them on its sub-fields")
        if not f.fields:
            self.report(o, (), "each needs fields: the sub-fields of every list item")
            return None
        assert f.each is not None
        nget = self.getter(o, ("each",), f.each)
        nset = self.setter(o, ("each",), f.each) if direction != "in" else None
        cget = self.getter(o, (), f.canonical)
        cset = self.setter(o, (), f.canonical)
        subs = [self.field(s, prefix=f.canonical) if path_ok else None for s in f.fields]
        if not path_ok or any(s is None for s in subs) or nget is None or cget is None \
                or cset is None or (direction != "in" and nset is None):
            return None
        compiled = tuple(s for s in subs if s is not None)
        in_step = (_each_in(f, nget, cset, compiled, when) if direction != "out" else None)
        out_step = None
        if direction != "in":
            assert nset is not None
            out_step = _each_out(f, cget, nset, compiled)
        nrefs = _each_collector(nget, tuple(s.native_refs for s in compiled if s.native_refs))
        crefs = _each_collector(cget, tuple(s.canonical_refs for s in compiled
                                            if s.canonical_refs))
        sensitive = tuple(p for s in compiled for p in s.sensitive)
        return _Field(f.canonical, in_step, out_step,
                      nrefs if in_step and any(s.native_refs for s in compiled) else None,
                      crefs if out_step and any(s.canonical_refs for s in compiled) else None,
                      sensitive + ((f.canonical,) if f.sensitive else ()),
                      tuple((f.canonical, *p) for s in compiled for p in s.ref_paths))

    # -- the whole mapping

    def compile(self) -> CompiledMapping | None:
        spec = self.spec
        if spec.version != 1:
            self.report(spec.origin("version"), (), f"unsupported version {spec.version}; "
                                                    "this Liaison reads version 1")
        if not self.entity_ok:
            self.entity_known(spec.origin("entity"), (), spec.entity, "entity")
        id_get = self.getter(spec.origin("id"), (), spec.id)
        updated = self.updated_at(spec.updated_at) if spec.updated_at else None
        conds: dict[str, Condition | None] = {}
        for key in ("deleted", "skip_when", "only_when"):
            raw = getattr(spec, key)
            conds[key] = self.condition(spec.origin(key), (), raw) if raw is not None else None
        match = self.match()
        constants = []
        for path, value in spec.constants.items():
            setter = self.setter(spec.origin("constants"), (path,), path)
            if setter is not None:
                constants.append((setter, value))
        fields = [self.field(f) for f in spec.fields]
        if self.problems:
            return None
        assert id_get is not None
        return CompiledMapping(spec, tuple(f for f in fields if f is not None), id_get,
                               updated, conds["deleted"], conds["skip_when"],
                               conds["only_when"], match, tuple(constants))

    def updated_at(self, f: FieldSpec) -> Callable[[Any], Any] | None:
        get = self.getter(f.origin, (), f.path or "")
        chain = self.chain(f.origin, "in", f.transforms_in)
        if get is None or chain is None:
            return None
        fn = tf.compile_chain(chain)
        native_path = f.path or ""

        def updated(native: Any) -> Any:
            v = get(native)
            if v is MISSING or v is None:
                return None
            if fn is not None:
                try:
                    v = fn(v)
                except RecordMappingError as exc:
                    raise _Failed("updated_at", native_path, str(exc)) from None
            return v if v is None else str(v)
        return updated

    def match(self) -> tuple[str, ...] | None:
        spec = self.spec
        if spec.match is None or not self.entity_ok:
            return spec.match
        from hub.canonical import MATCH_KEYS

        known = MATCH_KEYS.get(spec.entity, {})
        for i, name in enumerate(spec.match):
            if name not in known:
                self.report(spec.origin("match"), (i,),
                            f"unknown match key '{name}' for {spec.entity}; known match keys: "
                            f"{', '.join(known) or '(none)'}")
        return spec.match


def compile_mapping(spec: MappingSpec) -> CompiledMapping:
    """Compile a spec; MappingError lists every problem (file:line: key: message)."""
    compiler = _Compiler(spec)
    compiled = compiler.compile()
    if compiled is None:
        raise MappingError(compiler.problems or [Problem(spec.file, None, "", "invalid mapping")])
    return compiled


# ---------------------------------------------------------------- step builders

def _in_step(f: FieldSpec, canon: str, npath: str, get: Getter, set_: Setter,
             transforms: list[tf.Transform], when: Condition | None) -> InStep:
    chain = tf.compile_chain(transforms)
    required, has_default, default = f.required, f.has_default, f.default
    fills = has_default or any(t.fills_missing for t in transforms)
    ref = reference_namespace(f.reference, f.by) if f.reference else None
    test = when.test if when is not None else None
    # A null below the top level (phones[type=mobile].number) would only create an empty
    # element to hold it; the top-level field, which a merge replaces whole, says enough.
    nested = any(ch in canon for ch in ".[")
    if chain is None and not (required or has_default or ref or test):
        def plain(native: Any, data: dict[str, Any], refs: Refs) -> None:
            v = get(native)
            if v is not MISSING and (v is not None or not nested):
                set_(data, v)
        return plain
    if chain is not None and not (required or fills or ref or test):
        # Transforms only (trim, phone, country...): `step` below without its other checks.
        def chained(native: Any, data: dict[str, Any], refs: Refs) -> None:
            v = get(native)
            if v is MISSING:
                return
            try:
                v = chain(v)
            except RecordMappingError as exc:
                raise _Failed(canon, npath, str(exc)) from None
            if v is not None or not nested:
                set_(data, v)
        return chained

    def step(native: Any, data: dict[str, Any], refs: Refs) -> None:
        if test is not None and not test(native):
            return
        v = get(native)
        if v is MISSING:
            if not fills:
                if required:
                    raise _Failed(canon, npath, "required value is missing")
                return
            v = None
        if chain is not None:
            try:
                v = chain(v)
            except RecordMappingError as exc:
                raise _Failed(canon, npath, str(exc)) from None
        if v is None and has_default:
            v = _copy(default)
        if required and (v is None or v == "" or v == []):
            raise _Failed(canon, npath, "required value is empty")
        if ref is not None and v is not None:
            v = _resolve_ref(ref, v, refs)
            if v is MISSING:
                return
        if v is None and nested:
            return
        set_(data, v)
    return step


def _in_plan(f: FieldSpec, npath: str, step: InStep, transforms: list[tf.Transform],
             when: Condition | None) -> Entry | None:
    """`step` as an entry run_plan inlines, when it is the plain or transforms-only kind
    of _in_step (no condition, reference, requirement or default) on paths it knows."""
    if when is not None or f.reference or f.required or f.has_default \
            or any(t.fills_missing for t in transforms) or f.path is None:
        return None
    text_only = bool(transforms) and all(t.text_op is not None for t in transforms)
    ops = tuple(t.text_op for t in transforms if t.text_op is not None) if text_only else None
    fn = tf.compile_chain(transforms) if transforms and not text_only else None
    return plan_entry(step, parse_path(f.path), parse_path(f.canonical), ops, fn,
                      any(ch in f.canonical for ch in ".["), f.canonical, npath)


def _out_step(f: FieldSpec, canon: str, npath: str, get: Getter, set_: Setter,
              chain: tf.Fn | None) -> OutStep:
    ref = reference_namespace(f.reference, f.by) if f.reference else None
    if chain is None and ref is None:
        def plain(data: Any, native: dict[str, Any], refs: Refs) -> None:
            v = get(data)
            if v is not MISSING:
                set_(native, v)
        return plain

    def step(data: Any, native: dict[str, Any], refs: Refs) -> None:
        v = get(data)
        if v is MISSING:
            return
        if ref is not None and v is not None:
            v = _resolve_ref(ref, v, refs)
            if v is MISSING:
                return
        if chain is not None:
            try:
                v = chain(v)
            except RecordMappingError as exc:
                raise _Failed(canon, npath, str(exc)) from None
        set_(native, v)
    return step


def _each_in(f: FieldSpec, get: Getter, set_: Setter, subs: tuple[_Field, ...],
             when: Condition | None) -> InStep:
    canon, npath, required = f.canonical, f.each or "", f.required
    steps = tuple(s.in_step for s in subs if s.in_step is not None)
    test = when.test if when is not None else None

    def step(native: Any, data: dict[str, Any], refs: Refs) -> None:
        if test is not None and not test(native):
            return
        items = get(native)
        if items is MISSING or items is None:
            if required:
                raise _Failed(canon, npath, "required list is missing")
            if items is None:
                set_(data, None)
            return
        if not isinstance(items, list):
            raise _Failed(canon, npath, f"expected a list, got {type(items).__name__}")
        out = []
        for i, item in enumerate(items):
            sub: dict[str, Any] = {}
            try:
                for s in steps:
                    s(item, sub, refs)
            except _Failed as exc:
                raise _Failed(f"{canon}[{i}].{exc.field}", f"{npath}[{i}].{exc.native}",
                              exc.message) from None
            out.append(sub)
        set_(data, out)
    return step


def _each_out(f: FieldSpec, get: Getter, set_: Setter, subs: tuple[_Field, ...]) -> OutStep:
    canon, npath = f.canonical, f.each or ""
    steps = tuple(s.out_step for s in subs if s.out_step is not None)

    def step(data: Any, native: dict[str, Any], refs: Refs) -> None:
        items = get(data)
        if items is MISSING:
            return
        if items is None or not isinstance(items, list):
            set_(native, None if items is None else items)
            return
        out = []
        for i, item in enumerate(items):
            sub: dict[str, Any] = {}
            try:
                for s in steps:
                    s(item, sub, refs)
            except _Failed as exc:
                raise _Failed(f"{canon}[{i}].{exc.field}", f"{npath}[{i}].{exc.native}",
                              exc.message) from None
            out.append(sub)
        set_(native, out)
    return step


def _native_ref_collector(entity: str, get: Getter, chain: tf.Fn | None) -> RefCollector:
    def collect(native: Any, into: list[tuple[str, str]]) -> None:
        v = get(native)
        if v is MISSING or v is None:
            return
        if chain is not None:
            try:
                v = chain(v)
            except RecordMappingError:
                return  # inbound reports it, with the record and the field
        _collect_ids(entity, v, into)
    return collect


def _canonical_ref_collector(entity: str, get: Getter) -> RefCollector:
    def collect(data: Any, into: list[tuple[str, str]]) -> None:
        _collect_ids(entity, get(data), into)
    return collect


def _each_collector(get: Getter, subs: tuple[RefCollector | None, ...]) -> RefCollector:
    collectors = tuple(c for c in subs if c is not None)

    def collect(record: Any, into: list[tuple[str, str]]) -> None:
        items = get(record)
        if isinstance(items, list):
            for item in items:
                for c in collectors:
                    c(item, into)
    return collect


# ---------------------------------------------------------------- templates

def _parse_template(text: str) -> tuple[str | Getter, ...]:
    """'{a.b} x {c}' -> ('' , getter a.b, ' x ', getter c); `{{`/`}}` are literal braces."""
    parts: list[str | Getter] = []
    buf: list[str] = []
    i, n = 0, len(text)
    placeholders = 0
    while i < n:
        ch = text[i]
        if ch in "{}" and i + 1 < n and text[i + 1] == ch:
            buf.append(ch)
            i += 2
            continue
        if ch == "}":
            raise SpecError(f"'}}' at position {i + 1} has no '{{' (write }}}} for a brace)")
        if ch == "{":
            close = text.find("}", i)
            if close < 0:
                raise SpecError(f"'{{' at position {i + 1} is never closed")
            if buf:
                parts.append("".join(buf))
                buf = []
            parts.append(compile_getter(text[i + 1:close].strip()))
            placeholders += 1
            i = close + 1
            continue
        buf.append(ch)
        i += 1
    if buf:
        parts.append("".join(buf))
    if not placeholders:
        raise SpecError("a template needs at least one {native.path} placeholder; "
                        "use value: for a constant")
    return tuple(parts)


def _template_getter(parts: tuple[str | Getter, ...]) -> Getter:
    def get(native: Any) -> Any:
        out: list[str] = []
        found = False
        for part in parts:
            if type(part) is str:
                out.append(part)
                continue
            v = part(native)  # type: ignore[operator]
            if v is MISSING or v is None:
                continue
            found = True
            out.append(text_of(v))
        # All placeholders absent: the field is absent too, not an empty string.
        return "".join(out).strip() if found else MISSING
    return get
