"""A small org for the SOQL tests: schema built with ObjectDef/FieldDef, fixed records.

``NOW`` is Friday 2024-03-15 12:00 UTC; relative date expectations are written against it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from types import MappingProxyType

from sfsync.emulator.schema.model import (
    ChildRelationship,
    FieldDef,
    FieldType,
    ObjectDef,
    PicklistValue,
    Schema,
    WireValue,
)
from sfsync.emulator.soql import MemorySource
from sfsync.emulator.soql.ids import to_18

NOW = datetime(2024, 3, 15, 12, 0, tzinfo=UTC)
T = FieldType


def rid(prefix: str, n: int) -> str:
    """An 18-character id of the object with this key prefix."""
    wide = to_18(f"{prefix}{n:012d}")
    assert wide is not None
    return wide


def f(name: str, kind: FieldType, **extra: object) -> FieldDef:
    return FieldDef(name=name, type=kind, label=name, **extra)  # type: ignore[arg-type]


def obj(
    name: str,
    prefix: str,
    fields: list[FieldDef],
    children: tuple[ChildRelationship, ...] = (),
) -> ObjectDef:
    base = [
        f("Id", T.ID, nillable=False, createable=False, updateable=False),
        f("IsDeleted", T.BOOLEAN, createable=False, updateable=False),
    ]
    return ObjectDef(
        name=name,
        label=name,
        label_plural=name + "s",
        key_prefix=prefix,
        fields=MappingProxyType({x.name.lower(): x for x in base + fields}),
        child_relationships=children,
    )


def _picklist(*values: str) -> tuple[PicklistValue, ...]:
    return tuple(PicklistValue(v, v) for v in values)


def build_schema() -> Schema:
    user = obj("User", "005", [f("Name", T.STRING, name_field=True), f("Username", T.STRING),
                               f("IsActive", T.BOOLEAN)])  # fmt: skip
    group = obj("Group", "00G", [f("Name", T.STRING, name_field=True)])
    account = obj(
        "Account",
        "001",
        [
            f("Name", T.STRING, length=255, name_field=True, nillable=False),
            f("Industry", T.PICKLIST, picklist=_picklist("Energy", "Banking", "Retail")),
            f("AnnualRevenue", T.CURRENCY),
            f("NumberOfEmployees", T.INT),
            f(
                "Rating",
                T.PICKLIST,
                picklist=(
                    PicklistValue("Hot", "Hot"),
                    PicklistValue("Warm", "Lukewarm"),
                    PicklistValue("Cold", "Cold"),
                ),
            ),
            f("IsPartner__c", T.BOOLEAN),
            f("CreatedDate", T.DATETIME),
            f("SystemModstamp", T.DATETIME),
            f("OwnerId", T.REFERENCE, reference_to=("User", "Group"), relationship_name="Owner"),
            f("ParentId", T.REFERENCE, reference_to=("Account",), relationship_name="Parent"),
            f("BillingStreet", T.TEXTAREA, compound_field_name="BillingAddress"),
            f("BillingCity", T.STRING, compound_field_name="BillingAddress"),
            f("BillingState", T.STRING, compound_field_name="BillingAddress"),
            f("BillingPostalCode", T.STRING, compound_field_name="BillingAddress"),
            f("BillingCountry", T.STRING, compound_field_name="BillingAddress"),
            f("BillingLatitude", T.DOUBLE, compound_field_name="BillingAddress"),
            f("BillingLongitude", T.DOUBLE, compound_field_name="BillingAddress"),
            f("BillingAddress", T.ADDRESS, createable=False, updateable=False),
            f("Description", T.TEXTAREA, length=32000),
            f("Founded__c", T.DATE),
            f("Tags__c", T.MULTIPICKLIST, picklist=_picklist("a", "b", "c", "d")),
            f("Code__c", T.STRING, case_sensitive=True, external_id=True),
        ],
        (
            ChildRelationship("Contacts", "Contact", "AccountId"),
            ChildRelationship("Opportunities", "Opportunity", "AccountId"),
            ChildRelationship("ChildAccounts", "Account", "ParentId"),
        ),
    )
    contact = obj(
        "Contact",
        "003",
        [
            f("FirstName", T.STRING),
            f("LastName", T.STRING, nillable=False),
            f("Email", T.EMAIL),
            f("AccountId", T.REFERENCE, reference_to=("Account",), relationship_name="Account"),
            f("Birthdate", T.DATE),
            f("CreatedDate", T.DATETIME),
            f("OwnerId", T.REFERENCE, reference_to=("User",), relationship_name="Owner"),
        ],
    )
    opportunity = obj(
        "Opportunity",
        "006",
        [
            f("Name", T.STRING, name_field=True),
            f("StageName", T.PICKLIST, picklist=_picklist("Prospecting", "Closed Won")),
            f("Amount", T.CURRENCY),
            f("CloseDate", T.DATE),
            f("AccountId", T.REFERENCE, reference_to=("Account",), relationship_name="Account"),
            f("IsWon", T.BOOLEAN),
        ],
    )
    return Schema(
        MappingProxyType({o.name.lower(): o for o in (user, group, account, contact, opportunity)})
    )


SCHEMA = build_schema()

U1, U2, G1 = rid("005", 1), rid("005", 2), rid("00G", 1)
A = [rid("001", n) for n in range(7)]  # A[0] unused so that A[1] is "account 1"
C = [rid("003", n) for n in range(10)]
OPP = [rid("006", n) for n in range(9)]


def _account(n: int, name: str, **values: WireValue) -> dict[str, WireValue]:
    return {"Id": A[n], "Name": name, **values}


ACCOUNTS: list[dict[str, WireValue]] = [
    _account(1, "Acme", Industry="Energy", AnnualRevenue=1_000_000.0, NumberOfEmployees=120,
             Rating="Hot", IsPartner__c=True, CreatedDate="2024-03-15T08:00:00.000+0000",
             SystemModstamp="2024-03-15T09:00:00.000+0000", OwnerId=U1, BillingCity="Paris",
             BillingCountry="France", Founded__c="1990-05-01", Tags__c="a;b", Code__c="AC-1",
             Description="First customer"),
    _account(2, "Globex", Industry="Banking", AnnualRevenue=250_000.5, NumberOfEmployees=40,
             Rating="Warm", IsPartner__c=False, CreatedDate="2024-03-14T23:59:59.999+0000",
             SystemModstamp="2024-03-14T23:59:59.999+0000", OwnerId=U2, ParentId=A[1],
             Founded__c="2001-01-01", Tags__c="b;c", Code__c="gl-2"),
    _account(3, "Initech", Industry="Retail", AnnualRevenue=None, NumberOfEmployees=None,
             Rating=None, IsPartner__c=False, CreatedDate="2024-01-10T10:00:00.000+0000",
             SystemModstamp="2024-02-01T00:00:00.000+0000", OwnerId=G1, ParentId=A[1],
             BillingStreet="1 Main St\nSuite 5", BillingCity="Austin", BillingState="TX",
             BillingPostalCode="73301", BillingCountry="USA", BillingLatitude=30.27,
             BillingLongitude=-97.74, Founded__c=None, Tags__c="c", Code__c="IN-3"),
    _account(4, "acme labs", Industry="Energy", AnnualRevenue=75_000.0, NumberOfEmployees=5,
             Rating="Cold", IsPartner__c=True, CreatedDate="2023-12-31T12:00:00.000+0000",
             SystemModstamp="2024-03-10T00:00:00.000+0000", OwnerId=U1, Founded__c="2023-12-31",
             Tags__c=None, Code__c=None),
    _account(5, "Umbrella 100%_Corp", Industry=None, AnnualRevenue=0.0, NumberOfEmployees=0,
             Rating="Hot", IsPartner__c=False, CreatedDate="2024-03-11T00:00:00.000+0000",
             SystemModstamp="2024-03-11T00:00:00.000+0000", OwnerId=U2, ParentId=A[2],
             Founded__c="2024-03-15", Tags__c="a;b;c;d", Code__c="UM-5"),
    _account(6, "Deleted Co", IsDeleted=True, Industry="Energy", AnnualRevenue=5.0,
             NumberOfEmployees=1, CreatedDate="2024-03-01T00:00:00.000+0000", OwnerId=U1),
]  # fmt: skip


def _contact(
    n: int, first: str | None, last: str, account: str | None, **v: WireValue
) -> dict[str, WireValue]:
    return {"Id": C[n], "FirstName": first, "LastName": last, "AccountId": account, **v}


CONTACTS: list[dict[str, WireValue]] = [
    _contact(1, "Ann", "Smith", A[1], Email="ann@acme.com", Birthdate="1980-02-29",
             CreatedDate="2024-03-15T10:00:00.000+0000", OwnerId=U1),
    _contact(2, "Bob", "Jones", A[1], Email="bob@acme.com", Birthdate="1975-07-04",
             CreatedDate="2024-03-12T10:00:00.000+0000", OwnerId=U2),
    _contact(3, None, "O'Brien", A[2], Email=None, Birthdate=None,
             CreatedDate="2024-02-20T10:00:00.000+0000", OwnerId=U1),
    _contact(4, "Dee", "smith", A[3], Email="dee@initech.com", Birthdate="1990-12-31",
             CreatedDate="2023-11-01T10:00:00.000+0000", OwnerId=U2),
    _contact(5, "Eve", "Nobody", None, Email="eve@nowhere.org", Birthdate="2000-01-01",
             CreatedDate="2024-03-15T11:59:59.000+0000", OwnerId=U1),
    _contact(6, "Fay", "Gone", A[1], IsDeleted=True, CreatedDate="2024-03-01T00:00:00.000+0000"),
]  # fmt: skip

OPPORTUNITIES: list[dict[str, WireValue]] = [
    {"Id": OPP[1], "Name": "Big deal", "StageName": "Closed Won", "Amount": 500.0,
     "CloseDate": "2024-03-01", "AccountId": A[1], "IsWon": True},
    {"Id": OPP[2], "Name": "Small deal", "StageName": "Prospecting", "Amount": 100.0,
     "CloseDate": "2024-04-15", "AccountId": A[1], "IsWon": False},
    {"Id": OPP[3], "Name": "Globex renewal", "StageName": "Closed Won", "Amount": 300.0,
     "CloseDate": "2024-02-10", "AccountId": A[2], "IsWon": True},
    {"Id": OPP[4], "Name": "Initech pilot", "StageName": "Prospecting", "Amount": None,
     "CloseDate": "2024-03-20", "AccountId": A[3], "IsWon": False},
    {"Id": OPP[5], "Name": "Orphan", "StageName": "Prospecting", "Amount": 50.0,
     "CloseDate": "2023-12-31", "AccountId": None, "IsWon": False},
]  # fmt: skip

USERS: list[dict[str, WireValue]] = [
    {"Id": U1, "Name": "Uma Owner", "Username": "uma@example.com", "IsActive": True},
    {"Id": U2, "Name": "Vic Owner", "Username": "vic@example.com", "IsActive": False},
]
GROUPS: list[dict[str, WireValue]] = [{"Id": G1, "Name": "Support Queue"}]


def build_source() -> MemorySource:
    data: Mapping[str, list[dict[str, WireValue]]] = {
        "User": USERS,
        "Group": GROUPS,
        "Account": ACCOUNTS,
        "Contact": CONTACTS,
        "Opportunity": OPPORTUNITIES,
    }
    return MemorySource.of(data)
