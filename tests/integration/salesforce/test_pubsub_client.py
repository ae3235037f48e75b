"""The Pub/Sub client against the emulator's gRPC server over a real port: subscribe from
EARLIEST and from a stored replay id, decode every event with the served schema, and the
errors a consumer must tell apart (expired replay id, refused session)."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import fastavro
import pytest

from sfsync.connectors.salesforce.cdc import decode_event, layout_of
from sfsync.connectors.salesforce.pubsub import (
    Credentials,
    Keepalive,
    PubSubClient,
    Received,
    Replay,
    ReplayExpiredError,
    SessionExpiredError,
)
from sfsync.core.events import ChangeEvent, Operation, Position
from sfsync.emulator.clock import OrgClock
from sfsync.emulator.org import Org
from sfsync.emulator.server import RunningServer, serve_in_background
from sfsync.emulator.store_changes import call_context

TOKEN = "00D000000000001!pubsub-client-token"
TOPIC = "/data/AccountChangeEvent"


@pytest.fixture
def org() -> Iterator[Org]:
    org = Org.create(access_token=TOKEN, clock=OrgClock(frozen_at=datetime(2026, 3, 1, tzinfo=UTC)))
    yield org
    org.close()


@pytest.fixture
def server(org: Org) -> Iterator[RunningServer]:
    with serve_in_background(org, port=0, grpc_port=0) as running:
        yield running


def _client(org: Org, server: RunningServer, token: str = TOKEN) -> PubSubClient:
    assert server.grpc_port is not None
    return PubSubClient(
        f"127.0.0.1:{server.grpc_port}",
        lambda: Credentials(token, server.url, org.org_id),
        tls=False,
    )


async def _take(stream: AsyncIterator[Received | Keepalive], n: int) -> list[Received]:
    got: list[Received] = []
    async for item in stream:
        if isinstance(item, Received):
            got.append(item)
            if len(got) == n:
                break
    return got


async def _decode(client: PubSubClient, received: list[Received]) -> list[ChangeEvent]:
    events: list[ChangeEvent] = []
    for item in received:
        schema = await client.schema(item.schema_id)
        parsed = fastavro.parse_schema(json.loads(schema))
        record = fastavro.schemaless_reader(io.BytesIO(item.payload), parsed, parsed)
        assert isinstance(record, dict)
        decoded = decode_event(record, layout_of(schema), Position(TOPIC, item.replay_id.hex()))
        assert isinstance(decoded, list)
        events.extend(decoded)
    return events


def _changes(org: Org) -> str:
    with call_context(api="rest", client_id="sfsync"):
        record_id = org.store.insert("Account", {"Name": "Acme"})
        org.clock.advance(1)
        org.store.update("Account", record_id, {"Industry": "Energy"})
        org.clock.advance(1)
        org.store.delete(record_id)
    return record_id


@pytest.mark.anyio
async def test_subscribe_from_earliest_and_from_a_stored_replay_id(
    org: Org, server: RunningServer
) -> None:
    record_id = _changes(org)
    client = _client(org, server)
    try:
        topic = await client.topic(TOPIC)
        assert topic.can_subscribe
        stream = client.subscribe(TOPIC, replay=Replay.EARLIEST, batch=2)
        received = await _take(stream, 3)
        await stream.aclose()  # type: ignore[attr-defined]
        events = await _decode(client, received)
        assert [(e.op, e.key) for e in events] == [
            (Operation.CREATE, record_id),
            (Operation.UPDATE, record_id),
            (Operation.DELETE, record_id),
        ]
        assert all(e.origin == "sfsync" for e in events)
        assert events[1].after == {
            "Industry": "Energy",
            "LastModifiedDate": events[1].after["LastModifiedDate"],
        }  # type: ignore[index]

        # Resume after the first event, as a restarted sync does from its checkpoint.
        stream = client.subscribe(TOPIC, replay=Replay.CUSTOM, replay_id=received[0].replay_id)
        again = await _take(stream, 2)
        await stream.aclose()  # type: ignore[attr-defined]
        assert [r.replay_id for r in again] == [r.replay_id for r in received[1:]]
    finally:
        await client.aclose()


@pytest.mark.anyio
async def test_a_replay_id_past_retention_is_told_apart(org: Org, server: RunningServer) -> None:
    _changes(org)
    client = _client(org, server)
    try:
        received = await _take(client.subscribe(TOPIC, replay=Replay.EARLIEST), 1)
        org.clock.advance(73 * 3600)  # past the 72-hour retention
        with pytest.raises(ReplayExpiredError) as info:
            await _take(
                client.subscribe(TOPIC, replay=Replay.CUSTOM, replay_id=received[0].replay_id), 1
            )
        assert "replayid" in (info.value.code or "")
    finally:
        await client.aclose()


@pytest.mark.anyio
async def test_a_refused_session_is_told_apart(org: Org, server: RunningServer) -> None:
    client = _client(org, server, token="00D000000000001!not-a-session")
    try:
        with pytest.raises(SessionExpiredError):
            await client.topic(TOPIC)
    finally:
        await client.aclose()
