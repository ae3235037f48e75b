"""Real-time mode of the Salesforce source: Change Data Capture over the Pub/Sub API.

:class:`StreamingSource` reads snapshots exactly as the polling source does (it wraps one), and
follows changes by subscribing to each object's change event channel
(``/data/AccountChangeEvent``, ``/data/Invoice__ChangeEvent``). Each object is followed by its
own task; their batches reach the runtime through one bounded queue, so a slow target slows
the streams (flow control all the way to the server) instead of filling memory.

Positions
    ``cdc:<Object>`` holds the replay id of the last event applied (hex). ``sf:<Object>`` is
    the polling cursor ``(SystemModstamp, Id)``, which streaming keeps moving with the commit
    time of the events it applies: it is where a resynchronisation starts when the replay id
    can no longer be used. Both are checkpointed by the runtime only after the target
    committed the events before them.

Joining the stream (no replay id yet: right after the snapshot, or after a resync)
    Subscribe from ``LATEST`` first; once the subscription answered (or ``join_settle``
    seconds passed), read the object's changes since the polling cursor (with the overlap
    sweep), then apply the stream. Everything committed before the subscription is in that
    read, everything after it is in the stream; what is in both is absorbed by the sink's
    version guard. The snapshot's own hand-off works the same way: the runtime takes the
    polling cursors before the snapshot starts.

Healing (each counted in :class:`StreamMetrics` and logged)
    * ``GAP_*`` events: the named records are read again by Id (:mod:`.healing`);
    * ``GAP_OVERFLOW``: the object's records changed since ``overlap`` seconds before that
      commit are read again;
    * a replay id older than the org keeps (a sync down for days): the object is joined again,
      which reads everything changed since the last applied commit, then streams from LATEST;
    * ``UNDELETE`` events carry no values: the record is read again;
    * an undecodable payload: handled like an overflow at the stream's watermark.
    Updates carry only their changed fields (``partial``): sinks update those and nothing else.

Falling back to polling
    An object whose channel does not exist (Change Data Capture not enabled for it), or whose
    stream failed ``fallback_after`` times in a row, is polled every ``fallback_interval``
    seconds for ``retry_stream_after`` seconds, then streaming is tried again (by joining).
    Objects with a row filter (``where``) are always polled: a change event carries only the
    changed fields, so the filter cannot be evaluated on it.

``sync --once`` (``SourceContext.follow`` false) reads one polling pass instead of following.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType

from sfsync.connectors.salesforce.cdc import Gap, wire_datetime
from sfsync.connectors.salesforce.cdc_decoder import CdcDecoder
from sfsync.connectors.salesforce.cometd import TOKEN_PREFIX as COMETD_PREFIX
from sfsync.connectors.salesforce.cometd import CometdFeed, JsonReceived, replay_of
from sfsync.connectors.salesforce.healing import reread_records, reread_window, window_start
from sfsync.connectors.salesforce.pubsub import (
    Credentials,
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
from sfsync.core.schema import EntitySchema
from sfsync.spi.clock import Clock, SystemClock
from sfsync.spi.source import SourceCapabilities, SourceContext

log = logging.getLogger("sfsync.salesforce.stream")

LOWEST_ID = "000000000000000AAA"
"""The smallest well-formed Salesforce Id (15 zeros and their checksum): ``Id > LOWEST_ID``
holds for every record, and Salesforce accepts it in a filter (an empty string it refuses)."""

Item = Received | JsonReceived | Keepalive
"""What a subscription yields, whatever its transport."""

PubSubFactory = Callable[[Callable[[], Credentials]], PubSubClient]
"""Builds the Pub/Sub client; it calls the credentials function before every call."""


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
class _Follow:
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


def tenant_from_identity(identity_url: str | None) -> str | None:
    """The org id in an identity URL (``.../id/<org id>/<user id>``), if it has one."""
    if not identity_url:
        return None
    parts = identity_url.rstrip("/").split("/")
    if len(parts) >= 2 and parts[-2].startswith("00D"):
        return parts[-2]
    return None


class StreamingSource:
    """A :class:`~sfsync.spi.source.Source` that follows Change Data Capture in real time.

    Args:
        rest: the polling source over the same client and objects: snapshots, joins,
            healing and the fallback go through it.
        pubsub: builds the Pub/Sub client (see :data:`PubSubFactory`).
        options: see :class:`StreamOptions`.
    """

    capabilities = SourceCapabilities(snapshot=True, changes=True, realtime=True, deletes=True)

    def __init__(
        self, rest: SalesforceSource, pubsub: PubSubFactory, options: StreamOptions | None = None
    ) -> None:
        self.rest = rest
        self.options = options or StreamOptions()
        self.metrics = StreamMetrics()
        self._factory = pubsub
        self._pubsub: PubSubClient | None = None
        self._decoders: dict[str, CdcDecoder] = {}
        self._clock: Clock = SystemClock()
        self._follow = True
        self._batch_size = 2000
        self._tenant = ""
        self._cometd_feed: CometdFeed | None = None

    # -- lifecycle, metadata, snapshot: as the polling source ---------------------------

    async def open(self, ctx: SourceContext) -> None:
        self._clock = ctx.clock
        self._follow = ctx.follow
        self._batch_size = ctx.batch_size
        await self.rest.open(ctx)
        session = await self.rest.client.open()
        tenant = tenant_from_identity(session.identity_url)
        if tenant is None:
            # A session given as a bare token: ask the org who it is (the Pub/Sub API wants
            # the org id with every call).
            info = await self.rest.client.get_json(
                "/services/oauth2/userinfo", what="read the org id (userinfo)"
            )
            tenant = str(info.get("organization_id") or "")
            if not tenant:
                raise FatalError(
                    "the org did not say its id (userinfo has no organization_id)",
                    hint="log in with an OAuth flow, whose identity URL names the org",
                )
        self._tenant = tenant
        if self._pubsub is None:
            self._pubsub = self._factory(self._credentials)

    async def aclose(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        try:
            if pubsub is not None:
                await pubsub.aclose()
        finally:
            await self.rest.aclose()

    def _credentials(self) -> Credentials:
        session = self.rest.client.auth.session
        if session is None:
            raise RetryableError("not logged in yet", code="NO_SESSION")
        return Credentials(session.access_token, session.instance_url, self._tenant)

    async def describe(self, entities: Sequence[str]) -> dict[str, EntitySchema]:
        schemas = await self.rest.describe(entities)
        for name, schema in schemas.items():
            current = self._decoders.get(name)
            if current is None or current.schema != schema:
                self._decoders[name] = CdcDecoder(schema, self._schema_text)
        return schemas

    async def _schema_text(self, schema_id: str) -> str:
        return await self._client().schema(schema_id)

    def _client(self) -> PubSubClient:
        if self._pubsub is None:
            raise FatalError("the streaming source is used before open()")
        return self._pubsub

    async def snapshot_size(self, entity: str) -> int | None:
        return await self.rest.snapshot_size(entity)

    async def current_positions(self) -> Mapping[str, Position]:
        """The polling cursors of now: the first join after the snapshot reads from them."""
        return await self.rest.current_positions()

    def snapshot(self, entities: Sequence[str], resume: Checkpoint | None) -> AsyncIterator[Batch]:
        return self.rest.snapshot(entities, resume)

    # -- changes --------------------------------------------------------------------------

    async def changes(self, resume: Checkpoint | None) -> AsyncIterator[Batch]:
        if not self._follow:
            async for batch in self.rest.changes(resume):
                yield batch
            return
        queue: asyncio.Queue[Batch | BaseException] = asyncio.Queue(maxsize=4)
        known = dict(resume.positions) if resume else {}
        tasks = [
            asyncio.create_task(self._guarded(entity, dict(known), queue), name=f"follow {entity}")
            for entity in self.rest.objects
        ]
        deadline = self._clock.monotonic() + self.options.cycle
        try:
            while True:
                try:
                    item = await asyncio.wait_for(queue.get(), timeout=1.0)
                except TimeoutError:
                    if self._clock.monotonic() >= deadline:
                        return
                    continue
                if isinstance(item, BaseException):
                    raise item
                pending: BaseException | None = None
                while len(item.events) < self._batch_size and not queue.empty():
                    # Under load, hand the target bigger batches: fewer transactions, so
                    # the backlog drains instead of growing.
                    more = queue.get_nowait()
                    if isinstance(more, BaseException):
                        pending = more
                        break
                    item = merge(item, more)
                yield item
                if pending is not None:
                    raise pending
                if self._clock.monotonic() >= deadline:
                    return
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _guarded(
        self, entity: str, positions: dict[str, Position], out: asyncio.Queue[Batch | BaseException]
    ) -> None:
        """Follow ``entity``; hand any failure that ends it to the reader of ``out``."""
        try:
            await self._follow_entity(_Follow(entity, positions), out)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await out.put(exc)

    async def _follow_entity(
        self, follow: _Follow, out: asyncio.Queue[Batch | BaseException]
    ) -> None:
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

    def _transport(self, follow: _Follow) -> str:
        return self.options.transports[follow.transport]

    async def _fall_back(
        self, follow: _Follow, out: asyncio.Queue[Batch | BaseException], reason: str
    ) -> None:
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

    def _subscribe(self, follow: _Follow) -> tuple[AsyncIterator[Item], bool]:
        """The subscription for ``follow``'s transport, and whether it joins (no usable replay
        position: new events only, after a catch-up read)."""
        topic = topic_for(follow.entity)
        token = follow.token
        if self._transport(follow) == "cometd":
            replay = replay_of(token)
            return self._cometd().subscribe(topic, replay), replay is None
        start = None if token is None or token.startswith(COMETD_PREFIX) else bytes.fromhex(token)
        client = self._client()
        if start is None:
            return client.subscribe(topic, replay=Replay.LATEST, batch=self.options.credits), True
        events = client.subscribe(
            topic, replay=Replay.CUSTOM, replay_id=start, batch=self.options.credits
        )
        return events, False

    def _cometd(self) -> CometdFeed:
        if self._cometd_feed is None:
            self._cometd_feed = CometdFeed(self.rest.client)
        return self._cometd_feed

    async def _stream(self, follow: _Follow, out: asyncio.Queue[Batch | BaseException]) -> None:
        """Subscribe (from the replay position, or join) and deliver until it fails."""
        entity = follow.entity
        events, joining = self._subscribe(follow)
        self.metrics.transport[entity] = self._transport(follow)
        inbox: asyncio.Queue[Item | BaseException] = asyncio.Queue(maxsize=4 * self.options.credits)
        reader = asyncio.create_task(_pump(events, inbox), name=f"subscription {entity}")
        try:
            first: Item | BaseException | None = None
            if joining:
                self.metrics.mode[entity] = "joining"
                try:
                    first = await asyncio.wait_for(inbox.get(), timeout=self.options.join_settle)
                except TimeoutError:
                    first = None
                if isinstance(first, BaseException):
                    raise first
                await self._catch_up(follow, out)
                self.metrics.joins += 1
                log.info("%s: joined the change stream (%s)", entity, self._transport(follow))
            self.metrics.mode[entity] = "streaming"
            while True:
                items = [first] if first is not None else [await inbox.get()]
                first = None
                while len(items) < self._batch_size and not inbox.empty():
                    items.append(inbox.get_nowait())
                await self._deliver(follow, items, out)
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)

    async def _deliver(
        self,
        follow: _Follow,
        items: list[Item | BaseException],
        out: asyncio.Queue[Batch | BaseException],
    ) -> None:
        """Decode and heal ``items`` and hand them on as batches, in stream order."""
        entity = follow.entity
        stream = cdc_stream(entity)
        decoder = self._decoders[entity]
        events: list[ChangeEvent] = []
        advances: list[Position] = []
        newest: datetime | None = None
        failure: BaseException | None = None
        for item in items:
            if isinstance(item, BaseException):
                failure = item
                break
            if isinstance(item, Keepalive):
                # Quiet channel: keep the stored replay id fresh, so it never expires.
                if item.latest_replay_id:
                    advances.append(Position(stream, item.latest_replay_id.hex()))
                continue
            position = Position(
                stream, item.token if isinstance(item, JsonReceived) else item.replay_id.hex()
            )
            advances.append(position)
            try:
                if isinstance(item, JsonReceived):
                    decoded = decoder.decode_json(item.payload, position)
                else:
                    decoded = await decoder.decode(item.schema_id, item.payload, position)
            except SkippableError as exc:
                self.metrics.decode_failures += 1
                log.error("%s: %s; re-reading the object's recent changes instead", entity, exc)
                since = follow.watermark() or self._clock.now()
                await self._flush(follow, events, advances, newest, out)
                events, advances, newest = [], [position], None
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
        await self._flush(follow, events, advances, newest, out)
        if failure is not None:
            raise failure

    async def _heal(
        self, follow: _Follow, gap: Gap, out: asyncio.Queue[Batch | BaseException]
    ) -> list[ChangeEvent]:
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
        follow: _Follow,
        since: datetime,
        position: Position,
        out: asyncio.Queue[Batch | BaseException],
    ) -> None:
        async for events in reread_window(
            self.rest, follow.entity, since, position, batch_size=self._batch_size
        ):
            self.metrics.records_reread += len(events)
            await self._put(follow, Batch.of(events), out)

    async def _flush(
        self,
        follow: _Follow,
        events: list[ChangeEvent],
        advances: list[Position],
        newest: datetime | None,
        out: asyncio.Queue[Batch | BaseException],
    ) -> None:
        if not events and not advances:
            return
        moves = list(advances)
        watermark = follow.watermark()
        if newest is not None and (watermark is None or newest > watermark):
            # The polling cursor follows the stream: a resync starts from here. The lowest
            # valid Id includes every record of that millisecond.
            stamp = wire_datetime(int(newest.timestamp() * 1000))
            moves.append(Position(change_stream(follow.entity), Cursor(stamp, LOWEST_ID).token()))
        await self._put(follow, Batch.of(events, advances=moves), out)

    async def _put(
        self, follow: _Follow, batch: Batch, out: asyncio.Queue[Batch | BaseException]
    ) -> None:
        for event in batch.events:
            follow.positions[event.position.stream] = event.position
        for position in batch.advances:
            follow.positions[position.stream] = position
        follow.progress += 1
        await out.put(batch)

    async def _catch_up(self, follow: _Follow, out: asyncio.Queue[Batch | BaseException]) -> None:
        """One polling pass with the overlap sweep: what the stream cannot replay."""
        await self._poll_once(follow, out, sweep=True)

    async def _poll_once(
        self, follow: _Follow, out: asyncio.Queue[Batch | BaseException], *, sweep: bool
    ) -> None:
        entity = follow.entity
        async for batch in self.rest._poll(entity, follow.checkpoint(), sweep=sweep):
            await self._put(follow, batch, out)
        if sweep:
            purged = await self.rest._purged(entity, follow.checkpoint())
            if purged is not None:
                await self._put(follow, purged, out)

    async def _poll_for(
        self, follow: _Follow, out: asyncio.Queue[Batch | BaseException], *, seconds: float | None
    ) -> None:
        """Poll ``follow``'s object every ``fallback_interval`` for ``seconds`` (or for ever)."""
        self.metrics.mode[follow.entity] = "polling"
        until = None if seconds is None else self._clock.monotonic() + seconds
        while True:
            try:
                await self._poll_once(follow, out, sweep=self.rest._sweep_due(follow.entity))
            except RetryableError as exc:
                log.warning("%s: poll failed (%s); trying again", follow.entity, exc)
            if until is not None and self._clock.monotonic() >= until:
                return
            await self._clock.sleep(self.options.fallback_interval)


def merge(first: Batch, second: Batch) -> Batch:
    """One batch with the effect of applying ``first`` then ``second``.

    Positions a batch advances are tracked after its events, so ``first``'s advances are
    kept only for streams ``second`` does not move again (a stream's last position wins).
    """
    later = {e.position.stream for e in second.events} | {p.stream for p in second.advances}
    return Batch.of(
        (*first.events, *second.events),
        completes=first.completes | second.completes,
        advances=(*(p for p in first.advances if p.stream not in later), *second.advances),
    )


async def _pump(events: AsyncIterator[Item], inbox: asyncio.Queue[Item | BaseException]) -> None:
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
