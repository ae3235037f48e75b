"""The engine over the real record store (``store.OrgStore``) and the demo seed: every
query must give the same answer as over a MemorySource holding copies of the same rows."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from sfsync.emulator.soql import MemorySource, compile_query

store_module = pytest.importorskip("sfsync.emulator.store")
seed_module = pytest.importorskip("sfsync.emulator.seed")
standard = pytest.importorskip("sfsync.emulator.schema.standard")
clock_module = pytest.importorskip("sfsync.emulator.clock")

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
SCHEMA = standard.standard_schema()


@pytest.fixture(scope="module")
def org_store() -> object:
    store = store_module.OrgStore(SCHEMA, clock_module.OrgClock(frozen_at=NOW))
    seed_module.seed_demo(store, accounts=40, rng_seed=11, today=date(2024, 6, 1))
    return store


@pytest.fixture(scope="module")
def copy(org_store: object) -> MemorySource:
    source = MemorySource()
    for name in org_store.table_names():  # type: ignore[attr-defined]
        for row in org_store.scan(name, include_deleted=True):  # type: ignore[attr-defined]
            source.put(name, dict(row))
    return source


QUERIES = [
    "SELECT Id, Name, Industry, BillingAddress FROM Account ORDER BY Name",
    "SELECT Id, Name FROM Account WHERE Industry != null ORDER BY Industry, Name LIMIT 10 OFFSET 3",
    "SELECT Id, LastName, Account.Name, Account.Owner.Name FROM Contact ORDER BY LastName, Id",
    "SELECT Name, (SELECT LastName FROM Contacts ORDER BY LastName) FROM Account ORDER BY Name",
    "SELECT Name, StageName, Amount FROM Opportunity WHERE Amount > 10000 ORDER BY Amount DESC",
    "SELECT StageName, COUNT(Id), SUM(Amount) FROM Opportunity GROUP BY StageName "
    "ORDER BY StageName",
    "SELECT Id FROM Account WHERE Id IN (SELECT AccountId FROM Opportunity) ORDER BY Id",
    "SELECT Id FROM Account WHERE Id NOT IN (SELECT AccountId FROM Case) ORDER BY Id",
    "SELECT Name FROM Account WHERE CreatedDate = TODAY ORDER BY Name",
    "SELECT COUNT() FROM Contact",
    "SELECT Id, Name FROM Account LIMIT 7 OFFSET 3",
    "SELECT Id, LastName FROM Contact",
    "SELECT FIELDS(STANDARD) FROM Account ORDER BY Id LIMIT 5",
]


@pytest.mark.parametrize("soql", QUERIES)
def test_store_and_memory_source_agree(soql: str, org_store: object, copy: MemorySource) -> None:
    compiled = compile_query(soql, SCHEMA)
    results = []
    for source in (org_store, copy):
        result = compiled.run(
            source,  # type: ignore[arg-type]
            now=NOW,
            include_deleted=False,
            api_version="59.0",
        )
        results.append((result.total_size, list(result.records)))
    assert results[0] == results[1]
    assert compiled.is_count_only or results[0][0] > 0


def test_query_all_sees_deleted_rows(org_store: object) -> None:
    store = org_store
    victim = next(iter(store.scan("Contact", include_deleted=False)))  # type: ignore[attr-defined]
    store.delete(str(victim["Id"]))  # type: ignore[attr-defined]
    soql = f"SELECT Id, IsDeleted FROM Contact WHERE Id = '{victim['Id']}'"
    compiled = compile_query(soql, SCHEMA)
    live = compiled.run(store, now=NOW, include_deleted=False, api_version="59.0")  # type: ignore[arg-type]
    everything = compiled.run(store, now=NOW, include_deleted=True, api_version="59.0")  # type: ignore[arg-type]
    assert live.total_size == 0
    assert [r["IsDeleted"] for r in everything.records] == [True]
