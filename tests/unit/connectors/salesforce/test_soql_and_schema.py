from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from sfsync.connectors.salesforce.schema import entity_schema, field_spec
from sfsync.connectors.salesforce.soql import (
    Cursor,
    changes_query,
    datetime_literal,
    exits_query,
    quote_string,
    select,
    snapshot_query,
)
from sfsync.core.errors import ConfigError
from sfsync.core.schema import FieldKind


@pytest.mark.parametrize(
    ("raw", "quoted"),
    [
        ("plain", "'plain'"),
        ("O'Brien", "'O\\'Brien'"),
        ("back\\slash", "'back\\\\slash'"),
        ("line\nbreak", "'line\\nbreak'"),
        ("tab\there", "'tab\\there'"),
        ("Zürich", "'Zürich'"),
        ("", "''"),
    ],
)
def test_string_literals(raw: str, quoted: str) -> None:
    assert quote_string(raw) == quoted


@pytest.mark.parametrize(
    ("value", "literal"),
    [
        ("2024-01-15T09:30:00.000+0000", "2024-01-15T09:30:00.000Z"),
        ("2024-01-15T09:30:00Z", "2024-01-15T09:30:00.000Z"),
        ("2024-01-15T11:30:00.123+02:00", "2024-01-15T09:30:00.123Z"),
        (datetime(2024, 1, 15, 9, 30, 0, 999999, tzinfo=UTC), "2024-01-15T09:30:00.999Z"),
        (
            datetime(2024, 1, 15, 4, 0, tzinfo=timezone(timedelta(hours=-5))),
            "2024-01-15T09:00:00.000Z",
        ),
    ],
)
def test_datetime_literals(value: str | datetime, literal: str) -> None:
    assert datetime_literal(value) == literal


@pytest.mark.parametrize(
    "bad", ["2024-01-15", "yesterday", "2024-01-15T09:30:00", "2024-01-15 09:30:00Z", "' OR 1=1"]
)
def test_bad_datetimes_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="datetime"):
        datetime_literal(bad)


def test_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone"):
        datetime_literal(datetime(2024, 1, 1))


@pytest.mark.parametrize("bad", ["Name; DELETE", "1abc", "Name,Id", "", "Account.", "a b"])
def test_names_are_checked(bad: str) -> None:
    with pytest.raises(ValueError, match="not a valid"):
        select("Account", [bad])


def test_select_shapes() -> None:
    assert select("Account", ["Id", "Owner.Name"]) == "SELECT Id, Owner.Name FROM Account"
    assert (
        select("Account", ["Id"], where=["A = 1 OR B = 2", "C = 3"], order_by=["Id"], limit=5)
        == "SELECT Id FROM Account WHERE (A = 1 OR B = 2) AND (C = 3) ORDER BY Id LIMIT 5"
    )
    with pytest.raises(ValueError, match="at least one field"):
        select("Account", [])


def test_snapshot_query_resumes_and_bounds_by_id() -> None:
    assert snapshot_query("Account", ["Id", "Name"]) == "SELECT Id, Name FROM Account ORDER BY Id"
    assert snapshot_query(
        "Account",
        ["Id"],
        row_filter="Industry = 'Banking' OR Industry = 'Retail'",
        after_id="001000000000009AAA",
        id_below="001000000000100AAA",
    ) == (
        "SELECT Id FROM Account WHERE (Industry = 'Banking' OR Industry = 'Retail') "
        "AND (Id > '001000000000009AAA') AND (Id < '001000000000100AAA') ORDER BY Id"
    )


def test_changes_query_is_tie_safe() -> None:
    since = Cursor("2024-01-15T09:30:00.000+0000", "001000000000009AAA")
    assert changes_query("Account", ["Id"], since=since) == (
        "SELECT Id FROM Account WHERE (SystemModstamp > 2024-01-15T09:30:00.000Z OR "
        "(SystemModstamp = 2024-01-15T09:30:00.000Z AND Id > '001000000000009AAA')) "
        "ORDER BY SystemModstamp, Id"
    )
    assert changes_query("Account", ["Id"], since=None) == (
        "SELECT Id FROM Account ORDER BY SystemModstamp, Id"
    )


def test_changes_query_overlap_and_filter_keep_deletes() -> None:
    text = changes_query(
        "Account",
        ["Id"],
        since=Cursor("2024-01-15T09:30:00.000+0000", "x"),
        overlap_from="2024-01-15T09:25:00.000+0000",
        row_filter="Industry = 'Banking'",
    )
    assert text == (
        "SELECT Id FROM Account WHERE (SystemModstamp >= 2024-01-15T09:25:00.000Z) "
        "AND ((Industry = 'Banking') OR IsDeleted = true) ORDER BY SystemModstamp, Id"
    )


def test_exits_query_finds_rows_leaving_the_filter() -> None:
    text = exits_query(
        "Account",
        since=Cursor("2024-01-15T09:30:00.000+0000", "001A"),
        overlap_from=None,
        row_filter="Industry = 'Banking'",
    )
    assert text.endswith("AND (NOT (Industry = 'Banking')) ORDER BY SystemModstamp, Id")
    assert text.startswith("SELECT Id, SystemModstamp FROM Account WHERE (SystemModstamp >")
    text = exits_query("Account", since=None, overlap_from=None, row_filter="X = 1")
    assert text == (
        "SELECT Id, SystemModstamp FROM Account WHERE (NOT (X = 1)) ORDER BY SystemModstamp, Id"
    )


def test_cursor_tokens_round_trip() -> None:
    cursor = Cursor("2024-01-15T09:30:00.000+0000", "001000000000009AAA")
    assert Cursor.parse(cursor.token()) == cursor
    for bad in ("", "nobar", "|001", "yesterday|001"):
        with pytest.raises(ValueError, match=r"cursor|datetime"):
            Cursor.parse(bad)


def _describe() -> dict[str, object]:
    def f(name: str, sf_type: str, **kw: object) -> dict[str, object]:
        return {"name": name, "type": sf_type, "label": name, "nillable": True, **kw}

    return {
        "name": "Account",
        "fields": [
            f("Id", "id", length=18, nillable=False),
            f("IsDeleted", "boolean", nillable=False),
            f("Name", "string", length=255, nillable=False),
            f("Industry", "picklist", length=255),
            f("BillingCity", "string", length=40),
            f("BillingAddress", "address"),
            f("AnnualRevenue", "currency", precision=18, scale=2),
            f("Score__c", "double", precision=0, scale=0),
            f("NumberOfEmployees", "int", digits=8),
            f("Description", "textarea", length=32000),
            f("SystemModstamp", "datetime", nillable=False),
            f("Founded__c", "date"),
        ],
    }


def test_describe_maps_every_type() -> None:
    schema = entity_schema(_describe())
    assert schema.key == "Id"
    assert schema.version_field == "SystemModstamp"
    assert schema.deleted_field == "IsDeleted"
    assert "BillingAddress" not in schema.fields  # compound: its components are synced
    kinds = {f.name: f.kind for f in schema}
    assert kinds == {
        "Id": FieldKind.ID,
        "IsDeleted": FieldKind.BOOLEAN,
        "Name": FieldKind.STRING,
        "Industry": FieldKind.STRING,
        "BillingCity": FieldKind.STRING,
        "AnnualRevenue": FieldKind.DECIMAL,
        "Score__c": FieldKind.FLOAT,
        "NumberOfEmployees": FieldKind.INTEGER,
        "Description": FieldKind.TEXT,
        "SystemModstamp": FieldKind.DATETIME,
        "Founded__c": FieldKind.DATE,
    }
    assert schema.fields["AnnualRevenue"].precision == 18
    assert schema.fields["Name"].length == 255
    assert not schema.fields["Name"].nullable


def test_field_selection_always_keeps_the_keys_and_accepts_any_case() -> None:
    schema = entity_schema(_describe(), include=["name", "Industry"])
    assert schema.names() == ("Id", "SystemModstamp", "IsDeleted", "Name", "Industry")
    schema = entity_schema(_describe(), exclude=["Description", "billingcity"])
    assert "Description" not in schema.fields
    assert "BillingCity" not in schema.fields


def test_unknown_selected_field_suggests_near_names() -> None:
    with pytest.raises(ConfigError, match="Industy") as info:
        entity_schema(_describe(), include=["Industy"])
    assert "industry" in (info.value.hint or "")


def test_field_spec_fallback_for_unknown_types() -> None:
    spec = field_spec({"name": "X", "type": "somethingnew"})
    assert spec.kind is FieldKind.TEXT
    assert spec.source_type == "somethingnew"
