"""Rows of a SQL table into Salesforce: the SQL source, the Salesforce sink and the runtime,
against the emulator in-process, on SQLite, PostgreSQL and MariaDB.

The sink here is wrapped so that each batch's outcomes are written back to the change log
(``record_outcomes``), which is what the runtime is to do once that hook is wired.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from sfsync.connectors.salesforce.sink import SalesforceSink
from sfsync.connectors.sql.capture import install
from sfsync.connectors.sql.capture.install import CaptureObject
from sfsync.connectors.sql.capture.log import ChangeLog
from sfsync.connectors.sql.capture.source import SqlCaptureSource
from sfsync.connectors.sql.client import ConnectionSettings, dialect_of
from sfsync.core.checkpoint import Checkpoint
from sfsync.core.events import Batch
from sfsync.core.schema import EntitySchema
from sfsync.core.state import PipelineState
from sfsync.emulator.app import build_app
from sfsync.emulator.org import Org
from sfsync.runtime import Pipeline, PipelineOptions
from sfsync.spi.sink import Outcome, SinkContext
from sfsync.testing import FakeClock, MemoryCheckpointStore, MemoryDeadLetterStore
from unit.connectors.salesforce_sink._support import START, live, make_client, make_org

from .capture_helpers import Db, make_db

pytestmark = pytest.mark.anyio

ACCOUNTS = CaptureObject(
    entity="Account", table="customers", key="Ext_Id__c", fields=("Ext_Id__c", "Name", "Score__c")
)


class WritingBack:
    """The Salesforce sink, with each batch's outcomes recorded on the change log."""

    def __init__(self, inner: SalesforceSink, source: SqlCaptureSource) -> None:
        self.inner = inner
        self.source = source
        self.capabilities = inner.capabilities

    async def open(self, ctx: SinkContext) -> None:
        await self.inner.open(ctx)

    async def prepare(self, schema: EntitySchema) -> list[str]:
        return await self.inner.prepare(schema)

    async def write(self, batch: Batch) -> list[Outcome]:
        outcomes = await self.inner.write(batch)
        await self.source.record_outcomes(batch.events, outcomes)
        return outcomes

    async def flush(self, checkpoint: Checkpoint | None) -> None:
        await self.inner.flush(checkpoint)

    async def load_checkpoint(self) -> Checkpoint | None:
        return await self.inner.load_checkpoint()

    async def forget_checkpoint(self) -> None:
        await self.inner.forget_checkpoint()

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.fixture
def org() -> Iterator[Org]:
    org = make_org()
    yield org
    org.close()


@pytest.fixture
async def db(settings: tuple[ConnectionSettings, str]) -> AsyncIterator[Db]:
    d = make_db(*settings)
    d.run(
        f"CREATE TABLE {d.ref('customers')} (ext_id__c varchar(40) PRIMARY KEY, "
        "name varchar(80), score__c numeric(10,2))"
    )
    d.install([ACCOUNTS])
    yield d
    d.engine.dispose()


async def test_rows_inserted_updated_and_deleted_appear_in_salesforce(db: Db, org: Org) -> None:
    table = db.ref("customers")
    insert = f"INSERT INTO {table} (ext_id__c, name, score__c) VALUES (:k, :n, :s)"
    db.run(insert, params=[{"k": f"A{n}", "n": f"Customer {n}", "s": n} for n in range(1, 4)])
    checkpoints = MemoryCheckpointStore()
    dead = MemoryDeadLetterStore()
    clock = FakeClock(START)

    async def run_once() -> SqlCaptureSource:
        source = SqlCaptureSource(db.settings, [ACCOUNTS], clock=clock)
        client = make_client(httpx.ASGITransport(app=build_app(org)), clock=clock)
        sink = WritingBack(SalesforceSink(client, keys={"Account": "Ext_Id__c"}), source)
        pipeline = Pipeline(
            options=PipelineOptions(name="db-to-crm", entities=("Account",), seed=1),
            source=source,
            sink=sink,
            checkpoints=checkpoints,
            dead_letters=dead,
            clock=clock,
        )
        status = await pipeline.run()
        assert status.state is PipelineState.STOPPED, status.last_error
        return source

    await run_once()  # the snapshot
    assert sorted(r["Ext_Id__c"] for r in live(org, "Account")) == ["A1", "A2", "A3"]
    db.run(
        insert.replace(":k, :n, :s", "'A4', 'New', 4"),
        f"UPDATE {table} SET name = 'Renamed' WHERE ext_id__c = 'A1'",
        f"DELETE FROM {table} WHERE ext_id__c = 'A2'",
        insert.replace(":k, :n, :s", "'A5', 'Refused', -1"),  # a validation rule refuses it
    )
    await run_once()  # the changes
    accounts = {r["Ext_Id__c"]: r for r in live(org, "Account")}
    assert sorted(accounts) == ["A1", "A3", "A4"]
    assert accounts["A1"]["Name"] == "Renamed"
    assert float(accounts["A4"]["Score__c"]) == 4.0
    assert [d.key for d in dead.letters] == ["A5"]
    # Each change's outcome is on its change log row: the new record's Id, or the refusal.
    statuses = _statuses(db)
    assert statuses["A4"][:2] == ("applied", None)
    assert statuses["A4"][2] == accounts["A4"]["Id"]
    assert statuses["A1"][0] == "applied"
    assert statuses["A2"][0] == "applied"
    assert statuses["A5"][0] == "rejected"
    assert "Score cannot be negative" in str(statuses["A5"][1])


def _statuses(db: Db) -> dict[str, tuple[Any, ...]]:
    engine, conn = install.connect(db.settings)
    try:
        rows = conn.exec_driver_sql(
            f"SELECT row_key, seq FROM {db.ref('_sfsync_changes')} ORDER BY seq"
        ).all()
        log = ChangeLog(conn, dialect_of(db.settings), getattr(db.settings, "db_schema", None))
        by_seq = log.statuses([int(seq) for _, seq in rows])
        return {str(key): by_seq[int(seq)] for key, seq in rows}
    finally:
        conn.close()
        engine.dispose()


async def test_a_child_inserted_with_its_new_parent_is_linked_to_it(
    settings: tuple[ConnectionSettings, str], org: Org
) -> None:
    base, dialect = settings
    # The child's parent reference column becomes the field `Account.Ext_Id__c`.
    renamed = base.model_copy(
        update={"capture_columns": {"contacts": {"account_ref": "Account.Ext_Id__c"}}}
    )
    db = make_db(renamed, dialect)
    accounts, contacts = db.ref("customers"), db.ref("contacts")
    db.run(
        f"CREATE TABLE {accounts} (ext_id__c varchar(40) PRIMARY KEY, name varchar(80))",
        f"CREATE TABLE {contacts} (ext_id__c varchar(40) PRIMARY KEY, "
        "lastname varchar(80), account_ref varchar(40))",
    )
    objects = [
        CaptureObject(entity="Account", table="customers", key="Ext_Id__c"),
        CaptureObject(
            entity="Contact", table="contacts", key="Ext_Id__c", fields=("LastName", "account_ref")
        ),
    ]
    db.install(objects)
    checkpoints = MemoryCheckpointStore()
    clock = FakeClock(START)

    async def run_once() -> None:
        source = SqlCaptureSource(renamed, objects, clock=clock)
        client = make_client(httpx.ASGITransport(app=build_app(org)), clock=clock)
        sink = SalesforceSink(client, keys={"Account": "Ext_Id__c", "Contact": "Ext_Id__c"})
        status = await Pipeline(
            options=PipelineOptions(name="db-to-crm", entities=("Account", "Contact"), seed=1),
            source=source,
            sink=sink,
            checkpoints=checkpoints,
            dead_letters=MemoryDeadLetterStore(),
            clock=clock,
        ).run()
        assert status.state is PipelineState.STOPPED, status.last_error

    try:
        await run_once()  # nothing yet: the start position is taken
        db.run(  # one transaction, child written first
            f"INSERT INTO {contacts} VALUES ('C1', 'Lovelace', 'P1')",
            f"INSERT INTO {accounts} VALUES ('P1', 'Analytical Engines')",
        )
        await run_once()
    finally:
        db.engine.dispose()
    parent = {r["Ext_Id__c"]: r for r in live(org, "Account")}["P1"]
    child = {r["Ext_Id__c"]: r for r in live(org, "Contact")}["C1"]
    assert child["LastName"] == "Lovelace"
    assert child["AccountId"] == parent["Id"]
