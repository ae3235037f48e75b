"""Composite, composite batch and sObject Tree (section 2.9)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from rest_fakes import FakeOrg

from sfsync.emulator.rest.composite import UnresolvedReferenceError, substitute

pytestmark = pytest.mark.anyio

V = "/services/data/v59.0"


def _accounts(org: FakeOrg) -> list[dict[str, Any]]:
    return [dict(r) for r in org.store.scan("Account", include_deleted=False)]


async def test_composite_references_and_shapes(client: httpx.AsyncClient, org: FakeOrg) -> None:
    request = {
        "compositeRequest": [
            {
                "method": "POST",
                "url": f"{V}/sobjects/Account",
                "referenceId": "newAccount",
                "body": {"Name": "Parent"},
            },
            {
                "method": "POST",
                "url": f"{V}/sobjects/Contact",
                "referenceId": "newContact",
                "body": {"LastName": "Kid", "AccountId": "@{newAccount.id}"},
            },
            {
                "method": "GET",
                "url": f"{V}/query?q=SELECT+Id,Name+FROM+Account",
                "referenceId": "q",
            },
            {
                "method": "PATCH",
                "url": f"{V}/sobjects/Account/@{{q.records[0].Id}}",
                "referenceId": "rename",
                "body": {"Name": "Renamed"},
            },
            {
                "method": "GET",
                "url": f"{V}/sobjects/Contact/@{{newContact.id}}",
                "referenceId": "readBack",
            },
        ]
    }
    response = await client.post(f"{V}/composite", json=request)
    assert response.status_code == 200
    results = response.json()["compositeResponse"]
    assert [r["httpStatusCode"] for r in results] == [201, 201, 200, 204, 200]
    assert [r["referenceId"] for r in results] == [
        "newAccount", "newContact", "q", "rename", "readBack",
    ]  # fmt: skip
    account_id = results[0]["body"]["id"]
    assert results[0]["httpHeaders"] == {"Location": f"{V}/sobjects/Account/{account_id}"}
    assert results[3]["body"] is None
    assert results[4]["body"]["AccountId"] == account_id
    assert _accounts(org)[0]["Name"] == "Renamed"


async def test_composite_dependent_of_failure_is_halted(
    client: httpx.AsyncClient, org: FakeOrg
) -> None:
    request = {
        "compositeRequest": [
            {"method": "POST", "url": f"{V}/sobjects/Account", "referenceId": "bad", "body": {}},
            {
                "method": "POST",
                "url": f"{V}/sobjects/Contact",
                "referenceId": "dep",
                "body": {"LastName": "x", "AccountId": "@{bad.id}"},
            },
            {
                "method": "POST",
                "url": f"{V}/sobjects/Account",
                "referenceId": "ok",
                "body": {"Name": "fine"},
            },
        ]
    }
    results = (await client.post(f"{V}/composite", json=request)).json()["compositeResponse"]
    assert [r["httpStatusCode"] for r in results] == [400, 400, 201]
    assert results[0]["body"][0]["errorCode"] == "REQUIRED_FIELD_MISSING"
    assert results[1]["body"][0]["errorCode"] == "PROCESSING_HALTED"
    assert len(_accounts(org)) == 1


async def test_composite_all_or_none_rolls_back(client: httpx.AsyncClient, org: FakeOrg) -> None:
    request = {
        "allOrNone": True,
        "compositeRequest": [
            {
                "method": "POST",
                "url": f"{V}/sobjects/Account",
                "referenceId": "a1",
                "body": {"Name": "kept?"},
            },
            {"method": "POST", "url": f"{V}/sobjects/Account", "referenceId": "a2", "body": {}},
            {
                "method": "POST",
                "url": f"{V}/sobjects/Account",
                "referenceId": "a3",
                "body": {"Name": "never"},
            },
        ],
    }
    response = await client.post(f"{V}/composite", json=request)
    assert response.status_code == 200
    results = response.json()["compositeResponse"]
    assert [r["httpStatusCode"] for r in results] == [400, 400, 400]
    assert results[0]["body"][0]["errorCode"] == "PROCESSING_HALTED"
    assert results[1]["body"][0]["errorCode"] == "REQUIRED_FIELD_MISSING"
    assert results[2]["body"][0]["errorCode"] == "PROCESSING_HALTED"
    assert _accounts(org) == []


async def test_composite_request_validation(client: httpx.AsyncClient) -> None:
    too_many = {
        "compositeRequest": [
            {"method": "GET", "url": f"{V}/limits", "referenceId": f"r{i}"} for i in range(26)
        ]
    }
    response = await client.post(f"{V}/composite", json=too_many)
    assert response.status_code == 400
    duplicate = {
        "compositeRequest": [
            {"method": "GET", "url": f"{V}/limits", "referenceId": "same"},
            {"method": "GET", "url": f"{V}/limits", "referenceId": "same"},
        ]
    }
    assert (await client.post(f"{V}/composite", json=duplicate)).status_code == 400
    assert (await client.post(f"{V}/composite", json={})).status_code == 400


def test_substitute_keeps_json_types_and_interpolates() -> None:
    results = {"a": {"id": "001X", "n": 5, "records": [{"Id": "003Y"}]}}
    assert substitute({"x": "@{a.n}", "y": ["pre-@{a.id}-post"]}, results) == {
        "x": 5,
        "y": ["pre-001X-post"],
    }
    assert substitute("@{a.records[0].Id}", results) == "003Y"
    assert substitute("@{a.records[0].id}", results) == "003Y"
    with pytest.raises(UnresolvedReferenceError):
        substitute("@{a.records[3].Id}", results)
    with pytest.raises(UnresolvedReferenceError):
        substitute("@{missing.id}", results)


async def test_batch_and_halt_on_error(client: httpx.AsyncClient, org: FakeOrg) -> None:
    record_id = org.store.insert("Account", {"Name": "A"})
    request = {
        "batchRequests": [
            {"method": "GET", "url": f"v59.0/sobjects/Account/{record_id}"},
            {"method": "PATCH", "url": f"v59.0/sobjects/Account/{record_id}",
             "richInput": {"Name": "B"}},
            {"method": "GET", "url": "v59.0/sobjects/Nope__c/describe"},
            {"method": "GET", "url": "v59.0/limits"},
        ]
    }  # fmt: skip
    body = (await client.post(f"{V}/composite/batch", json=request)).json()
    assert body["hasErrors"] is True
    assert [r["statusCode"] for r in body["results"]] == [200, 204, 404, 200]
    assert body["results"][0]["result"]["Name"] == "A"
    assert body["results"][1]["result"] is None
    halted = await client.post(f"{V}/composite/batch", json={**request, "haltOnError": True})
    statuses = [r["statusCode"] for r in halted.json()["results"]]
    assert statuses == [200, 204, 404, 412]
    assert halted.json()["results"][3]["result"][0]["errorCode"] == "BATCH_PROCESSING_HALTED"


async def test_tree_creates_parents_and_children(client: httpx.AsyncClient, org: FakeOrg) -> None:
    tree = {
        "records": [
            {
                "attributes": {"type": "Account", "referenceId": "ref1"},
                "Name": "Parent",
                "Contacts": {
                    "records": [
                        {"attributes": {"type": "Contact", "referenceId": "ref2"},
                         "LastName": "One"},
                        {"attributes": {"type": "Contact", "referenceId": "ref3"},
                         "LastName": "Two", "Email": "two@example.com"},
                    ]
                },
            },
            {"attributes": {"type": "Account", "referenceId": "ref4"}, "Name": "Solo"},
        ]
    }  # fmt: skip
    response = await client.post(f"{V}/composite/tree/Account/", json=tree)
    assert response.status_code == 201
    body = response.json()
    assert body["hasErrors"] is False
    assert [r["referenceId"] for r in body["results"]] == ["ref1", "ref2", "ref3", "ref4"]
    ids = {r["referenceId"]: r["id"] for r in body["results"]}
    contact = org.store.get(ids["ref2"])
    assert contact is not None
    assert contact["AccountId"] == ids["ref1"]


async def test_tree_failure_saves_nothing(client: httpx.AsyncClient, org: FakeOrg) -> None:
    tree = {
        "records": [
            {
                "attributes": {"type": "Account", "referenceId": "ref1"},
                "Name": "Parent",
                "Contacts": {"records": [
                    {"attributes": {"type": "Contact", "referenceId": "ref2"},
                     "LastName": "B", "Email": "123"},
                ]},
            }
        ]
    }  # fmt: skip
    response = await client.post(f"{V}/composite/tree/Account", json=tree)
    assert response.status_code == 400
    assert response.json() == {
        "hasErrors": True,
        "results": [
            {
                "referenceId": "ref2",
                "errors": [
                    {
                        "statusCode": "INVALID_EMAIL_ADDRESS",
                        "message": "Email: invalid email address: 123",
                        "fields": ["Email"],
                    }
                ],
            }
        ],
    }
    assert _accounts(org) == []


async def test_tree_malformed(client: httpx.AsyncClient) -> None:
    no_ref = {"records": [{"attributes": {"type": "Account"}, "Name": "x"}]}
    assert (await client.post(f"{V}/composite/tree/Account", json=no_ref)).status_code == 400
    wrong_type = {"records": [{"attributes": {"type": "Contact", "referenceId": "r"}}]}
    assert (await client.post(f"{V}/composite/tree/Account", json=wrong_type)).status_code == 400
    too_many = {
        "records": [
            {"attributes": {"type": "Account", "referenceId": f"r{i}"}, "Name": "x"}
            for i in range(201)
        ]
    }
    assert (await client.post(f"{V}/composite/tree/Account", json=too_many)).status_code == 400
