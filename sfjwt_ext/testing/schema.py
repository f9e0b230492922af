"""The local org's schema: objects (:class:`ObjectDef`), fields (:class:`FieldDef`), field types.

:func:`standard_objects` builds the standard objects; each org's :class:`Schema` holds a copy of
its own, plus the custom objects and fields a test adds (``make_field``, ``custom_object``). Field types are Salesforce's describe
types (``string``, ``picklist``, ``reference``, ``currency``, ``date``, ``datetime``...); the
tables below map them to SOAP, Apex and SQLite types.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
import threading
from typing import Any, Dict, List, Optional, Sequence, Tuple

__all__ = ["FieldDef", "ObjectDef", "Schema", "SchemaError", "make_field", "custom_object", "standard_objects",
           "OPPORTUNITY_STAGES", "quote_identifier"]

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
    metadata_changed: Optional[Any] = None

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
#: a stage's ForecastCategoryName in a new org (the open stages: Pipeline)
STAGE_FORECASTS = {"closed won": "Closed", "closed lost": "Omitted"}
#: ForecastCategoryName -> ForecastCategory (the API name of the category)
FORECAST_CATEGORIES = {"Omitted": "Omitted", "Pipeline": "Pipeline", "Best Case": "BestCase", "Commit": "Forecast",
                       "Closed": "Closed"}
STAGES = {s[0].lower(): s for s in OPPORTUNITY_STAGES}

ACCOUNT_TYPES = ("Prospect", "Customer - Direct", "Customer - Channel", "Channel Partner / Reseller",
                 "Installation Partner", "Technology Partner", "Other")
INDUSTRIES = ("Agriculture", "Apparel", "Banking", "Biotechnology", "Chemicals", "Communications", "Construction",
              "Consulting", "Education", "Electronics", "Energy", "Engineering", "Entertainment", "Environmental",
              "Finance", "Food & Beverage", "Government", "Healthcare", "Hospitality", "Insurance", "Machinery",
              "Manufacturing", "Media", "Not For Profit", "Recreation", "Retail", "Shipping", "Technology",
              "Telecommunications", "Transportation", "Utilities", "Other")
LEAD_SOURCES = ("Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Other")


#: Standard fields as data, from Salesforce's Field Reference and a Developer Edition org's
#: describe: (name, type, label, size, writable). ``size`` is a text field's length, a number's
#: (precision, scale), an int's digits, a reference's (target, relationship) or a picklist's
#: values; ``writable`` False: createable and updateable are false (the system sets the field).
FieldRow = Tuple[str, str, str, Any, bool]
ACCOUNT_MORE_FIELDS: Tuple[FieldRow, ...] = (
    ("MasterRecordId", "reference", "Master Record ID", ("Account", "MasterRecord"), False),
    ("PhotoUrl", "url", "Photo URL", 255, False),
    ("TickerSymbol", "string", "Ticker Symbol", 20, True),
    ("LastActivityDate", "date", "Last Activity", None, False),
    ("LastViewedDate", "datetime", "Last Viewed Date", None, False),
    ("LastReferencedDate", "datetime", "Last Referenced Date", None, False),
    ("Jigsaw", "string", "Data.com Key", 20, True),
    ("JigsawCompanyId", "string", "Jigsaw Company ID", 20, False),
    ("CleanStatus", "picklist", "Clean Status", ("Matched", "Different", "Acknowledged", "NotFound", "Inactive",
                                                 "Pending", "SelectMatch", "Skipped"), True),
    ("AccountSource", "picklist", "Account Source", LEAD_SOURCES, True),
    ("DunsNumber", "string", "D-U-N-S Number", 9, True),
    ("Tradestyle", "string", "Tradestyle", 255, True),
    ("NaicsCode", "string", "NAICS Code", 8, True),
    ("NaicsDesc", "string", "NAICS Description", 120, True),
    ("YearStarted", "string", "Year Started", 4, True),
    ("SicDesc", "string", "SIC Description", 80, True),
    ("DandbCompanyId", "reference", "D&B Company ID", ("DandBCompany", "DandbCompany"), True),
    ("OperatingHoursId", "reference", "Operating Hour ID", ("OperatingHours", "OperatingHours"), True),
)
OPPORTUNITY_MORE_FIELDS: Tuple[FieldRow, ...] = (
    ("IsPrivate", "boolean", "Private", False, True),
    ("Description", "textarea", "Description", 32000, True),
    ("ExpectedRevenue", "currency", "Expected Amount", (18, 2), False),
    ("TotalOpportunityQuantity", "double", "Quantity", (18, 2), True),
    ("NextStep", "string", "Next Step", 255, True),
    ("ForecastCategory", "picklist", "Forecast Category", tuple(FORECAST_CATEGORIES.values()), False),
    ("ForecastCategoryName", "picklist", "Forecast Category", tuple(FORECAST_CATEGORIES), True),
    ("CampaignId", "reference", "Campaign ID", ("Campaign", "Campaign"), True),
    ("HasOpportunityLineItem", "boolean", "Has Line Item", False, False),
    ("Pricebook2Id", "reference", "Price Book ID", ("Pricebook2", "Pricebook2"), True),
    ("LastActivityDate", "date", "Last Activity", None, False),
    ("PushCount", "int", "Push Count", 9, False),
    ("LastStageChangeDate", "datetime", "Last Stage Change Date", None, False),
    ("FiscalQuarter", "int", "Fiscal Quarter", 1, False),
    ("FiscalYear", "int", "Fiscal Year", 4, False),
    ("Fiscal", "string", "Fiscal Period", 6, False),
    ("ContactId", "reference", "Contact ID", ("Contact", "Contact"), True),
    ("LastViewedDate", "datetime", "Last Viewed Date", None, False),
    ("LastReferencedDate", "datetime", "Last Referenced Date", None, False),
    ("HasOpenActivity", "boolean", "Has Open Activity", False, False),
    ("HasOverdueTask", "boolean", "Has Overdue Task", False, False),
)


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
            _f("CompanyName", "string", length=80, label="Company Name"),
            _f("Division", "string", length=80),
            _f("Department", "string", length=80),
            _f("Title", "string", length=80),
            _f("Email", "email", length=128, nillable=False),
            _f("Phone", "phone", length=40),
            _f("Alias", "string", length=8),
            _f("CommunityNickname", "string", length=40, label="Nickname"),
            _f("IsActive", "boolean", label="Active", nillable=False, default=True),
            _f("TimeZoneSidKey", "picklist", label="Time Zone", nillable=False, default="America/Los_Angeles",
               picklist=("America/Los_Angeles", "America/New_York", "Europe/London", "Europe/Paris", "Asia/Tokyo",
                         "GMT")),
            _f("LocaleSidKey", "picklist", label="Locale", nillable=False, default="en_US",
               picklist=("en_US", "en_GB", "de_DE", "fr_FR", "ja_JP")),
            _f("LanguageLocaleKey", "picklist", label="Language", nillable=False, default="en_US",
               picklist=("en_US", "de", "fr", "ja")),
            _f("EmailEncodingKey", "picklist", label="Email Encoding", nillable=False, default="UTF-8",
               picklist=("UTF-8", "ISO-8859-1", "Shift_JIS")),
            _f("UserType", "picklist", label="User Type", createable=False, updateable=False, default="Standard",
               picklist=("Standard", "PowerPartner", "CsnOnly", "Guest")),
            _ref("ProfileId", "Profile", "Profile", label="Profile ID"),
            _ref("ManagerId", "User", "Manager", label="Manager ID"),
            _f("LastLoginDate", "datetime", label="Last Login", createable=False, updateable=False),
            *_system_fields(deleted=False),
        ], deletable=False),
        ObjectDef("Account", "Account", "Accounts", "001", [
            _id(),
            _f("Name", "string", label="Account Name", nillable=False, name_field=True, required=True),
            _f("AccountNumber", "string", length=40, label="Account Number"),
            _f("Site", "string", length=80, label="Account Site"),
            _f("Type", "picklist", label="Account Type", length=255, picklist=ACCOUNT_TYPES),
            _ref("ParentId", "Account", "Parent", label="Parent Account ID"),
            _f("Industry", "picklist", picklist=INDUSTRIES),
            _f("Rating", "picklist", label="Account Rating", picklist=("Hot", "Warm", "Cold")),
            _f("Ownership", "picklist", picklist=("Public", "Private", "Subsidiary", "Other")),
            _f("AnnualRevenue", "currency", label="Annual Revenue", precision=18, scale=0),
            _f("NumberOfEmployees", "int", label="Employees", precision=8),
            *_address("Billing", "Billing"),
            *_address("Shipping", "Shipping"),
            _f("Phone", "phone", length=40, label="Account Phone"),
            _f("Fax", "phone", length=40, label="Account Fax"),
            _f("Website", "url"),
            _f("Sic", "string", length=20, label="SIC Code"),
            _f("Description", "textarea", length=32000, label="Account Description"),
            _ref("OwnerId", "User", "Owner", nillable=False),
            *_from_rows(ACCOUNT_MORE_FIELDS),
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
            _f("Amount", "currency", precision=16, scale=2),
            _f("Probability", "percent", label="Probability (%)", precision=3, scale=0),
            _f("CloseDate", "date", nillable=False, required=True),
            _f("Type", "picklist", label="Opportunity Type", picklist=("Existing Business", "New Business")),
            _f("LeadSource", "picklist", picklist=LEAD_SOURCES),
            _f("IsClosed", "boolean", label="Closed", nillable=False, createable=False, updateable=False),
            _f("IsWon", "boolean", label="Won", nillable=False, createable=False, updateable=False),
            _ref("OwnerId", "User", "Owner", nillable=False),
            *_from_rows(OPPORTUNITY_MORE_FIELDS),
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
        ObjectDef("RecordType", "Record Type", "Record Types", "012", [
            _id(),
            _f("Name", "string", length=80, nillable=False, name_field=True, required=True,
               label="Record Type Name"),
            _f("DeveloperName", "string", length=80, nillable=False, required=True, label="Record Type Name"),
            _f("NamespacePrefix", "string", length=15, createable=False, updateable=False),
            _f("Description", "string"),
            _f("SobjectType", "picklist", nillable=False, required=True, label="SObject Type Name",
               picklist=STANDARD_RECORD_TYPE_OBJECTS),
            _f("IsActive", "boolean", label="Active", nillable=False, default=True),
            *_system_fields(deleted=False),
        ], deletable=False),
        ObjectDef("Task", "Task", "Tasks", "00T", [
            _id(),
            _ref("WhoId", "Contact", "Who", label="Name ID", reference_targets=("Contact", "Lead")),
            _ref("WhatId", "Account", "What", label="Related To ID",
                 reference_targets=("Account", "Opportunity", "Case", "Campaign")),
            _f("Subject", "combobox", length=255),
            _f("ActivityDate", "date", label="Due Date Only"),
            _f("Status", "picklist", nillable=False, default="Not Started",
               picklist=("Not Started", "In Progress", "Completed", "Waiting on someone else", "Deferred")),
            _f("Priority", "picklist", nillable=False, default="Normal", picklist=("High", "Normal", "Low")),
            _f("IsHighPriority", "boolean", label="High Priority", nillable=False, createable=False,
               updateable=False),
            _f("Description", "textarea", length=32000, label="Comments"),
            _f("IsClosed", "boolean", label="Closed", nillable=False, createable=False, updateable=False),
            _f("TaskSubtype", "picklist", label="Task Subtype", picklist=("Task", "Email", "Call")),
            _f("CallDurationInSeconds", "int", label="Call Duration"),
            _ref("OwnerId", "User", "Owner", nillable=False, label="Assigned To ID"),
            *_system_fields(),
        ]),
        ObjectDef("Event", "Event", "Events", "00U", [
            _id(),
            _ref("WhoId", "Contact", "Who", label="Name ID", reference_targets=("Contact", "Lead")),
            _ref("WhatId", "Account", "What", label="Related To ID",
                 reference_targets=("Account", "Opportunity", "Case", "Campaign")),
            _f("Subject", "combobox", length=255),
            _f("Location", "string"),
            _f("IsAllDayEvent", "boolean", label="All-Day Event", nillable=False, default=False),
            _f("ActivityDateTime", "datetime", label="Due Date Time"),
            _f("ActivityDate", "date", label="Due Date Only"),
            _f("StartDateTime", "datetime", label="Start Date Time"),
            _f("EndDateTime", "datetime", label="End Date Time"),
            _f("DurationInMinutes", "int", label="Duration"),
            _f("Description", "textarea", length=32000),
            _f("ShowAs", "picklist", label="Show Time As", default="Busy", picklist=("Busy", "OutOfOffice", "Free")),
            _ref("OwnerId", "User", "Owner", nillable=False, label="Assigned To ID"),
            *_system_fields(),
        ]),
        ObjectDef("Campaign", "Campaign", "Campaigns", "701", [
            _id(),
            _f("Name", "string", length=80, nillable=False, name_field=True, required=True, label="Campaign Name"),
            _ref("ParentId", "Campaign", "Parent", label="Parent Campaign ID"),
            _f("Type", "picklist", picklist=("Conference", "Webinar", "Trade Show", "Public Relations", "Partners",
                                             "Referral Program", "Advertisement", "Banner Ads", "Direct Mail",
                                             "Email", "Telemarketing", "Other")),
            _f("Status", "picklist", default="Planned", picklist=("Planned", "In Progress", "Completed", "Aborted")),
            _f("StartDate", "date"),
            _f("EndDate", "date"),
            _f("ExpectedRevenue", "currency", precision=18, scale=0, label="Expected Revenue in Campaign"),
            _f("BudgetedCost", "currency", precision=18, scale=0, label="Budgeted Cost in Campaign"),
            _f("ActualCost", "currency", precision=18, scale=0, label="Actual Cost in Campaign"),
            _f("IsActive", "boolean", label="Active", nillable=False, default=False),
            _f("Description", "textarea", length=32000),
            _ref("OwnerId", "User", "Owner", nillable=False),
            *_system_fields(),
        ]),
        ObjectDef("Product2", "Product", "Products", "01t", [
            _id(),
            _f("Name", "string", nillable=False, name_field=True, required=True, label="Product Name"),
            _f("ProductCode", "string", label="Product Code"),
            _f("Description", "textarea", length=4000, label="Product Description"),
            _f("IsActive", "boolean", label="Active", nillable=False, default=False),
            _f("Family", "picklist", label="Product Family", picklist=("None",)),
            _f("QuantityUnitOfMeasure", "picklist", label="Quantity Unit Of Measure", picklist=("Each",)),
            *_system_fields(),
        ]),
        ObjectDef("Pricebook2", "Price Book", "Price Books", "01s", [
            _id(),
            _f("Name", "string", nillable=False, name_field=True, required=True, label="Price Book Name"),
            _f("IsActive", "boolean", label="Active", nillable=False, default=False),
            _f("IsStandard", "boolean", label="Is Standard Price Book", nillable=False, createable=False,
               updateable=False),
            _f("Description", "string"),
            *_system_fields(),
        ]),
        ObjectDef("PricebookEntry", "Price Book Entry", "Price Book Entries", "01u", [
            _id(),
            _f("Name", "string", nillable=True, name_field=True, createable=False, updateable=False,
               label="Product Name"),
            _ref("Pricebook2Id", "Pricebook2", "Pricebook2", label="Price Book ID", nillable=False, required=True,
                 updateable=False),
            _ref("Product2Id", "Product2", "Product2", label="Product ID", nillable=False, required=True,
                 updateable=False),
            _f("UnitPrice", "currency", precision=18, scale=2, label="List Price", nillable=False, required=True),
            _f("IsActive", "boolean", label="Active", nillable=False, default=False),
            _f("UseStandardPrice", "boolean", label="Use Standard Price", nillable=False, default=False),
            _f("ProductCode", "string", createable=False, updateable=False, label="Product Code"),
            *_system_fields(),
        ]),
        ObjectDef("OpportunityLineItem", "Opportunity Product", "Opportunity Product", "00k", [
            _id(),
            _ref("OpportunityId", "Opportunity", "Opportunity", label="Opportunity ID", nillable=False,
                 required=True, updateable=False),
            _f("Name", "string", length=376, createable=False, updateable=False, name_field=True,
               label="Opportunity Product Name"),
            _ref("PricebookEntryId", "PricebookEntry", "PricebookEntry", label="Price Book Entry ID",
                 updateable=False),
            _ref("Product2Id", "Product2", "Product2", label="Product ID", updateable=False),
            _f("ProductCode", "string", createable=False, updateable=False, label="Product Code"),
            _f("Quantity", "double", precision=12, scale=2, nillable=False, required=True),
            _f("UnitPrice", "currency", precision=18, scale=2, label="Sales Price"),
            _f("ListPrice", "currency", precision=18, scale=2, label="List Price", createable=False,
               updateable=False),
            _f("TotalPrice", "currency", precision=16, scale=2, label="Total Price"),
            _f("ServiceDate", "date", label="Date"),
            _f("Description", "string", label="Line Description"),
            *_system_fields(),
        ]),
        # what an External Client App's policy names (eca-org): a permission set and its assignments
        ObjectDef("PermissionSet", "Permission Set", "Permission Sets", "0PS", [
            _id(),
            _f("Name", "string", length=80, nillable=False, required=True, unique=True, label="Name"),
            _f("Label", "string", length=80, nillable=False, required=True, name_field=True),
            _f("Description", "string", length=255),
            _f("IsOwnedByProfile", "boolean", nillable=False, createable=False, updateable=False,
               label="Is Owned by Profile"),
            _f("IsCustom", "boolean", nillable=False, createable=False, updateable=False, default=True,
               label="Custom"),
            _ref("ProfileId", "Profile", "Profile", label="Profile ID", createable=False, updateable=False),
            _f("NamespacePrefix", "string", length=15, createable=False, updateable=False),
            *_system_fields(deleted=False),
        ]),
        ObjectDef("PermissionSetAssignment", "Permission Set Assignment", "Permission Set Assignments", "0Pa", [
            _id(),
            _ref("AssigneeId", "User", "Assignee", label="Assignee ID", nillable=False, required=True,
                 updateable=False),
            _ref("PermissionSetId", "PermissionSet", "PermissionSet", label="Permission Set ID", nillable=False,
                 required=True, updateable=False),
            _f("IsActive", "boolean", nillable=False, createable=False, updateable=False, default=True),
            *_system_fields(deleted=False),
        ], updateable=False),
        ObjectDef("OperatingHours", "Operating Hours", "Operating Hours", "0OH", [
            _id(),
            _f("Name", "string", length=80, nillable=False, name_field=True, required=True),
            _f("Description", "textarea", length=32000),
            _f("TimeZone", "picklist", label="Time Zone", nillable=False, default="GMT",
               picklist=("America/Los_Angeles", "America/New_York", "Europe/London", "Europe/Paris", "Asia/Tokyo",
                         "GMT")),
            *_system_fields(),
        ]),
        ObjectDef("DandBCompany", "D&B Company", "D&B Companies", "06E", [
            _id(),
            _f("Name", "string", nillable=False, name_field=True, required=True, label="Company Name"),
            _f("DunsNumber", "string", length=9, nillable=False, required=True, label="D-U-N-S Number"),
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
            for target in f.reference_targets:
                if target not in schema:
                    raise AssertionError(f"{o.name}.{f.name} refers to unknown {target}")
    for parent, rel, child, fk in _STANDARD_CHILDREN:
        schema[parent].children[rel.lower()] = (rel, child, fk)
    return schema


_STANDARD_CHILDREN = (
    ("Account", "Contacts", "Contact", "AccountId"), ("Account", "Opportunities", "Opportunity", "AccountId"),
    ("Account", "Cases", "Case", "AccountId"), ("Account", "ChildAccounts", "Account", "ParentId"),
    ("Account", "Tasks", "Task", "WhatId"), ("Account", "Events", "Event", "WhatId"),
    ("Contact", "Cases", "Case", "ContactId"), ("Contact", "Tasks", "Task", "WhoId"),
    ("Contact", "Events", "Event", "WhoId"), ("Opportunity", "OpportunityLineItems", "OpportunityLineItem",
                                              "OpportunityId"),
    ("Opportunity", "Tasks", "Task", "WhatId"), ("Campaign", "ChildCampaigns", "Campaign", "ParentId"),
    ("Product2", "PricebookEntries", "PricebookEntry", "Product2Id"),
    ("Pricebook2", "PricebookEntries", "PricebookEntry", "Pricebook2Id"),
    ("PricebookEntry", "OpportunityLineItems", "OpportunityLineItem", "PricebookEntryId"),
    ("Profile", "Users", "User", "ProfileId"), ("User", "ManagedUsers", "User", "ManagerId"),
)

STANDARD_RECORD_TYPE_OBJECTS = ("Account", "Contact", "Opportunity", "Lead", "Case", "Campaign", "Task", "Event",
                                "Product2")
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

    Owned by one :class:`~.records.Store` and guarded by its lock (``lock``): the compiler and
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
