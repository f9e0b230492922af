"""A small, forgiving parser for the SELECT list of a SOQL query (client side).

:func:`parse_select` tells :mod:`sfjwt_ext.data.dataframe` which columns a query returns, in
order, before any record arrives: plain fields and parent paths (``Account.Owner.Name``),
aggregate and date functions with their column names (alias, else ``expr0``, ``expr1``...),
``COUNT()``, child subqueries (``(SELECT ... FROM Contacts)``), and whatever it cannot know
in advance (``FIELDS(ALL)``, ``TYPEOF``), flagged as ``dynamic``.

It is not a validator: Salesforce (or the local org) rejects bad SOQL; this only reads
what it needs and raises :class:`SoqlParseError` when it cannot. Pure Python, no imports
from the rest of the package.
"""
from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, replace
from typing import Dict, List, Optional, Tuple

__all__ = ["AGGREGATE_FUNCTIONS", "DATE_FUNCTIONS", "SelectItem", "SelectQuery", "SoqlParseError", "parse_select"]

#: Functions that make a query an aggregate query.
AGGREGATE_FUNCTIONS = frozenset({"AVG", "COUNT", "COUNT_DISTINCT", "MIN", "MAX", "SUM", "GROUPING"})
#: Date functions (usable in aggregate queries' SELECT and GROUP BY); DAY_ONLY returns a date.
DATE_FUNCTIONS = frozenset({"CALENDAR_MONTH", "CALENDAR_QUARTER", "CALENDAR_YEAR", "DAY_IN_MONTH", "DAY_IN_WEEK",
                            "DAY_IN_YEAR", "DAY_ONLY", "FISCAL_MONTH", "FISCAL_QUARTER", "FISCAL_YEAR", "HOUR_IN_DAY",
                            "WEEK_IN_MONTH", "WEEK_IN_YEAR"})
#: Functions whose result keeps the field's name in non-aggregate queries.
_FIELD_PRESERVING = frozenset({"TOLABEL", "CONVERTCURRENCY", "FORMAT", "CONVERTTIMEZONE"})

_CLAUSE_WORDS = frozenset({"WHERE", "WITH", "GROUP", "HAVING", "ORDER", "LIMIT", "OFFSET", "FOR", "USING", "UPDATE"})


class SoqlParseError(ValueError):
    """The SELECT list could not be read (the query may still be valid SOQL)."""


@dataclass(frozen=True)
class SelectItem:
    """One entry of the SELECT list.

    kind:
      ``field``      a field or parent path; ``path`` its parts
      ``function``   a function call: ``func`` upper-cased; ``path`` its field argument (may be empty)
      ``subquery``   a child-relationship subquery; ``path`` = (relationship name,), ``subquery`` parsed
      ``dynamic``    ``FIELDS(...)`` / ``TYPEOF``: the columns are only known from the records
    name: the column name the API uses for it (alias / ``exprN`` / dotted path / relationship).
    """

    kind: str
    name: str
    path: Tuple[str, ...] = ()
    func: Optional[str] = None
    alias: Optional[str] = None
    inner: Optional[str] = None  # for nested calls like FORMAT(SUM(Amount)): the inner function
    subquery: Optional["SelectQuery"] = None


@dataclass(frozen=True)
class SelectQuery:
    sobject: str
    items: Tuple[SelectItem, ...]
    alias: Optional[str] = None
    where: Optional[str] = None  # the WHERE clause text, as written
    group_by: bool = False
    limit: Optional[int] = None
    offset: Optional[int] = None

    @property
    def is_count(self) -> bool:
        """``SELECT COUNT() FROM ...``: the answer is ``totalSize``, there are no records."""
        return (len(self.items) == 1 and self.items[0].kind == "function"
                and self.items[0].func == "COUNT" and not self.items[0].path and not self.group_by)

    @property
    def is_aggregate(self) -> bool:
        return self.group_by or any(
            i.kind == "function" and (i.func in AGGREGATE_FUNCTIONS or i.inner in AGGREGATE_FUNCTIONS)
            for i in self.items)

    @property
    def dynamic(self) -> bool:
        return any(i.kind == "dynamic" for i in self.items)

    @property
    def has_subquery(self) -> bool:
        return any(i.kind == "subquery" for i in self.items)


# --------------------------------------------------------------------------- tokens

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^'\\]|\\.)*')
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<number>[-+]?\d[\w:.+-]*)
  | (?P<other>:[A-Za-z_]\w*|<=|>=|!=|<>|.)  # a bind variable, an operator, punctuation
""", re.VERBOSE | re.DOTALL)


class _Parser:
    """Reads ``text``'s tokens (``toks``: regular expression matches, whitespace left out) from ``i``."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = [m for m in _TOKEN.finditer(text) if m.lastgroup != "ws"]
        self.i = 0
        quote = next((m for m in self.toks if m.group() == "'"), None)  # a quote no string token took
        if quote is not None:
            raise SoqlParseError(f"unterminated string literal at position {quote.start()}")

    def word(self, k: int = 0) -> str:
        """The token ``k`` ahead, upper-cased ("" past the end): a keyword or a punctuation mark."""
        j = self.i + k
        return self.toks[j].group().upper() if j < len(self.toks) else ""

    def name(self, k: int = 0) -> str:
        """The identifier ``k`` tokens ahead, as written ("" when that token is none)."""
        j = self.i + k
        return self.toks[j].group() if j < len(self.toks) and self.toks[j].lastgroup == "ident" else ""

    def next(self) -> re.Match[str]:
        if self.i >= len(self.toks):
            raise SoqlParseError("unexpected end of query")
        self.i += 1
        return self.toks[self.i - 1]

    def expect(self, value: str) -> None:
        t = self.next()
        if t.group().upper() != value:
            shown = value if value.isalpha() else repr(value)
            raise SoqlParseError(f"expected {shown} at position {t.start()}, found {t.group()!r}")

    def alias_here(self) -> Optional[str]:
        """An alias is a bare identifier followed by ',' / FROM / ')' / end."""
        alias = self.name()
        if alias and "." not in alias and alias.upper() != "FROM" and self.word(1) in ("", ",", ")", "FROM"):
            self.i += 1
            return alias
        return None

    # grammar ---------------------------------------------------------------
    def query(self, nested: bool) -> SelectQuery:
        self.expect("SELECT")
        raw = [self.item(nested)]
        while self.word() == ",":
            self.i += 1
            raw.append(self.item(nested))
        self.expect("FROM")
        obj = self.next()
        if obj.lastgroup != "ident":
            raise SoqlParseError(f"expected an object name after FROM at position {obj.start()}")
        alias = self.name() if "." not in self.name() and self.word() not in _CLAUSE_WORDS else ""
        self.i += bool(alias)
        marks = self.clauses(nested)
        where: Optional[str] = None
        numbers: Dict[str, int] = {}  # LIMIT, OFFSET
        group_by = False
        for i, stop in zip(marks, marks[1:] + [self.i]):  # a clause runs to the next one
            word, nxt = self.toks[i].group().upper(), self.toks[i + 1] if i + 1 < len(self.toks) else None
            if word == "WHERE":
                where = self.text[self.toks[i].end():self.toks[stop].start() if stop < len(self.toks) else None]
            group_by = group_by or (word == "GROUP" and nxt is not None and nxt.group().upper() == "BY")
            if word in ("LIMIT", "OFFSET") and nxt is not None and nxt.lastgroup == "number" and nxt.group().isdigit():
                numbers[word] = int(nxt.group())
        return SelectQuery(sobject=obj.group(), items=_name_items(raw, alias, obj.group(), group_by),
                           alias=alias or None, where=(where or "").strip() or None, group_by=group_by,
                           limit=numbers.get("LIMIT"), offset=numbers.get("OFFSET"))

    def clauses(self, nested: bool) -> List[int]:
        """The indexes of the clause words after FROM (WHERE, GROUP, LIMIT, ...) outside any
        parentheses, reading to the end or to the ``)`` that closes this subquery."""
        marks: List[int] = []
        depth = 0
        while (word := self.word()) and not (word == ")" and depth == 0 and nested):
            if word == ")" and depth == 0:
                raise SoqlParseError(f"unbalanced ')' at position {self.toks[self.i].start()}")
            depth += {"(": 1, ")": -1}.get(word, 0)
            if depth == 0 and word in _CLAUSE_WORDS:
                marks.append(self.i)
            self.i += 1
        return marks

    def item(self, nested: bool) -> SelectItem:
        if not self.word():
            raise SoqlParseError("unexpected end of query in the SELECT list")
        start = self.toks[self.i]
        if start.group() == "(":
            if nested:
                raise SoqlParseError(f"a subquery cannot contain a subquery (position {start.start()})")
            self.i += 1
            sub = self.query(nested=True)
            self.expect(")")
            return SelectItem("subquery", sub.sobject, (sub.sobject,), subquery=sub)
        if start.lastgroup != "ident":
            raise SoqlParseError(f"unexpected {start.group()!r} at position {start.start()} in the SELECT list")
        if self.word() == "TYPEOF":
            while self.next().group().upper() != "END":
                pass
            return SelectItem("dynamic", "")
        if self.word(1) == "(":
            func = self.word()
            path, inner = self.call_args()
            if func == "FIELDS":
                return SelectItem("dynamic", "", func=func)
            return SelectItem("function", "", path=path, func=func, alias=self.alias_here(), inner=inner)
        self.i += 1
        return SelectItem("field", "", path=tuple(start.group().split(".")), alias=self.alias_here())

    def call_args(self) -> Tuple[Tuple[str, ...], Optional[str]]:
        """At ``NAME (``: read the call; return the first field argument and an inner function."""
        self.i += 2  # the function name and its parenthesis
        path: Tuple[str, ...] = ()
        inner: Optional[str] = None
        if self.name() and self.word(1) == "(":
            inner = self.word()
            path, _ = self.call_args()
        elif self.name():
            path = tuple(self.name().split("."))
            self.i += 1
        depth = 1  # skip any further arguments (FORMAT, DISTANCE(..., 'mi'), ...) and the closing parenthesis
        while depth:
            depth += {"(": 1, ")": -1}.get(self.next().group(), 0)
        return path, inner


def _name_items(raw: List[SelectItem], alias: str, sobject: str, group_by: bool) -> Tuple[SelectItem, ...]:
    """Strip the object (or its alias) from paths and give each item its column name."""
    aggregate = SelectQuery(sobject, tuple(raw), group_by=group_by).is_aggregate
    exprs = (f"expr{n}" for n in itertools.count())
    out: List[SelectItem] = []
    for item in raw:  # a subquery's path has one part, a dynamic item's none: both keep their name
        path = item.path
        if len(path) > 1 and path[0].lower() in (sobject.lower(), alias.lower()):
            path = path[1:]
        if item.kind in ("subquery", "dynamic"):
            name = item.name
        elif item.alias or item.kind == "field":
            name = item.alias or ".".join(path)
        elif item.func == "COUNT" and not path and item.inner is None and not (aggregate and len(raw) > 1):
            name = "count"  # SELECT COUNT() alone
        elif not aggregate and item.func in _FIELD_PRESERVING and path:
            name = ".".join(path)
        else:
            name = next(exprs)
        out.append(replace(item, name=name, path=path))
    return tuple(out)


def parse_select(soql: str) -> SelectQuery:
    """Parse the SELECT list (and the little of the rest that query_df needs) of ``soql``."""
    if not isinstance(soql, str) or not soql.strip():
        raise SoqlParseError("the query is empty")
    return _Parser(soql).query(nested=False)  # which reads to the end (clauses())
