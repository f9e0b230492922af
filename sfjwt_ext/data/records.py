"""The record engine: Salesforce JSON records -> named, typed columns, in one place.

Used by :func:`~sfjwt_ext.data.dataframe.query_df`, :func:`~sfjwt_ext.data.dataframe.query_arrow`,
:func:`~sfjwt_ext.data.dataframe.query_to_parquet` and the writers of ``sfjwt query``
(:class:`sfjwt_ext.cli.rows.RowPlan`: the same plan as rows of values).

* :class:`Describer` describes each object once per client (cached for the client's lifetime,
  :func:`describe_cache`) and resolves a dotted field path (``account.owner.name``)
  to the API's spelling and the leaf's describe type.
* :func:`plan_columns` turns a parsed SELECT list into :class:`Column` objects in SELECT
  order: parent fields flattened to ``Account.Name``, aggregates named by alias or
  ``expr0``..., their types (COUNT -> int, SUM/AVG -> double, MIN/MAX -> the field's).
  The grouped-parent-field quirk (``GROUP BY Account.Name`` comes back keyed ``"Name"``) is
  handled here, once, by the column's key candidates.
* :func:`resolve_top_level` / :func:`resolve_nested` fix each column's key path to the
  spelling the records use; :func:`extract` pulls one column's values out of a page.
* :func:`flatten` flattens one record (``attributes`` dropped) when
  the columns can only be learnt from the records (``FIELDS()``, ``TYPEOF``).
* :func:`flatten_column_metadata` / :func:`column_metadata`: the ``columns=true`` answer.
* :class:`QueryPages`: the REST pages of a query, the next one requested while the caller
  works on the current one (``query_df`` and friends, ``sfjwt query``).

Nothing here imports pandas or pyarrow: values stay JSON values; typing them into arrays
is the caller's job, by :attr:`Column.sftype` (see :data:`INT_TYPES` and friends).
"""
from __future__ import annotations

import json
import logging
import threading
import weakref
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, Collection, Dict, Iterator, List, Optional, Sequence, Set, Tuple

import requests
from simple_salesforce.util import exception_handler

from .soql_select import DATE_FUNCTIONS, SelectItem, SelectQuery

__all__ = [
    "INT_TYPES", "FLOAT_TYPES", "OBJECT_TYPES", "COMPOUND_TYPES", "TIME_UNIT", "DATE_DTYPE", "DATETIME_DTYPE",
    "temporal_dtype", "describe_cache", "Describer", "Column", "plan_columns",
    "resolve_top_level", "resolve_nested", "extract", "strip_attributes", "flatten",
    "flatten_column_metadata", "column_metadata",
    "QueryPages", "api_request", "api_url",
]

logger = logging.getLogger("sfjwt_ext.records")

INT_TYPES = frozenset({"int", "long"})
FLOAT_TYPES = frozenset({"double", "currency", "percent"})
OBJECT_TYPES = frozenset({"address", "location", "anytype", "complexvalue", "json"})
COMPOUND_TYPES = frozenset({"address", "location"})
#: Salesforce takes dates and datetimes from 1700-01-01 to 4000-12-31 (a common "no end
#: date"); nanoseconds, pandas' old unit, end at 2262-04-11. Every output types a date or
#: datetime column (by describe, whatever its values) in microseconds: pandas
#: :data:`DATE_DTYPE` / :data:`DATETIME_DTYPE`, Arrow and Parquet ``timestamp[us]`` /
#: ``timestamp[us, tz=UTC]``. Microseconds are pandas 3's own unit for parsed text, hold
#: +-290,000 years, keep Salesforce's milliseconds, and survive a Parquet round trip
#: (seconds would come back as milliseconds).
TIME_UNIT = "us"
DATE_DTYPE = f"datetime64[{TIME_UNIT}]"
DATETIME_DTYPE = f"datetime64[{TIME_UNIT}, UTC]"
#: The type of a function's result (MIN / MAX: their field's; FORMAT(SUM(x)) and such: the outer one's).
_FUNCTION_TYPES = {**dict.fromkeys(DATE_FUNCTIONS | {"COUNT", "COUNT_DISTINCT", "GROUPING"}, "int"),
                   "DAY_ONLY": "date", "SUM": "double", "AVG": "double", "CONVERTCURRENCY": "currency",
                   "FORMAT": "string", "TOLABEL": "string"}


def temporal_dtype(sftype: Optional[str]) -> Optional[str]:
    """The pandas dtype of a ``date`` / ``datetime`` column (``None`` for other types)."""
    return {"date": DATE_DTYPE, "datetime": DATETIME_DTYPE}.get(sftype or "")


# --------------------------------------------------------------------------- describe

#: Each client's describes by lower-case object name, kept while the client lives. Threads
#: querying with one client share its dict (a dict item is set atomically); the lock makes
#: the dict of a client seen for the first time one dict.
_DESCRIBES: "weakref.WeakKeyDictionary[Any, Dict[str, Any]]" = weakref.WeakKeyDictionary()
_DESCRIBES_LOCK = threading.Lock()


#: An object's describe fields by name, by relationship name, and its child relationships by
#: name (all lower case).
_Index = Tuple[Dict[str, Dict[str, Any]], Dict[str, Dict[str, Any]], Dict[str, Dict[str, Any]]]


def describe_cache(sf: Any) -> Dict[str, Any]:
    """The describes cached for the client ``sf`` (its first query makes the dict)."""
    with _DESCRIBES_LOCK:
        return _DESCRIBES.setdefault(sf, {})


class Describer:
    """Describes objects once per client and answers type / canonical-name questions."""

    def __init__(self, sf: Any) -> None:
        """``sf``: the client whose describe calls (and cache) to use; ``None`` describes
        nothing (names and keys as the query writes them)."""
        self.sf = sf
        self.cache: Dict[str, Any] = describe_cache(sf) if sf is not None else {}
        self.failed: Set[str] = set()  # not cached on the client: the next query asks again
        self.indexes: Dict[str, _Index] = {}

    def describe(self, sobject: str) -> Optional[Dict[str, Any]]:
        key = sobject.lower()
        # sf None: a plan from the SELECT list alone (the CLI's rows)
        if self.sf is not None and key not in self.cache and key not in self.failed:
            try:
                self.cache[key] = getattr(self.sf, sobject).describe()
            except Exception as exc:  # any API error: fall back to types inferred from the values
                logger.debug("describe(%s) failed: %s; inferring types from values", sobject, exc)
                self.failed.add(key)
        return self.cache.get(key)

    def index(self, sobject: str) -> Optional[_Index]:
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

    def _lookup(self, sobject: str, part: str, leaf: bool) -> Optional[Dict[str, Any]]:
        """The describe field ``part`` names on ``sobject``: a leaf by its field name, a parent
        by its relationship name (or a reference field's own name: Account__c for Account__r)."""
        idx = self.index(sobject)
        if idx is None:
            return None
        field = idx[0].get(part.lower())
        if leaf:
            return field
        return idx[1].get(part.lower()) or (field if field is not None and field.get("referenceTo") else None)

    def resolve(self, sobject: str, path: Sequence[str]) -> Tuple[Tuple[str, ...], Optional[str]]:
        """(canonical key path, describe type of the leaf or None) for a dotted field path; a
        polymorphic parent (several ``referenceTo``) is looked up in each object in turn."""
        keys: List[str] = []
        objects = [sobject]
        for i, part in enumerate(path):
            leaf = i == len(path) - 1
            found = next(filter(None, (self._lookup(obj, part, leaf) for obj in objects)), None)
            if found is None:
                return tuple(keys) + tuple(path[i:]), None
            if leaf:
                return tuple(keys) + (found["name"],), str(found.get("type") or "").lower() or None
            keys.append(found.get("relationshipName") or part)
            objects = list(found.get("referenceTo") or [])
            if not objects:
                return tuple(keys) + tuple(path[i + 1:]), None
        return tuple(keys), None

    def child_relationship(self, sobject: str, name: str) -> Tuple[str, Optional[str]]:
        idx = self.index(sobject)
        if idx is not None:
            child = idx[2].get(name.lower())
            if child is not None:
                return child["relationshipName"], child.get("childSObject")
        return name, None


# --------------------------------------------------------------------------- column plan


class Column:
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


def _function_type(d: Describer, sobject: str, item: SelectItem) -> Optional[str]:
    func = item.func or ""
    if func in _FUNCTION_TYPES:
        return _FUNCTION_TYPES[func]
    if func in ("MIN", "MAX") and item.path:
        return d.resolve(sobject, item.path)[1]
    if item.inner:
        return _function_type(d, sobject, SelectItem("function", item.name, item.path, func=item.inner))
    return None


def plan_columns(d: Describer, q: SelectQuery) -> List[Column]:
    columns: Dict[str, Column] = {}  # by lower-case name: a column selected twice comes once
    aggregate = q.is_aggregate
    for item in q.items:
        if item.kind == "field":
            keys, sftype = d.resolve(q.sobject, item.path)
            if aggregate:
                # Salesforce keys a grouped parent field by its last name (Account.Name -> "Name")
                name = item.alias or ".".join(keys)
                col = Column(name, (item.alias,) if item.alias else (keys[-1],), sftype,
                              candidates=[keys, (".".join(keys),), (".".join(item.path),)])
            else:
                col = Column(".".join(keys), keys, sftype)
        elif item.kind == "function":
            sftype = _function_type(d, q.sobject, item)
            if not aggregate and item.path and not item.alias and item.name == ".".join(item.path):
                keys, _ = d.resolve(q.sobject, item.path)  # toLabel(x) / FORMAT(x): keyed by the field
                col = Column(".".join(keys), keys, sftype)
            else:
                col = Column(item.name, (item.name,), sftype)
        elif item.kind == "subquery":
            rel, _ = d.child_relationship(q.sobject, item.name)
            col = Column(rel, (rel,), None, kind="child")
        else:  # dynamic: the caller handles it
            continue
        columns.setdefault(col.name.lower(), col)
    return list(columns.values())


def resolve_top_level(columns: List[Column], record: Dict[str, Any]) -> None:
    """Pick each column's key path from the candidates, matching the record's keys (any case)."""
    for col in columns:
        if col.resolved:
            continue
        for cand in col.candidates:
            key = _spelled(record, cand[0])
            if key is not None:
                col.keys = (key,) + cand[1:]
                break
        col.resolved = True


def resolve_nested(col: Column, records: List[Dict[str, Any]]) -> bool:
    """Fix the case of a parent path's inner keys from a record that has the parent.

    True once a record with a non-null parent was seen (nothing more to learn).
    """
    for rec in records[:200]:
        value: Any = rec
        fixed: List[str] = []
        for key in col.keys[:-1]:
            spelled = _spelled(value, key) if isinstance(value, dict) else None
            if spelled is None:
                break
            fixed.append(spelled)
            value = value[spelled]
        else:
            if isinstance(value, dict):
                col.keys = tuple(fixed) + (_spelled(value, col.keys[-1]) or col.keys[-1],)
                return True
    return False


def _spelled(record: Dict[str, Any], key: str) -> Optional[str]:
    """``key`` as ``record`` spells it (SOQL names are not case-sensitive), or None."""
    if key in record:
        return key
    return next((k for k in record if k.lower() == key.lower()), None)


# --------------------------------------------------------------------------- value extraction


def strip_attributes(value: Any) -> Any:
    if isinstance(value, dict):
        if "records" in value and "totalSize" in value and "done" in value:
            return [strip_attributes(r) for r in value.get("records") or []]
        return {k: strip_attributes(v) for k, v in value.items() if k != "attributes"}
    if isinstance(value, list):
        return [strip_attributes(v) for v in value]
    return value


def extract(records: List[Dict[str, Any]], keys: Tuple[str, ...]) -> List[Any]:
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


# --------------------------------------------------------------------------- columns=true


def flatten_column_metadata(entries: Sequence[Dict[str, Any]], prefix: str = "") -> List[str]:
    names: List[str] = []
    for entry in entries or []:
        name = entry.get("columnName") or entry.get("displayName") or ""
        joins = entry.get("joinColumns") or []
        # a child subquery's metadata carries its columns under joinColumns, like a parent
        # relationship does; Salesforce tells them apart with "aggregate": true
        if joins and not entry.get("aggregate"):
            names.extend(flatten_column_metadata(joins, prefix + name + "."))
        else:
            names.append(prefix + name)
    return names


def api_url(sf: Any, path: str) -> str:
    """A URL the API answered with (``nextRecordsUrl``, ``resultUrl``: a path) made absolute."""
    return path if path.startswith("https://") else f"https://{sf.sf_instance}{path}"


def api_request(sf: Any, method: str, url: str, name: str = "", headers: Optional[Dict[str, str]] = None,
                **kwargs: Any) -> requests.Response:
    """Send a request as ``sf.query`` does, on simple-salesforce's public surface: the client's
    session (whose refresh applies) and headers, Salesforce's errors raised by
    ``simple_salesforce.util.exception_handler``, ``sf.api_usage`` kept up to date."""
    response: requests.Response = sf.session.request(method, url, headers={**sf.headers, **(headers or {})},
                                                     **kwargs)
    if response.status_code >= 300:
        exception_handler(response, name=name)
    limit_info = response.headers.get("Sforce-Limit-Info")
    if limit_info:
        sf.api_usage = sf.parse_api_usage(limit_info)
    return response


def column_metadata(sf: Any, soql: str, include_deleted: bool = False) -> Dict[str, Any]:
    """The query endpoint's ``columns=true`` answer: column metadata, no records."""
    url = sf.base_url + ("queryAll/" if include_deleted else "query/")
    resp = api_request(sf, "GET", url, "query", params={"q": soql, "columns": "true"})
    return json.loads(resp.content)  # type: ignore[no-any-return]


# --------------------------------------------------------------------------- fetching pages


class QueryPages:
    """REST query pages as plain dicts, one request ahead at most.

    The requests ``sf.query`` / ``sf.query_more`` make, through :func:`api_request` (so
    the client's session and its refresh apply), decoded with the C JSON decoder into plain
    dicts. :meth:`start` sends the first request in the background (the caller describes
    meanwhile); :meth:`iterate` asks for the next page as soon as a page is handed out, so
    the next round trip runs while the caller converts or writes the current page. One
    worker thread, one request in flight, in page order; :meth:`close` ends it.
    """

    def __init__(self, sf: Any, soql: str, include_deleted: bool = False, batch_size: Optional[int] = None) -> None:
        if not isinstance(getattr(sf, "session", None), requests.Session):
            raise TypeError("querying needs a simple_salesforce.Salesforce client (e.g. from connect_jwt())")
        self.sf = sf
        self.headers = {"Sforce-Query-Options": f"batchSize={int(batch_size)}"} if batch_size else {}
        self.query = (sf.base_url + ("queryAll/" if include_deleted else "query/"), {"q": soql})
        self._executor: Optional[ThreadPoolExecutor] = None
        self._pending: "Optional[Future[Dict[str, Any]]]" = None

    def _get(self, url: str, params: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
        resp = api_request(self.sf, "GET", url, "query", headers=self.headers, params=params)
        return json.loads(resp.content)  # type: ignore[no-any-return]

    def first(self) -> Dict[str, Any]:
        """The first page, fetched in the calling thread."""
        return self._get(*self.query)

    def start(self) -> None:
        """Send the first request in the background; :meth:`take` gives its page."""
        self._submit(*self.query)

    def more(self, next_records_url: str) -> Dict[str, Any]:
        """The page at ``nextRecordsUrl``, fetched in the calling thread."""
        return self._get(api_url(self.sf, next_records_url))

    def prefetch(self, next_records_url: str) -> None:
        """Ask for the page at ``nextRecordsUrl`` in the background."""
        self._submit(api_url(self.sf, next_records_url))

    def _submit(self, url: str, params: Optional[Dict[str, str]] = None) -> None:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sfjwt-query-pages")
        self._pending = self._executor.submit(self._get, url, params)

    def take(self) -> Dict[str, Any]:
        """The page asked for by :meth:`start` or :meth:`prefetch` (waits for it)."""
        pending, self._pending = self._pending, None
        assert pending is not None, "take() without start() or prefetch()"
        return pending.result()

    def close(self) -> None:
        """Drop a page asked for but not taken, and end the worker thread."""
        if self._executor is not None:
            if self._pending is not None:
                self._pending.cancel()
            self._executor.shutdown(wait=True)
            self._executor = None
        self._pending = None

    def iterate(self, page: Dict[str, Any]) -> Iterator[Dict[str, Any]]:
        """Yield ``page`` and every following page (the next one asked for before each is
        yielded); closes the worker at the end."""
        try:
            while not page.get("done", True) and page.get("nextRecordsUrl"):
                self.prefetch(page["nextRecordsUrl"])
                yield page
                page = self.take()
            yield page
        finally:
            self.close()

    def child_records(self, sub: Optional[Dict[str, Any]]) -> List[Dict[str, Any]]:
        """All records of a child subquery's result (following its own nextRecordsUrl)."""
        if not sub:
            return []
        records = list(sub.get("records") or [])
        while not sub.get("done", True) and sub.get("nextRecordsUrl"):
            sub = self.more(sub["nextRecordsUrl"])
            records.extend(sub.get("records") or [])
        return [strip_attributes(r) for r in records]



def flatten(record: Dict[str, Any], prefix: str = "", *,
            children: Optional[Callable[[Dict[str, Any]], List[Any]]] = None,
            known: Collection[str] = ()) -> Dict[str, Any]:
    """``{"Account": {"Name": "x"}}`` -> ``{"Account.Name": "x"}``; ``attributes`` dropped.

    A child subquery becomes a list: ``children(subquery_result)`` when given (query_df
    follows the child's own pages and keeps nested dicts), else its records flattened. A null
    parent stays ``None`` under its own name, unless ``known`` has columns under it
    (``Account.Name`` known, ``Account`` null): then it is left out, so those stay null.
    """
    out: Dict[str, Any] = {}
    for key, value in record.items():
        name = prefix + key
        if key == "attributes" or (value is None and known and any(c.startswith(name + ".") for c in known)):
            continue
        if isinstance(value, dict) and "records" in value and "totalSize" in value:
            out[name] = children(value) if children is not None else [flatten(r) for r in value.get("records") or []]
        elif isinstance(value, dict) and "attributes" in value:
            out.update(flatten(value, name + ".", children=children, known=known))
        else:
            out[name] = value
    return out
