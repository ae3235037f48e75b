"""What a running pipeline reports: frozen snapshots for the CLI, logs and dashboards."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from sfsync.core.state import PipelineState


@dataclass(frozen=True, slots=True)
class Counters:
    """Event counts since the pipeline started."""

    read: int = 0
    applied: int = 0
    stale: int = 0
    rejected: int = 0
    conflicts: int = 0
    failed: int = 0
    retries: int = 0
    batches: int = 0
    ignored: int = 0

    def plus(self, **deltas: int) -> Counters:
        """A copy with ``deltas`` added."""
        values = {name: getattr(self, name) + deltas.get(name, 0) for name in self.__slots__}
        return Counters(**values)


@dataclass(frozen=True, slots=True)
class PipelineStatus:
    """One pipeline at one moment.

    Attributes:
        name: the sync's name.
        state: its lifecycle state.
        counters: event counts.
        per_entity: events read per entity.
        snapshot_done: entities whose snapshot finished.
        snapshot_totals: per entity, how many records its snapshot reads (when known).
        last_error: the last error text, if any.
        last_commit: commit time of the newest applied event (the source's clock).
        lag_seconds: how far the target is behind the source, from ``last_commit``.
        notices: schema drift and other operator notices.
        source_health: per entity, how the source reads it now (``streaming (pubsub)``), for
            sources that report it.
        updated_at: when this snapshot was taken.
    """

    name: str
    state: PipelineState
    counters: Counters = field(default_factory=Counters)
    per_entity: tuple[tuple[str, int], ...] = ()
    snapshot_done: frozenset[str] = frozenset()
    snapshot_totals: tuple[tuple[str, int], ...] = ()
    last_error: str | None = None
    last_commit: datetime | None = None
    lag_seconds: float | None = None
    notices: tuple[str, ...] = ()
    source_health: tuple[tuple[str, str], ...] = ()
    updated_at: datetime | None = None


class RunningSync(Protocol):
    """What the shells drive: a one-way :class:`~sfsync.runtime.pipeline.Pipeline` or a
    :class:`~sfsync.runtime.twoway.TwoWaySync`."""

    async def run(self) -> PipelineStatus:
        """Run until done, stopped or failed; the final status."""
        ...

    def request_stop(self) -> None:
        """Finish the work in hand, save the checkpoint, stop."""
        ...

    def status(self) -> PipelineStatus:
        """The latest status."""
        ...
