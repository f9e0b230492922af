"""What a Bulk API 1.0 batch does to the store (no HTTP): ingest rows written one by one through
core/dml.py (:class:`RowWriter`), and PK chunking's split of a query into Id ranges."""
from __future__ import annotations

import re
from typing import Any, Dict, List, Optional, Tuple

from ..core.dml import (DescribeCache, MultipleMatches, bulk_typed, check_id, existing, insert, resolve_parents,
                        upsert)
from ..core.ids import is_valid_id, to_18
from ..core.soql import SoqlError
from ..services import OrgServices
from .models import BatchFailure, Bulk1Job, RowResult

#: PK chunking's chunkSize when none is given, and the largest allowed
PK_CHUNK_DEFAULT, PK_CHUNK_MAX = 100_000, 250_000





class RowWriter:
    """Applies one ingest batch's records to the store the way Salesforce does, row by row
    (the lookups and the upsert are :mod:`..core.dml`'s, shared with the other write APIs)."""

    def __init__(self, org: OrgServices, job: Bulk1Job) -> None:
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



def chunk_queries(org: OrgServices, job: Bulk1Job, soql_text: str) -> List[str]:
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
