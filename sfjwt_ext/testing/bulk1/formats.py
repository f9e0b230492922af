"""Bulk API 1.0's wire formats (no routing): job, batch and result bodies as XML (the dataload
namespace), JSON or CSV, error bodies, and the records of an ingest batch parsed from any of them."""
from __future__ import annotations

import csv
import datetime as _dt
import io
import json
from typing import Any, Dict, List
from xml.etree import ElementTree as ET

from ..core.jobs import XSI_NS, local_name, render_csv, xml_text
from ..core.http import Response, parse_json
from ..core.dml import bulk_error_text, save_error
from .models import BatchFailure, RowResult

#: the CSV text of null in an ingest batch
NULL_VALUE = "#N/A"


DATALOAD_NS = "http://www.force.com/2009/06/asyncapi/dataload"



#: the Content-Type of each answer format, exactly as Salesforce sends it (no charset)
MEDIA_TYPES = {"JSON": "application/json", "XML": "application/xml", "CSV": "text/csv"}



def xml_scalar(value: Any) -> Any:
    if value is True:
        return "true"
    if value is False:
        return "false"
    return value



def xml_datetime(ts: float) -> str:
    """jobInfo/batchInfo XML dates: ``2015-12-15T21:41:45.000Z`` (JSON has ``+0000``)."""
    d = _dt.datetime.fromtimestamp(ts, tz=_dt.timezone.utc)
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond // 1000:03d}Z"



def _record_xml(record: Dict[str, Any], tag: str) -> str:
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
            parts.append(f"<{key}>{xml_text(xml_scalar(value))}</{key}>")
    parts.append(f"</{tag}>")
    return "".join(parts)



def records_xml(records: List[Dict[str, Any]]) -> str:
    return (f'<?xml version="1.0" encoding="UTF-8"?><queryResult xmlns="{DATALOAD_NS}" xmlns:xsi="{XSI_NS}">'
            + "".join(_record_xml(r, "records") for r in records) + "</queryResult>")



def answer(fmt: str, body: Any, status: int = 200) -> Response:
    """``body`` (JSON data, or an XML/CSV document) with Salesforce's bare media type."""
    if fmt == "JSON":
        data = json.dumps(body, separators=(",", ":"), default=str).encode("utf-8")
    else:
        data = body.encode("utf-8") if isinstance(body, str) else bytes(body)
    return Response(status=status, body=data, headers={}, content_type=MEDIA_TYPES[fmt])



def bulk1_error_response(fmt: str, code: str, message: str, status: int = 400) -> Response:
    """Bulk API 1.0's error body, as JSON or as XML in the dataload namespace."""
    if fmt == "JSON":
        return answer("JSON", {"exceptionCode": code, "exceptionMessage": message}, status)
    doc = (f'<?xml version="1.0" encoding="UTF-8"?><error\n   xmlns="{DATALOAD_NS}">\n'
           f" <exceptionCode>{xml_text(code)}</exceptionCode>\n"
           f" <exceptionMessage>{xml_text(message)}</exceptionMessage>\n</error>")
    return answer("XML", doc, status)



def results_csv(results: List[RowResult]) -> str:
    rows = [[r.id or "", "true" if r.success else "false", "true" if r.created else "false",
             bulk_error_text(r.error) if r.error else ""] for r in results]
    return render_csv(["Id", "Success", "Created", "Error"], rows, ",", "\n")



def results_json(results: List[RowResult]) -> List[Dict[str, Any]]:
    return [{"success": r.success, "created": r.created, "id": r.id,
             "errors": [] if r.error is None else [save_error(r.error)]}
            for r in results]



def results_xml(results: List[RowResult]) -> str:
    parts = []
    for r in results:
        errors = ""
        if r.error is not None:
            errors = ("<errors>" + "".join(f"<fields>{xml_text(f)}</fields>" for f in r.error.fields)
                      + f"<message>{xml_text(r.error.message)}</message>"
                      f"<statusCode>{xml_text(r.error.error_code)}</statusCode></errors>")
        ident = f"<id>{r.id}</id>" if r.id else '<id xsi:nil="true"/>'
        parts.append(f"<result>{errors}{ident}<success>{xml_scalar(r.success)}</success>"
                     f"<created>{xml_scalar(r.created)}</created></result>")
    return (f'<?xml version="1.0" encoding="UTF-8"?><results xmlns="{DATALOAD_NS}" xmlns:xsi="{XSI_NS}">'
            + "".join(parts) + "</results>")



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
