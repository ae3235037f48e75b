"""The Salesforce source under the emulator's fault plan: it recovers, or stops with a clear
message, and converges once the faults stop. In-process, with a fake clock: no real waits."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from sfsync.connectors.salesforce.auth import JwtBearer
from sfsync.connectors.salesforce.client import SalesforceClient
from sfsync.connectors.salesforce.source import ObjectSelection, SalesforceSource
from sfsync.core.retry import RetryPolicy
from sfsync.core.state import PipelineState
from sfsync.emulator.app import build_app
from sfsync.emulator.clock import OrgClock
from sfsync.emulator.faults import parse_rule_spec
from sfsync.emulator.org import Org
from sfsync.runtime import Pipeline, PipelineOptions
from sfsync.runtime.status import PipelineStatus
from sfsync.testing import FakeClock, MemoryCheckpointStore, MemoryDeadLetterStore, MemorySink

FIELDS = ("Id", "Name", "SystemModstamp", "IsDeleted")


@pytest.fixture
def org() -> Iterator[Org]:
    org = Org.create(clock=OrgClock(frozen_at=datetime(2026, 3, 1, tzinfo=UTC)))
    org.store.bulk_insert("Account", [{"Name": f"A{i}"} for i in range(1500)])
    yield org
    org.close()


class Harness:
    def __init__(self, org: Org) -> None:
        self.org = org
        self.sink = MemorySink(stores_checkpoints=True)
        self.checkpoints = MemoryCheckpointStore()

    async def run(self, *, attempts: int = 8) -> PipelineStatus:
        clock = FakeClock(self.org.clock.now())
        client = SalesforceClient(
            grant=JwtBearer(
                client_id=self.org.auth.app.client_id,
                username=self.org.auth.user.username,
                private_key=self.org.auth.app.private_key_pem.decode(),
                login_url="http://emulator.test",
                audience="https://login.salesforce.com",
            ),
            clock=clock,
            transport=httpx.ASGITransport(app=build_app(self.org)),
        )
        source = SalesforceSource(client, [ObjectSelection(name="Account", fields=FIELDS)])
        pipeline = Pipeline(
            options=PipelineOptions(
                name="faults",
                entities=("Account",),
                batch_size=200,
                seed=3,
                retry=RetryPolicy(max_attempts=attempts, base_delay=1.0, max_delay=30.0),
            ),
            source=source,
            sink=self.sink,
            checkpoints=self.checkpoints,
            dead_letters=MemoryDeadLetterStore(),
            clock=clock,
        )
        return await pipeline.run()

    def equal(self) -> bool:
        org_ids = {str(r["Id"]) for r in self.org.store.scan("Account", include_deleted=False)}
        return set(self.sink.rows("Account")) == org_ids


@pytest.mark.anyio
async def test_transient_faults_are_retried_and_the_sync_converges(org: Org) -> None:
    org.faults.replace(
        [
            parse_rule_spec("GET /services/data/*/query* 503=0.05,query_timeout=0.05,500=0.03"),
            parse_rule_spec("* /services/data/* invalid_session=0.03"),
        ],
        seed=11,
    )
    h = Harness(org)
    status = await h.run(attempts=12)
    assert status.state is PipelineState.STOPPED, status.last_error
    assert status.counters.retries > 0  # faults happened and were absorbed
    assert h.equal()


@pytest.mark.anyio
async def test_a_spent_daily_allocation_stops_with_a_clear_message_then_converges(org: Org) -> None:
    org.limits.daily_max = 4
    h = Harness(org)
    status = await h.run(attempts=3)
    assert status.state is PipelineState.FAILED
    assert "REQUEST_LIMIT_EXCEEDED" in (status.last_error or "")
    assert "allocation" in (status.last_error or "")
    assert not h.equal()
    org.limits.daily_max = 100_000  # the allocation is back (next day, or raised)
    status = await h.run()
    assert status.state is PipelineState.STOPPED, status.last_error
    assert h.equal()


@pytest.mark.anyio
async def test_locked_rows_on_reads_do_not_lose_records(org: Org) -> None:
    org.faults.replace([parse_rule_spec("GET /services/data/* unable_to_lock_row=0.1")], seed=5)
    h = Harness(org)
    status = await h.run(attempts=12)
    assert status.state is PipelineState.STOPPED, status.last_error
    org.faults.clear()
    assert h.equal()
