"""Record CRUD and the external-id forms (section 2.8)."""

from __future__ import annotations

import httpx
import pytest
from rest_fakes import FakeOrg

pytestmark = pytest.mark.anyio

V = "/services/data/v59.0"


async def _create(client: httpx.AsyncClient, **values: object) -> str:
    response = await client.post(f"{V}/sobjects/Account/", json=values)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def test_create_retrieve_update_delete(client: httpx.AsyncClient, org: FakeOrg) -> None:
    response = await client.post(
        f"{V}/sobjects/Account/",
        json={"attributes": {"type": "Account"}, "Name": "Acme", "BillingCity": "Oslo"},
    )
    assert response.status_code == 201
    body = response.json()
    assert body == {"id": body["id"], "success": True, "errors": []}
    record_id = body["id"]
    assert len(record_id) == 18
    assert response.headers["location"] == f"{V}/sobjects/Account/{record_id}"

    record = (await client.get(f"{V}/sobjects/Account/{record_id}")).json()
    assert record["attributes"] == {"type": "Account", "url": f"{V}/sobjects/Account/{record_id}"}
    assert record["Name"] == "Acme"
    assert record["Ext__c"] is None
    assert record["BillingAddress"] == {"city": "Oslo", "postalCode": None}
    assert list(record)[:2] == ["attributes", "Id"]

    response = await client.patch(f"{V}/sobjects/Account/{record_id}", json={"Name": "Acme 2"})
    assert response.status_code == 204
    assert response.content == b""
    assert org.store.rows[record_id]["Name"] == "Acme 2"

    response = await client.delete(f"{V}/sobjects/Account/{record_id}")
    assert response.status_code == 204
    gone = await client.get(f"{V}/sobjects/Account/{record_id}")
    assert gone.status_code == 404
    assert gone.json()[0]["errorCode"] == "ENTITY_IS_DELETED"
    again = await client.delete(f"{V}/sobjects/Account/{record_id}")
    assert again.json()[0]["errorCode"] == "ENTITY_IS_DELETED"


async def test_fields_parameter(client: httpx.AsyncClient) -> None:
    record_id = await _create(client, Name="Acme", Industry="Energy")
    record = (await client.get(f"{V}/sobjects/Account/{record_id}?fields=name,Industry")).json()
    assert list(record) == ["attributes", "Name", "Industry"]
    bad = await client.get(f"{V}/sobjects/Account/{record_id}?fields=Nope")
    assert bad.status_code == 400
    assert bad.json()[0]["errorCode"] == "INVALID_FIELD"


async def test_fifteen_char_id_and_wrong_type(client: httpx.AsyncClient) -> None:
    record_id = await _create(client, Name="Acme")
    assert (await client.get(f"{V}/sobjects/Account/{record_id[:15]}")).status_code == 200
    wrong = await client.get(f"{V}/sobjects/Contact/{record_id}")
    assert wrong.status_code == 404
    assert wrong.json()[0]["errorCode"] == "NOT_FOUND"
    missing = await client.patch(f"{V}/sobjects/Account/001xx0000009999AAA", json={"Name": "x"})
    assert missing.status_code == 404


async def test_validation_errors_pass_through(client: httpx.AsyncClient) -> None:
    response = await client.post(f"{V}/sobjects/Account/", json={"Industry": "Energy"})
    assert response.status_code == 400
    assert response.json() == [
        {
            "message": "Required fields are missing: [Name]",
            "errorCode": "REQUIRED_FIELD_MISSING",
            "fields": ["Name"],
        }
    ]
    bad_json = await client.post(
        f"{V}/sobjects/Account/", content=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert bad_json.status_code == 400
    assert bad_json.json()[0]["errorCode"] == "JSON_PARSER_ERROR"


async def test_upsert_insert_then_update_by_version(client: httpx.AsyncClient) -> None:
    response = await client.patch(f"{V}/sobjects/Account/Ext__c/K-1", json={"Name": "One"})
    assert response.status_code == 201
    created = response.json()
    assert created == {"id": created["id"], "success": True, "errors": [], "created": True}

    response = await client.patch(f"{V}/sobjects/Account/Ext__c/K-1", json={"Name": "Uno"})
    assert response.status_code == 200
    assert response.json() == {
        "id": created["id"], "success": True, "errors": [], "created": False,
    }  # fmt: skip

    old = await client.patch(
        "/services/data/v45.0/sobjects/Account/Ext__c/K-1", json={"Name": "Eins"}
    )
    assert old.status_code == 204
    assert old.content == b""
    old_insert = await client.patch(
        "/services/data/v45.0/sobjects/Account/Ext__c/K-2", json={"Name": "Zwei"}
    )
    assert old_insert.status_code == 201
    assert "created" not in old_insert.json()
    record = (await client.get(f"{V}/sobjects/Account/Ext__c/K-1")).json()
    assert record["Name"] == "Eins"
    assert record["Id"] == created["id"]


async def test_upsert_value_is_url_decoded(client: httpx.AsyncClient, org: FakeOrg) -> None:
    response = await client.patch(f"{V}/sobjects/Account/Ext__c/a+b%2Fc", json={"Name": "x"})
    assert response.status_code == 201
    assert org.store.rows[response.json()["id"]]["Ext__c"] == "a b/c"
    response = await client.patch(f"{V}/sobjects/Account/Ext__c/x%2By%20z", json={"Name": "y"})
    assert response.status_code == 201
    assert org.store.rows[response.json()["id"]]["Ext__c"] == "x+y z"
    found = await client.get(f"{V}/sobjects/Account/Ext__c/x%2By+z")
    assert found.json()["Name"] == "y"


async def test_upsert_errors(client: httpx.AsyncClient, org: FakeOrg) -> None:
    not_ext = await client.patch(f"{V}/sobjects/Account/Name/x", json={})
    assert not_ext.status_code == 404
    assert not_ext.json()[0]["errorCode"] == "NOT_FOUND"
    unknown = await client.patch(f"{V}/sobjects/Account/Nope__c/x", json={})
    assert unknown.status_code == 404
    mismatch = await client.patch(f"{V}/sobjects/Account/Ext__c/A", json={"Ext__c": "B"})
    assert mismatch.status_code == 400
    update_only = await client.patch(
        f"{V}/sobjects/Account/Ext__c/new?updateOnly=true", json={"Name": "n"}
    )
    assert update_only.status_code == 404
    assert org.store.find_by_field("Account", "Ext__c", "new") == []


async def test_multiple_matches_answer_300_with_urls(
    client: httpx.AsyncClient, org: FakeOrg
) -> None:
    # The fake store lets two rows share a value when written directly (as an index rebuild
    # or a non-unique external id would).
    first = await _create(client, Name="a")
    second = await _create(client, Name="b")
    org.store.rows[first]["Ext__c"] = "DUP"
    org.store.rows[second]["Ext__c"] = "DUP"
    response = await client.get(f"{V}/sobjects/Account/Ext__c/DUP")
    assert response.status_code == 300
    assert sorted(response.json()) == sorted(
        [f"{V}/sobjects/Account/{first}", f"{V}/sobjects/Account/{second}"]
    )
    upsert = await client.patch(f"{V}/sobjects/Account/Ext__c/DUP", json={"Name": "c"})
    assert upsert.status_code == 300


async def test_post_on_id_creates_and_patch_by_id_updates(
    client: httpx.AsyncClient, org: FakeOrg
) -> None:
    response = await client.post(f"{V}/sobjects/Account/Id", json={"Name": "ById"})
    assert response.status_code == 201
    assert response.json()["created"] is True
    record_id = response.json()["id"]
    response = await client.patch(f"{V}/sobjects/Account/Id/{record_id}", json={"Name": "New"})
    assert response.status_code == 200
    assert org.store.rows[record_id]["Name"] == "New"


async def test_get_and_delete_by_external_id(client: httpx.AsyncClient) -> None:
    await client.patch(f"{V}/sobjects/Account/Ext__c/E1", json={"Name": "x"})
    assert (await client.get(f"{V}/sobjects/Account/Ext__c/E1")).status_code == 200
    assert (await client.get(f"{V}/sobjects/Account/Ext__c/none")).status_code == 404
    assert (await client.delete(f"{V}/sobjects/Account/Ext__c/E1")).status_code == 204
    assert (await client.get(f"{V}/sobjects/Account/Ext__c/E1")).status_code == 404


async def test_etag_and_preconditions(client: httpx.AsyncClient, org: FakeOrg) -> None:
    record_id = await _create(client, Name="Acme")
    first = await client.get(f"{V}/sobjects/Account/{record_id}")
    tag = first.headers["etag"]
    unchanged = await client.get(
        f"{V}/sobjects/Account/{record_id}", headers={"If-None-Match": tag}
    )
    assert unchanged.status_code == 304
    org.clock.advance(5)
    ok = await client.patch(
        f"{V}/sobjects/Account/{record_id}", json={"Name": "B"}, headers={"If-Match": tag}
    )
    assert ok.status_code == 204
    stale = await client.patch(
        f"{V}/sobjects/Account/{record_id}", json={"Name": "C"}, headers={"If-Match": tag}
    )
    assert stale.status_code == 412
    assert stale.json()[0]["errorCode"] == "PRECONDITION_FAILED"
    assert org.store.rows[record_id]["Name"] == "B"
    too_old = await client.delete(
        f"{V}/sobjects/Account/{record_id}",
        headers={"If-Unmodified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"},
    )
    assert too_old.status_code == 412


async def test_head_answers_like_get(client: httpx.AsyncClient) -> None:
    record_id = await _create(client, Name="Head")
    response = await client.head(f"{V}/sobjects/Account/{record_id}")
    assert response.status_code == 200
    assert "etag" in response.headers
    missing = await client.head(f"{V}/sobjects/Account/001xx0000009999AAA")
    assert missing.status_code == 404
