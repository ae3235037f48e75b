"""Standard objects and the YAML schema loader (merging and error messages)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sfsync.emulator.schema.loader import SchemaFileError, load_schema
from sfsync.emulator.schema.model import FieldType, Schema
from sfsync.emulator.schema.standard import standard_schema

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "emulator-schema.yaml"
SYSTEM = [
    "Id",
    "IsDeleted",
    "CreatedDate",
    "CreatedById",
    "LastModifiedDate",
    "LastModifiedById",
    "SystemModstamp",
]


@pytest.fixture(scope="module")
def std() -> Schema:
    return standard_schema()


def test_every_standard_object_has_system_fields(std: Schema) -> None:
    names = {o.name for o in std}
    assert names >= {
        "Account",
        "Contact",
        "Lead",
        "Opportunity",
        "OpportunityLineItem",
        "Case",
        "Order",
        "OrderItem",
        "Product2",
        "Pricebook2",
        "PricebookEntry",
        "Asset",
        "Campaign",
        "CampaignMember",
        "Task",
        "User",
    }
    for obj in std:
        for name in SYSTEM:
            f = obj.field(name)
            assert f is not None, (obj.name, name)
            assert not f.createable
            assert not f.updateable
            assert f.defaulted_on_create or name == "IsDeleted"
        assert [f.name for f in obj.fields.values()][:2] == ["Id", "IsDeleted"]


def test_owner_only_on_owned_objects(std: Schema) -> None:
    owned = {o.name for o in std if o.field("OwnerId") is not None}
    assert {"Account", "Contact", "Case", "Opportunity", "Task"} <= owned
    assert not owned & {"OpportunityLineItem", "OrderItem", "PricebookEntry", "User"}


def test_key_prefixes_and_lookups_by_name(std: Schema) -> None:
    account = std.by_prefix("001")
    assert account is not None
    assert account.name == "Account"
    assert std.object("ACCOUNT") is account
    assert account.field("billingcity") is not None


def test_compound_address_fields(std: Schema) -> None:
    account = std.object("Account")
    assert account is not None
    billing = account.field("BillingAddress")
    assert billing is not None
    assert billing.type is FieldType.ADDRESS
    assert not billing.createable
    parts = [f.name for f in account.fields.values() if f.compound_field_name == "BillingAddress"]
    assert parts == [
        "BillingStreet",
        "BillingCity",
        "BillingState",
        "BillingPostalCode",
        "BillingCountry",
        "BillingLatitude",
        "BillingLongitude",
        "BillingGeocodeAccuracy",
    ]
    contact = std.object("Contact")
    assert contact is not None
    assert contact.field("MailingAddress") is not None
    last = contact.field("LastName")
    assert last is not None
    assert last.compound_field_name == "Name"
    assert last.required_on_create


def test_child_relationships_are_derived_from_lookups(std: Schema) -> None:
    account = std.object("Account")
    assert account is not None
    contacts = account.child_relationship("contacts")
    assert contacts is not None
    assert (contacts.child_object, contacts.field, contacts.cascade_delete) == (
        "Contact",
        "AccountId",
        True,
    )
    children = account.child_relationship("ChildAccounts")
    assert children is not None
    assert (children.child_object, children.field) == ("Account", "ParentId")
    assert account.child_relationship("Opportunities") is not None
    assert account.child_relationship("Cases") is not None
    opp = std.object("Opportunity")
    assert opp is not None
    lines = opp.child_relationship("OpportunityLineItems")
    assert lines is not None
    assert lines.cascade_delete
    contact = std.object("Contact")
    assert contact is not None
    assert contact.child_relationship("Cases") is not None
    parent = account.relationship("Parent")
    assert parent is not None
    assert parent.name == "ParentId"


def test_picklists(std: Schema) -> None:
    opp = std.object("Opportunity")
    assert opp is not None
    stage = opp.field("StageName")
    assert stage is not None
    assert stage.restricted_picklist
    assert "Closed Won" in [p.value for p in stage.picklist]
    case = std.object("Case")
    assert case is not None
    status = case.field("Status")
    assert status is not None
    assert status.default == "New"
    assert not status.required_on_create


def test_no_schema_file_means_standard_schema() -> None:
    assert [o.name for o in load_schema(None)] == [o.name for o in standard_schema()]


def test_example_file_loads_and_merges() -> None:
    schema = load_schema(EXAMPLE)
    invoice = schema.object("Invoice__c")
    assert invoice is not None
    assert invoice.key_prefix == "a00"
    assert invoice.field("OwnerId") is None  # master-detail child
    name = invoice.field("Name")
    assert name is not None
    assert name.auto_number
    account = schema.object("Account")
    assert account is not None
    ext = account.field("Customer_Number__c")
    assert ext is not None
    assert ext.external_id
    assert ext.id_lookup
    order = [f.name for f in account.fields.values()]
    assert order.index("Credit_Limit__c") < order.index("OwnerId")  # custom before audit
    assert order[-5:] == SYSTEM[2:]
    assert [r.name for r in account.validation_rules] == ["Credit_Limit_Not_Negative"]
    rel = account.child_relationship("Invoices__r")
    assert rel is not None
    assert (rel.child_object, rel.field, rel.cascade_delete) == ("Invoice__c", "Account__c", True)
    line = schema.object("Invoice_Line__c")
    assert line is not None
    lookup = line.field("Invoice__c")
    assert lookup is not None
    assert lookup.relationship_name == "Invoice__r"
    event = schema.object("Order_Shipped__e")
    assert event is not None
    assert event.platform_event
    assert event.key_prefix == "e01"
    assert not event.queryable


def _load(tmp_path: Path, text: str) -> Schema:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    return load_schema(path)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("objects: [1, 2]", "objects: expected a mapping"),
        ("stuff: {}", "unknown section(s) ['stuff']"),
        ("objects:\n  Invoice:\n    fields: {}", "object 'Invoice': unknown standard object"),
        (
            "objects:\n  Foo__c:\n    fields:\n      Bar: {type: text}",
            "object 'Foo__c', field 'Bar': custom field names must end in '__c'. Rename it to",
        ),
        (
            "objects:\n  Foo__c:\n    fields:\n      Bar__c: {type: texte}",
            "object 'Foo__c', field 'Bar__c': unknown type 'texte'",
        ),
        (
            "objects:\n  Foo__c:\n    fields:\n      Bar__c: {type: text, lenght: 5}",
            "unknown key(s) ['lenght']",
        ),
        (
            "objects:\n  Foo__c:\n    fields:\n      Bar__c: {type: text, length: 900}",
            "'length' must be a whole number from 1 to 255",
        ),
        (
            "objects:\n  Foo__c:\n    fields:\n      Bar__c: {type: picklist}",
            "a picklist needs a non-empty list of 'values'",
        ),
        (
            "objects:\n  Foo__c:\n    fields:\n      Bar__c: {type: picklist, values: [A], "
            "default: B}",
            "default 'B' is not one of the values",
        ),
        (
            "objects:\n  Foo__c:\n    fields:\n      Bar__c: {type: lookup}",
            "a lookup needs 'reference_to'",
        ),
        (
            "objects:\n  Foo__c:\n    fields:\n      Bar__c: {type: lookup, reference_to: Nope__c}",
            "reference_to names unknown object 'Nope__c'",
        ),
        (
            "objects:\n  Account:\n    fields:\n      Name__c: {type: text}\n      name__c: "
            "{type: text}",
            "the object already has a field with this name",
        ),
        (
            "objects:\n  Account:\n    validation_rules:\n      - {name: R, message: m}",
            "validation rule 'R': 'condition' is missing or empty",
        ),
        (
            "objects:\n  Account:\n    validation_rules:\n      - {name: R, condition: x = 1, "
            "message: m, error_field: Nope}",
            "error_field 'Nope' is not a field of Account",
        ),
        (
            "objects:\n  Account:\n    validation_rules:\n      - {name: R, condition: "
            '"Nope__c = 1", message: m}',
            "validation rule 'R': condition 'Nope__c = 1' is not",
        ),
        ("events:\n  Shipped:\n    fields: {}", "platform event names must end in '__e'"),
        (
            "objects:\n  A__c:\n    fields:\n      P__c: {type: lookup, reference_to: Account, "
            "child_relationship_name: Contacts}",
            "child_relationship_name 'Contacts' is already used on Account",
        ),
        ("objects: {a: [", "not valid YAML"),
    ],
)
def test_loader_errors_name_file_place_and_fix(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(SchemaFileError) as info:
        _load(tmp_path, text)
    message = str(info.value)
    assert message.startswith(str(tmp_path / "bad.yaml"))
    assert expected in message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SchemaFileError, match="cannot read the schema file"):
        load_schema(tmp_path / "absent.yaml")


def test_custom_prefixes_follow_file_order(tmp_path: Path) -> None:
    schema = _load(tmp_path, "objects:\n  B__c: {}\n  A__c: {}\nevents:\n  E__e: {}\n")
    prefixes = {o.name: o.key_prefix for o in schema if o.name.endswith(("__c", "__e"))}
    assert prefixes == {"B__c": "a00", "A__c": "a01", "E__e": "e01"}
    b = schema.object("B__c")
    assert b is not None
    assert b.field("OwnerId") is not None
    name = b.field("Name")
    assert name is not None
    assert name.length == 80
