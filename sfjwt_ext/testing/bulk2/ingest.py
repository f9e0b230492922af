"""Bulk API 2.0 ingest jobs of the local org (``/services/data/vXX.X/jobs/ingest``).

Create a job (insert, update, upsert with ``externalIdFieldName``, delete, hardDelete; any
``lineEnding`` and ``columnDelimiter``), upload one CSV (``PUT .../batches``), close it
(``PATCH`` ``UploadComplete``) or abort it, poll it, read ``successfulResults``,
``failedResults`` and ``unprocessedrecords`` (``unprocessedRecords`` too), list and delete
jobs. The rows are applied to the store when the job is closed, one by one: a bad row fails
alone with Salesforce's error code (``CODE:message:fields --`` in ``sf__Error``). A header
naming an unknown field, or line endings that do not match the job, fail the whole job as
Salesforce does. Columns are whatever fields describe reports, so custom fields just work;
``Rel.ExtField`` columns name a parent by its external id.

``org.bulk.hold_polls`` keeps new jobs InProgress for that many status polls, as it does for
the other async jobs. The jobs live in :class:`~.models.Bulk2Jobs` (``ingest``), beside the query jobs. Shapes and
sources: docs/testing-org-writes.md.
"""
from __future__ import annotations

import csv
import io
from typing import Any, Dict, List, Optional, Tuple

from ..core.jobs import render_csv
from ..core.dml import (MultipleMatches, DescribeCache, bulk_error_text, bulk_typed, check_id, existing, insert, parent_id,
                  upsert)
from ..core.http import HTTPError, Request, Response, empty_response, json_response, text_response
from ..core.soql import SoqlError
from ..core.ids import random_id
from ..core.literals import format_datetime
from .models import FINAL_STATES, Bulk2Jobs, IngestJob, RowResult
from ..services import OrgServices


CSV_CONTENT_TYPE = "text/csv;charset=UTF-8"
OPERATIONS = ("insert", "update", "upsert", "delete", "hardDelete")
DELIMITERS = {"COMMA": ",", "TAB": "\t", "PIPE": "|", "SEMICOLON": ";", "CARET": "^", "BACKQUOTE": "`"}
LINE_ENDINGS = {"LF": "\n", "CRLF": "\r\n"}
NULL_VALUE = "#N/A"
# one CSV column: (external id field of a relationship column, the field, the relationship's reference field)
Column = Tuple[str, Optional[Dict[str, Any]], Optional[Dict[str, Any]]]


def _error(status: int, code: str, message: str) -> HTTPError:
    return HTTPError(json_response([{"errorCode": code, "message": message}], status=status))


def _render(header: List[str], rows: List[List[str]]) -> str:
    """Result CSV as Salesforce writes it: comma, LF, every value quoted."""
    return render_csv(header, rows, ",", "\n")


class IngestService:
    """The Bulk API 2.0 ingest handlers of one org; the jobs are ``jobs.ingest`` (:class:`~.models.Bulk2Jobs`)."""

    def __init__(self, org: OrgServices, jobs: Bulk2Jobs) -> None:
        self.org = org
        self.jobs = jobs

    # ------------------------------------------------------------------ helpers
    def _job(self, request: Request) -> IngestJob:
        assert request.match is not None
        with self.jobs.lock:
            job = self.jobs.ingest.get(request.match.group("job"))
        if job is None:
            raise _error(404, "NOT_FOUND", "The requested resource does not exist")
        return job

    def _now(self) -> str:
        return format_datetime(self.org.store.now())

    def _session(self, request: Request) -> str:
        return self.org.require_session(request, api="bulk2").user_id

    # ------------------------------------------------------------------ routes
    def create(self, request: Request) -> Response:
        user_id = self._session(request)
        assert request.match is not None
        body = request.json()
        if not isinstance(body, dict):
            raise _error(400, "JSON_PARSER_ERROR", "The request body must be a JSON object")
        operation = body.get("operation")
        if operation not in OPERATIONS:
            raise _error(400, "INVALIDJOB", f"InvalidJob : Invalid operation: {operation}")
        sobject = body.get("object")
        if not isinstance(sobject, str) or not sobject:
            raise _error(400, "INVALIDJOB", "InvalidJob : The object is required")
        store = self.org.store
        if not store.has_object(sobject):
            raise _error(400, "INVALIDJOB", f"InvalidJob : Unable to find object: {sobject}")
        sobject = store.object_name(sobject)
        external_id = body.get("externalIdFieldName")
        if operation == "upsert":
            if not external_id:
                raise _error(400, "INVALIDJOB", "InvalidJob : External ID was blank for upsert; set "
                                                "externalIdFieldName")
            try:
                external_id = DescribeCache(store).fields(sobject).external_id(str(external_id))["name"]
            except SoqlError:
                raise _error(400, "INVALIDJOB", f"InvalidJob : Field name provided, {external_id} does not match an "
                                                f"External ID, Salesforce Id, or indexed field for {sobject}") from None
        else:
            external_id = None
        delimiter = str(body.get("columnDelimiter") or "COMMA")
        line_ending = str(body.get("lineEnding") or "LF")
        if delimiter not in DELIMITERS:
            raise _error(400, "INVALIDJOB", f"InvalidJob : Invalid column delimiter: {delimiter}")
        if line_ending not in LINE_ENDINGS:
            raise _error(400, "INVALIDJOB", f"InvalidJob : Invalid line ending: {line_ending}")
        if str(body.get("contentType") or "CSV") != "CSV":
            raise _error(400, "INVALIDJOB", f"InvalidJob : Invalid content type: {body.get('contentType')}")
        now = self._now()
        job = IngestJob(id=random_id("750"), operation=operation, object=sobject, external_id=external_id,
                        created_by=user_id, created=now, api_version=request.match.group("version"),
                        line_ending=line_ending, column_delimiter=delimiter,
                        progress=self.jobs.controls.progress())
        with self.jobs.lock:
            self.jobs.ingest[job.id] = job
        return json_response(job.info(full=False))

    def upload(self, request: Request) -> Response:
        self._session(request)
        job = self._job(request)
        with self.jobs.lock:
            if job.state != "Open":
                raise _error(409, "INVALIDJOBSTATE", f"InvalidJobState : Job {job.id} is not Open: {job.state}")
            if job.data is not None:
                raise _error(400, "BULK_API_ERROR",
                             f"Found multiple contents for job: <{job.id}>, please 'Close' / 'Abort' / 'Delete' the "
                             f"current Job then create a new Job and make sure you only do 'PUT' once on a given Job.")
            job.data = request.body
        return empty_response(201)

    def patch(self, request: Request) -> Response:
        self._session(request)
        job = self._job(request)
        body = request.json()
        state = body.get("state") if isinstance(body, dict) else None
        if state == "UploadComplete":
            with self.jobs.lock:
                if job.state != "Open" or job.closing:
                    raise _error(400, "INVALIDJOBSTATE", f"InvalidJobState : Job {job.id} is in state {job.state}, "
                                                         f"only an Open job can be closed")
                job.closing = True
            self._process(job)  # the rows land before anyone can see the job closed
            with self.jobs.lock:
                job.state = "UploadComplete"
                job.modstamp = self._now()
                return json_response(job.info(full=False))
        if state != "Aborted":
            raise _error(400, "INVALIDJOBSTATE", f"InvalidJobState : Invalid state: {state}")
        with self.jobs.lock:
            if job.state in FINAL_STATES or job.closing:
                raise _error(400, "INVALIDJOBSTATE", f"InvalidJobState : Aborting already {job.state} Job not allowed")
            job.state = "Aborted"
            job.columns, job.unprocessed = self._rows(job) if job.data is not None else ([], [])
            job.modstamp = self._now()
            return json_response(job.info(full=False))

    def status(self, request: Request) -> Response:
        self._session(request)
        job = self._job(request)
        with self.jobs.lock:
            if job.state in ("UploadComplete", "InProgress"):
                if job.progress.poll():
                    job.state = "Failed" if job.error_message else "JobComplete"
                else:
                    job.state = "InProgress"
                job.modstamp = self._now()
            return json_response(job.info(full=True))

    def listing(self, request: Request) -> Response:
        self._session(request)
        with self.jobs.lock:
            jobs = [j.info(full=False) for j in self.jobs.ingest.values()]
        for info in jobs:
            info["jobType"] = "V2Ingest"
        return json_response({"done": True, "records": jobs, "nextRecordsUrl": None})

    def delete(self, request: Request) -> Response:
        self._session(request)
        job = self._job(request)
        with self.jobs.lock:
            if job.state in ("Open", "InProgress"):
                raise _error(400, "INVALIDJOBSTATE", f"InvalidJobState : Job {job.id} in state {job.state} can not "
                                                     f"be deleted")
            self.jobs.ingest.pop(job.id, None)
        return empty_response(204)

    def results(self, request: Request) -> Response:
        self._session(request)
        job = self._job(request)
        assert request.match is not None
        kind = request.match.group("kind").lower()
        with self.jobs.lock:
            if job.state not in FINAL_STATES and not (kind == "unprocessedrecords" and job.state == "Aborted"):
                raise _error(400, "INVALIDJOBSTATE", f"InvalidJobState : Job {job.id} is not complete: {job.state}")
            columns = job.columns or (self._rows(job)[0] if job.data is not None else [])
            if kind == "successfulresults":
                text = _render(["sf__Id", "sf__Created"] + columns,
                               [[r.record_id, "true" if r.created else "false"] + r.row for r in job.results
                                if not r.error])
            elif kind == "failedresults":
                text = _render(["sf__Id", "sf__Error"] + columns,
                               [[r.record_id, r.error] + r.row for r in job.results if r.error])
            else:
                text = _render(columns, job.unprocessed)
        return text_response(text, content_type=CSV_CONTENT_TYPE)

    # ------------------------------------------------------------------ processing
    def _rows(self, job: IngestJob) -> Tuple[List[str], List[List[str]]]:
        text = (job.data or b"").decode("utf-8-sig", "replace")
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=DELIMITERS[job.column_delimiter])
        rows = [row for row in reader if row]
        return (rows[0] if rows else []), rows[1:]

    def _line_ending_error(self, job: IngestJob) -> Optional[str]:
        text = (job.data or b"").decode("utf-8", "replace")
        first = text.find("\n")
        if first < 0:
            return None
        crlf = first > 0 and text[first - 1] == "\r"
        if crlf != (job.line_ending == "CRLF"):
            return ("ClientInputError : LineEnding is invalid on user data. Current LineEnding setting is "
                    f"{job.line_ending}")
        return None

    def _process(self, job: IngestJob) -> None:
        """Apply the uploaded rows to the store (outside the job lock: the store has its own)."""
        header, rows = self._rows(job)
        problem = self._line_ending_error(job)
        cache = DescribeCache(self.org.store)
        columns: List[Column] = []
        if problem is None:
            fields = cache.fields(job.object)
            for name in header:
                described = fields.get(name)
                rel_name, _, ext_field = name.partition(".")
                reference = fields.relationships.get(rel_name.lower()) if ext_field else None
                if described is None and reference is None:
                    problem = f"InvalidBatch : Field name not found : {name}"
                    break
                columns.append((ext_field, described, reference))
        if problem is None and job.operation in ("update", "delete", "hardDelete") and not any(
                d is not None and d["type"] == "id" for _, d, _ in columns):
            problem = "InvalidBatch : The Id field is required for update and delete operations"
        results = [] if problem is not None else [self._apply(job, cache, header, columns, row) for row in rows]
        with self.jobs.lock:
            job.columns = header
            if problem is not None:
                job.error_message = problem
                job.unprocessed = rows
            else:
                job.results = results

    def _apply(self, job: IngestJob, cache: DescribeCache, header: List[str], columns: List[Column],
               row: List[str]) -> RowResult:
        result = RowResult(row=list(row) + [""] * (len(header) - len(row)))
        store = cache.store
        values: Dict[str, Any] = {}
        record_id = ""
        try:
            for value, (ext_field, described, reference) in zip(result.row, columns):
                if value == "":
                    continue
                if described is not None and described["type"] == "id":
                    record_id = value
                    continue
                if reference is not None:
                    values[reference["name"]] = parent_id(cache, reference, {ext_field: value})
                    continue
                assert described is not None
                values[described["name"]] = None if value == NULL_VALUE else value
            if job.operation == "insert":
                result.record_id = bulk_typed(lambda: insert(store, job.object, [values])[0], values, cache,
                                               job.object)
                result.created = True
            elif job.operation == "update":
                if not record_id:
                    raise SoqlError("MISSING_ARGUMENT", "Id not specified in an update call")
                result.record_id = check_id(job.object, record_id)
                bulk_typed(lambda: existing(lambda: store.update(job.object, record_id, values)), values, cache,
                            job.object)
            elif job.operation in ("delete", "hardDelete"):
                if not record_id:
                    raise SoqlError("MISSING_ARGUMENT", "Id not specified in a delete call")
                result.record_id = check_id(job.object, record_id)
                remove = store.hard_delete if job.operation == "hardDelete" else store.delete
                existing(lambda: remove(job.object, record_id))
            else:
                result.record_id, result.created = self._upsert(job, cache, values, record_id)
        except MultipleMatches as exc:
            result.error = bulk_error_text(exc.as_error())
        except SoqlError as exc:
            result.error = bulk_error_text(exc)
        if result.error and job.operation == "insert":
            result.record_id = ""
        return result

    def _upsert(self, job: IngestJob, cache: DescribeCache, values: Dict[str, Any], record_id: str) -> Tuple[str, bool]:
        assert job.external_id is not None
        if job.external_id == "Id":
            return bulk_typed(lambda: existing(lambda: upsert(cache, job.object, "Id", record_id or None, values)),
                               values, cache, job.object)
        key = next((k for k in values if k.lower() == job.external_id.lower()), None)
        value = values.pop(key) if key else None
        return bulk_typed(lambda: upsert(cache, job.object, job.external_id or "", value, values), values, cache,
                           job.object)


