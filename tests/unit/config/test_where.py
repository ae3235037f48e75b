"""The cheap "is this a condition at all" check of `where`."""

from __future__ import annotations

import pytest

from sfsync.config.where import check_condition


@pytest.mark.parametrize(
    "text",
    [
        "Industry != null",
        "IsDeleted = false AND (AnnualRevenue > 1000 OR Rating = 'Hot')",
        "Name LIKE 'Acme%'",
        "Type IN ('Customer', 'Partner')",
        "Tags__c INCLUDES ('a;b')",  # a ';' inside a string is data
        "Name = 'O\\'Brien'",
        "CloseDate = LAST_N_DAYS:90",
        "NOT (Name = 'x')",
        "Description = 'ORDER BY in text is fine'",
    ],
)
def test_accepts_conditions(text: str) -> None:
    assert check_condition(text) is None


@pytest.mark.parametrize(
    ("text", "message", "fix"),
    [
        ("   ", "empty", "remove `where`"),
        ("SELECT Id FROM Account WHERE X = 1", "whole query", "what follows WHERE"),
        ("WHERE Industry != null", "keyword WHERE", "drop WHERE and write: Industry != null"),
        ("Name = 'Acme", "not closed", "close it"),
        ('Name = "Acme"', "single quotes", "'Energy'"),
        ("Name = 'a'; DELETE", "cannot contain ';'", "remove"),
        ("Name == 'a'", "not '=='", "Industry = 'Energy'"),
        ("A = 1 && B = 2", "AND and OR", "AND / OR"),
        ("(A = 1", "parentheses", "match each ("),
        ("A = 1)", "parentheses", "match each ("),
        ("A = 1 ORDER BY Name", "ORDER BY is a clause", "remove ORDER BY"),
        ("A = 1 LIMIT 10", "LIMIT is a clause", "remove LIMIT"),
        ("A = 1 AND", "starts or ends with AND", "complete"),
        ("Email", "compares nothing", "field, operator and value"),
        ("Industry", "compares nothing", "e.g."),
    ],
)
def test_rejects_obvious_non_conditions(text: str, message: str, fix: str) -> None:
    issue = check_condition(text)
    assert issue is not None
    assert message in issue.message
    assert fix in issue.fix
