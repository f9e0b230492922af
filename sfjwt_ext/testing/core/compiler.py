"""SOQL -> SQL: compiles a parsed :class:`~.soql.Query` against the schema.

Identifiers in the SQL come only from the schema (:func:`~.schema.quote_identifier`);
values are always ``?`` parameters. The store (:mod:`.store`) runs the SQL.
"""

from __future__ import annotations

import sqlite3
import unicodedata
from datetime import datetime
from typing import Any, Dict, List, Protocol, Sequence, Tuple

from . import soql as _soql
from .ids import canonical_id
from .literals import UTC, date_range, format_datetime, parse_date, parse_datetime
from .schema import (BAD_RELATIONSHIP, BAD_TYPE, FILTER_TYPE_NAMES, NO_SUCH_COLUMN, NUMBER_TYPES, TEXT_TYPES,
                     FieldDef, ObjectDef, Schema, quote_identifier)
from .soql import (Aggregate, BoolOp, Comparison, DateLiteral, FieldFunction, FieldRef, Literal, Not, Query, SoqlError,
                   Subquery, error_at)



class SchemaSource(Protocol):
    """What the compiler reads of the store: its schema, its clock (date literals) and the
    org's fiscal year start."""

    schema: Schema
    fiscal_year_start_month: int

    def now(self) -> datetime: ...

# --------------------------------------------------------------------------- text comparison

#: characters whose lower case is not what their upper case lowers to (dotless i, long s, final
#: sigma...): case-insensitive comparison maps them as Java's equalsIgnoreCase does
_FOLD_EXTRA = str.maketrans({
    "µ": "μ", "ı": "i", "ſ": "s", "\u0345": "ι", "ς": "σ", "ϐ": "β", "ϑ": "θ", "ϕ": "φ", "ϖ": "π", "ϰ": "κ",
    "ϱ": "ρ", "ϵ": "ε", "ᲀ": "в", "ᲁ": "д", "ᲂ": "о", "ᲃ": "с", "ᲄ": "т", "ᲅ": "т", "ᲆ": "ъ", "ᲇ": "ѣ",
    "ᲈ": "ꙋ", "ẛ": "ṡ", "ι": "ι",
})


def fold_case(text: Any) -> Any:
    """``text`` as SOQL compares it case-insensitively: every letter's case folded, beyond ASCII
    ('ÜMLAUT ä' and 'ümlaut Ä' fold alike; 'ä' and 'a' do not). Non-strings pass unchanged."""
    if not isinstance(text, str):
        return text
    return text.lower() if text.isascii() else text.lower().translate(_FOLD_EXTRA)


def sort_key(text: Any) -> Any:
    """A key whose binary order is Salesforce's ORDER BY order of text in an en_US locale:
    case-insensitive, accents second ('Apfel' < 'ärger' < 'Birne')."""
    if not isinstance(text, str):
        return text
    folded = fold_case(text)
    if folded.isascii():
        return folded + "\x00" + folded
    base = "".join(c for c in unicodedata.normalize("NFD", folded) if not unicodedata.combining(c))
    return base + "\x00" + folded


def register_functions(conn: sqlite3.Connection) -> None:
    """The SQL functions compiled SOQL calls: ``sf_fold(text)`` and ``sf_sort_key(text)``."""
    conn.create_function("sf_fold", 1, fold_case, deterministic=True)
    conn.create_function("sf_sort_key", 1, sort_key, deterministic=True)


# --------------------------------------------------------------------------- compiler


class Node:
    """One record object in the output: the root, a parent (``Account``) or a child row."""

    def __init__(self, obj: ObjectDef, alias: str) -> None:
        self.obj = obj
        self.alias = alias
        self.items: List[Tuple[str, str, Any]] = []  # (kind 'v'|'p'|'c', key, payload)
        self.parents: Dict[str, "Node"] = {}
        self.id_col = 0
        self.start = 0
        self.stop = 0
        self.fk_col = 0  # child rows: the column holding the parent id


class ChildPlan:
    def __init__(self, rel: str, obj: ObjectDef, fk: FieldDef, query: Query) -> None:
        self.rel = rel
        self.obj = obj
        self.fk = fk
        self.query = query


class Scope:
    """Name resolution for one FROM object: joins to parents are added on demand."""

    def __init__(self, comp: "Compiler", obj: ObjectDef, query: Query) -> None:
        self.comp = comp
        self.obj = obj
        self.query = query
        self.alias = comp.new_alias()
        self.joins: Dict[Tuple[str, ...], Tuple[str, ObjectDef]] = {}
        self.join_sql: List[str] = []

    def join(self, rels: Sequence[str], pos: int) -> Tuple[str, ObjectDef, List[str]]:
        """Resolve relationship names from this object; returns (alias, object, canonical names)."""
        alias, obj = self.alias, self.obj
        canonical: List[str] = []
        key: Tuple[str, ...] = ()
        for rel in rels:
            fk = obj.relationships.get(rel.lower())
            if fk is None or not fk.external:
                raise error_at("INVALID_FIELD", self.query.text, pos, BAD_RELATIONSHIP.format(rel=rel))
            key = key + (rel.lower(),)
            canonical.append(fk.relationship_name or rel)
            parent = self.comp.store.schema[fk.reference_to or ""]
            if key not in self.joins:
                new_alias = self.comp.new_alias()
                self.join_sql.append(
                    f"LEFT JOIN {quote_identifier(parent.name)} AS {new_alias} ON {new_alias}.\"Id\" = {alias}.{quote_identifier(fk.name)}")
                self.joins[key] = (new_alias, parent)
            alias, obj = self.joins[key]
        return alias, obj, canonical

    def resolve(self, ref: "FieldRef | FieldFunction") -> Tuple[str, FieldDef, List[str], str, ObjectDef]:
        """-> (sql expression, field, canonical relationship names, table alias, object of the field).

        For a field function the field is a stand-in of the function's result type (named
        ``CALENDAR_YEAR(CloseDate)``; ``toLabel(x)`` keeps x's name and type).
        """
        if isinstance(ref, FieldFunction):
            return self._resolve_function(ref)
        path = list(ref.path)
        if len(path) > 1 and path[0].lower() in (self.obj.name.lower(), (self.query.alias or "").lower()) \
                and path[0].lower() not in self.obj.relationships:
            path = path[1:]
        alias, obj, rels = self.join(path[:-1], ref.pos)
        fdef = obj.by_lower.get(path[-1].lower())
        if fdef is None or not fdef.external:
            raise error_at("INVALID_FIELD", self.query.text, ref.pos,
                           NO_SUCH_COLUMN.format(col=path[-1], entity=obj.name))
        if fdef.compound:
            return _compound_sql(alias, fdef), fdef, rels, alias, obj
        return f"{alias}.{quote_identifier(fdef.name)}", fdef, rels, alias, obj

    def _resolve_function(self, fn: FieldFunction) -> Tuple[str, FieldDef, List[str], str, ObjectDef]:
        expr, fdef, rels, alias, obj = self.resolve(fn.field)
        text = self.query.text
        name = fn.function
        if name == "CONVERTTIMEZONE":
            if fdef.type != "datetime":
                raise error_at("INVALID_FIELD", text, fn.pos,
                               f"convertTimezone() can only be applied to datetime fields: {fdef.name}")
            return expr, fdef, rels, alias, obj   # the org's time zone is GMT
        if name == "FORMAT":
            return expr, fdef, rels, alias, obj   # formatted when the row is built
        if name == "CONVERTCURRENCY":
            if fdef.type != "currency":
                raise error_at("INVALID_FIELD", text, fn.pos,
                               f"convertCurrency() can only be applied to currency fields: {fdef.name}")
            return expr, fdef, rels, alias, obj   # one currency in this org: the corporate one
        if name == "TOLABEL":
            if fdef.type != "picklist" and not (obj.name == "RecordType" and fdef.name == "Name"):
                raise error_at("INVALID_FIELD", text, fn.pos,
                               f"toLabel() can only be applied to picklist fields: {fdef.name}")
            return expr, fdef, rels, alias, obj   # labels are the values in this org
        if fdef.type not in ("date", "datetime") or (name in ("HOUR_IN_DAY", "DAY_ONLY")
                                                      and fdef.type != "datetime"):
            wanted = "datetime" if name in ("HOUR_IN_DAY", "DAY_ONLY") else "date or datetime"
            raise error_at("INVALID_FIELD", text, fn.pos,
                           f"{name} can only be applied to {wanted} fields: {fdef.name}")
        sql = date_function_sql(name, expr, self.comp.store.fiscal_year_start_month)
        result = FieldDef(f"{name}({fdef.name})", "date" if name == "DAY_ONLY" else "int", label=f"{name}({fdef.label})",
                          createable=False, updateable=False, calculated=True)
        return sql, result, rels, alias, obj


def _balanced(parts: List[str], joiner: str) -> str:
    """``parts`` joined by AND / OR as a balanced tree of parentheses: SQLite refuses expressions
    more than 1,000 deep, and a flat chain of n terms is n deep."""
    if len(parts) <= 16:
        return "(" + joiner.join(parts) + ")"
    middle = len(parts) // 2
    return "(" + _balanced(parts[:middle], joiner) + joiner + _balanced(parts[middle:], joiner) + ")"


def _compound_sql(alias: str, fdef: FieldDef) -> str:
    """A compound field (BillingAddress) as one JSON object, null when every component is."""
    parts = sorted(fdef.compound)
    cols = [f"{alias}.{quote_identifier(col)}" for _key, col in parts]
    pairs = ", ".join(f"'{key}', {col}" for (key, _c), col in zip(parts, cols))
    return f"(CASE WHEN COALESCE({', '.join(cols)}) IS NULL THEN NULL ELSE json_object({pairs}) END)"


def date_function_sql(name: str, expr: str, fiscal_start_month: int = 1) -> str:
    """SQL computing a SOQL date function of a stored date (``YYYY-MM-DD``) or datetime (GMT) text."""
    d = f"substr({expr}, 1, 19)"

    def part(fmt: str) -> str:
        return f"CAST(strftime('{fmt}', {d}) AS INTEGER)"

    m0 = int(fiscal_start_month)
    month = part("%m")
    fiscal_month = f"((({month}) - {m0} + 12) % 12 + 1)"
    table = {
        "CALENDAR_YEAR": part("%Y"),
        "CALENDAR_MONTH": month,
        "CALENDAR_QUARTER": f"(({month} + 2) / 3)",
        "DAY_IN_MONTH": part("%d"),
        "DAY_IN_WEEK": f"({part('%w')} + 1)",
        "DAY_IN_YEAR": part("%j"),
        "DAY_ONLY": f"substr({expr}, 1, 10)",
        "HOUR_IN_DAY": part("%H"),
        "WEEK_IN_MONTH": f"(({part('%d')} - 1) / 7 + 1)",
        "WEEK_IN_YEAR": f"(({part('%j')} - 1) / 7 + 1)",
        "FISCAL_MONTH": fiscal_month,
        "FISCAL_QUARTER": f"(({fiscal_month} + 2) / 3)",
        "FISCAL_YEAR": (part("%Y") if m0 == 1 else
                        f"({part('%Y')} + CASE WHEN {month} >= {m0} THEN 1 ELSE 0 END)"),
    }
    return table[name]


class Compiler:
    """Compiles one SOQL statement (with its semi-join and child subqueries) to SQL."""

    def __init__(self, store: SchemaSource, query: Query, tooling: bool, include_deleted: bool) -> None:
        self.store = store
        self.query = query
        self.tooling = tooling
        self.include_deleted = include_deleted
        self.n = 0
        self.today = store.now().date()

    def new_alias(self) -> str:
        alias = f"t{self.n}"
        self.n += 1
        return alias

    # objects --------------------------------------------------------------
    def object(self, name: str, pos: int, text: str) -> ObjectDef:
        obj = self.store.schema.get(name)
        if obj is None or not (obj.tooling_api if self.tooling else obj.data_api):
            raise error_at("INVALID_TYPE", text, pos, BAD_TYPE.format(name=name))
        return obj

    def base_filter(self, scope: Scope) -> List[str]:
        if self.include_deleted or not scope.obj.by_lower["isdeleted"].external:
            return []
        return [f"{scope.alias}.\"IsDeleted\" = 0"]

    # conditions -----------------------------------------------------------
    def condition(self, scope: Scope, cond: Any, params: List[Any], negated: bool = False) -> str:
        if isinstance(cond, BoolOp):
            return _balanced([self.condition(scope, c, params, negated) for c in cond.items], f" {cond.op} ")
        if isinstance(cond, Not):
            return "(NOT " + self.condition(scope, cond.item, params, not negated) + ")"
        assert isinstance(cond, Comparison)
        sql = self.comparison(scope, cond, params)
        # SOQL is two-valued: under NOT a comparison with a null field is false, not unknown
        return f"IFNULL({sql}, 0)" if negated else sql

    def comparison(self, scope: Scope, cmp: Comparison, params: List[Any]) -> str:
        text = self.query.text
        if isinstance(cmp.left, Aggregate):
            expr, ftype, fname = self.aggregate_expr(scope, cmp.left)
        else:
            expr, fdef, _, _, _ = scope.resolve(cmp.left)
            ftype, fname = fdef.type, fdef.name
        folded = ftype in TEXT_TYPES and ftype not in ("id", "reference")
        lhs = f"sf_fold({expr})" if folded else expr
        op = cmp.op
        if op in ("IN", "NOT IN", "INCLUDES", "EXCLUDES"):
            if op in ("INCLUDES", "EXCLUDES"):
                raise error_at("INVALID_FIELD", text, cmp.pos,
                               f"{op} operator is only valid on multi-select picklist fields")
            if isinstance(cmp.value, Subquery):
                sub_sql = self.semi_join(cmp.value, params)
                if op == "IN":
                    return f"{expr} IN ({sub_sql})"
                return f"({expr} IS NULL OR {expr} NOT IN ({sub_sql}))"
            return self.in_list(cmp, expr, ftype, fname, params)
        value = cmp.value
        assert not isinstance(value, (list, Subquery))
        if isinstance(value, Literal) and value.kind == "null":
            if op == "=":
                return f"({expr} IS NULL)"
            if op == "!=":
                return f"({expr} IS NOT NULL)"
            raise error_at("MALFORMED_QUERY", text, value.pos, f"unexpected token: 'null'")
        if op == "LIKE":
            if not (isinstance(value, Literal) and value.kind == "string"):
                raise error_at("MALFORMED_QUERY", text, value.pos, "LIKE requires a string value")
            if ftype not in TEXT_TYPES or ftype in ("id", "reference"):
                raise error_at("INVALID_FIELD", text, cmp.pos,
                               f"invalid operator on {'id' if ftype in ('id', 'reference') else ftype} field: "
                               f"{fname}")
            params.append(fold_case(value.like))
            return f"(sf_fold({expr}) LIKE ? ESCAPE '\\')"
        if isinstance(value, DateLiteral):
            start, end = self.date_bounds(value, ftype, fname, value.pos)
            if op == "=":
                params.extend([start, end])
                return f"({expr} >= ? AND {expr} < ?)"
            if op == "!=":
                params.extend([start, end])
                return f"({expr} IS NULL OR {expr} < ? OR {expr} >= ?)"
            bound, sql_op = {"<": (start, "<"), "<=": (end, "<"), ">": (end, ">="), ">=": (start, ">=")}[op]
            params.append(bound)
            return f"({expr} {sql_op} ?)"
        if ftype == "boolean" and op not in ("=", "!="):
            raise error_at("INVALID_FIELD", text, cmp.pos, f"invalid operator on boolean field: {fname}")
        coerced = self.coerce(value, ftype, fname)
        params.append(fold_case(coerced) if folded else coerced)
        if op == "!=":
            # SOQL's != also matches nulls
            return f"({lhs} IS NOT ?)"
        return f"({lhs} {op} ?)"

    def in_list(self, cmp: Comparison, expr: str, ftype: str, fname: str, params: List[Any]) -> str:
        """``expr IN (...)`` / ``NOT IN (...)`` of literals (nulls and date literals among them)."""
        folded = ftype in TEXT_TYPES and ftype not in ("id", "reference")
        values = cmp.value if isinstance(cmp.value, list) else [cmp.value]
        plain: List[str] = []
        ranges: List[str] = []
        bounds: List[str] = []  # the ranges' parameters: they come after the plain values' in the SQL
        has_null = False
        for v in values:
            if isinstance(v, Literal) and v.kind == "null":
                has_null = True
            elif isinstance(v, DateLiteral):
                bounds.extend(self.date_bounds(v, ftype, fname, v.pos))
                ranges.append(f"({expr} >= ? AND {expr} < ?)")
            else:
                value = self.coerce(v, ftype, fname)
                params.append(fold_case(value) if folded else value)
                plain.append("?")
        params.extend(bounds)
        tests: List[str] = []
        if plain:
            tests.append(f"{'sf_fold(' + expr + ')' if folded else expr} IN ({', '.join(plain)})")
        tests.extend(ranges)
        if has_null:
            tests.append(f"{expr} IS NULL")
        positive = "(" + " OR ".join(tests) + ")" if tests else "0"
        if cmp.op == "IN":
            return positive
        if has_null:
            return f"(NOT {positive})"
        return f"({expr} IS NULL OR NOT {positive})"

    def coerce(self, v: Any, ftype: str, fname: str) -> Any:
        """A literal as the parameter for a field of type ``ftype`` (with Salesforce's type errors)."""
        text = self.query.text
        type_name = FILTER_TYPE_NAMES.get(ftype, "string")

        def bad() -> SoqlError:
            if type_name == "string":
                return error_at("INVALID_FIELD", text, v.pos,
                                f"value of filter criterion for field '{fname}' must be of type string and should "
                                f"be enclosed in quotes")
            return error_at("INVALID_FIELD", text, v.pos,
                            f"value of filter criterion for field '{fname}' must be of type {type_name} and should "
                            f"not be enclosed in quotes")

        if isinstance(v, DateLiteral):
            raise bad()
        kind, value = v.kind, v.value
        if ftype in ("id", "reference"):
            if kind != "string":
                raise bad()
            canonical = canonical_id(value)  # an 18-character id matches in any case, as in Salesforce
            if not canonical:
                raise error_at("INVALID_QUERY_FILTER_OPERATOR", text, v.pos, f"invalid ID field: {value}")
            return canonical
        if ftype in TEXT_TYPES:
            if kind != "string":
                raise bad()
            return value
        if ftype == "boolean":
            if kind != "boolean":
                raise bad()
            return 1 if value else 0
        if ftype in NUMBER_TYPES:
            if kind != "number":
                raise bad()
            return value
        if ftype == "date":
            if kind != "date":
                raise bad()
            if parse_date(value) is None:
                raise error_at("INVALID_FIELD", text, v.pos, f"invalid date: {value}")
            return value
        if ftype == "datetime":
            if kind != "datetime":
                raise bad()
            dt = parse_datetime(value)
            if dt is None:
                raise error_at("INVALID_FIELD", text, v.pos, f"invalid date: {value}")
            return format_datetime(dt)
        raise bad()

    def date_bounds(self, lit: DateLiteral, ftype: str, fname: str, pos: int) -> Tuple[str, str]:
        if ftype not in ("date", "datetime"):
            raise error_at("INVALID_FIELD", self.query.text, pos,
                           f"value of filter criterion for field '{fname}' must be of type "
                           f"{FILTER_TYPE_NAMES.get(ftype, 'string')} and should not be enclosed in quotes")
        start, end = date_range(lit, self.today, self.store.fiscal_year_start_month)
        if ftype == "date":
            return start.isoformat(), end.isoformat()
        return (format_datetime(datetime(start.year, start.month, start.day, tzinfo=UTC)),
                format_datetime(datetime(end.year, end.month, end.day, tzinfo=UTC)))

    def semi_join(self, sub: Subquery, params: List[Any]) -> str:
        q = sub.query
        if len(q.select) != 1 or not isinstance(q.select[0], FieldRef) or q.is_aggregate:
            raise error_at("MALFORMED_QUERY", self.query.text, sub.pos,
                           "semi join sub-selects can only select one Id or reference field")
        obj = self.object(q.sobject, q.sobject_pos, self.query.text)
        scope = Scope(self, obj, q)
        expr, fdef, _, _, _ = scope.resolve(q.select[0])
        if fdef.type not in ("id", "reference"):
            raise error_at("INVALID_FIELD", self.query.text, q.select[0].pos,
                           "The selected field in a semi join sub-select must be an Id or a reference field")
        where = self.base_filter(scope) + [f"{expr} IS NOT NULL"]
        if q.where is not None:
            where.append(self.condition(scope, q.where, params))
        sql = f"SELECT {expr} FROM {quote_identifier(obj.name)} AS {scope.alias} {' '.join(scope.join_sql)} WHERE " + " AND ".join(where)
        if q.limit is not None:
            sql += f" LIMIT {int(q.limit)}"
        return sql

    # aggregates -----------------------------------------------------------
    def aggregate_expr(self, scope: Scope, agg: Aggregate) -> Tuple[str, str, str]:
        """-> (sql, result field type, display name)."""
        if agg.field is None:
            return "COUNT(*)", "int", "COUNT()"
        expr, fdef, _, _, _ = scope.resolve(agg.field)
        fn = agg.function
        display = f"{fn}({agg.field.name})"
        if fn == "GROUPING":
            return self.grouping_expr(scope, agg, expr), "int", display
        if fn == "COUNT":
            return f"COUNT({expr})", "int", display
        if fn == "COUNT_DISTINCT":
            return f"COUNT(DISTINCT {expr})", "int", display
        if fn in ("SUM", "AVG"):
            if fdef.type not in NUMBER_TYPES:
                raise error_at("INVALID_FIELD", self.query.text, agg.pos,
                               f"field {fdef.name} does not support aggregate operator {fn}")
            return f"{fn}({expr})", ("double" if fn == "AVG" else fdef.type), display
        if fdef.type in ("boolean", "textarea"):
            raise error_at("INVALID_FIELD", self.query.text, agg.pos,
                           f"field {fdef.name} does not support aggregate operator {fn}")
        return f"{fn}({expr})", fdef.type, display

    def grouping_expr(self, scope: Scope, agg: Aggregate, expr: str) -> str:
        """GROUPING(field): a marker the grouping-sets SQL replaces by 1 in a subtotal row of field."""
        q = scope.query
        if q.group_kind is None:
            raise error_at("MALFORMED_QUERY", self.query.text, agg.pos,
                           "GROUPING() can only be used with GROUP BY ROLLUP or GROUP BY CUBE")
        if expr not in (scope.resolve(g)[0] for g in q.group_by):
            assert agg.field is not None
            raise error_at("MALFORMED_QUERY", self.query.text, agg.pos,
                           f"GROUPING() requires a field of the GROUP BY: {agg.field.name}")
        return f"sf_grouping({expr})"

    def order_sql(self, scope: Scope, items: Sequence[_soql.OrderItem]) -> List[str]:
        out: List[str] = []
        for item in items:
            if isinstance(item.expr, Aggregate):
                expr, ftype, _ = self.aggregate_expr(scope, item.expr)
            else:
                expr, fdef, _, _, _ = scope.resolve(item.expr)
                ftype = fdef.type
            nulls_first = item.effective_nulls_first
            # sqlite: nulls sort first ascending, last descending; add a key only when that differs
            if nulls_first != (not item.descending):
                out.append(f"({expr} IS NULL) {'DESC' if nulls_first else 'ASC'}")
            if ftype in TEXT_TYPES and ftype not in ("id", "reference"):
                expr = f"sf_sort_key({expr})"
            out.append(f"{expr} {'DESC' if item.descending else 'ASC'}")
        return out


# --------------------------------------------------------------------------- store

