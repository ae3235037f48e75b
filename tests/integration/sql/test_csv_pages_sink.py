"""The PostgreSQL sink loading CSV pages (``Batch.of_page``) against the real PostgreSQL: when it
COPYs a page as it is, and how it falls back to the page's events without losing anything."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import AsyncIterator, Iterator

import psycopg
import pytest

from sfsync.connectors.sql.config import PostgresConnection
from sfsync.connectors.sql.sink import SqlSink
from sfsync.core.events import Batch, ChangeEvent, Operation, PageEvents, Position, RecordPage
from sfsync.core.schema import EntitySchema, FieldKind, FieldSpec
from sfsync.spi.sink import OutcomeKind, SinkContext
from sfsync.testing import FakeClock

from .helpers import T0

SCHEMA = EntitySchema.of(
    "Account",
    "Id",
    [
        FieldSpec(name="Id", kind=FieldKind.ID, length=18),
        FieldSpec(name="Name", kind=FieldKind.STRING, length=20),
        FieldSpec(name="Amount", kind=FieldKind.DECIMAL, precision=10, scale=2),
        FieldSpec(name="Active", kind=FieldKind.BOOLEAN),
        FieldSpec(name="Born", kind=FieldKind.DATE),
        FieldSpec(name="SystemModstamp", kind=FieldKind.DATETIME),
    ],
    version_field="SystemModstamp",
)
WIRE_STAMP = "2026-01-01T00:00:{:02d}.000Z"  # SystemModstamp as Bulk CSV writes it


def _page(rows: list[dict[str, str]], columns: tuple[str, ...] | None = None) -> Batch:
    """A page of ``rows`` (wire text; "" a null) and the READ events a source parses from it."""
    columns = columns or tuple(rows[0])
    text = io.StringIO()
    writer = csv.writer(text, quoting=csv.QUOTE_ALL, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([[row.get(c, "") for c in columns] for row in rows])
    events = [
        ChangeEvent(
            entity="Account",
            key=row["Id"],
            op=Operation.READ,
            after={
                "Id": row["Id"],
                "Name": row["Name"] or None,
                "Amount": float(row["Amount"]) if row["Amount"] else None,
                "Active": row["Active"] == "true",
                "Born": row["Born"] or None,
                "SystemModstamp": row["SystemModstamp"],
            },
            position=Position("snapshot:Account", row["Id"]),
            committed_at=T0,
            version=row["SystemModstamp"],
        )
        for row in rows
    ]
    return Batch.of_page(
        RecordPage(
            entity="Account",
            columns=columns,
            csv=text.getvalue().encode(),
            count=len(rows),
            position=events[-1].position,
            parse=lambda: events,
        )
    )


def _row(key: str, n: int, **values: str) -> dict[str, str]:
    base = {
        "Id": key,
        "Name": f"n{n}",
        "Amount": f"{n}.5",
        "Active": "true",
        "Born": "1990-05-17",
        "SystemModstamp": WIRE_STAMP.format(n),
    }
    return base | values


@pytest.fixture
def pg(postgres_url: str) -> Iterator[tuple[str, str]]:
    schema = f"sfsync_pages_{uuid.uuid4().hex[:8]}"
    yield postgres_url, schema
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
async def sink(pg: tuple[str, str]) -> AsyncIterator[SqlSink]:
    url, schema = pg
    sink = SqlSink(PostgresConnection(type="postgres", url=url, schema=schema))
    await sink.open(SinkContext(sync_name="pages", clock=FakeClock()))
    await sink.prepare(SCHEMA)
    yield sink
    await sink.aclose()


def _table(pg: tuple[str, str]) -> dict[str, tuple[object, ...]]:
    url, schema = pg
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            f'SELECT "Id", "Name", "Amount"::text, "Active", "Born"::text, '
            f'"SystemModstamp", "_sfsync_synced_at" IS NOT NULL FROM "{schema}".account'
        ).fetchall()
    return {str(r[0]): tuple(r[1:]) for r in rows}


@pytest.mark.anyio
@pytest.mark.postgres
async def test_a_page_into_an_empty_table_is_copied_as_it_is(
    sink: SqlSink, pg: tuple[str, str]
) -> None:
    batch = _page([_row("a1", 1), _row("a2", 2, Name="", Amount="", Born=""), _row("a3", 3)])
    outcomes = await sink.write(batch)
    await sink.flush(None)
    assert [o.kind for o in outcomes] == [OutcomeKind.APPLIED] * 3
    assert sink.pages_loaded == 1
    assert isinstance(batch.events, PageEvents)
    assert not batch.events.parsed  # loaded from its text alone
    rows = _table(pg)
    assert rows["a1"][:4] == ("n1", "1.50", True, "1990-05-17")
    assert rows["a2"][:4] == (None, None, True, None)  # empty cells are nulls
    assert rows["a3"][5] is True  # _sfsync_synced_at filled by its default


@pytest.mark.anyio
@pytest.mark.postgres
async def test_a_page_holding_a_stored_key_falls_back_to_the_guarded_events(
    sink: SqlSink, pg: tuple[str, str]
) -> None:
    await sink.write(_page([_row("a1", 1), _row("a2", 2)]))
    await sink.flush(None)
    url, schema = pg
    with psycopg.connect(url, autocommit=True) as conn:  # another writer, with a newer version
        conn.execute(
            f'INSERT INTO "{schema}".account ("Id", "Name", "SystemModstamp") VALUES (%s, %s, %s)',
            ("a4", "newer", "2026-01-01T00:00:09Z"),
        )
    batch = _page([_row("a3", 3), _row("a4", 4)])
    outcomes = await sink.write(batch)
    await sink.flush(None)
    # The primary key refused the COPY; the events were applied under the version guard.
    assert [o.kind for o in outcomes] == [OutcomeKind.APPLIED, OutcomeKind.STALE]
    assert sink.pages_loaded == 1
    rows = _table(pg)
    assert sorted(rows) == ["a1", "a2", "a3", "a4"]
    assert rows["a4"][0] == "newer"
    # Once a page went the guarded way, the next is not tried as a COPY into a fresh table.
    await sink.write(_page([_row("a5", 5)]))
    assert sink.pages_loaded == 1


@pytest.mark.anyio
@pytest.mark.postgres
async def test_a_value_the_column_refuses_sends_the_page_through_its_events(
    sink: SqlSink, pg: tuple[str, str]
) -> None:
    long = "x" * 30  # Name is varchar(20)
    outcomes = await sink.write(_page([_row("a1", 1), _row("a2", 2, Name=long), _row("a3", 3)]))
    await sink.flush(None)
    assert [o.kind for o in outcomes] == [
        OutcomeKind.APPLIED,
        OutcomeKind.REJECTED,
        OutcomeKind.APPLIED,
    ]
    assert outcomes[1].error is not None
    assert sink.pages_loaded == 0
    assert sorted(_table(pg)) == ["a1", "a3"]


@pytest.mark.anyio
@pytest.mark.postgres
async def test_pages_the_table_cannot_take_as_text_are_applied_through_their_events(
    sink: SqlSink, pg: tuple[str, str]
) -> None:
    # A column the table does not have (an unknown field), and a page without the version.
    unknown = _page([_row("a1", 1) | {"Extra": "e"}])
    no_version = _page([_row("a2", 2)], columns=("Id", "Name", "Amount", "Active", "Born"))
    for batch in (unknown, no_version):
        outcomes = await sink.write(batch)
        assert [o.kind for o in outcomes] == [OutcomeKind.APPLIED]
        assert isinstance(batch.events, PageEvents)
        assert batch.events.parsed
    await sink.flush(None)
    assert sink.pages_loaded == 0
    assert sorted(_table(pg)) == ["a1", "a2"]
