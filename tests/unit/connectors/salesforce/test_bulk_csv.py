from __future__ import annotations

import pytest

from sfsync.connectors.salesforce.bulk import (
    CsvPage,
    last_record,
    page_header,
    parse_csv_page,
    parse_page,
)
from sfsync.core.errors import RetryableError
from sfsync.core.schema import EntitySchema, FieldKind, FieldSpec

SCHEMA = EntitySchema.of(
    "Account",
    "Id",
    [
        FieldSpec(name="Id", kind=FieldKind.ID),
        FieldSpec(name="Name", kind=FieldKind.STRING),
        FieldSpec(name="IsDeleted", kind=FieldKind.BOOLEAN),
        FieldSpec(name="NumberOfEmployees", kind=FieldKind.INTEGER),
        FieldSpec(name="AnnualRevenue", kind=FieldKind.DECIMAL, precision=18, scale=2),
        FieldSpec(name="SystemModstamp", kind=FieldKind.DATETIME),
        FieldSpec(name="Description", kind=FieldKind.TEXT),
    ],
)


def test_values_are_typed_like_the_rest_api() -> None:
    text = (
        '"Id","Name","IsDeleted","NumberOfEmployees","AnnualRevenue","SystemModstamp","Description"\n'
        '"001A","Acme, Inc.","false","12","1500.5","2024-01-15T09:30:00.000+0000",""\n'
        '"001B","Zürich ""AG""","true","","","2024-01-15T09:30:01.000Z","line one\nline two"\n'
    )
    # Salesforce's Bulk CSV writes datetimes with "Z" (row 2); they come out in REST's
    # "+0000" form, so a SystemModstamp is the same version text whichever API read it.
    records = parse_csv_page(text, SCHEMA)
    assert records == [
        {
            "Id": "001A",
            "Name": "Acme, Inc.",
            "IsDeleted": False,
            "NumberOfEmployees": 12,
            "AnnualRevenue": 1500.5,
            "SystemModstamp": "2024-01-15T09:30:00.000+0000",
            "Description": None,
        },
        {
            "Id": "001B",
            "Name": 'Zürich "AG"',
            "IsDeleted": True,
            "NumberOfEmployees": None,
            "AnnualRevenue": None,
            "SystemModstamp": "2024-01-15T09:30:01.000+0000",
            "Description": "line one\nline two",
        },
    ]


def test_empty_page_and_nul_bytes() -> None:
    assert parse_csv_page("", SCHEMA) == []
    assert parse_csv_page('"Id"\n', SCHEMA) == []
    assert parse_csv_page('"Id","Name"\n"001A","a\x00b"\n', SCHEMA) == [
        {"Id": "001A", "Name": "ab"}
    ]


def test_columns_outside_the_schema_stay_text() -> None:
    assert parse_csv_page('"Id","Account.Name"\n"003A","Acme"\n', SCHEMA) == [
        {"Id": "003A", "Account.Name": "Acme"}
    ]


def _page(text: str, count: int | None = None) -> CsvPage:
    return CsvPage("750A", text.encode(), count)


def test_the_last_record_is_read_from_the_end_of_the_page() -> None:
    page = _page('"Id","Name"\n"001A","a, ""b"""\n"001B","line\none"\n"001C","c"\n')
    assert page_header(page) == ("Id", "Name")
    assert last_record(page, 2) == ["001C", "c"]
    assert last_record(_page('"Id","Name"\n"001A","a"'), 2) == ["001A", "a"]  # no final LF


def test_a_last_record_holding_a_line_break_cannot_be_read_from_the_end() -> None:
    assert last_record(_page('"Id","Name"\n"001A","a"\n"001B","line\none"\n'), 2) is None
    assert last_record(_page('"Id","Name"\n"001B","two ""quoted""\nlines"\n'), 2) is None
    assert last_record(_page('"Id","Name"\n'), 2) is None  # the header alone
    assert last_record(_page('"Id","Name"\n"001A"\n'), 2) is None  # not a whole record


def test_a_page_with_fewer_records_than_its_header_says_is_a_retryable_download() -> None:
    page = _page('"Id","Name"\n"001A","a"\n', count=2)
    with pytest.raises(RetryableError, match="holds 1 records, the header says 2"):
        parse_page(page, SCHEMA)
    assert parse_page(_page('"Id","Name"\n"001A","a"\n', count=1), SCHEMA) == [
        {"Id": "001A", "Name": "a"}
    ]
