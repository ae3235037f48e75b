"""Property tests of the SQL sink on SQLite: batching never changes the result.

* Hard deletes, events of each key in order, cut into random batches: the table ends exactly
  as applying the events one at a time under the version guard (a reference model written
  here from the contract, not from the sink's code).
* Soft deletes, events in any order: every key ends at its newest version.
"""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import anyio
import sqlalchemy as sa
from hypothesis import example, given, settings
from hypothesis import strategies as st

from sfsync.connectors.sql.config import SqliteConnection
from sfsync.connectors.sql.sink import DeleteMode, SqlSink, TableOptions
from sfsync.core.events import Batch, ChangeEvent, Operation, Position
from sfsync.core.schema import EntitySchema, FieldKind, FieldSpec
from sfsync.spi.sink import SinkContext
from sfsync.testing import FakeClock

SCHEMA = EntitySchema.of(
    "Thing",
    "Id",
    [
        FieldSpec(name="Id", kind=FieldKind.ID, length=18),
        FieldSpec(name="Name", kind=FieldKind.STRING, length=40),
        FieldSpec(name="Employees", kind=FieldKind.INTEGER),
        FieldSpec(name="SystemModstamp", kind=FieldKind.DATETIME),
    ],
    version_field="SystemModstamp",
)
KEYS = ("a", "b", "c")


@dataclass(frozen=True)
class Step:
    key: str
    kind: str  # "full", "partial" or "delete"
    version: int
    name: str | None
    employees: int | None


def stamp(n: int) -> str:
    return f"2026-01-01T00:00:{n:02d}.000+0000"


def to_event(step: Step) -> ChangeEvent:
    after: dict[str, object] | None = None
    if step.kind == "full":
        after = {"Id": step.key, "Name": step.name, "Employees": step.employees}
    elif step.kind == "partial":
        after = {"Name": step.name} if step.employees is None else {"Employees": step.employees}
    return ChangeEvent(
        entity="Thing",
        key=step.key,
        op=Operation.DELETE if step.kind == "delete" else Operation.UPDATE,
        after=after,
        position=Position("s", "0"),
        committed_at=datetime(2026, 1, 1, tzinfo=UTC),
        partial=step.kind == "partial",
        version=stamp(step.version),
    )


steps = st.builds(
    Step,
    key=st.sampled_from(KEYS),
    kind=st.sampled_from(["full", "partial", "delete"]),
    version=st.integers(0, 9),
    name=st.sampled_from(["x", "y", "z", None]),
    employees=st.one_of(st.none(), st.integers(-5, 5)),
)


Row = tuple[str | None, int | None, str | None, bool]


def sequential_model(history: Sequence[Step]) -> dict[str, Row]:
    """Apply one event at a time: newer-or-equal versions win, a hard delete leaves no row."""
    table: dict[str, dict[str, object]] = {}
    for step in history:
        row = table.get(step.key)
        if row is not None and step.version < int(str(row["v"])):
            continue
        if step.kind == "delete":
            table.pop(step.key, None)
            continue
        event = to_event(step)
        fresh: dict[str, object] = {"Name": None, "Employees": None}
        base = dict(row) if (row is not None and step.kind == "partial") else fresh
        base.update({k: v for k, v in (event.after or {}).items() if k != "Id"})
        base["v"] = step.version
        table[step.key] = base
    return {
        k: (_s(r["Name"]), _i(r["Employees"]), stamp(int(str(r["v"])))[:19], False)
        for k, r in table.items()
    }


def _s(value: object) -> str | None:
    return None if value is None else str(value)


def _i(value: object) -> int | None:
    return None if value is None else int(str(value))


async def apply(
    history: Sequence[Step], cuts: Sequence[int], *, soft: bool, path: Path
) -> dict[str, Row]:
    url = f"sqlite:///{path}"
    sink = SqlSink(
        SqliteConnection(type="sqlite", url=url),
        tables={"Thing": TableOptions(deletes=DeleteMode.SOFT if soft else DeleteMode.HARD)},
    )
    await sink.open(SinkContext(sync_name="prop", clock=FakeClock()))
    await sink.prepare(SCHEMA)
    events = [to_event(s) for s in history]
    bounds = [0, *sorted({min(c, len(events)) for c in cuts}), len(events)]
    for start, end in itertools.pairwise(bounds):
        if start < end:
            outcomes = await sink.write(Batch.of(events[start:end]))
            assert len(outcomes) == end - start
    await sink.flush(None)
    await sink.aclose()
    engine = sa.create_engine(url)
    deleted = "_sfsync_deleted" if soft else "0"
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(
            f'SELECT "Id", "Name", "Employees", "SystemModstamp", {deleted} FROM thing'
        ).all()
    engine.dispose()
    return {
        str(r[0]): (_s(r[1]), _i(r[2]), None if r[3] is None else str(r[3])[:19], bool(r[4]))
        for r in rows
    }


@settings(max_examples=60, deadline=None)
@given(history=st.lists(steps, max_size=25), cuts=st.lists(st.integers(0, 25), max_size=6))
# A delete and then an event older than the stored row, in one batch: the row must be deleted
# first, else the stored version would refuse the insert.
@example(
    history=[
        Step("a", "full", 5, "x", 1),
        Step("a", "delete", 6, None, None),
        Step("a", "full", 3, "y", 2),
    ],
    cuts=[1],
)
@example(
    history=[
        Step("a", "full", 5, "x", 1),
        Step("a", "delete", 6, None, None),
        Step("a", "partial", 3, "y", None),
    ],
    cuts=[1],
)
def test_any_batching_equals_one_at_a_time(history: list[Step], cuts: list[int]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        got = anyio.run(lambda: apply(history, cuts, soft=False, path=Path(tmp) / "t.db"))
    assert got == sequential_model(history)


full_or_delete = st.builds(
    Step,
    key=st.sampled_from(KEYS),
    kind=st.sampled_from(["full", "full", "delete"]),
    version=st.just(0),
    name=st.sampled_from(["x", "y", "z"]),
    employees=st.integers(-5, 5),
)


@settings(max_examples=60, deadline=None)
@given(
    drafts=st.lists(full_or_delete, max_size=20),
    order=st.randoms(use_true_random=False),
    cuts=st.lists(st.integers(0, 20), max_size=6),
)
def test_soft_deletes_newest_version_wins_in_any_order(
    drafts: list[Step], order: object, cuts: list[int]
) -> None:
    # Distinct versions per key (the draft's position), then shuffled: delivery in any order.
    history = [Step(s.key, s.kind, i, s.name, s.employees) for i, s in enumerate(drafts[:50])]
    shuffled = list(history)
    order.shuffle(shuffled)  # type: ignore[attr-defined]
    with tempfile.TemporaryDirectory() as tmp:
        got = anyio.run(lambda: apply(shuffled, cuts, soft=True, path=Path(tmp) / "t.db"))
    newest: dict[str, Step] = {}
    for step in history:
        newest[step.key] = step  # versions grow with position
    assert set(got) == set(newest)
    for key, step in newest.items():
        name, employees, version, deleted = got[key]
        assert version == stamp(step.version)[:19]
        assert deleted == (step.kind == "delete")
        if step.kind == "full":
            assert (name, employees) == (step.name, step.employees)
