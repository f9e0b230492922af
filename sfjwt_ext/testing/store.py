"""The local org's data: an in-memory SQLite database behind a Salesforce-shaped API.

Objects and fields come from a fixed schema (:data:`SCHEMA`).  SOQL is parsed by
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
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from . import soql as _soql
from .soql import (
    Aggregate,
    BoolOp,
    Comparison,
    DateLiteral,
    FieldRef,
    Literal,
    Not,
    Query,
    SoqlError,
    Subquery,
    error_at,
)

__all__ = [
    "Store",
    "QueryResult",
    "SoqlError",
    "FieldDef",
    "ObjectDef",
    "SCHEMA",
    "to_18",
    "is_valid_id",
    "format_datetime",
    "OPPORTUNITY_STAGES",
]

UTC = timezone.utc

# --------------------------------------------------------------------------- ids

_CHECKSUM_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_ID_CHARS = frozenset(_BASE62)


_ID_BITS = str.maketrans({c: ("1" if "A" <= c <= "Z" else "0") for c in _BASE62})


def to_18(id15: str) -> str:
    """Salesforce's 15 -> 18 character id: a case-safe checksum of 3 chunks of 5 chars.

    For each chunk, bit i is set when character i is an upper-case letter; the 5-bit
    value picks a character of ``A..Z0..5``.
    """
    if len(id15) == 18:
        id15 = id15[:15]
    if len(id15) != 15:
        raise ValueError(f"a Salesforce id has 15 or 18 characters, not {len(id15)}: {id15!r}")
    bits = id15.translate(_ID_BITS)
    c = _CHECKSUM_CHARS
    return id15 + c[int(bits[4::-1], 2)] + c[int(bits[9:4:-1], 2)] + c[int(bits[14:9:-1], 2)]


def is_valid_id(value: str) -> bool:
    """True for a well-formed 15- or 18-character id (18: with the right checksum)."""
    if not isinstance(value, str) or len(value) not in (15, 18) or not set(value) <= _ID_CHARS:
        return False
    return len(value) == 15 or to_18(value[:15]) == value


_BASE62_PAIRS = [a + b for a in _BASE62 for b in _BASE62]


def _base62(n: int, width: int) -> str:
    out = []
    pairs = _BASE62_PAIRS
    while n:
        n, r = divmod(n, 3844)
        out.append(pairs[r])
    return "".join(reversed(out)).lstrip("0").rjust(width, "0")


# --------------------------------------------------------------------------- dates


def format_datetime(dt: datetime) -> str:
    """Salesforce's JSON datetime: ``2024-01-31T10:00:00.000+0000`` (always UTC)."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    dt = dt.astimezone(UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}+0000"


_DT_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?"
    r"\s*(Z|z|[+-]\d{2}:?\d{2})?)?$"
)


def _parse_datetime(text: str) -> Optional[datetime]:
    m = _DT_RE.match(text.strip())
    if not m:
        return None
    y, mo, d, hh, mi, ss, frac, tz = m.groups()
    try:
        micro = int((frac or "0")[:6].ljust(6, "0"))
        dt = datetime(int(y), int(mo), int(d), int(hh or 0), int(mi or 0), int(ss or 0), micro, tzinfo=UTC)
    except ValueError:
        return None
    if tz and tz not in ("Z", "z"):
        sign = 1 if tz[0] == "+" else -1
        digits = tz[1:].replace(":", "")
        offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
        dt = dt - sign * offset
    return dt


def _parse_date(text: str) -> Optional[str]:
    try:
        return date.fromisoformat(text.strip()[:10]).isoformat() if len(text.strip()) == 10 else None
    except ValueError:
        return None


def _add_months(d: date, months: int) -> date:
    total = d.year * 12 + (d.month - 1) + months
    y, m = divmod(total, 12)
    return date(y, m + 1, 1)


def _date_range(lit: DateLiteral, today: date) -> Tuple[date, date]:
    """[start, end) of a relative date literal (weeks start on Sunday, calendar quarters)."""
    name, n = lit.name, lit.n or 0
    day = timedelta(days=1)
    week_start = today - timedelta(days=(today.weekday() + 1) % 7)
    month_start = today.replace(day=1)
    quarter_start = date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
    year_start = date(today.year, 1, 1)
    fixed = {
        "YESTERDAY": (today - day, today),
        "TODAY": (today, today + day),
        "TOMORROW": (today + day, today + 2 * day),
        "LAST_WEEK": (week_start - 7 * day, week_start),
        "THIS_WEEK": (week_start, week_start + 7 * day),
        "NEXT_WEEK": (week_start + 7 * day, week_start + 14 * day),
        "LAST_MONTH": (_add_months(month_start, -1), month_start),
        "THIS_MONTH": (month_start, _add_months(month_start, 1)),
        "NEXT_MONTH": (_add_months(month_start, 1), _add_months(month_start, 2)),
        "LAST_90_DAYS": (today - 90 * day, today + day),
        "NEXT_90_DAYS": (today + day, today + 91 * day),
        "LAST_QUARTER": (_add_months(quarter_start, -3), quarter_start),
        "THIS_QUARTER": (quarter_start, _add_months(quarter_start, 3)),
        "NEXT_QUARTER": (_add_months(quarter_start, 3), _add_months(quarter_start, 6)),
        "LAST_YEAR": (date(today.year - 1, 1, 1), year_start),
        "THIS_YEAR": (year_start, date(today.year + 1, 1, 1)),
        "NEXT_YEAR": (date(today.year + 1, 1, 1), date(today.year + 2, 1, 1)),
    }
    if name in fixed:
        return fixed[name]
    unit_start = {"DAYS": today, "WEEKS": week_start, "MONTHS": month_start, "QUARTERS": quarter_start,
                  "YEARS": year_start}
    unit = name.rsplit("_", 1)[1] if not name.endswith("_AGO") else name.split("_")[1]

    def shift(d: date, k: int) -> date:
        if unit == "DAYS":
            return d + k * day
        if unit == "WEEKS":
            return d + 7 * k * day
        if unit == "MONTHS":
            return _add_months(d, k)
        if unit == "QUARTERS":
            return _add_months(d, 3 * k)
        return date(d.year + k, 1, 1)

    start = unit_start[unit]
    if name.startswith("LAST_N_"):
        # days: the last n days including today; other units: the n units before the current one
        if unit == "DAYS":
            return today - n * day, today + day
        return shift(start, -n), start
    if name.startswith("NEXT_N_"):
        if unit == "DAYS":
            return today + day, today + (n + 1) * day
        return shift(start, 1), shift(start, n + 1)
    # N_<unit>_AGO
    return shift(start, -n), shift(start, -n + 1)


# --------------------------------------------------------------------------- schema

_TEXT_TYPES = frozenset({"id", "reference", "string", "picklist", "textarea", "email", "phone", "url", "combobox"})
_NUMBER_TYPES = frozenset({"int", "double", "currency", "percent"})
_SOAP_TYPES = {
    "id": "tns:ID", "reference": "tns:ID", "string": "xsd:string", "picklist": "xsd:string",
    "textarea": "xsd:string", "email": "xsd:string", "phone": "xsd:string", "url": "xsd:string",
    "combobox": "xsd:string", "boolean": "xsd:boolean", "int": "xsd:int", "double": "xsd:double",
    "currency": "xsd:double", "percent": "xsd:double", "date": "xsd:date", "datetime": "xsd:dateTime",
}
_APEX_TYPES = {
    "id": "Id", "reference": "Id", "string": "String", "picklist": "String", "textarea": "String",
    "email": "String", "phone": "String", "url": "String", "combobox": "String", "boolean": "Boolean",
    "int": "Integer", "double": "Double", "currency": "Decimal", "percent": "Decimal", "date": "Date",
    "datetime": "Datetime",
}
# how filter type errors name a type ("must be of type double")
_FILTER_TYPE_NAMES = {
    "id": "id", "reference": "id", "boolean": "boolean", "int": "int", "double": "double",
    "currency": "double", "percent": "double", "date": "date", "datetime": "dateTime",
}
_SQL_TYPES = {"boolean": "INTEGER", "int": "INTEGER", "double": "REAL", "currency": "REAL", "percent": "REAL"}
_AUDIT_FIELDS = frozenset({"CreatedDate", "LastModifiedDate", "SystemModstamp"})


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

    def __post_init__(self) -> None:
        if not self.label:
            base = self.name[:-2] if self.type == "reference" and self.name.endswith("Id") else self.name
            self.label = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", base) if self.name != "Id" else "Record ID"
            if self.type == "reference":
                self.label += " ID"
        if self.type in _TEXT_TYPES and not self.length:
            self.length = 18 if self.type in ("id", "reference") else 255


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
    by_lower: Dict[str, FieldDef] = field(default_factory=dict)
    relationships: Dict[str, FieldDef] = field(default_factory=dict)  # lower relationship name -> reference field
    children: Dict[str, Tuple[str, str, str]] = field(default_factory=dict)  # lower -> (relName, childObj, field)

    def __post_init__(self) -> None:
        self.by_lower = {f.name.lower(): f for f in self.fields}
        self.relationships = {f.relationship_name.lower(): f for f in self.fields if f.relationship_name}

    @property
    def public_fields(self) -> List[FieldDef]:
        return [f for f in self.fields if f.external]


def _f(name: str, type_: str, **kw: Any) -> FieldDef:
    return FieldDef(name, type_, **kw)


def _ref(name: str, to: str, rel: str, **kw: Any) -> FieldDef:
    return FieldDef(name, "reference", reference_to=to, relationship_name=rel, **kw)


def _system_fields(deleted: bool = True) -> List[FieldDef]:
    out = [
        _f("CreatedDate", "datetime", label="Created Date", nillable=False, createable=False, updateable=False),
        _f("LastModifiedDate", "datetime", label="Last Modified Date", nillable=False, createable=False, updateable=False),
        _f("SystemModstamp", "datetime", label="System Modstamp", nillable=False, createable=False, updateable=False),
    ]
    out.append(_f("IsDeleted", "boolean", label="Deleted", nillable=False, createable=False, updateable=False,
                  external=deleted))
    return out


def _id() -> FieldDef:
    return _f("Id", "id", label="Record ID", nillable=False, createable=False, updateable=False)


OPPORTUNITY_STAGES: Tuple[Tuple[str, int, bool, bool], ...] = (
    # (StageName, default Probability, IsClosed, IsWon) as in a new org
    ("Prospecting", 10, False, False),
    ("Qualification", 10, False, False),
    ("Needs Analysis", 20, False, False),
    ("Value Proposition", 50, False, False),
    ("Id. Decision Makers", 60, False, False),
    ("Perception Analysis", 70, False, False),
    ("Proposal/Price Quote", 75, False, False),
    ("Negotiation/Review", 90, False, False),
    ("Closed Won", 100, True, True),
    ("Closed Lost", 0, True, False),
)
_STAGES = {s[0].lower(): s for s in OPPORTUNITY_STAGES}

ACCOUNT_TYPES = ("Prospect", "Customer - Direct", "Customer - Channel", "Channel Partner / Reseller",
                 "Installation Partner", "Technology Partner", "Other")
INDUSTRIES = ("Agriculture", "Apparel", "Banking", "Biotechnology", "Chemicals", "Communications", "Construction",
              "Consulting", "Education", "Electronics", "Energy", "Engineering", "Entertainment", "Environmental",
              "Finance", "Food & Beverage", "Government", "Healthcare", "Hospitality", "Insurance", "Machinery",
              "Manufacturing", "Media", "Not For Profit", "Recreation", "Retail", "Shipping", "Technology",
              "Telecommunications", "Transportation", "Utilities", "Other")
LEAD_SOURCES = ("Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Other")


def _build_schema() -> Dict[str, ObjectDef]:
    objs = [
        ObjectDef("Organization", "Organization", "Organizations", "00D", [
            _id(),
            _f("Name", "string", length=80, nillable=False, name_field=True),
            _f("IsSandbox", "boolean", nillable=False, updateable=False),
            _f("InstanceName", "string", length=6, updateable=False),
            _f("OrganizationType", "picklist", label="Edition", updateable=False,
               picklist=("Team Edition", "Professional Edition", "Enterprise Edition", "Developer Edition",
                         "Unlimited Edition")),
            _f("TrialExpirationDate", "datetime", updateable=False),
            _f("NamespacePrefix", "string", length=15, updateable=False),
            *_system_fields(deleted=False),
        ], createable=False, deletable=False),
        ObjectDef("Profile", "Profile", "Profiles", "00e", [
            _id(),
            _f("Name", "string", nillable=False, name_field=True, required=True),
            _f("Description", "string"),
            *_system_fields(deleted=False),
        ], deletable=False),
        ObjectDef("User", "User", "Users", "005", [
            _id(),
            _f("Username", "string", length=80, nillable=False, required=True),
            _f("LastName", "string", length=80, nillable=False, required=True),
            _f("FirstName", "string", length=40),
            _f("Name", "string", length=121, nillable=False, createable=False, updateable=False, calculated=True,
               name_field=True, label="Full Name"),
            _f("Email", "email", length=128, nillable=False),
            _f("Alias", "string", length=8),
            _f("IsActive", "boolean", label="Active", nillable=False, default=True),
            _ref("ProfileId", "Profile", "Profile", label="Profile ID"),
            *_system_fields(deleted=False),
        ], deletable=False),
        ObjectDef("Account", "Account", "Accounts", "001", [
            _id(),
            _f("Name", "string", label="Account Name", nillable=False, name_field=True, required=True),
            _f("Type", "picklist", label="Account Type", length=255, picklist=ACCOUNT_TYPES),
            _f("Industry", "picklist", picklist=INDUSTRIES),
            _f("AnnualRevenue", "currency", label="Annual Revenue", precision=18, scale=0),
            _f("NumberOfEmployees", "int", label="Employees"),
            _f("BillingCity", "string", length=40),
            _f("BillingCountry", "string", length=80),
            _f("Phone", "phone", length=40, label="Account Phone"),
            _f("Website", "url"),
            _ref("OwnerId", "User", "Owner", nillable=False),
            *_system_fields(),
        ]),
        ObjectDef("Contact", "Contact", "Contacts", "003", [
            _id(),
            _ref("AccountId", "Account", "Account"),
            _f("LastName", "string", length=80, nillable=False, required=True),
            _f("FirstName", "string", length=40),
            _f("Name", "string", length=121, label="Full Name", nillable=False, createable=False, updateable=False,
               calculated=True, name_field=True),
            _f("Title", "string", length=128),
            _f("Email", "email", length=80),
            _f("Phone", "phone", length=40, label="Business Phone"),
            _ref("OwnerId", "User", "Owner", nillable=False),
            *_system_fields(),
        ]),
        ObjectDef("Opportunity", "Opportunity", "Opportunities", "006", [
            _id(),
            _ref("AccountId", "Account", "Account"),
            _f("Name", "string", length=120, nillable=False, name_field=True, required=True),
            _f("StageName", "picklist", label="Stage", length=255, nillable=False, required=True,
               picklist=tuple(s[0] for s in OPPORTUNITY_STAGES)),
            _f("Amount", "currency", precision=18, scale=2),
            _f("Probability", "percent", label="Probability (%)", precision=3, scale=0),
            _f("CloseDate", "date", nillable=False, required=True),
            _f("Type", "picklist", label="Opportunity Type", picklist=("Existing Business", "New Business")),
            _f("LeadSource", "picklist", picklist=LEAD_SOURCES),
            _f("IsClosed", "boolean", label="Closed", nillable=False, createable=False, updateable=False),
            _f("IsWon", "boolean", label="Won", nillable=False, createable=False, updateable=False),
            _ref("OwnerId", "User", "Owner", nillable=False),
            *_system_fields(),
        ]),
        ObjectDef("Lead", "Lead", "Leads", "00Q", [
            _id(),
            _f("LastName", "string", length=80, nillable=False, required=True),
            _f("FirstName", "string", length=40),
            _f("Name", "string", length=121, label="Full Name", nillable=False, createable=False, updateable=False,
               calculated=True, name_field=True),
            _f("Company", "string", nillable=False, required=True),
            _f("Email", "email", length=80),
            _f("Status", "picklist", label="Lead Status", nillable=False, default="Open - Not Contacted",
               picklist=("Open - Not Contacted", "Working - Contacted", "Closed - Converted",
                         "Closed - Not Converted")),
            _f("LeadSource", "picklist", picklist=LEAD_SOURCES),
            _f("IsConverted", "boolean", label="Converted", nillable=False, createable=False, updateable=False),
            _ref("OwnerId", "User", "Owner", nillable=False),
            *_system_fields(),
        ]),
        ObjectDef("Case", "Case", "Cases", "500", [
            _id(),
            _f("CaseNumber", "string", length=30, label="Case Number", nillable=False, createable=False,
               updateable=False, name_field=True),
            _ref("AccountId", "Account", "Account"),
            _ref("ContactId", "Contact", "Contact"),
            _f("Subject", "string"),
            _f("Status", "picklist", default="New", picklist=("New", "Working", "Escalated", "Closed")),
            _f("Priority", "picklist", default="Medium", picklist=("High", "Medium", "Low")),
            _f("Origin", "picklist", label="Case Origin", picklist=("Phone", "Email", "Web")),
            _f("IsClosed", "boolean", label="Closed", nillable=False, createable=False, updateable=False),
            _ref("OwnerId", "User", "Owner", nillable=False),
            *_system_fields(),
        ]),
        ObjectDef("ApexClass", "Apex Class", "Apex Classes", "01p", [
            _id(),
            _f("NamespacePrefix", "string", length=15, createable=False, updateable=False),
            _f("Name", "string", nillable=False, name_field=True, required=True),
            _f("ApiVersion", "double", nillable=False, precision=18, scale=1),
            _f("Status", "picklist", nillable=False, default="Active", picklist=("Active", "Deleted")),
            _f("IsValid", "boolean", nillable=False, createable=False, updateable=False),
            _f("Body", "textarea", length=1000000, label="Body"),
            _f("LengthWithoutComments", "int", nillable=False, createable=False, updateable=False),
            *_system_fields(deleted=False),
        ], data_api=True, tooling_api=True),
    ]
    schema = {o.name: o for o in objs}
    for o in objs:
        for f in o.fields:
            if f.reference_to and f.reference_to not in schema:
                raise AssertionError(f"{o.name}.{f.name} refers to unknown {f.reference_to}")
    children = [("Account", "Contacts", "Contact", "AccountId"), ("Account", "Opportunities", "Opportunity", "AccountId"),
                ("Account", "Cases", "Case", "AccountId"), ("Contact", "Cases", "Case", "ContactId"),
                ("Profile", "Users", "User", "ProfileId")]
    for parent, rel, child, fk in children:
        schema[parent].children[rel.lower()] = (rel, child, fk)
    return schema


SCHEMA: Dict[str, ObjectDef] = _build_schema()
_SCHEMA_LOWER = {k.lower(): v for k, v in SCHEMA.items()}


def _q(identifier: str) -> str:
    """Quote a schema identifier.  Only names from SCHEMA ever get here."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", identifier):
        raise AssertionError(f"not a schema identifier: {identifier!r}")
    return f'"{identifier}"'


# --------------------------------------------------------------------------- results


@dataclass
class QueryResult:
    records: List[dict]
    total_size: int
    entity: str


_NO_SUCH_COLUMN = ("No such column '{col}' on entity '{entity}'. If you are attempting to use a custom field, be "
                   "sure to append the '__c' after the custom field name. Please reference your WSDL or the describe "
                   "call for the appropriate names.")
_BAD_TYPE = ("sObject type '{name}' is not supported. If you are attempting to use a custom object, be sure to "
             "append the '__c' after the entity name. Please reference your WSDL or the describe call for the "
             "appropriate names.")
_BAD_RELATIONSHIP = ("Didn't understand relationship '{rel}' in field path. If you are attempting to use a custom "
                     "relationship, be sure to append the '__r' after the custom relationship name. Please reference "
                     "your WSDL or the describe call for the appropriate names.")
_BAD_CHILD_RELATIONSHIP = ("Didn't understand relationship '{rel}' in FROM part of query call. If you are attempting "
                           "to use a custom relationship, be sure to append the '__r' after the custom relationship "
                           "name. Please reference your WSDL or the describe call for the appropriate names.")


# --------------------------------------------------------------------------- compiler


class _Node:
    """One record object in the output: the root, a parent (``Account``) or a child row."""

    def __init__(self, obj: ObjectDef, alias: str) -> None:
        self.obj = obj
        self.alias = alias
        self.items: List[Tuple[str, str, Any]] = []  # (kind 'v'|'p'|'c', key, payload)
        self.parents: Dict[str, "_Node"] = {}
        self.id_col = 0
        self.start = 0
        self.stop = 0
        self.fk_col = 0  # child rows: the column holding the parent id


class _ChildPlan:
    def __init__(self, rel: str, obj: ObjectDef, fk: FieldDef, query: Query) -> None:
        self.rel = rel
        self.obj = obj
        self.fk = fk
        self.query = query


class _Scope:
    """Name resolution for one FROM object: joins to parents are added on demand."""

    def __init__(self, comp: "_Compiler", obj: ObjectDef, query: Query) -> None:
        self.comp = comp
        self.obj = obj
        self.query = query
        self.alias = comp.new_alias()
        self.joins: Dict[Tuple[str, ...], Tuple[str, ObjectDef]] = {}
        self.join_sql: List[str] = []

    def join(self, rels: Sequence[str], pos: int) -> Tuple[str, ObjectDef, List[str]]:
        """Resolve relationship names from this object; returns (alias, object, canonical names)."""
        alias, obj = self.alias, self.obj
        canonical: List[str] = []
        key: Tuple[str, ...] = ()
        for rel in rels:
            fk = obj.relationships.get(rel.lower())
            if fk is None or not fk.external:
                raise error_at("INVALID_FIELD", self.query.text, pos, _BAD_RELATIONSHIP.format(rel=rel))
            key = key + (rel.lower(),)
            canonical.append(fk.relationship_name or rel)
            parent = SCHEMA[fk.reference_to or ""]
            if key not in self.joins:
                new_alias = self.comp.new_alias()
                self.join_sql.append(
                    f"LEFT JOIN {_q(parent.name)} AS {new_alias} ON {new_alias}.\"Id\" = {alias}.{_q(fk.name)}")
                self.joins[key] = (new_alias, parent)
            alias, obj = self.joins[key]
        return alias, obj, canonical

    def resolve(self, ref: FieldRef) -> Tuple[str, FieldDef, List[str], str, ObjectDef]:
        """-> (sql expression, field, canonical relationship names, table alias, object of the field)."""
        path = list(ref.path)
        if len(path) > 1 and path[0].lower() in (self.obj.name.lower(), (self.query.alias or "").lower()) \
                and path[0].lower() not in self.obj.relationships:
            path = path[1:]
        alias, obj, rels = self.join(path[:-1], ref.pos)
        fdef = obj.by_lower.get(path[-1].lower())
        if fdef is None or not fdef.external:
            raise error_at("INVALID_FIELD", self.query.text, ref.pos,
                           _NO_SUCH_COLUMN.format(col=path[-1], entity=obj.name))
        return f"{alias}.{_q(fdef.name)}", fdef, rels, alias, obj


class _Compiler:
    """Compiles one SOQL statement (with its semi-join and child subqueries) to SQL."""

    def __init__(self, store: "Store", query: Query, tooling: bool, include_deleted: bool) -> None:
        self.store = store
        self.query = query
        self.tooling = tooling
        self.include_deleted = include_deleted
        self.n = 0
        self.today = store.now().date()

    def new_alias(self) -> str:
        alias = f"t{self.n}"
        self.n += 1
        return alias

    # objects --------------------------------------------------------------
    def object(self, name: str, pos: int, text: str) -> ObjectDef:
        obj = _SCHEMA_LOWER.get(name.lower())
        if obj is None or not (obj.tooling_api if self.tooling else obj.data_api):
            raise error_at("INVALID_TYPE", text, pos, _BAD_TYPE.format(name=name))
        return obj

    def base_filter(self, scope: _Scope) -> List[str]:
        if self.include_deleted or not scope.obj.by_lower["isdeleted"].external:
            return []
        return [f"{scope.alias}.\"IsDeleted\" = 0"]

    # conditions -----------------------------------------------------------
    def condition(self, scope: _Scope, cond: Any, params: List[Any], negated: bool = False) -> str:
        if isinstance(cond, BoolOp):
            joiner = f" {cond.op} "
            return "(" + joiner.join(self.condition(scope, c, params, negated) for c in cond.items) + ")"
        if isinstance(cond, Not):
            return "(NOT " + self.condition(scope, cond.item, params, not negated) + ")"
        assert isinstance(cond, Comparison)
        sql = self.comparison(scope, cond, params)
        # SOQL is two-valued: under NOT a comparison with a null field is false, not unknown
        return f"IFNULL({sql}, 0)" if negated else sql

    def comparison(self, scope: _Scope, cmp: Comparison, params: List[Any]) -> str:
        text = self.query.text
        if isinstance(cmp.left, Aggregate):
            expr, ftype, fname = self.aggregate_expr(scope, cmp.left)
        else:
            expr, fdef, _, _, _ = scope.resolve(cmp.left)
            ftype, fname = fdef.type, fdef.name
        collate = " COLLATE NOCASE" if ftype in _TEXT_TYPES and ftype not in ("id", "reference") else ""
        op = cmp.op
        if op in ("IN", "NOT IN", "INCLUDES", "EXCLUDES"):
            if op in ("INCLUDES", "EXCLUDES"):
                raise error_at("INVALID_FIELD", text, cmp.pos,
                               f"{op} operator is only valid on multi-select picklist fields")
            if isinstance(cmp.value, Subquery):
                sub_sql = self.semi_join(scope, cmp.value, params)
                if op == "IN":
                    return f"{expr} IN ({sub_sql})"
                return f"({expr} IS NULL OR {expr} NOT IN ({sub_sql}))"
            values = cmp.value if isinstance(cmp.value, list) else [cmp.value]
            parts: List[str] = []
            has_null = False
            for v in values:
                if isinstance(v, Literal) and v.kind == "null":
                    has_null = True
                    continue
                if isinstance(v, DateLiteral):
                    start, end = self.date_bounds(v, ftype, fname, v.pos)
                    params.extend([start, end])
                    parts.append(f"({expr} >= ? AND {expr} < ?)")
                    continue
                params.append(self.coerce(v, ftype, fname))
                parts.append("?")
            plain = [p for p in parts if p == "?"]
            ranges = [p for p in parts if p != "?"]
            tests: List[str] = []
            if plain:
                tests.append(f"{expr}{collate} IN ({', '.join(plain)})")
            tests.extend(ranges)
            if has_null:
                tests.append(f"{expr} IS NULL")
            positive = "(" + " OR ".join(tests) + ")" if tests else "0"
            if op == "IN":
                return positive
            if has_null:
                return f"(NOT {positive})"
            return f"({expr} IS NULL OR NOT {positive})"
        value = cmp.value
        assert not isinstance(value, (list, Subquery))
        if isinstance(value, Literal) and value.kind == "null":
            if op == "=":
                return f"({expr} IS NULL)"
            if op == "!=":
                return f"({expr} IS NOT NULL)"
            raise error_at("MALFORMED_QUERY", text, value.pos, f"unexpected token: 'null'")
        if op == "LIKE":
            if not (isinstance(value, Literal) and value.kind == "string"):
                raise error_at("MALFORMED_QUERY", text, value.pos, "LIKE requires a string value")
            if ftype not in _TEXT_TYPES or ftype in ("id", "reference"):
                raise error_at("INVALID_FIELD", text, cmp.pos,
                               f"invalid operator on {'id' if ftype in ('id', 'reference') else ftype} field: "
                               f"{fname}")
            params.append(value.like)
            return f"({expr} LIKE ? ESCAPE '\\')"
        if isinstance(value, DateLiteral):
            start, end = self.date_bounds(value, ftype, fname, value.pos)
            if op == "=":
                params.extend([start, end])
                return f"({expr} >= ? AND {expr} < ?)"
            if op == "!=":
                params.extend([start, end])
                return f"({expr} IS NULL OR {expr} < ? OR {expr} >= ?)"
            bound, sql_op = {"<": (start, "<"), "<=": (end, "<"), ">": (end, ">="), ">=": (start, ">=")}[op]
            params.append(bound)
            return f"({expr} {sql_op} ?)"
        if ftype == "boolean" and op not in ("=", "!="):
            raise error_at("INVALID_FIELD", text, cmp.pos, f"invalid operator on boolean field: {fname}")
        params.append(self.coerce(value, ftype, fname))
        if op == "!=":
            # SOQL's != also matches nulls
            return f"({expr} IS NOT ?{collate})"
        return f"({expr} {op} ?{collate})"

    def coerce(self, v: Any, ftype: str, fname: str) -> Any:
        """A literal as the parameter for a field of type ``ftype`` (with Salesforce's type errors)."""
        text = self.query.text
        type_name = _FILTER_TYPE_NAMES.get(ftype, "string")

        def bad() -> SoqlError:
            if type_name == "string":
                return error_at("INVALID_FIELD", text, v.pos,
                                f"value of filter criterion for field '{fname}' must be of type string and should "
                                f"be enclosed in quotes")
            return error_at("INVALID_FIELD", text, v.pos,
                            f"value of filter criterion for field '{fname}' must be of type {type_name} and should "
                            f"not be enclosed in quotes")

        if isinstance(v, DateLiteral):
            raise bad()
        kind, value = v.kind, v.value
        if ftype in ("id", "reference"):
            if kind != "string":
                raise bad()
            if not is_valid_id(value):
                raise error_at("INVALID_QUERY_FILTER_OPERATOR", text, v.pos, f"invalid ID field: {value}")
            return to_18(value)
        if ftype in _TEXT_TYPES:
            if kind != "string":
                raise bad()
            return value
        if ftype == "boolean":
            if kind != "boolean":
                raise bad()
            return 1 if value else 0
        if ftype in _NUMBER_TYPES:
            if kind != "number":
                raise bad()
            return value
        if ftype == "date":
            if kind != "date":
                raise bad()
            if _parse_date(value) is None:
                raise error_at("INVALID_FIELD", text, v.pos, f"invalid date: {value}")
            return value
        if ftype == "datetime":
            if kind != "datetime":
                raise bad()
            dt = _parse_datetime(value)
            if dt is None:
                raise error_at("INVALID_FIELD", text, v.pos, f"invalid date: {value}")
            return format_datetime(dt)
        raise bad()

    def date_bounds(self, lit: DateLiteral, ftype: str, fname: str, pos: int) -> Tuple[str, str]:
        if ftype not in ("date", "datetime"):
            raise error_at("INVALID_FIELD", self.query.text, pos,
                           f"value of filter criterion for field '{fname}' must be of type "
                           f"{_FILTER_TYPE_NAMES.get(ftype, 'string')} and should not be enclosed in quotes")
        start, end = _date_range(lit, self.today)
        if ftype == "date":
            return start.isoformat(), end.isoformat()
        return (format_datetime(datetime(start.year, start.month, start.day, tzinfo=UTC)),
                format_datetime(datetime(end.year, end.month, end.day, tzinfo=UTC)))

    def semi_join(self, outer: _Scope, sub: Subquery, params: List[Any]) -> str:
        q = sub.query
        if len(q.select) != 1 or not isinstance(q.select[0], FieldRef) or q.is_aggregate:
            raise error_at("MALFORMED_QUERY", self.query.text, sub.pos,
                           "semi join sub-selects can only select one Id or reference field")
        obj = self.object(q.sobject, q.sobject_pos, self.query.text)
        scope = _Scope(self, obj, q)
        expr, fdef, _, _, _ = scope.resolve(q.select[0])
        if fdef.type not in ("id", "reference"):
            raise error_at("INVALID_FIELD", self.query.text, q.select[0].pos,
                           "The selected field in a semi join sub-select must be an Id or a reference field")
        where = self.base_filter(scope) + [f"{expr} IS NOT NULL"]
        if q.where is not None:
            where.append(self.condition(scope, q.where, params))
        sql = f"SELECT {expr} FROM {_q(obj.name)} AS {scope.alias} {' '.join(scope.join_sql)} WHERE " + " AND ".join(where)
        if q.limit is not None:
            sql += f" LIMIT {int(q.limit)}"
        return sql

    # aggregates -----------------------------------------------------------
    def aggregate_expr(self, scope: _Scope, agg: Aggregate) -> Tuple[str, str, str]:
        """-> (sql, result field type, display name)."""
        if agg.field is None:
            return "COUNT(*)", "int", "COUNT()"
        expr, fdef, _, _, _ = scope.resolve(agg.field)
        fn = agg.function
        display = f"{fn}({agg.field.name})"
        if fn == "COUNT":
            return f"COUNT({expr})", "int", display
        if fn == "COUNT_DISTINCT":
            return f"COUNT(DISTINCT {expr})", "int", display
        if fn in ("SUM", "AVG"):
            if fdef.type not in _NUMBER_TYPES:
                raise error_at("INVALID_FIELD", self.query.text, agg.pos,
                               f"field {fdef.name} does not support aggregate operator {fn}")
            return f"{fn}({expr})", ("double" if fn == "AVG" else fdef.type), display
        if fdef.type in ("boolean", "textarea"):
            raise error_at("INVALID_FIELD", self.query.text, agg.pos,
                           f"field {fdef.name} does not support aggregate operator {fn}")
        return f"{fn}({expr})", fdef.type, display

    def order_sql(self, scope: _Scope, items: Sequence[_soql.OrderItem]) -> List[str]:
        out: List[str] = []
        for item in items:
            if isinstance(item.expr, Aggregate):
                expr, ftype, _ = self.aggregate_expr(scope, item.expr)
            else:
                expr, fdef, _, _, _ = scope.resolve(item.expr)
                ftype = fdef.type
            nulls_first = item.effective_nulls_first
            # sqlite: nulls sort first ascending, last descending; add a key only when that differs
            if nulls_first != (not item.descending):
                out.append(f"({expr} IS NULL) {'DESC' if nulls_first else 'ASC'}")
            collate = " COLLATE NOCASE" if ftype in _TEXT_TYPES and ftype not in ("id", "reference") else ""
            out.append(f"{expr}{collate} {'DESC' if item.descending else 'ASC'}")
        return out


# --------------------------------------------------------------------------- store


def _check_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class Store:
    """Records of the local org, thread-safe (one lock around one in-memory sqlite connection)."""

    def __init__(self, *, org_id: str, api_version: str = "62.0", org_name: str = "sfjwt local org") -> None:
        self.api_version = api_version
        self.org_id = to_18(org_id) if len(org_id) == 15 else org_id
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode = OFF")
        self._conn.execute("PRAGMA synchronous = OFF")
        self._counter = itertools.count(1)
        self._case_numbers = itertools.count(1001)
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)
        #: the owner given to new records that name none (the first user inserted)
        self.default_owner_id: Optional[str] = None
        self._create_tables()
        now = format_datetime(self.now())
        with self._lock:
            self._conn.execute(
                'INSERT INTO "Organization" ("Id", "Name", "IsSandbox", "InstanceName", "OrganizationType", '
                '"CreatedDate", "LastModifiedDate", "SystemModstamp", "IsDeleted") VALUES (?, ?, 0, ?, ?, ?, ?, ?, 0)',
                (self.org_id, org_name, "LOCAL1", "Developer Edition", now, now, now))
        self.admin_profile_id, self.standard_profile_id = self.insert(
            "Profile", [{"Name": "System Administrator"}, {"Name": "Standard User"}])

    # basics ---------------------------------------------------------------
    def now(self) -> datetime:
        return self.clock()

    def _create_tables(self) -> None:
        with self._lock:
            for obj in SCHEMA.values():
                cols = []
                for f in obj.fields:
                    sql_type = _SQL_TYPES.get(f.type, "TEXT")
                    cols.append(f"{_q(f.name)} {sql_type}" + (" PRIMARY KEY" if f.name == "Id" else ""))
                self._conn.execute(f"CREATE TABLE {_q(obj.name)} ({', '.join(cols)})")
                for f in obj.fields:
                    if f.type == "reference":
                        self._conn.execute(
                            f"CREATE INDEX {_q('ix_' + obj.name + '_' + f.name)} ON {_q(obj.name)} ({_q(f.name)})")

    def new_id(self, sobject: str) -> str:
        obj = self._object(sobject)
        return to_18(obj.key_prefix + "5g" + _base62(next(self._counter), 10))

    def _object(self, name: str, *, tooling: bool = False) -> ObjectDef:
        obj = _SCHEMA_LOWER.get(str(name).lower())
        if obj is None or not (obj.tooling_api if tooling else obj.data_api):
            raise SoqlError("NOT_FOUND", "The requested resource does not exist", 404)
        return obj

    def has_object(self, name: str, *, tooling: bool = False) -> bool:
        obj = _SCHEMA_LOWER.get(str(name).lower())
        return obj is not None and (obj.tooling_api if tooling else obj.data_api)

    def object_name(self, name: str) -> str:
        """The canonical spelling of an object name (``account`` -> ``Account``); NOT_FOUND otherwise."""
        return self._object(name).name

    def sobject_url(self, sobject: str, record_id: str = "", *, tooling: bool = False) -> str:
        base = f"/services/data/v{self.api_version}/{'tooling/' if tooling else ''}sobjects/{sobject}"
        return f"{base}/{record_id}" if record_id else base

    # writes ---------------------------------------------------------------
    def _coerce_value(self, obj: ObjectDef, f: FieldDef, value: Any) -> Any:
        if value is None:
            return None
        t = f.type

        def bad(kind: str = "") -> SoqlError:
            jtype = {"boolean": "boolean", "int": "int", "double": "double", "currency": "double",
                     "percent": "double", "date": "date", "datetime": "datetime"}.get(t, "String")
            return SoqlError("JSON_PARSER_ERROR",
                             f"Cannot deserialize instance of {jtype} from VALUE_STRING value {value} or request "
                             f"may be missing a required field", fields=[f.name])

        if t == "boolean":
            if isinstance(value, bool):
                return 1 if value else 0
            if isinstance(value, str) and value.lower() in ("true", "false"):
                return 1 if value.lower() == "true" else 0
            if _check_int(value) and value in (0, 1):
                return value
            raise bad()
        if t == "int":
            if _check_int(value):
                return value
            if isinstance(value, float) and value.is_integer():
                return int(value)
            if isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value.strip()):
                return int(value)
            raise bad()
        if t in ("double", "currency", "percent"):
            if isinstance(value, bool):
                raise bad()
            if isinstance(value, (int, float)):
                return float(value)
            try:
                return float(str(value))
            except ValueError:
                raise bad() from None
        if t == "date":
            if isinstance(value, datetime):
                return value.date().isoformat()
            if isinstance(value, date):
                return value.isoformat()
            if isinstance(value, str):
                d = _parse_date(value)
                if d is not None:
                    return d
            raise bad()
        if t == "datetime":
            if isinstance(value, datetime):
                return format_datetime(value)
            if isinstance(value, date):
                return format_datetime(datetime(value.year, value.month, value.day, tzinfo=UTC))
            if isinstance(value, str):
                dt = _parse_datetime(value)
                if dt is not None:
                    return format_datetime(dt)
            raise bad()
        if t in ("id", "reference"):
            if not isinstance(value, str) or not is_valid_id(value):
                raise SoqlError("MALFORMED_ID", f"{f.label}: id value of incorrect type: {value}", fields=[f.name])
            value = to_18(value)
            target = SCHEMA[f.reference_to] if f.reference_to else obj
            if not value.startswith(target.key_prefix):
                raise SoqlError("FIELD_INTEGRITY_EXCEPTION", f"{f.label}: id value of incorrect type: {value}",
                                fields=[f.name])
            return value
        if not isinstance(value, str):
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                value = str(value)
            else:
                raise bad()
        if f.length and len(value) > f.length:
            raise SoqlError("STRING_TOO_LONG",
                            f"{f.label}: data value too large: {value[:40]} (max length={f.length})", fields=[f.name])
        return value

    def _derive(self, obj: ObjectDef, row: Dict[str, Any]) -> None:
        """Calculated and derived fields (Name, IsWon/IsClosed, ...)."""
        name_field = obj.by_lower.get("name")
        if name_field is not None and name_field.calculated:
            first, last = row.get("FirstName"), row.get("LastName")
            row["Name"] = " ".join(p for p in (first, last) if p) or None
        if obj.name == "Opportunity":
            stage = _STAGES.get(str(row.get("StageName") or "").lower())
            row["IsClosed"] = 1 if stage and stage[2] else 0
            row["IsWon"] = 1 if stage and stage[3] else 0
        elif obj.name == "Case":
            row["IsClosed"] = 1 if str(row.get("Status") or "").lower() == "closed" else 0
        elif obj.name == "Lead":
            row["IsConverted"] = 1 if row.get("Status") == "Closed - Converted" else 0
        elif obj.name == "ApexClass":
            body = row.get("Body") or ""
            row["IsValid"] = 1
            row["LengthWithoutComments"] = len(re.sub(r"/\*.*?\*/|//[^\n]*", "", body, flags=re.S))

    def _prepare(self, obj: ObjectDef, record: Dict[str, Any], *, creating: bool) -> Dict[str, Any]:
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
            if not allowed and not (creating and f.name in ("CreatedDate", "LastModifiedDate")):
                readonly.append(f.name)
                continue
            out[f.name] = self._coerce_value(obj, f, value)
        if readonly:
            raise SoqlError("INVALID_FIELD_FOR_INSERT_UPDATE",
                            f"Unable to create/update fields: {', '.join(readonly)}. Please check the security "
                            f"settings of this field and verify that it is read/write for your profile or "
                            f"permission set.", fields=readonly)
        return out

    def insert(self, sobject: str, records: Iterable[Dict[str, Any]]) -> List[str]:
        """Create records; returns their 18-character ids.  All or nothing: any error inserts none."""
        obj = self._object(sobject)
        if not obj.createable:
            raise SoqlError("CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY", f"entity type {obj.name} does not support insert")
        now = format_datetime(self.now())
        columns = [f.name for f in obj.fields]
        rows: List[Tuple[Any, ...]] = []
        ids: List[str] = []
        with self._lock:
            for record in records:
                values = self._prepare(obj, record, creating=True)
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
                    stage = _STAGES.get(str(values.get("StageName")).lower())
                    if stage:
                        values["Probability"] = float(stage[1])
                if obj.name == "Case":
                    values["CaseNumber"] = f"{next(self._case_numbers):08d}"
                if obj.name == "User" and not values.get("Alias"):
                    values["Alias"] = (str(values.get("FirstName") or "")[:1] + str(values.get("LastName")))[:8]
                values["CreatedDate"] = values.get("CreatedDate") or now
                values["LastModifiedDate"] = values.get("LastModifiedDate") or values["CreatedDate"]
                values["SystemModstamp"] = values["LastModifiedDate"]
                values["IsDeleted"] = 0
                self._derive(obj, values)
                rid = to_18(obj.key_prefix + "5g" + _base62(next(self._counter), 10))
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
        prefix = obj.key_prefix + "5g"
        ids: List[str] = []
        out: List[Tuple[Any, ...]] = []
        with self._lock:
            counter = self._counter
            for row in rows:
                rid = to_18(prefix + _base62(next(counter), 10))
                ids.append(rid)
                out.append((rid, *row) + tail)
            self._insert_rows(obj, all_columns, out)
        return ids

    def _insert_rows(self, obj: ObjectDef, columns: Sequence[str], rows: Sequence[Tuple[Any, ...]]) -> None:
        sql = (f"INSERT INTO {_q(obj.name)} ({', '.join(_q(c) for c in columns)}) "
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
        if not isinstance(record_id, str) or not is_valid_id(record_id):
            raise SoqlError("NOT_FOUND", f"Provided external ID field does not exist or is not accessible: {record_id}",
                            404)
        rid = to_18(record_id)
        cols = [f.name for f in obj.fields]
        with self._lock:
            cur = self._conn.execute(
                f"SELECT {', '.join(_q(c) for c in cols)} FROM {_q(obj.name)} WHERE \"Id\" = ?", (rid,))
            row = cur.fetchone()
        if row is None:
            raise SoqlError("NOT_FOUND", "The requested resource does not exist", 404)
        return dict(zip(cols, row))

    def _output_value(self, f: FieldDef, value: Any) -> Any:
        if f.type == "boolean" and value is not None:
            return bool(value)
        return value

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
                    raise SoqlError("INVALID_FIELD", _NO_SUCH_COLUMN.format(col=name, entity=obj.name))
                wanted.append(f)
        else:
            wanted = obj.public_fields
        out: dict = {"attributes": {"type": obj.name, "url": self.sobject_url(obj.name, row["Id"], tooling=tooling)}}
        for f in wanted:
            out[f.name] = self._output_value(f, row[f.name])
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
            missing = [k for k, v in changes.items() if v in (None, "") and obj.by_lower[k.lower()].required]
            if missing:
                raise SoqlError("REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(missing)}]",
                                fields=missing)
            row.update(changes)
            self._derive(obj, row)
            now = format_datetime(self.now())
            row["LastModifiedDate"] = row["SystemModstamp"] = now
            cols = [f.name for f in obj.fields if f.name != "Id"]
            self._conn.execute(
                f"UPDATE {_q(obj.name)} SET {', '.join(_q(c) + ' = ?' for c in cols)} WHERE \"Id\" = ?",
                [row[c] for c in cols] + [row["Id"]])

    def delete(self, sobject: str, record_id: str) -> None:
        """Soft delete (IsDeleted = true; still visible to queryAll), cascading to Contacts/Opportunities/Cases."""
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
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _soft_delete(self, obj: ObjectDef, ids: List[str], now: str) -> None:
        if not ids:
            return
        if not obj.by_lower["isdeleted"].external:
            self._conn.execute(f"DELETE FROM {_q(obj.name)} WHERE \"Id\" IN (SELECT value FROM json_each(?))",
                               (json.dumps(ids),))
            return
        self._conn.execute(
            f"UPDATE {_q(obj.name)} SET \"IsDeleted\" = 1, \"LastModifiedDate\" = ?, \"SystemModstamp\" = ? "
            f"WHERE \"Id\" IN (SELECT value FROM json_each(?))", (now, now, json.dumps(ids)))
        if obj.name == "Account":
            for child in ("Contact", "Opportunity", "Case"):
                cur = self._conn.execute(
                    f"SELECT \"Id\" FROM {_q(child)} WHERE \"IsDeleted\" = 0 AND \"AccountId\" IN "
                    f"(SELECT value FROM json_each(?))", (json.dumps(ids),))
                self._soft_delete(SCHEMA[child], [r[0] for r in cur.fetchall()], now)

    def count(self, sobject: str, *, include_deleted: bool = False) -> int:
        obj = self._object(sobject)
        where = "" if include_deleted or not obj.by_lower["isdeleted"].external else ' WHERE "IsDeleted" = 0'
        with self._lock:
            return int(self._conn.execute(f"SELECT COUNT(*) FROM {_q(obj.name)}{where}").fetchone()[0])

    # describe -------------------------------------------------------------
    def _object_urls(self, obj: ObjectDef, tooling: bool) -> Dict[str, str]:
        base = self.sobject_url(obj.name, tooling=tooling)
        return {"rowTemplate": f"{base}/{{ID}}", "defaultValues": f"{base}/defaultValues?recordTypeId&fields",
                "describe": f"{base}/describe", "sobject": base}

    def _global_entry(self, obj: ObjectDef, tooling: bool) -> dict:
        return {
            "activateable": False, "associateEntityType": None, "associateParentEntity": None,
            "createable": obj.createable, "custom": False, "customSetting": False, "deepCloneable": False,
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
        objs = [o for o in SCHEMA.values() if (o.tooling_api if tooling else o.data_api)]
        return {"encoding": "UTF-8", "maxBatchSize": 200,
                "sobjects": [self._global_entry(o, tooling) for o in sorted(objs, key=lambda o: o.name)]}

    def _describe_field(self, obj: ObjectDef, f: FieldDef) -> dict:
        t = f.type
        text = t in _TEXT_TYPES
        return {
            "aggregatable": t not in ("textarea", "boolean"), "aiPredictionField": False, "autoNumber": f.name == "CaseNumber",
            "byteLength": f.length * 3 if text else 0, "calculated": f.calculated, "calculatedFormula": None,
            "cascadeDelete": False, "caseSensitive": False, "compoundFieldName": None, "controllerName": None,
            "createable": f.createable, "custom": False,
            "defaultValue": (bool(f.default) if t == "boolean" and f.default is not None else
                             (False if t == "boolean" else None)),
            "defaultValueFormula": None, "defaultedOnCreate": f.default is not None or t == "boolean" or f.name in (
                "Id", "OwnerId") or f.name in _AUDIT_FIELDS,
            "dependentPicklist": False, "deprecatedAndHidden": False,
            "digits": 9 if t == "int" else 0, "displayLocationInDecimal": False, "encrypted": False,
            "externalId": False, "extraTypeInfo": None, "filterable": t != "textarea", "filteredLookupInfo": None,
            "formulaTreatNullNumberAsZero": False, "groupable": t not in ("double", "currency", "percent", "textarea",
                                                                          "datetime"),
            "highScaleNumber": False, "htmlFormatted": False, "idLookup": t == "id" or f.name in ("Username", "Email")
            and obj.name == "User", "inlineHelpText": None, "label": f.label, "length": f.length if text else 0,
            "mask": None, "maskType": None, "name": f.name, "nameField": f.name_field, "namePointing": False,
            "nillable": f.nillable, "permissionable": f.nillable and f.createable and t != "id",
            "picklistValues": [{"active": True, "defaultValue": v == f.default, "label": v, "validFor": None,
                                "value": v} for v in f.picklist],
            "polymorphicForeignKey": False, "precision": f.precision, "queryByDistance": False,
            "referenceTargetField": None, "referenceTo": [f.reference_to] if f.reference_to else [],
            "relationshipName": f.relationship_name, "relationshipOrder": None,
            "restrictedDelete": False, "restrictedPicklist": False, "scale": f.scale, "searchPrefilterable": False,
            "soapType": _SOAP_TYPES[t], "sortable": t != "textarea", "type": t,
            "unique": f.name == "Username", "updateable": f.updateable, "writeRequiresMasterRead": False,
        }

    def describe(self, sobject: str, *, tooling: bool = False) -> dict:
        """GET /sobjects/<type>/describe.  Unknown type: SoqlError NOT_FOUND (404)."""
        obj = self._object(sobject, tooling=tooling)
        out = self._global_entry(obj, tooling)
        children = []
        for rel, child, fk in obj.children.values():
            children.append({"cascadeDelete": obj.name == "Account" and child != "Case", "childSObject": child,
                             "deprecatedAndHidden": False, "field": fk, "junctionIdListNames": [],
                             "junctionReferenceTo": [], "relationshipName": rel, "restrictedDelete": False})
        out.update({
            "actionOverrides": [], "childRelationships": children, "compactLayoutable": not tooling,
            "defaultImplementation": None, "extendedBy": None, "extendsInterfaces": None,
            "fields": [self._describe_field(obj, f) for f in obj.public_fields], "implementedBy": None,
            "implementsInterfaces": None, "listviewable": None, "lookupLayoutable": None, "namedLayoutInfos": [],
            "networkScopeFieldName": None, "recordTypeInfos": [], "searchLayoutable": not tooling,
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
        comp = _Compiler(self, q, tooling, include_deleted)
        obj = comp.object(q.sobject, q.sobject_pos, q.text)
        if q.is_count_only:
            return self._count_query(comp, obj, q)
        if q.is_aggregate:
            return self._aggregate_query(comp, obj, q)
        return self._record_query(comp, obj, q)

    # plain records
    def _plan(self, comp: _Compiler, scope: _Scope, q: Query, allow_children: bool
              ) -> Tuple[_Node, List[str], List[_ChildPlan]]:
        root = _Node(scope.obj, scope.alias)
        children: List[_ChildPlan] = []
        seen: set = set()
        for item in q.select:
            if isinstance(item, Subquery):
                sub = item.query
                rel = scope.obj.children.get(sub.sobject.lower())
                if rel is None or not allow_children:
                    raise error_at("INVALID_TYPE", q.text, sub.sobject_pos,
                                   _BAD_CHILD_RELATIONSHIP.format(rel=sub.sobject))
                rel_name, child_name, fk_name = rel
                if rel_name.lower() in seen:
                    raise error_at("MALFORMED_QUERY", q.text, item.pos, f"duplicate field selected: {rel_name}")
                seen.add(rel_name.lower())
                child_obj = SCHEMA[child_name]
                plan = _ChildPlan(rel_name, child_obj, child_obj.by_lower[fk_name.lower()], sub)
                children.append(plan)
                root.items.append(("c", rel_name, plan))
                continue
            if isinstance(item, Aggregate):  # pragma: no cover - handled by is_aggregate
                raise error_at("MALFORMED_QUERY", q.text, item.pos, "unexpected aggregate")
            expr, fdef, rels, alias, fobj = scope.resolve(item)
            full = ".".join(rels + [fdef.name])
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
                    nxt = _Node(pobj, palias)
                    node.parents[rel.lower()] = nxt
                    node.items.append(("p", rel, nxt))
                node = nxt
            node.items.append(("v", fdef.name, (expr, fdef)))
        columns: List[str] = [f"{scope.alias}.\"Id\""]

        def layout(node: _Node) -> None:
            node.start = len(columns)
            for kind, _key, payload in node.items:
                if kind == "v":
                    columns.append(payload[0])
                elif kind == "p":
                    payload.id_col = len(columns)
                    columns.append(f"{payload.alias}.\"Id\"")
                else:
                    columns.append(f"{scope.alias}.\"Id\"")
            node.stop = len(columns)
            for kind, _key, payload in node.items:
                if kind == "p":
                    layout(payload)

        layout(root)
        return root, columns, children

    def _builder(self, node: _Node, tooling: bool) -> Callable[[Sequence[Any]], dict]:
        type_name = node.obj.name
        prefix = self.sobject_url(type_name, tooling=tooling) + "/"
        keys = tuple(key for _k, key, _p in node.items)
        start, stop, id_col = node.start, node.stop, node.id_col
        bools = tuple(key for kind, key, p in node.items if kind == "v" and p[1].type == "boolean")
        parents = tuple((key, self._builder(p, tooling)) for kind, key, p in node.items if kind == "p")

        def build(row: Sequence[Any]) -> dict:
            rec = {"attributes": {"type": type_name, "url": prefix + row[id_col]}}
            rec.update(zip(keys, row[start:stop]))
            for k in bools:
                v = rec[k]
                if v is not None:
                    rec[k] = v == 1
            for k, b in parents:
                if rec[k] is not None:
                    rec[k] = b(row)
            return rec

        return build

    def _select_sql(self, comp: _Compiler, scope: _Scope, q: Query, columns: List[str], params: List[Any],
                    extra_where: Sequence[str] = (), limit: bool = True) -> str:
        where = comp.base_filter(scope) + list(extra_where)
        if q.where is not None:
            where.append(comp.condition(scope, q.where, params))
        order = comp.order_sql(scope, q.order_by) + [f"{scope.alias}.rowid"]
        sql = (f"SELECT {', '.join(columns)} FROM {_q(scope.obj.name)} AS {scope.alias} "
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

    def _record_query(self, comp: _Compiler, obj: ObjectDef, q: Query) -> QueryResult:
        for item in q.select:
            if isinstance(item, FieldRef) and item.alias:
                raise error_at("MALFORMED_QUERY", q.text, item.pos, f"unexpected token: '{item.alias}'")
        scope = _Scope(comp, obj, q)
        root, columns, children = self._plan(comp, scope, q, allow_children=True)
        params: List[Any] = []
        sql = self._select_sql(comp, scope, q, columns, params)
        child_sql = []
        for plan in children:
            child_sql.append(self._child_sql(comp, plan, q))
        build = self._builder(root, comp.tooling)
        with self._lock:
            rows = self._conn.execute(sql, params).fetchall()
            child_rows = []
            if children and rows:
                ids = json.dumps([r[0] for r in rows])
                for (csql, cparams, _croot, _plan) in child_sql:
                    child_rows.append(self._conn.execute(csql, _fill(cparams, ids)).fetchall())
        records = [build(r) for r in rows]
        if children and records:
            for (_sql, _params, croot, plan), crows in zip(child_sql, child_rows):
                self._attach_children(records, plan, croot, crows, comp.tooling)
        return QueryResult(records, len(records), obj.name)

    def _child_sql(self, comp: _Compiler, plan: _ChildPlan, parent_q: Query) -> Tuple[str, List[Any], _Node, _ChildPlan]:
        q = plan.query
        if q.is_aggregate:
            raise error_at("MALFORMED_QUERY", parent_q.text, q.sobject_pos,
                           "aggregate functions are not supported in child relationship subqueries")
        for item in q.select:
            if isinstance(item, FieldRef) and item.alias:
                raise error_at("MALFORMED_QUERY", parent_q.text, item.pos, f"unexpected token: '{item.alias}'")
        scope = _Scope(comp, plan.obj, q)
        root, columns, _ = self._plan(comp, scope, q, allow_children=False)
        fk_col = len(columns)
        columns = columns + [f"{scope.alias}.{_q(plan.fk.name)}"]
        params: List[Any] = []
        # the parent ids are bound as one JSON array; its placeholder is marked with a sentinel
        sql = self._select_sql(comp, scope, q, columns, params,
                               extra_where=[f"{scope.alias}.{_q(plan.fk.name)} IN (SELECT value FROM json_each(?))"],
                               limit=False)
        root.fk_col = fk_col
        # json_each placeholder comes after the base filter and before the user's WHERE params
        return sql, [_PARENT_IDS] + params, root, plan

    def _attach_children(self, records: List[dict], plan: _ChildPlan, root: _Node, rows: List[Any],
                         tooling: bool) -> None:
        build = self._builder(root, tooling)
        fk_col = root.fk_col
        grouped: Dict[str, List[Any]] = {}
        for r in rows:
            grouped.setdefault(r[fk_col], []).append(r)
        q = plan.query
        offset = q.offset or 0
        key = plan.rel
        for rec in records:
            kids = grouped.get(rec[key])
            if kids and (offset or q.limit is not None):
                kids = kids[offset:] if q.limit is None else kids[offset:offset + q.limit]
            rec[key] = {"totalSize": len(kids), "done": True, "records": [build(r) for r in kids]} if kids else None

    # COUNT()
    def _count_query(self, comp: _Compiler, obj: ObjectDef, q: Query) -> QueryResult:
        scope = _Scope(comp, obj, q)
        params: List[Any] = []
        where = comp.base_filter(scope)
        if q.where is not None:
            where.append(comp.condition(scope, q.where, params))
        inner = f"SELECT 1 FROM {_q(obj.name)} AS {scope.alias} {' '.join(scope.join_sql)}"
        if where:
            inner += " WHERE " + " AND ".join(where)
        if q.group_by:
            inner += " GROUP BY " + ", ".join(scope.resolve(g)[0] for g in q.group_by)
        inner += self._limit_sql(q, params)
        with self._lock:
            total = self._conn.execute(f"SELECT COUNT(*) FROM ({inner})", params).fetchone()[0]
        return QueryResult([], int(total), obj.name)

    # aggregates
    def _aggregate_plan(self, comp: _Compiler, scope: _Scope, q: Query) -> List[Tuple[str, str, str, str, bool]]:
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
                expr, fdef, rels, _, _ = scope.resolve(item)
                if expr not in grouped:
                    raise error_at("MALFORMED_QUERY", q.text, item.pos,
                                   f"Field must be grouped or aggregated: {fdef.name}")
                out.append((item.alias or fdef.name, expr, fdef.type, ".".join(rels + [fdef.name]), False))
            if out[-1][0].lower() in keys:
                raise error_at("MALFORMED_QUERY", q.text, getattr(item, "pos", 0),
                               f"duplicate alias: {out[-1][0]}")
            keys.add(out[-1][0].lower())
        return out

    def _aggregate_sql(self, comp: _Compiler, scope: _Scope, q: Query, plan: List[Tuple[str, str, str, str, bool]],
                       params: List[Any]) -> str:
        where = comp.base_filter(scope)
        if q.where is not None:
            where.append(comp.condition(scope, q.where, params))
        sql = (f"SELECT {', '.join(p[1] for p in plan)} FROM {_q(scope.obj.name)} AS {scope.alias} "
               f"{' '.join(scope.join_sql)}")
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

    def _aggregate_query(self, comp: _Compiler, obj: ObjectDef, q: Query) -> QueryResult:
        scope = _Scope(comp, obj, q)
        plan = self._aggregate_plan(comp, scope, q)
        params: List[Any] = []
        sql = self._aggregate_sql(comp, scope, q, plan, params)
        with self._lock:
            rows = self._conn.execute(sql, params).fetchall()
        keys = tuple(p[0] for p in plan)
        bools = tuple(p[0] for p in plan if p[2] == "boolean")
        floats = tuple(p[0] for p in plan if p[2] in ("double", "currency", "percent"))
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
            records.append(rec)
        return QueryResult(records, len(records), obj.name)

    # flat rows for Bulk CSV
    def query_flat(self, soql: str, *, include_deleted: bool = False) -> Tuple[List[str], List[Tuple[str, ...]]]:
        """(column names, rows of strings) the way Bulk API 2.0 CSV shows them.

        Parent fields are flattened to ``Account.Name`` columns; booleans are ``true``/``false``,
        nulls empty strings.  Child subqueries are refused (Bulk API doesn't support them).
        """
        q = _soql.parse(soql)
        comp = _Compiler(self, q, False, include_deleted)
        obj = comp.object(q.sobject, q.sobject_pos, q.text)
        if any(isinstance(i, Subquery) for i in q.select):
            raise SoqlError("INVALIDJOB", "Cannot process query with relationship subqueries in Bulk API")
        if q.is_count_only:
            raise SoqlError("INVALIDJOB", "Bulk API does not support the COUNT() function: use COUNT(Id)")
        scope = _Scope(comp, obj, q)
        params: List[Any] = []
        if q.is_aggregate:
            plan = self._aggregate_plan(comp, scope, q)
            names = [p[0] for p in plan]
            exprs = [(p[1], p[2]) for p in plan]
            sql = self._aggregate_sql(comp, scope, q, [(p[0], _csv_expr(p[1], p[2]), p[2], p[3], p[4]) for p in plan],
                                      params)
        else:
            names = []
            exprs = []
            seen: set = set()
            for item in q.select:
                assert isinstance(item, FieldRef)
                if item.alias:
                    raise error_at("MALFORMED_QUERY", q.text, item.pos, f"unexpected token: '{item.alias}'")
                expr, fdef, rels, _, _ = scope.resolve(item)
                name = ".".join(rels + [fdef.name])
                if name.lower() in seen:
                    raise error_at("MALFORMED_QUERY", q.text, item.pos, f"duplicate field selected: {name}")
                seen.add(name.lower())
                names.append(name)
                exprs.append((expr, fdef.type))
            sql = self._select_sql(comp, scope, q, [_csv_expr(e, t) for e, t in exprs], params)
        with self._lock:
            rows = self._conn.execute(sql, params).fetchall()
        return names, rows

    # columns=true
    def column_metadata(self, soql: str, *, tooling: bool = False) -> dict:
        """The response of GET /query?q=...&columns=true (no records)."""
        q = _soql.parse(soql)
        comp = _Compiler(self, q, tooling, False)
        obj = comp.object(q.sobject, q.sobject_pos, q.text)
        scope = _Scope(comp, obj, q)
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

    def _columns_for(self, comp: _Compiler, scope: _Scope, q: Query) -> List[dict]:
        out: List[dict] = []
        by_rel: Dict[Tuple[str, ...], dict] = {}
        for item in q.select:
            if isinstance(item, Subquery):
                rel_name, child, _fk = scope.obj.children[item.query.sobject.lower()]
                child_scope = _Scope(comp, SCHEMA[child], item.query)
                col = _column(rel_name, rel_name, None, aggregate=True, insertable=False, updatable=False)
                col["joinColumns"] = self._columns_for(comp, child_scope, item.query)
                out.append(col)
                continue
            assert isinstance(item, FieldRef)
            _expr, fdef, rels, _alias, _obj = scope.resolve(item)
            target = out
            key: Tuple[str, ...] = ()
            prefix: List[str] = []
            for rel in rels:
                key += (rel.lower(),)
                prefix.append(rel)
                col = by_rel.get(key)
                if col is None:
                    col = _column(rel, ".".join(prefix), None, aggregate=False, insertable=False, updatable=False)
                    by_rel[key] = col
                    target.append(col)
                target = col["joinColumns"]
            target.append(_column(fdef.name, ".".join(prefix + [fdef.name]), fdef.type, aggregate=False,
                                  insertable=fdef.createable, updatable=fdef.updateable))
        return out


_PARENT_IDS = object()


def _fill(params: List[Any], ids: str) -> List[Any]:
    return [ids if p is _PARENT_IDS else p for p in params]


def _csv_expr(expr: str, ftype: str) -> str:
    """SQL giving the Bulk CSV text of a value: '' for null, true/false for booleans."""
    if ftype == "boolean":
        return f"CASE WHEN {expr} IS NULL THEN '' WHEN {expr} THEN 'true' ELSE 'false' END"
    if ftype in _TEXT_TYPES or ftype in ("date", "datetime"):
        return f"IFNULL({expr}, '')"
    return f"IFNULL(CAST({expr} AS TEXT), '')"


def _column(name: str, display: str, ftype: Optional[str], *, aggregate: bool, insertable: bool,
            updatable: bool) -> dict:
    return {
        "aggregate": aggregate,
        "apexType": _APEX_TYPES.get(ftype) if ftype else None,
        "booleanType": ftype == "boolean",
        "columnName": name,
        "custom": False,
        "displayName": display,
        "foreignKeyName": None,
        "insertable": insertable,
        "joinColumns": [],
        "numberType": ftype in _NUMBER_TYPES if ftype else False,
        "textType": ftype in _TEXT_TYPES and ftype not in ("id", "reference") if ftype else False,
        "updatable": updatable,
    }
