"""The local org's schema: objects (:class:`ObjectDef`), fields (:class:`FieldDef`), field types.

:func:`standard_objects` builds the standard objects; each org's :class:`Schema` holds a copy of
its own, plus the custom objects and fields a test adds (``make_field``, ``custom_object``). Field types are Salesforce's describe
types (``string``, ``picklist``, ``reference``, ``currency``, ``date``, ``datetime``...); the
tables below map them to SOAP, Apex and SQLite types.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field
import threading
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .standard_objects import FIELD_TABLES, STANDARD_CHILDREN, STANDARD_OBJECTS, FieldRow, FieldSpec

__all__ = ["FieldDef", "ObjectDef", "Schema", "SchemaError", "make_field", "custom_object", "standard_objects",
           "quote_identifier"]

# --------------------------------------------------------------------------- schema

TEXT_TYPES = frozenset({"id", "reference", "string", "picklist", "textarea", "email", "phone", "url", "combobox"})
NUMBER_TYPES = frozenset({"int", "double", "currency", "percent"})
SOAP_TYPES = {
    "id": "tns:ID", "reference": "tns:ID", "string": "xsd:string", "picklist": "xsd:string",
    "textarea": "xsd:string", "email": "xsd:string", "phone": "xsd:string", "url": "xsd:string",
    "combobox": "xsd:string", "boolean": "xsd:boolean", "int": "xsd:int", "double": "xsd:double",
    "currency": "xsd:double", "percent": "xsd:double", "date": "xsd:date", "datetime": "xsd:dateTime",
    "address": "urn:address",
}
APEX_TYPES = {
    "id": "Id", "reference": "Id", "string": "String", "picklist": "String", "textarea": "String",
    "email": "String", "phone": "String", "url": "String", "combobox": "String", "boolean": "Boolean",
    "int": "Integer", "double": "Double", "currency": "Decimal", "percent": "Decimal", "date": "Date",
    "datetime": "Datetime", "address": "Address",
}
# how filter type errors name a type ("must be of type double")
FILTER_TYPE_NAMES = {
    "id": "id", "reference": "id", "boolean": "boolean", "int": "int", "double": "double",
    "currency": "double", "percent": "double", "date": "date", "datetime": "dateTime",
}
#: numbers have no column affinity: a double stays REAL, a whole number past 2**53 stays an exact
#: INTEGER (18 digits), and SQLite compares the two by value
SQL_TYPES = {"boolean": "INTEGER", "int": "INTEGER", "double": "", "currency": "", "percent": ""}
AUDIT_FIELDS = frozenset({"CreatedDate", "LastModifiedDate", "SystemModstamp"})


@dataclass
class FieldDef:
    name: str
    type: str
    label: str = ""
    length: int = 0
    nillable: bool = True
    createable: bool = True
    updateable: bool = True
    calculated: bool = False
    reference_to: Optional[str] = None
    relationship_name: Optional[str] = None
    picklist: Tuple[str, ...] = ()
    precision: int = 0
    scale: int = 0
    name_field: bool = False
    required: bool = False  # required on create (and defaulted == False)
    default: Any = None
    external: bool = True  # visible in describe / SOQL (False: internal column)
    custom: bool = False
    external_id: bool = False
    unique: bool = False
    case_sensitive: bool = False
    #: polymorphic references (WhoId, WhatId): every object the id may name; joins use reference_to
    reference_targets: Tuple[str, ...] = ()
    #: a compound field (BillingAddress): (JSON key, component field) pairs; no column of its own
    compound: Tuple[Tuple[str, str], ...] = ()
    compound_name: Optional[str] = None  # on a component: the compound field it belongs to
    description: Optional[str] = None

    def __post_init__(self) -> None:
        if not self.label:
            base = self.name[:-2] if self.type == "reference" and self.name.endswith("Id") else self.name
            if self.custom:
                base = base[:-3].replace("_", " ")
            self.label = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", base) if self.name != "Id" else "Record ID"
            if self.type == "reference" and not self.custom:
                self.label += " ID"
        if self.type in TEXT_TYPES and not self.length:
            self.length = 18 if self.type in ("id", "reference") else 255
        if self.reference_to and not self.reference_targets:
            self.reference_targets = (self.reference_to,)

    @property
    def stored(self) -> bool:
        """Whether the field has a column of its own (compound fields are made of their components)."""
        return not self.compound


@dataclass
class ObjectDef:
    name: str
    label: str
    label_plural: str
    key_prefix: str
    fields: List[FieldDef]
    createable: bool = True
    updateable: bool = True
    deletable: bool = True
    data_api: bool = True
    tooling_api: bool = False
    custom: bool = False
    by_lower: Dict[str, FieldDef] = field(default_factory=dict)
    relationships: Dict[str, FieldDef] = field(default_factory=dict)  # lower relationship name -> reference field
    children: Dict[str, Tuple[str, str, str]] = field(default_factory=dict)  # lower -> (relName, childObj, field)
    #: when a test last changed the object's metadata (a datetime; None: as the org was created)
    metadata_changed: Optional[datetime.datetime] = None

    def __post_init__(self) -> None:
        self.reindex()

    def reindex(self) -> None:
        """Rebuild the lookup maps after ``fields`` changed."""
        self.by_lower = {f.name.lower(): f for f in self.fields}
        self.relationships = {f.relationship_name.lower(): f for f in self.fields if f.relationship_name}

    @property
    def public_fields(self) -> List[FieldDef]:
        return [f for f in self.fields if f.external]

    @property
    def stored_fields(self) -> List[FieldDef]:
        """The fields with a column in the object's table."""
        return [f for f in self.fields if f.stored]


def _f(name: str, type_: str, **kw: Any) -> FieldDef:
    return FieldDef(name, type_, **kw)


def _ref(name: str, to: str, rel: str, **kw: Any) -> FieldDef:
    return FieldDef(name, "reference", reference_to=to, relationship_name=rel, **kw)


def _system_fields(deleted: bool = True) -> List[FieldDef]:
    out = [
        _f("CreatedDate", "datetime", label="Created Date", nillable=False, createable=False, updateable=False),
        _ref("CreatedById", "User", "CreatedBy", label="Created By ID", nillable=False, createable=False,
             updateable=False),
        _f("LastModifiedDate", "datetime", label="Last Modified Date", nillable=False, createable=False, updateable=False),
        _ref("LastModifiedById", "User", "LastModifiedBy", label="Last Modified By ID", nillable=False,
             createable=False, updateable=False),
        _f("SystemModstamp", "datetime", label="System Modstamp", nillable=False, createable=False, updateable=False),
    ]
    out.append(_f("IsDeleted", "boolean", label="Deleted", nillable=False, createable=False, updateable=False,
                  external=deleted))
    return out


def _address(prefix: str, label: str) -> List[FieldDef]:
    """The components of a compound address (``BillingStreet``...) and the compound ``BillingAddress``."""
    compound = f"{prefix}Address"
    parts = [
        _f(f"{prefix}Street", "textarea", label=f"{label} Street", compound_name=compound),
        _f(f"{prefix}City", "string", length=40, label=f"{label} City", compound_name=compound),
        _f(f"{prefix}State", "string", length=80, label=f"{label} State/Province", compound_name=compound),
        _f(f"{prefix}PostalCode", "string", length=20, label=f"{label} Zip/Postal Code", compound_name=compound),
        _f(f"{prefix}Country", "string", length=80, label=f"{label} Country", compound_name=compound),
        _f(f"{prefix}Latitude", "double", precision=18, scale=15, label=f"{label} Latitude", compound_name=compound),
        _f(f"{prefix}Longitude", "double", precision=18, scale=15, label=f"{label} Longitude",
           compound_name=compound),
        _f(f"{prefix}GeocodeAccuracy", "picklist", label=f"{label} Geocode Accuracy", compound_name=compound,
           picklist=("Address", "NearAddress", "Block", "Street", "ExtendedZip", "Zip", "Neighborhood", "City",
                     "County", "State", "Unknown")),
    ]
    keys = ("street", "city", "state", "postalCode", "country", "latitude", "longitude", "geocodeAccuracy")
    whole = _f(compound, "address", label=f"{label} Address", createable=False, updateable=False,
               compound=tuple(zip(keys, (p.name for p in parts))))
    return parts + [whole]


def _id() -> FieldDef:
    return _f("Id", "id", label="Record ID", nillable=False, createable=False, updateable=False)


def _from_rows(rows: Sequence[FieldRow]) -> List[FieldDef]:
    """FieldDefs from rows of a field table (see ACCOUNT_MORE_FIELDS)."""
    out = []
    for name, type_, label, size, writable in rows:
        kw: Dict[str, Any] = {"label": label, "createable": writable, "updateable": writable}
        if type_ == "reference":
            kw["reference_to"], kw["relationship_name"] = size
        elif type_ == "picklist":
            kw["picklist"] = size
        elif type_ == "boolean":
            kw.update(default=size, nillable=False)
        elif type_ in ("double", "currency", "percent"):
            kw["precision"], kw["scale"] = size
        elif type_ == "int":
            kw["precision"] = size
        elif size:
            kw["length"] = size
        out.append(FieldDef(name, type_, **kw))
    return out


def _build_schema() -> Dict[str, ObjectDef]:
    objs = [ObjectDef(name, label, plural, prefix, [f for spec in specs for f in _field_defs(spec)], **options)
            for name, label, plural, prefix, options, specs in STANDARD_OBJECTS]
    schema = {o.name: o for o in objs}
    for o in objs:
        for f in o.fields:
            for target in f.reference_targets:
                if target not in schema:
                    raise AssertionError(f"{o.name}.{f.name} refers to unknown {target}")
    for parent, rel, child, fk in STANDARD_CHILDREN:
        schema[parent].children[rel.lower()] = (rel, child, fk)
    return schema


def _field_defs(spec: FieldSpec) -> List[FieldDef]:
    """The FieldDefs of one row of :data:`~.standard_objects.STANDARD_OBJECTS`."""
    name, type_, options = spec
    if name == "*id":
        return [_id()]
    if name == "*system":
        return _system_fields(deleted=options.get("recycle", True))
    if name == "*address":
        return _address(type_, options["label"])
    if name == "*rows":
        return _from_rows(FIELD_TABLES[type_])
    if type_ == "reference":
        kw = dict(options)
        return [_ref(name, kw.pop("to"), kw.pop("relationship"), **kw)]
    return [_f(name, type_, **options)]


#: the record type every object has when none are defined (describe's recordTypeInfos)
MASTER_RECORD_TYPE_ID = "012000000000000AAA"


def standard_objects() -> Dict[str, ObjectDef]:
    """A fresh copy of the standard objects (each org's :class:`Schema` owns its own)."""
    return _build_schema()


class SchemaError(ValueError):
    """A custom object or field that cannot be made (the message names the argument to fix)."""


#: add_field's ``type=`` (lower-cased; Metadata API names too) -> describe type
FIELD_TYPES = {
    "string": "string", "text": "string", "textarea": "textarea", "longtextarea": "textarea",
    "number": "double", "double": "double", "int": "int", "integer": "int", "currency": "currency",
    "percent": "percent", "date": "date", "datetime": "datetime", "boolean": "boolean", "checkbox": "boolean",
    "picklist": "picklist", "reference": "reference", "lookup": "reference", "masterdetail": "reference",
    "email": "email", "phone": "phone", "url": "url",
}
_DEFAULT_DIGITS = {"double": (18, 0), "currency": (18, 2), "percent": (3, 0)}
_CUSTOM_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)*__c")


def check_custom_name(name: str, what: str) -> str:
    """``name`` if it is a custom API name (``Legacy_Id__c``); else SchemaError naming ``what``."""
    if not isinstance(name, str) or not _CUSTOM_NAME.fullmatch(name) or len(name) > 43:
        raise SchemaError(f"{what}={name!r} is not a custom API name: letters, digits and single underscores, "
                          f"at most 40 characters, ending in '__c' (e.g. 'Legacy_Id__c')")
    return name


def make_field(name: str, *, type: str, label: Optional[str] = None, length: Optional[int] = None,
               precision: Optional[int] = None, scale: Optional[int] = None, values: Sequence[str] = (),
               default: Any = None, reference_to: Optional[str] = None, relationship_name: Optional[str] = None,
               child_relationship: Optional[str] = None, external_id: bool = False, unique: bool = False,
               case_sensitive: bool = False, required: bool = False, description: Optional[str] = None
               ) -> Tuple[FieldDef, Optional[str]]:
    """A custom field from ``add_field``'s keyword arguments -> (field, child relationship name or None)."""
    check_custom_name(name, "name")
    ftype = FIELD_TYPES.get(str(type).replace(" ", "").lower())
    if ftype is None:
        raise SchemaError(f"type={type!r} is not a field type; use one of {', '.join(sorted(set(FIELD_TYPES)))}")
    if (external_id or unique) and ftype not in ("string", "email", "double", "int", "phone", "url"):
        raise SchemaError(f"external_id=/unique= on {name}: only text, number and email fields can be external "
                          f"ids or unique (this one is type={type!r})")
    kw: Dict[str, Any] = {}
    if ftype in ("string", "textarea", "email", "phone", "url", "picklist"):
        limit = 131072 if ftype == "textarea" else 255
        size = length if length is not None else (32768 if str(type).lower() == "longtextarea" else 255)
        if not isinstance(size, int) or isinstance(size, bool) or not 0 < size <= limit:
            raise SchemaError(f"length={length!r} for {name}: a whole number from 1 to {limit}")
        kw["length"] = size
    if ftype in _DEFAULT_DIGITS:
        p, sc = _DEFAULT_DIGITS[ftype]
        p = p if precision is None else precision
        sc = sc if scale is None else scale
        if not (isinstance(p, int) and isinstance(sc, int) and 0 < p <= 18 and 0 <= sc <= p):
            raise SchemaError(f"precision={precision!r}, scale={scale!r} for {name}: 1 <= precision <= 18 and "
                              f"0 <= scale <= precision")
        kw["precision"], kw["scale"] = p, sc
    if ftype == "picklist":
        picks = tuple(str(v) for v in values)
        if not picks:
            raise SchemaError(f"values= for the picklist {name}: give its values, e.g. values=['Gold', 'Silver']")
        kw["picklist"] = picks
    elif values:
        raise SchemaError(f"values= is for picklist fields; {name} is type={type!r}")
    child = None
    if ftype == "reference":
        if not reference_to:
            raise SchemaError(f"reference_to= for the reference {name}: name the parent object, e.g. "
                              f"reference_to='Account'")
        kw["reference_to"] = reference_to
        kw["relationship_name"] = relationship_name or name[:-3] + "__r"
        child = child_relationship
        kw["length"] = 18
    elif reference_to or relationship_name or child_relationship:
        raise SchemaError(f"reference_to=/relationship_name= are for reference fields; {name} is type={type!r}")
    if ftype == "boolean":
        default = bool(default)
        required = False
    f = FieldDef(name, ftype, label=label or "", custom=True, external_id=bool(external_id),
                 unique=bool(unique), case_sensitive=bool(case_sensitive), required=bool(required),
                 nillable=not required and ftype != "boolean", default=default, description=description, **kw)
    return f, child


class Schema:
    """One org's objects and fields: the standard objects plus what a test adds.

    Owned by one :class:`~.store.Store` and guarded by its lock (``lock``): the compiler and
    the store read it, ``add_object`` / ``add_field`` change it (the store adds the columns).
    """

    def __init__(self, lock: "threading.RLock") -> None:
        self.lock = lock
        self._objects: Dict[str, ObjectDef] = standard_objects()
        self._lower: Dict[str, ObjectDef] = {k.lower(): v for k, v in self._objects.items()}
        self._custom_prefixes = 0

    def get(self, name: str) -> Optional[ObjectDef]:
        with self.lock:
            return self._lower.get(str(name).lower())

    def __getitem__(self, name: str) -> ObjectDef:
        obj = self.get(name)
        if obj is None:
            raise KeyError(name)
        return obj

    def objects(self) -> List[ObjectDef]:
        with self.lock:
            return list(self._objects.values())

    def new_key_prefix(self) -> str:
        """``a00``, ``a01``... as Salesforce numbers custom objects."""
        with self.lock:
            n = self._custom_prefixes
            self._custom_prefixes += 1
        digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
        return "a" + digits[n // 62 % 62] + digits[n % 62]

    def add_object(self, obj: ObjectDef) -> None:
        with self.lock:
            if obj.name.lower() in self._lower:
                raise SchemaError(f"an object named {obj.name} exists already: pick another name, or add fields "
                                  f"to it with add_field")
            self._objects[obj.name] = obj
            self._lower[obj.name.lower()] = obj

    def add_field(self, obj: ObjectDef, f: FieldDef, child_relationship: Optional[str] = None) -> None:
        """Add ``f`` to ``obj`` (and the child relationship on its parent); lookup maps rebuilt."""
        with self.lock:
            if f.name.lower() in obj.by_lower:
                raise SchemaError(f"{obj.name} has a field named {obj.by_lower[f.name.lower()].name} already: "
                                  f"pick another name")
            if f.relationship_name and f.relationship_name.lower() in obj.relationships:
                raise SchemaError(f"relationship_name={f.relationship_name!r} is taken on {obj.name}")
            parent = None
            if f.reference_to:
                parent = self._lower.get(f.reference_to.lower())
                if parent is None:
                    raise SchemaError(f"reference_to={f.reference_to!r} for {f.name}: no such object (define it "
                                      f"first with define_object)")
                f.reference_to = parent.name
                f.reference_targets = (parent.name,)
                rel = child_relationship or _plural(obj.name) + "__r"
                if not rel.endswith("__r"):
                    rel += "__r"
                if rel.lower() in parent.children:
                    raise SchemaError(f"child_relationship={rel[:-3]!r}: {parent.name} already has a child "
                                      f"relationship {rel}; name another")
            obj.fields.append(f)
            obj.reindex()
            if parent is not None:
                parent.children[rel.lower()] = (rel, obj.name, f.name)


def _plural(name: str) -> str:
    base = name[:-3] if name.endswith("__c") else name
    return base + ("es" if base.endswith(("s", "x", "ch", "sh")) else "s")


def custom_object(name: str, prefix: str, *, label: Optional[str] = None, plural_label: Optional[str] = None,
                  name_field_label: Optional[str] = None) -> ObjectDef:
    """A custom object's standard fields (Id, Name, OwnerId, audit fields); custom ones come after."""
    check_custom_name(name, "name")
    label = label or name[:-3].replace("_", " ")
    return ObjectDef(name, label, plural_label or _plural(label), prefix, [
        _id(),
        _f("Name", "string", length=80, label=name_field_label or f"{label} Name", name_field=True),
        _ref("OwnerId", "User", "Owner", nillable=False, label="Owner ID"),
        *_system_fields(),
    ], custom=True)


def quote_identifier(identifier: str) -> str:
    """Quote a schema identifier.  Only names from a Schema ever get here."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", identifier):
        raise AssertionError(f"not a schema identifier: {identifier!r}")
    return f'"{identifier}"'



NO_SUCH_COLUMN = ("No such column '{col}' on entity '{entity}'. If you are attempting to use a custom field, be "
                   "sure to append the '__c' after the custom field name. Please reference your WSDL or the describe "
                   "call for the appropriate names.")
BAD_TYPE = ("sObject type '{name}' is not supported. If you are attempting to use a custom object, be sure to "
             "append the '__c' after the entity name. Please reference your WSDL or the describe call for the "
             "appropriate names.")
BAD_RELATIONSHIP = ("Didn't understand relationship '{rel}' in field path. If you are attempting to use a custom "
                     "relationship, be sure to append the '__r' after the custom relationship name. Please reference "
                     "your WSDL or the describe call for the appropriate names.")
BAD_CHILD_RELATIONSHIP = ("Didn't understand relationship '{rel}' in FROM part of query call. If you are attempting "
                           "to use a custom relationship, be sure to append the '__r' after the custom relationship "
                           "name. Please reference your WSDL or the describe call for the appropriate names.")
