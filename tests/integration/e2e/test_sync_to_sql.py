"""A configured sync from the emulator (real socket) into the real PostgreSQL and MariaDB,
through the CLI's own code path: load the YAML, build the runtime, run, change, resume."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pymysql
import pytest
from rich.console import Console

from sfsync.cli.run import exit_code, run_config
from sfsync.emulator.org import Org
from sfsync.emulator.server import serve_in_background

TOKEN = "00D000000000001!e2e-token"

CONFIG = """
version: 1
state:
  url: {state_url}
connections:
  crm:
    type: salesforce
    instance_url: {url}
    login_url: {url}
    client_name: sfsync-e2e
    auth: {{flow: access_token, access_token: "{token}"}}
  warehouse:
{warehouse}
syncs:
  - name: accounts
    source: crm
    target: warehouse
    mode: polling
    interval: 1s
    objects:
      - name: Account
        fields: [Id, Name, Industry, AnnualRevenue, NumberOfEmployees, SystemModstamp]
        deletes: soft
      - name: Contact
        fields: [Id, FirstName, LastName, Email, AccountId, SystemModstamp]
        where: Email != null
        deletes: hard
"""


class Target:
    """One database under test: its connection section and a way to read it back."""

    def __init__(self, kind: str, url: str, name: str) -> None:
        self.kind = kind
        self.url = url
        self.name = name

    def section(self) -> str:
        if self.kind == "postgres":
            return f"    type: postgres\n    url: {self.url}\n    schema: {self.name}"
        base = self.url.replace("mysql+pymysql://", "mysql://").rsplit("/", 1)[0]
        return f"    type: mariadb\n    url: {base}/{self.name}"

    def q(self, ident: str) -> str:
        return f'"{ident}"' if self.kind == "postgres" else f"`{ident}`"

    def table(self, name: str) -> str:
        return f'"{self.name}".{name}' if self.kind == "postgres" else f"`{self.name}`.{name}"

    def fetch(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        if self.kind == "postgres":
            with psycopg.connect(self.url) as conn:
                return list(conn.execute(sql.replace("?", "%s"), params).fetchall())
        conn = pymysql.connect(host="127.0.0.1", port=3306, user="root", database=self.name)
        try:
            with conn.cursor() as cur:
                cur.execute(sql.replace("?", "%s"), params)
                return list(cur.fetchall())
        finally:
            conn.close()


@pytest.fixture(params=["postgres", "mariadb"])
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    name = f"sfsync_e2e_{uuid.uuid4().hex[:8]}"
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_url")
        yield Target("postgres", url, name)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        return
    url = request.getfixturevalue("mariadb_url")
    admin = pymysql.connect(host="127.0.0.1", port=3306, user="root", autocommit=True)
    try:
        with admin.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{name}`")
        yield Target("mariadb", url, name)
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
    finally:
        admin.close()


@pytest.mark.anyio
@pytest.mark.postgres
@pytest.mark.mariadb
async def test_emulator_to_sql_then_changes_then_resume(tmp_path: Path, target: Target) -> None:
    org = Org.create(access_token=TOKEN)
    accounts = org.store.bulk_insert(
        "Account",
        [
            {
                "Name": f"Acme {i}",
                "Industry": "Energy",
                "AnnualRevenue": i * 1000,
                "NumberOfEmployees": i,
            }
            for i in range(1, 301)
        ],
    )
    for i, account in enumerate(accounts[:50]):
        org.store.insert(
            "Contact",
            {
                "LastName": f"Doe {i}",
                "Email": f"c{i}@example.com" if i % 5 else None,
                "AccountId": account,
            },
        )
    # A later change moves the polling cursor past the overlap window of the seeded rows, so
    # the second run's read count shows that it resumed rather than read everything again.
    org.clock.advance(120)
    org.store.update("Account", accounts[-1], {"Industry": "Banking"})
    console = Console(record=True, width=120)
    q = target.q
    try:
        with serve_in_background(org, port=0) as server:
            config = tmp_path / "sync.yaml"
            config.write_text(
                CONFIG.format(
                    state_url=f"sqlite:///{tmp_path}/state.sqlite",
                    url=server.url,
                    token=TOKEN,
                    warehouse=target.section(),
                )
            )
            statuses = await run_config(config, once=True, console=console)
            assert exit_code(statuses) == 0, console.export_text()

            rows = dict(
                target.fetch(f"SELECT {q('Id')}, {q('Name')} FROM {target.table('account')}")
            )
            assert rows == {a: f"Acme {i}" for i, a in enumerate(accounts, start=1)}
            contacts = target.fetch(f"SELECT count(*) FROM {target.table('contact')}")
            assert contacts[0][0] == 40  # the filter keeps contacts with an email
            revenue = target.fetch(
                f"SELECT {q('AnnualRevenue')} FROM {target.table('account')} WHERE {q('Id')} = ?",
                (accounts[2],),
            )
            assert float(revenue[0][0]) == 3000.0

            org.clock.advance(2)
            org.store.update("Account", accounts[0], {"Name": "Renamed"})
            org.store.delete(accounts[1])
            contact_ids = [str(r["Id"]) for r in org.store.scan("Contact", include_deleted=False)]
            org.store.update("Contact", contact_ids[1], {"Email": None})  # leaves the filter
            statuses = await run_config(config, once=True, console=console)
            assert exit_code(statuses) == 0, console.export_text()
            # Resumed from the checkpoint: the account changes (and the contacts, whose cursor
            # still sits within the overlap window of their insert) are read, not all 350 again.
            assert statuses[0].counters.read <= 60, statuses[0].counters

            account = target.table("account")
            name = target.fetch(
                f"SELECT {q('Name')} FROM {account} WHERE {q('Id')} = ?", (accounts[0],)
            )
            assert name == [("Renamed",)]
            deleted = target.fetch(
                f"SELECT {q('_sfsync_deleted')} FROM {account} WHERE {q('Id')} = ?", (accounts[1],)
            )
            assert bool(deleted[0][0]) is True
            gone = target.fetch(
                f"SELECT count(*) FROM {target.table('contact')} WHERE {q('Id')} = ?",
                (contact_ids[1],),
            )
            assert gone[0][0] == 0
    finally:
        org.close()


@pytest.mark.anyio
@pytest.mark.postgres
@pytest.mark.mariadb
async def test_a_mass_update_is_polled_through_bulk_and_applied_exactly(
    tmp_path: Path, target: Target, caplog: pytest.LogCaptureFixture
) -> None:
    """2,600 accounts changed at once: the poll's first REST page holds 2,000 of them, the
    rest come from one Bulk API 2.0 queryAll job (``poll_bulk_threshold: 100``), deletes and
    undeletes among them; the target then equals the org value by value."""
    org = Org.create(access_token=TOKEN)
    accounts = org.store.bulk_insert(
        "Account",
        [{"Name": f"Acme {i}", "AnnualRevenue": i, "NumberOfEmployees": i} for i in range(2600)],
    )
    q = target.q
    try:
        with serve_in_background(org, port=0) as server:
            config = tmp_path / "sync.yaml"
            text = CONFIG.format(
                state_url=f"sqlite:///{tmp_path}/state.sqlite",
                url=server.url,
                token=TOKEN,
                warehouse=target.section(),
            ).replace(
                "    client_name: sfsync-e2e\n",
                "    client_name: sfsync-e2e\n    source: {poll_bulk_threshold: 100}\n",
            )
            config.write_text(text)
            console = Console(record=True, width=120)
            statuses = await run_config(config, once=True, console=console)
            assert exit_code(statuses) == 0, console.export_text()

            org.clock.advance(120)  # past the overlap window of the snapshot
            with org.store.transaction():
                for i, account in enumerate(accounts):
                    org.store.update(
                        "Account", account, {"Name": f"Mass {i}", "AnnualRevenue": i * 10}
                    )
            for account in accounts[1000:1005]:
                org.store.delete(account)
            org.store.undelete(accounts[1000])
            caplog.clear()
            with caplog.at_level("INFO", logger="sfsync.salesforce"):
                statuses = await run_config(config, once=True, console=console)
            assert exit_code(statuses) == 0, console.export_text()
            assert "read them through Bulk API 2.0" in caplog.text

            rows = target.fetch(
                f"SELECT {q('Id')}, {q('Name')}, {q('AnnualRevenue')}, {q('_sfsync_deleted')} "
                f"FROM {target.table('account')}"
            )
            got = {r[0]: (r[1], float(r[2]), bool(r[3])) for r in rows}
            live = {str(r["Id"]) for r in org.store.scan("Account", include_deleted=False)}
            # A soft delete keeps the values the row had (docs/sql-sink.md): the four records
            # deleted after the mass update keep their snapshot values, flagged.
            expected = {
                a: (f"Mass {i}", float(i * 10), False)
                if a in live
                else (f"Acme {i}", float(i), True)
                for i, a in enumerate(accounts)
            }
            assert got == expected
            assert len(live) == 2596
    finally:
        org.close()
