"""A two-way sync: one Salesforce object and one external table kept in step both ways.

The pure decisions are in :mod:`sfsync.core.merge` (three-way resolution), :mod:`sfsync.core.
matching` (first run) and :mod:`sfsync.core.review` (parked conflicts); this module drives them:

First run (no checkpoint): take both sides' change positions *first* (changes made while the
first run works are read afterwards), read every record of both sides, pair them by the key and
then by ``match_on`` (a Salesforce record without a key value that pairs with a row gets the
row's key), report ambiguous groups and leave them alone, then reconcile every key: paired
records are resolved field by field (no shadow yet: every differing field is a conflict settled
by policy), records on one side only are created on the other.

Each pass afterwards: read the changes of both sides since the checkpoint. Changes whose origin
is our own writer are dropped at once (Salesforce's ``changeOrigin`` carries our client id; the
database change log carries our origin). The rest name records; each is reconciled from both
sides' *current* state against its shadow (:class:`~sfsync.runtime.reconcile.Reconciler`), so
an echo the source could not recognise compares equal to the shadow and stops there. Then the
review queue: conflicts a person resolved are applied if both sides still hold the versions
that were parked, or decided anew from the same base if either changed since. The checkpoint
(both sides' positions, one record in the state store) is saved after the pass's writes and
shadows: a crash repeats a pass, and a repeated pass finds the records already agreeing.

Polling (``mode: polling``) runs a pass every ``interval``. Real time (``realtime``) follows
both sides' change streams at once (:mod:`sfsync.runtime.feeds`): what arrives within
``linger`` of the first change is reconciled as one pass, and the review queue is read every
``interval``. A database row is written only if it still holds what the pass read (checked
with the row locked); a Salesforce record edited between the pass's read and its write is
overwritten in the fields written (upserts cannot be conditional), the one window left.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from functools import partial
from types import MappingProxyType
from typing import TypeVar

import anyio

from sfsync.core.acks import AckTracker
from sfsync.core.checkpoint import Checkpoint, CheckpointStore, SnapshotProgress, SnapshotStatus
from sfsync.core.conflicts import Decision, Values
from sfsync.core.deadletter import DeadLetterStore
from sfsync.core.errors import FatalError, RetryableError, SyncError
from sfsync.core.events import Batch, ChangeEvent
from sfsync.core.matching import plan_first_run
from sfsync.core.merge import resolve
from sfsync.core.review import ConflictQueue, ParkedConflict, ShadowStore
from sfsync.core.schema import EntitySchema
from sfsync.core.state import Trigger
from sfsync.core.values import canonical_record
from sfsync.runtime.executor import write_with_retry
from sfsync.runtime.feeds import follow_changes
from sfsync.runtime.pipeline import RunMode
from sfsync.runtime.reconcile import Reconciler, Tally, TwoWayObject
from sfsync.runtime.reporting import Reporting, StatusListener
from sfsync.runtime.sides import (
    ExternalSide,
    SalesforceSide,
    TwoWayOptions,
    changed,
    fate,
    values_equal,
)
from sfsync.runtime.status import PipelineStatus
from sfsync.spi.clock import Clock
from sfsync.spi.sink import Outcome, Sink, SinkContext
from sfsync.spi.source import OutcomeListener, Source, SourceContext

log = logging.getLogger("sfsync.twoway")

RECONCILE_CHUNK = 2000
"""Records reconciled at a time (read again by key from both sides, decided, written): what a
pass or the first run holds in memory is bounded by it, however many records changed."""
T = TypeVar("T")


class TwoWaySync(Reporting):
    """Runs one two-way sync. Build it, ``await run()``; ``request_stop()`` ends it."""

    def __init__(
        self,
        *,
        options: TwoWayOptions,
        salesforce: SalesforceSide,
        salesforce_sink: Sink,
        external: ExternalSide,
        shadows: ShadowStore,
        conflicts: ConflictQueue,
        checkpoints: CheckpointStore,
        dead_letters: DeadLetterStore,
        clock: Clock,
        on_status: StatusListener | None = None,
    ) -> None:
        super().__init__(
            name=options.name,
            clock=clock,
            retry=options.retry,
            seed=options.seed,
            on_status=on_status,
            log=log,
        )
        self.options = options
        self.salesforce = salesforce
        self.salesforce_sink = salesforce_sink
        self.external = external
        self.shadows = shadows
        self.conflicts = conflicts
        self.checkpoints = checkpoints
        self.dead_letters = dead_letters
        self._objects = {o.entity: o for o in options.objects}
        self.reconciler = Reconciler(
            sync=options.name,
            salesforce=salesforce,
            external=external,
            shadows=shadows,
            conflicts=conflicts,
            clock=clock,
            origin=options.origin,
            write_salesforce=self._write_salesforce,
        )
        self._resolved_at = float("-inf")
        self.echoes = 0
        """Changes dropped because their origin is our own writer (for tests and status)."""

    # -- lifecycle ------------------------------------------------------------------------

    async def run(self) -> PipelineStatus:
        """Run until done (``ONCE``), stopped, or failed; the final status (never raises a
        :class:`SyncError`: it ends the run as ``FAILED`` with the error in ``last_error``)."""
        opts = self.options
        try:
            follow = opts.realtime and opts.mode is RunMode.CONTINUOUS
            ctx = SourceContext(sync_name=opts.name, clock=self.clock, follow=follow)
            # The database first: a missing table or capture is a configuration problem,
            # said at once rather than after retrying an unreachable org.
            await self._retrying(lambda: self.external.open(ctx))
            await self._retrying(lambda: self.salesforce.open(ctx))
            await self._retrying(
                lambda: self.salesforce_sink.open(
                    SinkContext(sync_name=opts.name, clock=self.clock)
                )
            )
            await self._prepare()
            checkpoint = await self.checkpoints.load(opts.name)
            if checkpoint is None or checkpoint.snapshot.status is not SnapshotStatus.COMPLETE:
                self._fire(Trigger.START_FRESH)
                checkpoint = await self._first_run(checkpoint)
                self._fire(Trigger.SNAPSHOT_DONE)
            else:
                self._fire(Trigger.START_RESUMED)
            if opts.realtime and opts.mode is RunMode.CONTINUOUS:
                await self._follow(checkpoint)
            while not self._stop.is_set() and not opts.realtime:
                with anyio.CancelScope(shield=True):
                    checkpoint = await self._pass(checkpoint)
                if opts.mode is RunMode.ONCE or self._stop.is_set():
                    break
                await self._pause(opts.interval)
            if opts.realtime and opts.mode is RunMode.ONCE:
                with anyio.CancelScope(shield=True):
                    await self._pass(checkpoint)
            self._fire(Trigger.STOP)
            self._fire(Trigger.DRAINED)
        except SyncError as exc:
            self._fail(exc)
        finally:
            with anyio.CancelScope(shield=True):
                for closer in (self.salesforce.aclose, self.external.aclose,
                               self.salesforce_sink.aclose):  # fmt: skip
                    try:
                        await closer()
                    except Exception as exc:  # closing must not hide the cause
                        log.warning("%s: error while closing: %s", opts.name, exc)
        return self._status

    async def _prepare(self) -> None:
        entities = self.options.entities
        sf = await self._retrying(lambda: self.salesforce.describe(entities))
        ext = await self._retrying(lambda: self.external.describe(entities))
        for obj in self.options.objects:
            sf_schema: EntitySchema = sf[obj.entity]
            ext_schema: EntitySchema = ext[obj.entity]
            kinds = {f.name: f.kind for f in ext_schema}
            kinds.update({f.name: f.kind for f in sf_schema})  # Salesforce's types decide
            fields = tuple(f.name for f in ext_schema)
            missing = [f for f in fields if f.lower() not in {n.lower() for n in sf_schema.fields}]
            if missing:
                raise FatalError(
                    f"{obj.entity}: {', '.join(missing)} exist in the external table but are "
                    "not among the Salesforce fields the sync reads",
                    hint="list the same fields for both sides (the object's `fields`)",
                )
            self._objects[obj.entity] = replace(obj, fields=fields, kinds=kinds)
            notices = await self._retrying(lambda s=ext_schema: self.salesforce_sink.prepare(s))  # type: ignore[misc]
            for notice in notices:
                log.warning("%s: %s", self.options.name, notice)

    # -- first run ------------------------------------------------------------------------

    async def _first_run(self, checkpoint: Checkpoint | None) -> Checkpoint:
        if checkpoint is None:
            sf = await self._retrying(self.salesforce.current_positions)
            ext = await self._retrying(self.external.current_positions)
            start = MappingProxyType({**sf, **ext})
            checkpoint = Checkpoint(
                positions=start,
                snapshot=SnapshotProgress(status=SnapshotStatus.IN_PROGRESS, stream_start=start),
            )
            await self.checkpoints.save(self.options.name, checkpoint)
        for obj in self._objects.values():
            sf_records = await self._read_all(self.salesforce, obj)
            ext_records = await self._read_all(self.external, obj)
            keys = await self._match(obj, sf_records, ext_records)
            del sf_records, ext_records
            done = await self._reconcile(obj, keys)
            log.info("%s: first run of %s: %d records, %d to Salesforce, %d to the external "
                     "side, %d parked", self.options.name, obj.entity, len(keys),
                     done.to_salesforce, done.to_external, done.parked)  # fmt: skip
        checkpoint = replace(
            checkpoint,
            snapshot=replace(
                checkpoint.snapshot,
                status=SnapshotStatus.COMPLETE,
                done=frozenset(self._objects),
                cursors=MappingProxyType({}),
            ),
        )
        await self.checkpoints.save(self.options.name, checkpoint)
        self._publish(snapshot_done=checkpoint.snapshot.done)
        return checkpoint

    async def _read_all(self, source: Source, obj: TwoWayObject) -> dict[str, Values]:
        """Every record of one side, by its id there: only the fields that pair records (the
        key and ``match_on``), canonical. Reconciling reads the records again, by key, in
        chunks (:data:`RECONCILE_CHUNK`): the first run holds a few fields per record."""
        wanted = (obj.key, *obj.match_on)

        async def read() -> dict[str, Values]:
            records: dict[str, Values] = {}
            batches: AsyncIterator[Batch] = source.snapshot([obj.entity], None)
            async for batch in batches:
                for e in batch.events:
                    if e.after is not None:
                        records[e.key] = canonical_record(obj.kinds, e.after, wanted)
            return records

        return await self._retrying(read)

    async def _match(
        self, obj: TwoWayObject, sf: Mapping[str, Values], ext: Mapping[str, Values]
    ) -> list[str]:
        """Pair the two sides' records (:func:`~sfsync.core.matching.plan_first_run`), give
        keys to the keyless Salesforce records that paired; the keys to reconcile."""
        plan = plan_first_run(obj.entity, obj.key, sf, ext, obj.match_on)
        keys = list(plan.keys)
        notices = list(plan.notices)
        if plan.give_keys:
            given = await self.salesforce.give_keys(obj.entity, obj.key, plan.give_keys)
            for record_id, error in given.items():
                if error is not None:
                    notices.append(f"{obj.entity} {record_id}: could not set {obj.key}: {error}")
                    keys.remove(plan.give_keys[record_id])
        for notice in notices:
            log.warning("%s: %s", self.options.name, notice)
        if notices:
            self._publish(notices=(*self._status.notices, *notices))
        return keys

    # -- passes ---------------------------------------------------------------------------

    async def _pass(self, checkpoint: Checkpoint) -> Checkpoint:
        """One polling pass: both sides' changes since ``checkpoint``, reconciled."""
        tracker = AckTracker(committed=checkpoint.positions)
        sf_events = await self._changes(self.salesforce, checkpoint, tracker)
        ext_events = await self._changes(self.external, checkpoint, tracker)
        return await self._process(sf_events, ext_events, tracker, checkpoint)

    async def _follow(self, checkpoint: Checkpoint) -> None:
        """Real time: both sides' change streams read at once (:func:`~sfsync.runtime.feeds.
        follow_changes`); what arrives within ``linger`` of the first event is reconciled as
        one step, then the checkpoint saved. Returns once a stop is requested."""
        try:
            await self._follow_both(checkpoint)
        except BaseExceptionGroup as group:
            # A feed's failure ends both; the run reports its error, not the group's.
            errors = group.subgroup(lambda e: isinstance(e, SyncError))
            if errors is None:
                raise
            first: BaseException = errors
            while isinstance(first, BaseExceptionGroup):
                first = first.exceptions[0]
            raise first from None

    async def _follow_both(self, checkpoint: Checkpoint) -> None:
        send, receive = anyio.create_memory_object_stream[tuple[bool, Batch]](16)
        hook = self._count_retry
        async with anyio.create_task_group() as tg:
            for source, is_sf in ((self.salesforce, True), (self.external, False)):
                tg.start_soon(
                    partial(
                        follow_changes, source, is_sf, checkpoint, send.clone(),
                        policy=self.options.retry, clock=self.clock, rand=self._rand,
                        on_retry=hook,
                    )
                )  # fmt: skip
            send.close()

            async def stopper() -> None:
                await self._stop.wait()
                tg.cancel_scope.cancel()

            tg.start_soon(stopper)
            async with receive:
                async for first in receive:
                    items = [first]
                    with anyio.move_on_after(self.options.linger):
                        while len(items) < 64:
                            items.append(await receive.receive())
                    tracker = AckTracker(committed=checkpoint.positions)
                    sf_events: list[ChangeEvent] = []
                    ext_events: list[ChangeEvent] = []
                    for is_sf, batch in items:
                        tracker.settle(batch.positions())
                        (sf_events if is_sf else ext_events).extend(batch.events)
                    self._count_read([*sf_events, *ext_events])
                    with anyio.CancelScope(shield=True):
                        checkpoint = await self._process(
                            sf_events, ext_events, tracker, checkpoint, resolutions=False
                        )
                    await self._resolutions_due()

    async def _resolutions_due(self) -> None:
        """While following streams, the review queue is read every ``interval`` seconds."""
        now = self.clock.monotonic()
        if now - self._resolved_at >= self.options.interval:
            self._resolved_at = now
            with anyio.CancelScope(shield=True):
                await self._apply_resolutions()

    async def _process(
        self,
        sf_events: list[ChangeEvent],
        ext_events: list[ChangeEvent],
        tracker: AckTracker,
        checkpoint: Checkpoint,
        *,
        resolutions: bool = True,
    ) -> Checkpoint:
        tallies: dict[str, Tally] = {}
        for obj in self._objects.values():
            keys, times = await self._keys(obj, sf_events, ext_events)
            if keys:
                tallies[obj.entity] = await self._reconcile(obj, keys, times)
        if ext_events and isinstance(self.external, OutcomeListener):
            # Each database change's fate on its change-log row, where users look for it;
            # before the checkpoint passes it (a crash records it again).
            outcomes = [fate(e, tallies.get(e.entity), self.options.origin) for e in ext_events]
            await self._retrying(lambda: self.external.record_outcomes(ext_events, outcomes))  # type: ignore[attr-defined]
        if resolutions:
            await self._apply_resolutions()
        checkpoint = checkpoint.record(tracker.safe_positions())
        await self.checkpoints.save(self.options.name, checkpoint)
        return checkpoint

    async def _changes(
        self, source: Source, checkpoint: Checkpoint, tracker: AckTracker
    ) -> list[ChangeEvent]:
        async def read() -> list[ChangeEvent]:
            events: list[ChangeEvent] = []
            async for batch in source.changes(checkpoint):
                tracker.settle(batch.positions())
                events.extend(batch.events)
            return events

        result = await self._retrying(read)
        self._count_read(result)
        return result

    def _count_read(self, events: Sequence[ChangeEvent]) -> None:
        self._counters = self._counters.plus(read=len(events))
        self._per_entity.update(e.entity for e in events)

    async def _keys(
        self, obj: TwoWayObject, sf_events: Sequence[ChangeEvent],
        ext_events: Sequence[ChangeEvent],
    ) -> tuple[list[str], Mapping[str, datetime]]:  # fmt: skip
        """The keys of ``obj``'s records that changed (see :func:`~.sides.changed`), those
        synced under the Ids that changed included, and when the external side changed each."""
        found = changed(obj, sf_events, ext_events, self.options.client_id, self.options.origin)
        keys = list(found.keys)
        if found.ids:
            shadows = await self.shadows.by_salesforce_id(self.options.name, obj.entity, found.ids)
            keys.extend(shadow.key for shadow in shadows.values())
        self.echoes += found.echoes
        self._counters = self._counters.plus(stale=found.echoes)
        return list(dict.fromkeys(keys)), found.times

    async def _reconcile(
        self, obj: TwoWayObject, keys: Sequence[str], times: Mapping[str, datetime] | None = None,
        decided: Mapping[str, Decision] | None = None,
    ) -> Tally:  # fmt: skip
        tally = Tally()
        for offset in range(0, len(keys), RECONCILE_CHUNK):
            part = await self._reconcile_part(
                obj, keys[offset : offset + RECONCILE_CHUNK], times, decided
            )
            tally.merge(part)
        return tally

    async def _reconcile_part(
        self, obj: TwoWayObject, keys: Sequence[str], times: Mapping[str, datetime] | None,
        decided: Mapping[str, Decision] | None,
    ) -> Tally:  # fmt: skip
        tally = await self._retrying(
            lambda: self.reconciler.reconcile(obj, keys, times=times, decided=decided)
        )
        if tally.dead:
            await self._retrying(lambda: self.dead_letters.put(tally.dead))
        self._counters = self._counters.plus(
            applied=tally.to_salesforce + tally.to_external,
            conflicts=tally.parked,
            rejected=tally.failed,
            batches=1,
        )
        self._publish(last_commit=self.clock.now())
        return tally

    async def _apply_resolutions(self) -> None:
        """Apply what people resolved in the review queue (see :mod:`sfsync.core.review`)."""
        pending: list[ParkedConflict] = await self.conflicts.pending(self.options.name)
        for conflict in pending:
            obj = self._objects.get(conflict.entity)
            if obj is None or conflict.id is None or conflict.resolution is None:
                continue
            now = await self.reconciler.current(obj, [conflict.key])
            current = now[conflict.key]
            unchanged = values_equal(current.salesforce.values, conflict.salesforce.values) and (
                values_equal(current.external.values, conflict.external.values)
            )
            if unchanged:
                decision = conflict.decide(conflict.resolution, conflict.custom or None)
            else:  # someone edited since: never overwrite an edit nobody reviewed
                decision = resolve(conflict.base, current.salesforce, current.external, obj.rules)
            await self._reconcile(obj, [conflict.key], decided={conflict.key: decision})
            await self.conflicts.mark_applied([conflict.id], self.clock.now())

    # -- writes to Salesforce -------------------------------------------------------------

    async def _write_salesforce(self, batch: Batch) -> list[Outcome | RetryableError]:
        return await write_with_retry(
            self.salesforce_sink,
            batch,
            policy=self.options.retry,
            clock=self.clock,
            rand=self._rand,
            on_retry=self._count_retry,
        )
