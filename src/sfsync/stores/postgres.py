"""Checkpoints in PostgreSQL: for production, beside or apart from the synced data."""

from __future__ import annotations

import re

import psycopg
from psycopg import sql

from sfsync.core.checkpoint import Checkpoint
from sfsync.core.errors import ConfigError, FatalError, RetryableError

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


class PostgresCheckpointStore:
    """A :class:`~sfsync.core.checkpoint.CheckpointStore` in a PostgreSQL table.

    Each save is one ``INSERT ... ON CONFLICT DO UPDATE`` in its own transaction, so it is
    atomic. Open it with :meth:`open`; the table is created when missing.

    Args:
        conn: an open async connection in autocommit mode.
        schema: the schema holding the table.
        table: the table name.
    """

    def __init__(
        self, conn: psycopg.AsyncConnection[tuple[object, ...]], *, schema: str, table: str
    ) -> None:
        self._conn = conn
        self._table = sql.Identifier(schema, table)
        self.schema = schema
        self.table = table

    @classmethod
    async def open(
        cls, url: str, *, schema: str = "public", table: str = "sfsync_checkpoints"
    ) -> PostgresCheckpointStore:
        """Connect to ``url`` and make sure the table exists.

        Raises:
            ConfigError: a bad schema or table name, or the server refused the credentials.
            RetryableError: the server could not be reached.
        """
        for name in (schema, table):
            if not IDENTIFIER.match(name):
                raise ConfigError(
                    f"{name!r} is not a plain SQL identifier",
                    hint="use letters, digits and underscores, starting with a letter",
                )
        try:
            conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
        except psycopg.OperationalError as exc:
            text = str(exc)
            if "authentication" in text or "does not exist" in text:
                raise ConfigError(
                    f"PostgreSQL refused the state store connection: {text.strip()}",
                    hint="check the user, password and database in state.url",
                ) from exc
            raise RetryableError(f"PostgreSQL is unreachable: {text.strip()}") from exc
        store = cls(conn, schema=schema, table=table)
        await conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        await conn.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} ("
                " sync_id text PRIMARY KEY,"
                " checkpoint jsonb NOT NULL,"
                " updated_at timestamptz NOT NULL DEFAULT now())"
            ).format(store._table)
        )
        return store

    async def load(self, sync_id: str) -> Checkpoint | None:
        cur = await self._conn.execute(
            sql.SQL("SELECT checkpoint::text FROM {} WHERE sync_id = %s").format(self._table),
            (sync_id,),
        )
        row = await cur.fetchone()
        if row is None:
            return None
        try:
            return Checkpoint.from_json(str(row[0]))
        except ValueError as exc:
            raise FatalError(
                f"the stored checkpoint of sync {sync_id!r} in {self.schema}.{self.table} "
                f"is unreadable: {exc}",
                hint=f"run `sfsync checkpoints reset {sync_id}` to resync it from scratch",
            ) from exc

    async def save(self, sync_id: str, checkpoint: Checkpoint) -> None:
        await self._conn.execute(
            sql.SQL(
                "INSERT INTO {} (sync_id, checkpoint) VALUES (%s, %s::jsonb) "
                "ON CONFLICT (sync_id) DO UPDATE SET checkpoint = EXCLUDED.checkpoint, "
                "updated_at = now()"
            ).format(self._table),
            (sync_id, checkpoint.to_json()),
        )

    async def delete(self, sync_id: str) -> None:
        await self._conn.execute(
            sql.SQL("DELETE FROM {} WHERE sync_id = %s").format(self._table), (sync_id,)
        )

    async def list_ids(self) -> list[str]:
        cur = await self._conn.execute(
            sql.SQL("SELECT sync_id FROM {} ORDER BY sync_id").format(self._table)
        )
        return [str(r[0]) for r in await cur.fetchall()]

    async def aclose(self) -> None:
        await self._conn.close()
