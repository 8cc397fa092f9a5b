"""Record paths: parsing, getting (absent vs null), setting, and the set-then-get law."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.mapping.paths import MISSING, compile_getter, compile_setter, parse_path
from hub.mapping.specerror import SpecError

RECORD: dict[str, Any] = {
    "id": "7",
    "properties": {"email": "a@x.com", "phone": None, "tags": "x;y"},
    "emails": [{"type": "home", "address": "h@x.com"}, {"type": "work", "address": "w@x.com"}],
    "flags": [{"primary": True, "v": 1}],
    "items": [{"id": "i0"}, {"id": "i1"}],
    "text": "abc",
    "First Name": "Ann",
    "a.b": "dotted",
}


@pytest.mark.parametrize(("path", "expected"), [
    ("id", "7"),
    ("properties.email", "a@x.com"),
    ("properties.phone", None),
    ("properties.missing", MISSING),
    ("nothing.at.all", MISSING),
    ("emails[type=work].address", "w@x.com"),
    ("emails[type=other].address", MISSING),
    ("emails[0].address", "h@x.com"),
    ("emails[5].address", MISSING),
    ("items[1].id", "i1"),
    ("flags[primary=true].v", 1),
    ("text[0]", MISSING),            # indexing text is not a list step
    ("text.x", MISSING),
    ("properties.phone.x", MISSING),  # below a null is absent, not null
    ("First Name", "Ann"),
    ("a\\.b", "dotted"),
    ("[0]", MISSING),
])
def test_getter(path: str, expected: Any) -> None:
    assert compile_getter(path)(RECORD) is expected or compile_getter(path)(RECORD) == expected


@pytest.mark.parametrize(("path", "message"), [
    ("", "a path must be non-empty text like properties.email or items[0].id"),
    ("a.", "bad path 'a.': ends with '.'"),
    (".a", "bad path '.a': empty name at position 1"),
    ("a..b", "bad path 'a..b': empty name at position 3"),
    ("a[0", "bad path 'a[0': '[' at position 2 is never closed"),
    ("a]", "bad path 'a]': ']' at position 2 has no '['"),
    ("a[x]", ("bad path 'a[x]': '[x]' at position 2 must be a list index like [0] or a "
             "selector like [type=work]")),
    ("a[=w]", "bad path 'a[=w]': '[=w]' at position 2 needs a key before '=' (like [type=work])"),
    ("a[0]b", "bad path 'a[0]b': unexpected 'b' at position 5"),
    ("a[type=w]", ("bad path 'a[type=w]': [type=w] picks an object; follow it with .name "
                  "(like emails[type=work].address)")),
    ("a[type=w][0].b", ("bad path 'a[type=w][0].b': [type=w] picks an object; follow it with "
                       ".name (like emails[type=work].address)")),
])
def test_path_syntax_errors(path: str, message: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_path(path)
    assert str(info.value) == message


def test_setter_creates_intermediates_and_reuses_selected_element() -> None:
    data: dict[str, Any] = {}
    compile_setter("emails[type=work].address")(data, "w@x.com")
    compile_setter("emails[type=home].address")(data, "h@x.com")
    compile_setter("emails[type=work].primary")(data, True)
    compile_setter("items[2].id")(data, "i2")
    compile_setter("custom.deep.x")(data, 1)
    assert data == {
        "emails": [{"type": "work", "address": "w@x.com", "primary": True},
                   {"type": "home", "address": "h@x.com"}],
        "items": [None, None, {"id": "i2"}],
        "custom": {"deep": {"x": 1}},
    }


def test_setter_replaces_scalar_in_the_way() -> None:
    data: dict[str, Any] = {"a": None, "b": "text"}
    compile_setter("a.x")(data, 1)
    compile_setter("b[0]")(data, 2)
    assert data == {"a": {"x": 1}, "b": [2]}




_name = st.text(st.characters(blacklist_characters=".[]\\", blacklist_categories=("Cs",)),
                min_size=1, max_size=6).filter(lambda s: s.strip() == s)
_seg = st.one_of(
    _name.map(lambda n: ("key", n)),
    st.integers(0, 3).map(lambda i: ("index", i)),
    st.tuples(st.sampled_from(["type", "kind"]), st.sampled_from(["work", "home", "x y"]))
      .map(lambda kv: ("select", kv)),
)


def _render(first: str, segs: list[tuple[str, Any]]) -> str:
    out = first
    for n, (kind, v) in enumerate(segs):
        if kind == "select" and (n + 1 == len(segs) or segs[n + 1][0] != "key"):
            continue  # a selector must be followed by a field name
        out += f".{v}" if kind == "key" else f"[{v}]" if kind == "index" else f"[{v[0]}={v[1]}]"
    return out


@given(first=_name, segs=st.lists(_seg, max_size=5),
       value=st.one_of(st.none(), st.text(), st.integers()))
def test_set_then_get_round_trips(first: str, segs: list[tuple[str, Any]], value: Any) -> None:
    path = _render(first, segs)
    data: dict[str, Any] = {}
    compile_setter(path)(data, value)
    assert compile_getter(path)(data) == value
