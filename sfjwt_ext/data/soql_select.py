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

import re
from dataclasses import dataclass, replace
from typing import Dict, List, Optional, Tuple

__all__ = [
    "AGGREGATE_FUNCTIONS",
    "DATE_FUNCTIONS",
    "SelectItem",
    "SelectQuery",
    "SoqlParseError",
    "parse_select",
]

#: Functions that make a query an aggregate query.
AGGREGATE_FUNCTIONS = frozenset({"AVG", "COUNT", "COUNT_DISTINCT", "MIN", "MAX", "SUM", "GROUPING"})
#: Date functions (usable in aggregate queries' SELECT and GROUP BY); DAY_ONLY returns a date.
DATE_FUNCTIONS = frozenset({
    "CALENDAR_MONTH", "CALENDAR_QUARTER", "CALENDAR_YEAR", "DAY_IN_MONTH", "DAY_IN_WEEK",
    "DAY_IN_YEAR", "DAY_ONLY", "FISCAL_MONTH", "FISCAL_QUARTER", "FISCAL_YEAR", "HOUR_IN_DAY",
    "WEEK_IN_MONTH", "WEEK_IN_YEAR",
})
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
  | (?P<bind>:[A-Za-z_]\w*)
  | (?P<op><=|>=|!=|<>|[=<>])
  | (?P<punct>[(),])
  | (?P<other>.)
""", re.VERBOSE | re.DOTALL)


@dataclass(frozen=True)
class _Tok:
    kind: str
    value: str
    pos: int
    end: int

    @property
    def upper(self) -> str:
        return self.value.upper() if self.kind == "ident" else ""

    def is_(self, value: str) -> bool:
        """This is the word ``value`` (upper case: any case matches) or the punctuation ``value``."""
        return self.upper == value if value.isalpha() else self.kind == "punct" and self.value == value


def _tokenize(text: str) -> List[_Tok]:
    out: List[_Tok] = []
    for m in _TOKEN.finditer(text):
        kind = m.lastgroup or "other"
        if kind == "ws":
            continue
        if kind == "other" and m.group() == "'":
            raise SoqlParseError(f"unterminated string literal at position {m.start()}")
        out.append(_Tok(kind, m.group(), m.start(), m.end()))
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = _tokenize(text)
        self.i = 0

    # helpers ---------------------------------------------------------------
    def peek(self, k: int = 0) -> Optional[_Tok]:
        j = self.i + k
        return self.toks[j] if j < len(self.toks) else None

    def next(self) -> _Tok:
        t = self.peek()
        if t is None:
            raise SoqlParseError("unexpected end of query")
        self.i += 1
        return t

    def at(self, value: str, k: int = 0) -> bool:
        t = self.peek(k)
        return t is not None and t.is_(value)

    def expect(self, value: str) -> None:
        t = self.next()
        if not t.is_(value):
            shown = value if value.isalpha() else repr(value)
            raise SoqlParseError(f"expected {shown} at position {t.pos}, found {t.value!r}")

    def skip_balanced(self, depth: int = 0) -> None:
        """Skip from an opening parenthesis to its match (``depth=1``: from inside one,
        past its closing parenthesis)."""
        while True:
            t = self.next()
            if t.is_("("):
                depth += 1
            elif t.is_(")"):
                depth -= 1
                if depth == 0:
                    return

    def alias_here(self) -> Optional[str]:
        """An alias is a bare identifier followed by ',' / FROM / ')' / end."""
        t = self.peek()
        if t is None or t.kind != "ident" or "." in t.value or t.upper == "FROM":
            return None
        nxt = self.peek(1)
        if nxt is None or (nxt.kind == "punct" and nxt.value in ",)") or nxt.upper == "FROM":
            self.i += 1
            return t.value
        return None

    # grammar ---------------------------------------------------------------
    def query(self, nested: bool) -> SelectQuery:
        self.expect("SELECT")
        raw = [self.item(nested)]
        while self.at(","):
            self.i += 1
            raw.append(self.item(nested))
        self.expect("FROM")
        obj = self.next()
        if obj.kind != "ident":
            raise SoqlParseError(f"expected an object name after FROM at position {obj.pos}")
        alias = None
        t = self.peek()
        if t is not None and t.kind == "ident" and "." not in t.value and t.upper not in _CLAUSE_WORDS:
            alias = t.value
            self.i += 1
        marks = self.clauses(nested)
        end = self.toks[self.i].pos if self.i < len(self.toks) else len(self.text)
        where: Optional[str] = None
        numbers: Dict[str, int] = {}  # LIMIT, OFFSET
        group_by = False
        for n, i in enumerate(marks):
            word, nxt = self.toks[i].upper, self.toks[i + 1] if i + 1 < len(self.toks) else None
            if word == "WHERE":  # its text runs to the next clause word
                where = self.text[self.toks[i].end:self.toks[marks[n + 1]].pos if n + 1 < len(marks) else end].strip()
            group_by = group_by or (word == "GROUP" and nxt is not None and nxt.upper == "BY")
            if word in ("LIMIT", "OFFSET") and nxt is not None and nxt.kind == "number" and nxt.value.isdigit():
                numbers[word] = int(nxt.value)
        items = _name_items(raw, alias, obj.value, group_by)
        return SelectQuery(sobject=obj.value, items=tuple(items), alias=alias, where=where or None,
                           group_by=group_by, limit=numbers.get("LIMIT"), offset=numbers.get("OFFSET"))

    def clauses(self, nested: bool) -> List[int]:
        """The indexes of the clause words after FROM (WHERE, GROUP, LIMIT, ...) outside any
        parentheses, reading to the end or to the ``)`` that closes this subquery."""
        marks: List[int] = []
        depth = 0
        while (t := self.peek()) is not None:
            if t.kind == "punct" and t.value in "()":
                if t.value == ")" and depth == 0:
                    if nested:
                        break
                    raise SoqlParseError(f"unbalanced ')' at position {t.pos}")
                depth += 1 if t.value == "(" else -1
            elif depth == 0 and t.upper in _CLAUSE_WORDS:
                marks.append(self.i)
            self.i += 1
        return marks

    def item(self, nested: bool) -> SelectItem:
        start = self.peek()
        if start is None:
            raise SoqlParseError("unexpected end of query in the SELECT list")
        if start.is_("("):
            if nested:
                raise SoqlParseError(f"a subquery cannot contain a subquery (position {start.pos})")
            self.i += 1
            sub = self.query(nested=True)
            self.expect(")")
            return SelectItem("subquery", sub.sobject, (sub.sobject,), subquery=sub)
        if start.kind != "ident":
            raise SoqlParseError(f"unexpected {start.value!r} at position {start.pos} in the SELECT list")
        if start.upper == "TYPEOF":
            while not self.at("END"):
                self.next()
            self.next()
            return SelectItem("dynamic", "")
        if self.at("(", 1):
            func = start.upper
            if func == "FIELDS":
                self.i += 1
                self.skip_balanced()
                return SelectItem("dynamic", "", func=func)
            path, inner = self.call_args()
            return SelectItem("function", "", path=path, func=func, alias=self.alias_here(), inner=inner)
        self.i += 1
        return SelectItem("field", "", path=tuple(start.value.split(".")), alias=self.alias_here())

    def call_args(self) -> Tuple[Tuple[str, ...], Optional[str]]:
        """At ``NAME (``: read the call; return the first field argument and an inner function."""
        self.i += 1  # the function name
        self.expect("(")
        path: Tuple[str, ...] = ()
        inner: Optional[str] = None
        t = self.peek()
        if t is not None and t.kind == "ident" and self.at("(", 1):
            inner = t.upper
            path, _ = self.call_args()
        elif t is not None and t.kind == "ident":
            path = tuple(t.value.split("."))
            self.i += 1
        # skip any further arguments (FORMAT, DISTANCE(..., 'mi'), ...) and the closing parenthesis
        self.skip_balanced(depth=1)
        return path, inner


def _name_items(raw: List[SelectItem], alias: Optional[str], sobject: str, group_by: bool) -> List[SelectItem]:
    """Strip the object (or its alias) from paths and give each item its column name."""
    aggregate = SelectQuery(sobject, tuple(raw), group_by=group_by).is_aggregate
    out: List[SelectItem] = []
    expr = 0
    for item in raw:
        if item.kind not in ("field", "function"):
            out.append(item)
            continue
        path = item.path
        if len(path) > 1 and path[0].lower() in (sobject.lower(), (alias or "").lower()):
            path = path[1:]
        if item.alias or item.kind == "field":
            name = item.alias or ".".join(path)
        elif item.func == "COUNT" and not path and item.inner is None and not (aggregate and len(raw) > 1):
            name = "count"  # SELECT COUNT() alone
        elif not aggregate and item.func in _FIELD_PRESERVING and path:
            name = ".".join(path)
        else:
            name = f"expr{expr}"
            expr += 1
        out.append(replace(item, name=name, path=path))
    return out


def parse_select(soql: str) -> SelectQuery:
    """Parse the SELECT list (and the little of the rest that query_df needs) of ``soql``."""
    if not isinstance(soql, str) or not soql.strip():
        raise SoqlParseError("the query is empty")
    return _Parser(soql).query(nested=False)  # which reads to the end (clauses())
