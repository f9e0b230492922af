"""The local org's REST API on the instance host: versions, resources, limits, SOQL query
(and queryMore cursors), sObject describe and CRUD, the same under ``/tooling``, and the
Apex REST routes a test registers (``org.register_apex_route``).

Records live in ``org.store`` (:class:`~.records.Store`); a ``SoqlError`` it raises becomes
Salesforce's JSON error body.
"""
from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple

from .dml import DescribeCache, insert, located, resolve_parents
from .http import HTTPError, Request, Response, Router, empty_response, json_response, parse_json, text_response
from .ids import random_id
from .soql import SoqlError

if TYPE_CHECKING:
    from .org import LocalOrg

__all__ = ["RestApi", "ApexRequest", "register", "with_api_version"]

_V = r"/services/data/v(?P<version>\d+\.\d)"
#: versions below this were retired (7.0-20.0 in Summer '22, 21.0-30.0 in Summer '25): REST answers 410
OLDEST_VERSION = 31.0
_ANY_VERSION = re.compile(r"/services/data/v(\d+(?:\.\d+)?)(?:/.*)?")
_RECORD_ID = r"(?P<record_id>[a-zA-Z0-9]{15}(?:[a-zA-Z0-9]{3})?)"
_SOBJECT = r"(?P<sobject>\w+)"


def _version_label(version: str) -> str:
    v = int(float(version))
    k = 62 - v
    season = ("Winter", "Summer", "Spring")[k % 3]
    year = 25 - (k + 2) // 3
    return f"{season} '{year:02d}"


def retired_version(request: Request) -> Optional[Response]:
    """410 GONE for any ``/services/data/vXX.X/...`` of a retired version (a Router guard)."""
    match = _ANY_VERSION.fullmatch(request.path)
    if match is None or float(match.group(1)) >= OLDEST_VERSION:
        return None
    return json_response([{"errorCode": "GONE", "message": f"API version {match.group(1)} is retired and no longer "
                                                          f"available; use {OLDEST_VERSION} or later"}], status=410)


def check_version(org: "LocalOrg", version: str) -> str:
    """``version`` if this org serves it; NOT_FOUND (404) past the org's newest."""
    if not OLDEST_VERSION <= float(version) <= float(org.api_version):
        raise HTTPError(json_response([{"errorCode": "NOT_FOUND",
                                        "message": "The requested resource does not exist"}], status=404))
    return version


def with_api_version(data: Any, stored: str, version: str) -> Any:
    """``data`` (records or a describe body) with every ``/services/data/v<stored>/`` URL
    naming ``version`` instead: Salesforce writes ``attributes.url`` and describe's ``urls`` in
    the API version of the request. Changes the dicts in place (they are built per request)."""
    if version == stored:
        return data
    old, new = f"/services/data/v{stored}/", f"/services/data/v{version}/"

    def fix(value: Any) -> Any:
        if isinstance(value, str):
            return new + value[len(old):] if value.startswith(old) else value
        if isinstance(value, dict):
            for key, item in value.items():
                if isinstance(item, (str, dict, list)):
                    value[key] = fix(item)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, (str, dict, list)):
                    value[i] = fix(item)
        return value

    return fix(data)


@dataclass
class ApexRequest:
    """What an Apex REST handler receives (see ``LocalOrg.register_apex_route``)."""

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
    records: List[dict]
    total_size: int
    batch: int
    created: float


class RestApi:
    """The REST handlers of one org and their queryMore cursors (``_cursors``, under ``_lock``)."""

    def __init__(self, org: LocalOrg) -> None:
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
            user = self.org._users_by_id.get(session.user_id)
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
        return check_version(self.org, request.match.group("version"))

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

    def _versions(self, request: Request) -> Response:
        """``GET /services/data/``: the versions list, which Salesforce serves without a token."""
        top = int(float(self.org.api_version))
        return json_response([{"label": _version_label(f"{v}.0"), "url": f"/services/data/v{v}.0", "version": f"{v}.0"}
                              for v in range(int(OLDEST_VERSION), top + 1)])

    def _resources(self, request: Request) -> Response:
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
        token = self.org._bearer(request)
        with self.org._lock:
            s = self.org._sessions.get(token or "")
            return s.user_id if s else ""

    def _limits(self, request: Request) -> Response:
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
    def _record_count(self, request: Request) -> Response:
        self.org.require_session(request)
        self._version(request)
        names = request.query.get("sObjects")
        return json_response(self.org.store.record_counts(names.split(",") if names is not None else None))

    def _replication(self, request: Request) -> Response:
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

    def _query(self, request: Request) -> Response:
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

    def _query_more(self, request: Request) -> Response:
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
        changed = self._store_call(self.org.store.metadata_changed, sobject)
        return changed.replace(microsecond=0) <= when

    def _describe_global(self, request: Request) -> Response:
        self.org.require_session(request)
        v = self._version(request)
        if self._unchanged(request):
            return empty_response(304)
        return json_response(with_api_version(self._store_call(self.org.store.describe_global),
                                              self.org.store.api_version, v))

    def _describe(self, request: Request) -> Response:
        self.org.require_session(request)
        v = self._version(request)
        name = self._sobject_name(request)
        if self._unchanged(request, name):
            return empty_response(304)
        return json_response(with_api_version(self._store_call(self.org.store.describe, name),
                                              self.org.store.api_version, v))

    def _sobject_info(self, request: Request) -> Response:
        self.org.require_session(request)
        v = self._version(request)
        name = self._sobject_name(request)
        full = with_api_version(self._store_call(self.org.store.describe, name), self.org.store.api_version, v)
        basic = {k: v for k, v in full.items() if k not in ("fields", "childRelationships", "recordTypeInfos",
                                                             "supportedScopes", "namedLayoutInfos",
                                                             "actionOverrides")}
        return json_response({"objectDescribe": basic, "recentItems": []})

    def _create(self, request: Request) -> Response:
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

    def _get(self, request: Request) -> Response:
        self.org.require_session(request)
        v = self._version(request)
        name = self._sobject_name(request)
        assert request.match is not None
        fields_param = request.query.get("fields")
        fields = [f.strip() for f in fields_param.split(",") if f.strip()] if fields_param else None
        record = self._store_call(self.org.store.get, name, request.match.group("record_id"), fields)
        return json_response(with_api_version(record, self.org.store.api_version, v))

    def _update(self, request: Request) -> Response:
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

    def _delete(self, request: Request) -> Response:
        self.org.require_session(request)
        self._version(request)
        name = self._sobject_name(request)
        assert request.match is not None
        self._store_call(self.org.store.delete, name, request.match.group("record_id"))
        return empty_response(204)


def register(router: Router, org: LocalOrg) -> RestApi:
    """Add the REST and Tooling routes for ``org`` to ``router``."""
    api = RestApi(org)
    router.add_guard(retired_version)
    add = router.add
    add("instance", "GET", r"/services/data/?", api._versions)
    add("instance", "GET", _V + r"/?", api._resources)
    add("instance", "GET", _V + r"/limits/?", api._limits)
    add("instance", "GET", _V + r"/limits/recordCount/?", api._record_count)
    add("instance", "GET", _V + r"/sobjects/" + _SOBJECT + r"/(?P<kind>updated|deleted)/?", api._replication)
    add("instance", "GET", _V + r"/(?P<kind>query|queryAll)/?", api._query)
    add("instance", "GET", _V + r"/(?:query|queryAll)/(?P<cursor>01g\w{15})-(?P<offset>\d+)/?", api._query_more)
    add("instance", "GET", _V + r"/tooling/(?P<kind>query|queryAll)/?", api._query)
    add("instance", "GET", _V + r"/tooling/(?:query|queryAll)/(?P<cursor>01g\w{15})-(?P<offset>\d+)/?",
        api._query_more)
    add("instance", "GET", _V + r"/sobjects/?", api._describe_global)
    add("instance", "GET", _V + r"/sobjects/" + _SOBJECT + r"/?", api._sobject_info)
    add("instance", "POST", _V + r"/sobjects/" + _SOBJECT + r"/?", api._create)
    add("instance", "GET", _V + r"/sobjects/" + _SOBJECT + r"/describe/?", api._describe)
    add("instance", "GET", _V + r"/sobjects/" + _SOBJECT + "/" + _RECORD_ID + r"/?", api._get)
    add("instance", "PATCH", _V + r"/sobjects/" + _SOBJECT + "/" + _RECORD_ID + r"/?", api._update)
    add("instance", "DELETE", _V + r"/sobjects/" + _SOBJECT + "/" + _RECORD_ID + r"/?", api._delete)
    return api
