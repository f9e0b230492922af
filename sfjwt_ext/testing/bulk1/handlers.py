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
Jobs are kept in :class:`~.models.Bulk1Jobs`; ``org.bulk.bulk1_result_size``
is the records per query result file."""

from __future__ import annotations

import re
from typing import Any, Dict, List, Optional, Tuple
from xml.etree import ElementTree as ET

from ..core.jobs import (BulkRefusal, authenticate, child_text, now_ts, render_csv, request_version, run_query,
                         sf_datetime, xml_text)
from ..core.http import HTTPError, Request, Response, parse_json
from ..core.ids import to_18
from ..core.sessions import Session
from ..core.versions import OLDEST_VERSION, with_api_version
from ..core.soql import SoqlError
from ..services import OrgServices
from .formats import (DATALOAD_NS, MEDIA_TYPES, answer, bulk1_error_response, parse_records, records_xml, results_csv,
                      results_json, results_xml, xml_datetime, xml_scalar)
from .models import BatchFailure, Bulk1Batch, Bulk1Job, Bulk1Jobs, RowResult
from .rows import RowWriter, chunk_queries, pk_chunking


__all__ = ["Bulk1Api", "Bulk1Job", "Bulk1Batch", "RowResult", "DATALOAD_NS", "MEDIA_TYPES"]


QUERY_OPERATIONS = ("query", "queryAll")
INGEST_OPERATIONS = ("insert", "update", "upsert", "delete", "hardDelete")


# --------------------------------------------------------------------------- rendering


# --------------------------------------------------------------------------- ingest rows


# --------------------------------------------------------------------------- PK chunking


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

    def __init__(self, org: OrgServices, jobs: Bulk1Jobs) -> None:
        self.org = org
        self.bulk1 = jobs

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
        with self.bulk1.lock:
            job = self.bulk1.jobs.get(job_id) or self.bulk1.jobs.get(
                to_18(job_id) if len(job_id) == 15 else "")
        if job is None:
            raise HTTPError(bulk1_error_response(fmt, "InvalidJob", f"Invalid job id: {job_id}"))
        return job, job.answers

    def _batch(self, request: Request, job: Bulk1Job) -> Bulk1Batch:
        batch_id = request.match.group("batch") if request.match else ""
        with self.bulk1.lock:
            for batch in job.batches:
                if batch.id == batch_id or batch.id[:15] == batch_id:
                    return batch
        raise HTTPError(bulk1_error_response(job.answers, "InvalidBatch", f"Invalid batch id: {batch_id}"))

    # ----------------------------------------------------------------- info bodies

    def _job_dict(self, job: Bulk1Job) -> Dict[str, Any]:
        with self.bulk1.lock:
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
            return answer("JSON", data, status)
        data["createdDate"] = xml_datetime(job.created)
        data["systemModstamp"] = xml_datetime(job.modstamp or job.created)
        parts = [f"<{k}>{xml_text(xml_scalar(data[k]))}</{k}>" for k in self._JOB_XML_ORDER
                 if data[k] is not None]
        return answer("XML", f'<?xml version="1.0" encoding="UTF-8"?><jobInfo xmlns="{DATALOAD_NS}">'
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
        data["createdDate"] = xml_datetime(batch.created)
        data["systemModstamp"] = xml_datetime(batch.modstamp or batch.created)
        return "".join(f"<{k}>{xml_text(xml_scalar(data[k]))}</{k}>" for k in self._BATCH_XML_ORDER
                       if not (k == "stateMessage" and data[k] is None))

    def _batch_response(self, batch: Bulk1Batch, fmt: str, status: int = 200) -> Response:
        if fmt == "JSON":
            return answer("JSON", self._batch_dict(batch), status)
        return answer("XML", f'<?xml version="1.0" encoding="UTF-8"?><batchInfo xmlns="{DATALOAD_NS}">'
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
        with self.bulk1.lock:
            self.bulk1.jobs[job.id] = job
        self.bulk1.controls.created("bulk1")
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
        return Bulk1Job(id=self.bulk1.controls.new_id("750"), operation=operation, object=obj,
                        content_type=content_type,
                        concurrency="Serial" if str(mode) in ("1", "Serial", "serial") else "Parallel",
                        created_by=session.user_id, created=now, modstamp=now,
                        api_version=request_version(request, self.org.api_version),
                        external_id_field=str(external) if operation == "upsert" else None,
                        pk_chunk_size=chunk, pk_start_row=start)

    def job(self, request: Request) -> Response:
        job, fmt = self._context(request)
        if request.method == "POST":
            state = self._requested_state(request)
            if state not in ("Closed", "Aborted"):
                return bulk1_error_response(fmt, "InvalidJobState", f"Invalid job state: {state}")
            with self.bulk1.lock:
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
        batch = Bulk1Batch(id=self.bulk1.controls.new_id("751"), job_id=job.id, soql=request.text(), created=now,
                           modstamp=now, progress=self.bulk1.controls.progress())
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
        with self.bulk1.lock:
            job.batches.append(batch)
            job.batches.extend(extra)
            job.modstamp = now
        return self._batch_response(batch, fmt, status=201)

    def _query_batch(self, job: Bulk1Job, soql_text: str) -> Bulk1Batch:
        now = now_ts()
        batch = Bulk1Batch(id=self.bulk1.controls.new_id("751"), job_id=job.id, soql=soql_text, created=now,
                           modstamp=now, progress=self.bulk1.controls.progress())
        try:
            self._run_query(job, batch)
        except BatchFailure as exc:
            batch.state, batch.state_message = "Failed", str(exc)
        return batch

    def _run_query(self, job: Bulk1Job, batch: Bulk1Batch) -> None:
        try:
            rows = run_query(self.org.store, batch.soql, job.operation == "queryAll", "bulk1",
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
        size = max(1, int(self.bulk1.controls.bulk1_result_size))
        batch.result_ids = [self.bulk1.controls.new_id("752")[:15] for _ in range(max(1, -(-rows.count // size)))]

    def _advance(self, batch: Bulk1Batch) -> None:
        with self.bulk1.lock:
            if batch.state in ("Queued", "InProgress"):
                if batch.progress.poll():
                    batch.state = "NotProcessed" if batch.chunked else "Completed"
                else:
                    batch.state = "InProgress"
                batch.modstamp = now_ts()

    def batches(self, request: Request) -> Response:
        job, fmt = self._context(request)
        with self.bulk1.lock:
            batches = list(job.batches)
        if fmt == "JSON":
            return answer("JSON", {"batchInfo": [self._batch_dict(b) for b in batches]})
        return answer("XML", f'<?xml version="1.0" encoding="UTF-8"?><batchInfoList xmlns="{DATALOAD_NS}">'
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
                return answer("CSV", results_csv(batch.results))
            if job.content_type == "JSON":
                return answer("JSON", results_json(batch.results))
            return answer("XML", results_xml(batch.results))
        if fmt == "JSON":
            return answer("JSON", list(batch.result_ids))
        return answer("XML", f'<?xml version="1.0" encoding="UTF-8"?><result-list xmlns="{DATALOAD_NS}">'
                              + "".join(f"<result>{r}</result>" for r in batch.result_ids) + "</result-list>")

    def result(self, request: Request) -> Response:
        job, fmt = self._context(request)
        batch = self._batch(request, job)
        result_id = request.match.group("result") if request.match else ""
        if batch.state != "Completed" or result_id not in batch.result_ids or batch.rows is None:
            return bulk1_error_response(fmt, "InvalidBatch", f"Invalid result id: {result_id}")
        index = batch.result_ids.index(result_id)
        size = max(1, int(self.bulk1.controls.bulk1_result_size))
        lo, hi = index * size, index * size + size
        if job.content_type == "JSON":
            return answer("JSON", batch.rows.records[lo:hi])
        if job.content_type == "CSV":
            return answer("CSV", render_csv(batch.rows.columns, batch.rows.rows[lo:hi], ",", "\n"))
        return answer("XML", records_xml(batch.rows.records[lo:hi]))


_ASYNC_VERSION = re.compile(r"/services/async/(\d+(?:\.\d+)?)(?:/.*)?")


def retired_version(request: Request) -> Optional[Response]:
    """Bulk API 1.0 of a retired version (below 31.0): 400 InvalidVersion (a Router guard)."""
    match = _ASYNC_VERSION.fullmatch(request.path)
    if match is None or float(match.group(1)) >= OLDEST_VERSION:
        return None
    return bulk1_error_response(Bulk1Api._request_format(request), "InvalidVersion",
                                f"API version {match.group(1)} is retired and no longer available")


