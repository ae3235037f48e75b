"""Fakes of the engine's seams: real implementations with no I/O."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import anyio

from sfsync.core.checkpoint import Checkpoint


class FakeClock:
    """A :class:`~sfsync.spi.clock.Clock` whose time moves only when told to, or when slept on.

    ``sleep(s)`` returns after yielding once to the event loop and moves the clock ``s``
    forward, so backoff loops run instantly and deterministically. ``sleeps`` records every
    requested sleep so tests can assert the schedule, and every callable in ``on_sleep`` is
    called with the clock after each sleep (to change the world "while time passes").

    Args:
        start: the initial time (timezone-aware).
    """

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, tzinfo=UTC)
        if self._now.tzinfo is None:
            raise ValueError("FakeClock needs a timezone-aware start")
        self._mono = 0.0
        self.sleeps: list[float] = []
        self.on_sleep: list[Callable[[FakeClock], None]] = []

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` (must not be negative)."""
        if seconds < 0:
            raise ValueError("time only moves forward")
        self._now += timedelta(seconds=seconds)
        self._mono += seconds

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.advance(max(0.0, seconds))
        for hook in self.on_sleep:
            hook(self)
        await anyio.lowlevel.checkpoint()


class MemoryCheckpointStore:
    """A :class:`~sfsync.core.checkpoint.CheckpointStore` in a dict.

    It stores the JSON form, like the real stores, so that a checkpoint that cannot survive a
    round trip fails here too.
    """

    def __init__(self) -> None:
        self._data: dict[str, str] = {}
        self.saves = 0

    async def load(self, sync_id: str) -> Checkpoint | None:
        text = self._data.get(sync_id)
        return None if text is None else Checkpoint.from_json(text)

    async def save(self, sync_id: str, checkpoint: Checkpoint) -> None:
        self._data[sync_id] = checkpoint.to_json()
        self.saves += 1

    async def delete(self, sync_id: str) -> None:
        self._data.pop(sync_id, None)

    async def list_ids(self) -> list[str]:
        return sorted(self._data)

    async def aclose(self) -> None:
        return None
