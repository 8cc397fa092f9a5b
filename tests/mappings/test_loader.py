"""Mapping files: valid ones load; invalid ones name file:line: key: message, all at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.errors import MappingError
from hub.mapping import find_default, load_mapping, parse_mapping

FIXTURES = Path(__file__).parent / "fixtures"
VENDOR = FIXTURES / "vendor"

HEAD = "version: 1\nconnector: acme\nentity: contact\nobject: contacts\nid: id\n"
ENTITIES = "company, contact, deal, invoice, payment, product, project, task, message"
KNOWN_T = ("bool, country, date, datetime, decimal, default, domain, int, join, lower, map, "
           "minor_units, phone, split, string, trim, upper")
OPS = "equals, not_equals, in, empty, contains, gt, gte, lt, lte (or all, any, not)"

INVALID = [
    ("unknown_field",
     HEAD + "fields:\n  firstname: properties.firstname\n",
     [("{f}:7: fields.firstname: unknown field 'firstname' for contact (did you mean "
      "'first_name'?); known fields: first_name, last_name, title, emails, phones, addresses, "
      "company, owner, tags, last_activity_at, custom")]),
    ("unknown_transform",
     HEAD + "fields:\n  last_name: {path: ln, in: [trim, titlecase]}\n",
     [(f"{{f}}:7: fields.last_name.in[1]: unknown transform 'titlecase'; known transforms: "
      f"{KNOWN_T}")]),
    ("bad_params",
     HEAD + "fields:\n  tags:\n    path: t\n    in:\n      - split: {sep: 5}\n",
     ["{f}:10: fields.tags.in[0]: transform split: sep must be text, got 5"]),
    ("unknown_entity",
     HEAD.replace("entity: contact", "entity: person") + "fields:\n  name: n\n",
     [f"{{f}}:3: entity: unknown entity 'person'; known entities: {ENTITIES}"]),
    ("unknown_reference",
     HEAD + "fields:\n  company: {path: cid, reference: organisation}\n",
     [(f"{{f}}:7: fields.company.reference: unknown reference entity 'organisation'; known "
      f"entities: {ENTITIES}")]),
    ("bad_operator",
     HEAD + "skip_when:\n  path: properties.hs_test\n  matches: x\nfields:\n  title: t\n",
     [f"{{f}}:8: skip_when.matches: unknown operator 'matches'; known operators: {OPS}"]),
    ("yaml_syntax",
     HEAD + "fields:\n  title: [t\n",
     ["{f}:8: YAML syntax error: expected ',' or ']', but got '<stream end>'"]),
    ("extends_missing",
     "extends: acme/nope\nfields: {}\n",
     [("{f}:1: extends: cannot find mapping 'acme/nope' (looked for acme/nope.yaml in: "
      "{vendor}, {packaged})")]),
    ("extends_missing_file",
     "extends: ./nope.yaml\n",
     ["{f}:1: extends: file not found: {d}/nope.yaml"]),
    ("schema",
     HEAD + "colour: red\nfields:\n  title: {pth: t}\n  owner: 5\n  tags: {path: t, "
            "direction: sideways}\n",
     [("{f}:6: colour: unknown key 'colour'; expected one of: version, extends, description, "
      "connector, entity, object, id, updated_at, deleted, skip_when, only_when, match, "
      "constants, fields"),
      ("{f}:8: fields.title.pth: unknown key 'pth' (did you mean 'path'?); expected one of: "
      "path, value, template, each, fields, in, out, reference, by, direction, required, default, "
      "when, sensitive"),
      ("{f}:9: fields.owner: expected a native path, a field object ({{path: ..., in: [...]}}) "
      "or null, got the number 5"),
      "{f}:10: fields.tags.direction: expected one of both, in, out, got 'sideways'"]),
    ("all_at_once",
     HEAD + "match: [phone]\nfields:\n  nickname: n\n  title: {path: 'a[', in: [nope]}\n"
            "  custom.x: {value: 1, direction: both}\n  custom.y: {path: p, template: '{q}'}\n"
            "  line_items:\n    each: Items\n    fields:\n      foo: Foo\n",
     ["{f}:6: match[0]: unknown match key 'phone' for contact; known match keys: email",
      ("{f}:8: fields.nickname: unknown field 'nickname' for contact; known fields: first_name, "
      "last_name, title, emails, phones, addresses, company, owner, tags, last_activity_at, "
      "custom"),
      f"{{f}}:9: fields.title.in[0]: unknown transform 'nope'; known transforms: {KNOWN_T}",
      "{f}:9: fields.title.path: bad path 'a[': '[' at position 2 is never closed",
      ("{f}:10: fields.custom.x.direction: a value field can only be read (direction: in): "
      "there is no native path to write"),
      ("{f}:11: fields.custom.y: a field needs exactly one of path, value, template or each "
      "(found: path, template)"),
      ("{f}:12: fields.line_items: unknown field 'line_items' for contact; known fields: "
      "first_name, last_name, title, emails, phones, addresses, company, owner, tags, "
      "last_activity_at, custom")]),
    ("missing_keys",
     "version: 1\nentity: contact\nfields: {}\n",
     ["{f}:1: missing required key 'connector'", "{f}:1: missing required key 'object'",
      "{f}:1: missing required key 'id'"]),
    ("remove_nothing",
     HEAD + "fields:\n  title: null\n",
     [("{f}:7: fields.title: cannot remove 'title': this file extends nothing (null removes an "
      "inherited field)")]),
]


@pytest.mark.parametrize(("name", "text", "expected"), INVALID, ids=[c[0] for c in INVALID])
def test_invalid_mapping_messages(tmp_path: Path, name: str, text: str,
                                  expected: list[str]) -> None:
    f = tmp_path / f"{name}.yaml"
    f.write_text(text)
    with pytest.raises(MappingError) as info:
        load_mapping(f, search_dirs=[VENDOR])
    import mappings

    packaged = Path(mappings.__file__).parent
    want = [e.format(f=f, d=tmp_path, vendor=VENDOR, packaged=packaged) for e in expected]
    assert [str(p) for p in info.value.problems] == want


def test_extends_cycle(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("extends: b.yaml\nfields: {}\n")
    (tmp_path / "b.yaml").write_text("# b\nextends: ./a.yaml\n")
    with pytest.raises(MappingError) as info:
        load_mapping(tmp_path / "a.yaml")
    a, b = (tmp_path / "a.yaml").resolve(), (tmp_path / "b.yaml").resolve()
    assert [str(p) for p in info.value.problems] == [
        (f"{tmp_path / 'b.yaml'}:2: extends: these files extend each other in a loop: "
        f"{a} -> {b} -> {a}")]


def test_extends_overrides_and_removes_fields(tmp_path: Path) -> None:
    child = tmp_path / "contact.yaml"
    child.write_text("extends: acme/contact\nobject: people\nfields:\n  title: null\n"
                     "  owner: {path: properties.owner_email, in: [trim, lower]}\n")
    spec = load_mapping(child, search_dirs=[VENDOR])
    names = [f.canonical for f in spec.fields]
    assert "title" not in names and "first_name" in names
    owner = next(f for f in spec.fields if f.canonical == "owner")
    assert owner.path == "properties.owner_email" and owner.origin.file == str(child)
    assert spec.object == "people" and spec.connector == "acme"
    assert spec.extends == (str(VENDOR / "acme" / "contact.yaml"),)


def test_problem_in_parent_is_reported_at_the_parent_file(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text(HEAD + "fields:\n  title: {path: t, in: [nope]}\n")
    (tmp_path / "child.yaml").write_text("extends: base.yaml\nfields:\n  owner: o\n")
    with pytest.raises(MappingError) as info:
        load_mapping(tmp_path / "child.yaml")
    assert [str(p) for p in info.value.problems] == [
        (f"{tmp_path / 'base.yaml'}:7: fields.title.in[0]: unknown transform 'nope'; "
        f"known transforms: {KNOWN_T}")]


def test_valid_fixtures_load() -> None:
    for name in ("acme/contact", "acme/invoice"):
        spec = load_mapping(name, search_dirs=[VENDOR])
        assert spec.connector == "acme" and spec.fields
    spec = load_mapping(FIXTURES / "override_contact.yaml", search_dirs=[VENDOR])
    assert "custom.source" in [f.canonical for f in spec.fields]


def test_find_default_and_name_lookup(tmp_path: Path) -> None:
    assert find_default("acme", "contact", [VENDOR]) == VENDOR / "acme" / "contact.yaml"
    assert find_default("acme", "deal", [VENDOR]) is None
    with pytest.raises(MappingError) as info:
        load_mapping("acme/deal", search_dirs=[VENDOR])
    assert str(info.value).startswith("acme/deal: cannot find mapping 'acme/deal' (looked for "
                                      f"acme/deal.yaml in: {VENDOR}")


def test_parse_mapping_from_text() -> None:
    spec = parse_mapping(HEAD + "updated_at: modified\nfields:\n  title: t\n", "inline.yaml")
    assert spec.updated_at is not None and spec.updated_at.transforms_in == ("datetime",)
    with pytest.raises(MappingError) as info:
        parse_mapping("version: 2\n" + HEAD[11:] + "fields:\n  title: t\n", "inline.yaml")
    assert str(info.value) == "inline.yaml:1: version: expected 1, got 2"
