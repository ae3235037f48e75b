"""Write validation: codes, messages and fields as Salesforce answers them."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sfsync.emulator.clock import OrgClock
from sfsync.emulator.errors import ApiError
from sfsync.emulator.schema.loader import load_schema
from sfsync.emulator.schema.model import FieldType, ObjectDef, Schema, WireValue
from sfsync.emulator.schema.standard import field, picklist, standard_schema
from sfsync.emulator.store import OrgStore
from sfsync.emulator.validation import Condition, RuleChecker, coerce_value

T0 = datetime(2024, 1, 15, 9, 30, tzinfo=UTC)
RULES = """
objects:
  Account:
    fields:
      Limit__c: {type: currency}
      Tags__c: {type: multipicklist, values: [A, B, C], restricted: true}
      When__c: {type: time}
    validation_rules:
      - {name: No_Negative, condition: "Limit__c < 0", message: "Limit must not be negative.",
         error_field: Limit__c}
      - {name: Hot_Needs_Phone, condition: "Rating = 'Hot' AND Phone = null",
         message: "Hot accounts need a phone."}
      - {name: Disabled, condition: "Name = 'never'", message: "inactive", active: false}
"""


@pytest.fixture
def store(tmp_path: Path) -> Iterator[OrgStore]:
    path = tmp_path / "schema.yaml"
    path.write_text(RULES)
    s = OrgStore(load_schema(path), OrgClock(frozen_at=T0))
    yield s
    s.close()


def _error(store: OrgStore, object_name: str, values: Mapping[str, object]) -> ApiError:
    with pytest.raises(ApiError) as info:
        store.insert(object_name, values)
    return info.value


def _detail(error: ApiError) -> tuple[int, str, str, list[str]]:
    d = error.details[0]
    return error.status, d.code, d.message, list(d.fields)


@pytest.mark.parametrize(
    ("kind", "raw", "wire"),
    [
        (FieldType.DATETIME, "2024-01-15T10:30:00+01:00", "2024-01-15T09:30:00.000+0000"),
        (FieldType.DATETIME, "2024-01-15T09:30:00Z", "2024-01-15T09:30:00.000+0000"),
        (FieldType.DATETIME, "2024-01-15T09:30:00.123-0000", "2024-01-15T09:30:00.123+0000"),
        (FieldType.DATETIME, "2024-01-15", "2024-01-15T00:00:00.000+0000"),
        (FieldType.DATE, "2024-01-15", "2024-01-15"),
        (FieldType.DATE, "2024-01-15T23:00:00Z", "2024-01-15"),
        (FieldType.TIME, "09:30", "09:30:00.000Z"),
        (FieldType.TIME, "09:30:05.5Z", "09:30:05.500Z"),
        (FieldType.BOOLEAN, True, True),
        (FieldType.BOOLEAN, "FALSE", False),
        (FieldType.DOUBLE, "12.5", 12.5),
        (FieldType.CURRENCY, 10, 10.0),
        (FieldType.CURRENCY, 1.005e2, 100.5),
        (FieldType.INT, 7.0, 7),
        (FieldType.INT, "42", 42),
        (FieldType.STRING, 123, "123"),
        (FieldType.STRING, "", None),
        (FieldType.REFERENCE, "001xx0000000001", "001xx0000000001AAA"),
        (FieldType.REFERENCE, "001XX0000000001aaa", "001xx0000000001AAA"),
        (FieldType.EMAIL, None, None),
    ],
)
def test_coerce_to_wire_form(kind: FieldType, raw: object, wire: WireValue) -> None:
    f = (
        field("F__c", kind, "F", scale=2)
        if kind.is_number and kind is not FieldType.INT
        else field("F__c", kind, "F")
    )
    assert coerce_value(f, raw) == wire


@pytest.mark.parametrize(
    ("kind", "raw"),
    [
        (FieldType.DOUBLE, "abc"),
        (FieldType.DOUBLE, True),
        (FieldType.INT, 1.5),
        (FieldType.BOOLEAN, "yes"),
        (FieldType.BOOLEAN, 1),
        (FieldType.DATE, "2024-13-45"),
        (FieldType.DATETIME, "yesterday"),
        (FieldType.TIME, "25:00"),
        (FieldType.STRING, {"a": 1}),
        (FieldType.STRING, [1]),
    ],
)
def test_wrong_json_type_is_a_parser_error(kind: FieldType, raw: object) -> None:
    with pytest.raises(ApiError) as info:
        coerce_value(field("F__c", kind, "F"), raw)
    assert info.value.details[0].code == "JSON_PARSER_ERROR"
    assert info.value.details[0].message.startswith(f"Cannot deserialize instance of {kind.value}")


def test_number_range_and_scale() -> None:
    f = field("Amount", FieldType.CURRENCY, "Amount", precision=5, scale=2)
    assert coerce_value(f, 123.455) == 123.46  # half up, not half even
    assert coerce_value(f, -0.125) == -0.13
    with pytest.raises(ApiError) as info:
        coerce_value(f, 1000)
    assert _detail(info.value) == (
        400,
        "NUMBER_OUTSIDE_VALID_RANGE",
        "Amount: value outside of valid range on numeric field: 1000",
        ["Amount"],
    )


def test_unrestricted_picklist_accepts_any_value() -> None:
    f = picklist("Industry", ["Banking"])
    assert coerce_value(f, "Space") == "Space"


def test_required_fields_listed_together(store: OrgStore) -> None:
    err = _error(store, "Opportunity", {"Amount": 5})
    assert _detail(err) == (
        400,
        "REQUIRED_FIELD_MISSING",
        "Required fields are missing: [Name, StageName, CloseDate]",
        ["Name", "StageName", "CloseDate"],
    )


def test_required_field_cannot_be_cleared_on_update(store: OrgStore) -> None:
    aid = store.insert("Account", {"Name": "A"})
    with pytest.raises(ApiError) as info:
        store.update("Account", aid, {"Name": None})
    assert info.value.details[0].code == "REQUIRED_FIELD_MISSING"


def test_unknown_field(store: OrgStore) -> None:
    assert _detail(_error(store, "Account", {"Name": "A", "Bogus__c": 1})) == (
        400,
        "INVALID_FIELD",
        "No such column 'Bogus__c' on sobject of type Account",
        [],
    )


def test_attributes_key_is_ignored(store: OrgStore) -> None:
    aid = store.insert("Account", {"attributes": {"type": "Account"}, "Name": "A"})
    assert store.get(aid) is not None


@pytest.mark.parametrize("name", ["CreatedDate", "IsDeleted", "SystemModstamp", "Id"])
def test_read_only_fields_on_insert(store: OrgStore, name: str) -> None:
    value: object = "001xx0000000001AAA" if name == "Id" else "2024-01-01T00:00:00Z"
    status, code, message, fields = _detail(_error(store, "Account", {"Name": "A", name: value}))
    assert (status, code, fields) == (400, "INVALID_FIELD_FOR_INSERT_UPDATE", [name])
    assert message.startswith(f"Unable to create/update fields: {name}.")


def test_calculated_and_auto_number_fields_are_read_only(store: OrgStore) -> None:
    assert (
        _error(store, "Case", {"CaseNumber": "1"}).details[0].code
        == "INVALID_FIELD_FOR_INSERT_UPDATE"
    )
    assert (
        _error(store, "Contact", {"LastName": "x", "Name": "y"}).details[0].code
        == "INVALID_FIELD_FOR_INSERT_UPDATE"
    )


def test_update_may_repeat_its_own_id(store: OrgStore) -> None:
    aid = store.insert("Account", {"Name": "A"})
    store.update("Account", aid, {"Id": aid[:15], "Name": "B"})
    row = store.get(aid)
    assert row is not None
    assert row["Name"] == "B"


def test_non_updateable_field_on_update(store: OrgStore) -> None:
    aid = store.insert("Account", {"Name": "A"})
    opp = store.insert(
        "Opportunity",
        {"Name": "O", "StageName": "Prospecting", "CloseDate": "2024-03-01", "AccountId": aid},
    )
    pb = store.bulk_insert("Pricebook2", [{"Name": "Std"}])[0]
    prod = store.insert("Product2", {"Name": "P"})
    entry = store.insert(
        "PricebookEntry", {"Pricebook2Id": pb, "Product2Id": prod, "UnitPrice": 10}
    )
    line = store.insert(
        "OpportunityLineItem",
        {"OpportunityId": opp, "PricebookEntryId": entry, "Quantity": 2, "UnitPrice": 5},
    )
    row = store.get(line)
    assert row is not None
    assert row["TotalPrice"] == 10.0
    with pytest.raises(ApiError) as info:
        store.update("OpportunityLineItem", line, {"OpportunityId": opp})
    assert info.value.details[0].code == "INVALID_FIELD_FOR_INSERT_UPDATE"


def test_string_too_long(store: OrgStore) -> None:
    value = "x" * 256
    assert _detail(_error(store, "Account", {"Name": value})) == (
        400,
        "STRING_TOO_LONG",
        f"Account Name: data value too large: {value} (max length=255)",
        ["Name"],
    )


def test_restricted_picklists(store: OrgStore) -> None:
    err = _error(
        store, "Opportunity", {"Name": "O", "StageName": "Maybe", "CloseDate": "2024-01-01"}
    )
    assert _detail(err) == (
        400,
        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
        "Stage: bad value for restricted picklist field: Maybe",
        ["StageName"],
    )
    err = _error(store, "Account", {"Name": "A", "Tags__c": "A;Z"})
    assert err.details[0].message == "Tags: bad value for restricted picklist field: Z"
    aid = store.insert("Account", {"Name": "A", "Tags__c": "A;C", "When__c": "10:00"})
    row = store.get(aid)
    assert row is not None
    assert (row["Tags__c"], row["When__c"]) == ("A;C", "10:00:00.000Z")


def test_invalid_email(store: OrgStore) -> None:
    assert _detail(_error(store, "Contact", {"LastName": "x", "Email": "123"})) == (
        400,
        "INVALID_EMAIL_ADDRESS",
        "Email: invalid email address: 123",
        ["Email"],
    )


def test_reference_errors(store: OrgStore) -> None:
    contact = store.insert("Contact", {"LastName": "x"})
    assert _detail(_error(store, "Contact", {"LastName": "y", "AccountId": "nope"})) == (
        400,
        "MALFORMED_ID",
        "Account ID: id value of incorrect type: nope",
        ["AccountId"],
    )
    assert _detail(_error(store, "Contact", {"LastName": "y", "AccountId": contact})) == (
        400,
        "FIELD_INTEGRITY_EXCEPTION",
        f"Account ID: id value of incorrect type: {contact}",
        ["AccountId"],
    )
    missing = "001xx00000000zzAAA"[:15]
    assert _detail(_error(store, "Contact", {"LastName": "y", "AccountId": missing})) == (
        400,
        "INVALID_CROSS_REFERENCE_KEY",
        "invalid cross reference id",
        ["AccountId"],
    )
    aid = store.insert("Account", {"Name": "A"})
    store.delete(aid)
    assert _detail(_error(store, "Contact", {"LastName": "y", "AccountId": aid})) == (
        400,
        "ENTITY_IS_DELETED",
        "entity is deleted",
        ["AccountId"],
    )


def test_polymorphic_lookup_accepts_each_target(store: OrgStore) -> None:
    contact = store.insert("Contact", {"LastName": "x"})
    lead = store.insert("Lead", {"LastName": "y", "Company": "Z"})
    for who in (contact, lead):
        store.insert("Task", {"Subject": "Call", "WhoId": who})
    account = store.insert("Account", {"Name": "A"})
    err = _error(store, "Task", {"Subject": "Call", "WhoId": account})
    assert err.details[0].code == "FIELD_INTEGRITY_EXCEPTION"


def test_lookup_by_parent_external_id(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        "objects:\n  Account:\n    fields:\n"
        "      Ext__c: {type: text, length: 20, external_id: true}\n"
    )
    store = OrgStore(load_schema(path), OrgClock(frozen_at=T0))
    aid = store.insert("Account", {"Name": "A", "Ext__c": "A-1"})
    cid = store.insert("Contact", {"LastName": "x", "Account": {"Ext__c": "a-1"}})
    row = store.get(cid)
    assert row is not None
    assert row["AccountId"] == aid
    with pytest.raises(ApiError) as info:
        store.insert("Contact", {"LastName": "x", "Account": {"Ext__c": "B-2"}})
    assert info.value.details[0].message == (
        "Foreign key external ID: B-2 not found for field Ext__c in entity Account"
    )
    with pytest.raises(ApiError) as info:
        store.insert("Contact", {"LastName": "x", "Account": {"Phone": "1"}})
    assert info.value.details[0].code == "INVALID_FIELD"


def test_validation_rules_through_the_soql_engine(store: OrgStore) -> None:
    assert _detail(_error(store, "Account", {"Name": "A", "Limit__c": -1})) == (
        400,
        "FIELD_CUSTOM_VALIDATION_EXCEPTION",
        "Limit must not be negative.",
        ["Limit__c"],
    )
    assert _detail(_error(store, "Account", {"Name": "A", "Rating": "Hot"})) == (
        400,
        "FIELD_CUSTOM_VALIDATION_EXCEPTION",
        "Hot accounts need a phone.",
        [],
    )
    aid = store.insert("Account", {"Name": "never", "Rating": "Hot", "Phone": "1"})
    with pytest.raises(ApiError) as info:
        store.update("Account", aid, {"Phone": None})
    assert info.value.details[0].message == "Hot accounts need a phone."


def test_rule_checker_compiles_once_and_passes_record_source_and_time() -> None:
    calls: list[str] = []
    seen: list[tuple[Mapping[str, WireValue], object, datetime]] = []

    def compiler(text: str, obj: ObjectDef, schema: Schema) -> Condition:
        calls.append(text)

        def condition(record: Mapping[str, WireValue], source: object, now: datetime) -> bool:
            seen.append((record, source, now))
            return record.get("Name") == "bad"

        return condition

    path_schema = standard_schema()
    account = path_schema.object("Account")
    assert account is not None
    from dataclasses import replace

    from sfsync.emulator.schema.model import ValidationRule

    ruled = replace(account, validation_rules=(ValidationRule("R", "Name = 'bad'", "Bad name"),))
    checker = RuleChecker(path_schema, compile_condition=compiler)
    source = object()
    checker.check(ruled, {"Name": "ok"}, source, T0)
    with pytest.raises(ApiError) as info:
        checker.check(ruled, {"Name": "bad"}, source, T0)
    assert info.value.details[0].code == "FIELD_CUSTOM_VALIDATION_EXCEPTION"
    assert calls == ["Name = 'bad'"]
    assert [s[1:] for s in seen] == [(source, T0), (source, T0)]


def test_null_checkbox_is_stored_as_false(store: OrgStore) -> None:
    cid = store.insert("Contact", {"LastName": "x", "DoNotCall": True})
    store.update("Contact", cid, {"DoNotCall": None})
    row = store.get(cid)
    assert row is not None
    assert row["DoNotCall"] is False


def test_csv_style_text_values_are_coerced(store: OrgStore) -> None:
    """Bulk ingest hands every value over as text: empty means null (false for checkboxes)."""
    cid = store.insert(
        "Contact",
        {
            "LastName": "x",
            "DoNotCall": "",
            "HasOptedOutOfEmail": "true",
            "Birthdate": "",
            "Email": "",
        },
    )
    row = store.get(cid)
    assert row is not None
    assert (row["DoNotCall"], row["HasOptedOutOfEmail"], row["Birthdate"], row["Email"]) == (
        False,
        True,
        None,
        None,
    )
    aid = store.insert("Account", {"Name": "A", "NumberOfEmployees": "12", "AnnualRevenue": "3.5"})
    account = store.get(aid)
    assert account is not None
    assert (account["NumberOfEmployees"], account["AnnualRevenue"]) == (12, 4.0)
