"""The demo seed: realistic, related, deterministic, and loaded only once."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sfsync.emulator.clock import OrgClock
from sfsync.emulator.schema.standard import INDUSTRIES, STAGES, standard_schema
from sfsync.emulator.seed import seed_demo
from sfsync.emulator.store import OrgStore

DAY = date(2024, 6, 1)


def _store() -> OrgStore:
    return OrgStore(standard_schema(), OrgClock(frozen_at=datetime(2024, 6, 1, tzinfo=UTC)))


def _snapshot(store: OrgStore, object_name: str) -> list[dict[str, object]]:
    return [dict(r) for r in store.scan(object_name, include_deleted=False)]


def test_seed_makes_a_related_org() -> None:
    store = _store()
    counts = seed_demo(store, accounts=200, rng_seed=7, today=DAY)
    assert counts["Account"] == store.count("Account") == 200
    assert counts["User"] == 5
    assert counts["Contact"] >= 200
    assert counts["Opportunity"] > 0
    assert counts["Case"] > 0
    assert counts["PricebookEntry"] == 2 * counts["Product2"]
    for account in store.scan("Account", include_deleted=False):
        assert account["Industry"] in INDUSTRIES
        assert account["BillingCity"]
        owner = store.get(str(account["OwnerId"]))
        assert owner is not None
        contacts = list(
            store.children("Contact", "AccountId", str(account["Id"]), include_deleted=False)
        )
        assert 1 <= len(contacts) <= 4
        assert all(c["Name"] == f"{c['FirstName']} {c['LastName']}" for c in contacts)
    for opp in store.scan("Opportunity", include_deleted=False):
        assert opp["StageName"] in STAGES
        assert opp["IsClosed"] == str(opp["StageName"]).startswith("Closed")
        assert store.get(str(opp["AccountId"])) is not None
        lines = list(
            store.children(
                "OpportunityLineItem", "OpportunityId", str(opp["Id"]), include_deleted=False
            )
        )
        assert lines
        assert all(line["TotalPrice"] for line in lines)
    numbers = [str(c["CaseNumber"]) for c in store.scan("Case", include_deleted=False)]
    assert numbers == sorted(numbers)
    assert len(set(numbers)) == len(numbers)


def test_seed_is_deterministic() -> None:
    first, second = _store(), _store()
    seed_demo(first, accounts=50, rng_seed=3, today=DAY)
    seed_demo(second, accounts=50, rng_seed=3, today=DAY)
    for name in ("Account", "Contact", "Opportunity", "Case"):
        assert _snapshot(first, name) == _snapshot(second, name)
    other = _store()
    seed_demo(other, accounts=50, rng_seed=4, today=DAY)
    assert _snapshot(other, "Account") != _snapshot(first, "Account")


def test_seed_skips_an_org_that_already_has_accounts() -> None:
    store = _store()
    seed_demo(store, accounts=10, today=DAY)
    assert seed_demo(store, accounts=10, today=DAY) == {}
    assert store.count("Account") == 10


def test_seeded_records_accept_normal_writes() -> None:
    store = _store()
    seed_demo(store, accounts=5, today=DAY)
    account = next(iter(store.scan("Account", include_deleted=False)))
    store.update("Account", str(account["Id"]), {"Rating": "Hot"})
    store.delete(str(account["Id"]))
    assert store.count("Account") == 4
    assert all(
        c["IsDeleted"]
        for c in store.children("Contact", "AccountId", str(account["Id"]), include_deleted=True)
    )
