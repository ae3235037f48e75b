"""The daily API allocation: rolling window, header, exhaustion, what counts."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from _org_support import make_org
from hypothesis import given, settings
from hypothesis import strategies as st

from sfsync.emulator.app import build_app
from sfsync.emulator.clock import OrgClock
from sfsync.emulator.errors import ApiError
from sfsync.emulator.limits import WINDOW_SECONDS, ApiLimits
from sfsync.emulator.org import Org

TOKEN = "limits-token"
LIMIT_BODY = [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]


def frozen_clock() -> OrgClock:
    return OrgClock(frozen_at=datetime(2024, 1, 15, 9, 30, tzinfo=UTC))


def test_consume_counts_and_refuses_past_the_max_without_counting() -> None:
    limits = ApiLimits(frozen_clock(), daily_max=3)
    assert [limits.consume() for _ in range(3)] == [1, 2, 3]
    with pytest.raises(ApiError) as refused:
        limits.consume()
    assert refused.value.status == 403
    assert refused.value.body()[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
    assert limits.used() == 3
    assert limits.header_value() == "api-usage=3/3"


def test_window_rolls_after_24_hours_on_the_org_clock() -> None:
    clock = frozen_clock()
    limits = ApiLimits(clock, daily_max=10)
    limits.consume(4)
    clock.advance(12 * 3600)
    limits.consume(5)
    assert limits.remaining() == 1
    clock.advance(12 * 3600 + 60)  # the first 4 calls are now older than 24 h
    assert limits.used() == 5
    clock.advance(12 * 3600)
    assert limits.used() == 0


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 7200), st.integers(1, 5)), max_size=40))
def test_used_equals_calls_within_the_last_24_hours(steps: list[tuple[int, int]]) -> None:
    """Model check: usage is the sum of calls made within the window (minute granularity)."""
    clock = frozen_clock()
    limits = ApiLimits(clock, daily_max=10**9)
    made: list[tuple[float, int]] = []
    for gap, calls in steps:
        clock.advance(gap * 30)
        limits.consume(calls)
        made.append((clock.time(), calls))
    now = clock.time()
    # Buckets are per minute: a call leaves the window when its minute is 24 h old.
    expected = sum(c for t, c in made if (t // 60) * 60 + 60 > now - WINDOW_SECONDS)
    assert limits.used() == expected


def test_snapshot_has_daily_api_requests_live() -> None:
    limits = ApiLimits(frozen_clock(), daily_max=100)
    limits.consume(7)
    snapshot = limits.snapshot()
    assert snapshot["DailyApiRequests"]["Max"] == 100
    assert snapshot["DailyApiRequests"]["Remaining"] == 93
    assert snapshot["DataStorageMB"] == {"Max": 5, "Remaining": 5}
    assert list(snapshot) == sorted(snapshot)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def org(tmp_path: Path) -> Iterator[Org]:
    org = make_org(tmp_path, access_token=TOKEN, daily_api_limit=3, clock=frozen_clock())
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


@pytest.mark.anyio
async def test_every_rest_call_counts_and_carries_the_header(
    client: httpx.AsyncClient, org: Org
) -> None:
    seen = []
    for _ in range(3):
        response = await client.get("/services/data/v59.0/limits/")
        assert response.status_code == 200
        seen.append(response.headers["Sforce-Limit-Info"])
    assert seen == ["api-usage=1/3", "api-usage=2/3", "api-usage=3/3"]
    refused = await client.get("/services/data/v59.0/limits/")
    assert refused.status_code == 403
    assert refused.json() == LIMIT_BODY
    assert refused.headers["Sforce-Limit-Info"] == "api-usage=3/3"
    # The allocation recovers as the window rolls (admin clock, no sleeping).
    await client.post("/__emulator__/clock/advance", json={"seconds": WINDOW_SECONDS + 60})
    again = await client.get("/services/data/v59.0/limits/")
    assert again.status_code == 200
    assert again.headers["Sforce-Limit-Info"] == "api-usage=1/3"


@pytest.mark.anyio
async def test_logins_admin_and_refused_sessions_do_not_count(
    client: httpx.AsyncClient, org: Org
) -> None:
    app = org.auth.app
    token = await client.post(
        "/services/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": app.client_id,
            "client_secret": app.client_secret,
        },
    )
    assert token.status_code == 200
    await client.get("/__emulator__/stats")
    await client.get("/services/data/")  # the version list is not an API call
    unauthorised = await client.get(
        "/services/data/v59.0/limits/", headers={"Authorization": "Bearer nope"}
    )
    assert unauthorised.status_code == 401
    assert org.limits.used() == 0


@pytest.mark.anyio
async def test_limits_resource_reflects_usage(client: httpx.AsyncClient) -> None:
    await client.get("/services/data/v59.0/limits/")
    body = (await client.get("/services/data/v59.0/limits/")).json()
    assert body["DailyApiRequests"]["Max"] == 3
    assert body["DailyApiRequests"]["Remaining"] == 1


@pytest.mark.anyio
async def test_reset_forgets_usage(client: httpx.AsyncClient, org: Org) -> None:
    await client.get("/services/data/v59.0/limits/")
    assert (await client.post("/__emulator__/reset")).status_code == 204
    assert org.limits.used() == 0


def test_parallel_calls_over_a_real_socket_are_each_counted_once(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from sfsync.emulator.server import serve_in_background

    org = make_org(tmp_path / "real", access_token=TOKEN, daily_api_limit=1000)
    try:
        with (
            serve_in_background(org) as server,
            httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"}) as http,
        ):

            def call(_: int) -> str:
                response = http.get("/services/data/v59.0/limits/")
                assert response.status_code == 200
                return response.headers["Sforce-Limit-Info"]

            with ThreadPoolExecutor(max_workers=8) as pool:
                usages = list(pool.map(call, range(64)))
        assert org.limits.used() == 64
        # Every call saw a distinct count: no two were metered as the same call.
        assert sorted(int(u.split("=")[1].split("/")[0]) for u in usages) == list(range(1, 65))
    finally:
        org.close()


def test_long_running_gate_counts_only_calls_past_the_threshold() -> None:
    from sfsync.emulator.limits import LongRunningGate

    now = [0.0]
    gate = LongRunningGate(max_long=2, threshold=20.0, monotonic=lambda: now[0])
    first, second = gate.enter(), gate.enter()
    now[0] = 19.0
    third = gate.enter()  # nothing has run 20 s yet
    now[0] = 20.0
    with pytest.raises(ApiError) as refused:
        gate.enter()  # first and second are long-running now
    assert refused.value.body()[0]["message"] == (
        "ConcurrentRequests (Concurrent API Requests) Limit exceeded."
    )
    gate.leave(first)
    fourth = gate.enter()
    assert gate.in_flight() == 3
    for ticket in (second, third, fourth):
        gate.leave(ticket)
    assert gate.in_flight() == 0


@pytest.mark.anyio
async def test_slow_calls_hold_the_concurrency_limit(tmp_path: Path) -> None:
    import anyio

    from sfsync.emulator.faults import FaultRule
    from sfsync.emulator.limits import LongRunningGate

    org = make_org(tmp_path, access_token=TOKEN)
    org.long_running = LongRunningGate(max_long=1, threshold=0.0)
    org.faults.replace([FaultRule(path="/services/data/v59.0/limits/", latency=(0.4, 0.4))])
    try:
        transport = httpx.ASGITransport(app=build_app(org))
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://emu.test",
            headers={"Authorization": f"Bearer {TOKEN}"},
        ) as client:
            results: dict[str, httpx.Response] = {}

            async def slow() -> None:
                results["slow"] = await client.get("/services/data/v59.0/limits/")

            async def quick() -> None:
                await anyio.sleep(0.1)
                results["quick"] = await client.get("/services/data/v59.0/sobjects/")

            async with anyio.create_task_group() as group:
                group.start_soon(slow)
                group.start_soon(quick)
        assert results["slow"].status_code == 200
        assert results["quick"].status_code == 403
        assert results["quick"].json()[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
        assert org.long_running.in_flight() == 0
        assert org.limits.used() == 1  # the refused call was not metered
    finally:
        org.close()
