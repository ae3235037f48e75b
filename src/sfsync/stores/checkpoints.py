"""Choosing a checkpoint store from the configured state URL."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from sfsync.core.checkpoint import CheckpointStore
from sfsync.core.errors import ConfigError


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
        from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

        from sfsync.stores.postgres import PostgresCheckpointStore

        parts = urlsplit(url.replace("postgresql+psycopg://", "postgresql://", 1))
        query = dict(parse_qsl(parts.query))
        schema = query.pop("schema", "public")
        clean = urlunsplit(parts._replace(query=urlencode(query)))
        return await PostgresCheckpointStore.open(clean, schema=schema)
    raise ConfigError(
        f"unsupported state URL {url!r}",
        hint="use sqlite:///path/to/state.sqlite or postgresql://user@host/db",
    )
