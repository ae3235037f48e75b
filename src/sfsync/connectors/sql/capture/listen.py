"""Waking a PostgreSQL source the moment a captured change commits (LISTEN/NOTIFY).

The capture trigger calls ``pg_notify('sfsync_changes', 'schema.table')``; PostgreSQL delivers
notifications at commit, once per transaction and payload. :class:`Listener` keeps a separate
autocommit connection listening on the channel. A notification only says "look now": the
change log stays the truth, so a notification lost with a dropped connection costs latency
(the source still polls every ``capture_poll_interval``), never data.
"""

from __future__ import annotations

import logging

import anyio
import psycopg

from sfsync.connectors.sql.capture.statements import NOTIFY_CHANNEL
from sfsync.connectors.sql.errors import classify
from sfsync.core.errors import SyncError
from sfsync.spi.clock import Clock

log = logging.getLogger("sfsync.sql.capture")


class Listener:
    """A LISTEN connection. Args: ``conninfo``, a libpq URL or key=value string."""

    def __init__(self, conninfo: str, *, channel: str = NOTIFY_CHANNEL) -> None:
        self.conninfo = conninfo
        self.channel = channel
        self._conn: psycopg.AsyncConnection[tuple[object, ...]] | None = None

    async def open(self) -> None:
        """Connect and start listening. Call before the first read, so that a change
        committed between that read and the first wait still wakes the source.

        Raises:
            ConfigError, RetryableError: the connection failed (classified).
        """
        try:
            self._conn = await psycopg.AsyncConnection.connect(
                self.conninfo, autocommit=True, application_name="sfsync-capture-listen"
            )
            await self._conn.execute(f'LISTEN "{self.channel}"')
        except psycopg.Error as exc:
            await self.aclose()
            raise classify(exc, during="listening for changes") from exc

    async def wait(self, clock: Clock, seconds: float) -> bool:
        """Wait for a notification or ``seconds`` on ``clock``, whichever comes first.

        Returns whether a notification came. A broken connection is reopened on the next
        call; until then this waits the full time (the poll is the safety net).
        """
        woken = False
        async with anyio.create_task_group() as tg:

            async def notified() -> None:
                nonlocal woken
                try:
                    await self._next()
                    woken = True
                except (psycopg.Error, SyncError) as exc:
                    log.warning("LISTEN connection lost (%s); polling until it is back", exc)
                    await self.aclose()
                    return
                tg.cancel_scope.cancel()

            async def timer() -> None:
                await clock.sleep(seconds)
                tg.cancel_scope.cancel()

            tg.start_soon(notified)
            tg.start_soon(timer)
        return woken

    async def _next(self) -> None:
        if self._conn is None or self._conn.closed:
            await self.open()
        conn = self._conn
        assert conn is not None
        async for _ in conn.notifies():
            break
        # Several commits may have notified at once: one read covers them all.
        async for _ in conn.notifies(timeout=0):
            pass

    async def aclose(self) -> None:
        """Close the connection (idempotent)."""
        conn, self._conn = self._conn, None
        if conn is not None and not conn.closed:
            await conn.close()
