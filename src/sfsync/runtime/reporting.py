"""What every running sync shares: its lifecycle state, counters, published status, stop
request, and calls retried under its policy with each retry counted and reported.

:class:`~sfsync.runtime.pipeline.Pipeline` (one way) and
:class:`~sfsync.runtime.twoway.TwoWaySync` (both ways) build on :class:`Reporting`, so the CLI's
live table, the logs and the exit code see both the same way.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import TypeVar

import anyio

from sfsync.core.errors import RetryableError, SyncError
from sfsync.core.retry import RetryPolicy
from sfsync.core.state import PipelineState, Trigger, next_state
from sfsync.runtime.executor import call_with_retry
from sfsync.runtime.status import Counters, PipelineStatus
from sfsync.spi.clock import Clock

T = TypeVar("T")
StatusListener = Callable[[PipelineStatus], None]


class Reporting:
    """State, counters and status of one running sync (see the module docstring).

    Args:
        name: the sync's name (logs, status).
        clock: the only time used; retries and pauses sleep on it.
        retry: the schedule for transient failures.
        seed: seeds the retry jitter (``None``: random).
        on_status: told every new status.
        log: where transitions, retries and failures are logged.
    """

    def __init__(
        self,
        *,
        name: str,
        clock: Clock,
        retry: RetryPolicy,
        seed: int | None,
        on_status: StatusListener | None,
        log: logging.Logger,
    ) -> None:
        self.clock = clock
        self._name = name
        self._retry = retry
        self._on_status = on_status
        self._log = log
        self._rand = random.Random(seed).random
        self._state = PipelineState.CREATED
        self._stop = anyio.Event()
        self._counters = Counters()
        self._per_entity: Counter[str] = Counter()
        self._status = PipelineStatus(name=name, state=self._state)

    # -- observation and control ----------------------------------------------------------

    @property
    def state(self) -> PipelineState:
        return self._state

    def status(self) -> PipelineStatus:
        """The latest status snapshot."""
        return self._status

    def request_stop(self) -> None:
        """Finish the work in hand, save the checkpoint and stop. Safe to call repeatedly."""
        self._stop.set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def _status_extras(self) -> dict[str, object]:
        """Fields a subclass adds to every published status (default: none)."""
        return {}

    def _publish(self, **changes: object) -> None:
        for key, value in self._status_extras().items():
            changes.setdefault(key, value)
        self._status = replace(
            self._status,
            state=self._state,
            counters=self._counters,
            per_entity=tuple(sorted(self._per_entity.items())),
            updated_at=self.clock.now(),
            **changes,  # type: ignore[arg-type]
        )
        if self._on_status is not None:
            self._on_status(self._status)

    def _fire(self, trigger: Trigger) -> None:
        self._state = next_state(self._state, trigger)
        self._log.info("%s: %s -> %s", self._name, trigger.value, self._state.value)
        self._publish()

    def _fail(self, exc: SyncError) -> None:
        text = str(exc)
        notes = getattr(exc, "__notes__", None)
        if notes:
            text = f"{text} ({'; '.join(notes)})"
        self._log.error("%s: failed: %s", self._name, text)
        self._state = PipelineState.FAILED
        self._publish(last_error=text)

    # -- retries and waits ----------------------------------------------------------------

    def _count_retry(self, attempt: int, error: RetryableError, delay: float) -> None:
        self._counters = self._counters.plus(retries=1)
        self._log.warning(
            "%s: attempt %d failed (%s); retrying in %.1fs", self._name, attempt, error, delay
        )
        self._publish(last_error=str(error))

    async def _retrying(self, fn: Callable[[], Awaitable[T]]) -> T:
        return await call_with_retry(
            fn, policy=self._retry, clock=self.clock, rand=self._rand, on_retry=self._count_retry
        )

    async def _pause(self, seconds: float) -> None:
        """Wait ``seconds`` on the injected clock, or less if a stop is requested."""
        async with anyio.create_task_group() as tg:

            async def sleeper() -> None:
                await self.clock.sleep(seconds)
                tg.cancel_scope.cancel()

            async def stopper() -> None:
                await self._stop.wait()
                tg.cancel_scope.cancel()

            tg.start_soon(sleeper)
            tg.start_soon(stopper)
