"""REST query paging throughput of the emulator against serving pre-built pages.

A server process holds N bulk-loaded, realistic Account rows (20 fields) in the emulator's
real ``OrgStore`` and serves the real app (``build_app``: governance middleware, auth, limits,
the REST routes) over a real socket with uvicorn and the emulator's h11 protocol. The client
(this process, httpx sync, HTTP/1.1 keep-alive) pages ``SELECT <20 fields> FROM Account`` by
following ``nextRecordsUrl`` and parses every page with orjson, as a sync tool would.

The physical limit, in the same run on the same server: a route behind the same middleware
that answers pre-serialised page bytes (records rendered once through the same SOQL engine
before timing; a handful of distinct pages cycle so memory stays small), paged the same way.

Printed: records/s of both for each of ``--rounds`` interleaved passes (the machine is shared
and noisy), the ratio of the medians (goal >= 0.5), and the server's RSS before and after each
pass plus its peak (VmHWM): paging must not grow memory with the number of records paged.

    .venv/bin/python bench/bench_emulator_paging.py [--records 1000000] [--batch 2000]
        [--rounds 3] [--gzip]
"""

from __future__ import annotations

import argparse
import multiprocessing
import multiprocessing.connection
import socket
import statistics
import time
from typing import Any

import httpx
import orjson

from benchlib import FIELDS, realistic_rows, rss

TOKEN = "bench-fixed-access-token"
VERSION = "59.0"
SOQL = f"SELECT {', '.join(FIELDS)} FROM Account"
DISTINCT_PREBUILT_PAGES = 8


def _server(records: int, conn: multiprocessing.connection.Connection) -> None:
    """The server process: load, pre-build the limit's pages, serve until killed."""
    import uvicorn
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from sfsync.emulator.app import build_app
    from sfsync.emulator.org import Org
    from sfsync.emulator.server import EmulatorH11Protocol, tune_for_serving
    from sfsync.emulator.soql import compile_query

    org = Org.create(access_token=TOKEN, daily_api_limit=10**9)
    started = time.perf_counter()
    org.store.bulk_load("Account", realistic_rows(records))
    load_seconds = time.perf_counter() - started

    # The limit: page bodies serialised before timing. Records come from the same engine.
    result = compile_query(SOQL, org.schema).run(
        org.store, now=org.clock.now(), include_deleted=False, api_version=VERSION
    )
    page_records: list[bytes] = []
    for _ in range(min(DISTINCT_PREBUILT_PAGES, -(-records // 2000))):
        batch = [next(result.records) for _ in range(min(2000, records))]
        page_records.append(orjson.dumps(batch))
    pages = -(-records // 2000)
    base = f"/services/data/v{VERSION}/prebuilt"

    async def prebuilt(request: Request) -> Response:
        n = int(request.path_params["n"])
        head: dict[str, Any] = {"totalSize": records, "done": n + 1 >= pages}
        if n + 1 < pages:
            head["nextRecordsUrl"] = f"{base}/{n + 1}"
        # Splice the pre-serialised records into the page envelope (a memcpy, no encoding).
        body = orjson.dumps(head)[:-1] + b',"records":' + page_records[n % len(page_records)]
        return Response(body + b"}", media_type="application/json;charset=UTF-8")

    app = build_app(org)
    app.router.routes.insert(0, Route(f"{base}/{{n:int}}", prebuilt, methods=["GET"]))
    tune_for_serving()  # as `sfsync emulator serve` does
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)  # connections wait in the backlog until uvicorn accepts them
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


def _page_through(client: httpx.Client, first_url: str, params: dict[str, str] | None) -> int:
    response = client.get(first_url, params=params)
    seen = 0
    while True:
        response.raise_for_status()
        page = orjson.loads(response.content)
        seen += len(page["records"])
        if page["done"]:
            return seen
        response = client.get(page["nextRecordsUrl"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=2000, help="Sforce-Query-Options batchSize")
    parser.add_argument(
        "--gzip", action="store_true", help="ask for gzip as most clients do (default: identity)"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="interleaved passes of each path; medians are compared (the machine is shared)",
    )
    args = parser.parse_args()

    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    server = ctx.Process(target=_server, args=(args.records, child), daemon=True)
    server.start()
    info = parent.recv()
    base = f"http://127.0.0.1:{info['port']}"
    print(f"records: {args.records:,}  (bulk load {info['load_seconds']:.1f} s)")
    headers = {
        "Authorization": f"Bearer {TOKEN}",
        "Sforce-Query-Options": f"batchSize={args.batch}",
        # Uncompressed by default, as in the physical-limit baselines: gzip of 1.5 MB pages
        # costs the same on both paths and would hide the paging itself.
        "Accept-Encoding": "gzip" if args.gzip else "identity",
    }
    try:
        with httpx.Client(base_url=base, headers=headers, timeout=600) as client:
            # Warm both paths (imports, first compile) on a small query.
            warm = "SELECT Id FROM Account LIMIT 10"
            _page_through(client, f"/services/data/v{VERSION}/query", {"q": warm})
            _page_through(client, f"/services/data/v{VERSION}/prebuilt/0", None)
            paths = (
                ("emulator /query", f"/services/data/v{VERSION}/query", {"q": SOQL}),
                ("pre-built pages", f"/services/data/v{VERSION}/prebuilt/0", None),
            )
            rates: dict[str, list[float]] = {name: [] for name, _, _ in paths}
            for round_number in range(1, args.rounds + 1):
                for name, url, params in paths:
                    before = rss(server.pid or 0)
                    started = time.perf_counter()
                    seen = _page_through(client, url, params)
                    seconds = time.perf_counter() - started
                    after = rss(server.pid or 0)
                    assert seen == args.records, (name, seen)
                    rates[name].append(seen / seconds)
                    print(
                        f"round {round_number}  {name:16s} {seen / seconds:>10,.0f} records/s "
                        f"{seconds:7.2f} s   server RSS {before['VmRSS']} -> "
                        f"{after['VmRSS']} MiB (peak {after['VmHWM']} MiB)"
                    )
        emulator = statistics.median(rates["emulator /query"])
        prebuilt = statistics.median(rates["pre-built pages"])
        print(f"median emulator /query: {emulator:,.0f} records/s")
        print(f"median pre-built pages: {prebuilt:,.0f} records/s")
        print(f"ratio emulator / pre-built: {emulator / prebuilt:.2f}  (goal >= 0.5)")
    finally:
        server.kill()
        server.join()


if __name__ == "__main__":
    main()
