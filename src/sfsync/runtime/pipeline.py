"""One running sync: snapshot, then changes, with retries, dead letters and checkpoints.

The pipeline drives a :class:`~sfsync.spi.source.Source` and a :class:`~sfsync.spi.sink.Sink`
through their lifecycles and owns the checkpoint:

1. open both; ``describe`` the entities and ``prepare`` the sink for each.
2. load the checkpoint (from the sink when it stores checkpoints with its data, else from
   the checkpoint store).
3. no checkpoint, or a snapshot not finished: take the source's current positions *first*
   (streaming later starts there, so nothing committed during the snapshot is missed), then
   apply the snapshot, entity by entity, resuming a partial one from its cursors.
4. apply changes: one pass (``RunMode.ONCE``) or for ever, polling every ``interval``
   (``RunMode.CONTINUOUS``), until :meth:`Pipeline.request_stop`.

Every batch goes through :meth:`Pipeline._apply`: write (whole-batch failures retried under the
retry policy; per-event ``RETRY`` outcomes retried alone), dead-letter what cannot be applied,
then flush data and checkpoint together. The checkpoint only ever moves past events whose
outcome is final (the :class:`~sfsync.core.acks.AckTracker` decides), so a crash at any point
repeats work at most, and sinks absorb repeats idempotently.
"""

from __future__ import annotations

import enum
import logging
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field, replace
from operator import attrgetter
from types import MappingProxyType
from typing import TypeVar

import anyio

from sfsync.core.acks import AckTracker
from sfsync.core.checkpoint import (
    Checkpoint,
    CheckpointStore,
    SnapshotProgress,
    SnapshotStatus,
)
from sfsync.core.deadletter import DeadLetter, DeadLetterKind, DeadLetterStore
from sfsync.core.errors import FatalError, RetryableError, SyncError
from sfsync.core.events import Batch, ChangeEvent, Operation, PageEvents
from sfsync.core.retry import GiveUp, RetryPolicy
from sfsync.core.schema import EntitySchema
from sfsync.core.state import PipelineState, Trigger
from sfsync.runtime.executor import write_with_retry
from sfsync.runtime.reporting import Reporting, StatusListener
from sfsync.runtime.status import PipelineStatus
from sfsync.spi.clock import Clock
from sfsync.spi.sink import Outcome, OutcomeKind, Sink, SinkContext
from sfsync.spi.source import HealthReporter, OutcomeListener, Source, SourceContext

log = logging.getLogger("sfsync.pipeline")
T = TypeVar("T")
_ENTITY, _COMMITTED_AT = attrgetter("entity"), attrgetter("committed_at")
_KIND = attrgetter("kind")
_NO_LETTER = frozenset({OutcomeKind.APPLIED, OutcomeKind.STALE})


DEFAULT_BATCH_SIZE = 2000
"""Events per batch asked of a source unless the sink takes more (``max_batch``)."""


class RunMode(enum.Enum):
    """How long a pipeline runs."""

    ONCE = "once"
    """Snapshot if needed, one pass of changes, then stop."""
    CONTINUOUS = "continuous"
    """Snapshot if needed, then changes until asked to stop."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PipelineOptions:
    """How one pipeline runs.

    Attributes:
        name: the sync's name; also the checkpoint's id.
        entities: what to sync, in snapshot order (parents before children).
        mode: once or continuous.
        interval: seconds between change passes of a polling source.
        retry: the schedule for transient failures.
        seed: seeds the jitter, for reproducible runs; ``None`` for a random one.
        batch_size: events per batch asked of the source.
        ignore_deletes: entities whose deletes are acknowledged but not applied (the
            target keeps those rows untouched).
        max_dead_letters: fail the run once more events than this were dead-lettered in it
            (so many failures point at a mapping or permission problem, not at bad records);
            ``None`` never fails.
        redescribe_every: seconds between re-reads of the source's metadata while changes
            flow (schema drift: new fields become new columns without a restart).
    """

    name: str
    entities: tuple[str, ...]
    mode: RunMode = RunMode.ONCE
    interval: float = 30.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    seed: int | None = None
    batch_size: int = DEFAULT_BATCH_SIZE
    ignore_deletes: frozenset[str] = frozenset()
    max_dead_letters: int | None = None
    redescribe_every: float = 600.0


class Pipeline(Reporting):
    """Runs one sync. Build it, ``await run()``; ``request_stop()`` from anywhere to end it."""

    def __init__(
        self,
        *,
        options: PipelineOptions,
        source: Source,
        sink: Sink,
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
        self.source = source
        self.sink = sink
        self.checkpoints = checkpoints
        self.dead_letters = dead_letters
        self._tracker = AckTracker()
        self._schemas: dict[str, EntitySchema] = {}
        self._described_at = 0.0
        self._dead_in_run = 0

    def _status_extras(self) -> dict[str, object]:
        if isinstance(self.source, HealthReporter):
            return {"source_health": tuple(sorted(self.source.health().items()))}
        return {}

    async def run(self) -> PipelineStatus:
        """Run until done (``ONCE``), stopped, or failed. Returns the final status.

        A fatal error ends the run with state ``FAILED`` and the error in ``last_error``; it is
        not raised, so that a caller running several pipelines keeps the others going.
        """
        opts = self.options
        try:
            source_ctx = SourceContext(
                sync_name=opts.name,
                clock=self.clock,
                batch_size=opts.batch_size,
                follow=opts.mode is RunMode.CONTINUOUS,
                record_pages=self.sink.capabilities.record_pages,
            )
            # An endpoint that is still starting (or briefly unreachable) is waited for.
            await self._retrying(lambda: self.source.open(source_ctx))
            await self._retrying(
                lambda: self.sink.open(SinkContext(sync_name=opts.name, clock=self.clock))
            )
            await self._prepare()
            checkpoint = await self._load()
            if checkpoint is None or checkpoint.snapshot.status is not SnapshotStatus.COMPLETE:
                self._fire(Trigger.START_FRESH)
                checkpoint = await self._snapshot(checkpoint)
                if checkpoint.snapshot.status is SnapshotStatus.COMPLETE:
                    self._fire(Trigger.SNAPSHOT_DONE)
            else:
                self._fire(Trigger.START_RESUMED)
            if self._state is PipelineState.STREAMING and not self.stop_requested:
                await self._changes(checkpoint)
            self._fire(Trigger.STOP)
            self._fire(Trigger.DRAINED)
        except SyncError as exc:
            self._fail(exc)
        finally:
            with anyio.CancelScope(shield=True):
                for closer in (self.source.aclose, self.sink.aclose):
                    try:
                        await closer()
                    except Exception as exc:  # closing must not hide the cause
                        log.warning("%s: error while closing: %s", opts.name, exc)
        return self._status

    # -- phases -------------------------------------------------------------------------

    async def _prepare(self) -> None:
        """Describe every entity and let the sink create or evolve its structures.

        Called at start and again every ``redescribe_every`` seconds while changes flow, so
        that a field added in the source becomes a column without a restart. Only entities
        whose description changed are prepared again.
        """
        schemas = await self._retrying(lambda: self.source.describe(self.options.entities))
        self._described_at = self.clock.monotonic()
        missing = [e for e in self.options.entities if e not in schemas]
        if missing:
            raise FatalError(
                f"the source did not describe {', '.join(missing)}",
                hint="check the object names in the sync's configuration",
            )
        notices: list[str] = []
        for entity in self.options.entities:
            schema = schemas[entity]
            if self._schemas.get(entity) == schema:
                continue
            notices.extend(await self._retrying(lambda s=schema: self.sink.prepare(s)))  # type: ignore[misc]
            self._schemas[entity] = schema
        for notice in notices:
            log.warning("%s: %s", self.options.name, notice)
        if notices:
            self._publish(notices=(*self._status.notices, *notices))

    async def _refresh_schemas(self) -> None:
        if self.clock.monotonic() - self._described_at >= self.options.redescribe_every:
            await self._prepare()

    async def _load(self) -> Checkpoint | None:
        if self.sink.capabilities.stores_checkpoints:
            return await self._retrying(self.sink.load_checkpoint)
        return await self._retrying(lambda: self.checkpoints.load(self.options.name))

    async def _save(self, checkpoint: Checkpoint) -> None:
        await self._retrying(lambda: self.sink.flush(checkpoint))
        if not self.sink.capabilities.stores_checkpoints:
            await self._retrying(lambda: self.checkpoints.save(self.options.name, checkpoint))

    async def _snapshot(self, checkpoint: Checkpoint | None) -> Checkpoint:
        if checkpoint is None:
            # Positions first: streaming resumes here, so changes committed while the
            # snapshot runs are replayed afterwards and absorbed by idempotent apply.
            start = await self._retrying(self.source.current_positions)
            frozen = MappingProxyType(dict(start))
            checkpoint = Checkpoint(
                positions=frozen,
                snapshot=SnapshotProgress(status=SnapshotStatus.IN_PROGRESS, stream_start=frozen),
            )
            await self._save(checkpoint)
        todo = [e for e in self.options.entities if e not in checkpoint.snapshot.done]
        await self._publish_totals(todo)
        self._tracker = AckTracker(committed=checkpoint.positions)

        def remaining(cp: Checkpoint) -> AsyncIterator[Batch]:
            return self.source.snapshot([e for e in todo if e not in cp.snapshot.done], cp)

        checkpoint, finished = await self._consume(remaining, checkpoint)
        if not finished:
            return checkpoint
        checkpoint = replace(
            checkpoint,
            snapshot=replace(
                checkpoint.snapshot,
                status=SnapshotStatus.COMPLETE,
                done=checkpoint.snapshot.done | frozenset(todo),
                cursors=MappingProxyType({}),
            ),
        )
        await self._save(checkpoint)
        self._publish(snapshot_done=checkpoint.snapshot.done)
        return checkpoint

    async def _publish_totals(self, entities: list[str]) -> None:
        """Ask the source how big each snapshot is, for progress and ETA; never fatal."""
        totals: list[tuple[str, int]] = []
        for entity in entities:
            try:
                size = await self.source.snapshot_size(entity)
            except SyncError as exc:
                log.info("%s: no size for %s (%s)", self.options.name, entity, exc)
                continue
            if size is not None:
                totals.append((entity, size))
        self._publish(snapshot_totals=tuple(totals))

    async def _changes(self, checkpoint: Checkpoint) -> None:
        self._tracker = AckTracker(committed=checkpoint.positions)
        while True:
            await self._refresh_schemas()
            with anyio.CancelScope() as scope:
                # A stop request cancels only the wait for the next batch; a batch in hand
                # is applied and checkpointed under a shield in _apply.
                async with anyio.create_task_group() as tg:
                    tg.start_soon(self._cancel_on_stop, scope)
                    checkpoint, _ = await self._consume(self.source.changes, checkpoint)
                    tg.cancel_scope.cancel()
            if self._stop.is_set() or self.options.mode is RunMode.ONCE:
                return
            await self._pause(self.options.interval)
            if self._stop.is_set():
                return

    async def _consume(
        self, read: Callable[[Checkpoint], AsyncIterator[Batch]], checkpoint: Checkpoint
    ) -> tuple[Checkpoint, bool]:
        """Apply every batch of ``read(checkpoint)``; returns the checkpoint and whether the
        reading finished (rather than stopped on request).

        A :class:`RetryableError` from the source (a 503, a query timeout, a lost connection
        while paging) is retried under the retry policy by reading again from the checkpoint:
        sources resume from it (snapshot cursors, polling cursors), so nothing is skipped and
        at most the unfinished page is read twice. Progress resets the attempt count.
        """
        attempt = 0
        started = self.clock.monotonic()
        batches = read(checkpoint)
        try:
            while True:
                try:
                    batch = await anext(batches)
                except StopAsyncIteration:
                    return checkpoint, True
                except RetryableError as exc:
                    # Only the source's own failures are retried here: a write that outlasted
                    # its retries has already been retried and ends the run.
                    attempt += 1
                    decision = self.options.retry.decide(
                        attempt, exc, elapsed=self.clock.monotonic() - started, rand=self._rand
                    )
                    if isinstance(decision, GiveUp):
                        exc.add_note(decision.reason)
                        raise
                    self._count_retry(attempt, exc, decision.seconds)
                    await self._pause(decision.seconds)
                    if self.stop_requested:
                        return checkpoint, False
                    await _aclose(batches)
                    batches = read(checkpoint)
                    continue
                checkpoint = await self._apply(batch, checkpoint)
                if checkpoint.snapshot.status is not SnapshotStatus.COMPLETE:
                    self._publish(snapshot_done=checkpoint.snapshot.done)
                attempt, started = 0, self.clock.monotonic()
                if self.stop_requested:
                    return checkpoint, False
        finally:
            await _aclose(batches)

    async def _cancel_on_stop(self, scope: anyio.CancelScope) -> None:
        await self._stop.wait()
        scope.cancel()

    # -- one batch ----------------------------------------------------------------------

    async def _apply(self, batch: Batch, checkpoint: Checkpoint) -> Checkpoint:
        """Apply one batch and move the checkpoint; shielded so a stop never splits it."""
        with anyio.CancelScope(shield=True):
            checkpoint = await self._apply_batch(batch, checkpoint)
        return checkpoint  # noqa: RET504 - outside the scope: its __exit__ may swallow

    async def _apply_batch(self, batch: Batch, checkpoint: Checkpoint) -> Checkpoint:
        events = batch.events
        skip = self.options.ignore_deletes
        # A page batch holds READ events only: nothing to ignore, and nothing to look at event
        # by event unless an outcome needs it (its events are parsed only then).
        if (
            skip
            and batch.page is None
            and any(e.op is Operation.DELETE and e.entity in skip for e in events)
        ):
            kept = [
                i
                for i, e in enumerate(events)
                if not (e.op is Operation.DELETE and e.entity in skip)
            ]
            written = await self._write(Batch.of([events[i] for i in kept]))
            final: list[Outcome | RetryableError] = [Outcome(OutcomeKind.STALE)] * len(events)
            for index, result in zip(kept, written, strict=True):
                final[index] = result
            ignored = len(events) - len(kept)
        else:
            final = await self._write(batch)
            ignored = 0
        letters = self._dead_letters(events, final)
        if letters:
            # Durable before the checkpoint passes these events: nothing is ever lost.
            await self._retrying(lambda: self.dead_letters.put(letters))
            self._dead_in_run += len(letters)
        if isinstance(self.source, OutcomeListener) and events:
            # Before the checkpoint: a crash in between records the outcomes again.
            source = self.source
            await self._retrying(lambda: source.record_outcomes(events, final))
        # Every outcome of the batch is final now. Positions the batch advances without
        # events are final with it (after its events, so they never pass an unfinished one).
        self._tracker.settle(batch.positions())
        checkpoint = checkpoint.record(self._tracker.safe_positions(), batch.completes)
        await self._save(checkpoint)
        self._account(batch, final, ignored)
        limit = self.options.max_dead_letters
        if limit is not None and self._dead_in_run > limit:
            raise FatalError(
                f"{self._dead_in_run} events were dead-lettered in this run (the limit is "
                f"{limit}): so many failures point at a mapping or permission problem",
                hint="inspect them with `sfsync deadletters list CONFIG`, fix the cause, restart",
            )
        return checkpoint

    async def _write(self, batch: Batch) -> list[Outcome | RetryableError]:
        """Write ``batch``; per-event RETRY outcomes retried alone (see
        :func:`~sfsync.runtime.executor.write_with_retry`)."""
        return await write_with_retry(
            self.sink,
            batch,
            policy=self.options.retry,
            clock=self.clock,
            rand=self._rand,
            on_retry=self._count_retry,
        )

    def _dead_letters(
        self, events: Sequence[ChangeEvent], final: list[Outcome | RetryableError]
    ) -> list[DeadLetter]:
        if set(map(type, final)) == {Outcome} and set(map(_KIND, final)) <= _NO_LETTER:
            return []  # all applied or stale: nothing to look at event by event
        now = self.clock.now()
        letters: list[DeadLetter] = []
        for event, result in zip(events, final, strict=True):
            if isinstance(result, RetryableError):
                letters.append(
                    DeadLetter.of(self.options.name, DeadLetterKind.FAILED, event, result, now)
                )
            elif result.kind is OutcomeKind.REJECTED and result.error is not None:
                letters.append(
                    DeadLetter.of(
                        self.options.name, DeadLetterKind.REJECTED, event, result.error, now
                    )
                )
            elif result.kind is OutcomeKind.CONFLICT and result.error is not None:
                letters.append(
                    DeadLetter.of(
                        self.options.name, DeadLetterKind.CONFLICT, event, result.error, now
                    )
                )
        return letters

    def _account(self, batch: Batch, final: list[Outcome | RetryableError], ignored: int) -> None:
        if set(map(type, final)) == {Outcome}:
            kinds = Counter({k.value: n for k, n in Counter(map(_KIND, final)).items()})
        else:
            kinds = Counter(
                "failed" if isinstance(r, RetryableError) else r.kind.value for r in final
            )
        self._counters = self._counters.plus(
            read=len(batch),
            applied=kinds["applied"],
            stale=kinds["stale"] - ignored,  # ignored deletes carry a STALE outcome
            ignored=ignored,
            rejected=kinds["rejected"],
            conflicts=kinds["conflict"],
            failed=kinds["failed"],
            batches=1,
        )
        events = batch.events
        changes: dict[str, object] = {}
        page = batch.page
        if page is not None and isinstance(events, PageEvents) and not events.parsed:
            # A page loaded as it is: counted without its events. Its records' commit times
            # stay unread (a snapshot's READs say nothing about replication lag).
            self._per_entity[page.entity] += len(batch)
        else:
            self._per_entity.update(map(_ENTITY, events))
            if events:
                newest = max(map(_COMMITTED_AT, events))
                last = self._status.last_commit
                if last is None or newest > last:
                    changes["last_commit"] = newest
                    changes["lag_seconds"] = max(0.0, (self.clock.now() - newest).total_seconds())
        self._publish(**changes)


async def _aclose(iterator: AsyncIterator[Batch]) -> None:
    """Close a source's iterator early (async generators release their queries this way)."""
    close = getattr(iterator, "aclose", None)
    if close is not None:
        await close()
