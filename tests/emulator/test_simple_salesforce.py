"""simple-salesforce, unchanged, against the emulator over HTTPS on a real socket.

simple-salesforce was written against real Salesforce; every call here is one its users make,
and every failure must surface as the exception it raises against a real org. The client
trusts the emulator's CA through the ``requests.Session`` it is given (``trust_env`` off so
that a ``REQUESTS_CA_BUNDLE`` in the environment does not replace that CA).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import requests
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import (
    SalesforceExpiredSession,
    SalesforceMalformedRequest,
    SalesforceMoreThanOneRecord,
    SalesforceResourceNotFound,
)

from sfsync.emulator.org import Org
from sfsync.emulator.server import RunningServer, serve_in_background

SCHEMA = """\
objects:
  Account:
    fields:
      Ext_Id__c: {type: text, length: 40, external_id: true, unique: true}
      Legacy_Key__c: {type: text, length: 40, external_id: true}
"""

SESSION_TIMEOUT = 600.0


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    directory = tmp_path_factory.mktemp("sf")
    (directory / "schema.yaml").write_text(SCHEMA)
    org = Org.create(
        schema_path=directory / "schema.yaml",
        state_dir=directory / "state",
        session_timeout=SESSION_TIMEOUT,
    )
    try:
        with serve_in_background(org, tls=True) as server:
            yield server
    finally:
        org.close()


@pytest.fixture
def http(running: RunningServer) -> Iterator[requests.Session]:
    session = requests.Session()
    session.trust_env = False
    session.verify = str(running.ca_cert)
    yield session
    session.close()


def _error_code(error: Exception) -> str:
    """The errorCode of the first item of a simple-salesforce exception's JSON content."""
    content: Any = getattr(error, "content", None)
    return str(content[0]["errorCode"])


def _login(running: RunningServer, http: requests.Session) -> str:
    """A fresh session token through the client-credentials grant."""
    app = running.org.auth.app
    response = http.post(
        f"{running.url}/services/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": app.client_id,
            "client_secret": app.client_secret,
        },
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


@pytest.fixture
def sf(running: RunningServer, http: requests.Session) -> Any:
    # Any: simple-salesforce resolves sObject attributes dynamically (sf.Account ...).
    return Salesforce(instance_url=running.url, session_id=_login(running, http), session=http)


def test_describe(sf: Any) -> None:
    names = {s["name"] for s in sf.describe()["sobjects"]}
    assert {"Account", "Contact", "Opportunity"} <= names
    account = sf.Account.describe()
    fields = {f["name"]: f for f in account["fields"]}
    assert fields["Ext_Id__c"]["externalId"] is True
    assert any(r["relationshipName"] == "Contacts" for r in account["childRelationships"])
    assert sf.Account.metadata()["objectDescribe"]["keyPrefix"] == "001"


def test_crud(sf: Any) -> None:
    created = sf.Account.create({"Name": "Acme CRUD"})
    assert created["success"] is True
    record_id = created["id"]
    assert sf.Account.get(record_id)["Name"] == "Acme CRUD"
    assert sf.Account.update(record_id, {"Name": "Acme 2"}) == 204
    assert sf.Account.get(record_id)["Name"] == "Acme 2"
    assert sf.Account.delete(record_id) == 204
    with pytest.raises(SalesforceResourceNotFound) as excinfo:
        sf.Account.get(record_id)
    assert _error_code(excinfo.value) == "ENTITY_IS_DELETED"


def test_upsert_by_external_id(sf: Any) -> None:
    assert sf.Account.upsert("Ext_Id__c/ERP-1", {"Name": "Upserted"}) == 201
    assert sf.Account.upsert("Ext_Id__c/ERP-1", {"Name": "Upserted again"}) == 200
    record = sf.Account.get_by_custom_id("Ext_Id__c", "ERP-1")
    assert record["Name"] == "Upserted again"
    with pytest.raises(SalesforceResourceNotFound):
        sf.Account.upsert("Name/x", {"Name": "not a key"})
    # simple-salesforce quote_plus-encodes the value of get_by_custom_id.
    sf.Account.create({"Name": "Odd key", "Ext_Id__c": "A+B C/D"})
    assert sf.Account.get_by_custom_id("Ext_Id__c", "A+B C/D")["Name"] == "Odd key"


def test_multiple_matches_raise_more_than_one_record(sf: Any) -> None:
    for name in ("one", "two"):
        sf.Account.create({"Name": name, "Legacy_Key__c": "SHARED"})
    with pytest.raises(SalesforceMoreThanOneRecord) as excinfo:
        sf.Account.get_by_custom_id("Legacy_Key__c", "SHARED")
    assert len(excinfo.value.content) == 2


def test_query_and_query_all_over_many_pages(sf: Any, running: RunningServer) -> None:
    store: Any = running.org.store
    store.bulk_load("Contact", ({"LastName": f"Paged {i:05d}"} for i in range(5000)))
    soql = "SELECT Id, LastName FROM Contact WHERE LastName LIKE 'Paged%'"
    first = sf.query(soql)
    assert first["totalSize"] == 5000
    assert first["done"] is False
    assert len(first["records"]) == 2000
    everything = sf.query_all(soql)
    names = [r["LastName"] for r in everything["records"]]
    assert len(names) == 5000
    assert len(set(names)) == 5000

    victim = first["records"][0]["Id"]
    sf.Contact.delete(victim)
    assert sf.query_all(soql)["totalSize"] == 4999
    with_deleted = sf.query_all(soql, include_deleted=True)
    assert with_deleted["totalSize"] == 5000
    assert any(r["Id"] == victim for r in with_deleted["records"])


def test_count(sf: Any) -> None:
    sf.Account.create({"Name": "Counted"})
    result = sf.query("SELECT COUNT() FROM Account WHERE Name = 'Counted'")
    assert result == {"totalSize": 1, "done": True, "records": []}


def test_bad_soql(sf: Any) -> None:
    with pytest.raises(SalesforceMalformedRequest) as excinfo:
        sf.query("SELECT Id FORM Account")
    assert _error_code(excinfo.value) == "MALFORMED_QUERY"


def test_composite(sf: Any) -> None:
    body = {
        "allOrNone": True,
        "compositeRequest": [
            {
                "method": "POST",
                "url": "/services/data/v59.0/sobjects/Account",
                "referenceId": "acct",
                "body": {"Name": "Composite Parent"},
            },
            {
                "method": "POST",
                "url": "/services/data/v59.0/sobjects/Contact",
                "referenceId": "cont",
                "body": {"LastName": "Composite Kid", "AccountId": "@{acct.id}"},
            },
            {
                "method": "GET",
                "url": "/services/data/v59.0/query?q=SELECT+Id,AccountId+FROM+Contact"
                "+WHERE+LastName='Composite+Kid'",
                "referenceId": "check",
            },
        ],
    }
    result = sf.restful("composite", method="POST", json=body)
    statuses = [r["httpStatusCode"] for r in result["compositeResponse"]]
    assert statuses == [201, 201, 200]
    account_id = result["compositeResponse"][0]["body"]["id"]
    assert result["compositeResponse"][2]["body"]["records"][0]["AccountId"] == account_id


def test_sobject_collections(sf: Any) -> None:
    records = [{"attributes": {"type": "Account"}, "Name": f"Coll {i}"} for i in range(3)]
    created = sf.restful(
        "composite/sobjects", method="POST", json={"allOrNone": True, "records": records}
    )
    ids = [r["id"] for r in created]
    assert all(r["success"] for r in created)
    fetched = sf.restful(
        "composite/sobjects/Account", params={"ids": ",".join(ids), "fields": "Id,Name"}
    )
    assert [r["Name"] for r in fetched] == ["Coll 0", "Coll 1", "Coll 2"]
    upserted = sf.restful(
        "composite/sobjects/Account/Ext_Id__c",
        method="PATCH",
        json={
            "allOrNone": False,
            "records": [
                {"attributes": {"type": "Account"}, "Ext_Id__c": "COLL-1", "Name": "Up 1"},
                {"attributes": {"type": "Account"}, "Ext_Id__c": "COLL-2", "Name": "Up 2"},
            ],
        },
    )
    assert [r["created"] for r in upserted] == [True, True]
    failed = sf.restful(
        "composite/sobjects",
        method="POST",
        json={"allOrNone": True, "records": [records[0], {"attributes": {"type": "Account"}}]},
    )
    assert failed[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert failed[1]["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"
    deleted = sf.restful(
        "composite/sobjects", method="DELETE", params={"ids": ",".join(ids), "allOrNone": "true"}
    )
    assert all(r["success"] for r in deleted)


def test_limits(sf: Any) -> None:
    limits = sf.limits()
    assert limits["DailyApiRequests"]["Max"] > limits["DailyApiRequests"]["Remaining"]
    assert sf.api_usage["api-usage"].used > 0


def test_expired_session(running: RunningServer, http: requests.Session, sf: Any) -> None:
    assert sf.Account.metadata()["objectDescribe"]["name"] == "Account"
    advanced = http.post(
        f"{running.url}/__emulator__/clock/advance", json={"seconds": SESSION_TIMEOUT + 1}
    )
    assert advanced.status_code == 200
    with pytest.raises(SalesforceExpiredSession):
        sf.Account.metadata()


def test_version_list_needs_no_session(running: RunningServer, http: requests.Session) -> None:
    # The version list needs no session, as on Salesforce.
    versions = http.get(f"{running.url}/services/data/").json()
    assert versions[-1]["version"] == "66.0"


def test_updated_and_deleted(sf: Any, running: RunningServer) -> None:
    now = running.org.clock.now()
    created = sf.Account.create({"Name": "Replicated"})["id"]
    kept = sf.Account.create({"Name": "Replicated and kept"})["id"]
    contact = sf.Contact.create({"LastName": "Unrelated"})["id"]
    sf.Account.delete(created)
    # The window ends at the current minute; move the org clock past it.
    running.org.clock.advance(120)
    start, end = now - timedelta(hours=1), running.org.clock.now()
    updated = sf.Account.updated(start, end)
    assert kept in updated["ids"]
    assert created not in updated["ids"]  # only live records
    assert contact not in updated["ids"]
    assert updated["latestDateCovered"].endswith(":00.000+0000")
    deleted = sf.Account.deleted(start, end)
    deleted_ids = [r["id"] for r in deleted["deletedRecords"]]
    assert created in deleted_ids  # (other tests of this module deleted records too)
    assert kept not in deleted_ids
    assert deleted["earliestDateAvailable"] <= deleted["latestDateCovered"]
