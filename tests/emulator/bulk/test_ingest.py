"""Bulk API 2.0 ingest jobs through the real app, store and SOQL engine (in process)."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import httpx
import pytest
from bulk_helpers import V, run_ingest, wait_job

from sfsync.emulator.bulk.service import service_of
from sfsync.emulator.org import Org
from sfsync.emulator.store_changes import ChangeRecord

pytestmark = pytest.mark.anyio


def rows(text: str, delimiter: str = ",") -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))


async def results(api: httpx.AsyncClient, job_id: str, which: str) -> str:
    response = await api.get(f"{V}/jobs/ingest/{job_id}/{which}/")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    return response.text


async def test_insert_reports_successes_and_row_failures(api: httpx.AsyncClient, org: Org) -> None:
    data = "Name,NumberOfEmployees\nAcme,10\n,5\nGlobex,abc\n"
    info = await run_ingest(api, {"object": "Account", "operation": "insert"}, data)
    assert info["state"] == "JobComplete"
    assert info["numberRecordsProcessed"] == 3
    assert info["numberRecordsFailed"] == 2
    assert info["jobType"] == "V2Ingest"
    assert info["retries"] == 0
    assert info["apiVersion"] == 59.0
    for key in ("totalProcessingTime", "apiActiveProcessingTime", "apexProcessingTime"):
        assert isinstance(info[key], int)

    ok = rows(await results(api, info["id"], "successfulResults"))
    assert ok[0] == ["sf__Id", "sf__Created", "Name", "NumberOfEmployees"]
    assert len(ok) == 2
    assert ok[1][1:] == ["true", "Acme", "10"]
    assert org.store.get(ok[1][0])["NumberOfEmployees"] == 10

    failed = rows(await results(api, info["id"], "failedResults"))
    assert failed[0] == ["sf__Id", "sf__Error", "Name", "NumberOfEmployees"]
    errors = {r[2]: r[1] for r in failed[1:]}
    assert errors[""] == "REQUIRED_FIELD_MISSING:Required fields are missing: [Name]:Name --"
    assert errors["Globex"].startswith("JSON_PARSER_ERROR:")
    assert errors["Globex"].endswith(":--")
    assert all(r[0] == "" for r in failed[1:])
    assert rows(await results(api, info["id"], "unprocessedrecords")) == [
        ["Name", "NumberOfEmployees"]
    ]


async def test_create_and_close_answer_without_counters(api: httpx.AsyncClient) -> None:
    created = await api.post(
        f"{V}/jobs/ingest",
        json={"object": "Account", "operation": "upsert", "externalIdFieldName": "ext_id__c"},
    )
    assert created.status_code == 200
    body = created.json()
    assert body["state"] == "Open"
    assert body["externalIdFieldName"] == "Ext_Id__c"
    assert body["contentUrl"] == f"services/data/v59.0/jobs/ingest/{body['id']}/batches"
    assert (body["contentType"], body["lineEnding"], body["columnDelimiter"]) == (
        "CSV",
        "LF",
        "COMMA",
    )
    assert "numberRecordsProcessed" not in body
    closed = await api.patch(f"{V}/jobs/ingest/{body['id']}", json={"state": "UploadComplete"})
    assert closed.json()["state"] == "UploadComplete"
    assert "numberRecordsFailed" not in closed.json()
    # Closed without data: the job fails (and says why).
    final = await wait_job(api, f"{V}/jobs/ingest/{body['id']}")
    assert final["state"] == "Failed"
    assert "No data" in final["errorMessage"]


async def test_illegal_transitions(api: httpx.AsyncClient) -> None:
    created = await api.post(f"{V}/jobs/ingest", json={"object": "Account", "operation": "insert"})
    job = f"{V}/jobs/ingest/{created.json()['id']}"
    not_yet = await api.get(f"{job}/successfulResults/")
    assert not_yet.status_code == 409
    assert not_yet.json()[0]["errorCode"] == "INVALIDJOBSTATE"
    refused = await api.delete(job)
    assert refused.status_code == 409
    aborted = await api.patch(job, json={"state": "Aborted"})
    assert aborted.json()["state"] == "Aborted"
    assert (await api.patch(job, json={"state": "Aborted"})).status_code == 409
    assert (await api.patch(job, json={"state": "UploadComplete"})).status_code == 409
    upload = await api.put(f"{job}/batches", content=b"Name\nx\n")
    assert upload.status_code == 409
    bogus = await api.patch(job, json={"state": "Closed"})
    assert bogus.status_code == 400
    assert (await api.get(job)).json()["state"] == "Aborted"
    deleted = await api.delete(job)
    assert deleted.status_code == 204
    gone = await api.get(job)
    assert gone.status_code == 404
    assert gone.json()[0]["errorCode"] == "NOT_FOUND"


async def test_bad_job_bodies(api: httpx.AsyncClient) -> None:
    cases = [
        ({"object": "Nope", "operation": "insert"}, "INVALIDENTITY"),
        ({"object": "Account", "operation": "merge"}, "INVALIDJOB"),
        ({"object": "Account", "operation": "upsert"}, "INVALIDJOB"),
        ({"object": "Account", "operation": "upsert", "externalIdFieldName": "Name"}, "INVALIDJOB"),
        ({"object": "Account", "operation": "insert", "columnDelimiter": "COLON"}, "INVALIDJOB"),
        ({"object": "Account", "operation": "insert", "lineEnding": "CR"}, "INVALIDJOB"),
    ]
    for body, code in cases:
        response = await api.post(f"{V}/jobs/ingest", json=body)
        assert response.status_code == 400, body
        assert response.json()[0]["errorCode"] == code, body
    upsert = await api.post(
        f"{V}/jobs/ingest",
        json={"object": "Account", "operation": "upsert"},
    )
    assert "External ID was blank for Account" in upsert.json()[0]["message"]


async def test_upsert_by_external_id_and_parent_reference(api: httpx.AsyncClient, org: Org) -> None:
    body = {"object": "Account", "operation": "upsert", "externalIdFieldName": "Ext_Id__c"}
    first = await run_ingest(api, body, "Ext_Id__c,Name\nE-1,One\nE-2,Two\n")
    assert first["numberRecordsFailed"] == 0
    second = await run_ingest(api, body, "Ext_Id__c,Name\nE-1,One again\nE-3,Three\n,Keyless\n")
    ok = rows(await results(api, second["id"], "successfulResults"))
    created = {r[2]: r[1] for r in ok[1:]}
    assert created == {"E-1": "false", "E-3": "true"}
    failed = rows(await results(api, second["id"], "failedResults"))
    assert failed[1][1] == "MISSING_ARGUMENT:Ext_Id__c not specified:--"
    ids = org.store.find_by_field("Account", "Ext_Id__c", "E-1")
    assert org.store.get(ids[0])["Name"] == "One again"

    contacts = await run_ingest(
        api,
        {"object": "Contact", "operation": "insert"},
        "LastName,Account.Ext_Id__c\nSmith,E-1\nJones,E-404\n",
    )
    assert contacts["numberRecordsFailed"] == 1
    ok = rows(await results(api, contacts["id"], "successfulResults"))
    assert org.store.get(ok[1][0])["AccountId"] == ids[0]


async def test_update_blank_leaves_value_and_na_nulls_it(api: httpx.AsyncClient, org: Org) -> None:
    rid = org.store.insert("Account", {"Name": "Keep", "Phone": "123", "Industry": "Energy"})
    data = f"Id,Phone,Industry\n{rid},,#N/A\n001xx000000zzzzAAA,1,x\nnot-an-id,1,x\n"
    info = await run_ingest(api, {"object": "Account", "operation": "update"}, data)
    record = org.store.get(rid)
    assert record["Phone"] == "123"
    assert record["Industry"] is None
    ok = rows(await results(api, info["id"], "successfulResults"))
    assert ok[1][:2] == [rid, "false"]
    failed = rows(await results(api, info["id"], "failedResults"))
    by_id = {r[3] if r[0] == "" else r[0]: r[1] for r in failed[1:]}
    assert by_id["001xx000000zzzzAAA"] == (
        "INVALID_CROSS_REFERENCE_KEY:invalid cross reference id:--"
    )
    assert by_id["1"].startswith("MALFORMED_ID:")


async def test_delete_and_hard_delete(api: httpx.AsyncClient, org: Org) -> None:
    a = org.store.insert("Account", {"Name": "Soft"})
    b = org.store.insert("Account", {"Name": "Hard"})
    c = org.store.insert("Contact", {"LastName": "Wrong type"})
    soft = await run_ingest(api, {"object": "Account", "operation": "delete"}, f"Id\n{a}\n{c}\n")
    assert soft["numberRecordsFailed"] == 1
    assert org.store.get(a)["IsDeleted"] is True
    assert org.store.get(c)["IsDeleted"] is False
    hard = await run_ingest(api, {"object": "Account", "operation": "hardDelete"}, f"Id\n{b}\n")
    assert hard["numberRecordsFailed"] == 0
    assert org.store.get(b) is None
    again = await run_ingest(api, {"object": "Account", "operation": "delete"}, f"Id\n{a}\n")
    failed = rows(await results(api, again["id"], "failedResults"))
    assert failed[1][:2] == [a, "ENTITY_IS_DELETED:entity is deleted:--"]


@pytest.mark.parametrize(
    ("delimiter", "char", "line_ending", "newline"),
    [
        ("TAB", "\t", "CRLF", "\r\n"),
        ("PIPE", "|", "LF", "\n"),
        ("SEMICOLON", ";", "CRLF", "\r\n"),
        ("CARET", "^", "LF", "\n"),
        ("BACKQUOTE", "`", "LF", "\n"),
    ],
)
async def test_delimiters_and_line_endings(
    api: httpx.AsyncClient, org: Org, delimiter: str, char: str, line_ending: str, newline: str
) -> None:
    lines = [["Name", "Description"], ["Plain", f'has {char} and "quotes"'], ["Multi", "a\nb"]]
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=char, lineterminator=newline).writerows(lines)
    body = {
        "object": "Account",
        "operation": "insert",
        "columnDelimiter": delimiter,
        "lineEnding": line_ending,
    }
    info = await run_ingest(api, body, buffer.getvalue())
    assert info["numberRecordsFailed"] == 0, info
    text = await results(api, info["id"], "successfulResults")
    assert text.endswith(newline)
    assert text.count(newline) >= 3
    parsed = rows(text, char)
    assert parsed[0] == ["sf__Id", "sf__Created", "Name", "Description"]
    stored = {org.store.get(r[0])["Name"]: org.store.get(r[0])["Description"] for r in parsed[1:]}
    assert stored == {"Plain": f'has {char} and "quotes"', "Multi": "a\nb"}


async def test_line_ending_mismatch_and_unknown_column_fail_the_job(api: httpx.AsyncClient) -> None:
    mismatch = await run_ingest(api, {"object": "Account", "operation": "insert"}, "Name\r\nA\r\n")
    assert mismatch["state"] == "Failed"
    assert mismatch["errorMessage"] == (
        "ClientInputError : LineEnding is invalid on user data. Current LineEnding setting is LF"
    )
    unknown = await run_ingest(
        api, {"object": "Account", "operation": "insert"}, "Name,Bogus__c\nA,1\n"
    )
    assert unknown["state"] == "Failed"
    assert unknown["errorMessage"] == "InvalidBatch : Field name not found : Bogus__c"


async def test_upload_size_limit(api: httpx.AsyncClient, org: Org) -> None:
    service_of(org).max_upload_bytes = 20
    created = await api.post(f"{V}/jobs/ingest", json={"object": "Account", "operation": "insert"})
    job = f"{V}/jobs/ingest/{created.json()['id']}"
    assert (await api.put(f"{job}/batches", content=b"Name\nshort\n")).status_code == 201
    too_big = await api.put(f"{job}/batches", content=b"Name\n" + b"x" * 30 + b"\n")
    assert too_big.status_code == 413
    assert too_big.json()[0]["errorCode"] == "REQUEST_ENTITY_TOO_LARGE"


async def test_daily_allocations(api: httpx.AsyncClient, org: Org) -> None:
    allocations = service_of(org).allocations
    allocations.ingest_records.maximum = 2
    over = await run_ingest(api, {"object": "Account", "operation": "insert"}, "Name\nA\nB\nC\n")
    assert over["state"] == "Failed"
    assert over["errorMessage"].startswith("LIMIT_EXCEEDED")
    unprocessed = rows(await results(api, over["id"], "unprocessedrecords"))
    assert unprocessed == [["Name"], ["A"], ["B"], ["C"]]
    assert (await run_ingest(api, {"object": "Account", "operation": "insert"}, "Name\nA\n"))[
        "state"
    ] == "JobComplete"
    # A day later the allocation is free again (rolling 24 hours on the org clock).
    org.clock.advance(timedelta(hours=24, seconds=1).total_seconds())
    again = await run_ingest(api, {"object": "Account", "operation": "insert"}, "Name\nA\nB\n")
    assert again["state"] == "JobComplete"

    allocations.batches.maximum = allocations.batches.used(org.clock.time())
    refused = await api.post(f"{V}/jobs/ingest", json={"object": "Account", "operation": "insert"})
    assert refused.status_code == 403
    assert refused.json()[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"


async def test_writes_are_tagged_for_change_data_capture(api: httpx.AsyncClient, org: Org) -> None:
    heard: list[ChangeRecord] = []
    org.store.add_listener(heard.append)
    info = await run_ingest(
        api,
        {"object": "Account", "operation": "insert"},
        "Name\n" + "".join(f"Row {i}\n" for i in range(450)),
        headers={"Sforce-Call-Options": "client=sfsync-test/1.0"},
    )
    assert info["numberRecordsProcessed"] == 450
    assert len(heard) == 450
    assert {(c.api, c.client_id, c.api_version, c.change_type) for c in heard} == {
        ("bulkapi", "sfsync-test/1.0", "59.0", "CREATE")
    }
    # Committed in chunks of 200 records per transaction, as the platform does.
    assert len({c.transaction_key for c in heard}) == 3


async def test_abort_while_in_progress_leaves_unprocessed_rows(
    api: httpx.AsyncClient, org: Org
) -> None:
    service = service_of(org)
    queued: list[object] = []
    service.runner = queued.append  # hold the work: the job stays UploadComplete
    created = await api.post(f"{V}/jobs/ingest", json={"object": "Account", "operation": "insert"})
    job = f"{V}/jobs/ingest/{created.json()['id']}"
    await api.put(f"{job}/batches", content=b"Name\nA\nB\n")
    await api.patch(job, json={"state": "UploadComplete"})
    assert (await api.get(job)).json()["state"] == "UploadComplete"
    assert (await api.patch(job, json={"state": "Aborted"})).json()["state"] == "Aborted"
    work = queued[0]
    assert callable(work)
    work()  # the worker finds the job aborted and does nothing
    assert (await api.get(job)).json()["numberRecordsProcessed"] == 0
    assert org.store.count("Account") == 0


async def test_job_list_filters_and_paging(api: httpx.AsyncClient, org: Org) -> None:
    service_of(org).list_page_size = 2
    for _ in range(3):
        await api.post(f"{V}/jobs/ingest", json={"object": "Account", "operation": "insert"})
    await api.post(f"{V}/jobs/query", json={"query": "SELECT Id FROM Account"})
    first = (await api.get(f"{V}/jobs/ingest")).json()
    assert first["done"] is False
    assert len(first["records"]) == 2
    assert {r["jobType"] for r in first["records"]} == {"V2Ingest"}
    second = (await api.get(first["nextRecordsUrl"])).json()
    assert second["done"] is True
    assert second["nextRecordsUrl"] is None
    assert len(second["records"]) == 1
    classic = (await api.get(f"{V}/jobs/ingest", params={"jobType": "Classic"})).json()
    assert classic["records"] == []
    chunked = await api.get(f"{V}/jobs/ingest", params={"isPkChunkingEnabled": "true"})
    assert chunked.json()["records"] == []
    serial = await api.get(f"{V}/jobs/ingest", params={"concurrencyMode": "Serial"})
    assert serial.json()["records"] == []
    queries = (await api.get(f"{V}/jobs/query")).json()
    assert [r["jobType"] for r in queries["records"]] == ["V2Query"]


async def test_retention_and_reset(api: httpx.AsyncClient, org: Org) -> None:
    done = await run_ingest(api, {"object": "Account", "operation": "insert"}, "Name\nA\n")
    open_job = (
        await api.post(f"{V}/jobs/ingest", json={"object": "Account", "operation": "insert"})
    ).json()["id"]
    org.clock.advance(timedelta(days=7, seconds=1).total_seconds())
    assert (await api.get(f"{V}/jobs/ingest/{done['id']}")).status_code == 404
    assert (await api.get(f"{V}/jobs/ingest/{open_job}")).status_code == 200
    org.reset()
    assert (await api.get(f"{V}/jobs/ingest/{open_job}")).status_code == 404


async def test_no_upload_to_a_job_older_than_a_day(api: httpx.AsyncClient, org: Org) -> None:
    created = await api.post(f"{V}/jobs/ingest", json={"object": "Account", "operation": "insert"})
    job = f"{V}/jobs/ingest/{created.json()['id']}"
    org.clock.advance(timedelta(hours=24, seconds=1).total_seconds())
    late = await api.put(f"{job}/batches", content=b"Name\nA\n")
    assert late.status_code == 409
    assert "older than 24 hours" in late.json()[0]["message"]


async def test_multipart_create_carries_the_data(api: httpx.AsyncClient, org: Org) -> None:
    boundary = "BOUNDARY"
    body = (
        f"--{boundary}\r\n"
        'Content-Type: application/json\r\nContent-Disposition: form-data; name="job"\r\n\r\n'
        '{"object":"Account","contentType":"CSV","operation":"insert"}\r\n'
        f"--{boundary}\r\n"
        'Content-Type: text/csv\r\nContent-Disposition: form-data; name="content"; '
        'filename="content"\r\n\r\n'
        "Name\nMulti One\nMulti Two\n\r\n"
        f"--{boundary}--\r\n"
    )
    created = await api.post(
        f"{V}/jobs/ingest",
        content=body.encode(),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert created.status_code == 200, created.text
    assert created.json()["state"] == "UploadComplete"
    info = await wait_job(api, f"{V}/jobs/ingest/{created.json()['id']}")
    assert (info["state"], info["numberRecordsProcessed"]) == ("JobComplete", 2)
    assert org.store.count("Account") == 2
    missing = await api.post(
        f"{V}/jobs/ingest",
        content=f"--{boundary}--\r\n".encode(),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert missing.status_code == 400


async def test_abort_between_chunks_keeps_committed_rows(api: httpx.AsyncClient, org: Org) -> None:
    service = service_of(org)
    service.runner = lambda work: work()  # process inside the closing request
    created = await api.post(f"{V}/jobs/ingest", json={"object": "Account", "operation": "insert"})
    job_id = created.json()["id"]
    job = service.registry.get(job_id)
    assert job is not None

    def abort_after_first_chunk(change: ChangeRecord) -> None:
        if job.state == "InProgress":
            # As a PATCH {"state": "Aborted"} from another client would, mid-job.
            with job.lock:
                job.state = "Aborted"

    org.store.add_listener(abort_after_first_chunk)
    data = "Name\n" + "".join(f"Row {i}\n" for i in range(450))
    await api.put(f"{V}/jobs/ingest/{job_id}/batches", content=data.encode())
    await api.patch(f"{V}/jobs/ingest/{job_id}", json={"state": "UploadComplete"})
    info = (await api.get(f"{V}/jobs/ingest/{job_id}")).json()
    assert info["state"] == "Aborted"
    assert info["numberRecordsProcessed"] == 200
    assert org.store.count("Account") == 200
    unprocessed = rows(await results(api, job_id, "unprocessedrecords"))
    assert len(unprocessed) == 1 + 250
    assert unprocessed[1] == ["Row 200"]


async def test_results_are_the_same_whether_the_parsed_rows_were_kept_or_parsed_again(
    api: httpx.AsyncClient,
) -> None:
    from sfsync.emulator.bulk.ingest import PARSED_KEPT

    jobs = []
    for n in range(PARSED_KEPT + 2):  # the first jobs' kept rows are let go
        data = f'Name,Description\nAcme {n},"said ""hi"", twice"\nGlobex {n},\n'
        jobs.append(await run_ingest(api, {"object": "Account", "operation": "insert"}, data))
    for n, info in enumerate(jobs):
        ok = rows(await results(api, info["id"], "successfulResults"))
        assert [r[1:] for r in ok[1:]] == [
            ["true", f"Acme {n}", 'said "hi", twice'],
            ["true", f"Globex {n}", ""],
        ]
