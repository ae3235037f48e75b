"""Benchmark: the SQL sink on PostgreSQL against the raw COPY paths, in the same run.

Run::

    .venv/bin/python bench/bench_sql_sink.py                  # 1,000,000 rows
    .venv/bin/python bench/bench_sql_sink.py --rows 200000    # quicker
    .venv/bin/python bench/bench_sql_sink.py --rows 300000 --repeat 3   # medians, alternating order

What it measures (each step in its own fresh schema, inputs built before the clock starts and
frozen out of the garbage collector, one transaction per step with the commit timed):

1. ``sink load``: N Account-like change events (20 fields, values as a source delivers them:
   ISO text timestamps, floats, ints, booleans) through ``SqlSink.write`` in batches, then
   ``flush``: the whole path including planning, value conversion and the version guard.
2. ``raw COPY``: the same rows, already typed, with psycopg ``COPY ... write_row`` into a plain
   table: the physical limit of loading (docs/sql-sink.md, physical-limits row 4a).
3. ``raw COPY+merge``: the same typed rows through COPY into a temp table and
   ``INSERT ... SELECT ... ON CONFLICT`` per batch: the best raw upsert (row 4c).
4. ``sink upsert``: every 10th row changed (Name, AnnualRevenue, LastModifiedDate) upserted
   through the sink into the loaded table (after ``VACUUM ANALYZE`` and ``CHECKPOINT``).
5. ``raw upsert``: the same changed rows, typed, via COPY+merge into a loaded raw table.

The run prints rows/s, client CPU seconds and the sink/raw ratios. Tests never run this.
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import anyio
import psycopg

from sfsync.connectors.sql.config import PostgresConnection
from sfsync.connectors.sql.sink import SqlSink
from sfsync.core.events import Batch, ChangeEvent, Operation, Position
from sfsync.core.schema import EntitySchema, FieldKind, FieldSpec
from sfsync.spi.clock import SystemClock
from sfsync.spi.sink import OutcomeKind, SinkContext

S = FieldKind.STRING
FIELDS = [
    FieldSpec(name="Id", kind=FieldKind.ID, length=18),
    FieldSpec(name="Name", kind=S, length=255),
    FieldSpec(name="AccountNumber", kind=S, length=40),
    FieldSpec(name="Type", kind=S, length=40),
    FieldSpec(name="Industry", kind=S, length=40),
    FieldSpec(name="BillingStreet", kind=FieldKind.TEXT),
    FieldSpec(name="BillingCity", kind=S, length=40),
    FieldSpec(name="BillingState", kind=S, length=80),
    FieldSpec(name="BillingPostalCode", kind=S, length=20),
    FieldSpec(name="Phone", kind=S, length=40),
    FieldSpec(name="Website", kind=S, length=255),
    FieldSpec(name="Description", kind=FieldKind.TEXT),
    FieldSpec(name="AnnualRevenue", kind=FieldKind.DECIMAL, precision=18, scale=2),
    FieldSpec(name="NumberOfEmployees", kind=FieldKind.INTEGER),
    FieldSpec(name="IsDeleted", kind=FieldKind.BOOLEAN),
    FieldSpec(name="Active__c", kind=FieldKind.BOOLEAN),
    FieldSpec(name="CreatedDate", kind=FieldKind.DATETIME),
    FieldSpec(name="LastModifiedDate", kind=FieldKind.DATETIME),
    FieldSpec(name="SLAExpirationDate__c", kind=FieldKind.DATE),
    FieldSpec(name="External_Id__c", kind=S, length=40),
]
SCHEMA = EntitySchema.of("Account", "Id", FIELDS, version_field="LastModifiedDate")
RAW_DDL = (
    "Id varchar(18) PRIMARY KEY, Name varchar(255), AccountNumber varchar(40), Type varchar(40), "
    "Industry varchar(40), BillingStreet text, BillingCity varchar(40), BillingState varchar(80), "
    "BillingPostalCode varchar(20), Phone varchar(40), Website varchar(255), Description text, "
    "AnnualRevenue numeric(18,2), NumberOfEmployees bigint, IsDeleted boolean, Active__c boolean, "
    "CreatedDate timestamptz, LastModifiedDate timestamptz, SLAExpirationDate__c date, "
    "External_Id__c varchar(40)"
)
WORDS = [
    "alpha",
    "beta",
    "gamma",
    "delta",
    "Zürich",
    "São",
    "Paulo",
    "Hauptstraße",
    "river",
    "stone",
    "cloud",
    "north",
]
CITIES = ["Zürich", "São Paulo", "Berlin", "Lyon", "Austin", "Osaka", "Cork"]
BASE = datetime(2016, 1, 2, 14, 27, 21, 466000, tzinfo=UTC)


def sf_time(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}+0000"


def records(n: int) -> Iterator[dict[str, object]]:
    """Account-like records, values as a Salesforce source delivers them."""
    rnd = random.Random(20240601)
    for i in range(n):
        created = BASE + timedelta(seconds=rnd.randrange(300_000_000))
        words = rnd.randrange(31)
        description = None
        if rnd.random() >= 0.3:
            description = " ".join(rnd.choice(WORDS) for _ in range(words))
            if rnd.random() < 0.05:
                description += "\nsecond line"
        yield {
            "Id": f"001{i:012d}AAA",
            "Name": f"Account {i} {rnd.choice(WORDS)}",
            "AccountNumber": f"AN-{rnd.randrange(10**8):08d}",
            "Type": rnd.choice(["Customer", "Partner", "Prospect"]),
            "Industry": rnd.choice(["Energy", "Retail", "Banking", "Media"]),
            "BillingStreet": f"{rnd.randrange(1, 300)} {rnd.choice(WORDS)} Street",
            "BillingCity": rnd.choice(CITIES),
            "BillingState": rnd.choice(["CA", "TX", "ZH", "SP"]),
            "BillingPostalCode": f"{rnd.randrange(10**5):05d}",
            "Phone": f"+1 555 {rnd.randrange(10**7):07d}",
            "Website": f"https://example{i}.com",
            "Description": description,
            "AnnualRevenue": None if rnd.random() < 0.2 else round(rnd.random() * 1e7, 2),
            "NumberOfEmployees": rnd.randrange(1, 50_000),
            "IsDeleted": False,
            "Active__c": rnd.random() < 0.7,
            "CreatedDate": sf_time(created),
            "LastModifiedDate": sf_time(created + timedelta(days=rnd.randrange(400))),
            "SLAExpirationDate__c": (
                date(2020, 1, 1) + timedelta(days=rnd.randrange(2000))
            ).isoformat(),
            "External_Id__c": f"EXT-{i}",
        }


def changed(rows: Sequence[dict[str, object]], every: int) -> list[dict[str, object]]:
    """Every ``every``-th record with Name, AnnualRevenue and LastModifiedDate changed."""
    out = []
    for record in rows[::every]:
        new = dict(record)
        new["Name"] = f"{record['Name']} (renamed)"
        new["AnnualRevenue"] = 12345.67
        new["LastModifiedDate"] = sf_time(datetime(2030, 1, 1, tzinfo=UTC))
        out.append(new)
    return out


def typed(record: dict[str, object]) -> tuple[object, ...]:
    """The DB tuple a hand-written loader would COPY (conversion not timed for raw paths)."""
    values = []
    for spec in FIELDS:
        value = record[spec.name]
        if value is not None and spec.kind is FieldKind.DATETIME:
            value = datetime.fromisoformat(str(value))
        elif value is not None and spec.kind is FieldKind.DATE:
            value = date.fromisoformat(str(value))
        elif value is not None and spec.kind is FieldKind.DECIMAL:
            value = Decimal(repr(value))
        values.append(value)
    return tuple(values)


def to_event(record: dict[str, object], n: int) -> ChangeEvent:
    return ChangeEvent(
        entity="Account",
        key=str(record["Id"]),
        op=Operation.READ,
        after=record,
        position=Position("bench", str(n)),
        committed_at=BASE,
        version=str(record["LastModifiedDate"]),
    )


def timed(label: str, rows: int, func: Callable[[], object]) -> float:
    gc.collect()
    gc.freeze()
    wall, cpu = time.perf_counter(), time.process_time()
    func()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    gc.unfreeze()
    rate = rows / wall
    print(
        f"{label:<34} {rows:>9,} rows {wall:7.2f} s  {rate:>9,.0f} rows/s  client CPU {cpu:6.2f} s"
    )
    return rate


class Bench:
    def __init__(self, url: str, batch: int) -> None:
        self.url = url
        self.batch = batch
        self.schemas: list[str] = []

    def admin(self, sql: str) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(sql)

    def new_schema(self) -> str:
        name = f"sfsync_bench_{uuid.uuid4().hex[:8]}"
        self.admin(f'CREATE SCHEMA "{name}"')
        self.schemas.append(name)
        return name

    def settle(self, table: str) -> None:
        self.admin(f"VACUUM ANALYZE {table}")
        self.admin("CHECKPOINT")

    def cleanup(self) -> None:
        for name in self.schemas:
            self.admin(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')

    # --- the sink ---------------------------------------------------------------------------

    def sink_run(self, schema: str, events: list[ChangeEvent]) -> None:
        async def run() -> None:
            settings = PostgresConnection(
                type="postgres", url=self.url, schema=schema, batch_size=self.batch
            )
            sink = SqlSink(settings, sync_id="bench")
            await sink.open(SinkContext(sync_name="bench", clock=SystemClock()))
            await sink.prepare(SCHEMA)
            try:
                for start in range(0, len(events), self.batch):
                    outcomes = await sink.write(Batch.of(events[start : start + self.batch]))
                    bad = [o for o in outcomes if o.kind is not OutcomeKind.APPLIED]
                    if bad:
                        raise SystemExit(f"unexpected outcome {bad[0]}")
                await sink.flush(None)
            finally:
                await sink.aclose()

        anyio.run(run)

    # --- raw paths --------------------------------------------------------------------------

    def raw_table(self, schema: str) -> str:
        table = f'"{schema}".account'
        self.admin(f"CREATE TABLE {table} ({RAW_DDL})")
        return table

    def raw_copy(self, table: str, rows: list[tuple[object, ...]]) -> None:
        with psycopg.connect(self.url) as conn:
            with conn.cursor() as cur, cur.copy(f"COPY {table} FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            conn.commit()

    def raw_merge(self, table: str, rows: list[tuple[object, ...]]) -> None:
        columns = [f.name for f in FIELDS]
        sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns[1:])
        merge = (
            f"INSERT INTO {table} AS t SELECT * FROM stage ON CONFLICT (Id) DO UPDATE SET {sets} "
            "WHERE t.LastModifiedDate <= EXCLUDED.LastModifiedDate"
        )
        with psycopg.connect(self.url) as conn:
            conn.execute(f"CREATE TEMP TABLE stage (LIKE {table})")
            for start in range(0, len(rows), self.batch):
                conn.execute("TRUNCATE stage")
                with conn.cursor() as cur, cur.copy("COPY stage FROM STDIN") as copy:
                    for row in rows[start : start + self.batch]:
                        copy.write_row(row)
                conn.execute(merge)
            conn.commit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="records to load")
    parser.add_argument("--changed-every", type=int, default=10, help="change every N-th row")
    parser.add_argument("--batch", type=int, default=2000, help="events per write() call")
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--repeat", type=int, default=1, help="rounds (ratios use medians)")
    args = parser.parse_args()

    print(f"building {args.rows:,} records ...", flush=True)
    source = list(records(args.rows))
    events = [to_event(r, i) for i, r in enumerate(source)]
    rows = [typed(r) for r in source]
    changes = changed(source, args.changed_every)
    change_events = [to_event(r, i) for i, r in enumerate(changes)]
    change_rows = [typed(r) for r in changes]
    del source

    bench = Bench(args.url, args.batch)
    results: dict[str, list[float]] = {}
    try:
        for round_ in range(args.repeat):
            if args.repeat > 1:
                print(f"-- round {round_ + 1} of {args.repeat}")
            # Alternate which path goes first: on a shared machine the load drifts.
            order = ["sink", "raw"] if round_ % 2 == 0 else ["raw", "sink"]
            for name, rate in one_round(bench, order, events, rows, change_events, change_rows):
                results.setdefault(name, []).append(rate)
            bench.cleanup()
            bench.schemas.clear()
        med = {name: statistics.median(rates) for name, rates in results.items()}
        print()
        print(f"medians of {args.repeat} round(s):")
        print(f"sink load / raw COPY          {med['sink'] / med['copy']:6.0%}")
        print(f"sink load / raw COPY+merge    {med['sink'] / med['merge']:6.0%}")
        print(f"sink upsert / raw upsert      {med['sink_up'] / med['raw_up']:6.0%}")
    finally:
        bench.cleanup()


def one_round(
    bench: Bench,
    order: list[str],
    events: list[ChangeEvent],
    rows: list[tuple[object, ...]],
    change_events: list[ChangeEvent],
    change_rows: list[tuple[object, ...]],
) -> list[tuple[str, float]]:
    """One run of every step; returns ``(name, rows/s)`` pairs."""
    rates: list[tuple[str, float]] = []
    sink_schema = bench.new_schema()
    merge_table = bench.raw_table(bench.new_schema())
    copy_table = bench.raw_table(bench.new_schema())
    for side in order:
        if side == "sink":
            bench.admin("CHECKPOINT")
            rates.append(
                (
                    "sink",
                    timed(
                        "sink load (write+flush)",
                        len(rows),
                        lambda: bench.sink_run(sink_schema, events),
                    ),
                )
            )
        else:
            bench.admin("CHECKPOINT")
            rates.append(
                (
                    "copy",
                    timed(
                        "raw COPY write_row", len(rows), lambda: bench.raw_copy(copy_table, rows)
                    ),
                )
            )
            bench.admin("CHECKPOINT")
            rates.append(
                (
                    "merge",
                    timed(
                        "raw COPY->temp->merge",
                        len(rows),
                        lambda: bench.raw_merge(merge_table, rows),
                    ),
                )
            )
    for side in order:
        if side == "sink":
            bench.settle(f'"{sink_schema}".account')
            rates.append(
                (
                    "sink_up",
                    timed(
                        "sink upsert changed rows",
                        len(change_rows),
                        lambda: bench.sink_run(sink_schema, change_events),
                    ),
                )
            )
        else:
            bench.settle(merge_table)
            rates.append(
                (
                    "raw_up",
                    timed(
                        "raw COPY->temp->merge changed",
                        len(change_rows),
                        lambda: bench.raw_merge(merge_table, change_rows),
                    ),
                )
            )
    return rates


if __name__ == "__main__":
    main()
