"""Describe for the local org's store: describeGlobal and sObject describe in Salesforce's JSON shapes.

:class:`Describer` reads the store's schema (standard and custom objects) and its record types;
it writes nothing. ``store.describe`` / ``store.describe_global`` hand over to it.
"""

from __future__ import annotations

import sqlite3
import threading
from datetime import datetime
from typing import Any, Dict, List, Optional, Protocol

from .literals import parse_datetime
from .schema import AUDIT_FIELDS, MASTER_RECORD_TYPE_ID, SOAP_TYPES, TEXT_TYPES, FieldDef, ObjectDef, Schema

__all__ = ["Describer"]


class DescribedTables(Protocol):
    """What describe reads of the store: its schema, objects, creation date and record URLs."""

    schema: Schema
    created_date: str

    def object_def(self, name: str, *, tooling: bool = False) -> ObjectDef: ...

    def sobject_url(self, sobject: str, record_id: str = "", *, tooling: bool = False) -> str: ...


class Describer:
    """describeGlobal and sObject describe of ``tables`` (record types read on ``conn`` under ``lock``)."""

    def __init__(self, tables: DescribedTables, conn: sqlite3.Connection, lock: threading.RLock) -> None:
        self.tables = tables
        self._conn = conn
        self._lock = lock

    # describe -------------------------------------------------------------
    def _object_urls(self, obj: ObjectDef, tooling: bool) -> Dict[str, str]:
        base = self.tables.sobject_url(obj.name, tooling=tooling)
        return {"rowTemplate": f"{base}/{{ID}}", "defaultValues": f"{base}/defaultValues?recordTypeId&fields",
                "describe": f"{base}/describe", "sobject": base}

    def _global_entry(self, obj: ObjectDef, tooling: bool) -> Dict[str, Any]:
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

    def describe_global(self, *, tooling: bool = False) -> Dict[str, Any]:
        """GET /sobjects (or /tooling/sobjects)."""
        objs = [o for o in self.tables.schema.objects() if (o.tooling_api if tooling else o.data_api)]
        return {"encoding": "UTF-8", "maxBatchSize": 200,
                "sobjects": [self._global_entry(o, tooling) for o in sorted(objs, key=lambda o: o.name)]}

    def _describe_field(self, obj: ObjectDef, f: FieldDef) -> Dict[str, Any]:
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

    def _describe_field_base(self, obj: ObjectDef, f: FieldDef, t: str, text: bool) -> Dict[str, Any]:
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

    def _record_type_infos(self, obj: ObjectDef, tooling: bool) -> List[Dict[str, Any]]:
        """The Master record type every layoutable object has, then the active RecordType rows."""
        if tooling or not obj.createable:
            return []
        base = self.tables.sobject_url(obj.name)
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
        objs = [self.tables.object_def(sobject)] if sobject is not None else self.tables.schema.objects()
        created = parse_datetime(self.tables.created_date)
        assert created is not None
        return max([created] + [o.metadata_changed for o in objs if o.metadata_changed is not None])

    def describe(self, sobject: str, *, tooling: bool = False) -> Dict[str, Any]:
        """GET /sobjects/<type>/describe.  Unknown type: SoqlError NOT_FOUND (404)."""
        obj = self.tables.object_def(sobject, tooling=tooling)
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
