"""Real-time syncs: Change Data Capture from the emulator (REST and gRPC over real sockets) into
the real PostgreSQL, through the configuration path a user runs (`mode: realtime`).

Each test compares the whole target with the org, row by row: nothing lost, nothing extra.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from sfsync.app import build_runtime, default_registry, load
from sfsync.connectors.salesforce.stream import StreamingSource
from sfsync.core.state import PipelineState
from sfsync.emulator.org import Org
from sfsync.emulator.server import RunningServer, serve_in_background
from sfsync.emulator.store_changes import call_context
from sfsync.runtime.pipeline import Pipeline

TOKEN = "00D000000000001!realtime-token"
FIELDS = ["Id", "Name", "Industry", "AnnualRevenue", "SystemModstamp"]

CONFIG = """
version: 1
state:
  url: sqlite:///{state}
connections:
  crm:
    type: salesforce
    instance_url: {url}
    login_url: {url}
    client_name: sfsync-rt
    auth: {{flow: access_token, access_token: "{token}"}}
    streaming:
      pubsub_endpoint: 127.0.0.1:{grpc}
      tls: false
      fallback_after: 3
      fallback_interval: 0.5
      retry_stream_after: 2
  warehouse:
    type: postgres
    url: {pg}
syncs:
  - name: live
    source: crm
    target: warehouse
    mode: realtime
    objects:
      - name: Account
        fields: [{fields}]
        deletes: {deletes}
"""


@pytest.fixture
def database(postgres_url: str) -> Iterator[str]:
    name = f"rt_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = postgres_url.rsplit("/", 1)[0] + f"/{name}"
    yield url
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def org() -> Iterator[Org]:
    org = Org.create(access_token=TOKEN)
    yield org
    org.close()


@pytest.fixture
def server(org: Org) -> Iterator[RunningServer]:
    with serve_in_background(org, port=0, grpc_port=0) as running:
        yield running


def _rows(url: str, deletes: str) -> dict[str, tuple[Any, ...]]:
    where = ' WHERE NOT "_sfsync_deleted"' if deletes == "soft" else ""
    with psycopg.connect(url) as conn:
        try:
            cur = conn.execute(
                f'SELECT "Id", "Name", "Industry", "AnnualRevenue" FROM account{where}'
            )
        except psycopg.errors.UndefinedTable:
            return {}  # the sync has not created it yet
        return {row[0]: (row[1], row[2], None if row[3] is None else float(row[3])) for row in cur}


def _org_rows(org: Org) -> dict[str, tuple[Any, ...]]:
    return {
        str(r["Id"]): (
            r["Name"],
            r["Industry"],
            None if r["AnnualRevenue"] is None else float(str(r["AnnualRevenue"])),
        )
        for r in org.store.scan("Account", include_deleted=False)
    }


class Running:
    """One `sfsync run` of the configuration, in this event loop."""

    def __init__(self, config: Path) -> None:
        self.config = config
        self.pipeline: Pipeline | None = None

    async def __aenter__(self) -> Running:
        registry = default_registry()
        self.runtime = await build_runtime(load(self.config, registry), registry, once=False)
        self.pipeline = self.runtime.pipelines[0]
        self.task = asyncio.create_task(self.pipeline.run())
        return self

    @property
    def source(self) -> StreamingSource:
        assert self.pipeline is not None
        assert isinstance(self.pipeline.source, StreamingSource)
        return self.pipeline.source

    async def __aexit__(self, *exc: object) -> None:
        assert self.pipeline is not None
        self.pipeline.request_stop()
        await asyncio.wait([self.task], timeout=30)
        assert self.task.done(), "the sync did not stop within 30 s of the request"
        assert not self.task.cancelled(), "the sync's task ended cancelled, not stopped"
        status = self.task.result()
        await self.runtime.__aexit__(None, None, None)
        assert status.state is not PipelineState.FAILED, status.last_error


async def _converges(org: Org, url: str, deletes: str, *, within: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        # Off the event loop: a read must never wait on a lock the sync holds across an await.
        expected, actual = _org_rows(org), await asyncio.to_thread(_rows, url, deletes)
        if expected == actual:
            return
        if asyncio.get_running_loop().time() > deadline:
            missing = set(expected) - set(actual)
            extra = set(actual) - set(expected)
            wrong = [k for k in set(expected) & set(actual) if expected[k] != actual[k]]
            raise AssertionError(
                f"target differs: {len(missing)} missing, {len(extra)} extra, "
                f"{len(wrong)} different (e.g. {wrong[:3]})"
            )
        await asyncio.sleep(0.2)


async def _streaming(running: Running, transport: str | None = None) -> None:
    """Wait until the object has joined its stream (changes from now on are streamed)."""
    metrics = running.source.metrics
    for _ in range(300):
        joined = metrics.mode.get("Account") == "streaming"
        if joined and (transport is None or metrics.transport.get("Account") == transport):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never joined the stream: {metrics}")


def _config(tmp_path: Path, server: RunningServer, pg: str, deletes: str = "soft") -> Path:
    path = tmp_path / "realtime.yaml"
    path.write_text(
        CONFIG.format(
            state=tmp_path / "state.sqlite",
            url=server.url,
            token=TOKEN,
            grpc=server.grpc_port,
            pg=pg,
            fields=", ".join(FIELDS),
            deletes=deletes,
        )
    )
    return path


def _seed(org: Org, n: int) -> list[str]:
    with call_context(api="rest", client_id="seed"):
        ids: list[str] = org.store.bulk_insert(
            "Account",
            [{"Name": f"Acme {i}", "Industry": "Energy", "AnnualRevenue": i} for i in range(n)],
        )
    return ids


@pytest.mark.anyio
@pytest.mark.postgres
async def test_changes_through_rest_composite_and_bulk_arrive_in_postgres(
    tmp_path: Path, org: Org, server: RunningServer, database: str
) -> None:
    ids = _seed(org, 200)
    async with Running(_config(tmp_path, server, database)) as running:
        await _converges(org, database, "soft")
        await _streaming(running)
        base = f"{server.url}/services/data/v62.0"
        headers = {"Authorization": f"Bearer {TOKEN}", "Sforce-Call-Options": "client=tester"}
        async with httpx.AsyncClient(headers=headers, timeout=30) as http:
            # REST: create, update, delete one by one.
            made = await http.post(f"{base}/sobjects/Account", json={"Name": "Via REST"})
            assert made.status_code == 201, made.text
            await http.patch(f"{base}/sobjects/Account/{ids[0]}", json={"Industry": "Banking"})
            await http.delete(f"{base}/sobjects/Account/{ids[1]}")
            # Composite: several records in one transaction (one merged change event).
            records = [
                {"attributes": {"type": "Account"}, "id": i, "AnnualRevenue": 7} for i in ids[10:30]
            ]
            answer = await http.patch(
                f"{base}/composite/sobjects", json={"allOrNone": True, "records": records}
            )
            assert answer.status_code == 200, answer.text
            # Bulk API 2.0 ingest.
            job = (
                await http.post(
                    f"{base}/jobs/ingest",
                    json={"object": "Account", "operation": "insert", "lineEnding": "LF"},
                )
            ).json()
            csv = "Name,Industry\n" + "".join(f"Bulk {i},Retail\n" for i in range(300))
            put = await http.put(
                f"{base}/jobs/ingest/{job['id']}/batches",
                content=csv,
                headers={"Content-Type": "text/csv"},
            )
            assert put.status_code == 201, put.text
            await http.patch(f"{base}/jobs/ingest/{job['id']}", json={"state": "UploadComplete"})
            for _ in range(100):
                state = (await http.get(f"{base}/jobs/ingest/{job['id']}")).json()["state"]
                if state == "JobComplete":
                    break
                await asyncio.sleep(0.1)
            assert state == "JobComplete"
        await _converges(org, database, "soft")
        assert running.source.metrics.mode == {"Account": "streaming"}
        assert running.source.metrics.events >= 323
        # Changes were streamed, not polled: no fallback happened.
        assert running.source.metrics.fallbacks == 0
        assert running.pipeline is not None
        assert running.pipeline.status().source_health == (("Account", "streaming (pubsub)"),)


@pytest.mark.anyio
@pytest.mark.postgres
async def test_restart_after_the_retention_window_resyncs_without_loss(
    tmp_path: Path, org: Org, server: RunningServer, database: str
) -> None:
    ids = _seed(org, 100)
    config = _config(tmp_path, server, database, deletes="hard")
    async with Running(config) as running:
        await _converges(org, database, "hard")
        await _streaming(running)
        with call_context(api="rest", client_id="tester"):
            org.store.update("Account", ids[0], {"Name": "While running"})
        await _converges(org, database, "hard")
        assert running.source.metrics.events >= 1
    # Stopped. Changes are made, then the org's clock moves past the 72-hour retention window:
    # the stored replay id is no longer valid.
    with call_context(api="rest", client_id="tester"):
        org.store.update("Account", ids[1], {"Name": "While stopped"})
        org.store.delete(ids[2])
        org.store.insert("Account", {"Name": "Born while stopped"})
    org.clock.advance(timedelta(hours=73).total_seconds())
    with call_context(api="rest", client_id="tester"):
        org.store.update("Account", ids[3], {"Industry": "After the window"})
    async with Running(config) as running:
        await _converges(org, database, "hard")
        assert running.source.metrics.replay_expired == 1
        await _streaming(running)
        with call_context(api="rest", client_id="tester"):
            org.store.update("Account", ids[4], {"Name": "Streaming again"})
        await _converges(org, database, "hard")
        assert running.source.metrics.mode == {"Account": "streaming"}


async def _admin(server: RunningServer, body: dict[str, Any]) -> None:
    async with httpx.AsyncClient() as http:
        answer = await http.put(f"{server.url}/__emulator__/streaming", json=body)
        assert answer.status_code == 200, answer.text


@pytest.mark.anyio
@pytest.mark.postgres
async def test_gap_and_overflow_events_are_healed(
    tmp_path: Path, org: Org, server: RunningServer, database: str
) -> None:
    ids = _seed(org, 120)
    async with Running(_config(tmp_path, server, database)) as running:
        await _converges(org, database, "soft")
        await _streaming(running)
        # The fault plan turns the changes of three REST calls into GAP_* events: no values,
        # only record ids.
        async with httpx.AsyncClient(
            base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
        ) as http:
            rule = {"path": "/services/data/*/sobjects/*", "rates": {"cdc_gap": 1.0}}
            plan = {"seed": 1, "rules": [rule]}
            assert (await http.put("/__emulator__/faults", json=plan)).status_code == 200
            api = "/services/data/v62.0/sobjects/Account"
            await http.patch(f"{api}/{ids[0]}", json={"Name": "Gap update"})
            await http.delete(f"{api}/{ids[1]}")
            made = await http.post(api, json={"Name": "Gap create"})
            created = made.json()["id"]
            await http.put("/__emulator__/faults", json={"seed": 1, "rules": []})
        await _converges(org, database, "soft")
        assert running.source.metrics.gaps_healed == 3
        assert _rows(database, "soft")[created] == ("Gap create", None, None)

        # A transaction over the threshold becomes one GAP_OVERFLOW for the rest of it.
        await _admin(server, {"overflow_threshold": 10})
        with call_context(api="rest", client_id="tester"), org.store.transaction():
            for record_id in ids[10:70]:
                org.store.update("Account", record_id, {"Industry": "Overflowed"})
        await _converges(org, database, "soft")
        assert running.source.metrics.overflows_healed >= 1


@pytest.mark.anyio
@pytest.mark.postgres
async def test_object_without_change_data_capture_is_polled_until_it_streams(
    tmp_path: Path, org: Org, server: RunningServer, database: str
) -> None:
    ids = _seed(org, 50)
    await _admin(server, {"cdc_entities": ["Contact"]})  # Account has no channel
    async with Running(_config(tmp_path, server, database)) as running:
        await _converges(org, database, "soft")
        with call_context(api="rest", client_id="tester"):
            org.store.update("Account", ids[0], {"Name": "Polled"})
        await _converges(org, database, "soft")
        assert running.source.metrics.mode == {"Account": "polling"}
        assert running.source.metrics.fallbacks >= 1
        await _admin(server, {"cdc_entities": None})  # enabled: streamed again
        for _ in range(100):
            if running.source.metrics.mode == {"Account": "streaming"}:
                break
            await asyncio.sleep(0.1)
        assert running.source.metrics.mode == {"Account": "streaming"}
        with call_context(api="rest", client_id="tester"):
            org.store.update("Account", ids[1], {"Name": "Streamed"})
        await _converges(org, database, "soft")


class DroppingProxy:
    """A TCP proxy in front of the gRPC port whose connections can all be cut at once: the
    network failing under a live subscription, as far as the client can tell."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = 0
        self.drops = 0
        self._writers: set[asyncio.StreamWriter] = set()

    async def __aenter__(self) -> DroppingProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.close()
        self.drop()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.close()
            return
        self._writers.update((writer, up_writer))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def drop(self) -> None:
        """Cut every open connection (without a goodbye: the peer sees a reset)."""
        for writer in list(self._writers):
            transport = writer.transport
            if not transport.is_closing():
                transport.abort()
        self._writers.clear()
        self.drops += 1


def _log_applied_versions(database: str) -> None:
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("CREATE TABLE applied (seq bigserial PRIMARY KEY, id text, stamp timestamptz)")
        conn.execute(
            "CREATE FUNCTION log_applied() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN INSERT INTO applied (id, stamp) "
            'VALUES (NEW."Id", NEW."SystemModstamp"); RETURN NEW; END $$'
        )
        conn.execute(
            "CREATE TRIGGER log_applied AFTER INSERT OR UPDATE ON account "
            "FOR EACH ROW EXECUTE FUNCTION log_applied()"
        )


@pytest.mark.anyio
@pytest.mark.postgres
async def test_stream_dropped_repeatedly_under_load_loses_nothing_and_never_goes_back(
    tmp_path: Path, org: Org, server: RunningServer, database: str
) -> None:
    ids = _seed(org, 300)
    assert server.grpc_port is not None
    async with DroppingProxy(server.grpc_port) as proxy:
        config = _config(tmp_path, server, database)
        config.write_text(
            config.read_text().replace(f"127.0.0.1:{server.grpc_port}", f"127.0.0.1:{proxy.port}")
        )
        async with Running(config) as running:
            await _converges(org, database, "soft")
            await _streaming(running)
            # Every version the target applies, in order, per record. Off the event loop: the
            # trigger waits for the sync's open transaction, which needs the loop to commit.
            await asyncio.to_thread(_log_applied_versions, database)
            stop = asyncio.Event()

            def write(rounds: int) -> None:
                # Many changes to few records: order per record is what is being checked.
                for n in range(rounds):
                    with call_context(api="rest", client_id="tester"):
                        org.store.update("Account", ids[n % 40], {"AnnualRevenue": n})
                    if n % 7 == 0:
                        with call_context(api="rest", client_id="tester"):
                            org.store.insert("Account", {"Name": f"New {n}"})

            async def dropper() -> None:
                while not stop.is_set():
                    await asyncio.sleep(0.4)
                    proxy.drop()

            drops = asyncio.create_task(dropper())
            for _ in range(8):
                await asyncio.to_thread(write, 150)
                await asyncio.sleep(0.25)
            stop.set()
            await drops
            await _converges(org, database, "soft", within=60)
            assert proxy.drops >= 5
            assert running.source.metrics.reconnects >= 3, running.source.metrics
            with psycopg.connect(database) as conn:
                applied = conn.execute("SELECT id, stamp FROM applied ORDER BY seq").fetchall()
            last: dict[str, Any] = {}
            for record_id, stamp in applied:
                assert stamp >= last.get(record_id, stamp), f"{record_id} went back in time"
                last[record_id] = stamp


@pytest.mark.anyio
@pytest.mark.postgres
async def test_cometd_transport_carries_the_same_changes(
    tmp_path: Path, org: Org, server: RunningServer, database: str
) -> None:
    ids = _seed(org, 80)
    config = _config(tmp_path, server, database)
    config.write_text(
        config.read_text().replace(
            "      tls: false\n", "      tls: false\n      transports: [cometd]\n"
        )
    )
    async with Running(config) as running:
        await _converges(org, database, "soft")
        await _streaming(running, "cometd")
        with call_context(api="rest", client_id="tester"):
            org.store.update("Account", ids[0], {"Name": "Over CometD", "Industry": None})
            org.store.delete(ids[1])
            created = org.store.insert("Account", {"Name": "Created", "AnnualRevenue": 12})
            org.store.undelete(ids[1])
            org.store.delete(ids[2])
        await _converges(org, database, "soft")
        assert _rows(database, "soft")[created] == ("Created", None, 12.0)
        assert _rows(database, "soft")[ids[0]][:2] == ("Over CometD", None)
        assert running.source.metrics.transport == {"Account": "cometd"}
        assert running.source.metrics.undeletes_reread == 1
        assert running.source.metrics.events >= 4


@pytest.mark.anyio
@pytest.mark.postgres
async def test_unreachable_pubsub_falls_back_to_cometd(
    tmp_path: Path, org: Org, server: RunningServer, database: str
) -> None:
    ids = _seed(org, 40)
    config = _config(tmp_path, server, database)
    # Nothing listens there: as when a firewall lets HTTPS out but not gRPC.
    config.write_text(config.read_text().replace(f":{server.grpc_port}", ":9"))
    async with Running(config) as running:
        await _converges(org, database, "soft")
        await _streaming(running, "cometd")
        with call_context(api="rest", client_id="tester"):
            org.store.update("Account", ids[0], {"Name": "After the fallback"})
        await _converges(org, database, "soft")
        assert running.source.metrics.transport == {"Account": "cometd"}
        assert running.source.metrics.mode == {"Account": "streaming"}


@pytest.mark.anyio
@pytest.mark.postgres
async def test_an_expired_session_is_renewed_through_the_login_flow(
    tmp_path: Path, database: str
) -> None:
    org = Org.create(access_token=TOKEN, session_timeout=3)
    try:
        ids = _seed(org, 30)
        key = tmp_path / "jwt.pem"
        key.write_bytes(org.auth.app.private_key_pem)
        with serve_in_background(org, port=0, grpc_port=0) as server:
            assert server.grpc_port is not None
            async with DroppingProxy(server.grpc_port) as proxy:
                config = _config(tmp_path, server, database)
                text = config.read_text().replace(
                    f'auth: {{flow: access_token, access_token: "{TOKEN}"}}',
                    "auth: {flow: jwt_bearer, client_id: "
                    f"{org.auth.app.client_id}, username: {org.auth.user.username}, "
                    f"private_key_file: {key}, audience: https://login.salesforce.com}}",
                )
                config.write_text(text.replace(f":{server.grpc_port}", f":{proxy.port}"))
                async with Running(config) as running:
                    await _converges(org, database, "soft")
                    await _streaming(running)
                    with call_context(api="rest", client_id="tester"):
                        org.store.update("Account", ids[1], {"Name": "Streamed"})
                    await _converges(org, database, "soft")
                    await asyncio.sleep(3.5)  # the session the stream was opened with expired
                    proxy.drop()  # the resubscription presents it and is refused
                    with call_context(api="rest", client_id="tester"):
                        org.store.update("Account", ids[0], {"Name": "After a new login"})
                    await _converges(org, database, "soft")
                    metrics = running.source.metrics
                    assert metrics.reconnects >= 1
                    assert metrics.fallbacks == 0
                    assert metrics.transport == {"Account": "pubsub"}
                    assert metrics.events >= 2  # both changes came over the stream
                    assert metrics.joins == 1  # resumed after its replay id, no new join
    finally:
        org.close()
