"""The local org's schema: objects (:class:`ObjectDef`), fields (:class:`FieldDef`), field types.

:data:`SCHEMA` is the fixed set of standard objects. Field types are Salesforce's describe
types (``string``, ``picklist``, ``reference``, ``currency``, ``date``, ``datetime``...); the
tables below map them to SOAP, Apex and SQLite types.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

__all__ = ["FieldDef", "ObjectDef", "SCHEMA", "SCHEMA_LOWER", "OPPORTUNITY_STAGES", "quote_identifier"]

# --------------------------------------------------------------------------- schema

TEXT_TYPES = frozenset({"id", "reference", "string", "picklist", "textarea", "email", "phone", "url", "combobox"})
NUMBER_TYPES = frozenset({"int", "double", "currency", "percent"})
SOAP_TYPES = {
    "id": "tns:ID", "reference": "tns:ID", "string": "xsd:string", "picklist": "xsd:string",
    "textarea": "xsd:string", "email": "xsd:string", "phone": "xsd:string", "url": "xsd:string",
    "combobox": "xsd:string", "boolean": "xsd:boolean", "int": "xsd:int", "double": "xsd:double",
    "currency": "xsd:double", "percent": "xsd:double", "date": "xsd:date", "datetime": "xsd:dateTime",
}
APEX_TYPES = {
    "id": "Id", "reference": "Id", "string": "String", "picklist": "String", "textarea": "String",
    "email": "String", "phone": "String", "url": "String", "combobox": "String", "boolean": "Boolean",
    "int": "Integer", "double": "Double", "currency": "Decimal", "percent": "Decimal", "date": "Date",
    "datetime": "Datetime",
}
# how filter type errors name a type ("must be of type double")
FILTER_TYPE_NAMES = {
    "id": "id", "reference": "id", "boolean": "boolean", "int": "int", "double": "double",
    "currency": "double", "percent": "double", "date": "date", "datetime": "dateTime",
}
SQL_TYPES = {"boolean": "INTEGER", "int": "INTEGER", "double": "REAL", "currency": "REAL", "percent": "REAL"}
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

    def __post_init__(self) -> None:
        if not self.label:
            base = self.name[:-2] if self.type == "reference" and self.name.endswith("Id") else self.name
            self.label = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", base) if self.name != "Id" else "Record ID"
            if self.type == "reference":
                self.label += " ID"
        if self.type in TEXT_TYPES and not self.length:
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
STAGES = {s[0].lower(): s for s in OPPORTUNITY_STAGES}

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
SCHEMA_LOWER = {k.lower(): v for k, v in SCHEMA.items()}


def quote_identifier(identifier: str) -> str:
    """Quote a schema identifier.  Only names from SCHEMA ever get here."""
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
