"""Bulk API 2.0 query jobs of the local org (``/services/data/vXX.X/jobs/query``).

``Authorization: Bearer``; an expired session -> 401 ``INVALID_SESSION_ID`` JSON.
    ``POST   .../jobs/query``              create (operation query | queryAll)
    ``GET    .../jobs/query``              list
    ``GET    .../jobs/query/<id>``         status
    ``PATCH  .../jobs/query/<id>``         ``{"state": "Aborted"}``
    ``DELETE .../jobs/query/<id>``         delete (204)
    ``GET    .../jobs/query/<id>/results`` CSV page; ``maxRecords`` / ``locator`` params,
                                           ``Sforce-Locator`` ("null" on the last page) and
                                           ``Sforce-NumberOfRecords``
Jobs are kept in :class:`~.models.Bulk2Jobs` (``query``), beside the ingest jobs."""

from __future__ import annotations

import base64
import itertools
import threading
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ..core.jobs import (BulkRefusal, CSV_CT, csv_value, authenticate, now_ts, request_version,
                         run_flat_query)
from ..core.http import (HTTPError, Request, Response, accepts_gzip, empty_response, json_response,
                   text_response)
from ..core.sessions import Session, bearer
from ..core.soql import SoqlError
from .models import Bulk2Job, Bulk2Jobs, ResultRequest
from ..services import OrgServices


__all__ = ["Bulk2Api", "Bulk2Job", "ResultRequest", "render_page"]

_DELIMITERS = {"COMMA": ",", "TAB": "\t", "PIPE": "|", "SEMICOLON": ";", "CARET": "^", "BACKQUOTE": "`"}
_LINE_ENDINGS = {"LF": "\n", "CRLF": "\r\n"}
_DEFAULT_MAX_RECORDS = 50000  # Bulk 2.0 page size when maxRecords is absent (real: ~ 1 GB of CSV)
_RESULT_PAGES_PER_RESPONSE = 5  # "Returns up to five URIs in one response"
_RESULT_PAGES_SINCE = 58.0


def _column_texts(values: Sequence[Any]) -> List[str]:
    """The CSV texts of one column's values, as ``core.jobs.csv_value`` gives them, unquoted and
    with ``"`` doubled. Column by column, so the common cases run at C speed."""
    kinds = set(map(type, values))
    if kinds <= {str}:
        texts: List[str] = list(values)
    elif kinds <= {str, int, float, type(None)}:  # str(float) is repr(float): "1.0", "0.1"
        texts = ["" if v is None else v if type(v) is str else str(v) for v in values]
    elif kinds <= {bool, type(None)}:
        texts = ["" if v is None else ("true" if v else "false") for v in values]
    else:
        texts = [csv_value(v) for v in values]
    if '"' in "".join(texts):
        texts = [t.replace('"', '""') for t in texts]
    return texts


def render_page(columns: Sequence[str], rows: Sequence[Sequence[Any]], delimiter: str, line_ending: str) -> str:
    """Bulk CSV exactly as :func:`.bulk.render_csv` writes it (every value double-quoted,
    nulls empty), several times faster: a result page of 50,000 rows is what a parallel
    download asks the server for four at a time."""
    sep = '"' + delimiter + '"'
    lines = ['"' + sep.join(_column_texts(list(columns))) + '"']
    if rows:
        values = list(itertools.chain.from_iterable(rows))
        if set(map(type, values)) <= {str} and '"' not in "".join(values):  # the usual page: as is
            lines.extend(['"' + sep.join(row) + '"' for row in rows])
        else:
            texts = [_column_texts(col) for col in zip(*rows)]
            lines.extend(['"' + sep.join(cells) + '"' for cells in zip(*texts)])
    return line_ending.join(lines) + line_ending


def _encode_locator(offset: int) -> str:
    return base64.b64encode(str(offset).encode("ascii")).decode("ascii").rstrip("=")


def _decode_locator(locator: str) -> Optional[int]:
    try:
        padded = locator + "=" * (-len(locator) % 4)
        value = int(base64.b64decode(padded.encode("ascii"), validate=True).decode("ascii"))
    except (ValueError, UnicodeError):
        return None
    return value if value >= 0 else None


class Bulk2Api:
    """The Bulk API 2.0 query handlers of one org."""
    def __init__(self, org: OrgServices, jobs: Bulk2Jobs) -> None:
        self.org = org
        self.jobs = jobs
        self._log_lock = threading.Lock()
        #: every answered results request, in the order the org answered them
        self.result_requests: List[ResultRequest] = []
        #: resultPages requests answered with 200
        self.result_pages_requests = 0

    def reset_log(self) -> None:
        with self._log_lock:
            self.result_requests = []
            self.result_pages_requests = 0

    def _bulk2_auth(self, request: Request) -> Session:
        return authenticate(self.org, request, "rest", bearer(request))

    @staticmethod
    def _bulk2_error(status: int, code: str, message: str) -> Response:
        return json_response([{"errorCode": code, "message": message}], status=status)

    def _bulk2_job(self, request: Request) -> Bulk2Job:
        job_id = request.match.group("job") if request.match else ""
        with self.jobs.lock:
            job = self.jobs.query.get(job_id)
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
            rows = run_flat_query(self.org.store, query, operation == "queryAll", "bulk2")
        except BulkRefusal as exc:
            return self._bulk2_error(400, "INVALIDJOB", str(exc))
        except SoqlError as exc:
            return json_response(exc.to_json(), status=400)
        now = now_ts()
        job = Bulk2Job(id=self.jobs.controls.new_id("750"), operation=operation, object=rows.entity, query=query,
                       created_by=session.user_id, created=now, modstamp=now,
                       api_version=request_version(request, self.org.api_version), line_ending=line_ending,
                       column_delimiter=delimiter, progress=self.jobs.controls.progress(), rows=rows)
        with self.jobs.lock:
            self.jobs.query[job.id] = job
        self.jobs.controls.created("bulk2")
        return json_response(job.info(full=False), status=200)

    def _bulk2_advance(self, job: Bulk2Job) -> None:
        with self.jobs.lock:
            if job.state in ("UploadComplete", "InProgress"):
                if job.progress.poll():
                    job.state = "JobComplete"
                else:
                    job.state = "InProgress"
                job.modstamp = now_ts()

    def bulk2_status(self, request: Request) -> Response:
        self._bulk2_auth(request)
        job = self._bulk2_job(request)
        self._bulk2_advance(job)
        return json_response(job.info(full=True))

    def bulk2_list(self, request: Request) -> Response:
        self._bulk2_auth(request)
        with self.jobs.lock:
            jobs = sorted(self.jobs.query.values(), key=lambda j: j.created)
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
        with self.jobs.lock:
            if job.state in ("JobComplete", "Failed", "Aborted"):
                return self._bulk2_error(400, "INVALIDJOBSTATE",
                                         f"InvalidJobState : Job is already in state {job.state}")
            job.state = "Aborted"
            job.modstamp = now_ts()
        return json_response(job.info(full=False))

    def bulk2_delete(self, request: Request) -> Response:
        self._bulk2_auth(request)
        job = self._bulk2_job(request)
        with self.jobs.lock:
            if job.state in ("UploadComplete", "InProgress"):
                return self._bulk2_error(400, "INVALIDJOBSTATE",
                                         "InvalidJobState : Job must be in a final state (JobComplete, Aborted or Failed) to be deleted")
            gone = self.jobs.query.pop(job.id, None)
        if gone is not None and gone.rows is not None:
            gone.rows.close()
        return empty_response(204)

    def _results_ready(self, job: Bulk2Job) -> None:
        if job.state != "JobComplete":
            raise HTTPError(self._bulk2_error(400, "API_ERROR" if job.state != "Aborted" else "INVALIDJOBSTATE",
                                              f"Job {job.id} is not in a state that allows results: {job.state}"))

    def _page_size(self, request: Request) -> Tuple[int, bool]:
        """``(rows per page, whether maxRecords was given)``."""
        raw_max = request.query.get("maxRecords")
        if raw_max in (None, ""):
            return _DEFAULT_MAX_RECORDS, False
        try:
            max_records = int(str(raw_max))
        except ValueError:
            max_records = 0
        if max_records <= 0:
            raise HTTPError(self._bulk2_error(400, "API_ERROR", f"Invalid maxRecords: {raw_max}"))
        return max_records, True

    def _offset(self, request: Request) -> int:
        locator = request.query.get("locator")
        if locator in (None, "", "null"):
            return 0
        offset = _decode_locator(str(locator))
        if offset is None:
            raise HTTPError(self._bulk2_error(400, "INVALIDLOCATOR", f"Invalid locator: {locator}"))
        return offset

    def bulk2_results(self, request: Request) -> Response:
        self._bulk2_auth(request)
        job = self._bulk2_job(request)
        self._results_ready(job)
        max_records, _ = self._page_size(request)
        offset = self._offset(request)
        assert job.rows is not None
        delimiter, line_ending = _DELIMITERS[job.column_delimiter], _LINE_ENDINGS[job.line_ending]
        page = job.rows.lines(offset, max_records, delimiter)  # CSV lines joined by SQLite
        next_offset = offset + len(page)
        next_locator = _encode_locator(next_offset) if next_offset < job.rows.count else "null"
        body = line_ending.join([render_page(job.rows.columns, [], delimiter, "")] + page) + line_ending
        headers = {"Sforce-Locator": next_locator, "Sforce-NumberOfRecords": str(len(page))}
        response = text_response(body, status=200, headers=headers, content_type=CSV_CT)
        response.compress = True  # the server gzips it when Accept-Encoding allows (http._write)
        accept = request.header("Accept-Encoding") or ""
        with self._log_lock:
            self.result_requests.append(ResultRequest(job.id, offset, len(page), accept, accepts_gzip(accept)))
        return response

    def bulk2_result_pages(self, request: Request) -> Response:
        version = request_version(request, self.org.api_version)
        if float(version) < _RESULT_PAGES_SINCE:  # the resource does not exist before 58.0
            return self._bulk2_error(404, "NOT_FOUND", "The requested resource does not exist")
        self._bulk2_auth(request)
        job = self._bulk2_job(request)
        if version != job.api_version:
            return self._bulk2_error(409, "API_ERROR",
                                     f"Job {job.id} was created with API version {job.api_version}: get its "
                                     f"results with v{job.api_version}, not v{version}")
        self._results_ready(job)
        max_records, explicit = self._page_size(request)
        offset = self._offset(request)
        assert job.rows is not None
        total = job.rows.count
        base = f"/services/data/v{version}/jobs/query/{job.id}"
        suffix = f"&maxRecords={max_records}" if explicit else ""
        pages: List[Dict[str, str]] = []
        while len(pages) < _RESULT_PAGES_PER_RESPONSE and (offset < total or (total == 0 and not pages)):
            pages.append({"resultUrl": f"{base}/results?locator={_encode_locator(offset)}{suffix}"})
            offset += max_records
        done = offset >= total
        with self._log_lock:
            self.result_pages_requests += 1
        return json_response({
            "resultPages": pages,
            "nextRecordsUrl": None if done else f"{base}/resultPages?locator={_encode_locator(offset)}{suffix}",
            "done": done,
        })


