"""Running a call under the retry policy: the only place in the engine that sleeps.

It sleeps on the injected clock, so tests with a fake clock run the whole schedule instantly.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from operator import attrgetter
from typing import TypeVar

from sfsync.core.errors import FatalError, RetryableError
from sfsync.core.events import Batch
from sfsync.core.retry import GiveUp, RetryPolicy
from sfsync.spi.clock import Clock
from sfsync.spi.sink import Outcome, OutcomeKind, Sink

_KIND = attrgetter("kind")

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
            await wait_to_retry(
                exc,
                attempt,
                started=started,
                policy=policy,
                clock=clock,
                rand=rand,
                on_retry=on_retry,
            )


async def wait_to_retry(
    exc: RetryableError,
    attempt: int,
    *,
    started: float,
    policy: RetryPolicy,
    clock: Clock,
    rand: Callable[[], float],
    on_retry: RetryHook | None = None,
) -> None:
    """After failed attempt number ``attempt`` (the first since ``started``, a
    ``clock.monotonic()`` reading), wait on ``clock`` as ``policy`` says before the next one.

    Raises:
        RetryableError: ``exc`` itself, with the policy's reason as a note, once the policy
            gives up.
    """
    decision = policy.decide(attempt, exc, elapsed=clock.monotonic() - started, rand=rand)
    if isinstance(decision, GiveUp):
        exc.add_note(decision.reason)
        raise exc
    if on_retry is not None:
        on_retry(attempt, exc, decision.seconds)
    await clock.sleep(decision.seconds)


async def write_with_retry(
    sink: Sink,
    batch: Batch,
    *,
    policy: RetryPolicy,
    clock: Clock,
    rand: Callable[[], float],
    on_retry: RetryHook | None = None,
) -> list[Outcome | RetryableError]:
    """Write ``batch`` to ``sink``; retry the events whose outcome is ``RETRY`` alone, under
    ``policy``, until every outcome is final or the policy gives up.

    A whole-batch :class:`RetryableError` is retried by :func:`call_with_retry` first. The
    first write hands the sink ``batch`` itself (a page batch stays a page: the sink may load
    it without its events); retries of single events are new batches of those events.

    Returns:
        One entry per event: its final outcome, or the transient error that outlasted the
        policy (the caller dead-letters it).

    Raises:
        FatalError: the sink returned a different number of outcomes than events (a bug).
    """
    size = len(batch)
    final: list[Outcome | RetryableError | None] = [None] * size
    pending = list(range(size))
    attempt = 0
    started = clock.monotonic()
    while pending:
        whole = len(pending) == size
        sub = batch if whole else Batch.of([batch.events[i] for i in pending])
        outcomes = await call_with_retry(
            lambda b=sub: sink.write(b),  # type: ignore[misc]
            policy=policy,
            clock=clock,
            rand=rand,
            on_retry=on_retry,
        )
        if len(outcomes) != len(sub):
            raise FatalError(
                f"the sink returned {len(outcomes)} outcomes for {len(sub)} events",
                hint="this is a bug in the sink connector; please report it",
            )
        if whole and OutcomeKind.RETRY not in map(_KIND, outcomes):
            return list(outcomes)  # the common case, without a step per event
        retry: list[int] = []
        error: RetryableError | None = None
        for index, outcome in zip(pending, outcomes, strict=True):
            if outcome.kind is OutcomeKind.RETRY:
                retry.append(index)
                err = outcome.error
                error = err if isinstance(err, RetryableError) else RetryableError(str(err))
            else:
                final[index] = outcome
        if not retry or error is None:
            break
        attempt += 1
        decision = policy.decide(attempt, error, elapsed=clock.monotonic() - started, rand=rand)
        if isinstance(decision, GiveUp):
            error.add_note(decision.reason)
            for index in retry:
                final[index] = error
            break
        if on_retry is not None:
            on_retry(attempt, error, decision.seconds)
        await clock.sleep(decision.seconds)
        pending = retry
    return [entry for entry in final if entry is not None]
