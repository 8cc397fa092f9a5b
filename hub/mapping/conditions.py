"""Record conditions (`deleted`, `skip_when`, `only_when`, a field's `when`), compiled once.

    {path: properties.hs_test, equals: "true"}      one test on the value at a path
    {all: [..]} / {any: [..]} / {not: {..}}          combinations

Operators: equals, not_equals, in (a list), empty (true/false), contains (text or list),
gt, gte, lt, lte (numbers compare as numbers, anything else as text, so ISO dates work).
gt/gte/lt/lte also take a date relative to when the condition is checked (today, today-14d,
now-1h; UTC; see hub.relative_dates): {path: due_date, lt: today} is "due before today".
Values compare leniently across types as text (true == "true", 5 == "5") because a
spreadsheet and an API disagree about types far more often than about values.
An absent value counts as empty and as null; it satisfies no equals/contains/gt test.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from hub.mapping.paths import MISSING, compile_getter, text_of
from hub.mapping.specerror import SpecError
from hub.relative_dates import RelativeDate, compare, relative_date

Predicate = Callable[[Any], bool]
Clock = Callable[[], datetime]

OPERATORS = ("equals", "not_equals", "in", "empty", "contains", "gt", "gte", "lt", "lte")
COMBINATORS = ("all", "any", "not")


@dataclass(frozen=True)
class Condition:
    """A compiled condition: `test(record) -> bool` and its text for skip reasons."""

    test: Predicate
    text: str


def utc_now() -> datetime:
    """The current instant (the default clock of relative dates)."""
    return datetime.now(UTC)


def compile_condition(raw: Any, *, clock: Clock = utc_now) -> Condition:
    """Compile a condition object; SpecError lists every problem, with relative key paths.

    `clock` gives the instant relative dates (today, now-1h) are worked out from, called
    at each check."""
    problems: list[tuple[tuple[str | int, ...], str]] = []
    cond = _compile(raw, (), problems, clock)
    if problems or cond is None:
        raise SpecError("", problems=problems or [((), "invalid condition")])
    return cond


def _compile(raw: Any, at: tuple[str | int, ...],
             problems: list[tuple[tuple[str | int, ...], str]], clock: Clock
             ) -> Condition | None:
    if not isinstance(raw, dict) or not raw:
        problems.append((at, ("a condition is an object like {path: status, equals: archived} "
                             "or {all: [...]}, {any: [...]}, {not: {...}}")))
        return None
    combos = [k for k in raw if k in COMBINATORS]
    if combos:
        if len(raw) != 1:
            problems.append((at, (f"{combos[0]} must be the only key of its condition "
                                 f"(also found: {', '.join(k for k in raw if k != combos[0])})")))
            return None
        return _combine(combos[0], raw[combos[0]], at, problems, clock)
    if "path" not in raw:
        problems.append((at, ("a condition needs a path (the value to test) and one operator "
                             f"({', '.join(OPERATORS)}), or all/any/not")))
        return None
    ops = [k for k in raw if k != "path"]
    unknown = [k for k in ops if k not in OPERATORS]
    for k in unknown:
        problems.append((at + (k,), (f"unknown operator {k!r}; known operators: "
                                    f"{', '.join(OPERATORS)} (or all, any, not)")))
    if unknown:
        return None
    if len(ops) != 1:
        problems.append((at, (f"a condition takes exactly one operator ({', '.join(OPERATORS)}); "
                             f"found {', '.join(ops) if ops else 'none'}")))
        return None
    try:
        getter = compile_getter(raw["path"])
    except SpecError as exc:
        problems.append((at + ("path",), str(exc)))
        return None
    op = ops[0]
    try:
        relative = _relative(op, raw[op])
        test = _OPS[op](getter, raw[op]) if relative is None \
            else _relative_test(_CHECKS[op], getter, relative, clock)
    except SpecError as exc:
        problems.append((at + (op,), str(exc)))
        return None
    if op == "empty":
        return Condition(test, f"{raw['path']} is {'' if raw[op] else 'not '}empty")
    return Condition(test, f"{raw['path']} {op.replace('_', ' ')} {_show(raw[op])}")


def _combine(kind: str, body: Any, at: tuple[str | int, ...],
             problems: list[tuple[tuple[str | int, ...], str]], clock: Clock
             ) -> Condition | None:
    if kind == "not":
        inner = _compile(body, at + ("not",), problems, clock)
        if inner is None:
            return None
        t = inner.test
        return Condition(lambda r: not t(r), f"not ({inner.text})")
    if not isinstance(body, list) or not body:
        problems.append((at + (kind,), f"{kind} takes a non-empty list of conditions"))
        return None
    parts = [_compile(c, at + (kind, i), problems, clock) for i, c in enumerate(body)]
    if any(p is None for p in parts):
        return None
    tests = tuple(p.test for p in parts if p is not None)
    text = f"{kind} of ({'; '.join(p.text for p in parts if p is not None)})"
    if kind == "all":
        return Condition(lambda r: all(t(r) for t in tests), text)
    return Condition(lambda r: any(t(r) for t in tests), text)


def _show(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if value is None:
        return "null"
    return text_of(value)


def _scalar(op: str, value: Any) -> Any:
    if isinstance(value, (dict, list)):
        raise SpecError(f"{op} takes a single value (text, number, true/false or null)")
    return value


def _same(found: Any, wanted: Any, wanted_text: str) -> bool:
    if found is MISSING:
        return False
    if found == wanted and type(found) is type(wanted):
        return True
    if found is None or wanted is None:
        return False
    return text_of(found) == wanted_text


def _equals(get: Callable[[Any], Any], value: Any) -> Predicate:
    wanted = _scalar("equals", value)
    wt = text_of(wanted)
    return lambda r: _same(get(r), wanted, wt)


def _not_equals(get: Callable[[Any], Any], value: Any) -> Predicate:
    wanted = _scalar("not_equals", value)
    wt = text_of(wanted)
    return lambda r: not _same(get(r), wanted, wt)


def _in(get: Callable[[Any], Any], value: Any) -> Predicate:
    if not isinstance(value, list) or not value:
        raise SpecError("in takes a non-empty list of values, like [won, lost]")
    for v in value:
        _scalar("in", v)
    texts = frozenset(text_of(v) for v in value)
    has_null = any(v is None for v in value)

    def test(r: Any) -> bool:
        found = get(r)
        if found is MISSING or found is None:
            return has_null
        return text_of(found) in texts
    return test


def _is_empty(v: Any) -> bool:
    return v is MISSING or v is None or (isinstance(v, (str, list, dict)) and not (
        v.strip() if isinstance(v, str) else v))


def _empty(get: Callable[[Any], Any], value: Any) -> Predicate:
    if not isinstance(value, bool):
        raise SpecError("empty takes true or false")
    if value:
        return lambda r: _is_empty(get(r))
    return lambda r: not _is_empty(get(r))


def _contains(get: Callable[[Any], Any], value: Any) -> Predicate:
    wanted = _scalar("contains", value)
    wt = text_of(wanted)

    def test(r: Any) -> bool:
        found = get(r)
        if isinstance(found, str):
            return wt in found
        if isinstance(found, list):
            return any(_same(x, wanted, wt) for x in found)
        return False
    return test


def _number(v: Any) -> Decimal | None:
    if isinstance(v, bool) or v is None or v is MISSING:
        return None
    if isinstance(v, (int, float, Decimal)):
        return Decimal(repr(v)) if isinstance(v, float) else Decimal(v)
    if isinstance(v, str):
        try:
            d = Decimal(v.strip())
        except InvalidOperation:
            return None
        return d if d.is_finite() else None
    return None


def _compare(op: str, check: Callable[[int], bool]) -> Callable[[Callable[[Any], Any], Any],
                                                                  Predicate]:
    def build(get: Callable[[Any], Any], value: Any) -> Predicate:
        wanted = _scalar(op, value)
        if wanted is None or isinstance(wanted, bool):
            raise SpecError(f"{op} takes a number or a text value (like a date)")
        wn = _number(wanted)
        wt = text_of(wanted)

        def test(r: Any) -> bool:
            found = get(r)
            if found is MISSING or found is None:
                return False
            if wn is not None:
                fn = _number(found)
                if fn is not None:
                    return check((fn > wn) - (fn < wn))
            ft = text_of(found)
            return check((ft > wt) - (ft < wt))
        return test
    return build


def _relative(op: str, value: Any) -> RelativeDate | None:
    """The relative date a gt/gte/lt/lte value spells, if it is one."""
    if op not in _CHECKS:
        return None
    try:
        return relative_date(value)
    except ValueError as exc:
        raise SpecError(str(exc)) from None


def _relative_test(check: Callable[[int], bool], get: Callable[[Any], Any],
                   relative: RelativeDate, clock: Clock) -> Predicate:
    def test(r: Any) -> bool:
        # Worked out at each check, so a long-lived compiled flow sees the current day.
        order = compare(get(r), relative.at(clock()))
        return order is not None and check(order)
    return test


_CHECKS: dict[str, Callable[[int], bool]] = {
    "gt": lambda c: c > 0,
    "gte": lambda c: c >= 0,
    "lt": lambda c: c < 0,
    "lte": lambda c: c <= 0,
}

_OPS: dict[str, Callable[[Callable[[Any], Any], Any], Predicate]] = {
    "equals": _equals,
    "not_equals": _not_equals,
    "in": _in,
    "empty": _empty,
    "contains": _contains,
    **{op: _compare(op, check) for op, check in _CHECKS.items()},
}
