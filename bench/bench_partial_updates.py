"""Partial updates (what Change Data Capture delivers) through the SQL sink into PostgreSQL:
client CPU and server CPU per row, by batch size.

A table of ``--rows`` Accounts is loaded, then batches of partial updates (one changed field,
the version and the bookkeeping column, as a CDC update of ``AnnualRevenue`` gives) to random
keys are written and committed with a checkpoint, as the real-time runtime does. CPU is
measured, not wall time, so that a loaded machine changes the figures little: the client is this
process (all threads), the server is the sink session's backend (``/proc/<pid>/stat``).

    .venv/bin/python bench/bench_partial_updates.py [--rows 100000] [--batches 50,200,1000]
        [--changes 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import time
import uuid
from datetime import UTC, datetime
from types import MappingProxyType

import psycopg

from sfsync.connectors.salesforce.cdc import wire_datetime
from sfsync.connectors.sql.config import PostgresConnection
from sfsync.connectors.sql.sink import SqlSink
from sfsync.core.checkpoint import Checkpoint
from sfsync.core.events import Batch, ChangeEvent, Operation, Position
from sfsync.core.schema import EntitySchema, FieldKind, FieldSpec
from sfsync.spi.clock import SystemClock
from sfsync.spi.sink import SinkContext

URL = os.environ.get("SFSYNC_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
ACCOUNT = EntitySchema.of(
    "Account",
    "Id",
    [
        FieldSpec(name="Id", kind=FieldKind.ID, length=18),
        FieldSpec(name="Name", kind=FieldKind.STRING, length=255),
        FieldSpec(name="Industry", kind=FieldKind.STRING, length=255),
        FieldSpec(name="AnnualRevenue", kind=FieldKind.DECIMAL, precision=18, scale=0),
        FieldSpec(name="BillingCity", kind=FieldKind.STRING, length=40),
        FieldSpec(name="SystemModstamp", kind=FieldKind.DATETIME),
    ],
    version_field="SystemModstamp",
)


def _cpu_of(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def _update(key: str, millis: int) -> ChangeEvent:
    stamp = wire_datetime(millis)
    return ChangeEvent(
        entity="Account",
        key=key,
        op=Operation.UPDATE,
        after={"AnnualRevenue": float(millis % 100_000)},
        position=Position("cdc:Account", f"{millis:x}"),
        committed_at=datetime.fromtimestamp(millis / 1000, tz=UTC),
        changed=frozenset({"AnnualRevenue"}),
        partial=True,
        version=stamp,
    )


async def _bench(args: argparse.Namespace) -> None:
    schema = f"bench_partial_{uuid.uuid4().hex[:8]}"
    sink = SqlSink(PostgresConnection(type="postgres", url=URL, schema=schema), sync_id="bench")
    await sink.open(SinkContext(sync_name="bench", clock=SystemClock()))
    try:
        await sink.prepare(ACCOUNT)
        ids = [f"001{n:015d}" for n in range(args.rows)]
        start = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp() * 1000)
        created = [
            ChangeEvent(
                entity="Account",
                key=key,
                op=Operation.CREATE,
                after={"Id": key, "Name": f"A {key}", "AnnualRevenue": 1.0},
                position=Position("s", "0"),
                committed_at=datetime(2026, 1, 1, tzinfo=UTC),
                version=wire_datetime(start),
            )
            for key in ids
        ]
        for first in range(0, len(created), 5000):
            await sink.write(Batch.of(created[first : first + 5000]))
        await sink.flush(None)
        with psycopg.connect(URL, autocommit=True) as admin:
            row = admin.execute(
                "SELECT pid FROM pg_stat_activity WHERE application_name = 'sfsync sink bench'"
            ).fetchone()
        assert row is not None, "the sink's session is not in pg_stat_activity"
        backend = int(row[0])
        checkpoint = Checkpoint(
            positions=MappingProxyType({"cdc:Account": Position("cdc:Account", "00")})
        )
        rng = random.Random(1)
        millis = start
        print(f"{args.rows:,} rows; load {os.getloadavg()[0]:.2f}")
        for size in args.batches:
            batches = []
            for _ in range(max(1, args.changes // size)):
                events = []
                for key in rng.sample(ids, size):
                    millis += 1
                    events.append(_update(key, millis))
                batches.append(Batch.of(events))
            client, server = time.process_time(), _cpu_of(backend)
            for batch in batches:
                await sink.write(batch)
                await sink.flush(checkpoint)
            count = len(batches) * size
            client = (time.process_time() - client) / count * 1e6
            server = (_cpu_of(backend) - server) / count * 1e6
            print(
                f"  {size:>5} rows a batch: client {client:5.1f} us, "
                f"PostgreSQL {server:5.1f} us a row"
            )
    finally:
        await sink.aclose()
        with psycopg.connect(URL, autocommit=True) as admin:
            admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument(
        "--batches",
        type=lambda text: [int(x) for x in text.split(",") if x],
        default=[50, 200, 1000],
    )
    parser.add_argument("--changes", type=int, default=20_000)
    asyncio.run(_bench(parser.parse_args()))


if __name__ == "__main__":
    main()
