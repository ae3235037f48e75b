"""Checkpoints in an SQLite file: the embedded default, no service needed."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import anyio.to_thread

from sfsync.core.checkpoint import Checkpoint
from sfsync.core.errors import FatalError

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sfsync_checkpoints (
    sync_id    TEXT PRIMARY KEY,
    checkpoint TEXT NOT NULL,
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
)
"""


class SqliteCheckpointStore:
    """A :class:`~sfsync.core.checkpoint.CheckpointStore` in one SQLite file.

    Writes are single-statement upserts in WAL mode with ``synchronous=FULL``: a crash keeps
    either the old or the new checkpoint. Calls run in a worker thread so that they never
    block the event loop; one lock serialises them over the one connection.

    Args:
        path: the database file; its directory is created. ``":memory:"`` for tests.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute(_SCHEMA)

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def locked() -> T:
            with self._lock:
                return fn(self._conn)

        return await anyio.to_thread.run_sync(locked)

    async def load(self, sync_id: str) -> Checkpoint | None:
        row = await self._run(
            lambda c: c.execute(
                "SELECT checkpoint FROM sfsync_checkpoints WHERE sync_id = ?", (sync_id,)
            ).fetchone()
        )
        if row is None:
            return None
        try:
            return Checkpoint.from_json(row[0])
        except ValueError as exc:
            raise FatalError(
                f"the stored checkpoint of sync {sync_id!r} in {self.path} is unreadable: {exc}",
                hint=f"run `sfsync checkpoints reset {sync_id}` to resync it from scratch",
            ) from exc

    async def save(self, sync_id: str, checkpoint: Checkpoint) -> None:
        text = checkpoint.to_json()
        await self._run(
            lambda c: c.execute(
                "INSERT INTO sfsync_checkpoints (sync_id, checkpoint) VALUES (?, ?) "
                "ON CONFLICT (sync_id) DO UPDATE SET checkpoint = excluded.checkpoint, "
                "updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
                (sync_id, text),
            )
        )

    async def delete(self, sync_id: str) -> None:
        await self._run(
            lambda c: c.execute("DELETE FROM sfsync_checkpoints WHERE sync_id = ?", (sync_id,))
        )

    async def list_ids(self) -> list[str]:
        rows = await self._run(
            lambda c: c.execute(
                "SELECT sync_id FROM sfsync_checkpoints ORDER BY sync_id"
            ).fetchall()
        )
        return [r[0] for r in rows]

    async def aclose(self) -> None:
        await self._run(lambda c: c.close())
