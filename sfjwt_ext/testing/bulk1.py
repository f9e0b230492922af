"""Bulk API 1.0 of the local org (``/services/async/XX.X/job``): query and ingest jobs.

``X-SFDC-Session``; an expired session -> 400 ``InvalidSessionId`` as JSON or XML, following
the request's content type.
    ``POST /services/async/XX.X/job``          create: query, queryAll, insert, update, upsert
                                               (``externalIdFieldName``), delete, hardDelete;
                                               contentType JSON, XML or CSV;
                                               ``Sforce-Enable-PKChunking`` on query jobs
    ``GET|POST .../job/<id>``                  info / close or abort
    ``POST|GET .../job/<id>/batch``            add a batch (SOQL, or records as CSV/JSON/XML) / list
    ``GET .../batch/<id>``, ``.../batch/<id>/request``, ``.../batch/<id>/result``,
    ``.../batch/<id>/result/<resultId>`` (query results)

Answers follow the job's content type (JSON jobs answer JSON, XML and CSV jobs XML, CSV ingest
results and CSV query results CSV); before a job is known, the request's ``Content-Type``.
The media types are bare (``application/json``, ``application/xml``, ``text/csv``), as
Salesforce sends them: salesforce-bulk compares them with ``==``.

Ingest batches change ``org.store`` when they are added, row by row: a bad row fails alone
with Salesforce's error code (``"Id","Success","Created","Error"`` in CSV results). In CSV,
an empty value leaves the field alone and ``#N/A`` sets it to null; ``Account.Ext__c``
columns (and ``{"Account": {"Ext__c": ...}}`` in JSON) name a parent by an external id.

With PK chunking, a query batch becomes ``NotProcessed`` and one batch per ``chunkSize``
records (by Id) is added, its request the SOQL with an ``Id >= ... AND Id < ...`` range.
Jobs are kept on ``org.bulk`` (:class:`~.bulk.BulkService`); ``org.bulk.bulk1_result_size``
is the records per query result file."""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple
from xml.etree import ElementTree as ET

from .bulk import (BulkRefusal, BulkService, ID_RE, Progress, Rows, VERSION_RE, XSI_NS, authenticate,
                   child_text, local_name, now_ts, render_csv, run_query, sf_datetime, xml_text)
from .http import HTTPError, Request, Response, Router, parse_json
from .dml import (DescribeCache, MultipleMatches, bulk_error_text, bulk_typed, check_id, existing, insert,
                  resolve_parents, save_error, upsert)
from .ids import is_valid_id, to_18
from .oauth import Session
from .rest import OLDEST_VERSION, with_api_version
from .soql import SoqlError

if TYPE_CHECKING:
    from .org import LocalOrg

__all__ = ["Bulk1Api", "Bulk1Job", "Bulk1Batch", "RowResult", "register", "DATALOAD_NS", "MEDIA_TYPES"]

DATALOAD_NS = "http://www.force.com/2009/06/asyncapi/dataload"

#: the Content-Type of each answer format, exactly as Salesforce sends it (no charset)
MEDIA_TYPES = {"JSON": "application/json", "XML": "application/xml", "CSV": "text/csv"}

QUERY_OPERATIONS = ("query", "queryAll")
INGEST_OPERATIONS = ("insert", "update", "upsert", "delete", "hardDelete")
NULL_VALUE = "#N/A"
PK_CHUNK_DEFAULT, PK_CHUNK_MAX = 100_000, 250_000


@dataclass
class RowResult:
    """One ingest row's outcome (a line of the batch results)."""

    id: Optional[str]
    success: bool
    created: bool
    error: Optional[SoqlError] = None


@dataclass
class Bulk1Batch:
    id: str
    job_id: str
    soql: str                      # the request body as text (SOQL, or the records)
    created: float
    progress: Progress
    state: str = "Queued"
    state_message: Optional[str] = None
    rows: Optional[Rows] = None                    # query batches
    results: Optional[List[RowResult]] = None      # ingest batches
    result_ids: List[str] = field(default_factory=list)
    modstamp: float = 0.0
    chunked: bool = False          # PK chunking replaced this batch by chunk batches (NotProcessed)

    @property
    def processed(self) -> int:
        if self.state != "Completed":
            return 0
        if self.results is not None:
            return len(self.results)
        return self.rows.count if self.rows is not None else 0

    @property
    def failed(self) -> int:
        if self.state != "Completed" or self.results is None:
            return 0
        return sum(1 for r in self.results if not r.success)


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
    external_id_field: Optional[str] = None
    pk_chunk_size: Optional[int] = None
    pk_start_row: Optional[str] = None
    batches: List[Bulk1Batch] = field(default_factory=list)

    @property
    def answers(self) -> str:
        """The format of this job's answers: JSON for JSON jobs, XML otherwise."""
        return "JSON" if self.content_type == "JSON" else "XML"


class BatchFailure(Exception):
    """The whole batch fails (state Failed) with this state message."""


# --------------------------------------------------------------------------- rendering


def _xml_scalar(value: Any) -> Any:
    if value is True:
        return "true"
    if value is False:
        return "false"
    return value


def _xml_datetime(ts: float) -> str:
    """jobInfo/batchInfo XML dates: ``2015-12-15T21:41:45.000Z`` (JSON has ``+0000``)."""
    d = _dt.datetime.fromtimestamp(ts, tz=_dt.timezone.utc)
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond // 1000:03d}Z"


def _record_xml(record: dict, tag: str) -> str:
    attrs = record.get("attributes") or {}
    parts = [f'<{tag} xsi:type="sObject">', f"<type>{xml_text(attrs.get('type', ''))}</type>"]
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
            parts.append(f"<{key}>{xml_text(_xml_scalar(value))}</{key}>")
    parts.append(f"</{tag}>")
    return "".join(parts)


def _records_xml(records: List[dict]) -> str:
    return (f'<?xml version="1.0" encoding="UTF-8"?><queryResult xmlns="{DATALOAD_NS}" xmlns:xsi="{XSI_NS}">'
            + "".join(_record_xml(r, "records") for r in records) + "</queryResult>")


def _answer(fmt: str, body: Any, status: int = 200) -> Response:
    """``body`` (JSON data, or an XML/CSV document) with Salesforce's bare media type."""
    if fmt == "JSON":
        data = json.dumps(body, separators=(",", ":"), default=str).encode("utf-8")
    else:
        data = body.encode("utf-8") if isinstance(body, str) else bytes(body)
    return Response(status=status, body=data, headers={}, content_type=MEDIA_TYPES[fmt])


def bulk1_error_response(fmt: str, code: str, message: str, status: int = 400) -> Response:
    """Bulk API 1.0's error body, as JSON or as XML in the dataload namespace."""
    if fmt == "JSON":
        return _answer("JSON", {"exceptionCode": code, "exceptionMessage": message}, status)
    doc = (f'<?xml version="1.0" encoding="UTF-8"?><error\n   xmlns="{DATALOAD_NS}">\n'
           f" <exceptionCode>{xml_text(code)}</exceptionCode>\n"
           f" <exceptionMessage>{xml_text(message)}</exceptionMessage>\n</error>")
    return _answer("XML", doc, status)


def _results_csv(results: List[RowResult]) -> str:
    rows = [[r.id or "", "true" if r.success else "false", "true" if r.created else "false",
             bulk_error_text(r.error) if r.error else ""] for r in results]
    return render_csv(["Id", "Success", "Created", "Error"], rows, ",", "\n")


def _results_json(results: List[RowResult]) -> List[Dict[str, Any]]:
    return [{"success": r.success, "created": r.created, "id": r.id,
             "errors": [] if r.error is None else [save_error(r.error)]}
            for r in results]


def _results_xml(results: List[RowResult]) -> str:
    parts = []
    for r in results:
        errors = ""
        if r.error is not None:
            errors = ("<errors>" + "".join(f"<fields>{xml_text(f)}</fields>" for f in r.error.fields)
                      + f"<message>{xml_text(r.error.message)}</message>"
                      f"<statusCode>{xml_text(r.error.error_code)}</statusCode></errors>")
        ident = f"<id>{r.id}</id>" if r.id else '<id xsi:nil="true"/>'
        parts.append(f"<result>{errors}{ident}<success>{_xml_scalar(r.success)}</success>"
                     f"<created>{_xml_scalar(r.created)}</created></result>")
    return (f'<?xml version="1.0" encoding="UTF-8"?><results xmlns="{DATALOAD_NS}" xmlns:xsi="{XSI_NS}">'
            + "".join(parts) + "</results>")


# --------------------------------------------------------------------------- ingest rows


def parse_records(content_type: str, body: bytes) -> List[Dict[str, Any]]:
    """An ingest batch's records. CSV: empty values are left out, ``#N/A`` is null, a column
    ``Rel.Field`` becomes ``{"Rel": {"Field": value}}``. Raises ``BatchFailure``."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BatchFailure("InvalidBatch : Failed to parse the batch: it is not UTF-8") from None
    if content_type == "JSON":
        try:
            data = parse_json(text)
        except ValueError as exc:
            raise BatchFailure(f"InvalidBatch : Failed to parse JSON: {exc}") from None
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise BatchFailure("InvalidBatch : Failed to parse JSON: expected an array of records")
        return [{k: v for k, v in r.items() if k != "attributes"} for r in data]
    if content_type == "XML":
        try:
            root = ET.fromstring(body or b"<sObjects/>")
        except ET.ParseError as exc:
            raise BatchFailure(f"InvalidBatch : Failed to parse XML: {exc}") from None
        return [_xml_record(elem) for elem in root if local_name(elem.tag) == "sObject"]
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if not header:
        raise BatchFailure("InvalidBatch : Failed to parse CSV header")
    records = []
    for line in reader:
        if not line:
            continue
        record: Dict[str, Any] = {}
        for name, value in zip(header, line):
            if value == "":
                continue
            parsed: Any = None if value == NULL_VALUE else value
            rel, dot, leaf = name.partition(".")
            if dot:
                record.setdefault(rel, {})[leaf] = parsed
            else:
                record[name] = parsed
        records.append(record)
    return records


def _xml_record(elem: ET.Element) -> Dict[str, Any]:
    record: Dict[str, Any] = {}
    for item in elem:
        name = local_name(item.tag)
        if len(item):
            record[name] = _xml_record(item)
        elif item.get(f"{{{XSI_NS}}}nil") == "true":
            record[name] = None
        else:
            record[name] = item.text or ""
    return record


class RowWriter:
    """Applies one ingest batch's records to the store the way Salesforce does, row by row
    (the lookups and the upsert are :mod:`.dml`'s, shared with the other write APIs)."""

    def __init__(self, org: LocalOrg, job: Bulk1Job) -> None:
        self.store = org.store
        self.job = job
        self.cache = DescribeCache(self.store)
        self.fields = self.cache.fields(job.object)
        self.sobject: str = self.fields.sobject

    def check_columns(self, records: List[Dict[str, Any]]) -> None:
        """A column the object does not have fails the whole batch, as in Salesforce."""
        seen = set()
        for record in records:
            for key, value in record.items():
                lower = str(key).lower()
                if lower in seen:
                    continue
                seen.add(lower)
                if self.fields.get(lower) is not None or (isinstance(value, dict) and lower in self.fields.relationships):
                    continue
                raise BatchFailure(f"InvalidBatch : Field name not found : {key}")

    def apply(self, records: List[Dict[str, Any]]) -> List[RowResult]:
        if self.job.operation == "insert":
            try:   # the common case in one store call; a bad row sends us row by row
                values = [self._parents(r) for r in records]
                return [RowResult(rid, True, True) for rid in insert(self.store, self.sobject, values)]
            except SoqlError:
                pass
        return [self._one(record) for record in records]

    def _one(self, record: Dict[str, Any]) -> RowResult:
        try:
            if self.job.content_type == "JSON":  # typed values: the REST wording (JSON_PARSER_ERROR)
                return self._write(record)
            return bulk_typed(lambda: self._write(record), record, self.cache, self.sobject)
        except MultipleMatches as exc:
            return RowResult(None, False, False, exc.as_error())
        except SoqlError as exc:
            return RowResult(None, False, False, exc)

    def _parents(self, record: Dict[str, Any]) -> Dict[str, Any]:
        """``{"Account": {"Ext__c": v}}`` -> ``{"AccountId": <that Account's id>}``."""
        if not any(isinstance(v, dict) for v in record.values()):
            return record
        return resolve_parents(self.cache, self.sobject, record)

    def _write(self, record: Dict[str, Any]) -> RowResult:
        op = self.job.operation
        if op == "insert":
            return RowResult(insert(self.store, self.sobject, [self._parents(record)])[0], True, True)
        if op == "upsert":
            return self._upsert(record)
        record_id = self._record_id(record)
        if op == "update":
            values = self._parents({k: v for k, v in record.items() if k.lower() != "id"})
            existing(lambda: self.store.update(self.sobject, record_id, values))
        elif op == "hardDelete":
            existing(lambda: self.store.hard_delete(self.sobject, record_id))
        else:   # delete: the store keeps the row for queryAll
            existing(lambda: self.store.delete(self.sobject, record_id))
        return RowResult(record_id, True, False)

    def _record_id(self, values: Dict[str, Any]) -> str:
        raw = next((v for k, v in values.items() if k.lower() == "id"), None)
        if raw in (None, ""):
            call = "an update" if self.job.operation == "update" else "a delete"
            raise SoqlError("MISSING_ARGUMENT", f"Id not specified in {call} call", fields=[])
        return to_18(check_id(self.sobject, raw))

    def _upsert(self, record: Dict[str, Any]) -> RowResult:
        ext = self.fields.external_id(str(self.job.external_id_field))
        value = next((v for k, v in record.items() if k.lower() == ext["name"].lower()), None)
        if ext["type"] == "id" and value not in (None, ""):
            value = to_18(check_id(self.sobject, value))
        record_id, created = existing(lambda: upsert(self.cache, self.sobject, ext["name"], value, record))
        return RowResult(record_id, True, created)


# --------------------------------------------------------------------------- PK chunking


_PK_CHUNK_RE = re.compile(r"chunkSize\s*=\s*(\d+)", re.I)
_PK_START_RE = re.compile(r"startRow\s*=\s*(\w+)", re.I)
_SIMPLE_SOQL = re.compile(r"^(?P<head>\s*SELECT\s.+?\sFROM\s+\w+)(?:\s+WHERE\s+(?P<where>.+?))?\s*$", re.I | re.S)


def pk_chunking(header: Optional[str]) -> Tuple[Optional[int], Optional[str]]:
    """``Sforce-Enable-PKChunking``: ``true``, ``chunkSize=N``, ``chunkSize=N; startRow=Id`` or
    ``false``/absent -> (chunk size or None, start row or None). ValueError for a bad size."""
    text = (header or "").strip()
    if not text or text.lower() == "false":
        return None, None
    size_match = _PK_CHUNK_RE.search(text)
    size = int(size_match.group(1)) if size_match else PK_CHUNK_DEFAULT
    if not 1 <= size <= PK_CHUNK_MAX:
        raise ValueError(f"Invalid chunk size: {size}: it must be between 1 and {PK_CHUNK_MAX}")
    start = _PK_START_RE.search(text)
    return size, start.group(1) if start else None


def chunk_queries(org: LocalOrg, job: Bulk1Job, soql_text: str) -> List[str]:
    """The SOQL of each PK chunk: the query with an Id range of ``job.pk_chunk_size`` records."""
    match = _SIMPLE_SOQL.match(soql_text)
    if match is None or re.search(r"\b(ORDER\s+BY|LIMIT|OFFSET|GROUP\s+BY)\b", soql_text, re.I):
        raise BatchFailure("InvalidBatch : Failed to process query: PK chunking supports SELECT ... FROM ... "
                           "[WHERE ...] only")
    _cols, rows = org.store.query_flat(f"SELECT Id FROM {job.object}", include_deleted=job.operation == "queryAll")
    ids = sorted(str(r[0]) for r in rows)
    if job.pk_start_row and is_valid_id(job.pk_start_row):
        first = to_18(job.pk_start_row)
        ids = [i for i in ids if i >= first]
    size = int(job.pk_chunk_size or PK_CHUNK_DEFAULT)
    starts = ids[::size] or [""]
    where = match.group("where")
    queries = []
    for n, start in enumerate(starts):
        bounds = []
        if start:
            bounds.append(f"Id >= '{start}'")
        if n + 1 < len(starts):
            bounds.append(f"Id < '{starts[n + 1]}'")
        condition = " AND ".join(bounds + ([f"({where})"] if where else []))
        queries.append(match.group("head") + (f" WHERE {condition}" if condition else ""))
    return queries


# --------------------------------------------------------------------------- handlers


class Bulk1Api:
    """The Bulk API 1.0 handlers of one org."""

    _JOB_XML_ORDER = ["id", "operation", "object", "createdById", "createdDate", "systemModstamp", "state",
                      "externalIdFieldName", "concurrencyMode", "contentType", "numberBatchesQueued",
                      "numberBatchesInProgress", "numberBatchesCompleted", "numberBatchesFailed",
                      "numberBatchesTotal", "numberRecordsProcessed", "numberRetries", "apiVersion",
                      "numberRecordsFailed", "totalProcessingTime", "apiActiveProcessingTime", "apexProcessingTime"]

    _BATCH_XML_ORDER = ["id", "jobId", "state", "stateMessage", "createdDate", "systemModstamp",
                        "numberRecordsProcessed", "numberRecordsFailed", "totalProcessingTime",
                        "apiActiveProcessingTime", "apexProcessingTime"]

    def __init__(self, org: LocalOrg) -> None:
        self.org = org
        self.service: BulkService = org.bulk

    # ----------------------------------------------------------------- lookups

    @staticmethod
    def _request_format(request: Request) -> str:
        """Before a job is known, answers follow the request's Content-Type (XML by default)."""
        return "JSON" if "json" in request.content_type else "XML"

    def _context(self, request: Request) -> Tuple[Bulk1Job, str]:
        """Authenticate, find the job; (job, the job's answer format)."""
        fmt = self._request_format(request)
        authenticate(self.org, request, "bulk1", request.header("X-SFDC-Session"))
        job_id = request.match.group("job") if request.match else ""
        with self.service._lock:
            job = self.service.bulk1_jobs.get(job_id) or self.service.bulk1_jobs.get(
                to_18(job_id) if len(job_id) == 15 else "")
        if job is None:
            raise HTTPError(bulk1_error_response(fmt, "InvalidJob", f"Invalid job id: {job_id}"))
        return job, job.answers

    def _batch(self, request: Request, job: Bulk1Job) -> Bulk1Batch:
        batch_id = request.match.group("batch") if request.match else ""
        with self.service._lock:
            for batch in job.batches:
                if batch.id == batch_id or batch.id[:15] == batch_id:
                    return batch
        raise HTTPError(bulk1_error_response(job.answers, "InvalidBatch", f"Invalid batch id: {batch_id}"))

    # ----------------------------------------------------------------- info bodies

    def _job_dict(self, job: Bulk1Job) -> Dict[str, Any]:
        with self.service._lock:
            batches = list(job.batches)
        counts = {"Queued": 0, "InProgress": 0, "Completed": 0, "Failed": 0, "NotProcessed": 0}
        for b in batches:
            counts[b.state] = counts.get(b.state, 0) + 1
        return {
            "apexProcessingTime": 0,
            "apiActiveProcessingTime": 0,
            "apiVersion": float(job.api_version),
            "assignmentRuleId": None,
            "concurrencyMode": job.concurrency,
            "contentType": job.content_type,
            "createdById": job.created_by,
            "createdDate": sf_datetime(job.created),
            "externalIdFieldName": job.external_id_field,
            "fastPathEnabled": False,
            "id": job.id,
            "numberBatchesCompleted": counts["Completed"],
            "numberBatchesFailed": counts["Failed"],
            "numberBatchesInProgress": counts["InProgress"],
            "numberBatchesQueued": counts["Queued"],
            "numberBatchesTotal": len(batches),
            "numberRecordsFailed": sum(b.failed for b in batches),
            "numberRecordsProcessed": sum(b.processed for b in batches),
            "numberRetries": 0,
            "object": job.object,
            "operation": job.operation,
            "state": job.state,
            "systemModstamp": sf_datetime(job.modstamp or job.created),
            "totalProcessingTime": 0,
        }

    def _job_response(self, job: Bulk1Job, fmt: str, status: int = 200) -> Response:
        data = self._job_dict(job)
        if fmt == "JSON":
            return _answer("JSON", data, status)
        data["createdDate"] = _xml_datetime(job.created)
        data["systemModstamp"] = _xml_datetime(job.modstamp or job.created)
        parts = [f"<{k}>{xml_text(_xml_scalar(data[k]))}</{k}>" for k in self._JOB_XML_ORDER
                 if data[k] is not None]
        return _answer("XML", f'<?xml version="1.0" encoding="UTF-8"?><jobInfo xmlns="{DATALOAD_NS}">'
                              + "".join(parts) + "</jobInfo>", status)

    def _batch_dict(self, batch: Bulk1Batch) -> Dict[str, Any]:
        return {
            "apexProcessingTime": 0,
            "apiActiveProcessingTime": 0,
            "createdDate": sf_datetime(batch.created),
            "id": batch.id,
            "jobId": batch.job_id,
            "numberRecordsFailed": batch.failed,
            "numberRecordsProcessed": batch.processed,
            "state": batch.state,
            "stateMessage": batch.state_message,
            "systemModstamp": sf_datetime(batch.modstamp or batch.created),
            "totalProcessingTime": 0,
        }

    def _batch_xml(self, batch: Bulk1Batch) -> str:
        data = self._batch_dict(batch)
        data["createdDate"] = _xml_datetime(batch.created)
        data["systemModstamp"] = _xml_datetime(batch.modstamp or batch.created)
        return "".join(f"<{k}>{xml_text(_xml_scalar(data[k]))}</{k}>" for k in self._BATCH_XML_ORDER
                       if not (k == "stateMessage" and data[k] is None))

    def _batch_response(self, batch: Bulk1Batch, fmt: str, status: int = 200) -> Response:
        if fmt == "JSON":
            return _answer("JSON", self._batch_dict(batch), status)
        return _answer("XML", f'<?xml version="1.0" encoding="UTF-8"?><batchInfo xmlns="{DATALOAD_NS}">'
                              + self._batch_xml(batch) + "</batchInfo>", status)

    # ----------------------------------------------------------------- jobs

    def create_job(self, request: Request) -> Response:
        fmt = self._request_format(request)
        session = authenticate(self.org, request, "bulk1", request.header("X-SFDC-Session"))
        names = ("operation", "object", "contentType", "concurrencyMode", "externalIdFieldName")
        if fmt == "JSON":
            try:
                body = parse_json(request.body)
            except ValueError:
                return bulk1_error_response(fmt, "InvalidJob", "Unable to parse the job: invalid JSON")
            if not isinstance(body, dict):
                return bulk1_error_response(fmt, "InvalidJob", "Unable to parse the job: expected a JSON object")
            spec = {k: body.get(k) for k in names}
        else:
            try:
                root = ET.fromstring(request.body or b"<x/>")
            except ET.ParseError as exc:
                return bulk1_error_response(fmt, "InvalidXML", f"Unable to parse XML: {exc}")
            spec = {k: child_text(root, k) for k in names}
        try:
            job = self._new_job(request, session, spec, fmt)
        except BatchFailure as exc:
            return bulk1_error_response(fmt, "InvalidJob", str(exc))
        with self.service._lock:
            self.service.bulk1_jobs[job.id] = job
            self.service.jobs_created["bulk1"] += 1
        return self._job_response(job, fmt, status=201)   # no job yet: the request's format

    def _new_job(self, request: Request, session: Session, spec: Dict[str, Any], fmt: str) -> Bulk1Job:
        operation = str(spec.get("operation") or "")
        if operation not in QUERY_OPERATIONS + INGEST_OPERATIONS:
            raise BatchFailure(f"Invalid operation: {operation or 'none given'}: use one of "
                               f"{', '.join(QUERY_OPERATIONS + INGEST_OPERATIONS)}")
        obj = str(spec.get("object") or "")
        if not obj or not self.org.store.has_object(obj):
            raise BatchFailure(f"Unable to find object: {obj}")
        obj = self.org.store.object_name(obj)
        content_type = str(spec.get("contentType") or ("JSON" if fmt == "JSON" else "XML")).upper()
        if content_type not in MEDIA_TYPES:
            raise BatchFailure(f"Invalid content type: {content_type}: the local org takes JSON, XML or CSV")
        external = spec.get("externalIdFieldName")
        if operation == "upsert":
            fields = {f["name"].lower(): f for f in self.org.store.describe(obj)["fields"]}
            described = fields.get(str(external or "").lower())
            if not external:
                raise BatchFailure("External ID field name is required for upsert: set externalIdFieldName")
            if described is None or not (described["type"] == "id" or described.get("externalId")
                                         or described.get("idLookup")):
                raise BatchFailure(f"Field name provided, {external} is not an External ID or indexed field "
                                   f"for {obj}")
            external = described["name"]
        try:
            chunk, start = pk_chunking(request.header("Sforce-Enable-PKChunking")) \
                if operation in QUERY_OPERATIONS else (None, None)
        except ValueError as exc:
            raise BatchFailure(str(exc)) from None
        mode = spec.get("concurrencyMode")
        now = now_ts()
        return Bulk1Job(id=self.service._new_id("750"), operation=operation, object=obj,
                        content_type=content_type,
                        concurrency="Serial" if str(mode) in ("1", "Serial", "serial") else "Parallel",
                        created_by=session.user_id, created=now, modstamp=now,
                        api_version=self.service._api_version(request),
                        external_id_field=str(external) if operation == "upsert" else None,
                        pk_chunk_size=chunk, pk_start_row=start)

    def job(self, request: Request) -> Response:
        job, fmt = self._context(request)
        if request.method == "POST":
            state = self._requested_state(request)
            if state not in ("Closed", "Aborted"):
                return bulk1_error_response(fmt, "InvalidJobState", f"Invalid job state: {state}")
            with self.service._lock:
                if job.state != "Open" and job.state != state:
                    return bulk1_error_response(fmt, "InvalidJobState",
                                                f"Job {job.id} is {job.state} and cannot be {state}")
                job.state = str(state)
                job.modstamp = now_ts()
        return self._job_response(job, fmt)

    def _requested_state(self, request: Request) -> Optional[str]:
        if self._request_format(request) == "JSON":
            try:
                body = parse_json(request.body)
            except ValueError:
                return None
            return body.get("state") if isinstance(body, dict) else None
        try:
            return child_text(ET.fromstring(request.body or b"<x/>"), "state")
        except ET.ParseError:
            return None

    # ----------------------------------------------------------------- batches

    def add_batch(self, request: Request) -> Response:
        job, fmt = self._context(request)
        if job.state != "Open":
            return bulk1_error_response(fmt, "InvalidJobState", f"Job {job.id} is {job.state}: it accepts no batches")
        now = now_ts()
        batch = Bulk1Batch(id=self.service._new_id("751"), job_id=job.id, soql=request.text(), created=now,
                           modstamp=now, progress=Progress(self.service.hold_polls))
        extra: List[Bulk1Batch] = []
        try:
            if job.operation in QUERY_OPERATIONS:
                batch.soql = batch.soql.strip()
                if job.pk_chunk_size:
                    batch.chunked = True
                    extra = [self._query_batch(job, soql) for soql in chunk_queries(self.org, job, batch.soql)]
                else:
                    self._run_query(job, batch)
            else:
                writer = RowWriter(self.org, job)
                records = parse_records(job.content_type, request.body)
                writer.check_columns(records)
                batch.results = writer.apply(records)
        except BatchFailure as exc:
            batch.state, batch.state_message = "Failed", str(exc)
        with self.service._lock:
            job.batches.append(batch)
            job.batches.extend(extra)
            job.modstamp = now
        return self._batch_response(batch, fmt, status=201)

    def _query_batch(self, job: Bulk1Job, soql_text: str) -> Bulk1Batch:
        now = now_ts()
        batch = Bulk1Batch(id=self.service._new_id("751"), job_id=job.id, soql=soql_text, created=now,
                           modstamp=now, progress=Progress(self.service.hold_polls))
        try:
            self._run_query(job, batch)
        except BatchFailure as exc:
            batch.state, batch.state_message = "Failed", str(exc)
        return batch

    def _run_query(self, job: Bulk1Job, batch: Bulk1Batch) -> None:
        try:
            rows = run_query(self.org, batch.soql, job.operation == "queryAll", "bulk1",
                             records=job.content_type != "CSV", flat=job.content_type == "CSV")
        except BulkRefusal as exc:
            text = str(exc)
            raise BatchFailure(text if text.startswith(("InvalidBatch", "FeatureNotEnabled"))
                               else f"InvalidBatch : {text}") from None
        except SoqlError as exc:
            raise BatchFailure(f"InvalidBatch : Failed to process query: {exc.error_code}: {exc.message}") from None
        if rows.entity.lower() != job.object.lower():
            raise BatchFailure(f"InvalidBatch : Failed to process query: the query is on {rows.entity}, "
                               f"the job on {job.object}")
        with_api_version(rows.records, self.org.store.api_version, job.api_version)
        batch.rows = rows
        size = max(1, int(self.service.bulk1_result_size))
        batch.result_ids = [self.service._new_id("752")[:15] for _ in range(max(1, -(-rows.count // size)))]

    def _advance(self, batch: Bulk1Batch) -> None:
        with self.service._lock:
            if batch.state in ("Queued", "InProgress"):
                if batch.progress.poll():
                    batch.state = "NotProcessed" if batch.chunked else "Completed"
                else:
                    batch.state = "InProgress"
                batch.modstamp = now_ts()

    def batches(self, request: Request) -> Response:
        job, fmt = self._context(request)
        with self.service._lock:
            batches = list(job.batches)
        if fmt == "JSON":
            return _answer("JSON", {"batchInfo": [self._batch_dict(b) for b in batches]})
        return _answer("XML", f'<?xml version="1.0" encoding="UTF-8"?><batchInfoList xmlns="{DATALOAD_NS}">'
                              + "".join(f"<batchInfo>{self._batch_xml(b)}</batchInfo>" for b in batches)
                              + "</batchInfoList>")

    def batch(self, request: Request) -> Response:
        job, fmt = self._context(request)
        batch = self._batch(request, job)
        self._advance(batch)
        return self._batch_response(batch, fmt)

    def batch_request(self, request: Request) -> Response:
        job, _fmt = self._context(request)
        batch = self._batch(request, job)
        if job.operation in QUERY_OPERATIONS:
            return Response(status=200, body=batch.soql.encode("utf-8"), headers={},
                            content_type="text/plain")
        return Response(status=200, body=batch.soql.encode("utf-8"), headers={},
                        content_type=MEDIA_TYPES[job.content_type])

    def result_list(self, request: Request) -> Response:
        """Query batches: the result ids. Ingest batches: one result per record."""
        job, fmt = self._context(request)
        batch = self._batch(request, job)
        if batch.state == "Failed":
            return bulk1_error_response(fmt, "InvalidBatch", f"Batch {batch.id} failed: {batch.state_message}")
        if batch.state != "Completed":
            return bulk1_error_response(fmt, "InvalidBatch", "Batch not completed")
        if batch.results is not None:
            if job.content_type == "CSV":
                return _answer("CSV", _results_csv(batch.results))
            if job.content_type == "JSON":
                return _answer("JSON", _results_json(batch.results))
            return _answer("XML", _results_xml(batch.results))
        if fmt == "JSON":
            return _answer("JSON", list(batch.result_ids))
        return _answer("XML", f'<?xml version="1.0" encoding="UTF-8"?><result-list xmlns="{DATALOAD_NS}">'
                              + "".join(f"<result>{r}</result>" for r in batch.result_ids) + "</result-list>")

    def result(self, request: Request) -> Response:
        job, fmt = self._context(request)
        batch = self._batch(request, job)
        result_id = request.match.group("result") if request.match else ""
        if batch.state != "Completed" or result_id not in batch.result_ids or batch.rows is None:
            return bulk1_error_response(fmt, "InvalidBatch", f"Invalid result id: {result_id}")
        index = batch.result_ids.index(result_id)
        size = max(1, int(self.service.bulk1_result_size))
        lo, hi = index * size, index * size + size
        if job.content_type == "JSON":
            return _answer("JSON", batch.rows.records[lo:hi])
        if job.content_type == "CSV":
            return _answer("CSV", render_csv(batch.rows.columns, batch.rows.rows[lo:hi], ",", "\n"))
        return _answer("XML", _records_xml(batch.rows.records[lo:hi]))


_ASYNC_VERSION = re.compile(r"/services/async/(\d+(?:\.\d+)?)(?:/.*)?")


def retired_version(request: Request) -> Optional[Response]:
    """Bulk API 1.0 of a retired version (below 31.0): 400 InvalidVersion (a Router guard)."""
    match = _ASYNC_VERSION.fullmatch(request.path)
    if match is None or float(match.group(1)) >= OLDEST_VERSION:
        return None
    return bulk1_error_response(Bulk1Api._request_format(request), "InvalidVersion",
                                f"API version {match.group(1)} is retired and no longer available")


def register(router: Router, org: LocalOrg) -> Bulk1Api:
    """Add the Bulk API 1.0 routes for ``org`` to ``router``."""
    api = Bulk1Api(org)
    router.add_guard(retired_version)
    v1 = rf"/services/async/{VERSION_RE}/job"
    job1 = v1 + rf"/(?P<job>{ID_RE})"
    batch1 = job1 + rf"/batch/(?P<batch>{ID_RE})"
    router.add("instance", "POST", v1, api.create_job)
    router.add("instance", "GET", job1, api.job)
    router.add("instance", "POST", job1, api.job)
    router.add("instance", "POST", job1 + "/batch", api.add_batch)
    router.add("instance", "GET", job1 + "/batch", api.batches)
    router.add("instance", "GET", batch1, api.batch)
    router.add("instance", "GET", batch1 + "/request", api.batch_request)
    router.add("instance", "GET", batch1 + "/result", api.result_list)
    router.add("instance", "GET", batch1 + rf"/result/(?P<result>{ID_RE})", api.result)
    return api
