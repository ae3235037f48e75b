"""The conflict review queue on SQLite and on the real PostgreSQL: one contract, one schema."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from sfsync.core.conflicts import ConflictRules, Side, Version
from sfsync.core.merge import resolve
from sfsync.core.review import ParkedConflict, Resolution, ReviewState
from sfsync.stores.checkpoints import open_state
from sfsync.stores.conflicts import SqlConflictQueue
from sfsync.stores.shadow_sql import PostgresStateDb, SqliteStateDb

AT = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
BASE = {"Name": "Acme", "Revenue": Decimal("10.00")}


def parked(key: str, sync: str = "two", *, sf_name: str = "S", at: datetime = AT) -> ParkedConflict:
    sf = Version(side=Side.SALESFORCE, values={**BASE, "Name": sf_name}, committed_at=at)
    ext = Version(side=Side.EXTERNAL, values={**BASE, "Name": "E"}, committed_at=None)
    decision = resolve(BASE, sf, ext, ConflictRules())
    return ParkedConflict.of(
        sync=sync,
        entity="Account",
        key=key,
        base=BASE,
        salesforce=sf,
        external=ext,
        decision=decision,
        at=at,
    )


class QueueContract:
    @pytest.mark.anyio
    async def test_park_get_list_count(self, queue: SqlConflictQueue) -> None:
        first = await queue.park(parked("1"))
        await queue.park(parked("2"))
        await queue.park(parked("3", sync="other"))
        got = await queue.get(first)
        assert got is not None
        assert got.id == first
        assert got.state is ReviewState.OPEN
        assert got.fields == ("Name",)
        assert got.base == BASE
        assert type(got.base["Revenue"]) is Decimal
        assert got.salesforce.values == {**BASE, "Name": "S"}
        assert got.salesforce.committed_at == AT
        assert got.external.committed_at is None
        assert got.resolution is None
        assert await queue.get(first + 1000) is None
        assert [c.key for c in await queue.list("two")] == ["1", "2"]
        assert [c.key for c in await queue.list(limit=1)] == ["1"]
        assert await queue.count() == 3
        assert await queue.count("two", ReviewState.OPEN) == 2
        assert await queue.count("two", ReviewState.RESOLVED) == 0

    @pytest.mark.anyio
    async def test_parking_a_record_again_refreshes_its_open_conflict(
        self, queue: SqlConflictQueue
    ) -> None:
        first = await queue.park(parked("1"))
        later = AT + timedelta(minutes=5)
        again = await queue.park(parked("1", sf_name="S2", at=later))
        assert again == first
        got = await queue.get(first)
        assert got is not None
        assert got.salesforce.values == {**BASE, "Name": "S2"}
        assert got.parked_at == AT
        assert got.updated_at == later
        assert await queue.count() == 1

    @pytest.mark.anyio
    async def test_resolve_once_then_apply(self, queue: SqlConflictQueue) -> None:
        cid = await queue.park(parked("1"))
        done = AT + timedelta(hours=1)
        assert await queue.resolve(
            cid,
            Resolution.CUSTOM,
            custom={"Name": "Acme Holding"},
            custom_base=Side.EXTERNAL,
            by="ann",
            at=done,
        )
        # A resolved conflict is not resolved again.
        assert not await queue.resolve(cid, Resolution.TAKE_SALESFORCE, by="bob", at=done)
        assert not await queue.resolve(cid + 1000, Resolution.TAKE_SALESFORCE, by="bob", at=done)
        got = await queue.get(cid)
        assert got is not None
        assert got.state is ReviewState.RESOLVED
        assert got.resolution is Resolution.CUSTOM
        assert got.custom == {"Name": "Acme Holding"}
        assert got.custom_base is Side.EXTERNAL
        assert (got.resolved_by, got.resolved_at) == ("ann", done)
        assert got.outcome() == {**BASE, "Name": "Acme Holding"}
        # The record can be parked anew while its old conflict is resolved.
        assert await queue.park(parked("1")) != cid
        assert [c.id for c in await queue.pending("two")] == [cid]
        await queue.mark_applied([cid], done)
        assert await queue.pending("two") == []
        applied = await queue.get(cid)
        assert applied is not None
        assert applied.applied_at == done

    @pytest.mark.anyio
    async def test_open_conflicts_of_records_and_superseding_them(
        self, queue: SqlConflictQueue
    ) -> None:
        one = await queue.park(parked("1"))
        two = await queue.park(parked("2"))
        await queue.park(parked("1", sync="other"))
        found = await queue.open_for("two", "Account", ["1", "2", "3"])
        assert {k: c.id for k, c in found.items()} == {"1": one, "2": two}
        assert await queue.open_for("two", "Account", []) == {}
        later = AT + timedelta(minutes=1)
        await queue.supersede([one], later)
        assert set(await queue.open_for("two", "Account", ["1", "2"])) == {"2"}
        closed = await queue.get(one)
        assert closed is not None
        assert closed.state is ReviewState.RESOLVED
        assert closed.resolution is Resolution.SUPERSEDED
        assert (closed.resolved_by, closed.resolved_at, closed.applied_at) == (
            "sfsync",
            later,
            later,
        )
        # Nothing for the runtime to apply, and a person can no longer resolve it.
        assert await queue.pending("two") == []
        assert not await queue.resolve(one, Resolution.TAKE_SALESFORCE, by="ann", at=later)


class TestSqlite(QueueContract):
    @pytest.fixture
    async def queue(self, tmp_path: Path) -> AsyncIterator[SqlConflictQueue]:
        q = await SqlConflictQueue.open(SqliteStateDb(tmp_path / "state.sqlite"))
        yield q
        await q.aclose()


@pytest.mark.postgres
class TestPostgres(QueueContract):
    @pytest.fixture
    async def queue(self, postgres_url: str) -> AsyncIterator[SqlConflictQueue]:
        schema = f"sfsync_test_{uuid.uuid4().hex[:10]}"
        db = await PostgresStateDb.open(postgres_url, schema=schema)
        q = await SqlConflictQueue.open(db)
        yield q
        await db.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await q.aclose()


@pytest.mark.anyio
@pytest.mark.postgres
async def test_open_state_on_postgres_creates_every_table(postgres_url: str) -> None:
    schema = f"sfsync_test_{uuid.uuid4().hex[:10]}"
    state = await open_state(f"{postgres_url}?schema={schema}")
    try:
        await state.conflicts.park(parked("1"))
        assert await state.conflicts.count() == 1
        assert await state.shadows.count() == 0
    finally:
        await state.aclose()
        db = await PostgresStateDb.open(postgres_url, schema=schema)
        await db.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await db.aclose()


@pytest.mark.anyio
@pytest.mark.postgres
async def test_postgres_refuses_odd_schema_names(postgres_url: str) -> None:
    from sfsync.core.errors import ConfigError

    with pytest.raises(ConfigError, match="identifier"):
        await PostgresStateDb.open(postgres_url, schema='x"; drop table y; --')
