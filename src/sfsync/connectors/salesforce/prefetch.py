"""Reading the next page while the current one is being applied.

A snapshot alternates two waits: for Salesforce to send a page, and for the sink to write the
previous one. :func:`prefetched` overlaps them: while the consumer works on a page, the next
is already being fetched (one page ahead, so memory holds at most two pages).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import TypeVar

T = TypeVar("T")


async def prefetched(source: AsyncIterator[T]) -> AsyncIterator[T]:
    """The items of ``source``, each requested as soon as the previous one is handed out.

    Errors of ``source`` surface where the item would have. Closing the result early cancels
    the fetch in flight and closes ``source``.
    """
    pending: asyncio.Future[T] = asyncio.ensure_future(anext(source))
    try:
        while True:
            try:
                item = await pending
            except StopAsyncIteration:
                return
            pending = asyncio.ensure_future(anext(source))
            yield item
    finally:
        if not pending.done():
            pending.cancel()
            # The fetch ends cancelled (or it finished meanwhile): either way nothing is lost,
            # the consumer stopped asking for items.
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration, Exception):
                await pending
        elif not pending.cancelled():
            pending.exception()  # retrieved: an error of an unwanted item is not worth a warning
        close = getattr(source, "aclose", None)
        if close is not None:
            await close()
