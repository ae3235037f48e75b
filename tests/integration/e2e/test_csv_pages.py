"""A Bulk snapshot into the real PostgreSQL loaded as CSV pages (``COPY`` of the page as it is)
against the same snapshot applied record by record: the tables must be equal, value by value.

The emulator serves over a real socket; the source reads Contacts and Opportunities through
Bulk API 2.0 in Id ranges (several jobs and pages), with values that CSV makes tricky: quotes,
commas, line breaks, non-ASCII text, empty text, nulls of every type, dates, booleans,
decimals and percentages.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import psycopg
import pytest

from sfsync.connectors.salesforce.auth import JwtBearer
from sfsync.connectors.salesforce.client import SalesforceClient
from sfsync.connectors.salesforce.source import ObjectSelection, SalesforceSource
from sfsync.connectors.sql.config import PostgresConnection
from sfsync.connectors.sql.sink import SqlSink
from sfsync.core.retry import RetryPolicy
from sfsync.core.state import PipelineState
from sfsync.emulator.clock import OrgClock
from sfsync.emulator.faults import parse_rule_spec
from sfsync.emulator.org import Org
from sfsync.emulator.server import serve_in_background
from sfsync.runtime import Pipeline, PipelineOptions
from sfsync.runtime.status import PipelineStatus
from sfsync.testing import FakeClock, MemoryCheckpointStore, MemoryDeadLetterStore

TOKEN = "00D000000000001!csv-pages-token"
CONTACT = (
    "Id",
    "FirstName",
    "LastName",
    "Email",
    "Birthdate",
    "HasOptedOutOfEmail",
    "DoNotCall",
    "Description",
    "AccountId",
    "CreatedDate",
    "SystemModstamp",
    "IsDeleted",
)
OPPORTUNITY = (
    "Id",
    "Name",
    "StageName",
    "Amount",
    "Probability",
    "CloseDate",
    "TotalOpportunityQuantity",
    "IsClosed",
    "NextStep",
    "SystemModstamp",
)
TRICKY = [
    'He said "no", then left',
    "line one\nline two\n",
    "comma, semicolon; tab\there",
    "Ünïcödé — 東京 ✓",
    "",
    None,
    '"',
    'trailing quote at line end"\nand more',
]


@pytest.fixture
def org() -> Iterator[Org]:
    org = Org.create(
        access_token=TOKEN, clock=OrgClock(frozen_at=datetime(2026, 5, 1, 12, tzinfo=UTC))
    )
    accounts = org.store.bulk_insert("Account", [{"Name": f"Acme {i}"} for i in range(20)])
    contacts = org.store.bulk_insert(
        "Contact",
        [
            {
                "FirstName": None if i % 11 == 0 else f"First{i}",
                "LastName": f"Last {i}",
                "Email": None if i % 3 == 0 else f"c{i}@example.com",
                "Birthdate": None if i % 5 == 0 else (date(1970, 1, 1) + timedelta(days=i * 37)),
                "HasOptedOutOfEmail": i % 2 == 0,
                "DoNotCall": i % 7 == 0,
                "Description": TRICKY[i % len(TRICKY)],
                "AccountId": accounts[i % len(accounts)] if i % 4 else None,
            }
            for i in range(900)
        ],
    )
    deals = org.store.bulk_insert(
        "Opportunity",
        [
            {
                "Name": f"Deal {i}",
                "StageName": "Closed Won" if i % 5 == 0 else "Prospecting",
                "Amount": None if i % 6 == 0 else round(i * 1234.57, 2),
                "Probability": i % 101,
                "CloseDate": date(2026, 1, 1) + timedelta(days=i % 300),
                "TotalOpportunityQuantity": None if i % 4 == 0 else i / 8,
                "NextStep": TRICKY[(i + 3) % len(TRICKY)],
                "AccountId": accounts[i % len(accounts)],
            }
            for i in range(700)
        ],
    )
    # A later change of each object moves its polling cursor past the overlap window of the
    # seeded records: the poll after the snapshot reads only these two again (over REST), so
    # the tables hold what the snapshot wrote.
    org.clock.advance(120)
    org.store.update("Contact", contacts[0], {"LastName": "Changed"})
    org.store.update("Opportunity", deals[0], {"Name": "Changed"})
    yield org
    org.close()


@pytest.fixture
def schemas(postgres_url: str) -> Iterator[list[str]]:
    names = [f"sfsync_pages_{uuid.uuid4().hex[:8]}" for _ in range(2)]
    yield names
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        for name in names:
            conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


async def _snapshot(
    org: Org, url: str, postgres_url: str, schema: str, *, pages: bool, attempts: int = 5
) -> tuple[SqlSink, MemoryDeadLetterStore, PipelineStatus]:
    # JWT bearer: an expired session (a fault below) is renewed by logging in again.
    client = SalesforceClient(
        grant=JwtBearer(
            client_id=org.auth.app.client_id,
            username=org.auth.user.username,
            private_key=org.auth.app.private_key_pem.decode(),
            login_url=url,
            audience="https://login.salesforce.com",
        ),
        clock=FakeClock(org.clock.now()),
        api_version="62.0",
    )
    source = SalesforceSource(
        client,
        [
            ObjectSelection(name="Contact", fields=CONTACT),
            ObjectSelection(name="Opportunity", fields=OPPORTUNITY),
        ],
        bulk_threshold=100,
        chunk_records=250,
    )
    sink = SqlSink(
        PostgresConnection(type="postgres", url=postgres_url, schema=schema, load_csv_pages=pages)
    )
    dead = MemoryDeadLetterStore()
    pipeline = Pipeline(
        options=PipelineOptions(
            name=f"pages-{pages}",
            entities=("Contact", "Opportunity"),
            batch_size=200,
            seed=3,
            retry=RetryPolicy(max_attempts=attempts, base_delay=1.0, max_delay=30.0),
        ),
        source=source,
        sink=sink,
        checkpoints=MemoryCheckpointStore(),
        dead_letters=dead,
        clock=FakeClock(org.clock.now()),
    )
    status = await pipeline.run()
    assert status.state is PipelineState.STOPPED, status.last_error
    assert source.snapshot_api == {"Contact": "bulk", "Opportunity": "bulk"}
    return sink, dead, status


def _rows(postgres_url: str, schema: str, table: str) -> dict[str, tuple[object, ...]]:
    with psycopg.connect(postgres_url) as conn:
        names = [
            r[0]
            for r in conn.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = %s AND table_name = %s AND column_name <> %s "
                "ORDER BY column_name",
                (schema, table, "_sfsync_synced_at"),
            )
        ]
        cols = ", ".join(f'"{n}"' for n in names)
        rows = conn.execute(f'SELECT "Id", {cols} FROM "{schema}"."{table}"').fetchall()
        missing = conn.execute(
            f'SELECT count(*) FROM "{schema}"."{table}" WHERE _sfsync_synced_at IS NULL'
        ).fetchone()
    assert missing == (0,)  # the bookkeeping column fills itself on the COPY path too
    return {str(r[0]): tuple(r[1:]) for r in rows}


@pytest.mark.anyio
@pytest.mark.postgres
async def test_csv_pages_load_the_same_rows_as_record_by_record(
    org: Org, postgres_url: str, schemas: list[str]
) -> None:
    with serve_in_background(org, port=0) as server:
        paged, paged_dead, _ = await _snapshot(
            org, server.url, postgres_url, schemas[0], pages=True
        )
        plain, plain_dead, _ = await _snapshot(
            org, server.url, postgres_url, schemas[1], pages=False
        )
    assert paged.pages_loaded >= 6  # several Id ranges of both objects, each a page
    assert plain.pages_loaded == 0
    assert paged_dead.letters == []
    assert plain_dead.letters == []
    for table, count in (("contact", 900), ("opportunity", 700)):
        loaded = _rows(postgres_url, schemas[0], table)
        applied = _rows(postgres_url, schemas[1], table)
        assert len(loaded) == count
        assert loaded == applied
    contacts = _rows(postgres_url, schemas[0], "contact")
    descriptions = {row[3] for row in contacts.values()}  # columns sorted: Description 4th
    assert {"line one\nline two\n", 'He said "no", then left', "Ünïcödé — 東京 ✓"} <= descriptions


@pytest.mark.anyio
@pytest.mark.postgres
async def test_a_refused_page_is_applied_record_by_record_and_its_bad_record_dead_lettered(
    org: Org, postgres_url: str, schemas: list[str]
) -> None:
    # The table exists already, made by hand with a narrower Amount than Salesforce's: the sink
    # adopts it, so one record's value does not fit and PostgreSQL refuses its page.
    schema = schemas[0]
    big = org.store.insert(
        "Opportunity",
        {"Name": "Huge", "StageName": "Prospecting", "CloseDate": date(2026, 2, 1),
         "Amount": 12345678.9},
    )  # fmt: skip
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
        conn.execute(
            f'CREATE TABLE "{schema}".opportunity ("Id" varchar(18) PRIMARY KEY, "Name" text, '
            '"StageName" text, "Amount" numeric(8,2), "Probability" numeric, "CloseDate" date, '
            '"TotalOpportunityQuantity" float8, "IsClosed" boolean, "NextStep" text, '
            '"SystemModstamp" timestamptz, "_sfsync_synced_at" timestamptz)'
        )
    with serve_in_background(org, port=0) as server:
        sink, dead, _ = await _snapshot(org, server.url, postgres_url, schema, pages=True)
    rows = _rows(postgres_url, schema, "opportunity")
    assert len(rows) == 700  # every record but the one that does not fit
    assert big not in rows
    # Rejected by the snapshot, and again by the poll that follows it (the org's clock is
    # frozen: every record is inside the overlap window and read again).
    assert {(d.key, d.kind.value) for d in dead.letters} == {(big, "rejected")}
    assert "overflow" in dead.letters[0].message, dead.letters[0].message
    assert sink.pages_loaded >= 2  # the other pages (and all of Contact's) went as CSV


@pytest.mark.anyio
@pytest.mark.postgres
async def test_csv_pages_under_faults_converge_to_the_clean_load(
    org: Org, postgres_url: str, schemas: list[str]
) -> None:
    # 503s, query timeouts and 500s on the Bulk job polls and result downloads, and expired
    # sessions anywhere: each failed read is retried from the checkpoint (the last loaded
    # page's Id), so the resumed ranges start in a table that is no longer empty.
    with serve_in_background(org, port=0) as server:
        await _snapshot(org, server.url, postgres_url, schemas[1], pages=False)
        org.faults.replace(
            [
                parse_rule_spec("GET /services/data/*/jobs/query/* 503=0.08,500=0.04"),
                parse_rule_spec("GET /services/data/*/query* query_timeout=0.05"),
                parse_rule_spec("* /services/data/* invalid_session=0.03"),
            ],
            seed=17,
        )
        try:
            sink, dead, status = await _snapshot(
                org, server.url, postgres_url, schemas[0], pages=True, attempts=20
            )
        finally:
            org.faults.clear()
    assert status.counters.retries > 0  # faults happened and were absorbed
    assert dead.letters == []
    assert sink.pages_loaded >= 1
    for table in ("contact", "opportunity"):
        assert _rows(postgres_url, schemas[0], table) == _rows(postgres_url, schemas[1], table)
