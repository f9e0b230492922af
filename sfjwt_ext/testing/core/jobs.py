"""What the local org's asynchronous APIs share: ids, test controls, query execution, CSV and XML.

Each API keeps its own jobs (``bulk2/models.py``: query and ingest jobs; ``bulk1/models.py``;
``metadata/models.py``: deploy and retrieve requests), all made with one :class:`JobControls`
(ids and the test controls below). ``org.bulk`` holds the controls and those job stores.

Test controls on ``org.bulk``:
    ``hold_polls``      every job / batch / deploy created afterwards reports InProgress for that
                        many status polls before it completes (default 0: complete at once)
    ``bulk1_result_size`` records per Bulk 1.0 result file (several result ids per batch)
    ``jobs_created``    counters for assertions
"""
from __future__ import annotations

import csv
import datetime as _dt
import io
import itertools
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Optional, Sequence
from xml.etree import ElementTree as ET
from xml.sax.saxutils import escape as _xml_escape

from . import soql as _soql
from .http import Request
from .ids import to_18
from .sessions import Session, SessionGate
from .queries import FlatSnapshot
from .store import Store


__all__ = ["JobControls", "request_version", "Rows", "FlatRows", "Progress", "BulkRefusal", "run_query", "run_flat_query", "authenticate",
           "render_csv"]

log = logging.getLogger("sfjwt_ext.testing.core.jobs")

XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"

CSV_CT = "text/csv;charset=UTF-8"

VERSION_RE = r"(?P<version>\d+\.\d+)"
ID_RE = r"[A-Za-z0-9]{15,18}"


# --------------------------------------------------------------------------- small helpers

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def make_id(prefix: str, org_id: str, n: int) -> str:
    """``prefix`` + pod-ish characters + a base-62 counter, 18 characters in all."""
    digits = ""
    while True:
        n, r = divmod(n, 62)
        digits = _BASE62[r] + digits
        if n == 0:
            break
    pod = (org_id[3:5] if len(org_id) >= 5 else "5g")
    body = prefix + pod + "0" * max(0, 15 - len(prefix) - len(pod) - len(digits)) + digits
    return to_18(body[-15:] if len(body) > 15 else body)


def sf_datetime(ts: float) -> str:
    """Bulk APIs' date format: ``2024-05-01T12:00:00.000+0000``."""
    d = _dt.datetime.fromtimestamp(ts, tz=_dt.timezone.utc)
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond // 1000:03d}+0000"



def now_ts() -> float:
    return time.time()


def xml_text(value: Any) -> str:
    return _xml_escape("" if value is None else str(value))


def local_name(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def child(elem: Optional[ET.Element], name: str) -> Optional[ET.Element]:
    if elem is None:
        return None
    for c in elem:
        if local_name(c.tag) == name:
            return c
    return None


def children(elem: Optional[ET.Element], name: str) -> List[ET.Element]:
    if elem is None:
        return []
    return [c for c in elem if local_name(c.tag) == name]


def child_text(elem: Optional[ET.Element], name: str, default: Optional[str] = None) -> Optional[str]:
    c = child(elem, name)
    if c is None or c.text is None:
        return default
    return c.text.strip()


def csv_value(value: Any) -> str:
    """One value as Bulk CSV writes it (before quoting): null empty, booleans lower case."""
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, float) and value.is_integer():
        return repr(value)
    return str(value)



# --------------------------------------------------------------------------- query execution


@dataclass
class Rows:
    """A query's result both ways: JSON records (Bulk 1.0 JSON/XML) and flat rows (CSV)."""

    entity: str
    records: List[Dict[str, Any]]
    columns: List[str]
    rows: List[List[Any]]

    @property
    def count(self) -> int:
        return max(len(self.records), len(self.rows))


def run_query(store: Store, soql_text: str, include_deleted: bool, api: str, *, records: bool = True,
               flat: bool = True) -> Rows:
    """Run ``soql_text`` against the org's store with Bulk's restrictions; ``records`` /
    ``flat`` choose which shapes are computed (JSON records, CSV rows).

    Raises the store's ``SoqlError`` for bad SOQL and ``BulkRefusal`` for what Bulk refuses.
    """
    parsed = _refuse_subqueries(soql_text, api)
    result_records: List[Dict[str, Any]] = []
    entity = ""
    if records:
        result = store.query(soql_text, include_deleted=include_deleted)
        result_records = list(result.records)
        entity = result.entity
    columns: List[str] = []
    rows: List[List[Any]] = []
    if flat:
        columns, flat_rows = store.query_flat(soql_text, include_deleted=include_deleted)
        rows = [list(r) for r in flat_rows]
    if not entity:
        entity = store.object_name(parsed.sobject)
    return Rows(entity=entity, records=result_records, columns=columns, rows=rows)


@dataclass
class FlatRows:
    """A query's CSV rows kept in the store until the job goes (Bulk 2.0): counted at once,
    read a page at a time (:class:`~.queries.FlatSnapshot`)."""

    entity: str
    snapshot: FlatSnapshot

    @property
    def columns(self) -> List[str]:
        return self.snapshot.columns

    @property
    def count(self) -> int:
        return self.snapshot.count

    def lines(self, offset: int, limit: int, delimiter: str) -> List[str]:
        return self.snapshot.lines(offset, limit, delimiter)

    def close(self) -> None:
        self.snapshot.close()


def run_flat_query(store: Store, soql_text: str, include_deleted: bool, api: str) -> FlatRows:
    """:func:`run_query`'s CSV rows (same checks, same refusals), kept in the store as a
    snapshot instead of a Python list: a million-row job costs one pass of SQLite, and each
    result page builds only its own rows."""
    parsed = _refuse_subqueries(soql_text, api)
    snapshot = store.snapshot_flat(soql_text, include_deleted=include_deleted)
    return FlatRows(entity=store.object_name(parsed.sobject), snapshot=snapshot)


def _refuse_subqueries(soql_text: str, api: str) -> _soql.Query:
    parsed = _soql.parse(soql_text)
    if any(isinstance(item, _soql.Subquery) for item in parsed.select):
        raise BulkRefusal("Aggregate Relationships not supported in Bulk Query with CSV content type"
                           if api == "bulk2" else
                           "FeatureNotEnabled : Aggregate Relationships not supported in Bulk Query")
    return parsed


class BulkRefusal(Exception):
    """A query the Bulk APIs refuse (but the REST API would run)."""


# --------------------------------------------------------------------------- state


@dataclass
class Progress:
    """How many more status polls report 'in progress' before completion."""

    remaining: int

    def poll(self) -> bool:
        """Count one poll; True when complete."""
        if self.remaining > 0:
            self.remaining -= 1
            return False
        return True



class JobControls:
    """The async APIs' shared test controls and job ids (``org.bulk`` is one, with the jobs).

    ``hold_polls``: every job, batch or deploy created afterwards reports InProgress for that
    many status polls; ``bulk1_result_size``: records per Bulk 1.0 result file;
    ``jobs_created``: counters for assertions.
    """

    def __init__(self, org_id: str) -> None:
        self.org_id = org_id
        self.hold_polls: int = 0
        self.bulk1_result_size: int = 10000
        self.jobs_created: Dict[str, int] = {"bulk2": 0, "bulk1": 0, "deploy": 0, "retrieve": 0}
        self._lock = threading.Lock()
        self._counter = itertools.count(1)

    def new_id(self, prefix: str) -> str:
        """A new job (batch, request) id of the org with this key prefix."""
        return make_id(prefix, self.org_id, next(self._counter))

    def progress(self) -> Progress:
        """The polls a job created now stays in progress for."""
        return Progress(self.hold_polls)

    def created(self, kind: str) -> None:
        """Count a new job of ``kind`` ("bulk2" | "bulk1" | "deploy" | "retrieve")."""
        with self._lock:
            self.jobs_created[kind] += 1


def request_version(request: Request, default: str) -> str:
    """The API version in the request's path, else ``default`` (the org's)."""
    if request.match is not None and "version" in request.match.groupdict():
        return request.match.group("version")
    return default


# --------------------------------------------------------------------------- renderers



def render_csv(columns: Sequence[str], rows: Iterable[Sequence[Any]], delimiter: str, line_ending: str) -> str:
    """Bulk CSV: every value double-quoted, nulls as empty strings."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator=line_ending, quoting=csv.QUOTE_ALL)
    writer.writerow(list(columns))
    for row in rows:
        writer.writerow([csv_value(v) for v in row])
    return out.getvalue()



# --------------------------------------------------------------------------- authentication


def authenticate(org: SessionGate, request: Request, flavour: str, token: Optional[str]) -> Session:
    """Check ``token`` with ``org.require_session``; raise ``HTTPError`` with the org's error body.

    flavour "rest" (Bulk 2.0) or "bulk1". The Metadata API builds its own fault (:mod:`metadata`).
    """
    api = {"rest": "bulk2", "bulk1": "bulk1"}[flavour]
    return org.require_session(request, api=api, token=token if token is not None else "")
