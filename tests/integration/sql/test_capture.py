"""Change capture against real databases: SQLite files, PostgreSQL and MariaDB.

Each test gets a fresh database from the ``settings`` fixture (tests/integration/sql/conftest.py)
with an ``invoice`` table, installs capture, writes rows and reads the events back.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from types import MappingProxyType

import pytest
import sqlalchemy as sa

from sfsync.connectors.sql.capture import install
from sfsync.connectors.sql.capture.install import CaptureObject
from sfsync.connectors.sql.capture.log import ChangeLog, seq_of
from sfsync.connectors.sql.capture.statements import origin_statements
from sfsync.connectors.sql.capture.tables import log_stream
from sfsync.connectors.sql.client import ConnectionSettings, dialect_of
from sfsync.core.checkpoint import Checkpoint, SnapshotProgress, snapshot_stream
from sfsync.core.errors import ConfigError, RetryableError, SkippableError
from sfsync.core.events import ChangeEvent, Operation
from sfsync.spi.sink import Outcome, OutcomeKind

from .capture_helpers import Db, checkpoint, make_db, open_source, read_all

pytestmark = pytest.mark.anyio


@pytest.fixture
async def db(settings: tuple[ConnectionSettings, str]) -> AsyncIterator[Db]:
    d = make_db(*settings)
    d.install()
    yield d
    d.engine.dispose()


def _insert(db: Db, key: str | None, name: str, amount: str = "1.00") -> str:
    return (
        f"INSERT INTO {db.ref()} (ext_id__c, name, amount, paid, due) VALUES "
        f"({'NULL' if key is None else repr(key)}, '{name}', {amount}, TRUE, "
        "'2026-03-01 10:30:00')"
    )


async def test_insert_update_delete_arrive_in_commit_order_with_values(db: Db) -> None:
    source = await open_source(db.settings)
    try:
        schema = (await source.describe(["Invoice__c"]))["Invoice__c"]
        assert schema.key == "Ext_Id__c"
        assert schema.names()[:2] == ("Ext_Id__c", "id")
        positions = dict(await source.current_positions())
        db.run(_insert(db, "E1", "first", "12.50"), _insert(db, "E2", "second"))
        db.run(f"UPDATE {db.ref()} SET name = 'renamed', amount = 13.75 WHERE ext_id__c = 'E1'")
        db.run(f"UPDATE {db.ref()} SET name = 'renamed' WHERE ext_id__c = 'E1'")  # no change
        db.run(f"DELETE FROM {db.ref()} WHERE ext_id__c = 'E2'")
        events, _ = await read_all(source, positions)
    finally:
        await source.aclose()
    assert [(e.op, e.key) for e in events] == [
        (Operation.CREATE, "E1"),
        (Operation.CREATE, "E2"),
        (Operation.UPDATE, "E1"),
        (Operation.DELETE, "E2"),
    ]
    created, _, updated, deleted = events
    assert created.entity == "Invoice__c"
    assert created.after is not None
    assert created.after["Ext_Id__c"] == "E1"  # the key column, named after the key field
    assert "ext_id__c" not in created.after
    assert created.after is not None
    assert created.after["name"] == "first"
    assert created.after["amount"] == Decimal("12.50")
    assert created.after["paid"] is True
    assert created.after["due"] == "2026-03-01T10:30:00+00:00"
    assert updated.after is not None
    assert updated.before is not None
    assert updated.after["name"] == "renamed"
    assert updated.before["name"] == "first"
    assert updated.changed == {"name", "amount"}
    assert deleted.after is None
    assert deleted.before is not None
    assert deleted.before["name"] == "second"
    assert all(e.position.stream == log_stream("invoice") for e in events)
    seqs = [seq_of(e.position.token) for e in events]
    assert seqs == sorted(seqs)
    assert all(e.committed_at.tzinfo is not None for e in events)
    if db.dialect == "postgresql":
        # The two inserts share a transaction; the others have their own.
        assert events[0].transaction == events[1].transaction != events[2].transaction


async def test_resume_from_a_position_repeats_nothing_and_loses_nothing(db: Db) -> None:
    first = await open_source(db.settings, batch_size=3)
    positions = dict(await first.current_positions())
    for n in range(10):
        db.run(_insert(db, f"K{n}", f"row {n}"))
    seen: list[ChangeEvent] = []
    # Read one batch, "checkpoint" it, and stop.
    async for batch in first.changes(checkpoint(positions)):
        seen.extend(batch.events)
        for event in batch.events:
            positions[event.position.stream] = event.position
        break
    await first.aclose()
    assert len(seen) == 3
    db.run(_insert(db, "K10", "late"))
    second = await open_source(db.settings, batch_size=3)
    try:
        rest, _ = await read_all(second, positions)
        again, _ = await read_all(second, positions)
    finally:
        await second.aclose()
    keys = [e.key for e in seen + rest]
    assert keys == [f"K{n}" for n in range(11)]
    assert again == []


async def test_a_transaction_that_commits_late_is_not_lost(db: Db) -> None:
    if db.dialect == "sqlite":
        pytest.skip("SQLite has one writer at a time: commit order is seq order")
    source = await open_source(db.settings)
    positions = dict(await source.current_positions())
    early = db.engine.connect()
    try:
        early.exec_driver_sql(_insert(db, "EARLY", "takes seq first").replace("%", "%%"))
        db.run(_insert(db, "LATER", "commits first"))
        first, _ = await read_all(source, positions)
        early.commit()
        second, _ = await read_all(source, positions)
    finally:
        early.close()
        await source.aclose()
    got = [e.key for e in first + second]
    assert sorted(got) == ["EARLY", "LATER"]
    assert len(got) == 2
    if db.dialect == "mysql":
        # MariaDB waits at the hole the open transaction holds, so order is seq order.
        assert first == []
        assert got == ["EARLY", "LATER"]


async def test_a_rolled_back_change_does_not_block_later_ones(db: Db) -> None:
    source = await open_source(db.settings)
    positions = dict(await source.current_positions())
    conn = db.engine.connect()
    try:
        conn.exec_driver_sql(_insert(db, "GONE", "rolled back").replace("%", "%%"))
        conn.rollback()
        db.run(_insert(db, "KEPT", "committed"))
        # MariaDB: the first read sees the hole; the next sees its owner has ended.
        events, _ = await read_all(source, positions)
        events += (await read_all(source, positions))[0]
    finally:
        conn.close()
        await source.aclose()
    assert [e.key for e in events] == ["KEPT"]


async def test_snapshot_reads_every_row_and_resumes_after_its_cursor(db: Db) -> None:
    db.run(*[_insert(db, f"S{n:02d}", f"row {n}") for n in range(7)], _insert(db, None, "x"))
    source = await open_source(db.settings, batch_size=3)
    try:
        assert await source.snapshot_size("Invoice__c") == 8
        batches = [b async for b in source.snapshot(["Invoice__c"], None)]
        events = [e for b in batches for e in b.events]
        assert [e.key for e in events] == [f"S{n:02d}" for n in range(7)]
        assert {e.op for e in events} == {Operation.READ}
        assert batches[-1].completes == {"Invoice__c"}
        assert events[0].position.stream == snapshot_stream("Invoice__c")
        # Resume after the third key.
        cp = Checkpoint(
            snapshot=SnapshotProgress(
                cursors=MappingProxyType({"Invoice__c": events[2].position.token})
            )
        )
        rest = [e async for b in source.snapshot(["Invoice__c"], cp) for e in b.events]
        assert [e.key for e in rest] == [f"S{n:02d}" for n in range(3, 7)]
    finally:
        await source.aclose()


async def test_install_is_idempotent_and_remove_drops_everything(db: Db) -> None:
    before = db.triggers()
    db.install()
    db.install()
    assert db.triggers() == before
    assert before, "install created no trigger"
    db.run(_insert(db, "A", "once"))
    assert db.scalar(f"SELECT COUNT(*) FROM {db.ref('_sfsync_changes')}") == 1
    db.remove()
    assert db.triggers() == []
    assert not db.has_log()
    db.run(_insert(db, "B", "after removal"))  # the table still works without capture
    db.remove()  # removing twice is harmless


async def test_opening_without_capture_installed_says_how_to_install(db: Db) -> None:
    db.remove()
    with pytest.raises(ConfigError) as caught:
        await open_source(db.settings)
    assert "install-capture" in str(caught.value)


async def test_a_missing_key_column_is_a_config_error_naming_the_columns(db: Db) -> None:
    wrong = CaptureObject(entity="Invoice__c", table="invoice", key="Invoice_Number__c")
    with pytest.raises(ConfigError) as caught:
        await open_source(db.settings, [wrong])
    assert "invoice_number__c" in str(caught.value)
    assert "ext_id__c" in str(caught.value)


async def test_outcomes_are_written_back_to_the_change_log(db: Db) -> None:
    source = await open_source(db.settings)
    try:
        positions = dict(await source.current_positions())
        db.run(_insert(db, "OK", "fine"), _insert(db, "BAD", "refused"))
        db.run(_insert(db, "LATER", "retried"), _insert(db, None, "no key"))
        events, _ = await read_all(source, positions)
        outcomes = [
            Outcome.applied("a01000000000001AAA"),
            Outcome.rejected(SkippableError("Amount too big", code="NUMBER_OUTSIDE_VALID_RANGE")),
            Outcome(OutcomeKind.RETRY, error=SkippableError("locked")),
        ]
        written = await source.record_outcomes(events, outcomes)
        with pytest.raises(ValueError, match="one outcome per event"):
            await source.record_outcomes(events, outcomes[:1])
    finally:
        await source.aclose()
    assert written == 2
    engine, conn = install.connect(db.settings)
    log = ChangeLog(conn, dialect_of(db.settings), _schema(db))
    seqs = [seq_of(e.position.token) for e in events]
    statuses = log.statuses([*seqs, seqs[-1] + 1])
    conn.close()
    engine.dispose()
    assert statuses[seqs[0]] == ("applied", None, "a01000000000001AAA")
    status, error, _ = statuses[seqs[1]]
    assert status == "rejected"
    assert error is not None
    assert "NUMBER_OUTSIDE_VALID_RANGE" in error
    assert statuses[seqs[2]][0] == "pending"
    # The row without a key never became an event: it is marked rejected with the reason.
    assert statuses[seqs[2] + 1][0] == "rejected"
    assert "key" in (statuses[seqs[2] + 1][1] or "")


async def test_writes_marked_with_an_origin_carry_it(db: Db) -> None:
    source = await open_source(db.settings)
    positions = dict(await source.current_positions())
    mark, unmark = origin_statements(dialect_of(db.settings), _schema(db), "sfsync:crm-to-db")
    conn = db.engine.connect()
    try:
        conn.exec_driver_sql(mark.replace("%", "%%") if db.dialect != "sqlite" else mark)
        conn.exec_driver_sql(_insert(db, "OURS", "written by sfsync").replace("%", "%%"))
        conn.exec_driver_sql(unmark)
        conn.commit()
        db.run(_insert(db, "THEIRS", "written by someone else"))
        events, _ = await read_all(source, positions)
    finally:
        conn.close()
        await source.aclose()
    assert [(e.key, e.origin) for e in events] == [("OURS", "sfsync:crm-to-db"), ("THEIRS", None)]


def _schema(db: Db) -> str | None:
    return getattr(db.settings, "db_schema", None)


async def test_a_lost_connection_is_retryable_and_the_next_read_reconnects(db: Db) -> None:
    if db.dialect == "sqlite":
        pytest.skip("a SQLite file has no connection to lose")
    source = await open_source(db.settings)
    try:
        positions = dict(await source.current_positions())
        db.run(_insert(db, "BEFORE", "written before the loss"))
        own = "SELECT pg_backend_pid()" if db.dialect == "postgresql" else "SELECT CONNECTION_ID()"
        pid = source.conn.execute(sa.text(own)).scalar()
        source.conn.rollback()
        kill = (
            f"SELECT pg_terminate_backend({pid})" if db.dialect == "postgresql" else f"KILL {pid}"
        )
        db.run(kill)
        with pytest.raises(RetryableError):
            await read_all(source, positions)
        events, _ = await read_all(source, positions)
    finally:
        await source.aclose()
    assert [e.key for e in events] == ["BEFORE"]


async def test_capture_installed_for_another_key_or_columns_is_refused_until_reinstalled(
    db: Db,
) -> None:
    other_key = CaptureObject(entity="Invoice__c", table="invoice", key="Name")
    with pytest.raises(ConfigError, match="another key column"):
        await open_source(db.settings, [other_key])
    db.run(f"ALTER TABLE {db.ref()} ADD COLUMN note varchar(20)")
    if db.dialect == "postgresql":
        # Its trigger serialises whole rows: a new column needs no reinstall.
        source = await open_source(db.settings)
        await source.aclose()
    else:
        with pytest.raises(ConfigError, match="install-capture"):
            await open_source(db.settings)
    db.install()
    source = await open_source(db.settings)
    try:
        positions = dict(await source.current_positions())
        db.run(f"INSERT INTO {db.ref()} (ext_id__c, note) VALUES ('N', 'captured')")
        events, _ = await read_all(source, positions)
    finally:
        await source.aclose()
    assert events[0].after is not None
    assert events[0].after["note"] == "captured"


async def test_postgres_writers_need_no_rights_on_the_change_log(db: Db) -> None:
    if db.dialect != "postgresql":
        pytest.skip("MariaDB triggers run as their definer; SQLite has no rights")
    role = f"sfsync_app_{uuid.uuid4().hex[:8]}"
    schema = _schema(db)
    db.run(
        f'CREATE ROLE "{role}"',
        f'GRANT USAGE ON SCHEMA "{schema}" TO "{role}"',
        f'GRANT INSERT, UPDATE, SELECT ON {db.ref()} TO "{role}"',
        f'GRANT USAGE ON ALL SEQUENCES IN SCHEMA "{schema}" TO "{role}"',
        f'REVOKE ALL ON {db.ref("_sfsync_changes")} FROM "{role}"',
    )
    source = await open_source(db.settings)
    try:
        positions = dict(await source.current_positions())
        db.run(f'SET LOCAL ROLE "{role}"', _insert(db, "APP", "written by the app role"))
        events, _ = await read_all(source, positions)
    finally:
        await source.aclose()
        db.run(f'DROP OWNED BY "{role}"', f'DROP ROLE "{role}"')
    assert [e.key for e in events] == ["APP"]
