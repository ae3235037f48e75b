"""CometD long-polling over a real socket (httpx), against the real org and store."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from _streaming_support import TOKEN, V, make_org

from sfsync.emulator.server import RunningServer, serve_in_background

COMETD = "/cometd/59.0"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    org = make_org(tmp_path)
    try:
        with serve_in_background(org) as running:
            yield running
    finally:
        org.close()


@pytest.fixture
def http(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=server.url, headers={"Authorization": f"OAuth {TOKEN}"}, timeout=30
    ) as client:
        yield client


def bayeux(http: httpx.Client, *messages: dict[str, Any], path: str = COMETD) -> list[Any]:
    response = http.post(path, json=list(messages))
    assert response.status_code == 200, response.text
    body: list[Any] = response.json()
    return body


def handshake(http: httpx.Client) -> str:
    (reply,) = bayeux(
        http,
        {
            "channel": "/meta/handshake",
            "version": "1.0",
            "minimumVersion": "1.0",
            "supportedConnectionTypes": ["long-polling"],
            "id": "1",
            "ext": {"replay": True},
        },
        path=f"{COMETD}/handshake",
    )
    assert reply["successful"] is True
    assert reply["ext"] == {"replay": True, "payload.format": True}
    assert reply["supportedConnectionTypes"] == ["long-polling"]
    assert "BAYEUX_BROWSER" in http.cookies
    client_id: str = reply["clientId"]
    (first,) = bayeux(http, connect(client_id, "2"))
    assert first["successful"] is True
    assert first["advice"] == {"interval": 0, "timeout": 110000, "reconnect": "retry"}
    return client_id


def connect(client_id: str, message_id: str) -> dict[str, Any]:
    return {
        "channel": "/meta/connect",
        "clientId": client_id,
        "connectionType": "long-polling",
        "id": message_id,
    }


def subscribe(client_id: str, channel: str, replay: int | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {
        "channel": "/meta/subscribe",
        "clientId": client_id,
        "subscription": channel,
        "id": "s",
    }
    if replay is not None:
        message["ext"] = {"replay": {channel: replay}}
    return message


def settings(http: httpx.Client, **knobs: float) -> None:
    assert http.put("/__emulator__/streaming", json=knobs).status_code == 200


def test_connect_is_held_until_a_change_arrives(http: httpx.Client) -> None:
    settings(http, connect_timeout=10)
    client_id = handshake(http)
    (ok,) = bayeux(http, subscribe(client_id, "/data/AccountChangeEvent", -1))
    assert ok == {
        "channel": "/meta/subscribe",
        "id": "s",
        "clientId": client_id,
        "subscription": "/data/AccountChangeEvent",
        "successful": True,
    }
    created: list[str] = []

    def create_later() -> None:
        time.sleep(0.3)
        answer = http.post(
            f"{V}/sobjects/Account/",
            json={"Name": "Acme", "BillingCity": "Paris"},
            headers={"Sforce-Call-Options": "client=sfsync"},
        )
        created.append(answer.json()["id"])

    writer = threading.Thread(target=create_later)
    started = time.monotonic()
    writer.start()
    delivered, reply = bayeux(http, connect(client_id, "3"))
    writer.join()
    assert time.monotonic() - started < 8
    assert reply == {
        "channel": "/meta/connect",
        "id": "3",
        "clientId": client_id,
        "successful": True,
    }
    assert delivered["channel"] == "/data/AccountChangeEvent"
    data = delivered["data"]
    assert isinstance(data["event"]["replayId"], int)
    assert isinstance(data["schema"], str)
    header = data["payload"]["ChangeEventHeader"]
    assert header["recordIds"] == created
    assert header["changeType"] == "CREATE"
    assert header["changeOrigin"] == "com/salesforce/api/rest/59.0;client=sfsync"
    assert data["payload"]["BillingAddress"] == {"City": "Paris"}


def test_idle_connect_returns_after_the_timeout(http: httpx.Client) -> None:
    settings(http, connect_timeout=0.5)
    client_id = handshake(http)
    bayeux(http, subscribe(client_id, "/data/ChangeEvents"))
    started = time.monotonic()
    (reply,) = bayeux(http, connect(client_id, "3"))
    assert reply["successful"] is True
    assert "advice" not in reply
    assert 0.4 < time.monotonic() - started < 5


def test_replay_all_retained_from_a_given_id_and_expired_ids(http: httpx.Client) -> None:
    settings(http, connect_timeout=0.5)
    ids = [
        http.post(f"{V}/sobjects/Account/", json={"Name": f"A{i}"}).json()["id"] for i in range(3)
    ]
    client_id = handshake(http)
    bayeux(http, subscribe(client_id, "/data/AccountChangeEvent", -2))
    *events, _reply = bayeux(http, connect(client_id, "3"))
    assert [e["data"]["payload"]["ChangeEventHeader"]["recordIds"][0] for e in events] == ids
    replay_ids = [e["data"]["event"]["replayId"] for e in events]
    assert replay_ids == sorted(replay_ids)

    other = handshake(http)
    bayeux(http, subscribe(other, "/data/AccountChangeEvent", replay_ids[0]))
    *after, _reply = bayeux(http, connect(other, "3"))
    assert [e["data"]["event"]["replayId"] for e in after] == replay_ids[1:]

    (bad,) = bayeux(http, subscribe(other, "/data/AccountChangeEvent", replay_ids[-1] + 100))
    assert bad["successful"] is False
    assert bad["error"] == (
        f"400::The replayId {{{replay_ids[-1] + 100}}} you provided was invalid.  Please "
        "provide a valid ID, -2 to replay all events, or -1 to replay only new events."
    )
    # 73 hours later the events are gone: their ids cannot be replayed any more, and the
    # clients that stayed away longer than 40 s were forgotten.
    assert http.post("/__emulator__/clock/advance", json={"seconds": 73 * 3600}).is_success
    late = handshake(http)
    (expired,) = bayeux(http, subscribe(late, "/data/AccountChangeEvent", replay_ids[0]))
    assert expired["successful"] is False
    assert expired["error"].startswith(f"400::The replayId {{{replay_ids[0]}}}")
    bayeux(http, subscribe(late, "/data/AccountChangeEvent", -2))
    (only_reply,) = bayeux(http, connect(late, "3"))
    assert only_reply["channel"] == "/meta/connect"
    (gone,) = bayeux(http, connect(other, "4"))
    assert gone["successful"] is False
    assert gone["error"] == "403::Unknown client"
    assert gone["advice"] == {"reconnect": "handshake", "interval": 0}


def test_subscribe_errors_and_unsubscribe(http: httpx.Client) -> None:
    settings(http, connect_timeout=0.3)
    client_id = handshake(http)
    (missing,) = bayeux(http, subscribe(client_id, "/data/NopeChangeEvent"))
    assert missing["error"] == (
        "400::The channel you requested to subscribe to doesn't exist {/data/NopeChangeEvent}"
    )
    (relative,) = bayeux(http, subscribe(client_id, "data/AccountChangeEvent"))
    assert relative["error"] == "400::Channel subscriptions must start with a leading '/'"
    mismatch = subscribe(client_id, "/data/AccountChangeEvent")
    mismatch["ext"] = {"replay": {"/data/ContactChangeEvent": -1}}
    (wrong_map,) = bayeux(http, mismatch)
    assert wrong_map["error"].startswith(
        "400::The replayId for channel {/data/AccountChangeEvent} wasn't found"
    )
    bayeux(http, subscribe(client_id, "/data/AccountChangeEvent"))
    (gone,) = bayeux(
        http,
        {
            "channel": "/meta/unsubscribe",
            "clientId": client_id,
            "subscription": "/data/AccountChangeEvent",
        },
    )
    assert gone["successful"] is True
    http.post(f"{V}/sobjects/Account/", json={"Name": "Unseen"})
    (reply,) = bayeux(http, connect(client_id, "9"))
    assert reply["channel"] == "/meta/connect"
    (bye,) = bayeux(http, {"channel": "/meta/disconnect", "clientId": client_id})
    assert bye["successful"] is True
    (unknown,) = bayeux(http, connect(client_id, "10"))
    assert unknown["error"] == "403::Unknown client"


def test_authentication_and_version_errors(http: httpx.Client) -> None:
    bad = {"Authorization": "Bearer not-a-token"}
    (denied,) = http.post(
        COMETD, json=[{"channel": "/meta/handshake", "id": "1"}], headers=bad
    ).json()
    assert denied["successful"] is False
    assert denied["error"] == "403::Handshake denied"
    assert denied["ext"]["sfdc"] == {"failureReason": "401::Authentication invalid"}
    assert denied["advice"] == {"reconnect": "none"}
    (refused,) = http.post(COMETD, json=[connect("whatever", "2")], headers=bad).json()
    assert refused["error"] == "401::Authentication invalid"
    assert refused["advice"]["reconnect"] == "none"
    missing = http.post("/cometd", json=[{"channel": "/meta/handshake"}])
    assert missing.status_code == 400
    assert "API version in the URI is mandatory" in missing.text
    assert http.post("/cometd/20.0", json=[]).status_code == 400
    too_big = http.post(COMETD, content=b"[" + b" " * 40_000 + b"]")
    assert too_big.status_code == 413


def test_platform_events_from_rest_reach_cometd(http: httpx.Client) -> None:
    settings(http, connect_timeout=5)
    client_id = handshake(http)
    (ok,) = bayeux(http, subscribe(client_id, "/event/Printer__e", -1))
    assert ok["successful"] is True
    (wrong_case,) = bayeux(http, subscribe(client_id, "/event/printer__e", -1))
    assert wrong_case["successful"] is False
    http.post(f"{V}/sobjects/Printer__e/", json={"Model__c": "XZO-5", "Pages__c": 3})
    event, _reply = bayeux(http, connect(client_id, "3"))
    assert event["channel"] == "/event/Printer__e"
    assert event["data"]["payload"]["Model__c"] == "XZO-5"
    assert event["data"]["payload"]["Pages__c"] == 3
    assert set(event["data"]["event"]) == {"replayId", "EventUuid"}


def test_org_reset_forgets_clients_and_pending_gaps(http: httpx.Client) -> None:
    client_id = handshake(http)
    state = http.put("/__emulator__/streaming", json={"gaps": 3}).json()
    assert state["gaps_pending"] == 3
    assert http.post("/__emulator__/reset").status_code == 204
    assert http.get("/__emulator__/streaming").json()["gaps_pending"] == 0
    (gone,) = bayeux(http, connect(client_id, "3"))
    assert gone["error"] == "403::Unknown client"
