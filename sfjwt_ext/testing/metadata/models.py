"""The SOAP Metadata API's state (no HTTP): deploy and retrieve requests, deployed components."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from ..core.jobs import JobControls, Progress
from .eca import Failure

__all__ = ["AsyncMetadata", "MetadataJobs"]


class MetadataJobs:
    """The org's deploy/retrieve requests by id (``requests``) and what was deployed
    (``deployed``: (type, fullName) -> (fileName, content, when)), under ``lock``."""

    def __init__(self, controls: JobControls) -> None:
        self.controls = controls
        self.lock = threading.Lock()
        self.requests: Dict[str, AsyncMetadata] = {}
        self.deployed: Dict[Tuple[str, str], Tuple[str, bytes, float]] = {}


@dataclass
class AsyncMetadata:
    id: str
    kind: str  # "deploy" | "retrieve"
    created: float
    created_by: str
    progress: Progress
    check_only: bool = False
    ignore_warnings: bool = False
    rollback_on_error: bool = True
    components: List[Tuple[str, str, str]] = field(default_factory=list)  # (type, fullName, fileName)
    error: Optional[str] = None
    zip_bytes: bytes = b""
    messages: List[Tuple[str, str]] = field(default_factory=list)
    failures: List[Failure] = field(default_factory=list)   # componentFailures
    done: bool = False
