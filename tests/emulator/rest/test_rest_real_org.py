"""The REST routes inside the real app, on the real store and SOQL engine (in process).

The fakes elsewhere in this folder pin the REST layer's own behaviour; these tests check that
it composes with the real ``OrgStore`` (transactions, validation), the SOQL engine and the
app's governance middleware.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from sfsync.emulator.app import build_app
from sfsync.emulator.org import Org

pytestmark = pytest.mark.anyio

V = "/services/data/v59.0"
TOKEN = "real-org-test-token"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def real_org(tmp_path: Path) -> Iterator[Org]:
    org = Org.create(access_token=TOKEN, state_dir=tmp_path / "state")
    yield org
    org.close()


@pytest.fixture
async def api(real_org: Org) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build_app(real_org))
    async with httpx.AsyncClient(
        transport=transport,
        base_url="https://emulator.test",
        headers={"Authorization": f"Bearer {TOKEN}"},
    ) as client:
        yield client


async def test_auth_and_limit_header_wrap_the_routes(api: httpx.AsyncClient) -> None:
    response = await api.get(f"{V}/sobjects/Account/describe")
    assert response.status_code == 200
    assert response.headers["sforce-limit-info"].startswith("api-usage=")
    anonymous = await api.get(f"{V}/sobjects", headers={"Authorization": "Bearer nope"})
    assert anonymous.status_code == 401
    assert anonymous.json()[0]["errorCode"] == "INVALID_SESSION_ID"


async def test_record_with_compound_address(api: httpx.AsyncClient, real_org: Org) -> None:
    created = await api.post(
        f"{V}/sobjects/Account/",
        json={"Name": "Addr", "BillingCity": "Zürich", "BillingCountry": "Switzerland"},
    )
    record = (await api.get(f"{V}/sobjects/Account/{created.json()['id']}")).json()
    address = record["BillingAddress"]
    assert address["city"] == "Zürich"
    assert address["country"] == "Switzerland"
    assert address["street"] is None
    assert list(address) == sorted(address)
    assert record["ShippingAddress"] is None
    assert record["CreatedDate"].endswith("+0000")
    # Writes are attributed to the session's user.
    assert record["CreatedById"] == real_org.auth.user.user_id


async def test_collections_all_or_none_rolls_back_in_the_store(
    api: httpx.AsyncClient, real_org: Org
) -> None:
    records = [
        {"attributes": {"type": "Account"}, "Name": "kept only if all succeed"},
        {"attributes": {"type": "Account"}},
    ]
    results = (
        await api.post(f"{V}/composite/sobjects", json={"allOrNone": True, "records": records})
    ).json()
    assert results[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert results[1]["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"
    assert real_org.store.count("Account") == 0


async def test_tree_on_real_store(api: httpx.AsyncClient, real_org: Org) -> None:
    tree = {
        "records": [
            {
                "attributes": {"type": "Account", "referenceId": "acc"},
                "Name": "Tree",
                "Contacts": {
                    "records": [
                        {"attributes": {"type": "Contact", "referenceId": "c1"}, "LastName": "A"},
                        {"attributes": {"type": "Contact", "referenceId": "c2"}},
                    ]
                },
            }
        ]
    }
    failed = await api.post(f"{V}/composite/tree/Account", json=tree)
    assert failed.status_code == 400
    assert failed.json()["results"][0]["referenceId"] == "c2"
    assert real_org.store.count("Account") == 0
    assert real_org.store.count("Contact") == 0
    tree["records"][0]["Contacts"]["records"][1]["LastName"] = "B"  # type: ignore[index]
    created = await api.post(f"{V}/composite/tree/Account", json=tree)
    assert created.status_code == 201
    query = await api.get(
        f"{V}/query", params={"q": "SELECT Name, (SELECT LastName FROM Contacts) FROM Account"}
    )
    account = query.json()["records"][0]
    assert sorted(c["LastName"] for c in account["Contacts"]["records"]) == ["A", "B"]


async def test_aggregate_and_replication(api: httpx.AsyncClient, real_org: Org) -> None:
    for name in ("x", "y", "z"):
        await api.post(f"{V}/sobjects/Account/", json={"Name": name, "Industry": "Energy"})
    body = (
        await api.get(
            f"{V}/query",
            params={"q": "SELECT Industry, COUNT(Id) n FROM Account GROUP BY Industry"},
        )
    ).json()
    assert body["done"] is True
    assert body["records"] == [
        {"attributes": {"type": "AggregateResult"}, "Industry": "Energy", "n": 3}
    ]
    real_org.clock.advance(120)
    now = real_org.clock.now()
    start = (now - timedelta(hours=1)).isoformat()
    updated = (
        await api.get(
            f"{V}/sobjects/Account/updated/", params={"start": start, "end": now.isoformat()}
        )
    ).json()
    assert len(updated["ids"]) == 3


async def test_writes_carry_the_call_options_client(api: httpx.AsyncClient, real_org: Org) -> None:
    seen: list[tuple[str, str | None, str]] = []
    real_org.store.add_listener(lambda c: seen.append((c.change_type, c.client_id, c.api)))
    headers = {"Sforce-Call-Options": "client=sfsync/0.1, defaultNamespace=ns"}
    created = await api.post(f"{V}/sobjects/Account/", json={"Name": "o"}, headers=headers)
    record_id = created.json()["id"]
    await api.patch(f"{V}/sobjects/Account/{record_id}", json={"Name": "p"})
    body = {
        "compositeRequest": [
            {
                "method": "DELETE",
                "url": f"{V}/sobjects/Account/{record_id}",
                "referenceId": "gone",
            }
        ]
    }
    await api.post(f"{V}/composite", json=body, headers=headers)
    assert seen == [
        ("CREATE", "sfsync/0.1", "rest"),
        ("UPDATE", None, "rest"),
        ("DELETE", "sfsync/0.1", "rest"),
    ]


async def test_describe_of_the_standard_account(api: httpx.AsyncClient) -> None:
    body = (await api.get(f"{V}/sobjects/Account/describe/")).json()
    fields = {f["name"]: f for f in body["fields"]}
    # Flags as a real org reports them (recorded Account describes).
    assert (fields["BillingStreet"]["filterable"], fields["BillingStreet"]["groupable"]) == (
        True,
        True,
    )
    assert (fields["Description"]["filterable"], fields["Description"]["sortable"]) == (
        False,
        False,
    )
    assert fields["AnnualRevenue"]["groupable"] is False
    assert fields["BillingAddress"]["type"] == "address"
    assert fields["BillingCity"]["compoundFieldName"] == "BillingAddress"
    assert fields["OwnerId"]["referenceTo"] == ["User"]
    assert fields["Name"]["byteLength"] == 765
    relationships = {r["relationshipName"] for r in body["childRelationships"]}
    assert {"Contacts", "Opportunities"} <= relationships


async def test_a_composite_call_counts_once(api: httpx.AsyncClient) -> None:
    def used(response: httpx.Response) -> int:
        return int(response.headers["sforce-limit-info"].split("=")[1].split("/")[0])

    before = used(await api.get(f"{V}/limits/"))
    body = {
        "compositeRequest": [
            {"method": "GET", "url": f"{V}/limits", "referenceId": f"r{i}"} for i in range(3)
        ]
    }
    composite = await api.post(f"{V}/composite", json=body)
    assert [r["httpStatusCode"] for r in composite.json()["compositeResponse"]] == [200] * 3
    assert used(composite) == before + 1
