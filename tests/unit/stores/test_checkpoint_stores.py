from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sfsync.core.errors import ConfigError, FatalError
from sfsync.stores import PostgresCheckpointStore, SqliteCheckpointStore, open_checkpoint_store
from sfsync.testing import CheckpointStoreContract, MemoryCheckpointStore


class TestMemoryStore(CheckpointStoreContract):
    @pytest.fixture
    async def store(self) -> MemoryCheckpointStore:
        return MemoryCheckpointStore()


class TestSqliteStore(CheckpointStoreContract):
    @pytest.fixture
    async def store(self, tmp_path: Path) -> AsyncIterator[SqliteCheckpointStore]:
        s = SqliteCheckpointStore(tmp_path / "state" / "state.sqlite")
        yield s
        await s.aclose()


@pytest.mark.postgres
class TestPostgresStore(CheckpointStoreContract):
    @pytest.fixture
    async def store(self, postgres_url: str) -> AsyncIterator[PostgresCheckpointStore]:
        schema = f"sfsync_test_{uuid.uuid4().hex[:10]}"
        s = await PostgresCheckpointStore.open(postgres_url, schema=schema)
        yield s
        await s._conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await s.aclose()


@pytest.mark.anyio
async def test_sqlite_survives_reopen(tmp_path: Path) -> None:
    from sfsync.core.checkpoint import Checkpoint
    from sfsync.core.events import Position

    path = tmp_path / "s.sqlite"
    first = SqliteCheckpointStore(path)
    cp = Checkpoint().advanced({"x": Position("x", "42")})
    await first.save("sync", cp)
    await first.aclose()
    second = SqliteCheckpointStore(path)
    assert await second.load("sync") == cp
    await second.aclose()


@pytest.mark.anyio
async def test_corrupt_checkpoint_is_fatal_with_a_fix(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    store = SqliteCheckpointStore(path)
    store._conn.execute("INSERT INTO sfsync_checkpoints (sync_id, checkpoint) VALUES ('x', 'junk')")
    with pytest.raises(FatalError, match="checkpoints reset x"):
        await store.load("x")
    await store.aclose()


@pytest.mark.anyio
async def test_open_by_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = await open_checkpoint_store("sqlite:///sub/state.sqlite")
    assert isinstance(store, SqliteCheckpointStore)
    assert (tmp_path / "sub" / "state.sqlite").exists()
    await store.aclose()
    memory = await open_checkpoint_store("sqlite://:memory:")
    await memory.aclose()


@pytest.mark.anyio
@pytest.mark.parametrize("url", ["mysql://x", "sqlite://", "sqlite:///", "redis://x"])
async def test_bad_urls_are_config_errors(url: str) -> None:
    with pytest.raises(ConfigError, match=r"\(fix: (use|write) sqlite"):
        await open_checkpoint_store(url)


@pytest.mark.anyio
@pytest.mark.postgres
async def test_postgres_by_url_with_schema(postgres_url: str) -> None:
    schema = f"sfsync_test_{uuid.uuid4().hex[:10]}"
    store = await open_checkpoint_store(f"{postgres_url}?schema={schema}")
    assert isinstance(store, PostgresCheckpointStore)
    assert store.schema == schema
    await store._conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    await store.aclose()


@pytest.mark.anyio
@pytest.mark.postgres
async def test_postgres_bad_identifier_is_a_config_error(postgres_url: str) -> None:
    with pytest.raises(ConfigError, match="identifier"):
        await PostgresCheckpointStore.open(postgres_url, schema="bad; drop")
