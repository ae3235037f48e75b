"""Partial updates (Change Data Capture) in batches, on SQLite, PostgreSQL and MariaDB alike.

Many keys changing the same fields is what a stream delivers; on PostgreSQL those rows go as
one statement of arrays (:mod:`sfsync.connectors.sql.partial`), elsewhere row by row. Either
way only the carried fields change, older versions are refused, and a refused value rejects
only its own row.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest

from sfsync.connectors.sql.sink import SqlSink, TableOptions
from sfsync.core.events import Batch, ChangeEvent, Operation
from sfsync.core.schema import EntitySchema, FieldKind, FieldSpec
from sfsync.spi.sink import OutcomeKind

from .helpers import ACCOUNT, Harness, event, stamp

pytestmark = pytest.mark.anyio

KEYS = [f"001{i:015d}" for i in range(40)]


async def _seeded(harness: Harness) -> SqlSink:
    sink = await harness.sink()
    await sink.prepare(ACCOUNT)
    await sink.write(
        Batch.of([event(k, 10, Operation.CREATE, Employees=i) for i, k in enumerate(KEYS)])
    )
    await sink.flush(None)
    return sink


async def test_many_keys_update_only_their_fields_of_every_kind(harness: Harness) -> None:
    sink = await _seeded(harness)
    changes = {
        "Name": "renamed",
        "Amount": "12.50",
        "Employees": 7,
        "Active": False,
        "Born": "2001-02-03",
        "Notes": "Zürich\nline two",
        "Meta": {"n": [1, 2]},
    }
    batch = [replace(event(k, 20, partial=True), after=changes) for k in KEYS[:30]]
    batch += [event(k, 21, partial=True, Name=None) for k in KEYS[30:35]]  # set to null
    new = "001999999999999AAA"
    batch.append(event(new, 22, partial=True, Name="new"))  # no row yet: inserted
    batch.append(event("001999999999998AAA", 22, partial=True, Name="new too"))
    out = await sink.write(Batch.of(batch))
    assert {o.kind for o in out} == {OutcomeKind.APPLIED}
    await sink.flush(None)
    rows = harness.rows()
    for k in KEYS[:30]:
        assert rows[k]["Name"] == "renamed"
        assert rows[k]["Amount"] == Decimal("12.5")
        assert rows[k]["Employees"] == 7
        assert rows[k]["Active"] is False
        assert rows[k]["Born"] == date(2001, 2, 3)
        assert rows[k]["Notes"] == "Zürich\nline two"
        assert rows[k]["Meta"] == {"n": [1, 2]}
    for i, k in enumerate(KEYS[30:35], start=30):
        assert rows[k]["Name"] is None
        assert rows[k]["Employees"] == i  # untouched, never nulled
    for i, k in enumerate(KEYS[35:], start=35):
        assert rows[k]["Name"] == "n10"
        assert rows[k]["Employees"] == i
    assert rows[new]["Name"] == "new"
    assert rows[new]["Employees"] is None


async def test_older_partial_updates_are_refused_among_many(harness: Harness) -> None:
    sink = await _seeded(harness)
    # Half the keys move ahead first; then a batch older than those, newer than the rest.
    await sink.write(Batch.of([event(k, 30, partial=True, Name="thirty") for k in KEYS[:20]]))
    out = await sink.write(Batch.of([event(k, 20, partial=True, Name="twenty") for k in KEYS]))
    assert [o.kind for o in out] == [OutcomeKind.STALE] * 20 + [OutcomeKind.APPLIED] * 20
    await sink.flush(None)
    rows = harness.rows()
    assert {rows[k]["Name"] for k in KEYS[:20]} == {"thirty"}
    assert {rows[k]["Name"] for k in KEYS[20:]} == {"twenty"}


async def test_a_refused_value_rejects_only_its_row(harness: Harness) -> None:
    if harness.dialect == "sqlite":
        pytest.skip("SQLite does not enforce lengths")
    sink = await _seeded(harness)
    batch = [event(k, 20, partial=True, Name=f"ok {i}") for i, k in enumerate(KEYS)]
    batch[7] = event(KEYS[7], 20, partial=True, Name="x" * 21)  # too long for varchar(20)
    out = await sink.write(Batch.of(batch))
    assert [i for i, o in enumerate(out) if o.kind is OutcomeKind.REJECTED] == [7]
    await sink.flush(None)
    rows = harness.rows()
    assert rows[KEYS[7]]["Name"] == "n10"
    assert rows[KEYS[8]]["Name"] == "ok 8"
    # The next batch takes the fast path again.
    out = await sink.write(Batch.of([event(k, 21, partial=True, Name="again") for k in KEYS]))
    assert {o.kind for o in out} == {OutcomeKind.APPLIED}
    await sink.flush(None)
    assert {r["Name"] for r in harness.rows().values()} == {"again"}


async def test_keys_equal_only_in_the_database_apply_in_order(harness: Harness) -> None:
    # "01" and "1" are two keys to the planner and one row to an integer column: a single
    # statement over both would touch the row twice.
    orders = EntitySchema.of(
        "public.orders",
        "id",
        [
            FieldSpec(name="id", kind=FieldKind.INTEGER),
            FieldSpec(name="note", kind=FieldKind.STRING, length=20),
            FieldSpec(name="updated_at", kind=FieldKind.DATETIME),
        ],
        version_field="updated_at",
    )
    sink = await harness.sink({"public.orders": TableOptions(table="orders")})
    await sink.prepare(orders)

    def note(key: str, n: int, text: str) -> ChangeEvent:
        return replace(
            event(key, n, partial=True, entity="public.orders"),
            after={"note": text, "updated_at": stamp(n)},
        )

    out = await sink.write(Batch.of([note("1", 1, "first"), note("01", 2, "second")]))
    assert [o.kind for o in out] == [OutcomeKind.APPLIED, OutcomeKind.APPLIED]
    await sink.flush(None)
    assert harness.rows("orders", kinds={"id": FieldKind.INTEGER})["1"]["note"] == "second"
