"""Choosing a checkpoint store from the configured state URL."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from sfsync.core.checkpoint import CheckpointStore
from sfsync.core.deadletter import DeadLetterStore
from sfsync.core.errors import ConfigError

if TYPE_CHECKING:
    from sfsync.stores.conflicts import SqlConflictQueue
    from sfsync.stores.shadow import SqlShadowStore


class ClosableCheckpointStore(CheckpointStore, Protocol):
    """A checkpoint store that holds a connection to release."""

    async def aclose(self) -> None:
        """Close the connection."""
        ...


async def open_checkpoint_store(url: str) -> ClosableCheckpointStore:
    """Open the store that ``url`` names.

    ``sqlite:///relative/path.sqlite``, ``sqlite:////absolute/path.sqlite``, ``sqlite://:memory:``
    or ``postgresql://user@host:port/db`` (``postgres://`` too; ``?schema=name`` picks the schema).

    Raises:
        ConfigError: the URL's scheme is not one of those.
    """
    if url.startswith("sqlite://"):
        from sfsync.stores.sqlite import SqliteCheckpointStore

        rest = url.removeprefix("sqlite://")
        if rest in (":memory:", "/:memory:"):
            return SqliteCheckpointStore(":memory:")
        if not rest.startswith("/") or rest == "/":
            raise ConfigError(
                f"state URL {url!r} names no file",
                hint="write sqlite:///relative/file.sqlite or sqlite:////absolute/file.sqlite",
            )
        return SqliteCheckpointStore(Path(rest[1:]))
    if url.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
        from urllib.parse import parse_qsl, urlsplit

        from sfsync.stores.postgres import PostgresCheckpointStore

        parts = urlsplit(url.replace("postgresql+psycopg://", "postgresql://", 1))
        schema = dict(parse_qsl(parts.query)).get("schema", "public")
        return await PostgresCheckpointStore.open(_pg_url(url), schema=schema)
    raise ConfigError(
        f"unsupported state URL {url!r}",
        hint="use sqlite:///path/to/state.sqlite or postgresql://user@host/db",
    )


@dataclass
class StateStores:
    """The stores of one state URL, closed together: checkpoints, dead letters, and the
    shadows and conflict review queue of two-way syncs."""

    checkpoints: ClosableCheckpointStore
    dead_letters: ClosableDeadLetterStore
    shadows: SqlShadowStore
    conflicts: SqlConflictQueue

    async def aclose(self) -> None:
        await self.conflicts.aclose()
        await self.shadows.aclose()
        await self.dead_letters.aclose()
        await self.checkpoints.aclose()


class ClosableDeadLetterStore(DeadLetterStore, Protocol):
    """A dead-letter store that holds a connection to release."""

    async def aclose(self) -> None:
        """Close the connection."""
        ...


async def open_state(url: str) -> StateStores:
    """Every state store at ``url`` (the ``state.url`` of a configuration); tables are created
    where missing."""
    from sfsync.stores.conflicts import SqlConflictQueue
    from sfsync.stores.deadletters import PostgresDeadLetterStore, SqliteDeadLetterStore
    from sfsync.stores.postgres import PostgresCheckpointStore
    from sfsync.stores.shadow import SqlShadowStore
    from sfsync.stores.shadow_sql import PostgresStateDb, SqliteStateDb, StateDb
    from sfsync.stores.sqlite import SqliteCheckpointStore

    checkpoints = await open_checkpoint_store(url)
    dead: ClosableDeadLetterStore
    dbs: list[StateDb]
    if isinstance(checkpoints, SqliteCheckpointStore):
        dead = SqliteDeadLetterStore(checkpoints.path)
        dbs = [SqliteStateDb(checkpoints.path), SqliteStateDb(checkpoints.path)]
    elif isinstance(checkpoints, PostgresCheckpointStore):
        dead = await PostgresDeadLetterStore.open(_pg_url(url), schema=checkpoints.schema)
        dbs = [
            await PostgresStateDb.open(_pg_url(url), schema=checkpoints.schema) for _ in range(2)
        ]
    else:  # pragma: no cover - open_checkpoint_store returns one of the two
        raise ConfigError(f"unsupported state URL {url!r}")
    shadows = await SqlShadowStore.open(dbs[0])
    return StateStores(checkpoints, dead, shadows, await SqlConflictQueue.open(dbs[1]))


def _pg_url(url: str) -> str:
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    parts = urlsplit(url.replace("postgresql+psycopg://", "postgresql://", 1))
    query = {k: v for k, v in parse_qsl(parts.query) if k != "schema"}
    return urlunsplit(parts._replace(query=urlencode(query)))
