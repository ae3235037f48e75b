"""Two-way syncs end to end: the emulator over a real socket and a captured table in SQLite,
the real PostgreSQL and the real MariaDB, built from a YAML config by the CLI's own code path.

Edits on the Salesforce side go through the emulator's store (as a person's edits in the org:
no sfsync client id); edits on the database side are plain SQL (no sfsync origin).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest
import sqlalchemy as sa

from sfsync.app import build_runtime, default_registry, load, resolve_conflict
from sfsync.connectors.sql.capture import install
from sfsync.connectors.sql.capture.install import CaptureObject
from sfsync.connectors.sql.client import ConnectionSettings, dialect_of, engine_url
from sfsync.connectors.sql.config import PostgresConnection
from sfsync.core.conflicts import Side
from sfsync.core.errors import FatalError
from sfsync.core.review import ReviewState
from sfsync.core.state import PipelineState
from sfsync.emulator.faults import parse_rule_spec
from sfsync.emulator.org import Org
from sfsync.emulator.server import serve_in_background
from sfsync.runtime.status import PipelineStatus
from sfsync.runtime.twoway import TwoWaySync
from sfsync.stores.checkpoints import open_state
from unit.connectors.salesforce_sink._support import SCHEMA, TOKEN

pytestmark = [pytest.mark.anyio, pytest.mark.postgres, pytest.mark.mariadb]

FIELDS = ("Ext_Id__c", "Name", "Phone", "Score__c")
OBJECT = CaptureObject(entity="Account", table="customers", key="Ext_Id__c", fields=FIELDS)
DDL = (
    "CREATE TABLE {t} (ext_id__c varchar(40) PRIMARY KEY, name varchar(255), "
    "phone varchar(40), score__c numeric(10,2))"
)
CONFIG = """
version: 1
state:
  url: sqlite:///{state}
connections:
  crm:
    type: salesforce
    instance_url: {url}
    login_url: {url}
    client_name: sfsync-twoway
    auth: {{flow: access_token, access_token: "{token}"}}
    streaming: {{pubsub_endpoint: "127.0.0.1:{grpc}", tls: false}}
  app_db:
{db}
syncs:
  - name: accounts
    source: crm
    target: app_db
    direction: two_way
    mode: {mode}{interval}
    retry: {{max_attempts: 12, base_delay: 0.01s, max_delay: 0.05s}}
    objects:
      - name: Account
        key: Ext_Id__c
        table: customers
        fields: [Ext_Id__c, Name, Phone, Score__c]
        match_on: [Ext_Id__c, Name]
        conflicts:
{conflicts}
"""


class TwoWay:
    """The org, the database and the config of one two-way sync."""

    def __init__(
        self,
        org: Org,
        url: str,
        grpc: int,
        settings: ConnectionSettings,
        tmp: Path,
        capture: str = "triggers",
    ) -> None:
        self.capture = capture
        self.grpc = grpc
        self.org = org
        self.settings = settings
        self.dialect = dialect_of(settings)
        self.engine = sa.create_engine(engine_url(settings))
        self.tmp = tmp
        self.url = url
        self.changes = 0

        def count(records: list[Any]) -> None:
            self.changes += len(records)

        org.store.add_commit_listener(count)
        schema = settings.db_schema if isinstance(settings, PostgresConnection) else None
        prep = self.engine.dialect.identifier_preparer
        self.table = (
            f"{prep.quote(schema)}.customers" if schema else prep.quote("customers")
        )  # fmt: skip
        with self.engine.begin() as conn:
            if schema:
                conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
            ddl = DDL.format(t=self.table)
            if capture == "updated_at":
                ddl = ddl[:-1] + ", updated_at timestamp)"
            conn.execute(sa.text(ddl))
        if capture == "triggers":
            engine, conn = install.connect(settings)
            try:
                install.execute(conn, self.dialect, install.plan_install(conn, settings, [OBJECT]))
            finally:
                conn.close()
                engine.dispose()

    def config(self, conflicts: str = "policy: salesforce_wins", mode: str = "polling") -> Path:
        s = self.settings
        if isinstance(s, PostgresConnection):
            db = f"    type: postgres\n    url: {s.url}\n    schema: {s.db_schema}"
        else:
            db = (
                f"    type: {'sqlite' if self.dialect == 'sqlite' else 'mariadb'}\n    url: {s.url}"
            )
        if self.capture == "updated_at":
            db += (
                "\n    capture: updated_at\n    updated_at_column: updated_at"
                "\n    capture_settle: 0"
            )
        text = CONFIG.format(
            state=self.tmp / "state.db",
            url=self.url,
            token=TOKEN,
            grpc=self.grpc,
            mode=mode,
            interval="\n    interval: 1s" if mode == "polling" else "",
            db=db,
            conflicts="\n".join(f"          {line}" for line in conflicts.splitlines()),
        )
        path = self.tmp / "twoway.yaml"
        path.write_text(text)
        return path

    async def sync(self, conflicts: str = "policy: salesforce_wins") -> TwoWaySync:
        config = load(self.config(conflicts))
        runtime = await build_runtime(config, default_registry(), once=True)
        async with runtime:
            sync = runtime.pipelines[0]
            assert isinstance(sync, TwoWaySync)
            status: PipelineStatus = await sync.run()
        assert status.state is PipelineState.STOPPED, status.last_error
        return sync

    # -- the two sides ----------------------------------------------------------------------

    def sf(self) -> dict[str, dict[str, object]]:
        """Live Accounts with a key, by key: the synced fields in comparable form."""
        out: dict[str, dict[str, object]] = {}
        for record in self.org.store.scan("Account", include_deleted=False):
            key = record.get("Ext_Id__c")
            if record.get("IsDeleted") or not key:
                continue
            out[str(key)] = _norm({f: record.get(f) for f in FIELDS[1:]})
        return out

    def sf_id(self, key: str) -> str:
        for record in self.org.store.scan("Account", include_deleted=False):
            if record.get("Ext_Id__c") == key and not record.get("IsDeleted"):
                return str(record["Id"])
        raise KeyError(key)

    def db(self) -> dict[str, dict[str, object]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.text(f"SELECT ext_id__c, name, phone, score__c FROM {self.table}")
            ).all()
        return {str(r[0]): _norm({"Name": r[1], "Phone": r[2], "Score__c": r[3]}) for r in rows}

    def sql(self, statement: str, **params: object) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.text(statement.replace("{t}", self.table)), params)

    def sf_set(self, key: str, **values: object) -> None:
        self.org.store.update("Account", self.sf_id(key), values)

    def db_set(self, key: str, **values: object) -> None:
        columns = ", ".join(f"{k.lower()} = :{k}" for k in values)
        self.sql(f"UPDATE {{t}} SET {columns} WHERE ext_id__c = :key", key=key, **values)

    def our_db_writes(self) -> int:
        """Change-log rows our own writes produced (marked with our origin)."""
        schema = self.settings.db_schema if isinstance(self.settings, PostgresConnection) else None
        prep = self.engine.dialect.identifier_preparer
        log = f"{prep.quote(schema)}._sfsync_changes" if schema else "_sfsync_changes"
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    sa.text(f"SELECT COUNT(*) FROM {log} WHERE origin = 'sfsync:accounts'")
                ).scalar_one()
            )

    def log_status(self, key: str) -> list[tuple[str, str | None]]:
        """``(sync_status, sync_error)`` of the change-log rows of ``key`` not written by us."""
        schema = self.settings.db_schema if isinstance(self.settings, PostgresConnection) else None
        prep = self.engine.dialect.identifier_preparer
        log = f"{prep.quote(schema)}._sfsync_changes" if schema else "_sfsync_changes"
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    f"SELECT sync_status, sync_error FROM {log} WHERE row_key = :k "
                    "AND (origin IS NULL OR origin <> 'sfsync:accounts') ORDER BY seq"
                ),
                {"k": key},
            ).all()
        return [(str(r[0]), r[1]) for r in rows]

    def sf_writes(self) -> int:
        """Record changes committed in the org since the harness started (ours and the test's)."""
        return self.changes


def _norm(values: dict[str, object]) -> dict[str, object]:
    out: dict[str, object] = {}
    for k, v in values.items():
        if k == "Score__c" and v is not None:
            v = Decimal(str(v)).normalize()
        out[k] = v if v != "" else None
    return out


@pytest.fixture
def twoway(settings: tuple[ConnectionSettings, str], tmp_path: Path) -> Iterator[TwoWay]:
    yield from _harness(settings[0], tmp_path, "triggers")


@pytest.fixture
def polled(settings: tuple[ConnectionSettings, str], tmp_path: Path) -> Iterator[TwoWay]:
    """A table without triggers, read by its updated_at column (capture: updated_at)."""
    yield from _harness(settings[0], tmp_path, "updated_at")


def _harness(settings: ConnectionSettings, tmp_path: Path, capture: str) -> Iterator[TwoWay]:
    org = Org.create(access_token=TOKEN, schema_path=SCHEMA)
    with serve_in_background(org, grpc_port=0) as server:
        assert server.grpc_port is not None
        h = TwoWay(org, server.url, server.grpc_port, settings, tmp_path, capture)
        yield h
        h.engine.dispose()
    org.close()


def _insert_sf(h: TwoWay, key: str | None, name: str, phone: str | None, score: int) -> str:
    values: dict[str, Any] = {"Name": name, "Phone": phone, "Score__c": score}
    if key:
        values["Ext_Id__c"] = key
    return h.org.store.insert("Account", values)


async def test_first_run_matches_existing_records_then_changes_flow_both_ways(
    twoway: TwoWay,
) -> None:
    h = twoway
    _insert_sf(h, "k1", "Acme", "111", 1)  # on both sides, Phone differs
    solo = _insert_sf(h, None, "Solo GmbH", "222", 2)  # no key: matched by Name
    _insert_sf(h, "k3", "Only In Salesforce", None, 3)
    h.sql(
        "INSERT INTO {t} VALUES ('k1', 'Acme', '999', 1), ('k2', ' solo gmbh ', '222', 2), "
        "('k4', 'Only In The Database', '444', 4)"
    )
    await h.sync()  # salesforce_wins
    assert h.sf() == h.db()
    assert set(h.db()) == {"k1", "k2", "k3", "k4"}
    assert h.db()["k1"]["Phone"] == "111"  # the conflict went to Salesforce
    assert h.sf_id("k2") == solo  # paired by Name: the record got the row's key, no copy
    assert len(list(h.org.store.scan("Account", include_deleted=False))) == 4

    h.sf_set("k1", Phone="112")
    h.db_set("k4", Name="Renamed In The Database")
    h.sql("INSERT INTO {t} VALUES ('k5', 'New Row', NULL, 5)")
    h.org.store.delete(h.sf_id("k3"))
    await h.sync()
    assert h.sf() == h.db()
    assert h.db()["k1"]["Phone"] == "112"
    assert h.sf()["k4"]["Name"] == "Renamed In The Database"
    assert "k5" in h.sf()
    assert "k3" not in h.db()


async def test_a_change_crosses_once_and_never_comes_back(twoway: TwoWay) -> None:
    h = twoway
    _insert_sf(h, "k1", "Acme", "111", 1)
    h.sql("INSERT INTO {t} VALUES ('k2', 'Beta', '222', 2)")
    await h.sync()
    h.sf_set("k1", Phone="112")
    h.db_set("k2", Phone="223")
    db_writes, sf_writes = h.our_db_writes(), h.sf_writes()
    sync = await h.sync()
    assert h.our_db_writes() == db_writes + 1  # k1's phone, once
    assert h.sf_writes() == sf_writes + 1  # k2's phone
    assert sync.echoes == 0
    echoes = 0
    for _ in range(3):  # the writes come back as changes of both sides: nothing is written
        sync = await h.sync()
        echoes += sync.echoes
        assert h.our_db_writes() == db_writes + 1
        assert h.sf_writes() == sf_writes + 1
    # Our database write came back marked with our origin and was dropped unread; our
    # Salesforce write came back through polling (no origin there) and equalled its shadow.
    assert echoes == 1
    assert h.sf() == h.db()


POLICIES = [
    # (conflicts config, expected Name, expected Phone, expected Score__c); Salesforce sets
    # Name and Phone, the database Name and Score__c, the database committing later.
    ("policy: salesforce_wins", "SF Name", "SF Phone", Decimal(7)),
    ("policy: external_wins", "DB Name", "SF Phone", Decimal(7)),
    ("policy: newest_wins", "DB Name", "SF Phone", Decimal(7)),
    (
        "policy: field_ownership\ndefault_owner: external\nowners: {Name: salesforce}",
        "SF Name",
        "SF Phone",
        Decimal(7),
    ),
    ("policy: external_wins\nfields: {Name: salesforce_wins}", "SF Name", "SF Phone", Decimal(7)),
]


@pytest.mark.parametrize(("conflicts", "name", "phone", "score"), POLICIES)
async def test_concurrent_edits_converge_as_the_policy_says(
    twoway: TwoWay, conflicts: str, name: str, phone: str, score: Decimal
) -> None:
    h = twoway
    _insert_sf(h, "k1", "Base", "000", 1)
    await h.sync(conflicts)
    h.sf_set("k1", Name="SF Name", Phone="SF Phone")
    # Both sides stamp commits to the millisecond and a tie goes to Salesforce: without this
    # pause a fast machine can commit both edits in one millisecond, and ``newest_wins`` then
    # rightly picks Salesforce's Name instead of the later database's.
    await anyio.sleep(0.005)
    h.db_set("k1", Name="DB Name", Score__c=7)
    await h.sync(conflicts)
    assert h.sf() == h.db()
    assert h.db()["k1"] == {"Name": name, "Phone": phone, "Score__c": score}


async def test_manual_parks_the_record_until_a_person_resolves_it(twoway: TwoWay) -> None:
    h = twoway
    _insert_sf(h, "k1", "Base", "000", 1)
    await h.sync("policy: manual")
    h.sf_set("k1", Name="SF Name", Phone="SF Phone")
    h.db_set("k1", Name="DB Name")
    await h.sync("policy: manual")
    assert h.sf()["k1"]["Name"] == "SF Name"
    assert h.db()["k1"]["Name"] == "DB Name"
    assert h.db()["k1"]["Phone"] == "000"  # nothing of a parked record is half-applied
    assert h.log_status("k1")[-1][0] == "conflict"
    config = load(h.config("policy: manual"))
    stores = await open_state(config.state.url)
    try:
        [parked] = await stores.conflicts.list("accounts", ReviewState.OPEN)
    finally:
        await stores.aclose()
    assert parked.fields == ("Name",)
    assert parked.id is not None
    await resolve_conflict(config, parked.id, take=Side.EXTERNAL, values={}, by="test")
    await h.sync("policy: manual")
    assert h.sf() == h.db()
    assert h.db()["k1"] == {"Name": "DB Name", "Phone": "SF Phone", "Score__c": Decimal(1)}
    stores = await open_state(config.state.url)
    try:
        done = await stores.conflicts.get(parked.id)
    finally:
        await stores.aclose()
    assert done is not None
    assert done.applied_at is not None


async def test_thousands_of_interleaved_edits_with_faults_converge_by_policy(
    twoway: TwoWay,
) -> None:
    """Rounds of random edits on both sides (the same and different fields of the same and
    different records, creates on both sides), a pass after each round with the fault plan
    on; after every pass both sides equal what the policy says: Phone is owned by the
    database (external_wins), every other field by Salesforce (salesforce_wins)."""
    h = twoway
    conflicts = "policy: salesforce_wins\nfields: {Phone: external_wins}"
    rand = random.Random(7)
    for i in range(20):
        _insert_sf(h, f"s{i}", f"Record {i}", f"{i}", i)
    await h.sync(conflicts)
    expected = h.db()
    assert expected == h.sf()
    h.org.faults.replace(
        [
            parse_rule_spec("* /services/data/* 503=0.05"),
            parse_rule_spec("PATCH /services/data/* unable_to_lock_row=0.05"),
        ],
        seed=3,
    )
    edits = retries = 0
    fields = {
        "Name": lambda: f"n{rand.randrange(10**6)}",
        "Phone": lambda: f"p{rand.randrange(10**6)}",
    }
    for round_ in range(40):
        sf_changes: dict[str, dict[str, object]] = {}
        db_changes: dict[str, dict[str, object]] = {}
        keys = sorted(expected)
        for _ in range(60):
            key = rand.choice(keys)
            field = rand.choice(sorted(fields))
            value = fields[field]()
            side = sf_changes if rand.random() < 0.5 else db_changes
            side.setdefault(key, {})[field] = value
            edits += 1
        for key, values in sf_changes.items():
            h.sf_set(key, **values)
        for key, values in db_changes.items():
            h.db_set(key, **values)
        new_sf, new_db = f"cs{round_}", f"cd{round_}"
        _insert_sf(h, new_sf, f"Created {round_}", None, round_)
        h.sql(f"INSERT INTO {{t}} VALUES ('{new_db}', 'Row {round_}', 'x', {round_})")
        edits += 2
        for key in set(sf_changes) | set(db_changes):
            record = dict(expected[key])
            for field in ("Name", "Phone"):
                sf_v, db_v = sf_changes.get(key, {}).get(field), db_changes.get(key, {}).get(field)
                if sf_v is not None and db_v is not None:
                    record[field] = db_v if field == "Phone" else sf_v
                elif sf_v is not None or db_v is not None:
                    record[field] = sf_v if sf_v is not None else db_v
            expected[key] = record
        expected[new_sf] = {"Name": f"Created {round_}", "Phone": None, "Score__c": Decimal(round_)}
        expected[new_db] = {"Name": f"Row {round_}", "Phone": "x", "Score__c": Decimal(round_)}
        retries += (await h.sync(conflicts)).status().counters.retries
        assert h.sf() == expected, f"round {round_}"
        assert h.db() == expected, f"round {round_}"
    assert edits >= 2000
    assert retries > 0  # the faults happened and were absorbed


async def test_real_time_both_ways_drops_our_own_echoes_by_origin(twoway: TwoWay) -> None:
    """mode: realtime follows Change Data Capture and the change log at once; our Salesforce
    writes come back with our client id in changeOrigin, our database writes with our origin:
    both are dropped unread, and a change crosses exactly once."""
    h = twoway
    _insert_sf(h, "k1", "Acme", "111", 1)
    h.sql("INSERT INTO {t} VALUES ('k2', 'Beta', '222', 2)")
    config = load(h.config(mode="realtime"))
    runtime = await build_runtime(config, default_registry(), once=False)
    async with runtime:
        sync = runtime.pipelines[0]
        assert isinstance(sync, TwoWaySync)
        async with anyio.create_task_group() as tg:
            tg.start_soon(sync.run)
            await _until(lambda: h.sf() == h.db() and len(h.db()) == 2)
            await anyio.sleep(1.0)  # let the first run's own writes come back
            before_db, before_sf = h.our_db_writes(), h.sf_writes()
            echoes = sync.echoes
            h.sf_set("k1", Phone="112")
            await _until(lambda: h.db()["k1"]["Phone"] == "112")
            h.db_set("k2", Name="Beta Renamed")
            await _until(lambda: h.sf()["k2"]["Name"] == "Beta Renamed")
            await _until(lambda: sync.echoes >= echoes + 2)
            await anyio.sleep(1.0)  # nothing more may happen
            sync.request_stop()
    assert sync.status().state is PipelineState.STOPPED, sync.status().last_error
    assert h.our_db_writes() == before_db + 1
    assert h.sf_writes() == before_sf + 2  # the test's own edit and ours
    assert h.sf() == h.db()


async def _until(check: Callable[[], bool], seconds: float = 20.0) -> None:
    with anyio.fail_after(seconds):
        while True:
            try:
                if await anyio.to_thread.run_sync(check):
                    return
            except KeyError:
                pass
            await anyio.sleep(0.05)


async def test_a_change_salesforce_refuses_is_marked_on_the_change_log_and_dead_lettered(
    twoway: TwoWay,
) -> None:
    h = twoway
    _insert_sf(h, "k1", "Acme", "111", 1)
    await h.sync()
    h.db_set("k1", Score__c=-5)  # the org's validation rule refuses negative scores
    h.db_set("k1", Phone="112")  # a later change of the same record: refused with it
    await h.sync()
    assert h.sf()["k1"]["Score__c"] == Decimal(1)
    statuses = h.log_status("k1")
    assert [s for s, _ in statuses][-2:] == ["rejected", "rejected"]
    assert "Score cannot be negative" in str(statuses[-1][1])
    config = load(h.config())
    stores = await open_state(config.state.url)
    try:
        [letter] = await stores.dead_letters.list("accounts")
    finally:
        await stores.aclose()
    assert "Score cannot be negative" in letter.message
    h.db_set("k1", Score__c=5)  # fixed: the record is decided again and crosses
    await h.sync()
    assert h.sf() == h.db()
    assert h.db()["k1"] == {"Name": "Acme", "Phone": "112", "Score__c": Decimal(5)}
    assert h.log_status("k1")[-1] == ("applied", None)


class EditsWhileDeciding:
    """The database side, with a person's edit landing right after the sync read a record
    (between its read and its write): the race a real deployment has, made certain."""

    def __init__(self, inner: Any, edit: Callable[[], None]) -> None:
        self.inner = inner
        self.edit: Callable[[], None] | None = edit

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def lookup(self, entity: str, field: str, values: Any) -> list[dict[str, object]]:
        rows: list[dict[str, object]] = await self.inner.lookup(entity, field, values)
        if self.edit is not None:
            edit, self.edit = self.edit, None
            await anyio.to_thread.run_sync(edit)
        return rows


async def test_an_edit_made_while_the_sync_decides_is_never_overwritten(twoway: TwoWay) -> None:
    h = twoway
    conflicts = "policy: external_wins"
    _insert_sf(h, "k1", "Acme", "111", 1)
    await h.sync(conflicts)
    h.sf_set("k1", Phone="112")
    config = load(h.config(conflicts))
    runtime = await build_runtime(config, default_registry(), once=True)
    async with runtime:
        built = runtime.pipelines[0]
        assert isinstance(built, TwoWaySync)
        racing = TwoWaySync(
            options=built.options,
            salesforce=built.salesforce,
            salesforce_sink=built.salesforce_sink,
            external=EditsWhileDeciding(
                built.external, lambda: h.db_set("k1", Phone="edited meanwhile")
            ),
            shadows=built.shadows,
            conflicts=built.conflicts,
            checkpoints=built.checkpoints,
            dead_letters=built.dead_letters,
            clock=built.clock,
        )
        status = await racing.run()
    assert status.state is PipelineState.STOPPED, status.last_error
    # Read before the edit, Salesforce's 112 was about to go to the database: it was not
    # written over the edit, and nothing went to Salesforce either.
    assert h.db()["k1"]["Phone"] == "edited meanwhile"
    assert h.sf()["k1"]["Phone"] == "112"
    await h.sync(conflicts)  # the edit is read: both changed Phone, external_wins
    assert h.sf() == h.db()
    assert h.db()["k1"]["Phone"] == "edited meanwhile"


async def test_a_key_changed_in_salesforce_moves_the_row_to_the_new_key(twoway: TwoWay) -> None:
    h = twoway
    _insert_sf(h, "k1", "Acme", "111", 1)
    await h.sync()
    h.sf_set("k1", Ext_Id__c="k1-renamed")
    await h.sync()
    assert set(h.db()) == {"k1-renamed"}
    assert h.sf() == h.db()


class LosesItsChangeLog:
    """The database side, whose change log becomes unreadable for good once followed."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def changes(self, resume: Any) -> Any:
        raise FatalError("the change log is gone", hint="install capture again")
        yield  # an async generator, like the real one


async def test_a_real_time_sync_whose_side_fails_for_good_ends_failed_with_the_reason(
    twoway: TwoWay,
) -> None:
    h = twoway
    _insert_sf(h, "k1", "Acme", "111", 1)
    config = load(h.config(mode="realtime"))
    runtime = await build_runtime(config, default_registry(), once=False)
    async with runtime:
        built = runtime.pipelines[0]
        assert isinstance(built, TwoWaySync)
        failing = TwoWaySync(
            options=built.options,
            salesforce=built.salesforce,
            salesforce_sink=built.salesforce_sink,
            external=LosesItsChangeLog(built.external),
            shadows=built.shadows,
            conflicts=built.conflicts,
            checkpoints=built.checkpoints,
            dead_letters=built.dead_letters,
            clock=built.clock,
        )
        with anyio.fail_after(30):
            status = await failing.run()
    assert status.state is PipelineState.FAILED
    assert "the change log is gone" in str(status.last_error)
    assert h.db()["k1"]["Name"] == "Acme"  # the first run was done before the stream failed


async def test_a_table_polled_by_updated_at_syncs_both_ways_without_echoes(polled: TwoWay) -> None:
    """No triggers allowed: the table is read by its updated_at column, our writes are not
    marked (there is no change log) and come back only if the table stamps them, equal to
    their shadow."""
    h = polled
    _insert_sf(h, "k1", "Acme", "111", 1)
    h.sql("INSERT INTO {t} VALUES ('k2', 'Beta', '222', 2, CURRENT_TIMESTAMP)")
    await h.sync()
    assert h.sf() == h.db()
    assert set(h.db()) == {"k1", "k2"}
    h.sql("UPDATE {t} SET phone = '223', updated_at = CURRENT_TIMESTAMP WHERE ext_id__c = 'k2'")
    h.sf_set("k1", Name="Acme AG")
    await anyio.sleep(1.1)  # past the second of the rows it stamped
    await h.sync()
    assert h.sf()["k2"]["Phone"] == "223"
    assert h.db()["k1"]["Name"] == "Acme AG"
    before = h.sf_writes()
    await anyio.sleep(1.1)
    await h.sync()
    assert h.sf_writes() == before  # nothing went back and forth
    assert h.sf() == h.db()


async def test_rapid_updates_then_a_delete_never_bring_the_record_back(twoway: TwoWay) -> None:
    """Heroku Connect's "rapid multiple updates" trouble: values flip-flop and deleted rows
    reappear under last-writer-wins. Decided on current state, the last state wins and stays."""
    h = twoway
    _insert_sf(h, "k1", "Acme", "111", 1)
    _insert_sf(h, "k2", "Beta", "222", 2)
    await h.sync()
    for phone in ("a", "b", "c"):
        h.db_set("k1", Phone=phone)
    h.sql("DELETE FROM {t} WHERE ext_id__c = 'k1'")
    for name in ("x", "y", "z"):
        h.sf_set("k2", Name=name)
    h.org.store.delete(h.sf_id("k2"))
    for _ in range(3):
        await h.sync()
        assert set(h.sf()) == set(h.db()) == set()
