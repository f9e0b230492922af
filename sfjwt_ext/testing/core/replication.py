"""Replication for the local org's store: ``sobjects/X/updated`` and ``sobjects/X/deleted``.

:class:`Replication` answers which records changed or were deleted in a time window (the
window checks Salesforce makes included); ``store.updated`` / ``store.deleted`` hand over to it.
"""

from __future__ import annotations

import sqlite3
import threading
from typing import Any, Dict, List, Protocol, Tuple

from .literals import format_datetime, parse_datetime
from .schema import ObjectDef, quote_identifier
from .soql import SoqlError

__all__ = ["Replication"]


class ReplicatedTables(Protocol):
    """What replication reads of the store: its objects and its creation date."""

    created_date: str

    def object_def(self, name: str, *, tooling: bool = False) -> ObjectDef: ...


class Replication:
    """The updated / deleted answers of ``tables``, read on ``conn`` under ``lock``."""

    def __init__(self, tables: ReplicatedTables, conn: sqlite3.Connection, lock: threading.RLock) -> None:
        self.tables = tables
        self._conn = conn
        self._lock = lock

    # replication ----------------------------------------------------------
    def _replication_window(self, start: str, end: str) -> Tuple[str, str]:
        """``start``/``end`` of GET .../updated or .../deleted as stored datetimes (seconds dropped)."""
        bounds = []
        for name, text in (("start", start), ("end", end)):
            dt = parse_datetime(text or "")
            if dt is None:
                raise SoqlError("INVALID_REPLICATION_DATE" if text else "MISSING_ARGUMENT",
                                f"{name}: a dateTime like 2024-05-01T00:00:00+00:00 is needed, got {text!r}"
                                if text else f"Missing required parameter: {name}")
            bounds.append(dt.replace(second=0, microsecond=0))
        if bounds[0] > bounds[1]:
            raise SoqlError("INVALID_REPLICATION_DATE", "EndDate must chronologically succeed startDate")
        return format_datetime(bounds[0]), format_datetime(bounds[1])

    def updated(self, sobject: str, start: str, end: str) -> Dict[str, Any]:
        """GET /sobjects/X/updated/?start=&end=: ids of live records whose SystemModstamp is in [start, end)."""
        obj = self.tables.object_def(sobject)
        lo, hi = self._replication_window(start, end)
        live = ' AND "IsDeleted" = 0' if obj.by_lower["isdeleted"].external else ""
        with self._lock:
            rows = self._conn.execute(f'SELECT "Id" FROM {quote_identifier(obj.name)} WHERE "SystemModstamp" >= ? '
                                      f'AND "SystemModstamp" < ?{live} ORDER BY "SystemModstamp", rowid',
                                      (lo, hi)).fetchall()
        return {"ids": [r[0] for r in rows], "latestDateCovered": hi}

    def deleted(self, sobject: str, start: str, end: str) -> Dict[str, Any]:
        """GET /sobjects/X/deleted/?start=&end=: records deleted (to the recycle bin) in [start, end)."""
        obj = self.tables.object_def(sobject)
        lo, hi = self._replication_window(start, end)
        rows: List[Any] = []
        if obj.by_lower["isdeleted"].external:
            with self._lock:
                rows = self._conn.execute(f'SELECT "Id", "SystemModstamp" FROM {quote_identifier(obj.name)} WHERE '
                                          f'"IsDeleted" = 1 AND "SystemModstamp" >= ? AND "SystemModstamp" < ? '
                                          f'ORDER BY "SystemModstamp", rowid', (lo, hi)).fetchall()
        return {"deletedRecords": [{"id": rid, "deletedDate": when} for rid, when in rows],
                "earliestDateAvailable": self.tables.created_date, "latestDateCovered": hi}
