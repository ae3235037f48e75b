"""The SQL source under the real runtime: snapshot, then changes, checkpointed and resumed."""

from __future__ import annotations

import pytest

from sfsync.connectors.sql.capture.install import capture_objects
from sfsync.connectors.sql.capture.source import SqlCaptureSource
from sfsync.connectors.sql.client import ConnectionSettings
from sfsync.core.state import PipelineState
from sfsync.runtime.pipeline import Pipeline, PipelineOptions
from sfsync.spi.spec import EntitySelection
from sfsync.testing import FakeClock, MemoryCheckpointStore, MemoryDeadLetterStore, MemorySink

from .capture_helpers import make_db

pytestmark = pytest.mark.anyio


async def test_snapshot_then_changes_then_resume(settings: tuple[ConnectionSettings, str]) -> None:
    db = make_db(*settings)
    db.install()
    db.run(
        f"INSERT INTO {db.ref()} (ext_id__c, name, amount) VALUES (:k, :n, 1)",
        params=[{"k": f"E{n}", "n": f"name {n}"} for n in range(5)],
    )
    selection = EntitySelection(name="Invoice__c", target="invoice", key="Ext_Id__c")
    sink = MemorySink()
    checkpoints = MemoryCheckpointStore()
    clock = FakeClock()

    async def run_once() -> None:
        source = SqlCaptureSource(db.settings, capture_objects([selection]), clock=clock)
        pipeline = Pipeline(
            options=PipelineOptions(name="db-to-crm", entities=("Invoice__c",), batch_size=2),
            source=source,
            sink=sink,
            checkpoints=checkpoints,
            dead_letters=MemoryDeadLetterStore(),
            clock=clock,
        )
        status = await pipeline.run()
        assert status.state is not PipelineState.FAILED, status.last_error

    await run_once()
    assert sorted(sink.rows("Invoice__c")) == [f"E{n}" for n in range(5)]
    db.run(
        f"UPDATE {db.ref()} SET name = 'changed' WHERE ext_id__c = 'E1'",
        f"DELETE FROM {db.ref()} WHERE ext_id__c = 'E2'",
        f"INSERT INTO {db.ref()} (ext_id__c, name) VALUES ('E9', 'new')",
    )
    applied_before = len(sink.applied_log)
    await run_once()
    rows = sink.rows("Invoice__c")
    assert sorted(rows) == ["E0", "E1", "E3", "E4", "E9"]
    assert rows["E1"]["name"] == "changed"
    # Only the three changes were applied on the second run: nothing was read twice.
    assert [key for _, key, _ in sink.applied_log[applied_before:]] == ["E1", "E2", "E9"]
    await run_once()
    assert len(sink.applied_log) == applied_before + 3
    db.engine.dispose()
