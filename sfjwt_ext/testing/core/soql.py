"""SOQL tokenizer and recursive-descent parser for the local test org.

Turns a SOQL string into a small AST of dataclasses.  Nothing here knows about
objects or fields: name resolution and type checks happen in :mod:`.compiler` and :mod:`.queries`.
Errors are :class:`SoqlError` with Salesforce's error codes and message style
(``"\\n<query>\\n   ^\\nERROR at Row:1:Column:4\\nunexpected token: 'FORM'"``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple, Union

__all__ = [
    "SoqlError",
    "Token",
    "tokenize",
    "parse",
    "Query",
    "FieldRef",
    "Aggregate",
    "Subquery",
    "Literal",
    "DateLiteral",
    "Comparison",
    "BoolOp",
    "Not",
    "OrderItem",
    "FieldFunction",
    "FieldsMacro",
    "TypeOf",
    "AGGREGATE_FUNCTIONS",
    "DATE_FUNCTIONS",
    "DATE_LITERALS",
    "DATE_LITERALS_N",
    "error_at",
]


class SoqlError(Exception):
    """A Salesforce API error raised by the SOQL engine or the record store.

    ``error_code`` is Salesforce's code (``MALFORMED_QUERY``, ``INVALID_FIELD``,
    ``INVALID_TYPE``, ``NOT_FOUND``...), ``message`` the text Salesforce would
    return, ``status`` the HTTP status the REST API answers with.
    """

    def __init__(self, error_code: str, message: str, status: int = 400, *, fields: Optional[List[str]] = None) -> None:
        super().__init__(f"{error_code}: {message}")
        self.error_code = error_code
        self.message = message
        self.status = status
        self.fields: List[str] = list(fields or [])

    def to_json(self) -> List[Dict[str, Any]]:
        """The REST API error body: ``[{"message", "errorCode"(, "fields")}]``."""
        body: Dict[str, Any] = {"message": self.message, "errorCode": self.error_code}
        if self.fields:
            body["fields"] = list(self.fields)
        return [body]


def error_at(error_code: str, text: str, pos: int, detail: str, status: int = 400) -> SoqlError:
    """Build a SoqlError whose message points at ``pos`` in ``text`` the way Salesforce does."""
    pos = max(0, min(pos, len(text)))
    line_start = text.rfind("\n", 0, pos) + 1
    line_end = text.find("\n", pos)
    if line_end < 0:
        line_end = len(text)
    row = text.count("\n", 0, pos) + 1
    col = pos - line_start + 1
    line = text[line_start:line_end]
    # Salesforce shows a window of the line around the error, not the whole query.
    start = 0
    if len(line) > 120:
        start = max(0, col - 1 - 60)
        line = line[start:start + 120]
    caret = " " * (col - 1 - start) + "^"
    message = f"\n{line}\n{caret}\nERROR at Row:{row}:Column:{col}\n{detail}"
    return SoqlError(error_code, message, status)


# --------------------------------------------------------------------------- tokens

KEYWORDS = frozenset(
    {
        "SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IN", "LIKE", "NULL", "TRUE", "FALSE",
        "GROUP", "BY", "HAVING", "ORDER", "ASC", "DESC", "NULLS", "LIMIT", "OFFSET", "FOR",
        "WITH", "INCLUDES", "EXCLUDES", "USING", "TYPEOF", "ROLLUP", "CUBE", "UPDATE",
    }
)

AGGREGATE_FUNCTIONS = frozenset({"COUNT", "COUNT_DISTINCT", "SUM", "AVG", "MIN", "MAX", "GROUPING"})
#: Date functions of one date or datetime field (SELECT with GROUP BY, WHERE, GROUP BY, HAVING, ORDER BY).
DATE_FUNCTIONS = frozenset(
    {
        "CALENDAR_MONTH", "CALENDAR_QUARTER", "CALENDAR_YEAR", "DAY_IN_MONTH", "DAY_IN_WEEK", "DAY_IN_YEAR",
        "DAY_ONLY", "FISCAL_MONTH", "FISCAL_QUARTER", "FISCAL_YEAR", "HOUR_IN_DAY", "WEEK_IN_MONTH",
        "WEEK_IN_YEAR",
    }
)
#: Functions of one field: the date functions, toLabel(), convertTimezone() (inside a date function),
#: FORMAT() and convertCurrency() (alone or inside FORMAT()).
FIELD_FUNCTIONS = DATE_FUNCTIONS | {"TOLABEL", "CONVERTTIMEZONE", "FORMAT", "CONVERTCURRENCY"}
#: Levels of parentheses and NOT a condition may nest (deeper is MALFORMED_QUERY, not a RecursionError).
MAX_NESTING = 100
#: Child subqueries a child subquery may nest (five levels of parent-to-child queries since API 58.0).
MAX_CHILD_LEVELS = 4
#: Field functions that may take an alias outside aggregate queries.
ALIASED_FUNCTIONS = frozenset({"FORMAT", "CONVERTCURRENCY"})
#: The largest OFFSET Salesforce accepts.
MAX_OFFSET = 2000

#: Date literals standing for a range of days relative to today.
DATE_LITERALS = frozenset(
    {
        "YESTERDAY", "TODAY", "TOMORROW", "LAST_WEEK", "THIS_WEEK", "NEXT_WEEK", "LAST_MONTH",
        "THIS_MONTH", "NEXT_MONTH", "LAST_90_DAYS", "NEXT_90_DAYS", "THIS_QUARTER",
        "LAST_QUARTER", "NEXT_QUARTER", "THIS_YEAR", "LAST_YEAR", "NEXT_YEAR",
        "THIS_FISCAL_QUARTER", "LAST_FISCAL_QUARTER", "NEXT_FISCAL_QUARTER",
        "THIS_FISCAL_YEAR", "LAST_FISCAL_YEAR", "NEXT_FISCAL_YEAR",
    }
)
#: Date literals taking ``:n``.
DATE_LITERALS_N = frozenset(
    {
        "LAST_N_DAYS", "NEXT_N_DAYS", "N_DAYS_AGO", "LAST_N_WEEKS", "NEXT_N_WEEKS", "N_WEEKS_AGO",
        "LAST_N_MONTHS", "NEXT_N_MONTHS", "N_MONTHS_AGO", "LAST_N_YEARS", "NEXT_N_YEARS",
        "N_YEARS_AGO", "LAST_N_QUARTERS", "NEXT_N_QUARTERS", "N_QUARTERS_AGO",
        "LAST_N_FISCAL_QUARTERS", "NEXT_N_FISCAL_QUARTERS", "N_FISCAL_QUARTERS_AGO",
        "LAST_N_FISCAL_YEARS", "NEXT_N_FISCAL_YEARS", "N_FISCAL_YEARS_AGO",
    }
)

_OPERATORS = ("<=", ">=", "!=", "<>", "=", "<", ">")
_PUNCT = "(),:"


@dataclass(frozen=True)
class Token:
    kind: str  # IDENT | KEYWORD | STRING | NUMBER | DATE | DATETIME | OP | PUNCT | EOF
    value: str  # identifier text, keyword upper-cased, decoded string, number text...
    pos: int  # offset in the query text
    end: int
    like: str = ""  # for STRING: the value as a sqlite LIKE pattern (ESCAPE '\')


_STRING_ESCAPES = {"n": "\n", "N": "\n", "r": "\r", "R": "\r", "t": "\t", "T": "\t", "b": "\b",
                   "B": "\b", "f": "\f", "F": "\f", '"': '"', "'": "'", "\\": "\\"}


def _is_ident_start(ch: str) -> bool:
    return ch.isalpha() or ch == "_"


def _is_ident_char(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def tokenize(text: str) -> List[Token]:
    """Split SOQL text into tokens.  Dotted names (``Account.Owner.Name``) are one IDENT."""
    tokens: List[Token] = []
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        start = i
        if ch == "'":
            i += 1
            value: List[str] = []
            like: List[str] = []
            while True:
                if i >= n:
                    raise error_at("MALFORMED_QUERY", text, start, "line 1:%d no viable alternative at character '''" % start)
                c = text[i]
                if c == "\\":
                    if i + 1 >= n:
                        raise error_at("MALFORMED_QUERY", text, i, "Invalid string literal: unterminated escape")
                    e = text[i + 1]
                    if e in _STRING_ESCAPES:
                        value.append(_STRING_ESCAPES[e])
                        like.append("\\\\" if e == "\\" else _STRING_ESCAPES[e])
                    elif e in "%_":
                        # literal % / _ in LIKE; outside LIKE Salesforce keeps the backslash
                        value.append("\\" + e)
                        like.append("\\" + e)
                    else:
                        raise error_at("MALFORMED_QUERY", text, i, f"Invalid string literal '\\{e}'. Illegal character sequence '\\{e}' in string literal.")
                    i += 2
                    continue
                if c == "'":
                    i += 1
                    break
                value.append(c)
                like.append(c)
                i += 1
            tokens.append(Token("STRING", "".join(value), start, i, "".join(like)))
            continue
        if ch.isdigit() or (ch in "+-." and i + 1 < n and (text[i + 1].isdigit() or text[i + 1] == ".")
                            and _number_allowed(tokens)):
            tok, i = _scan_number_or_date(text, i)
            tokens.append(tok)
            continue
        if _is_ident_start(ch):
            while i < n and (_is_ident_char(text[i]) or (text[i] == "." and i + 1 < n and _is_ident_start(text[i + 1]))):
                i += 1
            word = text[start:i]
            if "." not in word and word.upper() in KEYWORDS:
                tokens.append(Token("KEYWORD", word.upper(), start, i))
            else:
                tokens.append(Token("IDENT", word, start, i))
            continue
        matched = False
        for op in _OPERATORS:
            if text.startswith(op, i):
                tokens.append(Token("OP", op, start, i + len(op)))
                i += len(op)
                matched = True
                break
        if matched:
            continue
        if ch in _PUNCT:
            tokens.append(Token("PUNCT", ch, start, i + 1))
            i += 1
            continue
        raise error_at("MALFORMED_QUERY", text, i, f"line {text.count(chr(10), 0, i) + 1}:{i} no viable alternative at character '{ch}'")
    tokens.append(Token("EOF", "", n, n))
    return tokens


def _number_allowed(tokens: List[Token]) -> bool:
    """A sign starts a number only where a value is expected (after an operator, '(' or ',')."""
    if not tokens:
        return True
    last = tokens[-1]
    return last.kind == "OP" or (last.kind == "PUNCT" and last.value in "(,:") or (last.kind == "KEYWORD" and last.value in ("IN", "LIMIT", "OFFSET"))


def _digits(text: str, i: int, count: int) -> bool:
    return i + count <= len(text) and text[i:i + count].isdigit()


def _scan_number_or_date(text: str, i: int) -> Tuple[Token, int]:
    start = i
    n = len(text)
    # date / datetime: YYYY-MM-DD[THH:MM:SS[.sss](Z|+hh:mm|-hh:mm)]
    if _digits(text, i, 4) and i + 4 < n and text[i + 4] == "-" and _digits(text, i + 5, 2) and i + 7 < n \
            and text[i + 7] == "-" and _digits(text, i + 8, 2):
        i += 10
        if i < n and text[i] in "Tt":
            j = i + 1
            if not (_digits(text, j, 2) and text[j + 2:j + 3] == ":" and _digits(text, j + 3, 2)
                    and text[j + 5:j + 6] == ":" and _digits(text, j + 6, 2)):
                raise error_at("MALFORMED_QUERY", text, start, f"line 1:{start} mismatched character '{text[j:j + 1] or '<EOF>'}' expecting a datetime")
            j += 8
            if j < n and text[j] == ".":
                j += 1
                while j < n and text[j].isdigit():
                    j += 1
            if j < n and text[j] in "Zz":
                j += 1
            elif j < n and text[j] in "+-" and _digits(text, j + 1, 2) and text[j + 3:j + 4] == ":" and _digits(text, j + 4, 2):
                j += 6
            else:
                raise error_at("MALFORMED_QUERY", text, start,
                               f"line 1:{start} mismatched character '{text[j:j + 1] or '<EOF>'}' expecting set null")
            return Token("DATETIME", text[start:j], start, j), j
        if i < n and (_is_ident_char(text[i])):
            raise error_at("MALFORMED_QUERY", text, start, f"unexpected token: '{text[start:i + 1]}'")
        return Token("DATE", text[start:i], start, i), i
    if text[i] in "+-":
        i += 1
    while i < n and text[i].isdigit():
        i += 1
    if i < n and text[i] == ".":
        i += 1
        while i < n and text[i].isdigit():
            i += 1
    if i < n and _is_ident_char(text[i]):
        j = i
        while j < n and _is_ident_char(text[j]):
            j += 1
        raise error_at("MALFORMED_QUERY", text, start, f"unexpected token: '{text[start:j]}'")
    return Token("NUMBER", text[start:i], start, i), i


# --------------------------------------------------------------------------- AST


@dataclass
class FieldRef:
    """A field or a dotted parent path (``Account.Owner.Name``)."""

    path: Tuple[str, ...]
    pos: int = 0
    alias: Optional[str] = None

    @property
    def name(self) -> str:
        return ".".join(self.path)


@dataclass
class Aggregate:
    """``COUNT()``, ``COUNT(Id)``, ``COUNT_DISTINCT(x)``, ``SUM(x)``... ``field`` is None for ``COUNT()``."""

    function: str
    field: Optional[FieldRef]
    alias: Optional[str] = None
    pos: int = 0
    format: bool = False  # FORMAT(MAX(Amount)): the value formatted for the user's locale

    def signature(self) -> str:
        return f"{self.function}({self.field.name.lower() if self.field else ''})"


@dataclass
class FieldFunction:
    """``toLabel(Industry)``, ``CALENDAR_YEAR(CloseDate)``, ``DAY_ONLY(convertTimezone(CreatedDate))``."""

    function: str  # upper case
    field: Union[FieldRef, "FieldFunction"]
    alias: Optional[str] = None
    pos: int = 0

    @property
    def field_ref(self) -> FieldRef:
        inner = self.field
        while isinstance(inner, FieldFunction):
            inner = inner.field
        return inner

    @property
    def path(self) -> Tuple[str, ...]:
        return self.field_ref.path

    @property
    def name(self) -> str:
        inner = self.field.name if isinstance(self.field, FieldRef) else self.field.name
        return f"{self.function}({inner})"


@dataclass
class FieldsMacro:
    """``FIELDS(ALL)``, ``FIELDS(STANDARD)``, ``FIELDS(CUSTOM)`` in a SELECT list."""

    kind: str  # ALL | STANDARD | CUSTOM
    pos: int = 0


@dataclass
class TypeOf:
    """``TYPEOF What WHEN Account THEN Name, Phone ... ELSE Name END``: fields per referenced type."""

    ref: FieldRef  # the polymorphic relationship (What, Who, Owner)
    whens: List[Tuple[str, int, List[FieldRef]]]  # (object name, its position, fields)
    otherwise: List[FieldRef] = field(default_factory=list)
    pos: int = 0


@dataclass
class Subquery:
    """A child-relationship subquery in the SELECT list, or a semi-join in WHERE."""

    query: "Query"
    pos: int = 0


@dataclass
class Literal:
    """kind: string | number | null | boolean | date | datetime."""

    kind: str
    value: object
    pos: int = 0
    like: str = ""  # LIKE pattern form of a string literal


@dataclass
class DateLiteral:
    """``TODAY``, ``LAST_N_DAYS:30``... ``n`` is None for the fixed ones."""

    name: str
    n: Optional[int] = None
    pos: int = 0


Value = Union[Literal, DateLiteral]


@dataclass
class Comparison:
    """``left op value``; op is one of = != < > <= >= LIKE IN NOTIN INCLUDES EXCLUDES.

    For IN / NOT IN ``value`` is a list of literals or a :class:`Subquery` (semi-join).
    """

    left: Union[FieldRef, Aggregate, FieldFunction]
    op: str
    value: Union[Value, List[Value], Subquery]
    pos: int = 0


@dataclass
class BoolOp:
    op: str  # AND | OR
    items: List["Condition"]


@dataclass
class Not:
    item: "Condition"


Condition = Union[Comparison, BoolOp, Not]


@dataclass
class OrderItem:
    expr: Union[FieldRef, Aggregate, FieldFunction]
    descending: bool = False
    nulls_first: Optional[bool] = None  # None: Salesforce default (ASC first, DESC last)

    @property
    def effective_nulls_first(self) -> bool:
        return (not self.descending) if self.nulls_first is None else self.nulls_first


SelectItem = Union[FieldRef, Aggregate, Subquery, FieldFunction, FieldsMacro, TypeOf]


@dataclass
class Query:
    select: List[SelectItem]
    sobject: str
    sobject_pos: int = 0
    alias: Optional[str] = None
    where: Optional[Condition] = None
    group_by: List[Union[FieldRef, FieldFunction]] = field(default_factory=list)
    group_kind: Optional[str] = None  # ROLLUP | CUBE
    having: Optional[Condition] = None
    order_by: List[OrderItem] = field(default_factory=list)
    limit: Optional[int] = None
    offset: Optional[int] = None
    for_clause: Optional[str] = None  # VIEW | REFERENCE | UPDATE
    with_clause: Optional[str] = None  # SECURITY_ENFORCED | USER_MODE | SYSTEM_MODE
    text: str = ""
    #: where ORDER BY, LIMIT and OFFSET start in the text (-1: absent), for errors about them
    order_pos: int = -1
    limit_pos: int = -1
    offset_pos: int = -1

    @property
    def is_aggregate(self) -> bool:
        return bool(self.group_by) or any(isinstance(s, Aggregate) for s in self.select)

    @property
    def is_count_only(self) -> bool:
        return len(self.select) == 1 and isinstance(self.select[0], Aggregate) \
            and self.select[0].function == "COUNT" and self.select[0].field is None


# --------------------------------------------------------------------------- parser


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0
        self.depth = 0  # parentheses, NOT and subqueries open at the current token

    # helpers -------------------------------------------------------------
    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def peek(self, k: int = 1) -> Token:
        return self.tokens[min(self.i + k, len(self.tokens) - 1)]

    def advance(self) -> Token:
        t = self.tokens[self.i]
        if t.kind != "EOF":
            self.i += 1
        return t

    def error(self, tok: Optional[Token] = None, detail: Optional[str] = None) -> SoqlError:
        tok = tok or self.tok
        if detail is None:
            shown = "<EOF>" if tok.kind == "EOF" else self.text[tok.pos:tok.end]
            detail = f"unexpected token: '{shown}'"
        return error_at("MALFORMED_QUERY", self.text, tok.pos, detail)

    def is_kw(self, *words: str) -> bool:
        return self.tok.kind == "KEYWORD" and self.tok.value in words

    def accept_kw(self, word: str) -> Optional[Token]:
        if self.is_kw(word):
            return self.advance()
        return None

    def expect_kw(self, word: str) -> Token:
        if not self.is_kw(word):
            raise self.error()
        return self.advance()

    def is_punct(self, ch: str) -> bool:
        return self.tok.kind == "PUNCT" and self.tok.value == ch

    def expect_punct(self, ch: str) -> Token:
        if not self.is_punct(ch):
            raise self.error()
        return self.advance()

    # grammar -------------------------------------------------------------
    def parse(self) -> Query:
        q = self.query("top")
        if self.tok.kind != "EOF":
            raise self.error()
        return q

    def query(self, kind: str, level: int = 0) -> Query:
        """One SELECT; ``kind`` is top, child (a parent-to-child subquery ``level`` deep) or semi."""
        self.enter(self.tok)
        self.expect_kw("SELECT")
        select = self.select_list(kind, level)
        self.expect_kw("FROM")
        if self.tok.kind != "IDENT":
            raise self.error()
        obj = self.advance()
        q = Query(select=select, sobject=obj.value, sobject_pos=obj.pos, text=self.text)
        if self.tok.kind == "IDENT" and "." not in self.tok.value:
            q.alias = self.advance().value
        self.using_scope()
        if self.accept_kw("WHERE"):
            q.where = self.condition(allow_aggregates=False)
        if self.accept_kw("WITH"):
            if self.tok.kind != "IDENT" or self.tok.value.upper() not in ("SECURITY_ENFORCED", "USER_MODE", "SYSTEM_MODE"):
                raise self.error()
            q.with_clause = self.advance().value.upper()
        if self.accept_kw("GROUP"):
            self.expect_kw("BY")
            self.group_by(q)
        if self.accept_kw("HAVING"):
            if not q.group_by:
                raise self.error(self.tokens[self.i - 1], "HAVING requires GROUP BY")
            q.having = self.condition(allow_aggregates=True)
        self.order_limit_offset(q)
        if kind == "top" and self.accept_kw("FOR"):
            if self.is_kw("UPDATE"):
                q.for_clause = self.advance().value
            elif self.tok.kind == "IDENT" and self.tok.value.upper() in ("VIEW", "REFERENCE"):
                q.for_clause = self.advance().value.upper()
            else:
                raise self.error()
        self.check_aliases(q)
        if kind != "semi":
            check_semi_joins(q)
        self.depth -= 1
        return q

    def enter(self, tok: Token) -> None:
        """One level deeper (a parenthesis, a NOT, a subquery); too deep is MALFORMED_QUERY."""
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise error_at("MALFORMED_QUERY", self.text, tok.pos,
                           f"Query is too deeply nested: at most {MAX_NESTING} levels of parentheses, NOT and "
                           f"subqueries")

    def using_scope(self) -> None:
        if self.accept_kw("USING"):
            # USING SCOPE everything|mine...: accepted, ignored
            if not (self.tok.kind == "IDENT" and self.tok.value.upper() == "SCOPE"):
                raise self.error()
            self.advance()
            if self.tok.kind != "IDENT":
                raise self.error()
            self.advance()

    def group_by(self, q: Query) -> None:
        """``GROUP BY a, b`` or ``GROUP BY ROLLUP(a, b)`` / ``CUBE(a, b)``."""
        if self.is_kw("ROLLUP", "CUBE"):
            q.group_kind = self.advance().value
            self.expect_punct("(")
        q.group_by.append(self.field_expr("GROUP BY"))
        while self.is_punct(","):
            self.advance()
            q.group_by.append(self.field_expr("GROUP BY"))
        if q.group_kind:
            if len(q.group_by) > 3:
                raise error_at("MALFORMED_QUERY", self.text, q.group_by[3].pos,
                               f"GROUP BY {q.group_kind} takes up to three fields")
            self.expect_punct(")")

    def order_limit_offset(self, q: Query) -> None:
        if self.is_kw("ORDER"):
            q.order_pos = self.advance().pos
            self.expect_kw("BY")
            q.order_by.append(self.order_item())
            while self.is_punct(","):
                self.advance()
                q.order_by.append(self.order_item())
        if self.is_kw("LIMIT"):
            q.limit_pos = self.advance().pos
            q.limit = self.non_negative_int()
        if self.is_kw("OFFSET"):
            q.offset_pos = self.advance().pos
            q.offset = self.non_negative_int()
            if q.offset > MAX_OFFSET:
                raise SoqlError("NUMBER_OUTSIDE_VALID_RANGE", f"Maximum SOQL offset allowed is {MAX_OFFSET}")

    def check_aliases(self, q: Query) -> None:
        if q.is_aggregate:
            return
        for item in q.select:
            if isinstance(item, (FieldRef, FieldFunction)) and item.alias \
                    and not (isinstance(item, FieldFunction) and item.function in ALIASED_FUNCTIONS):
                tok = next(t for t in self.tokens if t.kind == "IDENT" and t.value == item.alias and t.pos > item.pos)
                raise self.error(tok)

    def non_negative_int(self) -> int:
        t = self.tok
        if t.kind != "NUMBER" or not t.value.isdigit():
            raise self.error()
        self.advance()
        return int(t.value)

    def select_list(self, kind: str, level: int) -> List[SelectItem]:
        items = [self.select_item(kind, level)]
        while self.is_punct(","):
            self.advance()
            items.append(self.select_item(kind, level))
        return items

    def is_call(self, *names: str) -> bool:
        """Whether the next tokens are ``NAME(`` for one of ``names``."""
        t = self.tok
        return t.kind == "IDENT" and "." not in t.value and t.value.upper() in names \
            and self.peek().kind == "PUNCT" and self.peek().value == "("

    def select_item(self, kind: str, level: int) -> SelectItem:
        t = self.tok
        if self.is_punct("("):
            if kind == "semi" or level >= MAX_CHILD_LEVELS:
                raise self.error()
            self.advance()
            if not self.is_kw("SELECT"):
                raise self.error()
            sub = self.query("child", level + 1)
            self.expect_punct(")")
            return Subquery(sub, t.pos)
        if self.is_kw("TYPEOF"):
            return self.typeof()
        if self.is_call(*AGGREGATE_FUNCTIONS) or (self.is_call("FORMAT") and self.peek(2).kind == "IDENT"
                                                  and self.peek(2).value.upper() in AGGREGATE_FUNCTIONS):
            agg = self.formatted_aggregate()
            if self.tok.kind == "IDENT" and "." not in self.tok.value:
                agg.alias = self.advance().value
            return agg
        if self.is_call("FIELDS"):
            self.advance()
            self.advance()
            which = self.tok
            if which.kind != "IDENT" or which.value.upper() not in ("ALL", "STANDARD", "CUSTOM"):
                raise self.error(which)
            self.advance()
            self.expect_punct(")")
            return FieldsMacro(which.value.upper(), t.pos)
        ref: Union[FieldRef, FieldFunction] = self.field_expr()
        # an alias is an identifier followed by ',' or FROM; anything else is a syntax error
        if self.tok.kind == "IDENT" and "." not in self.tok.value:
            nxt = self.peek()
            if (nxt.kind == "PUNCT" and nxt.value == ",") or (nxt.kind == "KEYWORD" and nxt.value == "FROM"):
                ref.alias = self.advance().value
        return ref

    def formatted_aggregate(self) -> Aggregate:
        """``MAX(Amount)`` or ``FORMAT(MAX(Amount))``."""
        if not self.is_call("FORMAT"):
            return self.aggregate()
        self.advance()
        self.advance()
        agg = self.aggregate()
        self.expect_punct(")")
        agg.format = True
        return agg

    def typeof(self) -> TypeOf:
        """``TYPEOF What WHEN Account THEN Name, Phone [WHEN ...] [ELSE Name] END``."""
        start = self.advance()
        item = TypeOf(self.field_ref(), [], [], start.pos)
        while self.is_word("WHEN"):
            self.advance()
            if self.tok.kind != "IDENT" or "." in self.tok.value:
                raise self.error()
            obj = self.advance()
            if not self.is_word("THEN"):
                raise self.error()
            self.advance()
            item.whens.append((obj.value, obj.pos, self.field_list()))
        if not item.whens:
            raise self.error()
        if self.is_word("ELSE"):
            self.advance()
            item.otherwise = self.field_list()
        if not self.is_word("END"):
            raise self.error()
        self.advance()
        return item

    def is_word(self, word: str) -> bool:
        return self.tok.kind == "IDENT" and self.tok.value.upper() == word

    def field_list(self) -> List[FieldRef]:
        fields = [self.field_ref()]
        while self.is_punct(","):
            self.advance()
            fields.append(self.field_ref())
        return fields

    def aggregate(self) -> Aggregate:
        name_tok = self.advance()
        fn = name_tok.value.upper()
        self.expect_punct("(")
        ref: Optional[FieldRef] = None
        if self.is_punct(")"):
            if fn != "COUNT":
                raise self.error()
        else:
            ref = self.field_ref()
        self.expect_punct(")")
        return Aggregate(fn, ref, None, name_tok.pos)

    def field_expr(self, clause: str = "SELECT") -> Union[FieldRef, FieldFunction]:
        """A field, or a field function (``toLabel(x)``, ``CALENDAR_YEAR(x)``) around one, in ``clause``."""
        t = self.tok
        if t.kind == "IDENT" and self.peek().kind == "PUNCT" and self.peek().value == "(":
            name = t.value.upper()
            if "." in t.value or name not in FIELD_FUNCTIONS:
                raise error_at("MALFORMED_QUERY", self.text, t.pos,
                               f"function {name} is not supported by the local test org")
            if (name == "FORMAT" and clause != "SELECT") or (name == "CONVERTCURRENCY"
                                                              and clause in ("WHERE", "GROUP BY")):
                raise error_at("MALFORMED_QUERY", self.text, t.pos, f"{t.value}() can't be used in {clause}")
            self.enter(self.advance())
            self.advance()
            inner = self.field_expr(clause)
            self.expect_punct(")")
            self.depth -= 1
            if name in ("CONVERTTIMEZONE", "CONVERTCURRENCY") and isinstance(inner, FieldFunction):
                raise error_at("MALFORMED_QUERY", self.text, t.pos, f"{t.value}() takes a field")
            if isinstance(inner, FieldFunction) and not (
                    (name in DATE_FUNCTIONS and inner.function == "CONVERTTIMEZONE")
                    or (name == "FORMAT" and inner.function == "CONVERTCURRENCY")):
                raise error_at("MALFORMED_QUERY", self.text, inner.pos,
                               f"{inner.function}() can not be used inside {t.value}()")
            return FieldFunction(name, inner, None, t.pos)
        return self.field_ref()

    def field_ref(self) -> FieldRef:
        t = self.tok
        if t.kind != "IDENT":
            raise self.error()
        self.advance()
        return FieldRef(tuple(t.value.split(".")), t.pos)

    def order_item(self) -> OrderItem:
        t = self.tok
        if t.kind == "IDENT" and t.value.upper() in AGGREGATE_FUNCTIONS and self.peek().kind == "PUNCT" and self.peek().value == "(":
            expr: Union[FieldRef, Aggregate, FieldFunction] = self.aggregate()
        else:
            expr = self.field_expr("ORDER BY")
        item = OrderItem(expr)
        if self.accept_kw("DESC"):
            item.descending = True
        else:
            self.accept_kw("ASC")
        if self.accept_kw("NULLS"):
            if self.tok.kind == "IDENT" and self.tok.value.upper() in ("FIRST", "LAST"):
                item.nulls_first = self.advance().value.upper() == "FIRST"
            else:
                raise self.error()
        return item

    # conditions ----------------------------------------------------------
    def condition(self, allow_aggregates: bool) -> Condition:
        first = self.unary(allow_aggregates)
        if not self.is_kw("AND", "OR"):
            return first
        op = self.tok.value
        items = [first]
        while self.is_kw("AND", "OR"):
            if self.tok.value != op:
                # Salesforce refuses to mix AND and OR without parentheses
                raise self.error()
            self.advance()
            items.append(self.unary(allow_aggregates))
        return BoolOp(op, items)

    def unary(self, allow_aggregates: bool) -> Condition:
        if self.is_kw("NOT"):
            self.enter(self.advance())
            negated = Not(self.unary(allow_aggregates))
            self.depth -= 1
            return negated
        if self.is_punct("("):
            self.enter(self.advance())
            c = self.condition(allow_aggregates)
            self.expect_punct(")")
            self.depth -= 1
            return c
        return self.comparison(allow_aggregates)

    def comparison(self, allow_aggregates: bool) -> Comparison:
        t = self.tok
        left: Union[FieldRef, Aggregate, FieldFunction]
        if t.kind == "IDENT" and t.value.upper() in AGGREGATE_FUNCTIONS and self.peek().kind == "PUNCT" and self.peek().value == "(":
            if not allow_aggregates:
                raise error_at("MALFORMED_QUERY", self.text, t.pos,
                               "Aggregate functions are not allowed in the WHERE clause; use HAVING")
            left = self.aggregate()
        else:
            left = self.field_expr("WHERE")
        op_tok = self.tok
        if op_tok.kind == "OP":
            self.advance()
            op = "!=" if op_tok.value == "<>" else op_tok.value
            return Comparison(left, op, self.value(), op_tok.pos)
        if self.accept_kw("LIKE"):
            v = self.value()
            return Comparison(left, "LIKE", v, op_tok.pos)
        if self.is_kw("NOT") and self.peek().kind == "KEYWORD" and self.peek().value == "IN":
            self.advance()
            self.advance()
            return Comparison(left, "NOT IN", self.value_list(), op_tok.pos)
        if self.accept_kw("IN"):
            return Comparison(left, "IN", self.value_list(), op_tok.pos)
        if self.is_kw("INCLUDES", "EXCLUDES"):
            op = self.advance().value
            return Comparison(left, op, self.value_list(), op_tok.pos)
        raise self.error()

    def value_list(self) -> Union[List[Value], Subquery]:
        start = self.expect_punct("(")
        if self.is_kw("SELECT"):
            sub = self.query("semi")
            self.expect_punct(")")
            return Subquery(sub, start.pos)
        values = [self.value()]
        while self.is_punct(","):
            self.advance()
            values.append(self.value())
        self.expect_punct(")")
        return values

    def value(self) -> Value:
        t = self.tok
        if t.kind == "STRING":
            self.advance()
            return Literal("string", t.value, t.pos, t.like)
        if t.kind == "NUMBER":
            self.advance()
            if "." in t.value:
                return Literal("number", float(t.value), t.pos)
            return Literal("number", int(t.value), t.pos)
        if t.kind == "DATE":
            self.advance()
            return Literal("date", t.value, t.pos)
        if t.kind == "DATETIME":
            self.advance()
            return Literal("datetime", t.value, t.pos)
        if t.kind == "KEYWORD" and t.value in ("NULL", "TRUE", "FALSE"):
            self.advance()
            if t.value == "NULL":
                return Literal("null", None, t.pos)
            return Literal("boolean", t.value == "TRUE", t.pos)
        if t.kind == "IDENT" and "." not in t.value:
            name = t.value.upper()
            if name in DATE_LITERALS:
                self.advance()
                return DateLiteral(name, None, t.pos)
            if name in DATE_LITERALS_N:
                self.advance()
                self.expect_punct(":")
                n_tok = self.tok
                if n_tok.kind != "NUMBER" or not n_tok.value.isdigit():
                    raise self.error()
                self.advance()
                return DateLiteral(name, int(n_tok.value), t.pos)
        if t.kind == "PUNCT" and t.value == ":":
            raise error_at("MALFORMED_QUERY", self.text, t.pos,
                           "Bind variables are only allowed in Apex code")
        raise self.error()


def _semi_joins(cond: Optional[Condition]) -> List[Subquery]:
    """The semi-/anti-join subqueries anywhere in ``cond``."""
    if isinstance(cond, Comparison):
        return [cond.value] if isinstance(cond.value, Subquery) else []
    if isinstance(cond, Not):
        return _semi_joins(cond.item)
    if isinstance(cond, BoolOp):
        return [sub for item in cond.items for sub in _semi_joins(item)]
    return []


def check_semi_joins(q: Query) -> None:
    """Salesforce's rules for semi- and anti-joins in ``q``'s WHERE: only at its top level, never
    with OR, at most two, not nested, no ORDER BY, LIMIT or OFFSET inside."""
    subs = _semi_joins(q.where)
    if not subs:
        return
    where = q.where
    tops = where.items if isinstance(where, BoolOp) else [where]
    for item in tops:
        if isinstance(item, Comparison):
            if isinstance(item.value, Subquery) and isinstance(where, BoolOp) and where.op == "OR":
                raise error_at("MALFORMED_QUERY", q.text, item.value.pos,
                               "Semi join sub-selects are not allowed with the 'OR' operator")
        elif _semi_joins(item):
            raise error_at("MALFORMED_QUERY", q.text, _semi_joins(item)[0].pos,
                           "Semi join sub-selects are only allowed at the top level WHERE expressions and not in "
                           "nested WHERE expressions.")
    if len(subs) > 2:
        raise SoqlError("EXCEEDED_MAX_SEMIJOIN_SUBSELECTS", "Maximum 2 semi join sub-selects are allowed")
    for sub in subs:
        inner = sub.query
        nested = _semi_joins(inner.where)
        if nested:
            raise error_at("MALFORMED_QUERY", q.text, nested[0].pos, "Nesting of semi join sub-selects is not supported")
        for pos in (inner.order_pos, inner.limit_pos, inner.offset_pos):
            if pos >= 0:
                word = re.match(r"\w+", q.text[pos:])
                raise error_at("MALFORMED_QUERY", q.text, pos, f"unexpected token: '{word.group(0) if word else ''}'")


def parse(text: str) -> Query:
    """Parse SOQL text into a :class:`Query`; raises :class:`SoqlError` (MALFORMED_QUERY)."""
    if not isinstance(text, str) or not text.strip():
        raise SoqlError("MALFORMED_QUERY", "SOQL statements cannot be empty or null")
    return _Parser(text).parse()
