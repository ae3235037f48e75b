"""Query and queryAll with paging through nextRecordsUrl (section 2.10)."""

from __future__ import annotations

import httpx
import pytest
from rest_fakes import FakeCompiler, FakeOrg, build_test_app

from sfsync.emulator.rest.cursors import CursorRegistry, batch_size_from, id18

pytestmark = pytest.mark.anyio

V = "/services/data/v59.0"


def _seed(org: FakeOrg, n: int) -> list[str]:
    return [org.store.insert("Account", {"Name": f"A{i:05d}"}) for i in range(n)]


async def _page_all(
    client: httpx.AsyncClient,
    soql: str,
    *,
    resource: str = "query",
    headers: dict[str, str] | None = None,
) -> list[dict[str, object]]:
    pages = []
    response = await client.get(f"{V}/{resource}/", params={"q": soql}, headers=headers)
    while True:
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append(body)
        if body["done"]:
            assert "nextRecordsUrl" not in body
            return pages
        response = await client.get(body["nextRecordsUrl"], headers=headers)


async def test_small_result_is_one_page(client: httpx.AsyncClient, org: FakeOrg) -> None:
    _seed(org, 3)
    response = await client.get(f"{V}/query", params={"q": "SELECT Id, Name FROM Account"})
    body = response.json()
    assert response.headers["content-type"] == "application/json;charset=UTF-8"
    assert list(body) == ["totalSize", "done", "records"]
    assert body["totalSize"] == 3
    assert body["done"] is True
    assert body["records"][0]["attributes"]["type"] == "Account"
    assert body["records"][0]["Name"] == "A00000"


async def test_paging_default_2000(client: httpx.AsyncClient, org: FakeOrg) -> None:
    ids = _seed(org, 4500)
    pages = await _page_all(client, "SELECT Id FROM Account")
    assert [len(p["records"]) for p in pages] == [2000, 2000, 500]  # type: ignore[arg-type]
    assert all(p["totalSize"] == 4500 for p in pages)
    first_url = pages[0]["nextRecordsUrl"]
    assert isinstance(first_url, str)
    assert first_url.startswith(f"{V}/query/0r8")
    locator, _, offset = first_url.rsplit("/", 1)[1].rpartition("-")
    assert len(locator) == 18
    assert offset == "2000"
    seen = [r["Id"] for p in pages for r in p["records"]]  # type: ignore[attr-defined]
    assert seen == ids


async def test_batch_size_header_clamped(client: httpx.AsyncClient, org: FakeOrg) -> None:
    _seed(org, 450)
    pages = await _page_all(
        client, "SELECT Id FROM Account", headers={"Sforce-Query-Options": "batchSize=200"}
    )
    assert [len(p["records"]) for p in pages] == [200, 200, 50]  # type: ignore[arg-type]
    assert batch_size_from("batchSize=5") == 200
    assert batch_size_from("batchSize=99999") == 2000
    assert batch_size_from("foo=1, batchSize=1000") == 1000
    assert batch_size_from("batchSize=x") == 2000
    assert batch_size_from(None) == 2000


async def test_cursor_is_lazy(
    client: httpx.AsyncClient, org: FakeOrg, compiler: FakeCompiler
) -> None:
    _seed(org, 5000)
    response = await client.get(f"{V}/query", params={"q": "SELECT Id FROM Account"})
    assert response.json()["done"] is False
    assert compiler.last is not None
    # Only the first page was rendered, not the whole result.
    assert compiler.last.pulled[0] == 2000


async def test_page_retry_and_random_offset(client: httpx.AsyncClient, org: FakeOrg) -> None:
    ids = _seed(org, 4200)
    first = (await client.get(f"{V}/query", params={"q": "SELECT Id FROM Account"})).json()
    url = first["nextRecordsUrl"]
    second = (await client.get(url)).json()
    retried = (await client.get(url)).json()
    assert retried == second
    base = url.rsplit("-", 1)[0]
    jumped = (await client.get(f"{base}-4000")).json()
    assert [r["Id"] for r in jumped["records"]] == ids[4000:]
    assert jumped["done"] is True


async def test_query_all_includes_deleted_and_pages_under_query_all(
    client: httpx.AsyncClient, org: FakeOrg
) -> None:
    ids = _seed(org, 2100)
    org.store.delete(ids[0])
    live = (await client.get(f"{V}/query", params={"q": "SELECT Id FROM Account"})).json()
    assert live["totalSize"] == 2099
    pages = await _page_all(client, "SELECT Id, IsDeleted FROM Account", resource="queryAll")
    assert pages[0]["totalSize"] == 2100
    assert str(pages[0]["nextRecordsUrl"]).startswith(f"{V}/queryAll/")
    assert pages[0]["records"][0]["IsDeleted"] is True  # type: ignore[index]


async def test_locator_expires_after_two_days(client: httpx.AsyncClient, org: FakeOrg) -> None:
    _seed(org, 2001)
    url = (await client.get(f"{V}/query", params={"q": "SELECT Id FROM Account"})).json()[
        "nextRecordsUrl"
    ]
    org.clock.advance(2 * 24 * 3600 + 1)
    response = await client.get(url)
    assert response.status_code == 400
    assert response.json() == [
        {"message": "invalid query locator", "errorCode": "INVALID_QUERY_LOCATOR", "fields": []}
    ]


async def test_unknown_or_garbled_locator(client: httpx.AsyncClient) -> None:
    for tail in ("0r8xx0000000001AAA-2000", "garbage", "0r8xx0000000001AAA-x"):
        response = await client.get(f"{V}/query/{tail}")
        assert response.status_code == 400
        assert response.json()[0]["errorCode"] == "INVALID_QUERY_LOCATOR"


async def test_count_only(client: httpx.AsyncClient, org: FakeOrg) -> None:
    _seed(org, 7)
    body = (await client.get(f"{V}/query", params={"q": "SELECT COUNT() FROM Account"})).json()
    assert body == {"totalSize": 7, "done": True, "records": []}


async def test_bad_soql_and_missing_q(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{V}/query", params={"q": "SELEKT Id FROM Account"})
    assert response.status_code == 400
    assert response.json()[0]["errorCode"] == "MALFORMED_QUERY"
    response = await client.get(f"{V}/query/")
    assert response.status_code == 400
    assert response.json()[0]["errorCode"] == "MALFORMED_QUERY"


def test_locators_are_valid_18_char_ids() -> None:
    registry = CursorRegistry()
    first, second = registry.new_locator(), registry.new_locator()
    assert first != second
    assert first.startswith("0r8")
    assert id18(first[:15]) == first
    # Checksum vectors from section 2.4 of the reference.
    assert id18("001M000000qfPyS") == "001M000000qfPySIAU"
    assert id18("00190000001pPvH") == "00190000001pPvHAAU"


async def test_idle_cursors_release_their_iterators_but_stay_valid() -> None:
    app, org, compiler = build_test_app(max_live_cursors=1)
    ids = _seed(org, 4100)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://t") as client:
        first = (await client.get(f"{V}/query", params={"q": "SELECT Id FROM Account"})).json()
        first_query = compiler.last
        second = (await client.get(f"{V}/query", params={"q": "SELECT Name FROM Account"})).json()
        assert first_query is not None
        pulled_before = first_query.pulled[0]
        # The first cursor lost its iterator to the second; continuing it re-runs and skips.
        page = (await client.get(first["nextRecordsUrl"])).json()
        assert [r["Id"] for r in page["records"]] == ids[2000:4000]
        assert first_query.pulled[0] == pulled_before + 4000
        rest = (await client.get(second["nextRecordsUrl"])).json()
        assert rest["records"][0]["Name"] == "A02000"
