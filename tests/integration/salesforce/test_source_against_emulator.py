"""The Salesforce source against the emulator, in-process (httpx ASGI transport).

These drive the whole path a sync uses (OAuth, describe, query paging, queryAll, the pipeline)
and compare the target with the org record by record.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from types import MappingProxyType

import httpx
import pytest

from sfsync.connectors.salesforce.auth import JwtBearer, StaticSession
from sfsync.connectors.salesforce.client import SalesforceClient
from sfsync.connectors.salesforce.source import ObjectSelection, SalesforceSource
from sfsync.core.checkpoint import Checkpoint, SnapshotProgress, SnapshotStatus
from sfsync.core.state import PipelineState
from sfsync.emulator.app import build_app
from sfsync.emulator.clock import OrgClock
from sfsync.emulator.org import Org
from sfsync.runtime import Pipeline, PipelineOptions
from sfsync.spi.source import SourceContext
from sfsync.testing import FakeClock, MemoryCheckpointStore, MemoryDeadLetterStore, MemorySink

TOKEN = "00D000000000001!sfsync-test-token"
FIELDS = ("Id", "Name", "Industry", "AnnualRevenue", "SystemModstamp", "IsDeleted")


@pytest.fixture
def org() -> Iterator[Org]:
    org = Org.create(access_token=TOKEN, clock=OrgClock(frozen_at=datetime(2026, 3, 1, tzinfo=UTC)))
    yield org
    org.close()


class _Recording(httpx.AsyncBaseTransport):
    """The emulator's transport, noting each request's method and path."""

    def __init__(self, inner: httpx.AsyncBaseTransport, seen: list[str]) -> None:
        self.inner, self.seen = inner, seen

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(f"{request.method} {request.url.path}")
        return await self.inner.handle_async_request(request)


class _RefusingBulk(httpx.AsyncBaseTransport):
    """The emulator's transport, but creating a Bulk query job is refused as an org without
    the Bulk API (or an object it cannot read) refuses it."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path.endswith("/jobs/query"):
            body = [{"errorCode": "INVALIDENTITY", "message": "Entity is not supported"}]
            return httpx.Response(400, json=body)
        return await self.inner.handle_async_request(request)


def _client(
    org: Org, *, jwt: bool = False, seen: list[str] | None = None, refuse_bulk: bool = False
) -> SalesforceClient:
    transport: httpx.AsyncBaseTransport = httpx.ASGITransport(app=build_app(org))
    if refuse_bulk:
        transport = _RefusingBulk(transport)
    if seen is not None:
        transport = _Recording(transport, seen)
    if jwt:
        grant: JwtBearer | StaticSession = JwtBearer(
            client_id=org.auth.app.client_id,
            username=org.auth.user.username,
            private_key=org.auth.app.private_key_pem.decode(),
            login_url="http://emulator.test",
            audience="https://login.salesforce.com",
        )
    else:
        grant = StaticSession(access_token=TOKEN, instance_url="http://emulator.test")
    # The client's clock agrees with the org's: JWT expiry is checked against the org's time.
    return SalesforceClient(
        grant=grant, clock=FakeClock(org.clock.now()), transport=transport, api_version="62.0"
    )


class Sync:
    def __init__(
        self,
        org: Org,
        *,
        seen: list[str] | None = None,
        where: str | None = None,
        jwt: bool = False,
        overlap: float = 60.0,
        bulk_threshold: int | None = None,
        chunk_records: int | None = None,
        poll_bulk_threshold: int | None = None,
        refuse_bulk: bool = False,
        skew: float = 0.0,
    ) -> None:
        self.chunk_records = chunk_records
        self.poll_bulk_threshold = poll_bulk_threshold
        self.refuse_bulk = refuse_bulk
        self.seen = seen
        self.org = org
        self.skew = skew
        self.overlap = overlap
        self.bulk_threshold = bulk_threshold
        self.where = where
        self.jwt = jwt
        self.sink = MemorySink(stores_checkpoints=True)
        self.dead = MemoryDeadLetterStore()

    async def run(self) -> Pipeline:
        self.source = source = SalesforceSource(
            _client(self.org, jwt=self.jwt, seen=self.seen, refuse_bulk=self.refuse_bulk),
            [ObjectSelection(name="Account", fields=FIELDS, where=self.where)],
            overlap=self.overlap,
            bulk_threshold=self.bulk_threshold,
            chunk_records=self.chunk_records,
            poll_bulk_threshold=self.poll_bulk_threshold,
        )
        pipeline = Pipeline(
            options=PipelineOptions(name="accounts", entities=("Account",), batch_size=200, seed=7),
            source=source,
            sink=self.sink,
            checkpoints=MemoryCheckpointStore(),
            dead_letters=self.dead,
            # The sync's clock agrees with the org's, as a real client's roughly does.
            clock=FakeClock(self.org.clock.now() + timedelta(seconds=self.skew)),
        )
        status = await pipeline.run()
        assert status.state is PipelineState.STOPPED, status.last_error
        return pipeline

    def target(self) -> dict[str, tuple[object, ...]]:
        return {
            key: (row["Name"], row["Industry"], row["AnnualRevenue"])
            for key, row in self.sink.rows("Account").items()
        }


def _org_rows(
    org: Org, where: Callable[[dict[str, object]], bool] | None = None
) -> dict[str, tuple[object, ...]]:
    return {
        str(r["Id"]): (r["Name"], r["Industry"], r["AnnualRevenue"])
        for r in org.store.scan("Account", include_deleted=False)
        if where is None or where(dict(r))
    }


def _seed(org: Org, n: int) -> list[str]:
    rows = [
        {
            "Name": f"Account {i:05d}",
            "Industry": "Banking" if i % 3 else "Retail",
            "AnnualRevenue": float(i),
        }
        for i in range(n)
    ]
    return org.store.bulk_insert("Account", rows)


@pytest.mark.anyio
async def test_snapshot_then_polling_keeps_the_target_equal_to_the_org(org: Org) -> None:
    ids = _seed(org, 450)
    sync = Sync(org, jwt=True)
    await sync.run()
    assert sync.target() == _org_rows(org)

    org.clock.advance(5)
    org.store.update("Account", ids[0], {"Name": "Renamed"})
    org.store.delete(ids[1])
    new_id = org.store.insert("Account", {"Name": "Brand new", "Industry": "Retail"})
    pipeline = await sync.run()
    assert sync.target() == _org_rows(org)
    assert new_id in sync.target()
    assert ids[1] not in sync.target()
    assert pipeline.status().counters.read >= 3

    org.clock.advance(5)
    org.store.undelete(ids[1])
    await sync.run()
    assert ids[1] in sync.target()
    assert sync.target() == _org_rows(org)


@pytest.mark.anyio
async def test_records_sharing_a_modstamp_are_never_skipped(org: Org) -> None:
    ids = _seed(org, 10)
    sync = Sync(org, overlap=0.0)  # no overlap re-read: the cursor alone must be tie-safe
    await sync.run()
    # The clock is frozen: 700 updates commit in the same millisecond, more than fit a page.
    more = _seed(org, 700)
    for record_id in ids:
        org.store.update("Account", record_id, {"Industry": "Energy"})
    await sync.run()
    assert sync.target() == _org_rows(org)
    assert all(sync.target()[m] for m in more)
    assert len(sync.dead.letters) == 0


@pytest.mark.anyio
@pytest.mark.parametrize(("overlap", "caught"), [(60.0, True), (0.0, False)])
async def test_a_late_commit_inside_the_overlap_window_is_caught(
    org: Org, overlap: float, caught: bool
) -> None:
    ids = _seed(org, 5)
    sync = Sync(org, overlap=overlap)
    await sync.run()
    org.clock.advance(10)
    org.store.update("Account", ids[0], {"Name": "committed first"})
    await sync.run()  # the cursor is now at the first commit
    # A transaction that started earlier commits now, with an older SystemModstamp.
    org.clock.advance(-5)
    org.store.update("Account", ids[1], {"Name": "committed late"})
    org.clock.advance(5)
    await sync.run()
    assert sync.target()[ids[0]][0] == "committed first"
    # Without the overlap window the late commit is lost: the reason the window exists.
    assert (sync.target()[ids[1]][0] == "committed late") is caught


@pytest.mark.anyio
async def test_row_filter_reads_only_matching_rows_and_removes_rows_that_leave_it(org: Org) -> None:
    ids = _seed(org, 30)
    sync = Sync(org, where="Industry = 'Banking'")
    await sync.run()
    banking = lambda r: r["Industry"] == "Banking"  # noqa: E731
    assert sync.target() == _org_rows(org, banking)
    leaving = next(i for i in ids if sync.target().get(i))
    entering = next(i for i in ids if i not in sync.target())
    org.clock.advance(1)
    org.store.update("Account", leaving, {"Industry": "Retail"})
    org.store.update("Account", entering, {"Industry": "Banking"})
    await sync.run()
    assert leaving not in sync.target()
    assert entering in sync.target()
    assert sync.target() == _org_rows(org, banking)


@pytest.mark.anyio
async def test_overlap_sweeps_run_once_per_window_not_on_every_poll(org: Org) -> None:
    from sfsync.core.checkpoint import Checkpoint
    from sfsync.spi.source import SourceContext

    ids = _seed(org, 3)
    clock = FakeClock()
    source = SalesforceSource(
        _client(org), [ObjectSelection(name="Account", fields=FIELDS)], overlap=60.0
    )
    await source.open(SourceContext(sync_name="t", clock=clock, batch_size=200))
    await source.describe(["Account"])
    checkpoint = Checkpoint().advanced(await source.current_positions())

    async def poll() -> list[str]:
        nonlocal checkpoint
        keys: list[str] = []
        async for batch in source.changes(checkpoint):
            keys.extend(e.key for e in batch)
            checkpoint = checkpoint.advanced({p.stream: p for p in [batch.last_position] if p})
        return keys

    org.clock.advance(10)
    org.store.update("Account", ids[0], {"Name": "first"})
    # The first poll sweeps: it re-reads the window before the cursor (the seeded records).
    assert sorted(await poll()) == sorted(ids)
    assert await poll() == []
    org.clock.advance(-5)
    org.store.update("Account", ids[1], {"Name": "late"})  # commits with an older stamp
    org.clock.advance(5)
    assert await poll() == []  # inside the window: a cheap poll from the cursor only
    clock.advance(60)
    assert await poll() == [ids[1]]  # the next sweep catches the late commit, and only it
    await source.aclose()


@pytest.mark.anyio
async def test_large_objects_are_snapshotted_through_bulk_api_2(org: Org) -> None:
    ids = _seed(org, 450)
    org.store.update("Account", ids[5], {"AnnualRevenue": None, "Name": 'Quote "and", comma'})
    sync = Sync(org, bulk_threshold=100)
    pipeline = await sync.run()
    assert sync.target() == _org_rows(org)
    assert sync.target()[ids[5]] == ('Quote "and", comma', "Banking", None)
    assert pipeline.status().counters.read >= 450
    assert sync.source.snapshot_api == {"Account": "bulk"}
    # The job was deleted after reading: nothing is left behind in the org.
    client = _client(org)
    async with client:
        jobs = await client.get_json(client.data_path("jobs/query"))
    assert [j for j in jobs.get("records", []) if j.get("state") != "Deleted"] == []


@pytest.mark.anyio
async def test_a_large_object_is_read_as_id_ranges_one_bulk_job_each(org: Org) -> None:
    _seed(org, 1000)
    seen: list[str] = []
    sync = Sync(org, bulk_threshold=100, chunk_records=150, seen=seen)
    pipeline = await sync.run()
    assert sync.target() == _org_rows(org)
    assert pipeline.status().counters.read >= 1000
    # Several jobs (ranges of ~150 records), every one deleted once read.
    created = [r for r in seen if r.startswith("POST") and r.endswith("/jobs/query")]
    deleted = [r for r in seen if r.startswith("DELETE") and "/jobs/query/" in r]
    assert len(created) >= 5
    assert len(deleted) == len(created)


@pytest.mark.anyio
async def test_a_chunked_snapshot_resumes_after_the_last_applied_id(org: Org) -> None:
    ids = sorted(_seed(org, 1000))
    source = SalesforceSource(
        _client(org),
        [ObjectSelection(name="Account", fields=FIELDS)],
        bulk_threshold=100,
        chunk_records=150,
    )
    await source.open(SourceContext(sync_name="t", clock=FakeClock(org.clock.now())))
    try:
        await source.describe(["Account"])
        resume = Checkpoint(
            snapshot=SnapshotProgress(
                status=SnapshotStatus.IN_PROGRESS,
                cursors=MappingProxyType({"Account": ids[399]}),
            )
        )
        keys = [e.key async for batch in source.snapshot(["Account"], resume) for e in batch]
    finally:
        await source.aclose()
    assert source.snapshot_api == {"Account": "bulk"}
    assert keys == ids[400:]  # every later record, once, in Id order


@pytest.mark.anyio
async def test_small_objects_stay_on_rest(org: Org) -> None:
    _seed(org, 20)
    sync = Sync(org, bulk_threshold=100)
    await sync.run()
    assert sync.source.snapshot_api == {"Account": "rest"}
    assert sync.target() == _org_rows(org)


@pytest.mark.anyio
async def test_records_purged_from_the_recycle_bin_are_deleted_too(org: Org) -> None:
    ids = _seed(org, 5)
    sync = Sync(org)
    await sync.run()
    org.clock.advance(120)
    org.store.delete(ids[0])
    org.store.hard_delete(ids[0])  # emptied from the recycle bin: invisible to queryAll
    org.store.hard_delete(ids[1])  # hard delete (Bulk API hardDelete)
    org.clock.advance(120)
    await sync.run()
    assert ids[0] not in sync.target()
    assert ids[1] not in sync.target()
    assert sync.target() == _org_rows(org)


@pytest.mark.anyio
@pytest.mark.parametrize("skew", [-3600.0, 3600.0])
async def test_a_clock_that_disagrees_with_the_org_does_not_stop_the_sync(
    org: Org, skew: float
) -> None:
    ids = _seed(org, 5)
    sync = Sync(org, skew=skew)
    await sync.run()
    org.clock.advance(120)
    org.store.update("Account", ids[0], {"Name": "changed"})
    await sync.run()  # the deleted-records window may be refused: it is skipped, not fatal
    assert sync.target() == _org_rows(org)


def _jobs_created(seen: list[str]) -> int:
    return sum(1 for r in seen if r.startswith("POST") and r.endswith("/jobs/query"))


@pytest.mark.anyio
@pytest.mark.parametrize("overlap", [0.0, 60.0])
async def test_a_poll_with_many_changes_reads_the_rest_through_one_bulk_job(
    org: Org, overlap: float
) -> None:
    """A mass update: 900 records changed in one millisecond (the org's clock is frozen), so
    the first REST page (200) ends inside the tie and the Bulk job must go on from the exact
    ``(SystemModstamp, Id)`` pair; deletes and an undelete ride along."""
    ids = _seed(org, 1200)
    seen: list[str] = []
    sync = Sync(org, seen=seen, overlap=overlap, poll_bulk_threshold=300)
    await sync.run()
    org.clock.advance(120)  # past the overlap window: the next sweep re-reads only the changes
    org.store.delete(ids[3])
    org.store.delete(ids[4])
    for record_id in ids[100:1000]:
        org.store.update("Account", record_id, {"Industry": "Energy", "AnnualRevenue": 7.5})
    org.store.undelete(ids[4])
    org.store.update("Account", ids[5], {"Name": 'Quote "and", comma', "AnnualRevenue": None})
    seen.clear()
    pipeline = await sync.run()
    assert sync.source.bulk_polls == 1
    assert _jobs_created(seen) == 1
    assert sync.target() == _org_rows(org)
    assert ids[3] not in sync.target()
    assert sync.target()[ids[5]] == ('Quote "and", comma', "Banking", None)
    assert pipeline.status().counters.read >= 903
    assert len(sync.dead.letters) == 0
    # REST alone would have taken 5 pages of 200 (a calls' worth per page); the Bulk tail is
    # one job whatever its size.
    rest_pages = [r for r in seen if r.startswith("GET") and "/queryAll" in r]
    assert len(rest_pages) <= 3  # the first page (and, with overlap, the sweep's exits: none)
    # The cursor stored after a Bulk-read tail is in REST's form, as every other cursor.
    assert sync.sink.checkpoint is not None
    token = sync.sink.checkpoint.positions["sf:Account"].token
    assert token.partition("|")[0].endswith("+0000"), token

    # The next poll starts from the Bulk-read cursor, in REST's stamp form.
    org.clock.advance(5)
    org.store.update("Account", ids[1100], {"Name": "after the mass update"})
    pipeline = await sync.run()
    assert sync.target()[ids[1100]][0] == "after the mass update"
    assert sync.target() == _org_rows(org)
    if not overlap:  # else a new source's first poll sweeps the window: the mass update again
        assert pipeline.status().counters.read == 1
        assert sync.source.bulk_polls == 0


@pytest.mark.anyio
async def test_a_bulk_poll_keeps_the_row_filter_and_its_exits(org: Org) -> None:
    ids = _seed(org, 900)
    sync = Sync(org, where="Industry = 'Banking'", poll_bulk_threshold=100)
    await sync.run()
    banking = lambda r: r["Industry"] == "Banking"  # noqa: E731
    assert sync.target() == _org_rows(org, banking)
    org.clock.advance(1)
    for i, record_id in enumerate(ids):
        # Every other Banking record leaves the filter; the Retail ones enter it.
        industry = "Banking" if i % 3 == 0 else ("Retail" if i % 2 else "Banking")
        org.store.update("Account", record_id, {"Industry": industry, "Name": f"v2 {i}"})
    await sync.run()
    assert sync.source.bulk_polls == 1
    assert sync.target() == _org_rows(org, banking)


@pytest.mark.anyio
async def test_a_refused_bulk_job_leaves_the_poll_on_rest(org: Org) -> None:
    ids = _seed(org, 700)
    sync = Sync(org, poll_bulk_threshold=100, refuse_bulk=True)
    await sync.run()
    org.clock.advance(5)
    for record_id in ids[:650]:
        org.store.update("Account", record_id, {"Industry": "Energy"})
    await sync.run()
    assert sync.source.bulk_polls == 0
    assert sync.target() == _org_rows(org)
    assert len(sync.dead.letters) == 0
