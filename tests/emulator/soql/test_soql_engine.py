"""The engine's seams: streaming over the RecordSource, validation conditions, relative
date ranges, the parser's AST, and queries against the standard-object catalogue."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
from soql_testdata import NOW, SCHEMA, U1, A, build_source

from sfsync.emulator.errors import ApiError
from sfsync.emulator.schema.model import WireValue
from sfsync.emulator.soql import MemorySource, Record, compile_condition, compile_query
from sfsync.emulator.soql import ast as a
from sfsync.emulator.soql.dates import relative_range
from sfsync.emulator.soql.parser import parse_condition, parse_query


class ScanRecorder:
    """A RecordSource fake that counts how many rows each scan has handed out."""

    def __init__(self, inner: MemorySource) -> None:
        self.inner = inner
        self.scans: list[int] = []

    def scan(self, object_name: str, *, include_deleted: bool) -> Iterator[Record]:
        self.scans.append(0)
        index = len(self.scans) - 1
        for row in self.inner.scan(object_name, include_deleted=include_deleted):
            self.scans[index] += 1
            yield row

    def get(self, record_id: str) -> Record | None:
        return self.inner.get(record_id)

    def children(
        self, object_name: str, field_name: str, parent_id: str, *, include_deleted: bool
    ) -> Iterator[Record]:
        return self.inner.children(
            object_name, field_name, parent_id, include_deleted=include_deleted
        )


def big_source(count: int) -> MemorySource:
    source = MemorySource()
    for n in range(count):
        source.put(
            "Account", {"Id": f"001{n:012d}AAA", "Name": f"N{n % 10}", "NumberOfEmployees": n}
        )
    return source


def test_records_stream_without_order_by() -> None:
    source = ScanRecorder(big_source(1000))
    result = compile_query("SELECT Id, Name FROM Account WHERE Name = 'n3'", SCHEMA).run(
        source, now=NOW, include_deleted=False, api_version="59.0"
    )
    assert result.total_size == 100
    assert source.scans == [1000]  # the counting pass; rendering has not started
    first = next(result.records)
    assert first["Name"] == "N3"
    assert source.scans[1] == 4  # rows 0..3 read, one record rendered
    assert sum(1 for _ in result.records) == 99
    assert source.scans[1] == 994  # stops at the last match (row 993): total_size was known


def test_counting_pass_stops_at_offset_plus_limit() -> None:
    source = ScanRecorder(big_source(1000))
    result = compile_query("SELECT Id FROM Account LIMIT 5 OFFSET 10", SCHEMA).run(
        source, now=NOW, include_deleted=False, api_version="59.0"
    )
    assert result.total_size == 5
    assert source.scans == [15]
    assert [r["Id"] for r in result.records] == [f"001{n:012d}AAA" for n in range(10, 15)]
    assert source.scans[1] == 15


class CountedSource(ScanRecorder):
    """A source that also counts without scanning (as the record store does)."""

    def count(self, object_name: str, *, include_deleted: bool = False) -> int:
        return sum(1 for _ in self.inner.scan(object_name, include_deleted=include_deleted))


@pytest.mark.parametrize(
    ("tail", "total"),
    [("", 1000), ("LIMIT 10", 10), ("LIMIT 10 OFFSET 995", 5), ("OFFSET 2000", 0)],
)
def test_unfiltered_queries_use_the_source_count(tail: str, total: int) -> None:
    source = CountedSource(big_source(1000))
    result = compile_query(f"SELECT Id FROM Account {tail}", SCHEMA).run(
        source, now=NOW, include_deleted=False, api_version="59.0"
    )
    assert result.total_size == total
    assert source.scans == []  # no counting pass
    assert sum(1 for _ in result.records) == total


def test_filtered_queries_still_count_by_scanning() -> None:
    source = CountedSource(big_source(100))
    result = compile_query("SELECT Id FROM Account WHERE Name = 'n1'", SCHEMA).run(
        source, now=NOW, include_deleted=False, api_version="59.0"
    )
    assert (result.total_size, source.scans) == (10, [100])


def test_ordered_results_are_sorted_then_rendered_lazily() -> None:
    source = ScanRecorder(big_source(300))
    result = compile_query(
        "SELECT NumberOfEmployees FROM Account ORDER BY NumberOfEmployees DESC LIMIT 3", SCHEMA
    ).run(source, now=NOW, include_deleted=False, api_version="59.0")
    assert source.scans == [300]
    assert [r["NumberOfEmployees"] for r in result.records] == [299, 298, 297]


def test_a_compiled_query_runs_again_against_new_data() -> None:
    compiled = compile_query("SELECT Id FROM Account WHERE CreatedDate = TODAY", SCHEMA)
    source = MemorySource()
    source.put("Account", {"Id": A[1], "CreatedDate": "2024-03-15T00:00:00.000+0000"})
    first = compiled.run(source, now=NOW, include_deleted=False, api_version="59.0")
    later = compiled.run(
        source, now=datetime(2024, 3, 16, tzinfo=UTC), include_deleted=False, api_version="59.0"
    )
    assert (first.total_size, later.total_size) == (1, 0)


def test_missing_fields_read_as_null() -> None:
    source = MemorySource.of({"Account": [{"Id": A[1]}]})
    result = compile_query(
        "SELECT Name, Owner.Name, BillingAddress FROM Account WHERE Industry = null", SCHEMA
    ).run(source, now=NOW, include_deleted=False, api_version="59.0")
    assert [{k: v for k, v in r.items() if k != "attributes"} for r in result.records] == [
        {"Name": None, "Owner": None, "BillingAddress": None}
    ]


# -- validation-rule conditions ---------------------------------------------------------------

ACCOUNT = SCHEMA.objects["account"]


@pytest.mark.parametrize(
    ("condition", "record", "expected"),
    [
        ("AnnualRevenue > 1000 AND Industry = null", {"AnnualRevenue": 5000.0}, True),
        (
            "AnnualRevenue > 1000 AND Industry = null",
            {"AnnualRevenue": 5000.0, "Industry": "Energy"},
            False,
        ),
        ("Name LIKE 'test%'", {"Name": "Testing"}, True),
        ("Name LIKE 'test%'", {"Name": "A test"}, False),
        ("NOT (Name = null)", {"Name": "x"}, True),
        ("Owner.IsActive = false", {"OwnerId": U1}, False),
        ("Owner.IsActive = true", {"OwnerId": U1}, True),
        ("Parent.Name = 'Acme'", {"ParentId": A[1]}, True),
        ("Parent.Name = 'Acme'", {"ParentId": None}, False),
        ("CreatedDate = TODAY", {"CreatedDate": "2024-03-15T23:00:00.000+0000"}, True),
        ("CreatedDate = TODAY", {"CreatedDate": "2024-03-16T00:00:00.000+0000"}, False),
        ("Tags__c INCLUDES ('b') OR NumberOfEmployees < 0", {"Tags__c": "a;b"}, True),
        ("Tags__c INCLUDES ('b') OR NumberOfEmployees < 0", {"NumberOfEmployees": 3}, False),
        ("Id IN (SELECT AccountId FROM Contact)", {"Id": A[2]}, True),
        ("Id IN (SELECT AccountId FROM Contact)", {"Id": A[4]}, False),
    ],
)
def test_compile_condition(condition: str, record: dict[str, WireValue], expected: bool) -> None:
    check = compile_condition(condition, ACCOUNT, SCHEMA)
    assert check(record, build_source(), NOW) is expected


@pytest.mark.parametrize(
    ("condition", "code"),
    [
        ("Nope = 1", "INVALID_FIELD"),
        ("Name = ", "MALFORMED_QUERY"),
        ("NumberOfEmployees = 'x'", "INVALID_FIELD"),
        ("Name = 'a' AND Name = 'b' OR Name = 'c'", "MALFORMED_QUERY"),
        ("SELECT Id FROM Account", "MALFORMED_QUERY"),
    ],
)
def test_compile_condition_errors(condition: str, code: str) -> None:
    with pytest.raises(ApiError) as caught:
        compile_condition(condition, ACCOUNT, SCHEMA)
    assert caught.value.details[0].code == code
    assert caught.value.details[0].message.startswith(f"\n{condition}\n")


# -- relative dates ---------------------------------------------------------------------------

D = date


@pytest.mark.parametrize(
    ("name", "n", "start", "end"),
    [
        ("TODAY", None, D(2024, 3, 15), D(2024, 3, 16)),
        ("YESTERDAY", None, D(2024, 3, 14), D(2024, 3, 15)),
        ("TOMORROW", None, D(2024, 3, 16), D(2024, 3, 17)),
        ("THIS_WEEK", None, D(2024, 3, 10), D(2024, 3, 17)),
        ("LAST_WEEK", None, D(2024, 3, 3), D(2024, 3, 10)),
        ("NEXT_WEEK", None, D(2024, 3, 17), D(2024, 3, 24)),
        ("THIS_MONTH", None, D(2024, 3, 1), D(2024, 4, 1)),
        ("LAST_MONTH", None, D(2024, 2, 1), D(2024, 3, 1)),
        ("NEXT_MONTH", None, D(2024, 4, 1), D(2024, 5, 1)),
        ("LAST_90_DAYS", None, D(2023, 12, 16), D(2024, 3, 16)),
        ("NEXT_90_DAYS", None, D(2024, 3, 16), D(2024, 6, 14)),
        ("THIS_QUARTER", None, D(2024, 1, 1), D(2024, 4, 1)),
        ("LAST_QUARTER", None, D(2023, 10, 1), D(2024, 1, 1)),
        ("NEXT_QUARTER", None, D(2024, 4, 1), D(2024, 7, 1)),
        ("THIS_YEAR", None, D(2024, 1, 1), D(2025, 1, 1)),
        ("LAST_YEAR", None, D(2023, 1, 1), D(2024, 1, 1)),
        ("NEXT_YEAR", None, D(2025, 1, 1), D(2026, 1, 1)),
        ("THIS_FISCAL_QUARTER", None, D(2024, 1, 1), D(2024, 4, 1)),
        ("LAST_N_DAYS", 7, D(2024, 3, 8), D(2024, 3, 16)),
        ("NEXT_N_DAYS", 7, D(2024, 3, 16), D(2024, 3, 23)),
        ("N_DAYS_AGO", 7, D(2024, 3, 8), D(2024, 3, 9)),
        ("LAST_N_WEEKS", 2, D(2024, 2, 25), D(2024, 3, 10)),
        ("NEXT_N_WEEKS", 2, D(2024, 3, 17), D(2024, 3, 31)),
        ("N_WEEKS_AGO", 2, D(2024, 2, 25), D(2024, 3, 3)),
        ("LAST_N_MONTHS", 3, D(2023, 12, 1), D(2024, 3, 1)),
        ("NEXT_N_MONTHS", 3, D(2024, 4, 1), D(2024, 7, 1)),
        ("N_MONTHS_AGO", 14, D(2023, 1, 1), D(2023, 2, 1)),
        ("LAST_N_QUARTERS", 2, D(2023, 7, 1), D(2024, 1, 1)),
        ("NEXT_N_QUARTERS", 2, D(2024, 4, 1), D(2024, 10, 1)),
        ("N_QUARTERS_AGO", 1, D(2023, 10, 1), D(2024, 1, 1)),
        ("LAST_N_YEARS", 2, D(2022, 1, 1), D(2024, 1, 1)),
        ("NEXT_N_YEARS", 2, D(2025, 1, 1), D(2027, 1, 1)),
        ("N_YEARS_AGO", 10, D(2014, 1, 1), D(2015, 1, 1)),
        ("LAST_N_FISCAL_YEARS", 1, D(2023, 1, 1), D(2024, 1, 1)),
    ],
)
def test_relative_ranges(name: str, n: int | None, start: date, end: date) -> None:
    assert relative_range(name, n, NOW) == (start, end)


def test_relative_ranges_read_now_in_utc() -> None:
    from datetime import timedelta, timezone

    late_in_new_york = datetime(2024, 3, 15, 21, 0, tzinfo=timezone(timedelta(hours=-5)))
    assert relative_range("TODAY", None, late_in_new_york) == (D(2024, 3, 16), D(2024, 3, 17))


def test_week_starts_on_sunday() -> None:
    sunday = datetime(2024, 3, 10, 1, 0, tzinfo=UTC)
    saturday = datetime(2024, 3, 16, 23, 0, tzinfo=UTC)
    assert relative_range("THIS_WEEK", None, sunday) == relative_range("THIS_WEEK", None, saturday)


# -- parser -----------------------------------------------------------------------------------


def test_parser_builds_typed_nodes_with_positions() -> None:
    query = parse_query(
        "SELECT Id, Account.Name, COUNT(Id) c, (SELECT Id FROM Contacts)\n"
        "FROM Contact ct WHERE Name = 'O\\'Hara\\n' AND Amount >= -1.5 "
        "AND CreatedDate > 2024-01-02T03:04:05.678+01:00 AND Day = 2024-01-02 "
        "AND Day = LAST_N_DAYS:7 AND Day = TODAY AND Flag = TRUE AND X = null "
        "ORDER BY Name DESC NULLS LAST, Id LIMIT 10 OFFSET 5 FOR VIEW"
    )
    assert query.object_name == "Contact"
    assert query.alias == "ct"
    assert query.object_pos == a.Pos(2, 6)
    field = query.select[1]
    assert isinstance(field, a.SelectField)
    assert field.ref == a.FieldRef(("Account", "Name"), a.Pos(1, 12))
    func = query.select[2]
    assert isinstance(func, a.SelectFunc)
    assert func.alias == "c"
    assert func.call.name == "COUNT"
    assert isinstance(query.select[3], a.SelectSubquery)
    assert isinstance(query.where, a.And)
    values = [c.value for c in query.where.items if isinstance(c, a.Compare)]
    assert values[0] == a.StringLit("O'Hara\n", a.Pos(2, 30))
    assert isinstance(values[1], a.NumberLit)
    assert values[1].value == -1.5
    assert isinstance(values[2], a.DateTimeLit)
    assert values[2].value == datetime(2024, 1, 2, 2, 4, 5, 678000, tzinfo=UTC)
    assert isinstance(values[3], a.DateLit)
    assert values[3].value == date(2024, 1, 2)
    assert isinstance(values[4], a.RelativeDateLit)
    assert (values[4].name, values[4].n) == ("LAST_N_DAYS", 7)
    assert isinstance(values[5], a.RelativeDateLit)
    assert values[5].n is None
    assert isinstance(values[6], a.BoolLit)
    assert values[6].value is True
    assert isinstance(values[7], a.NullLit)
    assert query.order_by[0].descending
    assert query.order_by[0].nulls_first is False
    assert query.order_by[1].nulls_first is None
    assert (query.limit, query.offset) == (10, 5)


def test_parser_keeps_like_escapes_and_decodes_unicode() -> None:
    cond = parse_condition("Name LIKE '50\\%\\_off \\u00e9'")
    assert isinstance(cond, a.Compare)
    assert cond.value == a.StringLit("50\\%\\_off \u00e9", a.Pos(1, 11))


def test_parser_and_or_not_shapes() -> None:
    cond = parse_condition("NOT (A = 1 OR B = 2) AND C = 3")
    assert isinstance(cond, a.And)
    assert isinstance(cond.items[0], a.Not)
    assert isinstance(cond.items[0].item, a.Or)


def test_semi_join_parses_as_a_subquery() -> None:
    cond = parse_condition("Id NOT IN (SELECT AccountId FROM Contact WHERE LastName = 'x')")
    assert isinstance(cond, a.SemiJoin)
    assert cond.negated
    assert cond.query.object_name == "Contact"


# -- the standard-object catalogue ------------------------------------------------------------


def test_queries_against_the_standard_catalogue() -> None:
    standard = pytest.importorskip("sfsync.emulator.schema.standard")
    schema = standard.standard_schema()
    source = MemorySource()
    account = "001000000000001AAA"
    source.put(
        "Account",
        {"Id": account, "Name": "Acme", "BillingCity": "Paris", "BillingCountry": "France",
         "Industry": "Energy"},
    )  # fmt: skip
    source.put(
        "Contact",
        {"Id": "003000000000001AAA", "LastName": "Smith", "FirstName": "Ann", "AccountId": account},
    )
    result = compile_query(
        "select id, name, billingaddress, (select lastname, account.name from contacts) "
        "from account where billingcountry = 'FRANCE'",
        schema,
    ).run(source, now=NOW, include_deleted=False, api_version="60.0")
    records = list(result.records)
    assert result.total_size == 1
    record = records[0]
    assert list(record) == ["attributes", "Id", "Name", "BillingAddress", "Contacts"]
    assert record["BillingAddress"] == {
        "city": "Paris",
        "country": "France",
        "geocodeAccuracy": None,
        "latitude": None,
        "longitude": None,
        "postalCode": None,
        "state": None,
        "street": None,
    }
    contacts = record["Contacts"]
    assert isinstance(contacts, dict)
    assert contacts["records"][0]["Account"]["Name"] == "Acme"
    with pytest.raises(ApiError) as caught:
        compile_query("SELECT Id FROM Account WHERE Industry LIKE 5", schema)
    assert caught.value.details[0].code == "INVALID_FIELD"


def test_time_fields_take_time_literals() -> None:
    from dataclasses import replace
    from types import MappingProxyType

    from sfsync.emulator.schema.model import FieldDef, FieldType, Schema

    opens = FieldDef(name="Opens__c", type=FieldType.TIME, label="Opens")
    account = SCHEMA.objects["account"]
    fields = MappingProxyType({**account.fields, "opens__c": opens})
    schema = Schema(MappingProxyType({"account": replace(account, fields=fields)}))
    source = MemorySource.of(
        {
            "Account": [
                {"Id": A[1], "Opens__c": "08:30:00.000Z"},
                {"Id": A[2], "Opens__c": "09:30:00.000Z"},
                {"Id": A[3], "Opens__c": None},
            ]
        }
    )

    def ids(where: str) -> list[str]:
        result = compile_query(f"SELECT Id FROM Account WHERE {where} ORDER BY Opens__c", schema)
        run = result.run(source, now=NOW, include_deleted=False, api_version="59.0")
        return [str(r["Id"]) for r in run.records]

    assert ids("Opens__c = 09:30:00Z") == [A[2]]
    assert ids("Opens__c < 09:30:00.000Z") == [A[1]]
    assert ids("Opens__c >= 08:30:00.0z") == [A[1], A[2]]
    assert ids("Opens__c != null") == [A[1], A[2]]
    with pytest.raises(ApiError) as caught:
        ids("Opens__c = '09:30:00.000Z'")
    assert caught.value.details[0].code == "INVALID_FIELD"
    with pytest.raises(ApiError) as caught:
        ids("Opens__c = 25:00:00Z")
    assert caught.value.details[0].code == "MALFORMED_QUERY"
