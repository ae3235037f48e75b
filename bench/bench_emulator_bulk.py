"""Bulk API 2.0 query-result download throughput of the emulator against serving pre-built CSV.

A server process holds N bulk-loaded, realistic Account rows (20 fields, the same generator as
``bench_emulator_paging.py``) in the emulator's real ``OrgStore`` and serves the real app
(``build_app``: governance middleware, auth, limits, the bulk routes) over a real socket with
uvicorn and the emulator's h11 protocol. The client (this process) creates a Bulk 2.0 query job
for ``SELECT <20 fields> FROM Account``, waits for JobComplete, then downloads every result page
with httpx streaming, following ``Sforce-Locator`` until ``null`` with ``maxRecords`` rows a page
(50,000 by default, simple-salesforce's page size).

The physical limit, in the same run on the same server: a route behind the same middleware
that streams pre-built CSV bytes (rows rendered once through the same engine and CSV writer
before timing; a few distinct chunks cycle, so memory stays small) in the same page sizes, with
the same headers, paged the same way.

Printed: rows/s of both, their ratio, and the server's RSS before and after each pass plus its
peak (VmHWM): downloading must not grow memory with the number of rows.

    .venv/bin/python bench/bench_emulator_bulk.py [--rows 1000000] [--max-records 50000] [--gzip]
"""

from __future__ import annotations

import argparse
import multiprocessing
import multiprocessing.connection
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx

from benchlib import FIELDS, realistic_rows, rss

TOKEN = "bench-fixed-access-token"
VERSION = "59.0"
SOQL = f"SELECT {', '.join(FIELDS)} FROM Account"
CHUNK_ROWS = 2000
DISTINCT_PREBUILT_CHUNKS = 8


def _server(rows: int, conn: multiprocessing.connection.Connection) -> None:
    """The server process: load, pre-build the limit's CSV chunks, serve until killed."""
    import uvicorn
    from starlette.requests import Request
    from starlette.responses import Response, StreamingResponse
    from starlette.routing import Route

    from sfsync.emulator.app import build_app
    from sfsync.emulator.bulk.query import QueryJob, csv_columns, decode_locator, encode_locator
    from sfsync.emulator.org import Org
    from sfsync.emulator.soql import compile_query

    org = Org.create(access_token=TOKEN, daily_api_limit=10**9)
    started = time.perf_counter()
    org.store.bulk_load("Account", realistic_rows(rows))
    load_seconds = time.perf_counter() - started

    # The limit: CSV rendered once by the same engine and writer, cycled while streaming.
    compiled = compile_query(SOQL, org.schema)
    sample = QueryJob(
        id="750000000000000AAA", kind="query", object="Account", operation="query",
        api_version=VERSION, created_by="", client_id=None, created_date="",
        system_modstamp="", state="JobComplete", created_at=0.0, compiled=compiled,
        columns=csv_columns(compiled, org.schema), now=org.clock.now(),
    )  # fmt: skip
    rendered = sample.page(org.store, 0, min(rows, CHUNK_ROWS * DISTINCT_PREBUILT_CHUNKS))
    header = next(rendered)
    chunks = list(rendered)
    base = f"/services/data/v{VERSION}/prebuilt"

    def stream(count: int) -> Iterator[bytes]:
        yield header
        sent = 0
        index = 0
        while sent < count:
            chunk = chunks[index % len(chunks)]
            index += 1
            take = min(CHUNK_ROWS, count - sent)
            # A partial last chunk is cut at a line boundary, like the real page.
            yield chunk if take == CHUNK_ROWS else b"".join(chunk.splitlines(True)[:take])
            sent += take

    async def prebuilt(request: Request) -> Response:
        locator = request.query_params.get("locator")
        offset = decode_locator(locator) if locator else 0
        count = min(int(request.query_params["maxRecords"]), rows - offset)
        end = offset + count
        headers = {
            "Sforce-Locator": encode_locator(end) if end < rows else "null",
            "Sforce-NumberOfRecords": str(count),
        }
        return StreamingResponse(stream(count), headers=headers, media_type="text/csv")

    app = build_app(org)
    app.router.routes.insert(0, Route(base, prebuilt, methods=["GET"]))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    from sfsync.emulator.server import EmulatorH11Protocol, tune_for_serving

    # As ``sfsync.emulator.server.serve`` does: the loaded records leave the GC's view.
    tune_for_serving()

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
    conn.send({"port": sock.getsockname()[1], "load_seconds": load_seconds})
    uvicorn.Server(config).run(sockets=[sock])


def _download(
    client: httpx.Client, url: str, max_records: int, max_pages: int | None = None
) -> tuple[int, int]:
    """Follow locators to the end (or ``max_pages``); returns (rows as the headers count them,
    bytes read)."""
    rows = 0
    size = 0
    locator = ""
    pages = 0
    while max_pages is None or pages < max_pages:
        pages += 1
        params: dict[str, Any] = {"maxRecords": max_records}
        if locator:
            params["locator"] = locator
        with client.stream("GET", url, params=params) as response:
            response.raise_for_status()
            for chunk in response.iter_bytes():
                size += len(chunk)
            rows += int(response.headers["Sforce-NumberOfRecords"])
            locator = response.headers["Sforce-Locator"]
        if locator == "null":
            break
    return rows, size


def _query_job(client: httpx.Client, soql: str) -> str:
    started = time.perf_counter()
    created = client.post(f"/services/data/v{VERSION}/jobs/query", json={"query": soql})
    created.raise_for_status()
    job_id = str(created.json()["id"])
    while True:
        info = client.get(f"/services/data/v{VERSION}/jobs/query/{job_id}").json()
        if info["state"] in ("JobComplete", "Failed"):
            break
        time.sleep(0.05)
    seconds = time.perf_counter() - started
    rows = int(info.get("numberRecordsProcessed") or 0)
    if rows > 10:
        # The job runs the query and stores its CSV (as Salesforce does) before any download.
        print(
            f"{'job (query + store)':20s} {rows / seconds:>12,.0f} rows/s  {seconds:7.2f} s  "
            f"state {info['state']}, totalProcessingTime {info.get('totalProcessingTime')} ms"
        )
    return f"/services/data/v{VERSION}/jobs/query/{job_id}/results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--max-records", type=int, default=50_000)
    parser.add_argument("--gzip", action="store_true", help="ask for gzip (default: identity)")
    args = parser.parse_args()

    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    server = ctx.Process(target=_server, args=(args.rows, child), daemon=True)
    server.start()
    info = parent.recv()
    base = f"http://127.0.0.1:{info['port']}"
    print(f"rows: {args.rows:,}  (bulk load {info['load_seconds']:.1f} s)")
    headers = {
        "Authorization": f"Bearer {TOKEN}",
        "Accept-Encoding": "gzip" if args.gzip else "identity",
    }
    try:
        with httpx.Client(base_url=base, headers=headers, timeout=600) as client:
            warm = _query_job(client, "SELECT Id FROM Account LIMIT 10")
            _download(client, warm, 10)
            _download(client, f"/services/data/v{VERSION}/prebuilt", 10, max_pages=1)
            figures = {}
            passes: list[tuple[str, Callable[[], str]]] = [
                # The job is created and run before timing: the download is what is measured.
                ("emulator bulk query", lambda: _query_job(client, SOQL)),
                ("pre-built CSV", lambda: f"/services/data/v{VERSION}/prebuilt"),
            ]
            for name, make_url in passes:
                url = make_url()
                before = rss(server.pid or 0)
                started = time.perf_counter()
                rows, size = _download(client, url, args.max_records)
                seconds = time.perf_counter() - started
                after = rss(server.pid or 0)
                assert rows == args.rows, (name, rows)
                figures[name] = rows / seconds
                print(
                    f"{name:20s} {rows / seconds:>12,.0f} rows/s  {seconds:7.2f} s  "
                    f"{size / seconds / 2**20:7.1f} MiB/s   server RSS {before['VmRSS']} -> "
                    f"{after['VmRSS']} MiB (peak {after['VmHWM']} MiB)"
                )
        ratio = figures["emulator bulk query"] / figures["pre-built CSV"]
        print(f"ratio emulator / pre-built: {ratio:.2f}")
    finally:
        server.kill()
        server.join()


if __name__ == "__main__":
    main()
