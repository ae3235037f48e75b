"""simple-salesforce's Bulk API handlers (``sf.bulk`` = 1.0, ``sf.bulk2`` = 2.0), unchanged,
against the emulator over HTTPS on a real socket."""

from __future__ import annotations

import csv
import io
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
from simple_salesforce.api import Salesforce

from sfsync.emulator.org import Org
from sfsync.emulator.server import RunningServer, serve_in_background

SCHEMA = """\
objects:
  Account:
    fields:
      Ext_Id__c: {type: text, length: 40, external_id: true, unique: true}
"""
TOKEN = "simple-salesforce-bulk-token"
FAST = 0.05
"""simple-salesforce sleeps this long before it first polls a Bulk 2.0 job."""


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    directory: Path = tmp_path_factory.mktemp("sfbulk")
    (directory / "schema.yaml").write_text(SCHEMA)
    org = Org.create(
        schema_path=directory / "schema.yaml", state_dir=directory / "state", access_token=TOKEN
    )
    try:
        with serve_in_background(org, tls=True) as server:
            yield server
    finally:
        org.close()


@pytest.fixture
def sf(running: RunningServer) -> Iterator[Any]:
    session = requests.Session()
    session.trust_env = False
    session.verify = str(running.ca_cert)
    # Any: simple-salesforce resolves sObject attributes dynamically (sf.bulk.Account ...).
    yield Salesforce(instance_url=running.url, session_id=TOKEN, session=session)
    session.close()


def test_bulk_v1_insert_query_upsert_delete(sf: Any) -> None:
    inserted = sf.bulk.Account.insert(
        [{"Name": "V1 One", "Ext_Id__c": "V1-1"}, {"Name": "V1 Two"}, {"NumberOfEmployees": 1}]
    )
    assert [r["success"] for r in inserted] == [True, True, False]
    assert inserted[2]["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"

    # query() flattens the result sets into one list of records (wait: seconds between polls).
    found = sf.bulk.Account.query("SELECT Id, Name FROM Account WHERE Name LIKE 'V1 %'", wait=FAST)
    rows = list(found)
    assert sorted(r["Name"] for r in rows) == ["V1 One", "V1 Two"]

    upserted = sf.bulk.Account.upsert(
        [{"Ext_Id__c": "V1-1", "Name": "V1 One bis"}, {"Ext_Id__c": "V1-9", "Name": "V1 Nine"}],
        "Ext_Id__c",
    )
    assert [(r["success"], r["created"]) for r in upserted] == [(True, False), (True, True)]

    deleted = sf.bulk.Account.delete([{"Id": inserted[1]["id"]}])
    assert deleted[0]["success"] is True
    remaining = sf.bulk.Account.query("SELECT Name FROM Account WHERE Name LIKE 'V1 %'", wait=FAST)
    assert sorted(r["Name"] for r in remaining) == ["V1 Nine", "V1 One bis"]
    everything = sf.bulk.Account.query_all(
        "SELECT Name FROM Account WHERE Name LIKE 'V1 %'", wait=FAST
    )
    assert len(list(everything)) == 3  # the deleted "V1 Two" too


def test_bulk2_insert_query_and_results(sf: Any) -> None:
    records = [{"Name": f"V2 {i:03d}", "Ext_Id__c": f"V2-{i}"} for i in range(120)]
    records.append({"Name": "", "Ext_Id__c": "V2-bad"})
    outcome = sf.bulk2.Account.insert(records=records, wait=FAST)
    assert outcome[0]["numberRecordsProcessed"] == 121
    assert outcome[0]["numberRecordsFailed"] == 1
    job_id = outcome[0]["job_id"]
    failed = sf.bulk2.Account.get_failed_records(job_id)
    table = list(csv.reader(io.StringIO(failed)))
    assert table[0][:2] == ["sf__Id", "sf__Error"]
    assert table[1][1].startswith("REQUIRED_FIELD_MISSING:")
    successful = list(csv.reader(io.StringIO(sf.bulk2.Account.get_successful_records(job_id))))
    assert len(successful) == 121

    pages = list(
        sf.bulk2.Account.query(
            "SELECT Id, Name FROM Account WHERE Name LIKE 'V2 %'", max_records=50, wait=FAST
        )
    )
    assert len(pages) == 3
    names = [row[1] for page in pages for row in list(csv.reader(io.StringIO(page)))[1:]]
    assert sorted(names) == [f"V2 {i:03d}" for i in range(120)]


def test_bulk2_upsert_and_delete(sf: Any) -> None:
    sf.bulk2.Account.upsert(
        records=[{"Ext_Id__c": "U-1", "Name": "Up one"}],
        external_id_field="Ext_Id__c",
        wait=FAST,
    )
    result = sf.bulk2.Account.upsert(
        records=[{"Ext_Id__c": "U-1", "Name": "Up one again"}, {"Ext_Id__c": "U-2", "Name": "Two"}],
        external_id_field="Ext_Id__c",
        wait=FAST,
    )
    assert result[0]["numberRecordsFailed"] == 0
    found = sf.query("SELECT Id, Name FROM Account WHERE Ext_Id__c LIKE 'U-%' ORDER BY Ext_Id__c")
    assert [r["Name"] for r in found["records"]] == ["Up one again", "Two"]
    ids = [{"Id": r["Id"]} for r in found["records"]]
    deleted = sf.bulk2.Account.delete(records=ids, wait=FAST)
    assert deleted[0]["numberRecordsProcessed"] == 2
    assert sf.query("SELECT COUNT() FROM Account WHERE Ext_Id__c LIKE 'U-%'")["totalSize"] == 0


def test_result_headers_keep_salesforce_casing_on_the_wire(running: RunningServer) -> None:
    """Over the socket (h11 keeps header names as sent), gzip included."""
    headers = {"Authorization": f"Bearer {TOKEN}", "Accept-Encoding": "gzip"}
    trust = ssl.create_default_context(cafile=str(running.ca_cert))
    with httpx.Client(base_url=running.url, verify=trust, headers=headers) as client:
        created = client.post(
            "/services/data/v59.0/jobs/query", json={"query": "SELECT Id, Name FROM Account"}
        )
        job = f"/services/data/v59.0/jobs/query/{created.json()['id']}"
        while client.get(job).json()["state"] != "JobComplete":
            time.sleep(0.02)
        response = client.get(f"{job}/results", params={"maxRecords": 1})
    names = [name for name, _ in response.headers.raw]
    assert b"Sforce-Locator" in names
    assert b"Sforce-NumberOfRecords" in names
    assert response.headers["Content-Encoding"] == "gzip"
    assert response.text.startswith('"Id","Name"')
