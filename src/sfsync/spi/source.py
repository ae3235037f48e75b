"""The Source protocol: where change events come from.

Lifecycle, driven by the runtime, one task at a time per source:

1. ``await source.open(ctx)``: connect, authenticate, check that the configured entities
   exist. Raise :class:`~sfsync.core.errors.ConfigError` for a problem the user must fix,
   :class:`~sfsync.core.errors.RetryableError` for one that may pass. Then
   ``await source.describe(entities)`` gives the metadata sinks prepare their targets from.
2. If the checkpoint says the snapshot is not complete: ``stream_start = await
   source.current_positions()`` (taken *before* the snapshot, so the hand-off to streaming is
   gap-free), then iterate ``source.snapshot(entities, resume)``. Each batch holds READ events
   whose positions encode snapshot progress; the runtime checkpoints them as outcomes land.
3. Iterate ``source.changes(resume)``: batches of CREATE/UPDATE/DELETE/UNDELETE events, for
   ever (until cancelled) for a streaming source, until caught up for a polling source
   (the runtime calls it again after the configured interval).
4. ``await source.aclose()``: always called, also after a failure or cancellation.

The source never writes checkpoints: the runtime owns them and passes the last saved one back
as ``resume``. Delivery is at-least-once: after a crash a source may repeat events that were
emitted but not checkpointed; sinks absorb repeats by applying idempotently.
Events of one key must be emitted in commit order.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from sfsync.core.checkpoint import Checkpoint
from sfsync.core.errors import SyncError
from sfsync.core.events import Batch, ChangeEvent, Position
from sfsync.core.schema import EntitySchema
from sfsync.spi.clock import Clock

if TYPE_CHECKING:
    from sfsync.spi.sink import Outcome


@dataclass(frozen=True, slots=True)
class SourceCapabilities:
    """What a source can do; the runtime plans a sync from these.

    Attributes:
        snapshot: can read every current record.
        changes: can read changes after a position.
        realtime: ``changes`` pushes events as they happen (otherwise it polls).
        deletes: changes include deletes.
    """

    snapshot: bool = True
    changes: bool = True
    realtime: bool = False
    deletes: bool = True


@dataclass(frozen=True, slots=True)
class SourceContext:
    """What the runtime hands a source when opening it. Fields may be added; none removed.

    Attributes:
        sync_name: the configured sync this source serves (for logs and metrics).
        clock: the only time the source may use.
        logger: where the source logs.
        batch_size: preferred number of events per batch.
        follow: ``changes`` of a real-time source follows the stream until cancelled; when
            false (``sync --once``) it reads what is there now and ends, as a poll does.
        record_pages: the sink loads :class:`~sfsync.core.events.RecordPage` batches as they
            are (:attr:`~sfsync.spi.sink.SinkCapabilities.record_pages`): a source that reads
            CSV pages may hand them over unparsed (``Batch.of_page``) instead of as events.
    """

    sync_name: str
    clock: Clock
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("sfsync.source"))
    batch_size: int = 2000
    follow: bool = True
    record_pages: bool = False


class Source(Protocol):
    """A producer of change events (see the module docstring for the lifecycle)."""

    capabilities: SourceCapabilities

    async def open(self, ctx: SourceContext) -> None:
        """Connect and check the configuration against the remote system."""
        ...

    async def describe(self, entities: Sequence[str]) -> dict[str, EntitySchema]:
        """The current metadata of ``entities`` (the configured field selection applied)."""
        ...

    async def snapshot_size(self, entity: str) -> int | None:
        """How many records a snapshot of ``entity`` will read, if cheap to know (progress, ETA)."""
        ...

    async def current_positions(self) -> Mapping[str, Position]:
        """Per stream, the position of "now": streaming from it misses nothing after this call."""
        ...

    def snapshot(self, entities: Sequence[str], resume: Checkpoint | None) -> AsyncIterator[Batch]:
        """Every current record of ``entities`` as READ events, resuming a partial snapshot."""
        ...

    def changes(self, resume: Checkpoint | None) -> AsyncIterator[Batch]:
        """Changes after the positions in ``resume`` (or after ``current_positions``)."""
        ...

    async def aclose(self) -> None:
        """Release connections. Idempotent."""
        ...


@runtime_checkable
class OutcomeListener(Protocol):
    """A source that wants to know what became of each event it produced (optional).

    A SQL change log, for one, writes each row's fate (applied, or rejected with Salesforce's
    error) where users look for it. The runtime calls :meth:`record_outcomes` once per batch,
    after the sink returned its outcomes and the dead letters are stored, and before the
    checkpoint moves past the batch: after a crash in between, the events are read and recorded
    again, so the method must be idempotent.
    """

    async def record_outcomes(
        self, events: Sequence[ChangeEvent], outcomes: Sequence[Outcome | SyncError]
    ) -> int:
        """Record ``outcomes[i]`` as the fate of ``events[i]``; returns how many were recorded.
        An error in place of an outcome means the event failed for good (dead-lettered)."""
        ...


@runtime_checkable
class HealthReporter(Protocol):
    """A source that can say, per entity, how it is reading right now (optional).

    Shown beside each object in the live status: ``streaming (pubsub)``, ``polling
    (fallback)``. Called often, from the runtime's own task: it must be cheap and never block.
    """

    def health(self) -> Mapping[str, str]:
        """Entity -> a few words on how it is read now; entities not named have nothing to say."""
        ...


@runtime_checkable
class RecordLookup(Protocol):
    """A source that can read records as they are now, by the values of a field (optional).

    Two-way syncs decide on current state: before writing a change across, the runtime reads
    the record from both sides, compares both with the shadow of the last sync, and writes only
    what differs (see :mod:`sfsync.core.merge`). Reading current state rather than trusting
    the change event makes the decision right however late or repeated the event is, and makes
    our own write, read back, equal to its shadow: an echo with nothing to do.
    """

    async def lookup(
        self, entity: str, field: str, values: Sequence[str]
    ) -> list[dict[str, object]]:
        """The current records of ``entity`` whose ``field`` holds one of ``values`` (records
        that do not exist are left out), with the configured fields under their field names."""
        ...
