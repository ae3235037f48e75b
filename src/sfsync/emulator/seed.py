"""A realistic demo org: users, products and price books, accounts with addresses, contacts,
opportunities with line items, and cases.

Everything comes from one ``random.Random(rng_seed)`` and a reference day (default: the org
clock's today), so the same seed and day always give the same data. Rows go in through
:meth:`OrgStore.bulk_insert` (no validation, no change events), which loads the default
2,000 accounts and their ~15,000 related records in about a second.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import date, timedelta

from sfsync.emulator.schema.model import WireValue
from sfsync.emulator.schema.standard import (
    ACCOUNT_TYPES,
    INDUSTRIES,
    LEAD_SOURCES,
    RATINGS,
    STAGES,
)
from sfsync.emulator.store import OrgStore

Row = dict[str, WireValue]

_FIRST = [
    "James",
    "Mary",
    "Robert",
    "Patricia",
    "John",
    "Jennifer",
    "Michael",
    "Linda",
    "David",
    "Elizabeth",
    "William",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Carlos",
    "Aiko",
    "Fatima",
    "Lars",
    "Priya",
    "Wei",
    "Amara",
    "Mateo",
    "Sofia",
    "Noah",
    "Chloe",
    "Omar",
    "Ingrid",
    "Kenji",
]
_LAST = [
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Tanaka",
    "Okafor",
    "Nielsen",
    "Patel",
    "Chen",
    "Rossi",
    "Dubois",
    "Schmidt",
    "Kowalski",
    "Haddad",
    "Silva",
    "Novak",
]
_WORDS = [
    "Acme",
    "Global",
    "Pinnacle",
    "Summit",
    "Northwind",
    "Blue",
    "Silver",
    "Apex",
    "Vertex",
    "Harbor",
    "Evergreen",
    "Granite",
    "Falcon",
    "Nimbus",
    "Orion",
    "Quantum",
    "Redwood",
    "Sterling",
    "Titan",
    "Union",
    "Vista",
    "Zenith",
    "Cobalt",
    "Maple",
]
_NOUNS = [
    "Systems",
    "Industries",
    "Logistics",
    "Foods",
    "Energy",
    "Health",
    "Robotics",
    "Media",
    "Capital",
    "Networks",
    "Labs",
    "Motors",
    "Textiles",
    "Pharma",
    "Analytics",
    "Devices",
    "Builders",
    "Airlines",
    "Outfitters",
    "Software",
]
_SUFFIXES = ["Inc.", "LLC", "Ltd.", "GmbH", "S.A.", "Corp.", "plc", "Group"]
# (city, state, country, postal code prefix, latitude, longitude)
_CITIES = [
    ("San Francisco", "CA", "USA", "941", 37.7749, -122.4194),
    ("New York", "NY", "USA", "100", 40.7128, -74.0060),
    ("Chicago", "IL", "USA", "606", 41.8781, -87.6298),
    ("Austin", "TX", "USA", "787", 30.2672, -97.7431),
    ("Seattle", "WA", "USA", "981", 47.6062, -122.3321),
    ("London", "England", "United Kingdom", "EC1", 51.5074, -0.1278),
    ("Paris", "Ile-de-France", "France", "750", 48.8566, 2.3522),
    ("Berlin", "Berlin", "Germany", "101", 52.5200, 13.4050),
    ("Tokyo", "Tokyo", "Japan", "100", 35.6762, 139.6503),
    ("Sydney", "NSW", "Australia", "200", -33.8688, 151.2093),
    ("Toronto", "ON", "Canada", "M5V", 43.6532, -79.3832),
    ("Sao Paulo", "SP", "Brazil", "010", -23.5505, -46.6333),
]
_STREETS = [
    "Main St",
    "Market St",
    "Oak Ave",
    "Elm St",
    "Park Blvd",
    "Harbor Rd",
    "King St",
    "Mission St",
    "High St",
    "Station Rd",
]
_TITLES = [
    "CEO",
    "CFO",
    "CTO",
    "VP Sales",
    "VP Engineering",
    "Director of IT",
    "Procurement Manager",
    "Operations Manager",
    "Account Manager",
    "Buyer",
]
_PRODUCTS = [
    ("GenWatt Diesel 10kW", "Hardware", 5000.0),
    ("GenWatt Gasoline 300kW", "Hardware", 35000.0),
    ("Installation: Industrial", "Services", 8500.0),
    ("SLA: Gold", "Services", 2500.0),
    ("Analytics Cloud Seat", "Software", 1200.0),
    ("Integration Hub", "Software", 9900.0),
    ("Onboarding Workshop", "Training", 3000.0),
    ("Sensor Kit", "Hardware", 450.0),
    ("Field Service Visit", "Services", 650.0),
    ("Admin Certification", "Training", 1500.0),
]
_CASE_SUBJECTS = [
    "Cannot log in",
    "Invoice discrepancy",
    "Device overheating",
    "Shipment late",
    "Feature request: export",
    "Installation question",
    "Sync errors overnight",
    "Password reset",
    "Upgrade quote",
    "Performance degraded",
]


def seed_demo(
    store: OrgStore,
    *,
    accounts: int = 2000,
    rng_seed: int = 20240115,
    today: date | None = None,
) -> dict[str, int]:
    """Fill an empty org with demo data; returns the number of records made per object.

    Does nothing (returns ``{}``) when the org already has accounts, so a persistent org
    started with ``seed="demo"`` twice is not seeded twice.
    """
    if store.count("Account", include_deleted=True) > 0:
        return {}
    rng = random.Random(rng_seed)
    day = today or store.clock.now().date()
    counts: dict[str, int] = {}

    def load(object_name: str, rows: list[Row]) -> list[str]:
        ids = store.bulk_insert(object_name, rows)
        counts[object_name] = counts.get(object_name, 0) + len(ids)
        return ids

    users = load(
        "User",
        [
            _user(i, first, last)
            for i, (first, last) in enumerate(
                [
                    ("Ava", "Reyes"),
                    ("Ben", "Okoro"),
                    ("Chen", "Liu"),
                    ("Dana", "Keller"),
                    ("Eli", "Marsh"),
                ],
                start=1,
            )
        ],
    )
    products = load(
        "Product2",
        [
            {
                "Name": n,
                "ProductCode": f"PRD-{i:04d}",
                "Family": fam,
                "IsActive": True,
                "Description": f"{n} ({fam.lower()})",
            }
            for i, (n, fam, _p) in enumerate(_PRODUCTS, 1)
        ],
    )
    standard, partner = load(
        "Pricebook2",
        [
            {"Name": "Standard Price Book", "IsActive": True, "IsStandard": True},
            {
                "Name": "Partner Price Book",
                "IsActive": True,
                "Description": "Channel partner prices",
            },
        ],
    )
    entries = load(
        "PricebookEntry",
        [
            {
                "Pricebook2Id": book,
                "Product2Id": pid,
                "UnitPrice": round(price * factor, 2),
                "IsActive": True,
                "Name": name,
                "ProductCode": f"PRD-{i:04d}",
            }
            for book, factor in ((standard, 1.0), (partner, 0.85))
            for i, (pid, (name, _fam, price)) in enumerate(zip(products, _PRODUCTS, strict=True), 1)
        ],
    )
    prices = {e: _PRODUCTS[i % len(_PRODUCTS)] for i, e in enumerate(entries)}
    account_rows = [_account(rng, i, users) for i in range(accounts)]
    account_ids = load("Account", account_rows)

    contacts: list[Row] = []
    contact_owner: list[int] = []
    for index, (aid, acc) in enumerate(zip(account_ids, account_rows, strict=True)):
        for _ in range(rng.randint(1, 4)):
            contacts.append(_contact(rng, aid, acc))
            contact_owner.append(index)
    contact_ids = load("Contact", contacts)
    by_account: dict[int, list[str]] = {}
    for cid, index in zip(contact_ids, contact_owner, strict=True):
        by_account.setdefault(index, []).append(cid)

    opportunities: list[Row] = []
    for aid, acc in zip(account_ids, account_rows, strict=True):
        for _ in range(rng.choice((0, 1, 1, 2, 3))):
            opportunities.append(_opportunity(rng, aid, acc, day, standard))
    opportunity_ids = load("Opportunity", opportunities)
    std_entries = entries[: len(products)]
    lines: list[Row] = []
    for oid in opportunity_ids:
        for entry in rng.sample(std_entries, rng.randint(1, 3)):
            _name, _fam, price = prices[entry]
            lines.append(
                {
                    "OpportunityId": oid,
                    "PricebookEntryId": entry,
                    "Product2Id": products[std_entries.index(entry)],
                    "Quantity": float(rng.randint(1, 20)),
                    "UnitPrice": price,
                    "ListPrice": price,
                    "Name": _name,
                }
            )
    load("OpportunityLineItem", lines)

    cases: list[Row] = []
    for index, aid in enumerate(account_ids):
        for _ in range(rng.choice((0, 0, 1, 2))):
            cases.append(_case(rng, aid, by_account.get(index, []), day))
    load("Case", cases)
    return counts


def _user(i: int, first: str, last: str) -> Row:
    username = f"{first.lower()}.{last.lower()}@sfsync.demo"
    return {
        "Username": username,
        "FirstName": first,
        "LastName": last,
        "Email": username,
        "Alias": (first[:1] + last[:4]).lower(),
        "Title": "Account Executive",
        "IsActive": True,
        "TimeZoneSidKey": "America/Los_Angeles",
        "LocaleSidKey": "en_US",
        "EmailEncodingKey": "UTF-8",
        "LanguageLocaleKey": "en_US",
        "FederationIdentifier": f"demo-user-{i}",
    }


def _account(rng: random.Random, i: int, users: Sequence[str]) -> Row:
    name = f"{rng.choice(_WORDS)} {rng.choice(_NOUNS)} {rng.choice(_SUFFIXES)}"
    city, state, country, postal, lat, lon = rng.choice(_CITIES)
    street = f"{rng.randint(1, 9999)} {rng.choice(_STREETS)}"
    domain = name.split()[0].lower() + name.split()[1].lower()
    row: Row = {
        "Name": f"{name} #{i + 1}" if rng.random() < 0.1 else name,
        "AccountNumber": f"CD{100000 + i}",
        "Type": rng.choice(ACCOUNT_TYPES),
        "Industry": rng.choice(INDUSTRIES),
        "Rating": rng.choice(RATINGS),
        "AccountSource": rng.choice(LEAD_SOURCES),
        "Phone": f"+1 {rng.randint(200, 999)} {rng.randint(200, 999)} {rng.randint(1000, 9999)}",
        "Website": f"https://www.{domain}.example",
        "AnnualRevenue": float(rng.randint(1, 5000) * 100_000),
        "NumberOfEmployees": rng.randint(5, 250_000),
        "BillingStreet": street,
        "BillingCity": city,
        "BillingState": state,
        "BillingCountry": country,
        "BillingPostalCode": f"{postal}{rng.randint(10, 99)}",
        "BillingLatitude": round(lat + rng.uniform(-0.05, 0.05), 6),
        "BillingLongitude": round(lon + rng.uniform(-0.05, 0.05), 6),
        "BillingGeocodeAccuracy": "Address",
        "OwnerId": rng.choice(users),
    }
    if rng.random() < 0.7:
        for part in ("Street", "City", "State", "Country", "PostalCode"):
            row[f"Shipping{part}"] = row[f"Billing{part}"]
    return row


def _contact(rng: random.Random, account_id: str, account: Row) -> Row:
    first, last = rng.choice(_FIRST), rng.choice(_LAST)
    domain = str(account["Website"]).removeprefix("https://www.")
    return {
        "AccountId": account_id,
        "FirstName": first,
        "LastName": last,
        "Salutation": rng.choice(("Mr.", "Ms.", "Dr.", None)),
        "Title": rng.choice(_TITLES),
        "Email": f"{first.lower()}.{last.lower()}{rng.randint(1, 999)}@{domain}",
        "Phone": account["Phone"],
        "LeadSource": rng.choice(LEAD_SOURCES),
        "MailingStreet": account["BillingStreet"],
        "MailingCity": account["BillingCity"],
        "MailingState": account["BillingState"],
        "MailingCountry": account["BillingCountry"],
        "MailingPostalCode": account["BillingPostalCode"],
        "OwnerId": account["OwnerId"],
    }


def _opportunity(
    rng: random.Random, account_id: str, account: Row, day: date, pricebook: str
) -> Row:
    stage = rng.choice(list(STAGES))
    closed = stage.startswith("Closed")
    offset = -rng.randint(1, 365) if closed else rng.randint(-30, 180)
    return {
        "AccountId": account_id,
        "Name": f"{str(account['Name']).split(' #')[0]} - {rng.choice(_NOUNS)} deal",
        "StageName": stage,
        "Amount": float(rng.randint(5, 500) * 1000),
        "CloseDate": (day + timedelta(days=offset)).isoformat(),
        "Type": rng.choice(("New Customer", "Existing Customer - Upgrade")),
        "LeadSource": rng.choice(LEAD_SOURCES),
        "Pricebook2Id": pricebook,
        "OwnerId": account["OwnerId"],
    }


def _case(rng: random.Random, account_id: str, contacts: Sequence[str], day: date) -> Row:
    status = rng.choice(("New", "Working", "Escalated", "Closed", "Closed"))
    row: Row = {
        "AccountId": account_id,
        "ContactId": rng.choice(contacts) if contacts else None,
        "Subject": rng.choice(_CASE_SUBJECTS),
        "Status": status,
        "Priority": rng.choice(("High", "Medium", "Medium", "Low")),
        "Origin": rng.choice(("Phone", "Email", "Web")),
        "Description": "Reported by the customer; see the attached log.",
    }
    if status == "Closed":
        row["ClosedDate"] = (
            f"{(day - timedelta(days=rng.randint(0, 60))).isoformat()}T12:00:00.000+0000"
        )
    return row
