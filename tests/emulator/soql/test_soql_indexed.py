"""Index-answered queries (``soql/indexed.py``, ``store_index.py``, the store's counts) give
exactly the general path's answer: each query runs over the store and over a view of it that
offers only ``scan``/``get``/``children`` (so the engine scans and sorts), after random
writes that leave deleted rows, equal stamps, stamps from the past, rolled-back writes and
ids put back out of insertion order."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sfsync.emulator import store_index
from sfsync.emulator.clock import OrgClock
from sfsync.emulator.ids import to_18
from sfsync.emulator.schema.model import WireValue
from sfsync.emulator.schema.standard import standard_schema
from sfsync.emulator.soql import compile_query, indexed
from sfsync.emulator.store import OrgStore
from sfsync.emulator.store_index import UNKNOWN, IdOrder, Newest

SCHEMA = standard_schema()
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
Record = Mapping[str, WireValue]
#: Ids below and above every id a test mints ("z" sorts after digits and both letter cases).
LOWEST, HIGHEST = to_18("001xx0000000000"), to_18("001xx00000zzzzz")


class ScanOnly:
    """The store seen through the three required calls only: the engine's general path."""

    def __init__(self, store: OrgStore) -> None:
        self.store = store

    def scan(self, object_name: str, *, include_deleted: bool) -> Iterator[Record]:
        return self.store.scan(object_name, include_deleted=include_deleted)

    def get(self, record_id: str) -> Record | None:
        return self.store.get(record_id)

    def children(
        self, object_name: str, field_name: str, parent_id: str, *, include_deleted: bool
    ) -> Iterator[Record]:
        return self.store.children(
            object_name, field_name, parent_id, include_deleted=include_deleted
        )


class Forwarding(ScanOnly):
    """A narrowing wrapper that forwards unknown attributes (as the PK-chunking range source
    does): it must not pass for an indexed or counting source."""

    def scan(self, object_name: str, *, include_deleted: bool) -> Iterator[Record]:
        rows = self.store.scan(object_name, include_deleted=include_deleted)
        return (r for r in rows if str(r["Id"]).endswith(("A", "Q")))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


def _run(soql: str, source: object, *, include_deleted: bool) -> tuple[int, list[Any]]:
    result = compile_query(soql, SCHEMA).run(
        source,  # type: ignore[arg-type]
        now=T0,
        include_deleted=include_deleted,
        api_version="62.0",
    )
    return result.total_size, list(result.records)


def _agree(store: OrgStore, soql: str) -> None:
    for include_deleted in (False, True):
        fast = _run(soql, store, include_deleted=include_deleted)
        general = _run(soql, ScanOnly(store), include_deleted=include_deleted)
        assert fast == general, (soql, include_deleted)


def _stamp(offset: int) -> str:
    moment = T0 + timedelta(seconds=offset)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000+0000")


# -- random writes ----------------------------------------------------------------------------

OPS = st.lists(
    st.tuples(
        st.sampled_from(
            [
                "insert",
                "bulk",
                "update",
                "delete",
                "undelete",
                "hard",
                "rollback",
                "rollback_hard",
                "clock",
            ]
        ),
        st.integers(0, 30),
        st.integers(-3, 3),
    ),
    min_size=1,
    max_size=25,
)


class _UndoError(Exception):
    """Raised to roll a transaction back."""


def _rolled_back(store: OrgStore, *steps: Callable[[], object]) -> None:
    """Run ``steps`` in one transaction, then roll it back."""

    def run() -> None:
        with store.transaction():
            for step in steps:
                step()
            raise _UndoError

    with pytest.raises(_UndoError):
        run()


def _apply(store: OrgStore, clock: OrgClock, ops: list[tuple[str, int, int]]) -> list[str]:
    """Run ``ops`` against ``store``; returns every id ever created."""
    created: list[str] = []

    def pick(n: int, *, deleted: bool | None = None) -> str | None:
        rows = [
            str(r["Id"])
            for r in store.scan("Account", include_deleted=True)
            if deleted is None or r["IsDeleted"] is deleted
        ]
        return rows[n % len(rows)] if rows else None

    for op, n, k in ops:
        if op == "insert":
            created.append(store.insert("Account", {"Name": f"N{n % 4}", "AnnualRevenue": n}))
        elif op == "bulk":
            # Explicit stamps: some from the past, some equal to others (ties on the stamp).
            rows: list[dict[str, WireValue]] = [
                {"Name": f"B{i % 3}", "AnnualRevenue": i, "SystemModstamp": _stamp(k * 60 + i % 2)}
                for i in range(n % 5 + 1)
            ]
            created.extend(store.bulk_insert("Account", rows))
        elif op == "update" and (rid := pick(n, deleted=False)):
            store.update("Account", rid, {"AnnualRevenue": n + k})
        elif op == "delete" and (rid := pick(n, deleted=False)):
            store.delete(rid)
        elif op == "undelete" and (rid := pick(n, deleted=True)):
            store.undelete(rid)
        elif op == "hard" and (rid := pick(n)):
            store.hard_delete(rid)
        elif op in ("rollback", "rollback_hard") and (rid := pick(n, deleted=False)):
            # The newest row may shrink back, and a hard-deleted id comes back at the end of
            # the table's insertion order.
            steps: list[Callable[[], object]] = [
                partial(store.update, "Account", rid, {"AnnualRevenue": -1})
            ]
            if op == "rollback_hard":
                steps.append(partial(store.hard_delete, rid))
            steps.append(partial(store.insert, "Account", {"Name": "gone"}))
            _rolled_back(store, *steps)
        elif op == "clock":
            clock.advance(k * 0.5)  # backwards too: stamps need not follow insertion
    return created


def _queries(ids: list[str], n: int, k: int) -> list[str]:
    bound = ids[n % len(ids)] if ids else LOWEST
    limit, offset = n % 4 + 1, k % 3
    where_id = [
        "",
        f"WHERE Id > '{bound}' ",
        f"WHERE Id >= '{bound}' ",
        f"WHERE Id < '{bound}' ",
        f"WHERE Id <= '{bound}' ",
        f"WHERE Id = '{bound}' ",
        f"WHERE Id > '{bound}' AND Name LIKE 'B%' ",
        f"WHERE AnnualRevenue > {k} AND Id < '{bound}' ",
        f"WHERE Id > '{bound}' OR AnnualRevenue = 1 ",
        "WHERE Name != 'N1' ",
        f"WHERE Id > '{LOWEST}' AND Id < '{HIGHEST}' ",
    ][n % 11]
    stamp_where = ["", "WHERE Name LIKE 'N%' ", "WHERE IsDeleted = false "][k % 3]
    return [
        f"SELECT Id FROM Account {where_id}ORDER BY Id LIMIT {limit}",
        f"SELECT Id, Name, Owner.Name FROM Account {where_id}ORDER BY Id DESC LIMIT {limit}",
        f"SELECT Id FROM Account {where_id}ORDER BY Id LIMIT {limit} OFFSET {offset}",
        f"SELECT Id FROM Account {where_id}ORDER BY Id DESC NULLS LAST LIMIT {limit} "
        f"OFFSET {offset}",
        f"SELECT Id FROM Account {where_id}ORDER BY Id LIMIT {limit} ALL ROWS",
        f"SELECT Id FROM Account {where_id}ORDER BY Id LIMIT 0",
        f"SELECT Id, Name FROM Account {where_id}ORDER BY Id",
        f"SELECT Id FROM Account {where_id}ORDER BY Id DESC OFFSET {offset}",
        "SELECT Id, SystemModstamp FROM Account ORDER BY SystemModstamp DESC, Id DESC LIMIT 1",
        f"SELECT Id, SystemModstamp FROM Account {stamp_where}"
        "ORDER BY SystemModstamp DESC, Id DESC LIMIT 1",
        f"SELECT Id FROM Account {stamp_where}ORDER BY SystemModstamp DESC, Id DESC LIMIT 1 "
        "ALL ROWS",
        "SELECT Id FROM Account ORDER BY SystemModstamp DESC, Id DESC LIMIT 1 OFFSET 1",
        f"SELECT Id FROM Account ORDER BY SystemModstamp DESC, Id DESC LIMIT {limit}",
        "SELECT Id FROM Account ORDER BY SystemModstamp DESC, Id ASC LIMIT 1",
        "SELECT Id FROM Account ORDER BY SystemModstamp DESC NULLS FIRST, Id DESC LIMIT 1",
        "SELECT Id FROM Account ORDER BY SystemModstamp DESC LIMIT 1",
        "SELECT COUNT() FROM Account",
        f"SELECT COUNT() FROM Account LIMIT {limit} OFFSET {offset}",
        f"SELECT COUNT() FROM Account {where_id}",
        f"SELECT Id FROM Account LIMIT {limit} OFFSET {offset}",
    ]


@settings(max_examples=150, deadline=None)
@given(OPS, st.integers(0, 1000), st.integers(0, 1000), st.integers(1, 8))
def test_index_answers_equal_the_general_path(
    ops: list[tuple[str, int, int]], n: int, k: int, budget: int
) -> None:
    clock = OrgClock(frozen_at=T0)
    store = OrgStore(SCHEMA, clock)
    try:
        ids = _apply(store, clock, ops)
        # A small walk budget: filtered walks over most of the table give up, or not.
        with patch.object(indexed, "WALK_BUDGET", budget):
            for soql in _queries(ids, n, k):
                _agree(store, soql)
        _check_indexes(store)
    finally:
        store.close()


def _check_indexes(store: OrgStore) -> None:
    for include_deleted in (False, True):
        rows = list(store.scan("Account", include_deleted=include_deleted))
        by_id = sorted(rows, key=lambda r: str(r["Id"]))
        assert list(store.in_id_order("Account", include_deleted=include_deleted)) == by_id
        backwards = store.in_id_order("Account", include_deleted=include_deleted, descending=True)
        assert list(backwards) == by_id[::-1]
        assert store.count("Account", include_deleted=include_deleted) == len(rows)
    everything = list(store.scan("Account", include_deleted=True))
    expected = max(everything, key=lambda r: (r["SystemModstamp"], r["Id"]), default=None)
    assert store.newest("Account") == expected


# -- fixed cases ------------------------------------------------------------------------------


@pytest.fixture
def store() -> Iterator[OrgStore]:
    s = OrgStore(SCHEMA, OrgClock(frozen_at=T0))
    yield s
    s.close()


def test_newest_is_a_deleted_row_for_query_all_only(store: OrgStore) -> None:
    first, second = store.bulk_insert("Account", [{"Name": "a"}, {"Name": "b"}])
    store.delete(first)  # the delete bumps its stamp past every other
    soql = "SELECT Id FROM Account ORDER BY SystemModstamp DESC, Id DESC LIMIT 1"
    assert _run(soql, store, include_deleted=True)[1][0]["Id"] == first
    assert _run(soql, store, include_deleted=False)[1][0]["Id"] == second
    _agree(store, soql)


def test_a_rolled_back_write_of_the_newest_row_gives_the_top_back(store: OrgStore) -> None:
    first, second = store.bulk_insert("Account", [{"Name": "a"}, {"Name": "b"}])
    soql = "SELECT Id FROM Account ORDER BY SystemModstamp DESC, Id DESC LIMIT 1"

    def update_and_check() -> None:
        store.update("Account", first, {"AnnualRevenue": 1})  # bumped past the frozen clock
        assert _run(soql, store, include_deleted=False)[1][0]["Id"] == first

    _rolled_back(store, update_and_check)
    assert _run(soql, store, include_deleted=False)[1][0]["Id"] == second
    _agree(store, soql)


def test_a_wrapper_forwarding_attributes_is_scanned_not_trusted(store: OrgStore) -> None:
    store.bulk_insert("Account", [{"Name": f"a{i}"} for i in range(40)])
    narrowed = Forwarding(store)
    expected = sum(1 for _ in narrowed.scan("Account", include_deleted=False))
    assert _run("SELECT COUNT() FROM Account", narrowed, include_deleted=False)[0] == expected
    first = min(str(r["Id"]) for r in narrowed.scan("Account", include_deleted=False))
    records = _run("SELECT Id FROM Account ORDER BY Id LIMIT 1", narrowed, include_deleted=False)
    assert records[1][0]["Id"] == first


def test_an_id_put_back_out_of_order_is_walked_in_id_order(store: OrgStore) -> None:
    ids = store.bulk_insert("Account", [{"Name": f"a{i}"} for i in range(5)])
    _rolled_back(store, lambda: store.hard_delete(ids[1]))
    assert [str(r["Id"]) for r in store.scan("Account", include_deleted=False)][-1] == ids[1]
    assert [str(r["Id"]) for r in store.in_id_order("Account", include_deleted=False)] == ids
    _agree(store, "SELECT Id FROM Account ORDER BY Id LIMIT 3 OFFSET 1")


def test_id_order_compacts_removed_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_index, "_COMPACT_AFTER", 2)
    order = IdOrder()
    order.add_many(["a", "b", "c", "d", "e"])
    rows = {rid: (rid,) for rid in "abcde"}
    for rid in "bcd":
        del rows[rid]
        order.remove(rid, rows)
    assert order.ids == ["a", "e"]
    order.add("c")  # an id put back after compaction goes to its place
    order.add_many(["f", "b"])
    assert order.ids == ["a", "b", "c", "e", "f"]
    assert list(order.walk(None, "c", descending=True)) == ["c", "b", "a"]
    assert list(order.walk("d", None, descending=False)) == ["e", "f"]
    assert list(order.walk("b", "e", descending=False)) == ["b", "c", "e"]
    assert list(order.walk("bb", "e", descending=True)) == ["e", "c"]
    assert list(order.walk("g", "a", descending=True)) == []


def test_a_removed_id_put_back_before_compaction_is_listed_once() -> None:
    order = IdOrder()
    order.add_many(["a", "b", "c"])
    order.remove("b", {"a": (), "c": ()})
    order.add("b")
    order.remove("c", {"a": (), "b": ()})
    order.add_many(["c", "d"])
    assert order.ids == ["a", "b", "c", "d"]


def test_newest_tracks_writes_and_recomputes_when_the_top_leaves() -> None:
    newest = Newest(1)
    rows: dict[str, tuple[WireValue, ...]] = {}

    def put(rid: str, stamp: WireValue) -> None:
        old = rows.get(rid)
        rows[rid] = (rid, stamp)
        newest.changed(rid, old, rows[rid])

    assert newest.top(rows) is None
    put("a", None)
    assert newest.top(rows) is None  # rows without a stamp never count
    put("b", "2026-01-01")
    put("c", "2026-01-01")
    assert newest.top(rows) == ("2026-01-01", "c")  # equal stamps: the greatest id
    put("a", "2025-01-01")
    assert newest.top(rows) == ("2026-01-01", "c")
    old = rows.pop("c")
    newest.changed("c", old, None)
    assert newest.top(rows) == ("2026-01-01", "b")  # recomputed
    put("b", 42)
    assert newest.top(rows) is UNKNOWN  # not text: the general path decides
    put("b", "2027-01-01")
    assert newest.top(rows) == ("2027-01-01", "b")
    newest.added([("d", ("d", "2028-01-01")), ("e", ("e", None))])
    rows.update(d=("d", "2028-01-01"), e=("e", None))
    assert newest.top(rows) == ("2028-01-01", "d")


def test_newest_of_a_record_written_since_is_left_to_the_scan(store: OrgStore) -> None:
    (rid,) = store.bulk_insert("Account", [{"Name": "a"}])
    table = store._table("Account")  # a write between the index and the read: simulated
    values = list(table.rows[rid])
    values[table.slot["SystemModstamp"]] = _stamp(-60)
    table.rows[rid] = tuple(values)
    assert store.newest("Account") is None
    _agree(store, "SELECT Id FROM Account ORDER BY SystemModstamp DESC, Id DESC LIMIT 1")


def test_indexes_are_rebuilt_when_a_saved_store_is_reopened(tmp_path: Path) -> None:
    path = tmp_path / "org.sqlite"
    clock = OrgClock(frozen_at=T0)
    first = OrgStore(SCHEMA, clock, data_path=path)
    ids = first.bulk_insert("Account", [{"Name": f"a{i}"} for i in range(30)])
    for rid in ids[::4]:
        first.delete(rid)
    first.close()
    store = OrgStore(SCHEMA, clock, data_path=path)
    try:
        _check_indexes(store)
        for soql in _queries(ids, 7, 2):
            _agree(store, soql)
    finally:
        store.close()
