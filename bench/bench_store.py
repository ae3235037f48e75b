"""Time the emulator's record store loading 1,000,000 Accounts.

Measures :meth:`OrgStore.bulk_load` in memory and into an SQLite file, the reload of that file
on start, one full scan, and the process's peak RSS. The physical references in the same run
are building the same value tuples with a bare loop (no ids, defaults or indexes) and writing
pre-encoded rows to SQLite with one ``executemany`` (no store logic). Prints records/s.

    .venv/bin/python bench/bench_store.py [--records N] [--dir PATH]
"""

from __future__ import annotations

import argparse
import resource
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import orjson

from sfsync.emulator.clock import OrgClock
from sfsync.emulator.schema.model import WireValue
from sfsync.emulator.schema.standard import INDUSTRIES, standard_schema
from sfsync.emulator.store import OrgStore


def rows(n: int) -> Iterator[dict[str, WireValue]]:
    for i in range(n):
        yield {
            "Name": f"Account {i}",
            "Industry": INDUSTRIES[i % len(INDUSTRIES)],
            "BillingStreet": f"{i} Main St",
            "BillingCity": "Paris",
            "BillingCountry": "France",
            "AnnualRevenue": float(i),
            "NumberOfEmployees": i % 1000,
            "Phone": "+33 1 00 00 00 00",
        }


def rate(label: str, n: int, seconds: float) -> None:
    print(f"{label:<42} {seconds:7.2f} s  {n / seconds:>12,.0f} records/s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    n = args.records
    schema = standard_schema()
    width = len(
        [
            f
            for f in schema.object("Account").fields.values()  # type: ignore[union-attr]
            if f.type.value not in ("address", "location")
        ]
    )

    start = time.perf_counter()
    bare = [tuple([None] * (width - 8)) + tuple(r.values()) for r in rows(n)]
    rate("reference: bare tuples", n, time.perf_counter() - start)
    del bare

    store = OrgStore(schema, OrgClock())
    start = time.perf_counter()
    store.bulk_load("Account", rows(n))
    rate("bulk_load (memory)", n, time.perf_counter() - start)
    start = time.perf_counter()
    seen = sum(1 for r in store.scan("Account", include_deleted=False) if r["Industry"])
    rate("scan + read one field", seen, time.perf_counter() - start)
    del store

    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        ref = sqlite3.connect(Path(tmp) / "ref.sqlite", isolation_level=None)
        ref.execute("PRAGMA journal_mode=WAL")
        ref.execute("CREATE TABLE r (id TEXT PRIMARY KEY, data BLOB)")
        encoded = [
            (f"001xx{i:013d}", orjson.dumps(list(r.values()))) for i, r in enumerate(rows(n))
        ]
        start = time.perf_counter()
        ref.execute("BEGIN")
        ref.executemany("INSERT INTO r VALUES (?, ?)", encoded)
        ref.execute("COMMIT")
        rate("reference: sqlite executemany", n, time.perf_counter() - start)
        ref.close()
        del encoded

        path = Path(tmp) / "org.sqlite"
        store = OrgStore(schema, OrgClock(), data_path=path)
        start = time.perf_counter()
        store.bulk_load("Account", rows(n))
        rate("bulk_load (memory + SQLite)", n, time.perf_counter() - start)
        store.close()
        start = time.perf_counter()
        reopened = OrgStore(schema, OrgClock(), data_path=path)
        rate("reload from SQLite", reopened.count("Account"), time.perf_counter() - start)
        reopened.close()
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB")


if __name__ == "__main__":
    main()
