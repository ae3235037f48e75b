"""Rejected queries: Salesforce's error codes, and for many the exact message."""

from __future__ import annotations

import pytest
from soql_testdata import SCHEMA

from sfsync.emulator.errors import ApiError
from sfsync.emulator.soql import compile_query

HINT_FIELD = (
    "If you are attempting to use a custom field, be sure to append the '__c' after the custom "
    "field name. Please reference your WSDL or the describe call for the appropriate names."
)
HINT_OBJECT = (
    "If you are attempting to use a custom object, be sure to append the '__c' after the entity "
    "name. Please reference your WSDL or the describe call for the appropriate names."
)
HINT_REL = (
    "If you are attempting to use a custom relationship, be sure to append the '__r' after the "
    "custom relationship name. Please reference your WSDL or the describe call for the "
    "appropriate names."
)


def error_of(soql: str) -> tuple[str, str]:
    with pytest.raises(ApiError) as caught:
        compile_query(soql, SCHEMA)
    assert caught.value.status == 400
    assert len(caught.value.details) == 1
    detail = caught.value.details[0]
    assert detail.fields == ()
    return detail.code, detail.message


def caret(soql: str, column: int, reason: str, row: int = 1) -> str:
    line = soql.split("\n")[row - 1]
    return f"\n{line}\n{' ' * (column - 1)}^\nERROR at Row:{row}:Column:{column}\n{reason}"


EXACT: list[tuple[str, str, int, str]] = [
    # (soql, code, column, reason)
    ("SELECT Id, FROM Account", "MALFORMED_QUERY", 12, "unexpected token: 'FROM'"),
    ("SELECT FROM Account", "MALFORMED_QUERY", 8, "unexpected token: 'FROM'"),
    ("SELECT Id FROM", "MALFORMED_QUERY", 15, "unexpected token: '<EOF>'"),
    ("SELECT Id FROM Account WHERE", "MALFORMED_QUERY", 29, "unexpected token: '<EOF>'"),
    ("SELECT Id FROM Account WHERE Name =", "MALFORMED_QUERY", 36, "unexpected token: '<EOF>'"),
    ("SELECT Id Account", "MALFORMED_QUERY", 11, "unexpected token: 'Account'"),
    ("SELECT Id FROM Account WHERE Name == 'x'", "MALFORMED_QUERY", 36, "unexpected token: '='"),
    ("SELECT Id FROM Account WHERE Name IS NULL", "MALFORMED_QUERY", 35, "unexpected token: 'IS'"),
    ("SELECT Id FROM Account WHERE Name = 'x' AND Rating = 'y' OR Industry = 'z'",
     "MALFORMED_QUERY", 58, "unexpected token: 'OR'"),
    ("SELECT Id FROM Account WHERE Name = 'x' OR Rating = 'y' AND Industry = 'z'",
     "MALFORMED_QUERY", 57, "unexpected token: 'AND'"),
    ("SELECT Id FROM Account LIMIT x", "MALFORMED_QUERY", 30, "unexpected token: 'x'"),
    ("SELECT Id FROM Account LIMIT 1.5", "MALFORMED_QUERY", 30, "unexpected token: '1.5'"),
    ("SELECT Id FROM Account LIMIT -1", "MALFORMED_QUERY", 30, "unexpected token: '-1'"),
    ("SELECT Id FROM Account ORDER Name", "MALFORMED_QUERY", 30, "unexpected token: 'Name'"),
    ("SELECT Id FROM Account WHERE Name IN ()", "MALFORMED_QUERY", 39, "unexpected token: ')'"),
    ("SELECT Id FROM Account WHERE Name = foo", "MALFORMED_QUERY", 37, "unexpected token: 'foo'"),
    ("SELECT Id FROM Account WHERE Name = nulls", "MALFORMED_QUERY", 37,
     "unexpected token: 'nulls'"),
    ("SELECT Id FROM Account WHERE CreatedDate = SOMEDAY", "MALFORMED_QUERY", 44,
     "unexpected token: 'SOMEDAY'"),
    ("SELECT Id FROM Account WHERE CreatedDate = LAST_N_DAZE:3", "MALFORMED_QUERY", 44,
     "unexpected token: 'LAST_N_DAZE'"),
    ("SELECT Id FROM Account WHERE Founded__c = 2024-02-30", "MALFORMED_QUERY", 43,
     "unexpected token: '2024-02-30'"),
    ("SELECT Id FROM Account WHERE Name # 1", "MALFORMED_QUERY", 35, "unexpected token: '#'"),
    ("SELECT Id FROM Account WHERE Name = 'a\\qb'", "MALFORMED_QUERY", 37,
     "Invalid string literal 'a\\qb'. Illegal character sequence '\\q' in string literal."),
    ("SELECT Id FROM Account WHERE CreatedDate = LAST_N_DAYS", "MALFORMED_QUERY", 44,
     "Invalid date literal: LAST_N_DAYS requires a parameter"),
    # names
    ("SELECT Nme FROM Account", "INVALID_FIELD", 8,
     f"No such column 'Nme' on entity 'Account'. {HINT_FIELD}"),
    ("SELECT Id, Name FROM Contact", "INVALID_FIELD", 12,
     f"No such column 'Name' on entity 'Contact'. {HINT_FIELD}"),
    ("SELECT Id FROM Account WHERE Nme = 'x'", "INVALID_FIELD", 30,
     f"No such column 'Nme' on entity 'Account'. {HINT_FIELD}"),
    ("SELECT Id FROM Account ORDER BY Nme", "INVALID_FIELD", 33,
     f"No such column 'Nme' on entity 'Account'. {HINT_FIELD}"),
    ("SELECT Id, Account.Nme FROM Contact", "INVALID_FIELD", 12,
     f"No such column 'Nme' on entity 'Account'. {HINT_FIELD}"),
    ("SELECT Id, Account.Owner.Nme FROM Contact", "INVALID_FIELD", 12,
     f"No such column 'Nme' on entity 'User'. {HINT_FIELD}"),
    ("SELECT Custom_Thing FROM Account", "INVALID_FIELD", 8,
     f"No such column 'Custom_Thing' on entity 'Account'. {HINT_FIELD}"),
    ("SELECT Id FROM Acount", "INVALID_TYPE", 16,
     f"sObject type 'Acount' is not supported. {HINT_OBJECT}"),
    ("SELECT Id FROM Thing__c", "INVALID_TYPE", 16,
     f"sObject type 'Thing__c' is not supported. {HINT_OBJECT}"),
    ("SELECT Id, Acount.Name FROM Contact", "INVALID_FIELD", 12,
     f"Didn't understand relationship 'Acount' in field path. {HINT_REL}"),
    ("SELECT Id, AccountId.Name FROM Contact", "INVALID_FIELD", 12,
     f"Didn't understand relationship 'AccountId' in field path. {HINT_REL}"),
    ("SELECT Id FROM Account a WHERE b.Name = 'x'", "INVALID_FIELD", 32,
     f"Didn't understand relationship 'b' in field path. {HINT_REL}"),
    ("SELECT Id, (SELECT Id FROM Contact) FROM Account", "INVALID_TYPE", 28,
     f"Didn't understand relationship 'Contact' in FROM part of query call. {HINT_REL}"),
    ("SELECT Id, (SELECT Nme FROM Contacts) FROM Account", "INVALID_FIELD", 20,
     f"No such column 'Nme' on entity 'Contact'. {HINT_FIELD}"),
    # offset
    ("SELECT Id FROM Account OFFSET 2001", "NUMBER_OUTSIDE_VALID_RANGE", 31,
     "Maximum SOQL offset allowed is 2000"),
    ("SELECT Id FROM Account ORDER BY Name LIMIT 5 OFFSET 5000", "NUMBER_OUTSIDE_VALID_RANGE", 53,
     "Maximum SOQL offset allowed is 2000"),
    # literal types
    ("SELECT Id FROM Account WHERE NumberOfEmployees = '5'", "INVALID_FIELD", 30,
     "value of filter criterion for field 'NumberOfEmployees' must be of type integer and "
     "should not be enclosed in quotes"),
    ("SELECT Id FROM Account WHERE AnnualRevenue = 'x'", "INVALID_FIELD", 30,
     "value of filter criterion for field 'AnnualRevenue' must be of type double and "
     "should not be enclosed in quotes"),
    ("SELECT Id FROM Account WHERE Name = 5", "INVALID_FIELD", 30,
     "value of filter criterion for field 'Name' must be of type string and "
     "should be enclosed in quotes"),
    ("SELECT Id FROM Account WHERE name = true", "INVALID_FIELD", 30,
     "value of filter criterion for field 'Name' must be of type string and "
     "should be enclosed in quotes"),
    ("SELECT Id FROM Account WHERE IsPartner__c = 'true'", "INVALID_FIELD", 30,
     "value of filter criterion for field 'IsPartner__c' must be of type boolean and "
     "should not be enclosed in quotes"),
    ("SELECT Id FROM Account WHERE Founded__c = 2024-01-01T00:00:00Z", "INVALID_FIELD", 30,
     "value of filter criterion for field 'Founded__c' must be of type date and "
     "should not be enclosed in quotes"),
    ("SELECT Id FROM Account WHERE Founded__c = '2024-01-01'", "INVALID_FIELD", 30,
     "value of filter criterion for field 'Founded__c' must be of type date and "
     "should not be enclosed in quotes"),
    ("SELECT Id FROM Account WHERE CreatedDate = 2024-01-01", "INVALID_FIELD", 30,
     "value of filter criterion for field 'CreatedDate' must be of type dateTime and "
     "should not be enclosed in quotes"),
    ("SELECT Id FROM Account WHERE Id = 5", "INVALID_FIELD", 30,
     "value of filter criterion for field 'Id' must be of type id and "
     "should be enclosed in quotes"),
    ("SELECT Id FROM Account WHERE NumberOfEmployees IN ('a')", "INVALID_FIELD", 30,
     "value of filter criterion for field 'NumberOfEmployees' must be of type integer and "
     "should not be enclosed in quotes"),
    ("SELECT Id FROM Account WHERE CALENDAR_YEAR(CreatedDate) = '2024'", "INVALID_FIELD", 30,
     "value of filter criterion for field 'CreatedDate' must be of type integer and "
     "should not be enclosed in quotes"),
    ("SELECT Id FROM Account WHERE Id = 'abc'", "INVALID_QUERY_FILTER_OPERATOR", 35,
     "invalid ID field: abc"),
    ("SELECT Id FROM Account WHERE ParentId IN ('001000000000001AAA', 'x')",
     "INVALID_QUERY_FILTER_OPERATOR", 65, "invalid ID field: x"),
    ("SELECT Id FROM Account WHERE Description = 'x'", "INVALID_FIELD", 30,
     "field 'Description' can not be filtered in a query call"),
    ("SELECT Id FROM Account WHERE BillingAddress = null", "INVALID_FIELD", 30,
     "field 'BillingAddress' can not be filtered in a query call"),
    # structure
    ("SELECT Id, Id FROM Account", "MALFORMED_QUERY", 12, "duplicate field selected: Id"),
    ("SELECT Name, name FROM Account", "MALFORMED_QUERY", 14, "duplicate field selected: name"),
    ("SELECT Name, COUNT(Id) FROM Account", "MALFORMED_QUERY", 8,
     "Field must be grouped or aggregated: Name"),
    ("SELECT Name FROM Account GROUP BY Industry", "MALFORMED_QUERY", 8,
     "Field must be grouped or aggregated: Name"),
    ("SELECT Industry, COUNT(Id) FROM Account GROUP BY Industry HAVING Name = 'x'",
     "MALFORMED_QUERY", 66, "Field must be grouped or aggregated: Name"),
    ("SELECT SUM(Name) FROM Account", "MALFORMED_QUERY", 8,
     "field Name does not support aggregate operator SUM"),
    ("SELECT AVG(IsPartner__c) FROM Account", "MALFORMED_QUERY", 8,
     "field IsPartner__c does not support aggregate operator AVG"),
    ("SELECT MAX(Tags__c) FROM Account", "MALFORMED_QUERY", 8,
     "field Tags__c does not support aggregate operator MAX"),
    ("SELECT Industry FROM Account GROUP BY Description", "MALFORMED_QUERY", 39,
     "field 'Description' can not be grouped in a query call"),
    ("SELECT FIELDS(ALL) FROM Account", "MALFORMED_QUERY", 8,
     "The SOQL FIELDS function must have a LIMIT of at most 200"),
    ("SELECT FIELDS(CUSTOM) FROM Account LIMIT 201", "MALFORMED_QUERY", 8,
     "The SOQL FIELDS function must have a LIMIT of at most 200"),
    ("SELECT Id FROM Account WHERE Id IN (SELECT OwnerId FROM Contact)", "MALFORMED_QUERY", 30,
     "The selected field 'OwnerId' in the subquery and the left operand field in the where "
     "expression in the outer query 'Id' should point to the same object type"),
]  # fmt: skip


@pytest.mark.parametrize(("soql", "code", "column", "reason"), EXACT)
def test_exact_errors(soql: str, code: str, column: int, reason: str) -> None:
    assert error_of(soql) == (code, caret(soql, column, reason))


def test_error_on_a_later_line_points_at_that_line() -> None:
    soql = "SELECT Id\nFROM Account\nWHERE Nme = 'x'"
    assert error_of(soql) == (
        "INVALID_FIELD",
        caret(soql, 7, f"No such column 'Nme' on entity 'Account'. {HINT_FIELD}", row=3),
    )


def test_error_on_a_later_line_in_a_parse_error() -> None:
    soql = "SELECT Id,\n  Name\nFROM Account\nWHERE Name = 'x' AND\nLIMIT 5"
    code, message = error_of(soql)
    assert code == "MALFORMED_QUERY"
    assert message.endswith("ERROR at Row:5:Column:1\nunexpected token: 'LIMIT'")


CODES: list[tuple[str, str]] = [
    ("", "MALFORMED_QUERY"),
    ("SELECT", "MALFORMED_QUERY"),
    ("DELETE FROM Account", "MALFORMED_QUERY"),
    ("SELECT Id FROM Account WHERE Name = 'unterminated", "MALFORMED_QUERY"),
    ("SELECT Id FROM Account WHERE Name = \"double\"", "MALFORMED_QUERY"),
    ("SELECT Id FROM Account WHERE (Name = 'x'", "MALFORMED_QUERY"),
    ("SELECT Id FROM Account WHERE Name = 'x')", "MALFORMED_QUERY"),
    ("SELECT Id FROM Account LIMIT 5 LIMIT 6", "MALFORMED_QUERY"),
    ("SELECT Id FROM Account OFFSET 5 LIMIT 6", "MALFORMED_QUERY"),
    ("SELECT Id FROM Account ORDER BY Name NULLS", "MALFORMED_QUERY"),
    ("SELECT Id FROM Account WHERE Name NOT LIKE 'x'", "MALFORMED_QUERY"),
    ("SELECT Id FROM Account WHERE AnnualRevenue LIKE '5%'", "MALFORMED_QUERY"),
    ("SELECT Id FROM Account WHERE Id LIKE '001%'", "MALFORMED_QUERY"),
    ("SELECT Id FROM Account WHERE Founded__c LIKE '2024%'", "MALFORMED_QUERY"),
    ("SELECT Id FROM Account WHERE Name LIKE 5", "INVALID_FIELD"),
    ("SELECT Id FROM Account WHERE Name INCLUDES ('a')", "MALFORMED_QUERY"),
    ("SELECT Id FROM Account WHERE Tags__c INCLUDES (5)", "INVALID_FIELD"),
    ("SELECT Id FROM Account WHERE Tags__c < 'a'", "MALFORMED_QUERY"),
    ("SELECT Id FROM Account WHERE Tags__c = 5", "INVALID_FIELD"),
    ("SELECT Id FROM Account WHERE Name < null", "MALFORMED_QUERY"),
    ("SELECT Id FROM Account WHERE COUNT(Id) > 1", "MALFORMED_QUERY"),
    ("SELECT Id FROM Account HAVING COUNT(Id) > 1", "MALFORMED_QUERY"),
    ("SELECT COUNT(), Name FROM Account", "MALFORMED_QUERY"),
    ("SELECT COUNT() FROM Account ORDER BY Name", "MALFORMED_QUERY"),
    ("SELECT FIELDS(SOME) FROM Account LIMIT 1", "MALFORMED_QUERY"),
    ("SELECT UPPER(Name) FROM Account", "MALFORMED_QUERY"),
    ("SELECT toLabel(Parent.Rating) FROM Account", "MALFORMED_QUERY"),
    ("SELECT toLabel(Rating), Rating FROM Account", "MALFORMED_QUERY"),
    ("SELECT toLabel(COUNT(Id)) FROM Account", "MALFORMED_QUERY"),
    ("SELECT toLabel(Nope) FROM Account", "INVALID_FIELD"),
    ("SELECT SUM() FROM Account", "MALFORMED_QUERY"),
    ("SELECT Industry, GROUPING(Rating) FROM Account GROUP BY ROLLUP(Industry)", "MALFORMED_QUERY"),
    ("SELECT Industry, GROUPING(COUNT(Id)) FROM Account GROUP BY ROLLUP(Industry)",
     "MALFORMED_QUERY"),
    ("SELECT Industry FROM Account GROUP BY ROLLUP()", "MALFORMED_QUERY"),
    ("SELECT Industry FROM Account GROUP BY ROLLUP(Nope)", "INVALID_FIELD"),
    ("SELECT Id FROM Account WHERE CALENDAR_YEAR(Name) = 2024", "MALFORMED_QUERY"),
    ("SELECT Id FROM Account WHERE CALENDAR_YEAR(convertTimezone(Name)) = 2024", "MALFORMED_QUERY"),
    ("SELECT Id FROM Account WHERE CALENDAR_YEAR(DAY_ONLY(CreatedDate)) = 2024", "MALFORMED_QUERY"),
    ("SELECT Id FROM Account WHERE HOUR_IN_DAY(Founded__c) = 1", "MALFORMED_QUERY"),
    ("SELECT Id FROM Account WHERE NO_SUCH_FUNCTION(CreatedDate) = 1", "MALFORMED_QUERY"),
    ("SELECT Id FROM Account WHERE CALENDAR_YEAR(CreatedDate) = TODAY", "INVALID_FIELD"),
    ("SELECT Id FROM Account ORDER BY Tags__c", "MALFORMED_QUERY"),
    ("SELECT Id FROM Account ORDER BY BillingAddress", "MALFORMED_QUERY"),
    ("SELECT Id FROM Account WHERE Name IN (SELECT Id FROM Contact)", "MALFORMED_QUERY"),
    ("SELECT Id FROM Account WHERE Id IN (SELECT Id, LastName FROM Contact)", "MALFORMED_QUERY"),
    ("SELECT Id FROM Account WHERE Id IN (SELECT LastName FROM Contact)", "MALFORMED_QUERY"),
    ("SELECT Id FROM Account WHERE Id IN (SELECT AccountId FROM Foo)", "INVALID_TYPE"),
    ("SELECT Id FROM Account WHERE ParentId IN (SELECT Id FROM Account)", "MALFORMED_QUERY"),
    ("SELECT Id FROM Account WHERE Id IN (SELECT Nope FROM Contact)", "INVALID_FIELD"),
    ("SELECT Id FROM Account WHERE CALENDAR_YEAR(CreatedDate) IN (SELECT Id FROM Contact)",
     "MALFORMED_QUERY"),
    ("SELECT Id, TYPEOF Owner WHEN Account THEN Name END FROM Account", "MALFORMED_QUERY"),
    ("SELECT Id, TYPEOF Owner WHEN Nope THEN Name END FROM Account", "MALFORMED_QUERY"),
    ("SELECT Id, TYPEOF Owner.Parent WHEN User THEN Name END FROM Account", "MALFORMED_QUERY"),
    ("SELECT Id, TYPEOF Boss WHEN User THEN Name END FROM Account", "INVALID_FIELD"),
    ("SELECT Id, TYPEOF Owner WHEN User THEN Nope END FROM Account", "INVALID_FIELD"),
    ("SELECT Id, (SELECT COUNT(Id) FROM Contacts) FROM Account", "MALFORMED_QUERY"),
    ("SELECT Industry, (SELECT Id FROM Contacts) FROM Account GROUP BY Industry",
     "MALFORMED_QUERY"),
    ("SELECT Id, (SELECT Id FROM Contacts OFFSET 2001) FROM Account", "NUMBER_OUTSIDE_VALID_RANGE"),
    ("SELECT Id FROM Account WHERE Nope__r.Name = 'x'", "INVALID_FIELD"),
    ("SELECT Id FROM Account WHERE Parent.Nope = 'x'", "INVALID_FIELD"),
    ("SELECT Id FROM Account WHERE Parent.Description = 'x'", "INVALID_FIELD"),
    ("SELECT Industry FROM Account GROUP BY Nope", "INVALID_FIELD"),
    ("SELECT Industry, COUNT(Id) FROM Account GROUP BY Industry ORDER BY Name", "MALFORMED_QUERY"),
    ("SELECT Industry, COUNT(Id) FROM Account GROUP BY Industry HAVING COUNT(Id) > 'x'",
     "INVALID_FIELD"),
    ("SELECT Industry, COUNT(Id) FROM Account GROUP BY Industry HAVING Industry LIKE 5",
     "MALFORMED_QUERY"),
    ("SELECT Industry, COUNT(Id) FROM Account GROUP BY Industry HAVING "
     "Industry IN (SELECT Id FROM Account)", "MALFORMED_QUERY"),
    ("SELECT Name FROM Account WHERE Name = 'x' HAVING Name = 'x'", "MALFORMED_QUERY"),
    ("SELECT Id FROM Contact WHERE Birthdate = 2024-01-01T00:00:00+01:00", "INVALID_FIELD"),
    ("SELECT Id FROM Contact WHERE CreatedDate = 2024-01-01T25:00:00Z", "MALFORMED_QUERY"),
]  # fmt: skip


@pytest.mark.parametrize(("soql", "code"), CODES)
def test_error_codes(soql: str, code: str) -> None:
    got, message = error_of(soql)
    assert got == code
    assert "ERROR at Row:" in message


def test_accepted_boundaries() -> None:
    # The edges of the rejected cases above are accepted.
    for soql in [
        "SELECT Id FROM Account OFFSET 2000",
        "SELECT FIELDS(ALL) FROM Account LIMIT 200",
        "SELECT FIELDS(STANDARD) FROM Account",
        "SELECT COUNT(Id) FROM Account",
        "SELECT Id FROM Account WHERE Name = null",
        "SELECT Id FROM Account WHERE Name != null",
        f"SELECT Id FROM Account WHERE Id = '{'0' * 15}'",
    ]:
        compile_query(soql, SCHEMA)


def test_objects_that_cannot_be_queried() -> None:
    from dataclasses import replace
    from types import MappingProxyType

    from sfsync.emulator.schema.model import Schema

    account = SCHEMA.objects["account"]
    event = replace(account, name="AccountChangeEvent", key_prefix="1CE", queryable=False)
    schema = Schema(MappingProxyType({**SCHEMA.objects, "accountchangeevent": event}))
    with pytest.raises(ApiError) as caught:
        compile_query("SELECT Id FROM accountchangeevent", schema)
    assert caught.value.body() == [
        {
            "message": "entity type AccountChangeEvent does not support query",
            "errorCode": "INVALID_TYPE_FOR_OPERATION",
            "fields": [],
        }
    ]
