"""The store's batch write path (OrgStore.batch) against its single-record path: same records,
same errors in the same order, a failing row rolled back alone, one commit per batch."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sfsync.emulator.clock import OrgClock
from sfsync.emulator.errors import ApiError
from sfsync.emulator.schema.loader import load_schema
from sfsync.emulator.schema.model import FieldDef, FieldType, Schema
from sfsync.emulator.store import ChangeRecord, OrgStore
from sfsync.emulator.store_plan import _coercer
from sfsync.emulator.validation import coerce_value

T0 = datetime(2024, 1, 15, 9, 30, tzinfo=UTC)
SCHEMA = """
objects:
  Account:
    fields:
      Ext__c: {type: text, length: 20, external_id: true, unique: true}
      Tier__c: {type: picklist, values: [Gold, Silver], restricted: true}
      Seq__c: {type: auto_number, format: "AC-{00}"}
      Score__c: {type: number, precision: 5, scale: 2}
    validation_rules:
      - name: No_Bad_Name
        condition: "Name = 'bad'"
        message: "Name must not be bad"
        error_field: Name
"""

ROWS: list[dict[str, Any]] = [
    {"Name": "Acme", "AnnualRevenue": "1234.5", "NumberOfEmployees": "12", "Ext__c": "A-1"},
    {"Name": "x" * 300},  # STRING_TOO_LONG
    {"Name": "Beta", "Score__c": "1.005", "Tier__c": "Gold", "Phone": "+41 44"},
    {"Name": "Gamma", "Tier__c": "Bronze"},  # restricted picklist
    {"Name": "Delta", "Ext__c": "A-1"},  # DUPLICATE_VALUE with the first row
    {"Name": "bad"},  # validation rule
    {"Phone": "1"},  # REQUIRED_FIELD_MISSING
    {"Name": "Eps", "NoSuch__c": "1"},  # INVALID_FIELD: the single-record path
    {"Name": "Zeta", "Seq__c": "AC-99"},  # auto-number is not writable
    {"name": "Eta", "annualrevenue": 7, "ParentId": None, "Description": ""},
    {"Name": "Theta", "NumberOfEmployees": "1.5"},  # not an integer
    {"Name": "Iota", "Score__c": "123456"},  # out of range
    {"Name": "Kappa", "AnnualRevenue": "-0.5", "Score__c": "-2.675"},
    {"Name": "Lambda", "attributes": {"type": "Account"}, "Ext__c": "L-1"},
]


@pytest.fixture
def schema(tmp_path: Path) -> Schema:
    path = tmp_path / "schema.yaml"
    path.write_text(SCHEMA)
    return load_schema(path)


def _store(schema: Schema) -> OrgStore:
    return OrgStore(schema, OrgClock(frozen_at=T0))


@pytest.fixture
def stores(schema: Schema) -> Iterator[tuple[OrgStore, OrgStore]]:
    single, batched = _store(schema), _store(schema)
    yield single, batched
    single.close()
    batched.close()


def _outcome(call: Any) -> tuple[str, Any]:
    try:
        return ("ok", call())
    except ApiError as error:
        return ("error", (error.status, [(d.code, d.message, d.fields) for d in error.details]))


def _content(store: OrgStore, record_id: str) -> dict[str, Any]:
    row = store.get(record_id)
    assert row is not None
    return {k: v for k, v in row.items() if k != "Id"}


def _single_insert(store: OrgStore, values: Mapping[str, Any]) -> str:
    # The single-record path the batch path must equal (OrgStore.insert itself now runs as a
    # batch of one).
    table = store._table("Account")
    with store.transaction():
        return store._insert(table, values, store.default_user_id)


def test_inserts_give_the_same_records_and_errors_as_the_single_record_path(
    stores: tuple[OrgStore, OrgStore],
) -> None:
    single, batched = stores
    expected = [_outcome(lambda r=r: _single_insert(single, dict(r))) for r in ROWS]
    with batched.batch("Account", size_hint=len(ROWS)) as writer:
        got = [_outcome(lambda r=r: writer.insert(dict(r))) for r in ROWS]
    assert [kind for kind, _ in got] == [kind for kind, _ in expected]
    for (kind, a), (_, b) in zip(got, expected, strict=True):
        if kind == "error":
            assert a == b
        else:
            assert _content(batched, a) == _content(single, b)
    assert batched.count("Account") == single.count("Account")
    assert sum(kind == "error" for kind, _ in got) >= 9  # the rows above that must fail


TEXT_COLUMNS = ["Name", "AnnualRevenue", "NumberOfEmployees", "Ext__c", "Tier__c", "Score__c",
                "ParentId", "Phone"]  # fmt: skip
TEXT_ROWS = [
    ["Acme", "1234.5", "12", "T-1", "Gold", "1.005", "", "+41 44"],
    ["x" * 300, "", "", "", "", "", "", ""],  # STRING_TOO_LONG
    ["Gamma", "", "", "", "Bronze", "", "", ""],  # restricted picklist
    ["Delta", "", "", "T-1", "", "", "", ""],  # DUPLICATE_VALUE with the first row
    ["Delta2", "", "", "t-1", "", "", "", ""],  # the same, ignoring case
    ["bad", "", "", "", "", "", "", ""],  # validation rule
    ["", "", "", "", "", "", "", "1"],  # REQUIRED_FIELD_MISSING
    ["#N/A", "", "", "", "", "", "", ""],  # null Name: REQUIRED_FIELD_MISSING
    ["Theta", "", "1.5", "", "", "", "", ""],  # not an integer
    ["Iota", "", "", "", "", "123456", "", ""],  # out of range
    ["Kappa", "-0.5", "#N/A", "#N/A", "", "-2.675", "#N/A", ""],
    ["Mu", "", "", "", "", "", "001xx000003DGb2AAG", ""],  # no such parent
    ["Nu", "abc", "", "", "", "", "", ""],  # not a number
]


def test_text_rows_give_the_same_records_and_errors_as_dicts_of_their_values(
    stores: tuple[OrgStore, OrgStore],
) -> None:
    # A Bulk CSV row inserted as it is equals the single-record insert of its values
    # (empty: left out, #N/A: null).
    single, batched = stores

    def values(row: list[str]) -> dict[str, Any]:
        return {
            c: None if v == "#N/A" else v for c, v in zip(TEXT_COLUMNS, row, strict=True) if v != ""
        }

    expected = [_outcome(lambda r=r: _single_insert(single, values(r))) for r in TEXT_ROWS]
    with batched.batch("Account", size_hint=len(TEXT_ROWS)) as writer:
        columns = writer.text_columns([c.lower() for c in TEXT_COLUMNS], "#N/A")
        assert columns is not None
        got = [_outcome(lambda r=r: writer.insert_text(columns, r)) for r in TEXT_ROWS]
        # Columns the plan does not cover go through dicts.
        assert writer.text_columns(["Name", "Seq__c"], "#N/A") is None
        assert writer.text_columns(["Name", "Parent.Ext__c"], "#N/A") is None
        assert writer.text_columns(["Name", "name"], "#N/A") is None
    assert [kind for kind, _ in got] == [kind for kind, _ in expected]
    for (kind, a), (_, b) in zip(got, expected, strict=True):
        if kind == "error":
            assert a == b
        else:
            assert _content(batched, a) == _content(single, b)
    assert batched.count("Account") == single.count("Account") == 2
    assert sum(kind == "error" for kind, _ in got) == len(TEXT_ROWS) - 2


UPSERT_COLUMNS = ["Name", "NumberOfEmployees", "Tier__c", "Score__c", "Description"]
UPSERTS = [
    ("E-0", ["Renamed", "3", "Silver", "2.5", ""]),  # an update
    ("E-1", ["#N/A", "", "", "", ""]),  # REQUIRED_FIELD_MISSING on update
    ("E-2", ["", "x", "", "", ""]),  # not a number
    ("e-3", ["", "", "Bronze", "", "#N/A"]),  # restricted picklist (key ignoring case)
    ("E-9", ["New", "", "", "", "d"]),  # a create
    ("E-8", ["", "", "", "", "no name"]),  # a create without Name
    ("E-7", ["bad", "", "", "", ""]),  # validation rule on create
    ("E-3", ["", "", "", "1234", "d"]),  # out of range on update
]


def test_text_upserts_equal_upserts_of_dicts(stores: tuple[OrgStore, OrgStore]) -> None:
    dicts, texts = stores
    for store in stores:
        for i in range(4):
            store.insert("Account", {"Name": f"N{i}", "Ext__c": f"E-{i}"})

    def values(row: list[str]) -> dict[str, Any]:
        return {
            c: None if v == "#N/A" else v for c, v in zip(UPSERT_COLUMNS, row, strict=True) if v
        }

    with dicts.batch("Account") as writer:
        expected = [
            _outcome(lambda k=k, r=r: writer.upsert("Ext__c", k, values(r))) for k, r in UPSERTS
        ]
    with texts.batch("Account") as writer:
        changes = writer.text_columns(UPSERT_COLUMNS, "#N/A", creating=False)
        creates = writer.text_columns([*UPSERT_COLUMNS, "Ext__c"], "#N/A")
        assert changes is not None
        assert creates is not None
        got = [
            _outcome(lambda k=k, r=r: writer.upsert_text("Ext__c", k, changes, creates, r))
            for k, r in UPSERTS
        ]
    assert [kind for kind, _ in got] == [kind for kind, _ in expected]
    for (kind, a), (_, b) in zip(got, expected, strict=True):
        if kind == "error":
            assert a == b
        else:
            assert a[1] == b[1]
            assert _content(texts, a[0]) == _content(dicts, b[0])
    assert [kind for kind, _ in got] == [
        "ok",
        "error",
        "error",
        "error",
        "ok",
        "error",
        "error",
        "error",
    ]
    for i in range(4):
        key = f"E-{i}"
        (a,), (b,) = (
            texts.find_by_field("Account", "Ext__c", key),
            dicts.find_by_field("Account", "Ext__c", key),
        )
        assert _content(texts, a) == _content(dicts, b)


def test_updates_and_upserts_equal_the_single_record_path(
    stores: tuple[OrgStore, OrgStore],
) -> None:
    single, batched = stores
    ids = {}
    for store in stores:
        ids[id(store)] = [
            store.insert("Account", {"Name": f"N{i}", "Ext__c": f"E-{i}"}) for i in range(4)
        ]
    changes: list[dict[str, Any]] = [
        {"Name": "Renamed", "Score__c": "2.5"},
        {"Name": None},  # REQUIRED_FIELD_MISSING on update
        {"Ext__c": "E-0"},  # DUPLICATE_VALUE
        {"Description": "d", "NumberOfEmployees": 3, "Tier__c": "Silver"},
    ]

    def single_update(store: OrgStore, rid: str, values: dict[str, Any]) -> None:
        table = store._table("Account")
        with store.transaction():
            store._update(table, rid, values, store.default_user_id)

    expected = [
        _outcome(lambda i=i, v=v: single_update(single, ids[id(single)][i], dict(v)))
        for i, v in enumerate(changes)
    ]
    with batched.batch("Account") as writer:
        got = [
            _outcome(lambda i=i, v=v: writer.update(ids[id(batched)][i], dict(v)))
            for i, v in enumerate(changes)
        ]
    assert got == expected
    for i in range(4):
        assert _content(batched, ids[id(batched)][i]) == _content(single, ids[id(single)][i])

    upserts = [("E-3", {"Name": "Up"}), ("E-9", {"Name": "New"}), ("E-8", {"Ext__c": "E-7"})]
    expected_up = [
        _outcome(lambda k=k, v=v: single.upsert("Account", "Ext__c", k, dict(v)))
        for k, v in upserts
    ]
    with batched.batch("Account") as writer:
        got_up = [
            _outcome(lambda k=k, v=v: writer.upsert("Ext__c", k, dict(v))) for k, v in upserts
        ]
    assert [(kind, value[1] if kind == "ok" else value) for kind, value in got_up] == [
        (kind, value[1] if kind == "ok" else value) for kind, value in expected_up
    ]
    assert got_up[0] == ("ok", (ids[id(batched)][3], False))
    assert got_up[2][0] == "error"  # the body's key must match the URL's


def test_a_failing_row_leaves_no_trace_and_the_batch_commits_once(schema: Schema) -> None:
    store = _store(schema)
    commits: list[list[ChangeRecord]] = []
    store.add_commit_listener(commits.append)
    with store.batch("Account", size_hint=3) as writer:
        first = writer.insert({"Name": "One"})
        with pytest.raises(ApiError):
            writer.insert({"Name": "bad"})  # fails after its auto-number was taken
        third = writer.insert({"Name": "Three"})
    assert store.count("Account") == 2
    assert len(commits) == 1
    assert [(c.record_id, c.change_type) for c in commits[0]] == [
        (first, "CREATE"),
        (third, "CREATE"),
    ]
    # The failed row's auto-number was given back, as a nested rollback does.
    assert [store.get(i)["Seq__c"] for i in (first, third)] == ["AC-01", "AC-02"]  # type: ignore[index]
    assert len({c.transaction_key for c in commits[0]}) == 1
    store.close()


def test_an_exception_escaping_the_batch_undoes_all_of_it(schema: Schema) -> None:
    store = _store(schema)
    commits: list[list[ChangeRecord]] = []
    store.add_commit_listener(commits.append)

    def interrupted() -> None:
        with store.batch("Account") as writer:
            writer.insert({"Name": "One"})
            raise RuntimeError("stop")

    with pytest.raises(RuntimeError):
        interrupted()
    assert store.count("Account") == 0
    assert commits == []
    store.close()


def test_unknown_object_is_refused_before_anything_is_written(schema: Schema) -> None:
    store = _store(schema)
    with pytest.raises(ApiError) as info, store.batch("Nope"):
        pass
    assert info.value.details[0].code == "INVALID_TYPE"
    store.close()


NUMBER_FIELDS = [
    FieldDef(name="A", type=FieldType.CURRENCY, label="A", precision=18, scale=0),
    FieldDef(name="B", type=FieldType.DOUBLE, label="B", precision=10, scale=2),
    FieldDef(name="C", type=FieldType.PERCENT, label="C", precision=5, scale=3),
    FieldDef(name="D", type=FieldType.INT, label="D", precision=9, scale=0),
    FieldDef(name="E", type=FieldType.DOUBLE, label="E", scale=4),
    FieldDef(name="F", type=FieldType.STRING, label="F", length=5),
    FieldDef(name="G", type=FieldType.BOOLEAN, label="G"),
]


def _coerced(call: Any, raw: object) -> tuple[Any, ...]:
    try:
        value = call(raw)
    except ApiError as error:
        return ("error", error.details[0].code, error.details[0].message)
    return ("ok", type(value), value)


numbers = st.one_of(
    st.from_regex(r"-?[0-9]{0,16}(\.[0-9]{0,6})?", fullmatch=True),
    st.from_regex(r"-?\d{0,3}(\.\d{0,3})?", fullmatch=True),
)
others = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=8)
)


@settings(max_examples=400, deadline=None)
@given(raw=st.one_of(numbers, others), index=st.integers(0, len(NUMBER_FIELDS) - 1))
def test_the_coercer_shortcuts_equal_coerce_value(raw: object, index: int) -> None:
    f = NUMBER_FIELDS[index]

    def reference(value: object) -> object:
        coerced = coerce_value(f, value)
        return False if coerced is None and f.type is FieldType.BOOLEAN else coerced

    assert _coerced(_coercer(f), raw) == _coerced(reference, raw)


def test_external_id_index_follows_shared_values_through_writes(tmp_path: Path) -> None:
    # The index keeps one id per value, or a set when several records share it.
    path = tmp_path / "schema.yaml"
    path.write_text(
        "objects:\n  Account:\n    fields:\n      Key__c: {type: text, external_id: true}\n"
    )
    store = OrgStore(load_schema(path), OrgClock(frozen_at=T0))
    a = store.insert("Account", {"Name": "A", "Key__c": "K"})
    b = store.insert("Account", {"Name": "B", "Key__c": "k"})  # same key, any casing
    c = store.insert("Account", {"Name": "C", "Key__c": "K"})
    assert store.find_by_field("Account", "Key__c", "K") == sorted([a, b, c])
    store.update("Account", b, {"Key__c": "Other"})
    assert store.find_by_field("Account", "Key__c", "k") == sorted([a, c])
    store.update("Account", a, {"Key__c": None})
    assert store.find_by_field("Account", "Key__c", "K") == [c]
    assert store.find_by_field("Account", "Key__c", "other") == [b]
    store.delete(c)
    assert store.find_by_field("Account", "Key__c", "K") == []  # deleted rows do not match
    store.undelete(c)
    assert store.find_by_field("Account", "Key__c", "K") == [c]
    store.hard_delete(c)
    assert store.find_by_field("Account", "Key__c", "K") == []
    store.bulk_insert("Account", [{"Name": "D", "Key__c": "K"}, {"Name": "E", "Key__c": "K"}])
    assert len(store.find_by_field("Account", "Key__c", "K")) == 2
    store.close()
