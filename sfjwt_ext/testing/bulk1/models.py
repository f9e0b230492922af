"""Bulk API 1.0's jobs and batches (state, no HTTP), in one :class:`Bulk1Jobs`."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from ..core.jobs import JobControls, Progress, Rows
from ..core.soql import SoqlError

__all__ = ["BatchFailure", "Bulk1Batch", "Bulk1Job", "Bulk1Jobs", "RowResult"]


class Bulk1Jobs:
    """The org's Bulk API 1.0 jobs by id (``jobs``), under ``lock``; ``controls`` gives ids and the
    test controls (``hold_polls``, ``bulk1_result_size``)."""

    def __init__(self, controls: JobControls) -> None:
        self.controls = controls
        self.lock = threading.Lock()
        self.jobs: Dict[str, Bulk1Job] = {}


@dataclass
class RowResult:
    """One ingest row's outcome (a line of the batch results)."""

    id: Optional[str]
    success: bool
    created: bool
    error: Optional[SoqlError] = None



@dataclass
class Bulk1Batch:
    id: str
    job_id: str
    soql: str                      # the request body as text (SOQL, or the records)
    created: float
    progress: Progress
    state: str = "Queued"
    state_message: Optional[str] = None
    rows: Optional[Rows] = None                    # query batches
    results: Optional[List[RowResult]] = None      # ingest batches
    result_ids: List[str] = field(default_factory=list)
    modstamp: float = 0.0
    chunked: bool = False          # PK chunking replaced this batch by chunk batches (NotProcessed)

    @property
    def processed(self) -> int:
        if self.state != "Completed":
            return 0
        if self.results is not None:
            return len(self.results)
        return self.rows.count if self.rows is not None else 0

    @property
    def failed(self) -> int:
        if self.state != "Completed" or self.results is None:
            return 0
        return sum(1 for r in self.results if not r.success)



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
    external_id_field: Optional[str] = None
    pk_chunk_size: Optional[int] = None
    pk_start_row: Optional[str] = None
    batches: List[Bulk1Batch] = field(default_factory=list)

    @property
    def answers(self) -> str:
        """The format of this job's answers: JSON for JSON jobs, XML otherwise."""
        return "JSON" if self.content_type == "JSON" else "XML"


class BatchFailure(Exception):
    """The whole batch fails (state Failed) with this state message."""
