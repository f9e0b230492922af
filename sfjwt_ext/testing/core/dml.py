"""Record writes shared by the write APIs (REST sObject, composite, external-id routes, Bulk 1.0
and 2.0 ingest).

What the store does for one record (insert, update, delete) is the store's business; this
module adds what every write API needs on top, the way Salesforce does it:

- ``Fields``: an object's fields as describe reports them (so custom fields added later are
  seen), looked up case-insensitively; the external id fields; relationship names.
- ``find_ids`` / ``upsert``: records by an external id (``Id`` counts as one), with
  ``MultipleMatches`` for several and NOT_FOUND for a field that is no external id.
- ``resolve_parents``: a parent named by its external id in a write body
  (``{"Account": {"Legacy_Id__c": "X"}}``) becomes the reference field (``AccountId``).
- ``insert``: records created through an API: what the store checks for every write (``""`` is
  null, numbers to precision and scale, lookups to live records, ids in any case) plus what only
  an API caller meets: audit fields (CreatedDate...) are not writable (no "Set Audit Fields").
- ``existing``: a write to a record by id, where a missing record is a bad cross reference.
- ``bulk_typed``: a value of the wrong type as the Bulk APIs word it.
- ``first_type_error``: a value of the wrong type in a Collections or tree body (the whole request fails).
- ``save_error``: a ``SoqlError`` as the per-record error Salesforce puts in a 200 answer;
  ``bulk_error_text``: the same as the Bulk results' Error / ``sf__Error`` column.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple, TypeVar

from .soql import SoqlError
from .ids import canonical_id
from .http import json_value_position
from .store import Store
from .values import JsonValueError

_T = TypeVar("_T")
_NUMBER_TYPES = frozenset({"int", "double", "currency", "percent"})
_ID_SHAPE = re.compile(r"[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?")


class MultipleMatches(Exception):
    """Several records carry the external id value (REST answers 300, Bulk DUPLICATE_EXTERNAL_ID)."""

    def __init__(self, sobject: str, field_name: str, ids: List[str]) -> None:
        super().__init__(f"{sobject}.{field_name}: {len(ids)} matches")
        self.sobject = sobject
        self.field_name = field_name
        self.ids = ids

    def as_error(self) -> SoqlError:
        """The Bulk APIs' per-row DUPLICATE_EXTERNAL_ID error."""
        return SoqlError("DUPLICATE_EXTERNAL_ID", f"{self.field_name}: more than one record found for external id "
                                                  f"field: [{', '.join(self.ids)}]", fields=[self.field_name])


@dataclass
class Fields:
    """One object's fields as describe gives them, by lower-cased name and relationship name."""

    sobject: str
    by_lower: Dict[str, Dict[str, Any]]
    relationships: Dict[str, Dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def of(cls, store: Store, sobject: str) -> "Fields":
        described = store.describe(sobject)
        by_lower = {f["name"].lower(): f for f in described["fields"]}
        relationships = {f["relationshipName"].lower(): f for f in described["fields"] if f.get("relationshipName")}
        return cls(described["name"], by_lower, relationships)

    def get(self, name: str) -> Optional[Dict[str, Any]]:
        return self.by_lower.get(name.lower())

    def external_id(self, name: str) -> Dict[str, Any]:
        """The field ``name`` if it can identify a record (Id, an external id or idLookup field)."""
        described = self.get(name)
        if described is None or not (described["type"] == "id" or described.get("externalId")
                                     or described.get("idLookup")):
            raise SoqlError("NOT_FOUND", f"Provided external ID field does not exist or is not accessible: {name}",
                            404)
        return described


class DescribeCache:
    """``Fields`` per object for the length of one request (describe is not cheap)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._fields: Dict[str, Fields] = {}

    def fields(self, sobject: str) -> Fields:
        key = sobject.lower()
        if key not in self._fields:
            self._fields[key] = Fields.of(self.store, sobject)
        return self._fields[key]


def soql_literal(described: Dict[str, Any], value: Any) -> str:
    """``value`` written as a SOQL literal for a comparison with the field ``described``."""
    if described["type"] in _NUMBER_TYPES and re.fullmatch(r"[+-]?\d+(?:\.\d+)?", str(value).strip()):
        return str(value).strip()
    text = str(value).replace("\\", "\\\\").replace("'", "\\'")
    return f"'{text}'"


def find_ids(cache: DescribeCache, sobject: str, field_name: str, value: Any) -> List[str]:
    """Ids of the live records whose external id ``field_name`` equals ``value``."""
    fields = cache.fields(sobject)
    described = fields.external_id(field_name)
    if described["type"] == "id":
        text = canonical_id(str(value))
        if not text:
            return []
        rows = cache.store.query(f"SELECT Id FROM {fields.sobject} WHERE Id = '{text}'").records
    else:
        rows = cache.store.query(f"SELECT Id FROM {fields.sobject} WHERE {described['name']} = "
                                  f"{soql_literal(described, value)}").records
    return [r["Id"] for r in rows]


def resolve_parents(cache: DescribeCache, sobject: str, values: Dict[str, Any]) -> Dict[str, Any]:
    """``values`` with every ``{"Rel": {"ExtField": v}}`` replaced by the reference field's id."""
    out: Dict[str, Any] = {}
    for key, value in values.items():
        # describe only when a value is an object: plain writes pay nothing
        reference = cache.fields(sobject).relationships.get(str(key).lower()) if isinstance(value, dict) else None
        if reference is None:
            out[key] = value
            continue
        out[reference["name"]] = parent_id(cache, reference, {k: v for k, v in value.items() if k != "attributes"})
    return out


def parent_id(cache: DescribeCache, reference: Dict[str, Any], lookup: Dict[str, Any]) -> Optional[str]:
    """The id of the parent that ``lookup`` (one external id field and its value) names."""
    if len(lookup) != 1:
        raise SoqlError("INVALID_FIELD", f"The relationship {reference['relationshipName']} must name exactly one "
                                         f"external id field", fields=[reference["name"]])
    (ext_field, ext_value), = lookup.items()
    if ext_value in (None, ""):
        return None
    target = reference["referenceTo"][0]
    ids = find_ids(cache, target, ext_field, ext_value)
    if not ids:
        raise SoqlError("INVALID_FIELD", f"Foreign key external ID: {ext_value} not found for field {ext_field} "
                                         f"in entity {target}", fields=[])
    if len(ids) > 1:
        raise SoqlError("DUPLICATE_EXTERNAL_ID", f"{ext_field}: more than one record found for external id field: "
                                                 f"[{', '.join(ids)}]", fields=[ext_field])
    return ids[0]


def upsert(cache: DescribeCache, sobject: str, field_name: str, value: Any, values: Dict[str, Any], *,
           update_only: bool = False) -> Tuple[str, bool]:
    """Create or update the record whose ``field_name`` is ``value``; ``(id, created)``."""
    fields = cache.fields(sobject)
    described = fields.external_id(field_name)
    values = resolve_parents(cache, sobject, {k: v for k, v in values.items() if k != "attributes"})
    values = {k: v for k, v in values.items() if str(k).lower() != described["name"].lower()}
    is_id = described["type"] == "id"
    if value in (None, ""):
        if not is_id:
            raise SoqlError("MISSING_ARGUMENT", f"{described['name']} not specified", fields=[described["name"]])
        ids: List[str] = []
    else:
        ids = find_ids(cache, sobject, described["name"], value)
    if len(ids) > 1:
        raise MultipleMatches(fields.sobject, described["name"], ids)
    if ids:
        cache.store.update(fields.sobject, ids[0], values)
        return ids[0], False
    if is_id and value not in (None, ""):
        text = check_id(fields.sobject, value)
        if cache.store.query(f"SELECT Id FROM {fields.sobject} WHERE Id = '{text}'", include_deleted=True).records:
            raise SoqlError("ENTITY_IS_DELETED", "entity is deleted", 404)
        raise SoqlError("NOT_FOUND", "The requested resource does not exist", 404)
    if update_only:
        raise SoqlError("NOT_FOUND", "The requested resource does not exist", 404)
    new_values = dict(values)
    if not is_id:
        new_values[described["name"]] = value
    return insert(cache.store, fields.sobject, [new_values])[0], True


def insert(store: Store, sobject: str, records: List[Dict[str, Any]]) -> List[str]:
    """Create ``records`` for an API caller: all or nothing, audit fields refused."""
    return store.insert(sobject, records, audit_fields=False)


def check_id(sobject_label: str, value: Any) -> str:
    """``value`` as the 18-character id it names (an 18-character id in any case), else
    MALFORMED_ID as Salesforce words it."""
    text = str(value or "")
    canonical = canonical_id(text) if _ID_SHAPE.fullmatch(text) else ""
    if not canonical:
        raise SoqlError("MALFORMED_ID", f"{sobject_label} ID: id value of incorrect type: {text}", fields=["Id"])
    return canonical


def first_type_error(store: Store, records: List[Tuple[str, Dict[str, Any]]]) -> Optional[JsonValueError]:
    """The first value of the wrong JSON type among ``(sobject, values)`` records, as Salesforce's
    parser finds it before a Collections or tree request saves anything; None if none."""
    for sobject, values in records:
        if store.has_object(sobject):
            error = store.type_error(sobject, {k: v for k, v in values.items() if not isinstance(v, dict)})
            if error is not None:
                return error
    return None


def located(exc: SoqlError, body: bytes) -> SoqlError:
    """``exc`` with Jackson's ``at [line:L, column:C]`` when it is about a value in ``body``."""
    if not isinstance(exc, JsonValueError):
        return exc
    where = json_value_position(body, exc.field_name, exc.value)
    return JsonValueError(f"{exc.message} {where}".rstrip(), exc.field_name, exc.value)


def save_error(exc: SoqlError) -> Dict[str, Any]:
    """The ``{"statusCode", "message", "fields"}`` entry of a SaveResult's ``errors``."""
    return {"statusCode": exc.error_code, "message": exc.message, "fields": list(exc.fields)}


def existing(call: Callable[[], _T]) -> _T:
    """``call()``, a write to a record by id: a well-formed id that is not there is a bad cross reference."""
    try:
        return call()
    except SoqlError as exc:
        if exc.error_code == "NOT_FOUND":
            raise SoqlError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id") from None
        raise


def bulk_typed(call: Callable[[], _T], values: Dict[str, Any], cache: DescribeCache, sobject: str) -> _T:
    """``call()``, a Bulk write of ``values``: a value of the wrong type is worded as the Bulk APIs
    word it (INVALID_TYPE_ON_FIELD_IN_RECORD "Label: value not of required type: v")."""
    try:
        return call()
    except JsonValueError as exc:
        described = cache.fields(sobject).get(exc.field_name)
        label = described["label"] if described else exc.field_name
        shown = next((v for k, v in values.items() if str(k).lower() == exc.field_name.lower()), exc.value)
        raise SoqlError("INVALID_TYPE_ON_FIELD_IN_RECORD", f"{label}: value not of required type: {shown}",
                        fields=[exc.field_name]) from None


def bulk_error_text(exc: SoqlError) -> str:
    """``CODE:message:Field1,Field2 --``, a failed row's error in Bulk 1.0 and 2.0 results."""
    return f"{exc.error_code}:{exc.message}:{','.join(exc.fields)} --"
