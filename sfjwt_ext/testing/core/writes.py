"""One-record reads and writes of the local org's store: insert, get, update, delete, hard delete.

:class:`RecordWriter` (``store.writes``) takes values as Salesforce does (coercion, ``""`` as
null, references checked), derives the fields Salesforce computes (Name, IsClosed, CaseNumber,
TotalPrice...), applies the org's rules (unique fields, permission set assignments) and writes
on the store's connection under its lock. ``store.insert`` and the others hand over to it; the
write APIs (core/dml.py) build on them.
"""

from __future__ import annotations

import itertools
import json
import re
import sqlite3
import threading
from datetime import date, datetime, timedelta
from typing import Any, Callable, Dict, Iterable, List, Optional, Protocol, Sequence, Set, Tuple

from .ids import canonical_id, new_id
from .literals import UTC, format_datetime, parse_date, parse_datetime
from .schema import NO_SUCH_COLUMN, NUMBER_TYPES, TEXT_TYPES, FieldDef, ObjectDef, Schema, quote_identifier
from .values import JsonValueError, json_token, number_value
from .standard_objects import FORECAST_CATEGORIES, STAGE_FORECASTS, STAGES
from .soql import SoqlError

__all__ = ["RecordWriter"]


def _check_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class WrittenTables(Protocol):
    """What writes read of the store: its schema and objects, clock, record URLs and the ids it
    names as defaults (the fiscal year start for FiscalYear/FiscalQuarter)."""

    schema: Schema
    fiscal_year_start_month: int
    standard_pricebook_id: str
    default_owner_id: Optional[str]

    def object_def(self, name: str, *, tooling: bool = False) -> ObjectDef: ...

    def now(self) -> datetime: ...

    def sobject_url(self, sobject: str, record_id: str = "", *, tooling: bool = False) -> str: ...


class RecordWriter:
    """Reads and writes single records of ``tables`` on ``conn`` under ``lock``; numbers new ids."""

    def __init__(self, tables: WrittenTables, conn: sqlite3.Connection, lock: threading.RLock) -> None:
        self.tables = tables
        self._conn = conn
        self._lock = lock
        self._counter = itertools.count(1)
        self._case_numbers = itertools.count(1001)

    def new_id(self, sobject: str) -> str:
        obj = self.tables.object_def(sobject)
        return new_id(obj.key_prefix, next(self._counter))

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
        targets = [self.tables.schema[name] for name in f.reference_targets] or [obj]
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
        start = self.tables.fiscal_year_start_month
        row["FiscalYear"] = year + (1 if start != 1 and month >= start else 0)
        row["FiscalQuarter"] = (month - start) % 12 // 3 + 1
        row["Fiscal"] = f"{row['FiscalYear']} {row['FiscalQuarter']}"

    def _values(self, sobject: str, record_id: Any, columns: Sequence[str]) -> Dict[str, Any]:
        """Some columns of one record (empty when ``record_id`` is None or names nothing)."""
        if not record_id:
            return {}
        obj = self.tables.schema[sobject]
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
        if obj.name == "PricebookEntry" and values.get("Pricebook2Id") != self.tables.standard_pricebook_id:
            standard = self._conn.execute(
                'SELECT 1 FROM "PricebookEntry" WHERE "Pricebook2Id" = ? AND "Product2Id" = ? AND "IsDeleted" = 0',
                (self.tables.standard_pricebook_id, values.get("Product2Id"))).fetchone()
            if standard is None:
                raise SoqlError("STANDARD_PRICE_NOT_DEFINED",
                                "Before creating a custom price, create a standard price.", fields=[])
        if obj.name == "OpportunityLineItem" and not values.get("PricebookEntryId") and not values.get("Product2Id"):
            raise SoqlError("REQUIRED_FIELD_MISSING", "Required fields are missing: [PricebookEntryId]",
                            fields=["PricebookEntryId"])

    def _check_unique(self, obj: ObjectDef, values: Dict[str, Any], record_id: Optional[str],
                      seen: Dict[str, Set[Any]]) -> None:
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
        obj = self.tables.object_def(sobject)
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
        obj = self.tables.object_def(sobject)
        if not obj.createable:
            raise SoqlError("CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY", f"entity type {obj.name} does not support insert")
        now = format_datetime(self.tables.now())
        columns = [f.name for f in obj.stored_fields]
        rows: List[Tuple[Any, ...]] = []
        ids: List[str] = []
        seen: Dict[str, Set[Any]] = {}
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
                if "ownerid" in obj.by_lower and values.get("OwnerId") is None and self.tables.default_owner_id:
                    values["OwnerId"] = self.tables.default_owner_id
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
                values["CreatedById"] = values["LastModifiedById"] = self.tables.default_owner_id
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
            if obj.name == "User" and self.tables.default_owner_id is None and ids:
                self.tables.default_owner_id = ids[0]
        return ids

    def load_rows(self, sobject: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> List[str]:
        """Trusted fast path for big generated data sets (no per-value validation).

        ``columns`` are field names (checked against the schema); values must already be in
        storage form: booleans 0/1, dates ``YYYY-MM-DD``, datetimes as :func:`format_datetime`
        gives them, ids 18 characters.  Id, IsDeleted and the audit dates are filled in when
        missing; derived fields (Name, IsWon...) are not computed here.  Returns the new ids.
        """
        obj = self.tables.object_def(sobject)
        names: List[str] = []
        for c in columns:
            f = obj.by_lower.get(str(c).lower())
            if f is None or f.name == "Id":
                raise SoqlError("INVALID_FIELD", f"No such column '{c}' on sobject of type {obj.name}", fields=[c])
            names.append(f.name)
        now = format_datetime(self.tables.now())
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
            tooling: bool = False) -> Dict[str, Any]:
        """One record as the REST API's GET /sobjects/<type>/<id> returns it."""
        obj = self.tables.object_def(sobject, tooling=tooling)
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
        out: Dict[str, Any] = {"attributes": {"type": obj.name, "url": self.tables.sobject_url(obj.name, row["Id"], tooling=tooling)}}
        for f in wanted:
            out[f.name] = self._compound_value(f, row) if f.compound else self._output_value(f, row[f.name])
        return out

    def update(self, sobject: str, record_id: str, values: Dict[str, Any]) -> None:
        obj = self.tables.object_def(sobject)
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
            now = format_datetime(self.tables.now())
            row["LastModifiedDate"] = row["SystemModstamp"] = now
            if "lastmodifiedbyid" in obj.by_lower:
                row["LastModifiedById"] = self.tables.default_owner_id
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
        obj = self.tables.object_def(sobject)
        if not obj.deletable:
            raise SoqlError("METHOD_NOT_ALLOWED", "HTTP Method 'DELETE' not allowed. Allowed are GET,PATCH,HEAD", 405)
        with self._lock:
            row = self._fetch_row(obj, record_id)
            if row.get("IsDeleted"):
                raise SoqlError("ENTITY_IS_DELETED", "entity is deleted", 404)
            now = format_datetime(self.tables.now())
            self._conn.execute("BEGIN")
            try:
                self._soft_delete(obj, [row["Id"]], now)
                if hard:
                    self._conn.execute(f"DELETE FROM {quote_identifier(obj.name)} WHERE \"Id\" = ?", (row["Id"],))
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

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
                self._soft_delete(self.tables.schema[child], [r[0] for r in cur.fetchall()], now)
