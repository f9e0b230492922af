"""Bulk API 2.0's jobs (state, no HTTP): query jobs and ingest jobs, in one :class:`Bulk2Jobs`."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from ..core.jobs import FlatRows, JobControls, Progress, sf_datetime

__all__ = ["Bulk2Job", "Bulk2Jobs", "IngestJob", "RowResult", "ResultRequest"]

FINAL_STATES = ("JobComplete", "Failed", "Aborted")


class Bulk2Jobs:
    """The org's Bulk API 2.0 jobs under one lock: ``query`` (query and queryAll jobs) and
    ``ingest`` (insert, update, upsert, delete, hardDelete jobs), by id. ``controls`` gives ids
    and the test controls (``hold_polls``)."""

    def __init__(self, controls: JobControls) -> None:
        self.controls = controls
        self.lock = threading.Lock()
        self.query: Dict[str, Bulk2Job] = {}
        self.ingest: Dict[str, IngestJob] = {}


@dataclass(frozen=True)
class ResultRequest:
    """One ``GET .../results`` the org answered: which page, and how it travelled."""
    job_id: str
    offset: int
    rows: int
    accept_encoding: str
    gzipped: bool



@dataclass
class Bulk2Job:
    id: str
    operation: str
    object: str
    query: str
    created_by: str
    created: float
    api_version: str
    line_ending: str
    column_delimiter: str
    progress: Progress
    #: the query's rows, taken when the job is created (a snapshot in the store)
    rows: Optional[FlatRows] = None
    state: str = "UploadComplete"
    modstamp: float = 0.0
    error: Optional[str] = None

    def info(self, *, full: bool) -> Dict[str, Any]:
        data: Dict[str, Any] = {
            "id": self.id,
            "operation": self.operation,
            "object": self.object,
            "createdById": self.created_by,
            "createdDate": sf_datetime(self.created),
            "systemModstamp": sf_datetime(self.modstamp or self.created),
            "state": self.state,
            "concurrencyMode": "Parallel",
            "contentType": "CSV",
            "apiVersion": float(self.api_version),
        }
        if full:
            data["jobType"] = "V2Query"
        data["lineEnding"] = self.line_ending
        data["columnDelimiter"] = self.column_delimiter
        if full:
            done = self.state == "JobComplete"
            data["numberRecordsProcessed"] = self.rows.count if (done and self.rows) else 0
            data["retries"] = 0
            data["totalProcessingTime"] = 0 if not done else 12
            data["isPkChunkingSupported"] = True
            if self.error:
                data["errorMessage"] = self.error
        return data





@dataclass
class RowResult:
    row: List[str]
    record_id: str = ""
    created: bool = False
    error: str = ""



@dataclass
class IngestJob:
    id: str
    operation: str
    object: str
    external_id: Optional[str]
    created_by: str
    created: str
    api_version: str
    line_ending: str
    column_delimiter: str
    progress: Progress
    state: str = "Open"
    closing: bool = False
    modstamp: str = ""
    data: Optional[bytes] = None
    columns: List[str] = field(default_factory=list)
    results: List[RowResult] = field(default_factory=list)
    unprocessed: List[List[str]] = field(default_factory=list)
    error_message: Optional[str] = None

    def info(self, *, full: bool) -> Dict[str, Any]:
        data: Dict[str, Any] = {
            "id": self.id, "operation": self.operation, "object": self.object, "createdById": self.created_by,
            "createdDate": self.created, "systemModstamp": self.modstamp or self.created, "state": self.state,
        }
        if self.external_id:
            data["externalIdFieldName"] = self.external_id
        data.update({"concurrencyMode": "Parallel", "contentType": "CSV", "apiVersion": float(self.api_version)})
        if self.state == "Open":
            data["contentUrl"] = f"services/data/v{self.api_version}/jobs/ingest/{self.id}/batches"
        data.update({"lineEnding": self.line_ending, "columnDelimiter": self.column_delimiter})
        if full:
            data.update({
                "jobType": "V2Ingest",
                "numberRecordsProcessed": len(self.results) if self.state in FINAL_STATES else 0,
                "numberRecordsFailed": sum(1 for r in self.results if r.error) if self.state in FINAL_STATES else 0,
                "retries": 0, "totalProcessingTime": 0, "apiActiveProcessingTime": 0, "apexProcessingTime": 0,
            })
            if self.error_message:
                data["errorMessage"] = self.error_message
        return data
