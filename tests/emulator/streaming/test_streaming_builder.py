"""The change-event builder on synthetic commits: merging and overflow as properties."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from sfsync.emulator.schema.loader import load_schema
from sfsync.emulator.store_changes import ChangeRecord
from sfsync.emulator.store_rows import Row, Table
from sfsync.emulator.streaming.cdc import CdcSettings, ChangeEventBuilder

SCHEMA = load_schema(None)
MOMENT = datetime(2024, 1, 15, 9, 30, tzinfo=UTC)


def update(index: int, industry: str | None) -> ChangeRecord:
    return ChangeRecord(
        object_name="Account",
        record_id=f"001xx{index:010d}AAA",
        change_type="UPDATE",
        changed_fields=("Industry", "LastModifiedDate"),
        values_after={"Industry": industry, "LastModifiedDate": "2024-01-15T09:30:00.000+0000"},
        transaction_key="tx",
        commit_timestamp=MOMENT,
        user_id="005xx0000000001AAA",
        client_id=None,
        api="rest",
    )


industries = st.lists(st.sampled_from(["Energy", "Banking", None]), min_size=1, max_size=30)


@given(industries)
def test_merged_events_cover_every_record_once_with_identical_changes(
    values: list[str | None],
) -> None:
    changes = [update(i, v) for i, v in enumerate(values)]
    built = ChangeEventBuilder(SCHEMA).build(changes)
    seen = [rid for _, body in built for rid in body.header.record_ids]
    assert sorted(seen) == sorted(c.record_id for c in changes)
    by_id = {c.record_id: c.values_after["Industry"] for c in changes}
    for channel, body in built:
        assert channel == "/data/AccountChangeEvent"
        assert {by_id[rid] for rid in body.header.record_ids} == {body.values["Industry"]}
        assert body.header.nulled_fields == (
            ("Industry",) if body.values["Industry"] is None else ()
        )
    assert [body.header.sequence_number for _, body in built] == list(range(1, len(built) + 1))
    assert len(built) == len(set(values))
    assert len({body.header.commit_number for _, body in built}) == 1


@given(industries, st.integers(min_value=1, max_value=40))
def test_overflow_turns_the_rest_of_the_commit_into_one_gap_event(
    values: list[str | None], threshold: int
) -> None:
    changes = [update(i, v) for i, v in enumerate(values)]
    builder = ChangeEventBuilder(SCHEMA, CdcSettings(overflow_threshold=threshold))
    built = [body for _, body in builder.build(changes)]
    kept = min(len(changes), threshold // 2)  # each update here changes two fields
    normal = [b for b in built if b.header.change_type == "UPDATE"]
    assert sum(len(b.header.record_ids) for b in normal) == kept
    overflow = [b for b in built if b.header.change_type == "GAP_OVERFLOW"]
    assert len(overflow) == (1 if kept < len(changes) else 0)
    for gap in overflow:
        assert gap.header.record_ids == ()
        assert gap.header.entity_name == "Account"
        assert gap is built[-1]


def _create(index: int, values: dict[str, str | None], as_row: bool) -> ChangeRecord:
    account = SCHEMA.object("Account")
    assert account is not None
    table = Table(account)
    record = list(table.template)
    record[0], record[1] = f"001xx{index:010d}AAA", False
    for name, value in values.items():
        record[table.slot[name]] = value
    row = Row(table.slot, tuple(record))
    changed = tuple(n for n, v in row.items() if v is not None)
    return ChangeRecord(
        object_name="Account",
        record_id=str(row["Id"]),
        change_type="CREATE",
        changed_fields=changed,
        values_after=row if as_row else dict(row),
        transaction_key="tx",
        commit_timestamp=MOMENT,
        user_id="005xx0000000001AAA",
        client_id="c",
        api="bulkapi",
    )


creates = st.lists(
    st.fixed_dictionaries(
        {
            "Name": st.sampled_from(["A", "B"]),
            "Industry": st.sampled_from(["Energy", None]),
            "BillingCity": st.sampled_from(["Bern", None]),
            "CreatedDate": st.sampled_from(["2024-01-15T09:30:00.000+0000", None]),
        }
    ),
    min_size=1,
    max_size=12,
)


@given(creates)
def test_creates_read_from_store_rows_equal_creates_read_by_name(
    rows: list[dict[str, str | None]],
) -> None:
    # The store's rows take a one-pass path; any other mapping goes field by field.
    from_rows = ChangeEventBuilder(SCHEMA).build([_create(i, r, True) for i, r in enumerate(rows)])
    by_name = ChangeEventBuilder(SCHEMA).build([_create(i, r, False) for i, r in enumerate(rows)])
    assert from_rows == by_name
    assert all("Id" not in body.values and "IsDeleted" not in body.values for _, body in by_name)
    # Creates merge exactly when their non-null values match, the CreatedDate stamp aside.
    groups: dict[frozenset[tuple[str, str | None]], list[str]] = {}
    for i, r in enumerate(rows):
        content = frozenset((k, v) for k, v in r.items() if v is not None and k != "CreatedDate")
        groups.setdefault(content, []).append(f"001xx{i:010d}AAA")
    assert [list(body.header.record_ids) for _, body in by_name] == list(groups.values())


def _change(index: int, fields: tuple[str, ...], values: dict[str, str | None]) -> ChangeRecord:
    return ChangeRecord(
        object_name="Account",
        record_id=f"001xx{index:010d}AAA",
        change_type="UPDATE",
        changed_fields=fields,
        values_after=values,
        transaction_key="tx",
        commit_timestamp=MOMENT,
        user_id="005xx0000000001AAA",
        client_id=None,
        api="rest",
    )


field_sets = st.sampled_from(
    [
        ("Industry", "LastModifiedDate"),
        ("Industry",),
        ("Rating", "LastModifiedDate"),
        ("Industry", "Rating"),
        ("Rating", "Industry", "LastModifiedDate"),
    ]
)
updates = st.lists(
    st.tuples(
        field_sets,
        st.sampled_from(["Energy", "Banking", None]),
        st.sampled_from(["Hot", None]),
        st.sampled_from(["2024-01-15T09:30:00.000+0000", "2024-01-15T09:30:00.001+0000"]),
    ),
    min_size=1,
    max_size=25,
)


@given(updates)
def test_changes_merge_exactly_when_their_fields_and_values_match_stamps_aside(
    specs: list[tuple[tuple[str, ...], str | None, str | None, str]],
) -> None:
    changes = [
        _change(i, f, {"Industry": ind, "Rating": rat, "LastModifiedDate": stamp})
        for i, (f, ind, rat, stamp) in enumerate(specs)
    ]
    groups: dict[object, list[str]] = {}
    for c in changes:
        content = frozenset(
            (n, c.values_after[n]) for n in c.changed_fields if n != "LastModifiedDate"
        )
        nulled = tuple(n for n in c.changed_fields if c.values_after[n] is None)
        groups.setdefault((c.changed_fields, nulled, content), []).append(c.record_id)
    built = ChangeEventBuilder(SCHEMA).build(changes)
    assert [list(body.header.record_ids) for _, body in built] == list(groups.values())
