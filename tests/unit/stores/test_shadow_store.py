"""The shadow store on SQLite and on the real PostgreSQL: one contract, one schema."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sfsync.core.conflicts import is_echo
from sfsync.core.review import Shadow
from sfsync.stores.checkpoints import open_state
from sfsync.stores.shadow import SqlShadowStore
from sfsync.stores.shadow_sql import (
    PostgresStateDb,
    SqliteStateDb,
    dump_values,
    load_values,
)

AT = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
TYPED = {
    "Name": "Zürich AG",
    "Revenue": Decimal("1234.50"),
    "Employees": 42,
    "Rating": 4.5,
    "Active": True,
    "Founded": date(1999, 1, 31),
    "Opens": time(8, 30),
    "Seen": datetime(2026, 4, 30, 23, 59, 59, 123000, tzinfo=UTC),
    "Logo": b"\x89PNG",
    "Notes": None,
    "Tags": ["a", "b"],
    "Odd": {"$date": "not a tag"},  # a real mapping shaped like a tag
    "NaN": float("nan"),
}


def _shadow(key: str, *, sync: str = "two", values: dict[str, object] | None = None) -> Shadow:
    return Shadow(
        sync=sync,
        entity="Account",
        key=key,
        values={"Name": f"Acme {key}"} if values is None else values,
        salesforce_id=f"001{key}",
        external_key=f"ext-{key}",
        salesforce_version="2026-05-01T12:00:00.000Z",
        external_version="17",
        synced_at=AT,
    )


class ShadowContract:
    @pytest.mark.anyio
    async def test_put_and_get_by_each_key(self, store: SqlShadowStore) -> None:
        await store.put([_shadow("1"), _shadow("2"), _shadow("1", sync="other")])
        found = await store.get("two", "Account", ["1", "2", "3"])
        assert sorted(found) == ["1", "2"]
        assert found["1"] == _shadow("1")
        assert (await store.by_salesforce_id("two", "Account", ["0012"]))["0012"].key == "2"
        assert (await store.by_external_key("two", "Account", ["ext-1"]))["ext-1"].key == "1"
        assert await store.get("two", "Contact", ["1"]) == {}
        assert await store.count() == 3
        assert await store.count("two") == 2

    @pytest.mark.anyio
    async def test_put_replaces(self, store: SqlShadowStore) -> None:
        await store.put([_shadow("1")])
        await store.put([_shadow("1", values={"Name": "Acme AG"})])
        assert (await store.get("two", "Account", ["1"]))["1"].values == {"Name": "Acme AG"}
        assert await store.count() == 1

    @pytest.mark.anyio
    async def test_values_keep_their_types(self, store: SqlShadowStore) -> None:
        await store.put([_shadow("1", values=TYPED)])
        back = (await store.get("two", "Account", ["1"]))["1"].values
        assert set(back) == set(TYPED)
        for name, value in TYPED.items():
            assert type(back[name]) is type(value), name
        # So the record we wrote is recognised when it comes back (echo suppression).
        assert is_echo(TYPED, back)

    @pytest.mark.anyio
    async def test_delete_and_forget(self, store: SqlShadowStore) -> None:
        await store.put([_shadow(str(i)) for i in range(1200)] + [_shadow("x", sync="other")])
        # More keys than one statement takes.
        assert len(await store.get("two", "Account", [str(i) for i in range(1200)])) == 1200
        await store.delete("two", "Account", [str(i) for i in range(600)])
        assert await store.count("two") == 600
        assert await store.forget("two") == 600
        assert await store.count() == 1

    @pytest.mark.anyio
    async def test_empty_calls_do_nothing(self, store: SqlShadowStore) -> None:
        await store.put([])
        await store.delete("two", "Account", [])
        assert await store.get("two", "Account", []) == {}


class TestSqlite(ShadowContract):
    @pytest.fixture
    async def store(self, tmp_path: Path) -> AsyncIterator[SqlShadowStore]:
        s = await SqlShadowStore.open(SqliteStateDb(tmp_path / "state.sqlite"))
        yield s
        await s.aclose()


@pytest.mark.postgres
class TestPostgres(ShadowContract):
    @pytest.fixture
    async def store(self, postgres_url: str) -> AsyncIterator[SqlShadowStore]:
        schema = f"sfsync_test_{uuid.uuid4().hex[:10]}"
        db = await PostgresStateDb.open(postgres_url, schema=schema)
        s = await SqlShadowStore.open(db)
        yield s
        await db.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await s.aclose()


@pytest.mark.anyio
async def test_open_state_opens_the_shadows_beside_the_checkpoints(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/state.sqlite"
    state = await open_state(url)
    await state.shadows.put([_shadow("1")])
    await state.aclose()
    again = await open_state(url)
    assert await again.shadows.count() == 1
    await again.aclose()


def test_an_unsupported_value_type_is_refused_with_a_fix() -> None:
    with pytest.raises(TypeError, match="cannot be kept in the state store"):
        dump_values({"x": object()})


json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(),
    st.decimals(allow_nan=False, allow_infinity=False),
    st.datetimes(timezones=st.just(UTC)),
    st.dates(),
    st.binary(max_size=8),
)
nested = st.recursive(
    json_leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(["a", "$date", "$map", "$decimal"]), inner, max_size=2),
    ),
    max_leaves=8,
)


@given(st.dictionaries(st.text(min_size=1, max_size=5), nested, max_size=5))
def test_the_value_codec_round_trips(values: dict[str, object]) -> None:
    text = dump_values(values)
    assert load_values(text) == values


@pytest.mark.anyio
@pytest.mark.postgres
async def test_postgres_statistics_follow_bulk_puts(postgres_url: str) -> None:
    # Without statistics PostgreSQL estimates one row for any lookup and scans every shadow
    # to match a list of Ids; autovacuum analyzes too late for a first run, so puts do it.
    schema = f"sfsync_test_{uuid.uuid4().hex[:10]}"
    db = await PostgresStateDb.open(postgres_url, schema=schema)
    store = await SqlShadowStore.open(db)
    table = db.table("sfsync_shadows")
    try:
        for start in range(0, 6000, 500):
            await store.put([_shadow(str(i)) for i in range(start, start + 500)])
        rows = await db.fetch(f"SELECT reltuples FROM pg_class WHERE oid = '{table}'::regclass")
        # Analyzed at 1,000 rows, then whenever the table may have doubled: 2,000, 4,000.
        assert float(str(rows[0][0])) == 4000
    finally:
        await db.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await store.aclose()
