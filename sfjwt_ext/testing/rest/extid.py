"""REST by external id: ``/services/data/vXX.X/sobjects/{Object}/{Field}/{Value}``.

``GET`` reads the record, ``PATCH`` upserts it (201 with ``"created": true`` when it creates;
when it updates, 200 with ``"created": false`` from API 46.0, 204 before; ``?updateOnly=true``
never creates), ``DELETE`` deletes it; several matches answer 300 with their URLs, none 404.
``POST /sobjects/{Object}/Id`` creates (Id as the external id, API 37.0+). ``Field`` is any
field describe marks ``externalId`` or ``idLookup``, or ``Id``. Sources:
docs/testing-org-writes.md.
"""
from __future__ import annotations

from typing import Any, Dict, List

from ..core.dml import MultipleMatches, DescribeCache, find_ids, located, upsert
from ..core.http import HTTPError, Request, Response, empty_response, json_response
from ..core.versions import check_version, with_api_version
from ..core.soql import SoqlError
from ..services import OrgServices


CREATED_FLAG_SINCE = 46.0  # from this API version an update by upsert answers 200 with "created": false


class ExternalIdRoutes:
    def __init__(self, org: OrgServices) -> None:
        self.org = org

    def _context(self, request: Request) -> Dict[str, Any]:
        self.org.require_session(request)
        assert request.match is not None
        version = check_version(request.match.group("version"), self.org.api_version)
        store = self.org.store
        sobject = request.match.group("sobject")
        if not store.has_object(sobject):
            raise HTTPError(json_response([{"errorCode": "NOT_FOUND",
                                            "message": "The requested resource does not exist"}], status=404))
        groups = request.match.groupdict()
        return {"version": version, "sobject": store.object_name(sobject), "field": groups.get("field") or "Id",
                "value": groups.get("value"), "cache": DescribeCache(store)}

    @staticmethod
    def _url(version: str, sobject: str, record_id: str) -> str:
        return f"/services/data/v{version}/sobjects/{sobject}/{record_id}"

    def _one(self, c: Dict[str, Any]) -> str:
        ids: List[str] = find_ids(c["cache"], c["sobject"], c["field"], c["value"])
        if len(ids) > 1:
            raise HTTPError(json_response([self._url(c["version"], c["sobject"], i) for i in ids], status=300))
        if not ids:
            raise SoqlError("NOT_FOUND", "The requested resource does not exist", 404)
        return ids[0]

    def get(self, request: Request) -> Response:
        c = self._context(request)
        try:
            record_id = self._one(c)
            fields_param = request.query.get("fields")
            fields = [f.strip() for f in fields_param.split(",") if f.strip()] if fields_param else None
            store = c["cache"].store
            return json_response(with_api_version(store.get(c["sobject"], record_id, fields), store.api_version,
                                                  c["version"]))
        except SoqlError as exc:
            return json_response(exc.to_json(), status=exc.status)

    def delete(self, request: Request) -> Response:
        c = self._context(request)
        try:
            c["cache"].store.delete(c["sobject"], self._one(c))
        except SoqlError as exc:
            return json_response(exc.to_json(), status=exc.status)
        return empty_response(204)

    def patch(self, request: Request) -> Response:
        return self._upsert(request, self._context(request))

    def post_on_id(self, request: Request) -> Response:
        return self._upsert(request, self._context(request))

    def _upsert(self, request: Request, c: Dict[str, Any]) -> Response:
        values = request.json()
        if not isinstance(values, dict):
            return json_response([{"message": "Can not deserialize SObject out of START_ARRAY token",
                                   "errorCode": "JSON_PARSER_ERROR"}], status=400)
        update_only = (request.query.get("updateOnly") or "").lower() == "true"
        try:
            record_id, created = upsert(c["cache"], c["sobject"], c["field"], c["value"], values,
                                        update_only=update_only)
        except MultipleMatches as exc:
            return json_response([self._url(c["version"], c["sobject"], i) for i in exc.ids], status=300)
        except SoqlError as exc:
            exc = located(exc, request.body)
            return json_response(exc.to_json(), status=exc.status)
        flagged = float(c["version"]) >= CREATED_FLAG_SINCE
        body: Dict[str, Any] = {"id": record_id, "success": True, "errors": []}
        if flagged:
            body["created"] = created
        if created:
            return json_response(body, status=201,
                                 headers={"Location": self._url(c["version"], c["sobject"], record_id)})
        return json_response(body) if flagged else empty_response(204)


