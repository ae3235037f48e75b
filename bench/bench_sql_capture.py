"""Benchmark: SQL change capture on SQLite, PostgreSQL and MariaDB, against the same writes
without capture and a raw read of the change log, in the same run.

Run::

    .venv/bin/python bench/bench_sql_capture.py                    # 20,000 rows, all three
    .venv/bin/python bench/bench_sql_capture.py --rows 100000 --dialects postgresql

What it measures, per database, in a fresh table (inputs built before the clock starts):

1. ``insert, no capture``: N rows inserted in transactions of ``--batch`` rows (executemany):
   the floor for writes.
2. ``insert, captured``: the same with the capture triggers installed; the ratio to (1) is
   what capture costs the application's writes.
3. ``update, captured``: one ``UPDATE`` of a column on every row, by transaction of
   ``--batch`` keys.
4. ``read events``: the 2N change events through ``SqlCaptureSource.changes`` (decode,
   normalise, build events), from the position before step 2.
5. ``raw log read``: ``SELECT`` of the same change log rows with the driver, nothing decoded:
   the floor for reading.
6. ``snapshot``: the N rows as READ events through ``SqlCaptureSource.snapshot`` (the first
   run's path), against 7. ``raw table read``, the driver's ``SELECT`` of the table.

Prints rows/s and the ratios, with the load average. Tests never run this.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import sqlalchemy as sa

from sfsync.connectors.sql.capture import install
from sfsync.connectors.sql.capture.install import CaptureObject
from sfsync.connectors.sql.capture.source import SqlCaptureSource
from sfsync.connectors.sql.client import ConnectionSettings, dialect_of, engine_url
from sfsync.connectors.sql.config import MySqlConnection, PostgresConnection, SqliteConnection
from sfsync.core.checkpoint import Checkpoint
from sfsync.spi.clock import SystemClock
from sfsync.spi.source import SourceContext

PG_URL = os.environ.get("SFSYNC_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
MARIADB_URL = os.environ.get("SFSYNC_TEST_MARIADB_URL", "mysql://root@127.0.0.1:3306")
OBJ = CaptureObject(entity="Invoice__c", table="invoice", key="Ext_Id__c")

DDL = (
    "CREATE TABLE {t} (ext_id__c varchar(40) PRIMARY KEY, name varchar(80), "
    "amount numeric(12,2), city varchar(40), paid boolean, description text, "
    "updated_at {ts})"
)
TS = {"postgresql": "timestamptz", "mysql": "datetime(6)", "sqlite": "timestamp"}


def rows(count: int) -> list[dict[str, Any]]:
    return [
        {
            "k": f"INV-{n:08d}",
            "n": f"Invoice {n} for customer {n % 997}",
            "a": str(Decimal(n % 100000) / 100),
            "c": ("Zürich", "Osaka", "Austin", "Lyon")[n % 4],
            "p": n % 3 == 0,
            "d": "line item " * 10,
            "u": "2026-01-01 00:00:00",
        }
        for n in range(count)
    ]


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def prepare(dialect: str, workdir: Path) -> tuple[ConnectionSettings, Callable[[], None]]:
    name = f"sfsync_bench_{uuid.uuid4().hex[:8]}"
    if dialect == "sqlite":
        path = workdir / f"{name}.db"
        sa.create_engine(f"sqlite:///{path}").dispose()
        path.touch()
        return SqliteConnection(type="sqlite", url=f"sqlite:///{path}"), lambda: None
    if dialect == "postgresql":
        settings = PostgresConnection(type="postgres", url=PG_URL, schema=name)
        admin = sa.create_engine(engine_url(settings))
        with admin.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{name}"')

        def drop_pg() -> None:
            with admin.begin() as c:
                c.exec_driver_sql(f'DROP SCHEMA "{name}" CASCADE')
            admin.dispose()

        return settings, drop_pg
    url = sa.make_url(MARIADB_URL.replace("mysql://", "mysql+pymysql://"))
    admin = sa.create_engine(url)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE `{name}`")
    db_url = url.set(database=name).set(drivername="mysql").render_as_string(False)

    def drop_my() -> None:
        with admin.begin() as c:
            c.exec_driver_sql(f"DROP DATABASE `{name}`")
        admin.dispose()

    return MySqlConnection(type="mariadb", url=db_url), drop_my


def bench(dialect: str, count: int, batch: int, workdir: Path) -> dict[str, float]:
    settings, cleanup = prepare(dialect, workdir)
    engine = sa.create_engine(engine_url(settings))
    prep = engine.dialect.identifier_preparer
    schema = getattr(settings, "db_schema", None)
    table = f"{prep.quote(schema)}.invoice" if schema else "invoice"
    log = f"{prep.quote(schema)}._sfsync_changes" if schema else "_sfsync_changes"
    data = rows(count)
    insert = sa.text(
        f"INSERT INTO {table} (ext_id__c, name, amount, city, paid, description, updated_at) "
        "VALUES (:k, :n, :a, :c, :p, :d, :u)"
    )
    update = sa.text(f"UPDATE {table} SET name = :n WHERE ext_id__c = :k")

    def load(statement: sa.TextClause, values: list[dict[str, Any]]) -> None:
        with engine.connect() as conn:
            for i in range(0, len(values), batch):
                conn.execute(statement, values[i : i + batch])
                conn.commit()

    figures: dict[str, float] = {}
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(DDL.format(t=table, ts=TS[dialect]))
        figures["insert, no capture"] = count / timed(lambda: load(insert, data))
        with engine.begin() as conn:
            conn.exec_driver_sql(f"DELETE FROM {table}")
        e, c = install.connect(settings)
        install.execute(c, dialect_of(settings), install.plan_install(c, settings, [OBJ]))
        c.close()
        e.dispose()
        source = SqlCaptureSource(settings, [OBJ])

        async def start() -> Checkpoint:
            await source.open(
                SourceContext(sync_name="bench", clock=SystemClock(), batch_size=batch)
            )
            return Checkpoint(positions=await source.current_positions())

        async def read_events(resume: Checkpoint) -> int:
            seen = 0
            async for b in source.changes(resume):
                seen += len(b.events)
            return seen

        resume = anyio.run(start)
        figures["insert, captured"] = count / timed(lambda: load(insert, data))
        changed = [{"k": r["k"], "n": r["n"] + " (paid)"} for r in data]
        figures["update, captured"] = count / timed(lambda: load(update, changed))
        got: list[int] = []
        seconds = timed(lambda: got.append(anyio.run(read_events, resume)))
        assert got == [2 * count], f"read {got} events, expected {2 * count}"
        figures["read events"] = 2 * count / seconds

        def raw() -> None:
            with engine.connect() as conn:
                fetched = conn.exec_driver_sql(f"SELECT * FROM {log} ORDER BY seq").fetchall()
                assert len(fetched) == 2 * count

        figures["raw log read"] = 2 * count / timed(raw)

        async def snapshot() -> int:
            seen = 0
            async for b in source.snapshot(["Invoice__c"], None):
                seen += len(b.events)
            return seen

        got.clear()
        figures["snapshot"] = count / timed(lambda: got.append(anyio.run(snapshot)))
        assert got == [count], f"snapshot read {got} rows, expected {count}"

        def raw_table() -> None:
            with engine.connect() as conn:
                fetched = conn.exec_driver_sql(f"SELECT * FROM {table} ORDER BY 1").fetchall()
                assert len(fetched) == count

        figures["raw table read"] = count / timed(raw_table)
        anyio.run(source.aclose)
    finally:
        engine.dispose()
        cleanup()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=1000, help="rows per transaction")
    parser.add_argument("--dialects", default="sqlite,postgresql,mysql")
    args = parser.parse_args()
    with open("/proc/loadavg") as f:
        print(f"load average before: {f.read().strip()}")
    with tempfile.TemporaryDirectory() as tmp:
        for dialect in args.dialects.split(","):
            figures = bench(dialect, args.rows, args.batch, Path(tmp))
            print(f"\n{dialect}: {args.rows:,} rows, {args.batch} per transaction")
            for label, rate in figures.items():
                print(f"  {label:<20} {rate:>12,.0f} rows/s")
            overhead = figures["insert, no capture"] / figures["insert, captured"]
            print(
                f"  capture slows inserts {overhead:.2f}x; events read at "
                f"{figures['read events'] / figures['raw log read']:.2f} of the raw log read; "
                f"snapshot at {figures['snapshot'] / figures['raw table read']:.2f} of the raw "
                "table read"
            )
    with open("/proc/loadavg") as f:
        print(f"\nload average after: {f.read().strip()}")


if __name__ == "__main__":
    main()
