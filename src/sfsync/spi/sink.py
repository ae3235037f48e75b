"""The Sink protocol: where change events are applied.

Lifecycle, driven by the runtime (the shape of Kafka Connect's ``SinkTask`` put/flush):

1. ``await sink.open(ctx)``: connect.
2. ``await sink.prepare(schema)`` for every entity before its first event, and again whenever
   the source's description of it changes: create or evolve the target structure. Returns
   notices for the operator (a field kept although the source dropped it, a field quarantined
   after an incompatible type change); raises :class:`~sfsync.core.errors.FatalError` only if
   the entity cannot be written at all.
3. ``outcomes = await sink.write(batch)`` any number of times. ``write`` returns exactly one
   :class:`Outcome` per event, in batch order. One bad record never fails the whole batch: it
   gets a ``REJECTED`` outcome with its error and the rest are applied. ``write`` raises only
   for a failure of the whole call: :class:`~sfsync.core.errors.RetryableError` (the runtime
   retries the same batch, so the sink must apply idempotently) or
   :class:`~sfsync.core.errors.FatalError`.
4. ``await sink.flush(checkpoint)``: make everything written so far durable. A sink whose
   capabilities say ``stores_checkpoints`` stores ``checkpoint`` in the same transaction as
   the data, so that data and position can never disagree after a crash; the runtime then
   reads checkpoints back with ``load_checkpoint``. Other sinks ignore the argument and the
   runtime saves the checkpoint in its own store right after ``flush`` returns.
5. ``await sink.aclose()``: always called; whatever was not flushed is rolled back.

Idempotence: applying the same event twice has the effect of applying it once, and an event
older than what the target holds (by ``ChangeEvent.version``) never overwrites it. Events of one
key are applied in batch order.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass, field
from typing import Protocol

from sfsync.core.checkpoint import Checkpoint
from sfsync.core.errors import SyncError
from sfsync.core.events import Batch
from sfsync.core.schema import EntitySchema
from sfsync.spi.clock import Clock


class OutcomeKind(enum.Enum):
    """The final fate of one event."""

    APPLIED = "applied"
    """Written (or found already applied)."""
    STALE = "stale"
    """Not written: the target already holds a newer version. Final, nothing lost."""
    REJECTED = "rejected"
    """Cannot be written (validation, bad value); goes to the dead-letter store."""
    CONFLICT = "conflict"
    """Both sides changed; parked for review."""
    RETRY = "retry"
    """Not written this time for a transient reason (a locked row); the runtime retries it."""

    @property
    def final(self) -> bool:
        """Whether the checkpoint may move past an event with this outcome."""
        return self is not OutcomeKind.RETRY


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of applying one event.

    Attributes:
        kind: what happened.
        error: why, for REJECTED, CONFLICT and RETRY.
        target_key: the key the target gave the record (a new Salesforce Id, say), if any.
    """

    kind: OutcomeKind
    error: SyncError | None = None
    target_key: str | None = None

    def __post_init__(self) -> None:
        needs_error = self.kind in (OutcomeKind.REJECTED, OutcomeKind.CONFLICT, OutcomeKind.RETRY)
        if needs_error and self.error is None:
            raise ValueError(f"a {self.kind.value} outcome needs the error that caused it")

    @classmethod
    def applied(cls, target_key: str | None = None) -> Outcome:
        return cls(OutcomeKind.APPLIED, target_key=target_key)

    @classmethod
    def rejected(cls, error: SyncError) -> Outcome:
        return cls(OutcomeKind.REJECTED, error=error)


@dataclass(frozen=True, slots=True)
class SinkCapabilities:
    """What a sink can do.

    Attributes:
        deletes: can apply DELETE events.
        partial_updates: applies ``ChangeEvent.partial`` events by touching only their fields.
        max_batch: the most events one ``write`` call should get.
        stores_checkpoints: ``flush`` stores the checkpoint atomically with the data.
        record_pages: ``write`` may load a page batch (``Batch.page``) from its text, without
            reading its events; sources then hand over CSV pages unparsed. A sink without it
            still takes page batches, through their events (parsed on first access).
    """

    deletes: bool = True
    partial_updates: bool = True
    max_batch: int = 2000
    stores_checkpoints: bool = False
    record_pages: bool = False


@dataclass(frozen=True, slots=True)
class SinkContext:
    """What the runtime hands a sink when opening it. Fields may be added; none removed."""

    sync_name: str
    clock: Clock
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("sfsync.sink"))


class Sink(Protocol):
    """A consumer of change events (see the module docstring for the lifecycle)."""

    capabilities: SinkCapabilities

    async def open(self, ctx: SinkContext) -> None:
        """Connect and prepare the target."""
        ...

    async def prepare(self, schema: EntitySchema) -> list[str]:
        """Create or evolve the target structure for ``schema``; returns operator notices."""
        ...

    async def write(self, batch: Batch) -> list[Outcome]:
        """Apply ``batch``; one outcome per event, in order."""
        ...

    async def flush(self, checkpoint: Checkpoint | None) -> None:
        """Make every write durable (with ``checkpoint``, when ``stores_checkpoints``)."""
        ...

    async def load_checkpoint(self) -> Checkpoint | None:
        """The checkpoint stored by the last ``flush`` (``None`` if none or not supported)."""
        ...

    async def forget_checkpoint(self) -> None:
        """Delete the stored checkpoint (``sfsync checkpoints reset``); the next run of the
        sync starts with a full snapshot. A no-op for sinks that store none."""
        ...

    async def aclose(self) -> None:
        """Release connections. Idempotent."""
        ...
