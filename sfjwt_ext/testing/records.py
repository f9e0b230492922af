"""The local org's records: an in-memory SQLite database behind a Salesforce-shaped API.

Objects and fields come from the store's own :class:`~.schema.Schema` (the standard objects
plus the custom objects and fields a test adds: ``add_field``, ``define_object``).  SOQL is parsed by
:mod:`soql` and compiled to SQL whose identifiers come only from the schema and
whose values are always ``?`` parameters.  Results come back in the JSON shapes
of Salesforce's REST API (query, describe, ``columns=true``).
"""

from __future__ import annotations

import itertools
import json
import re
import sqlite3
import threading
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from . import soql as _soql
from .ids import canonical_id, new_id, to_18
from .compiler import ChildPlan, Compiler, Node, Scope, register_functions
from .literals import UTC, format_datetime, format_for_user, parse_date, parse_datetime
from .schema import (APEX_TYPES, AUDIT_FIELDS, BAD_CHILD_RELATIONSHIP, BAD_RELATIONSHIP, FORECAST_CATEGORIES,
                     MASTER_RECORD_TYPE_ID, NO_SUCH_COLUMN, NUMBER_TYPES, SOAP_TYPES, SQL_TYPES, STAGE_FORECASTS, STAGES,
                     TEXT_TYPES, FieldDef, ObjectDef, Schema, SchemaError, custom_object, make_field, quote_identifier)
from .values import JsonValueError, json_token, number_value
from .soql import (DATE_FUNCTIONS, Aggregate, FieldFunction, FieldRef, FieldsMacro, Query, SelectItem, SoqlError,
                   Subquery, TypeOf, error_at)

__all__ = ["Store", "QueryResult", "FlatSnapshot"]


@dataclass
class QueryResult:
    records: List[dict]
    total_size: int
    entity: str


class FlatSnapshot:
    """A query's flat rows kept in the store (:meth:`Store.snapshot_flat`), read by page."""

    def __init__(self, store: Store, table: str, columns: List[str], quotes: List[bool], count: int) -> None:
        self._store = store
        self._table = table
        self._quotes = quotes
        self.columns = columns
        #: rows in the snapshot
        self.count = count

    def lines(self, offset: int, limit: int, delimiter: str) -> List[str]:
        """Rows ``offset`` to ``offset + limit`` (0-based, at most ``limit``), in query order, as
        Bulk CSV lines without their line ending: every value double-quoted, ``"`` doubled
        (what ``bulk2.render_page`` writes). SQLite joins the values, not Python."""
        if limit <= 0 or offset >= self.count:
            return []
        values = [f"replace(c{i}, '\"', '\"\"')" if quote else f"c{i}" for i, quote in enumerate(self._quotes)]
        sep = '"' + delimiter.replace("'", "''") + '"'
        fmt_sep = sep.replace("%", "%%")
        # printf builds each line in one pass (a chain of || copies it once per value); at most
        # 100 values a call, under SQLite's limit on function arguments
        groups = [values[i:i + 100] for i in range(0, len(values), 100)]
        line_sql = f" || '{sep}' || ".join(f"printf('{fmt_sep.join(['%s'] * len(g))}', {', '.join(g)})" for g in groups)
        return self._store._snapshot_lines(self._table, f"""'"' || {line_sql} || '"'""", max(0, offset), limit)

    def close(self) -> None:
        """Drop the snapshot's table (idempotent)."""
        self._store._drop_snapshot(self._table)


#: rows in one batch of query results: an aggregate query's answer must fit in one
MAX_AGGREGATE_ROWS = 2000
#: the most rows one query may return (the LIMIT bound of an aggregate query without GROUP BY)
MAX_QUERY_ROWS = 50000

#: field types whose Bulk CSV text never holds a '"'
_NO_QUOTE_TYPES = frozenset({"id", "reference", "boolean", "int", "double", "currency", "percent", "date", "datetime",
                             "time"})


def _check_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


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
        self._counter = itertools.count(1)
        self._case_numbers = itertools.count(1001)
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
        self.admin_profile_id, self.standard_profile_id = self.insert(
            "Profile", [{"Name": "System Administrator"}, {"Name": "Standard User"}])
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

    def new_id(self, sobject: str) -> str:
        obj = self._object(sobject)
        return new_id(obj.key_prefix, next(self._counter))

    def _object(self, name: str, *, tooling: bool = False) -> ObjectDef:
        obj = self.schema.get(name)
        if obj is None or not (obj.tooling_api if tooling else obj.data_api):
            raise SoqlError("NOT_FOUND", "The requested resource does not exist", 404)
        return obj

    def has_object(self, name: str, *, tooling: bool = False) -> bool:
        obj = self.schema.get(name)
        return obj is not None and (obj.tooling_api if tooling else obj.data_api)

    def object_name(self, name: str) -> str:
        """The canonical spelling of an object name (``account`` -> ``Account``); NOT_FOUND otherwise."""
        return self._object(name).name

    def sobject_url(self, sobject: str, record_id: str = "", *, tooling: bool = False) -> str:
        base = f"/services/data/v{self.api_version}/{'tooling/' if tooling else ''}sobjects/{sobject}"
        return f"{base}/{record_id}" if record_id else base

    # writes ---------------------------------------------------------------
    def _coerce_value(self, obj: ObjectDef, f: FieldDef, value: Any) -> Any:
        """``value`` written to ``f`` in storage form, as Salesforce takes it: ``""`` is null,
        numbers rounded to the field's scale and checked against its precision, a lookup must
        name a live record of its object."""
        t = f.type
        if value is None or (value == "" and t != "boolean"):
            return None

        def bad() -> SoqlError:
            jtype = {"boolean": "boolean", "int": "int", "double": "double", "currency": "double",
                     "percent": "double", "date": "date", "datetime": "datetime"}.get(t, "String")
            token, text = json_token(value)
            return JsonValueError(f"Cannot deserialize instance of {jtype} from {token} value {text} or request may "
                                  f"be missing a required field", f.name, value)

        if t == "boolean":
            if isinstance(value, bool):
                return 1 if value else 0
            if isinstance(value, str) and value.lower() in ("true", "false"):
                return 1 if value.lower() == "true" else 0
            if _check_int(value) and value in (0, 1):
                return value
            raise bad()
        if t in NUMBER_TYPES:
            return number_value(f, value, bad)
        if t == "date":
            if isinstance(value, datetime):
                return value.date().isoformat()
            if isinstance(value, date):
                return value.isoformat()
            if isinstance(value, str):
                d = parse_date(value)
                if d is not None:
                    return d
            raise bad()
        if t == "datetime":
            if isinstance(value, datetime):
                return format_datetime(value)
            if isinstance(value, date):
                return format_datetime(datetime(value.year, value.month, value.day, tzinfo=UTC))
            if isinstance(value, str):
                dt = parse_datetime(value)
                if dt is not None:
                    return format_datetime(dt)
            raise bad()
        if t in ("id", "reference"):
            return self._reference_value(obj, f, value, bad)
        if not isinstance(value, str):
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                value = str(value)
            else:
                raise bad()
        if f.length and len(value) > f.length:
            raise SoqlError("STRING_TOO_LONG",
                            f"{f.label}: data value too large: {value[:40]} (max length={f.length})", fields=[f.name])
        return value

    def _reference_value(self, obj: ObjectDef, f: FieldDef, value: Any, bad: Callable[[], SoqlError]) -> str:
        """An id written to ``f``: an 18-character id in any case; the record must exist and be live."""
        if not isinstance(value, str):
            raise bad()
        rid = canonical_id(value)
        if not rid:
            raise SoqlError("MALFORMED_ID", f"{f.label}: id value of incorrect type: {value}", fields=[f.name])
        targets = [self.schema[name] for name in f.reference_targets] or [obj]
        target = next((t for t in targets if rid.startswith(t.key_prefix)), None)
        if target is None:
            raise SoqlError("FIELD_INTEGRITY_EXCEPTION", f"{f.label}: id value of incorrect type: {rid}",
                            fields=[f.name])
        if f.type == "reference":
            soft = target.by_lower["isdeleted"].external
            row = self._conn.execute(f'SELECT "IsDeleted" FROM {quote_identifier(target.name)} WHERE "Id" = ?',
                                     (rid,)).fetchone()
            if row is None:
                raise SoqlError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", fields=[])
            if soft and row[0]:
                raise SoqlError("ENTITY_IS_DELETED", "entity is deleted", fields=[])
        return rid

    def _derive(self, obj: ObjectDef, row: Dict[str, Any]) -> None:
        """Calculated and derived fields (Name, IsWon/IsClosed, ...)."""
        name_field = obj.by_lower.get("name")
        if name_field is not None and name_field.calculated:
            first, last = row.get("FirstName"), row.get("LastName")
            row["Name"] = " ".join(p for p in (first, last) if p) or None
        if obj.name == "Opportunity":
            self._derive_opportunity(row)
        elif obj.name == "Case":
            row["IsClosed"] = 1 if str(row.get("Status") or "").lower() == "closed" else 0
        elif obj.name == "Lead":
            row["IsConverted"] = 1 if row.get("Status") == "Closed - Converted" else 0
        elif obj.name == "Task":
            row["IsClosed"] = 1 if row.get("Status") == "Completed" else 0
            row["IsHighPriority"] = 1 if row.get("Priority") == "High" else 0
        elif obj.name == "Event":
            self._derive_event(row)
        elif obj.name == "PricebookEntry":
            product = self._values("Product2", row.get("Product2Id"), ("Name", "ProductCode"))
            row["Name"], row["ProductCode"] = product.get("Name"), product.get("ProductCode")
        elif obj.name == "OpportunityLineItem":
            self._derive_line_item(row)
        elif obj.name == "ApexClass":
            body = row.get("Body") or ""
            row["IsValid"] = 1
            row["LengthWithoutComments"] = len(re.sub(r"/\*.*?\*/|//[^\n]*", "", body, flags=re.S))

    def _derive_opportunity(self, row: Dict[str, Any]) -> None:
        """IsClosed/IsWon and the forecast category from the stage, ExpectedRevenue, the fiscal period
        of CloseDate (the org's fiscal year starts in ``fiscal_year_start_month``, named by its end)."""
        stage = STAGES.get(str(row.get("StageName") or "").lower())
        row["IsClosed"] = 1 if stage and stage[2] else 0
        row["IsWon"] = 1 if stage and stage[3] else 0
        if stage and (row.get("ForecastCategoryName") is None or stage[2]):
            row["ForecastCategoryName"] = STAGE_FORECASTS.get(stage[0].lower(), "Pipeline")
        row["ForecastCategory"] = FORECAST_CATEGORIES.get(str(row.get("ForecastCategoryName")))
        amount, probability = row.get("Amount"), row.get("Probability")
        row["ExpectedRevenue"] = (round(float(amount) * float(probability) / 100, 2)
                                  if amount is not None and probability is not None else None)
        close = parse_date(str(row.get("CloseDate") or ""))
        if close is None:
            return
        year, month = int(close[:4]), int(close[5:7])
        start = self.fiscal_year_start_month
        row["FiscalYear"] = year + (1 if start != 1 and month >= start else 0)
        row["FiscalQuarter"] = (month - start) % 12 // 3 + 1
        row["Fiscal"] = f"{row['FiscalYear']} {row['FiscalQuarter']}"

    def _values(self, sobject: str, record_id: Any, columns: Sequence[str]) -> Dict[str, Any]:
        """Some columns of one record (empty when ``record_id`` is None or names nothing)."""
        if not record_id:
            return {}
        obj = self.schema[sobject]
        cols = [obj.by_lower[c.lower()].name for c in columns]
        row = self._conn.execute(f"SELECT {', '.join(quote_identifier(c) for c in cols)} FROM "
                                 f"{quote_identifier(obj.name)} WHERE \"Id\" = ?", (record_id,)).fetchone()
        return dict(zip(cols, row)) if row else {}

    @staticmethod
    def _derive_event(row: Dict[str, Any]) -> None:
        start = row.get("StartDateTime") or row.get("ActivityDateTime")
        if not start:
            return
        row["StartDateTime"] = row["ActivityDateTime"] = start
        row["ActivityDate"] = start[:10]
        begin = parse_datetime(start)
        if begin is None:
            return
        if row.get("EndDateTime"):
            end = parse_datetime(row["EndDateTime"])
            if end is not None:
                row["DurationInMinutes"] = int((end - begin).total_seconds() // 60)
        elif row.get("DurationInMinutes") is not None:
            row["EndDateTime"] = format_datetime(begin + timedelta(minutes=int(row["DurationInMinutes"])))

    def _derive_line_item(self, row: Dict[str, Any]) -> None:
        entry = self._values("PricebookEntry", row.get("PricebookEntryId"), ("Product2Id", "UnitPrice"))
        if entry:
            row["Product2Id"] = entry["Product2Id"]
            row["ListPrice"] = entry["UnitPrice"]
            if row.get("UnitPrice") is None and row.get("TotalPrice") is None:
                row["UnitPrice"] = entry["UnitPrice"]
        product = self._values("Product2", row.get("Product2Id"), ("Name", "ProductCode"))
        opportunity = self._values("Opportunity", row.get("OpportunityId"), ("Name",))
        row["ProductCode"] = product.get("ProductCode")
        row["Name"] = " ".join(p for p in (opportunity.get("Name"), product.get("Name")) if p) or None
        quantity = row.get("Quantity")
        if quantity is not None:
            if row.get("UnitPrice") is not None:
                row["TotalPrice"] = round(float(quantity) * float(row["UnitPrice"]), 2)
            elif row.get("TotalPrice") is not None and quantity:
                row["UnitPrice"] = round(float(row["TotalPrice"]) / float(quantity), 2)

    def _check_rules(self, obj: ObjectDef, values: Dict[str, Any]) -> None:
        """Salesforce's own validation of a few standard objects."""
        if obj.name == "PricebookEntry" and values.get("Pricebook2Id") != self.standard_pricebook_id:
            standard = self._conn.execute(
                'SELECT 1 FROM "PricebookEntry" WHERE "Pricebook2Id" = ? AND "Product2Id" = ? AND "IsDeleted" = 0',
                (self.standard_pricebook_id, values.get("Product2Id"))).fetchone()
            if standard is None:
                raise SoqlError("STANDARD_PRICE_NOT_DEFINED",
                                "Before creating a custom price, create a standard price.", fields=[])
        if obj.name == "OpportunityLineItem" and not values.get("PricebookEntryId") and not values.get("Product2Id"):
            raise SoqlError("REQUIRED_FIELD_MISSING", "Required fields are missing: [PricebookEntryId]",
                            fields=["PricebookEntryId"])

    def _check_unique(self, obj: ObjectDef, values: Dict[str, Any], record_id: Optional[str],
                      seen: Dict[str, set]) -> None:
        """DUPLICATE_VALUE when a unique field's value is held by another live record (or earlier in
        the same call); text compares case-insensitively unless the field is case sensitive."""
        for f in obj.fields:
            value = values.get(f.name)
            if not f.unique or value in (None, ""):
                continue
            fold = f.type in TEXT_TYPES and not f.case_sensitive
            key = str(value).lower() if fold else value
            if key in seen.setdefault(f.name, set()):
                raise SoqlError("DUPLICATE_VALUE", f"duplicate value found: {f.name} duplicates value on record "
                                                   f"with id: <unknown>", fields=[f.name])
            live = ' AND "IsDeleted" = 0' if obj.by_lower["isdeleted"].external else ""
            row = self._conn.execute(
                f"SELECT \"Id\" FROM {quote_identifier(obj.name)} WHERE {quote_identifier(f.name)} = ?"
                f"{' COLLATE NOCASE' if fold else ''} AND \"Id\" IS NOT ?{live} LIMIT 1", (value, record_id)).fetchone()
            if row is not None:
                raise SoqlError("DUPLICATE_VALUE", f"duplicate value found: {f.name} duplicates value on record "
                                                   f"with id: {row[0][:15]}", fields=[f.name])
            seen[f.name].add(key)
        if obj.name == "PermissionSetAssignment" and record_id is None:
            self._check_assignment(values)

    def _check_assignment(self, values: Dict[str, Any]) -> None:
        """A user holds a permission set once: a second assignment is DUPLICATE_VALUE (eca-org)."""
        pair = (values.get("AssigneeId"), values.get("PermissionSetId"))
        row = self._conn.execute('SELECT "Id" FROM "PermissionSetAssignment" WHERE "AssigneeId" = ? AND '
                                 '"PermissionSetId" = ? AND "IsDeleted" = 0 LIMIT 1', pair).fetchone()
        if row is not None:
            raise SoqlError("DUPLICATE_VALUE", f"Duplicate PermissionSetAssignment. Assignee: {pair[0]}; "
                                               f"Permission Set: {pair[1]}", fields=[])

    def _prepare(self, obj: ObjectDef, record: Dict[str, Any], *, creating: bool,
                 audit_fields: bool = True) -> Dict[str, Any]:
        out: Dict[str, Any] = {}
        readonly: List[str] = []
        for key, value in record.items():
            if key == "attributes":
                continue
            f = obj.by_lower.get(str(key).lower())
            if f is None or not f.external:
                raise SoqlError("INVALID_FIELD", f"No such column '{key}' on sobject of type {obj.name}", fields=[key])
            if f.name == "Id":
                if creating:
                    raise SoqlError("INVALID_FIELD_FOR_INSERT_UPDATE", "cannot specify Id in an insert call",
                                    fields=["Id"])
                continue
            allowed = f.createable if creating else f.updateable
            if not allowed and not (creating and audit_fields and f.name in ("CreatedDate", "LastModifiedDate")):
                readonly.append(f.name)
                continue
            out[f.name] = self._coerce_value(obj, f, value)
        if readonly:
            raise SoqlError("INVALID_FIELD_FOR_INSERT_UPDATE",
                            f"Unable to create/update fields: {', '.join(readonly)}. Please check the security "
                            f"settings of this field and verify that it is read/write for your profile or "
                            f"permission set.", fields=readonly)
        return out

    def type_error(self, sobject: str, values: Dict[str, Any]) -> Optional[JsonValueError]:
        """The first value of ``values`` of the wrong JSON type for its field (what Salesforce's
        parser refuses before any record of a request is saved); None when there is none. Reads only."""
        obj = self._object(sobject)
        with self._lock:
            for key, value in values.items():
                f = obj.by_lower.get(str(key).lower())
                if f is None or not f.external or f.compound:
                    continue
                try:
                    self._coerce_value(obj, f, value)
                except JsonValueError as exc:
                    return exc
                except SoqlError:
                    continue
        return None

    def insert(self, sobject: str, records: Iterable[Dict[str, Any]], *, audit_fields: bool = True) -> List[str]:
        """Create records; returns their 18-character ids.  All or nothing: any error inserts none.
        ``audit_fields``: CreatedDate / LastModifiedDate may be given (a test seeding its data, like
        a user with "Set Audit Fields upon Record Creation"); the APIs pass False (``dml.insert``)."""
        obj = self._object(sobject)
        if not obj.createable:
            raise SoqlError("CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY", f"entity type {obj.name} does not support insert")
        now = format_datetime(self.now())
        columns = [f.name for f in obj.stored_fields]
        rows: List[Tuple[Any, ...]] = []
        ids: List[str] = []
        seen: Dict[str, set] = {}
        with self._lock:
            for record in records:
                values = self._prepare(obj, record, creating=True, audit_fields=audit_fields)
                for f in obj.fields:
                    if f.name not in values and f.default is not None:
                        values[f.name] = self._coerce_value(obj, f, f.default)
                missing = [f.name for f in obj.fields if f.required and values.get(f.name) in (None, "")]
                if missing:
                    raise SoqlError("REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(missing)}]",
                                    fields=missing)
                if "ownerid" in obj.by_lower and values.get("OwnerId") is None and self.default_owner_id:
                    values["OwnerId"] = self.default_owner_id
                if obj.name == "Opportunity" and values.get("Probability") is None:
                    stage = STAGES.get(str(values.get("StageName")).lower())
                    if stage:
                        values["Probability"] = float(stage[1])
                if obj.name == "Case":
                    values["CaseNumber"] = f"{next(self._case_numbers):08d}"
                if obj.name == "User" and not values.get("Alias"):
                    values["Alias"] = (str(values.get("FirstName") or "")[:1] + str(values.get("LastName")))[:8]
                self._check_rules(obj, values)
                self._check_unique(obj, values, None, seen)
                values["CreatedById"] = values["LastModifiedById"] = self.default_owner_id
                values["CreatedDate"] = values.get("CreatedDate") or now
                values["LastModifiedDate"] = values.get("LastModifiedDate") or values["CreatedDate"]
                values["SystemModstamp"] = values["LastModifiedDate"]
                values["IsDeleted"] = 0
                self._derive(obj, values)
                rid = new_id(obj.key_prefix, next(self._counter))
                values["Id"] = rid
                ids.append(rid)
                rows.append(tuple(values.get(c) for c in columns))
            self._insert_rows(obj, columns, rows)
            if obj.name == "User" and self.default_owner_id is None and ids:
                self.default_owner_id = ids[0]
        return ids

    def load_rows(self, sobject: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> List[str]:
        """Trusted fast path for big generated data sets (no per-value validation).

        ``columns`` are field names (checked against the schema); values must already be in
        storage form: booleans 0/1, dates ``YYYY-MM-DD``, datetimes as :func:`format_datetime`
        gives them, ids 18 characters.  Id, IsDeleted and the audit dates are filled in when
        missing; derived fields (Name, IsWon...) are not computed here.  Returns the new ids.
        """
        obj = self._object(sobject)
        names: List[str] = []
        for c in columns:
            f = obj.by_lower.get(str(c).lower())
            if f is None or f.name == "Id":
                raise SoqlError("INVALID_FIELD", f"No such column '{c}' on sobject of type {obj.name}", fields=[c])
            names.append(f.name)
        now = format_datetime(self.now())
        extra = [n for n in ("CreatedDate", "LastModifiedDate", "SystemModstamp") if n not in names]
        all_columns = ["Id"] + names + extra + (["IsDeleted"] if "IsDeleted" not in names else [])
        tail: Tuple[Any, ...] = tuple(now for _ in extra) + ((0,) if "IsDeleted" not in names else ())
        ids: List[str] = []
        out: List[Tuple[Any, ...]] = []
        with self._lock:
            counter = self._counter
            for row in rows:
                rid = new_id(obj.key_prefix, next(counter))
                ids.append(rid)
                out.append((rid, *row) + tail)
            self._insert_rows(obj, all_columns, out)
        return ids

    def _insert_rows(self, obj: ObjectDef, columns: Sequence[str], rows: Sequence[Tuple[Any, ...]]) -> None:
        sql = (f"INSERT INTO {quote_identifier(obj.name)} ({', '.join(quote_identifier(c) for c in columns)}) "
               f"VALUES ({', '.join('?' for _ in columns)})")
        with self._lock:
            self._conn.execute("BEGIN")
            try:
                self._conn.executemany(sql, rows)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _fetch_row(self, obj: ObjectDef, record_id: str) -> Dict[str, Any]:
        rid = canonical_id(record_id)
        if not rid:
            raise SoqlError("NOT_FOUND", f"Provided external ID field does not exist or is not accessible: {record_id}",
                            404)
        cols = [f.name for f in obj.stored_fields]
        with self._lock:
            cur = self._conn.execute(
                f"SELECT {', '.join(quote_identifier(c) for c in cols)} FROM {quote_identifier(obj.name)} WHERE \"Id\" = ?", (rid,))
            row = cur.fetchone()
        if row is None:
            raise SoqlError("NOT_FOUND", "The requested resource does not exist", 404)
        return dict(zip(cols, row))

    def _output_value(self, f: FieldDef, value: Any) -> Any:
        if f.type == "boolean" and value is not None:
            return bool(value)
        return None if value == "" else value

    @staticmethod
    def _compound_value(f: FieldDef, row: Dict[str, Any]) -> Optional[Dict[str, Any]]:
        """A compound field as the REST API shows it: a JSON object, or null when all parts are."""
        parts = {key: row.get(col) for key, col in sorted(f.compound)}
        return parts if any(v is not None for v in parts.values()) else None

    def get(self, sobject: str, record_id: str, fields: Optional[Sequence[str]] = None, *,
            tooling: bool = False) -> dict:
        """One record as the REST API's GET /sobjects/<type>/<id> returns it."""
        obj = self._object(sobject, tooling=tooling)
        row = self._fetch_row(obj, record_id)
        if row.get("IsDeleted") and obj.by_lower["isdeleted"].external:
            raise SoqlError("NOT_FOUND", "The requested resource does not exist", 404)
        if fields:
            wanted = []
            for name in fields:
                f = obj.by_lower.get(str(name).strip().lower())
                if f is None or not f.external:
                    raise SoqlError("INVALID_FIELD", NO_SUCH_COLUMN.format(col=name, entity=obj.name))
                wanted.append(f)
        else:
            wanted = obj.public_fields
        out: dict = {"attributes": {"type": obj.name, "url": self.sobject_url(obj.name, row["Id"], tooling=tooling)}}
        for f in wanted:
            out[f.name] = self._compound_value(f, row) if f.compound else self._output_value(f, row[f.name])
        return out

    def update(self, sobject: str, record_id: str, values: Dict[str, Any]) -> None:
        obj = self._object(sobject)
        if not obj.updateable:
            raise SoqlError("CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY", f"entity type {obj.name} does not support update")
        with self._lock:
            row = self._fetch_row(obj, record_id)
            if row.get("IsDeleted") and obj.by_lower["isdeleted"].external:
                raise SoqlError("ENTITY_IS_DELETED", "entity is deleted", 404)
            changes = self._prepare(obj, values, creating=False)
            self._check_unique(obj, changes, row["Id"], {})
            missing = [k for k, v in changes.items() if v in (None, "") and obj.by_lower[k.lower()].required]
            if missing:
                raise SoqlError("REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(missing)}]",
                                fields=missing)
            row.update(changes)
            self._derive(obj, row)
            now = format_datetime(self.now())
            row["LastModifiedDate"] = row["SystemModstamp"] = now
            if "lastmodifiedbyid" in obj.by_lower:
                row["LastModifiedById"] = self.default_owner_id
            cols = [f.name for f in obj.stored_fields if f.name != "Id"]
            self._conn.execute(
                f"UPDATE {quote_identifier(obj.name)} SET {', '.join(quote_identifier(c) + ' = ?' for c in cols)} WHERE \"Id\" = ?",
                [row[c] for c in cols] + [row["Id"]])

    def delete(self, sobject: str, record_id: str) -> None:
        """Soft delete (IsDeleted = true; still visible to queryAll), cascading to Contacts/Opportunities/Cases."""
        self._remove(sobject, record_id, hard=False)

    def hard_delete(self, sobject: str, record_id: str) -> None:
        """Bulk hardDelete: the record is gone for good (queryAll does not see it); the children
        a delete cascades to are deleted as by ``delete``."""
        self._remove(sobject, record_id, hard=True)

    def _remove(self, sobject: str, record_id: str, *, hard: bool) -> None:
        obj = self._object(sobject)
        if not obj.deletable:
            raise SoqlError("METHOD_NOT_ALLOWED", "HTTP Method 'DELETE' not allowed. Allowed are GET,PATCH,HEAD", 405)
        with self._lock:
            row = self._fetch_row(obj, record_id)
            if row.get("IsDeleted"):
                raise SoqlError("ENTITY_IS_DELETED", "entity is deleted", 404)
            now = format_datetime(self.now())
            self._conn.execute("BEGIN")
            try:
                self._soft_delete(obj, [row["Id"]], now)
                if hard:
                    self._conn.execute(f"DELETE FROM {quote_identifier(obj.name)} WHERE \"Id\" = ?", (row["Id"],))
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

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

    def _soft_delete(self, obj: ObjectDef, ids: List[str], now: str) -> None:
        if not ids:
            return
        if not obj.by_lower["isdeleted"].external:
            self._conn.execute(f"DELETE FROM {quote_identifier(obj.name)} WHERE \"Id\" IN (SELECT value FROM json_each(?))",
                               (json.dumps(ids),))
            return
        self._conn.execute(
            f"UPDATE {quote_identifier(obj.name)} SET \"IsDeleted\" = 1, \"LastModifiedDate\" = ?, \"SystemModstamp\" = ? "
            f"WHERE \"Id\" IN (SELECT value FROM json_each(?))", (now, now, json.dumps(ids)))
        if obj.name == "Account":
            for child in ("Contact", "Opportunity", "Case"):
                cur = self._conn.execute(
                    f"SELECT \"Id\" FROM {quote_identifier(child)} WHERE \"IsDeleted\" = 0 AND \"AccountId\" IN "
                    f"(SELECT value FROM json_each(?))", (json.dumps(ids),))
                self._soft_delete(self.schema[child], [r[0] for r in cur.fetchall()], now)

    def count(self, sobject: str, *, include_deleted: bool = False) -> int:
        obj = self._object(sobject)
        where = "" if include_deleted or not obj.by_lower["isdeleted"].external else ' WHERE "IsDeleted" = 0'
        with self._lock:
            return int(self._conn.execute(f"SELECT COUNT(*) FROM {quote_identifier(obj.name)}{where}").fetchone()[0])

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

    def updated(self, sobject: str, start: str, end: str) -> dict:
        """GET /sobjects/X/updated/?start=&end=: ids of live records whose SystemModstamp is in [start, end)."""
        obj = self._object(sobject)
        lo, hi = self._replication_window(start, end)
        live = ' AND "IsDeleted" = 0' if obj.by_lower["isdeleted"].external else ""
        with self._lock:
            rows = self._conn.execute(f'SELECT "Id" FROM {quote_identifier(obj.name)} WHERE "SystemModstamp" >= ? '
                                      f'AND "SystemModstamp" < ?{live} ORDER BY "SystemModstamp", rowid',
                                      (lo, hi)).fetchall()
        return {"ids": [r[0] for r in rows], "latestDateCovered": hi}

    def deleted(self, sobject: str, start: str, end: str) -> dict:
        """GET /sobjects/X/deleted/?start=&end=: records deleted (to the recycle bin) in [start, end)."""
        obj = self._object(sobject)
        lo, hi = self._replication_window(start, end)
        rows: List[Any] = []
        if obj.by_lower["isdeleted"].external:
            with self._lock:
                rows = self._conn.execute(f'SELECT "Id", "SystemModstamp" FROM {quote_identifier(obj.name)} WHERE '
                                          f'"IsDeleted" = 1 AND "SystemModstamp" >= ? AND "SystemModstamp" < ? '
                                          f'ORDER BY "SystemModstamp", rowid', (lo, hi)).fetchall()
        return {"deletedRecords": [{"id": rid, "deletedDate": when} for rid, when in rows],
                "earliestDateAvailable": self.created_date, "latestDateCovered": hi}

    def record_counts(self, names: Optional[Sequence[str]] = None) -> dict:
        """GET /limits/recordCount[?sObjects=A,B]: live records per object; unknown names are left out."""
        if names is None:
            objs = [o for o in self.schema.objects() if o.data_api]
        else:
            objs = [o for o in (self.schema.get(n.strip()) for n in names if n.strip()) if o is not None and o.data_api]
        return {"sObjects": [{"count": self.count(o.name), "name": o.name} for o in objs]}

    # describe -------------------------------------------------------------
    def _object_urls(self, obj: ObjectDef, tooling: bool) -> Dict[str, str]:
        base = self.sobject_url(obj.name, tooling=tooling)
        return {"rowTemplate": f"{base}/{{ID}}", "defaultValues": f"{base}/defaultValues?recordTypeId&fields",
                "describe": f"{base}/describe", "sobject": base}

    def _global_entry(self, obj: ObjectDef, tooling: bool) -> dict:
        return {
            "activateable": False, "associateEntityType": None, "associateParentEntity": None,
            "createable": obj.createable, "custom": obj.custom, "customSetting": False, "deepCloneable": False,
            "deletable": obj.deletable, "deprecatedAndHidden": False, "feedEnabled": obj.name in ("Account", "Contact",
                                                                                                 "Opportunity", "Case",
                                                                                                 "Lead", "User"),
            "hasSubtypes": False, "isInterface": False, "isSubtype": False, "keyPrefix": obj.key_prefix,
            "label": obj.label, "labelPlural": obj.label_plural, "layoutable": not tooling, "mergeable": obj.name in (
                "Account", "Contact", "Lead", "Case"), "mruEnabled": obj.createable, "name": obj.name,
            "queryable": True, "replicateable": True, "retrieveable": True, "searchable": obj.createable,
            "triggerable": obj.createable, "undeletable": obj.deletable, "updateable": obj.updateable,
            "urls": self._object_urls(obj, tooling),
        }

    def describe_global(self, *, tooling: bool = False) -> dict:
        """GET /sobjects (or /tooling/sobjects)."""
        objs = [o for o in self.schema.objects() if (o.tooling_api if tooling else o.data_api)]
        return {"encoding": "UTF-8", "maxBatchSize": 200,
                "sobjects": [self._global_entry(o, tooling) for o in sorted(objs, key=lambda o: o.name)]}

    def _describe_field(self, obj: ObjectDef, f: FieldDef) -> dict:
        t = f.type
        text = t in TEXT_TYPES
        out = self._describe_field_base(obj, f, t, text)
        if f.compound:
            out.update({"aggregatable": False, "filterable": False, "groupable": False, "sortable": False,
                        "nillable": True, "permissionable": False})
        if t == "reference" and len(f.reference_targets) > 1:
            out["referenceTo"] = list(f.reference_targets)
            out["polymorphicForeignKey"] = True
        return out

    def _describe_field_base(self, obj: ObjectDef, f: FieldDef, t: str, text: bool) -> dict:
        return {
            "aggregatable": t not in ("textarea", "boolean"), "aiPredictionField": False, "autoNumber": f.name == "CaseNumber",
            "byteLength": f.length * 3 if text else 0, "calculated": f.calculated, "calculatedFormula": None,
            "cascadeDelete": False, "caseSensitive": f.case_sensitive, "compoundFieldName": f.compound_name,
            "controllerName": None, "createable": f.createable, "custom": f.custom,
            "defaultValue": (bool(f.default) if t == "boolean" and f.default is not None else
                             (False if t == "boolean" else None)),
            "defaultValueFormula": None, "defaultedOnCreate": f.default is not None or t == "boolean" or f.name in (
                "Id", "OwnerId") or f.name in AUDIT_FIELDS,
            "dependentPicklist": False, "deprecatedAndHidden": False,
            "digits": (f.precision or 9) if t == "int" else 0, "displayLocationInDecimal": False, "encrypted": False,
            "externalId": f.external_id, "extraTypeInfo": None, "filterable": t != "textarea",
            "filteredLookupInfo": None,
            "formulaTreatNullNumberAsZero": False, "groupable": t not in ("double", "currency", "percent", "textarea",
                                                                          "datetime"),
            "highScaleNumber": False, "htmlFormatted": False,
            "idLookup": t == "id" or f.external_id or f.unique or (f.name in ("Username", "Email") and obj.name == "User"),
            "inlineHelpText": f.description, "label": f.label, "length": f.length if text else 0,
            "mask": None, "maskType": None, "name": f.name, "nameField": f.name_field, "namePointing": False,
            "nillable": f.nillable, "permissionable": f.nillable and f.createable and t != "id",
            "picklistValues": [{"active": True, "defaultValue": v == f.default, "label": v, "validFor": None,
                                "value": v} for v in f.picklist],
            "polymorphicForeignKey": False, "precision": 0 if t == "int" else f.precision, "queryByDistance": False,
            "referenceTargetField": None, "referenceTo": [f.reference_to] if f.reference_to else [],
            "relationshipName": f.relationship_name, "relationshipOrder": None,
            "restrictedDelete": False, "restrictedPicklist": False, "scale": f.scale, "searchPrefilterable": False,
            "soapType": SOAP_TYPES[t], "sortable": t != "textarea", "type": t,
            "unique": f.unique or (f.name == "Username" and obj.name == "User"), "updateable": f.updateable,
            "writeRequiresMasterRead": False,
        }

    def _record_type_infos(self, obj: ObjectDef, tooling: bool) -> List[dict]:
        """The Master record type every layoutable object has, then the active RecordType rows."""
        if tooling or not obj.createable:
            return []
        base = self.sobject_url(obj.name)
        infos = [{"active": True, "available": True, "defaultRecordTypeMapping": True, "developerName": "Master",
                  "master": True, "name": "Master", "recordTypeId": MASTER_RECORD_TYPE_ID,
                  "urls": {"layout": f"{base}/describe/layouts/{MASTER_RECORD_TYPE_ID}"}}]
        with self._lock:
            rows = self._conn.execute('SELECT "Id", "Name", "DeveloperName" FROM "RecordType" WHERE "SobjectType" = ? '
                                      'AND "IsActive" = 1 ORDER BY "Name"', (obj.name,)).fetchall()
        for rid, name, dev in rows:
            infos.insert(len(infos) - 1, {"active": True, "available": True, "defaultRecordTypeMapping": False,
                                          "developerName": dev, "master": False, "name": name, "recordTypeId": rid,
                                          "urls": {"layout": f"{base}/describe/layouts/{rid}"}})
        return infos

    def metadata_changed(self, sobject: Optional[str] = None) -> datetime:
        """When ``sobject``'s describe (None: any object's) last changed: the org's creation, or
        the last custom field or object a test added (If-Modified-Since on describe)."""
        objs = [self._object(sobject)] if sobject is not None else self.schema.objects()
        created = parse_datetime(self.created_date)
        assert created is not None
        return max([created] + [o.metadata_changed for o in objs if o.metadata_changed is not None])

    def describe(self, sobject: str, *, tooling: bool = False) -> dict:
        """GET /sobjects/<type>/describe.  Unknown type: SoqlError NOT_FOUND (404)."""
        obj = self._object(sobject, tooling=tooling)
        out = self._global_entry(obj, tooling)
        children = []
        for rel, child, fk in obj.children.values():
            children.append({"cascadeDelete": obj.name == "Account" and child in ("Contact", "Opportunity"),
                             "childSObject": child,
                             "deprecatedAndHidden": False, "field": fk, "junctionIdListNames": [],
                             "junctionReferenceTo": [], "relationshipName": rel, "restrictedDelete": False})
        out.update({
            "actionOverrides": [], "childRelationships": children, "compactLayoutable": not tooling,
            "defaultImplementation": None, "extendedBy": None, "extendsInterfaces": None,
            "fields": [self._describe_field(obj, f) for f in obj.public_fields], "implementedBy": None,
            "implementsInterfaces": None, "listviewable": None, "lookupLayoutable": None, "namedLayoutInfos": [],
            "networkScopeFieldName": None, "recordTypeInfos": self._record_type_infos(obj, tooling),
            "searchLayoutable": not tooling,
            "sobjectDescribeOption": "FULL", "supportedScopes": [{"label": "All records", "name": "everything"}],
        })
        urls = dict(out["urls"])
        out["urls"] = urls
        return dict(sorted(out.items()))

    # queries --------------------------------------------------------------
    def parse(self, soql: str) -> Query:
        return _soql.parse(soql)

    def query(self, soql: str, *, include_deleted: bool = False, tooling: bool = False) -> QueryResult:
        """Run SOQL; records in the REST API's JSON shape (see module docs)."""
        q = _soql.parse(soql)
        comp = Compiler(self, q, tooling, include_deleted)
        obj = comp.object(q.sobject, q.sobject_pos, q.text)
        self._expand_fields(q, obj, q)
        if q.is_count_only:
            return self._count_query(comp, obj, q)
        if q.is_aggregate:
            return self._aggregate_query(comp, obj, q)
        return self._record_query(comp, obj, q)

    def _expand_fields(self, q: Query, obj: ObjectDef, top: Query, *, bulk: bool = False) -> None:
        """Replace FIELDS(ALL|STANDARD|CUSTOM) by the fields they stand for (also in subqueries).

        FIELDS(ALL) and FIELDS(CUSTOM) are unbounded: Salesforce wants LIMIT 200 or less with
        them, and Bulk API refuses them. Bulk skips compound fields FIELDS(STANDARD) would select.
        """
        items: List[SelectItem] = []
        for item in q.select:
            if isinstance(item, Subquery):
                rel = obj.children.get(item.query.sobject.lower())
                if rel is not None:
                    self._expand_fields(item.query, self.schema[rel[1]], top)
                items.append(item)
                continue
            if not isinstance(item, FieldsMacro):
                items.append(item)
                continue
            if q.is_aggregate:
                raise error_at("MALFORMED_QUERY", top.text, item.pos,
                               "FIELDS() cannot be used in an aggregate query")
            if item.kind != "STANDARD":
                if bulk:
                    raise SoqlError("INVALIDJOB", f"FIELDS({item.kind}) is not supported in Bulk API queries: "
                                                  f"use FIELDS(STANDARD) or name the fields")
                if q.limit is None or q.limit > 200:
                    raise error_at("MALFORMED_QUERY", top.text, item.pos,
                                   "The SOQL FIELDS function must have a LIMIT of at most 200")
            for f in obj.public_fields:
                if (item.kind == "STANDARD" and f.custom) or (item.kind == "CUSTOM" and not f.custom):
                    continue
                if bulk and f.compound:
                    continue
                items.append(FieldRef((f.name,), item.pos))
        q.select = items

    # plain records
    def _plan(self, comp: Compiler, scope: Scope, q: Query, allow_children: bool
              ) -> Tuple[Node, List[str], List[ChildPlan]]:
        root = Node(scope.obj, scope.alias)
        children: List[ChildPlan] = []
        seen: set = set()
        for item in q.select:
            if isinstance(item, Subquery):
                plan = self._child_plan(scope, item, q, allow_children, seen)
                children.append(plan)
                root.items.append(("c", plan.rel, plan))
            elif isinstance(item, TypeOf):
                typed = self._typeof_plan(comp, scope, item, q)
                root.items.append(("t", typed.key, typed))
            else:
                self._add_value(scope, root, item, q, seen)
        columns: List[str] = [f"{scope.alias}.\"Id\""]
        _layout(root, columns, scope.alias)
        return root, columns, children

    def _child_plan(self, scope: Scope, item: Subquery, q: Query, allow_children: bool, seen: set) -> ChildPlan:
        sub = item.query
        child_rel = scope.obj.children.get(sub.sobject.lower())
        if child_rel is None or not allow_children:
            raise error_at("INVALID_TYPE", q.text, sub.sobject_pos, BAD_CHILD_RELATIONSHIP.format(rel=sub.sobject))
        rel_name, child_name, fk_name = child_rel
        if rel_name.lower() in seen:
            raise error_at("MALFORMED_QUERY", q.text, item.pos, f"duplicate field selected: {rel_name}")
        seen.add(rel_name.lower())
        child_obj = self.schema[child_name]
        return ChildPlan(rel_name, child_obj, child_obj.by_lower[fk_name.lower()], sub)

    def _add_value(self, scope: Scope, root: Node, item: SelectItem, q: Query, seen: set) -> None:
        """A field (or toLabel / FORMAT / convertCurrency of one) of ``root`` or of its parents."""
        if isinstance(item, Aggregate):  # pragma: no cover - handled by is_aggregate
            raise error_at("MALFORMED_QUERY", q.text, item.pos, "unexpected aggregate")
        if isinstance(item, FieldFunction) and item.function not in RECORD_FUNCTIONS:
            raise error_at("MALFORMED_QUERY", q.text, item.pos,
                           f"{item.function}() in the SELECT list needs a GROUP BY of it")
        assert isinstance(item, (FieldRef, FieldFunction))
        expr, fdef, rels, alias, fobj = scope.resolve(item)
        key = item.alias or fdef.name
        full = ".".join(rels + [key])
        if full.lower() in seen:
            raise error_at("MALFORMED_QUERY", q.text, item.pos, f"duplicate field selected: {full}")
        seen.add(full.lower())
        node = root
        key_path: Tuple[str, ...] = ()
        for rel in rels:
            key_path += (rel.lower(),)
            nxt = node.parents.get(rel.lower())
            if nxt is None:
                palias, pobj = scope.joins[key_path]
                nxt = Node(pobj, palias)
                node.parents[rel.lower()] = nxt
                node.items.append(("p", rel, nxt))
            node = nxt
        formatted = isinstance(item, FieldFunction) and item.function == "FORMAT"
        node.items.append(("v", key, (expr, fdef, formatted)))

    def _typeof_plan(self, comp: Compiler, scope: Scope, item: TypeOf, q: Query) -> TypeOfPlan:
        """TYPEOF rel: a LEFT JOIN per type rel may reference, with that type's WHEN (or ELSE) fields."""
        if len(item.ref.path) != 1 or item.ref.path[0].lower() not in scope.obj.relationships:
            raise error_at("INVALID_FIELD", q.text, item.ref.pos, BAD_RELATIONSHIP.format(rel=item.ref.name))
        fk = scope.obj.relationships[item.ref.path[0].lower()]
        targets = {t.lower(): t for t in fk.reference_targets}
        whens: Dict[str, List[FieldRef]] = {}
        for name, pos, fields in item.whens:
            if name.lower() not in targets or name.lower() in whens:
                raise error_at("INVALID_FIELD", q.text, pos,
                               f"{fk.relationship_name} can't reference {name} in TYPEOF: it references "
                               f"{', '.join(fk.reference_targets)}")
            whens[name.lower()] = fields
        fk_expr = f"{scope.alias}.{quote_identifier(fk.name)}"
        typed = TypeOfPlan(fk.relationship_name or item.ref.name, fk_expr)
        for lower, target in targets.items():
            fields = whens.get(lower, item.otherwise)
            obj = self.schema[target]
            if lower not in whens:
                fields = [f for f in fields if f.path[-1].lower() in obj.by_lower or len(f.path) > 1]
            if not fields:
                continue
            sub = Scope(comp, obj, q)
            scope.join_sql.append(f"LEFT JOIN {quote_identifier(obj.name)} AS {sub.alias} "
                                  f"ON {sub.alias}.\"Id\" = {fk_expr}")
            node = Node(obj, sub.alias)
            seen: set = set()
            for f in fields:
                self._add_value(sub, node, f, q, seen)
            scope.join_sql.extend(sub.join_sql)
            typed.nodes[obj.name] = node
        for f in item.otherwise:
            if not any(f.path[-1].lower() in self.schema[t].by_lower for t in targets.values()):
                raise error_at("INVALID_FIELD", q.text, f.pos, NO_SUCH_COLUMN.format(col=f.name, entity="Name"))
        return typed

    def _builder(self, node: Node, tooling: bool, typed: Optional[str] = None) -> Callable[[Sequence[Any]], dict]:
        type_name = node.obj.name
        prefix = self.sobject_url(type_name, tooling=tooling) + "/"
        keys = tuple(key for _k, key, _p in node.items)
        start, stop, id_col = node.start, node.stop, node.id_col
        bools = tuple(key for kind, key, p in node.items if kind == "v" and p[1].type == "boolean")
        jsons = tuple(key for kind, key, p in node.items if kind == "v" and p[1].compound)
        formats = tuple((key, p[1]) for kind, key, p in node.items if kind == "v" and p[2])
        parents = tuple((key, self._builder(p, tooling)) for kind, key, p in node.items if kind == "p")
        typeofs = tuple((key, self._typeof_builder(p, tooling)) for kind, key, p in node.items if kind == "t")

        def build(row: Sequence[Any]) -> dict:
            rec: Dict[str, Any] = {"attributes": {"type": type_name, "url": prefix + row[id_col]}}
            rec.update(zip(keys, row[start:stop]))
            for k in bools:
                v = rec[k]
                if v is not None:
                    rec[k] = v == 1
            for k in jsons:
                if rec[k] is not None:
                    rec[k] = json.loads(rec[k])
            for k, fdef in formats:
                rec[k] = format_for_user(rec[k], fdef.type, fdef.scale)
            for k, b in parents:
                if rec[k] is not None:
                    rec[k] = b(row)
            for k, typed in typeofs:
                rec[k] = typed(row)
            return rec

        return build

    def _typeof_builder(self, typed: TypeOfPlan, tooling: bool) -> Callable[[Sequence[Any]], Optional[dict]]:
        """The record a TYPEOF names: its type's fields, or only its attributes if it has none."""
        builders = {name: (node.id_col, self._builder(node, tooling)) for name, node in typed.nodes.items()}
        by_prefix = {obj.key_prefix: obj.name for obj in self.schema.objects() if obj.key_prefix}
        fk_col = typed.fk_col

        def build(row: Sequence[Any]) -> Optional[dict]:
            ref = row[fk_col]
            if ref is None:
                return None
            name = by_prefix.get(ref[:3], "Name")
            known = builders.get(name)
            if known is not None and row[known[0]] is not None:
                return known[1](row)
            return {"attributes": {"type": name, "url": self.sobject_url(name, ref, tooling=tooling)}}

        return build

    def _select_sql(self, comp: Compiler, scope: Scope, q: Query, columns: List[str], params: List[Any],
                    extra_where: Sequence[str] = (), limit: bool = True) -> str:
        where = comp.base_filter(scope) + list(extra_where)
        if q.where is not None:
            where.append(comp.condition(scope, q.where, params))
        order = comp.order_sql(scope, q.order_by) + [f"{scope.alias}.rowid"]
        sql = (f"SELECT {', '.join(columns)} FROM {quote_identifier(scope.obj.name)} AS {scope.alias} "
               f"{' '.join(scope.join_sql)}")
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY " + ", ".join(order)
        if limit:
            sql += self._limit_sql(q, params)
        return sql

    @staticmethod
    def _limit_sql(q: Query, params: List[Any]) -> str:
        if q.limit is None and not q.offset:
            return ""
        params.extend([-1 if q.limit is None else q.limit, q.offset or 0])
        return " LIMIT ? OFFSET ?"

    def _record_query(self, comp: Compiler, obj: ObjectDef, q: Query) -> QueryResult:
        for item in q.select:
            if isinstance(item, FieldRef) and item.alias:
                raise error_at("MALFORMED_QUERY", q.text, item.pos, f"unexpected token: '{item.alias}'")
        scope = Scope(comp, obj, q)
        root, columns, children = self._plan(comp, scope, q, allow_children=True)
        params: List[Any] = []
        sql = self._select_sql(comp, scope, q, columns, params)
        build = self._builder(root, comp.tooling)
        with self._lock:
            records = [build(r) for r in self._conn.execute(sql, params).fetchall()]
            self._fill_children(comp, records, children, q)
        return QueryResult(records, len(records), obj.name)

    def _fill_children(self, comp: Compiler, records: List[dict], children: List[ChildPlan], top: Query) -> None:
        """Run each child subquery for ``records`` (whose relationship keys hold their own Id until
        then) and attach its records, then theirs: up to five levels of parent-to-child queries."""
        if not records:
            return
        for plan in children:
            sql, params, root, grandchildren = self._child_sql(comp, plan, top)
            ids = json.dumps([rec[plan.rel] for rec in records])
            rows = self._conn.execute(sql, _fill(params, ids)).fetchall()
            kids = self._attach_children(records, plan, root, rows, comp.tooling)
            self._fill_children(comp, kids, grandchildren, top)

    def _child_sql(self, comp: Compiler, plan: ChildPlan, parent_q: Query
                   ) -> Tuple[str, List[Any], Node, List[ChildPlan]]:
        q = plan.query
        if q.is_aggregate:
            raise error_at("MALFORMED_QUERY", parent_q.text, q.sobject_pos,
                           "aggregate functions are not supported in child relationship subqueries")
        for item in q.select:
            if isinstance(item, FieldRef) and item.alias:
                raise error_at("MALFORMED_QUERY", parent_q.text, item.pos, f"unexpected token: '{item.alias}'")
        scope = Scope(comp, plan.obj, q)
        root, columns, grandchildren = self._plan(comp, scope, q, allow_children=True)
        fk_col = len(columns)
        columns = columns + [f"{scope.alias}.{quote_identifier(plan.fk.name)}"]
        params: List[Any] = []
        # the parent ids are bound as one JSON array; its placeholder is marked with a sentinel
        sql = self._select_sql(comp, scope, q, columns, params,
                               extra_where=[f"{scope.alias}.{quote_identifier(plan.fk.name)} IN (SELECT value FROM json_each(?))"],
                               limit=False)
        root.fk_col = fk_col
        # json_each placeholder comes after the base filter and before the user's WHERE params
        return sql, [_PARENT_IDS] + params, root, grandchildren

    def _attach_children(self, records: List[dict], plan: ChildPlan, root: Node, rows: List[Any],
                         tooling: bool) -> List[dict]:
        """Set each record's relationship to its child records; returns every child record attached."""
        build = self._builder(root, tooling)
        fk_col = root.fk_col
        grouped: Dict[str, List[Any]] = {}
        for r in rows:
            grouped.setdefault(r[fk_col], []).append(r)
        q = plan.query
        offset = q.offset or 0
        key = plan.rel
        attached: List[dict] = []
        for rec in records:
            kids = grouped.get(rec[key])
            if kids and (offset or q.limit is not None):
                kids = kids[offset:] if q.limit is None else kids[offset:offset + q.limit]
            built = [build(r) for r in kids] if kids else []
            attached.extend(built)
            rec[key] = {"totalSize": len(built), "done": True, "records": built} if built else None
        return attached

    # COUNT()
    def _count_query(self, comp: Compiler, obj: ObjectDef, q: Query) -> QueryResult:
        scope = Scope(comp, obj, q)
        params: List[Any] = []
        where = comp.base_filter(scope)
        if q.where is not None:
            where.append(comp.condition(scope, q.where, params))
        inner = f"SELECT 1 FROM {quote_identifier(obj.name)} AS {scope.alias} {' '.join(scope.join_sql)}"
        if where:
            inner += " WHERE " + " AND ".join(where)
        if q.group_by:
            inner += " GROUP BY " + ", ".join(scope.resolve(g)[0] for g in q.group_by)
        inner += self._limit_sql(q, params)
        with self._lock:
            total = self._conn.execute(f"SELECT COUNT(*) FROM ({inner})", params).fetchone()[0]
        return QueryResult([], int(total), obj.name)

    # aggregates
    def _aggregate_plan(self, comp: Compiler, scope: Scope, q: Query) -> List[Tuple[str, str, str, str, bool]]:
        """-> [(key, sql, type, display, is_aggregate)] in SELECT order."""
        grouped = {}
        for g in q.group_by:
            expr, fdef, rels, _, _ = scope.resolve(g)
            if fdef.type in ("double", "currency", "percent", "textarea", "datetime"):
                raise error_at("MALFORMED_QUERY", q.text, g.pos, f"field '{fdef.name}' can not be grouped in a query "
                                                                 f"call")
            grouped[expr] = fdef
        out = []
        n = 0
        keys: set = set()
        for item in q.select:
            if isinstance(item, Subquery):
                raise error_at("MALFORMED_QUERY", q.text, item.pos,
                               "child relationship subqueries are not supported in aggregate queries")
            if isinstance(item, Aggregate):
                if item.field is None:
                    raise error_at("MALFORMED_QUERY", q.text, item.pos,
                                   "COUNT() must be the only element in the SELECT list")
                sql, ftype, display = comp.aggregate_expr(scope, item)
                key = item.alias
                if key is None:
                    key = f"expr{n}"
                    n += 1
                out.append((key, sql, ftype, display, True))
            else:
                assert not isinstance(item, FieldsMacro)
                if isinstance(item, TypeOf):
                    raise error_at("MALFORMED_QUERY", q.text, item.pos, "TYPEOF can't be used in an aggregate query")
                expr, fdef, rels, _, _ = scope.resolve(item)
                if expr not in grouped:
                    raise error_at("MALFORMED_QUERY", q.text, item.pos,
                                   f"Field must be grouped or aggregated: {fdef.name}")
                key = item.alias
                if key is None and isinstance(item, FieldFunction) and item.function in DATE_FUNCTIONS:
                    key = f"expr{n}"
                    n += 1
                out.append((key or fdef.name, expr, fdef.type, ".".join(rels + [fdef.name]), False))
            if out[-1][0].lower() in keys:
                raise error_at("MALFORMED_QUERY", q.text, item.pos,
                               f"duplicate alias: {out[-1][0]}")
            keys.add(out[-1][0].lower())
        return out

    def _aggregate_sql(self, comp: Compiler, scope: Scope, q: Query, plan: List[Tuple[str, str, str, str, bool]],
                       params: List[Any], wrap: Callable[[str, str], str] = lambda sql, _type: sql) -> str:
        """SQL of an aggregate query; ``wrap(sql, type)`` turns each selected value into its output."""
        if q.group_kind:
            return self._grouping_sets_sql(comp, scope, q, plan, params, wrap)
        where = comp.base_filter(scope)
        if q.where is not None:
            where.append(comp.condition(scope, q.where, params))
        sql = (f"SELECT {', '.join(wrap(p[1], p[2]) for p in plan)} FROM {quote_identifier(scope.obj.name)} AS "
               f"{scope.alias} {' '.join(scope.join_sql)}")
        if where:
            sql += " WHERE " + " AND ".join(where)
        if q.group_by:
            sql += " GROUP BY " + ", ".join(scope.resolve(g)[0] for g in q.group_by)
        if q.having is not None:
            sql += " HAVING " + comp.condition(scope, q.having, params)
        order = comp.order_sql(scope, q.order_by)
        if order:
            sql += " ORDER BY " + ", ".join(order)
        sql += self._limit_sql(q, params)
        return sql

    def _grouping_sets_sql(self, comp: Compiler, scope: Scope, q: Query, plan: List[Tuple[str, str, str, str, bool]],
                           params: List[Any], wrap: Callable[[str, str], str]) -> str:
        """GROUP BY ROLLUP(a, b) / CUBE(a, b): one GROUP BY per grouping set, UNION ALL; a field a
        set leaves out is null in its rows, and GROUPING() of it 1. Without ORDER BY, subtotals
        follow the rows they sum up."""
        groups = [(expr, fdef.type) for expr, fdef, *_ in (scope.resolve(g) for g in q.group_by)]
        exprs = [g for g, _ in groups]
        if q.group_kind == "ROLLUP":
            sets = [exprs[:k] for k in range(len(exprs), -1, -1)]
        else:
            sets = [list(c) for k in range(len(exprs), -1, -1) for c in itertools.combinations(exprs, k)]
        where_params: List[Any] = []
        having_params: List[Any] = []
        where = comp.base_filter(scope)
        if q.where is not None:
            where.append(comp.condition(scope, q.where, where_params))
        having = comp.condition(scope, q.having, having_params) if q.having is not None else None
        order = self._grouping_order(comp, scope, q)
        parts = []
        for members in sets:
            cols = [f"{wrap(_in_set(p[1], exprs, members, p[4]), p[2])} AS c{i}" for i, p in enumerate(plan)]
            cols += [f"{_in_set(expr, exprs, members, agg)} AS o{k}" for k, (expr, agg, _d, _n) in enumerate(order)]
            for j, (g, gtype) in enumerate(groups):
                value = (f"sf_sort_key({g})" if gtype in TEXT_TYPES else g) if g in members else "NULL"
                cols += [f"{0 if g in members else 1} AS k{j}", f"{value} AS v{j}"]
            sql = (f"SELECT {', '.join(cols)} FROM {quote_identifier(scope.obj.name)} AS {scope.alias} "
                   f"{' '.join(scope.join_sql)}")
            sql += (" WHERE " + " AND ".join(where)) if where else ""
            sql += (" GROUP BY " + ", ".join(members)) if members else ""
            sql += (" HAVING " + _in_set(having, exprs, members, True)) if having else ""
            parts.append(sql)
            params.extend(where_params + having_params)
        keys = []
        for k, (_expr, _agg, descending, nulls_first) in enumerate(order):
            if nulls_first != (not descending):
                keys.append(f"(o{k} IS NULL) {'DESC' if nulls_first else 'ASC'}")
            keys.append(f"o{k} {'DESC' if descending else 'ASC'}")
        keys += [f"{kind}{j}" for j in range(len(groups)) for kind in ("k", "v")]
        sql = (f"SELECT {', '.join(f'c{i}' for i in range(len(plan)))} FROM ({' UNION ALL '.join(parts)}) "
               f"ORDER BY {', '.join(keys)}")
        return sql + self._limit_sql(q, params)

    @staticmethod
    def _grouping_order(comp: Compiler, scope: Scope, q: Query) -> List[Tuple[str, bool, bool, bool]]:
        """ORDER BY of a ROLLUP / CUBE query: [(sql, is aggregate, descending, nulls first)]."""
        out = []
        for item in q.order_by:
            if isinstance(item.expr, Aggregate):
                expr = comp.aggregate_expr(scope, item.expr)[0]
            else:
                expr, fdef, *_ = scope.resolve(item.expr)
                expr = f"sf_sort_key({expr})" if fdef.type in TEXT_TYPES else expr
            out.append((expr, isinstance(item.expr, Aggregate), item.descending, item.effective_nulls_first))
        return out

    def _aggregate_query(self, comp: Compiler, obj: ObjectDef, q: Query) -> QueryResult:
        if not q.group_by and q.limit is not None and q.limit > MAX_QUERY_ROWS:
            raise error_at("MALFORMED_QUERY", q.text, q.limit_pos,
                           f"LIMIT of an aggregate query without GROUP BY can't exceed {MAX_QUERY_ROWS}")
        scope = Scope(comp, obj, q)
        plan = self._aggregate_plan(comp, scope, q)
        params: List[Any] = []
        sql = self._aggregate_sql(comp, scope, q, plan, params)
        with self._lock:
            rows = self._conn.execute(sql, params).fetchmany(MAX_AGGREGATE_ROWS + 1)
        if len(rows) > MAX_AGGREGATE_ROWS:
            # aggregate results have no queryMore: Salesforce refuses what one batch can't hold
            raise SoqlError("EXCEEDED_ID_LIMIT", "Aggregate query does not support queryMore(), use LIMIT to "
                                                 "restrict the results to a single batch")
        keys = tuple(p[0] for p in plan)
        bools = tuple(p[0] for p in plan if p[2] == "boolean")
        floats = tuple(p[0] for p in plan if p[2] in ("double", "currency", "percent"))
        formats = self._aggregate_formats(scope, q, plan)
        records = []
        for row in rows:
            rec: dict = {"attributes": {"type": "AggregateResult"}}
            rec.update(zip(keys, row))
            for k in bools:
                if rec[k] is not None:
                    rec[k] = rec[k] == 1
            for k in floats:
                if rec[k] is not None:
                    rec[k] = float(rec[k])
            for k, ftype, scale in formats:
                rec[k] = format_for_user(rec[k], ftype, scale)
            records.append(rec)
        return QueryResult(records, len(records), obj.name)

    @staticmethod
    def _aggregate_formats(scope: Scope, q: Query, plan: List[Tuple[str, str, str, str, bool]]
                           ) -> List[Tuple[str, str, int]]:
        """(key, type, scale) of the values a FORMAT() in the SELECT list formats."""
        out = []
        for item, (key, _sql, ftype, _display, _agg) in zip(q.select, plan):
            if isinstance(item, Aggregate) and item.format:
                scale = scope.resolve(item.field)[1].scale if item.field is not None else 0
                out.append((key, ftype, scale))
            elif isinstance(item, FieldFunction) and item.function == "FORMAT":
                out.append((key, ftype, scope.resolve(item)[1].scale))
        return out

    # flat rows for Bulk CSV
    def query_flat(self, soql: str, *, include_deleted: bool = False) -> Tuple[List[str], List[Tuple[str, ...]]]:
        """(column names, rows of strings) the way Bulk API 2.0 CSV shows them.

        Parent fields are flattened to ``Account.Name`` columns; booleans are ``true``/``false``,
        nulls empty strings.  Child subqueries are refused (Bulk API doesn't support them).
        """
        names, _, sql, params = self._flat_sql(soql, include_deleted)
        with self._lock:
            rows = self._conn.execute(sql, params).fetchall()
        return names, rows

    def snapshot_flat(self, soql: str, *, include_deleted: bool = False) -> FlatSnapshot:
        """The rows :meth:`query_flat` gives, kept inside SQLite (a temporary table) and read
        a page at a time as CSV lines: what a Bulk 2.0 query job holds between its execution
        and its results. Taking it runs the query once, in SQLite, without building a Python
        object per value; later changes to the records do not show in it. ``close()`` drops it."""
        names, types, sql, params = self._flat_sql(soql, include_deleted)
        table = f"flat_snapshot_{uuid.uuid4().hex}"  # not _counter: that numbers record ids
        cols = [f"c{i}" for i in range(len(names))]
        with self._lock:
            # INSERT ... SELECT ... ORDER BY inserts in that order: rowid n is row n (1-based)
            self._conn.execute(f"CREATE TEMP TABLE {table} ({', '.join(cols)})")
            self._conn.execute(f"INSERT INTO {table} {sql}", params)
            count = self._conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        # a value can hold '"' (doubled in CSV) only if it is text
        quotes = [t is None or t not in _NO_QUOTE_TYPES for t in types]
        return FlatSnapshot(self, table, names, quotes, int(count))

    def _snapshot_lines(self, table: str, line_sql: str, offset: int, limit: int) -> List[str]:
        with self._lock:
            rows = self._conn.execute(f"SELECT {line_sql} FROM {table} WHERE rowid > ? AND rowid <= ? ORDER BY rowid",
                                      (offset, offset + limit)).fetchall()
        return [r[0] for r in rows]

    def _drop_snapshot(self, table: str) -> None:
        with self._lock:
            self._conn.execute(f"DROP TABLE IF EXISTS temp.{table}")

    def _flat_sql(self, soql: str, include_deleted: bool) -> Tuple[List[str], List[Optional[str]], str, List[Any]]:
        """(column names, their field types, SQL, parameters) of :meth:`query_flat`."""
        q = _soql.parse(soql)
        comp = Compiler(self, q, False, include_deleted)
        obj = comp.object(q.sobject, q.sobject_pos, q.text)
        self._expand_fields(q, obj, q, bulk=True)
        if any(isinstance(i, Subquery) for i in q.select):
            raise SoqlError("INVALIDJOB", "Cannot process query with relationship subqueries in Bulk API")
        if q.is_count_only:
            raise SoqlError("INVALIDJOB", "Bulk API does not support the COUNT() function: use COUNT(Id)")
        scope = Scope(comp, obj, q)
        params: List[Any] = []
        if q.is_aggregate:
            plan = self._aggregate_plan(comp, scope, q)
            names = [p[0] for p in plan]
            exprs = [(p[1], p[2]) for p in plan]
            sql = self._aggregate_sql(comp, scope, q, plan, params, wrap=_csv_expr)
        else:
            names = []
            exprs = []
            seen: set = set()
            for item in q.select:
                if isinstance(item, TypeOf) or (isinstance(item, FieldFunction) and item.function == "FORMAT"):
                    raise SoqlError("INVALIDJOB", f"{'TYPEOF' if isinstance(item, TypeOf) else 'FORMAT()'} is not "
                                                  f"supported in Bulk API queries by the local org")
                assert isinstance(item, (FieldRef, FieldFunction))
                if item.alias:
                    raise error_at("MALFORMED_QUERY", q.text, item.pos, f"unexpected token: '{item.alias}'")
                if isinstance(item, FieldFunction) and item.function not in RECORD_FUNCTIONS:
                    raise error_at("MALFORMED_QUERY", q.text, item.pos,
                                   f"{item.function}() in the SELECT list needs a GROUP BY of it")
                expr, fdef, rels, _, _ = scope.resolve(item)
                if fdef.compound:
                    raise SoqlError("FUNCTIONALITY_NOT_ENABLED", "Selecting compound data not supported in Bulk Query")
                name = ".".join(rels + [fdef.name])
                if name.lower() in seen:
                    raise error_at("MALFORMED_QUERY", q.text, item.pos, f"duplicate field selected: {name}")
                seen.add(name.lower())
                names.append(name)
                exprs.append((expr, fdef.type))
            sql = self._select_sql(comp, scope, q, [_csv_expr(e, t) for e, t in exprs], params)
        return names, [t for _, t in exprs], sql, params

    # columns=true
    def column_metadata(self, soql: str, *, tooling: bool = False) -> dict:
        """The response of GET /query?q=...&columns=true (no records)."""
        q = _soql.parse(soql)
        comp = Compiler(self, q, tooling, False)
        obj = comp.object(q.sobject, q.sobject_pos, q.text)
        self._expand_fields(q, obj, q)
        scope = Scope(comp, obj, q)
        columns: List[dict] = []
        if q.is_count_only:
            pass
        elif q.is_aggregate:
            for key, _sql, ftype, display, is_agg in self._aggregate_plan(comp, scope, q):
                columns.append(_column(key, key if not is_agg else display, ftype, aggregate=is_agg,
                                       insertable=False, updatable=False))
        else:
            self._plan(comp, scope, q, allow_children=True)  # validates names
            columns = self._columns_for(comp, scope, q)
        id_selected = any(isinstance(i, FieldRef) and len(i.path) == 1 and i.path[0].lower() == "id" for i in q.select)
        return {"columnMetadata": columns, "entityName": obj.name, "groupBy": bool(q.group_by),
                "idSelected": id_selected, "keyPrefix": obj.key_prefix}

    def _columns_for(self, comp: Compiler, scope: Scope, q: Query) -> List[dict]:
        out: List[dict] = []
        by_rel: Dict[Tuple[str, ...], dict] = {}
        for item in q.select:
            if isinstance(item, Subquery):
                rel_name, child, _fk = scope.obj.children[item.query.sobject.lower()]
                child_scope = Scope(comp, self.schema[child], item.query)
                col = _column(rel_name, rel_name, None, aggregate=True, insertable=False, updatable=False)
                col["joinColumns"] = self._columns_for(comp, child_scope, item.query)
                out.append(col)
                continue
            if isinstance(item, TypeOf):
                out.append(_column(item.ref.name, item.ref.name, None, aggregate=False, insertable=False,
                                   updatable=False))
                continue
            assert isinstance(item, (FieldRef, FieldFunction))
            _expr, fdef, rels, _alias, _obj = scope.resolve(item)
            target = out
            key: Tuple[str, ...] = ()
            prefix: List[str] = []
            for rel in rels:
                key += (rel.lower(),)
                prefix.append(rel)
                known = by_rel.get(key)
                if known is None:
                    known = _column(rel, ".".join(prefix), None, aggregate=False, insertable=False, updatable=False)
                    by_rel[key] = known
                    target.append(known)
                target = known["joinColumns"]
            target.append(_column(fdef.name, ".".join(prefix + [fdef.name]), fdef.type, aggregate=False,
                                  insertable=fdef.createable, updatable=fdef.updateable, custom=fdef.custom))
        return out


_PARENT_IDS = object()


#: field functions a record query may select (the others need GROUP BY)
RECORD_FUNCTIONS = frozenset({"TOLABEL", "FORMAT", "CONVERTCURRENCY"})


class TypeOfPlan:
    """A TYPEOF in a SELECT list: the polymorphic id's column and a Node per type it may name."""

    def __init__(self, key: str, fk_expr: str) -> None:
        self.key = key
        self.fk_expr = fk_expr
        self.fk_col = 0
        self.nodes: Dict[str, Node] = {}


def _layout(node: Node, columns: List[str], root_alias: str) -> None:
    """Give ``node``'s values their columns (then its parents' and TYPEOF types' values)."""
    node.start = len(columns)
    for kind, _key, payload in node.items:
        if kind == "v":
            columns.append(payload[0])
        elif kind == "p":
            payload.id_col = len(columns)
            columns.append(f"{payload.alias}.\"Id\"")
        elif kind == "t":
            payload.fk_col = len(columns)
            columns.append(payload.fk_expr)
        else:
            columns.append(f"{root_alias}.\"Id\"")
    node.stop = len(columns)
    for kind, _key, payload in node.items:
        if kind == "p":
            _layout(payload, columns, root_alias)
        elif kind == "t":
            for typed in payload.nodes.values():
                typed.id_col = len(columns)
                columns.append(f"{typed.alias}.\"Id\"")
                _layout(typed, columns, root_alias)


def _in_set(sql: str, groups: Sequence[str], members: Sequence[str], aggregate: bool) -> str:
    """``sql`` in the rows of one grouping set: GROUPING(g) is 0 for a field of the set, 1 for
    another; outside aggregates, a grouped field the set leaves out is null."""
    for g in groups:
        sql = sql.replace(f"sf_grouping({g})", "0" if g in members else "1")
    if not aggregate:
        for g in groups:
            if g not in members:
                sql = sql.replace(g, "NULL")
    return sql


def _fill(params: List[Any], ids: str) -> List[Any]:
    return [ids if p is _PARENT_IDS else p for p in params]


def _csv_expr(expr: str, ftype: str) -> str:
    """SQL giving the Bulk CSV text of a value: '' for null, true/false for booleans."""
    if ftype == "boolean":
        return f"CASE WHEN {expr} IS NULL THEN '' WHEN {expr} THEN 'true' ELSE 'false' END"
    if ftype in TEXT_TYPES or ftype in ("date", "datetime"):
        return f"IFNULL({expr}, '')"
    return f"IFNULL(CAST({expr} AS TEXT), '')"


def _column(name: str, display: str, ftype: Optional[str], *, aggregate: bool, insertable: bool,
            updatable: bool, custom: bool = False) -> dict:
    return {
        "aggregate": aggregate,
        "apexType": APEX_TYPES.get(ftype) if ftype else None,
        "booleanType": ftype == "boolean",
        "columnName": name,
        "custom": custom,
        "displayName": display,
        "foreignKeyName": None,
        "insertable": insertable,
        "joinColumns": [],
        "numberType": ftype in NUMBER_TYPES if ftype else False,
        "textType": ftype in TEXT_TYPES and ftype not in ("id", "reference") if ftype else False,
        "updatable": updatable,
    }
