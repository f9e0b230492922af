"""SOSL for the local org (no HTTP): parse ``FIND {...} ...`` and ``/parameterizedSearch`` input, run it on the store.

``FIND {terms} [IN ALL|NAME|EMAIL|PHONE FIELDS] [RETURNING Object[(fields [WHERE ...]
[ORDER BY ...] [LIMIT n] [OFFSET n])], ...] [LIMIT n]``. Terms are words (``*`` and ``?``
wildcards), ``"quoted phrases"``, ``AND``, ``OR``, ``AND NOT`` and parentheses; a word matches
whole tokens of a text field, case-insensitively, as Salesforce's index does. The matching
records of each object are then read with SOQL (``WHERE Id IN (...)`` plus the object's own
WHERE, ORDER BY and LIMIT), so field names and filters get SOQL's errors. Objects and text
fields come from describe: custom ones are searched too. Answer:
``{"searchRecords": [{"attributes": {...}, "Id": ..., <fields>}]}``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

from ..core.soql import SoqlError
from ..core.store import Store

__all__ = ["Search", "Target", "parameterized", "parse_sosl", "run_search"]


DEFAULT_LIMIT = 2000
SCOPES = {"ALL": ("string", "textarea", "email", "phone", "url", "combobox"), "NAME": (), "EMAIL": ("email",),
          "PHONE": ("phone",), "SIDEBAR": ("string", "email", "phone")}
_TOKEN = re.compile(r"[0-9A-Za-z\u00C0-\uFFFF]+")

Matcher = Callable[[List[str]], bool]


def _malformed(message: str) -> SoqlError:
    return SoqlError("MALFORMED_SEARCH", message)


# --------------------------------------------------------------------------- the search terms


def _word(text: str) -> Matcher:
    """A word or phrase: consecutive tokens, each maybe with * / ? wildcards."""
    parts = [p for p in re.split(r"[^0-9A-Za-z\u00C0-\uFFFF*?]+", text) if p]
    if not parts:
        raise _malformed(f"search term must not be empty: {text}")
    if len(text.replace("*", "").replace("?", "")) < 2:
        raise _malformed(f"search term must be longer than one character: {text}")
    patterns = [re.compile(re.escape(p.lower()).replace(r"\*", r"\w*").replace(r"\?", r"\w")) for p in parts]

    def match(tokens: List[str]) -> bool:
        n = len(patterns)
        return any(all(patterns[j].fullmatch(tokens[i + j]) for j in range(n)) for i in range(len(tokens) - n + 1))

    return match


def _both(left: Matcher, right: Matcher, negate: bool) -> Matcher:
    """``left AND right`` (``left AND NOT right`` when ``negate``)."""
    def match(tokens: List[str]) -> bool:
        return left(tokens) and (not right(tokens) if negate else right(tokens))

    return match


class _TermParser:
    """``or := and (OR and)*``; ``and := unit ((AND [NOT] | AND NOT | <nothing>) unit)*``."""

    def __init__(self, text: str) -> None:
        self.items: List[str] = re.findall(r'"[^"]*"|\(|\)|[^\s()"]+', text)
        self.pos = 0

    def peek(self) -> Optional[str]:
        return self.items[self.pos] if self.pos < len(self.items) else None

    def take(self) -> str:
        item = self.items[self.pos]
        self.pos += 1
        return item

    def parse(self) -> Matcher:
        if not self.items:
            raise _malformed("search term must not be empty")
        matcher = self.or_()
        if self.peek() is not None:
            raise _malformed(f"unexpected token: {self.peek()}")
        return matcher

    def or_(self) -> Matcher:
        parts = [self.and_()]
        while (self.peek() or "").upper() == "OR":
            self.take()
            parts.append(self.and_())
        return parts[0] if len(parts) == 1 else (lambda t: any(p(t) for p in parts))

    def and_(self) -> Matcher:
        result = self.unit()
        while self.peek() is not None and self.peek() != ")" and (self.peek() or "").upper() != "OR":
            negate = False
            if (self.peek() or "").upper() == "AND":
                self.take()
            if (self.peek() or "").upper() == "NOT":
                self.take()
                negate = True
            result = _both(result, self.unit(), negate)
        return result

    def unit(self) -> Matcher:
        item = self.peek()
        if item is None or item == ")" or item.upper() in ("AND", "OR", "NOT"):
            raise _malformed(f"search term expected, found: {item}")
        self.take()
        if item == "(":
            inner = self.or_()
            if self.peek() != ")":
                raise _malformed("missing ) in the search term")
            self.take()
            return inner
        return _word(item.strip('"'))


# --------------------------------------------------------------------------- the statement


@dataclass
class Target:
    sobject: str
    fields: List[str] = field(default_factory=list)
    where: str = ""
    order_by: str = ""
    limit: Optional[int] = None
    offset: Optional[int] = None


@dataclass
class Search:
    matcher: Matcher
    scope: str = "ALL"
    targets: Optional[List[Target]] = None
    limit: int = DEFAULT_LIMIT


def _split_top(text: str, sep: str) -> List[str]:
    """``text`` split at ``sep`` outside parentheses and quotes."""
    parts, depth, quote, start = [], 0, False, 0
    for i, ch in enumerate(text):
        if ch == "'" and (i == 0 or text[i - 1] != "\\"):
            quote = not quote
        elif not quote and ch == "(":
            depth += 1
        elif not quote and ch == ")":
            depth -= 1
        elif not quote and depth == 0 and ch == sep:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts]


def _target(spec: str) -> Target:
    m = re.fullmatch(r"(\w+)\s*(?:\((.*)\))?", spec.strip(), re.S)
    if m is None:
        raise _malformed(f"unexpected RETURNING clause: {spec}")
    target = Target(m.group(1))
    inner = (m.group(2) or "").strip()
    if not inner:
        return target
    clauses = re.split(r"\s+(?=(?:WHERE|ORDER\s+BY|LIMIT|OFFSET)\b)", inner, flags=re.I)
    target.fields = [f.strip() for f in clauses[0].split(",") if f.strip()]
    for clause in clauses[1:]:
        keyword, _, rest = clause.partition(" ")
        keyword = keyword.upper()
        if keyword == "WHERE":
            target.where = rest.strip()
        elif keyword == "ORDER":
            target.order_by = re.sub(r"^BY\s+", "", rest.strip(), flags=re.I)
        elif keyword in ("LIMIT", "OFFSET") and rest.strip().isdigit():
            setattr(target, keyword.lower(), int(rest.strip()))
        else:
            raise _malformed(f"unexpected token in RETURNING: {clause}")
    return target


def parse_sosl(text: str) -> Search:
    m = re.fullmatch(r"\s*FIND\s*\{(?P<terms>(?:[^}\\]|\\.)*)\}(?P<rest>.*)", text, re.I | re.S)
    if m is None:
        raise _malformed("SOSL must start with FIND {search terms}")
    search = Search(_TermParser(m.group("terms")).parse())
    rest = m.group("rest").strip()
    scope = re.match(r"IN\s+(ALL|NAME|EMAIL|PHONE|SIDEBAR)\s+FIELDS\b", rest, re.I)
    if scope:
        search.scope = scope.group(1).upper()
        rest = rest[scope.end():].strip()
    returning = re.match(r"RETURNING\b", rest, re.I)
    if returning:
        rest = rest[returning.end():].strip()
        tail = re.search(r"\s+LIMIT\s+(\d+)\s*$", rest, re.I)
        if tail and "(" not in rest[tail.start():]:
            search.limit = int(tail.group(1))
            rest = rest[:tail.start()]
        if not rest:
            raise _malformed("RETURNING needs at least one object")
        search.targets = [_target(spec) for spec in _split_top(rest, ",")]
        rest = ""
    tail = re.fullmatch(r"LIMIT\s+(\d+)", rest, re.I)
    if tail:
        search.limit = int(tail.group(1))
        rest = ""
    if rest:
        raise _malformed(f"unexpected token: {rest.split()[0]}")
    return search


# --------------------------------------------------------------------------- execution


def _searched_fields(store: Store, sobject: str, scope: str) -> List[str]:
    fields = store.describe(sobject)["fields"]
    if scope == "NAME":
        return [f["name"] for f in fields if f.get("nameField")] + [
            f["name"] for f in fields if f["name"] in ("FirstName", "LastName") and not f.get("nameField")]
    return [f["name"] for f in fields if f["type"] in SCOPES[scope]]


def _matching_ids(store: Store, sobject: str, search: Search) -> List[str]:
    names = _searched_fields(store, sobject, search.scope)
    if not names:
        return []
    ids = []
    for record in store.query(f"SELECT Id, {', '.join(names)} FROM {sobject}").records:
        tokens = [t.lower() for name in names for t in _TOKEN.findall(str(record.get(name) or ""))]
        if tokens and search.matcher(tokens):
            ids.append(record["Id"])
    return ids


def run_search(store: Store, search: Search) -> Dict[str, Any]:
    targets = search.targets
    if targets is None:
        targets = [Target(o["name"]) for o in store.describe_global()["sobjects"] if o.get("searchable")]
    records: List[Dict[str, Any]] = []
    for target in targets:
        if not store.has_object(target.sobject):
            raise SoqlError("INVALID_TYPE", f"sObject type '{target.sobject}' is not supported.")
        sobject = store.object_name(target.sobject)
        ids = _matching_ids(store, sobject, search)
        if not ids:
            if target.fields:  # still check the fields the way SOQL does
                store.query(f"SELECT {', '.join(target.fields)} FROM {sobject} LIMIT 0")
            continue
        quoted = ", ".join(f"'{i}'" for i in ids)
        soql = f"SELECT {', '.join(target.fields or ['Id'])} FROM {sobject} WHERE Id IN ({quoted})"
        if target.where:
            soql += f" AND ({target.where})"
        if target.order_by:
            soql += f" ORDER BY {target.order_by}"
        if target.limit is not None:
            soql += f" LIMIT {target.limit}"
        if target.offset is not None:
            soql += f" OFFSET {target.offset}"
        records.extend(store.query(soql).records)
    return {"searchRecords": records[:search.limit]}


def parameterized(query: Dict[str, str], lists: Dict[str, List[str]], body: Any) -> Search:
    """The parameters of ``/parameterizedSearch`` (GET query string or POST JSON) as a Search."""
    if isinstance(body, dict):
        q = body.get("q")
        scope = str(body.get("in") or "ALL").upper()
        default_fields = list(body.get("fields") or [])
        specs = [(s.get("name"), s.get("fields") or default_fields, s.get("limit"))
                 for s in body.get("sobjects") or [] if isinstance(s, dict)]
        overall = body.get("overallLimit")
    else:
        q = query.get("q")
        scope = str(query.get("in") or "ALL").upper()
        default_fields = [f for f in (query.get("fields") or "").split(",") if f]
        specs = [(name, [f for f in (query.get(f"{name}.fields") or "").split(",") if f] or default_fields,
                  query.get(f"{name}.limit")) for name in lists.get("sobject", [])]
        overall = query.get("overallLimit")
    if not q:
        raise SoqlError("MISSING_ARGUMENT", "q parameter is required")
    if scope not in SCOPES:
        raise _malformed(f"invalid in parameter: {scope}")
    search = Search(_TermParser(str(q)).parse(), scope=scope)
    if specs:
        search.targets = [Target(str(name), list(fields), limit=int(limit) if limit not in (None, "") else None)
                          for name, fields, limit in specs]
    if overall not in (None, ""):
        search.limit = int(str(overall))
    return search
