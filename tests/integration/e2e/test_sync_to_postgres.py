"""A configured sync from the emulator (real socket) into the real PostgreSQL, through the CLI's
own code path: load the YAML, build the runtime, run, stop, resume."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
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
    type: postgres
    url: {pg_url}
    schema: {schema}
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


@pytest.fixture
def schema(postgres_url: str) -> Iterator[str]:
    name = f"sfsync_e2e_{uuid.uuid4().hex[:8]}"
    yield name
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


@pytest.mark.anyio
@pytest.mark.postgres
async def test_emulator_to_postgres_then_changes_then_resume(
    tmp_path: Path, postgres_url: str, schema: str
) -> None:
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
    try:
        with serve_in_background(org, port=0) as server:
            config = tmp_path / "sync.yaml"
            config.write_text(
                CONFIG.format(
                    state_url=f"sqlite:///{tmp_path}/state.sqlite",
                    url=server.url,
                    token=TOKEN,
                    pg_url=postgres_url,
                    schema=schema,
                )
            )
            statuses = await run_config(config, once=True, console=console)
            assert exit_code(statuses) == 0, console.export_text()

            with psycopg.connect(postgres_url) as conn:
                rows = dict(conn.execute(f'SELECT "Id", "Name" FROM "{schema}".account').fetchall())
                assert rows == {a: f"Acme {i}" for i, a in enumerate(accounts, start=1)}
                contacts = conn.execute(f'SELECT count(*) FROM "{schema}".contact').fetchone()
                assert contacts is not None
                assert contacts[0] == 40  # the filter keeps contacts with an email
                revenue = conn.execute(
                    f'SELECT "AnnualRevenue" FROM "{schema}".account WHERE "Id" = %s',
                    (accounts[2],),
                ).fetchone()
                assert revenue is not None
                assert float(revenue[0]) == 3000.0

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

            with psycopg.connect(postgres_url) as conn:
                name = conn.execute(
                    f'SELECT "Name" FROM "{schema}".account WHERE "Id" = %s', (accounts[0],)
                ).fetchone()
                assert name == ("Renamed",)
                deleted = conn.execute(
                    f'SELECT "_sfsync_deleted" FROM "{schema}".account WHERE "Id" = %s',
                    (accounts[1],),
                ).fetchone()
                assert deleted == (True,)
                gone = conn.execute(
                    f'SELECT count(*) FROM "{schema}".contact WHERE "Id" = %s', (contact_ids[1],)
                ).fetchone()
                assert gone == (0,)
    finally:
        org.close()
