"""The pipeline against in-memory sources and sinks with injected faults and a fake clock."""

from __future__ import annotations

import pytest

from sfsync.core.checkpoint import SnapshotStatus
from sfsync.core.deadletter import DeadLetterKind
from sfsync.core.events import Operation
from sfsync.core.retry import RetryPolicy
from sfsync.core.schema import EntitySchema, FieldKind, FieldSpec
from sfsync.core.state import PipelineState
from sfsync.runtime import Pipeline, PipelineOptions, RunMode
from sfsync.testing import (
    CHANGE_STREAM,
    FakeClock,
    MemoryCheckpointStore,
    MemoryDeadLetterStore,
    MemorySink,
    MemorySource,
)

SCHEMA = EntitySchema.of(
    "Account",
    "Id",
    [
        FieldSpec(name="Id", kind=FieldKind.ID),
        FieldSpec(name="Name", kind=FieldKind.STRING, length=255),
        FieldSpec(name="V", kind=FieldKind.STRING),
    ],
    version_field="V",
)


def _rows(n: int) -> list[dict[str, object]]:
    return [{"Id": f"a{i:04d}", "Name": f"Account {i}", "V": "v1"} for i in range(n)]


class Harness:
    def __init__(self, *, rows: int = 10, batch_size: int = 4, **sink_kw: object) -> None:
        self.source = MemorySource(
            {"Account": SCHEMA}, {"Account": _rows(rows)}, batch_size=batch_size
        )
        self.sink = MemorySink(**sink_kw)  # type: ignore[arg-type]
        self.store = MemoryCheckpointStore()
        self.dead = MemoryDeadLetterStore()
        self.clock = FakeClock()

    def pipeline(self, mode: RunMode = RunMode.ONCE, **kw: object) -> Pipeline:
        options = PipelineOptions(
            name="test",
            entities=("Account",),
            mode=mode,
            seed=1,
            **kw,  # type: ignore[arg-type]
        )
        return Pipeline(
            options=options,
            source=self.source,
            sink=self.sink,
            checkpoints=self.store,
            dead_letters=self.dead,
            clock=self.clock,
        )


@pytest.mark.anyio
async def test_snapshot_then_changes_end_equal_to_the_source() -> None:
    h = Harness(rows=10)
    status = await h.pipeline().run()
    assert status.state is PipelineState.STOPPED
    assert len(h.sink.rows("Account")) == 10
    h.source.emit(
        "Account", "a0001", Operation.UPDATE, {"Name": "Renamed"}, version="v2", partial=True
    )
    h.source.emit("Account", "a0002", Operation.DELETE, None, version="v2")
    h.source.emit(
        "Account", "new", Operation.CREATE, {"Id": "new", "Name": "N", "V": "v1"}, version="v1"
    )
    status = await h.pipeline().run()
    rows = h.sink.rows("Account")
    assert rows["a0001"] == {"Id": "a0001", "Name": "Renamed", "V": "v1"}
    assert "a0002" not in rows
    assert "new" in rows
    assert status.counters.read == 3
    checkpoint = await h.store.load("test")
    assert checkpoint is not None
    assert checkpoint.snapshot.status is SnapshotStatus.COMPLETE
    assert checkpoint.positions[CHANGE_STREAM].token == "2"


@pytest.mark.anyio
async def test_changes_during_the_snapshot_are_not_lost() -> None:
    h = Harness(rows=10, batch_size=3)
    # A change committed while the snapshot runs (after positions were taken).
    h.source.on_snapshot_batch.append(
        lambda: (
            h.source.emit(
                "Account",
                "a0000",
                Operation.UPDATE,
                {"Id": "a0000", "Name": "During", "V": "v9"},
                version="v9",
            )
            if len(h.source.log) == 0
            else None
        )
    )
    await h.pipeline().run()
    assert h.sink.rows("Account")["a0000"]["Name"] == "During"


@pytest.mark.anyio
async def test_an_interrupted_snapshot_resumes_from_its_cursor() -> None:
    h = Harness(rows=10, batch_size=3)
    h.source.fail_snapshot_after = 2
    status = await h.pipeline().run()
    assert status.state is PipelineState.FAILED
    assert "interrupted" in (status.last_error or "")
    assert len(h.sink.rows("Account")) == 6
    checkpoint = await h.store.load("test")
    assert checkpoint is not None
    assert checkpoint.snapshot.status is SnapshotStatus.IN_PROGRESS
    assert checkpoint.snapshot.cursors == {"Account": "a0005"}
    h.source.fail_snapshot_after = None
    status = await h.pipeline().run()
    assert status.state is PipelineState.STOPPED
    assert status.counters.read == 4  # only the rest was read again
    assert len(h.sink.rows("Account")) == 10


@pytest.mark.anyio
async def test_rejected_rows_go_to_dead_letters_and_the_rest_carry_on() -> None:
    h = Harness(rows=10, reject_keys={"a0003", "a0007"})
    status = await h.pipeline().run()
    assert status.state is PipelineState.STOPPED
    assert len(h.sink.rows("Account")) == 8
    letters = await h.dead.list("test")
    assert [(d.key, d.kind, d.code) for d in letters] == [
        ("a0003", DeadLetterKind.REJECTED, "BAD"),
        ("a0007", DeadLetterKind.REJECTED, "BAD"),
    ]
    assert '"Name": "Account 3"' in letters[0].payload
    assert status.counters.rejected == 2


@pytest.mark.anyio
async def test_transient_write_failures_are_retried_with_backoff() -> None:
    h = Harness(rows=4, fail_writes=3)
    status = await h.pipeline().run()
    assert status.state is PipelineState.STOPPED
    assert len(h.sink.rows("Account")) == 4
    assert status.counters.retries == 3
    assert len(h.clock.sleeps) == 3


@pytest.mark.anyio
async def test_giving_up_on_transient_failures_fails_the_pipeline_with_the_reason() -> None:
    h = Harness(rows=4, fail_writes=100)
    status = await h.pipeline(retry=RetryPolicy(max_attempts=3)).run()
    assert status.state is PipelineState.FAILED
    assert "gave up after 3 attempts" in (status.last_error or "")
    assert await h.store.load("test") is not None  # snapshot start was recorded
    assert h.sink.rows("Account") == {}


@pytest.mark.anyio
async def test_locked_rows_are_retried_alone_and_keep_their_order() -> None:
    h = Harness(rows=4, retry_keys={"a0001": 2})
    status = await h.pipeline().run()
    assert status.state is PipelineState.STOPPED
    assert len(h.sink.rows("Account")) == 4
    assert [k for _, k, _ in h.sink.applied_log].count("a0001") == 1
    assert status.counters.retries == 2


@pytest.mark.anyio
async def test_rows_locked_for_ever_become_failed_dead_letters() -> None:
    h = Harness(rows=4, retry_keys={"a0002": 99})
    status = await h.pipeline(retry=RetryPolicy(max_attempts=2)).run()
    assert status.state is PipelineState.STOPPED
    letters = await h.dead.list()
    assert [(d.key, d.kind) for d in letters] == [("a0002", DeadLetterKind.FAILED)]
    assert len(h.sink.rows("Account")) == 3


@pytest.mark.anyio
async def test_a_crash_repeats_work_but_never_loses_or_duplicates() -> None:
    h = Harness(rows=10, batch_size=3, stores_checkpoints=True, crash_on_flush=3)
    status = await h.pipeline().run()
    assert status.state is PipelineState.FAILED
    durable = dict(h.sink.rows("Account"))
    h.sink.crash_on_flush = None
    status = await h.pipeline().run()
    assert status.state is PipelineState.STOPPED
    rows = h.sink.rows("Account")
    assert len(rows) == 10
    assert all(rows[k] == v for k, v in durable.items())
    assert h.sink.checkpoint is not None
    assert h.sink.checkpoint.snapshot.status is SnapshotStatus.COMPLETE
    assert await h.store.load("test") is None  # the sink holds the checkpoint, with the data


@pytest.mark.anyio
async def test_stale_events_never_overwrite_newer_rows() -> None:
    h = Harness(rows=2)
    await h.pipeline().run()
    h.source.emit(
        "Account",
        "a0000",
        Operation.UPDATE,
        {"Id": "a0000", "Name": "new", "V": "v3"},
        version="v3",
    )
    h.source.emit(
        "Account",
        "a0000",
        Operation.UPDATE,
        {"Id": "a0000", "Name": "old", "V": "v2"},
        version="v2",
    )
    status = await h.pipeline().run()
    assert h.sink.rows("Account")["a0000"]["Name"] == "new"
    assert status.counters.stale == 1


@pytest.mark.anyio
async def test_continuous_mode_polls_on_the_clock_until_stopped() -> None:
    h = Harness(rows=1)
    pipeline = h.pipeline(RunMode.CONTINUOUS, interval=30.0)

    def stop_after_polls(clock: FakeClock) -> None:
        if len(clock.sleeps) >= 3:
            pipeline.request_stop()

    h.clock.on_sleep.append(stop_after_polls)
    status = await pipeline.run()
    assert status.state is PipelineState.STOPPED
    assert h.clock.sleeps[:3] == [30.0, 30.0, 30.0]


@pytest.mark.anyio
async def test_realtime_source_stops_on_request_without_losing_the_batch_in_hand() -> None:
    import anyio

    h = Harness(rows=1)
    h.source.capabilities = type(h.source.capabilities)(realtime=True)
    pipeline = h.pipeline(RunMode.CONTINUOUS)
    async with anyio.create_task_group() as tg:
        tg.start_soon(pipeline.run)
        for i in range(5):
            await anyio.sleep(0.01)
            h.source.emit(
                "Account", f"rt{i}", Operation.CREATE, {"Id": f"rt{i}", "V": "v1"}, version="v1"
            )
        for _ in range(100):
            if len(h.sink.rows("Account")) == 6:
                break
            await anyio.sleep(0.01)
        pipeline.request_stop()
    assert pipeline.state is PipelineState.STOPPED
    assert len(h.sink.rows("Account")) == 6
    checkpoint = await h.store.load("test")
    assert checkpoint is not None
    assert checkpoint.positions[CHANGE_STREAM].token == "4"


@pytest.mark.anyio
async def test_missing_entity_is_fatal_with_a_hint() -> None:
    h = Harness()
    pipeline = Pipeline(
        options=PipelineOptions(name="test", entities=("Acount",)),
        source=h.source,
        sink=h.sink,
        checkpoints=h.store,
        dead_letters=h.dead,
        clock=h.clock,
    )
    status = await pipeline.run()
    assert status.state is PipelineState.FAILED
    assert "Acount" in (status.last_error or "")
    assert "object names" in (status.last_error or "")
    assert h.source.closed == 1


@pytest.mark.anyio
async def test_ignored_deletes_leave_rows_untouched_and_are_counted() -> None:
    h = Harness(rows=3)
    await h.pipeline().run()
    h.source.emit("Account", "a0001", Operation.DELETE, None, version="v2")
    h.source.emit("Account", "a0002", Operation.UPDATE, {"Name": "x"}, version="v2", partial=True)
    status = await h.pipeline(ignore_deletes=frozenset({"Account"})).run()
    assert "a0001" in h.sink.rows("Account")
    assert h.sink.rows("Account")["a0002"]["Name"] == "x"
    assert (status.counters.ignored, status.counters.stale, status.counters.applied) == (1, 0, 1)


@pytest.mark.anyio
async def test_a_new_source_field_reaches_the_sink_without_a_restart() -> None:
    h = Harness(rows=2)
    pipeline = h.pipeline(RunMode.CONTINUOUS, interval=60.0, redescribe_every=300.0)
    wider = EntitySchema.of(
        "Account",
        "Id",
        [*SCHEMA, FieldSpec(name="Tier__c", kind=FieldKind.STRING, length=10)],
        version_field="V",
    )

    def time_passes(clock: FakeClock) -> None:
        if clock.monotonic() >= 120 and h.source.schemas["Account"] is SCHEMA:
            h.source.schemas["Account"] = wider  # a field is added in the source
        if clock.monotonic() >= 600:
            pipeline.request_stop()

    h.clock.on_sleep.append(time_passes)
    status = await pipeline.run()
    assert status.state is PipelineState.STOPPED
    assert h.sink.prepared == ["Account", "Account"]  # at start, and once after the change


@pytest.mark.anyio
async def test_write_failures_that_outlast_retries_are_not_retried_again_as_reads() -> None:
    h = Harness(rows=4, fail_writes=1000)
    status = await h.pipeline(retry=RetryPolicy(max_attempts=3)).run()
    assert status.state is PipelineState.FAILED
    assert h.sink.writes == 3  # one round of attempts, not one per re-read


@pytest.mark.anyio
async def test_a_source_failure_mid_read_is_retried_from_the_checkpoint() -> None:
    from sfsync.core.errors import RetryableError

    h = Harness(rows=10, batch_size=3)
    failures = iter([RetryableError("connection reset while paging")])

    def fail_once() -> None:
        error = next(failures, None)
        if error is not None:
            raise error

    h.source.on_snapshot_batch.append(fail_once)
    status = await h.pipeline().run()
    assert status.state is PipelineState.STOPPED
    assert status.counters.retries == 1
    assert len(h.sink.rows("Account")) == 10


@pytest.mark.anyio
async def test_too_many_dead_letters_in_one_run_stop_it_with_a_hint() -> None:
    h = Harness(rows=10, reject_keys={f"a{i:04d}" for i in range(6)})
    status = await h.pipeline(max_dead_letters=3).run()
    assert status.state is PipelineState.FAILED
    assert "dead-lettered" in (status.last_error or "")
    assert "deadletters list" in (status.last_error or "")
    assert await h.dead.count() >= 4  # nothing that failed was lost on the way


@pytest.mark.anyio
async def test_an_endpoint_that_is_still_starting_is_waited_for() -> None:
    h = Harness(rows=3, fail_opens=2)
    status = await h.pipeline().run()
    assert status.state is PipelineState.STOPPED
    assert h.sink.opens == 3
    assert status.counters.retries == 2


@pytest.mark.anyio
@pytest.mark.parametrize("loads_pages", [True, False])
async def test_a_snapshot_of_csv_pages_is_applied_counted_and_checkpointed(
    loads_pages: bool,
) -> None:
    h = Harness(rows=10, batch_size=4, record_pages=loads_pages)
    h.source.csv_pages = True
    status = await h.pipeline().run()
    assert status.state is PipelineState.STOPPED
    assert h.sink.rows("Account") == {r["Id"]: r for r in _rows(10)}
    # Three pages (4 + 4 + 2 records): loaded from their text, or applied through their
    # events (parsed on first use) by a sink that does not load pages.
    assert h.sink.pages_loaded == (3 if loads_pages else 0)
    assert status.counters.read == 10
    assert status.counters.applied == 10
    checkpoint = await h.store.load("test")
    assert checkpoint is not None
    assert checkpoint.snapshot.status is SnapshotStatus.COMPLETE


@pytest.mark.anyio
async def test_an_interrupted_snapshot_of_csv_pages_resumes_after_the_last_loaded_page() -> None:
    h = Harness(rows=10, batch_size=4, record_pages=True)
    h.source.csv_pages = True
    h.source.fail_snapshot_after = 2
    status = await h.pipeline().run()
    assert status.state is PipelineState.FAILED
    checkpoint = await h.store.load("test")
    assert checkpoint is not None
    assert checkpoint.snapshot.cursors == {"Account": "a0007"}  # the second page's last record
    h.source.fail_snapshot_after = None
    status = await h.pipeline().run()
    assert status.state is PipelineState.STOPPED
    assert status.counters.read == 2  # only the last page again
    assert h.sink.rows("Account") == {r["Id"]: r for r in _rows(10)}
