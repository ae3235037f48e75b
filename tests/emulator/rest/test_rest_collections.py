"""sObject Collections (section 2.9)."""

from __future__ import annotations

import httpx
import pytest
from rest_fakes import FakeOrg

pytestmark = pytest.mark.anyio

V = "/services/data/v59.0"
ROLLED_BACK = {
    "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
    "message": "Record rolled back because not all records were valid and the request was "
    "using AllOrNone header",
    "fields": [],
}


def _acct(**values: object) -> dict[str, object]:
    return {"attributes": {"type": "Account"}, **values}


async def test_create_partial_success(client: httpx.AsyncClient, org: FakeOrg) -> None:
    body = {"allOrNone": False, "records": [_acct(Name="a"), _acct(), _acct(Name="c")]}
    response = await client.post(f"{V}/composite/sobjects", json=body)
    assert response.status_code == 200
    results = response.json()
    assert results[0]["success"] is True
    assert results[0]["errors"] == []
    assert results[1] == {
        "success": False,
        "errors": [
            {
                "statusCode": "REQUIRED_FIELD_MISSING",
                "message": "Required fields are missing: [Name]",
                "fields": ["Name"],
            }
        ],
    }
    assert results[2]["success"] is True
    assert len(list(org.store.scan("Account", include_deleted=False))) == 2


async def test_create_all_or_none_rolls_back(client: httpx.AsyncClient, org: FakeOrg) -> None:
    body = {"allOrNone": True, "records": [_acct(Name="a"), _acct(), _acct(Name="c")]}
    results = (await client.post(f"{V}/composite/sobjects", json=body)).json()
    assert [r["success"] for r in results] == [False, False, False]
    assert results[0] == {"success": False, "errors": [ROLLED_BACK]}
    assert results[1]["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"
    assert results[2] == {"success": False, "errors": [ROLLED_BACK]}
    assert list(org.store.scan("Account", include_deleted=False)) == []


async def test_create_rejects_id_and_unknown_type(client: httpx.AsyncClient) -> None:
    body = {
        "records": [
            _acct(Name="a", Id="001xx0000000001AAA"),
            {"attributes": {"type": "Nope"}, "Name": "b"},
            {"Name": "no type"},
        ]
    }
    results = (await client.post(f"{V}/composite/sobjects", json=body)).json()
    assert [r["errors"][0]["statusCode"] for r in results] == [
        "INVALID_FIELD", "INVALID_TYPE", "INVALID_TYPE",
    ]  # fmt: skip


async def test_over_200_records_is_rejected(client: httpx.AsyncClient) -> None:
    body = {"records": [_acct(Name=str(i)) for i in range(201)]}
    response = await client.post(f"{V}/composite/sobjects", json=body)
    assert response.status_code == 400
    assert response.json()[0]["errorCode"] == "EXCEEDED_ID_LIMIT"


async def test_update(client: httpx.AsyncClient, org: FakeOrg) -> None:
    a = org.store.insert("Account", {"Name": "a"})
    b = org.store.insert("Account", {"Name": "b"})
    body = {
        "allOrNone": False,
        "records": [
            _acct(id=a, Name="A"),
            _acct(Name="no id"),
            {"attributes": {"type": "Account"}, "Id": b, "Nope": 1},
        ],
    }
    results = (await client.patch(f"{V}/composite/sobjects", json=body)).json()
    assert results[0] == {"id": a, "success": True, "errors": []}
    assert results[1]["errors"][0]["statusCode"] == "MISSING_ARGUMENT"
    assert results[2]["id"] == b
    assert results[2]["errors"][0]["statusCode"] == "INVALID_FIELD"
    assert org.store.rows[a]["Name"] == "A"

    body["allOrNone"] = True
    body["records"] = [_acct(id=a, Name="again"), _acct(id=b, Nope=1)]
    results = (await client.patch(f"{V}/composite/sobjects", json=body)).json()
    assert results[0] == {"id": a, "success": False, "errors": [ROLLED_BACK]}
    assert org.store.rows[a]["Name"] == "A"


async def test_upsert(client: httpx.AsyncClient, org: FakeOrg) -> None:
    org.store.upsert("Account", "Ext__c", "K1", {"Name": "old"})
    body = {
        "allOrNone": False,
        "records": [
            _acct(Ext__c="K1", Name="updated"),
            _acct(Ext__c="K2", Name="created"),
            _acct(Name="no key"),
            _acct(Ext__c="K3", Name="x"),
            _acct(Ext__c="K3", Name="y"),
        ],
    }
    results = (await client.patch(f"{V}/composite/sobjects/Account/Ext__c", json=body)).json()
    assert results[0]["created"] is False
    assert results[0]["success"] is True
    assert results[1]["created"] is True
    assert results[2]["errors"][0]["statusCode"] == "MISSING_ARGUMENT"
    assert results[3]["errors"][0]["statusCode"] == "DUPLICATE_EXTERNAL_ID"
    assert results[4]["errors"][0]["statusCode"] == "DUPLICATE_EXTERNAL_ID"
    assert org.store.rows[results[0]["id"]]["Name"] == "updated"
    bad = await client.patch(f"{V}/composite/sobjects/Account/Name", json=body)
    assert bad.status_code == 404
    too_old = await client.patch(
        "/services/data/v45.0/composite/sobjects/Account/Ext__c", json=body
    )
    assert too_old.status_code == 404


async def test_delete(client: httpx.AsyncClient, org: FakeOrg) -> None:
    a = org.store.insert("Account", {"Name": "a"})
    b = org.store.insert("Account", {"Name": "b"})
    org.store.delete(b)
    response = await client.delete(f"{V}/composite/sobjects?ids={a},{b},bogus&allOrNone=false")
    results = response.json()
    assert results[0] == {"id": a, "success": True, "errors": []}
    assert results[1]["errors"][0]["statusCode"] == "ENTITY_IS_DELETED"
    assert results[2]["errors"][0]["statusCode"] == "MALFORMED_ID"

    c = org.store.insert("Account", {"Name": "c"})
    response = await client.delete(f"{V}/composite/sobjects?ids={c},{b}&allOrNone=true")
    assert response.json()[0] == {"id": c, "success": False, "errors": [ROLLED_BACK]}
    assert org.store.rows[c]["IsDeleted"] is False


async def test_retrieve_get_and_post(client: httpx.AsyncClient, org: FakeOrg) -> None:
    a = org.store.insert("Account", {"Name": "a"})
    contact = org.store.insert("Contact", {"LastName": "c"})
    response = await client.get(
        f"{V}/composite/sobjects/Account", params={"ids": f"{a},{contact}", "fields": "Id,Name"}
    )
    assert response.json() == [
        {
            "attributes": {"type": "Account", "url": f"{V}/sobjects/Account/{a}"},
            "Id": a,
            "Name": "a",
        },
        None,
    ]
    posted = await client.post(
        f"{V}/composite/sobjects/Account", json={"ids": [a], "fields": ["Name"]}
    )
    assert posted.json()[0]["Name"] == "a"
    bad = await client.get(f"{V}/composite/sobjects/Account", params={"ids": a, "fields": "No"})
    assert bad.status_code == 400
    assert bad.json()[0]["errorCode"] == "INVALID_FIELD"
