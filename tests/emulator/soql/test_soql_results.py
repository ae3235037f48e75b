"""Result shapes, ORDER BY / LIMIT / OFFSET, child subqueries and aggregates."""

from __future__ import annotations

import pytest
from soql_helpers import run, values
from soql_testdata import G1, U1, A, C

URL = "/services/data/v59.0/sobjects/"

ALL_BY_NAME = ["Acme", "acme labs", "Globex", "Initech", "Umbrella 100%_Corp"]


def test_names_and_types_come_back_in_declared_casing() -> None:
    result, records = run("select id, NAME, industry from ACCOUNT where name = 'acme'")
    assert result.total_size == 1
    assert records == [
        {
            "attributes": {"type": "Account", "url": f"{URL}Account/{A[1]}"},
            "Id": A[1],
            "Name": "Acme",
            "Industry": "Energy",
        }
    ]
    assert list(records[0]) == ["attributes", "Id", "Name", "Industry"]


def test_every_selected_field_is_present_even_when_null() -> None:
    _, records = run(
        "SELECT Name, AnnualRevenue, Founded__c, Tags__c FROM Account WHERE Name = 'Initech'"
    )
    assert records[0]["AnnualRevenue"] is None
    assert records[0]["Founded__c"] is None
    assert records[0]["Tags__c"] == "c"


def test_record_without_id_in_select_still_has_its_url() -> None:
    _, records = run("SELECT Name FROM Account WHERE Name = 'Globex'")
    assert records == [
        {"attributes": {"type": "Account", "url": f"{URL}Account/{A[2]}"}, "Name": "Globex"}
    ]


def test_api_version_goes_into_urls() -> None:
    from soql_helpers import source
    from soql_testdata import NOW, SCHEMA

    from sfsync.emulator.soql import compile_query

    result = compile_query("SELECT Id FROM Account LIMIT 1", SCHEMA).run(
        source(), now=NOW, include_deleted=False, api_version="62.0"
    )
    record = next(result.records)
    assert record["attributes"] == {
        "type": "Account",
        "url": f"/services/data/v62.0/sobjects/Account/{A[1]}",
    }


def test_parent_paths_nest_with_their_own_attributes() -> None:
    _, records = run(
        "SELECT LastName, Account.Name, Account.Industry, Account.Owner.Name, Email "
        f"FROM Contact WHERE Id = '{C[1]}'"
    )
    assert records == [
        {
            "attributes": {"type": "Contact", "url": f"{URL}Contact/{C[1]}"},
            "LastName": "Smith",
            "Account": {
                "attributes": {"type": "Account", "url": f"{URL}Account/{A[1]}"},
                "Name": "Acme",
                "Industry": "Energy",
                "Owner": {
                    "attributes": {"type": "User", "url": f"{URL}User/{U1}"},
                    "Name": "Uma Owner",
                },
            },
            "Email": "ann@acme.com",
        }
    ]


def test_empty_lookup_renders_null() -> None:
    _, records = run(
        f"SELECT Id, Account.Name, Account.Owner.Name FROM Contact WHERE Id = '{C[5]}'"
    )
    assert records[0]["Account"] is None


def test_relationship_names_are_case_insensitive_and_render_declared() -> None:
    _, records = run(f"SELECT account.NAME, ACCOUNT.industry FROM Contact WHERE Id = '{C[3]}'")
    assert list(records[0]) == ["attributes", "Account"]
    assert records[0]["Account"] == {
        "attributes": {"type": "Account", "url": f"{URL}Account/{A[2]}"},
        "Name": "Globex",
        "Industry": "Banking",
    }


def test_polymorphic_owner_reports_the_actual_type() -> None:
    _, records = run("SELECT Name, Owner.Name FROM Account WHERE Name = 'Initech'")
    assert records[0]["Owner"] == {
        "attributes": {"type": "Group", "url": f"{URL}Group/{G1}"},
        "Name": "Support Queue",
    }


def test_parent_of_parent_through_the_same_object() -> None:
    _, records = run(
        "SELECT Name, Parent.Name, Parent.Parent.Name FROM Account WHERE Name LIKE 'Umb%'"
    )
    parent = records[0]["Parent"]
    assert isinstance(parent, dict)
    assert parent["Name"] == "Globex"
    assert parent["Parent"]["Name"] == "Acme"


def test_compound_address_renders_components() -> None:
    _, records = run("SELECT BillingAddress FROM Account WHERE Name = 'Initech'")
    assert records[0]["BillingAddress"] == {
        "city": "Austin",
        "country": "USA",
        "latitude": 30.27,
        "longitude": -97.74,
        "postalCode": "73301",
        "state": "TX",
        "street": "1 Main St\nSuite 5",
    }


def test_compound_address_is_null_when_empty() -> None:
    _, records = run("SELECT Name, BillingAddress FROM Account WHERE Name = 'Globex'")
    assert records[0]["BillingAddress"] is None


def test_compound_address_through_a_parent() -> None:
    _, records = run("SELECT Parent.BillingAddress FROM Account WHERE Name = 'Globex'")
    parent = records[0]["Parent"]
    assert isinstance(parent, dict)
    assert parent["BillingAddress"]["city"] == "Paris"


def test_alias_and_object_name_prefixes() -> None:
    assert values("SELECT a.Name FROM Account a WHERE a.Industry = 'Banking'") == ["Globex"]
    assert values("SELECT Account.Name FROM Account WHERE Account.Name = 'Acme'") == ["Acme"]


@pytest.mark.parametrize(
    "tail",
    [
        "FOR VIEW",
        "FOR REFERENCE",
        "FOR UPDATE",
        "WITH SECURITY_ENFORCED",
        "UPDATE TRACKING",
        "LIMIT 10 FOR VIEW",
        "USING SCOPE everything",
    ],
)
def test_trailing_clauses_are_accepted(tail: str) -> None:
    if tail.startswith("USING"):
        soql = f"SELECT Name FROM Account {tail} WHERE Name = 'Acme'"
    else:
        soql = f"SELECT Name FROM Account WHERE Name = 'Acme' {tail}"
    assert values(soql) == ["Acme"]


def test_from_order_object_name_is_not_a_keyword() -> None:
    from soql_testdata import SCHEMA

    from sfsync.emulator.errors import ApiError
    from sfsync.emulator.soql import compile_query

    with pytest.raises(ApiError) as caught:
        compile_query("SELECT Id FROM Order ORDER BY Id", SCHEMA)
    assert caught.value.details[0].code == "INVALID_TYPE"
    assert "sObject type 'Order' is not supported" in caught.value.details[0].message


def test_fields_functions_expand_in_declared_order() -> None:
    _, records = run("SELECT FIELDS(CUSTOM) FROM Account WHERE Name = 'Acme' LIMIT 1")
    assert list(records[0]) == ["attributes", "IsPartner__c", "Founded__c", "Tags__c", "Code__c"]
    _, records = run("SELECT FIELDS(STANDARD) FROM Account WHERE Name = 'Acme'")
    assert "Tags__c" not in records[0]
    assert records[0]["BillingAddress"]["city"] == "Paris"
    _, records = run("SELECT Id, FIELDS(ALL) FROM Account WHERE Name = 'Acme' LIMIT 200")
    assert list(records[0])[1:4] == ["Id", "IsDeleted", "Name"]


ORDER_CASES: list[tuple[str, list[str]]] = [
    ("ORDER BY Name", ALL_BY_NAME),
    ("ORDER BY Name ASC", ALL_BY_NAME),
    ("order by name desc", ALL_BY_NAME[::-1]),
    ("ORDER BY AnnualRevenue", ["Initech", "Umbrella 100%_Corp", "acme labs", "Globex", "Acme"]),
    (
        "ORDER BY AnnualRevenue NULLS LAST",
        ["Umbrella 100%_Corp", "acme labs", "Globex", "Acme", "Initech"],
    ),
    (
        "ORDER BY AnnualRevenue DESC",
        ["Acme", "Globex", "acme labs", "Umbrella 100%_Corp", "Initech"],
    ),
    (
        "ORDER BY AnnualRevenue DESC NULLS FIRST",
        ["Initech", "Acme", "Globex", "acme labs", "Umbrella 100%_Corp"],
    ),
    ("ORDER BY Industry, Name", ["Umbrella 100%_Corp", "Globex", "Acme", "acme labs", "Initech"]),
    (
        "ORDER BY Industry DESC, Name DESC",
        ["Initech", "acme labs", "Acme", "Globex", "Umbrella 100%_Corp"],
    ),
    (
        "ORDER BY Industry ASC NULLS LAST, Name DESC",
        ["Globex", "acme labs", "Acme", "Initech", "Umbrella 100%_Corp"],
    ),
    ("ORDER BY Name LIMIT 2", ["Acme", "acme labs"]),
    ("ORDER BY Name LIMIT 2 OFFSET 1", ["acme labs", "Globex"]),
    ("ORDER BY Name OFFSET 4", ["Umbrella 100%_Corp"]),
    ("ORDER BY Name OFFSET 5", []),
    ("ORDER BY Name OFFSET 2000", []),
    ("ORDER BY Name LIMIT 0", []),
    ("ORDER BY CreatedDate", ["acme labs", "Initech", "Umbrella 100%_Corp", "Globex", "Acme"]),
    ("ORDER BY Founded__c DESC", ["Umbrella 100%_Corp", "acme labs", "Globex", "Acme", "Initech"]),
    (
        "ORDER BY Parent.Name, Name",
        ["Acme", "acme labs", "Globex", "Initech", "Umbrella 100%_Corp"],
    ),
    (
        "ORDER BY Parent.Name DESC, Name",
        ["Umbrella 100%_Corp", "Globex", "Initech", "Acme", "acme labs"],
    ),
    (
        "ORDER BY IsPartner__c, Name",
        ["Globex", "Initech", "Umbrella 100%_Corp", "Acme", "acme labs"],
    ),
    (
        "ORDER BY CALENDAR_MONTH(CreatedDate), Name",
        ["Initech", "Acme", "Globex", "Umbrella 100%_Corp", "acme labs"],
    ),
    (
        "ORDER BY Owner.Name, Name DESC",
        ["Initech", "acme labs", "Acme", "Umbrella 100%_Corp", "Globex"],
    ),
    ("ORDER BY Code__c", ["acme labs", "Acme", "Initech", "Umbrella 100%_Corp", "Globex"]),
]


@pytest.mark.parametrize(("clause", "expected"), ORDER_CASES)
def test_order_limit_offset(clause: str, expected: list[str]) -> None:
    result, records = run(f"SELECT Name FROM Account {clause}")
    assert [r["Name"] for r in records] == expected
    assert result.total_size == len(expected)


@pytest.mark.parametrize(
    ("clause", "count"),
    [
        ("LIMIT 2", 2),
        ("LIMIT 0", 0),
        ("LIMIT 50", 5),
        ("OFFSET 3", 2),
        ("LIMIT 2 OFFSET 4", 1),
        ("OFFSET 10", 0),
        ("LIMIT 1 OFFSET 1", 1),
    ],
)
def test_unordered_limit_and_offset_count(clause: str, count: int) -> None:
    result, records = run(f"SELECT Name FROM Account {clause}")
    assert result.total_size == count
    assert len({r["Name"] for r in records}) == count
    assert {r["Name"] for r in records} <= set(ALL_BY_NAME)


def test_child_subquery_shape() -> None:
    _, records = run(
        "SELECT Name, (SELECT LastName FROM Contacts ORDER BY LastName) FROM Account ORDER BY Name"
    )
    by_name = {r["Name"]: r["Contacts"] for r in records}
    assert by_name["acme labs"] is None
    assert by_name["Umbrella 100%_Corp"] is None
    acme = by_name["Acme"]
    assert acme == {
        "totalSize": 2,
        "done": True,
        "records": [
            {"attributes": {"type": "Contact", "url": f"{URL}Contact/{C[2]}"}, "LastName": "Jones"},
            {"attributes": {"type": "Contact", "url": f"{URL}Contact/{C[1]}"}, "LastName": "Smith"},
        ],
    }
    assert list(records[0]) == ["attributes", "Name", "Contacts"]


@pytest.mark.parametrize(
    ("subquery", "include_deleted", "expected"),
    [
        ("SELECT LastName FROM Contacts ORDER BY LastName", False, ["Jones", "Smith"]),
        ("SELECT LastName FROM Contacts ORDER BY LastName", True, ["Gone", "Jones", "Smith"]),
        ("SELECT LastName FROM Contacts WHERE FirstName = 'Ann'", False, ["Smith"]),
        ("SELECT LastName FROM Contacts ORDER BY LastName DESC LIMIT 1", False, ["Smith"]),
        ("SELECT LastName FROM Contacts ORDER BY LastName LIMIT 1 OFFSET 1", False, ["Smith"]),
        ("SELECT LastName FROM contacts WHERE LastName = 'nobody'", False, None),
        ("SELECT LastName FROM Contacts c WHERE c.Email LIKE 'bob%'", False, ["Jones"]),
    ],
)
def test_child_subquery_filters(
    subquery: str, include_deleted: bool, expected: list[str] | None
) -> None:
    _, records = run(
        f"SELECT Name, ({subquery}) FROM Account WHERE Name = 'Acme'",
        include_deleted=include_deleted,
    )
    children = records[0]["Contacts"]
    if expected is None:
        assert children is None
    else:
        assert isinstance(children, dict)
        assert [c["LastName"] for c in children["records"]] == expected
        assert children["totalSize"] == len(expected)


def test_several_child_subqueries_and_parent_paths_inside() -> None:
    _, records = run(
        "SELECT Name, (SELECT LastName, Owner.Name FROM Contacts ORDER BY LastName), "
        "(SELECT Name, Amount FROM Opportunities WHERE Amount > 200) "
        "FROM Account WHERE Name = 'Acme'"
    )
    record = records[0]
    assert list(record) == ["attributes", "Name", "Contacts", "Opportunities"]
    assert [c["Owner"]["Name"] for c in record["Contacts"]["records"]] == ["Vic Owner", "Uma Owner"]
    assert [(o["Name"], o["Amount"]) for o in record["Opportunities"]["records"]] == [
        ("Big deal", 500.0)
    ]


def test_nested_child_subqueries() -> None:
    _, records = run(
        "SELECT Name, (SELECT Name, (SELECT LastName FROM Contacts) "
        "FROM ChildAccounts ORDER BY Name) "
        "FROM Account WHERE Name = 'Acme'"
    )
    children = records[0]["ChildAccounts"]["records"]
    assert [c["Name"] for c in children] == ["Globex", "Initech"]
    assert [c["Contacts"]["records"][0]["LastName"] for c in children] == ["O'Brien", "smith"]


# -- aggregates -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("soql", "total"),
    [
        ("SELECT COUNT() FROM Account", 5),
        ("select count() from account where industry = 'Energy'", 2),
        ("SELECT COUNT() FROM Account LIMIT 3", 3),
        ("SELECT COUNT() FROM Account WHERE Name = 'none'", 0),
        ("SELECT COUNT() FROM Contact WHERE Account.Name = 'Acme'", 2),
    ],
)
def test_count_only(soql: str, total: int) -> None:
    from soql_testdata import SCHEMA

    from sfsync.emulator.soql import compile_query

    compiled = compile_query(soql, SCHEMA)
    assert compiled.is_count_only
    assert not compiled.is_aggregate
    result, records = run(soql)
    assert result.total_size == total
    assert records == []


def test_count_only_with_query_all() -> None:
    result, _ = run("SELECT COUNT() FROM Account", include_deleted=True)
    assert result.total_size == 6


AGG = {"type": "AggregateResult"}

AGGREGATE_CASES: list[tuple[str, list[dict[str, object]]]] = [
    ("SELECT COUNT(Id) FROM Account", [{"expr0": 5}]),
    ("SELECT COUNT(Industry) FROM Account", [{"expr0": 4}]),
    ("SELECT COUNT_DISTINCT(Industry) FROM Account", [{"expr0": 3}]),
    ("SELECT COUNT(Id) n FROM Account WHERE Name = 'nobody'", [{"n": 0}]),
    ("SELECT SUM(AnnualRevenue) FROM Account WHERE Name = 'nobody'", [{"expr0": None}]),
    (
        "SELECT SUM(AnnualRevenue), AVG(NumberOfEmployees), MIN(Name), MAX(CreatedDate) "
        "FROM Account",
        [
            {
                "expr0": 1325000.5,
                "expr1": 41.25,
                "expr2": "Acme",
                "expr3": "2024-03-15T08:00:00.000+0000",
            }
        ],
    ),
    (
        "SELECT MAX(Founded__c) latest, MIN(Founded__c) FROM Account",
        [{"latest": "2024-03-15", "expr0": "1990-05-01"}],
    ),
    (
        "SELECT COUNT(Id) total, COUNT(ParentId) withParent FROM Account",
        [{"total": 5, "withParent": 3}],
    ),
    (
        "SELECT Industry, COUNT(Id) n FROM Account GROUP BY Industry HAVING COUNT(Id) > 1",
        [{"Industry": "Energy", "n": 2}],
    ),
    (
        "SELECT Rating, COUNT(Id) FROM Account GROUP BY Rating ORDER BY COUNT(Id) DESC, Rating",
        [
            {"Rating": "Hot", "expr0": 2},
            {"Rating": None, "expr0": 1},
            {"Rating": "Cold", "expr0": 1},
            {"Rating": "Warm", "expr0": 1},
        ],
    ),
    (
        "SELECT Industry, SUM(AnnualRevenue) FROM Account GROUP BY Industry "
        "HAVING SUM(AnnualRevenue) > 100000 ORDER BY Industry",
        [{"Industry": "Banking", "expr0": 250000.5}, {"Industry": "Energy", "expr0": 1075000.0}],
    ),
    (
        "SELECT Parent.Name, COUNT(Id) FROM Account GROUP BY Parent.Name "
        "ORDER BY Parent.Name NULLS LAST",
        [{"Name": "Acme", "expr0": 2}, {"Name": "Globex", "expr0": 1}, {"Name": None, "expr0": 2}],
    ),
    (
        "SELECT CALENDAR_YEAR(CreatedDate), COUNT(Id) FROM Account "
        "GROUP BY CALENDAR_YEAR(CreatedDate) ORDER BY CALENDAR_YEAR(CreatedDate)",
        [{"expr0": 2023, "expr1": 1}, {"expr0": 2024, "expr1": 4}],
    ),
    (
        "SELECT CALENDAR_YEAR(CreatedDate) y, COUNT(Id) c FROM Account "
        "GROUP BY CALENDAR_YEAR(CreatedDate) ORDER BY CALENDAR_YEAR(CreatedDate) DESC",
        [{"y": 2024, "c": 4}, {"y": 2023, "c": 1}],
    ),
    (
        "SELECT Industry, COUNT(Id) FROM Account GROUP BY Industry HAVING Industry = 'energy'",
        [{"Industry": "Energy", "expr0": 2}],
    ),
    (
        "SELECT StageName, SUM(Amount) total, COUNT(Id) FROM Opportunity "
        "GROUP BY StageName ORDER BY StageName",
        [
            {"StageName": "Closed Won", "total": 800.0, "expr0": 2},
            {"StageName": "Prospecting", "total": 150.0, "expr0": 3},
        ],
    ),
    (
        "SELECT Rating FROM Account GROUP BY Rating ORDER BY Rating LIMIT 2 OFFSET 1",
        [{"Rating": "Cold"}, {"Rating": "Hot"}],
    ),
    (
        "SELECT Rating, MAX(NumberOfEmployees) FROM Account WHERE Rating != null GROUP BY Rating "
        "ORDER BY MAX(NumberOfEmployees) DESC",
        [
            {"Rating": "Hot", "expr0": 120},
            {"Rating": "Warm", "expr0": 40},
            {"Rating": "Cold", "expr0": 5},
        ],
    ),
    (
        "SELECT IsPartner__c, COUNT(Id) FROM Account GROUP BY IsPartner__c ORDER BY IsPartner__c",
        [{"IsPartner__c": False, "expr0": 3}, {"IsPartner__c": True, "expr0": 2}],
    ),
    (
        "SELECT Industry, Rating, COUNT(Id) FROM Account WHERE Industry = 'Energy' "
        "GROUP BY Industry, Rating ORDER BY Rating",
        [
            {"Industry": "Energy", "Rating": "Cold", "expr0": 1},
            {"Industry": "Energy", "Rating": "Hot", "expr0": 1},
        ],
    ),
    (
        "SELECT Account.Name, COUNT(Id) FROM Contact GROUP BY Account.Name "
        "HAVING COUNT(Id) >= 2 OR Account.Name = 'Initech' ORDER BY Account.Name",
        [{"Name": "Acme", "expr0": 2}, {"Name": "Initech", "expr0": 1}],
    ),
    (
        "SELECT Industry, COUNT(Id) FROM Account GROUP BY Industry HAVING Industry LIKE 'B%'",
        [{"Industry": "Banking", "expr0": 1}],
    ),
    (
        "SELECT Industry, AVG(AnnualRevenue) FROM Account GROUP BY Industry "
        "HAVING AVG(AnnualRevenue) = null",
        [{"Industry": "Retail", "expr0": None}],
    ),
]


AGGREGATE_CASES += [
    (
        "SELECT Industry, COUNT(Id) FROM Account GROUP BY ROLLUP(Industry)",
        [
            {"Industry": "Energy", "expr0": 2},
            {"Industry": "Banking", "expr0": 1},
            {"Industry": "Retail", "expr0": 1},
            {"Industry": None, "expr0": 1},
            {"Industry": None, "expr0": 5},
        ],
    ),
    (
        "SELECT Industry, COUNT(Id) n, GROUPING(Industry) g FROM Account "
        "GROUP BY ROLLUP(Industry) ORDER BY GROUPING(Industry) DESC, Industry NULLS LAST LIMIT 3",
        [
            {"Industry": None, "n": 5, "g": 1},
            {"Industry": "Banking", "n": 1, "g": 0},
            {"Industry": "Energy", "n": 2, "g": 0},
        ],
    ),
    (
        "SELECT Industry, Rating, SUM(NumberOfEmployees) FROM Account WHERE Industry = 'Energy' "
        "GROUP BY ROLLUP(Industry, Rating)",
        [
            {"Industry": "Energy", "Rating": "Hot", "expr0": 120},
            {"Industry": "Energy", "Rating": "Cold", "expr0": 5},
            {"Industry": "Energy", "Rating": None, "expr0": 125},
            {"Industry": None, "Rating": None, "expr0": 125},
        ],
    ),
    (
        "SELECT Industry, Rating, COUNT(Id), GROUPING(Industry), GROUPING(Rating) FROM Account "
        "WHERE Industry = 'Energy' GROUP BY CUBE(Industry, Rating)",
        [
            {"Industry": "Energy", "Rating": "Hot", "expr0": 1, "expr1": 0, "expr2": 0},
            {"Industry": "Energy", "Rating": "Cold", "expr0": 1, "expr1": 0, "expr2": 0},
            {"Industry": "Energy", "Rating": None, "expr0": 2, "expr1": 0, "expr2": 1},
            {"Industry": None, "Rating": "Hot", "expr0": 1, "expr1": 1, "expr2": 0},
            {"Industry": None, "Rating": "Cold", "expr0": 1, "expr1": 1, "expr2": 0},
            {"Industry": None, "Rating": None, "expr0": 2, "expr1": 1, "expr2": 1},
        ],
    ),
    (
        "SELECT Rating, COUNT(Id) FROM Account GROUP BY ROLLUP(Rating) HAVING GROUPING(Rating) = 1",
        [{"Rating": None, "expr0": 5}],
    ),
]


@pytest.mark.parametrize(("soql", "expected"), AGGREGATE_CASES)
def test_aggregates(soql: str, expected: list[dict[str, object]]) -> None:
    result, records = run(soql)
    assert records == [{"attributes": AGG, **row} for row in expected]
    assert result.total_size == len(expected)


def test_aggregate_flags() -> None:
    from soql_testdata import SCHEMA

    from sfsync.emulator.soql import compile_query

    compiled = compile_query("SELECT Industry FROM Account GROUP BY Industry", SCHEMA)
    assert compiled.is_aggregate
    assert not compiled.is_count_only
    assert compiled.object_name == "Account"
    assert compile_query("select id from account", SCHEMA).object_name == "Account"


@pytest.mark.parametrize(
    ("select", "expected"),
    [
        ("toLabel(Rating)", {"Rating": "Lukewarm"}),
        ("TOLABEL(Rating) r, Rating", {"r": "Lukewarm", "Rating": "Warm"}),
        ("toLabel(Industry)", {"Industry": "Banking"}),
        ("FORMAT(AnnualRevenue)", {"AnnualRevenue": 250000.5}),
        ("convertCurrency(AnnualRevenue) amount", {"amount": 250000.5}),
    ],
)
def test_value_functions_in_select(select: str, expected: dict[str, object]) -> None:
    _, records = run(f"SELECT {select} FROM Account WHERE Name = 'Globex'")
    assert {k: v for k, v in records[0].items() if k != "attributes"} == expected


def test_typeof_renders_per_type_fields() -> None:
    _, records = run(
        "SELECT Name, TYPEOF Owner WHEN User THEN Name, Username WHEN Group THEN Name END "
        "FROM Account WHERE Name IN ('Acme', 'Initech') ORDER BY Name"
    )
    assert [r["Owner"] for r in records] == [
        {
            "attributes": {"type": "User", "url": f"{URL}User/{U1}"},
            "Name": "Uma Owner",
            "Username": "uma@example.com",
        },
        {"attributes": {"type": "Group", "url": f"{URL}Group/{G1}"}, "Name": "Support Queue"},
    ]


def test_typeof_else_branch_and_unmatched_type() -> None:
    _, records = run(
        "SELECT TYPEOF Owner WHEN Group THEN Name ELSE Id END FROM Account WHERE Name = 'Acme'"
    )
    assert records[0]["Owner"] == {
        "attributes": {"type": "User", "url": f"{URL}User/{U1}"},
        "Id": U1,
    }
    _, records = run(
        "SELECT TYPEOF Owner WHEN Group THEN Name END FROM Account WHERE Name = 'Acme'"
    )
    assert records[0]["Owner"] == {"attributes": {"type": "User", "url": f"{URL}User/{U1}"}}
    _, records = run(
        "SELECT TYPEOF Parent WHEN Account THEN Name END FROM Account WHERE Name = 'Acme'"
    )
    assert records[0]["Parent"] is None


def test_group_is_both_a_keyword_and_an_object() -> None:
    assert values("SELECT Id, Name FROM Group") == ["Support Queue"]
    _, records = run("SELECT Name FROM Group GROUP BY Name")
    assert records == [{"attributes": AGG, "Name": "Support Queue"}]
