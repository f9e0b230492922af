"""Deterministic sample data for the local org (``random.Random(42)``).

``load_sample_data(store)`` creates about 500 Accounts, 1,500 Contacts, 2,000
Opportunities, 100 Leads, 200 Cases and 2 Apex classes; the same content every
time (ids depend on what the store already holds).  ``generate_opportunities``
makes big data sets for benchmarks (100,000 rows in well under a few seconds).
"""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta, timezone
from typing import Dict, List, Optional, Sequence

from .core.literals import format_datetime
from .core.store import Store
from .core.standard_objects import ACCOUNT_TYPES, INDUSTRIES, LEAD_SOURCES, OPPORTUNITY_STAGES

__all__ = ["load_sample_data", "generate_opportunities", "SEED"]

SEED = 42

_COUNTRIES = {
    "United States": ("New York", "San Francisco", "Chicago", "Austin", "Boston"),
    "Germany": ("Berlin", "Munich", "Hamburg"),
    "France": ("Paris", "Lyon"),
    "United Kingdom": ("London", "Manchester"),
    "Japan": ("Tokyo", "Osaka"),
    "Brazil": ("São Paulo", "Rio de Janeiro"),
    "India": ("Bengaluru", "Mumbai"),
    "Canada": ("Toronto", "Vancouver"),
    "Australia": ("Sydney", "Melbourne"),
}
_NAME_A = ("Acme", "Global", "United", "Blue", "Red", "Silver", "Northern", "Pacific", "Summit", "Pioneer",
           "Bright", "Vertex", "Atlas", "Nova", "Quantum", "Evergreen", "Iron", "Golden", "Crystal", "Falcon")
_NAME_B = ("Systems", "Industries", "Foods", "Logistics", "Energy", "Health", "Media", "Labs", "Motors",
           "Textiles", "Analytics", "Partners", "Robotics", "Bank", "Telecom")
_NAME_C = ("Inc.", "Ltd", "GmbH", "SA", "LLC", "Corp.", "Group", "plc", "KK", "AG")
_FIRST = ("Ada", "Alan", "Grace", "Linus", "Margaret", "Ken", "Barbara", "Dennis", "Frances", "Tim", "Radia",
          "Guido", "Sophie", "Yukihiro", "Anita", "James", "Mary", "Chen", "Priya", "Olu", "Jose", "Lena",
          "Marta", "Ivan", "Fatima", "Noah", "Emma", "Liam", "Mia", "Lucas")
_LAST = ("Lovelace", "Turing", "Hopper", "Torvalds", "Hamilton", "Thompson", "Liskov", "Ritchie", "Allen",
         "Berners-Lee", "Perlman", "van Rossum", "Wilson", "Matsumoto", "Borg", "Gosling", "Shaw", "Wei",
         "Patel", "Adeyemi", "Garcia", "Novak", "Kowalski", "Petrov", "Khan", "Smith", "Müller", "O'Brien",
         "Dubois", "Rossi")
_TITLES = ("CEO", "CFO", "CTO", "VP Sales", "Director of IT", "Procurement Manager", "Engineer", "Analyst", None)
_PRODUCTS = ("Platform", "Renewal", "Upgrade", "Services", "Licenses", "Expansion", "Pilot", "Support")
# how often each stage appears (open pipeline heavier than closed)
_STAGE_WEIGHTS = (14, 12, 10, 9, 7, 6, 8, 7, 15, 12)


def _owners(store: Store, owner_ids: Optional[Sequence[str]]) -> List[Optional[str]]:
    if owner_ids:
        return list(owner_ids)
    users = store.query("SELECT Id FROM User WHERE IsActive = true ORDER BY CreatedDate").records
    return [u["Id"] for u in users] or [None]


def _created(rng: random.Random) -> str:
    start = datetime(2023, 1, 1, tzinfo=timezone.utc)
    return format_datetime(start + timedelta(seconds=rng.randrange(0, 2 * 365 * 86400)))


def load_sample_data(store: Store, *, owner_ids: Optional[Sequence[str]] = None,
                     accounts: int = 500, contacts: int = 1500, opportunities: int = 2000,
                     leads: int = 100, cases: int = 200) -> Dict[str, int]:
    """Insert the sample records; returns ``{"Account": 500, "Contact": 1500, ...}``.

    ``owner_ids`` defaults to the store's active users (or no owner when there are none).
    """
    rng = random.Random(SEED)
    owners = _owners(store, owner_ids)

    account_rows = _account_rows(rng, accounts, owners)
    account_ids = store.insert("Account", account_rows)
    names = {aid: str(row["Name"]) for aid, row in zip(account_ids, account_rows)}
    contact_rows = _contact_rows(rng, contacts, account_ids, owners)
    contact_ids = store.insert("Contact", contact_rows)
    opp_rows = _opportunity_rows(rng, opportunities, account_ids, names, owners)
    store.insert("Opportunity", opp_rows)
    lead_rows = _lead_rows(rng, leads, owners)
    store.insert("Lead", lead_rows)
    case_rows = _case_rows(rng, cases, contact_ids, contact_rows, owners)
    store.insert("Case", case_rows)
    store.insert("ApexClass", [dict(row) for row in _SAMPLE_APEX])
    return {"Account": len(account_rows), "Contact": len(contact_rows), "Opportunity": len(opp_rows),
            "Lead": len(lead_rows), "Case": len(case_rows), "ApexClass": 2}



def _account_rows(rng: random.Random, n: int, owners: Sequence[Optional[str]]) -> List[Dict[str, object]]:
    account_rows: List[Dict[str, object]] = []
    for i in range(n):
        country = rng.choice(sorted(_COUNTRIES))
        name = f"{rng.choice(_NAME_A)} {rng.choice(_NAME_B)} {rng.choice(_NAME_C)}"
        account_rows.append({
            "Name": f"{name} #{i + 1}",
            "Type": rng.choice(ACCOUNT_TYPES),
            "Industry": rng.choice(INDUSTRIES) if rng.random() > 0.05 else None,
            "AnnualRevenue": float(rng.randrange(1, 5000) * 100_000) if rng.random() > 0.1 else None,
            "NumberOfEmployees": rng.randrange(1, 100_000) if rng.random() > 0.1 else None,
            "BillingCountry": country,
            "BillingCity": rng.choice(_COUNTRIES[country]),
            "Phone": f"+1 555 {rng.randrange(1000000, 9999999)}",
            "OwnerId": rng.choice(owners),
            "CreatedDate": _created(rng),
        })
    return account_rows


def _contact_rows(rng: random.Random, n: int, account_ids: Sequence[str], owners: Sequence[Optional[str]]) -> List[Dict[str, object]]:
    contact_rows: List[Dict[str, object]] = []
    for i in range(n):
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        contact_rows.append({
            "FirstName": first if rng.random() > 0.03 else None,
            "LastName": last,
            "Email": f"{first.lower()}.{last.lower().replace(' ', '').replace(chr(39), '')}{i}@example.com"
            if rng.random() > 0.1 else None,
            "Phone": f"+1 555 {rng.randrange(1000000, 9999999)}" if rng.random() > 0.3 else None,
            "Title": rng.choice(_TITLES),
            "AccountId": rng.choice(account_ids) if rng.random() > 0.1 else None,
            "OwnerId": rng.choice(owners),
            "CreatedDate": _created(rng),
        })
    return contact_rows


def _opportunity_rows(rng: random.Random, n: int, account_ids: Sequence[str], names: Dict[str, str],
                      owners: Sequence[Optional[str]]) -> List[Dict[str, object]]:
    opp_rows: List[Dict[str, object]] = []
    for i in range(n):
        account_id = rng.choice(account_ids)
        stage = rng.choices(OPPORTUNITY_STAGES, weights=_STAGE_WEIGHTS)[0]
        close = date(2023, 1, 1) + timedelta(days=rng.randrange(0, 3 * 365))
        opp_rows.append({
            "Name": f"{str(names[account_id]).split(' #')[0]} - {rng.choice(_PRODUCTS)} {i + 1}",
            "AccountId": account_id,
            "Amount": float(rng.randrange(5, 2000) * 500) if rng.random() > 0.1 else None,
            "StageName": stage[0],
            "Probability": float(stage[1]),
            "CloseDate": close.isoformat(),
            "Type": rng.choice(("New Business", "Existing Business")),
            "LeadSource": rng.choice(LEAD_SOURCES) if rng.random() > 0.2 else None,
            "OwnerId": rng.choice(owners),
            "CreatedDate": _created(rng),
        })
    return opp_rows


def _lead_rows(rng: random.Random, n: int, owners: Sequence[Optional[str]]) -> List[Dict[str, object]]:
    lead_rows: List[Dict[str, object]] = []
    for i in range(n):
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        lead_rows.append({
            "FirstName": first, "LastName": last,
            "Company": f"{rng.choice(_NAME_A)} {rng.choice(_NAME_B)}",
            "Email": f"lead{i}@example.org",
            "Status": rng.choice(("Open - Not Contacted", "Working - Contacted", "Closed - Not Converted")),
            "LeadSource": rng.choice(LEAD_SOURCES),
            "OwnerId": rng.choice(owners),
            "CreatedDate": _created(rng),
        })
    return lead_rows


def _case_rows(rng: random.Random, n: int, contact_ids: Sequence[str], contact_rows: List[Dict[str, object]],
               owners: Sequence[Optional[str]]) -> List[Dict[str, object]]:
    case_rows: List[Dict[str, object]] = []
    for i in range(n):
        contact_index = rng.randrange(len(contact_ids)) if contact_ids else None
        contact_row = contact_rows[contact_index] if contact_index is not None else None
        case_rows.append({
            "Subject": rng.choice(("Cannot log in", "Invoice question", "Feature request", "Outage",
                                   "Data export", "Password reset")) + f" ({i + 1})",
            "Status": rng.choice(("New", "Working", "Escalated", "Closed")),
            "Priority": rng.choice(("High", "Medium", "Low")),
            "Origin": rng.choice(("Phone", "Email", "Web")),
            "ContactId": contact_ids[contact_index] if contact_index is not None else None,
            "AccountId": contact_row["AccountId"] if contact_row else None,
            "OwnerId": rng.choice(owners),
            "CreatedDate": _created(rng),
        })
    return case_rows


#: the Apex classes of the sample data (Tooling and Metadata queries find them)
_SAMPLE_APEX: List[Dict[str, object]] = [
    {"Name": "AccountService", "ApiVersion": 62.0, "Status": "Active",
     "Body": "public with sharing class AccountService {\n    // returns accounts by name\n"
             "    public static List<Account> byName(String n) {\n"
             "        return [SELECT Id, Name FROM Account WHERE Name = :n];\n    }\n}\n"},
    {"Name": "SampleRestResource", "ApiVersion": 62.0, "Status": "Active",
     "Body": "@RestResource(urlMapping='/sample/*')\nglobal class SampleRestResource {\n"
             "    @HttpGet global static String hello() { return 'hello'; }\n}\n"},
]


def generate_opportunities(store: Store, n: int, owner_ids: Optional[Sequence[str]] = None, *,
                           account_ids: Optional[Sequence[str]] = None, seed: int = SEED) -> int:
    """Add ``n`` Opportunities quickly (one executemany, no per-value validation); returns n.

    Deterministic for a given seed.  ``account_ids`` defaults to the store's Accounts (about
    1 in 10 rows has no Account, 1 in 10 no Amount).
    """
    rng = random.Random(seed)
    owners = _owners(store, owner_ids)
    if account_ids is None:
        account_ids = [r["Id"] for r in store.query("SELECT Id FROM Account").records]
    accounts: List[Optional[str]] = list(account_ids) or [None]
    base = date(2023, 1, 1).toordinal()
    created = format_datetime(datetime(2024, 1, 1, tzinfo=timezone.utc))
    columns = ("Name", "AccountId", "Amount", "StageName", "Probability", "CloseDate", "IsClosed", "IsWon",
               "OwnerId", "CreatedDate", "LastModifiedDate", "SystemModstamp")
    stages = OPPORTUNITY_STAGES
    random_ = rng.random
    stage_index = rng.choices(range(len(stages)), weights=_STAGE_WEIGHTS, k=n)
    days = [date.fromordinal(base + d).isoformat() for d in range(1095)]
    n_accounts, n_owners = len(accounts), len(owners)
    rows = []
    for i in range(n):
        stage = stages[stage_index[i]]
        rows.append((
            f"Generated Opportunity {i + 1}",
            accounts[int(random_() * n_accounts)] if random_() > 0.1 else None,
            float(int(random_() * 1995 + 5) * 500) if random_() > 0.1 else None,
            stage[0],
            float(stage[1]),
            days[int(random_() * 1095)],
            1 if stage[2] else 0,
            1 if stage[3] else 0,
            owners[int(random_() * n_owners)],
            created, created, created,
        ))
    store.load_rows("Opportunity", columns, rows)
    return n
