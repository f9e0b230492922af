"""Composite resources of the local org.

- sObject Collections ``/composite/sobjects``: POST create, PATCH update,
  ``PATCH /composite/sobjects/{Object}/{ExtIdField}`` upsert, ``DELETE ?ids=``, retrieve with
  ``GET /composite/sobjects/{Object}?ids=&fields=`` or POST ``{ids, fields}``. Up to 200
  records; one SaveResult per record, in order; ``allOrNone`` rolls everything back.
- ``/composite``: up to 25 subrequests run through the org's own router, ``@{ref.id}`` /
  ``@{ref.records[0].Id}`` references into earlier answers, ``allOrNone``.
- ``/composite/tree/{Object}``: records with nested child records, all or nothing.
- ``/composite/batch``: up to 25 independent subrequests, ``haltOnError``.

Shapes and sources: docs/testing-org-writes.md.
"""
from __future__ import annotations

import json
import re
from typing import Any, Callable, Dict, List, Optional, Tuple

from ..core.dml import (MultipleMatches, DescribeCache, check_id, existing, first_type_error, insert, located,
                  resolve_parents, save_error, upsert)
from ..core.http import Headers, HTTPError, Request, Response, json_response
from ..core.versions import with_api_version
from ..core.soql import SoqlError
from ..core.values import JsonValueError, json_token
from ..services import OrgServices


MAX_COLLECTION = 200
MAX_SUBREQUESTS = 25
MAX_TREE_RECORDS = 200
ROLLED_BACK = {"statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
               "message": "Record rolled back because not all records were valid and the request was using "
                          "AllOrNone header", "fields": []}
BATCH_HALTED = {"errorCode": "BATCH_PROCESSING_HALTED", "message": "Batch processing halted per user request"}
HALTED = "The transaction was rolled back since another operation in the same transaction failed."
_REFERENCE = re.compile(r"@\{([A-Za-z0-9_]+)((?:\.[A-Za-z0-9_]+|\[\d+\])*)\}")


class _Rollback(Exception):
    pass


def _bad_request(code: str, message: str) -> HTTPError:
    return HTTPError(json_response([{"errorCode": code, "message": message}], status=400))


def _flag(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def _lookup(value: Any, path: str) -> Any:
    """``path`` (``.id``, ``.records[0].Id``) inside a decoded JSON answer; KeyError when absent."""
    for name, index in re.findall(r"\.([A-Za-z0-9_]+)|\[(\d+)\]", path):
        if name:
            if not isinstance(value, dict) or name not in value:
                raise KeyError(name)
            value = value[name]
        else:
            if not isinstance(value, list) or int(index) >= len(value):
                raise KeyError(index)
            value = value[int(index)]
    return value


def _check_attributes(record: Dict[str, Any]) -> None:
    """400 JSON_PARSER_ERROR unless a record's ``attributes`` is absent or an object."""
    attributes = record.get("attributes")
    if attributes is not None and not isinstance(attributes, dict):
        token, text = json_token(attributes)
        raise _bad_request("JSON_PARSER_ERROR", f"Cannot deserialize instance of attributes from {token} value {text} "
                                                f"or request may be missing a required field")


def _refuse_type_error(request: Request, error: Optional[SoqlError]) -> None:
    """400 JSON_PARSER_ERROR (with its place in the body) for a value of the wrong type."""
    if error is not None:
        error = located(error, request.body)
        raise HTTPError(json_response(error.to_json(), status=400))


def _check_tree(records: List[Any]) -> None:
    """Every record of a tree (children too) an object whose ``attributes`` is an object."""
    pending = list(records)
    while pending:
        record = pending.pop()
        if not isinstance(record, dict):
            token, text = json_token(record)
            raise _bad_request("JSON_PARSER_ERROR", f"Cannot deserialize instance of SObject from {token} value "
                                                    f"{text} or request may be missing a required field")
        _check_attributes(record)
        for value in record.values():
            if isinstance(value, dict) and isinstance(value.get("records"), list):
                pending.extend(value["records"])


class CompositeService:
    def __init__(self, org: OrgServices) -> None:
        self.org = org

    @property
    def _cache(self) -> DescribeCache:
        return DescribeCache(self.org.store)

    def _auth(self, request: Request) -> str:
        self.org.require_session(request)
        assert request.match is not None
        return request.match.group("version")

    # ------------------------------------------------------------------ collections
    def _records(self, request: Request, sobject: Optional[str] = None) -> Tuple[List[Dict[str, Any]], bool]:
        """The records of a Collections body and its allOrNone; 400 for a body Salesforce's parser
        refuses, a value of the wrong type in any record included (before anything is saved)."""
        body = request.json()
        records = body.get("records") if isinstance(body, dict) else None
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise _bad_request("JSON_PARSER_ERROR", "The request body must hold a records list")
        for record in records:
            _check_attributes(record)
        if len(records) > MAX_COLLECTION:
            raise _bad_request("EXCEEDED_ID_LIMIT", f"record limit reached. cannot submit more than "
                                                    f"{MAX_COLLECTION} records into this call")
        typed = [(sobject or str((r.get("attributes") or {}).get("type") or ""), r) for r in records]
        _refuse_type_error(request, first_type_error(self.org.store, typed))
        return records, _flag(body.get("allOrNone"))

    @staticmethod
    def _type(record: Dict[str, Any]) -> str:
        attributes = record.get("attributes")
        sobject = attributes.get("type") if isinstance(attributes, dict) else None
        if not sobject:
            raise SoqlError("INVALID_TYPE", "Must send a concrete entity type.")
        return str(sobject)

    def _each(self, items: List[Any], all_or_none: bool,
              one: Callable[[DescribeCache, Any], Dict[str, Any]]) -> List[Dict[str, Any]]:
        """One SaveResult per item; with ``all_or_none`` a failure rolls every write back."""
        cache = self._cache
        results: List[Dict[str, Any]] = []

        def run() -> None:
            for item in items:
                try:
                    results.append(one(cache, item))
                except MultipleMatches as exc:
                    results.append({"success": False, "errors": [save_error(SoqlError(
                        "DUPLICATE_EXTERNAL_ID", f"{exc.field_name}: more than one record found for external id "
                                                 f"field: [{', '.join(exc.ids)}]", fields=[exc.field_name]))]})
                except SoqlError as exc:
                    results.append({"success": False, "errors": [save_error(exc)]})
            if all_or_none and not all(r["success"] for r in results):
                raise _Rollback()

        if not all_or_none:
            run()
            return results
        try:
            with cache.store.atomic():
                run()
        except _Rollback:
            return [r if not r["success"] else {"success": False, "errors": [dict(ROLLED_BACK)]} for r in results]
        return results

    def _create_one(self, cache: DescribeCache, record: Dict[str, Any]) -> Dict[str, Any]:
        sobject = self._type(record)
        values = resolve_parents(cache, sobject, {k: v for k, v in record.items() if k != "attributes"})
        return {"id": insert(cache.store, sobject, [values])[0], "success": True, "errors": []}

    def _update_one(self, cache: DescribeCache, record: Dict[str, Any]) -> Dict[str, Any]:
        sobject = self._type(record)
        values = {k: v for k, v in record.items() if k != "attributes" and k.lower() != "id"}
        raw_id = next((v for k, v in record.items() if k.lower() == "id"), None)
        if not raw_id:
            raise SoqlError("MISSING_ARGUMENT", "Id not specified in an update call", fields=["Id"])
        record_id = check_id(sobject, raw_id)
        existing(lambda: cache.store.update(sobject, record_id, resolve_parents(cache, sobject, values)))
        return {"id": record_id, "success": True, "errors": []}

    def _delete_one(self, cache: DescribeCache, raw_id: str) -> Dict[str, Any]:
        record_id = check_id("Record", raw_id)
        sobject = self._sobject_of(cache, record_id)
        existing(lambda: cache.store.delete(sobject, record_id))
        return {"id": record_id, "success": True, "errors": []}

    @staticmethod
    def _sobject_of(cache: DescribeCache, record_id: str) -> str:
        prefix = record_id[:3]
        for entry in cache.store.describe_global()["sobjects"]:
            if entry.get("keyPrefix") == prefix:
                return str(entry["name"])
        raise SoqlError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id")

    def collection_create(self, request: Request) -> Response:
        self._auth(request)
        records, all_or_none = self._records(request)
        return json_response(self._each(records, all_or_none, self._create_one))

    def collection_update(self, request: Request) -> Response:
        self._auth(request)
        records, all_or_none = self._records(request)
        return json_response(self._each(records, all_or_none, self._update_one))

    def collection_upsert(self, request: Request) -> Response:
        self._auth(request)
        assert request.match is not None
        sobject, ext_field = request.match.group("sobject"), request.match.group("field")
        records, all_or_none = self._records(request, sobject)
        try:
            self._cache.fields(sobject).external_id(ext_field)
        except SoqlError as exc:
            return json_response(exc.to_json(), status=exc.status)

        def one(cache: DescribeCache, record: Dict[str, Any]) -> Dict[str, Any]:
            values = {k: v for k, v in record.items() if k != "attributes"}
            value = next((v for k, v in values.items() if k.lower() == ext_field.lower()), None)
            record_id, created = upsert(cache, sobject, ext_field, value, values)
            return {"id": record_id, "success": True, "errors": [], "created": created}

        return json_response(self._each(records, all_or_none, one))

    def collection_delete(self, request: Request) -> Response:
        self._auth(request)
        ids = [i for i in (request.query.get("ids") or "").split(",") if i]
        if not ids:
            raise _bad_request("MISSING_ARGUMENT", "ids parameter is required")
        if len(ids) > MAX_COLLECTION:
            raise _bad_request("EXCEEDED_ID_LIMIT", f"record limit reached. cannot submit more than "
                                                    f"{MAX_COLLECTION} records into this call")
        return json_response(self._each(ids, _flag(request.query.get("allOrNone")), self._delete_one))

    def collection_retrieve(self, request: Request) -> Response:
        version = self._auth(request)
        assert request.match is not None
        if request.method == "POST":
            body = request.json()
            ids = body.get("ids") if isinstance(body, dict) else None
            fields = body.get("fields") if isinstance(body, dict) else None
        else:
            ids = [i for i in (request.query.get("ids") or "").split(",") if i]
            fields = [f for f in (request.query.get("fields") or "").split(",") if f]
        if not isinstance(ids, list) or not ids or not isinstance(fields, list) or not fields:
            raise _bad_request("MISSING_ARGUMENT", "ids and fields are required")
        store = self.org.store
        sobject = request.match.group("sobject")
        out: List[Optional[Dict[str, Any]]] = []
        try:
            for raw_id in ids:
                try:
                    out.append(store.get(sobject, check_id(sobject, raw_id), fields))
                except SoqlError as exc:
                    if exc.error_code not in ("NOT_FOUND", "MALFORMED_ID"):
                        raise
                    out.append(None)
        except SoqlError as exc:
            return json_response(exc.to_json(), status=exc.status)
        return json_response(with_api_version(out, store.api_version, version))

    # ------------------------------------------------------------------ subrequests
    def _dispatch(self, request: Request, method: str, url: str, body: Any,
                  headers: Optional[Dict[str, str]] = None) -> Response:
        if not url.startswith("/services/data/"):
            return json_response([{"errorCode": "INVALID_INPUT", "message": f"Invalid URL: {url}"}], status=400)
        sub_headers = Headers({k: v for k, v in request.headers.items() if k.lower() != "content-length"})
        for key, value in (headers or {}).items():
            sub_headers[key] = value
        data = b""
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            sub_headers["Content-Type"] = "application/json"
        sub = Request.build(method, url, sub_headers, data, role="instance", org=request.org)
        return self.org.router.dispatch(sub)

    @staticmethod
    def _decoded(response: Response) -> Any:
        if not response.body:
            return None
        try:
            return response.json()
        except ValueError:
            return response.body.decode("utf-8", "replace")

    def composite(self, request: Request) -> Response:
        self._auth(request)
        body = request.json()
        subrequests = body.get("compositeRequest") if isinstance(body, dict) else None
        if not isinstance(subrequests, list) or not subrequests:
            raise _bad_request("JSON_PARSER_ERROR", "compositeRequest is required")
        if len(subrequests) > MAX_SUBREQUESTS:
            raise _bad_request("INVALID_INPUT", f"The composite request exceeds the limit of {MAX_SUBREQUESTS} "
                                                f"subrequests")
        all_or_none = _flag(body.get("allOrNone"))
        answers: List[Dict[str, Any]] = []
        done: Dict[str, Tuple[int, Any]] = {}

        def run() -> None:
            for sub in subrequests:
                answer = self._subrequest(request, sub, done)
                answers.append(answer)
                done[str(sub.get("referenceId"))] = (answer["httpStatusCode"], answer["body"])
                if all_or_none and answer["httpStatusCode"] >= 400:
                    raise _Rollback()

        if not all_or_none:
            run()
            return json_response({"compositeResponse": answers})
        try:
            with self.org.store.atomic():
                run()
        except _Rollback:
            failed = len(answers) - 1
            halted = [{"errorCode": "PROCESSING_HALTED", "message": HALTED}]
            out = []
            for i, sub in enumerate(subrequests):
                if i == failed:
                    out.append(answers[i])
                else:
                    out.append({"body": halted, "httpHeaders": {}, "httpStatusCode": 400,
                                "referenceId": sub.get("referenceId")})
            return json_response({"compositeResponse": out})
        return json_response({"compositeResponse": answers})

    def _subrequest(self, request: Request, sub: Any, done: Dict[str, Tuple[int, Any]]) -> Dict[str, Any]:
        reference_id = sub.get("referenceId") if isinstance(sub, dict) else None
        try:
            url = self._substitute(str(sub["url"]), done)
            body = self._substitute(sub.get("body"), done)
            method = str(sub["method"]).upper()
        except KeyError as exc:
            return {"body": [{"errorCode": "PROCESSING_HALTED", "message": str(exc.args[0])}], "httpHeaders": {},
                    "httpStatusCode": 400, "referenceId": reference_id}
        response = self._dispatch(request, method, url, body, sub.get("httpHeaders"))
        headers = {k: v for k, v in response.headers.items() if k.lower() in ("location", "etag", "last-modified")}
        return {"body": self._decoded(response), "httpHeaders": headers, "httpStatusCode": response.status,
                "referenceId": reference_id}

    def _substitute(self, value: Any, done: Dict[str, Tuple[int, Any]]) -> Any:
        """``@{ref.path}`` in strings (recursively) replaced from the earlier answers."""
        if isinstance(value, dict):
            return {k: self._substitute(v, done) for k, v in value.items()}
        if isinstance(value, list):
            return [self._substitute(v, done) for v in value]
        if not isinstance(value, str) or "@{" not in value:
            return value

        def replace(match: "re.Match[str]") -> str:
            ref, path = match.group(1), match.group(2)
            status, answer = done.get(ref, (0, None))
            try:
                if status >= 400 or status == 0:
                    raise KeyError(ref)
                found = _lookup(answer, path)
            except KeyError:
                raise KeyError(f"Invalid reference specified. No value for {ref}{path} found in {ref}. Provided "
                               f"referenceId ('{ref}') must be a valid referenceId") from None
            return str(found)

        return _REFERENCE.sub(replace, value)

    def batch(self, request: Request) -> Response:
        self._auth(request)
        body = request.json()
        subrequests = body.get("batchRequests") if isinstance(body, dict) else None
        if not isinstance(subrequests, list) or not subrequests:
            raise _bad_request("JSON_PARSER_ERROR", "batchRequests is required")
        if len(subrequests) > MAX_SUBREQUESTS:
            raise _bad_request("INVALID_INPUT", f"A batch cannot hold more than {MAX_SUBREQUESTS} subrequests")
        halt = _flag(body.get("haltOnError"))
        results: List[Dict[str, Any]] = []
        halted = False
        for sub in subrequests:
            if halted:
                results.append({"statusCode": 412, "result": [dict(BATCH_HALTED)]})
                continue
            url = "/services/data/" + str(sub.get("url", "")).lstrip("/")
            response = self._dispatch(request, str(sub.get("method", "GET")).upper(), url, sub.get("richInput"))
            results.append({"statusCode": response.status, "result": self._decoded(response)})
            halted = halt and response.status >= 400
        return json_response({"hasErrors": any(r["statusCode"] >= 400 for r in results), "results": results})

    # ------------------------------------------------------------------ tree
    def tree(self, request: Request) -> Response:
        self._auth(request)
        assert request.match is not None
        body = request.json()
        records = body.get("records") if isinstance(body, dict) else None
        if not isinstance(records, list) or not records:
            raise _bad_request("JSON_PARSER_ERROR", "records is required")
        _check_tree(records)
        if self._count(records) > MAX_TREE_RECORDS:
            raise _bad_request("EXCEEDED_ID_LIMIT", f"The tree may hold at most {MAX_TREE_RECORDS} records")
        cache = self._cache
        results: List[Dict[str, Any]] = []
        try:
            with self.org.store.atomic():
                for record in records:
                    self._plant(cache, request.match.group("sobject"), record, None, results)
        except JsonValueError as exc:
            _refuse_type_error(request, exc)
        except _Rollback:
            return json_response({"hasErrors": True, "results": [r for r in results if "errors" in r]}, status=400)
        return json_response({"hasErrors": False, "results": results}, status=201)

    def _count(self, records: List[Any]) -> int:
        total = 0
        for record in records:
            total += 1
            for value in record.values() if isinstance(record, dict) else []:
                if isinstance(value, dict) and isinstance(value.get("records"), list):
                    total += self._count(value["records"])
        return total

    def _plant(self, cache: DescribeCache, sobject: str, record: Dict[str, Any], parent: Optional[Tuple[str, str]],
               results: List[Dict[str, Any]]) -> None:
        attributes = record.get("attributes") or {}
        reference_id = attributes.get("referenceId")
        children = {k: v for k, v in record.items() if isinstance(v, dict) and isinstance(v.get("records"), list)}
        values = {k: v for k, v in record.items() if k != "attributes" and k not in children}
        if parent is not None:
            values[parent[0]] = parent[1]
        try:
            sobject = str(attributes.get("type") or sobject)
            new_id = insert(cache.store, sobject, [resolve_parents(cache, sobject, values)])[0]
        except JsonValueError:
            raise   # the parser's refusal: the whole request (tree() answers it)
        except SoqlError as exc:
            results.append({"referenceId": reference_id, "errors": [save_error(exc)]})
            raise _Rollback() from None
        results.append({"referenceId": reference_id, "id": new_id})
        relationships = {c["relationshipName"].lower(): c
                         for c in cache.store.describe(sobject)["childRelationships"] if c.get("relationshipName")}
        for name, value in children.items():
            relation = relationships.get(name.lower())
            if relation is None:
                results.append({"referenceId": reference_id, "errors": [save_error(SoqlError(
                    "INVALID_FIELD", f"No such relationship '{name}' on sobject of type {sobject}"))]})
                raise _Rollback()
            for child in value["records"]:
                self._plant(cache, relation["childSObject"], child, (relation["field"], new_id), results)


