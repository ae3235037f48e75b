"""Version resources and describe (section 2.1 and 2.7)."""

from __future__ import annotations

import httpx
import pytest

from sfsync.emulator.rest.versions import SUPPORTED_VERSIONS

pytestmark = pytest.mark.anyio

V = "/services/data/v59.0"

GLOBAL_KEYS = {
    "activateable", "createable", "custom", "customSetting", "deepCloneable", "deletable",
    "deprecatedAndHidden", "feedEnabled", "hasSubtypes", "isInterface", "isSubtype", "keyPrefix",
    "label", "labelPlural", "layoutable", "mergeable", "mruEnabled", "name", "queryable",
    "replicateable", "retrieveable", "searchable", "triggerable", "undeletable", "updateable",
    "urls",
}  # fmt: skip

FIELD_KEYS = {
    "aggregatable",
    "aiPredictionField",
    "autoNumber",
    "byteLength",
    "calculated",
    "calculatedFormula",
    "cascadeDelete",
    "caseSensitive",
    "compoundFieldName",
    "controllerName",
    "createable",
    "custom",
    "defaultValue",
    "defaultValueFormula",
    "defaultedOnCreate",
    "dependentPicklist",
    "deprecatedAndHidden",
    "digits",
    "displayLocationInDecimal",
    "encrypted",
    "externalId",
    "extraTypeInfo",
    "filterable",
    "filteredLookupInfo",
    "formulaTreatNullNumberAsZero",
    "groupable",
    "highScaleNumber",
    "htmlFormatted",
    "idLookup",
    "inlineHelpText",
    "label",
    "length",
    "mask",
    "maskType",
    "name",
    "nameField",
    "namePointing",
    "nillable",
    "permissionable",
    "picklistValues",
    "polymorphicForeignKey",
    "precision",
    "queryByDistance",
    "referenceTargetField",
    "referenceTo",
    "relationshipName",
    "relationshipOrder",
    "restrictedDelete",
    "restrictedPicklist",
    "scale",
    "searchPrefilterable",
    "soapType",
    "sortable",
    "type",
    "unique",
    "updateable",
    "writeRequiresMasterRead",
}

FULL_EXTRA_KEYS = {
    "actionOverrides",
    "childRelationships",
    "compactLayoutable",
    "defaultImplementation",
    "extendedBy",
    "extendsInterfaces",
    "fields",
    "implementedBy",
    "implementsInterfaces",
    "listviewable",
    "lookupLayoutable",
    "namedLayoutInfos",
    "networkScopeFieldName",
    "recordTypeInfos",
    "searchLayoutable",
    "sobjectDescribeOption",
    "supportedScopes",
}


async def test_version_list_is_oldest_first_with_labels(client: httpx.AsyncClient) -> None:
    for path in ("/services/data", "/services/data/"):
        body = (await client.get(path)).json()
        assert [v["version"] for v in body] == list(SUPPORTED_VERSIONS)
        assert {"label": "Winter '24", "url": "/services/data/v59.0", "version": "59.0"} in body
        assert body[0] == {"label": "Spring '19", "url": "/services/data/v45.0", "version": "45.0"}


async def test_resource_map_points_into_the_version(client: httpx.AsyncClient) -> None:
    body = (await client.get("/services/data/v62.0/")).json()
    assert body["sobjects"] == "/services/data/v62.0/sobjects"
    assert body["query"] == "/services/data/v62.0/query"
    assert body["queryAll"] == "/services/data/v62.0/queryAll"
    assert body["composite"] == "/services/data/v62.0/composite"
    assert body["limits"] == "/services/data/v62.0/limits"


async def test_unsupported_version_is_not_routed(client: httpx.AsyncClient) -> None:
    assert (await client.get("/services/data/v44.0/sobjects")).status_code == 404
    assert (await client.get("/services/data/v67.0/sobjects")).status_code == 404


async def test_global_describe(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{V}/sobjects/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json;charset=UTF-8"
    body = response.json()
    assert body["encoding"] == "UTF-8"
    assert body["maxBatchSize"] == 200
    account = next(s for s in body["sobjects"] if s["name"] == "Account")
    assert set(account) >= GLOBAL_KEYS
    assert account["keyPrefix"] == "001"
    assert account["urls"]["rowTemplate"] == f"{V}/sobjects/Account/{{ID}}"
    assert account["urls"]["describe"] == f"{V}/sobjects/Account/describe"


async def test_basic_info(client: httpx.AsyncClient) -> None:
    body = (await client.get(f"{V}/sobjects/account/")).json()
    assert body["objectDescribe"]["name"] == "Account"
    assert body["recentItems"] == []


async def test_full_describe_has_every_key(client: httpx.AsyncClient) -> None:
    body = (await client.get(f"{V}/sobjects/Account/describe")).json()
    assert set(body) >= (GLOBAL_KEYS | FULL_EXTRA_KEYS)
    assert body["sobjectDescribeOption"] == "FULL"
    fields = {f["name"]: f for f in body["fields"]}
    for f in fields.values():
        assert set(f) == FIELD_KEYS, f["name"]
    ident = fields["Id"]
    assert (ident["type"], ident["soapType"], ident["length"], ident["byteLength"]) == (
        "id",
        "tns:ID",
        18,
        18,
    )
    assert ident["nillable"] is False
    assert ident["createable"] is False
    assert ident["defaultedOnCreate"] is True
    assert ident["idLookup"] is True
    assert fields["Ext__c"]["externalId"] is True
    assert fields["Ext__c"]["custom"] is True
    assert fields["Industry"]["picklistValues"] == [
        {"active": True, "defaultValue": False, "label": "Energy", "validFor": None,
         "value": "Energy"}
    ]  # fmt: skip
    assert fields["BillingCity"]["compoundFieldName"] == "BillingAddress"
    assert fields["IsDeleted"]["defaultValue"] is False
    assert fields["IsDeleted"]["nillable"] is False
    assert body["childRelationships"] == [
        {
            "cascadeDelete": False, "childSObject": "Contact", "deprecatedAndHidden": False,
            "field": "AccountId", "junctionIdListNames": [], "junctionReferenceTo": [],
            "relationshipName": "Contacts", "restrictedDelete": False,
        }
    ]  # fmt: skip
    assert body["recordTypeInfos"][0]["master"] is True
    contact = (await client.get(f"{V}/sobjects/Contact/describe/")).json()
    lookup = next(f for f in contact["fields"] if f["name"] == "AccountId")
    assert lookup["referenceTo"] == ["Account"]
    assert lookup["relationshipName"] == "Account"
    assert lookup["type"] == "reference"


async def test_describe_if_modified_since(client: httpx.AsyncClient) -> None:
    first = await client.get(f"{V}/sobjects/Account/describe")
    stamp = first.headers["last-modified"]
    again = await client.get(f"{V}/sobjects/Account/describe", headers={"If-Modified-Since": stamp})
    assert again.status_code == 304
    assert again.content == b""
    older = await client.get(
        f"{V}/sobjects/Account/describe",
        headers={"If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"},
    )
    assert older.status_code == 200


async def test_unknown_object_is_not_found(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{V}/sobjects/Nope__c/describe")
    assert response.status_code == 404
    assert response.json()[0]["errorCode"] == "NOT_FOUND"


async def test_unknown_path_and_wrong_method_in_salesforce_shape(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get(f"{V}/nothing/here")
    assert response.status_code == 404
    assert response.json()[0]["errorCode"] == "NOT_FOUND"
    response = await client.patch(f"{V}/sobjects/Account", json={})
    assert response.status_code == 405
    assert response.json() == [
        {
            "message": "HTTP Method 'PATCH' not allowed. Allowed are HEAD,GET,POST",
            "errorCode": "METHOD_NOT_ALLOWED",
        }
    ]
