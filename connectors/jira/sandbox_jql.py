"""A JQL parser for the sandbox: the subset the connector sends, plus a little more.

    query    := [or] [ORDER BY field [ASC|DESC] {, field [ASC|DESC]}]
    or       := and {OR and}
    and      := not {AND not}
    not      := NOT not | ( or ) | clause
    clause   := field op value | field [NOT] IN ( value {, value} ) | field IS [NOT] EMPTY
    op       := = | != | > | >= | < | <=
    value    := "string" | 'string' | word | number

A tokenizer (one compiled regular expression) and a recursive-descent parser build a tree
of closures; nothing is ever evaluated as code. Keywords are case-insensitive; field names
are matched case-insensitively against FIELDS. Date values are read as Jira reads them:
"yyyy-MM-dd HH:mm", "yyyy/MM/dd HH:mm", "yyyy-MM-dd" or "yyyy/MM/dd" in the user's time
zone (minute precision; a wall time the clock passes twice is read as the later instant),
or epoch milliseconds. Errors raise JqlError with Jira's wording where known.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any, Protocol

_TOKEN = re.compile(r"""\s*(?:
    (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<op>!=|>=|<=|[=<>(),])
  | (?P<word>[^\s"'=<>!(),]+)
)""", re.VERBOSE)
_ESCAPE = re.compile(r"\\(.)")
_KEYWORDS = frozenset({"and", "or", "not", "in", "is", "empty", "null", "order", "by", "asc",
                       "desc"})
_DATE_FORMATS = ("%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M", "%Y-%m-%d", "%Y/%m/%d")


class JqlError(ValueError):
    """The query is not valid JQL (the sandbox answers 400 with this message)."""


class IssueView(Protocol):
    """What a clause reads from an issue."""

    def jql_value(self, field: str) -> Any:
        """The issue's value of a JQL field (a list for labels, ms for dates)."""
        ...


FIELDS = {"project": "project", "key": "key", "issuekey": "key", "id": "id",
          "updated": "updated", "updateddate": "updated", "created": "created",
          "createddate": "created", "labels": "labels", "status": "status",
          "priority": "priority", "assignee": "assignee", "issuetype": "issuetype",
          "type": "issuetype", "summary": "summary", "duedate": "duedate"}
DATE_FIELDS = frozenset({"updated", "created"})


@dataclass(frozen=True)
class Token:
    """One token: kind (string, op, word) and its text (strings unquoted)."""

    kind: str
    text: str


@dataclass(frozen=True)
class Query:
    """A parsed query: the filter (None: unbounded) and the ORDER BY fields."""

    where: Callable[[IssueView], bool] | None
    order: tuple[tuple[str, bool], ...]  # (field, descending)


def tokenize(text: str) -> list[Token]:
    """The query's tokens; JqlError at the first character that starts no token."""
    tokens: list[Token] = []
    pos = 0
    end = len(text.rstrip())
    while pos < end:
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise JqlError(f"Error in the JQL Query: The character '{text[pos:].strip()[:1]}' "
                           f"is a reserved JQL character (at character {pos + 1}).")
        kind = match.lastgroup or "word"
        value = match.group(kind)
        if kind == "string":
            value = _ESCAPE.sub(r"\1", value[1:-1])
        tokens.append(Token(kind, value))
        pos = match.end()
    return tokens


def parse(text: str, zone: tzinfo) -> Query:
    """Parse a JQL query into a filter and an order."""
    return _Parser(tokenize(text), zone).query()


class _Parser:
    def __init__(self, tokens: list[Token], zone: tzinfo) -> None:
        self.tokens = tokens
        self.pos = 0
        self.zone = zone

    # -- token helpers ----------------------------------------------------------------------

    def peek(self) -> Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def keyword(self, *words: str) -> bool:
        token = self.peek()
        if token is not None and token.kind == "word" and token.text.lower() in words:
            self.pos += 1
            return True
        return False

    def op(self, symbol: str) -> bool:
        token = self.peek()
        if token is not None and token.kind == "op" and token.text == symbol:
            self.pos += 1
            return True
        return False

    def expect_op(self, symbol: str) -> None:
        if not self.op(symbol):
            raise self.error(f"Expecting '{symbol}'")

    def error(self, what: str) -> JqlError:
        token = self.peek()
        found = f"'{token.text}'" if token else "the end of the query"
        return JqlError(f"Error in the JQL Query: {what} but got {found}.")

    # -- grammar ----------------------------------------------------------------------------

    def query(self) -> Query:
        where = None
        if self.peek() is not None and not self._at_order():
            where = self.or_()
        order: list[tuple[str, bool]] = []
        if self.keyword("order"):
            if not self.keyword("by"):
                raise self.error("Expecting 'by' after 'order'")
            while True:
                name = self.field()
                descending = self.keyword("desc")
                if not descending:
                    self.keyword("asc")
                order.append((name, descending))
                if not self.op(","):
                    break
        if self.peek() is not None:
            raise self.error("Expecting either 'OR' or 'AND'")
        return Query(where, tuple(order))

    def _at_order(self) -> bool:
        token = self.peek()
        return token is not None and token.kind == "word" and token.text.lower() == "order"

    def or_(self) -> Callable[[IssueView], bool]:
        parts = [self.and_()]
        while self.keyword("or"):
            parts.append(self.and_())
        if len(parts) == 1:
            return parts[0]
        return lambda issue: any(p(issue) for p in parts)

    def and_(self) -> Callable[[IssueView], bool]:
        parts = [self.not_()]
        while self.keyword("and"):
            parts.append(self.not_())
        if len(parts) == 1:
            return parts[0]
        return lambda issue: all(p(issue) for p in parts)

    def not_(self) -> Callable[[IssueView], bool]:
        if self.keyword("not"):
            inner = self.not_()
            return lambda issue: not inner(issue)
        if self.op("("):
            inner = self.or_()
            self.expect_op(")")
            return inner
        return self.clause()

    def field(self) -> str:
        token = self.peek()
        if token is None or token.kind == "op":
            raise self.error("Expecting a field name")
        self.pos += 1
        name = FIELDS.get(token.text.lower())
        if name is None:
            raise JqlError(f"Field '{token.text}' does not exist or you do not have "
                           "permission to view it.")
        return name

    def value(self, name: str) -> Any:
        token = self.peek()
        if token is None or token.kind == "op" or (
                token.kind == "word" and token.text.lower() in _KEYWORDS):
            raise self.error(f"Expecting a value for field '{name}'")
        self.pos += 1
        if name in DATE_FIELDS:
            return self.date(token.text)
        return token.text

    def date(self, text: str) -> int:
        if text.isdigit():
            return int(text)
        for fmt in _DATE_FORMATS:
            try:
                wall = datetime.strptime(text, fmt)
            except ValueError:
                continue
            # fold=1: the later instant of a wall time that occurs twice (the stricter reading).
            return int(wall.replace(tzinfo=self.zone, fold=1).timestamp() * 1000)
        raise JqlError(f"Date value '{text}' for field is invalid. Valid formats include: "
                       "'yyyy/MM/dd HH:mm', 'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd', "
                       "or a period format e.g. '-5d', '4w 2d'.")

    def clause(self) -> Callable[[IssueView], bool]:
        name = self.field()
        if self.keyword("is"):
            negate = self.keyword("not")
            if not self.keyword("empty", "null"):
                raise self.error("Expecting 'EMPTY' or 'NULL'")
            return lambda issue: _empty(issue.jql_value(name)) != negate
        negate = self.keyword("not")
        if self.keyword("in"):
            self.expect_op("(")
            values = [self.value(name)]
            while self.op(","):
                values.append(self.value(name))
            self.expect_op(")")
            wanted = {_norm(v) for v in values}
            return lambda issue: _matches_any(issue.jql_value(name), wanted) != negate
        if negate:
            raise self.error("Expecting 'IN' after 'NOT'")
        token = self.peek()
        if token is None or token.kind != "op" or token.text not in ("=", "!=", ">", ">=",
                                                                      "<", "<="):
            raise self.error(f"Expecting an operator after field '{name}'")
        self.pos += 1
        symbol = token.text
        target = self.value(name)
        if symbol in ("=", "!="):
            wanted = {_norm(target)}
            equal = symbol == "="
            return lambda issue: _matches_any(issue.jql_value(name), wanted) == equal
        compare = _COMPARE[symbol]
        return lambda issue: _compare(issue.jql_value(name), target, compare)


def _norm(value: Any) -> Any:
    return value.casefold() if isinstance(value, str) else value


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == []


def _matches_any(value: Any, wanted: set[Any]) -> bool:
    values = value if isinstance(value, list) else [value]
    return any(_norm(v) in wanted for v in values if v is not None)


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    ">": lambda a, b: bool(a > b), ">=": lambda a, b: bool(a >= b),
    "<": lambda a, b: bool(a < b), "<=": lambda a, b: bool(a <= b),
}


def _compare(value: Any, target: Any, compare: Callable[[Any, Any], bool]) -> bool:
    if value is None:
        return False
    if isinstance(value, int) and isinstance(target, str):
        try:
            target = int(target)
        except ValueError:
            return False
    if isinstance(value, str) and not isinstance(target, str):
        target = str(target)
    return compare(value, target)
