"""The Salesforce sink in a real pipeline against the emulator over a real socket, with faults.

A memory source feeds change events (what the SQL change capture will feed); the runtime
retries RETRY outcomes and dead-letters REJECTED ones; the org's store is then compared with
what was sent: every row written once, none twice, rejected rows in dead letters with
Salesforce's error.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from sfsync.connectors.salesforce.config import SinkSettings
from sfsync.connectors.salesforce.sink import SalesforceSink
from sfsync.core.events import Operation
from sfsync.core.retry import RetryPolicy
from sfsync.core.schema import EntitySchema, FieldKind, FieldSpec
from sfsync.core.state import PipelineState
from sfsync.emulator.faults import parse_rule_spec
from sfsync.emulator.org import Org
from sfsync.emulator.server import RunningServer, serve_in_background
from sfsync.runtime import Pipeline, PipelineOptions
from sfsync.runtime.status import PipelineStatus
from sfsync.testing import FakeClock, MemoryCheckpointStore, MemoryDeadLetterStore, MemorySource
from unit.connectors.salesforce_sink._support import (
    START,
    LostResponseTransport,
    RowLockTransport,
    live,
    lose_first,
    make_client,
    make_org,
)

ACCOUNT = EntitySchema.of(
    "Account",
    "Ext_Id__c",
    [FieldSpec(name=n, kind=FieldKind.STRING) for n in ("Ext_Id__c", "Name", "Score__c")],
)
CONTACT = EntitySchema.of(
    "Contact",
    "Ext_Id__c",
    [
        FieldSpec(name=n, kind=FieldKind.STRING)
        for n in ("Ext_Id__c", "LastName", "Account.Ext_Id__c")
    ],
)
CONTACT_BY_ID = EntitySchema.of(
    "Contact", "row", [FieldSpec(name=n, kind=FieldKind.STRING) for n in ("row", "LastName")]
)


@pytest.fixture
def org() -> Iterator[Org]:
    org = make_org()
    yield org
    org.close()


@pytest.fixture
def server(org: Org) -> Iterator[RunningServer]:
    with serve_in_background(org) as running:
        yield running


class Run:
    """One sync into the served org."""

    def __init__(
        self,
        server: RunningServer,
        source: MemorySource,
        *,
        keys: dict[str, str],
        entities: tuple[str, ...],
        wrap: Any = None,
        settings: SinkSettings | None = None,
    ) -> None:
        transport: httpx.AsyncBaseTransport = httpx.AsyncHTTPTransport()
        if wrap is not None:
            transport = wrap(transport)
        clock = FakeClock(START)
        # Waits take no time, but a little real time passes on each: the served org runs Bulk
        # jobs in threads, and instant polls would spin (and spend the API budget) meanwhile.
        clock.on_sleep.append(lambda _: time.sleep(0.01))
        self.sink = SalesforceSink(
            make_client(transport, url=server.url, clock=clock), keys=keys, settings=settings
        )
        self.dead = MemoryDeadLetterStore()
        self.pipeline = Pipeline(
            options=PipelineOptions(
                name="to-salesforce",
                entities=entities,
                batch_size=500,
                seed=3,
                retry=RetryPolicy(max_attempts=25, base_delay=0.5, max_delay=5.0),
            ),
            source=source,
            sink=self.sink,
            checkpoints=MemoryCheckpointStore(),
            dead_letters=self.dead,
            clock=clock,
        )

    async def run(self) -> PipelineStatus:
        status = await self.pipeline.run()
        assert status.state is PipelineState.STOPPED, status.last_error
        return status


Change = tuple[str, str, Operation, dict[str, object] | None]


def _source(
    schemas: dict[str, EntitySchema], changes: list[Change], batch_size: int = 500
) -> MemorySource:
    """A source that logs ``changes`` once the (empty) snapshot has begun: the runtime starts
    the change stream at the position it takes before the snapshot, so changes logged earlier
    would count as synced already."""
    source = MemorySource(schemas, batch_size=batch_size)

    def release() -> None:
        while changes:
            source.emit(*changes.pop(0))

    source.on_snapshot_batch.append(release)
    return source


def _ext(org: Org, sobject: str) -> dict[str, dict[str, Any]]:
    return {str(r["Ext_Id__c"]): r for r in live(org, sobject)}


@pytest.mark.anyio
async def test_lock_faults_on_a_fifth_of_calls_and_rows_end_with_every_row_written(
    org: Org, server: RunningServer
) -> None:
    # The emulator's fault plan fails whole Collections calls with UNABLE_TO_LOCK_ROW; the
    # transport fault fails single rows inside successful calls, as a real org does.
    org.faults.replace(
        [parse_rule_spec("* /services/data/*/composite/sobjects* unable_to_lock_row=0.2")],
        seed=7,
    )
    locks: list[RowLockTransport] = []

    def wrap(inner: httpx.AsyncBaseTransport) -> RowLockTransport:
        locks.append(RowLockTransport(inner, rate=0.2, seed=9))
        return locks[0]

    changes: list[Change] = [
        ("Account", f"A{i}", Operation.CREATE, {"Name": f"n{i}"}) for i in range(1500)
    ]
    changes += [  # 200 children on each of five parents: lock-prone
        (
            "Contact",
            f"C{i}",
            Operation.CREATE,
            {"LastName": f"l{i}", "Account.Ext_Id__c": f"A{i % 5}"},
        )
        for i in range(1000)
    ]
    source = _source({"Account": ACCOUNT, "Contact": CONTACT}, changes)
    run = Run(server, source, keys={"Account": "Ext_Id__c", "Contact": "Ext_Id__c"},
              entities=("Account", "Contact"), wrap=wrap)  # fmt: skip
    status = await run.run()
    assert org.faults.stats().get("unable_to_lock_row", 0) > 0
    assert locks[0].locked > 0
    assert status.counters.retries > 0
    assert status.counters.applied == 2500
    assert run.dead.letters == []
    accounts, contacts = _ext(org, "Account"), _ext(org, "Contact")
    assert len(accounts) == 1500 == len(live(org, "Account"))
    assert len(contacts) == 1000 == len(live(org, "Contact"))
    assert contacts["C7"]["AccountId"] == accounts["A2"]["Id"]


@pytest.mark.anyio
@pytest.mark.parametrize("marker", [True, False], ids=["marker-field", "value-match"])
async def test_a_retried_batch_after_a_dropped_connection_creates_no_duplicate(
    org: Org, server: RunningServer, marker: bool
) -> None:
    # Dropped before the org saw it (the emulator's fault) and dropped after the org
    # committed (the transport fault): inserts keyed by Id and upserts by external id.
    org.faults.replace([parse_rule_spec("* /services/data/*/composite/sobjects* drop=0.3")], seed=2)
    lost: list[LostResponseTransport] = []

    def wrap(inner: httpx.AsyncBaseTransport) -> LostResponseTransport:
        lost.append(LostResponseTransport(inner, lose_first("POST", "/composite/sobjects", 3)))
        return lost[0]

    changes: list[Change] = [
        ("Contact", f"row-{i}", Operation.CREATE, {"LastName": f"L{i}"}) for i in range(900)
    ]
    changes += [("Account", f"A{i}", Operation.CREATE, {"Name": f"n{i}"}) for i in range(600)]
    source = _source({"Contact": CONTACT_BY_ID, "Account": ACCOUNT}, changes, batch_size=300)
    markers = {"Contact": "Sfsync_Key__c"} if marker else {}
    run = Run(
        server,
        source,
        keys={"Account": "Ext_Id__c"},
        entities=("Contact", "Account"),
        wrap=wrap,
        settings=SinkSettings(insert_markers=markers),
    )
    status = await run.run()
    assert lost[0].lost == 3
    assert org.faults.stats().get("drop", 0) > 0
    assert status.counters.retries > 0
    contacts = live(org, "Contact")
    assert sorted(r["LastName"] for r in contacts) == sorted(f"L{i}" for i in range(900))
    if marker:
        assert len({r["Sfsync_Key__c"] for r in contacts}) == 900
    assert len(live(org, "Account")) == 600 == len(_ext(org, "Account"))


@pytest.mark.anyio
async def test_a_child_inserted_together_with_its_new_parent(
    org: Org, server: RunningServer
) -> None:
    # Same batch, child first: the sink writes the parent first and the child refers to it
    # by external id.
    changes: list[Change] = [
        ("Contact", "C1", Operation.CREATE, {"LastName": "Kid", "Account.Ext_Id__c": "P1"}),
        ("Account", "P1", Operation.CREATE, {"Name": "New parent"}),
    ]
    source = _source({"Account": ACCOUNT, "Contact": CONTACT}, changes)
    run = Run(server, source, keys={"Account": "Ext_Id__c", "Contact": "Ext_Id__c"},
              entities=("Account", "Contact"))  # fmt: skip
    status = await run.run()
    assert status.counters.applied == 2
    assert _ext(org, "Contact")["C1"]["AccountId"] == _ext(org, "Account")["P1"]["Id"]


@pytest.mark.anyio
async def test_rejected_rows_carry_salesforces_error_into_dead_letters(
    org: Org, server: RunningServer
) -> None:
    changes: list[Change] = [
        ("Account", "A1", Operation.CREATE, {"Name": "fine"}),
        ("Account", "A2", Operation.CREATE, {"Name": "bad", "Score__c": -5}),
        ("Contact", "C1", Operation.CREATE, {"LastName": "orphan", "Account.Ext_Id__c": "MISSING"}),
    ]
    source = _source({"Account": ACCOUNT, "Contact": CONTACT}, changes)
    run = Run(server, source, keys={"Account": "Ext_Id__c", "Contact": "Ext_Id__c"},
              entities=("Account", "Contact"))  # fmt: skip
    status = await run.run()
    assert status.counters.applied == 1
    assert status.counters.rejected == 2
    letters = {d.key: d for d in run.dead.letters}
    assert set(letters) == {"A2", "C1"}
    assert letters["A2"].code == "FIELD_CUSTOM_VALIDATION_EXCEPTION"
    assert "Score cannot be negative." in letters["A2"].message
    assert letters["C1"].code == "INVALID_FIELD"
    assert "MISSING" in letters["C1"].message
    assert letters["C1"].hint
    assert "parent" in letters["C1"].hint
    assert set(_ext(org, "Account")) == {"A1"}


@pytest.mark.anyio
async def test_bulk_jobs_under_faults_converge_without_duplicates(
    org: Org, server: RunningServer
) -> None:
    org.faults.replace(
        [parse_rule_spec("* /services/data/*/jobs/ingest* 503=0.1,drop=0.05")], seed=4
    )
    changes: list[Change] = [
        ("Account", f"A{i}", Operation.CREATE, {"Name": f"n{i}"}) for i in range(3000)
    ]
    changes += [("Account", f"A{i}", Operation.DELETE, None) for i in range(0, 3000, 3)]
    source = _source({"Account": ACCOUNT}, changes, batch_size=1000)
    run = Run(
        server,
        source,
        keys={"Account": "Ext_Id__c"},
        entities=("Account",),
        settings=SinkSettings(bulk_threshold=200),
    )
    status = await run.run()
    assert sum(org.faults.stats().values()) > 0
    assert status.counters.retries > 0
    assert {r.route.api.value for r in run.sink.routes} == {"bulk"}
    kept = {f"A{i}" for i in range(3000) if i % 3}
    assert set(_ext(org, "Account")) == kept
    assert len(live(org, "Account")) == len(kept)


@pytest.mark.anyio
async def test_the_fault_plan_s_row_locks_on_a_fifth_of_rows_end_with_every_row_written(
    org: Org, server: RunningServer
) -> None:
    # The emulator's own per-record fault: a fifth of the records of each Collections call
    # fail alone with UNABLE_TO_LOCK_ROW, unwritten, inside answers of 200.
    org.faults.replace(
        [parse_rule_spec("* /services/data/*/composite/sobjects* row_lock=0.2")], seed=11
    )
    changes: list[Change] = [
        ("Account", f"A{i}", Operation.CREATE, {"Name": f"n{i}"}) for i in range(1500)
    ]
    changes += [  # 200 children on each of five parents
        ("Contact", f"C{i}", Operation.CREATE,
         {"LastName": f"l{i}", "Account.Ext_Id__c": f"A{i % 5}"})
        for i in range(1000)
    ]  # fmt: skip
    source = _source({"Account": ACCOUNT, "Contact": CONTACT}, changes)
    run = Run(server, source, keys={"Account": "Ext_Id__c", "Contact": "Ext_Id__c"},
              entities=("Account", "Contact"))  # fmt: skip
    status = await run.run()
    locked = org.faults.stats().get("row_lock", 0)
    assert locked > 400  # about a fifth of 2,500 rows, and of their retries
    assert status.counters.retries > 0
    assert status.counters.applied == 2500
    assert run.dead.letters == []
    accounts, contacts = _ext(org, "Account"), _ext(org, "Contact")
    assert len(accounts) == 1500 == len(live(org, "Account"))
    assert len(contacts) == 1000 == len(live(org, "Contact"))
    assert contacts["C7"]["AccountId"] == accounts["A2"]["Id"]


@pytest.mark.anyio
@pytest.mark.parametrize("marker", [True, False], ids=["marker-field", "value-match"])
async def test_an_insert_committed_but_whose_answer_was_lost_creates_no_duplicate(
    org: Org, server: RunningServer, marker: bool
) -> None:
    # The emulator commits the first three Collections inserts, then drops the connection
    # before answering: the sink looks for what landed before sending any row again.
    org.faults.replace(
        [parse_rule_spec("POST /services/data/*/composite/sobjects lost_response=1 times=3")],
        seed=5,
    )
    changes: list[Change] = [
        ("Contact", f"row-{i}", Operation.CREATE, {"LastName": f"L{i}"}) for i in range(900)
    ]
    source = _source({"Contact": CONTACT_BY_ID}, changes, batch_size=300)
    markers = {"Contact": "Sfsync_Key__c"} if marker else {}
    run = Run(server, source, keys={}, entities=("Contact",),
              settings=SinkSettings(insert_markers=markers))  # fmt: skip
    status = await run.run()
    assert org.faults.stats().get("lost_response") == 3
    assert status.counters.retries > 0
    assert status.counters.applied == 900
    contacts = live(org, "Contact")
    assert sorted(r["LastName"] for r in contacts) == sorted(f"L{i}" for i in range(900))
    if marker:
        assert len({r["Sfsync_Key__c"] for r in contacts}) == 900


@pytest.mark.anyio
async def test_bulk_jobs_with_a_fifth_of_rows_locked_end_with_every_row_written(
    org: Org, server: RunningServer
) -> None:
    # The plan's row_lock on the request that closes a job: a fifth of each job's rows fail
    # alone with UNABLE_TO_LOCK_ROW, unwritten; only those rows are retried.
    org.faults.replace(
        [parse_rule_spec("PATCH /services/data/*/jobs/ingest/* row_lock=0.2")], seed=8
    )
    changes: list[Change] = [
        ("Account", f"A{i}", Operation.CREATE, {"Name": f"n{i}"}) for i in range(3000)
    ]
    changes += [  # 100 children on each of ten parents
        ("Contact", f"C{i}", Operation.CREATE,
         {"LastName": f"l{i}", "Account.Ext_Id__c": f"A{i % 10}"})
        for i in range(1000)
    ]  # fmt: skip
    source = _source({"Account": ACCOUNT, "Contact": CONTACT}, changes, batch_size=1000)
    run = Run(
        server,
        source,
        keys={"Account": "Ext_Id__c", "Contact": "Ext_Id__c"},
        entities=("Account", "Contact"),
        settings=SinkSettings(bulk_threshold=200),
    )
    status = await run.run()
    assert org.faults.stats().get("row_lock", 0) > 600  # about a fifth of 4,000, and retries
    # Batches of 1,000 go by Bulk (and so do retries of 200 rows or more).
    assert all(r.route.api.value == "bulk" for r in run.sink.routes if r.rows >= 200)
    assert sum(r.rows == 1000 for r in run.sink.routes) == 4
    assert status.counters.applied == 4000
    assert run.dead.letters == []
    accounts, contacts = _ext(org, "Account"), _ext(org, "Contact")
    assert len(accounts) == 3000 == len(live(org, "Account"))
    assert len(contacts) == 1000 == len(live(org, "Contact"))
    assert contacts["C13"]["AccountId"] == accounts["A3"]["Id"]
