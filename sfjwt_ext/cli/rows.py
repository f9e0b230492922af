"""Rows of values for the writers of ``sfjwt query`` (table, csv, json, jsonl).

:class:`RowPlan` turns each page's records into rows in the order of the SELECT list, from the
record engine's column plan (:mod:`sfjwt_ext.data.records`: aggregates by alias / ``exprN``,
the grouped-parent quirk); :func:`select_columns` and :func:`row_values` serve ``sfjwt demo``
and rows whose columns are learnt from the records (``FIELDS()``, ``TYPEOF``).
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

from ..data.records import (Column, Describer, extract, flatten, plan_columns, resolve_nested,
                            resolve_top_level)
from ..data.soql_select import SelectQuery, SoqlParseError, parse_select

__all__ = ["RowPlan", "row_values", "select_columns"]


def select_columns(soql: str) -> Optional[List[str]]:
    """Column names in the order of the SELECT list, or None when they can only be known
    from the records (``FIELDS()``, ``TYPEOF``, or a list this parser cannot read)."""
    try:
        query = parse_select(soql)
    except SoqlParseError:
        return None
    if query.dynamic:
        return None
    if query.is_count:
        return ["count"]
    return [item.name for item in query.items]


def row_values(columns: Sequence[str], flat: Dict[str, Any]) -> List[Any]:
    """The values of ``flat`` (a :func:`flatten`-ed record) for ``columns``; names match
    case-insensitively (SOQL is not case-sensitive, the API answers with its own spelling);
    a column the record lacks (under a null parent) is ``None``. For rows whose columns
    were learnt from the records; a readable SELECT list goes through :class:`RowPlan`."""
    lowered: Optional[Dict[str, Any]] = None
    values: List[Any] = []
    for column in columns:
        if column in flat:
            values.append(flat[column])
            continue
        if lowered is None:
            lowered = {key.lower(): value for key, value in flat.items()}
        values.append(lowered.get(column.lower()))
    return values


class RowPlan:
    """Records -> rows of values, for writers that stream rows (``sfjwt query``).

    With a readable SELECT list the columns are :func:`plan_columns`' (SELECT order,
    aggregates by alias / ``exprN``, the grouped-parent quirk), spelled as the records spell
    them once the first page is seen (``select id`` -> ``Id``). ``FIELDS()``, ``TYPEOF`` or
    a list the parser cannot read: the keys of the first :func:`flatten`-ed record. A child
    subquery's value is the list of its records, flattened. ``describer`` (optional) adds
    describe's spelling before any record is seen; without it nothing is fetched.
    """

    def __init__(self, soql: str, describer: Optional[Describer] = None) -> None:
        try:
            q: Optional[SelectQuery] = parse_select(soql)
        except SoqlParseError:
            q = None
        self.query = q
        self._plan: Optional[List[Column]] = None
        if q is not None and not q.dynamic:
            self._plan = plan_columns(describer or Describer(None), q)
        self.columns: Optional[List[str]] = None if self._plan is None else [c.name for c in self._plan]
        self._started = False

    def start(self, records: List[Dict[str, Any]]) -> List[str]:
        """The column names, fixed from the first page (``records``, non-empty)."""
        if not self._started and records:
            self._started = True
            if self._plan is None:
                self.columns = list(flatten(records[0]))
            else:
                resolve_top_level(self._plan, records[0])
                for col in self._plan:
                    if len(col.keys) > 1:
                        resolve_nested(col, records)
                    if col.kind == "child" or (len(col.keys) == len(col.name.split(".")) and
                                               ".".join(col.keys).lower() == col.name.lower()):
                        col.name = ".".join(col.keys)
                self.columns = [c.name for c in self._plan]
        return list(self.columns or [])

    def rows(self, records: List[Dict[str, Any]]) -> List[List[Any]]:
        """One list of values per record, in the order of :attr:`columns`."""
        self.start(records)
        if self._plan is None:
            columns = self.columns or []
            return [row_values(columns, flatten(r)) for r in records]
        values = []
        for col in self._plan:
            if col.kind == "child":
                key = col.keys[0]
                values.append([[flatten(c) for c in (r.get(key) or {}).get("records") or []] for r in records])
            else:
                values.append(extract(records, col.keys))
        return [list(row) for row in zip(*values)] if values else [[] for _ in records]
