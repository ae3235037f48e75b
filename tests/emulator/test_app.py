"""App-level behaviour: API versions, unknown paths, wrong methods, Bulk 1.0 session errors,
and how composite calls are metered."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from _org_support import make_org

from sfsync.emulator.app import build_app
from sfsync.emulator.org import Org, api_versions, release_label, version_status

pytestmark = pytest.mark.anyio
TOKEN = "app-token"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def org(tmp_path: Path) -> Iterator[Org]:
    org = make_org(tmp_path, access_token=TOKEN)
    yield org
    org.close()


@pytest.fixture
async def client(org: Org) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build_app(org))
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://emu.test",
        headers={"Authorization": f"Bearer {TOKEN}"},
    ) as client:
        yield client


def test_release_labels_and_version_table() -> None:
    assert release_label(59) == "Winter '24"
    assert release_label(60) == "Spring '24"
    assert release_label(45) == "Spring '19"
    assert release_label(66) == "Spring '26"
    versions = api_versions()
    assert versions[0] == {"label": "Spring '19", "url": "/services/data/v45.0", "version": "45.0"}
    assert versions[-1]["version"] == "66.0"
    assert [version_status(v) for v in ("59.0", "20.0", "30.0", "31.0", "44.0", "67.0", "59")] == [
        200,
        410,
        410,
        404,
        404,
        404,
        404,
    ]


@pytest.mark.parametrize(
    ("version", "status", "code"),
    [
        ("v20.0", 410, "GONE"),
        ("v30.0", 410, "GONE"),
        ("v44.0", 404, "NOT_FOUND"),
        ("v99.0", 404, "NOT_FOUND"),
    ],
)
async def test_unserved_versions(
    client: httpx.AsyncClient, org: Org, version: str, status: int, code: str
) -> None:
    response = await client.get(f"/services/data/{version}/sobjects/")
    assert response.status_code == status
    assert response.json()[0]["errorCode"] == code
    assert org.limits.used() == 0


async def test_version_list_needs_no_session(client: httpx.AsyncClient) -> None:
    response = await client.get("/services/data/", headers={"Authorization": ""})
    assert response.status_code == 200
    assert {
        "label": "Winter '24",
        "url": "/services/data/v59.0",
        "version": "59.0",
    } in response.json()


async def test_unknown_paths_and_wrong_methods_in_salesforce_wording(
    client: httpx.AsyncClient,
) -> None:
    missing = await client.get("/services/nothing/here")
    assert missing.status_code == 404
    assert missing.json() == [
        {"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}
    ]
    wrong = await client.get("/services/oauth2/token")
    assert wrong.status_code == 405
    assert wrong.json() == [
        {
            "message": "HTTP Method 'GET' not allowed. Allowed are POST",
            "errorCode": "METHOD_NOT_ALLOWED",
        }
    ]
    versioned = await client.patch("/services/data/v59.0/sobjects/")
    assert versioned.status_code == 405
    assert versioned.json()[0]["errorCode"] == "METHOD_NOT_ALLOWED"


async def test_bulk_v1_session_errors_use_the_bulk_envelope(client: httpx.AsyncClient) -> None:
    as_json = await client.post(
        "/services/async/59.0/job",
        headers={"X-SFDC-Session": "bad", "Authorization": "", "Content-Type": "application/json"},
        content=b"{}",
    )
    assert as_json.status_code == 400
    assert as_json.json() == {
        "exceptionCode": "InvalidSessionId",
        "exceptionMessage": "Invalid session id",
    }
    as_xml = await client.post(
        "/services/async/59.0/job",
        headers={"X-SFDC-Session": "bad", "Authorization": "", "Content-Type": "application/xml"},
        content=b"<jobInfo/>",
    )
    assert as_xml.status_code == 400
    assert "<exceptionCode>InvalidSessionId</exceptionCode>" in as_xml.text


async def test_a_composite_request_counts_once(tmp_path: Path) -> None:
    org = Org.create(state_dir=tmp_path / "state", access_token=TOKEN)
    try:
        transport = httpx.ASGITransport(app=build_app(org))
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://emu.test",
            headers={"Authorization": f"Bearer {TOKEN}"},
        ) as client:
            body = {
                "compositeRequest": [
                    {
                        "method": "POST",
                        "url": "/services/data/v59.0/sobjects/Account",
                        "referenceId": "acct",
                        "body": {"Name": "Acme"},
                    },
                    {
                        "method": "GET",
                        "url": "/services/data/v59.0/sobjects/Account/@{acct.id}",
                        "referenceId": "read",
                    },
                ]
            }
            response = await client.post("/services/data/v59.0/composite", json=body)
            assert response.status_code == 200, response.text
            assert response.headers["Sforce-Limit-Info"] == "api-usage=1/15000"
            assert org.limits.used() == 1
    finally:
        org.close()
