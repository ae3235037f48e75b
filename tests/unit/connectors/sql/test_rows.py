"""The column-wise fast path of planning agrees with planning event by event.

For every batch it accepts, :func:`plan_full_rows` must decide the same outcomes and write the
same values as :func:`plan_events` (the planner whose results the property tests of the sink
check against one-at-a-time application); every batch it cannot plan column-wise it must
refuse (``None``), so that the event-by-event planner handles it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sfsync.connectors.sql.ddl import DELETED, SYNCED_AT, TableState
from sfsync.connectors.sql.plan import Plan, Shape, build_shape, plan_events
from sfsync.connectors.sql.rows import plan_full_rows
from sfsync.connectors.sql.types import Dialect, comparable_version, converter
from sfsync.core.events import ChangeEvent, Operation, Position
from sfsync.core.schema import EntitySchema, FieldKind, FieldSpec
from sfsync.spi.sink import OutcomeKind

SCHEMA = EntitySchema.of(
    "Thing",
    "Id",
    [
        FieldSpec(name="Id", kind=FieldKind.ID, length=18),
        FieldSpec(name="Name", kind=FieldKind.STRING, length=40),
        FieldSpec(name="Employees", kind=FieldKind.INTEGER),
        FieldSpec(name="Revenue", kind=FieldKind.DECIMAL, precision=18, scale=2),
        FieldSpec(name="Active", kind=FieldKind.BOOLEAN),
        FieldSpec(name="CreatedDate", kind=FieldKind.DATETIME),
        FieldSpec(name="SystemModstamp", kind=FieldKind.DATETIME),
    ],
    version_field="SystemModstamp",
)
NOW = datetime(2026, 2, 1, tzinfo=UTC)


def shape_of(dialect: Dialect, *, soft: bool = False, schema: EntitySchema = SCHEMA) -> Shape:
    state = TableState(
        table="thing",
        schema=schema,
        columns={f.name: f for f in schema},
        field_columns={f.name: f.name for f in schema},
        soft_delete=soft,
    )
    # The writer's column order: key, the other fields, bookkeeping.
    columns = [schema.key, *(f.name for f in schema if f.name != schema.key)]
    columns += [DELETED] if soft else []
    columns.append(SYNCED_AT)
    return build_shape(state, columns, dialect, NOW)


def stamp(second: int) -> str:
    return f"2026-01-01T00:00:{second:02d}.000+0000"


def event(key: str, after: Mapping[str, object] | None, **kwargs: Any) -> ChangeEvent:
    version = (after or {}).get("SystemModstamp")
    return ChangeEvent(
        entity="Thing",
        key=key,
        op=kwargs.pop("op", Operation.READ),
        after=after,
        position=Position("s", key),
        committed_at=NOW,
        version=kwargs.pop("version", version if isinstance(version, str) else None),
        **kwargs,
    )


def rows_of(shape: Shape, plan: Plan) -> list[tuple[object, ...]]:
    """The full rows ``plan_events`` would write, in the shape's column order."""
    assert all(not op.partial and not op.delete for op in plan.pending)
    return [tuple(op.values.get(c) for c in shape.columns) for op in plan.pending]


values = st.fixed_dictionaries(
    {
        "Name": st.sampled_from(["Acme", "", "Zürich AG", None]),
        # As sources deliver them: numbers, numeric text, or nothing.
        "Employees": st.sampled_from([3, "17", None, 0]),
        "Revenue": st.sampled_from([1234.5, "99.99", 7, None, Decimal("1.10")]),
        "Active": st.sampled_from([True, False, "true", None]),
        "SystemModstamp": st.integers(0, 9).map(stamp),
        # Timestamps in other forms than Salesforce's: another offset, "Z", no offset.
        "CreatedDate": st.sampled_from(
            ["2026-01-01T10:00:00+02:00", "2026-01-01T08:00:00Z", "2026-01-01T08:00:00", None]
        ),
    }
)


@settings(max_examples=80, deadline=None)
@given(
    batch=st.lists(values, min_size=1, max_size=12),
    stored_at=st.lists(st.one_of(st.none(), st.integers(0, 9)), min_size=12, max_size=12),
    dialect=st.sampled_from(["postgresql", "mysql", "sqlite"]),
    soft=st.booleans(),
)
def test_same_outcomes_and_rows_as_event_by_event(
    batch: list[dict[str, object]], stored_at: list[int | None], dialect: Dialect, soft: bool
) -> None:
    shape = shape_of(dialect, soft=soft)
    events = [(i, event(f"k{i}", {"Id": f"k{i}", **after})) for i, after in enumerate(batch)]
    version = converter(FieldKind.DATETIME, dialect, nullable=False)
    # Some keys have a row already (at some version), the others none.
    stored = {
        f"k{i}": comparable_version(version(stamp(at)))
        for i, at in enumerate(stored_at[: len(batch)])
        if at is not None
    }

    fast = plan_full_rows(shape, events, stored)
    slow = plan_events(shape, events, stored)

    assert fast is not None
    assert fast.pending == []
    assert fast.outcomes == slow.outcomes
    assert fast.rows == rows_of(shape, slow)
    assert fast.unknown_fields == slow.unknown_fields


def test_an_older_event_than_the_stored_row_is_stale_and_not_written() -> None:
    shape = shape_of("postgresql")
    old = {"Id": "a", "Name": "old", "SystemModstamp": stamp(1)}
    new = {"Id": "b", "Name": "new", "SystemModstamp": stamp(5)}
    stored = {"a": datetime(2026, 1, 1, 0, 0, 3, tzinfo=UTC)}

    plan = plan_full_rows(shape, [(0, event("a", old)), (1, event("b", new))], stored)

    assert plan is not None
    assert plan.rows is not None
    assert plan.outcomes[0].kind is OutcomeKind.STALE
    assert plan.outcomes[1].kind is OutcomeKind.APPLIED
    assert [row[0] for row in plan.rows] == ["b"]


def test_unknown_fields_are_reported_and_not_written() -> None:
    shape = shape_of("sqlite")
    after = {"Id": "a", "Name": "n", "Extra__c": 1, "SystemModstamp": stamp(1)}

    plan = plan_full_rows(shape, [(0, event("a", after))], {})

    assert plan is not None
    assert plan.rows is not None
    assert plan.unknown_fields == {"Extra__c"}
    assert 1 not in plan.rows[0]


def test_missing_fields_are_written_as_null_like_the_event_by_event_planner() -> None:
    shape = shape_of("postgresql")
    events = [(0, event("a", {"Id": "a", "Name": "n", "SystemModstamp": stamp(1)}))]

    fast = plan_full_rows(shape, events, {})

    assert fast is not None
    assert fast.rows == rows_of(shape, plan_events(shape, events, {}))


BASE = {"Id": "a", "Name": "n", "SystemModstamp": stamp(1)}


@pytest.mark.parametrize(
    ("why", "events"),
    [
        ("a delete", [(0, event("a", dict(BASE))), (1, event("b", None, op=Operation.DELETE))]),
        ("a partial event", [(0, event("a", dict(BASE), partial=True))]),
        ("a key twice", [(0, event("a", dict(BASE))), (1, event("a", dict(BASE)))]),
        (
            "different fields",
            [(0, event("a", dict(BASE))), (1, event("b", {**BASE, "Id": "b", "Employees": 1}))],
        ),
        ("a version that is not the field's", [(0, event("a", dict(BASE), version=stamp(2)))]),
        ("no version field value", [(0, event("a", {"Id": "a", "Name": "n"}))]),
        ("a value no converter reads", [(0, event("a", {**BASE, "Employees": "many"}))]),
        ("an infinite decimal", [(0, event("a", {**BASE, "Revenue": float("inf")}))]),
        ("an unreadable timestamp", [(0, event("a", {**BASE, "CreatedDate": "yesterday"}))]),
    ],
)
def test_batches_that_need_folding_or_naming_a_bad_value_are_refused(
    why: str, events: list[tuple[int, ChangeEvent]]
) -> None:
    assert plan_full_rows(shape_of("postgresql"), events, {}) is None, why


def test_an_unreadable_value_is_rejected_by_the_event_by_event_planner() -> None:
    shape = shape_of("postgresql")
    events = [
        (0, event("a", {**BASE, "Employees": "many"})),
        (1, event("b", {**BASE, "Id": "b", "Employees": 2})),
    ]

    assert plan_full_rows(shape, events, {}) is None
    outcomes = plan_events(shape, events, {}).outcomes
    assert outcomes[0].kind is OutcomeKind.REJECTED
    assert "Employees" in str(outcomes[0].error)
