"""Following one source's changes for ever, into a channel, with retries.

A two-way sync in real time reads two sources at once, each in its own task: this is that
task. :func:`follow_changes` iterates ``source.changes`` from the last position it *read*
(not the last one the runtime saved: what was read is already in the channel), and calls it
again when it returns (a streaming source ends a cycle now and then; a polling source ends
each pass) or fails with a :class:`~sfsync.core.errors.RetryableError` (backing off under the
retry policy; progress resets the attempt count). Other errors end the task, and with it the
task group the runtime runs it in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from types import MappingProxyType

from anyio.abc import ObjectSendStream

from sfsync.core.checkpoint import Checkpoint
from sfsync.core.errors import RetryableError
from sfsync.core.events import Batch, Position
from sfsync.core.retry import RetryPolicy
from sfsync.runtime.executor import RetryHook, wait_to_retry
from sfsync.spi.clock import Clock
from sfsync.spi.source import Source


async def follow_changes(
    source: Source,
    tag: bool,
    checkpoint: Checkpoint,
    send: ObjectSendStream[tuple[bool, Batch]],
    *,
    policy: RetryPolicy,
    clock: Clock,
    rand: Callable[[], float],
    on_retry: RetryHook | None = None,
    idle: float = 1.0,
) -> None:
    """Send ``(tag, batch)`` for every batch of ``source``'s changes after ``checkpoint``,
    until cancelled.

    Args:
        idle: seconds to wait before asking again when ``changes`` returned without a batch
            (a source that does not follow, or a quiet cycle).

    Raises:
        RetryableError: the source kept failing past the retry policy.
    """
    positions: dict[str, Position] = dict(checkpoint.positions)
    attempt = 0
    started = clock.monotonic()
    async with send:
        while True:
            resume = replace(checkpoint, positions=MappingProxyType(dict(positions)))
            got = False
            try:
                async for batch in source.changes(resume):
                    await send.send((tag, batch))
                    got = True
                    attempt, started = 0, clock.monotonic()
                    for position in batch.positions():
                        positions[position.stream] = position
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
                continue
            if not got:
                await clock.sleep(idle)
