"""How the SQL sink fails: lost connections, bad settings, misuse. Real servers, real kills."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from sfsync.connectors.sql.config import (
    MySqlConnection,
    PostgresConnection,
    SqliteConnection,
)
from sfsync.connectors.sql.sink import SqlSink
from sfsync.core.checkpoint import Checkpoint
from sfsync.core.errors import ConfigError, FatalError, RetryableError
from sfsync.core.events import Batch, Position
from sfsync.spi.sink import OutcomeKind, SinkContext
from sfsync.testing import FakeClock

from .helpers import ACCOUNT, Harness, event

pytestmark = pytest.mark.anyio

A, B = "001000000000001AAA", "001000000000002AAA"


def kill_sink_connections(harness: Harness) -> None:
    """Terminate the server sessions of the sinks under test, as a crash or failover would."""
    engine = sa.create_engine(
        sa.make_url(harness.settings.url).set(
            drivername="postgresql+psycopg" if harness.dialect == "postgresql" else "mysql+pymysql"
        ),
        poolclass=sa.pool.NullPool,
    )
    with engine.connect() as conn:
        if harness.dialect == "postgresql":
            killed = conn.exec_driver_sql(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = %s",
                (f"sfsync sink {harness.sync_id}",),
            ).all()
        else:
            ids = conn.exec_driver_sql(
                "SELECT id FROM information_schema.processlist "
                "WHERE db = DATABASE() AND id <> CONNECTION_ID()"
            ).all()
            for (pid,) in ids:
                conn.exec_driver_sql(f"KILL {int(pid)}")
            killed = ids
    engine.dispose()
    assert killed, "no sink session found to kill"


def _servers_only(harness: Harness) -> None:
    if harness.dialect == "sqlite":
        pytest.skip("an embedded database has no connection to lose")


async def test_lost_connection_with_nothing_unflushed_is_retryable(harness: Harness) -> None:
    _servers_only(harness)
    sink = await harness.sink()
    await sink.prepare(ACCOUNT)
    await sink.write(Batch.of([event(A, 1)]))
    await sink.flush(None)
    kill_sink_connections(harness)
    with pytest.raises(RetryableError):
        await sink.write(Batch.of([event(B, 1)]))
    # The runtime retries the same batch: the sink reconnects and applies it.
    out = await sink.write(Batch.of([event(B, 1)]))
    assert [o.kind for o in out] == [OutcomeKind.APPLIED]
    await sink.flush(None)
    assert set(harness.rows()) == {A, B}


async def test_lost_connection_with_unflushed_batches_is_fatal(harness: Harness) -> None:
    _servers_only(harness)
    stream = "s"
    cp = Checkpoint().advanced({stream: Position(stream, "1")})
    sink = await harness.sink()
    await sink.prepare(ACCOUNT)
    await sink.write(Batch.of([event(A, 1)]))
    await sink.flush(cp)
    await sink.write(Batch.of([event(B, 1)]))  # reported applied, not yet committed
    kill_sink_connections(harness)
    with pytest.raises(FatalError, match="unflushed") as info:
        await sink.write(Batch.of([event(B, 2)]))
    assert "restart the sync" in str(info.value)
    # The database kept data and checkpoint consistent: a restart resumes from cp.
    restarted = await harness.sink()
    assert await restarted.load_checkpoint() == cp
    assert set(harness.rows()) == {A}


async def test_flush_on_a_lost_connection_is_fatal(harness: Harness) -> None:
    _servers_only(harness)
    sink = await harness.sink()
    await sink.prepare(ACCOUNT)
    await sink.write(Batch.of([event(A, 1)]))
    kill_sink_connections(harness)
    with pytest.raises(FatalError, match="committing"):
        await sink.flush(Checkpoint())
    assert harness.rows() == {}


async def test_events_before_prepare_are_a_fatal_bug(harness: Harness) -> None:
    sink = await harness.sink()
    await sink.prepare(ACCOUNT)
    with pytest.raises(FatalError, match="before prepare"):
        # Account is applied first, then Contact fails: neither may stay in the transaction.
        await sink.write(Batch.of([event(A, 1), event(B, 1, entity="Contact")]))
    await sink.write(Batch.of([event(B, 1)]))
    await sink.flush(None)
    assert set(harness.rows()) == {B}


async def test_unknown_fields_are_reported_once(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    sink = await harness.sink()
    await sink.prepare(ACCOUNT)
    await sink.write(Batch.of([event(A, 1, Surprise="x"), event(B, 1, Surprise="y")]))
    await sink.write(Batch.of([event(A, 2, Surprise="x")]))
    warnings = [r for r in caplog.records if "Account.Surprise" in r.getMessage()]
    assert len(warnings) == 1


@pytest.mark.parametrize("dialect", ["postgresql", "mysql", "sqlite"])
async def test_bad_settings_refuse_to_start(dialect: str, request: pytest.FixtureRequest) -> None:
    settings: PostgresConnection | MySqlConnection | SqliteConnection
    if dialect == "postgresql":
        url = sa.make_url(request.getfixturevalue("postgres_url"))
        url_text = url.set(database="sfsync_no_such_db").render_as_string(False)
        settings = PostgresConnection(type="postgres", url=url_text)
    elif dialect == "mysql":
        url = sa.make_url(request.getfixturevalue("mariadb_url"))
        url_text = url.set(database="sfsync_no_such_db").render_as_string(False)
        settings = MySqlConnection(type="mariadb", url=url_text)
    else:
        settings = SqliteConnection(type="sqlite", url="sqlite:////nonexistent/dir/target.db")
    sink = SqlSink(settings)
    with pytest.raises(ConfigError) as info:
        await sink.open(SinkContext(sync_name="s", clock=FakeClock()))
    assert info.value.hint
    await sink.aclose()


async def test_a_closed_sink_refuses_to_write(harness: Harness) -> None:
    sink = await harness.sink()
    await sink.prepare(ACCOUNT)
    await sink.aclose()
    await sink.aclose()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        await sink.write(Batch.of([event(A, 1)]))
