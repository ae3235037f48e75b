"""Time the SOQL engine over 1,000,000 in-memory Account records.

Measures, for ``SELECT Id, Name, Industry, AnnualRevenue, CreatedDate FROM Account`` and
filtered / ordered / grouped variants: compile, the counting pass (``run``), and rendering
every record (what the REST layer consumes page by page). Physical references in the same
run: serialising pre-built 2,000-record pages with orjson (what serving pre-built JSON
costs), against which the engine's render + serialise is measured, and building the same
dicts with a bare loop (no engine). Prints records/s.

    .venv/bin/python bench/bench_soql.py [--records N]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from itertools import islice
from types import MappingProxyType

import orjson

from sfsync.emulator.schema.model import FieldDef, FieldType, ObjectDef, Schema, WireValue
from sfsync.emulator.soql import MemorySource, compile_query

NOW = datetime(2024, 3, 15, 12, 0, tzinfo=UTC)
PAGE = 2000
FIELDS = ("Id", "IsDeleted", "Name", "Industry", "AnnualRevenue", "CreatedDate")
TYPES = (
    FieldType.ID, FieldType.BOOLEAN, FieldType.STRING, FieldType.PICKLIST, FieldType.CURRENCY,
    FieldType.DATETIME,
)  # fmt: skip


def schema() -> Schema:
    fields = {
        n.lower(): FieldDef(name=n, type=t, label=n) for n, t in zip(FIELDS, TYPES, strict=True)
    }
    account = ObjectDef(
        name="Account", label="Account", label_plural="Accounts", key_prefix="001",
        fields=MappingProxyType(fields),
    )  # fmt: skip
    return Schema(MappingProxyType({"account": account}))


def records(count: int) -> Iterator[dict[str, WireValue]]:
    industries = ("Energy", "Banking", "Retail", None)
    for n in range(count):
        yield {
            "Id": f"001{n:012d}AAA",
            "IsDeleted": False,
            "Name": f"Account {n}",
            "Industry": industries[n % 4],
            "AnnualRevenue": float(n % 10_000),
            "CreatedDate": f"2024-01-{n % 28 + 1:02d}T10:00:00.000+0000",
        }


def timed(label: str, count: int, action: object) -> None:
    assert callable(action)
    start = time.perf_counter()
    produced = action()
    elapsed = time.perf_counter() - start
    rate = count / elapsed if elapsed else float("inf")
    print(f"{label:<58} {elapsed:8.3f} s  {rate:>12,.0f} records/s  ({produced} out)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=1_000_000)
    count = parser.parse_args().records
    source = MemorySource()
    for record in records(count):
        source.put("Account", record)
    org = schema()

    def reference() -> int:
        rows = source.scan("Account", include_deleted=False)
        base = "/services/data/v59.0/sobjects/Account/"
        names = ("Id", "Name", "Industry", "AnnualRevenue", "CreatedDate")
        out = 0
        for r in rows:
            rec: dict[str, object] = {"attributes": {"type": "Account", "url": base + str(r["Id"])}}
            get = r.get
            for k in names:
                rec[k] = get(k)
            out += 1
        return out

    def query(soql: str) -> int:
        compiled = compile_query(soql, org)
        result = compiled.run(source, now=NOW, include_deleted=False, api_version="59.0")
        produced = sum(1 for _ in result.records)
        assert produced == result.total_size
        return produced

    # The REST layer's physical limit: pages already built, only serialised (orjson). The
    # engine runs first, so that the pre-built pages' objects do not slow its allocations
    # down through the garbage collector.
    plain = "SELECT Id, Name, Industry, AnnualRevenue, CreatedDate FROM Account"

    def serve_from_engine() -> int:
        result = compile_query(plain, org).run(
            source, now=NOW, include_deleted=False, api_version="59.0"
        )
        served = 0
        while True:
            page = list(islice(result.records, PAGE))
            if not page:
                return served
            orjson.dumps({"totalSize": result.total_size, "done": False, "records": page})
            served += len(page)

    timed("engine: compile, count, render + serialise pages", count, serve_from_engine)
    prebuilt = list(
        compile_query(plain, org)
        .run(source, now=NOW, include_deleted=False, api_version="59.0")
        .records
    )

    def serve_prebuilt() -> int:
        for start in range(0, len(prebuilt), PAGE):
            page = prebuilt[start : start + PAGE]
            orjson.dumps({"totalSize": count, "done": False, "records": page})
        return len(prebuilt)

    timed("reference: serialise pre-built 2,000-record pages", count, serve_prebuilt)
    prebuilt.clear()  # free the memory before the next measurements
    timed("reference: bare dict building (physical limit)", count, reference)
    timed(
        "SELECT Id, Name, Industry, AnnualRevenue, CreatedDate",
        count,
        lambda: query("SELECT Id, Name, Industry, AnnualRevenue, CreatedDate FROM Account"),
    )
    timed(
        "... WHERE Industry = 'energy' AND AnnualRevenue > 5000",
        count,
        lambda: query(
            "SELECT Id, Name FROM Account WHERE Industry = 'energy' AND AnnualRevenue > 5000"
        ),
    )
    timed(
        "... WHERE CreatedDate >= 2024-01-10T00:00:00Z ORDER BY Name",
        count,
        lambda: query(
            "SELECT Id, Name FROM Account WHERE CreatedDate >= 2024-01-10T00:00:00Z ORDER BY Name"
        ),
    )
    timed(
        "... ORDER BY CreatedDate DESC, Name DESC LIMIT 2000 (heap)",
        count,
        lambda: query(
            "SELECT Id, Name FROM Account ORDER BY CreatedDate DESC, Name DESC LIMIT 2000"
        ),
    )
    timed(
        "SELECT Industry, COUNT(Id), SUM(AnnualRevenue) ... GROUP BY",
        count,
        lambda: query(
            "SELECT Industry, COUNT(Id), SUM(AnnualRevenue) FROM Account GROUP BY Industry"
        ),
    )
    start = time.perf_counter()
    for _ in range(1000):
        compile_query(
            "SELECT Id, Name FROM Account WHERE Industry = 'x' ORDER BY Name LIMIT 5", org
        )
    # 1000 compilations: total seconds equal milliseconds per query.
    print(f"compile: {time.perf_counter() - start:.3f} ms per query")


if __name__ == "__main__":
    main()
