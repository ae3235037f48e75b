"""Running a call under the retry policy: the only place in the engine that sleeps.

It sleeps on the injected clock, so tests with a fake clock run the whole schedule instantly.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from sfsync.core.errors import RetryableError
from sfsync.core.retry import GiveUp, RetryPolicy
from sfsync.spi.clock import Clock

T = TypeVar("T")

RetryHook = Callable[[int, RetryableError, float], None]


async def call_with_retry(
    fn: Callable[[], Awaitable[T]],
    *,
    policy: RetryPolicy,
    clock: Clock,
    rand: Callable[[], float],
    on_retry: RetryHook | None = None,
) -> T:
    """Await ``fn()``; on a :class:`RetryableError`, wait as ``policy`` says and call it again.

    Args:
        fn: the call; must be safe to repeat (idempotent).
        policy: the schedule.
        clock: where to sleep.
        rand: uniform ``[0, 1)`` draws for jitter.
        on_retry: told ``(attempt, error, delay)`` before each wait (logs, metrics, status).

    Raises:
        RetryableError: the last error, once the policy gives up; its message says so.
        Any other exception from ``fn`` at once.
    """
    attempt = 0
    started = clock.monotonic()
    while True:
        try:
            return await fn()
        except RetryableError as exc:
            attempt += 1
            decision = policy.decide(attempt, exc, elapsed=clock.monotonic() - started, rand=rand)
            if isinstance(decision, GiveUp):
                exc.add_note(decision.reason)
                raise
            if on_retry is not None:
                on_retry(attempt, exc, decision.seconds)
            await clock.sleep(decision.seconds)
