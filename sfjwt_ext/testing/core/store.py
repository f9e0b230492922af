"""The local org's records: an in-memory SQLite database behind a Salesforce-shaped API.

Objects and fields come from the store's own :class:`~.schema.Schema` (the standard objects
plus the custom objects and fields a test adds: ``add_field``, ``define_object``). SOQL runs in
:class:`~.queries.QueryEngine` (``store.queries``; ``store.query`` and friends hand over to it).
Results come back in the JSON shapes of Salesforce's REST API (query, describe).
"""

from __future__ import annotations

import sqlite3
import threading
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from .ids import to_18
from .compiler import register_functions
from .literals import UTC, format_datetime
from .schema import SQL_TYPES, TEXT_TYPES, FieldDef, ObjectDef, Schema, SchemaError, custom_object, make_field, quote_identifier
from .values import JsonValueError
from .describe import Describer
from .queries import FlatSnapshot, QueryEngine, QueryResult
from .replication import Replication
from .writes import RecordWriter
from .soql import Query, SoqlError

__all__ = ["Store"]


class Store:
    """Records of the local org, thread-safe (one lock around one in-memory sqlite connection)."""

    def __init__(self, *, org_id: str, api_version: str = "62.0", org_name: str = "sfjwt local org") -> None:
        self.api_version = api_version
        self.org_id = to_18(org_id) if len(org_id) == 15 else org_id
        self._lock = threading.RLock()
        #: this store's objects and fields (guarded by the store's lock)
        self.schema = Schema(self._lock)
        #: the month standard fiscal years start in (FISCAL_YEAR(), THIS_FISCAL_QUARTER...)
        self.fiscal_year_start_month = 1
        self._conn = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode = OFF")
        self._conn.execute("PRAGMA synchronous = OFF")
        register_functions(self._conn)
        #: SOQL execution (core/queries.py); ``query`` and the others below hand over to it
        self.queries = QueryEngine(self, self._conn, self._lock, self.sobject_url)
        #: describeGlobal / describe (core/describe.py) and updated / deleted (core/replication.py)
        self.describer = Describer(self, self._conn, self._lock)
        self.replication = Replication(self, self._conn, self._lock)
        #: one-record reads and writes (core/writes.py)
        self.writes = RecordWriter(self, self._conn, self._lock)
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)
        #: the owner given to new records that name none (the first user inserted)
        self.default_owner_id: Optional[str] = None
        self._create_tables()
        now = format_datetime(self.now())
        #: when this org began (earliestDateAvailable of GET .../deleted)
        self.created_date = now
        with self._lock:
            self._conn.execute(
                'INSERT INTO "Organization" ("Id", "Name", "IsSandbox", "InstanceName", "OrganizationType", '
                '"CreatedDate", "LastModifiedDate", "SystemModstamp", "IsDeleted") VALUES (?, ?, 0, ?, ?, ?, ?, ?, 0)',
                (self.org_id, org_name, "LOCAL1", "Developer Edition", now, now, now))
        self.admin_profile_id = self.insert(
            "Profile", [{"Name": "System Administrator"}, {"Name": "Standard User"}])[0]
        self.standard_pricebook_id = self.insert("Pricebook2", [{"Name": "Standard Price Book", "IsActive": True}])[0]
        with self._lock:
            self._conn.execute('UPDATE "Pricebook2" SET "IsStandard" = 1 WHERE "Id" = ?', (self.standard_pricebook_id,))

    # basics ---------------------------------------------------------------
    def now(self) -> datetime:
        return self.clock()

    def _create_tables(self) -> None:
        with self._lock:
            for obj in self.schema.objects():
                self._create_table(obj)

    def _create_table(self, obj: ObjectDef) -> None:
        cols = []
        for f in obj.stored_fields:
            sql_type = SQL_TYPES.get(f.type, "TEXT")
            default = f" DEFAULT {1 if f.default else 0}" if f.type == "boolean" and f.default is not None else ""
            cols.append(f"{quote_identifier(f.name)} {sql_type}".rstrip() + default +
                        (" PRIMARY KEY" if f.name == "Id" else ""))
        self._conn.execute(f"CREATE TABLE {quote_identifier(obj.name)} ({', '.join(cols)})")
        for f in obj.stored_fields:
            self._index(obj, f)

    def _index(self, obj: ObjectDef, f: FieldDef) -> None:
        if f.type == "reference" or f.external_id or f.unique:
            self._conn.execute(f"CREATE INDEX {quote_identifier('ix_' + obj.name + '_' + f.name)} ON "
                               f"{quote_identifier(obj.name)} ({quote_identifier(f.name)}"
                               f"{'' if f.case_sensitive or f.type not in TEXT_TYPES else ' COLLATE NOCASE'})")

    # custom schema ----------------------------------------------------------
    def add_field(self, sobject: str, name: str, **spec: Any) -> FieldDef:
        """Add a custom field (``make_field``'s keyword arguments) to ``sobject``: describe, SOQL,
        writes and Bulk see it at once; existing records hold null (or the default of a checkbox)."""
        with self._lock:
            obj = self.schema.get(sobject)
            if obj is None or not obj.data_api:
                raise SchemaError(f"add_field({sobject!r}, ...): no such object; define a custom one with "
                                  f"define_object({sobject!r}, fields=...)")
            f, child = make_field(name, **spec)
            self.schema.add_field(obj, f, child)
            obj.metadata_changed = self.now()
            try:
                self._conn.execute(f"ALTER TABLE {quote_identifier(obj.name)} ADD COLUMN {quote_identifier(f.name)} "
                                   f"{SQL_TYPES.get(f.type, 'TEXT')}")
                if f.type == "boolean":
                    self._conn.execute(f"UPDATE {quote_identifier(obj.name)} SET {quote_identifier(f.name)} = ?",
                                       (1 if f.default else 0,))
                self._index(obj, f)
            except BaseException:
                obj.fields.remove(f)
                obj.reindex()
                raise
            return f

    def define_object(self, name: str, *, fields: Optional[Dict[str, Dict[str, Any]]] = None,
                      label: Optional[str] = None, plural_label: Optional[str] = None,
                      name_field_label: Optional[str] = None) -> ObjectDef:
        """Create a custom object (Id, Name, OwnerId, audit fields) with ``fields``: field name ->
        ``add_field``'s keyword arguments. A field of a bad spec leaves no object behind."""
        specs = dict(fields or {})
        for fname, spec in specs.items():
            if not isinstance(spec, dict) or "type" not in spec:
                raise SchemaError(f"fields={{{fname!r}: ...}}: each value is add_field's keyword arguments, e.g. "
                                  f"{{'type': 'currency'}}")
        with self._lock:
            obj = custom_object(name, self.schema.new_key_prefix(), label=label, plural_label=plural_label,
                                name_field_label=name_field_label)
            made = [make_field(fname, **spec) for fname, spec in specs.items()]  # all checked before any change
            for f, _child in made:
                if f.reference_to and f.reference_to.lower() != name.lower() and self.schema.get(f.reference_to) is None:
                    raise SchemaError(f"reference_to={f.reference_to!r} for {f.name}: no such object (define it "
                                      f"first with define_object)")
            obj.metadata_changed = self.now()
            self.schema.add_object(obj)
            self._create_table(obj)
            for f, child in made:
                self.add_field(obj.name, f.name, **specs[f.name])
            return obj

    def object_def(self, name: str, *, tooling: bool = False) -> ObjectDef:
        """The object ``name`` of the data (or Tooling) API; NOT_FOUND otherwise."""
        obj = self.schema.get(name)
        if obj is None or not (obj.tooling_api if tooling else obj.data_api):
            raise SoqlError("NOT_FOUND", "The requested resource does not exist", 404)
        return obj

    def has_object(self, name: str, *, tooling: bool = False) -> bool:
        obj = self.schema.get(name)
        return obj is not None and (obj.tooling_api if tooling else obj.data_api)

    def object_name(self, name: str) -> str:
        """The canonical spelling of an object name (``account`` -> ``Account``); NOT_FOUND otherwise."""
        return self.object_def(name).name

    def sobject_url(self, sobject: str, record_id: str = "", *, tooling: bool = False) -> str:
        base = f"/services/data/v{self.api_version}/{'tooling/' if tooling else ''}sobjects/{sobject}"
        return f"{base}/{record_id}" if record_id else base

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """All the writes made in the block, or none: an exception leaving it restores every record
        as it was (allOrNone, composite/tree). Other threads' writes wait for the block."""
        with self._lock:
            snapshot = sqlite3.connect(":memory:")
            try:
                self._conn.backup(snapshot)
                try:
                    yield
                except BaseException:
                    snapshot.backup(self._conn)
                    raise
            finally:
                snapshot.close()

    def count(self, sobject: str, *, include_deleted: bool = False) -> int:
        obj = self.object_def(sobject)
        where = "" if include_deleted or not obj.by_lower["isdeleted"].external else ' WHERE "IsDeleted" = 0'
        with self._lock:
            return int(self._conn.execute(f"SELECT COUNT(*) FROM {quote_identifier(obj.name)}{where}").fetchone()[0])

    def record_counts(self, names: Optional[Sequence[str]] = None) -> Dict[str, Any]:
        """GET /limits/recordCount[?sObjects=A,B]: live records per object; unknown names are left out."""
        if names is None:
            objs = [o for o in self.schema.objects() if o.data_api]
        else:
            objs = [o for o in (self.schema.get(n.strip()) for n in names if n.strip()) if o is not None and o.data_api]
        return {"sObjects": [{"count": self.count(o.name), "name": o.name} for o in objs]}









    # records (core/writes.py) --------------------------------------------------
    def new_id(self, sobject: str) -> str:
        return self.writes.new_id(sobject)

    def type_error(self, sobject: str, values: Dict[str, Any]) -> Optional[JsonValueError]:
        """The first value of ``values`` that ``sobject``'s fields refuse as JSON_PARSER_ERROR, or None."""
        return self.writes.type_error(sobject, values)

    def insert(self, sobject: str, records: Iterable[Dict[str, Any]], *, audit_fields: bool = True) -> List[str]:
        """Insert ``records``; their new ids, in order."""
        return self.writes.insert(sobject, records, audit_fields=audit_fields)

    def load_rows(self, sobject: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> List[str]:
        """Insert trusted rows fast (no per-value checks); their ids."""
        return self.writes.load_rows(sobject, columns, rows)

    def get(self, sobject: str, record_id: str, fields: Optional[Sequence[str]] = None, *,
            tooling: bool = False) -> Dict[str, Any]:
        """One record in the REST API's JSON shape; NOT_FOUND otherwise."""
        return self.writes.get(sobject, record_id, fields, tooling=tooling)

    def update(self, sobject: str, record_id: str, values: Dict[str, Any]) -> None:
        self.writes.update(sobject, record_id, values)

    def delete(self, sobject: str, record_id: str) -> None:
        """Soft delete (the recycle bin: IsDeleted, queryAll finds it)."""
        self.writes.delete(sobject, record_id)

    def hard_delete(self, sobject: str, record_id: str) -> None:
        self.writes.hard_delete(sobject, record_id)

    # describe (core/describe.py) and replication (core/replication.py) ---------
    def describe_global(self, *, tooling: bool = False) -> Dict[str, Any]:
        """GET /sobjects (or /tooling/sobjects)."""
        return self.describer.describe_global(tooling=tooling)

    def describe(self, sobject: str, *, tooling: bool = False) -> Dict[str, Any]:
        """GET /sobjects/<type>/describe. Unknown type: SoqlError NOT_FOUND (404)."""
        return self.describer.describe(sobject, tooling=tooling)

    def metadata_changed(self, sobject: Optional[str] = None) -> datetime:
        """When ``sobject``'s describe (None: any object's) last changed."""
        return self.describer.metadata_changed(sobject)

    def updated(self, sobject: str, start: str, end: str) -> Dict[str, Any]:
        """GET /sobjects/X/updated/?start=&end=."""
        return self.replication.updated(sobject, start, end)

    def deleted(self, sobject: str, start: str, end: str) -> Dict[str, Any]:
        """GET /sobjects/X/deleted/?start=&end=."""
        return self.replication.deleted(sobject, start, end)

    # queries (core/queries.py) -------------------------------------------------
    def parse(self, soql: str) -> Query:
        return self.queries.parse(soql)

    def query(self, soql: str, *, include_deleted: bool = False, tooling: bool = False) -> QueryResult:
        """Run SOQL; records in the REST API's JSON shape."""
        return self.queries.query(soql, include_deleted=include_deleted, tooling=tooling)

    def query_flat(self, soql: str, *, include_deleted: bool = False) -> Tuple[List[str], List[Tuple[str, ...]]]:
        """(column names, rows of strings) the way Bulk API 2.0 CSV shows them."""
        return self.queries.query_flat(soql, include_deleted=include_deleted)

    def snapshot_flat(self, soql: str, *, include_deleted: bool = False) -> FlatSnapshot:
        """:meth:`query_flat`'s rows kept inside SQLite, read by page (a Bulk 2.0 job's results)."""
        return self.queries.snapshot_flat(soql, include_deleted=include_deleted)

    def column_metadata(self, soql: str, *, tooling: bool = False) -> Dict[str, Any]:
        """The response of GET /query?q=...&columns=true (no records)."""
        return self.queries.column_metadata(soql, tooling=tooling)
