"""Bulk API 2.0 / Bulk API 1.0 query jobs and the SOAP Metadata API for the local org.

``register(router, org)`` (called by ``server.py``) adds, on the instance host:

Bulk API 2.0 (``Authorization: Bearer``; expired session -> 401 ``INVALID_SESSION_ID`` JSON)
    ``POST /services/data/vXX.X/jobs/query``                 create (operation query | queryAll)
    ``GET  /services/data/vXX.X/jobs/query``                 list
    ``GET  /services/data/vXX.X/jobs/query/<id>``            status
    ``PATCH /services/data/vXX.X/jobs/query/<id>``           ``{"state": "Aborted"}``
    ``DELETE /services/data/vXX.X/jobs/query/<id>``          delete (204)
    ``GET  /services/data/vXX.X/jobs/query/<id>/results``    CSV page; ``maxRecords`` / ``locator``
                                                             params, ``Sforce-Locator`` ("null" on the
                                                             last page) and ``Sforce-NumberOfRecords``

Bulk API 1.0 (``X-SFDC-Session``; expired session -> 400 ``InvalidSessionId`` as JSON or XML,
following the request's content type)
    ``POST /services/async/XX.X/job``                        create (JSON, XML or CSV jobs)
    ``GET|POST /services/async/XX.X/job/<id>``               info / close or abort
    ``POST|GET /services/async/XX.X/job/<id>/batch``         add a batch (body = SOQL) / list
    ``GET  .../batch/<id>``, ``.../batch/<id>/request``, ``.../batch/<id>/result``,
    ``.../batch/<id>/result/<resultId>``

SOAP Metadata API (``/services/Soap/m/XX.X/...``; session id in the envelope's SessionHeader;
expired session -> HTTP 500 fault ``sf:INVALID_SESSION_ID``)
    describeMetadata, listMetadata, deploy, checkDeployStatus, retrieve, checkRetrieveStatus.

Test controls live on ``org.bulk`` (a :class:`BulkService`):
    ``hold_polls``      every job / batch / deploy created afterwards reports InProgress for that
                        many status polls before it completes (default 0: complete at once)
    ``bulk1_result_size`` records per Bulk 1.0 result file (several result ids per batch)
    ``jobs_created``    counters for assertions
"""
from __future__ import annotations

import base64
import csv
import datetime as _dt
import hashlib
import io
import itertools
import json
import logging
import threading
import time
import zipfile
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple
from xml.etree import ElementTree as ET
from xml.sax.saxutils import escape as _xml_escape

from .ids import to_18
from .http import HTTPError, Request, Response, empty_response, json_response, text_response, xml_response

__all__ = ["BulkService", "register", "DATALOAD_NS", "METADATA_NS"]

log = logging.getLogger("sfjwt_ext.testing.bulk")

DATALOAD_NS = "http://www.force.com/2009/06/asyncapi/dataload"
METADATA_NS = "http://soap.sforce.com/2006/04/metadata"
SOAPENV_NS = "http://schemas.xmlsoap.org/soap/envelope/"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"

JSON_CT = "application/json;charset=UTF-8"
XML_CT = "application/xml;charset=UTF-8"
CSV_CT = "text/csv;charset=UTF-8"
SOAP_CT = "text/xml;charset=UTF-8"

_VERSION = r"(?P<version>\d+\.\d+)"
_ID = r"[A-Za-z0-9]{15,18}"

_DELIMITERS = {"COMMA": ",", "TAB": "\t", "PIPE": "|", "SEMICOLON": ";", "CARET": "^", "BACKQUOTE": "`"}
_LINE_ENDINGS = {"LF": "\n", "CRLF": "\r\n"}

_DEFAULT_MAX_RECORDS = 50000  # Bulk 2.0 page size when maxRecords is absent (real: ~ 1 GB of CSV)


# --------------------------------------------------------------------------- small helpers

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _make_id(prefix: str, org_id: str, n: int) -> str:
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


def _sf_datetime(ts: float) -> str:
    """Bulk APIs' date format: ``2024-05-01T12:00:00.000+0000``."""
    d = _dt.datetime.fromtimestamp(ts, tz=_dt.timezone.utc)
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond // 1000:03d}+0000"


def _iso_datetime(ts: float) -> str:
    """SOAP's xsd:dateTime: ``2024-05-01T12:00:00.000Z``."""
    d = _dt.datetime.fromtimestamp(ts, tz=_dt.timezone.utc)
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond // 1000:03d}Z"


def _now() -> float:
    return time.time()


def _xml(value: Any) -> str:
    return _xml_escape("" if value is None else str(value))


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(elem: Optional[ET.Element], name: str) -> Optional[ET.Element]:
    if elem is None:
        return None
    for c in elem:
        if _local(c.tag) == name:
            return c
    return None


def _children(elem: Optional[ET.Element], name: str) -> List[ET.Element]:
    if elem is None:
        return []
    return [c for c in elem if _local(c.tag) == name]


def _text(elem: Optional[ET.Element], name: str, default: Optional[str] = None) -> Optional[str]:
    c = _child(elem, name)
    if c is None or c.text is None:
        return default
    return c.text.strip()


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, float) and value.is_integer():
        return repr(value)
    return str(value)


def _bearer(request: Request) -> Optional[str]:
    auth = request.header("Authorization") or ""
    parts = auth.split(None, 1)
    if len(parts) == 2 and parts[0].lower() in ("bearer", "oauth"):
        return parts[1].strip()
    return None


# --------------------------------------------------------------------------- query execution


@dataclass
class _Rows:
    """A query's result both ways: JSON records (Bulk 1.0 JSON/XML) and flat rows (CSV)."""

    entity: str
    records: List[dict]
    columns: List[str]
    rows: List[List[Any]]

    @property
    def count(self) -> int:
        return max(len(self.records), len(self.rows))


def _select_columns(parsed: Any) -> List[str]:
    from . import soql as _soql
    columns: List[str] = []
    for item in parsed.select:
        if isinstance(item, _soql.FieldRef):
            columns.append(item.name)
        elif isinstance(item, _soql.Aggregate):
            columns.append(item.alias or "expr%d" % sum(1 for c in columns if c.startswith("expr")))
    return columns


def _lookup(record: Optional[dict], path: Sequence[str]) -> Any:
    value: Any = record
    for part in path:
        if not isinstance(value, dict):
            return None
        found = None
        wanted = part.lower()
        for key in value:
            if key.lower() == wanted and key != "attributes":
                found = key
                break
        if found is None:
            return None
        value = value[found]
    return value


def _run_query(org: Any, soql_text: str, include_deleted: bool, api: str, *, records: bool = True,
               flat: bool = True) -> _Rows:
    """Run ``soql_text`` against the org's store with Bulk's restrictions; ``records`` /
    ``flat`` choose which shapes are computed (JSON records, CSV rows).

    Raises the store's ``SoqlError`` for bad SOQL and ``_BulkRefusal`` for what Bulk refuses.
    """
    from . import soql as _soql
    parsed = _soql.parse(soql_text)
    if any(isinstance(item, _soql.Subquery) for item in parsed.select):
        raise _BulkRefusal("Aggregate Relationships not supported in Bulk Query with CSV content type"
                           if api == "bulk2" else
                           "FeatureNotEnabled : Aggregate Relationships not supported in Bulk Query")
    store = org.store
    if store is None:
        raise _BulkRefusal("the local org has no record store")
    query_flat = getattr(store, "query_flat", None)
    result_records: List[dict] = []
    entity = ""
    if records or not callable(query_flat):
        result = store.query(soql_text, include_deleted=include_deleted)
        result_records = list(result.records)
        entity = result.entity
    columns: List[str] = []
    rows: List[List[Any]] = []
    if flat and callable(query_flat):
        columns, flat_rows = query_flat(soql_text, include_deleted=include_deleted)
        rows = [list(r) for r in flat_rows]
    elif flat:
        columns = _select_columns(parsed)
        paths = [tuple(c.split(".")) for c in columns]
        rows = [[_lookup(rec, p) for p in paths] for rec in result_records]
    if not entity:
        object_name = getattr(store, "object_name", None)
        entity = object_name(parsed.sobject) if callable(object_name) else parsed.sobject
    return _Rows(entity=entity, records=result_records, columns=columns, rows=rows)


class _BulkRefusal(Exception):
    """A query the Bulk APIs refuse (but the REST API would run)."""


def _soql_error_type() -> type:
    from . import soql as _soql
    return _soql.SoqlError


# --------------------------------------------------------------------------- state


@dataclass
class _Progress:
    """How many more status polls report 'in progress' before completion."""

    remaining: int

    def poll(self) -> bool:
        """Count one poll; True when complete."""
        if self.remaining > 0:
            self.remaining -= 1
            return False
        return True


@dataclass
class Bulk2Job:
    id: str
    operation: str
    object: str
    query: str
    created_by: str
    created: float
    api_version: str
    line_ending: str
    column_delimiter: str
    progress: _Progress
    rows: Optional[_Rows] = None
    state: str = "UploadComplete"
    modstamp: float = 0.0
    error: Optional[str] = None

    def info(self, *, full: bool) -> Dict[str, Any]:
        data: Dict[str, Any] = {
            "id": self.id,
            "operation": self.operation,
            "object": self.object,
            "createdById": self.created_by,
            "createdDate": _sf_datetime(self.created),
            "systemModstamp": _sf_datetime(self.modstamp or self.created),
            "state": self.state,
            "concurrencyMode": "Parallel",
            "contentType": "CSV",
            "apiVersion": float(self.api_version),
        }
        if full:
            data["jobType"] = "V2Query"
        data["lineEnding"] = self.line_ending
        data["columnDelimiter"] = self.column_delimiter
        if full:
            done = self.state == "JobComplete"
            data["numberRecordsProcessed"] = self.rows.count if (done and self.rows) else 0
            data["retries"] = 0
            data["totalProcessingTime"] = 0 if not done else 12
            data["isPkChunkingSupported"] = True
            if self.error:
                data["errorMessage"] = self.error
        return data


@dataclass
class Bulk1Batch:
    id: str
    job_id: str
    soql: str
    created: float
    progress: _Progress
    state: str = "Queued"
    state_message: Optional[str] = None
    rows: Optional[_Rows] = None
    result_ids: List[str] = field(default_factory=list)
    modstamp: float = 0.0


@dataclass
class Bulk1Job:
    id: str
    operation: str
    object: str
    content_type: str
    concurrency: str
    created_by: str
    created: float
    api_version: str
    state: str = "Open"
    modstamp: float = 0.0
    batches: List[Bulk1Batch] = field(default_factory=list)


@dataclass
class AsyncMetadata:
    id: str
    kind: str  # "deploy" | "retrieve"
    created: float
    created_by: str
    progress: _Progress
    check_only: bool = False
    ignore_warnings: bool = False
    rollback_on_error: bool = True
    components: List[Tuple[str, str, str]] = field(default_factory=list)  # (type, fullName, fileName)
    error: Optional[str] = None
    zip_bytes: bytes = b""
    messages: List[Tuple[str, str]] = field(default_factory=list)
    done: bool = False


# metadata folder -> (type, suffix, metaFile, inFolder)
_METADATA_TYPES: List[Tuple[str, str, Optional[str], bool, bool]] = [
    ("ApexClass", "classes", "cls", True, False),
    ("ApexTrigger", "triggers", "trigger", True, False),
    ("ApexPage", "pages", "page", True, False),
    ("ApexComponent", "components", "component", True, False),
    ("CustomObject", "objects", "object", False, False),
    ("CustomLabels", "labels", "labels", False, False),
    ("CustomTab", "tabs", "tab", False, False),
    ("Layout", "layouts", "layout", False, False),
    ("PermissionSet", "permissionsets", "permissionset", False, False),
    ("Profile", "profiles", "profile", False, False),
    ("StaticResource", "staticresources", "resource", True, False),
    ("LightningComponentBundle", "lwc", None, False, False),
    ("Flow", "flows", "flow", False, False),
    ("Report", "reports", "report", False, True),
    ("Dashboard", "dashboards", "dashboard", False, True),
    ("EmailTemplate", "email", "email", True, True),
    ("Document", "documents", None, True, True),
]
_TYPE_BY_DIR = {d: t for t, d, _s, _m, _f in _METADATA_TYPES}
_DIR_BY_TYPE = {t: (d, s) for t, d, s, _m, _f in _METADATA_TYPES}


class BulkService:
    """Job storage and the handlers; one per LocalOrg, reachable as ``org.bulk``."""

    def __init__(self, org: Any) -> None:
        self.org = org
        self._lock = threading.Lock()
        self._counter = itertools.count(1)
        self.hold_polls: int = 0
        self.bulk1_result_size: int = 10000
        self.bulk2_jobs: Dict[str, Bulk2Job] = {}
        self.bulk1_jobs: Dict[str, Bulk1Job] = {}
        self.metadata_requests: Dict[str, AsyncMetadata] = {}
        # deployed components: (type, fullName) -> (fileName, content bytes)
        self.deployed: Dict[Tuple[str, str], Tuple[str, bytes, float]] = {}
        self.jobs_created: Dict[str, int] = {"bulk2": 0, "bulk1": 0, "deploy": 0, "retrieve": 0}

    # ----------------------------------------------------------------- ids and context

    def _org_id(self) -> str:
        return str(getattr(self.org, "org_id", "00D000000000001AAA"))

    def _new_id(self, prefix: str) -> str:
        return _make_id(prefix, self._org_id(), next(self._counter))

    def reset(self) -> None:
        with self._lock:
            self.bulk2_jobs.clear()
            self.bulk1_jobs.clear()
            self.metadata_requests.clear()
            self.deployed.clear()
            for k in self.jobs_created:
                self.jobs_created[k] = 0

    def _api_version(self, request: Request) -> str:
        if request.match is not None and "version" in request.match.groupdict():
            return request.match.group("version")
        return str(getattr(self.org, "api_version", "62.0"))

    # ================================================================= Bulk API 2.0

    def _bulk2_auth(self, request: Request) -> Any:
        return _authenticate(self.org, request, "rest", _bearer(request))

    @staticmethod
    def _bulk2_error(status: int, code: str, message: str) -> Response:
        return json_response([{"errorCode": code, "message": message}], status=status)

    def _bulk2_job(self, request: Request) -> Bulk2Job:
        job_id = request.match.group("job") if request.match else ""
        with self._lock:
            job = self.bulk2_jobs.get(job_id)
        if job is None:
            raise HTTPError(self._bulk2_error(404, "NOT_FOUND", "The requested resource does not exist"))
        return job

    def bulk2_create(self, request: Request) -> Response:
        session = self._bulk2_auth(request)
        body = request.json()
        if not isinstance(body, dict):
            return self._bulk2_error(400, "JSON_PARSER_ERROR", "The request body must be a JSON object")
        operation = body.get("operation")
        if operation not in ("query", "queryAll"):
            return self._bulk2_error(400, "INVALIDJOB",
                                     f"InvalidJob : Invalid operation: {operation}. Query jobs support query and queryAll")
        query = body.get("query")
        if not isinstance(query, str) or not query.strip():
            return self._bulk2_error(400, "INVALIDJOB", "InvalidJob : The query is required for query jobs")
        delimiter = str(body.get("columnDelimiter") or "COMMA")
        line_ending = str(body.get("lineEnding") or "LF")
        if delimiter not in _DELIMITERS:
            return self._bulk2_error(400, "INVALIDJOB", f"InvalidJob : Invalid column delimiter: {delimiter}")
        if line_ending not in _LINE_ENDINGS:
            return self._bulk2_error(400, "INVALIDJOB", f"InvalidJob : Invalid line ending: {line_ending}")
        content_type = body.get("contentType", "CSV")
        if content_type != "CSV":
            return self._bulk2_error(400, "INVALIDJOB", f"InvalidJob : Invalid content type: {content_type}")
        try:
            rows = _run_query(self.org, query, operation == "queryAll", "bulk2", records=False)
        except _BulkRefusal as exc:
            return self._bulk2_error(400, "INVALIDJOB", str(exc))
        except _soql_error_type() as exc:  # type: ignore[misc]
            return json_response(exc.to_json(), status=400)
        now = _now()
        job = Bulk2Job(id=self._new_id("750"), operation=operation, object=rows.entity, query=query,
                       created_by=_user_id(session, self.org), created=now, modstamp=now,
                       api_version=self._api_version(request), line_ending=line_ending,
                       column_delimiter=delimiter, progress=_Progress(self.hold_polls), rows=rows)
        with self._lock:
            self.bulk2_jobs[job.id] = job
            self.jobs_created["bulk2"] += 1
        return json_response(job.info(full=False), status=200)

    def _bulk2_advance(self, job: Bulk2Job) -> None:
        with self._lock:
            if job.state in ("UploadComplete", "InProgress"):
                if job.progress.poll():
                    job.state = "JobComplete"
                else:
                    job.state = "InProgress"
                job.modstamp = _now()

    def bulk2_status(self, request: Request) -> Response:
        self._bulk2_auth(request)
        job = self._bulk2_job(request)
        self._bulk2_advance(job)
        return json_response(job.info(full=True))

    def bulk2_list(self, request: Request) -> Response:
        self._bulk2_auth(request)
        with self._lock:
            jobs = sorted(self.bulk2_jobs.values(), key=lambda j: j.created)
        records = [j.info(full=True) for j in jobs]
        for rec in records:
            for key in ("numberRecordsProcessed", "retries", "totalProcessingTime", "isPkChunkingSupported",
                        "errorMessage"):
                rec.pop(key, None)
        return json_response({"done": True, "records": records, "nextRecordsUrl": None})

    def bulk2_patch(self, request: Request) -> Response:
        self._bulk2_auth(request)
        job = self._bulk2_job(request)
        body = request.json()
        state = body.get("state") if isinstance(body, dict) else None
        if state != "Aborted":
            return self._bulk2_error(400, "INVALIDJOBSTATE",
                                     f"InvalidJobState : Invalid state for a query job: {state}")
        with self._lock:
            if job.state in ("JobComplete", "Failed", "Aborted"):
                return self._bulk2_error(400, "INVALIDJOBSTATE",
                                         f"InvalidJobState : Job is already in state {job.state}")
            job.state = "Aborted"
            job.modstamp = _now()
        return json_response(job.info(full=False))

    def bulk2_delete(self, request: Request) -> Response:
        self._bulk2_auth(request)
        job = self._bulk2_job(request)
        with self._lock:
            if job.state in ("UploadComplete", "InProgress"):
                return self._bulk2_error(400, "INVALIDJOBSTATE",
                                         "InvalidJobState : Job must be in a final state (JobComplete, Aborted or Failed) to be deleted")
            self.bulk2_jobs.pop(job.id, None)
        return empty_response(204)

    def bulk2_results(self, request: Request) -> Response:
        self._bulk2_auth(request)
        job = self._bulk2_job(request)
        if job.state != "JobComplete":
            return self._bulk2_error(400, "API_ERROR" if job.state != "Aborted" else "INVALIDJOBSTATE",
                                     f"Job {job.id} is not in a state that allows results: {job.state}")
        raw_max = request.query.get("maxRecords")
        max_records = _DEFAULT_MAX_RECORDS
        if raw_max not in (None, ""):
            try:
                max_records = int(str(raw_max))
            except ValueError:
                return self._bulk2_error(400, "API_ERROR", f"Invalid maxRecords: {raw_max}")
            if max_records <= 0:
                return self._bulk2_error(400, "API_ERROR", f"Invalid maxRecords: {raw_max}")
        offset = 0
        locator = request.query.get("locator")
        if locator not in (None, "", "null"):
            offset = _decode_locator(str(locator))
            if offset is None:
                return self._bulk2_error(400, "INVALIDLOCATOR", f"Invalid locator: {locator}")
        assert job.rows is not None
        page = job.rows.rows[offset:offset + max_records]
        next_offset = offset + len(page)
        next_locator = _encode_locator(next_offset) if next_offset < len(job.rows.rows) else "null"
        body = _render_csv(job.rows.columns, page, _DELIMITERS[job.column_delimiter],
                           _LINE_ENDINGS[job.line_ending])
        headers = {"Sforce-Locator": next_locator, "Sforce-NumberOfRecords": str(len(page))}
        return text_response(body, status=200, headers=headers, content_type=CSV_CT)

    # ================================================================= Bulk API 1.0

    def _bulk1_format(self, request: Request, job: Optional[Bulk1Job] = None) -> str:
        ct = request.content_type
        if "json" in ct:
            return "JSON"
        if "xml" in ct:
            return "XML"
        if job is not None and job.content_type == "JSON":
            return "JSON"
        return "XML"

    def _bulk1_error(self, fmt: str, code: str, message: str, status: int = 400) -> Response:
        return bulk1_error_response(fmt, code, message, status)

    def _bulk1_auth(self, request: Request) -> Any:
        return _authenticate(self.org, request, "bulk1", request.header("X-SFDC-Session"))

    def _bulk1_job(self, request: Request, fmt: str) -> Bulk1Job:
        job_id = request.match.group("job") if request.match else ""
        with self._lock:
            job = self.bulk1_jobs.get(job_id)
        if job is None:
            raise HTTPError(self._bulk1_error(fmt, "InvalidJob", f"Invalid job id: {job_id}"))
        return job

    def _bulk1_batch(self, request: Request, job: Bulk1Job, fmt: str) -> Bulk1Batch:
        batch_id = request.match.group("batch") if request.match else ""
        with self._lock:
            for batch in job.batches:
                if batch.id == batch_id:
                    return batch
        raise HTTPError(self._bulk1_error(fmt, "InvalidBatch", f"Invalid batch id: {batch_id}"))

    def _bulk1_job_dict(self, job: Bulk1Job) -> Dict[str, Any]:
        with self._lock:
            batches = list(job.batches)
        counts = {"Queued": 0, "InProgress": 0, "Completed": 0, "Failed": 0, "NotProcessed": 0}
        processed = 0
        for b in batches:
            counts[b.state] = counts.get(b.state, 0) + 1
            if b.state == "Completed" and b.rows is not None:
                processed += b.rows.count
        return {
            "apexProcessingTime": 0,
            "apiActiveProcessingTime": 0,
            "apiVersion": float(job.api_version),
            "assignmentRuleId": None,
            "concurrencyMode": job.concurrency,
            "contentType": job.content_type,
            "createdById": job.created_by,
            "createdDate": _sf_datetime(job.created),
            "externalIdFieldName": None,
            "fastPathEnabled": False,
            "id": job.id,
            "numberBatchesCompleted": counts["Completed"],
            "numberBatchesFailed": counts["Failed"],
            "numberBatchesInProgress": counts["InProgress"],
            "numberBatchesQueued": counts["Queued"],
            "numberBatchesTotal": len(batches),
            "numberRecordsFailed": 0,
            "numberRecordsProcessed": processed,
            "numberRetries": 0,
            "object": job.object,
            "operation": job.operation,
            "state": job.state,
            "systemModstamp": _sf_datetime(job.modstamp or job.created),
            "totalProcessingTime": 0,
        }

    _JOB_XML_ORDER = ["id", "operation", "object", "createdById", "createdDate", "systemModstamp", "state",
                      "concurrencyMode", "contentType", "numberBatchesQueued", "numberBatchesInProgress",
                      "numberBatchesCompleted", "numberBatchesFailed", "numberBatchesTotal",
                      "numberRecordsProcessed", "numberRetries", "apiVersion", "numberRecordsFailed",
                      "totalProcessingTime", "apiActiveProcessingTime", "apexProcessingTime"]

    def _bulk1_job_response(self, job: Bulk1Job, fmt: str, status: int = 200) -> Response:
        data = self._bulk1_job_dict(job)
        if fmt == "JSON":
            return json_response(data, status=status)
        parts = [f"<{k}>{_xml(_xml_scalar(data[k]))}</{k}>" for k in self._JOB_XML_ORDER]
        doc = (f'<?xml version="1.0" encoding="UTF-8"?><jobInfo xmlns="{DATALOAD_NS}">'
               + "".join(parts) + "</jobInfo>")
        return xml_response(doc, status=status)

    def _bulk1_batch_dict(self, batch: Bulk1Batch) -> Dict[str, Any]:
        processed = batch.rows.count if (batch.state == "Completed" and batch.rows) else 0
        data: Dict[str, Any] = {
            "apexProcessingTime": 0,
            "apiActiveProcessingTime": 0,
            "createdDate": _sf_datetime(batch.created),
            "id": batch.id,
            "jobId": batch.job_id,
            "numberRecordsFailed": 0,
            "numberRecordsProcessed": processed,
            "state": batch.state,
            "stateMessage": batch.state_message,
            "systemModstamp": _sf_datetime(batch.modstamp or batch.created),
            "totalProcessingTime": 0,
        }
        return data

    _BATCH_XML_ORDER = ["id", "jobId", "state", "stateMessage", "createdDate", "systemModstamp",
                        "numberRecordsProcessed", "numberRecordsFailed", "totalProcessingTime",
                        "apiActiveProcessingTime", "apexProcessingTime"]

    def _batch_xml(self, batch: Bulk1Batch) -> str:
        data = self._bulk1_batch_dict(batch)
        parts = [f"<{k}>{_xml(_xml_scalar(data[k]))}</{k}>" for k in self._BATCH_XML_ORDER
                 if not (k == "stateMessage" and data[k] is None)]
        return "".join(parts)

    def _bulk1_batch_response(self, batch: Bulk1Batch, fmt: str, status: int = 200) -> Response:
        if fmt == "JSON":
            return json_response(self._bulk1_batch_dict(batch), status=status)
        doc = (f'<?xml version="1.0" encoding="UTF-8"?><batchInfo xmlns="{DATALOAD_NS}">'
               + self._batch_xml(batch) + "</batchInfo>")
        return xml_response(doc, status=status)

    def bulk1_create_job(self, request: Request) -> Response:
        fmt = self._bulk1_format(request)
        session = self._bulk1_auth(request)
        if fmt == "JSON":
            try:
                body = json.loads(request.body.decode("utf-8") or "null")
            except ValueError:
                return self._bulk1_error(fmt, "InvalidJob", "Unable to parse the job: invalid JSON")
            if not isinstance(body, dict):
                return self._bulk1_error(fmt, "InvalidJob", "Unable to parse the job: expected a JSON object")
            spec = {k: body.get(k) for k in ("operation", "object", "contentType", "concurrencyMode")}
        else:
            try:
                root = ET.fromstring(request.body or b"<x/>")
            except ET.ParseError as exc:
                return self._bulk1_error(fmt, "InvalidXML", f"Unable to parse XML: {exc}")
            spec = {k: _text(root, k) for k in ("operation", "object", "contentType", "concurrencyMode")}
        operation = spec.get("operation")
        if operation not in ("query", "queryAll"):
            return self._bulk1_error(fmt, "InvalidJob",
                                     f"The local org supports only query and queryAll Bulk API 1.0 jobs, not {operation}")
        obj = spec.get("object")
        store = getattr(self.org, "store", None)
        has_object = getattr(store, "has_object", None)
        if not obj or (callable(has_object) and not has_object(str(obj))):
            return self._bulk1_error(fmt, "InvalidJob", f"Unable to find object: {obj}")
        content_type = str(spec.get("contentType") or ("JSON" if fmt == "JSON" else "XML")).upper()
        if content_type not in ("JSON", "XML", "CSV"):
            return self._bulk1_error(fmt, "InvalidJob", f"Invalid content type: {content_type}")
        mode = spec.get("concurrencyMode")
        concurrency = "Serial" if str(mode) in ("1", "Serial", "serial") else "Parallel"
        now = _now()
        job = Bulk1Job(id=self._new_id("750"), operation=str(operation), object=str(obj),
                       content_type=content_type, concurrency=concurrency,
                       created_by=_user_id(session, self.org), created=now, modstamp=now,
                       api_version=self._api_version(request))
        with self._lock:
            self.bulk1_jobs[job.id] = job
            self.jobs_created["bulk1"] += 1
        return self._bulk1_job_response(job, fmt, status=201)

    def bulk1_job(self, request: Request) -> Response:
        fmt0 = self._bulk1_format(request)
        self._bulk1_auth(request)
        job = self._bulk1_job(request, fmt0)
        fmt = self._bulk1_format(request, job)
        if request.method == "POST":
            if fmt == "JSON":
                try:
                    body = json.loads(request.body.decode("utf-8") or "null")
                except ValueError:
                    body = None
                state = body.get("state") if isinstance(body, dict) else None
            else:
                try:
                    state = _text(ET.fromstring(request.body or b"<x/>"), "state")
                except ET.ParseError:
                    state = None
            if state not in ("Closed", "Aborted"):
                return self._bulk1_error(fmt, "InvalidJobState", f"Invalid job state: {state}")
            with self._lock:
                if job.state != "Open" and job.state != state:
                    return self._bulk1_error(fmt, "InvalidJobState",
                                             f"Job {job.id} is {job.state} and cannot be {state}")
                job.state = str(state)
                job.modstamp = _now()
        return self._bulk1_job_response(job, fmt)

    def bulk1_add_batch(self, request: Request) -> Response:
        fmt0 = self._bulk1_format(request)
        self._bulk1_auth(request)
        job = self._bulk1_job(request, fmt0)
        fmt = self._bulk1_format(request, job)
        if job.state != "Open":
            return self._bulk1_error(fmt, "InvalidJobState", f"Job {job.id} is {job.state}: it accepts no batches")
        soql_text = request.text().strip()
        now = _now()
        batch = Bulk1Batch(id=self._new_id("751"), job_id=job.id, soql=soql_text, created=now, modstamp=now,
                           progress=_Progress(self.hold_polls))
        try:
            rows = _run_query(self.org, soql_text, job.operation == "queryAll", "bulk1",
                              records=job.content_type != "CSV", flat=job.content_type == "CSV")
            if rows.entity.lower() != job.object.lower():
                raise _BulkRefusal(f"InvalidBatch : Failed to process query: the query is on {rows.entity}, "
                                   f"the job on {job.object}")
            batch.rows = rows
            size = max(1, int(self.bulk1_result_size))
            n_results = max(1, -(-rows.count // size))
            batch.result_ids = [self._new_id("752")[:15] for _ in range(n_results)]
        except _BulkRefusal as exc:
            batch.state = "Failed"
            batch.state_message = str(exc) if str(exc).startswith(("InvalidBatch", "FeatureNotEnabled")) \
                else f"InvalidBatch : {exc}"
        except _soql_error_type() as exc:  # type: ignore[misc]
            batch.state = "Failed"
            batch.state_message = f"InvalidBatch : Failed to process query: {exc.error_code}: {exc.message}"
        with self._lock:
            job.batches.append(batch)
            job.modstamp = now
        return self._bulk1_batch_response(batch, fmt, status=201)

    def _bulk1_advance(self, batch: Bulk1Batch) -> None:
        with self._lock:
            if batch.state in ("Queued", "InProgress"):
                batch.state = "Completed" if batch.progress.poll() else "InProgress"
                batch.modstamp = _now()

    def bulk1_batches(self, request: Request) -> Response:
        fmt0 = self._bulk1_format(request)
        self._bulk1_auth(request)
        job = self._bulk1_job(request, fmt0)
        fmt = self._bulk1_format(request, job)
        with self._lock:
            batches = list(job.batches)
        if fmt == "JSON":
            return json_response({"batchInfo": [self._bulk1_batch_dict(b) for b in batches]})
        doc = (f'<?xml version="1.0" encoding="UTF-8"?><batchInfoList xmlns="{DATALOAD_NS}">'
               + "".join(f"<batchInfo>{self._batch_xml(b)}</batchInfo>" for b in batches)
               + "</batchInfoList>")
        return xml_response(doc)

    def bulk1_batch(self, request: Request) -> Response:
        fmt0 = self._bulk1_format(request)
        self._bulk1_auth(request)
        job = self._bulk1_job(request, fmt0)
        fmt = self._bulk1_format(request, job)
        batch = self._bulk1_batch(request, job, fmt)
        self._bulk1_advance(batch)
        return self._bulk1_batch_response(batch, fmt)

    def bulk1_batch_request(self, request: Request) -> Response:
        fmt0 = self._bulk1_format(request)
        self._bulk1_auth(request)
        job = self._bulk1_job(request, fmt0)
        batch = self._bulk1_batch(request, job, self._bulk1_format(request, job))
        return text_response(batch.soql, content_type="text/plain;charset=UTF-8")

    def bulk1_result_list(self, request: Request) -> Response:
        fmt0 = self._bulk1_format(request)
        self._bulk1_auth(request)
        job = self._bulk1_job(request, fmt0)
        fmt = self._bulk1_format(request, job)
        batch = self._bulk1_batch(request, job, fmt)
        if batch.state == "Failed":
            return self._bulk1_error(fmt, "InvalidBatch", f"Batch {batch.id} failed: {batch.state_message}")
        if batch.state != "Completed":
            return self._bulk1_error(fmt, "InvalidBatch", "Batch not completed")
        if fmt == "JSON":
            return json_response(list(batch.result_ids))
        doc = (f'<?xml version="1.0" encoding="UTF-8"?><result-list xmlns="{DATALOAD_NS}">'
               + "".join(f"<result>{r}</result>" for r in batch.result_ids) + "</result-list>")
        return xml_response(doc)

    def bulk1_result(self, request: Request) -> Response:
        fmt0 = self._bulk1_format(request)
        self._bulk1_auth(request)
        job = self._bulk1_job(request, fmt0)
        fmt = self._bulk1_format(request, job)
        batch = self._bulk1_batch(request, job, fmt)
        result_id = request.match.group("result") if request.match else ""
        if batch.state != "Completed" or result_id not in batch.result_ids or batch.rows is None:
            return self._bulk1_error(fmt, "InvalidBatch", f"Invalid result id: {result_id}")
        index = batch.result_ids.index(result_id)
        size = max(1, int(self.bulk1_result_size))
        lo, hi = index * size, index * size + size
        if job.content_type == "JSON":
            return json_response(batch.rows.records[lo:hi])
        if job.content_type == "CSV":
            body = _render_csv(batch.rows.columns, batch.rows.rows[lo:hi], ",", "\n")
            return text_response(body, content_type=CSV_CT)
        return xml_response(_records_xml(batch.rows.records[lo:hi]))

    # ================================================================= SOAP Metadata API

    def soap_metadata(self, request: Request) -> Response:
        try:
            root = ET.fromstring(request.body or b"")
        except ET.ParseError:
            return soap_fault("soapenv:Client", "Unable to parse the SOAP envelope", status=500)
        header = _child(root, "Header")
        body = _child(root, "Body")
        session_header = _child(header, "SessionHeader")
        session_id = _text(session_header, "sessionId")
        session = _authenticate(self.org, request, "soap", session_id)
        if body is None or len(body) == 0:
            return soap_fault("soapenv:Client", "No operation in the SOAP Body", status=500)
        op = body[0]
        name = _local(op.tag)
        handler = {
            "describeMetadata": self._md_describe,
            "listMetadata": self._md_list,
            "deploy": self._md_deploy,
            "checkDeployStatus": self._md_check_deploy,
            "retrieve": self._md_retrieve,
            "checkRetrieveStatus": self._md_check_retrieve,
            "readMetadata": self._md_read,
        }.get(name)
        if handler is None:
            return soap_fault("sf:INVALID_OPERATION",
                              f"INVALID_OPERATION: The local org does not implement the Metadata API call {name}",
                              status=500)
        return handler(op, session, request)

    def _md_describe(self, op: ET.Element, session: Any, request: Request) -> Response:
        objs = []
        for type_name, directory, suffix, meta, in_folder in _METADATA_TYPES:
            objs.append(
                "<metadataObjects>"
                + ("<childXmlNames>CustomField</childXmlNames><childXmlNames>ValidationRule</childXmlNames>"
                   if type_name == "CustomObject" else "")
                + f"<directoryName>{directory}</directoryName><inFolder>{str(in_folder).lower()}</inFolder>"
                + f"<metaFile>{str(meta).lower()}</metaFile>"
                + (f"<suffix>{suffix}</suffix>" if suffix else "")
                + f"<xmlName>{type_name}</xmlName></metadataObjects>")
        result = ("".join(objs) + "<organizationNamespace></organizationNamespace>"
                  "<partialSaveAllowed>true</partialSaveAllowed><testRequired>false</testRequired>")
        return soap_ok("describeMetadataResponse", f"<result>{result}</result>")

    def _file_properties(self, type_name: str, full_name: str, file_name: str, ts: float, user_id: str,
                         user_name: str, record_id: str, manageable: bool = True) -> str:
        return ("<result>"
                f"<createdById>{_xml(user_id)}</createdById><createdByName>{_xml(user_name)}</createdByName>"
                f"<createdDate>{_iso_datetime(ts)}</createdDate><fileName>{_xml(file_name)}</fileName>"
                f"<fullName>{_xml(full_name)}</fullName><id>{_xml(record_id)}</id>"
                f"<lastModifiedById>{_xml(user_id)}</lastModifiedById>"
                f"<lastModifiedByName>{_xml(user_name)}</lastModifiedByName>"
                f"<lastModifiedDate>{_iso_datetime(ts)}</lastModifiedDate>"
                + ("<manageableState>unmanaged</manageableState>" if manageable else "")
                + f"<type>{_xml(type_name)}</type></result>")

    def _components(self) -> List[Tuple[str, str, str, float]]:
        """(type, fullName, fileName, timestamp) of everything listMetadata knows."""
        comps: List[Tuple[str, str, str, float]] = []
        store = getattr(self.org, "store", None)
        created = float(getattr(self.org, "created_at", 0.0) or _now())
        try:
            names = [s["name"] for s in store.describe_global().get("sobjects", [])] if store is not None else []
        except Exception:  # noqa: BLE001 - a store without describe: list nothing
            names = []
        for name in names:
            comps.append(("CustomObject", name, f"objects/{name}.object", created))
        with self._lock:
            for (type_name, full_name), (file_name, _content, ts) in self.deployed.items():
                comps.append((type_name, full_name, file_name, ts))
        return comps

    def _md_list(self, op: ET.Element, session: Any, request: Request) -> Response:
        wanted = [(_text(q, "type") or "", _text(q, "folder")) for q in _children(op, "queries")]
        user_id = _user_id(session, self.org)
        user_name = _user_name(session, self.org)
        parts = []
        seen = set()
        for type_name, full_name, file_name, ts in self._components():
            if not any(type_name == t for t, _f in wanted):
                continue
            if (type_name, full_name) in seen:
                continue
            seen.add((type_name, full_name))
            rid = _make_id("01p" if type_name == "ApexClass" else "01I", self._org_id(),
                           int(hashlib.sha256(f"{type_name}/{full_name}".encode()).hexdigest()[:8], 16))
            parts.append(self._file_properties(type_name, full_name, file_name, ts, user_id, user_name, rid))
        return soap_ok("listMetadataResponse", "".join(parts))

    def _md_read(self, op: ET.Element, session: Any, request: Request) -> Response:
        """readMetadata: deployed Apex with its content; other known components with their
        fullName; unknown names as an empty record of the type (as Salesforce answers)."""
        type_name = _text(op, "type") or ""
        names = [e.text.strip() for e in _children(op, "fullNames") if e.text]
        known = {(t, n) for t, n, _f, _ts in self._components()}
        with self._lock:
            deployed = dict(self.deployed)
        records = []
        for name in names:
            if (type_name, name) not in known:
                records.append(f'<records xsi:type="{_xml(type_name)}"/>')
                continue
            inner = f"<fullName>{_xml(name)}</fullName>"
            content = deployed.get((type_name, name), ("", b"", 0.0))[1]
            if type_name in ("ApexClass", "ApexTrigger", "ApexPage", "ApexComponent"):
                inner += (f"<content>{base64.b64encode(content).decode()}</content>"
                          f"<apiVersion>{_xml(self._api_version(request))}</apiVersion>")
                if type_name in ("ApexClass", "ApexTrigger"):
                    inner += "<status>Active</status>"
            elif type_name == "CustomObject":
                inner += f"<label>{_xml(name)}</label>"
            records.append(f'<records xsi:type="{_xml(type_name)}">{inner}</records>')
        return soap_ok("readMetadataResponse", f"<result>{''.join(records)}</result>")

    def _md_deploy(self, op: ET.Element, session: Any, request: Request) -> Response:
        zip_b64 = _text(op, "ZipFile") or ""
        options = _child(op, "DeployOptions")

        def flag(name: str, default: bool = False) -> bool:
            value = _text(options, name)
            return default if value is None else value.lower() == "true"

        now = _now()
        req = AsyncMetadata(id=self._new_id("0Af"), kind="deploy", created=now, created_by=_user_id(session, self.org),
                            progress=_Progress(self.hold_polls), check_only=flag("checkOnly"),
                            ignore_warnings=flag("ignoreWarnings"), rollback_on_error=flag("rollbackOnError", True))
        try:
            raw = base64.b64decode(zip_b64, validate=False)
            with zipfile.ZipFile(io.BytesIO(raw)) as zf:
                files = {n: zf.read(n) for n in zf.namelist() if not n.endswith("/")}
        except (ValueError, zipfile.BadZipFile) as exc:
            req.error = f"The zip file is not valid: {exc}"
            files = {}
        staged: Dict[Tuple[str, str], Tuple[str, bytes, float]] = {}
        for path, content in files.items():
            parts = path.split("/")
            if parts[-1] == "package.xml" or parts[-1].endswith("-meta.xml") or len(parts) < 2:
                continue
            directory = parts[-2]
            type_name = _TYPE_BY_DIR.get(directory)
            if type_name is None:
                req.messages.append((path, f"Unknown type name '{directory}' specified in package.xml"))
                continue
            full_name = parts[-1].rsplit(".", 1)[0]
            file_name = f"{directory}/{parts[-1]}"
            req.components.append((type_name, full_name, file_name))
            staged[(type_name, full_name)] = (file_name, content, now)
        if not files and req.error is None:
            req.error = "No package.xml found"
        if not req.check_only and req.error is None:
            with self._lock:
                self.deployed.update(staged)
        with self._lock:
            self.metadata_requests[req.id] = req
            self.jobs_created["deploy"] += 1
        return soap_ok("deployResponse",
                       f"<result><done>false</done><id>{req.id}</id><state>Queued</state></result>")

    def _md_request(self, op: ET.Element, kind: str) -> AsyncMetadata:
        req_id = _text(op, "asyncProcessId") or ""
        with self._lock:
            req = self.metadata_requests.get(req_id)
        if req is None or req.kind != kind:
            raise HTTPError(soap_fault("sf:INVALID_ID_FIELD", f"INVALID_ID_FIELD: Invalid id: {req_id}", status=500))
        return req

    def _md_check_deploy(self, op: ET.Element, session: Any, request: Request) -> Response:
        req = self._md_request(op, "deploy")
        with self._lock:
            complete = req.progress.poll()
        user_id = _user_id(session, self.org)
        user_name = _user_name(session, self.org)
        total = len(req.components)
        if not complete:
            status, done, success, deployed = "InProgress", False, False, 0
        elif req.error:
            status, done, success, deployed = "Failed", True, False, 0
        else:
            status, done, success, deployed = "Succeeded", True, True, total
        details = ""
        if complete:
            for type_name, full_name, file_name in req.components:
                details += ("<componentSuccesses><changed>true</changed>"
                            f"<componentType>{_xml(type_name)}</componentType><created>true</created>"
                            f"<createdDate>{_iso_datetime(req.created)}</createdDate><deleted>false</deleted>"
                            f"<fileName>{_xml(file_name)}</fileName><fullName>{_xml(full_name)}</fullName>"
                            "<success>true</success></componentSuccesses>")
        result = (f"<checkOnly>{str(req.check_only).lower()}</checkOnly>"
                  + (f"<completedDate>{_iso_datetime(_now())}</completedDate>" if done else "")
                  + f"<createdBy>{_xml(user_id)}</createdBy><createdByName>{_xml(user_name)}</createdByName>"
                  f"<createdDate>{_iso_datetime(req.created)}</createdDate>"
                  f"<details>{details}</details><done>{str(done).lower()}</done>"
                  + (f"<errorMessage>{_xml(req.error)}</errorMessage>" if (done and req.error) else "")
                  + (f"<errorStatusCode>UNKNOWN_EXCEPTION</errorStatusCode>" if (done and req.error) else "")
                  + f"<id>{req.id}</id><ignoreWarnings>{str(req.ignore_warnings).lower()}</ignoreWarnings>"
                  f"<lastModifiedDate>{_iso_datetime(_now())}</lastModifiedDate>"
                  f"<numberComponentErrors>{1 if (done and req.error) else 0}</numberComponentErrors>"
                  f"<numberComponentsDeployed>{deployed}</numberComponentsDeployed>"
                  f"<numberComponentsTotal>{total}</numberComponentsTotal>"
                  "<numberTestErrors>0</numberTestErrors><numberTestsCompleted>0</numberTestsCompleted>"
                  "<numberTestsTotal>0</numberTestsTotal>"
                  f"<rollbackOnError>{str(req.rollback_on_error).lower()}</rollbackOnError>"
                  "<runTestsEnabled>false</runTestsEnabled>"
                  f"<startDate>{_iso_datetime(req.created)}</startDate>"
                  + ("" if done else "<stateDetail>Processing Type: ApexClass</stateDetail>")
                  + f"<status>{status}</status><success>{str(success).lower()}</success>")
        return soap_ok("checkDeployStatusResponse", f"<result>{result}</result>")

    def _md_retrieve(self, op: ET.Element, session: Any, request: Request) -> Response:
        rr = _child(op, "retrieveRequest")
        unpackaged = _child(rr, "unpackaged")
        wanted: List[Tuple[str, List[str]]] = []
        for t in _children(unpackaged, "types"):
            name = _text(t, "name") or ""
            members = [m.text.strip() for m in _children(t, "members") if m.text]
            wanted.append((name, members))
        single = (_text(rr, "singlePackage") or "true").lower() == "true"
        api_version = _text(rr, "apiVersion") or self._api_version(request)
        now = _now()
        req = AsyncMetadata(id=self._new_id("09S"), kind="retrieve", created=now,
                            created_by=_user_id(session, self.org), progress=_Progress(self.hold_polls))
        buf = io.BytesIO()
        prefix = "" if single else "unpackaged/"
        comps = self._components()
        with self._lock:
            deployed = dict(self.deployed)
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            package = ['<?xml version="1.0" encoding="UTF-8"?>',
                       f'<Package xmlns="{METADATA_NS}">']
            for type_name, members in wanted:
                matched = []
                for c_type, full_name, file_name, _ts in comps:
                    if c_type != type_name:
                        continue
                    if "*" in members or full_name in members:
                        matched.append(full_name)
                        content = deployed.get((c_type, full_name), (file_name, b"", 0.0))[1]
                        if not content and c_type == "CustomObject":
                            content = (f'<?xml version="1.0" encoding="UTF-8"?>\n<CustomObject xmlns="{METADATA_NS}">'
                                       f"<label>{_xml(full_name)}</label></CustomObject>\n").encode()
                        zf.writestr(prefix + file_name, content)
                        req.components.append((c_type, full_name, file_name))
                for member in members:
                    if member != "*" and member not in matched:
                        req.messages.append((f"{prefix}package.xml",
                                             f"Entity of type '{type_name}' named '{member}' cannot be found"))
                if matched:
                    package.append("    <types>")
                    package.extend(f"        <members>{_xml(m)}</members>" for m in sorted(matched))
                    package.append(f"        <name>{_xml(type_name)}</name>")
                    package.append("    </types>")
            package.append(f"    <version>{_xml(api_version)}</version>")
            package.append("</Package>")
            zf.writestr(prefix + "package.xml", "\n".join(package) + "\n")
        req.zip_bytes = buf.getvalue()
        with self._lock:
            self.metadata_requests[req.id] = req
            self.jobs_created["retrieve"] += 1
        return soap_ok("retrieveResponse",
                       f"<result><done>false</done><id>{req.id}</id><state>Queued</state></result>")

    def _md_check_retrieve(self, op: ET.Element, session: Any, request: Request) -> Response:
        req = self._md_request(op, "retrieve")
        include_zip = (_text(op, "includeZip") or "true").lower() == "true"
        with self._lock:
            complete = req.progress.poll()
        user_id = _user_id(session, self.org)
        user_name = _user_name(session, self.org)
        if not complete:
            result = f"<done>false</done><id>{req.id}</id><status>InProgress</status><success>false</success>"
            return soap_ok("checkRetrieveStatusResponse", f"<result>{result}</result>")
        props = "".join(
            self._file_properties(t, n, f, req.created, user_id, user_name,
                                  _make_id("01p", self._org_id(), i + 1)).replace("<result>", "<fileProperties>")
            .replace("</result>", "</fileProperties>")
            for i, (t, n, f) in enumerate(req.components))
        messages = "".join(f"<messages><fileName>{_xml(f)}</fileName><problem>{_xml(p)}</problem></messages>"
                           for f, p in req.messages)
        result = (f"<done>true</done>{props}<id>{req.id}</id>{messages}"
                  "<status>Succeeded</status><success>true</success>"
                  + (f"<zipFile>{base64.b64encode(req.zip_bytes).decode()}</zipFile>" if include_zip else ""))
        return soap_ok("checkRetrieveStatusResponse", f"<result>{result}</result>")


# --------------------------------------------------------------------------- renderers


def _xml_scalar(value: Any) -> Any:
    if value is True:
        return "true"
    if value is False:
        return "false"
    return value


def _encode_locator(offset: int) -> str:
    return base64.b64encode(str(offset).encode("ascii")).decode("ascii").rstrip("=")


def _decode_locator(locator: str) -> Optional[int]:
    try:
        padded = locator + "=" * (-len(locator) % 4)
        value = int(base64.b64decode(padded.encode("ascii"), validate=True).decode("ascii"))
    except (ValueError, UnicodeError):
        return None
    return value if value >= 0 else None


def _render_csv(columns: Sequence[str], rows: Iterable[Sequence[Any]], delimiter: str, line_ending: str) -> str:
    """Bulk CSV: every value double-quoted, nulls as empty strings."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator=line_ending, quoting=csv.QUOTE_ALL)
    writer.writerow(list(columns))
    for row in rows:
        writer.writerow([_csv_value(v) for v in row])
    return out.getvalue()


def _record_xml(record: dict, tag: str) -> str:
    attrs = record.get("attributes") or {}
    parts = [f'<{tag} xsi:type="sObject">', f"<type>{_xml(attrs.get('type', ''))}</type>"]
    for key, value in record.items():
        if key == "attributes":
            continue
        if isinstance(value, dict) and "attributes" in value:
            parts.append(_record_xml(value, key))
        elif isinstance(value, dict):
            continue  # child subqueries are refused before we get here
        elif value is None:
            parts.append(f'<{key} xsi:nil="true"/>')
        else:
            parts.append(f"<{key}>{_xml(_xml_scalar(value))}</{key}>")
    parts.append(f"</{tag}>")
    return "".join(parts)


def _records_xml(records: List[dict]) -> str:
    return (f'<?xml version="1.0" encoding="UTF-8"?><queryResult xmlns="{DATALOAD_NS}" xmlns:xsi="{XSI_NS}">'
            + "".join(_record_xml(r, "records") for r in records) + "</queryResult>")


def bulk1_error_response(fmt: str, code: str, message: str, status: int = 400) -> Response:
    """Bulk API 1.0's error body, as JSON or as XML in the dataload namespace."""
    if fmt == "JSON":
        return json_response({"exceptionCode": code, "exceptionMessage": message}, status=status)
    doc = (f'<?xml version="1.0" encoding="UTF-8"?><error\n   xmlns="{DATALOAD_NS}">\n'
           f" <exceptionCode>{_xml(code)}</exceptionCode>\n"
           f" <exceptionMessage>{_xml(message)}</exceptionMessage>\n</error>")
    return xml_response(doc, status=status)


def soap_ok(element: str, inner: str) -> Response:
    doc = ('<?xml version="1.0" encoding="UTF-8"?>'
           f'<soapenv:Envelope xmlns:soapenv="{SOAPENV_NS}" xmlns="{METADATA_NS}" xmlns:xsi="{XSI_NS}">'
           f"<soapenv:Body><{element}>{inner}</{element}></soapenv:Body></soapenv:Envelope>")
    return xml_response(doc, status=200, content_type=SOAP_CT)


def soap_fault(faultcode: str, faultstring: str, *, status: int = 500, exception_code: Optional[str] = None,
               exception_message: Optional[str] = None) -> Response:
    """A SOAP 1.1 fault as the Metadata API sends it (HTTP 500, text/xml)."""
    detail = ""
    if exception_code:
        detail = (f'<detail><sf:UnexpectedErrorFault xsi:type="sf:UnexpectedErrorFault">'
                  f"<sf:exceptionCode>{_xml(exception_code)}</sf:exceptionCode>"
                  f"<sf:exceptionMessage>{_xml(exception_message or '')}</sf:exceptionMessage>"
                  "</sf:UnexpectedErrorFault></detail>")
    doc = ('<?xml version="1.0" encoding="UTF-8"?>'
           f'<soapenv:Envelope xmlns:soapenv="{SOAPENV_NS}" xmlns:sf="{METADATA_NS}" xmlns:xsi="{XSI_NS}">'
           f"<soapenv:Body><soapenv:Fault><faultcode>{_xml(faultcode)}</faultcode>"
           f"<faultstring>{_xml(faultstring)}</faultstring>{detail}</soapenv:Fault></soapenv:Body></soapenv:Envelope>")
    return xml_response(doc, status=status, content_type=SOAP_CT)


def _session_hash(token: Optional[str]) -> str:
    """What Salesforce prints after 'missing session hash:' (a digest, never the token)."""
    return base64.b64encode(hashlib.sha256((token or "").encode("utf-8")).digest()).decode("ascii")


def invalid_session_soap_fault(token: Optional[str], reason: str = "expired") -> Response:
    if reason == "not_valid_for_api":
        message = "This session is not valid for use with the API"
    elif token:
        message = ("Invalid Session ID found in SessionHeader: Illegal Session. Session not found, "
                   f"missing session hash: {_session_hash(token)}\n"
                   "This error usually occurs after a session expires or a user logs out.")
    else:
        message = "Invalid Session ID found in SessionHeader: Illegal Session"
    return soap_fault("sf:INVALID_SESSION_ID", f"INVALID_SESSION_ID: {message}", status=500,
                      exception_code="INVALID_SESSION_ID", exception_message=message)


# --------------------------------------------------------------------------- authentication


def _user_id(session: Any, org: Any) -> str:
    for attr in ("user_id", "userId"):
        value = getattr(session, attr, None)
        if value:
            return str(value)
    if isinstance(session, dict) and session.get("user_id"):
        return str(session["user_id"])
    return "005000000000001AAA"


def _user_name(session: Any, org: Any) -> str:
    user_id = _user_id(session, org)
    users = getattr(org, "users", None) or {}
    for user in list(users.values()) if isinstance(users, dict) else []:
        if getattr(user, "user_id", None) == user_id:
            return str(getattr(user, "name", "") or getattr(user, "username", "") or "Local Org User")
    return "Local Org User"


def _authenticate(org: Any, request: Request, flavour: str, token: Optional[str]) -> Any:
    """Check ``token`` with ``org.require_session``; raise ``HTTPError`` with the flavour's answer.

    flavour "rest" (Bulk 2.0) and "bulk1" use the org's own error bodies. For "soap" (Metadata
    API) the fault is built here: its ``sf`` prefix is the metadata namespace and its text is the
    one Salesforce gives for an expired session ("... Illegal Session. Session not found, missing
    session hash: ...").
    """
    api = {"rest": "bulk2", "bulk1": "bulk1", "soap": "soap"}[flavour]
    if flavour == "soap":
        try:
            return org.require_session(request, api=api, token=token or "")
        except HTTPError:
            reason = "not_valid_for_api" if getattr(org, "reject_sessions", False) else "expired"
            raise HTTPError(invalid_session_soap_fault(token, reason)) from None
    return org.require_session(request, api=api, token=token if token is not None else "")


# --------------------------------------------------------------------------- registration


def register(router: Any, org: Any) -> BulkService:
    """Add the Bulk 2.0, Bulk 1.0 and SOAP Metadata routes for ``org`` to ``router``."""
    service = getattr(org, "bulk", None)
    if not isinstance(service, BulkService):
        service = BulkService(org)
        try:
            org.bulk = service
        except AttributeError:  # a LocalOrg with __slots__: the service still works through the routes
            pass
    v2 = rf"/services/data/v{_VERSION}/jobs/query"
    job2 = v2 + rf"/(?P<job>{_ID})"
    router.add("instance", "POST", v2, service.bulk2_create)
    router.add("instance", "GET", v2, service.bulk2_list)
    router.add("instance", "GET", job2, service.bulk2_status)
    router.add("instance", "PATCH", job2, service.bulk2_patch)
    router.add("instance", "DELETE", job2, service.bulk2_delete)
    router.add("instance", "GET", job2 + "/results", service.bulk2_results)

    v1 = rf"/services/async/{_VERSION}/job"
    job1 = v1 + rf"/(?P<job>{_ID})"
    batch1 = job1 + rf"/batch/(?P<batch>{_ID})"
    router.add("instance", "POST", v1, service.bulk1_create_job)
    router.add("instance", "GET", job1, service.bulk1_job)
    router.add("instance", "POST", job1, service.bulk1_job)
    router.add("instance", "POST", job1 + "/batch", service.bulk1_add_batch)
    router.add("instance", "GET", job1 + "/batch", service.bulk1_batches)
    router.add("instance", "GET", batch1, service.bulk1_batch)
    router.add("instance", "GET", batch1 + "/request", service.bulk1_batch_request)
    router.add("instance", "GET", batch1 + "/result", service.bulk1_result_list)
    router.add("instance", "GET", batch1 + rf"/result/(?P<result>{_ID})", service.bulk1_result)

    router.add("instance", "POST", rf"/services/Soap/m/{_VERSION}(?:/.*)?", service.soap_metadata)
    return service
