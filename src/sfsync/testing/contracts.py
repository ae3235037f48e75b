"""Contract suites: subclass one in your tests and provide the fixture it asks for.

Example::

    class TestMyStore(CheckpointStoreContract):
        @pytest.fixture
        async def store(self):
            s = await MyStore.open(...)
            yield s
            await s.aclose()
"""

from __future__ import annotations

from types import MappingProxyType

import pytest

from sfsync.core.checkpoint import (
    Checkpoint,
    CheckpointStore,
    SnapshotProgress,
    SnapshotStatus,
)
from sfsync.core.events import Position


def _sample(n: int) -> Checkpoint:
    stream = "sf:/data/AccountChangeEvent"
    return Checkpoint(
        positions=MappingProxyType({stream: Position(stream, f"replay-{n}")}),
        snapshot=SnapshotProgress(
            status=SnapshotStatus.IN_PROGRESS,
            done=frozenset({"Contact"}),
            cursors=MappingProxyType({"Account": f"2026-01-01T00:00:00.000Z|001{n:015d}"}),
            stream_start=MappingProxyType({stream: Position(stream, "replay-0")}),
        ),
    )


class CheckpointStoreContract:
    """What every checkpoint store must do. Needs an async fixture ``store``."""

    @pytest.mark.anyio
    async def test_missing_sync_loads_none(self, store: CheckpointStore) -> None:
        assert await store.load("never-saved") is None

    @pytest.mark.anyio
    async def test_round_trip_is_exact(self, store: CheckpointStore) -> None:
        await store.save("s1", _sample(1))
        assert await store.load("s1") == _sample(1)

    @pytest.mark.anyio
    async def test_save_replaces(self, store: CheckpointStore) -> None:
        await store.save("s1", _sample(1))
        await store.save("s1", _sample(2))
        assert await store.load("s1") == _sample(2)

    @pytest.mark.anyio
    async def test_syncs_are_independent(self, store: CheckpointStore) -> None:
        await store.save("a", _sample(1))
        await store.save("b", _sample(2))
        assert await store.load("a") == _sample(1)
        assert await store.list_ids() == ["a", "b"]

    @pytest.mark.anyio
    async def test_delete_forgets(self, store: CheckpointStore) -> None:
        await store.save("a", _sample(1))
        await store.delete("a")
        await store.delete("a")  # deleting twice is harmless
        assert await store.load("a") is None
        assert await store.list_ids() == []
