"""A sync killed with SIGKILL mid-snapshot and mid-poll, then restarted, ends exactly equal to
the org. Everything runs as separate processes over real sockets: the emulator
(``sfsync emulator serve``), the sync (``sfsync sync --once``) and the real PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

TOKEN = "00D000000000001!kill-test-token"
OBJECTS = {
    "Account": "account",
    "Contact": "contact",
    "Opportunity": "opportunity",
    "Case": "case",
}

CONFIG = """
version: 1
state: {{url: "sqlite:///{state}"}}
connections:
  crm:
    type: salesforce
    instance_url: {url}
    login_url: {url}
    auth: {{flow: access_token, access_token: "{token}"}}
{source}
  warehouse:
    type: postgres
    url: {pg_url}
    schema: {schema}
syncs:
  - name: kill-test
    source: crm
    target: warehouse
    mode: polling
    objects:
{objects}
"""


def _objects() -> str:
    return "\n".join(
        f"      - {{name: {name}, fields: [Id, SystemModstamp, IsDeleted, Name], deletes: hard}}"
        if name in ("Account", "Opportunity")
        else f"      - {{name: {name}, fields: [Id, SystemModstamp, IsDeleted], deletes: hard}}"
        for name in OBJECTS
    )


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[str]:
    """The emulator as its own process, seeded, with latency so that a sync takes seconds."""
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "sfsync", "emulator", "serve", "--port", "0", "--seed", "demo",
            "--access-token", TOKEN, "--data", str(tmp_path / "org.sqlite"),
            "--fault", "GET /services/data/* latency=40-60",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    url = ""
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith("instance_url: "):
            url = line.split(": ", 1)[1].strip()
            break
        if not line and proc.poll() is not None:
            break
    assert url, "the emulator did not start"
    yield url
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)


@pytest.fixture
def schema(postgres_url: str) -> Iterator[str]:
    name = f"sfsync_kill_{uuid.uuid4().hex[:8]}"
    yield name
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


def _sync(config: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "sfsync", "sync", "--once", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "120"},
    )


def _org_rows(url: str) -> dict[str, dict[str, str]]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    rows: dict[str, dict[str, str]] = {}
    with httpx.Client(base_url=url, headers=headers, timeout=60) as http:
        for name in OBJECTS:
            found: dict[str, str] = {}
            response = http.get(
                "/services/data/v62.0/query", params={"q": f"SELECT Id, SystemModstamp FROM {name}"}
            )
            while True:
                body = response.json()
                found.update({r["Id"]: r["SystemModstamp"] for r in body["records"]})
                if body["done"]:
                    break
                response = http.get(body["nextRecordsUrl"])
            rows[name] = found
    return rows


def _target_rows(pg_url: str, schema: str) -> dict[str, dict[str, str]]:
    rows: dict[str, dict[str, str]] = {}
    with psycopg.connect(pg_url) as conn:
        for name, table in OBJECTS.items():
            found = conn.execute(
                f"""SELECT "Id",
                       to_char("SystemModstamp" AT TIME ZONE 'UTC',
                               'YYYY-MM-DD"T"HH24:MI:SS.MS"+0000"'),
                       count(*) OVER (PARTITION BY "Id")
                FROM "{schema}"."{table}" """
            ).fetchall()
            assert all(n == 1 for _, _, n in found), f"duplicate rows in {table}"
            rows[name] = {str(i): str(stamp) for i, stamp, _ in found}
    return rows


def _kill_when(
    proc: subprocess.Popen[str], ready: Callable[[], bool], *, timeout: float = 120.0
) -> None:
    """SIGKILL the sync as soon as ``ready()`` (progress was made), while it still runs."""
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None:
            pytest.fail(
                "the sync ended before it could be killed: "
                + (proc.stderr.read() if proc.stderr else "")
            )
        assert time.monotonic() < deadline, "no progress to interrupt"
        time.sleep(0.02)
    assert proc.poll() is None, "the sync ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)


def _count(pg_url: str, sql: str) -> int:
    try:
        with psycopg.connect(pg_url) as conn:
            row = conn.execute(sql).fetchone()
    except psycopg.errors.UndefinedTable:
        return 0
    return int(row[0]) if row else 0


# Over REST (the seeded objects are small), and through Bulk API 2.0 in Id ranges of about
# 1,000 records whose CSV pages PostgreSQL loads with COPY as they are (docs/sql-sink.md).
READS = {
    "rest": "",
    "bulk-pages": "    source: {bulk_threshold: 100, chunk_records: 1000}",
}


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.parametrize("read", list(READS))
def test_sigkill_mid_snapshot_and_mid_poll_then_restart_converges(
    tmp_path: Path, emulator: str, postgres_url: str, schema: str, read: str
) -> None:
    config = tmp_path / "sync.yaml"
    config.write_text(
        CONFIG.format(
            state=tmp_path / "state.sqlite",
            url=emulator,
            token=TOKEN,
            source=READS[read],
            pg_url=postgres_url,
            schema=schema,
            objects=_objects(),
        )
    )
    # 1. Killed in the middle of the snapshot: as soon as the first rows are in.
    accounts = f'"{schema}".account'
    _kill_when(_sync(config), lambda: _count(postgres_url, f"SELECT count(*) FROM {accounts}") > 0)
    partial = _target_rows(postgres_url, schema) if _tables_exist(postgres_url, schema) else {}
    assert sum(len(v) for v in partial.values()) < sum(len(v) for v in _org_rows(emulator).values())

    # 2. Restarted: it resumes and completes.
    proc = _sync(config)
    assert proc.wait(timeout=300) == 0, proc.stderr.read() if proc.stderr else ""
    assert _target_rows(postgres_url, schema) == _org_rows(emulator)

    # 3. Changes in the org, then a poll killed in the middle, then restarted.
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=emulator, headers=headers, timeout=60) as http:
        ids = list(_org_rows(emulator)["Account"])
        for i, record_id in enumerate(ids[:300]):
            response = http.patch(
                f"/services/data/v62.0/sobjects/Account/{record_id}", json={"Name": f"Changed {i}"}
            )
            assert response.status_code == 204
        for record_id in ids[300:320]:
            assert http.delete(
                f"/services/data/v62.0/sobjects/Account/{record_id}"
            ).status_code in (204, 400)
    # Killed as soon as the first change is applied: the rest of that poll is cut off.
    changed = f"SELECT count(*) FROM {accounts} WHERE \"Name\" LIKE 'Changed %%'"
    _kill_when(_sync(config), lambda: _count(postgres_url, changed) > 0)
    proc = _sync(config)
    assert proc.wait(timeout=300) == 0, proc.stderr.read() if proc.stderr else ""
    assert _target_rows(postgres_url, schema) == _org_rows(emulator)


def _tables_exist(pg_url: str, schema: str) -> bool:
    with psycopg.connect(pg_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = %s", (schema,)
        ).fetchone()
    return bool(row and row[0] >= len(OBJECTS))
