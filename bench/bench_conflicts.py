"""Time what a two-way sync does per record besides the API calls: three-way resolution, echo
checks, first-run matching, and the shadow store (SQLite, and PostgreSQL when it is up).

References in the same run: resolution against a bare loop that only finds the fields each
side changed (no policies, no decision objects); the shadow store against one ``executemany``
of the same rows pre-encoded as JSON text into a bare table (no codec, no upsert). Prints
records/s and the ratio to the reference.

    .venv/bin/python bench/bench_conflicts.py [--records N] [--postgres URL]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import anyio
import psycopg

from sfsync.core.conflicts import ConflictRules, Policy, Side, Version, is_echo
from sfsync.core.matching import match_records
from sfsync.core.merge import resolve
from sfsync.core.review import Shadow
from sfsync.stores.shadow import SqlShadowStore
from sfsync.stores.shadow_sql import PostgresStateDb, SqliteStateDb, StateDb

T0 = datetime(2026, 5, 1, tzinfo=UTC)
BATCH = 2000


def record(i: int) -> dict[str, object]:
    return {
        "Name": f"Acme {i}",
        "Email": f"a{i}@example.com",
        "Phone": f"+41 44 {i:07d}",
        "AnnualRevenue": Decimal(i) / 100,
        "BillingCity": "Zürich",
        "LastContact": T0 - timedelta(days=i % 365),
        "Active": i % 3 != 0,
        "NumberOfEmployees": i % 500,
        "Description": None,
        "External_Id__c": f"E{i}",
    }


def rate(label: str, n: int, seconds: float, reference: float | None = None) -> None:
    ratio = f"  {seconds / reference:5.1f}x the reference" if reference else ""
    print(f"{label:<52} {seconds:7.2f} s  {n / seconds:>10,.0f} records/s{ratio}")


def bench_decisions(n: int) -> None:
    base = [record(i) for i in range(n)]
    # Salesforce renames every record; the external side moves odd ones and renames even ones:
    # half the records have a conflict on Name.
    sf = [{**r, "Name": f"{r['Name']} AG"} for r in base]
    ext = [
        {**r, "BillingCity": "Basel"} if i % 2 else {**r, "Name": "ACME"}
        for i, r in enumerate(base)
    ]
    t = time.perf_counter()
    for b, s, e in zip(base, sf, ext, strict=True):
        changed_s = {k for k, v in s.items() if v != b.get(k)}
        changed_e = {k for k, v in e.items() if v != b.get(k)}
        _ = changed_s & changed_e
    floor = time.perf_counter() - t
    rate("reference: changed fields of both sides, bare loop", n, floor)
    rules = ConflictRules(policy=Policy.NEWEST_WINS)
    later = T0 + timedelta(seconds=1)
    t = time.perf_counter()
    for b, s, e in zip(base, sf, ext, strict=True):
        resolve(
            b,
            Version(side=Side.SALESFORCE, values=s, committed_at=T0),
            Version(side=Side.EXTERNAL, values=e, committed_at=later),
            rules,
        )
    rate("resolve (10 fields, half the records in conflict)", n, time.perf_counter() - t, floor)
    t = time.perf_counter()
    for b in base:
        is_echo(b, b)
    rate("is_echo (a record equal to its shadow)", n, time.perf_counter() - t)
    left = {f"001{i:012d}": r for i, r in enumerate(base)}
    right = {
        str(i): {"External_Id__c": f"e{i}" if i % 3 else None, "Email": f" A{i}@Example.com"}
        for i in range(n)
    }
    t = time.perf_counter()
    result = match_records(left, right, ["External_Id__c", "Email"])
    assert len(result.pairs) == n
    rate("match_records (both sides, two keys)", n, time.perf_counter() - t)


async def bench_store(
    label: str, db: StateDb, n: int, floor: Callable[[], Awaitable[float]]
) -> None:
    store = await SqlShadowStore.open(db)
    shadows = [
        Shadow(
            sync="bench",
            entity="Account",
            key=f"E{i}",
            values=record(i),
            salesforce_id=f"001{i:012d}",
            external_key=str(i),
            salesforce_version="2026-05-01T00:00:00.000Z",
            external_version=str(i),
            synced_at=T0,
        )
        for i in range(n)
    ]
    reference = await floor()
    rate(f"{label} reference: executemany of pre-encoded rows", n, reference)
    t = time.perf_counter()
    for start in range(0, n, BATCH):
        await store.put(shadows[start : start + BATCH])
    rate(f"{label} shadow put, {BATCH} a call", n, time.perf_counter() - t, reference)
    t = time.perf_counter()
    found = 0
    for start in range(0, n, BATCH):
        found += len(
            await store.get(
                "bench", "Account", [f"E{i}" for i in range(start, min(n, start + BATCH))]
            )
        )
    assert found == n
    rate(f"{label} shadow get by key, {BATCH} a call", n, time.perf_counter() - t)
    t = time.perf_counter()
    found = 0
    for start in range(0, n, BATCH):
        ids = [f"001{i:012d}" for i in range(start, min(n, start + BATCH))]
        found += len(await store.by_salesforce_id("bench", "Account", ids))
    assert found == n
    rate(f"{label} shadow get by Salesforce Id, {BATCH} a call", n, time.perf_counter() - t)


def encoded(n: int) -> list[tuple[str, str, str, str]]:
    return [
        (f"E{i}", "Account", "bench", json.dumps({k: str(v) for k, v in record(i).items()}))
        for i in range(n)
    ]


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    n = args.records
    print(f"{n:,} records")
    bench_decisions(n)
    rows = encoded(n)
    with tempfile.TemporaryDirectory() as tmp:

        async def sqlite_floor() -> float:
            conn = sqlite3.connect(Path(tmp) / "floor.sqlite", isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("CREATE TABLE t (key TEXT, entity TEXT, sync TEXT, v TEXT)")
            t = time.perf_counter()
            for start in range(0, n, BATCH):
                conn.execute("BEGIN")
                conn.executemany("INSERT INTO t VALUES (?, ?, ?, ?)", rows[start : start + BATCH])
                conn.execute("COMMIT")
            conn.close()
            return time.perf_counter() - t

        db = SqliteStateDb(Path(tmp) / "state.sqlite")
        await bench_store("SQLite", db, n, sqlite_floor)
        await db.aclose()
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    try:
        pg = await PostgresStateDb.open(args.postgres, schema=schema)
    except Exception as exc:
        print(f"PostgreSQL skipped: {exc}")
        return

    async def pg_floor() -> float:
        async with await psycopg.AsyncConnection.connect(args.postgres, autocommit=True) as conn:
            await conn.execute(
                f'CREATE TABLE "{schema}".t (key text, entity text, sync text, v text)'
            )
            t = time.perf_counter()
            for start in range(0, n, BATCH):
                async with conn.transaction(), conn.cursor() as cur:
                    await cur.executemany(
                        f'INSERT INTO "{schema}".t VALUES (%s, %s, %s, %s)',
                        rows[start : start + BATCH],
                    )
            return time.perf_counter() - t

    try:
        await bench_store("PostgreSQL", pg, n, pg_floor)
    finally:
        await pg.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await pg.aclose()


if __name__ == "__main__":
    anyio.run(main)
