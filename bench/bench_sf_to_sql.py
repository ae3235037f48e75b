"""Salesforce -> SQL end to end: ``sfsync sync --once`` against the limit and a user's script.

A server process holds N bulk-loaded, realistic Account rows (20 fields, the generator of
``bench_emulator_paging.py``) in the emulator's real ``OrgStore`` and serves the real app
(``build_app``) over a real socket (uvicorn, the emulator's h11 protocol). The rows are loaded
2,000 at a time with the org clock frozen and moved one hour between chunks, so their
``SystemModstamp`` values spread over weeks, ending an hour ago, as in a real org (otherwise
every record would sit inside the source's 60 s overlap window and each poll would re-read all
of them).

Every measured step runs in a fresh process (this file re-invoked with ``--step``, or the
``sfsync`` CLI); its wall time is measured from outside (start-up and imports included: what a
user waits for) and its peak RSS is the child's ``ru_maxrss`` (``os.wait4``).

1. sfsync: a YAML config (``access_token`` flow to the emulator, the 20 fields), then
   ``sfsync sync --once CONFIG`` into PostgreSQL (a fresh schema, dropped at the end) and into
   SQLite (a temp file). The source picks Bulk API 2.0 by itself (>= 10,000 records) and reads
   an object of more than 40,000 records as consecutive Id ranges growing from 20,000 to
   250,000 records, one query job each (the org renders the next range while the sink applies
   the current one). Into PostgreSQL each result page (25,000 records) is handed to the sink
   unparsed and loaded with ``COPY ... (FORMAT csv)`` as it is (docs/sql-sink.md, "CSV
   pages"); into SQLite pages of 10,000 are parsed into events and written with executemany.
2. The limit: a minimal script creating the same Bulk 2.0 query job, streaming the CSV pages
   (httpx, locators, 50,000 records a page) straight into ``COPY ... FROM STDIN (FORMAT csv)``
   of a plain typed table with the same primary key; for SQLite ``csv.reader`` +
   ``executemany`` (WAL, one transaction). Also printed: the same job downloaded as bytes
   only, the emulator's own bound (the limit cannot beat it).
3. The script a user would otherwise write, in two shapes. First the careful one:
   simple-salesforce ``sf.bulk2.Account.download`` to CSV files, then pandas ``read_csv`` +
   ``DataFrame.to_sql`` (SQLAlchemy, psycopg 3) per file into PostgreSQL. Then the one most
   examples show, and the shape of the issue's reference figures (about 8,000 records/s, over
   1.3 GB for 200,000 records): ``sf.bulk2.Account.query`` pages kept as strings, one
   DataFrame, one ``to_sql``. simple-salesforce always builds ``https://`` URLs; a requests
   adapter sends them as plain HTTP to the same socket, so all paths use the same transport
   (no TLS cost).
4. Incremental: the server changes every 10th account (Name, AnnualRevenue; 100,000 of 1M) in
   one store transaction, then ``sfsync sync --once`` runs again on each target; printed are the
   time, records/s (changed records / wall time) and the API calls used (the emulator's
   ``/__emulator__/stats`` before and after). A poll with this many changes reads them past
   its first REST page through one Bulk job (docs/salesforce-source.md);
   ``--poll-bulk-threshold null`` measures the same poll over REST only.

Goals printed next to the figures: sfsync >= 60 % of the limit, >= 8x the
simple-salesforce + pandas script, peak memory < 300 MB.

    .venv/bin/pip install -c constraints.txt -e '.[bench]'   # pandas, for the comparison
    .venv/bin/python bench/bench_sf_to_sql.py [--records 1000000]
        [--pg postgresql://postgres@127.0.0.1:5432/test] [--skip-pandas]
        [--poll-bulk-threshold null]   # step 4 over REST only, for the comparison
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import multiprocessing
import multiprocessing.connection
import os
import shlex
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Any

import httpx

from benchlib import FIELDS, realistic_rows

TOKEN = "00D000000000001!bench-sf-to-sql-token"
VERSION = "59.0"
SOQL = f"SELECT {', '.join(FIELDS)} FROM Account"
PAGE_RECORDS = 50_000
LOAD_CHUNK = 2000
CHANGE_EVERY = 10
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"
SFSYNC = Path(sys.executable).with_name("sfsync")

# The limit tables' columns: the types sfsync's sink derives from the emulator's describe.
PG_TYPES = {
    "Id": "varchar(18) PRIMARY KEY",
    "AnnualRevenue": "numeric(18,0)",
    "NumberOfEmployees": "bigint",
    "Description": "text",
    "CreatedDate": "timestamptz",
    "LastModifiedDate": "timestamptz",
    "SystemModstamp": "timestamptz",
    "OwnerId": "varchar(18)",
}
SQLITE_TYPES = {
    "Id": "TEXT PRIMARY KEY",
    "AnnualRevenue": "NUMERIC",
    "NumberOfEmployees": "INTEGER",
}

CONFIG = """\
version: 1
state:
  url: sqlite:///{state}
connections:
  crm:
    type: salesforce
    instance_url: {url}
    login_url: {url}
    api_version: "{version}"
    client_name: sfsync-bench
    auth: {{flow: access_token, access_token: "{token}"}}{source}
  target:
{target}
syncs:
  - name: accounts
    source: crm
    target: target
    mode: polling
    interval: 30s
    objects:
      - name: Account
        fields: [{fields}]
        table: account
"""


# -- the server process ---------------------------------------------------------------------


def _server(records: int, conn: multiprocessing.connection.Connection) -> None:
    """Load the org with spread-out modstamps, serve it (plus a change route) until killed."""
    import uvicorn
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    from sfsync.emulator.app import build_app
    from sfsync.emulator.clock import OrgClock
    from sfsync.emulator.org import Org
    from sfsync.emulator.server import EmulatorH11Protocol, tune_for_serving

    chunks = -(-records // LOAD_CHUNK)
    clock = OrgClock(frozen_at=datetime.now(UTC) - timedelta(hours=chunks + 1))
    org = Org.create(access_token=TOKEN, daily_api_limit=10**9, clock=clock)
    started = time.perf_counter()
    ids: list[str] = []
    rows = realistic_rows(records)
    while chunk := list(islice(rows, LOAD_CHUNK)):
        ids.extend(org.store.bulk_insert("Account", chunk))
        clock.advance(3600)
    clock.unfreeze()
    # Run on real time from here: sfsync's own clock and the org's must agree (a skew makes the
    # source's `deleted` window checks disagree with the org's; see the report).
    clock.advance(time.time() - clock.time())
    load_seconds = time.perf_counter() - started

    async def change(request: Request) -> Response:
        """Change every 10th account in one store transaction (blocks the loop: bench only)."""
        begun = time.perf_counter()
        changed = ids[::CHANGE_EVERY]
        with org.store.transaction():
            for n, rid in enumerate(changed):
                org.store.update("Account", rid, {"Name": f"Changed {n}", "AnnualRevenue": n})
        return JSONResponse({"changed": len(changed), "seconds": time.perf_counter() - begun})

    app = build_app(org)
    app.router.routes.insert(0, Route("/__bench__/change", change, methods=["POST"]))
    tune_for_serving()  # as `sfsync emulator serve` does
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
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


# -- the steps (each in a fresh process) ------------------------------------------------------


def _bulk_job(http: httpx.Client) -> str:
    """Create the Bulk 2.0 query job and wait for JobComplete; returns the results URL."""
    jobs = f"/services/data/v{VERSION}/jobs/query"
    job = http.post(jobs, json={"operation": "query", "query": SOQL}).raise_for_status().json()
    while job["state"] not in ("JobComplete", "Failed", "Aborted"):
        time.sleep(0.1)
        job = http.get(f"{jobs}/{job['id']}").raise_for_status().json()
    assert job["state"] == "JobComplete", job
    return f"{jobs}/{job['id']}/results"


def _pages(http: httpx.Client, results: str) -> Any:
    """Stream each result page (a context-managed response), following the locators."""
    locator = ""
    while True:
        params = {"maxRecords": str(PAGE_RECORDS)}
        if locator:
            params["locator"] = locator
        with http.stream("GET", results, params=params) as response:
            response.raise_for_status()
            yield response
            locator = response.headers.get("Sforce-Locator", "null")
        if locator == "null":
            return


def _step_download(base: str) -> int:
    """The emulator's own bound: the same job and pages, bytes only (nothing parsed or loaded)."""
    rows = 0
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        for response in _pages(http, _bulk_job(http)):
            for _ in response.iter_bytes(1 << 20):
                pass
            rows += int(response.headers["Sforce-NumberOfRecords"])
    return rows


def _step_limit_pg(base: str, pg: str, schema: str) -> int:
    import psycopg

    columns = ", ".join(f'"{f}"' for f in FIELDS)
    with (
        httpx.Client(base_url=base, headers={"Authorization": f"Bearer {TOKEN}"}) as http,
        psycopg.connect(pg) as conn,
    ):
        ddl = ", ".join(f'"{f}" {PG_TYPES.get(f, "varchar(255)")}' for f in FIELDS)
        conn.execute(f'CREATE TABLE "{schema}".account_limit ({ddl})')
        copy_sql = (
            f'COPY "{schema}".account_limit ({columns}) FROM STDIN '
            f"(FORMAT csv, HEADER true, FORCE_NULL ({columns}))"
        )
        with conn.cursor() as cur:
            for response in _pages(http, _bulk_job(http)):
                with cur.copy(copy_sql) as copy:
                    for chunk in response.iter_bytes(1 << 20):
                        copy.write(chunk)
        conn.commit()
        row = conn.execute(f'SELECT count(*) FROM "{schema}".account_limit').fetchone()
    return int(row[0]) if row else 0


def _step_limit_sqlite(base: str, path: str) -> int:
    import sqlite3

    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    ddl = ", ".join(f'"{f}" {SQLITE_TYPES.get(f, "TEXT")}' for f in FIELDS)
    conn.execute(f"CREATE TABLE account_limit ({ddl})")
    insert = f"INSERT INTO account_limit VALUES ({', '.join('?' * len(FIELDS))})"
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        for response in _pages(http, _bulk_job(http)):
            reader = csv.reader(io.StringIO(response.read().decode()))
            next(reader)
            conn.executemany(insert, ([v or None for v in row] for row in reader))
    conn.commit()
    (count,) = conn.execute("SELECT count(*) FROM account_limit").fetchone()
    conn.close()
    return int(count)


def _step_pandas(base: str, pg: str, schema: str, directory: str) -> int:
    """What a user writes without sfsync: simple-salesforce to CSV files, pandas into SQL."""
    import pandas as pd
    import sqlalchemy

    sf = _simple_salesforce(base)
    # wait=1 (default 5 s before the first poll): kind to the baseline.
    results = sf.bulk2.Account.download(SOQL, path=directory, max_records=PAGE_RECORDS, wait=1)
    engine = sqlalchemy.create_engine(pg.replace("postgresql://", "postgresql+psycopg://", 1))
    total = 0
    for result in results:
        frame = pd.read_csv(result["file"])
        frame.to_sql("account_pandas", engine, schema=schema, if_exists="append", index=False)
        total += len(frame)
        os.unlink(result["file"])
    engine.dispose()
    return total


def _step_pandas_in_memory(base: str, pg: str, schema: str) -> int:
    """The same script as most examples write it, and as the issue's reference figures (about
    8,000 records/s, over 1.3 GB for 200,000 records) describe it: every ``bulk2`` page kept as
    a string, one DataFrame, one ``to_sql`` (default chunking)."""
    import pandas as pd
    import sqlalchemy

    sf = _simple_salesforce(base)
    # wait=1 (default 5 s before the first poll): kind to the baseline.
    frame = pd.concat(
        [pd.read_csv(io.StringIO(page)) for page in sf.bulk2.Account.query(SOQL, wait=1)],
        ignore_index=True,
    )
    engine = sqlalchemy.create_engine(pg.replace("postgresql://", "postgresql+psycopg://", 1))
    frame.to_sql("account_pandas_mem", engine, schema=schema, if_exists="append", index=False)
    engine.dispose()
    return len(frame)


def _simple_salesforce(base: str) -> Any:
    """A simple-salesforce client on the bench server's plain-HTTP socket."""
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
    return Salesforce(instance_url=base, session_id=TOKEN, version=VERSION, session=session)


def _run_step(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--step", required=True)
    parser.add_argument("--base", required=True)
    parser.add_argument("--pg", default=DEFAULT_PG)
    parser.add_argument("--schema", default="")
    parser.add_argument("--path", default="")
    args = parser.parse_args(argv)
    if args.step == "download":
        rows = _step_download(args.base)
    elif args.step == "limit-pg":
        rows = _step_limit_pg(args.base, args.pg, args.schema)
    elif args.step == "limit-sqlite":
        rows = _step_limit_sqlite(args.base, args.path)
    elif args.step == "pandas":
        rows = _step_pandas(args.base, args.pg, args.schema, args.path)
    elif args.step == "pandas-in-memory":
        rows = _step_pandas_in_memory(args.base, args.pg, args.schema)
    else:
        raise SystemExit(f"unknown step {args.step}")
    print(json.dumps({"rows": rows}))


# -- the driver -------------------------------------------------------------------------------


def _measure(command: list[str], log: Path) -> tuple[float, int, str]:
    """Run ``command`` in a fresh process: wall seconds, peak RSS in MiB, its stdout."""
    with log.open("w") as err:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=err, text=True)
        assert process.stdout is not None
        out = process.stdout.read()
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        sys.stdout.write(out)
        sys.stdout.write(log.read_text()[-20000:])
        raise SystemExit(f"{shlex.join(command)} exited {process.returncode}")
    return seconds, usage.ru_maxrss // 1024, out


def _api_used(http: httpx.Client) -> int:
    return int(http.get("/__emulator__/stats").raise_for_status().json()["api_usage"]["used"])


def _pg_count(pg: str, table: str) -> int:
    import psycopg

    with psycopg.connect(pg) as conn:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(row[0]) if row else 0


def _sqlite_count(path: Path, table: str) -> int:
    import sqlite3

    conn = sqlite3.connect(path)
    (count,) = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    conn.close()
    return int(count)


def _loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _line(name: str, records: int, seconds: float, rss: int | None, extra: str = "") -> float:
    rate = records / seconds
    memory = f"   peak RSS {rss:5d} MiB" if rss is not None else ""
    print(f"{name:44s} {rate:>10,.0f} records/s {seconds:8.2f} s{memory}{extra}", flush=True)
    return rate


def _goal(label: str, value: float, goal: float, *, higher: bool = True, unit: str = "") -> None:
    ok = value >= goal if higher else value < goal
    sign = ">=" if higher else "<"
    print(
        f"  {label:52s} {value:8.2f}{unit}  (goal {sign} {goal:g}{unit}: "
        f"{'met' if ok else 'MISSED'})"
    )


def main() -> None:
    if "--step" in sys.argv:
        _run_step(sys.argv[1:])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--pg", default=DEFAULT_PG, help="PostgreSQL URL (a fresh schema is used)")
    parser.add_argument("--skip-pandas", action="store_true", help="leave out step 3")
    parser.add_argument(
        "--poll-bulk-threshold",
        default="",
        help="the Salesforce connection's source.poll_bulk_threshold for sfsync's runs "
        "(default: sfsync's own; 'null' keeps every poll on REST)",
    )
    args = parser.parse_args()
    print("command:", shlex.join([sys.executable, *sys.argv]))
    print(f"load average at start: {_loadavg()}  (2 cores, shared machine)", flush=True)

    import psycopg

    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    server = ctx.Process(target=_server, args=(args.records, child), daemon=True)
    server.start()
    info = parent.recv()
    base = f"http://127.0.0.1:{info['port']}"
    n = args.records
    print(
        f"records: {n:,} Accounts x {len(FIELDS)} fields  "
        f"(emulator load {info['load_seconds']:.1f} s)"
    )
    schema = f"sfsync_bench_{uuid.uuid4().hex[:8]}"
    work = Path(tempfile.mkdtemp(prefix="bench_sf_to_sql_"))
    me = [sys.executable, str(Path(__file__).resolve()), "--base", base, "--pg", args.pg]
    with psycopg.connect(args.pg, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    targets = {
        "postgres": f"    type: postgres\n    url: {args.pg}\n    schema: {schema}",
        "sqlite": f"    type: sqlite\n    url: sqlite:///{work}/sfsync.sqlite",
    }
    configs: dict[str, Path] = {}
    for name, target in targets.items():
        configs[name] = work / f"{name}.yaml"
        configs[name].write_text(
            CONFIG.format(
                state=work / f"state-{name}.sqlite",
                url=base,
                version=VERSION,
                token=TOKEN,
                target=target,
                fields=", ".join(FIELDS),
                source=(
                    f"\n    source: {{poll_bulk_threshold: {args.poll_bulk_threshold}}}"
                    if args.poll_bulk_threshold
                    else ""
                ),
            )
        )
    print(f"sfsync config (PostgreSQL):\n{configs['postgres'].read_text()}")
    rates: dict[str, float] = {}
    peaks: dict[str, int] = {}
    try:
        with httpx.Client(base_url=base, timeout=600) as http:
            print("-- snapshot", flush=True)
            seconds, rss, out = _measure([*me, "--step", "download"], work / "download.log")
            assert json.loads(out.splitlines()[-1])["rows"] == n, out
            rates["download"] = _line("emulator bound: Bulk 2.0 CSV bytes only", n, seconds, rss)
            for target in ("postgres", "sqlite"):
                used = _api_used(http)
                seconds, rss, _ = _measure(
                    [str(SFSYNC), "sync", "--once", str(configs[target])], work / "sfsync.log"
                )
                calls = _api_used(http) - used
                if target == "postgres":
                    count = _pg_count(args.pg, f'"{schema}".account')
                else:
                    count = _sqlite_count(work / "sfsync.sqlite", "account")
                assert count == n, (target, count)
                key = f"sfsync {target}"
                rates[key] = _line(
                    f"sfsync sync --once -> {target}", n, seconds, rss, f"   {calls} API calls"
                )
                peaks[key] = rss

                step = "limit-pg" if target == "postgres" else "limit-sqlite"
                extra = (
                    ["--schema", schema]
                    if target == "postgres"
                    else ["--path", str(work / "limit.sqlite")]
                )
                seconds, rss, out = _measure([*me, "--step", step, *extra], work / "limit.log")
                assert json.loads(out.splitlines()[-1])["rows"] == n, out
                rates[f"limit {target}"] = _line(
                    f"limit: Bulk 2.0 CSV -> {'COPY' if target == 'postgres' else 'executemany'}"
                    f" ({target})",
                    n,
                    seconds,
                    rss,
                )

            scripts = [
                ("pandas", "account_pandas", "simple-salesforce bulk2 + pandas to_sql (pg)"),
                ("pandas in memory", "account_pandas_mem", "  the same, one DataFrame (pg)"),
            ]
            for key, table, label in [] if args.skip_pandas else scripts:
                step = key.replace(" ", "-")
                seconds, rss, out = _measure(
                    [*me, "--step", step, "--schema", schema, "--path", str(work)],
                    work / f"{step}.log",
                )
                assert json.loads(out.splitlines()[-1])["rows"] == n, out
                assert _pg_count(args.pg, f'"{schema}".{table}') == n
                rates[key] = _line(label, n, seconds, rss)
                peaks[key] = rss

            print("-- incremental", flush=True)
            changed = http.post("/__bench__/change").raise_for_status().json()
            print(f"server changed {changed['changed']:,} accounts in {changed['seconds']:.1f} s")
            for target in ("postgres", "sqlite"):
                used = _api_used(http)
                seconds, rss, _ = _measure(
                    [str(SFSYNC), "sync", "--once", str(configs[target])], work / "sfsync.log"
                )
                calls = _api_used(http) - used
                key = f"sfsync incremental {target}"
                rates[key] = _line(
                    f"sfsync sync --once (changes) -> {target}",
                    changed["changed"],
                    seconds,
                    rss,
                    f"   {calls} API calls",
                )
                peaks[key] = rss
            with psycopg.connect(args.pg) as conn:
                row = conn.execute(
                    f'SELECT count(*) FROM "{schema}".account WHERE "Name" LIKE %s',
                    ("Changed %",),
                ).fetchone()
            assert row is not None
            assert row[0] == changed["changed"], row
            assert (
                _sqlite_count(work / "sfsync.sqlite", "account WHERE Name LIKE 'Changed %'")
                == changed["changed"]
            )

        print("-- ratios and goals")
        for target in ("postgres", "sqlite"):
            _goal(
                f"sfsync / limit ({target})",
                rates[f"sfsync {target}"] / rates[f"limit {target}"],
                0.6,
            )
        for target in ("postgres", "sqlite"):
            print(
                f"  limit / emulator bound ({target}) "
                f"{rates[f'limit {target}'] / rates['download']:.2f}  (informational: near 1 means "
                "the emulator, not the database, bounds the limit)"
            )
        if "pandas" in rates:
            _goal(
                "sfsync / simple-salesforce+pandas (postgres)",
                rates["sfsync postgres"] / rates["pandas"],
                8,
                unit="x",
            )
            _goal(
                "sfsync / the same, all pages in one DataFrame",
                rates["sfsync postgres"] / rates["pandas in memory"],
                8,
                unit="x",
            )
            print(
                f"  limit / simple-salesforce+pandas (postgres) "
                f"{rates['limit postgres'] / rates['pandas']:.2f}x  (informational: no tool "
                "reading the same Bulk CSV beats the limit, so no ratio to the script above "
                "this one can be reached in this run)"
            )
        for key, rss in peaks.items():
            if key.startswith("pandas"):
                print(f"  peak RSS {key} (MB) {rss * 1.048576:.2f}  (reference)")
            else:
                _goal(f"peak RSS {key} (MB)", rss * 1.048576, 300, higher=False)
    finally:
        server.kill()
        server.join()
        with psycopg.connect(args.pg, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        for file in work.iterdir():
            file.unlink()
        work.rmdir()
        print(f"load average at end: {_loadavg()}")


if __name__ == "__main__":
    main()
