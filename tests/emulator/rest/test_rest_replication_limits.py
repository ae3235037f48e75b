"""updated/deleted replication resources (section 2.8) and /limits (section 2.11)."""

from __future__ import annotations

import httpx
import pytest
from rest_fakes import FakeOrg

from sfsync.emulator.rest.replication import parse_replication_date

pytestmark = pytest.mark.anyio

V = "/services/data/v59.0"
# The fake org's clock is frozen at 2024-05-01T12:00:00Z.


async def test_updated_window_and_latest_date_covered(
    client: httpx.AsyncClient, org: FakeOrg
) -> None:
    org.clock.advance(-3600)  # 11:00
    early = org.store.insert("Account", {"Name": "early"})
    org.clock.advance(1830)  # 11:30:30
    late = org.store.insert("Account", {"Name": "late"})
    org.clock.advance(1770)  # back to 12:00
    params = {"start": "2024-05-01T10:59:59+00:00", "end": "2024-05-01T11:30:45+00:00"}
    body = (await client.get(f"{V}/sobjects/Account/updated/", params=params)).json()
    # Seconds are ignored: start 10:59, end 11:30 (so the 11:30:30 change is outside).
    assert body == {"ids": [early], "latestDateCovered": "2024-05-01T11:30:00.000+0000"}
    params["end"] = "2030-01-01T00:00:00Z"
    body = (await client.get(f"{V}/sobjects/Account/updated", params=params)).json()
    assert body["ids"] == [early, late]
    assert body["latestDateCovered"] == "2024-05-01T12:00:00.000+0000"


async def test_updated_errors(client: httpx.AsyncClient) -> None:
    async def code(params: dict[str, str], obj: str = "Account") -> str:
        response = await client.get(f"{V}/sobjects/{obj}/updated/", params=params)
        assert response.status_code == 400
        return str(response.json()[0]["errorCode"])

    assert await code({"start": "2024-05-01T11:00:00Z"}) == "INVALID_REPLICATION_DATE"
    assert await code({"start": "nope", "end": "2024-05-01T11:00:00Z"}) == (
        "INVALID_REPLICATION_DATE"
    )
    reversed_window = {"start": "2024-05-01T11:00:00Z", "end": "2024-05-01T10:00:00Z"}
    assert await code(reversed_window) == "INVALID_REPLICATION_DATE"
    same_minute = {"start": "2024-05-01T11:00:05Z", "end": "2024-05-01T11:00:50Z"}
    assert await code(same_minute) == "INVALID_REPLICATION_DATE"
    too_old = {"start": "2024-03-01T00:00:00Z", "end": "2024-05-01T11:00:00Z"}
    assert await code(too_old) == "INVALID_REPLICATION_DATE"
    ok = {"start": "2024-04-30T00:00:00Z", "end": "2024-05-01T11:00:00Z"}
    assert await code(ok, "Thing__e") == "INVALID_TYPE_FOR_OPERATION"


async def test_deleted(client: httpx.AsyncClient, org: FakeOrg) -> None:
    record_id = org.store.insert("Account", {"Name": "x"})
    org.clock.advance(-600)
    org.store.delete(record_id)
    org.clock.advance(600)
    params = {"start": "2024-01-01T00:00:00+00:00", "end": "2024-05-01T12:00:00+00:00"}
    body = (await client.get(f"{V}/sobjects/Account/deleted/", params=params)).json()
    assert body == {
        "deletedRecords": [{"id": record_id, "deletedDate": "2024-05-01T11:50:00.000+0000"}],
        "earliestDateAvailable": "2024-04-16T12:00:00.000+0000",
        "latestDateCovered": "2024-05-01T12:00:00.000+0000",
    }


def test_replication_dates_accept_offsets_and_plus_as_space() -> None:
    parsed = parse_replication_date("start", "2024-05-01T13:20:59 02:00")
    assert parsed.isoformat() == "2024-05-01T11:20:00+00:00"


async def test_limits_renders_the_org_snapshot(client: httpx.AsyncClient) -> None:
    for path in (f"{V}/limits", f"{V}/limits/"):
        body = (await client.get(path)).json()
        assert body["DailyApiRequests"] == {"Max": 15000, "Remaining": 14990}


async def test_more_than_600000_ids_is_exceeded_id_limit(
    client: httpx.AsyncClient, org: FakeOrg
) -> None:
    many = [f"001xx{n:010d}AAA" for n in range(600_001)]
    # A store seam answering with too many ids (the fake store is a plain attribute).
    org.store.updated_ids = lambda *_args: many  # type: ignore[method-assign]
    org.store.deleted_records = lambda *_args: [(i, "2024-05-01T11:00:00.000+0000") for i in many]  # type: ignore[method-assign]
    params = {"start": "2024-04-30T00:00:00Z", "end": "2024-05-01T11:00:00Z"}
    for resource in ("updated", "deleted"):
        response = await client.get(f"{V}/sobjects/Account/{resource}/", params=params)
        assert response.status_code == 400
        assert response.json()[0]["errorCode"] == "EXCEEDED_ID_LIMIT"
    org.store.updated_ids = lambda *_args: many[:600_000]  # type: ignore[method-assign]
    response = await client.get(f"{V}/sobjects/Account/updated/", params=params)
    assert len(response.json()["ids"]) == 600_000
