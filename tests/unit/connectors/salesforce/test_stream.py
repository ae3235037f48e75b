"""The real-time source's decisions, with a scripted Pub/Sub client injected at its seam and the
emulator in-process for the REST side (polls, joins): fallback, rejoin after an expired replay
id, the merge of queued batches, channel names."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from types import MappingProxyType

import httpx
import pytest

from sfsync.connectors.salesforce.auth import StaticSession
from sfsync.connectors.salesforce.client import SalesforceClient
from sfsync.connectors.salesforce.pubsub import (
    Credentials,
    Keepalive,
    Received,
    Replay,
    ReplayExpiredError,
)
from sfsync.connectors.salesforce.source import ObjectSelection, SalesforceSource
from sfsync.connectors.salesforce.stream import (
    StreamingSource,
    StreamOptions,
    cdc_stream,
    merge,
    tenant_from_identity,
    topic_for,
)
from sfsync.core.checkpoint import Checkpoint
from sfsync.core.errors import FatalError, RetryableError
from sfsync.core.events import Batch, ChangeEvent, Operation, Position
from sfsync.emulator.app import build_app
from sfsync.emulator.clock import OrgClock
from sfsync.emulator.org import Org
from sfsync.spi.source import SourceContext
from sfsync.testing import FakeClock

TOKEN = "00D000000000001!stream-unit-token"


class ScriptedPubSub:
    """Stands in for :class:`PubSubClient`: each ``subscribe_batches`` (what the follower
    calls) runs the next script step."""

    def __init__(self, steps: list[BaseException | None]) -> None:
        self.steps = steps
        self.calls: list[tuple[str, Replay, bytes | None]] = []
        self.credentials: Credentials | None = None

    async def subscribe_batches(
        self,
        topic: str,
        *,
        replay: Replay = Replay.LATEST,
        replay_id: bytes | None = None,
        batch: int = 100,
    ) -> AsyncIterator[list[Received] | Keepalive]:
        self.calls.append((topic, replay, replay_id))
        step = self.steps.pop(0) if self.steps else RetryableError("script ended")
        if step is not None:
            raise step
        await asyncio.Event().wait()  # a quiet, healthy subscription
        yield Keepalive(b"")  # pragma: no cover - never reached

    async def schema(self, schema_id: str) -> str:  # pragma: no cover - no events scripted
        raise AssertionError("no schema expected")

    async def aclose(self) -> None:
        pass


@pytest.fixture
def org() -> Iterator[Org]:
    org = Org.create(access_token=TOKEN, clock=OrgClock(frozen_at=datetime(2026, 3, 1, tzinfo=UTC)))
    yield org
    org.close()


def _source(
    org: Org, pubsub: ScriptedPubSub, **options: object
) -> tuple[StreamingSource, FakeClock]:
    clock = FakeClock(org.clock.now())
    client = SalesforceClient(
        grant=StaticSession(access_token=TOKEN, instance_url="http://emulator.test"),
        clock=clock,
        transport=httpx.ASGITransport(app=build_app(org)),
    )
    rest = SalesforceSource(
        client, [ObjectSelection(name="Account", fields=("Id", "Name", "SystemModstamp"))]
    )

    def factory(credentials: Callable[[], Credentials]) -> ScriptedPubSub:
        pubsub.credentials = credentials()
        return pubsub

    # Pub/Sub only: CometD (the second transport) is tested over real sockets.
    settings = {"join_settle": 0.01, "cycle": 1e9, "transports": ("pubsub",), **options}
    source = StreamingSource(rest, factory, StreamOptions(**settings))  # type: ignore[arg-type]
    return source, clock


async def _first_batch(source: StreamingSource, resume: Checkpoint) -> Batch:
    stream = source.changes(resume)
    try:
        return await asyncio.wait_for(anext(stream), timeout=10)
    finally:
        await stream.aclose()  # type: ignore[attr-defined]


async def _started(source: StreamingSource, clock: FakeClock, org: Org) -> Checkpoint:
    await source.open(SourceContext(sync_name="t", clock=clock))
    await source.describe(["Account"])
    positions = await source.current_positions()
    org.clock.advance(5)
    clock.advance(5)
    return Checkpoint(positions=MappingProxyType(dict(positions)))


@pytest.mark.anyio
async def test_repeated_stream_failures_fall_back_to_polling(org: Org) -> None:
    record = org.store.insert("Account", {"Name": "Before"})
    pubsub = ScriptedPubSub([RetryableError("unavailable")] * 3)
    source, clock = _source(org, pubsub, fallback_after=3, fallback_interval=5)
    try:
        resume = await _started(source, clock, org)
        org.store.update("Account", record, {"Name": "Changed while the stream is down"})
        batch = await _first_batch(source, resume)
    finally:
        await source.aclose()
    assert [(e.key, e.after["Name"]) for e in batch.events if e.after] == [
        (record, "Changed while the stream is down")
    ]
    assert all(e.position.stream == "sf:Account" for e in batch.events)
    assert source.metrics.reconnects == 3
    assert source.metrics.fallbacks == 1
    assert source.metrics.mode == {"Account": "polling"}
    assert clock.sleeps[:2] == [0.5, 1.0]  # backoff between the first failures
    # The session's org id reached the Pub/Sub calls (asked of userinfo: a bare token).
    assert pubsub.credentials is not None
    assert pubsub.credentials.tenant_id == org.org_id


@pytest.mark.anyio
async def test_an_object_without_a_channel_is_polled_at_once(org: Org) -> None:
    record = org.store.insert("Account", {"Name": "Before"})
    pubsub = ScriptedPubSub([FatalError("topic not found")])
    source, clock = _source(org, pubsub)
    try:
        resume = await _started(source, clock, org)
        org.store.update("Account", record, {"Name": "Polled"})
        batch = await _first_batch(source, resume)
    finally:
        await source.aclose()
    assert [e.key for e in batch.events] == [record]
    assert source.metrics.reconnects == 0
    assert source.metrics.fallbacks == 1


@pytest.mark.anyio
async def test_an_expired_replay_id_rejoins_from_latest_after_reading_what_was_missed(
    org: Org,
) -> None:
    record = org.store.insert("Account", {"Name": "Before"})
    pubsub = ScriptedPubSub([ReplayExpiredError("too old"), None])
    source, clock = _source(org, pubsub)
    try:
        resume = await _started(source, clock, org)
        stored = Position(cdc_stream("Account"), b"\x00\x07".hex())
        resume = Checkpoint(positions=MappingProxyType({**resume.positions, stored.stream: stored}))
        org.store.update("Account", record, {"Name": "Missed while down for days"})
        batch = await _first_batch(source, resume)
    finally:
        await source.aclose()
    assert [e.after["Name"] for e in batch.events if e.after] == ["Missed while down for days"]
    assert [(replay, replay_id) for _, replay, replay_id in pubsub.calls] == [
        (Replay.CUSTOM, b"\x00\x07"),
        (Replay.LATEST, None),
    ]
    assert source.metrics.replay_expired == 1
    assert source.metrics.joins == 1
    assert source.metrics.mode == {"Account": "streaming"}


def _event(key: str, stream: str, token: str) -> ChangeEvent:
    return ChangeEvent(
        entity="Account",
        key=key,
        op=Operation.UPDATE,
        after={"Name": key},
        position=Position(stream, token),
        committed_at=datetime(2026, 3, 1, tzinfo=UTC),
    )


def test_merged_batches_keep_each_streams_last_position_last() -> None:
    first = Batch.of(
        [_event("a", "cdc:Account", "01")],
        advances=[Position("cdc:Account", "02"), Position("sf:Account", "t1")],
    )
    second = Batch.of([_event("b", "cdc:Account", "03")], advances=[Position("cdc:Account", "03")])
    merged = merge(first, second)
    assert [e.key for e in merged.events] == ["a", "b"]
    # first's cdc advance would move the stream back behind "03": dropped; sf is kept.
    assert merged.advances == (Position("sf:Account", "t1"), Position("cdc:Account", "03"))


def test_channel_names_and_org_ids() -> None:
    assert topic_for("Account") == "/data/AccountChangeEvent"
    assert topic_for("Invoice__c") == "/data/Invoice__ChangeEvent"
    identity = "https://login.salesforce.com/id/00D5g000004ABCDEAA/0055g00000AbCdEAAZ"
    assert tenant_from_identity(identity) == "00D5g000004ABCDEAA"
    assert tenant_from_identity(None) is None
    assert tenant_from_identity("https://example.com/other") is None
