"""The SQL sink's contract, run against SQLite, PostgreSQL and MariaDB alike."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from sfsync.connectors.sql.sink import DeleteMode, TableOptions
from sfsync.core.checkpoint import Checkpoint
from sfsync.core.errors import SkippableError
from sfsync.core.events import Batch, ChangeEvent, Operation, Position
from sfsync.core.schema import EntitySchema, FieldKind, FieldSpec
from sfsync.spi.sink import Outcome, OutcomeKind

from .helpers import ACCOUNT, Harness, event, stamp

pytestmark = pytest.mark.anyio

A, B, C = "001000000000001AAA", "001000000000002AAA", "001000000000003AAA"


def kinds(outcomes: list[Outcome]) -> list[str]:
    return [o.kind.value for o in outcomes]


def at(n: int) -> datetime:
    return datetime(2026, 1, 1, 0, 0, n, tzinfo=UTC)


async def test_prepare_creates_the_table_with_key_and_bookkeeping(harness: Harness) -> None:
    sink = await harness.sink()
    assert await sink.prepare(ACCOUNT) == []
    columns = harness.columns("account")
    assert columns[: len(ACCOUNT.fields)] == list(ACCOUNT.names())
    assert "_sfsync_synced_at" in columns
    assert "_sfsync_deleted" not in columns  # hard deletes by default
    assert await sink.prepare(ACCOUNT) == []  # preparing again changes nothing


async def test_upsert_round_trips_every_kind(harness: Harness) -> None:
    sink = await harness.sink()
    await sink.prepare(ACCOUNT)
    values: dict[str, object] = {
        "Amount": "1234.50",
        "Employees": 42,
        "Active": True,
        "Born": "2001-02-03",
        "Notes": "Zürich\nline two",
        "Meta": {"street": "Hauptstraße 1", "n": [1, 2]},
    }
    first = event(A, 1, Operation.CREATE)
    first = replace(first, after=dict(first.after or {}) | values)
    out = await sink.write(Batch.of([first, event(B, 2)]))
    assert kinds(out) == ["applied", "applied"]
    await sink.flush(None)
    row = harness.rows()[A]
    assert row == {
        "Id": A,
        "Name": "n1",
        "Amount": Decimal("1234.5"),
        "Employees": 42,
        "Active": True,
        "Born": date(2001, 2, 3),
        "Notes": "Zürich\nline two",
        "Meta": {"street": "Hauptstraße 1", "n": [1, 2]},
        "SystemModstamp": at(1),
    }
    assert harness.rows()[B]["Amount"] is None


async def test_older_versions_never_overwrite(harness: Harness) -> None:
    sink = await harness.sink()
    await sink.prepare(ACCOUNT)
    await sink.write(Batch.of([event(A, 5, Name="five")]))
    out = await sink.write(Batch.of([event(A, 3, Name="three"), event(A, 4, Operation.DELETE)]))
    assert kinds(out) == ["stale", "stale"]
    # Within one batch too: the later, older event loses.
    out = await sink.write(Batch.of([event(B, 7, Name="seven"), event(B, 6, Name="six")]))
    assert kinds(out) == ["applied", "stale"]
    await sink.flush(None)
    rows = harness.rows()
    assert rows[A]["Name"] == "five"
    assert rows[B]["Name"] == "seven"


async def test_replaying_a_batch_changes_nothing(harness: Harness) -> None:
    sink = await harness.sink()
    await sink.prepare(ACCOUNT)
    batch = Batch.of(
        [
            event(A, 1, Operation.CREATE),
            event(A, 2, partial=True, Name="two"),
            event(B, 1, Operation.CREATE, Employees=3),
            event(C, 1, Operation.CREATE),
            event(C, 2, Operation.DELETE),
        ]
    )
    first = await sink.write(batch)
    await sink.flush(None)
    before = harness.rows()
    again = await sink.write(batch)
    await sink.flush(None)
    assert harness.rows() == before
    assert kinds(first) == ["applied"] * 5
    # Equal versions are applied again (same values); older ones are stale.
    assert kinds(again) == ["stale", "applied", "applied", "applied", "applied"]
    assert set(before) == {A, B}


async def test_hard_delete_removes_and_stale_delete_does_not(harness: Harness) -> None:
    sink = await harness.sink()
    await sink.prepare(ACCOUNT)
    await sink.write(Batch.of([event(A, 2), event(B, 2)]))
    out = await sink.write(Batch.of([event(A, 3, Operation.DELETE), event(B, 1, Operation.DELETE)]))
    assert kinds(out) == ["applied", "stale"]
    out = await sink.write(Batch.of([event(C, 1, Operation.DELETE)]))  # never existed
    assert kinds(out) == ["applied"]
    await sink.flush(None)
    assert set(harness.rows()) == {B}


async def test_soft_delete_keeps_the_row_and_undelete_clears_it(harness: Harness) -> None:
    sink = await harness.sink({"Account": TableOptions(deletes=DeleteMode.SOFT)})
    await sink.prepare(ACCOUNT)
    await sink.write(Batch.of([event(A, 1, Employees=9), event(B, 1)]))
    await sink.write(Batch.of([event(A, 2, Operation.DELETE), event(B, 2, Operation.DELETE)]))
    out = await sink.write(Batch.of([event(B, 3, Operation.UNDELETE), event(A, 1)]))
    assert kinds(out) == ["applied", "stale"]
    await sink.flush(None)
    rows = harness.rows()
    assert rows[A]["_sfsync_deleted"] in (True, 1)
    assert rows[A]["Employees"] == 9  # the values stay
    assert rows[A]["SystemModstamp"] == at(2)
    assert rows[B]["_sfsync_deleted"] in (False, 0)


async def test_partial_updates_touch_only_their_fields(harness: Harness) -> None:
    sink = await harness.sink()
    await sink.prepare(ACCOUNT)
    await sink.write(Batch.of([event(A, 1, Employees=10, Notes="keep me")]))
    out = await sink.write(
        Batch.of(
            [
                event(A, 2, partial=True, Name="renamed"),
                event(A, 3, partial=True, Employees=11),
                event(B, 4, partial=True, Name="only name"),  # no row yet: inserted
            ]
        )
    )
    assert kinds(out) == ["applied"] * 3
    await sink.flush(None)
    rows = harness.rows()
    assert rows[A]["Name"] == "renamed"
    assert rows[A]["Employees"] == 11
    assert rows[A]["Notes"] == "keep me"
    assert rows[A]["SystemModstamp"] == at(3)  # the version moves with partial events too
    assert rows[B]["Name"] == "only name"
    assert rows[B]["Employees"] is None


async def test_a_key_s_events_fold_in_order(harness: Harness) -> None:
    sink = await harness.sink()
    await sink.prepare(ACCOUNT)
    await sink.write(Batch.of([event(A, 1, Employees=1, Notes="old")]))
    out = await sink.write(
        Batch.of(
            [
                event(A, 2, partial=True, Employees=2),
                event(A, 3, Operation.DELETE),
                event(A, 4, partial=True, Name="reborn"),  # after a delete: a fresh row
                event(B, 1, Operation.CREATE),
                event(B, 2, Operation.DELETE),
            ]
        )
    )
    assert kinds(out) == ["applied"] * 5
    await sink.flush(None)
    rows = harness.rows()
    assert set(rows) == {A}
    assert rows[A]["Name"] == "reborn"
    assert rows[A]["Employees"] is None
    assert rows[A]["Notes"] is None


async def test_checkpoint_commits_with_the_data(harness: Harness) -> None:
    stream = "sf:/data/AccountChangeEvent"
    cp1 = Checkpoint().advanced({stream: Position(stream, "10")})
    sink = await harness.sink()
    assert await sink.load_checkpoint() is None
    await sink.prepare(ACCOUNT)
    await sink.write(Batch.of([event(A, 1)]))
    await sink.flush(cp1)
    await sink.write(Batch.of([event(B, 1)]))
    await sink.aclose()  # without flush: B and no new checkpoint

    reopened = await harness.sink()
    assert await reopened.load_checkpoint() == cp1
    assert set(harness.rows()) == {A}
    await reopened.prepare(ACCOUNT)
    await reopened.write(Batch.of([event(B, 1)]))
    cp2 = cp1.advanced({stream: Position(stream, "11")})
    await reopened.flush(cp2)
    assert await reopened.load_checkpoint() == cp2
    assert set(harness.rows()) == {A, B}
    other = await harness.sink(sync_id="other-sync")
    assert await other.load_checkpoint() is None


async def test_schema_drift_never_stops_and_never_loses_data(harness: Harness) -> None:
    sink = await harness.sink()
    await sink.prepare(ACCOUNT)
    await sink.write(Batch.of([event(A, 1, Amount="10.50", Notes="old notes", Employees=5)]))
    await sink.flush(None)

    fields = {s.name: s for s in ACCOUNT}
    fields.pop("Notes")  # removed from the source
    fields["Name"] = replace(fields["Name"], length=80)  # widened
    fields["Employees"] = FieldSpec(name="Employees", kind=FieldKind.DECIMAL, precision=18, scale=2)
    fields["Amount"] = FieldSpec(name="Amount", kind=FieldKind.STRING, length=40)  # incompatible
    fields["Region"] = FieldSpec(name="Region", kind=FieldKind.STRING, length=10)  # new
    v2 = EntitySchema.of("Account", "Id", list(fields.values()), version_field="SystemModstamp")

    notices = await sink.prepare(v2)
    text = "\n".join(notices)
    assert "Account.Notes is no longer in the source" in text
    assert "Amount changed type from decimal(10,2) to string(40)" in text
    assert "'Amount__string'" in text
    assert "Account.Region is new" in text
    # Notes, Amount, Employees widened, Region; and Name where its type names a length.
    if harness.dialect == "sqlite":
        assert len(notices) == 4, notices
    else:
        assert "Account.Name widened from string(20) to string(80)" in text
        assert len(notices) == 5, notices

    long_name = "a name much longer than twenty characters"
    out = await sink.write(
        Batch.of(
            [
                event(A, 2, Name=long_name, Amount="about ten", Region="EMEA", Employees="5.25"),
                event(B, 2, Amount="n/a"),
            ]
        )
    )
    assert kinds(out) == ["applied", "applied"]
    await sink.flush(None)
    kinds_v2 = {s.name: s.kind for s in v2} | {"Notes": FieldKind.TEXT}
    kinds_v2["Amount"] = FieldKind.DECIMAL
    rows = harness.rows(kinds=kinds_v2)
    assert rows[A]["Name"] == long_name
    assert rows[A]["Notes"] == "old notes"  # kept, not nulled by the full event
    assert rows[A]["Amount"] == Decimal("10.5")  # the old column keeps the old value
    assert rows[A]["Amount__string"] == "about ten"
    assert rows[A]["Region"] == "EMEA"
    assert Decimal(str(rows[A]["Employees"])) == Decimal("5.25")
    assert rows[B]["Notes"] is None

    # A new sink (a restart) remembers the placement and has nothing new to say.
    again = await harness.sink()
    assert await again.prepare(v2) == []


async def test_unreadable_values_reject_only_their_event(harness: Harness) -> None:
    sink = await harness.sink()
    await sink.prepare(ACCOUNT)
    out = await sink.write(
        Batch.of([event(A, 1), event(B, 1, Employees="many"), event(C, 1, Born="03/02/2001")])
    )
    assert kinds(out) == ["applied", "rejected", "rejected"]
    error = out[1].error
    assert isinstance(error, SkippableError)
    assert "'Employees'" in str(error)
    assert "'Born'" in str(out[2].error)
    await sink.flush(None)
    assert set(harness.rows()) == {A}


async def test_rows_the_database_refuses_are_rejected_alone(harness: Harness) -> None:
    if harness.dialect == "sqlite":
        pytest.skip("SQLite does not enforce lengths or precision")
    sink = await harness.sink()
    await sink.prepare(ACCOUNT)
    batch = [event(f"001{i:015d}", 1) for i in range(150)]  # enough for PostgreSQL's COPY path
    batch[10] = event(batch[10].key, 1, Name="x" * 21)
    batch[20] = event(batch[20].key, 1, Amount="123456789.00")
    batch[30] = event(batch[30].key, 1, Employees=2**70)  # beyond bigint
    out = await sink.write(Batch.of(batch))
    rejected = [i for i, o in enumerate(out) if o.kind is OutcomeKind.REJECTED]
    assert rejected == [10, 20, 30]
    assert "field 'Name' has 21 characters, its column allows 20" in str(out[10].error)
    assert "'Amount'" in str(out[20].error)
    assert all(isinstance(out[i].error, SkippableError) for i in rejected)
    await sink.flush(None)
    assert len(harness.rows()) == 147
    # The next batch takes the fast path again.
    out = await sink.write(Batch.of([event(f"002{i:015d}", 1) for i in range(150)]))
    assert {o.kind for o in out} == {OutcomeKind.APPLIED}


async def test_versions_without_a_version_field(harness: Harness) -> None:
    plain = EntitySchema.of(
        "Thing",
        "key",
        [
            FieldSpec(name="key", kind=FieldKind.STRING, length=40),
            FieldSpec(name="label", kind=FieldKind.STRING, length=40),
        ],
    )
    sink = await harness.sink({"Thing": TableOptions(table="things")})
    await sink.prepare(plain)

    def thing(n: int, label: str) -> ChangeEvent:
        return replace(event("k1", n, entity="Thing"), after={"key": "k1", "label": label})

    out = await sink.write(Batch.of([thing(5, "five"), thing(3, "three")]))
    assert kinds(out) == ["applied", "stale"]
    await sink.flush(None)
    rows = harness.rows("things", kinds={"label": FieldKind.STRING})
    assert rows["k1"]["label"] == "five"
    assert str(rows["k1"]["_sfsync_version"]).startswith("2026-01-01T00:00:05")
    assert stamp(5).startswith("2026")


async def test_a_table_made_by_hand_is_adopted(harness: Harness) -> None:
    sink = await harness.sink()  # opening creates the PostgreSQL schema
    q = harness.quote
    harness.execute(
        f"CREATE TABLE {harness.ref('account')} ({q('Id')} VARCHAR(18) PRIMARY KEY, "
        f"{q('Name')} VARCHAR(20), {q('Legacy')} VARCHAR(10))"
    )
    harness.execute(
        f"INSERT INTO {harness.ref('account')} ({q('Id')}, {q('Legacy')}) VALUES ('{A}', 'old')"
    )
    notices = await sink.prepare(ACCOUNT)
    assert len(notices) == 1
    assert "adopted the existing table 'account'" in notices[0]
    await sink.write(Batch.of([event(A, 1, Employees=3)]))
    await sink.flush(None)
    row = harness.rows()[A]
    assert row["Employees"] == 3
    assert row["Legacy"] == "old"  # a column the sink does not know is left alone


async def test_integer_keys_from_a_database_source(harness: Harness) -> None:
    orders = EntitySchema.of(
        "public.orders",
        "id",
        [
            FieldSpec(name="id", kind=FieldKind.INTEGER),
            FieldSpec(name="total", kind=FieldKind.DECIMAL, precision=12, scale=2),
            FieldSpec(name="updated_at", kind=FieldKind.DATETIME),
        ],
        version_field="updated_at",
    )
    sink = await harness.sink({"public.orders": TableOptions(table="orders")})
    await sink.prepare(orders)

    def order(key: str, n: int, total: str) -> ChangeEvent:
        return replace(
            event(key, n, entity="public.orders"),
            after={"id": key, "total": total, "updated_at": stamp(n)},
        )

    out = await sink.write(Batch.of([order("7", 2, "10.00"), order("8", 1, "1.00")]))
    assert kinds(out) == ["applied", "applied"]
    out = await sink.write(Batch.of([order("7", 1, "99.00"), order("x", 3, "1.00")]))
    assert kinds(out) == ["stale", "rejected"]
    await sink.flush(None)
    rows = harness.rows("orders", kinds={"total": FieldKind.DECIMAL})
    assert rows["7"]["total"] == Decimal("10")
    assert set(rows) == {"7", "8"}


async def test_a_refused_event_leaves_its_key_s_other_events_applied(harness: Harness) -> None:
    if harness.dialect == "sqlite":
        pytest.skip("SQLite does not enforce lengths")
    sink = await harness.sink()
    await sink.prepare(ACCOUNT)
    out = await sink.write(
        Batch.of(
            [
                event(A, 1, Employees=1),
                event(A, 2, partial=True, Name="x" * 21),  # too long for varchar(20)
                event(A, 3, partial=True, Employees=3),
                event(B, 1),
            ]
        )
    )
    assert kinds(out) == ["applied", "rejected", "applied", "applied"]
    await sink.flush(None)
    row = harness.rows()[A]
    assert (row["Name"], row["Employees"], row["SystemModstamp"]) == ("n1", 3, at(3))


EVERY_KIND = EntitySchema.of(
    "Every",
    "Id",
    [
        FieldSpec(name="Id", kind=FieldKind.ID, length=18),
        FieldSpec(name="Ref", kind=FieldKind.REFERENCE, length=18),
        FieldSpec(name="Str", kind=FieldKind.STRING, length=300),
        FieldSpec(name="Txt", kind=FieldKind.TEXT),
        FieldSpec(name="Flag", kind=FieldKind.BOOLEAN),
        FieldSpec(name="Count", kind=FieldKind.INTEGER),
        FieldSpec(name="Money", kind=FieldKind.DECIMAL, precision=18, scale=2),
        FieldSpec(name="Ratio", kind=FieldKind.FLOAT),
        FieldSpec(name="Day", kind=FieldKind.DATE),
        FieldSpec(name="At", kind=FieldKind.DATETIME),
        FieldSpec(name="Clock", kind=FieldKind.TIME),
        FieldSpec(name="Doc", kind=FieldKind.JSON),
        FieldSpec(name="Blob", kind=FieldKind.BINARY),
        FieldSpec(name="SystemModstamp", kind=FieldKind.DATETIME),
    ],
    version_field="SystemModstamp",
)


@pytest.mark.parametrize("rows", [3, 150])  # executemany, and PostgreSQL's COPY path
async def test_every_kind_round_trips(harness: Harness, rows: int) -> None:
    sink = await harness.sink()
    await sink.prepare(EVERY_KIND)
    values: dict[str, object] = {
        "Ref": "003000000000001AAA",
        "Str": "ü" * 300,
        "Txt": "tab\there\nnewline \\ backslash",
        "Flag": "true",
        "Count": 2**40,
        "Money": 1234567.89,
        "Ratio": 0.1,
        "Day": "2024-02-29",
        "At": "2024-02-29T23:59:59.123+0100",
        "Clock": "10:30:00.250Z",
        "Doc": {"a": [1, None, "ß"]},
        "Blob": "AAEC/w==",
    }
    batch = [
        replace(
            event(f"a{i:017d}", 1, entity="Every"),
            after={"Id": f"a{i:017d}", "SystemModstamp": stamp(1), **values},
        )
        for i in range(rows)
    ]
    out = await sink.write(Batch.of(batch))
    assert {o.kind for o in out} == {OutcomeKind.APPLIED}
    await sink.flush(None)
    kinds_of = {s.name: s.kind for s in EVERY_KIND}
    got = harness.rows("every", kinds=kinds_of)
    assert len(got) == rows
    row = got[f"a{0:017d}"]
    assert row["Str"] == "ü" * 300
    assert row["Txt"] == "tab\there\nnewline \\ backslash"
    assert row["Flag"] is True
    assert row["Count"] == 2**40
    assert row["Money"] == Decimal("1234567.89")
    assert row["Ratio"] == pytest.approx(0.1)
    assert row["Day"] == date(2024, 2, 29)
    assert row["At"] == datetime(2024, 2, 29, 22, 59, 59, 123000, tzinfo=UTC)
    assert str(row["Clock"]).startswith("10:30:00.25")
    assert row["Doc"] == {"a": [1, None, "ß"]}
    blob = row["Blob"]
    assert isinstance(blob, (bytes, memoryview))
    assert bytes(blob) == b"\x00\x01\x02\xff"


async def test_narrowing_keeps_the_column_and_a_type_can_come_back(harness: Harness) -> None:
    sink = await harness.sink()
    await sink.prepare(ACCOUNT)
    fields = {s.name: s for s in ACCOUNT}

    def schema_with(**changes: FieldSpec) -> EntitySchema:
        merged = fields | changes
        return EntitySchema.of(
            "Account", "Id", list(merged.values()), version_field="SystemModstamp"
        )

    # A shorter string and a date where a timestamp was: the columns hold them as they are.
    narrower = schema_with(
        Name=FieldSpec(name="Name", kind=FieldKind.STRING, length=10),
        Born=FieldSpec(name="Born", kind=FieldKind.DATE),
    )
    assert await sink.prepare(narrower) == []
    assert "Name__string" not in harness.columns("account")

    as_text = schema_with(Amount=FieldSpec(name="Amount", kind=FieldKind.STRING, length=40))
    assert len(await sink.prepare(as_text)) == 1  # quarantined into Amount__string
    await sink.write(Batch.of([event(A, 1, Amount="lots")]))
    back = schema_with()  # Amount is a decimal again: its own column takes it
    assert await sink.prepare(back) == []
    await sink.write(Batch.of([event(B, 1, Amount="2.50")]))
    await sink.flush(None)
    rows = harness.rows()
    assert rows[A]["Amount__string"] == "lots"
    assert rows[B]["Amount"] == Decimal("2.5")
    assert rows[B]["Amount__string"] is None


TEXT_LOADED = EntitySchema.of(
    "Plain",
    "Id",
    [spec for spec in EVERY_KIND if spec.kind is not FieldKind.BINARY],
    version_field="SystemModstamp",
)


@pytest.mark.parametrize("rows", [3, 150])
async def test_a_snapshot_into_a_new_table_keeps_every_value(harness: Harness, rows: int) -> None:
    # A snapshot into a new table (on PostgreSQL a COPY straight into it, the second batch
    # without reading versions first): text with separators, NULLs and numbers come back.
    sink = await harness.sink()
    await sink.prepare(TEXT_LOADED)
    values: dict[str, object] = {
        "Ref": None,
        "Str": 'quote " comma , cr \r lf \n end',
        "Txt": "tab\there \\N backslash \\ ",
        "Flag": False,
        "Count": -(2**40),
        "Money": 1234567.89,
        "Ratio": 1e-300,
        "Day": "2024-02-29",
        "At": "2024-02-29T23:59:59.123+0100",
        "Clock": "10:30:00.250Z",
        "Doc": {"a": [1, None, "ß"]},
    }

    def batch(first: int) -> Batch:
        return Batch.of(
            [
                replace(
                    event(f"a{i:017d}", 1, Operation.READ, entity="Plain"),
                    after={"Id": f"a{i:017d}", "SystemModstamp": stamp(1), **values},
                )
                for i in range(first, first + rows)
            ]
        )

    for first in (0, rows):
        out = await sink.write(batch(first))
        assert {o.kind for o in out} == {OutcomeKind.APPLIED}
    await sink.flush(None)
    got = harness.rows("plain", kinds={s.name: s.kind for s in TEXT_LOADED})
    assert len(got) == 2 * rows
    for row in (got[f"a{0:017d}"], got[f"a{2 * rows - 1:017d}"]):
        assert row["Ref"] is None
        assert row["Str"] == 'quote " comma , cr \r lf \n end'
        assert row["Txt"] == "tab\there \\N backslash \\ "
        assert row["Flag"] is False
        assert row["Count"] == -(2**40)
        assert row["Money"] == Decimal("1234567.89")
        assert row["Ratio"] == pytest.approx(1e-300)
        assert row["Day"] == date(2024, 2, 29)
        assert row["At"] == datetime(2024, 2, 29, 22, 59, 59, 123000, tzinfo=UTC)
        assert row["SystemModstamp"] == at(1)
        assert row["Doc"] == {"a": [1, None, "ß"]}


async def test_a_key_another_writer_added_during_a_snapshot_meets_the_version_guard(
    harness: Harness,
) -> None:
    sink = await harness.sink()
    await sink.prepare(ACCOUNT)
    keys = [f"001{i:015d}" for i in range(300)]
    out = await sink.write(Batch.of([event(k, 1, Operation.READ) for k in keys[:150]]))
    assert kinds(out) == ["applied"] * 150
    await sink.flush(None)
    # Another writer adds two of the next batch's keys, one newer and one older than it.
    other = await harness.sink(sync_id="other")
    await other.prepare(ACCOUNT)
    await other.write(Batch.of([event(keys[200], 9, Name="newer"), event(keys[201], 0)]))
    await other.flush(None)

    out = await sink.write(Batch.of([event(k, 1, Operation.READ) for k in keys[150:]]))
    await sink.flush(None)

    assert kinds(out)[50:52] == ["stale", "applied"]
    assert kinds(out).count("applied") == 149
    rows = harness.rows()
    assert len(rows) == 300
    assert rows[keys[200]]["Name"] == "newer"
    assert rows[keys[201]]["SystemModstamp"] == at(1)
