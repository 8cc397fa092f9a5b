"""Record paths (`a.b`, `a[0].b`, `a[type=work].b`) compiled once into getter/setter closures.

Grammar: segments separated by `.`; a segment is a key name optionally followed by
brackets: `[N]` (list index, N >= 0) or `[key=value]` (the first list element that is an
object whose `key` equals `value`, compared as text). A backslash escapes `.`, `[`, `]`
or `\\` inside a key name, for native column names that contain them.

A getter returns `MISSING` when anything along the path is absent (or not the container
the path expects); an explicit null at the end is returned as None, so callers can tell
"the system sent null" from "the system sent nothing". A setter creates the intermediate
objects and lists, and a `[type=work]` step reuses the matching element or appends
`{type: work}`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from hub.mapping.specerror import SpecError


class _Missing:
    """The type of MISSING: a value that is absent, as opposed to null."""

    __slots__ = ()

    def __copy__(self) -> _Missing:
        return self

    def __deepcopy__(self, memo: object) -> _Missing:
        return self

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Final = _Missing()
"""Returned by getters when the path leads nowhere (distinct from an explicit None)."""

Getter = Callable[[Any], Any]
Setter = Callable[[Any, Any], None]


@dataclass(frozen=True)
class Key:
    """A `.name` step into an object."""

    name: str


@dataclass(frozen=True)
class Index:
    """A `[N]` step into a list."""

    index: int


@dataclass(frozen=True)
class Select:
    """A `[key=value]` step: the first list element whose `key` equals `value` (as text)."""

    key: str
    value: str


Segment = Key | Index | Select


def text_of(value: Any) -> str:
    """How a scalar compares as text: booleans as true/false, None as empty."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return ""
    return str(value)


def parse_path(path: str) -> tuple[Segment, ...]:
    """Split a path string into segments; raise SpecError saying what is wrong and where."""
    if not isinstance(path, str) or not path.strip():
        raise SpecError("a path must be non-empty text like properties.email or items[0].id")
    segments: list[Segment] = []
    i, n = 0, len(path)
    expect_name = True
    while i < n:
        if expect_name:
            name, i = _read_name(path, i)
            if name:
                segments.append(Key(name))
            elif not (i < n and path[i] == "[" and not segments):
                raise SpecError(f"bad path {path!r}: empty name at position {i + 1}")
            expect_name = False
            continue
        ch = path[i]
        if ch == ".":
            i += 1
            expect_name = True
            if i >= n:
                raise SpecError(f"bad path {path!r}: ends with '.'")
        elif ch == "[":
            close = path.find("]", i)
            if close < 0:
                raise SpecError(f"bad path {path!r}: '[' at position {i + 1} is never closed")
            segments.append(_bracket(path, path[i + 1:close], i))
            i = close + 1
        else:
            raise SpecError(f"bad path {path!r}: unexpected {ch!r} at position {i + 1}")
    for seg, nxt in zip(segments, (*segments[1:], None), strict=True):
        # A selector picks an object out of a list: only a field of it can follow.
        if isinstance(seg, Select) and not isinstance(nxt, Key):
            raise SpecError(f"bad path {path!r}: [{seg.key}={seg.value}] picks an object; "
                            "follow it with .name (like emails[type=work].address)")
    return tuple(segments)


def _read_name(path: str, i: int) -> tuple[str, int]:
    out: list[str] = []
    n = len(path)
    while i < n:
        ch = path[i]
        if ch == "\\" and i + 1 < n:
            out.append(path[i + 1])
            i += 2
            continue
        if ch in ".[":
            break
        if ch == "]":
            raise SpecError(f"bad path {path!r}: ']' at position {i + 1} has no '['")
        out.append(ch)
        i += 1
    return "".join(out).strip(), i


def _bracket(path: str, inner: str, pos: int) -> Segment:
    inner = inner.strip()
    if "=" in inner:
        key, _, value = inner.partition("=")
        key, value = key.strip(), value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        if not key:
            raise SpecError(f"bad path {path!r}: '[{inner}]' at position {pos + 1} "
                            "needs a key before '=' (like [type=work])")
        return Select(key, value)
    if inner.isdigit():
        return Index(int(inner))
    raise SpecError(f"bad path {path!r}: '[{inner}]' at position {pos + 1} must be a list "
                    "index like [0] or a selector like [type=work]")


def format_path(segments: tuple[Segment, ...]) -> str:
    """Render segments back into path text (the inverse of parse_path for plain names)."""
    out = ""
    for seg in segments:
        if isinstance(seg, Key):
            name = seg.name.replace("\\", "\\\\").replace(".", "\\.").replace("[", "\\[")
            out += f".{name}" if out else name
        elif isinstance(seg, Index):
            out += f"[{seg.index}]"
        else:
            out += f"[{seg.key}={seg.value}]"
    return out


# ---------------------------------------------------------------- getters

def compile_getter(path: str | tuple[Segment, ...]) -> Getter:
    """A function object -> value at `path`, or MISSING when anything along it is absent."""
    segs = parse_path(path) if isinstance(path, str) else path
    if all(isinstance(s, Key) for s in segs):
        names = [s.name for s in segs if isinstance(s, Key)]
        if len(names) == 1:
            return _get_key1(names[0])
        if len(names) == 2:
            return _get_key2(names[0], names[1])
    if not any(isinstance(s, Select) for s in segs):
        return _get_keys_and_indexes(tuple(
            (s.name, -1) if isinstance(s, Key) else ("", s.index)
            for s in segs if isinstance(s, Key | Index)))
    steps = tuple(_get_step(s) for s in segs)

    def get(obj: Any) -> Any:
        for step in steps:
            obj = step(obj)
            if obj is MISSING:
                return MISSING
        return obj
    return get


def _get_key1(k: str) -> Getter:
    slow = _key(k)

    def get(obj: Any) -> Any:
        if type(obj) is dict:
            return obj.get(k, MISSING)
        return slow(obj)
    return get


def _get_key2(k1: str, k2: str) -> Getter:
    first, second = _key(k1), _key(k2)

    def get(obj: Any) -> Any:
        # Fast path for the common shape (nested JSON objects); anything else falls back
        # to the checked steps, so a list or a string along the way reads as MISSING.
        if type(obj) is dict:
            mid = obj.get(k1, MISSING)
            if type(mid) is dict:
                return mid.get(k2, MISSING)
        else:
            mid = first(obj)
        return MISSING if mid is MISSING else second(mid)
    return get


def _get_keys_and_indexes(plan: tuple[tuple[str, int], ...]) -> Getter:
    # `associations.companies.results[0].id` in one loop: the steps of _get_step (a key
    # into an object, an index into a list), without a function call for each.
    def get(obj: Any) -> Any:
        for key, index in plan:
            if index < 0:
                if not isinstance(obj, dict):
                    return MISSING
                obj = obj.get(key, MISSING)
                if obj is MISSING:
                    return MISSING
            elif isinstance(obj, list) and index < len(obj):
                obj = obj[index]
            else:
                return MISSING
        return obj
    return get


def _key(k: str) -> Getter:
    def step(obj: Any) -> Any:
        if isinstance(obj, dict):
            return obj.get(k, MISSING)
        return MISSING
    return step


def _get_step(seg: Segment) -> Getter:
    if isinstance(seg, Key):
        return _key(seg.name)
    if isinstance(seg, Index):
        i = seg.index

        def index(obj: Any) -> Any:
            if isinstance(obj, list) and i < len(obj):
                return obj[i]
            return MISSING
        return index
    key, value = seg.key, seg.value

    def select(obj: Any) -> Any:
        if isinstance(obj, list):
            for item in obj:
                if isinstance(item, dict) and selector_matches(item.get(key), value):
                    return item
        return MISSING
    return select


def selector_matches(found: Any, wanted: str) -> bool:
    """Whether a list item's value `found` is the one a selector [key=wanted] names."""
    return found == wanted or (found is not None and text_of(found) == wanted)


# ---------------------------------------------------------------- setters

def compile_setter(path: str | tuple[Segment, ...]) -> Setter:
    """A function (object, value) that writes `value` at `path`, creating what is missing."""
    segs = parse_path(path) if isinstance(path, str) else path
    if len(segs) == 1 and isinstance(segs[0], Key):
        k = segs[0].name

        def set1(obj: Any, value: Any) -> None:
            obj[k] = value
        return set1
    if len(segs) == 2 and isinstance(segs[0], Key) and isinstance(segs[1], Key):
        return _set_key_key(segs[0].name, segs[1].name)
    if (len(segs) == 3 and isinstance(segs[0], Key) and isinstance(segs[1], Select)
            and isinstance(segs[2], Key)):
        return _set_key_select_key(segs[0].name, segs[1], segs[2].name)
    descend = tuple(_descend_step(seg, nxt) for seg, nxt in itertools.pairwise(segs))
    last = _final_step(segs[-1])
    if len(descend) == 1:
        first = descend[0]

        def set2(obj: Any, value: Any) -> None:
            last(first(obj), value)
        return set2

    def set_(obj: Any, value: Any) -> None:
        for step in descend:
            obj = step(obj)
        last(obj, value)
    return set_


# The two shapes canonical paths mostly have (`custom.x`, `emails[type=work].address`),
# as one function each: the same steps as _descend_step/_final_step, without a call per step.

def _set_key_key(k1: str, k2: str) -> Setter:
    def set_kk(obj: Any, value: Any) -> None:
        child = obj.get(k1)
        if not isinstance(child, dict):
            child = obj[k1] = {}
        child[k2] = value
    return set_kk


def _set_key_select_key(k1: str, sel: Select, k2: str) -> Setter:
    key, wanted = sel.key, sel.value

    def set_ksk(obj: Any, value: Any) -> None:
        items = obj.get(k1)
        if not isinstance(items, list):
            items = obj[k1] = []
        for item in items:
            if isinstance(item, dict) and selector_matches(item.get(key), wanted):
                item[k2] = value
                return
        items.append({key: wanted, k2: value})
    return set_ksk


def _new_container(nxt: Segment) -> Callable[[], Any]:
    return dict if isinstance(nxt, Key) else list


def _descend_step(seg: Segment, nxt: Segment) -> Callable[[Any], Any]:
    make = _new_container(nxt)
    kind = dict if isinstance(nxt, Key) else list
    if isinstance(seg, Key):
        k = seg.name

        def key(obj: Any) -> Any:
            child = obj.get(k)
            if not isinstance(child, kind):
                child = obj[k] = make()
            return child
        return key
    if isinstance(seg, Index):
        i = seg.index

        def index(obj: Any) -> Any:
            _pad(obj, i)
            child = obj[i]
            if not isinstance(child, kind):
                child = obj[i] = make()
            return child
        return index
    return _select_step(seg)


def _select_step(seg: Select) -> Callable[[Any], Any]:
    key, value = seg.key, seg.value

    def select(obj: Any) -> Any:
        for item in obj:
            if isinstance(item, dict) and selector_matches(item.get(key), value):
                return item
        item = {key: value}
        obj.append(item)
        return item
    return select


def _pad(obj: list[Any], i: int) -> None:
    if len(obj) <= i:
        obj.extend([None] * (i + 1 - len(obj)))


def _final_step(seg: Segment) -> Setter:
    if isinstance(seg, Key):
        k = seg.name

        def key(obj: Any, value: Any) -> None:
            obj[k] = value
        return key
    if isinstance(seg, Index):
        i = seg.index

        def index(obj: Any, value: Any) -> None:
            _pad(obj, i)
            obj[i] = value
        return index
    raise AssertionError("parse_path never ends a path with a selector")
