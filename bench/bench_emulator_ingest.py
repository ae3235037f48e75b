"""Bulk API 2.0 ingest throughput of the emulator, Change Data Capture on, against its limits.

A server process runs the real app (``build_app``: middleware, auth, limits, bulk routes) over a
real socket with uvicorn and the emulator's h11 protocol, on an org whose Account has an
external id ``Ext_Id__c``, with the streaming hub attached (``attach``, as the server does), so
every committed row becomes a change event on the bus, retained 72 hours. The client (this
process) sends ``--records`` realistic Accounts (15 fields, ``benchlib.realistic_rows``, plus
``Ext_Id__c``) as CSV in jobs of ``--job-rows`` rows (about 25 MB each, under the 100 MB upload
limit): every job is created, uploaded (PUT) and closed (UploadComplete) at once, as a client
with several jobs does, then polled until JobComplete; the server runs one ingest job at a time
(the others wait UploadComplete, queued), so later uploads arrive while earlier jobs run.
Figures, each from the first request to the last JobComplete:

1. **insert**: records/s, with the server's own processing time summed over jobs;
2. **upsert** by ``Ext_Id__c`` of the same records with a new ``Description`` (every row
   matches one record: an update), records/s;

and the change events on the bus after each phase (one per record: bulk CREATEs of different
records do not merge), failed rows (must be 0), the server's RSS, and the CPU time the server
process used for the phase: records per CPU second is what one free core sustains, a figure
that does not depend on what else the (shared, 2-core) machine runs.

The limits, in the same run, each in a fresh process on the same CSV (no HTTP):

* **parse alone**: the emulator's CSV reader (``parse_csv``) over every job's data;
* **ingest, CDC off**: the same jobs through ``process_ingest`` into an org without the
  streaming hub (the store's write path with no change events);
* **ingest, CDC on**: the same with the hub attached (the HTTP figure's work, minus HTTP);
  the RSS difference between the two, per retained event, is the memory of the event bus
  (a retained CREATE event refers to the record's stored value tuple, which the store holds
  anyway until the record is updated).

    .venv/bin/python bench/bench_emulator_ingest.py [--records 1000000] [--job-rows 100000]
        [--skip-upsert]
"""

from __future__ import annotations

import argparse
import csv
import gc
import io
import multiprocessing
import multiprocessing.connection
import os
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from benchlib import realistic_rows, rss

TOKEN = "bench-fixed-access-token"
VERSION = "59.0"
SCHEMA = """\
objects:
  Account:
    fields:
      Ext_Id__c: {type: text, length: 40, external_id: true, unique: true}
"""


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def _csv_jobs(records: int, job_rows: int, folder: Path, description: str | None) -> list[Path]:
    """The CSV of every job (header + rows), written to ``folder``."""
    paths: list[Path] = []
    rows = realistic_rows(records)
    header: list[str] | None = None
    for start in range(0, records, job_rows):
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        for n in range(start, min(records, start + job_rows)):
            row = next(rows)
            row["Ext_Id__c"] = f"EXT-{n:08d}"
            if description is not None:
                row["Description"] = f"{description} {n}"
            if header is None:
                header = list(row)
            if n == start:
                writer.writerow(header)
            writer.writerow(["" if row[k] is None else row[k] for k in header])
        path = folder / f"{description or 'insert'}-{start:09d}.csv"
        path.write_bytes(out.getvalue().encode("utf-8"))
        paths.append(path)
    return paths


# ================================================================================ server process


def _server(schema_path: str, conn: multiprocessing.connection.Connection) -> None:
    import uvicorn

    from sfsync.emulator.app import build_app
    from sfsync.emulator.org import Org
    from sfsync.emulator.server import EmulatorH11Protocol, tune_for_serving
    from sfsync.emulator.streaming.service import attach

    org = Org.create(schema_path=schema_path, access_token=TOKEN, daily_api_limit=10**9)
    hub = attach(org)
    app = build_app(org)
    tune_for_serving()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        app,
        http=EmulatorH11Protocol,
        ws="none",
        lifespan="off",
        log_level="warning",
        access_log=False,
        server_header=False,
        date_header=False,
    )
    server = uvicorn.Server(config)

    def answer() -> None:
        # Questions from the client on the pipe: how many events the bus retains.
        while True:
            command = conn.recv()
            if command == "events":
                conn.send(hub.bus.retained("/data/AccountChangeEvent"))
            else:
                return

    threading.Thread(target=answer, daemon=True).start()
    conn.send({"port": sock.getsockname()[1]})
    server.run(sockets=[sock])


def _run_jobs(
    client: httpx.Client, paths: list[Path], operation: str, external: str | None
) -> tuple[float, list[dict[str, Any]]]:
    """Create, upload and close one job per CSV file, then wait for all; (seconds, infos)."""
    base = f"/services/data/v{VERSION}/jobs/ingest"
    started = time.perf_counter()
    job_ids = []
    for path in paths:
        body: dict[str, Any] = {"object": "Account", "operation": operation, "lineEnding": "LF"}
        if external:
            body["externalIdFieldName"] = external
        created = client.post(base, json=body)
        created.raise_for_status()
        job_id = created.json()["id"]
        put = client.put(
            f"{base}/{job_id}/batches",
            content=path.read_bytes(),
            headers={"Content-Type": "text/csv"},
        )
        assert put.status_code == 201, put.text
        closed = client.patch(f"{base}/{job_id}", json={"state": "UploadComplete"})
        closed.raise_for_status()
        job_ids.append(job_id)
    # Polled as a client does, one job at a time (the oldest not finished) every 0.2 s:
    # polling every job every few milliseconds would make the server answer instead of work.
    infos: dict[str, dict[str, Any]] = {}
    for job_id in job_ids:
        while True:
            info = client.get(f"{base}/{job_id}").json()
            if info["state"] in ("JobComplete", "Failed", "Aborted"):
                infos[job_id] = info
                break
            time.sleep(0.2)
    return time.perf_counter() - started, [infos[j] for j in job_ids]


def _report(
    name: str, records: int, seconds: float, infos: list[dict[str, Any]], cpu: float
) -> float:
    processed = sum(int(i.get("numberRecordsProcessed") or 0) for i in infos)
    failed = sum(int(i.get("numberRecordsFailed") or 0) for i in infos)
    states = {i["state"] for i in infos}
    busy = sum(int(i.get("totalProcessingTime") or 0) for i in infos) / 1000
    rate = records / seconds
    print(
        f"{name:34s} {rate:>10,.0f} records/s  {seconds:7.2f} s   processed {processed:,}, "
        f"failed {failed:,}, states {sorted(states)}, jobs' processing {busy:.1f} s summed"
    )
    print(
        f"{'':34s} server CPU {cpu:.1f} s = {cpu * 1e6 / records:.1f} us a record "
        f"= {records / cpu:,.0f} records per CPU second (what one free core would sustain)"
    )
    assert processed == records, infos[:1]
    assert failed == 0, infos[:1]
    assert states == {"JobComplete"}, infos[:1]
    return rate


# ================================================================================ limits


def _limit(kind: str, schema_path: str, paths: list[str], conn: Any) -> None:
    """One limit, in a fresh process: (rows, seconds, RSS growth MiB, retained events)."""
    from sfsync.emulator.bulk.csvcodec import parse_csv
    from sfsync.emulator.bulk.ingest import IngestJob, process_ingest
    from sfsync.emulator.bulk.service import service_of
    from sfsync.emulator.org import Org
    from sfsync.emulator.server import tune_for_serving
    from sfsync.emulator.streaming.service import attach

    datas = [Path(p).read_bytes() for p in paths]
    if kind == "parse":
        started = time.perf_counter()
        cpu = time.process_time()
        rows = sum(len(parse_csv(data)[1]) for data in datas)
        conn.send((rows, time.perf_counter() - started, 0, 0, time.process_time() - cpu))
        return
    org = Org.create(schema_path=schema_path, access_token=TOKEN, daily_api_limit=10**9)
    hub = attach(org) if kind == "cdc" else None
    service = service_of(org)
    tune_for_serving()
    before = rss(os.getpid())["VmRSS"]
    rows = 0
    started = time.perf_counter()
    cpu = time.process_time()
    for n, data in enumerate(datas):
        job = IngestJob(
            id=f"750xx{n:010d}AAA", kind="ingest", object="Account", operation="insert",
            api_version=VERSION, created_by=org.store.integration_user_id, client_id="bench",
            created_date="", system_modstamp="", state="UploadComplete", created_at=0.0,
            uploads=[data],
        )  # fmt: skip
        process_ingest(job, org.schema, org.store, service.allocations)
        assert job.state == "JobComplete", job.error_message
        assert job.failed == 0, list(job.outcomes.errors.items())[:1]
        rows += job.processed
        # Results are kept by the job registry in the server; here they go with the job,
        # so that both limits measure the store (and the bus) only.
        del job
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu
    gc.collect()
    events = hub.bus.retained("/data/AccountChangeEvent") if hub else 0
    conn.send((rows, seconds, rss(os.getpid())["VmRSS"] - before, events, cpu))


def _run_limit(ctx: Any, kind: str, schema_path: str, paths: list[Path]) -> tuple[Any, ...]:
    parent, child = ctx.Pipe()
    process = ctx.Process(target=_limit, args=(kind, schema_path, [str(p) for p in paths], child))
    process.start()
    result = parent.recv()
    process.join()
    return tuple(result)


# ================================================================================ main


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--job-rows", type=int, default=100_000)
    parser.add_argument("--skip-upsert", action="store_true")
    args = parser.parse_args()
    print(
        "command: .venv/bin/python bench/bench_emulator_ingest.py "
        f"--records {args.records} --job-rows {args.job_rows}"
        + (" --skip-upsert" if args.skip_upsert else "")
    )
    print(f"python {sys.version.split()[0]}, cpus {os.cpu_count()}")
    print(f"load average at start: {_load()}")
    ctx = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        folder = Path(tmp)
        schema_path = folder / "schema.yaml"
        schema_path.write_text(SCHEMA)
        inserts = _csv_jobs(args.records, args.job_rows, folder, None)
        upserts = [] if args.skip_upsert else _csv_jobs(args.records, args.job_rows, folder, "U")
        size = sum(p.stat().st_size for p in inserts)
        print(
            f"records: {args.records:,} Accounts in {len(inserts)} jobs, "
            f"{size / 2**20:,.0f} MiB of CSV"
        )

        parent, child = ctx.Pipe()
        server = ctx.Process(target=_server, args=(str(schema_path), child), daemon=True)
        server.start()
        info = parent.recv()
        pid = server.pid or 0
        memory = [("serving, empty org", rss(pid))]
        headers = {"Authorization": f"Bearer {TOKEN}", "Sforce-Call-Options": "client=bench"}
        url = f"http://127.0.0.1:{info['port']}"
        print()
        print("over HTTP, CDC on (server process: REST + bulk worker + change events)")
        try:
            with httpx.Client(base_url=url, headers=headers, timeout=600) as client:
                cpu = _cpu_seconds(pid)
                seconds, infos = _run_jobs(client, inserts, "insert", None)
                cpu = _cpu_seconds(pid) - cpu
                insert_rate = _report("insert", args.records, seconds, infos, cpu)
                parent.send("events")
                events = parent.recv()
                memory.append(("after insert", rss(pid)))
                print(f"{'':34s} change events retained on the bus: {events:,}")
                if upserts:
                    cpu = _cpu_seconds(pid)
                    seconds, infos = _run_jobs(client, upserts, "upsert", "Ext_Id__c")
                    cpu = _cpu_seconds(pid) - cpu
                    _report("upsert by Ext_Id__c (all updates)", args.records, seconds, infos, cpu)
                    parent.send("events")
                    print(f"{'':34s} change events retained on the bus: {parent.recv():,}")
                    memory.append(("after upsert", rss(pid)))
        finally:
            server.kill()
            server.join()
        for label, mem in memory:
            print(f"  server {label:22s} RSS {mem['VmRSS']:6,} MiB   peak {mem['VmHWM']:6,} MiB")

        print()
        print("limits, same CSV, in process (no HTTP), each in a fresh process")
        rows, seconds, _, _, cpu = _run_limit(ctx, "parse", str(schema_path), inserts)
        parse_rate = rows / seconds
        print(
            f"{'parse alone (parse_csv)':34s} {parse_rate:>10,.0f} records/s  {seconds:7.2f} s   "
            f"CPU {cpu * 1e6 / rows:.1f} us a record"
        )
        rows, seconds, off_mib, _, cpu = _run_limit(ctx, "nocdc", str(schema_path), inserts)
        off_rate = rows / seconds
        print(
            f"{'ingest, CDC off':34s} {off_rate:>10,.0f} records/s  {seconds:7.2f} s   "
            f"CPU {cpu * 1e6 / rows:.1f} us a record, RSS +{off_mib:,} MiB"
        )
        rows, seconds, on_mib, on_events, cpu = _run_limit(ctx, "cdc", str(schema_path), inserts)
        on_rate = rows / seconds
        print(
            f"{'ingest, CDC on':34s} {on_rate:>10,.0f} records/s  {seconds:7.2f} s   "
            f"CPU {cpu * 1e6 / rows:.1f} us a record, RSS +{on_mib:,} MiB, "
            f"{on_events:,} events retained"
        )
        if on_events:
            per_event = (on_mib - off_mib) * 2**20 / on_events
            print(f"{'':34s} bus memory: {per_event:,.0f} B per retained CREATE event")
        print()
        print(
            f"ratios: HTTP insert / ingest CDC off {insert_rate / off_rate:.2f}, "
            f"/ ingest CDC on {insert_rate / on_rate:.2f}, "
            f"/ parse alone {insert_rate / parse_rate:.2f}"
        )
    print(f"load average at end: {_load()}")


if __name__ == "__main__":
    main()
