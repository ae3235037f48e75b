"""The Salesforce sink: N rows upserted into the emulator, against simple-salesforce's ``bulk2``.

Each pass gets a fresh server process holding an empty org (the schema of
``examples/emulator-schema.yaml``: ``Account.Customer_Number__c`` is a unique external id),
served by the real app over a real socket (uvicorn, the emulator's h11 protocol). The rows are
the realistic Account rows of ``benchlib`` (15 fields) plus the external id, the same in every
pass:

1. **sfsync, Collections path**: the sink (``bulk_threshold`` above any batch) gets batches of
   10,000 change events (as the runtime would hand them; built before timing, as the
   reference's CSV file is written before timing) and upserts them by external id through
   ``PATCH /composite/sobjects/Account/Customer_Number__c``, 200 records a call, 4 lanes.
2. **sfsync, Bulk path**: the same with the default settings, once per batch size in
   ``--batches``: each batch is written as Bulk API 2.0 upsert jobs of at most 5,000 rows
   (``--job-rows``), two open at a time (``--in-flight``), each: create, CSV upload, close,
   polls, successful results, delete (failed results only if the job counted failures).
3. **the emulator's bound on the Collections path**: the same upserts as pre-built JSON bodies
   of 200 records sent over 4 connections, nothing planned or parsed: what the server can take.
4. **simple-salesforce**, run first and last (the machine is shared and its load drifts; ratios
   use the mean of the two): ``sf.bulk2.Account.upsert(csv_file=..., external_id_field=...,
   wait=1)`` of the same rows written to one CSV file (not timed), the tool a user would
   otherwise pick. It reads no per-row results (only the job's counters); sfsync reads the
   successful results (and failures, if any), which it needs for per-row outcomes and Ids.

Printed per pass: wall time, rows/s, API calls the org counted (``/__emulator__/stats``),
records per API call, rows in the org afterwards (must equal N), and CPU per row of this
process (the client) and of the server process. The garbage collector is tuned as ``sfsync
run`` tunes it (``--no-tune-gc`` to leave it). Goals: at least 190
records per call on the Collections path; the sfsync Bulk path within 1.5x of simple-salesforce.

    .venv/bin/python bench/bench_sf_sink.py [--rows 100000] [--batches 10000,50000]
        [--bulk-only] [--job-rows N] [--in-flight N]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import multiprocessing
import multiprocessing.connection
import os
import resource
import shlex
import socket
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

from benchlib import realistic_rows

TOKEN = "bench-fixed-access-token"
VERSION = "62.0"
KEY = "Customer_Number__c"
SCHEMA = Path(__file__).resolve().parent.parent / "examples" / "emulator-schema.yaml"


def _rows(n: int) -> list[dict[str, Any]]:
    return [{KEY: f"C{i:08d}", **row} for i, row in enumerate(realistic_rows(n))]


def _server(conn: multiprocessing.connection.Connection) -> None:
    """One empty org, served until killed."""
    import uvicorn

    from sfsync.emulator.app import build_app
    from sfsync.emulator.org import Org
    from sfsync.emulator.server import EmulatorH11Protocol, tune_for_serving

    org = Org.create(access_token=TOKEN, schema_path=SCHEMA, daily_api_limit=10**9)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    tune_for_serving()
    config = uvicorn.Config(
        build_app(org),
        http=EmulatorH11Protocol,
        ws="none",
        lifespan="off",
        log_level="warning",
        access_log=False,
        server_header=False,
        date_header=False,
    )
    conn.send({"port": sock.getsockname()[1]})
    uvicorn.Server(config).run(sockets=[sock])


class Server:
    """A fresh emulator process for one pass."""

    def __enter__(self) -> Server:
        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe()
        self.process = ctx.Process(target=_server, args=(child,), daemon=True)
        self.process.start()
        self.base = f"http://127.0.0.1:{parent.recv()['port']}"
        self.http = httpx.Client(base_url=self.base, timeout=600, trust_env=False)
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()
        self.process.kill()
        self.process.join()

    def cpu(self) -> float:
        """CPU seconds the server process has used so far (all its threads)."""
        pid = self.process.pid
        assert pid is not None  # started in __enter__
        return _process_cpu(pid)

    def api_used(self) -> int:
        stats = self.http.get("/__emulator__/stats").raise_for_status().json()
        return int(stats["api_usage"]["used"])

    def count(self) -> int:
        response = self.http.get(
            f"/services/data/v{VERSION}/query",
            params={"q": "SELECT COUNT() FROM Account"},
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        return int(response.raise_for_status().json()["totalSize"])


def _process_cpu(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Pass:
    """Wall time and the CPU of this process (the client) and of the server over one pass."""

    def __init__(self, server: Server) -> None:
        self.server = server

    def __enter__(self) -> Pass:
        self.calls = self.server.api_used()
        self.client, self.cpu = _own_cpu(), self.server.cpu()
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.started
        self.client = _own_cpu() - self.client
        self.cpu = self.server.cpu() - self.cpu
        self.calls = self.server.api_used() - self.calls
        self.in_org = self.server.count()


def _batches(rows: list[dict[str, Any]], batch: int) -> list[Any]:
    """The change events a source would hand the sink, in batches (built before timing, as
    the reference's CSV file is written before timing)."""
    from sfsync.core.events import Batch, ChangeEvent, Operation, Position

    now = datetime.now(UTC)
    events = [
        ChangeEvent(
            entity="Account",
            key=str(row[KEY]),
            op=Operation.READ,
            after=row,
            position=Position("bench", str(i)),
            committed_at=now,
        )
        for i, row in enumerate(rows)
    ]
    return [Batch.of(events[i : i + batch]) for i in range(0, len(events), batch)]


async def _sfsync(
    base: str, batches: list[Any], threshold: int, batch: int, tuning: dict[str, int]
) -> dict[str, int]:
    """Write ``batches`` through the sink; the timed part."""
    from sfsync.connectors.salesforce.auth import StaticSession
    from sfsync.connectors.salesforce.client import SalesforceClient
    from sfsync.connectors.salesforce.config import SinkSettings
    from sfsync.connectors.salesforce.sink import SalesforceSink
    from sfsync.spi.clock import SystemClock
    from sfsync.spi.sink import OutcomeKind, SinkContext

    clock = SystemClock()
    client = SalesforceClient(
        grant=StaticSession(access_token=TOKEN, instance_url=base),
        clock=clock,
        api_version=VERSION,
    )
    sink = SalesforceSink(
        client,
        keys={"Account": KEY},
        settings=SinkSettings(bulk_threshold=threshold, max_batch=batch),
        **tuning,  # type: ignore[arg-type]
    )
    await sink.open(SinkContext(sync_name="bench", clock=clock))
    applied = 0
    try:
        for events in batches:
            outcomes = await sink.write(events)
            applied += sum(o.kind is OutcomeKind.APPLIED for o in outcomes)
            bad = [o for o in outcomes if o.kind is not OutcomeKind.APPLIED]
            if bad:
                raise SystemExit(f"{len(bad)} rows not applied, e.g. {bad[0]}")
    finally:
        await sink.aclose()
    return {
        "applied": applied,
        "calls": client.calls,
        "bulk_jobs": sum(r.route.api.value == "bulk" for r in sink.routes),
    }


async def _collections_bound(base: str, bodies: list[bytes], lanes: int = 4) -> None:
    """The emulator's own bound on the Collections path: pre-built request bodies sent over
    ``lanes`` connections, nothing parsed, nothing planned."""
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    path = f"/services/data/v{VERSION}/composite/sobjects/Account/{KEY}"
    queue = list(reversed(bodies))
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=600) as client:

        async def lane() -> None:
            while queue:
                response = await client.patch(path, content=queue.pop())
                response.raise_for_status()

        await asyncio.gather(*(lane() for _ in range(lanes)))


def _simple_salesforce(base: str, path: Path) -> list[dict[str, int]]:
    import requests
    from requests.adapters import HTTPAdapter
    from simple_salesforce.api import Salesforce

    class PlainHttp(HTTPAdapter):
        """simple-salesforce builds https:// URLs; the bench server speaks plain HTTP."""

        def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
            request.url = request.url.replace("https://", "http://", 1)
            return super().send(request, *args, **kwargs)

    session = requests.Session()
    session.trust_env = False
    session.mount("https://", PlainHttp())
    sf = Salesforce(instance_url=base, session_id=TOKEN, version=VERSION, session=session)
    # wait=1 (default 5 s before the first poll): kind to the baseline.
    bulk2: Any = sf.bulk2  # simple-salesforce resolves object names dynamically
    result: list[dict[str, int]] = bulk2.Account.upsert(
        csv_file=str(path), external_id_field=KEY, wait=1
    )
    return result


def _loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _line(name: str, n: int, timed: Pass) -> None:
    seconds, calls = timed.seconds, timed.calls
    print(
        f"{name:50s} {seconds:8.2f} s {n / seconds:>9,.0f} rows/s {calls:6d} API calls "
        f"{n / max(calls, 1):8.1f} rows/call   {timed.in_org:,} in org\n"
        f"{'':50s} CPU per row: client {timed.client / n * 1e6:5.1f} us, server "
        f"{timed.cpu / n * 1e6:5.1f} us",
        flush=True,
    )


def _goal(label: str, value: float, goal: float, *, higher: bool = True) -> None:
    ok = value >= goal if higher else value <= goal
    sign = ">=" if higher else "<="
    print(f"  {label:58s} {value:8.2f}  (goal {sign} {goal:g}: {'met' if ok else 'MISSED'})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument(
        "--batches",
        default="10000,50000",
        help="comma-separated sink batch sizes for the Bulk path (events per write)",
    )
    parser.add_argument(
        "--bulk-only",
        action="store_true",
        help="skip the Collections path and the emulator's Collections bound",
    )
    parser.add_argument(
        "--job-rows", type=int, default=None, help="the sink's bulk_job_rows (default its own)"
    )
    parser.add_argument(
        "--in-flight",
        type=int,
        default=None,
        help="the sink's bulk_jobs_in_flight (default its own)",
    )
    parser.add_argument(
        "--no-tune-gc",
        action="store_true",
        help="leave the garbage collector as Python sets it (sfsync run/sync tune it)",
    )
    args = parser.parse_args()
    tuning = {
        name: value
        for name, value in (
            ("bulk_job_rows", args.job_rows),
            ("bulk_jobs_in_flight", args.in_flight),
        )
        if value is not None
    }
    n = args.rows
    batches = [int(b) for b in args.batches.split(",")]
    print("command:", shlex.join([sys.executable, *sys.argv]))
    print(f"load average at start: {_loadavg()}  (2 cores, shared machine)")
    if not args.no_tune_gc:
        from sfsync.runtime.tuning import tune_gc

        tune_gc()  # as `sfsync run` and `sfsync sync` do; the rows below are not frozen
    rows = _rows(n)
    work = Path(tempfile.mkdtemp(prefix="bench_sf_sink_"))
    csv_path = work / "accounts.csv"
    with csv_path.open("w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: ("" if v is None else v) for k, v in r.items()} for r in rows)
    print(f"rows: {n:,} Accounts x {len(rows[0])} fields")

    import sfsync.connectors.salesforce.sink  # noqa: F401 - imported before timing
    from sfsync.connectors.salesforce.config import SinkSettings

    default_threshold = SinkSettings().bulk_threshold
    passes = []
    if not args.bulk_only:
        passes.append(("sfsync sink, Collections path, batches of 10,000", 10_000, n + 1))
    passes += [
        (f"sfsync sink, default rule, batches of {b:,}", b, default_threshold) for b in batches
    ]

    def simple_pass(label: str) -> float:
        with Server() as server, Pass(server) as timed:
            _simple_salesforce(server.base, csv_path)
        _line(f"simple-salesforce bulk2 upsert (one job), {label}", n, timed)
        simple_cpu.append(timed.client + timed.cpu)
        return timed.seconds

    # The reference runs first and last: the machine is shared and its load drifts; the
    # ratios use the mean of the two.
    simple_cpu: list[float] = []  # client + server CPU seconds of each reference pass
    simple_first = simple_pass("first")
    results: dict[str, tuple[float, int]] = {}
    cpus: dict[str, float] = {}
    for name, batch, threshold in passes:
        batches = _batches(rows, batch)
        with Server() as server:
            with Pass(server) as timed:
                done = asyncio.run(_sfsync(server.base, batches, threshold, batch, tuning))
            _line(name, n, timed)
        print(f"{'':50s} ({done['bulk_jobs']} groups written by Bulk jobs)")
        results[name] = (timed.seconds, timed.calls)
        cpus[name] = timed.client + timed.cpu
    bound_seconds = 0.0
    if not args.bulk_only:
        bodies = [
            orjson.dumps(
                {
                    "allOrNone": False,
                    "records": [
                        {"attributes": {"type": "Account"}, **r} for r in rows[i : i + 200]
                    ],
                }
            )
            for i in range(0, n, 200)
        ]
        with Server() as server:
            with Pass(server) as timed:
                asyncio.run(_collections_bound(server.base, bodies))
            _line("emulator bound: pre-built Collections calls", n, timed)
        bound_seconds = timed.seconds
    simple_seconds = (simple_first + simple_pass("last")) / 2
    print(f"load average at end: {_loadavg()}")
    if not args.bulk_only:
        coll_seconds, coll_calls = results[passes[0][0]]
        # The Collections pass makes one describe call besides its writes.
        _goal("Collections path: records per write call", n / max(coll_calls - 1, 1), 190)
    for name, _, _ in passes[0 if args.bulk_only else 1 :]:
        ratio = results[name][0] / simple_seconds
        cpu_ratio = cpus[name] / (sum(simple_cpu) / len(simple_cpu))
        _goal(f"{name.removeprefix('sfsync sink, ')}: time / bulk2", ratio, 1.5, higher=False)
        # On a loaded machine wall time follows the CPU both processes need more than how
        # their work overlaps: the CPU ratio is the steadier figure.
        print(f"  {'':58s} (CPU, client + server: {cpu_ratio:.2f}x bulk2's)")
    if not args.bulk_only:
        print(
            f"  (Collections path: time / bulk2 {coll_seconds / simple_seconds:.2f}, time / the "
            f"emulator's Collections bound {coll_seconds / bound_seconds:.2f}; no goal: "
            "Collections trades volume for latency)"
        )


if __name__ == "__main__":
    main()
