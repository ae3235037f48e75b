"""Dead letters in SQLite (embedded default) or PostgreSQL, beside the checkpoints."""

from __future__ import annotations

import sqlite3
import threading
from datetime import datetime
from pathlib import Path

import anyio.to_thread
import psycopg

from sfsync.core.deadletter import DeadLetter, DeadLetterKind
from sfsync.core.errors import ConfigError
from sfsync.stores.postgres import IDENTIFIER as _IDENT

_COLUMNS = "sync, kind, entity, key, op, payload, error_type, code, message, hint, created_at"


def _row(d: DeadLetter) -> tuple[object, ...]:
    return (
        d.sync,
        d.kind.value,
        d.entity,
        d.key,
        d.op,
        d.payload,
        d.error_type,
        d.code,
        d.message,
        d.hint,
        d.created_at.isoformat(),
    )


def _letter(row: tuple[object, ...]) -> DeadLetter:
    return DeadLetter(
        sync=str(row[0]),
        kind=DeadLetterKind(str(row[1])),
        entity=str(row[2]),
        key=str(row[3]),
        op=str(row[4]),
        payload=str(row[5]),
        error_type=str(row[6]),
        code=None if row[7] is None else str(row[7]),
        message=str(row[8]),
        hint=None if row[9] is None else str(row[9]),
        created_at=datetime.fromisoformat(str(row[10])),
    )


class SqliteDeadLetterStore:
    """A :class:`~sfsync.core.deadletter.DeadLetterStore` in an SQLite file.

    Args:
        path: the database file (the checkpoint store's file is a fine choice).
    """

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS sfsync_dead_letters ("
            " id INTEGER PRIMARY KEY AUTOINCREMENT, sync TEXT NOT NULL, kind TEXT NOT NULL,"
            " entity TEXT NOT NULL, key TEXT NOT NULL, op TEXT NOT NULL, payload TEXT NOT NULL,"
            " error_type TEXT NOT NULL, code TEXT, message TEXT NOT NULL, hint TEXT,"
            " created_at TEXT NOT NULL)"
        )

    async def put(self, letters: list[DeadLetter]) -> None:
        rows = [_row(d) for d in letters]

        def insert() -> None:
            with self._lock:
                self._conn.execute("BEGIN")
                self._conn.executemany(
                    f"INSERT INTO sfsync_dead_letters ({_COLUMNS}) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
                self._conn.execute("COMMIT")

        await anyio.to_thread.run_sync(insert)

    async def list(self, sync: str | None = None, *, limit: int = 100) -> list[DeadLetter]:
        def select() -> list[tuple[object, ...]]:
            with self._lock:
                where, args = ("WHERE sync = ?", (sync,)) if sync is not None else ("", ())
                return self._conn.execute(
                    f"SELECT {_COLUMNS} FROM sfsync_dead_letters {where} ORDER BY id LIMIT ?",
                    (*args, limit),
                ).fetchall()

        return [_letter(r) for r in await anyio.to_thread.run_sync(select)]

    async def count(self, sync: str | None = None) -> int:
        def select() -> int:
            with self._lock:
                where, args = ("WHERE sync = ?", (sync,)) if sync is not None else ("", ())
                row = self._conn.execute(
                    f"SELECT count(*) FROM sfsync_dead_letters {where}", args
                ).fetchone()
                return int(row[0])

        return await anyio.to_thread.run_sync(select)

    async def aclose(self) -> None:
        await anyio.to_thread.run_sync(self._conn.close)


class PostgresDeadLetterStore:
    """A :class:`~sfsync.core.deadletter.DeadLetterStore` in PostgreSQL.

    Open with :meth:`open`; the table is created in ``schema`` when missing.
    """

    def __init__(self, conn: psycopg.AsyncConnection[tuple[object, ...]], table: str) -> None:
        self._conn = conn
        self._table = table

    @classmethod
    async def open(cls, url: str, *, schema: str = "public") -> PostgresDeadLetterStore:
        if not _IDENT.match(schema):
            raise ConfigError(
                f"{schema!r} is not a plain SQL identifier",
                hint="use letters, digits and underscores, starting with a letter",
            )
        conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
        table = f'"{schema}".sfsync_dead_letters'
        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        await conn.execute(
            f"CREATE TABLE IF NOT EXISTS {table} ("
            " id bigserial PRIMARY KEY, sync text NOT NULL, kind text NOT NULL,"
            " entity text NOT NULL, key text NOT NULL, op text NOT NULL, payload text NOT NULL,"
            " error_type text NOT NULL, code text, message text NOT NULL, hint text,"
            " created_at timestamptz NOT NULL)"
        )
        return cls(conn, table)

    async def put(self, letters: list[DeadLetter]) -> None:
        async with self._conn.transaction(), self._conn.cursor() as cur:
            await cur.executemany(
                f"INSERT INTO {self._table} ({_COLUMNS}) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                [_row(d) for d in letters],
            )

    async def list(self, sync: str | None = None, *, limit: int = 100) -> list[DeadLetter]:
        where, args = ("WHERE sync = %s", (sync,)) if sync is not None else ("", ())
        cur = await self._conn.execute(
            f"SELECT sync, kind, entity, key, op, payload, error_type, code, message,"
            f" hint, created_at::text FROM {self._table} {where} ORDER BY id LIMIT %s",
            (*args, limit),
        )
        rows = await cur.fetchall()
        return [_letter((*r[:10], datetime.fromisoformat(str(r[10])).isoformat())) for r in rows]

    async def count(self, sync: str | None = None) -> int:
        where, args = ("WHERE sync = %s", (sync,)) if sync is not None else ("", ())
        cur = await self._conn.execute(f"SELECT count(*) FROM {self._table} {where}", args)
        row = await cur.fetchone()
        return int(str(row[0])) if row else 0

    async def aclose(self) -> None:
        await self._conn.close()
