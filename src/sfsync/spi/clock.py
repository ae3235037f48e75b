"""Time, injected: ``now()`` for timestamps and ``sleep()`` for waiting.

Nothing in sfsync calls ``time.time()``, ``datetime.now()`` or ``asyncio.sleep()`` directly:
it asks the :class:`Clock` it was given. Production uses :class:`SystemClock`; tests use
``sfsync.testing.FakeClock``, whose sleeps return at once and move its time forward.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol

import anyio


class Clock(Protocol):
    """A source of time.

    Contract: ``now()`` is timezone-aware UTC and never goes backwards within one clock;
    ``monotonic()`` is for measuring durations; ``sleep()`` is cancellable.
    """

    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that only moves forward (for durations and deadlines)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (cancellable)."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(max(0.0, seconds))
