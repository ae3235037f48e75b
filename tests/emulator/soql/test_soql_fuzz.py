"""Robustness: whatever the text, the engine answers with a result or an ApiError 400."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from soql_testdata import NOW, SCHEMA, build_source

from sfsync.emulator.errors import ApiError
from sfsync.emulator.soql import compile_query

TOKENS = [
    "SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IN", "LIKE", "INCLUDES", "EXCLUDES",
    "GROUP", "BY", "HAVING", "ORDER", "ASC", "DESC", "NULLS", "FIRST", "LAST", "LIMIT",
    "OFFSET", "FOR", "VIEW", "ALL", "ROWS", "TYPEOF", "WHEN", "THEN", "ELSE", "END", "WITH",
    "Id", "Name", "Account", "Contact", "Contacts", "Parent", "Owner", "Industry", "Tags__c",
    "AnnualRevenue", "CreatedDate", "Founded__c", "IsPartner__c", "COUNT", "SUM", "MAX",
    "FIELDS", "CALENDAR_YEAR", "DAY_ONLY", "TODAY", "LAST_N_DAYS:3", "null", "true", "false",
    "(", ")", ",", ".", "=", "!=", "<", ">", "<=", ">=", "'a'", "'x%'", "'001000000000001'",
    "5", "-1.5", "2024-01-01", "2024-01-01T00:00:00Z", "2001", "200",
]  # fmt: skip


CODES = {
    "MALFORMED_QUERY", "INVALID_FIELD", "INVALID_TYPE", "NUMBER_OUTSIDE_VALID_RANGE",
    "INVALID_QUERY_FILTER_OPERATOR",
}  # fmt: skip


def answer(soql: str) -> None:
    failure: ApiError | None = None
    try:
        compiled = compile_query(soql, SCHEMA)
    except ApiError as caught:
        failure = caught
    if failure is not None:
        assert failure.status == 400
        assert failure.details[0].code in CODES
        assert "ERROR at Row:" in failure.details[0].message
        return
    result = compiled.run(build_source(), now=NOW, include_deleted=False, api_version="59.0")
    records = list(result.records)
    assert compiled.is_count_only or result.total_size == len(records)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=18).map(" ".join))
def test_token_soup_never_crashes(soql: str) -> None:
    answer(soql)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from(TOKENS), max_size=14).map(
        lambda tokens: "SELECT Id, Name FROM Account " + " ".join(tokens)
    )
)
def test_clause_soup_never_crashes(soql: str) -> None:
    answer(soql)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_arbitrary_text_never_crashes(soql: str) -> None:
    answer(soql)
