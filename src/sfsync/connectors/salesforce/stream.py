"""Real-time mode of the Salesforce source: Change Data Capture over the Pub/Sub API or CometD.

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

Transports and falling back
    ``StreamOptions.transports`` lists the streaming APIs in order: the Pub/Sub API (gRPC,
    Avro) and CometD (long-polling HTTPS, JSON; :mod:`.cometd`), which give the same events.
    An object whose channel is refused (Change Data Capture not enabled for it), or whose
    stream failed ``fallback_after`` times in a row, moves to the next transport; after the
    last it is polled every ``fallback_interval`` seconds for ``retry_stream_after`` seconds,
    then the first transport is tried again (by joining: replay ids are per transport).
    Objects with a row filter (``where``) are always polled: a change event carries only the
    changed fields, so the filter cannot be evaluated on it.

``sync --once`` (``SourceContext.follow`` false) reads one polling pass instead of following.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping, Sequence

from sfsync.connectors.salesforce.cdc_decoder import CdcDecoder
from sfsync.connectors.salesforce.cometd import CometdFeed
from sfsync.connectors.salesforce.follower import (
    Follow,
    Follower,
    StreamMetrics,
    StreamOptions,
    cdc_stream,
    topic_for,
)
from sfsync.connectors.salesforce.pubsub import Credentials, PubSubClient
from sfsync.connectors.salesforce.source import SalesforceSource
from sfsync.core.checkpoint import Checkpoint
from sfsync.core.errors import FatalError, RetryableError, SyncError
from sfsync.core.events import Batch, Position
from sfsync.core.schema import EntitySchema
from sfsync.spi.clock import Clock, SystemClock
from sfsync.spi.source import SourceCapabilities, SourceContext

__all__ = [
    "PubSubFactory",
    "StreamMetrics",
    "StreamOptions",
    "StreamingSource",
    "cdc_stream",
    "merge",
    "tenant_from_identity",
    "topic_for",
]

PubSubFactory = Callable[[Callable[[], Credentials]], PubSubClient]
"""Builds the Pub/Sub client; it calls the credentials function before every call."""


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

    def health(self) -> dict[str, str]:
        """Per object: ``streaming (pubsub)``, ``joining (cometd)``, ``polling (fallback)``,
        ``polling (row filter)``; with the gaps healed so far, when there were any."""
        out: dict[str, str] = {}
        for entity, mode in self.metrics.mode.items():
            if mode == "polling":
                why = "row filter" if self.rest.objects[entity].where else "fallback"
                out[entity] = f"polling ({why})"
            else:
                out[entity] = f"{mode} ({self.metrics.transport.get(entity, '?')})"
        healed = self.metrics.gaps_healed + self.metrics.overflows_healed
        if healed:
            out = {k: f"{v}, {healed} gaps healed" for k, v in out.items()}
        return out

    async def snapshot_size(self, entity: str) -> int | None:
        return await self.rest.snapshot_size(entity)

    async def current_positions(self) -> Mapping[str, Position]:
        """The polling cursors of now: the first join after the snapshot reads from them."""
        return await self.rest.current_positions()

    def snapshot(self, entities: Sequence[str], resume: Checkpoint | None) -> AsyncIterator[Batch]:
        return self.rest.snapshot(entities, resume)

    async def lookup(
        self, entity: str, field: str, values: Sequence[str]
    ) -> list[dict[str, object]]:
        """Current records, as the polling source reads them (two-way syncs)."""
        return await self.rest.lookup(entity, field, values)

    async def give_keys(
        self, entity: str, key_field: str, keys: Mapping[str, str]
    ) -> dict[str, SyncError | None]:
        """Keys for keyless records, as the polling source sets them (two-way syncs)."""
        return await self.rest.give_keys(entity, key_field, keys)

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
                    # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a
                    # cancellation that races its timeout, and the runtime stops us by one.
                    async with asyncio.timeout(1.0):
                        item = await queue.get()
                except TimeoutError:
                    if self._clock.monotonic() >= deadline:
                        return
                    continue
                if isinstance(item, BaseException):
                    raise item
                item, pending = await self._gather(item, queue)
                yield item
                if pending is not None:
                    raise pending
                if self._clock.monotonic() >= deadline:
                    return
        finally:
            for task in tasks:
                task.cancel()
            # Their failures no longer matter; a cancellation of ours while waiting goes on.
            if tasks:
                await asyncio.wait(tasks)

    async def _gather(
        self, item: Batch, queue: asyncio.Queue[Batch | BaseException]
    ) -> tuple[Batch, BaseException | None]:
        """``item`` merged with what follows within ``linger`` seconds (up to a batch): each
        batch costs the target a transaction, so a few milliseconds of waiting spare many
        of them, and under load the backlog drains instead of growing."""
        try:
            async with asyncio.timeout(self.options.linger):
                while len(item.events) < self._batch_size:
                    more = await queue.get()
                    if isinstance(more, BaseException):
                        return item, more
                    item = merge(item, more)
        except TimeoutError:
            pass
        return item, None

    async def _guarded(
        self, entity: str, positions: dict[str, Position], out: asyncio.Queue[Batch | BaseException]
    ) -> None:
        """Follow ``entity``; hand any failure that ends it to the reader of ``out``."""
        try:
            await self._follower().run(Follow(entity, positions), out)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await out.put(exc)

    def _follower(self) -> Follower:
        return Follower(
            rest=self.rest,
            options=self.options,
            metrics=self.metrics,
            clock=self._clock,
            batch_size=self._batch_size,
            decoders=self._decoders,
            pubsub=self._client,
            cometd=self._cometd,
        )

    def _cometd(self) -> CometdFeed:
        if self._cometd_feed is None:
            self._cometd_feed = CometdFeed(self.rest.client)
        return self._cometd_feed


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
