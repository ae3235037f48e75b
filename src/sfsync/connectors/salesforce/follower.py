"""Following one object's change stream: subscribe, decode, heal, hand on; fall back.

A :class:`Follower` runs one task per object for the :class:`~.stream.StreamingSource` (whose
docstring tells the whole story: positions, joining, healing, transports, fallback). It hands
its batches to the source's queue in stream order and keeps, in a :class:`Follow`, the positions
it has delivered, so that a reconnect resumes after the last event handed on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType

from sfsync.connectors.salesforce.cdc import Gap, wire_datetime
from sfsync.connectors.salesforce.cdc_decoder import CdcDecoder
from sfsync.connectors.salesforce.cometd import TOKEN_PREFIX as COMETD_PREFIX
from sfsync.connectors.salesforce.cometd import CometdFeed, JsonReceived, replay_of
from sfsync.connectors.salesforce.healing import reread_records, reread_window, window_start
from sfsync.connectors.salesforce.pubsub import (
    Keepalive,
    PubSubClient,
    Received,
    Replay,
    ReplayExpiredError,
    SessionExpiredError,
)
from sfsync.connectors.salesforce.soql import Cursor
from sfsync.connectors.salesforce.source import SalesforceSource, change_stream
from sfsync.core.checkpoint import Checkpoint
from sfsync.core.errors import FatalError, RetryableError, SkippableError
from sfsync.core.events import Batch, ChangeEvent, Operation, Position
from sfsync.spi.clock import Clock

log = logging.getLogger("sfsync.salesforce.stream")

Outbox = asyncio.Queue[Batch | BaseException]
"""Where followers put their batches (and a failure that ends them) for the source."""

LOWEST_ID = "000000000000000AAA"
"""The smallest well-formed Salesforce Id (15 zeros and their checksum): ``Id > LOWEST_ID``
holds for every record, and Salesforce accepts it in a filter (an empty string it refuses)."""

Item = Received | JsonReceived | Keepalive
"""One thing a subscription delivers, whatever its transport."""

Entry = Item | list[Received]
"""What a subscription yields: an item, or the events of one Pub/Sub response together."""


def cdc_stream(sobject: str) -> str:
    """The stream name of ``sobject``'s change events (its replay ids)."""
    return f"cdc:{sobject}"


def topic_for(sobject: str) -> str:
    """The change event channel of an object: ``Account`` -> ``/data/AccountChangeEvent``,
    ``Invoice__c`` -> ``/data/Invoice__ChangeEvent``."""
    if sobject.endswith("__c"):
        return f"/data/{sobject.removesuffix('__c')}__ChangeEvent"
    return f"/data/{sobject}ChangeEvent"


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamOptions:
    """How objects are followed (see the module docstring).

    Attributes:
        fallback_after: consecutive stream failures before an object is polled instead.
        fallback_interval: seconds between polls on the fallback.
        retry_stream_after: seconds on the fallback before streaming is tried again.
        join_settle: seconds to wait for a new ``LATEST`` subscription to answer before
            reading what it would have missed.
        cycle: seconds after which ``changes`` returns, so that the runtime re-reads the
            metadata (schema drift); the next call resumes from the checkpoint.
        credits: events asked of the server at a time (at most 100).
        linger: seconds a batch waits for more events before it goes to the target (fewer,
            bigger transactions; it adds at most this to the latency).
        transports: the streaming APIs to use, in order of preference: ``pubsub`` (the Pub/Sub
            API, gRPC) and ``cometd`` (the Streaming API, long-polling HTTPS). Falling back
            moves to the next; after the last comes polling.
    """

    fallback_after: int = 5
    fallback_interval: float = 10.0
    retry_stream_after: float = 300.0
    join_settle: float = 2.0
    cycle: float = 600.0
    credits: int = 100
    linger: float = 0.01
    transports: tuple[str, ...] = ("pubsub", "cometd")

    def __post_init__(self) -> None:
        unknown = [t for t in self.transports if t not in ("pubsub", "cometd")]
        if unknown or not self.transports:
            raise ValueError(f"transports must be pubsub and/or cometd, not {self.transports}")


@dataclass
class StreamMetrics:
    """What the streams did, for status displays and tests. Counters only grow."""

    events: int = 0
    gaps_healed: int = 0
    overflows_healed: int = 0
    records_reread: int = 0
    undeletes_reread: int = 0
    decode_failures: int = 0
    replay_expired: int = 0
    reconnects: int = 0
    fallbacks: int = 0
    joins: int = 0
    mode: dict[str, str] = field(default_factory=dict)
    transport: dict[str, str] = field(default_factory=dict)


@dataclass
class Follow:
    """One object's place while it is followed: the positions delivered so far."""

    entity: str
    positions: dict[str, Position]
    progress: int = 0
    transport: int = 0  # index into StreamingSource.transports

    @property
    def token(self) -> str | None:
        """The stored replay position (a Pub/Sub replay id in hex, or ``cometd:<id>``)."""
        position = self.positions.get(cdc_stream(self.entity))
        return position.token if position and position.token else None

    def forget_replay(self) -> None:
        self.positions.pop(cdc_stream(self.entity), None)

    def checkpoint(self) -> Checkpoint:
        return Checkpoint(positions=MappingProxyType(dict(self.positions)))

    def watermark(self) -> datetime | None:
        """The commit time up to which changes have been delivered (the polling cursor)."""
        position = self.positions.get(change_stream(self.entity))
        if position is None or not position.token:
            return None
        return datetime.fromisoformat(Cursor.parse(position.token).modstamp)


class Follower:
    """Follows one object (see the module docstring); :meth:`run` until cancelled.

    Args:
        rest: the polling source: joins, healing and the polling fallback read through it.
        options: see :class:`StreamOptions`.
        metrics: shared by every follower of a source.
        clock: the source's clock (backoff, fallback timing).
        batch_size: most events per batch.
        decoders: per object, its payload decoder (replaced when the metadata changes).
        pubsub: the Pub/Sub client (opened by the source).
        cometd: the CometD feed (made on first use).
    """

    def __init__(
        self,
        *,
        rest: SalesforceSource,
        options: StreamOptions,
        metrics: StreamMetrics,
        clock: Clock,
        batch_size: int,
        decoders: dict[str, CdcDecoder],
        pubsub: Callable[[], PubSubClient],
        cometd: Callable[[], CometdFeed],
    ) -> None:
        self.rest = rest
        self.options = options
        self.metrics = metrics
        self._clock = clock
        self._batch_size = batch_size
        self._decoders = decoders
        self._pubsub = pubsub
        self._cometd = cometd

    async def run(self, follow: Follow, out: Outbox) -> None:
        entity = follow.entity
        selection = self.rest.objects[entity]
        if selection.where:
            log.info("%s: has a row filter, so it is polled rather than streamed", entity)
            while True:
                await self._poll_for(follow, out, seconds=None)
        failures = 0
        while True:
            progress = follow.progress
            try:
                await self._stream(follow, out)
            except ReplayExpiredError as exc:
                self.metrics.replay_expired += 1
                log.warning(
                    "%s: the stored replay id is no longer kept by the org (%s); reading "
                    "every change since the last applied commit, then streaming new events",
                    entity,
                    exc,
                )
                follow.forget_replay()
            except FatalError as exc:
                await self._fall_back(
                    follow, out, f"cannot stream over {self._transport(follow)} ({exc})"
                )
                failures = 0
            except RetryableError as exc:
                # Only failures in a row count towards the fallback: a stream that delivered
                # since the last failure was working.
                failures = 1 if follow.progress != progress else failures + 1
                self.metrics.reconnects += 1
                if isinstance(exc, SessionExpiredError):
                    # Any REST call renews an expired session (once, transparently).
                    await self.rest.client.limits()
                if failures >= self.options.fallback_after:
                    await self._fall_back(
                        follow,
                        out,
                        f"the {self._transport(follow)} stream failed {failures} times in a row "
                        f"(last: {exc})",
                    )
                    failures = 0
                else:
                    delay = min(30.0, 0.5 * 2 ** (failures - 1))
                    log.warning(
                        "%s: stream interrupted (%s); reconnecting in %.1fs", entity, exc, delay
                    )
                    await self._clock.sleep(delay)

    def _transport(self, follow: Follow) -> str:
        return self.options.transports[follow.transport]

    async def _fall_back(self, follow: Follow, out: Outbox, reason: str) -> None:
        """The next transport; after the last, polling for a while, then the first again."""
        self.metrics.fallbacks += 1
        follow.forget_replay()  # replay ids of one transport mean nothing to another
        if follow.transport + 1 < len(self.options.transports):
            follow.transport += 1
            log.warning("%s: %s; switching to %s", follow.entity, reason, self._transport(follow))
            return
        log.warning(
            "%s: %s; polling every %.0fs, streaming retried in %.0fs",
            follow.entity,
            reason,
            self.options.fallback_interval,
            self.options.retry_stream_after,
        )
        await self._poll_for(follow, out, seconds=self.options.retry_stream_after)
        follow.transport = 0

    def _subscribe(self, follow: Follow) -> tuple[AsyncIterator[Entry], bool]:
        """The subscription for ``follow``'s transport, and whether it joins (no usable replay
        position: new events only, after a catch-up read)."""
        topic = topic_for(follow.entity)
        token = follow.token
        if self._transport(follow) == "cometd":
            replay = replay_of(token)
            return self._cometd().subscribe(topic, replay), replay is None
        start = None if token is None or token.startswith(COMETD_PREFIX) else bytes.fromhex(token)
        client = self._pubsub()
        ask = self.options.credits
        if start is None:
            return client.subscribe_batches(topic, replay=Replay.LATEST, batch=ask), True
        events = client.subscribe_batches(topic, replay=Replay.CUSTOM, replay_id=start, batch=ask)
        return events, False

    async def _stream(self, follow: Follow, out: Outbox) -> None:
        """Subscribe (from the replay position, or join) and deliver until it fails."""
        entity = follow.entity
        events, joining = self._subscribe(follow)
        self.metrics.transport[entity] = self._transport(follow)
        # Read ahead of delivery: at most four times the credits in events (a Pub/Sub entry
        # is a response of at most ``credits`` events, a CometD entry one event).
        ahead = 4 if self._transport(follow) == "pubsub" else 4 * self.options.credits
        inbox: asyncio.Queue[Entry | BaseException] = asyncio.Queue(maxsize=ahead)
        reader = asyncio.create_task(_pump(events, inbox), name=f"subscription {entity}")
        try:
            first: Entry | BaseException | None = None
            if joining:
                self.metrics.mode[entity] = "joining"
                try:
                    async with asyncio.timeout(self.options.join_settle):
                        first = await inbox.get()
                except TimeoutError:
                    first = None
                if isinstance(first, BaseException):
                    raise first
                # What the stream cannot replay: one polling pass with the overlap sweep.
                await self._poll_once(follow, out, sweep=True)
                self.metrics.joins += 1
                log.info("%s: joined the change stream (%s)", entity, self._transport(follow))
            self.metrics.mode[entity] = "streaming"
            while True:
                entry = first if first is not None else await inbox.get()
                first = None
                items: list[Item | BaseException] = []
                while True:
                    if isinstance(entry, list):
                        items.extend(entry)
                    else:
                        items.append(entry)
                    if len(items) >= self._batch_size or inbox.empty():
                        break
                    entry = inbox.get_nowait()
                await self._deliver(follow, items, out)
        finally:
            reader.cancel()
            await asyncio.wait([reader])

    async def _deliver(
        self,
        follow: Follow,
        items: list[Item | BaseException],
        out: Outbox,
    ) -> None:
        """Decode and heal ``items`` and hand them on as batches, in stream order."""
        entity = follow.entity
        stream = cdc_stream(entity)
        decoder = self._decoders[entity]
        events: list[ChangeEvent] = []
        # The stream's newest position: the batch advances to it after its events (one
        # position, not one per event: the checkpoint keeps only a stream's last).
        reached: Position | None = None
        newest: datetime | None = None
        failure: BaseException | None = None
        for item in items:
            if isinstance(item, BaseException):
                failure = item
                break
            if isinstance(item, Keepalive):
                # Quiet channel: keep the stored replay id fresh, so it never expires.
                if item.latest_replay_id:
                    reached = Position(stream, item.latest_replay_id.hex())
                continue
            position = Position(
                stream, item.token if isinstance(item, JsonReceived) else item.replay_id.hex()
            )
            reached = position
            try:
                if isinstance(item, JsonReceived):
                    decoded = decoder.decode_json(item.payload, position)
                else:
                    decoded = await decoder.decode(item.schema_id, item.payload, position)
            except SkippableError as exc:
                self.metrics.decode_failures += 1
                log.error("%s: %s; re-reading the object's recent changes instead", entity, exc)
                since = follow.watermark() or self._clock.now()
                await self._flush(follow, events, reached, newest, out)
                events, newest = [], None
                await self._reread_window(follow, since, position, out)
                continue
            if isinstance(decoded, Gap):
                healed = await self._heal(follow, decoded, out)
                events.extend(healed)
                newest = max(newest, decoded.commit_time) if newest else decoded.commit_time
                continue
            for event in decoded:
                newest = max(newest, event.committed_at) if newest else event.committed_at
                if event.op is Operation.UNDELETE:
                    self.metrics.undeletes_reread += 1
                    events.extend(
                        await reread_records(
                            self.rest,
                            entity,
                            [event.key],
                            position,
                            event.committed_at,
                            op=Operation.UNDELETE,
                        )
                    )
                else:
                    events.append(event)
        self.metrics.events += len(events)
        await self._flush(follow, events, reached, newest, out)
        if failure is not None:
            raise failure

    async def _heal(self, follow: Follow, gap: Gap, out: Outbox) -> list[ChangeEvent]:
        entity = follow.entity
        if gap.overflow or not gap.record_ids:
            self.metrics.overflows_healed += 1
            since = window_start(gap.commit_time, self.rest.overlap)
            log.warning(
                "%s: %s at %s: Salesforce did not describe a large transaction; re-reading "
                "the records changed since %s",
                entity,
                gap.change_type,
                gap.commit_time.isoformat(),
                since.isoformat(),
            )
            await self._reread_window(follow, since, gap.position, out)
            return []
        self.metrics.gaps_healed += 1
        self.metrics.records_reread += len(gap.record_ids)
        log.warning(
            "%s: %s for %d record(s) at %s: reading them again",
            entity,
            gap.change_type,
            len(gap.record_ids),
            gap.commit_time.isoformat(),
        )
        return await reread_records(
            self.rest, entity, gap.record_ids, gap.position, gap.commit_time
        )

    async def _reread_window(
        self,
        follow: Follow,
        since: datetime,
        position: Position,
        out: Outbox,
    ) -> None:
        async for events in reread_window(
            self.rest, follow.entity, since, position, batch_size=self._batch_size
        ):
            self.metrics.records_reread += len(events)
            await self._put(follow, Batch.of(events), out)

    async def _flush(
        self,
        follow: Follow,
        events: list[ChangeEvent],
        reached: Position | None,
        newest: datetime | None,
        out: Outbox,
    ) -> None:
        if not events and reached is None:
            return
        moves = [] if reached is None else [reached]
        watermark = follow.watermark()
        if newest is not None and (watermark is None or newest > watermark):
            # The polling cursor follows the stream: a resync starts from here. The lowest
            # valid Id includes every record of that millisecond.
            stamp = wire_datetime(int(newest.timestamp() * 1000))
            moves.append(Position(change_stream(follow.entity), Cursor(stamp, LOWEST_ID).token()))
        await self._put(follow, Batch.of(events, advances=moves), out)

    async def _put(self, follow: Follow, batch: Batch, out: Outbox) -> None:
        for event in batch.events:
            follow.positions[event.position.stream] = event.position
        for position in batch.advances:
            follow.positions[position.stream] = position
        follow.progress += 1
        await out.put(batch)

    async def _poll_once(self, follow: Follow, out: Outbox, *, sweep: bool | None) -> None:
        # One checkpoint for the whole pass, as the polling source reads it.
        resume = follow.checkpoint()
        async for batch in self.rest.changes_of(follow.entity, resume, sweep=sweep):
            await self._put(follow, batch, out)

    async def _poll_for(self, follow: Follow, out: Outbox, *, seconds: float | None) -> None:
        """Poll ``follow``'s object every ``fallback_interval`` for ``seconds`` (or for ever)."""
        self.metrics.mode[follow.entity] = "polling"
        until = None if seconds is None else self._clock.monotonic() + seconds
        while True:
            try:
                await self._poll_once(follow, out, sweep=None)
            except RetryableError as exc:
                log.warning("%s: poll failed (%s); trying again", follow.entity, exc)
            if until is not None and self._clock.monotonic() >= until:
                return
            await self._clock.sleep(self.options.fallback_interval)


async def _pump(events: AsyncIterator[Entry], inbox: asyncio.Queue[Entry | BaseException]) -> None:
    """Move a subscription's items into ``inbox`` (its bound is the flow control)."""
    try:
        async for item in events:
            await inbox.put(item)
        await inbox.put(RetryableError("the server ended the subscription", code="STREAM_ENDED"))
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        await inbox.put(exc)
    finally:
        close = getattr(events, "aclose", None)
        if close is not None:
            await close()
