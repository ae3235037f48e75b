"""A third-party Pub/Sub API client written for real Salesforce (aiosfpubsub: SOAP login,
Salesforce's own generated ``eventbus.v1`` stubs, Apache Avro decoding) against the emulator,
unchanged but for the CA it trusts."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from _streaming_support import TOKEN, V, make_org
from aiosfpubsub.client import Client

from sfsync.emulator.org import Org
from sfsync.emulator.server import RunningServer, serve_in_background
from sfsync.emulator.streaming.grpc_server import GrpcServer, start_grpc
from sfsync.emulator.tls import ensure_certificates


class EnoughError(Exception):
    """Raised from the subscription callback once the test has what it waits for."""


@pytest.fixture
def org(tmp_path: Path) -> Iterator[Org]:
    org = make_org(tmp_path)
    yield org
    org.close()


@pytest.fixture
def server(org: Org) -> Iterator[RunningServer]:
    with serve_in_background(org) as running:
        yield running


@pytest.fixture
def pubsub(org: Org, tmp_path: Path) -> Iterator[tuple[GrpcServer, Path]]:
    files = ensure_certificates(tmp_path / "tls")
    handle = start_grpc(org, port=0, certfile=files.certfile, keyfile=files.keyfile)
    try:
        yield handle, files.ca_cert
    finally:
        handle.stop()


def client_for(server: RunningServer, port: int, ca: Path) -> Client:
    class EmulatorClient(Client):  # type: ignore[misc]
        @staticmethod
        def _default_channel_credentials() -> grpc.ChannelCredentials:
            return grpc.ssl_channel_credentials(ca.read_bytes())

    user = server.org.auth.user
    client = EmulatorClient(
        url=server.url,
        username=user.username,
        password=user.password + user.security_token,
        grpc_host="localhost",
        grpc_port=port,
        api_version="59.0",
    )
    client.auth()  # SOAP login() at the emulator
    return client


def test_aiosfpubsub_subscribes_and_decodes_change_events(
    server: RunningServer, pubsub: tuple[GrpcServer, Path]
) -> None:
    handle, ca = pubsub
    headers = {"Authorization": f"Bearer {TOKEN}", "Sforce-Call-Options": "client=third"}
    with httpx.Client(base_url=server.url, headers=headers) as api:
        ids = [
            api.post(
                f"{V}/sobjects/Account/", json={"Name": f"N{i}", "BillingCity": "Oslo"}
            ).json()["id"]
            for i in range(2)
        ]
        api.patch(f"{V}/sobjects/Account/{ids[0]}", json={"Industry": "Energy"})
    client = client_for(server, handle.port, ca)
    assert client.metadata is not None
    assert dict(client.metadata)["tenantid"] == server.org.org_id
    topic = client.get_topic("/data/AccountChangeEvent")
    assert topic.can_subscribe
    received: list[dict[str, Any]] = []

    def on_event(response: Any, subscriber: Client) -> None:
        # The client hands over each FetchResponse (its annotation says ConsumerEvent).
        for event in response.events:
            schema = subscriber.get_schema_json(event.event.schema_id)
            received.append(subscriber.decode(schema, event.event.payload))
        if len(received) >= 3:
            raise EnoughError

    async def run() -> None:
        await client.subscribe("/data/AccountChangeEvent", "EARLIEST", b"", 10, on_event)

    with pytest.raises(EnoughError):
        asyncio.run(asyncio.wait_for(run(), timeout=30))
    headers_seen = [r["ChangeEventHeader"] for r in received]
    assert [h["changeType"] for h in headers_seen] == ["CREATE", "CREATE", "UPDATE"]
    assert [h["recordIds"] for h in headers_seen] == [[ids[0]], [ids[1]], [ids[0]]]
    assert headers_seen[0]["changeOrigin"] == "com/salesforce/api/rest/59.0;client=third"
    assert received[0]["Name"] == "N0"
    assert received[0]["BillingAddress"]["City"] == "Oslo"
    assert received[2]["Industry"] == "Energy"
    assert received[2]["Name"] is None
