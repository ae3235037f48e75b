"""OrgStore semantics: CRUD, system fields, indexes, recycle bin, transactions, listeners,
replication windows, upsert, bulk load and persistence across reopen."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sfsync.emulator.clock import OrgClock
from sfsync.emulator.errors import ApiError
from sfsync.emulator.ids import is_valid_id
from sfsync.emulator.schema.loader import load_schema
from sfsync.emulator.schema.model import Schema
from sfsync.emulator.schema.standard import standard_schema
from sfsync.emulator.store import (
    INTEGRATION_USERNAME,
    ChangeRecord,
    OrgStore,
    call_context,
)

T0 = datetime(2024, 1, 15, 9, 30, tzinfo=UTC)
CUSTOM = """
objects:
  Account:
    fields:
      Ext__c: {type: text, length: 20, external_id: true}
      Code__c: {type: text, length: 20, unique: true, case_sensitive: true}
      Seq__c: {type: auto_number, format: "AC-{00}"}
  Invoice__c:
    name_field: {type: auto_number, format: "INV-{0000}"}
    fields:
      Account__c: {type: master_detail, reference_to: Account, child_relationship_name: Invoices__r}
      Amount__c: {type: currency}
      Seq__c: {type: auto_number, format: "S-{000}"}
"""


@pytest.fixture
def clock() -> OrgClock:
    return OrgClock(frozen_at=T0)


@pytest.fixture
def schema(tmp_path: Path) -> Schema:
    path = tmp_path / "schema.yaml"
    path.write_text(CUSTOM)
    return load_schema(path)


@pytest.fixture
def store(schema: Schema, clock: OrgClock) -> Iterator[OrgStore]:
    s = OrgStore(schema, clock)
    yield s
    s.close()


def _error(call: object, *args: object, **kwargs: object) -> ApiError:
    assert callable(call)
    with pytest.raises(ApiError) as info:
        call(*args, **kwargs)
    return info.value


def _failing_transaction(store: OrgStore, *steps: Callable[[], object]) -> ApiError:
    """Run ``steps`` in one transaction and return the ApiError that must end it."""

    def run() -> None:
        with store.transaction():
            for step in steps:
                step()

    with pytest.raises(ApiError) as info:
        run()
    return info.value


def test_integration_user_exists_and_owns_writes(store: OrgStore) -> None:
    user = store.get(store.integration_user_id)
    assert user is not None
    assert user["Username"] == INTEGRATION_USERNAME
    assert user["CreatedById"] == store.integration_user_id
    aid = store.insert("Account", {"Name": "Acme"})
    row = store.get(aid)
    assert row is not None
    assert row["OwnerId"] == row["CreatedById"] == store.integration_user_id


def test_insert_sets_id_and_system_fields(store: OrgStore) -> None:
    aid = store.insert("account", {"name": "Acme", "BillingCity": "Paris"})
    assert len(aid) == 18
    assert is_valid_id(aid)
    assert aid.startswith("001")
    row = store.get(aid[:15])
    assert row is not None
    assert row["Id"] == aid
    assert row["Name"] == "Acme"
    assert row["IsDeleted"] is False
    stamp = "2024-01-15T09:30:00.000+0000"
    assert row["CreatedDate"] == row["LastModifiedDate"] == row["SystemModstamp"] == stamp
    assert row["Industry"] is None
    assert "BillingAddress" not in row  # compound fields are assembled by readers


def test_update_bumps_system_modstamp_strictly_even_with_frozen_clock(store: OrgStore) -> None:
    aid = store.insert("Account", {"Name": "Acme"})
    stamps = []
    for n in range(5):
        store.update("Account", aid, {"Phone": f"555-{n}"})
        row = store.get(aid)
        assert row is not None
        stamps.append(str(row["SystemModstamp"]))
    assert stamps == sorted(set(stamps))
    assert stamps[0] == "2024-01-15T09:30:00.001+0000"


def test_update_uses_clock_and_user(store: OrgStore, clock: OrgClock) -> None:
    other = store.bulk_insert(
        "User", [{"Username": "u@x.io", "LastName": "U", "Alias": "u", "Email": "u@x.io"}]
    )[0]
    aid = store.insert("Account", {"Name": "Acme"})
    clock.advance(60)
    store.update("Account", aid, {"Name": "Acme 2"}, user_id=other)
    row = store.get(aid)
    assert row is not None
    assert row["LastModifiedById"] == other
    assert row["LastModifiedDate"] == row["SystemModstamp"] == "2024-01-15T09:31:00.000+0000"
    assert row["CreatedById"] == store.integration_user_id


def test_scan_and_count_hide_deleted_unless_asked(store: OrgStore) -> None:
    a = store.insert("Account", {"Name": "A"})
    b = store.insert("Account", {"Name": "B"})
    store.delete(a)
    live = [r["Id"] for r in store.scan("Account", include_deleted=False)]
    every = [r["Id"] for r in store.scan("Account", include_deleted=True)]
    assert live == [b]
    assert every == [a, b]
    assert store.count("Account") == 1
    assert store.count("Account", include_deleted=True) == 2


def test_unknown_object_is_invalid_type(store: OrgStore) -> None:
    err = _error(store.insert, "Foo", {"Name": "x"})
    assert err.details[0].code == "INVALID_TYPE"
    assert "sObject type 'Foo' is not supported" in err.details[0].message


def test_children_follow_the_lookup_index(store: OrgStore) -> None:
    a = store.insert("Account", {"Name": "A"})
    b = store.insert("Account", {"Name": "B"})
    c1 = store.insert("Contact", {"LastName": "One", "AccountId": a})
    c2 = store.insert("Contact", {"LastName": "Two", "AccountId": a})
    assert [r["Id"] for r in store.children("Contact", "AccountId", a, include_deleted=False)] == [
        c1,
        c2,
    ]
    store.update("Contact", c2, {"AccountId": b})
    assert [
        r["Id"] for r in store.children("Contact", "accountid", a[:15], include_deleted=False)
    ] == [c1]
    assert [r["Id"] for r in store.children("Contact", "AccountId", b, include_deleted=False)] == [
        c2
    ]
    store.update("Contact", c2, {"AccountId": None})
    assert list(store.children("Contact", "AccountId", b, include_deleted=False)) == []


def test_delete_cascades_and_undelete_restores_together(store: OrgStore) -> None:
    a = store.insert("Account", {"Name": "A"})
    c = store.insert("Contact", {"LastName": "Doe", "AccountId": a})
    inv = store.insert("Invoice__c", {"Account__c": a, "Amount__c": 10})
    other = store.insert("Contact", {"LastName": "Free"})
    store.delete(a)
    for rid in (a, c, inv):
        row = store.get(rid)
        assert row is not None
        assert row["IsDeleted"] is True
    assert store.get(other) is not None
    assert [r["Id"] for r in store.children("Contact", "AccountId", a, include_deleted=True)] == [c]
    store.undelete(a)
    for rid in (a, c, inv):
        row = store.get(rid)
        assert row is not None
        assert row["IsDeleted"] is False


def test_recycle_bin_errors(store: OrgStore) -> None:
    a = store.insert("Account", {"Name": "A"})
    err = _error(store.undelete, a)
    assert (err.status, err.details[0].code) == (400, "UNDELETE_FAILED")
    store.delete(a)
    err = _error(store.delete, a)
    assert (err.status, err.details[0].code, err.details[0].message) == (
        404,
        "ENTITY_IS_DELETED",
        "entity is deleted",
    )
    err = _error(store.update, "Account", a, {"Name": "B"})
    assert (err.status, err.details[0].code) == (404, "ENTITY_IS_DELETED")
    for unknown in ("001xx0000000zzzAAA"[:15], "garbage"):
        err = _error(store.delete, unknown)
        assert (err.status, err.details[0].code) == (404, "NOT_FOUND")
    contact = store.insert("Contact", {"LastName": "X"})
    err = _error(store.update, "Account", contact, {"Name": "B"})
    assert err.details[0].code == "NOT_FOUND"


def test_users_cannot_be_deleted(store: OrgStore) -> None:
    err = _error(store.delete, store.integration_user_id)
    assert err.details[0].code == "INSUFFICIENT_ACCESS_OR_READONLY"


def test_hard_delete_erases_but_keeps_delete_log(store: OrgStore) -> None:
    a = store.insert("Account", {"Name": "A"})
    c = store.insert("Contact", {"LastName": "Doe", "AccountId": a})
    store.hard_delete(a)
    assert store.get(a) is None
    assert store.get(c) is None
    window = store.deleted_records("Contact", T0, T0 + timedelta(minutes=1))
    assert window == [(c, "2024-01-15T09:30:00.000+0000")]
    assert store.count("Account", include_deleted=True) == 0


def test_transaction_rolls_back_every_write_inside(store: OrgStore) -> None:
    keep = store.insert("Account", {"Name": "Keep"})
    _failing_transaction(
        store,
        lambda: store.insert("Account", {"Name": "Gone"}),
        lambda: store.update("Account", keep, {"Name": "Changed"}),
        lambda: store.delete(keep),
        lambda: store.insert("Account", {}),  # REQUIRED_FIELD_MISSING
    )
    assert [r["Name"] for r in store.scan("Account", include_deleted=True)] == ["Keep"]
    row = store.get(keep)
    assert row is not None
    assert row["IsDeleted"] is False
    assert row["SystemModstamp"] == "2024-01-15T09:30:00.000+0000"
    assert store.deleted_records("Account", T0, T0 + timedelta(minutes=1)) == []


def test_nested_transaction_rolls_back_only_its_own_writes(store: OrgStore) -> None:
    with store.transaction():
        outer = store.insert("Account", {"Name": "Outer"})
        _failing_transaction(
            store,
            lambda: store.insert("Account", {"Name": "Inner"}),
            lambda: store.insert("Account", {"Name": "x" * 300}),
        )
    assert [r["Id"] for r in store.scan("Account", include_deleted=True)] == [outer]


def test_rolled_back_indexes_are_restored(store: OrgStore) -> None:
    a = store.insert("Account", {"Name": "A", "Code__c": "K1"})
    c = store.insert("Contact", {"LastName": "Doe", "AccountId": a})

    def boom() -> None:
        raise ApiError.of(400, "X", "boom")

    _failing_transaction(
        store,
        lambda: store.update("Contact", c, {"AccountId": None}),
        lambda: store.update("Account", a, {"Code__c": "K2"}),
        boom,
    )
    assert [r["Id"] for r in store.children("Contact", "AccountId", a, include_deleted=False)] == [
        c
    ]
    assert store.find_by_field("Account", "Code__c", "K1") == [a]
    assert store.find_by_field("Account", "Code__c", "K2") == []


def test_listeners_hear_committed_changes_grouped_by_transaction(store: OrgStore) -> None:
    heard: list[ChangeRecord] = []
    store.add_listener(heard.append)
    with call_context(api="rest", client_id="sfsync"), store.transaction():
        a = store.insert("Account", {"Name": "A"})
        store.update("Account", a, {"Phone": "1"})
    assert [h.change_type for h in heard] == ["CREATE", "UPDATE"]
    assert heard[0].transaction_key == heard[1].transaction_key
    assert heard[0].client_id == "sfsync"
    assert heard[0].api == "rest"
    assert "Name" in heard[0].changed_fields
    assert set(heard[1].changed_fields) == {"Phone", "LastModifiedDate", "SystemModstamp"}
    assert heard[1].values_after["Phone"] == "1"
    assert heard[0].values_after["Phone"] is None  # the record as it was after that change
    assert heard[0].commit_timestamp == T0
    heard.clear()
    store.delete(a)
    store.undelete(a)
    assert [(h.change_type, h.record_id) for h in heard] == [("DELETE", a), ("UNDELETE", a)]
    assert heard[0].transaction_key != heard[1].transaction_key
    assert heard[0].values_after["IsDeleted"] is True
    heard.clear()
    _failing_transaction(
        store,
        lambda: store.insert("Account", {"Name": "B"}),
        lambda: store.insert("Account", {}),
    )
    assert heard == []


def test_find_by_field_ignores_case_unless_case_sensitive(store: OrgStore) -> None:
    a = store.insert("Account", {"Name": "Acme", "Ext__c": "ABC-1", "Code__c": "Zz"})
    assert store.find_by_field("Account", "Ext__c", "abc-1") == [a]
    assert store.find_by_field("Account", "Code__c", "Zz") == [a]
    assert store.find_by_field("Account", "Code__c", "zz") == []
    assert store.find_by_field("Account", "Name", "ACME") == [a]  # unindexed: scanned
    store.delete(a)
    assert store.find_by_field("Account", "Ext__c", "ABC-1") == []


def test_upsert_creates_then_updates(store: OrgStore) -> None:
    rid, created = store.upsert("Account", "Ext__c", "E-1", {"Name": "First"})
    assert created
    row = store.get(rid)
    assert row is not None
    assert row["Ext__c"] == "E-1"
    again, created = store.upsert("Account", "ext__c", "e-1", {"Name": "Second"})
    assert (again, created) == (rid, False)
    row = store.get(rid)
    assert row is not None
    assert row["Name"] == "Second"
    assert row["Ext__c"] == "E-1"


def test_upsert_errors(store: OrgStore) -> None:
    a = store.insert("Account", {"Name": "A", "Ext__c": "DUP"})
    b = store.insert("Account", {"Name": "B", "Ext__c": "dup"})
    err = _error(store.upsert, "Account", "Ext__c", "DUP", {"Name": "C"})
    assert err.status == 300
    assert [d.message for d in err.details] == [
        f"/services/data/v59.0/sobjects/Account/{a}",
        f"/services/data/v59.0/sobjects/Account/{b}",
    ]
    err = _error(store.upsert, "Account", "Name", "A", {})
    assert (err.status, err.details[0].code) == (404, "NOT_FOUND")
    assert err.details[0].message == (
        "Provided external ID field does not exist or is not accessible: Name"
    )
    err = _error(store.upsert, "Account", "Ext__c", "NEW", {"Name": "N", "Ext__c": "OTHER"})
    assert (err.status, err.details[0].code) == (400, "INVALID_FIELD")


def test_upsert_by_id(store: OrgStore) -> None:
    rid, created = store.upsert("Account", "Id", "", {"Name": "New"})
    assert created
    same, created = store.upsert("Account", "Id", rid, {"Name": "Renamed"})
    assert (same, created) == (rid, False)


def test_unique_field_rejects_duplicates_and_blocks_undelete(store: OrgStore) -> None:
    a = store.insert("Account", {"Name": "A", "Code__c": "K"})
    err = _error(store.insert, "Account", {"Name": "B", "Code__c": "K"})
    assert err.details[0].code == "DUPLICATE_VALUE"
    assert err.details[0].message == (
        f"duplicate value found: Code__c duplicates value on record with id: {a}"
    )
    store.delete(a)
    b = store.insert("Account", {"Name": "B", "Code__c": "K"})
    err = _error(store.undelete, a)
    assert err.details[0].message.endswith(b)


def test_auto_numbers_and_derived_fields(store: OrgStore) -> None:
    a = store.insert("Account", {"Name": "A"})
    first = store.insert("Case", {"Subject": "one"})
    second = store.insert("Case", {"Subject": "two", "Status": "Closed"})
    rows = [store.get(first), store.get(second)]
    assert [r["CaseNumber"] for r in rows if r] == ["00000001", "00000002"]
    assert [r["IsClosed"] for r in rows if r] == [False, True]
    assert [r["Priority"] for r in rows if r] == ["Medium", "Medium"]
    inv = store.get(store.insert("Invoice__c", {"Account__c": a}))
    assert inv is not None
    assert (inv["Name"], inv["Seq__c"]) == ("INV-0001", "S-001")
    account = store.get(a)
    assert account is not None
    assert account["Seq__c"] == "AC-01"
    c = store.get(store.insert("Contact", {"FirstName": "Jane", "LastName": "Doe"}))
    assert c is not None
    assert c["Name"] == "Jane Doe"
    opp = store.insert(
        "Opportunity",
        {"Name": "O", "StageName": "Closed Won", "CloseDate": "2024-02-01", "Amount": 1000},
    )
    row = store.get(opp)
    assert row is not None
    assert (row["IsClosed"], row["IsWon"], row["Probability"]) == (True, True, 100.0)


def test_updated_and_deleted_windows(store: OrgStore, clock: OrgClock) -> None:
    a = store.insert("Account", {"Name": "A"})
    clock.advance(120)
    b = store.insert("Account", {"Name": "B"})
    clock.advance(120)
    store.delete(a)
    start = T0 + timedelta(seconds=59)  # truncated to 09:30
    assert store.updated_ids("Account", start, T0 + timedelta(minutes=2)) == []  # a is deleted
    assert store.updated_ids("Account", T0, T0 + timedelta(minutes=3)) == [b]
    assert store.updated_ids("Account", T0 + timedelta(minutes=3), T0 + timedelta(minutes=9)) == []
    deleted = store.deleted_records("Account", T0, T0 + timedelta(minutes=10))
    assert deleted == [(a, "2024-01-15T09:34:00.000+0000")]
    clock.advance(16 * 86400)
    assert store.deleted_records("Account", T0, T0 + timedelta(days=30)) == []


def test_bulk_load_assigns_ids_and_indexes(store: OrgStore) -> None:
    ids = store.bulk_insert("Account", [{"Name": f"A{i}", "ext__c": f"E{i}"} for i in range(50)])
    assert len(ids) == 50
    assert ids == sorted(ids)
    assert store.count("Account") == 50
    assert store.find_by_field("Account", "Ext__c", "e7") == [ids[7]]
    contacts = store.bulk_load(
        "Contact", [{"LastName": "L", "FirstName": "F", "AccountId": ids[0]}] * 3
    )
    assert contacts == 3
    kids = list(store.children("Contact", "AccountId", ids[0], include_deleted=False))
    assert [k["Name"] for k in kids] == ["F L"] * 3
    err = _error(store.bulk_load, "Account", [{"Nope": 1}])
    assert err.details[0].code == "INVALID_FIELD"
    with store.transaction(), pytest.raises(RuntimeError):
        store.bulk_load("Account", [{"Name": "x"}])


def test_persistence_survives_reopen(schema: Schema, clock: OrgClock, tmp_path: Path) -> None:
    path = tmp_path / "org.sqlite"
    first = OrgStore(schema, clock, data_path=path)
    user = first.integration_user_id
    a = first.insert("Account", {"Name": "Acme", "Ext__c": "E1"})
    c = first.insert("Contact", {"LastName": "Doe", "AccountId": a})
    first.update("Account", a, {"Phone": "123"})
    gone = first.insert("Account", {"Name": "Gone"})
    first.delete(gone)
    first.insert("Case", {"Subject": "s"})
    bulk = first.bulk_insert("Account", [{"Name": "Bulk"}])
    _failing_transaction(
        first,
        lambda: first.insert("Account", {"Name": "Rolled back"}),
        lambda: first.insert("Account", {}),
    )
    first.close()

    second = OrgStore(schema, clock, data_path=path)
    try:
        assert second.integration_user_id == user
        row = second.get(a)
        assert row is not None
        assert (row["Name"], row["Phone"], row["Ext__c"]) == ("Acme", "123", "E1")
        assert [
            r["Id"] for r in second.children("Contact", "AccountId", a, include_deleted=False)
        ] == [c]
        dead = second.get(gone)
        assert dead is not None
        assert dead["IsDeleted"] is True
        assert second.deleted_records("Account", T0, T0 + timedelta(minutes=1)) == [
            (gone, "2024-01-15T09:30:00.000+0000")
        ]
        assert second.get(bulk[0]) is not None
        assert [r["Name"] for r in second.scan("Account", include_deleted=True)] == [
            "Acme",
            "Gone",
            "Bulk",
        ]
        assert second.find_by_field("Account", "Ext__c", "e1") == [a]
        newer = second.insert("Account", {"Name": "Newer"})
        assert newer > bulk[0]
        case = second.get(second.insert("Case", {"Subject": "t"}))
        assert case is not None
        assert case["CaseNumber"] == "00000002"
        second.undelete(gone)
    finally:
        second.close()
    third = OrgStore(schema, clock, data_path=path)
    try:
        row = third.get(gone)
        assert row is not None
        assert row["IsDeleted"] is False
        assert third.deleted_records("Account", T0, T0 + timedelta(minutes=1)) == []
    finally:
        third.close()


def test_works_with_the_plain_standard_schema(clock: OrgClock) -> None:
    store = OrgStore(standard_schema(), clock)
    assert store.count("User") == 1


def test_reopen_with_a_changed_schema_remaps_fields(
    schema: Schema, clock: OrgClock, tmp_path: Path
) -> None:
    path = tmp_path / "org.sqlite"
    first = OrgStore(schema, clock, data_path=path)
    a = first.insert("Account", {"Name": "Acme", "Ext__c": "E1", "Phone": "1"})
    first.close()
    grown = tmp_path / "grown.yaml"
    grown.write_text("objects:\n  Account:\n    fields:\n      Extra__c: {type: text}\n")
    second = OrgStore(load_schema(grown), clock, data_path=path)
    try:
        row = second.get(a)
        assert row is not None
        assert (row["Name"], row["Phone"], row["Extra__c"], row["IsDeleted"]) == (
            "Acme",
            "1",
            None,
            False,
        )
        assert "Ext__c" not in row
        second.update("Account", a, {"Extra__c": "x"})
    finally:
        second.close()
    third = OrgStore(load_schema(grown), clock, data_path=path)
    try:
        row = third.get(a)
        assert row is not None
        assert row["Extra__c"] == "x"
    finally:
        third.close()


def test_a_failing_listener_does_not_undo_the_write_or_starve_others(
    store: OrgStore, caplog: pytest.LogCaptureFixture
) -> None:
    heard: list[str] = []

    def broken(change: ChangeRecord) -> None:
        raise RuntimeError("listener bug")

    store.add_listener(broken)
    store.add_listener(lambda change: heard.append(change.record_id))
    aid = store.insert("Account", {"Name": "A"})
    assert heard == [aid]
    assert store.get(aid) is not None
    assert "listener bug" in caplog.text


def test_concurrent_writers_get_unique_ids(store: OrgStore) -> None:
    import threading

    made: list[str] = []
    lock = threading.Lock()

    def work(n: int) -> None:
        mine = [store.insert("Account", {"Name": f"T{n}-{i}"}) for i in range(100)]
        with lock:
            made.extend(mine)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(made)) == 400
    assert store.count("Account") == 400


def test_purge_erases_only_expired_recycle_bin_records(store: OrgStore, clock: OrgClock) -> None:
    old = store.insert("Account", {"Name": "Old"})
    kid = store.insert("Contact", {"LastName": "Kid", "AccountId": old})
    store.delete(old)
    clock.advance(10 * 86400)
    recent = store.insert("Account", {"Name": "Recent"})
    store.delete(recent)
    live = store.insert("Account", {"Name": "Live"})
    clock.advance(6 * 86400)
    assert store.purge_recycle_bin() == 2  # the old account and the contact deleted with it
    assert store.get(old) is None
    assert store.get(kid) is None
    assert store.get(recent) is not None
    assert store.get(live) is not None
    assert store.purge_recycle_bin() == 0


def _state(store: OrgStore) -> object:
    rows = {
        name: [dict(r) for r in store.scan(name, include_deleted=True)]
        for name in ("Account", "Contact", "Invoice__c")
    }
    accounts = [str(r["Id"]) for r in rows["Account"]]
    kids = {
        a: [r["Id"] for r in store.children("Contact", "AccountId", a, include_deleted=True)]
        for a in accounts
    }
    keys = {v: store.find_by_field("Account", "Ext__c", v) for v in ("k0", "k1", "k2")}
    log = store.deleted_records("Account", T0, T0 + timedelta(days=1))
    return rows, kids, keys, log


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["insert", "contact", "child", "update", "delete", "undelete", "hard"]),
            st.integers(0, 5),
            st.integers(0, 2),
        ),
        max_size=12,
    )
)
def test_a_failed_transaction_leaves_no_trace(
    store: OrgStore, ops: list[tuple[str, int, int]]
) -> None:
    before = _state(store)
    accounts = [str(r["Id"]) for r in store.scan("Account", include_deleted=True)]

    def run(op: str, pick: int, key: int) -> None:
        target = accounts[pick % len(accounts)] if accounts else None
        try:
            if op == "insert" or target is None:
                accounts.append(store.insert("Account", {"Name": "N", "Ext__c": f"k{key}"}))
            elif op == "contact":
                store.insert("Contact", {"LastName": "C", "AccountId": target})
            elif op == "child":
                accounts.append(store.insert("Account", {"Name": "K", "ParentId": target}))
            elif op == "update":
                store.update("Account", target, {"Ext__c": f"k{key}", "Phone": str(pick)})
            elif op == "delete":
                store.delete(target)
            elif op == "undelete":
                store.undelete(target)
            else:
                store.hard_delete(target)
                accounts.remove(target)
        except ApiError:
            pass  # an individual failure inside the batch is fine; the batch still fails below

    def boom() -> None:
        raise ApiError.of(400, "X", "batch fails")

    _failing_transaction(store, *[lambda o=o: run(*o) for o in ops], boom)
    assert _state(store) == before


def test_upsert_accepts_the_same_key_in_the_body(tmp_path: Path, clock: OrgClock) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        "objects:\n  Account:\n    fields:\n"
        "      Num__c: {type: number, precision: 10, scale: 0, external_id: true}\n"
    )
    store = OrgStore(load_schema(path), clock)
    rid, created = store.upsert("Account", "Num__c", "42", {"Name": "A", "Num__c": 42})
    assert created
    again, created = store.upsert("Account", "Num__c", "42.0", {"Name": "B", "Num__c": "42"})
    assert (again, created) == (rid, False)
    row = store.get(rid)
    assert row is not None
    assert (row["Num__c"], row["Name"]) == (42.0, "B")


def test_delete_clears_lookups_and_undelete_restores_them(
    schema: Schema, clock: OrgClock, tmp_path: Path
) -> None:
    path = tmp_path / "org.sqlite"
    store = OrgStore(schema, clock, data_path=path)
    parent = store.insert("Account", {"Name": "Parent"})
    child = store.insert("Account", {"Name": "Child", "ParentId": parent})
    asset = store.insert("Asset", {"Name": "Pump", "AccountId": parent})
    contact = store.insert("Contact", {"LastName": "Doe", "AccountId": parent})  # cascades
    heard: list[ChangeRecord] = []
    store.add_listener(heard.append)
    clock.advance(60)
    store.delete(parent)
    for rid, name in ((child, "ParentId"), (asset, "AccountId")):
        row = store.get(rid)
        assert row is not None
        assert row[name] is None
        assert row["IsDeleted"] is False
        assert row["SystemModstamp"] == "2024-01-15T09:31:00.000+0000"
        assert row["LastModifiedDate"] == "2024-01-15T09:30:00.000+0000"
    assert {h.record_id for h in heard} == {parent, contact}
    store.close()

    store = OrgStore(schema, clock, data_path=path)  # the cleared list survives a restart
    store.undelete(parent)
    for rid, name in ((child, "ParentId"), (asset, "AccountId"), (contact, "AccountId")):
        row = store.get(rid)
        assert row is not None
        assert row[name] == parent
    store.close()


def test_undelete_keeps_a_lookup_that_was_re_pointed(store: OrgStore) -> None:
    parent = store.insert("Account", {"Name": "Parent"})
    other = store.insert("Account", {"Name": "Other"})
    asset = store.insert("Asset", {"Name": "Pump", "AccountId": parent})
    store.delete(parent)
    store.update("Asset", asset, {"AccountId": other})
    store.undelete(parent)
    row = store.get(asset)
    assert row is not None
    assert row["AccountId"] == other


def test_row_is_a_read_only_mapping(store: OrgStore) -> None:
    row = store.get(store.insert("Account", {"Name": "A"}))
    assert row is not None
    assert row.get("Name") == "A"
    assert row.get("Nope") is None
    assert row.get("Nope", "x") == "x"
    assert "Name" in row
    assert "name" not in row  # declared casing only
    assert len(row) == len(list(row)) == len(dict(row))
    with pytest.raises(KeyError):
        row["Nope"]
    with pytest.raises(TypeError):
        row["Name"] = "B"  # type: ignore[index]
