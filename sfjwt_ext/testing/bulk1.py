"""Bulk API 1.0 query jobs of the local org (``/services/async/XX.X/job``).

``X-SFDC-Session``; an expired session -> 400 ``InvalidSessionId`` as JSON or XML, following
the request's content type.
    ``POST /services/async/XX.X/job``          create (JSON, XML or CSV jobs)
    ``GET|POST .../job/<id>``                  info / close or abort
    ``POST|GET .../job/<id>/batch``            add a batch (body = SOQL) / list
    ``GET .../batch/<id>``, ``.../batch/<id>/request``, ``.../batch/<id>/result``,
    ``.../batch/<id>/result/<resultId>``
Jobs are kept on ``org.bulk`` (:class:`~.bulk.BulkService`); ``org.bulk.bulk1_result_size``
is the records per result file."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Dict, List, Optional
from xml.etree import ElementTree as ET

from .bulk import (BulkRefusal, BulkService, CSV_CT, ID_RE, Progress, Rows, VERSION_RE, XSI_NS, authenticate,
                   child_text, now_ts, render_csv, run_query, sf_datetime, xml_text)
from .http import HTTPError, Request, Response, Router, json_response, text_response, xml_response
from .oauth import Session
from .soql import SoqlError

if TYPE_CHECKING:
    from .org import LocalOrg

__all__ = ["Bulk1Api", "Bulk1Job", "Bulk1Batch", "register", "DATALOAD_NS"]

DATALOAD_NS = "http://www.force.com/2009/06/asyncapi/dataload"


@dataclass
class Bulk1Batch:
    id: str
    job_id: str
    soql: str
    created: float
    progress: Progress
    state: str = "Queued"
    state_message: Optional[str] = None
    rows: Optional[Rows] = None
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


def _xml_scalar(value: Any) -> Any:
    if value is True:
        return "true"
    if value is False:
        return "false"
    return value


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


def bulk1_error_response(fmt: str, code: str, message: str, status: int = 400) -> Response:
    """Bulk API 1.0's error body, as JSON or as XML in the dataload namespace."""
    if fmt == "JSON":
        return json_response({"exceptionCode": code, "exceptionMessage": message}, status=status)
    doc = (f'<?xml version="1.0" encoding="UTF-8"?><error\n   xmlns="{DATALOAD_NS}">\n'
           f" <exceptionCode>{xml_text(code)}</exceptionCode>\n"
           f" <exceptionMessage>{xml_text(message)}</exceptionMessage>\n</error>")
    return xml_response(doc, status=status)


class Bulk1Api:
    """The Bulk API 1.0 handlers of one org."""
    _JOB_XML_ORDER = ["id", "operation", "object", "createdById", "createdDate", "systemModstamp", "state",
                      "concurrencyMode", "contentType", "numberBatchesQueued", "numberBatchesInProgress",
                      "numberBatchesCompleted", "numberBatchesFailed", "numberBatchesTotal",
                      "numberRecordsProcessed", "numberRetries", "apiVersion", "numberRecordsFailed",
                      "totalProcessingTime", "apiActiveProcessingTime", "apexProcessingTime"]

    _BATCH_XML_ORDER = ["id", "jobId", "state", "stateMessage", "createdDate", "systemModstamp",
                        "numberRecordsProcessed", "numberRecordsFailed", "totalProcessingTime",
                        "apiActiveProcessingTime", "apexProcessingTime"]

    def __init__(self, org: LocalOrg) -> None:
        self.org = org
        self.service: BulkService = org.bulk

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

    def _bulk1_auth(self, request: Request) -> Session:
        return authenticate(self.org, request, "bulk1", request.header("X-SFDC-Session"))

    def _bulk1_job(self, request: Request, fmt: str) -> Bulk1Job:
        job_id = request.match.group("job") if request.match else ""
        with self.service._lock:
            job = self.service.bulk1_jobs.get(job_id)
        if job is None:
            raise HTTPError(self._bulk1_error(fmt, "InvalidJob", f"Invalid job id: {job_id}"))
        return job

    def _bulk1_batch(self, request: Request, job: Bulk1Job, fmt: str) -> Bulk1Batch:
        batch_id = request.match.group("batch") if request.match else ""
        with self.service._lock:
            for batch in job.batches:
                if batch.id == batch_id:
                    return batch
        raise HTTPError(self._bulk1_error(fmt, "InvalidBatch", f"Invalid batch id: {batch_id}"))

    def _bulk1_job_dict(self, job: Bulk1Job) -> Dict[str, Any]:
        with self.service._lock:
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
            "createdDate": sf_datetime(job.created),
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
            "systemModstamp": sf_datetime(job.modstamp or job.created),
            "totalProcessingTime": 0,
        }

    def _bulk1_job_response(self, job: Bulk1Job, fmt: str, status: int = 200) -> Response:
        data = self._bulk1_job_dict(job)
        if fmt == "JSON":
            return json_response(data, status=status)
        parts = [f"<{k}>{xml_text(_xml_scalar(data[k]))}</{k}>" for k in self._JOB_XML_ORDER]
        doc = (f'<?xml version="1.0" encoding="UTF-8"?><jobInfo xmlns="{DATALOAD_NS}">'
               + "".join(parts) + "</jobInfo>")
        return xml_response(doc, status=status)

    def _bulk1_batch_dict(self, batch: Bulk1Batch) -> Dict[str, Any]:
        processed = batch.rows.count if (batch.state == "Completed" and batch.rows) else 0
        data: Dict[str, Any] = {
            "apexProcessingTime": 0,
            "apiActiveProcessingTime": 0,
            "createdDate": sf_datetime(batch.created),
            "id": batch.id,
            "jobId": batch.job_id,
            "numberRecordsFailed": 0,
            "numberRecordsProcessed": processed,
            "state": batch.state,
            "stateMessage": batch.state_message,
            "systemModstamp": sf_datetime(batch.modstamp or batch.created),
            "totalProcessingTime": 0,
        }
        return data

    def _batch_xml(self, batch: Bulk1Batch) -> str:
        data = self._bulk1_batch_dict(batch)
        parts = [f"<{k}>{xml_text(_xml_scalar(data[k]))}</{k}>" for k in self._BATCH_XML_ORDER
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
            spec = {k: child_text(root, k) for k in ("operation", "object", "contentType", "concurrencyMode")}
        operation = spec.get("operation")
        if operation not in ("query", "queryAll"):
            return self._bulk1_error(fmt, "InvalidJob",
                                     f"The local org supports only query and queryAll Bulk API 1.0 jobs, not {operation}")
        obj = spec.get("object")
        if not obj or not self.org.store.has_object(str(obj)):
            return self._bulk1_error(fmt, "InvalidJob", f"Unable to find object: {obj}")
        content_type = str(spec.get("contentType") or ("JSON" if fmt == "JSON" else "XML")).upper()
        if content_type not in ("JSON", "XML", "CSV"):
            return self._bulk1_error(fmt, "InvalidJob", f"Invalid content type: {content_type}")
        mode = spec.get("concurrencyMode")
        concurrency = "Serial" if str(mode) in ("1", "Serial", "serial") else "Parallel"
        now = now_ts()
        job = Bulk1Job(id=self.service._new_id("750"), operation=str(operation), object=str(obj),
                       content_type=content_type, concurrency=concurrency,
                       created_by=session.user_id, created=now, modstamp=now,
                       api_version=self.service._api_version(request))
        with self.service._lock:
            self.service.bulk1_jobs[job.id] = job
            self.service.jobs_created["bulk1"] += 1
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
                    state = child_text(ET.fromstring(request.body or b"<x/>"), "state")
                except ET.ParseError:
                    state = None
            if state not in ("Closed", "Aborted"):
                return self._bulk1_error(fmt, "InvalidJobState", f"Invalid job state: {state}")
            with self.service._lock:
                if job.state != "Open" and job.state != state:
                    return self._bulk1_error(fmt, "InvalidJobState",
                                             f"Job {job.id} is {job.state} and cannot be {state}")
                job.state = str(state)
                job.modstamp = now_ts()
        return self._bulk1_job_response(job, fmt)

    def bulk1_add_batch(self, request: Request) -> Response:
        fmt0 = self._bulk1_format(request)
        self._bulk1_auth(request)
        job = self._bulk1_job(request, fmt0)
        fmt = self._bulk1_format(request, job)
        if job.state != "Open":
            return self._bulk1_error(fmt, "InvalidJobState", f"Job {job.id} is {job.state}: it accepts no batches")
        soql_text = request.text().strip()
        now = now_ts()
        batch = Bulk1Batch(id=self.service._new_id("751"), job_id=job.id, soql=soql_text, created=now, modstamp=now,
                           progress=Progress(self.service.hold_polls))
        try:
            rows = run_query(self.org, soql_text, job.operation == "queryAll", "bulk1",
                              records=job.content_type != "CSV", flat=job.content_type == "CSV")
            if rows.entity.lower() != job.object.lower():
                raise BulkRefusal(f"InvalidBatch : Failed to process query: the query is on {rows.entity}, "
                                   f"the job on {job.object}")
            batch.rows = rows
            size = max(1, int(self.service.bulk1_result_size))
            n_results = max(1, -(-rows.count // size))
            batch.result_ids = [self.service._new_id("752")[:15] for _ in range(n_results)]
        except BulkRefusal as exc:
            batch.state = "Failed"
            batch.state_message = str(exc) if str(exc).startswith(("InvalidBatch", "FeatureNotEnabled")) \
                else f"InvalidBatch : {exc}"
        except SoqlError as exc:
            batch.state = "Failed"
            batch.state_message = f"InvalidBatch : Failed to process query: {exc.error_code}: {exc.message}"
        with self.service._lock:
            job.batches.append(batch)
            job.modstamp = now
        return self._bulk1_batch_response(batch, fmt, status=201)

    def _bulk1_advance(self, batch: Bulk1Batch) -> None:
        with self.service._lock:
            if batch.state in ("Queued", "InProgress"):
                batch.state = "Completed" if batch.progress.poll() else "InProgress"
                batch.modstamp = now_ts()

    def bulk1_batches(self, request: Request) -> Response:
        fmt0 = self._bulk1_format(request)
        self._bulk1_auth(request)
        job = self._bulk1_job(request, fmt0)
        fmt = self._bulk1_format(request, job)
        with self.service._lock:
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
        size = max(1, int(self.service.bulk1_result_size))
        lo, hi = index * size, index * size + size
        if job.content_type == "JSON":
            return json_response(batch.rows.records[lo:hi])
        if job.content_type == "CSV":
            body = render_csv(batch.rows.columns, batch.rows.rows[lo:hi], ",", "\n")
            return text_response(body, content_type=CSV_CT)
        return xml_response(_records_xml(batch.rows.records[lo:hi]))


def register(router: Router, org: LocalOrg) -> Bulk1Api:
    """Add the Bulk API 1.0 routes for ``org`` to ``router``."""
    api = Bulk1Api(org)
    v1 = rf"/services/async/{VERSION_RE}/job"
    job1 = v1 + rf"/(?P<job>{ID_RE})"
    batch1 = job1 + rf"/batch/(?P<batch>{ID_RE})"
    router.add("instance", "POST", v1, api.bulk1_create_job)
    router.add("instance", "GET", job1, api.bulk1_job)
    router.add("instance", "POST", job1, api.bulk1_job)
    router.add("instance", "POST", job1 + "/batch", api.bulk1_add_batch)
    router.add("instance", "GET", job1 + "/batch", api.bulk1_batches)
    router.add("instance", "GET", batch1, api.bulk1_batch)
    router.add("instance", "GET", batch1 + "/request", api.bulk1_batch_request)
    router.add("instance", "GET", batch1 + "/result", api.bulk1_result_list)
    router.add("instance", "GET", batch1 + rf"/result/(?P<result>{ID_RE})", api.bulk1_result)
    return api
