from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sfsync.core.deadletter import DeadLetter, DeadLetterKind, DeadLetterStore
from sfsync.core.errors import ConfigError, SkippableError
from sfsync.core.events import ChangeEvent, Operation, Position
from sfsync.stores.deadletters import PostgresDeadLetterStore, SqliteDeadLetterStore
from sfsync.testing import MemoryDeadLetterStore

AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _letter(sync: str, key: str) -> DeadLetter:
    event = ChangeEvent(
        entity="Account",
        key=key,
        op=Operation.UPDATE,
        after={"Name": "Zürich " * 50, "When": AT},
        position=Position("s", "1"),
        committed_at=AT,
    )
    error = SkippableError("Name: data value too large", code="STRING_TOO_LONG", hint="shorten")
    return DeadLetter.of(sync, DeadLetterKind.REJECTED, event, error, AT)


class DeadLetterContract:
    @pytest.mark.anyio
    async def test_put_list_count(self, store: DeadLetterStore) -> None:
        await store.put([_letter("a", "1"), _letter("b", "2"), _letter("a", "3")])
        assert await store.count() == 3
        assert await store.count("a") == 2
        letters = await store.list("a")
        assert [d.key for d in letters] == ["1", "3"]
        first = letters[0]
        assert first == _letter("a", "1")
        assert json.loads(first.payload)["after"]["Name"].startswith("Zürich")
        assert first.code == "STRING_TOO_LONG"
        assert first.hint == "shorten"
        assert [d.key for d in await store.list(limit=1)] == ["1"]


class TestMemory(DeadLetterContract):
    @pytest.fixture
    def store(self) -> MemoryDeadLetterStore:
        return MemoryDeadLetterStore()


class TestSqlite(DeadLetterContract):
    @pytest.fixture
    async def store(self, tmp_path: Path) -> AsyncIterator[SqliteDeadLetterStore]:
        s = SqliteDeadLetterStore(tmp_path / "state.sqlite")
        yield s
        await s.aclose()


@pytest.mark.postgres
class TestPostgres(DeadLetterContract):
    @pytest.fixture
    async def store(self, postgres_url: str) -> AsyncIterator[PostgresDeadLetterStore]:
        schema = f"sfsync_test_{uuid.uuid4().hex[:10]}"
        s = await PostgresDeadLetterStore.open(postgres_url, schema=schema)
        yield s
        await s._conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await s.aclose()


@pytest.mark.anyio
@pytest.mark.postgres
async def test_postgres_refuses_odd_schema_names(postgres_url: str) -> None:
    with pytest.raises(ConfigError, match="identifier"):
        await PostgresDeadLetterStore.open(postgres_url, schema='x"; drop table y; --')
