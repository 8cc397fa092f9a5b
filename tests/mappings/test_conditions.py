"""Conditions: every operator, combinations, lenient comparison, and structural errors."""

from __future__ import annotations

from typing import Any

import pytest

from hub.mapping.conditions import compile_condition
from hub.mapping.specerror import SpecError

REC: dict[str, Any] = {"archived": True, "n": "10", "s": "Hello", "tags": ["a", "b"],
                       "empty": "  ", "none": None, "d": "2024-05-01", "kind": 3}


@pytest.mark.parametrize(("cond", "expected"), [
    ({"path": "archived", "equals": True}, True),
    ({"path": "archived", "equals": "true"}, True),       # lenient across types
    ({"path": "kind", "equals": "3"}, True),
    ({"path": "missing", "equals": None}, False),          # absent is not null
    ({"path": "none", "equals": None}, True),
    ({"path": "s", "not_equals": "Hello"}, False),
    ({"path": "missing", "not_equals": "x"}, True),
    ({"path": "s", "in": ["Hi", "Hello"]}, True),
    ({"path": "missing", "in": ["x", None]}, True),
    ({"path": "empty", "empty": True}, True),
    ({"path": "missing", "empty": True}, True),
    ({"path": "tags", "empty": False}, True),
    ({"path": "s", "contains": "ell"}, True),
    ({"path": "tags", "contains": "b"}, True),
    ({"path": "n", "gt": 9}, True),                       # numbers compare as numbers
    ({"path": "n", "lt": "9"}, False),
    ({"path": "d", "gte": "2024-05-01"}, True),           # ISO dates compare as text
    ({"path": "d", "lt": "2024-04-30"}, False),
    ({"path": "missing", "lte": 5}, False),
    ({"all": [{"path": "archived", "equals": True}, {"path": "n", "gt": 5}]}, True),
    ({"any": [{"path": "archived", "equals": False}, {"path": "n", "gt": 50}]}, False),
    ({"not": {"path": "archived", "equals": True}}, False),
])
def test_operators(cond: dict[str, Any], expected: bool) -> None:
    assert compile_condition(cond).test(REC) is expected


def test_text_describes_the_condition() -> None:
    c = compile_condition({"any": [{"path": "properties.hs_test", "equals": "true"},
                                   {"not": {"path": "a", "in": [1, "x"]}}]})
    assert c.text == "any of (properties.hs_test equals 'true'; not (a in [1, 'x']))"


@pytest.mark.parametrize(("cond", "problems"), [
    ({"path": "a", "matches": "x"},
     [(("matches",), ("unknown operator 'matches'; known operators: equals, not_equals, in, "
                     "empty, contains, gt, gte, lt, lte (or all, any, not)"))]),
    ({"path": "a"}, [((), ("a condition takes exactly one operator (equals, not_equals, in, "
                          "empty, contains, gt, gte, lt, lte); found none"))]),
    ({"equals": 1}, [((), ("a condition needs a path (the value to test) and one operator "
                          "(equals, not_equals, in, empty, contains, gt, gte, lt, lte), "
                          "or all/any/not"))]),
    ({"path": "a", "in": "x"}, [(("in",), ("in takes a non-empty list of values, like "
                                          "[won, lost]"))]),
    ({"path": "a", "empty": "yes"}, [(("empty",), "empty takes true or false")]),
    ({"path": "a", "gt": None}, [(("gt",), "gt takes a number or a text value (like a date)")]),
    ({"path": "a[", "equals": 1}, [(("path",), ("bad path 'a[': '[' at position 2 is never "
                                               "closed"))]),
    ({"all": [{"path": "a", "equals": 1}, {"path": "b", "nope": 1}, "x"]},
     [(("all", 1, "nope"), ("unknown operator 'nope'; known operators: equals, not_equals, in, "
                           "empty, contains, gt, gte, lt, lte (or all, any, not)")),
      (("all", 2), ("a condition is an object like {path: status, equals: archived} or "
                   "{all: [...]}, {any: [...]}, {not: {...}}"))]),
    ({"any": []}, [(("any",), "any takes a non-empty list of conditions")]),
    ({"not": {"path": "a", "equals": 1}, "path": "b"},
     [((), "not must be the only key of its condition (also found: path)")]),
])
def test_invalid_conditions(cond: Any, problems: list[tuple[tuple[Any, ...], str]]) -> None:
    with pytest.raises(SpecError) as info:
        compile_condition(cond)
    assert info.value.problems == problems


def test_empty_reads_as_words() -> None:
    assert compile_condition({"path": "email", "empty": False}).text == "email is not empty"
    assert compile_condition({"path": "email", "empty": True}).text == "email is empty"
