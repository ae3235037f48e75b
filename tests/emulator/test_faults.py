"""The fault plan: matching, determinism, parsing, the admin API and what clients see."""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import cast

import anyio
import httpx
import pytest
from _org_support import make_org

from sfsync.emulator.app import ConnectionDroppedError, build_app
from sfsync.emulator.faults import (
    FaultKind,
    FaultPlan,
    FaultRule,
    load_fault_plan,
    parse_rule_spec,
)
from sfsync.emulator.org import Org

TOKEN = "faults-token"
QUERY = "/services/data/v59.0/query/"


def outcomes(plan: FaultPlan, requests: list[tuple[str, str]]) -> list[FaultKind | None]:
    return [plan.decide(method, path).kind for method, path in requests]


def mixed_rule() -> FaultRule:
    return FaultRule(
        path="/services/data/*",
        rates={FaultKind.SERVICE_UNAVAILABLE: 0.2, FaultKind.UNABLE_TO_LOCK_ROW: 0.2},
    )


def test_same_seed_same_faults_and_non_matching_requests_do_not_disturb() -> None:
    calls = [("GET", QUERY)] * 200
    first = outcomes(FaultPlan([mixed_rule()], seed=7), calls)
    interleaved_plan = FaultPlan([mixed_rule()], seed=7)
    interleaved = []
    for method, path in calls:
        interleaved_plan.decide("POST", "/services/oauth2/token")  # matches no rule
        interleaved.append(interleaved_plan.decide(method, path).kind)
    assert first == interleaved
    assert first != outcomes(FaultPlan([mixed_rule()], seed=8), calls)
    counts = {kind: first.count(kind) for kind in set(first)}
    # 200 draws at 20 % each: comfortably between 15 and 65 of each.
    assert 15 < counts[FaultKind.SERVICE_UNAVAILABLE] < 65
    assert 15 < counts[FaultKind.UNABLE_TO_LOCK_ROW] < 65


def test_method_glob_regex_first_rule_wins_and_times_cap() -> None:
    plan = FaultPlan(
        [
            FaultRule(method="PATCH", path="re:/sobjects/Account/001", rates={FaultKind.DROP: 1}),
            FaultRule(
                path="/services/data/*/sobjects/*", rates={FaultKind.SERVER_ERROR: 1}, times=2
            ),
        ]
    )
    account = "/services/data/v59.0/sobjects/Account/001xx0000000001AAA"
    assert plan.decide("PATCH", account).kind is FaultKind.DROP
    assert plan.decide("GET", account).kind is FaultKind.SERVER_ERROR
    assert plan.decide("GET", account).kind is FaultKind.SERVER_ERROR
    assert plan.decide("GET", account).kind is None  # capped at 2
    assert plan.decide("GET", "/services/oauth2/userinfo").kind is None
    assert plan.stats() == {"drop": 1, "500": 2}


def test_latency_fixed_and_range() -> None:
    fixed = FaultPlan([FaultRule(latency=(0.05, 0.05))])
    assert fixed.decide("GET", "/x").delay == pytest.approx(0.05)
    ranged = FaultPlan([FaultRule(latency=(0.01, 0.02))], seed=3)
    delays = [ranged.decide("GET", "/x").delay for _ in range(50)]
    assert all(0.01 <= d <= 0.02 for d in delays)
    assert len(set(delays)) > 1


@pytest.mark.parametrize(
    "bad",
    [
        {"rates": {"503": 0.7, "500": 0.5}},
        {"rates": {"teapot": 0.1}},
        {"rates": {"503": -0.1}},
        {"latency_ms": [50, 10]},
        {"colour": "red"},
        {"path": "re:(unclosed"},
    ],
)
def test_invalid_rules_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - every validation failure is a ValueError
        FaultRule.from_dict(bad)


def test_cli_spec_parsing() -> None:
    rule = parse_rule_spec("GET /services/data/*/query* 503=0.1,drop=0.05 latency=10-50 times=3")
    assert rule.method == "GET"
    assert rule.path == "/services/data/*/query*"
    assert rule.rates == {FaultKind.SERVICE_UNAVAILABLE: 0.1, FaultKind.DROP: 0.05}
    assert rule.latency == (0.01, 0.05)
    assert rule.times == 3
    assert parse_rule_spec("/services/* 500=1").method == "*"


def test_plan_round_trips_through_files(tmp_path: Path) -> None:
    plan = FaultPlan(
        [mixed_rule(), FaultRule(method="POST", path="/x", latency=(0.1, 0.2), times=4)], seed=11
    )
    path = tmp_path / "faults.json"
    path.write_text(json.dumps(plan.to_dict()))
    assert load_fault_plan(path).to_dict() == plan.to_dict()
    yaml_path = tmp_path / "faults.yaml"
    yaml_path.write_text(
        "seed: 5\nrules:\n  - method: GET\n    path: /services/data/*\n"
        "    rates: {unable_to_lock_row: 0.5}\n    latency_ms: 20\n"
    )
    loaded = load_fault_plan(yaml_path)
    assert loaded.seed == 5
    assert loaded.rules[0].rates == {FaultKind.UNABLE_TO_LOCK_ROW: 0.5}
    assert loaded.rules[0].latency == (0.02, 0.02)


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


async def _always(client: httpx.AsyncClient, kind: str) -> httpx.Response:
    plan = {"seed": 1, "rules": [{"path": "/services/data/*", "rates": {kind: 1.0}}]}
    assert (await client.put("/__emulator__/faults", json=plan)).status_code == 200
    return await client.get("/services/data/v59.0/sobjects/Account/001xx0000000001AAA")


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [
        ("503", 503, "SERVER_UNAVAILABLE"),
        ("500", 500, "UNKNOWN_EXCEPTION"),
        ("unable_to_lock_row", 400, "UNABLE_TO_LOCK_ROW"),
        ("request_limit", 403, "REQUEST_LIMIT_EXCEEDED"),
        ("query_timeout", 400, "QUERY_TIMEOUT"),
        ("invalid_session", 401, "INVALID_SESSION_ID"),
    ],
)
async def test_injected_errors_have_salesforce_shape(
    client: httpx.AsyncClient, kind: str, status: int, code: str
) -> None:
    response = await _always(client, kind)
    assert response.status_code == status
    body = response.json()
    assert body[0]["errorCode"] == code
    if code == "UNABLE_TO_LOCK_ROW":
        assert body[0]["message"].endswith("records: 001xx0000000001AAA")


@pytest.mark.anyio
async def test_drop_in_process_raises_a_connection_error(client: httpx.AsyncClient) -> None:
    with pytest.raises(ConnectionDroppedError):
        await _always(client, "drop")


@pytest.mark.anyio
async def test_admin_api_get_put_delete_and_stats(client: httpx.AsyncClient, org: Org) -> None:
    refused = await client.put("/__emulator__/faults", json={"rules": [{"rates": {"x": 1}}]})
    assert refused.status_code == 400
    assert "unknown fault kind" in refused.json()["error"]
    await _always(client, "503")
    state = (await client.get("/__emulator__/faults")).json()
    assert state["seed"] == 1
    assert state["rules"][0]["rates"] == {"503": 1.0}
    assert state["injected"] == {"503": 1}
    stats = (await client.get("/__emulator__/stats")).json()
    assert stats["faults_injected"] == {"503": 1}
    assert stats["requests"] >= 1
    assert (await client.delete("/__emulator__/faults")).status_code == 204
    assert org.faults.rules == ()
    ok = await client.get("/services/data/v59.0/limits/")
    assert ok.status_code == 200


@pytest.mark.anyio
async def test_added_latency_delays_the_answer(client: httpx.AsyncClient) -> None:
    plan = {"rules": [{"path": "/services/data/*", "latency_ms": 150}]}
    await client.put("/__emulator__/faults", json=plan)
    started = time.monotonic()
    response = await client.get("/services/data/v59.0/limits/")
    assert response.status_code == 200
    assert time.monotonic() - started >= 0.14


@pytest.mark.anyio
async def test_admin_clock_endpoints(client: httpx.AsyncClient) -> None:
    frozen = (
        await client.post("/__emulator__/clock/freeze", json={"at": "2024-01-15T09:30:00Z"})
    ).json()
    assert frozen == {"now": "2024-01-15T09:30:00.000+0000", "epoch": 1705311000.0, "frozen": True}
    advanced = (await client.post("/__emulator__/clock/advance", json={"seconds": 90})).json()
    assert advanced["now"] == "2024-01-15T09:31:30.000+0000"
    assert (await client.get("/__emulator__/clock")).json() == advanced
    bad = await client.post("/__emulator__/clock/advance", json={"seconds": "soon"})
    assert bad.status_code == 400
    running = (await client.post("/__emulator__/clock/unfreeze")).json()
    assert running["frozen"] is False


@pytest.mark.anyio
async def test_expired_session_fault_really_ends_the_session(
    client: httpx.AsyncClient, org: Org
) -> None:
    app = org.auth.app
    token = (
        await client.post(
            "/services/oauth2/token",
            data={
                "grant_type": "client_credentials",
                "client_id": app.client_id,
                "client_secret": app.client_secret,
            },
        )
    ).json()["access_token"]
    plan = {"rules": [{"path": "/services/data/*", "rates": {"invalid_session": 1.0}, "times": 1}]}
    await client.put("/__emulator__/faults", json=plan)
    auth = {"Authorization": f"Bearer {token}"}
    first = await client.get("/services/data/v59.0/limits/", headers=auth)
    assert first.status_code == 401
    # The rule is spent, but the token stays expired: only a new login helps.
    second = await client.get("/services/data/v59.0/limits/", headers=auth)
    assert second.status_code == 401
    assert (await client.get("/services/data/v59.0/limits/")).status_code == 200  # fixed token


@pytest.fixture
def real_org(tmp_path: Path) -> Iterator[Org]:
    """An org on the real record store (the per-record faults act where records are written)."""
    org = Org.create(access_token=TOKEN, state_dir=tmp_path / "real")
    yield org
    org.close()


@pytest.fixture
async def api(real_org: Org) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build_app(real_org))
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://emu.test",
        headers={"Authorization": f"Bearer {TOKEN}"},
    ) as client:
        yield client


def _names(org: Org) -> set[str]:
    return {str(r["Name"]) for r in org.store.scan("Account", include_deleted=False)}


async def _plan(client: httpx.AsyncClient, rates: dict[str, float], seed: int = 1) -> None:
    rule = {"path": "/services/data/*/composite/sobjects*", "rates": rates}
    put = await client.put("/__emulator__/faults", json={"seed": seed, "rules": [rule]})
    assert put.status_code == 200


async def _create(client: httpx.AsyncClient, names: list[str]) -> list[dict[str, object]]:
    records = [{"attributes": {"type": "Account"}, "Name": n} for n in names]
    response = await client.post(
        "/services/data/v59.0/composite/sobjects", json={"allOrNone": False, "records": records}
    )
    assert response.status_code == 200
    answer: list[dict[str, object]] = response.json()
    return answer


@pytest.mark.anyio
async def test_row_lock_fails_a_share_of_the_records_of_a_call_unwritten(
    api: httpx.AsyncClient, real_org: Org
) -> None:
    client, org = api, real_org
    await _plan(client, {"row_lock": 0.3}, seed=4)
    names = [f"R{i}" for i in range(200)]
    answer = await _create(client, names)
    locked = [i for i, item in enumerate(answer) if not item["success"]]
    assert 30 < len(locked) < 90  # 30 % of 200
    for i in locked:
        errors = cast(list[dict[str, object]], answer[i]["errors"])
        assert errors[0]["statusCode"] == "UNABLE_TO_LOCK_ROW"
        assert "unable to obtain exclusive access" in str(errors[0]["message"])
    assert _names(org) == {n for i, n in enumerate(names) if i not in locked}
    assert org.faults.stats()["row_lock"] == len(locked)
    # The same seed locks the same records again; the plan's other requests are unaffected.
    await _plan(client, {"row_lock": 0.3}, seed=4)
    again = await _create(client, [f"S{i}" for i in range(200)])
    assert [i for i, item in enumerate(again) if not item["success"]] == locked


def test_row_lock_is_a_per_record_rate_outside_the_request_sum() -> None:
    rule = FaultRule(rates={FaultKind.ROW_LOCK: 0.9, FaultKind.SERVICE_UNAVAILABLE: 0.5})
    plan = FaultPlan([rule], seed=3)
    kinds = {plan.decide("GET", "/x").kind for _ in range(100)}
    assert FaultKind.ROW_LOCK not in kinds  # never a request's fault
    assert plan.decide("GET", "/x").row_faults is not None
    with pytest.raises(ValueError, match="at most 1"):
        FaultRule(rates={FaultKind.ROW_LOCK: 1.5})
    assert parse_rule_spec("PATCH /services/* row_lock=0.2").rates == {FaultKind.ROW_LOCK: 0.2}


@pytest.mark.anyio
async def test_lost_response_commits_then_drops_the_connection(
    api: httpx.AsyncClient, real_org: Org
) -> None:
    client, org = api, real_org
    await _plan(client, {"lost_response": 1.0})
    with pytest.raises(ConnectionDroppedError):
        await _create(client, ["Landed"])
    assert _names(org) == {"Landed"}  # written, though the client never heard
    assert org.faults.stats()["lost_response"] == 1


@pytest.mark.anyio
async def test_row_lock_fails_a_share_of_the_rows_of_a_bulk_job_unwritten(
    api: httpx.AsyncClient, real_org: Org
) -> None:
    # The job takes the per-record faults of the request that closes it.
    rule = {"method": "PATCH", "path": "/services/data/*/jobs/ingest/*", "rates": {"row_lock": 0.3}}
    assert (await api.put("/__emulator__/faults", json={"seed": 6, "rules": [rule]})).is_success
    base = "/services/data/v59.0/jobs/ingest"
    created = await api.post(base, json={"object": "Account", "operation": "insert"})
    job = f"{base}/{created.json()['id']}"
    names = [f"B{i}" for i in range(300)]
    body = "Name\n" + "".join(f"{n}\n" for n in names)
    upload = await api.put(f"{job}/batches", content=body, headers={"Content-Type": "text/csv"})
    assert upload.status_code == 201
    assert (await api.patch(job, json={"state": "UploadComplete"})).is_success
    for _ in range(500):
        info = (await api.get(job)).json()
        if info["state"] == "JobComplete":
            break
        await anyio.sleep(0.01)
    assert info["state"] == "JobComplete"
    failed = list(csv.reader(io.StringIO((await api.get(f"{job}/failedResults/")).text)))[1:]
    assert 45 < len(failed) < 135  # 30 % of 300
    assert info["numberRecordsFailed"] == len(failed)
    assert all(row[1].startswith("UNABLE_TO_LOCK_ROW:unable to obtain") for row in failed)
    assert _names(real_org) == set(names) - {row[2] for row in failed}
    assert real_org.faults.stats()["row_lock"] == len(failed)
