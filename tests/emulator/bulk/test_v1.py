"""Bulk API 1.0 (``/services/async/XX.X/``) through the real app, in process."""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import AsyncIterator, Callable
from typing import Any
from xml.etree import ElementTree

import anyio
import httpx
import orjson
import pytest
from bulk_helpers import TOKEN

from sfsync.emulator.app import build_app
from sfsync.emulator.bulk.service import service_of
from sfsync.emulator.org import Org
from sfsync.emulator.store_changes import ChangeRecord

pytestmark = pytest.mark.anyio

A = "/services/async/59.0"
NS = "{http://www.force.com/2009/06/asyncapi/dataload}"
JSON = {"Content-Type": "application/json"}
XML = {"Content-Type": "application/xml"}


@pytest.fixture
async def bulk(org: Org) -> AsyncIterator[httpx.AsyncClient]:
    """A client that authenticates as Bulk 1.0 clients do: ``X-SFDC-Session``."""
    transport = httpx.ASGITransport(app=build_app(org))
    async with httpx.AsyncClient(
        transport=transport, base_url="https://emulator.test", headers={"X-SFDC-Session": TOKEN}
    ) as client:
        yield client


async def wait_batch(
    bulk: httpx.AsyncClient, job_id: str, batch_id: str, headers: dict[str, str]
) -> dict[str, Any]:
    with anyio.fail_after(30):
        while True:
            response = await bulk.get(f"{A}/job/{job_id}/batch/{batch_id}", headers=headers)
            info = _info(response)
            if info["state"] in ("Completed", "Failed", "NotProcessed"):
                return info
            await anyio.sleep(0.02)


def _info(response: httpx.Response) -> dict[str, Any]:
    if response.headers["content-type"].startswith("application/json"):
        body: dict[str, Any] = response.json()
        return body
    root = ElementTree.fromstring(response.content)
    return {child.tag.removeprefix(NS): child.text for child in root}


async def test_json_insert_with_partial_failure(bulk: httpx.AsyncClient, org: Org) -> None:
    job = await bulk.post(
        f"{A}/job",
        content=orjson.dumps(
            {
                "operation": "insert",
                "object": "Account",
                "concurrencyMode": 0,
                "contentType": "JSON",
            }
        ),
        headers=JSON,
    )
    assert job.status_code == 201
    info = job.json()
    assert (info["state"], info["concurrencyMode"], info["contentType"]) == (
        "Open",
        "Parallel",
        "JSON",
    )
    assert info["numberBatchesTotal"] == 0
    records = [{"Name": "One", "NumberOfEmployees": 3}, {"Name": None}, {"Name": "Three"}]
    batch = await bulk.post(
        f"{A}/job/{info['id']}/batch", content=orjson.dumps(records), headers=JSON
    )
    assert batch.status_code == 201
    assert batch.json()["jobId"] == info["id"]
    done = await wait_batch(bulk, info["id"], batch.json()["id"], JSON)
    assert done["state"] == "Completed"
    assert (done["numberRecordsProcessed"], done["numberRecordsFailed"]) == (3, 1)
    results = (
        await bulk.get(f"{A}/job/{info['id']}/batch/{done['id']}/result", headers=JSON)
    ).json()
    assert [r["success"] for r in results] == [True, False, True]
    assert results[0]["created"] is True
    assert org.store.get(results[0]["id"])["NumberOfEmployees"] == 3
    assert results[1]["errors"] == [
        {
            "statusCode": "REQUIRED_FIELD_MISSING",
            "message": "Required fields are missing: [Name]",
            "fields": ["Name"],
        }
    ]
    request = await bulk.get(f"{A}/job/{info['id']}/batch/{done['id']}/request", headers=JSON)
    assert orjson.loads(request.content) == records
    closed = await bulk.post(
        f"{A}/job/{info['id']}", content=orjson.dumps({"state": "Closed"}), headers=JSON
    )
    summary = closed.json()
    assert summary["state"] == "Closed"
    assert (summary["numberBatchesCompleted"], summary["numberBatchesTotal"]) == (1, 1)
    assert (summary["numberRecordsProcessed"], summary["numberRecordsFailed"]) == (3, 1)
    late = await bulk.post(f"{A}/job/{info['id']}/batch", content=b"[]", headers=JSON)
    assert late.status_code == 400
    assert late.json()["exceptionCode"] == "InvalidJobState"


async def test_xml_job_with_xml_records(bulk: httpx.AsyncClient, org: Org) -> None:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<jobInfo xmlns="http://www.force.com/2009/06/asyncapi/dataload">'
        "<operation>upsert</operation><object>Account</object>"
        "<externalIdFieldName>Ext_Id__c</externalIdFieldName><contentType>XML</contentType>"
        "</jobInfo>"
    )
    job = await bulk.post(f"{A}/job", content=body, headers=XML)
    assert job.status_code == 201
    assert job.headers["content-type"].startswith("application/xml")
    info = _info(job)
    assert info["state"] == "Open"
    assert info["externalIdFieldName"] == "Ext_Id__c"
    records = (
        '<sObjects xmlns="http://www.force.com/2009/06/asyncapi/dataload" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        "<sObject><Ext_Id__c>X-1</Ext_Id__c><Name>Ex One</Name></sObject>"
        '<sObject><Ext_Id__c>X-2</Ext_Id__c><Name>Ex Two</Name><Phone xsi:nil="true"/></sObject>'
        "</sObjects>"
    )
    batch = _info(await bulk.post(f"{A}/job/{info['id']}/batch", content=records, headers=XML))
    done = await wait_batch(bulk, str(info["id"]), str(batch["id"]), XML)
    assert done["state"] == "Completed"
    result = await bulk.get(f"{A}/job/{info['id']}/batch/{batch['id']}/result", headers=XML)
    root = ElementTree.fromstring(result.content)
    outcomes = [
        (r.find(f"{NS}success").text, r.find(f"{NS}created").text)  # type: ignore[union-attr]
        for r in root
    ]
    assert outcomes == [("true", "true"), ("true", "true")]
    assert len(org.store.find_by_field("Account", "Ext_Id__c", "X-2")) == 1


async def test_csv_batch_and_csv_results(bulk: httpx.AsyncClient, org: Org) -> None:
    job = _info(
        await bulk.post(
            f"{A}/job",
            content=orjson.dumps(
                {"operation": "insert", "object": "Contact", "contentType": "CSV"}
            ),
            headers=JSON,
        )
    )
    batch = await bulk.post(
        f"{A}/job/{job['id']}/batch",
        content=b"LastName,Email\nOk,ok@example.com\nBad,not-an-email\n",
        headers={"Content-Type": "text/csv"},
    )
    batch_info = _info(batch)
    await wait_batch(bulk, str(job["id"]), str(batch_info["id"]), XML)
    result = await bulk.get(f"{A}/job/{job['id']}/batch/{batch_info['id']}/result")
    table = list(csv.reader(io.StringIO(result.text)))
    assert table[0] == ["Id", "Success", "Created", "Error"]
    assert table[1][1:3] == ["true", "true"]
    assert table[2][1:3] == ["false", "false"]
    assert table[2][3].startswith("INVALID_EMAIL_ADDRESS:")


async def test_json_query_and_results(bulk: httpx.AsyncClient, org: Org) -> None:
    org.store.bulk_load("Account", ({"Name": f"Q {i}"} for i in range(5)))
    job = (
        await bulk.post(
            f"{A}/job",
            content=orjson.dumps(
                {"operation": "query", "object": "Account", "contentType": "JSON"}
            ),
            headers=JSON,
        )
    ).json()
    batch = (
        await bulk.post(
            f"{A}/job/{job['id']}/batch", content=b"SELECT Id, Name FROM Account", headers=JSON
        )
    ).json()
    done = await wait_batch(bulk, job["id"], batch["id"], JSON)
    assert done["numberRecordsProcessed"] == 5
    ids = (await bulk.get(f"{A}/job/{job['id']}/batch/{batch['id']}/result", headers=JSON)).json()
    assert len(ids) == 1
    records = (
        await bulk.get(f"{A}/job/{job['id']}/batch/{batch['id']}/result/{ids[0]}", headers=JSON)
    ).json()
    assert sorted(r["Name"] for r in records) == [f"Q {i}" for i in range(5)]
    assert records[0]["attributes"]["type"] == "Account"


async def test_failed_query_batch(bulk: httpx.AsyncClient) -> None:
    job = (
        await bulk.post(
            f"{A}/job",
            content=orjson.dumps(
                {"operation": "query", "object": "Account", "contentType": "JSON"}
            ),
            headers=JSON,
        )
    ).json()
    batch = (
        await bulk.post(f"{A}/job/{job['id']}/batch", content=b"SELECT Id FORM x", headers=JSON)
    ).json()
    done = await wait_batch(bulk, job["id"], batch["id"], JSON)
    assert done["state"] == "Failed"
    assert "MALFORMED_QUERY" in done["stateMessage"]


async def test_pk_chunking(bulk: httpx.AsyncClient, org: Org) -> None:
    org.store.bulk_load("Account", ({"Name": f"Chunk {i:02d}"} for i in range(25)))
    job = (
        await bulk.post(
            f"{A}/job",
            content=orjson.dumps({"operation": "query", "object": "Account", "contentType": "CSV"}),
            headers={**JSON, "Sforce-Enable-PKChunking": "chunkSize=10"},
        )
    ).json()
    original = (
        await bulk.post(
            f"{A}/job/{job['id']}/batch", content=b"SELECT Name FROM Account", headers=JSON
        )
    ).json()
    listing = (await bulk.get(f"{A}/job/{job['id']}/batch", headers=JSON)).json()["batchInfo"]
    assert len(listing) == 4
    chunk_ids = [b["id"] for b in listing if b["id"] != original["id"]]
    names: list[str] = []
    for chunk_id in chunk_ids:
        done = await wait_batch(bulk, job["id"], chunk_id, JSON)
        assert done["state"] == "Completed"
        result_ids = (
            await bulk.get(f"{A}/job/{job['id']}/batch/{chunk_id}/result", headers=JSON)
        ).json()
        data = await bulk.get(f"{A}/job/{job['id']}/batch/{chunk_id}/result/{result_ids[0]}")
        names += [row[0] for row in list(csv.reader(io.StringIO(data.text)))[1:]]
    assert sorted(names) == [f"Chunk {i:02d}" for i in range(25)]
    state = await bulk.get(f"{A}/job/{job['id']}/batch/{original['id']}", headers=JSON)
    assert state.json()["state"] == "NotProcessed"
    too_big = await bulk.post(
        f"{A}/job",
        content=orjson.dumps({"operation": "query", "object": "Account", "contentType": "CSV"}),
        headers={**JSON, "Sforce-Enable-PKChunking": "chunkSize=250001"},
    )
    assert too_big.status_code == 400
    assert too_big.json()["exceptionCode"] == "InvalidJob"


async def test_error_envelopes(bulk: httpx.AsyncClient, org: Org) -> None:
    unknown = await bulk.post(
        f"{A}/job",
        content=orjson.dumps({"operation": "insert", "object": "Nope", "contentType": "JSON"}),
        headers=JSON,
    )
    assert unknown.status_code == 400
    assert unknown.json() == {
        "exceptionCode": "InvalidJob",
        "exceptionMessage": "Unable to find object: Nope",
    }
    missing = await bulk.get(f"{A}/job/750xx0000000zzzAAA", headers=XML)
    root = ElementTree.fromstring(missing.content)
    assert root.tag == f"{NS}error"
    assert root.find(f"{NS}exceptionCode").text == "InvalidJob"  # type: ignore[union-attr]
    bad_session = await bulk.get(
        f"{A}/job/750xx0000000zzzAAA", headers={**JSON, "X-SFDC-Session": "wrong"}
    )
    assert bad_session.status_code == 400
    assert bad_session.json()["exceptionCode"] == "InvalidSessionId"


async def test_abort_and_listing_as_classic(bulk: httpx.AsyncClient, org: Org) -> None:
    job = (
        await bulk.post(
            f"{A}/job",
            content=orjson.dumps(
                {"operation": "insert", "object": "Account", "contentType": "JSON"}
            ),
            headers=JSON,
        )
    ).json()
    aborted = await bulk.post(
        f"{A}/job/{job['id']}", content=orjson.dumps({"state": "Aborted"}), headers=JSON
    )
    assert aborted.json()["state"] == "Aborted"
    listing = await bulk.get(
        "/services/data/v59.0/jobs/ingest", params={"jobType": "Classic"}, headers=JSON
    )
    assert [r["id"] for r in listing.json()["records"]] == [job["id"]]


async def test_xml_query_results_and_cdc_tagging(bulk: httpx.AsyncClient, org: Org) -> None:
    heard: list[ChangeRecord] = []
    org.store.add_listener(heard.append)
    job = _info(
        await bulk.post(
            f"{A}/job",
            content=orjson.dumps(
                {"operation": "insert", "object": "Account", "contentType": "XML"}
            ),
            headers={**JSON, "Sforce-Call-Options": "client=loader/2"},
        )
    )
    records = (
        f'<sObjects xmlns="{NS[1:-1]}"><sObject><Name>Tagged</Name></sObject></sObjects>'
    ).encode()
    batch = _info(await bulk.post(f"{A}/job/{job['id']}/batch", content=records, headers=XML))
    await wait_batch(bulk, str(job["id"]), str(batch["id"]), XML)
    assert [(c.api, c.client_id) for c in heard] == [("bulkapi", "loader/2")]

    query = _info(
        await bulk.post(
            f"{A}/job",
            content=orjson.dumps({"operation": "query", "object": "Account", "contentType": "XML"}),
            headers=JSON,
        )
    )
    soql = b"SELECT Name, Phone, Owner.Name FROM Account WHERE Name = 'Tagged'"
    qbatch = _info(await bulk.post(f"{A}/job/{query['id']}/batch", content=soql, headers=XML))
    await wait_batch(bulk, str(query["id"]), str(qbatch["id"]), XML)
    listing = await bulk.get(f"{A}/job/{query['id']}/batch/{qbatch['id']}/result", headers=XML)
    result_id = ElementTree.fromstring(listing.content)[0].text
    data = await bulk.get(
        f"{A}/job/{query['id']}/batch/{qbatch['id']}/result/{result_id}", headers=XML
    )
    root = ElementTree.fromstring(data.content)
    assert root.tag == f"{NS}queryResult"
    record = root[0]
    assert record.find(f"{NS}Name").text == "Tagged"  # type: ignore[union-attr]
    nil = record.find(f"{NS}Phone")
    assert nil is not None
    assert nil.get("{http://www.w3.org/2001/XMLSchema-instance}nil") == "true"
    owner = record.find(f"{NS}Owner")
    assert owner is not None
    assert owner.find(f"{NS}Name").text == "Integration User"  # type: ignore[union-attr]


async def test_zip_csv_batch(bulk: httpx.AsyncClient, org: Org) -> None:
    job = (
        await bulk.post(
            f"{A}/job",
            content=orjson.dumps(
                {"operation": "insert", "object": "Account", "contentType": "ZIP_CSV"}
            ),
            headers=JSON,
        )
    ).json()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("request.txt", "Name\nZipped One\nZipped Two\n")
    batch = (
        await bulk.post(
            f"{A}/job/{job['id']}/batch",
            content=buffer.getvalue(),
            headers={"Content-Type": "zip/csv", "Accept": "application/json"},
        )
    ).json()
    done = await wait_batch(bulk, job["id"], batch["id"], JSON)
    assert (done["state"], done["numberRecordsProcessed"]) == ("Completed", 2)
    assert org.store.count("Account") == 2
    broken = (
        await bulk.post(
            f"{A}/job/{job['id']}/batch",
            content=b"not a zip",
            headers={"Content-Type": "zip/csv", "Accept": "application/json"},
        )
    ).json()
    failed = await wait_batch(bulk, job["id"], broken["id"], JSON)
    assert failed["state"] == "Failed"
    assert "request.txt" in failed["stateMessage"]


async def test_serial_batches_run_in_order(bulk: httpx.AsyncClient, org: Org) -> None:
    service = service_of(org)
    held: list[Callable[[], None]] = []
    service.runner = held.append
    job = (
        await bulk.post(
            f"{A}/job",
            content=orjson.dumps(
                {"operation": "insert", "object": "Account", "contentType": "JSON",
                 "concurrencyMode": 1}
            ),
            headers=JSON,
        )
    ).json()  # fmt: skip
    assert job["concurrencyMode"] == "Serial"
    for n in range(3):
        await bulk.post(
            f"{A}/job/{job['id']}/batch",
            content=orjson.dumps([{"Name": f"Serial {n}"}]),
            headers=JSON,
        )
    heard: list[str] = []
    org.store.add_listener(lambda change: heard.append(str(change.values_after["Name"])))
    for work in reversed(held):  # the scheduler runs them in any order
        work()
    assert heard == ["Serial 0", "Serial 1", "Serial 2"]
