"""Concurrent writers, rollbacks and a reader polling all the while: replaying the events must
rebuild exactly the table (no change lost, none out of order per key)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import anyio
import anyio.to_thread
import pytest
import sqlalchemy as sa

from sfsync.connectors.sql.client import ConnectionSettings
from sfsync.core.events import ChangeEvent, Operation, Position

from .capture_helpers import Db, make_db, open_source, read_all

pytestmark = pytest.mark.anyio

KEYS = [f"K{n:02d}" for n in range(25)]


@pytest.fixture
async def db(settings: tuple[ConnectionSettings, str]) -> AsyncIterator[Db]:
    d = make_db(*settings)
    d.run(f"CREATE UNIQUE INDEX invoice_ext_id ON {d.ref()} (ext_id__c)")
    d.install()
    yield d
    d.engine.dispose()


def _writer(db: Db, seed: int, transactions: int) -> int:
    """Random transactions of inserts, updates and deletes; some rolled back. Returns how
    many committed."""
    rand = random.Random(seed)
    table = db.ref()
    committed = 0
    with db.engine.connect() as conn:
        for n in range(transactions):
            try:
                for key in rand.sample(KEYS, rand.randint(1, 3)):
                    choice = rand.random()
                    name = f"w{seed}-{n}-{key}"
                    if choice < 0.2:
                        conn.execute(
                            sa.text(f"DELETE FROM {table} WHERE ext_id__c = :k"), {"k": key}
                        )
                        continue
                    updated = conn.execute(
                        sa.text(f"UPDATE {table} SET name = :n WHERE ext_id__c = :k"),
                        {"n": name, "k": key},
                    ).rowcount
                    if not updated:
                        conn.execute(
                            sa.text(f"INSERT INTO {table} (ext_id__c, name) VALUES (:k, :n)"),
                            {"k": key, "n": name},
                        )
                if rand.random() < 0.15:
                    conn.rollback()
                else:
                    conn.commit()
                    committed += 1
            except sa.exc.DBAPIError:
                # Deadlocks, duplicate inserts racing, SQLite's busy writer: given up.
                conn.rollback()
    return committed


def _apply(state: dict[str, str], events: list[ChangeEvent]) -> None:
    for e in events:
        if e.op is Operation.DELETE:
            state.pop(e.key, None)
        else:
            assert e.after is not None
            state[e.key] = str(e.after["name"])


async def test_concurrent_writers_replay_to_the_table(db: Db) -> None:
    source = await open_source(db.settings, batch_size=50)
    positions: dict[str, Position] = dict(await source.current_positions())
    state: dict[str, str] = {}
    writers = 1 if db.dialect == "sqlite" else 4
    done = anyio.Event()
    committed: list[int] = []
    try:
        async with anyio.create_task_group() as tg:

            async def write(seed: int) -> None:
                committed.append(await anyio.to_thread.run_sync(_writer, db, seed, 60))

            async def all_writers() -> None:
                async with anyio.create_task_group() as inner:
                    for seed in range(writers):
                        inner.start_soon(write, seed)
                done.set()

            tg.start_soon(all_writers)
            while not done.is_set():
                events, _ = await read_all(source, positions)
                _apply(state, events)
                await anyio.sleep(0.005)
        # MariaDB passes the holes rollbacks leave once it sees their owners gone (a second).
        with anyio.fail_after(10):
            while True:
                events, _ = await read_all(source, positions)
                _apply(state, events)
                if not source.holes_waiting:
                    break
                await anyio.sleep(0.2)
    finally:
        await source.aclose()
    with db.engine.connect() as conn:
        table: dict[str, str] = dict(
            conn.execute(sa.text(f"SELECT ext_id__c, name FROM {db.ref()}")).all()
        )
    assert sum(committed) > 20, "too few transactions committed to prove anything"
    assert state == table
