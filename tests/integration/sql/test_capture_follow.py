"""Following the change log (NOTIFY on PostgreSQL, polling elsewhere) and the updated_at poller."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import anyio
import pytest

from sfsync.connectors.sql.capture.tables import poll_stream
from sfsync.connectors.sql.client import ConnectionSettings
from sfsync.core.events import ChangeEvent, Operation, Position
from sfsync.testing import FakeClock

from .capture_helpers import Db, checkpoint, make_db, open_source, read_all

pytestmark = pytest.mark.anyio


class StillClock(FakeClock):
    """A clock whose sleeps never end: only a notification can wake a waiting source."""

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        await anyio.sleep_forever()


@pytest.fixture
async def fresh(settings: tuple[ConnectionSettings, str]) -> AsyncIterator[Db]:
    d = make_db(*settings)
    yield d
    d.engine.dispose()


def _insert(db: Db, key: str, stamp: str = "2026-01-01 00:00:00") -> str:
    return (
        f"INSERT INTO {db.ref()} (ext_id__c, name, amount, paid, updated_at) "
        f"VALUES ('{key}', 'n', 1, FALSE, '{stamp}')"
    )


async def test_notify_wakes_a_following_postgres_source(postgres_url: str, fresh: Db) -> None:
    if fresh.dialect != "postgresql":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's")
    fresh.install()
    clock = StillClock()
    source = await open_source(fresh.settings, clock=clock, follow=True)
    assert source.capabilities.realtime
    got: list[ChangeEvent] = []
    arrived = anyio.Event()
    try:
        async with anyio.create_task_group() as tg:

            async def follow() -> None:
                async for batch in source.changes(None):
                    got.extend(batch.events)
                    if got:
                        arrived.set()

            tg.start_soon(follow)
            await anyio.sleep(0.3)  # let the source reach its wait
            fresh.run(_insert(fresh, "N1"))
            with anyio.fail_after(10):  # the poll never fires: only NOTIFY can deliver it
                await arrived.wait()
            tg.cancel_scope.cancel()
    finally:
        await source.aclose()
    assert [(e.op, e.key) for e in got] == [(Operation.CREATE, "N1")]
    assert clock.sleeps, "the source never waited"


async def test_a_following_source_polls_where_there_is_no_notify(fresh: Db) -> None:
    if fresh.dialect == "postgresql":
        pytest.skip("PostgreSQL is woken by NOTIFY (see the test above)")
    fresh.install()
    clock = FakeClock()
    clock.on_sleep.append(lambda _c: fresh.run(_insert(fresh, f"P{len(clock.sleeps)}")))
    source = await open_source(fresh.settings, clock=clock, follow=True)
    got: list[ChangeEvent] = []
    try:
        with anyio.fail_after(10):
            async for batch in source.changes(None):
                got.extend(batch.events)
                if len(got) >= 3:
                    break
    finally:
        await source.aclose()
    assert [e.key for e in got] == ["P1", "P2", "P3"]
    poll = fresh.settings.capture_poll_interval
    assert clock.sleeps[:3] == [poll, poll, poll]


async def test_updated_at_poller_reads_rows_sharing_one_timestamp_exactly_once(
    fresh: Db,
) -> None:
    settings = fresh.settings.model_copy(update={"capture": "updated_at", "capture_settle": 5.0})
    stamp = "2026-01-01 00:00:00"
    fresh.run(
        f"INSERT INTO {fresh.ref()} (ext_id__c, name, updated_at) VALUES (:k, 'tie', :u)",
        params=[{"k": f"T{n:03d}", "u": stamp} for n in range(250)],
    )
    clock = FakeClock(datetime(2026, 6, 1, tzinfo=UTC))
    first = await open_source(settings, clock=clock, batch_size=100)
    assert not first.capabilities.deletes
    start = datetime(2025, 12, 31, tzinfo=UTC).isoformat()
    positions = {poll_stream("invoice"): _position(f'["{start}", null]')}
    seen: list[ChangeEvent] = []
    async for batch in first.changes(checkpoint(positions)):
        seen.extend(batch.events)
        for e in batch.events:
            positions[e.position.stream] = e.position
        if len(seen) >= 200:
            break
    await first.aclose()
    assert len(seen) == 200
    # Rows written later; one "now", inside the settle window, which must wait.
    fresh.run(_insert(fresh, "LATER", "2026-02-01 00:00:00"))
    fresh.run(_insert(fresh, "NOW", "2026-06-01 00:00:00"))
    second = await open_source(settings, clock=clock, batch_size=100)
    try:
        rest, _ = await read_all(second, positions)
        again, _ = await read_all(second, positions)
        clock.advance(10)
        settled, _ = await read_all(second, positions)
    finally:
        await second.aclose()
    keys = [e.key for e in seen + rest]
    assert keys == [f"T{n:03d}" for n in range(250)] + ["LATER"]
    assert again == []
    assert [e.key for e in settled] == ["NOW"]
    assert {e.op for e in seen + rest} == {Operation.UPDATE}
    assert rest[-1].committed_at == datetime(2026, 2, 1, tzinfo=UTC)


def _position(token: str) -> Position:
    return Position(poll_stream("invoice"), token)
