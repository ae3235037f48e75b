"""follow_changes: one source's changes into a channel, resumed from what was read, retried."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from types import MappingProxyType

import anyio
import pytest

from sfsync.core.checkpoint import Checkpoint
from sfsync.core.errors import FatalError, RetryableError
from sfsync.core.events import Batch, ChangeEvent, Operation, Position
from sfsync.core.retry import RetryPolicy
from sfsync.runtime.feeds import follow_changes
from sfsync.testing import FakeClock

pytestmark = pytest.mark.anyio
AT = datetime(2026, 1, 1, tzinfo=UTC)


def _event(n: int) -> ChangeEvent:
    return ChangeEvent(
        entity="Account",
        key=f"k{n}",
        op=Operation.UPDATE,
        after={"Name": str(n)},
        position=Position("log", str(n)),
        committed_at=AT,
    )


class Scripted:
    """A source whose successive ``changes`` calls play a script: a list of batches, or an
    error raised after them. Records the position each call resumed from."""

    def __init__(self, script: list[tuple[list[int], Exception | None]]) -> None:
        self.script = script
        self.resumed: list[str | None] = []

    async def changes(self, resume: Checkpoint | None) -> AsyncIterator[Batch]:
        position = resume.positions.get("log") if resume else None
        self.resumed.append(position.token if position else None)
        numbers, error = self.script.pop(0) if self.script else ([], None)
        for n in numbers:
            yield Batch.of([_event(n)])
        if error is not None:
            raise error


async def _collect(source: Scripted, *, attempts: int = 5, want: int) -> list[int]:
    send, receive = anyio.create_memory_object_stream[tuple[bool, Batch]](16)
    got: list[int] = []
    clock = FakeClock()
    start = Checkpoint(positions=MappingProxyType({"log": Position("log", "0")}))
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(
                lambda: follow_changes(
                    source,  # type: ignore[arg-type]
                    True,
                    start,
                    send,
                    policy=RetryPolicy(max_attempts=attempts),
                    clock=clock,
                    rand=lambda: 0.5,
                    idle=0.01,
                )
            )
            async with receive:
                async for tag, batch in receive:
                    assert tag is True
                    got.extend(int(e.key[1:]) for e in batch.events)
                    if len(got) >= want:
                        tg.cancel_scope.cancel()
    except BaseExceptionGroup as group:  # the feed's own error, as the runtime unwraps it
        raise group.exceptions[0] from None
    return got


async def test_changes_are_resumed_from_what_was_read_after_a_transient_failure() -> None:
    source = Scripted(
        [
            ([1, 2], RetryableError("connection reset")),
            ([3], None),  # a cycle that ends: asked again
            ([4], None),
        ]
    )
    assert await _collect(source, want=4) == [1, 2, 3, 4]
    assert source.resumed[:3] == ["0", "2", "3"]


async def test_a_source_failing_past_the_policy_ends_the_feed() -> None:
    source = Scripted([([], RetryableError("down"))] * 5)
    with pytest.raises(RetryableError, match="down"):
        await _collect(source, attempts=3, want=1)


async def test_a_fatal_error_ends_the_feed_at_once() -> None:
    source = Scripted([([1], FatalError("bad credentials"))])
    with pytest.raises(FatalError):
        await _collect(source, want=5)
