"""SOQL execution for the local org's store: records, counts, aggregates, flat rows, column metadata.

:class:`QueryEngine` compiles a parsed query (:mod:`.compiler`) against the store's schema and
runs the SQL on the store's connection under its lock; it owns no records. Results come back
in the JSON shapes of Salesforce's REST API (query, ``columns=true``), as flat rows for Bulk
CSV, or as a :class:`FlatSnapshot` (a Bulk 2.0 job's rows, kept in SQLite and read by page).
"""

from __future__ import annotations

import itertools
import json
import sqlite3
import threading
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Set, Tuple

from . import soql as _soql
from .compiler import ChildPlan, Compiler, Node, SchemaSource, Scope
from .literals import format_for_user
from .schema import (APEX_TYPES, BAD_CHILD_RELATIONSHIP, BAD_RELATIONSHIP, NO_SUCH_COLUMN, NUMBER_TYPES, TEXT_TYPES,
                     ObjectDef, quote_identifier)
from .soql import (DATE_FUNCTIONS, Aggregate, FieldFunction, FieldRef, FieldsMacro, Query, SelectItem, SoqlError,
                   Subquery, TypeOf, error_at)

__all__ = ["FlatSnapshot", "QueryEngine", "QueryResult"]


@dataclass
class QueryResult:
    records: List[Dict[str, Any]]
    total_size: int
    entity: str


class FlatSnapshot:
    """A query's flat rows kept in the store (:meth:`Store.snapshot_flat`), read by page."""

    def __init__(self, store: QueryEngine, table: str, columns: List[str], quotes: List[bool], count: int) -> None:
        self._store = store
        self._table = table
        self._quotes = quotes
        self.columns = columns
        #: rows in the snapshot
        self.count = count

    def lines(self, offset: int, limit: int, delimiter: str) -> List[str]:
        """Rows ``offset`` to ``offset + limit`` (0-based, at most ``limit``), in query order, as
        Bulk CSV lines without their line ending: every value double-quoted, ``"`` doubled
        (what ``bulk2.render_page`` writes). SQLite joins the values, not Python."""
        if limit <= 0 or offset >= self.count:
            return []
        values = [f"replace(c{i}, '\"', '\"\"')" if quote else f"c{i}" for i, quote in enumerate(self._quotes)]
        sep = '"' + delimiter.replace("'", "''") + '"'
        fmt_sep = sep.replace("%", "%%")
        # printf builds each line in one pass (a chain of || copies it once per value); at most
        # 100 values a call, under SQLite's limit on function arguments
        groups = [values[i:i + 100] for i in range(0, len(values), 100)]
        line_sql = f" || '{sep}' || ".join(f"printf('{fmt_sep.join(['%s'] * len(g))}', {', '.join(g)})" for g in groups)
        return self._store._snapshot_lines(self._table, f"""'"' || {line_sql} || '"'""", max(0, offset), limit)

    def close(self) -> None:
        """Drop the snapshot's table (idempotent)."""
        self._store._drop_snapshot(self._table)


#: rows in one batch of query results: an aggregate query's answer must fit in one
MAX_AGGREGATE_ROWS = 2000
#: the most rows one query may return (the LIMIT bound of an aggregate query without GROUP BY)
MAX_QUERY_ROWS = 50000

#: field types whose Bulk CSV text never holds a '"'
_NO_QUOTE_TYPES = frozenset({"id", "reference", "boolean", "int", "double", "currency", "percent", "date", "datetime",
                             "time"})


class QueryEngine:
    """Runs SOQL on ``conn`` (under ``lock``) against ``source``'s schema; ``sobject_url`` makes
    the ``attributes.url`` of a record."""

    def __init__(self, source: SchemaSource, conn: sqlite3.Connection, lock: threading.RLock,
                 sobject_url: Callable[..., str]) -> None:
        self.source = source
        self.sobject_url = sobject_url
        self._conn = conn
        self._lock = lock

    # queries --------------------------------------------------------------
    def parse(self, soql: str) -> Query:
        return _soql.parse(soql)

    def query(self, soql: str, *, include_deleted: bool = False, tooling: bool = False) -> QueryResult:
        """Run SOQL; records in the REST API's JSON shape (see module docs)."""
        q = _soql.parse(soql)
        comp = Compiler(self.source, q, tooling, include_deleted)
        obj = comp.object(q.sobject, q.sobject_pos, q.text)
        self._expand_fields(q, obj, q)
        if q.is_count_only:
            return self._count_query(comp, obj, q)
        if q.is_aggregate:
            return self._aggregate_query(comp, obj, q)
        return self._record_query(comp, obj, q)

    def _expand_fields(self, q: Query, obj: ObjectDef, top: Query, *, bulk: bool = False) -> None:
        """Replace FIELDS(ALL|STANDARD|CUSTOM) by the fields they stand for (also in subqueries).

        FIELDS(ALL) and FIELDS(CUSTOM) are unbounded: Salesforce wants LIMIT 200 or less with
        them, and Bulk API refuses them. Bulk skips compound fields FIELDS(STANDARD) would select.
        """
        items: List[SelectItem] = []
        for item in q.select:
            if isinstance(item, Subquery):
                rel = obj.children.get(item.query.sobject.lower())
                if rel is not None:
                    self._expand_fields(item.query, self.source.schema[rel[1]], top)
                items.append(item)
                continue
            if not isinstance(item, FieldsMacro):
                items.append(item)
                continue
            if q.is_aggregate:
                raise error_at("MALFORMED_QUERY", top.text, item.pos,
                               "FIELDS() cannot be used in an aggregate query")
            if item.kind != "STANDARD":
                if bulk:
                    raise SoqlError("INVALIDJOB", f"FIELDS({item.kind}) is not supported in Bulk API queries: "
                                                  f"use FIELDS(STANDARD) or name the fields")
                if q.limit is None or q.limit > 200:
                    raise error_at("MALFORMED_QUERY", top.text, item.pos,
                                   "The SOQL FIELDS function must have a LIMIT of at most 200")
            for f in obj.public_fields:
                if (item.kind == "STANDARD" and f.custom) or (item.kind == "CUSTOM" and not f.custom):
                    continue
                if bulk and f.compound:
                    continue
                items.append(FieldRef((f.name,), item.pos))
        q.select = items

    # plain records
    def _plan(self, comp: Compiler, scope: Scope, q: Query, allow_children: bool
              ) -> Tuple[Node, List[str], List[ChildPlan]]:
        root = Node(scope.obj, scope.alias)
        children: List[ChildPlan] = []
        seen: Set[str] = set()
        for item in q.select:
            if isinstance(item, Subquery):
                plan = self._child_plan(scope, item, q, allow_children, seen)
                children.append(plan)
                root.items.append(("c", plan.rel, plan))
            elif isinstance(item, TypeOf):
                typed = self._typeof_plan(comp, scope, item, q)
                root.items.append(("t", typed.key, typed))
            else:
                self._add_value(scope, root, item, q, seen)
        columns: List[str] = [f"{scope.alias}.\"Id\""]
        _layout(root, columns, scope.alias)
        return root, columns, children

    def _child_plan(self, scope: Scope, item: Subquery, q: Query, allow_children: bool, seen: Set[str]) -> ChildPlan:
        sub = item.query
        child_rel = scope.obj.children.get(sub.sobject.lower())
        if child_rel is None or not allow_children:
            raise error_at("INVALID_TYPE", q.text, sub.sobject_pos, BAD_CHILD_RELATIONSHIP.format(rel=sub.sobject))
        rel_name, child_name, fk_name = child_rel
        if rel_name.lower() in seen:
            raise error_at("MALFORMED_QUERY", q.text, item.pos, f"duplicate field selected: {rel_name}")
        seen.add(rel_name.lower())
        child_obj = self.source.schema[child_name]
        return ChildPlan(rel_name, child_obj, child_obj.by_lower[fk_name.lower()], sub)

    def _add_value(self, scope: Scope, root: Node, item: SelectItem, q: Query, seen: Set[str]) -> None:
        """A field (or toLabel / FORMAT / convertCurrency of one) of ``root`` or of its parents."""
        if isinstance(item, Aggregate):  # pragma: no cover - handled by is_aggregate
            raise error_at("MALFORMED_QUERY", q.text, item.pos, "unexpected aggregate")
        if isinstance(item, FieldFunction) and item.function not in RECORD_FUNCTIONS:
            raise error_at("MALFORMED_QUERY", q.text, item.pos,
                           f"{item.function}() in the SELECT list needs a GROUP BY of it")
        assert isinstance(item, (FieldRef, FieldFunction))
        expr, fdef, rels, alias, fobj = scope.resolve(item)
        key = item.alias or fdef.name
        full = ".".join(rels + [key])
        if full.lower() in seen:
            raise error_at("MALFORMED_QUERY", q.text, item.pos, f"duplicate field selected: {full}")
        seen.add(full.lower())
        node = root
        key_path: Tuple[str, ...] = ()
        for rel in rels:
            key_path += (rel.lower(),)
            nxt = node.parents.get(rel.lower())
            if nxt is None:
                palias, pobj = scope.joins[key_path]
                nxt = Node(pobj, palias)
                node.parents[rel.lower()] = nxt
                node.items.append(("p", rel, nxt))
            node = nxt
        formatted = isinstance(item, FieldFunction) and item.function == "FORMAT"
        node.items.append(("v", key, (expr, fdef, formatted)))

    def _typeof_plan(self, comp: Compiler, scope: Scope, item: TypeOf, q: Query) -> TypeOfPlan:
        """TYPEOF rel: a LEFT JOIN per type rel may reference, with that type's WHEN (or ELSE) fields."""
        if len(item.ref.path) != 1 or item.ref.path[0].lower() not in scope.obj.relationships:
            raise error_at("INVALID_FIELD", q.text, item.ref.pos, BAD_RELATIONSHIP.format(rel=item.ref.name))
        fk = scope.obj.relationships[item.ref.path[0].lower()]
        targets = {t.lower(): t for t in fk.reference_targets}
        whens: Dict[str, List[FieldRef]] = {}
        for name, pos, fields in item.whens:
            if name.lower() not in targets or name.lower() in whens:
                raise error_at("INVALID_FIELD", q.text, pos,
                               f"{fk.relationship_name} can't reference {name} in TYPEOF: it references "
                               f"{', '.join(fk.reference_targets)}")
            whens[name.lower()] = fields
        fk_expr = f"{scope.alias}.{quote_identifier(fk.name)}"
        typed = TypeOfPlan(fk.relationship_name or item.ref.name, fk_expr)
        for lower, target in targets.items():
            fields = whens.get(lower, item.otherwise)
            obj = self.source.schema[target]
            if lower not in whens:
                fields = [f for f in fields if f.path[-1].lower() in obj.by_lower or len(f.path) > 1]
            if not fields:
                continue
            sub = Scope(comp, obj, q)
            scope.join_sql.append(f"LEFT JOIN {quote_identifier(obj.name)} AS {sub.alias} "
                                  f"ON {sub.alias}.\"Id\" = {fk_expr}")
            node = Node(obj, sub.alias)
            seen: Set[str] = set()
            for f in fields:
                self._add_value(sub, node, f, q, seen)
            scope.join_sql.extend(sub.join_sql)
            typed.nodes[obj.name] = node
        for f in item.otherwise:
            if not any(f.path[-1].lower() in self.source.schema[t].by_lower for t in targets.values()):
                raise error_at("INVALID_FIELD", q.text, f.pos, NO_SUCH_COLUMN.format(col=f.name, entity="Name"))
        return typed

    def _builder(self, node: Node, tooling: bool, typed: Optional[str] = None) -> Callable[[Sequence[Any]], Dict[str, Any]]:
        type_name = node.obj.name
        prefix = self.sobject_url(type_name, tooling=tooling) + "/"
        keys = tuple(key for _k, key, _p in node.items)
        start, stop, id_col = node.start, node.stop, node.id_col
        bools = tuple(key for kind, key, p in node.items if kind == "v" and p[1].type == "boolean")
        jsons = tuple(key for kind, key, p in node.items if kind == "v" and p[1].compound)
        formats = tuple((key, p[1]) for kind, key, p in node.items if kind == "v" and p[2])
        parents = tuple((key, self._builder(p, tooling)) for kind, key, p in node.items if kind == "p")
        typeofs = tuple((key, self._typeof_builder(p, tooling)) for kind, key, p in node.items if kind == "t")

        def build(row: Sequence[Any]) -> Dict[str, Any]:
            rec: Dict[str, Any] = {"attributes": {"type": type_name, "url": prefix + row[id_col]}}
            rec.update(zip(keys, row[start:stop]))
            for k in bools:
                v = rec[k]
                if v is not None:
                    rec[k] = v == 1
            for k in jsons:
                if rec[k] is not None:
                    rec[k] = json.loads(rec[k])
            for k, fdef in formats:
                rec[k] = format_for_user(rec[k], fdef.type, fdef.scale)
            for k, b in parents:
                if rec[k] is not None:
                    rec[k] = b(row)
            for k, typed in typeofs:
                rec[k] = typed(row)
            return rec

        return build

    def _typeof_builder(self, typed: TypeOfPlan, tooling: bool) -> Callable[[Sequence[Any]], Optional[Dict[str, Any]]]:
        """The record a TYPEOF names: its type's fields, or only its attributes if it has none."""
        builders = {name: (node.id_col, self._builder(node, tooling)) for name, node in typed.nodes.items()}
        by_prefix = {obj.key_prefix: obj.name for obj in self.source.schema.objects() if obj.key_prefix}
        fk_col = typed.fk_col

        def build(row: Sequence[Any]) -> Optional[Dict[str, Any]]:
            ref = row[fk_col]
            if ref is None:
                return None
            name = by_prefix.get(ref[:3], "Name")
            known = builders.get(name)
            if known is not None and row[known[0]] is not None:
                return known[1](row)
            return {"attributes": {"type": name, "url": self.sobject_url(name, ref, tooling=tooling)}}

        return build

    def _select_sql(self, comp: Compiler, scope: Scope, q: Query, columns: List[str], params: List[Any],
                    extra_where: Sequence[str] = (), limit: bool = True) -> str:
        where = comp.base_filter(scope) + list(extra_where)
        if q.where is not None:
            where.append(comp.condition(scope, q.where, params))
        order = comp.order_sql(scope, q.order_by) + [f"{scope.alias}.rowid"]
        sql = (f"SELECT {', '.join(columns)} FROM {quote_identifier(scope.obj.name)} AS {scope.alias} "
               f"{' '.join(scope.join_sql)}")
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY " + ", ".join(order)
        if limit:
            sql += self._limit_sql(q, params)
        return sql

    @staticmethod
    def _limit_sql(q: Query, params: List[Any]) -> str:
        if q.limit is None and not q.offset:
            return ""
        params.extend([-1 if q.limit is None else q.limit, q.offset or 0])
        return " LIMIT ? OFFSET ?"

    def _record_query(self, comp: Compiler, obj: ObjectDef, q: Query) -> QueryResult:
        for item in q.select:
            if isinstance(item, FieldRef) and item.alias:
                raise error_at("MALFORMED_QUERY", q.text, item.pos, f"unexpected token: '{item.alias}'")
        scope = Scope(comp, obj, q)
        root, columns, children = self._plan(comp, scope, q, allow_children=True)
        params: List[Any] = []
        sql = self._select_sql(comp, scope, q, columns, params)
        build = self._builder(root, comp.tooling)
        with self._lock:
            records = [build(r) for r in self._conn.execute(sql, params).fetchall()]
            self._fill_children(comp, records, children, q)
        return QueryResult(records, len(records), obj.name)

    def _fill_children(self, comp: Compiler, records: List[Dict[str, Any]], children: List[ChildPlan], top: Query) -> None:
        """Run each child subquery for ``records`` (whose relationship keys hold their own Id until
        then) and attach its records, then theirs: up to five levels of parent-to-child queries."""
        if not records:
            return
        for plan in children:
            sql, params, root, grandchildren = self._child_sql(comp, plan, top)
            ids = json.dumps([rec[plan.rel] for rec in records])
            rows = self._conn.execute(sql, _fill(params, ids)).fetchall()
            kids = self._attach_children(records, plan, root, rows, comp.tooling)
            self._fill_children(comp, kids, grandchildren, top)

    def _child_sql(self, comp: Compiler, plan: ChildPlan, parent_q: Query
                   ) -> Tuple[str, List[Any], Node, List[ChildPlan]]:
        q = plan.query
        if q.is_aggregate:
            raise error_at("MALFORMED_QUERY", parent_q.text, q.sobject_pos,
                           "aggregate functions are not supported in child relationship subqueries")
        for item in q.select:
            if isinstance(item, FieldRef) and item.alias:
                raise error_at("MALFORMED_QUERY", parent_q.text, item.pos, f"unexpected token: '{item.alias}'")
        scope = Scope(comp, plan.obj, q)
        root, columns, grandchildren = self._plan(comp, scope, q, allow_children=True)
        fk_col = len(columns)
        columns = columns + [f"{scope.alias}.{quote_identifier(plan.fk.name)}"]
        params: List[Any] = []
        # the parent ids are bound as one JSON array; its placeholder is marked with a sentinel
        sql = self._select_sql(comp, scope, q, columns, params,
                               extra_where=[f"{scope.alias}.{quote_identifier(plan.fk.name)} IN (SELECT value FROM json_each(?))"],
                               limit=False)
        root.fk_col = fk_col
        # json_each placeholder comes after the base filter and before the user's WHERE params
        return sql, [_PARENT_IDS] + params, root, grandchildren

    def _attach_children(self, records: List[Dict[str, Any]], plan: ChildPlan, root: Node, rows: List[Any],
                         tooling: bool) -> List[Dict[str, Any]]:
        """Set each record's relationship to its child records; returns every child record attached."""
        build = self._builder(root, tooling)
        fk_col = root.fk_col
        grouped: Dict[str, List[Any]] = {}
        for r in rows:
            grouped.setdefault(r[fk_col], []).append(r)
        q = plan.query
        offset = q.offset or 0
        key = plan.rel
        attached: List[Dict[str, Any]] = []
        for rec in records:
            kids = grouped.get(rec[key])
            if kids and (offset or q.limit is not None):
                kids = kids[offset:] if q.limit is None else kids[offset:offset + q.limit]
            built = [build(r) for r in kids] if kids else []
            attached.extend(built)
            rec[key] = {"totalSize": len(built), "done": True, "records": built} if built else None
        return attached

    # COUNT()
    def _count_query(self, comp: Compiler, obj: ObjectDef, q: Query) -> QueryResult:
        scope = Scope(comp, obj, q)
        params: List[Any] = []
        where = comp.base_filter(scope)
        if q.where is not None:
            where.append(comp.condition(scope, q.where, params))
        inner = f"SELECT 1 FROM {quote_identifier(obj.name)} AS {scope.alias} {' '.join(scope.join_sql)}"
        if where:
            inner += " WHERE " + " AND ".join(where)
        if q.group_by:
            inner += " GROUP BY " + ", ".join(scope.resolve(g)[0] for g in q.group_by)
        inner += self._limit_sql(q, params)
        with self._lock:
            total = self._conn.execute(f"SELECT COUNT(*) FROM ({inner})", params).fetchone()[0]
        return QueryResult([], int(total), obj.name)

    # aggregates
    def _aggregate_plan(self, comp: Compiler, scope: Scope, q: Query) -> List[Tuple[str, str, str, str, bool]]:
        """-> [(key, sql, type, display, is_aggregate)] in SELECT order."""
        grouped = {}
        for g in q.group_by:
            expr, fdef, rels, _, _ = scope.resolve(g)
            if fdef.type in ("double", "currency", "percent", "textarea", "datetime"):
                raise error_at("MALFORMED_QUERY", q.text, g.pos, f"field '{fdef.name}' can not be grouped in a query "
                                                                 f"call")
            grouped[expr] = fdef
        out = []
        n = 0
        keys: Set[str] = set()
        for item in q.select:
            if isinstance(item, Subquery):
                raise error_at("MALFORMED_QUERY", q.text, item.pos,
                               "child relationship subqueries are not supported in aggregate queries")
            if isinstance(item, Aggregate):
                if item.field is None:
                    raise error_at("MALFORMED_QUERY", q.text, item.pos,
                                   "COUNT() must be the only element in the SELECT list")
                sql, ftype, display = comp.aggregate_expr(scope, item)
                key = item.alias
                if key is None:
                    key = f"expr{n}"
                    n += 1
                out.append((key, sql, ftype, display, True))
            else:
                assert not isinstance(item, FieldsMacro)
                if isinstance(item, TypeOf):
                    raise error_at("MALFORMED_QUERY", q.text, item.pos, "TYPEOF can't be used in an aggregate query")
                expr, fdef, rels, _, _ = scope.resolve(item)
                if expr not in grouped:
                    raise error_at("MALFORMED_QUERY", q.text, item.pos,
                                   f"Field must be grouped or aggregated: {fdef.name}")
                key = item.alias
                if key is None and isinstance(item, FieldFunction) and item.function in DATE_FUNCTIONS:
                    key = f"expr{n}"
                    n += 1
                out.append((key or fdef.name, expr, fdef.type, ".".join(rels + [fdef.name]), False))
            if out[-1][0].lower() in keys:
                raise error_at("MALFORMED_QUERY", q.text, item.pos,
                               f"duplicate alias: {out[-1][0]}")
            keys.add(out[-1][0].lower())
        return out

    def _aggregate_sql(self, comp: Compiler, scope: Scope, q: Query, plan: List[Tuple[str, str, str, str, bool]],
                       params: List[Any], wrap: Callable[[str, str], str] = lambda sql, _type: sql) -> str:
        """SQL of an aggregate query; ``wrap(sql, type)`` turns each selected value into its output."""
        if q.group_kind:
            return self._grouping_sets_sql(comp, scope, q, plan, params, wrap)
        where = comp.base_filter(scope)
        if q.where is not None:
            where.append(comp.condition(scope, q.where, params))
        sql = (f"SELECT {', '.join(wrap(p[1], p[2]) for p in plan)} FROM {quote_identifier(scope.obj.name)} AS "
               f"{scope.alias} {' '.join(scope.join_sql)}")
        if where:
            sql += " WHERE " + " AND ".join(where)
        if q.group_by:
            sql += " GROUP BY " + ", ".join(scope.resolve(g)[0] for g in q.group_by)
        if q.having is not None:
            sql += " HAVING " + comp.condition(scope, q.having, params)
        order = comp.order_sql(scope, q.order_by)
        if order:
            sql += " ORDER BY " + ", ".join(order)
        sql += self._limit_sql(q, params)
        return sql

    def _grouping_sets_sql(self, comp: Compiler, scope: Scope, q: Query, plan: List[Tuple[str, str, str, str, bool]],
                           params: List[Any], wrap: Callable[[str, str], str]) -> str:
        """GROUP BY ROLLUP(a, b) / CUBE(a, b): one GROUP BY per grouping set, UNION ALL; a field a
        set leaves out is null in its rows, and GROUPING() of it 1. Without ORDER BY, subtotals
        follow the rows they sum up."""
        groups = [(expr, fdef.type) for expr, fdef, *_ in (scope.resolve(g) for g in q.group_by)]
        exprs = [g for g, _ in groups]
        if q.group_kind == "ROLLUP":
            sets = [exprs[:k] for k in range(len(exprs), -1, -1)]
        else:
            sets = [list(c) for k in range(len(exprs), -1, -1) for c in itertools.combinations(exprs, k)]
        where_params: List[Any] = []
        having_params: List[Any] = []
        where = comp.base_filter(scope)
        if q.where is not None:
            where.append(comp.condition(scope, q.where, where_params))
        having = comp.condition(scope, q.having, having_params) if q.having is not None else None
        order = self._grouping_order(comp, scope, q)
        parts = []
        for members in sets:
            cols = [f"{wrap(_in_set(p[1], exprs, members, p[4]), p[2])} AS c{i}" for i, p in enumerate(plan)]
            cols += [f"{_in_set(expr, exprs, members, agg)} AS o{k}" for k, (expr, agg, _d, _n) in enumerate(order)]
            for j, (g, gtype) in enumerate(groups):
                value = (f"sf_sort_key({g})" if gtype in TEXT_TYPES else g) if g in members else "NULL"
                cols += [f"{0 if g in members else 1} AS k{j}", f"{value} AS v{j}"]
            sql = (f"SELECT {', '.join(cols)} FROM {quote_identifier(scope.obj.name)} AS {scope.alias} "
                   f"{' '.join(scope.join_sql)}")
            sql += (" WHERE " + " AND ".join(where)) if where else ""
            sql += (" GROUP BY " + ", ".join(members)) if members else ""
            sql += (" HAVING " + _in_set(having, exprs, members, True)) if having else ""
            parts.append(sql)
            params.extend(where_params + having_params)
        keys = []
        for k, (_expr, _agg, descending, nulls_first) in enumerate(order):
            if nulls_first != (not descending):
                keys.append(f"(o{k} IS NULL) {'DESC' if nulls_first else 'ASC'}")
            keys.append(f"o{k} {'DESC' if descending else 'ASC'}")
        keys += [f"{kind}{j}" for j in range(len(groups)) for kind in ("k", "v")]
        sql = (f"SELECT {', '.join(f'c{i}' for i in range(len(plan)))} FROM ({' UNION ALL '.join(parts)}) "
               f"ORDER BY {', '.join(keys)}")
        return sql + self._limit_sql(q, params)

    @staticmethod
    def _grouping_order(comp: Compiler, scope: Scope, q: Query) -> List[Tuple[str, bool, bool, bool]]:
        """ORDER BY of a ROLLUP / CUBE query: [(sql, is aggregate, descending, nulls first)]."""
        out = []
        for item in q.order_by:
            if isinstance(item.expr, Aggregate):
                expr = comp.aggregate_expr(scope, item.expr)[0]
            else:
                expr, fdef, *_ = scope.resolve(item.expr)
                expr = f"sf_sort_key({expr})" if fdef.type in TEXT_TYPES else expr
            out.append((expr, isinstance(item.expr, Aggregate), item.descending, item.effective_nulls_first))
        return out

    def _aggregate_query(self, comp: Compiler, obj: ObjectDef, q: Query) -> QueryResult:
        if not q.group_by and q.limit is not None and q.limit > MAX_QUERY_ROWS:
            raise error_at("MALFORMED_QUERY", q.text, q.limit_pos,
                           f"LIMIT of an aggregate query without GROUP BY can't exceed {MAX_QUERY_ROWS}")
        scope = Scope(comp, obj, q)
        plan = self._aggregate_plan(comp, scope, q)
        params: List[Any] = []
        sql = self._aggregate_sql(comp, scope, q, plan, params)
        with self._lock:
            rows = self._conn.execute(sql, params).fetchmany(MAX_AGGREGATE_ROWS + 1)
        if len(rows) > MAX_AGGREGATE_ROWS:
            # aggregate results have no queryMore: Salesforce refuses what one batch can't hold
            raise SoqlError("EXCEEDED_ID_LIMIT", "Aggregate query does not support queryMore(), use LIMIT to "
                                                 "restrict the results to a single batch")
        keys = tuple(p[0] for p in plan)
        bools = tuple(p[0] for p in plan if p[2] == "boolean")
        floats = tuple(p[0] for p in plan if p[2] in ("double", "currency", "percent"))
        formats = self._aggregate_formats(scope, q, plan)
        records = []
        for row in rows:
            rec: Dict[str, Any] = {"attributes": {"type": "AggregateResult"}}
            rec.update(zip(keys, row))
            for k in bools:
                if rec[k] is not None:
                    rec[k] = rec[k] == 1
            for k in floats:
                if rec[k] is not None:
                    rec[k] = float(rec[k])
            for k, ftype, scale in formats:
                rec[k] = format_for_user(rec[k], ftype, scale)
            records.append(rec)
        return QueryResult(records, len(records), obj.name)

    @staticmethod
    def _aggregate_formats(scope: Scope, q: Query, plan: List[Tuple[str, str, str, str, bool]]
                           ) -> List[Tuple[str, str, int]]:
        """(key, type, scale) of the values a FORMAT() in the SELECT list formats."""
        out = []
        for item, (key, _sql, ftype, _display, _agg) in zip(q.select, plan):
            if isinstance(item, Aggregate) and item.format:
                scale = scope.resolve(item.field)[1].scale if item.field is not None else 0
                out.append((key, ftype, scale))
            elif isinstance(item, FieldFunction) and item.function == "FORMAT":
                out.append((key, ftype, scope.resolve(item)[1].scale))
        return out

    # flat rows for Bulk CSV
    def query_flat(self, soql: str, *, include_deleted: bool = False) -> Tuple[List[str], List[Tuple[str, ...]]]:
        """(column names, rows of strings) the way Bulk API 2.0 CSV shows them.

        Parent fields are flattened to ``Account.Name`` columns; booleans are ``true``/``false``,
        nulls empty strings.  Child subqueries are refused (Bulk API doesn't support them).
        """
        names, _, sql, params = self._flat_sql(soql, include_deleted)
        with self._lock:
            rows = self._conn.execute(sql, params).fetchall()
        return names, rows

    def snapshot_flat(self, soql: str, *, include_deleted: bool = False) -> FlatSnapshot:
        """The rows :meth:`query_flat` gives, kept inside SQLite (a temporary table) and read
        a page at a time as CSV lines: what a Bulk 2.0 query job holds between its execution
        and its results. Taking it runs the query once, in SQLite, without building a Python
        object per value; later changes to the records do not show in it. ``close()`` drops it."""
        names, types, sql, params = self._flat_sql(soql, include_deleted)
        table = f"flat_snapshot_{uuid.uuid4().hex}"  # not _counter: that numbers record ids
        cols = [f"c{i}" for i in range(len(names))]
        with self._lock:
            # INSERT ... SELECT ... ORDER BY inserts in that order: rowid n is row n (1-based)
            self._conn.execute(f"CREATE TEMP TABLE {table} ({', '.join(cols)})")
            self._conn.execute(f"INSERT INTO {table} {sql}", params)
            count = self._conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        # a value can hold '"' (doubled in CSV) only if it is text
        quotes = [t is None or t not in _NO_QUOTE_TYPES for t in types]
        return FlatSnapshot(self, table, names, quotes, int(count))

    def _snapshot_lines(self, table: str, line_sql: str, offset: int, limit: int) -> List[str]:
        with self._lock:
            rows = self._conn.execute(f"SELECT {line_sql} FROM {table} WHERE rowid > ? AND rowid <= ? ORDER BY rowid",
                                      (offset, offset + limit)).fetchall()
        return [r[0] for r in rows]

    def _drop_snapshot(self, table: str) -> None:
        with self._lock:
            self._conn.execute(f"DROP TABLE IF EXISTS temp.{table}")

    def _flat_sql(self, soql: str, include_deleted: bool) -> Tuple[List[str], List[Optional[str]], str, List[Any]]:
        """(column names, their field types, SQL, parameters) of :meth:`query_flat`."""
        q = _soql.parse(soql)
        comp = Compiler(self.source, q, False, include_deleted)
        obj = comp.object(q.sobject, q.sobject_pos, q.text)
        self._expand_fields(q, obj, q, bulk=True)
        if any(isinstance(i, Subquery) for i in q.select):
            raise SoqlError("INVALIDJOB", "Cannot process query with relationship subqueries in Bulk API")
        if q.is_count_only:
            raise SoqlError("INVALIDJOB", "Bulk API does not support the COUNT() function: use COUNT(Id)")
        scope = Scope(comp, obj, q)
        params: List[Any] = []
        if q.is_aggregate:
            plan = self._aggregate_plan(comp, scope, q)
            names = [p[0] for p in plan]
            exprs = [(p[1], p[2]) for p in plan]
            sql = self._aggregate_sql(comp, scope, q, plan, params, wrap=_csv_expr)
        else:
            names = []
            exprs = []
            seen: Set[str] = set()
            for item in q.select:
                if isinstance(item, TypeOf) or (isinstance(item, FieldFunction) and item.function == "FORMAT"):
                    raise SoqlError("INVALIDJOB", f"{'TYPEOF' if isinstance(item, TypeOf) else 'FORMAT()'} is not "
                                                  f"supported in Bulk API queries by the local org")
                assert isinstance(item, (FieldRef, FieldFunction))
                if item.alias:
                    raise error_at("MALFORMED_QUERY", q.text, item.pos, f"unexpected token: '{item.alias}'")
                if isinstance(item, FieldFunction) and item.function not in RECORD_FUNCTIONS:
                    raise error_at("MALFORMED_QUERY", q.text, item.pos,
                                   f"{item.function}() in the SELECT list needs a GROUP BY of it")
                expr, fdef, rels, _, _ = scope.resolve(item)
                if fdef.compound:
                    raise SoqlError("FUNCTIONALITY_NOT_ENABLED", "Selecting compound data not supported in Bulk Query")
                name = ".".join(rels + [fdef.name])
                if name.lower() in seen:
                    raise error_at("MALFORMED_QUERY", q.text, item.pos, f"duplicate field selected: {name}")
                seen.add(name.lower())
                names.append(name)
                exprs.append((expr, fdef.type))
            sql = self._select_sql(comp, scope, q, [_csv_expr(e, t) for e, t in exprs], params)
        return names, [t for _, t in exprs], sql, params

    # columns=true
    def column_metadata(self, soql: str, *, tooling: bool = False) -> Dict[str, Any]:
        """The response of GET /query?q=...&columns=true (no records)."""
        q = _soql.parse(soql)
        comp = Compiler(self.source, q, tooling, False)
        obj = comp.object(q.sobject, q.sobject_pos, q.text)
        self._expand_fields(q, obj, q)
        scope = Scope(comp, obj, q)
        columns: List[Dict[str, Any]] = []
        if q.is_count_only:
            pass
        elif q.is_aggregate:
            for key, _sql, ftype, display, is_agg in self._aggregate_plan(comp, scope, q):
                columns.append(_column(key, key if not is_agg else display, ftype, aggregate=is_agg,
                                       insertable=False, updatable=False))
        else:
            self._plan(comp, scope, q, allow_children=True)  # validates names
            columns = self._columns_for(comp, scope, q)
        id_selected = any(isinstance(i, FieldRef) and len(i.path) == 1 and i.path[0].lower() == "id" for i in q.select)
        return {"columnMetadata": columns, "entityName": obj.name, "groupBy": bool(q.group_by),
                "idSelected": id_selected, "keyPrefix": obj.key_prefix}

    def _columns_for(self, comp: Compiler, scope: Scope, q: Query) -> List[Dict[str, Any]]:
        out: List[Dict[str, Any]] = []
        by_rel: Dict[Tuple[str, ...], Dict[str, Any]] = {}
        for item in q.select:
            if isinstance(item, Subquery):
                rel_name, child, _fk = scope.obj.children[item.query.sobject.lower()]
                child_scope = Scope(comp, self.source.schema[child], item.query)
                col = _column(rel_name, rel_name, None, aggregate=True, insertable=False, updatable=False)
                col["joinColumns"] = self._columns_for(comp, child_scope, item.query)
                out.append(col)
                continue
            if isinstance(item, TypeOf):
                out.append(_column(item.ref.name, item.ref.name, None, aggregate=False, insertable=False,
                                   updatable=False))
                continue
            assert isinstance(item, (FieldRef, FieldFunction))
            _expr, fdef, rels, _alias, _obj = scope.resolve(item)
            target = out
            key: Tuple[str, ...] = ()
            prefix: List[str] = []
            for rel in rels:
                key += (rel.lower(),)
                prefix.append(rel)
                known = by_rel.get(key)
                if known is None:
                    known = _column(rel, ".".join(prefix), None, aggregate=False, insertable=False, updatable=False)
                    by_rel[key] = known
                    target.append(known)
                target = known["joinColumns"]
            target.append(_column(fdef.name, ".".join(prefix + [fdef.name]), fdef.type, aggregate=False,
                                  insertable=fdef.createable, updatable=fdef.updateable, custom=fdef.custom))
        return out


_PARENT_IDS = object()


#: field functions a record query may select (the others need GROUP BY)
RECORD_FUNCTIONS = frozenset({"TOLABEL", "FORMAT", "CONVERTCURRENCY"})


class TypeOfPlan:
    """A TYPEOF in a SELECT list: the polymorphic id's column and a Node per type it may name."""

    def __init__(self, key: str, fk_expr: str) -> None:
        self.key = key
        self.fk_expr = fk_expr
        self.fk_col = 0
        self.nodes: Dict[str, Node] = {}


def _layout(node: Node, columns: List[str], root_alias: str) -> None:
    """Give ``node``'s values their columns (then its parents' and TYPEOF types' values)."""
    node.start = len(columns)
    for kind, _key, payload in node.items:
        if kind == "v":
            columns.append(payload[0])
        elif kind == "p":
            payload.id_col = len(columns)
            columns.append(f"{payload.alias}.\"Id\"")
        elif kind == "t":
            payload.fk_col = len(columns)
            columns.append(payload.fk_expr)
        else:
            columns.append(f"{root_alias}.\"Id\"")
    node.stop = len(columns)
    for kind, _key, payload in node.items:
        if kind == "p":
            _layout(payload, columns, root_alias)
        elif kind == "t":
            for typed in payload.nodes.values():
                typed.id_col = len(columns)
                columns.append(f"{typed.alias}.\"Id\"")
                _layout(typed, columns, root_alias)


def _in_set(sql: str, groups: Sequence[str], members: Sequence[str], aggregate: bool) -> str:
    """``sql`` in the rows of one grouping set: GROUPING(g) is 0 for a field of the set, 1 for
    another; outside aggregates, a grouped field the set leaves out is null."""
    for g in groups:
        sql = sql.replace(f"sf_grouping({g})", "0" if g in members else "1")
    if not aggregate:
        for g in groups:
            if g not in members:
                sql = sql.replace(g, "NULL")
    return sql


def _fill(params: List[Any], ids: str) -> List[Any]:
    return [ids if p is _PARENT_IDS else p for p in params]


def _csv_expr(expr: str, ftype: str) -> str:
    """SQL giving the Bulk CSV text of a value: '' for null, true/false for booleans."""
    if ftype == "boolean":
        return f"CASE WHEN {expr} IS NULL THEN '' WHEN {expr} THEN 'true' ELSE 'false' END"
    if ftype in TEXT_TYPES or ftype in ("date", "datetime"):
        return f"IFNULL({expr}, '')"
    return f"IFNULL(CAST({expr} AS TEXT), '')"


def _column(name: str, display: str, ftype: Optional[str], *, aggregate: bool, insertable: bool,
            updatable: bool, custom: bool = False) -> Dict[str, Any]:
    return {
        "aggregate": aggregate,
        "apexType": APEX_TYPES.get(ftype) if ftype else None,
        "booleanType": ftype == "boolean",
        "columnName": name,
        "custom": custom,
        "displayName": display,
        "foreignKeyName": None,
        "insertable": insertable,
        "joinColumns": [],
        "numberType": ftype in NUMBER_TYPES if ftype else False,
        "textType": ftype in TEXT_TYPES and ftype not in ("id", "reference") if ftype else False,
        "updatable": updatable,
    }
