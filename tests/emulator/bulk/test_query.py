"""Bulk API 2.0 query jobs through the real app, store and SOQL engine (in process)."""

from __future__ import annotations

import csv
import gzip
import io
from typing import Any

import httpx
import pytest
from bulk_helpers import V, wait_job

from sfsync.emulator.bulk.service import service_of
from sfsync.emulator.org import Org

pytestmark = pytest.mark.anyio


async def query_job(api: httpx.AsyncClient, soql: str, **options: Any) -> dict[str, Any]:
    created = await api.post(
        f"{V}/jobs/query", json={"operation": "query", "query": soql, **options}
    )
    assert created.status_code == 200, created.text
    assert created.json()["state"] == "UploadComplete"
    return await wait_job(api, f"{V}/jobs/query/{created.json()['id']}")


def parse(text: str, delimiter: str = ",") -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))


async def test_csv_rules(api: httpx.AsyncClient, org: Org) -> None:
    parent = org.store.insert("Account", {"Name": 'Acme, "The" Company'})
    org.store.insert(
        "Contact",
        {"LastName": "Line\nBreak", "AccountId": parent, "HasOptedOutOfEmail": True},
    )
    org.store.insert("Contact", {"LastName": "Orphan"})
    info = await query_job(
        api,
        "SELECT Id, LastName, Email, HasOptedOutOfEmail, CreatedDate, Account.Name "
        "FROM Contact ORDER BY LastName",
    )
    assert info["numberRecordsProcessed"] == 2
    assert info["jobType"] == "V2Query"
    assert info["isPkChunkingSupported"] is True
    response = await api.get(f"{V}/jobs/query/{info['id']}/results")
    assert response.headers["content-type"].startswith("text/csv")
    text = response.text
    lines = text.split("\n")
    assert lines[0] == '"Id","LastName","Email","HasOptedOutOfEmail","CreatedDate","Account.Name"'
    # Every value quoted, quotes doubled, nulls as "", booleans true/false, datetimes in Z.
    assert '"Line\nBreak","","true"' in text
    assert '"Acme, ""The"" Company"' in text
    assert '"Orphan","","false"' in text
    table = parse(text)
    created = table[1][4]
    assert created.endswith("Z")
    assert len(created) == len("2024-01-15T09:30:00.000Z")
    assert table[2][5] == ""


async def test_locators_and_max_records(api: httpx.AsyncClient, org: Org) -> None:
    org.store.bulk_load("Account", ({"Name": f"Acct {i:03d}"} for i in range(25)))
    info = await query_job(api, "SELECT Name FROM Account")
    url = f"{V}/jobs/query/{info['id']}/results"
    names: list[str] = []
    locator: str | None = None
    pages: list[tuple[str, int]] = []
    while True:
        params: dict[str, str | int] = {"maxRecords": 10}
        if locator:
            params["locator"] = locator
        response = await api.get(url, params=params)
        assert response.status_code == 200
        count = int(response.headers["Sforce-NumberOfRecords"])
        table = parse(response.text)
        assert table[0] == ["Name"]
        assert len(table) - 1 == count
        names += [r[0] for r in table[1:]]
        locator = response.headers["Sforce-Locator"]
        pages.append((locator, count))
        if locator == "null":
            break
    assert [c for _, c in pages] == [10, 10, 5]
    assert sorted(names) == [f"Acct {i:03d}" for i in range(25)]
    # Locators stay valid: the second page again, out of order.
    again = await api.get(url, params={"maxRecords": 10, "locator": pages[0][0]})
    assert [r[0] for r in parse(again.text)[1:]] == names[10:20]
    bad = await api.get(url, params={"locator": "!!!"})
    assert bad.status_code == 400
    assert bad.json()[0]["errorCode"] == "INVALID_QUERY_LOCATOR"
    bad_max = await api.get(url, params={"maxRecords": 0})
    assert bad_max.status_code == 400


async def test_header_casing_on_the_wire(api: httpx.AsyncClient, org: Org) -> None:
    org.store.insert("Account", {"Name": "One"})
    info = await query_job(api, "SELECT Name FROM Account")
    response = await api.get(f"{V}/jobs/query/{info['id']}/results")
    raw_names = [name for name, _ in response.headers.raw]
    assert b"Sforce-Locator" in raw_names
    assert b"Sforce-NumberOfRecords" in raw_names


async def test_gzip_when_asked(api: httpx.AsyncClient, org: Org) -> None:
    org.store.bulk_load("Account", ({"Name": f"Zipped {i}"} for i in range(200)))
    info = await query_job(api, "SELECT Id, Name FROM Account")
    url = f"{V}/jobs/query/{info['id']}/results"
    async with api.stream("GET", url, headers={"Accept-Encoding": "gzip"}) as response:
        raw = b"".join([chunk async for chunk in response.aiter_raw()])
        assert response.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(raw).decode().count("\n") == 201
    plain = await api.get(url, headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert plain.text.count("\n") == 201


async def test_query_all_includes_deleted(api: httpx.AsyncClient, org: Org) -> None:
    keep = org.store.insert("Account", {"Name": "Kept"})
    gone = org.store.insert("Account", {"Name": "Gone"})
    org.store.delete(gone)
    live = await query_job(api, "SELECT Id, IsDeleted FROM Account")
    everything = await query_job(api, "SELECT Id, IsDeleted FROM Account", operation="queryAll")
    assert live["numberRecordsProcessed"] == 1
    assert everything["numberRecordsProcessed"] == 2
    assert everything["operation"] == "queryAll"
    text = (await api.get(f"{V}/jobs/query/{everything['id']}/results")).text
    table = {r[0]: r[1] for r in parse(text)[1:]}
    assert table == {keep: "false", gone: "true"}


@pytest.mark.parametrize(
    ("soql", "code"),
    [
        ("SELECT COUNT() FROM Account", "API_ERROR"),
        ("SELECT Industry, COUNT(Id) FROM Account GROUP BY Industry", "API_ERROR"),
        ("SELECT Id FROM Account LIMIT 5 OFFSET 2", "API_ERROR"),
        ("SELECT Id, (SELECT Id FROM Contacts) FROM Account", "API_ERROR"),
        ("SELECT BillingAddress FROM Account", "API_ERROR"),
        ("SELECT Id FORM Account", "MALFORMED_QUERY"),
        ("SELECT Nope__c FROM Account", "INVALID_FIELD"),
    ],
)
async def test_unsupported_queries_are_refused_at_create(
    api: httpx.AsyncClient, soql: str, code: str
) -> None:
    response = await api.post(f"{V}/jobs/query", json={"operation": "query", "query": soql})
    assert response.status_code == 400, response.text
    assert response.json()[0]["errorCode"] == code


async def test_compound_message(api: httpx.AsyncClient) -> None:
    response = await api.post(
        f"{V}/jobs/query",
        json={"operation": "query", "query": "SELECT BillingAddress FROM Account"},
    )
    assert response.json()[0]["message"] == "Selecting compound data not supported in Bulk Query"


async def test_version_mismatch_abort_delete(api: httpx.AsyncClient, org: Org) -> None:
    org.store.insert("Account", {"Name": "One"})
    info = await query_job(api, "SELECT Name FROM Account")
    other = await api.get(f"/services/data/v60.0/jobs/query/{info['id']}/results")
    assert other.status_code == 409
    assert (
        await api.patch(f"{V}/jobs/query/{info['id']}", json={"state": "Aborted"})
    ).status_code == 409
    assert (await api.delete(f"{V}/jobs/query/{info['id']}")).status_code == 204
    assert (await api.get(f"{V}/jobs/query/{info['id']}")).status_code == 404

    service = service_of(org)
    held: list[object] = []
    service.runner = held.append
    created = await api.post(f"{V}/jobs/query", json={"query": "SELECT Id FROM Account"})
    job = f"{V}/jobs/query/{created.json()['id']}"
    early = await api.get(f"{job}/results")
    assert early.status_code == 409
    assert early.json()[0]["errorCode"] == "INVALIDJOBSTATE"
    aborted = await api.patch(job, json={"state": "Aborted"})
    assert aborted.json()["state"] == "Aborted"
    assert (await api.get(job)).json()["state"] == "Aborted"


async def test_delimiter_and_line_ending_of_results(api: httpx.AsyncClient, org: Org) -> None:
    org.store.insert("Account", {"Name": "Semi;colon"})
    info = await query_job(
        api, "SELECT Name, Phone FROM Account", columnDelimiter="SEMICOLON", lineEnding="CRLF"
    )
    text = (await api.get(f"{V}/jobs/query/{info['id']}/results")).text
    assert text == '"Name";"Phone"\r\n"Semi;colon";""\r\n'


async def test_result_pages(api: httpx.AsyncClient, org: Org) -> None:
    org.store.bulk_load("Account", ({"Name": f"P {i}"} for i in range(12)))
    info = await query_job(api, "SELECT Name FROM Account")
    body = (await api.get(f"{V}/jobs/query/{info['id']}/resultPages")).json()
    assert body["done"] is True
    seen = 0
    for page in body["resultPages"]:
        response = await api.get(page["resultUrl"])
        seen += int(response.headers["Sforce-NumberOfRecords"])
    assert seen == 12
    assert len(body["resultPages"]) <= 5


async def test_daily_query_job_limit(api: httpx.AsyncClient, org: Org) -> None:
    service_of(org).allocations.query_jobs.maximum = 1
    await query_job(api, "SELECT Id FROM Account")
    refused = await api.post(f"{V}/jobs/query", json={"query": "SELECT Id FROM Account"})
    assert refused.status_code == 403
    assert refused.json()[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"


async def test_interleaved_page_sequences(api: httpx.AsyncClient, org: Org) -> None:
    org.store.bulk_load("Account", ({"Name": f"I {i:02d}"} for i in range(40)))
    info = await query_job(api, "SELECT Name FROM Account")
    url = f"{V}/jobs/query/{info['id']}/results"

    async def page(locator: str | None) -> tuple[list[str], str]:
        params: dict[str, str | int] = {"maxRecords": 10}
        if locator:
            params["locator"] = locator
        response = await api.get(url, params=params)
        return [r[0] for r in parse(response.text)[1:]], response.headers["Sforce-Locator"]

    first, after_first = await page(None)
    third, after_third = await page("MjA")  # offset 20, as a resultPages URL would start
    second, _ = await page(after_first)
    fourth, end = await page(after_third)
    assert end == "null"
    assert sorted(first + second + third + fourth) == [f"I {i:02d}" for i in range(40)]
