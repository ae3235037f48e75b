from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import anyio.lowlevel
import pytest

from sfsync.connectors.salesforce.prefetch import prefetched
from sfsync.core.errors import RetryableError


class Pages:
    def __init__(self, n: int, *, fail_at: int | None = None) -> None:
        self.n = n
        self.fail_at = fail_at
        self.requested = 0
        self.closed = False

    async def gen(self) -> AsyncIterator[int]:
        try:
            for i in range(self.n):
                self.requested = i + 1
                await anyio.lowlevel.checkpoint()
                if i == self.fail_at:
                    raise RetryableError("connection reset")
                yield i
        finally:
            self.closed = True


@pytest.mark.anyio
async def test_items_arrive_in_order_and_the_next_is_fetched_meanwhile() -> None:
    pages = Pages(4)
    got: list[int] = []
    async for item in prefetched(pages.gen()):
        await anyio.sleep(0.01)  # the consumer works on the item...
        got.append(item)
        # ...while the next item has already been asked for.
        assert pages.requested >= min(item + 2, 4)
    assert got == [0, 1, 2, 3]
    assert pages.closed


@pytest.mark.anyio
async def test_errors_surface_where_the_item_would_have() -> None:
    pages = Pages(5, fail_at=2)
    got: list[int] = []

    async def consume() -> None:
        async for item in prefetched(pages.gen()):
            got.append(item)

    with pytest.raises(RetryableError):
        await consume()
    assert got == [0, 1]


@pytest.mark.anyio
async def test_closing_early_closes_the_source() -> None:
    pages = Pages(100)
    stream = prefetched(pages.gen())
    assert await anext(stream) == 0
    await stream.aclose()  # type: ignore[attr-defined]
    assert pages.closed
    assert pages.requested <= 2
