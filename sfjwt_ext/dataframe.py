"""SOQL results as pandas DataFrames: :func:`query_df`.

``query_df(sf, soql)`` (also ``sf.query_df(soql)`` on a :class:`~sfjwt_ext.SalesforceJWT`)
runs a SOQL query with any :class:`simple_salesforce.Salesforce` client and returns a
:class:`pandas.DataFrame`:

* Columns come in the order of the SELECT list. ``attributes`` is dropped; parent
  relationships are flattened to ``Account.Name`` / ``Account.Owner.Name`` (a null parent
  gives nulls in those columns, never a missing column); a child subquery
  (``(SELECT ... FROM Contacts)``) becomes one column (named after the relationship) holding
  a list of records per row: plain dicts without ``attributes``, ``[]`` when there are none.
* Types come from the objects' describe (fetched once per object and cached on the client
  in ``sf._sfjwt_describe_cache``): int -> ``Int64``; double / currency / percent ->
  ``Float64``; boolean -> ``boolean``; date -> ``datetime64[ns]``; datetime ->
  ``datetime64[ns, UTC]``; compound address / location fields keep their dicts (object);
  everything else (Id, reference, string, picklist, textarea, time, ...) -> ``string``.
  Nulls stay nulls (``<NA>`` / ``NaT``). Every column is a typed pandas array, so
  ``df.to_parquet(...)`` works.
* Aggregate queries (``SELECT StageName, SUM(Amount) total FROM Opportunity GROUP BY
  StageName``) give one column per SELECT item, named by its alias or Salesforce's
  ``expr0``, ``expr1``...; grouped fields keep their (dotted) name. COUNT / COUNT_DISTINCT
  and date functions are ``Int64``, SUM / AVG ``Float64``, MIN / MAX the field's type.
* ``SELECT COUNT() FROM X`` returns no records, only a total: you get a one-row frame with
  one ``Int64`` column named ``count``.
* Pages are streamed (``query`` + ``query_more`` through the client's session, so an
  expired session is refreshed in flight) into per-column lists: the records of one page
  are alive at a time, never the whole result twice. With more than one page a tqdm
  progress bar (``tqdm.auto``) shows the rows; ``progress=False`` hides it, ``True`` forces it.
* ``bulk=True`` runs a Bulk API 2.0 query job instead, downloads its CSV parts into a
  temporary directory (removed afterwards) and reads them with pandas (the pyarrow CSV
  engine when pyarrow is installed): same columns and dtypes as the REST path. The
  progress bar advances part by part, shown (``progress=None``) once a second part is coming.
  ``bulk="auto"`` (the default) first asks ``SELECT COUNT() FROM <object> WHERE <same
  filter>`` (capped by the query's LIMIT) and switches to Bulk 2.0 when that estimate is
  above :data:`BULK_AUTO_THRESHOLD` and the query is one Bulk 2.0 can run.
  Bulk 2.0 cannot run aggregates, ``COUNT()``, child subqueries, ``FIELDS()``, ``TYPEOF``,
  ``OFFSET`` or compound (address / location) fields: ``"auto"`` stays on REST for those,
  ``bulk=True`` raises :class:`BulkQueryNotSupported` (a ``ValueError``).

pandas and tqdm are imported when a function runs, never when this module is imported.
"""
from __future__ import annotations

import json
import logging
import os
import tempfile
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from ._soql_fields import SelectItem, SelectQuery, SoqlParseError, parse_select

__all__ = ["BULK_AUTO_THRESHOLD", "BULK_PART_RECORDS", "BulkQueryNotSupported", "query_df"]

logger = logging.getLogger("sfjwt_ext.dataframe")

#: ``bulk="auto"`` uses Bulk API 2.0 when a ``SELECT COUNT()`` estimate of the query (same
#: object and WHERE clause, capped by its LIMIT) is above this many rows. Below it the REST
#: query API is faster: a Bulk job costs several round trips and a polling delay.
BULK_AUTO_THRESHOLD = 200_000
#: ``maxRecords`` per Bulk 2.0 result part (one CSV file and one progress step per part).
BULK_PART_RECORDS = 50_000
#: First wait before polling a Bulk 2.0 job's state (simple-salesforce then backs off to 2 s).
BULK_POLL_SECONDS = 0.2

_PIP_HINT = "pip install 'sfjwt-ext[pandas]'"

_INT_TYPES = frozenset({"int", "long"})
_FLOAT_TYPES = frozenset({"double", "currency", "percent"})
_OBJECT_TYPES = frozenset({"address", "location", "anytype", "complexvalue", "json"})
_COMPOUND_TYPES = frozenset({"address", "location"})
_INT_FUNCTIONS = frozenset({
    "COUNT", "COUNT_DISTINCT", "GROUPING", "CALENDAR_MONTH", "CALENDAR_QUARTER", "CALENDAR_YEAR",
    "DAY_IN_MONTH", "DAY_IN_WEEK", "DAY_IN_YEAR", "FISCAL_MONTH", "FISCAL_QUARTER", "FISCAL_YEAR",
    "HOUR_IN_DAY", "WEEK_IN_MONTH", "WEEK_IN_YEAR",
})


class BulkQueryNotSupported(ValueError):
    """``bulk=True`` was asked for a query that Bulk API 2.0 cannot run."""


# --------------------------------------------------------------------------- imports


def _pandas() -> Any:
    try:
        import pandas
    except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
        raise ImportError(f"query_df needs pandas: {_PIP_HINT}") from exc
    return pandas


def _tqdm(required: bool) -> Optional[Callable[..., Any]]:
    import warnings

    try:
        with warnings.catch_warnings():
            # in a notebook without ipywidgets tqdm.auto warns, then falls back to text bars
            warnings.filterwarnings("ignore", message=".*IProgress not found.*")
            from tqdm.auto import tqdm
    except ImportError as exc:
        if required:
            raise ImportError(f"progress=True needs tqdm: {_PIP_HINT}") from exc
        return None
    return tqdm  # type: ignore[no-any-return]


def _has_pyarrow() -> bool:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return False
    return True


class _Progress:
    """A tqdm bar, or nothing."""

    def __init__(self, show: bool, required: bool, total: Optional[int], unit: str, desc: str) -> None:
        self.bar = None
        if show:
            tqdm = _tqdm(required)
            if tqdm is not None:
                self.bar = tqdm(total=total, unit=unit, desc=desc, leave=False)

    def update(self, n: int) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


# --------------------------------------------------------------------------- describe


class _Describer:
    """Describes objects once per client and answers type / canonical-name questions."""

    def __init__(self, sf: Any) -> None:
        self.sf = sf
        # sf.__dict__ directly: simple-salesforce's __getattr__ turns unknown names into SFType
        cache = sf.__dict__.get("_sfjwt_describe_cache")
        if not isinstance(cache, dict):
            cache = {}
            try:
                sf.__dict__["_sfjwt_describe_cache"] = cache
            except (AttributeError, TypeError):  # pragma: no cover - objects without __dict__
                pass
        self.cache: Dict[str, Any] = cache
        self.failed: Dict[str, bool] = {}
        self.indexes: Dict[str, Tuple[Dict[str, dict], Dict[str, dict], Dict[str, dict]]] = {}

    def describe(self, sobject: str) -> Optional[dict]:
        key = sobject.lower()
        if key in self.cache:
            return self.cache[key]  # type: ignore[no-any-return]
        if key in self.failed:
            return None
        try:
            result = getattr(self.sf, sobject).describe()
        except Exception as exc:  # any API error: fall back to types inferred from the values
            logger.debug("describe(%s) failed: %s; inferring types from values", sobject, exc)
            self.failed[key] = True
            return None
        self.cache[key] = result
        return result  # type: ignore[no-any-return]

    def index(self, sobject: str) -> Optional[Tuple[Dict[str, dict], Dict[str, dict], Dict[str, dict]]]:
        key = sobject.lower()
        if key not in self.indexes:
            d = self.describe(sobject)
            if d is None:
                return None
            fields = {f["name"].lower(): f for f in d.get("fields") or [] if f.get("name")}
            rels = {f["relationshipName"].lower(): f for f in d.get("fields") or [] if f.get("relationshipName")}
            children = {c["relationshipName"].lower(): c for c in d.get("childRelationships") or []
                        if c.get("relationshipName")}
            self.indexes[key] = (fields, rels, children)
        return self.indexes[key]

    def resolve(self, sobject: str, path: Sequence[str]) -> Tuple[Tuple[str, ...], Optional[str]]:
        """(canonical key path, describe type of the leaf or None) for a dotted field path."""
        keys: List[str] = []
        objects = [sobject]
        for i, part in enumerate(path):
            last = i == len(path) - 1
            found: Optional[dict] = None
            next_objects: List[str] = []
            for obj in objects:
                idx = self.index(obj)
                if idx is None:
                    continue
                fields, rels, _ = idx
                if last:
                    found = fields.get(part.lower())
                else:
                    found = rels.get(part.lower())
                    if found is None and part.lower() in fields and fields[part.lower()].get("referenceTo"):
                        found = fields[part.lower()]  # e.g. a custom Account__c written as Account__r
                if found is not None:
                    break
            if found is None:
                return tuple(keys) + tuple(path[i:]), None
            if last:
                keys.append(found["name"])
                return tuple(keys), str(found.get("type") or "").lower() or None
            keys.append(found.get("relationshipName") or part)
            next_objects = list(found.get("referenceTo") or [])
            if not next_objects:
                return tuple(keys) + tuple(path[i + 1:]), None
            objects = next_objects
        return tuple(keys), None

    def child_relationship(self, sobject: str, name: str) -> Tuple[str, Optional[str]]:
        idx = self.index(sobject)
        if idx is not None:
            child = idx[2].get(name.lower())
            if child is not None:
                return child["relationshipName"], child.get("childSObject")
        return name, None


# --------------------------------------------------------------------------- column plan


class _Column:
    """One output column: where its values sit in a record and what type they get."""

    __slots__ = ("name", "keys", "candidates", "sftype", "kind", "values", "resolved", "csv_names")

    def __init__(self, name: str, keys: Tuple[str, ...], sftype: Optional[str], kind: str = "value",
                 candidates: Sequence[Tuple[str, ...]] = ()) -> None:
        self.name = name
        self.keys = keys
        self.candidates = [keys, *[c for c in candidates if c != keys]]
        self.sftype = sftype
        self.kind = kind  # value | child
        self.values: List[Any] = []
        self.resolved = False
        self.csv_names = {name.lower(), ".".join(keys).lower()}


def _function_type(d: _Describer, sobject: str, item: SelectItem) -> Optional[str]:
    func = item.func or ""
    if func in ("FORMAT", "TOLABEL"):
        return "string"
    if func == "CONVERTCURRENCY":
        return "currency"
    if func == "DAY_ONLY":
        return "date"
    if func in _INT_FUNCTIONS:
        return "int"
    if func in ("SUM", "AVG"):
        return "double"
    if func in ("MIN", "MAX") and item.path:
        return d.resolve(sobject, item.path)[1]
    if item.inner:
        return _function_type(d, sobject, SelectItem("function", item.name, item.path, func=item.inner))
    return None


def _plan(d: _Describer, q: SelectQuery) -> List[_Column]:
    columns: List[_Column] = []
    seen = set()
    aggregate = q.is_aggregate
    for item in q.items:
        if item.kind == "field":
            keys, sftype = d.resolve(q.sobject, item.path)
            if aggregate:
                # Salesforce keys a grouped parent field by its last name (Account.Name -> "Name")
                name = item.alias or ".".join(keys)
                col = _Column(name, (item.alias,) if item.alias else (keys[-1],), sftype,
                              candidates=[keys, (".".join(keys),), (".".join(item.path),)])
            else:
                col = _Column(".".join(keys), keys, sftype)
        elif item.kind == "function":
            sftype = _function_type(d, q.sobject, item)
            if not aggregate and item.path and not item.alias and item.name == ".".join(item.path):
                keys, _ = d.resolve(q.sobject, item.path)  # toLabel(x) / FORMAT(x): keyed by the field
                col = _Column(".".join(keys), keys, sftype)
            else:
                col = _Column(item.name, (item.name,), sftype)
        elif item.kind == "subquery":
            rel, _ = d.child_relationship(q.sobject, item.name)
            col = _Column(rel, (rel,), None, kind="child")
        else:  # dynamic: the caller handles it
            continue
        if col.name.lower() in seen:
            continue
        seen.add(col.name.lower())
        columns.append(col)
    return columns


def _resolve_top_level(columns: List[_Column], record: dict) -> None:
    """Pick each column's key path from the candidates, matching the record's keys (any case)."""
    lower = {k.lower(): k for k in record}
    for col in columns:
        if col.resolved:
            continue
        for cand in col.candidates:
            first = cand[0]
            if first in record:
                col.keys = cand
                break
            if first.lower() in lower:
                col.keys = (lower[first.lower()],) + tuple(cand[1:])
                break
        col.resolved = True


def _resolve_nested(col: _Column, records: List[dict]) -> bool:
    """Fix the case of a parent path's inner keys from a record that has the parent.

    True once a record with a non-null parent was seen (nothing more to learn).
    """
    for rec in records[:200]:
        value: Any = rec
        fixed: List[str] = []
        for key in col.keys[:-1]:
            if not isinstance(value, dict):
                break
            if key not in value:
                match = next((k for k in value if k.lower() == key.lower()), None)
                if match is None:
                    break
                key = match
            fixed.append(key)
            value = value[key]
        else:
            if isinstance(value, dict):
                leaf = col.keys[-1]
                if leaf not in value:
                    leaf = next((k for k in value if k.lower() == leaf.lower()), leaf)
                col.keys = tuple(fixed) + (leaf,)
                return True
    return False


# --------------------------------------------------------------------------- value extraction


def _strip_attributes(value: Any) -> Any:
    if isinstance(value, dict):
        if "records" in value and "totalSize" in value and "done" in value:
            return [_strip_attributes(r) for r in value.get("records") or []]
        return {k: _strip_attributes(v) for k, v in value.items() if k != "attributes"}
    if isinstance(value, list):
        return [_strip_attributes(v) for v in value]
    return value


def _extract(records: List[dict], keys: Tuple[str, ...]) -> List[Any]:
    if len(keys) == 1:
        k = keys[0]
        return [r.get(k) for r in records]
    if len(keys) == 2:
        k0, k1 = keys
        return [None if (p := r.get(k0)) is None else p.get(k1) for r in records]
    out: List[Any] = []
    append = out.append
    for r in records:
        value: Any = r
        for k in keys:
            value = value.get(k)
            if value is None:
                break
        append(value)
    return out


class _Pages:
    """REST query pages as plain dicts, fetched through ``sf._call_salesforce``.

    The same requests ``sf.query`` / ``sf.query_more`` make (so the client's session and its
    refresh apply), decoded with the C JSON decoder into plain dicts instead of
    simple-salesforce's OrderedDicts. While one page is being converted the next one is
    already on its way (one request in flight at a time, in order).
    """

    def __init__(self, sf: Any, soql: str, include_deleted: bool, batch_size: Optional[int]) -> None:
        self.sf = sf
        self.headers = {"Sforce-Query-Options": f"batchSize={int(batch_size)}"} if batch_size else {}
        self.soql = soql
        self.include_deleted = include_deleted
        self._executor: Any = None
        self._pending: Any = None

    def _get(self, url: str, params: Optional[Dict[str, str]] = None) -> dict:
        kwargs: Dict[str, Any] = {}
        if params:
            kwargs["params"] = params
        if self.headers:
            kwargs["headers"] = dict(self.headers)
        call = getattr(self.sf, "_call_salesforce", None)
        if call is None:  # pragma: no cover - not a simple-salesforce client
            raise TypeError("query_df needs a simple_salesforce.Salesforce client (e.g. from connect_jwt())")
        resp = call("GET", url, name="query", **kwargs)
        return json.loads(resp.content)  # type: ignore[no-any-return]

    def first(self) -> dict:
        url = self.sf.base_url + ("queryAll/" if self.include_deleted else "query/")
        return self._get(url, {"q": self.soql})

    def more_url(self, next_records_url: str) -> str:
        return f"https://{self.sf.sf_instance}{next_records_url}"

    def prefetch(self, next_records_url: str) -> None:
        if self._executor is None:
            from concurrent.futures import ThreadPoolExecutor
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sfjwt-query-df")
        self._pending = self._executor.submit(self._get, self.more_url(next_records_url))

    def take(self) -> dict:
        pending, self._pending = self._pending, None
        return pending.result()  # type: ignore[no-any-return]

    def close(self) -> None:
        if self._executor is not None:
            if self._pending is not None:
                self._pending.cancel()
            self._executor.shutdown(wait=True)
            self._executor = None
        self._pending = None

    def iterate(self, page: dict) -> Iterator[dict]:
        """Yield ``page`` and every following page (prefetching one ahead)."""
        try:
            while True:
                if not page.get("done", True) and page.get("nextRecordsUrl"):
                    self.prefetch(page["nextRecordsUrl"])
                    yield page
                    page = self.take()
                else:
                    yield page
                    return
        finally:
            self.close()

    def child_records(self, sub: Optional[dict]) -> List[dict]:
        """All records of a child subquery's result (following its own nextRecordsUrl)."""
        if not sub:
            return []
        records = list(sub.get("records") or [])
        while not sub.get("done", True) and sub.get("nextRecordsUrl"):
            sub = self._get(self.more_url(sub["nextRecordsUrl"]))
            records.extend(sub.get("records") or [])
        return [_strip_attributes(r) for r in records]


# --------------------------------------------------------------------------- conversion


def _infer_type(values: Sequence[Any]) -> Optional[str]:
    kinds = set()
    for v in values:
        if v is None:
            continue
        kinds.add(type(v))
        if len(kinds) > 2:
            break
    if not kinds:
        return None
    if kinds == {bool}:
        return "boolean"
    if kinds == {int}:
        return "int"
    if kinds <= {int, float}:
        return "double"
    if kinds == {str}:
        return "string"
    return "anytype"


def _object_array(pd: Any, values: Sequence[Any]) -> Any:
    import numpy as np

    arr = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):
        arr[i] = v
    return arr


def _to_datetime(pd: Any, values: Any, utc: bool) -> Any:
    try:
        out = pd.to_datetime(values, format="ISO8601", utc=utc)
    except (TypeError, ValueError):  # pandas < 2.0 has no format="ISO8601"
        out = pd.to_datetime(values, utc=utc)
    target = "datetime64[ns, UTC]" if utc else "datetime64[ns]"
    try:
        return pd.Series(out).astype(target).array
    except (ValueError, OverflowError, TypeError):  # beyond ns range (year > 2262): keep pandas' unit
        return pd.Series(out).array


def _string_array(pd: Any, values: Sequence[Any]) -> Any:
    try:
        return pd.array(values, dtype="string")
    except (TypeError, ValueError):
        return pd.array([None if v is None else (v if isinstance(v, str) else json.dumps(v) if isinstance(v, (dict, list))
                                                 else str(v)) for v in values], dtype="string")


def _convert(pd: Any, values: List[Any], sftype: Optional[str], kind: str) -> Any:
    """A typed pandas array for a list of JSON values."""
    if kind == "child":
        return _object_array(pd, values)
    t = sftype if sftype is not None else _infer_type(values)
    try:
        if t in _INT_TYPES:
            try:
                return pd.array(values, dtype="Int64")
            except (TypeError, ValueError):
                return pd.array(values, dtype="Float64")
        if t in _FLOAT_TYPES:
            return pd.array(values, dtype="Float64")
        if t == "boolean":
            return pd.array(values, dtype="boolean")
        if t == "date":
            return _to_datetime(pd, values, utc=False)
        if t == "datetime":
            return _to_datetime(pd, values, utc=True)
        if t in _OBJECT_TYPES:
            return _object_array(pd, values)
    except (TypeError, ValueError) as exc:
        logger.debug("could not convert to %s (%s); keeping strings", t, exc)
    return _string_array(pd, values)


def _convert_strings(pd: Any, series: Any, sftype: Optional[str]) -> Any:
    """A typed pandas array for a column of CSV strings (Bulk 2.0), matching :func:`_convert`."""
    t = sftype
    try:
        if t in _INT_TYPES:
            floats = series.astype("Float64")
            try:
                return floats.astype("Int64").array
            except (TypeError, ValueError):
                return floats.array
        if t in _FLOAT_TYPES:
            return series.astype("Float64").array
        if t == "boolean":
            return series.str.lower().map({"true": True, "false": False, "1": True, "0": False}).astype("boolean").array
        if t == "date":
            return _to_datetime(pd, series, utc=False)
        if t == "datetime":
            return _to_datetime(pd, series, utc=True)
    except (TypeError, ValueError) as exc:
        logger.debug("could not convert bulk column to %s (%s); keeping strings", t, exc)
    return series.astype("string").array


def _frame(pd: Any, columns: List[_Column]) -> Any:
    data = {col.name: _convert(pd, col.values, col.sftype, col.kind) for col in columns}
    for col in columns:
        col.values = []
    if not data:
        return pd.DataFrame()
    return pd.DataFrame(data)


# --------------------------------------------------------------------------- columns=true


def _flatten_column_metadata(entries: Sequence[dict], prefix: str = "") -> List[str]:
    names: List[str] = []
    for entry in entries or []:
        name = entry.get("columnName") or entry.get("displayName") or ""
        joins = entry.get("joinColumns") or []
        if joins and not _is_child_column(entry):
            names.extend(_flatten_column_metadata(joins, prefix + name + "."))
        else:
            names.append(prefix + name)
    return names


def _is_child_column(entry: dict) -> bool:
    # a child subquery's metadata carries its columns under joinColumns, like a parent
    # relationship does; Salesforce tells them apart with "aggregate": true
    return bool(entry.get("aggregate")) and bool(entry.get("joinColumns"))


def _column_metadata(sf: Any, soql: str, include_deleted: bool = False) -> dict:
    """The query endpoint's ``columns=true`` answer: column metadata, no records."""
    url = sf.base_url + ("queryAll/" if include_deleted else "query/")
    resp = sf._call_salesforce("GET", url, name="query", params={"q": soql, "columns": "true"})
    return json.loads(resp.content)  # type: ignore[no-any-return]


def _columns_from_metadata(sf: Any, soql: str, include_deleted: bool = False) -> List[str]:
    """Column names (parents flattened to ``Account.Name``) from ``columns=true`` metadata."""
    return _flatten_column_metadata(_column_metadata(sf, soql, include_deleted).get("columnMetadata") or [])


# --------------------------------------------------------------------------- REST path


def _dynamic_rows(pages: _Pages, page_iter: Iterator[dict], known: List[str], bar: _Progress) -> Dict[str, List[Any]]:
    """Columns discovered from the records themselves (FIELDS(), TYPEOF, unreadable SELECT)."""
    cols: Dict[str, List[Any]] = {name: [] for name in known}
    n = 0

    def flatten(rec: dict, prefix: str, row: Dict[str, Any]) -> None:
        for k, v in rec.items():
            if k == "attributes":
                continue
            name = prefix + k
            if isinstance(v, dict) and "records" in v and "totalSize" in v:
                row[name] = pages.child_records(v)
            elif isinstance(v, dict) and "attributes" in v:
                flatten(v, name + ".", row)
            elif v is None and any(c.startswith(name + ".") for c in cols):
                continue  # a null parent: its known sub-columns stay null
            else:
                row[name] = v

    for page in page_iter:
        records = page.get("records") or []
        for rec in records:
            row: Dict[str, Any] = {}
            flatten(rec, "", row)
            for name, value in row.items():
                col = cols.get(name)
                if col is None:
                    col = cols[name] = [None] * n
                col.append(value)
            n += 1
            for col in cols.values():
                if len(col) < n:
                    col.append(None)
        bar.update(len(records))
    return cols


def _rest(pd: Any, sf: Any, soql: str, q: Optional[SelectQuery], describer: _Describer, pages: _Pages,
          first: dict, progress: Optional[bool]) -> Any:
    total = first.get("totalSize")
    if q is not None and q.is_count:
        return pd.DataFrame({q.items[0].name: pd.array([int(total or 0)], dtype="Int64")})
    show = progress is True or (progress is None and not first.get("done", True))
    bar = _Progress(show, progress is True, total if isinstance(total, int) else None, "rows", "query_df")
    try:
        if q is None or q.dynamic:
            return _rest_dynamic(pd, sf, soql, q, describer, pages, first, bar)
        columns = _plan(describer, q)
        child_cols = [c for c in columns if c.kind == "child"]
        value_cols = [c for c in columns if c.kind != "child"]
        nested_pending = [c for c in value_cols if len(c.keys) > 1]
        for page in pages.iterate(first):
            records = page.get("records") or []
            if records:
                if not all(c.resolved for c in columns):
                    _resolve_top_level(columns, records[0])
                if nested_pending:
                    nested_pending = [c for c in nested_pending if not _resolve_nested(c, records)]
                for c in value_cols:
                    c.values.extend(_extract(records, c.keys))
                for c in child_cols:
                    key = c.keys[0]
                    c.values.extend(pages.child_records(r.get(key)) for r in records)
            bar.update(len(records))
        return _frame(pd, columns)
    finally:
        pages.close()
        bar.close()


def _rest_dynamic(pd: Any, sf: Any, soql: str, q: Optional[SelectQuery], describer: _Describer,
                  pages: _Pages, first: dict, bar: _Progress) -> Any:
    known: List[str] = []
    entity: Optional[str] = None
    try:
        meta = _column_metadata(sf, soql, pages.include_deleted)
        known = _flatten_column_metadata(meta.get("columnMetadata") or [])
        entity = meta.get("entityName")
    except Exception as exc:  # the metadata is a nicety: the records still name their columns
        logger.debug("columns=true metadata unavailable: %s", exc)
    cols = _dynamic_rows(pages, pages.iterate(first), known, bar)
    sobject = q.sobject if q is not None else entity or \
        ((first.get("records") or [{}])[0].get("attributes") or {}).get("type")
    data = {}
    for name, values in cols.items():
        sftype = None
        kind = "value"
        if values and any(isinstance(v, list) for v in values[:50]):
            kind = "child"
        elif sobject:
            _, sftype = describer.resolve(sobject, name.split("."))
        data[name] = _convert(pd, values, sftype, kind)
    return pd.DataFrame(data) if data else pd.DataFrame()


# --------------------------------------------------------------------------- Bulk 2.0 path


def _bulk_refusal(q: Optional[SelectQuery], columns: Optional[List[_Column]] = None) -> Optional[str]:
    """Why Bulk API 2.0 cannot run this query (None: it can)."""
    if q is None:
        return "its SELECT list could not be read"
    if q.is_count or q.is_aggregate:
        return "Bulk API 2.0 does not run aggregate queries (COUNT(), SUM(), GROUP BY ...)"
    if q.has_subquery:
        return "Bulk API 2.0 does not run child subqueries (SELECT ..., (SELECT ... FROM Children))"
    if q.dynamic:
        return "Bulk API 2.0 does not run FIELDS() or TYPEOF"
    if q.offset is not None:
        return "Bulk API 2.0 does not support OFFSET"
    for col in columns or []:
        if col.sftype in _COMPOUND_TYPES:
            return f"Bulk API 2.0 does not return compound fields ({col.name} is an {col.sftype}); select its parts"
    return None


def _read_part(pd: Any, path: str, engine: Optional[str]) -> Any:
    kwargs: Dict[str, Any] = {"dtype": "string", "keep_default_na": False, "na_values": [""]}
    if engine:
        kwargs["engine"] = engine
    try:
        return pd.read_csv(path, **kwargs)
    except pd.errors.EmptyDataError:
        return None


def _bulk(pd: Any, sf: Any, soql: str, q: SelectQuery, columns: List[_Column], include_deleted: bool,
          progress: Optional[bool]) -> Any:
    from simple_salesforce.bulk2 import Operation

    handler = getattr(sf.bulk2, q.sobject)
    client = handler._client
    operation = Operation.query_all if include_deleted else Operation.query

    def fresh_headers() -> None:
        # the handler snapshots the token: give it the current one before each call, so a
        # refreshed session is not met by one 401 per request
        session_id = getattr(sf, "session_id", None)
        if session_id:
            client.headers["Authorization"] = "Bearer " + session_id

    engine = "pyarrow" if _has_pyarrow() else None
    parts: List[Any] = []
    bar: Optional[_Progress] = None
    with tempfile.TemporaryDirectory(prefix="sfjwt-bulk-") as folder:
        fresh_headers()
        job = client.create_job(operation, soql)
        job_id = job["id"]
        try:
            fresh_headers()
            client.wait_for_job(job_id, True, BULK_POLL_SECONDS)
            fresh_headers()
            info = client.get_job(job_id, True)
            total = info.get("numberRecordsProcessed")
            total = int(total) if isinstance(total, (int, float)) else None
            # progress=None: a bar only once a second part is coming (like the REST path's
            # "more than one page"); True: from the start; False: never
            if progress is True:
                bar = _Progress(True, True, total, "rows", "query_df bulk")
            locator = ""
            while True:
                fresh_headers()
                result = client.download_job_data(folder, job_id, locator, BULK_PART_RECORDS, chunk_size=1 << 16)
                try:
                    part = _read_part(pd, result["file"], engine)
                finally:
                    os.remove(result["file"])
                if part is not None and len(part.columns):
                    parts.append(part)
                done = int(result.get("number_of_records") or 0)
                locator = result.get("locator") or ""
                if bar is None and progress is None and locator:
                    bar = _Progress(True, False, total, "rows", "query_df bulk")
                if bar is not None:
                    bar.update(done)
                if not locator:
                    break
        finally:
            if bar is not None:
                bar.close()
            try:
                fresh_headers()
                client.delete_job(job_id, True)
            except Exception as exc:  # results expire on their own; deleting is a courtesy
                logger.debug("could not delete Bulk 2.0 job %s: %s", job_id, exc)
    raw = pd.concat(parts, ignore_index=True) if len(parts) > 1 else (parts[0] if parts else pd.DataFrame())
    by_name = {str(c).lower(): c for c in raw.columns}
    n = len(raw)
    data = {}
    for col in columns:
        source = next((by_name[k] for k in col.csv_names if k in by_name), None)
        if source is None:
            series = pd.Series([None] * n, dtype="string")
        else:
            series = raw[source]
        data[col.name] = _convert_strings(pd, series, col.sftype)
    return pd.DataFrame(data)


# --------------------------------------------------------------------------- public


def query_df(sf: Any, soql: str, *, include_deleted: bool = False, progress: Optional[bool] = None,
             bulk: Any = "auto", batch_size: Optional[int] = None) -> Any:
    """Run ``soql`` and return a :class:`pandas.DataFrame` (see the module docstring).

    :param sf: a :class:`simple_salesforce.Salesforce` client, e.g. from ``connect_jwt()``.
    :param include_deleted: query deleted and archived records too (``queryAll``).
    :param progress: ``None`` shows a tqdm bar when there is more than one page (or Bulk
        part), ``True`` always, ``False`` never.
    :param bulk: ``"auto"`` (Bulk API 2.0 above :data:`BULK_AUTO_THRESHOLD` rows when the
        query allows it), ``True`` (always Bulk 2.0; :class:`BulkQueryNotSupported` when it
        cannot) or ``False`` (always the REST query API).
    :param batch_size: REST page size to ask for (``Sforce-Query-Options: batchSize=``,
        200-2000; Salesforce treats it as a hint).
    """
    pd = _pandas()
    if bulk not in (True, False, "auto"):
        raise ValueError(f"bulk must be True, False or 'auto', not {bulk!r}")
    if progress not in (None, True, False):
        raise ValueError(f"progress must be None, True or False, not {progress!r}")
    if not isinstance(soql, str) or not soql.strip():
        raise ValueError("soql must be a non-empty SOQL query string")
    try:
        q: Optional[SelectQuery] = parse_select(soql)
    except SoqlParseError as exc:
        logger.debug("SELECT list not understood (%s): columns will come from the records", exc)
        q = None
    describer = _Describer(sf)
    if bulk is True:
        reason = _bulk_refusal(q)
        columns = _plan(describer, q) if reason is None and q is not None else []
        reason = reason or _bulk_refusal(q, columns)
        if reason is not None:
            raise BulkQueryNotSupported(f"bulk=True cannot run this query: {reason}. Use bulk=False (REST) "
                                        f"or bulk='auto'.")
        assert q is not None
        return _bulk(pd, sf, soql, q, columns, include_deleted, progress)
    if bulk == "auto" and q is not None and _bulk_refusal(q) is None:
        estimate = _count_estimate(sf, q, include_deleted)
        if estimate is not None and estimate > BULK_AUTO_THRESHOLD:
            columns = _plan(describer, q)
            if _bulk_refusal(q, columns) is None:
                logger.info("query_df: COUNT() estimate %d rows > BULK_AUTO_THRESHOLD=%d, using Bulk API 2.0",
                            estimate, BULK_AUTO_THRESHOLD)
                return _bulk(pd, sf, soql, q, columns, include_deleted, progress)
    pages = _Pages(sf, soql, include_deleted, batch_size)
    first = pages.first()
    return _rest(pd, sf, soql, q, describer, pages, first, progress)


def _count_estimate(sf: Any, q: SelectQuery, include_deleted: bool) -> Optional[int]:
    """Rows ``q`` will return, from ``SELECT COUNT() FROM <object> [WHERE ...]`` capped by
    its LIMIT; ``None`` when the count itself fails (the REST path then decides)."""
    count_soql = f"SELECT COUNT() FROM {q.sobject}" + (f" {q.alias}" if q.alias else "")
    if q.where:
        count_soql += f" WHERE {q.where}"
    try:
        total = sf.query(count_soql, include_deleted=include_deleted).get("totalSize")
    except Exception as exc:  # a COUNT() that times out on a huge table must not stop the query
        logger.debug("query_df: COUNT() estimate failed (%s); staying on REST", type(exc).__name__)
        return None
    if not isinstance(total, int):
        return None
    return min(total, q.limit) if q.limit is not None else total
