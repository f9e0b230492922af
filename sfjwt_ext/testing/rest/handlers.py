"""The local org's REST API on the instance host: versions, resources, limits, SOQL query
(and queryMore cursors), sObject describe and CRUD, the same under ``/tooling``, and the
Apex REST routes a test registers (``org.register_apex_route``).

Records live in ``org.store`` (:class:`~..core.store.Store`); a ``SoqlError`` it raises becomes
Salesforce's JSON error body.
"""
from __future__ import annotations

import datetime
import re
import threading
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Callable, Dict, List, Optional, Tuple

from ..core.dml import DescribeCache, insert, located, resolve_parents
from ..core.http import HTTPError, Request, Response, empty_response, json_response, parse_json, text_response
from ..core.ids import random_id
from ..core.sessions import bearer
from ..core.versions import OLDEST_VERSION, check_version, version_label, with_api_version
from ..core.soql import SoqlError
from ..services import OrgServices


__all__ = ["RestApi", "ApexRequest"]


@dataclass
class ApexRequest:
    """What an Apex REST handler receives (see ``OrgServices.register_apex_route``)."""

    method: str
    path: str                  # after /services/apexrest, e.g. "/Accounts/001..."
    params: Dict[str, str]
    headers: Any
    body: bytes
    json: Any                  # parsed JSON body, or None
    user_id: str
    username: str
    match: Optional["re.Match[str]"] = None


@dataclass
class _Cursor:
    records: List[Dict[str, Any]]
    total_size: int
    batch: int
    created: float


class RestApi:
    """The REST handlers of one org and their queryMore cursors (``_cursors``, under ``_lock``)."""

    def __init__(self, org: OrgServices) -> None:
        self.org = org
        self._lock = threading.Lock()
        self._cursors: Dict[str, _Cursor] = {}

    def add_apex_route(self, method: str, path: str, handler: Callable[[ApexRequest], Tuple[int, Any]]) -> None:
        """Serve ``method`` ``/services/apexrest<path>``. ``path`` may end in ``*`` (any rest,
        like Apex's urlMapping). ``handler(ApexRequest) -> (status, data)``: data is JSON
        serialised unless it is str/bytes (sent as text) or None (empty body)."""
        if not path.startswith("/"):
            path = "/" + path
        regex = "/services/apexrest" + re.escape(path).replace(r"\*", ".*")

        def serve(request: Request) -> Response:
            session = self.org.require_session(request, api="rest")
            user = self.org.user_by_id(session.user_id)
            parsed = None
            if request.body:
                try:
                    parsed = parse_json(request.body)
                except ValueError:
                    parsed = None
            apex = ApexRequest(method=request.method, path=request.path[len("/services/apexrest"):],
                               params=dict(request.query), headers=request.headers, body=request.body,
                               json=parsed, user_id=session.user_id, username=user.username if user else "",
                               match=request.match)
            status, data = handler(apex)
            if data is None:
                return empty_response(status)
            if isinstance(data, (bytes, str)):
                return text_response(data, status=status)
            return json_response(data, status=status)

        self.org.router.add("instance", method, regex, serve)

    def _version(self, request: Request) -> str:
        assert request.match is not None
        return check_version(request.match.group("version"), self.org.api_version)

    def _store_call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except SoqlError as exc:
            raise HTTPError(json_response(exc.to_json(), status=exc.status)) from None

    def _write_call(self, request: Request, fn: Callable[..., Any], *args: Any) -> Any:
        """A write with the request's values: a value error names where in the body it was."""
        try:
            return fn(*args)
        except SoqlError as exc:
            exc = located(exc, request.body)
            raise HTTPError(json_response(exc.to_json(), status=exc.status)) from None

    def versions(self, request: Request) -> Response:
        """``GET /services/data/``: the versions list, which Salesforce serves without a token."""
        top = int(float(self.org.api_version))
        return json_response([{"label": version_label(f"{v}.0"), "url": f"/services/data/v{v}.0", "version": f"{v}.0"}
                              for v in range(int(OLDEST_VERSION), top + 1)])

    def resources(self, request: Request) -> Response:
        self.org.require_session(request)
        v = self._version(request)
        names = ["tooling", "metadata", "eclair", "folders", "prechatForms", "jsonxform", "chatter", "tabs",
                 "appMenu", "quickActions", "queryAll", "commerce", "wave", "iot", "analytics", "search",
                 "identity", "composite", "parameterizedSearch", "fingerprint", "theme", "nouns", "domino",
                 "event", "serviceTemplates", "recent", "connect", "licensing", "limits", "process",
                 "async-queries", "query", "match", "emailConnect", "compactLayouts", "knowledgeManagement",
                 "sobjects", "actions", "support", "jobs"]
        body = {n: f"/services/data/v{v}/{n}" for n in names}
        body["identity"] = f"{self.org.login_url}/id/{self.org.org_id}/{self._require_session_user(request)}"
        return json_response(body)

    def _require_session_user(self, request: Request) -> str:
        return self.org.session_table.user_of(bearer(request))

    def limits(self, request: Request) -> Response:
        self.org.require_session(request)
        self._version(request)
        used = self.org.api_requests

        def lim(mx: int, used_: int = 0) -> Dict[str, int]:
            return {"Max": mx, "Remaining": max(mx - used_, 0)}

        return json_response({
            "ActiveScratchOrgs": lim(3), "AnalyticsExternalDataSizeMB": lim(40960),
            "ConcurrentAsyncGetReportInstances": lim(200), "ConcurrentSyncReportRuns": lim(20),
            "DailyAnalyticsDataflowJobExecutions": lim(60), "DailyApiRequests": lim(15000, used),
            "DailyAsyncApexExecutions": lim(250000), "DailyBulkApiBatches": lim(15000),
            "DailyBulkV2QueryFileStorageMB": lim(976562), "DailyBulkV2QueryJobs": lim(10000),
            "DailyGenericStreamingApiEvents": lim(10000), "DailyStreamingApiEvents": lim(10000),
            "DailyWorkflowEmails": lim(405), "DataStorageMB": lim(5), "FileStorageMB": lim(20),
            "HourlyAsyncReportRuns": lim(1200), "HourlyDashboardRefreshes": lim(200),
            "HourlyODataCallout": lim(10000), "HourlySyncReportRuns": lim(500),
            "MassEmail": lim(10), "SingleEmail": lim(15), "StreamingApiConcurrentClients": lim(20),
        })

    # replication and record counts (p2-schema)
    def record_count(self, request: Request) -> Response:
        self.org.require_session(request)
        self._version(request)
        names = request.query.get("sObjects")
        return json_response(self.org.store.record_counts(names.split(",") if names is not None else None))

    def replication(self, request: Request) -> Response:
        self.org.require_session(request)
        self._version(request)
        name = self._sobject_name(request)
        assert request.match is not None
        call = self.org.store.updated if request.match.group("kind") == "updated" else self.org.store.deleted
        return json_response(self._store_call(call, name, request.query.get("start") or "",
                                              request.query.get("end") or ""))

    def _batch_size(self, request: Request) -> int:
        size = self.org.page_size
        options = request.headers.get("Sforce-Query-Options") or ""
        m = re.search(r"batchSize\s*=\s*(\d+)", options)
        if m:
            size = min(max(int(m.group(1)), 200), 2000, self.org.page_size)
        return max(size, 1)

    def query(self, request: Request) -> Response:
        self.org.require_session(request)
        v = self._version(request)
        store = self.org.store
        q = request.query.get("q")
        if not q:
            return json_response([{"message": "A query string has to be specified", "errorCode": "MALFORMED_QUERY"}],
                                 status=400)
        tooling: Dict[str, Any] = {"tooling": True} if "/tooling/" in request.path else {}
        if (request.query.get("columns") or "").lower() == "true":
            return json_response(self._store_call(store.column_metadata, q, **tooling))
        assert request.match is not None
        include_deleted = request.match.group("kind") == "queryAll"
        result = self._store_call(store.query, q, include_deleted=include_deleted, **tooling)
        records = with_api_version(list(result.records), store.api_version, v)
        return self._page(v, "/tooling" if "/tooling/" in request.path else "",
                          _Cursor(records, int(result.total_size), self._batch_size(request), time.monotonic()), 0)

    def _page(self, version: str, prefix: str, cursor: _Cursor, offset: int, cursor_id: Optional[str] = None) -> Response:
        end = offset + cursor.batch
        page = cursor.records[offset:end]
        body: Dict[str, Any] = {"totalSize": cursor.total_size, "done": end >= len(cursor.records)}
        if not body["done"]:
            if cursor_id is None:
                cursor_id = random_id("01g")
                with self._lock:
                    self._cursors[cursor_id] = cursor
            body["nextRecordsUrl"] = f"/services/data/v{version}{prefix}/query/{cursor_id}-{end}"
        elif cursor_id is not None:
            with self._lock:
                self._cursors.pop(cursor_id, None)
        body["records"] = page
        return json_response(body)

    def query_more(self, request: Request) -> Response:
        self.org.require_session(request)
        v = self._version(request)
        assert request.match is not None
        cursor_id = request.match.group("cursor")
        offset = int(request.match.group("offset"))
        with self._lock:
            cursor = self._cursors.get(cursor_id)
        if cursor is None or offset > len(cursor.records):
            return json_response([{"message": "invalid query locator", "errorCode": "INVALID_QUERY_LOCATOR"}],
                                 status=400)
        return self._page(v, "/tooling" if "/tooling/" in request.path else "", cursor, offset, cursor_id)

    def _sobject_name(self, request: Request) -> str:
        assert request.match is not None
        name = request.match.group("sobject")
        store = self.org.store
        if not store.has_object(name):
            raise HTTPError(json_response([{"errorCode": "NOT_FOUND",
                                            "message": "The requested resource does not exist"}], status=404))
        return name

    def _unchanged(self, request: Request, sobject: Optional[str] = None) -> bool:
        """Whether the request's If-Modified-Since is at or after the last change of the metadata."""
        since = request.header("If-Modified-Since")
        try:
            when = parsedate_to_datetime(since) if since else None
        except (TypeError, ValueError):
            when = None
        if when is None or when.tzinfo is None:
            return False
        changed: datetime.datetime = self._store_call(self.org.store.metadata_changed, sobject)
        return changed.replace(microsecond=0) <= when

    def describe_global(self, request: Request) -> Response:
        self.org.require_session(request)
        v = self._version(request)
        if self._unchanged(request):
            return empty_response(304)
        return json_response(with_api_version(self._store_call(self.org.store.describe_global),
                                              self.org.store.api_version, v))

    def describe(self, request: Request) -> Response:
        self.org.require_session(request)
        v = self._version(request)
        name = self._sobject_name(request)
        if self._unchanged(request, name):
            return empty_response(304)
        return json_response(with_api_version(self._store_call(self.org.store.describe, name),
                                              self.org.store.api_version, v))

    def sobject_info(self, request: Request) -> Response:
        self.org.require_session(request)
        v = self._version(request)
        name = self._sobject_name(request)
        full = with_api_version(self._store_call(self.org.store.describe, name), self.org.store.api_version, v)
        basic = {k: v for k, v in full.items() if k not in ("fields", "childRelationships", "recordTypeInfos",
                                                             "supportedScopes", "namedLayoutInfos",
                                                             "actionOverrides")}
        return json_response({"objectDescribe": basic, "recentItems": []})

    def create(self, request: Request) -> Response:
        self.org.require_session(request)
        self._version(request)
        name = self._sobject_name(request)
        values = request.json()
        if not isinstance(values, dict):
            return json_response([{"message": "Can not deserialize SObject out of START_ARRAY token",
                                   "errorCode": "JSON_PARSER_ERROR"}], status=400)
        values.pop("attributes", None)
        values = self._store_call(resolve_parents, DescribeCache(self.org.store), name, values)
        new_id = self._write_call(request, insert, self.org.store, name, [values])[0]
        return json_response({"id": new_id, "success": True, "errors": []}, status=201,
                             headers={"Location": f"{request.path.rstrip('/')}/{new_id}"})

    def get(self, request: Request) -> Response:
        self.org.require_session(request)
        v = self._version(request)
        name = self._sobject_name(request)
        assert request.match is not None
        fields_param = request.query.get("fields")
        fields = [f.strip() for f in fields_param.split(",") if f.strip()] if fields_param else None
        record = self._store_call(self.org.store.get, name, request.match.group("record_id"), fields)
        return json_response(with_api_version(record, self.org.store.api_version, v))

    def update(self, request: Request) -> Response:
        self.org.require_session(request)
        self._version(request)
        name = self._sobject_name(request)
        values = request.json()
        if not isinstance(values, dict):
            return json_response([{"message": "Can not deserialize SObject", "errorCode": "JSON_PARSER_ERROR"}],
                                 status=400)
        values.pop("attributes", None)
        values = self._store_call(resolve_parents, DescribeCache(self.org.store), name, values)
        assert request.match is not None
        self._write_call(request, self.org.store.update, name, request.match.group("record_id"), values)
        return empty_response(204)

    def delete(self, request: Request) -> Response:
        self.org.require_session(request)
        self._version(request)
        name = self._sobject_name(request)
        assert request.match is not None
        self._store_call(self.org.store.delete, name, request.match.group("record_id"))
        return empty_response(204)


