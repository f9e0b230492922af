"""SOQL results as pandas DataFrames: :func:`query_df`.

``query_df(sf, soql)`` (also ``sf.query_df(soql)`` on a :class:`~sfjwt_ext.SalesforceJWT`)
runs a SOQL query with any :class:`simple_salesforce.Salesforce` client and returns a
:class:`pandas.DataFrame`:

* Columns come in the order of the SELECT list. ``attributes`` is dropped; parent
  relationships are flattened to ``Account.Name`` / ``Account.Owner.Name`` (a null parent
  gives nulls in those columns, never a missing column); a child subquery
  (``(SELECT ... FROM Contacts)``) becomes one column (named after the relationship) holding
  a list of records per row: plain dicts without ``attributes``, ``[]`` when there are none.
* Types come from the objects' describe (fetched once per object and client, and kept while
  the client lives: :func:`sfjwt_ext.data.records.describe_cache`): int -> ``Int64``; double / currency / percent ->
  ``Float64``; boolean -> ``boolean``; date -> ``datetime64[us]``; datetime ->
  ``datetime64[us, UTC]`` (microseconds: Salesforce's range, 1700-01-01 to 4000-12-31, in
  every output, whatever the values; see :data:`sfjwt_ext.data.records.TIME_UNIT`); compound address / location fields keep their dicts (object);
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
  are alive at a time, never the whole result twice. The next page is asked for while
  the current one is converted, and the describes run beside the first page's request.
  With more than one page a tqdm progress bar (``tqdm.auto``) shows the rows;
  ``progress=False`` hides it, ``True`` forces it.
* ``bulk=True`` runs a Bulk API 2.0 query job instead, downloads its CSV parts into a
  temporary directory (removed afterwards) and reads them with pandas (the pyarrow CSV
  engine when pyarrow is installed): same columns and dtypes as the REST path. The
  progress bar advances part by part, shown (``progress=None``) once a second part is coming.
  The job is deleted in the background afterwards (a failed DELETE is logged, not raised).
  ``bulk="auto"`` (the default) asks for the first REST page and switches to Bulk 2.0
  when its ``totalSize`` (the rows the query returns, its LIMIT included) is above
  :data:`BULK_AUTO_THRESHOLD` and the query is one Bulk 2.0 can run; the rest is then
  not fetched by REST.
  Bulk 2.0 cannot run aggregates, ``COUNT()``, child subqueries, ``FIELDS()``, ``TYPEOF``,
  ``OFFSET`` or compound (address / location) fields: ``"auto"`` stays on REST for those,
  ``bulk=True`` raises :class:`BulkQueryNotSupported` (a ``ValueError``).

pandas and tqdm are imported when a function runs, never when this module is imported.
"""
from __future__ import annotations

import contextlib
import csv
import functools
import json
import logging
import os
import re
import tempfile
import threading
import time
from concurrent.futures import Executor, Future
from urllib.parse import urlencode
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Literal, Optional, Sequence, Tuple, Union

from .._internal.backoff import backoff_delays
from .._internal.outfile import OutputFile
from .soql_select import SelectQuery, SoqlParseError, parse_select
from .records import (COMPOUND_TYPES, FLOAT_TYPES, INT_TYPES, OBJECT_TYPES, TIME_UNIT, Column, Describer, QueryPages,
                      api_request, api_url, extract, flatten, flatten_column_metadata, plan_columns, resolve_nested,
                      resolve_top_level, temporal_dtype)
from .records import column_metadata as _column_metadata  # a module name tests can patch

if TYPE_CHECKING:  # pragma: no cover  (pandas and pyarrow are imported when a function runs)
    import pandas
    import pyarrow

__all__ = [
    "BULK_AUTO_THRESHOLD", "BULK_PART_RECORDS", "BULK_PARALLEL", "STREAM_ROWS", "BulkQueryNotSupported",
    "query_df", "query_arrow", "query_to_parquet",
]

logger = logging.getLogger("sfjwt_ext.dataframe")

#: ``bulk="auto"`` uses Bulk API 2.0 when the first REST page's ``totalSize`` is above this
#: many rows. Below it the REST query API is faster: a Bulk job costs several round trips
#: and a polling delay.
BULK_AUTO_THRESHOLD = 200_000
#: ``maxRecords`` per Bulk 2.0 result part (one CSV file and one progress step per part).
BULK_PART_RECORDS = 50_000
#: First wait before polling a Bulk 2.0 job's state (simple-salesforce then backs off to 2 s).
BULK_POLL_SECONDS = 0.2
#: Bulk 2.0 result pages downloaded at once (``parallel=``) when the API has ``resultPages``.
BULK_PARALLEL = 4

#: ``bulk=``: ``False`` (REST), ``True`` (Bulk API 2.0) or ``"auto"`` (decided by the first page's totalSize)
BulkMode = Union[bool, Literal["auto"]]
#: ``query_to_parquet`` / ``query_arrow`` on REST: rows gathered before a frame is typed and
#: written (one Parquet row group).
STREAM_ROWS = 50_000

_PIP_HINT = "pip install 'sfjwt-ext[pandas]'"
_ARROW_HINT = "pip install 'sfjwt-ext[arrow]'"


class BulkQueryNotSupported(ValueError):
    """``bulk=True`` was asked for a query that Bulk API 2.0 cannot run."""


# --------------------------------------------------------------------------- imports


def _pandas() -> Any:
    try:
        import pandas
    except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
        raise ImportError(f"query_df needs pandas: {_PIP_HINT}") from exc
    return pandas


def _has_pyarrow() -> bool:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return False
    return True


class _Progress:
    """A tqdm bar counting rows, or nothing (not shown, or tqdm missing and not ``required``)."""

    def __init__(self, show: bool, required: bool, total: Optional[int], desc: str) -> None:
        import warnings

        self.bar: Any = None
        if not show:
            return
        try:
            with warnings.catch_warnings():
                # in a notebook without ipywidgets tqdm.auto warns, then falls back to text bars
                warnings.filterwarnings("ignore", message=".*IProgress not found.*")
                from tqdm.auto import tqdm
        except ImportError as exc:
            if required:
                raise ImportError(f"progress=True needs tqdm: {_PIP_HINT}") from exc
            return
        self.bar = tqdm(total=total, unit="rows", desc=desc, leave=False)

    def update(self, n: int) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# --------------------------------------------------------------------------- conversion

#: The type of a column describe could not type, from the Python types of its non-null values.
_INFERRED_TYPES = {frozenset({bool}): "boolean", frozenset({int}): "int", frozenset({float}): "double",
                   frozenset({int, float}): "double", frozenset({str}): "string"}


def _infer_type(values: Sequence[Any]) -> Optional[str]:
    kinds = frozenset(type(v) for v in values if v is not None)
    return _INFERRED_TYPES.get(kinds, "anytype") if kinds else None


def _object_array(values: Sequence[Any]) -> Any:
    import numpy as np

    arr = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):  # one by one: a list value stays one element
        arr[i] = v
    return arr


def _to_datetime(pd: Any, values: Any, sftype: str) -> Any:
    """A date / datetime column typed :func:`~sfjwt_ext.data.records.temporal_dtype` (microseconds,
    datetimes in UTC), whatever its values: Salesforce's whole range, 1700 to 4000, fits."""
    utc = sftype == "datetime"
    try:
        out = pd.to_datetime(values, format="ISO8601", utc=utc)
    except pd.errors.OutOfBoundsDatetime:  # pandas 2 parses text in nanoseconds (up to 2262-04-11)
        out = pd.Series(_wide_datetimes(values))
        if utc:
            out = out.dt.tz_localize("UTC")
    return pd.Series(out).astype(temporal_dtype(sftype)).array


#: Salesforce's date / datetime text: ``2024-01-05``, ``2024-01-05T10:30:00.000+0000`` (REST),
#: ``...000Z`` (Bulk); other ISO 8601 offsets too.
_ISO_DATETIME = re.compile(r"(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)(Z|[+-]\d{2}:?\d{2})?)?")


def _wide_datetimes(values: Any) -> Any:
    """ISO 8601 text -> a numpy ``datetime64[us]`` array in UTC (nulls NaT), for the dates
    pandas 2's nanosecond parser cannot hold; ``ValueError`` for text that is not a date."""
    import numpy as np

    out = np.full(len(values), np.datetime64("NaT"), dtype=f"datetime64[{TIME_UNIT}]")
    for i, text in enumerate(values):
        if not isinstance(text, str):  # None, NaN, pd.NA
            continue
        match = _ISO_DATETIME.fullmatch(text.strip())
        if match is None:
            raise ValueError(f"not an ISO 8601 date or datetime: {text!r}")
        day, clock, zone = match.groups()
        value = np.datetime64(day + ("T" + clock if clock else ""), TIME_UNIT)  # type: ignore[call-overload]
        if zone and zone != "Z":
            minutes = int(zone[1:3]) * 60 + int(zone[-2:])
            value -= np.timedelta64(minutes if zone[0] == "+" else -minutes, "m")
        out[i] = value
    return out


def _string_array(pd: Any, values: Sequence[Any]) -> Any:
    try:
        return pd.array(values, dtype="string")
    except (TypeError, ValueError):
        return pd.array([None if v is None else (v if isinstance(v, str) else json.dumps(v) if isinstance(v, (dict, list))
                                                 else str(v)) for v in values], dtype="string")


#: The pandas dtype of a describe type's numbers and booleans (an int that does not fit, or is
#: not whole, makes its column Float64); the Bulk 2.0 CSV spelling of booleans.
_DTYPES = {**dict.fromkeys(INT_TYPES, "Int64"), **dict.fromkeys(FLOAT_TYPES, "Float64"), "boolean": "boolean"}
_CSV_BOOLEANS = {"true": True, "false": False, "1": True, "0": False}


def _convert(pd: Any, values: Any, sftype: Optional[str], kind: str = "value", text: bool = False) -> Any:
    """A typed pandas array for a list of JSON values (REST), or with ``text`` for a Series
    of CSV strings (Bulk 2.0): the same dtypes either way; strings when the values do not fit."""
    if kind == "child":
        return _object_array(values)
    t = sftype if sftype is not None or text else _infer_type(values)
    try:
        if t in _DTYPES:
            parsed = values
            if text:  # CSV strings to numbers or booleans first
                parsed = values.str.lower().map(_CSV_BOOLEANS) if t == "boolean" else values.astype("Float64")
            try:
                return parsed.astype(_DTYPES[t]).array if text else pd.array(parsed, dtype=_DTYPES[t])
            except (TypeError, ValueError):
                if t not in INT_TYPES:
                    raise
                return pd.array(parsed, dtype="Float64")
        if t in ("date", "datetime"):
            return _to_datetime(pd, values, t)
        if t in OBJECT_TYPES and not text:
            return _object_array(values)
    except (TypeError, ValueError) as exc:
        logger.debug("could not convert to %s (%s); keeping strings", t, exc)
    return values.astype("string").array if text else _string_array(pd, values)


def _frame(pd: Any, columns: List[Column]) -> Any:
    data = {col.name: _convert(pd, col.values, col.sftype, col.kind) for col in columns}
    for col in columns:
        col.values = []
    return pd.DataFrame(data)


def _typed(pd: Any, raw: Any, columns: List[Column]) -> Any:
    """The query's columns, typed, from a frame of CSV strings."""
    by_name = {str(c).lower(): c for c in raw.columns}
    data = {}
    for col in columns:
        source = next((by_name[k] for k in col.csv_names if k in by_name), None)
        series = pd.Series([None] * len(raw), dtype="string") if source is None else raw[source]
        data[col.name] = _convert(pd, series, col.sftype, text=True)
    return pd.DataFrame(data)


# --------------------------------------------------------------------------- REST path


def _rest_frames(pd: Any, route: "_Route", progress: Optional[bool], flush_rows: Optional[int],
                 desc: str) -> Iterator[Any]:
    """Typed frames of the REST result: one in all (``flush_rows=None``), or one per
    ``flush_rows`` rows or more (whole pages), the last one possibly shorter; always at
    least one (an empty result gives an empty, typed frame)."""
    pages, first, q, columns = route.pages, route.first, route.q, route.columns
    assert pages is not None and first is not None
    total = first.get("totalSize")
    if q is not None and q.is_count:
        pages.close()
        yield pd.DataFrame({q.items[0].name: pd.array([int(total or 0)], dtype="Int64")})
        return
    show = progress is True or (progress is None and not first.get("done", True))
    bar = _Progress(show, progress is True, total if isinstance(total, int) else None, desc)
    try:
        if q is None or q.dynamic:
            yield _rest_dynamic(pd, route, bar)
            return
        nested_pending = [c for c in columns if c.kind != "child" and len(c.keys) > 1]
        yielded = False
        for page in pages.iterate(first):
            records = page.get("records") or []
            if records:
                resolve_top_level(columns, records[0])
                nested_pending = [c for c in nested_pending if not resolve_nested(c, records)]
                for c in columns:
                    if c.kind == "child":
                        c.values.extend(pages.child_records(r.get(c.keys[0])) for r in records)
                    else:
                        c.values.extend(extract(records, c.keys))
            bar.update(len(records))
            if flush_rows is not None and len(columns[0].values) >= flush_rows:  # rows gathered
                yielded = True
                yield _frame(pd, columns)
        if columns[0].values or not yielded:
            yield _frame(pd, columns)
    finally:
        pages.close()
        bar.close()


def _rest_dynamic(pd: Any, route: "_Route", bar: _Progress) -> Any:
    """One frame whose columns come from the records themselves (FIELDS(), TYPEOF, a SELECT
    list not understood), typed by describe where the object is known."""
    pages, first, q = route.pages, route.first, route.q
    assert pages is not None and first is not None
    cols: Dict[str, List[Any]] = {name: [] for name in route.known}
    n = 0
    for page in pages.iterate(first):
        records = page.get("records") or []
        for rec in records:
            for name, value in flatten(rec, children=pages.child_records, known=cols).items():
                col = cols.get(name)
                if col is None:
                    col = cols[name] = [None] * n
                col.append(value)
            n += 1
            for col in cols.values():
                if len(col) < n:
                    col.append(None)
        bar.update(len(records))
    sobject = q.sobject if q is not None else route.entity or \
        ((first.get("records") or [{}])[0].get("attributes") or {}).get("type")
    data = {}
    for name, values in cols.items():
        child = any(isinstance(v, list) for v in values[:50])
        sftype = route.describer.resolve(sobject, name.split("."))[1] if sobject and not child else None
        data[name] = _convert(pd, values, sftype, "child" if child else "value")
    return pd.DataFrame(data)


# --------------------------------------------------------------------------- Bulk 2.0 path


def _bulk_refusal(q: Optional[SelectQuery], columns: Optional[List[Column]] = None) -> Optional[str]:
    """Why Bulk API 2.0 cannot run this query (None: it can)."""
    if q is None:
        return "its SELECT list could not be read"
    refusals = [
        (q.is_count or q.is_aggregate, "Bulk API 2.0 does not run aggregate queries (COUNT(), SUM(), GROUP BY ...)"),
        (q.has_subquery, "Bulk API 2.0 does not run child subqueries (SELECT ..., (SELECT ... FROM Children))"),
        (q.dynamic, "Bulk API 2.0 does not run FIELDS() or TYPEOF"),
        (q.offset is not None, "Bulk API 2.0 does not support OFFSET"),
        *[(True, f"Bulk API 2.0 does not return compound fields ({col.name} is an {col.sftype}); select its parts")
          for col in columns or [] if col.sftype in COMPOUND_TYPES],
    ]
    return next((why for refused, why in refusals if refused), None)


def _read_part(pd: Any, path: str, engine: Optional[str]) -> Any:
    """One Bulk CSV page as a frame of text columns (empty text is null); None for an empty file.

    pyarrow's reader is told that every column is text. (pandas 2.2's ``engine="pyarrow"``
    lets pyarrow infer types and casts to ``dtype`` afterwards: a datetime of 4000-12-31 is
    read as nanoseconds and wraps around to 2247 before it becomes text.)"""
    with open(path, newline="", encoding="utf-8") as handle:
        names = next(csv.reader(handle), None)
    if not names:
        return None
    if engine != "pyarrow":
        return pd.read_csv(path, dtype="string", keep_default_na=False, na_values=[""])
    import pyarrow as pa
    from pyarrow import csv as pa_csv

    options = pa_csv.ConvertOptions(column_types=dict.fromkeys(names, pa.string()), null_values=[""],
                                    strings_can_be_null=True)
    return pa_csv.read_csv(path, convert_options=options).to_pandas(types_mapper={pa.string(): pd.StringDtype()}.get)


class _BulkResults:
    """The CSV result pages of a finished Bulk 2.0 query job, downloaded into ``folder``.

    ``parallel > 1`` on API 58.0 and later: ``GET jobs/query/{id}/resultPages`` answers up to
    five ``resultPages[].resultUrl`` at a time (plus ``nextRecordsUrl`` and ``done``); up
    to ``parallel`` of those pages download at once on ``sf.session`` (so the session's
    token swap and refresh apply), gzip-compressed (``Accept-Encoding: gzip``; requests
    inflates it). Pages are handed out in order. ``parallel=1``, an older API version, or a
    404 from ``resultPages`` use the sequential ``Sforce-Locator`` chain instead.

    With ``read``, :meth:`parts` gives ``read(file)`` for each page instead of the file (and
    removes the file); the parallel downloads call it in their own threads, so parsing a page
    (pyarrow's CSV reader releases the GIL) overlaps the other pages' downloads.
    """

    def __init__(self, sf: Any, job_id: str, folder: str, parallel: int,
                 read: Optional[Callable[[str], Any]] = None) -> None:
        self.sf, self.job_id, self.folder, self.parallel, self.read = sf, job_id, folder, parallel, read
        #: "parallel" or "locator": which protocol the last parts() used
        self.mode = ""

    def parts(self) -> Iterator[Tuple[Any, int, bool]]:
        """(CSV file, records in it, more parts coming); the caller removes each file.
        With ``read``: ``read(file)`` in place of the file, which is already removed."""
        batch = self._first_batch() if self.parallel > 1 else None
        self.mode = "locator" if batch is None else "parallel"
        return self._locator_chain() if batch is None else self._parallel(*batch)

    # -- sequential: Sforce-Locator
    def _locator_chain(self) -> Iterator[Tuple[Any, int, bool]]:
        locator = ""
        while True:
            query = urlencode({"maxRecords": BULK_PART_RECORDS, **({"locator": locator} if locator else {})})
            path, n, locator = _download_page(self.sf, f"{_job_url(self.sf, self.job_id)}/results?{query}",
                                              self.folder)
            yield self._read(path), n, bool(locator)
            if not locator:
                return

    # -- parallel: resultPages
    def _batch(self, url: str) -> Tuple[List[str], Optional[str]]:
        resp = api_request(self.sf, "GET", url, "resultPages", headers={"Accept": "application/json"})
        body = json.loads(resp.content)
        urls = [api_url(self.sf, p["resultUrl"]) for p in body.get("resultPages") or [] if p.get("resultUrl")]
        # the guide's example says nextRecordsUrl, its table nextRecordUrl: take either
        nxt = body.get("nextRecordsUrl") or body.get("nextRecordUrl")
        return urls, (None if body.get("done", True) or not nxt else api_url(self.sf, nxt))

    def _first_batch(self) -> Optional[Tuple[List[str], Optional[str]]]:
        """The first ``resultPages`` listing, or ``None`` when the org has none (API before
        58.0, or a 404)."""
        from simple_salesforce.exceptions import SalesforceResourceNotFound

        if float(self.sf.sf_version) < 58.0:
            return None
        try:
            # maxRecords here: the org cuts the pages at that size and names it in every resultUrl
            return self._batch(f"{_job_url(self.sf, self.job_id)}/resultPages?maxRecords={BULK_PART_RECORDS}")
        except SalesforceResourceNotFound:
            logger.debug("resultPages not available for job %s: using the Sforce-Locator chain", self.job_id)
            return None

    def result_urls(self) -> Optional[List[str]]:
        """Every page's ``resultUrl`` (following ``nextRecordsUrl``), or ``None`` when the org
        has no ``resultPages``."""
        batch = self._first_batch()
        if batch is None:
            return None
        urls, nxt = batch
        while nxt:
            more, nxt = self._batch(nxt)
            urls.extend(more)
        return urls

    def _read(self, path: str) -> Any:
        if self.read is None:
            return path
        try:
            return self.read(path)
        finally:
            os.remove(path)

    def _download(self, url: str) -> Tuple[Any, int]:
        path, n, _ = _download_page(self.sf, url, self.folder)
        return self._read(path), n

    def _listed(self, urls: List[str], nxt: Optional[str], pool: Executor) -> Iterator[str]:
        """Every page's ``resultUrl`` in order. Each next ``resultPages`` listing is asked for in
        ``pool`` as soon as the previous one is in, and waited for only when its URLs are wanted."""
        while True:
            listing = pool.submit(self._batch, nxt) if nxt else None
            yield from urls
            if listing is None:
                return
            urls, nxt = listing.result()

    def _parallel(self, urls: List[str], nxt: Optional[str]) -> Iterator[Tuple[Any, int, bool]]:
        """Up to ``parallel`` downloads in flight, handed out in page order; the next
        ``resultPages`` listing travels beside the downloads, so they never wait a round trip
        for URLs."""
        from collections import deque
        from concurrent.futures import ThreadPoolExecutor

        pending: "deque[Future[Tuple[Any, int]]]" = deque()
        # one worker more than downloads: a resultPages call never waits for a download slot
        pool = ThreadPoolExecutor(max_workers=self.parallel + 1, thread_name_prefix="sfjwt-bulk-results")
        try:
            for url in self._listed(urls, nxt, pool):
                pending.append(pool.submit(self._download, url))
                if len(pending) == self.parallel:
                    yield (*pending.popleft().result(), True)
            while pending:
                yield (*pending.popleft().result(), bool(pending))
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            for future in pending:  # downloaded but never handed out (an error, a closed generator)
                if self.read is None and not future.cancelled() and future.exception() is None:
                    with contextlib.suppress(OSError):
                        os.remove(future.result()[0])


def _download_page(sf: Any, url: str, folder: str) -> Tuple[str, int, str]:
    """One result page into a new file in ``folder``: (file, records, the next page's
    ``Sforce-Locator`` or ``""``)."""
    # a resultUrl as given: its locator points at a page boundary of the org's choosing,
    # so another maxRecords here would skip or repeat rows
    fd, path = tempfile.mkstemp(prefix="part-", suffix=".csv", dir=folder)
    headers = {"Accept": "text/csv", "Accept-Encoding": "gzip"}
    try:
        with os.fdopen(fd, "wb") as fh, api_request(sf, "GET", url, "results", headers, stream=True) as resp:
            for chunk in resp.iter_content(chunk_size=1 << 16):
                fh.write(chunk.replace(b"\x00", b""))  # as simple-salesforce's filter_null_bytes
    except BaseException:
        os.remove(path)
        raise
    locator = resp.headers.get("Sforce-Locator") or ""
    return path, int(resp.headers.get("Sforce-NumberOfRecords") or 0), "" if locator == "null" else locator


def _bulk_page_frame(url: str, sf: Any, plan: List[Column]) -> Any:
    """One Bulk 2.0 result page as a typed frame (the columns and dtypes of :func:`query_df`):
    a partition of :func:`sfjwt_ext.data.dask.read_soql`. (``plan``, not ``columns``: dask
    passes a ``columns=`` projection to a function that takes one.)"""
    pd = _pandas()
    with tempfile.TemporaryDirectory(prefix="sfjwt-bulk-") as folder:
        path, _, _ = _download_page(sf, url, folder)
        raw = _read_part(pd, path, "pyarrow" if _has_pyarrow() else None)
    return _typed(pd, raw if raw is not None else pd.DataFrame(), plan)


def _bulk_job_pages(sf: Any, soql: str, include_deleted: bool) -> Tuple[List[Column], str, List[str]]:
    """Run ``soql`` as a Bulk 2.0 job to completion: (its columns, the job id, every page's
    resultUrl). The job is left in place for the pages to be downloaded (by anyone holding
    the client); :class:`BulkQueryNotSupported` when Bulk 2.0 cannot run the query,
    ``ValueError`` when the org has no ``resultPages`` (API before 58.0)."""
    route = _Route(sf, soql, include_deleted, True, False, 1)
    job_id = _start_job(sf, soql, route, include_deleted)
    try:
        _wait_for_job(sf, job_id)
        urls = _BulkResults(sf, job_id, "", BULK_PARALLEL).result_urls()
        if urls is None:
            raise ValueError(f"this needs Bulk 2.0 resultPages (API 58.0 or later; the client uses "
                             f"{sf.sf_version}): connect with version='58.0' or later")
    except BaseException:
        _delete_job_later(sf, job_id)
        raise
    return route.columns, job_id, urls


def _job_url(sf: Any, job_id: str = "") -> str:
    """A query job's URL; without ``job_id``, where query jobs are created."""
    return f"{sf.base_url}jobs/query" + (f"/{job_id}" if job_id else "")


def _create_job(sf: Any, soql: str, include_deleted: bool) -> str:
    """``POST jobs/query`` (CSV with commas and LF lines: the API's defaults): the new job's id."""
    body = {"operation": "queryAll" if include_deleted else "query", "query": soql}
    return str(api_request(sf, "POST", _job_url(sf), json=body).json()["id"])


def _start_job(sf: Any, soql: str, route: "_Route", include_deleted: bool) -> str:
    """Create the query job: its id. When the columns are still to be planned (``bulk=True``),
    the creation goes out first and describe runs beside it. Describe finding a column Bulk
    2.0 cannot return (a compound field) raises :class:`BulkQueryNotSupported` and the job is
    deleted in the background, unused."""
    from concurrent.futures import ThreadPoolExecutor

    if route.columns:  # planned already (bulk="auto" after the first REST page)
        return _create_job(sf, soql, include_deleted)
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sfjwt-bulk-create")
    creating = pool.submit(_create_job, sf, soql, include_deleted)
    pool.shutdown(wait=False)
    try:
        route.plan_bulk()
    except BaseException:
        creating.add_done_callback(functools.partial(_discard_job, sf))
        raise
    return creating.result()


def _discard_job(sf: Any, creating: "Future[str]") -> None:
    """Delete (in the background) a job created for nothing, once its creation is answered
    (a creation that failed left nothing to delete)."""
    if creating.exception() is None:
        _delete_job_later(sf, creating.result())


def _wait_for_job(sf: Any, job_id: str, timeout: float = 86400.0) -> Dict[str, Any]:
    """Poll a query job until it is complete; its final info (``numberRecordsProcessed``).
    Backs off from :data:`BULK_POLL_SECONDS` to 2 s between polls, like simple-salesforce's
    ``wait_for_job``, and raises its errors."""
    from simple_salesforce.exceptions import SalesforceOperationError

    deadline = time.monotonic() + timeout
    delays = backoff_delays(BULK_POLL_SECONDS, cap=2.0, jitter=0.0)
    while True:
        time.sleep(next(delays))
        info: Dict[str, Any] = api_request(sf, "GET", _job_url(sf, job_id)).json()
        state = info.get("state")
        if state == "JobComplete":
            return info
        if state in ("Aborted", "Failed"):
            raise SalesforceOperationError(f"Job failure. Response content: {info.get('errorMessage') or info}")
        if time.monotonic() >= deadline:
            raise SalesforceOperationError(f"Job timeout. Job status: {state}")


def _delete_job(sf: Any, job_id: str) -> None:
    try:
        api_request(sf, "DELETE", _job_url(sf, job_id))
    except Exception as exc:  # results expire on their own; deleting is a courtesy
        logger.warning("could not delete Bulk 2.0 job %s (Salesforce deletes it after 7 days): %s: %s",
                       job_id, type(exc).__name__, exc)


def _delete_job_later(sf: Any, job_id: str) -> None:
    """Delete the job in a background thread: the caller does not wait a round trip for
    it, and a failure is logged (by :func:`_delete_job`), never raised over the caller's
    result or error. The thread is not a daemon: the DELETE still goes out at exit."""
    try:
        threading.Thread(target=_delete_job, args=(sf, job_id), name="sfjwt-bulk-cleanup").start()
    except RuntimeError:  # no new threads (the interpreter is shutting down): delete here
        _delete_job(sf, job_id)


def _bulk_frames(pd: Any, sf: Any, soql: str, route: "_Route", include_deleted: bool, progress: Optional[bool],
                 parallel: int, desc: str) -> Iterator[Any]:
    """The job's result parts as typed frames, one per part (empty parts skipped; an empty
    result gives one empty, typed frame); the job is deleted in the background at the end
    (done, failed or abandoned)."""
    job_id = _start_job(sf, soql, route, include_deleted)
    engine = "pyarrow" if _has_pyarrow() else None
    bar: Optional[_Progress] = None
    empty = True
    try:
        with tempfile.TemporaryDirectory(prefix="sfjwt-bulk-") as folder:
            total = _wait_for_job(sf, job_id).get("numberRecordsProcessed")
            total = int(total) if isinstance(total, (int, float)) else None
            # progress=None: a bar only once a second part is coming (like the REST path's
            # "more than one page"); True: from the start; False: never
            if progress is True:
                bar = _Progress(True, True, total, desc + " bulk")
            results = _BulkResults(sf, job_id, folder, parallel, read=lambda path: _read_part(pd, path, engine))
            for part, done, more in results.parts():
                if bar is None and progress is None and more:
                    bar = _Progress(True, False, total, desc + " bulk")
                if bar is not None:
                    bar.update(done)
                if part is not None and len(part.columns):
                    empty = False
                    yield _typed(pd, part, route.columns)
        if empty:
            yield _typed(pd, pd.DataFrame(), route.columns)
    finally:
        if bar is not None:
            bar.close()
        _delete_job_later(sf, job_id)


# --------------------------------------------------------------------------- public


class _Route:
    """How a query runs: its parsed SELECT list, its columns, and REST or Bulk 2.0.

    REST (``bulk=False`` or ``"auto"``): the first page is asked for at once and the
    describes the columns need run beside it; ``"auto"`` then reads the page's
    ``totalSize`` and, above :data:`BULK_AUTO_THRESHOLD`, leaves the rest to Bulk 2.0
    (``pages`` closed, nothing more fetched by REST). ``bulk=True``: only the checks that
    need no describe here; the job's creation and the describes go out together later
    (:func:`_start_job`)."""

    def __init__(self, sf: Any, soql: str, include_deleted: bool, bulk: Any, progress: Optional[bool],
                 parallel: int, batch_size: Optional[int] = None) -> None:
        _check_arguments(soql, bulk, progress, parallel)
        try:
            self.q: Optional[SelectQuery] = parse_select(soql)
        except SoqlParseError as exc:
            logger.debug("SELECT list not understood (%s): columns will come from the records", exc)
            self.q = None
        self.describer = Describer(sf)
        self.columns: List[Column] = []  # planned from describe (none yet for bulk=True, COUNT() or dynamic)
        self.known: List[str] = []           # FIELDS() / TYPEOF: column names from columns=true
        self.entity: Optional[str] = None    # ... and the object it names
        self.pages: Optional[QueryPages] = None
        self.first: Optional[Dict[str, Any]] = None
        self.bulk = bulk is True
        if self.bulk:
            _refuse_bulk(self.q)
            return
        self.pages = QueryPages(sf, soql, include_deleted, batch_size)
        self.pages.start()  # the first round trip starts now ...
        try:
            self._plan_rest(sf, soql, include_deleted)  # ... and describe runs beside it
            self.first = self.pages.take()
        except BaseException:
            self.pages.close()
            raise
        if bulk == "auto":
            self._decide_auto()

    def plan_bulk(self) -> None:
        """The columns from describe; :class:`BulkQueryNotSupported` for a compound field."""
        assert self.q is not None
        self.columns = plan_columns(self.describer, self.q)
        _refuse_bulk(self.q, self.columns)

    def _plan_rest(self, sf: Any, soql: str, include_deleted: bool) -> None:
        q = self.q
        if q is not None and q.is_count:
            return
        if q is not None and not q.dynamic:
            self.columns = plan_columns(self.describer, q)
            return
        try:
            meta = _column_metadata(sf, soql, include_deleted)
            self.known = flatten_column_metadata(meta.get("columnMetadata") or [])
            self.entity = meta.get("entityName")
        except Exception as exc:  # the metadata is a nicety: the records still name their columns
            logger.debug("columns=true metadata unavailable: %s", exc)
        sobject = q.sobject if q is not None else self.entity
        if sobject:
            self.describer.describe(sobject)

    def _decide_auto(self) -> None:
        """Bulk 2.0 when the first page's totalSize is above the threshold (and Bulk 2.0 can
        run the query); the first page was the estimate, no COUNT() is asked."""
        assert self.first is not None and self.pages is not None
        total = self.first.get("totalSize")
        if (self.first.get("done", True) or not isinstance(total, int) or total <= BULK_AUTO_THRESHOLD
                or _bulk_refusal(self.q, self.columns) is not None):
            return
        logger.info("totalSize %d rows > BULK_AUTO_THRESHOLD=%d, using Bulk API 2.0", total, BULK_AUTO_THRESHOLD)
        self.pages.close()
        self.pages = self.first = None
        self.bulk = True


def _check_arguments(soql: str, bulk: Any, progress: Optional[bool], parallel: int) -> None:
    if bulk not in (True, False, "auto"):
        raise ValueError(f"bulk must be True, False or 'auto', not {bulk!r}")
    if progress not in (None, True, False):
        raise ValueError(f"progress must be None, True or False, not {progress!r}")
    if not isinstance(soql, str) or not soql.strip():
        raise ValueError("soql must be a non-empty SOQL query string")
    if isinstance(parallel, bool) or not isinstance(parallel, int) or parallel < 1:
        raise ValueError(f"parallel must be a whole number of simultaneous downloads >= 1 (1: one "
                         f"after another), not {parallel!r}")


def _refuse_bulk(q: Optional[SelectQuery], columns: Optional[List[Column]] = None) -> None:
    """:class:`BulkQueryNotSupported` when Bulk API 2.0 cannot run the query (``bulk=True``)."""
    reason = _bulk_refusal(q, columns)
    if reason is not None:
        raise BulkQueryNotSupported(f"bulk=True cannot run this query: {reason}. Use bulk=False (REST) "
                                    f"or bulk='auto'.")


def query_df(sf: Any, soql: str, *, include_deleted: bool = False, progress: Optional[bool] = None,
             bulk: BulkMode = "auto", batch_size: Optional[int] = None,
             parallel: int = BULK_PARALLEL) -> "pandas.DataFrame":
    """Run ``soql`` and return a :class:`pandas.DataFrame` (see the module docstring).

    :param sf: a :class:`simple_salesforce.Salesforce` client, e.g. from ``connect_jwt()``.
    :param include_deleted: query deleted and archived records too (``queryAll``).
    :param progress: ``None`` shows a tqdm bar when there is more than one page (or Bulk
        part), ``True`` always, ``False`` never.
    :param bulk: ``"auto"`` (Bulk API 2.0 when the first page's ``totalSize`` is above
        :data:`BULK_AUTO_THRESHOLD` and the query allows it), ``True`` (always Bulk 2.0;
        :class:`BulkQueryNotSupported` when it cannot) or ``False`` (always the REST query API).
    :param batch_size: REST page size to ask for (``Sforce-Query-Options: batchSize=``,
        200-2000; Salesforce treats it as a hint).
    :param parallel: Bulk 2.0 result pages downloaded at once (``resultPages``, API 58.0+);
        ``1`` follows the ``Sforce-Locator`` chain one page after another.
    """
    pd = _pandas()
    frames = list(_frames(pd, sf, soql, include_deleted, progress, bulk, batch_size, parallel, "query_df",
                          stream=False))
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


def _frames(pd: Any, sf: Any, soql: str, include_deleted: bool, progress: Optional[bool], bulk: Any,
            batch_size: Optional[int], parallel: int, desc: str, stream: bool = True) -> Iterator[Any]:
    """The result as typed pandas frames, the columns and dtypes of :func:`query_df`, at least
    one: Bulk 2.0, one per result page; REST, one per :data:`STREAM_ROWS` rows (``stream``)
    or one in all. The route (REST or Bulk 2.0) is decided here, once, for every output."""
    route = _Route(sf, soql, include_deleted, bulk, progress, parallel, batch_size)
    if route.bulk:
        return _bulk_frames(pd, sf, soql, route, include_deleted, progress, parallel, desc)
    return _rest_frames(pd, route, progress, STREAM_ROWS if stream else None, desc)


# --------------------------------------------------------------------------- Arrow and Parquet


def _pyarrow(what: str) -> Tuple[Any, Any]:
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError as exc:
        raise ImportError(f"{what} needs pyarrow: {_ARROW_HINT}") from exc
    return pyarrow, pyarrow.parquet


def _tables(pa: Any, frames: Iterator[Any]) -> Iterator[Any]:
    """Arrow tables of the frames, all with the first one's schema."""
    schema = None
    for frame in frames:
        table = pa.Table.from_pandas(frame, preserve_index=False)
        if schema is None:
            schema = table.schema
        elif not table.schema.equals(schema, check_metadata=False):
            try:
                table = table.cast(schema)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError, TypeError) as exc:
                raise ValueError(f"a later page of the result does not fit the columns of the first "
                                 f"({exc}); use query_df for this query") from exc
        yield table


def query_arrow(sf: Any, soql: str, *, include_deleted: bool = False, progress: Optional[bool] = None,
                bulk: BulkMode = "auto", batch_size: Optional[int] = None,
                parallel: int = BULK_PARALLEL) -> "pyarrow.Table":
    """Run ``soql`` and return a :class:`pyarrow.Table` with the columns and types of
    :func:`query_df` (``table.to_pandas()`` gives its dtypes back; polars: ``pl.from_arrow``).
    The arguments are :func:`query_df`'s."""
    pa, _ = _pyarrow("query_arrow")
    tables = list(_tables(pa, _frames(_pandas(), sf, soql, include_deleted, progress, bulk, batch_size, parallel,
                                      "query_arrow")))
    return tables[0] if len(tables) == 1 else pa.concat_tables(tables)


def query_to_parquet(sf: Any, soql: str, path: "str | os.PathLike[str]", *, include_deleted: bool = False,
                     progress: Optional[bool] = None, bulk: BulkMode = "auto", batch_size: Optional[int] = None,
                     parallel: int = BULK_PARALLEL, compression: str = "snappy") -> int:
    """Run ``soql`` and write the result to the Parquet file ``path``; return the rows written.

    Written page by page with :class:`pyarrow.parquet.ParquetWriter` (one row group per
    Bulk 2.0 result page, or per :data:`STREAM_ROWS` REST rows), so memory stays that of
    one page whatever the number of rows. The columns and types are :func:`query_df`'s:
    ``pd.read_parquet(path)`` equals ``query_df(sf, soql)``. ``path`` is handled as
    ``sfjwt query --output`` handles it (:class:`~sfjwt_ext._internal.outfile.OutputFile`): the
    file is written next to ``path`` (through a symbolic link: next to the file it names)
    under a temporary name and renamed at the end, keeping the replaced file's mode, so a
    query that fails leaves an existing ``path`` untouched; a FIFO or a character device is
    streamed into. A folder, or a ``path`` whose folder does not exist, is a
    :class:`~sfjwt_ext.errors.ConfigurationError` (a ``ValueError``) before the query runs.
    The other arguments are :func:`query_df`'s.
    """
    pa, pq = _pyarrow("query_to_parquet")
    pd = _pandas()
    with OutputFile(path, named="path") as output:
        return _parquet_into(output, pa, pq, _frames(pd, sf, soql, include_deleted, progress, bulk, batch_size,
                                                     parallel, "query_to_parquet"), compression)


def _parquet_into(output: OutputFile, pa: Any, pq: Any, frames: Iterator[Any], compression: str = "snappy") -> int:
    """Write ``frames`` (at least one) as one Parquet file to ``output`` and commit it; the
    rows written. ``output`` is opened when the first frame is ready (a FIFO's reader sees
    nothing of a query that fails at once). The caller discards ``output`` on failure."""
    writer = None
    rows = 0
    try:
        for table in _tables(pa, frames):
            if writer is None:
                writer = pq.ParquetWriter(output.open(binary=True), table.schema, compression=compression)
            writer.write_table(table)
            rows += table.num_rows
        assert writer is not None  # _frames yields at least one frame
        writer.close()
        writer = None
        output.commit()
    finally:
        if writer is not None:
            with contextlib.suppress(Exception):  # the original error is the one to report
                writer.close()
    return rows
