"""A third-party CometD client written for real Salesforce (aiosfstream-ng, on aiocometd and
aiohttp) against the emulator, unchanged: OAuth refresh-token login at the emulator's token
endpoint, handshake, subscribe with replay, receive change events and platform events."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from _streaming_support import TOKEN, V, make_org
from aiosfstream_ng.auth import RefreshTokenAuthenticator
from aiosfstream_ng.client import Client
from aiosfstream_ng.replay import ReplayOption

from sfsync.emulator.server import RunningServer, serve_in_background

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    org = make_org(tmp_path)
    try:
        with serve_in_background(org) as running:
            yield running
    finally:
        org.close()


def authenticator(server: RunningServer) -> RefreshTokenAuthenticator:
    """The client's own refresh-token authenticator, pointed at the emulator's token URL
    (the only thing that differs from a real org: the login host)."""

    class EmulatorLogin(RefreshTokenAuthenticator):
        @property
        def _token_url(self) -> str:
            return f"{server.url}/services/oauth2/token"

    auth = server.org.auth
    return EmulatorLogin(
        consumer_key=auth.app.client_id,
        consumer_secret=auth.app.client_secret,
        refresh_token=auth.refresh_token,
    )


async def test_change_and_platform_events_reach_aiosfstream(server: RunningServer) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers) as api:
        # Events before the client connects: replayed through the stored replay ids (-2).
        early = (await api.post(f"{V}/sobjects/Account/", json={"Name": "Early"})).json()["id"]
        client = Client(authenticator(server), replay=ReplayOption.ALL_EVENTS)
        async with client:
            await client.subscribe("/data/AccountChangeEvent")
            await client.subscribe("/event/Printer__e")
            await api.post(f"{V}/sobjects/Account/", json={"Name": "Late"})
            await api.post(f"{V}/sobjects/Printer__e/", json={"Model__c": "XZO-5"})
            received: list[dict[str, Any]] = []

            async def collect() -> None:
                async for message in client:
                    received.append(message)
                    if len(received) == 3:
                        return

            await asyncio.wait_for(collect(), timeout=30)
    changes = [m for m in received if m["channel"] == "/data/AccountChangeEvent"]
    events = [m for m in received if m["channel"] == "/event/Printer__e"]
    names = [m["data"]["payload"]["Name"] for m in changes]
    assert names == ["Early", "Late"]
    assert changes[0]["data"]["payload"]["ChangeEventHeader"]["recordIds"] == [early]
    assert events[0]["data"]["payload"]["Model__c"] == "XZO-5"
