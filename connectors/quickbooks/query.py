"""The QuickBooks Online query language: built by the connector, parsed by the sandbox.

The subset (vendor-apis.md section 5, Intuit "data queries"):

    SELECT * | COUNT(*) FROM <Entity>
      [WHERE <cond> [AND <cond>]...]          no OR, no joins, no projections
      [ORDERBY <field> [ASC|DESC] [, ...]]
      [STARTPOSITION <n>]                     1-based
      [MAXRESULTS <n>]                        default 100, at most 1000

    <cond>  := <field> (= | < | > | <= | >= | LIKE) <value>
             | <field> IN (<value>, ...)
    <value> := 'text' (a quote inside is written \\') | number | true | false

Keywords are case-insensitive; field names are dotted paths (`MetaData.LastUpdatedTime`).
The parser is a small tokenizer plus a recursive-descent reader: nothing is ever evaluated
as code. `build` and `quote` are what the connector uses, so the two sides agree.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

MAX_RESULTS = 1000
DEFAULT_RESULTS = 100
Value = str | int | float | bool
Op = Literal["=", "<", ">", "<=", ">=", "LIKE", "IN"]


class QueryError(ValueError):
    """The query text is not in the language; the message says where and what was expected."""


@dataclass(frozen=True)
class Condition:
    """One `field op value` test (`values` holds the IN list)."""

    field: str
    op: Op
    values: tuple[Value, ...]


@dataclass(frozen=True)
class Query:
    """A parsed query."""

    entity: str
    count: bool = False
    where: tuple[Condition, ...] = ()
    order: tuple[tuple[str, bool], ...] = ()  # (field, descending)
    start: int = 1
    max_results: int = DEFAULT_RESULTS

    def mentions(self, field: str) -> bool:
        """Whether a WHERE condition tests `field` (case-insensitive)."""
        return any(c.field.lower() == field.lower() for c in self.where)


# -- building (connector side) -----------------------------------------------------------------


def quote(text: str) -> str:
    """A string literal: single quotes, with backslash-escaped quotes and backslashes."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def literal(value: Value) -> str:
    """Any value as the language writes it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return quote(value)


def build(entity: str, where: Iterable[tuple[str, str, Value | Sequence[Value]]] = (), *,
          order_by: str | None = None, start: int = 1,
          max_results: int = DEFAULT_RESULTS) -> str:
    """SELECT * FROM entity WHERE ... ORDERBY ... STARTPOSITION ... MAXRESULTS ...

    `where` holds (field, op, value) triples; for IN the value is a sequence.
    """
    parts = [f"SELECT * FROM {entity}"]
    conds = []
    for field, op, value in where:
        if op.upper() == "IN":
            assert isinstance(value, Sequence) and not isinstance(value, str)
            conds.append(f"{field} IN ({','.join(literal(v) for v in value)})")
        else:
            assert not isinstance(value, Sequence) or isinstance(value, str)
            conds.append(f"{field} {op} {literal(value)}")
    if conds:
        parts.append("WHERE " + " AND ".join(conds))
    if order_by:
        parts.append(f"ORDERBY {order_by}")
    parts.append(f"STARTPOSITION {max(1, start)} MAXRESULTS {min(MAX_RESULTS, max_results)}")
    return " ".join(parts)


# -- parsing (sandbox side) --------------------------------------------------------------------

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^'\\]|\\.)*')
  | (?P<number>-?\d+(?:\.\d+)?)
  | (?P<op><=|>=|!=|<>|=|<|>)
  | (?P<punct>[(),*])
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
""", re.VERBOSE)
_ESCAPE = re.compile(r"\\(.)")


@dataclass(frozen=True)
class Token:
    """One token: its kind, text and character offset."""

    kind: str
    text: str
    at: int


def tokenize(text: str) -> list[Token]:
    """Split a query into tokens; QueryError at the first character that starts none."""
    tokens = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            near = text[pos:pos + 15]
            if text[pos] == "'":
                raise QueryError(f"unterminated string at character {pos + 1}: {near!r}")
            raise QueryError(f"unexpected character {text[pos]!r} at character {pos + 1}")
        kind = match.lastgroup or ""
        if kind != "ws":
            tokens.append(Token(kind, match.group(), pos))
        pos = match.end()
    return tokens


class _Reader:
    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.i = 0

    def peek(self) -> Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def next(self, what: str) -> Token:
        token = self.peek()
        if token is None:
            raise QueryError(f"the query ends where {what} was expected")
        self.i += 1
        return token

    def keyword(self, *words: str) -> str | None:
        """Consume the next token if it is one of the keywords (any case)."""
        token = self.peek()
        if token is not None and token.kind == "word" and token.text.upper() in words:
            self.i += 1
            return token.text.upper()
        return None

    def expect_keyword(self, word: str) -> None:
        if self.keyword(word) is None:
            token = self.peek()
            found = f"{token.text!r} at character {token.at + 1}" if token else "the end"
            raise QueryError(f"expected {word}, found {found}")

    def expect(self, kind: str, text: str | None, what: str) -> Token:
        token = self.next(what)
        if token.kind != kind or (text is not None and token.text != text):
            raise QueryError(f"expected {what}, found {token.text!r} at character "
                             f"{token.at + 1}")
        return token

    def integer(self, what: str) -> int:
        token = self.expect("number", None, what)
        if "." in token.text or token.text.startswith("-"):
            raise QueryError(f"{what} must be a whole number of 1 or more, got {token.text}")
        return int(token.text)


_KEYWORDS = {"SELECT", "FROM", "WHERE", "AND", "OR", "IN", "LIKE", "ORDERBY", "ASC", "DESC",
             "STARTPOSITION", "MAXRESULTS", "COUNT"}


def parse(text: str) -> Query:
    """Parse one query; QueryError naming the position and what was expected."""
    r = _Reader(text)
    r.expect_keyword("SELECT")
    count = False
    if r.keyword("COUNT"):
        r.expect("punct", "(", "( after COUNT")
        r.expect("punct", "*", "* in COUNT(*)")
        r.expect("punct", ")", ") after COUNT(*")
        count = True
    else:
        token = r.next("* after SELECT")
        if token.text != "*":
            raise QueryError(f"only SELECT * or SELECT COUNT(*) is supported (no projections), "
                             f"found {token.text!r}")
    r.expect_keyword("FROM")
    entity = r.expect("word", None, "an entity name after FROM").text
    if entity.upper() in _KEYWORDS or "." in entity:
        raise QueryError(f"expected an entity name after FROM, found {entity!r}")
    where: list[Condition] = []
    if r.keyword("WHERE"):
        where.append(_condition(r))
        while True:
            joined = r.keyword("AND", "OR")
            if joined is None:
                break
            if joined == "OR":
                raise QueryError("OR is not supported by the QuickBooks query language; "
                                 "use IN (...) or several queries")
            where.append(_condition(r))
    order: list[tuple[str, bool]] = []
    if r.keyword("ORDERBY"):
        while True:
            field = r.expect("word", None, "a field name after ORDERBY").text
            desc = r.keyword("ASC", "DESC") == "DESC"
            order.append((field, desc))
            comma = r.peek()
            if comma is None or comma.text != ",":
                break
            r.i += 1
    start, max_results = 1, DEFAULT_RESULTS
    if r.keyword("STARTPOSITION"):
        start = r.integer("STARTPOSITION")
        if start < 1:
            raise QueryError("STARTPOSITION is 1-based: it must be 1 or more")
    if r.keyword("MAXRESULTS"):
        max_results = r.integer("MAXRESULTS")
        if not 1 <= max_results <= MAX_RESULTS:
            raise QueryError(f"MAXRESULTS must be between 1 and {MAX_RESULTS}")
    leftover = r.peek()
    if leftover is not None:
        raise QueryError(f"unexpected {leftover.text!r} at character {leftover.at + 1}")
    return Query(entity, count, tuple(where), tuple(order), start, max_results)


def _condition(r: _Reader) -> Condition:
    token = r.expect("word", None, "a field name")
    if token.text.upper() in _KEYWORDS:
        raise QueryError(f"expected a field name, found {token.text!r} at character "
                         f"{token.at + 1}")
    field = token.text
    if r.keyword("IN"):
        r.expect("punct", "(", "( after IN")
        values = [_value(r)]
        while (nxt := r.next(", or ) in the IN list")).text == ",":
            values.append(_value(r))
        if nxt.text != ")":
            raise QueryError(f"expected , or ) in the IN list, found {nxt.text!r}")
        return Condition(field, "IN", tuple(values))
    if r.keyword("LIKE"):
        value = _value(r)
        if not isinstance(value, str):
            raise QueryError("LIKE needs a quoted pattern like '%Acme%'")
        return Condition(field, "LIKE", (value,))
    op = r.next(f"an operator after {field}")
    if op.kind != "op" or op.text in ("!=", "<>"):
        raise QueryError(f"expected =, <, >, <=, >=, IN or LIKE after {field}, found "
                         f"{op.text!r} at character {op.at + 1}")
    return Condition(field, op.text, (_value(r),))  # type: ignore[arg-type]


def _value(r: _Reader) -> Value:
    token = r.next("a value")
    if token.kind == "string":
        return _ESCAPE.sub(lambda m: m.group(1), token.text[1:-1])
    if token.kind == "number":
        return float(token.text) if "." in token.text else int(token.text)
    if token.kind == "word" and token.text.lower() in ("true", "false"):
        return token.text.lower() == "true"
    raise QueryError(f"expected a value ('text', a number, true or false), found "
                     f"{token.text!r} at character {token.at + 1}")
