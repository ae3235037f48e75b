"""The sink's pure decisions: values on the wire, object order, lock-aware packing, API choice,
the write plan, and row errors. Table-driven and property-based; no I/O."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sfsync.connectors.salesforce.bulkcsv import build_csv, read_results
from sfsync.connectors.salesforce.ingest import Pace, _wait, split_jobs
from sfsync.connectors.salesforce.objectinfo import ObjectInfo
from sfsync.connectors.salesforce.ordering import object_order, pack
from sfsync.connectors.salesforce.records import csv_cell, json_value, parse_reference, rest_record
from sfsync.connectors.salesforce.results import parse_bulk_error, row_error
from sfsync.connectors.salesforce.routing import Api, choose_api
from sfsync.connectors.salesforce.usage import ApiUsage
from sfsync.connectors.salesforce.writeplan import RowWrite, WriteKind, plan_batch
from sfsync.core.errors import ConfigError, FatalError, RetryableError, SkippableError
from sfsync.core.events import Operation
from sfsync.testing import FakeClock

from ._support import event

# -- values ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "wire", "cell"),
    [
        (None, None, "#N/A"),
        (True, True, "true"),
        (False, False, "false"),
        (7, 7, "7"),
        (1.5, 1.5, "1.5"),
        (Decimal("12.50"), 12.5, "12.5"),
        (Decimal("40"), 40, "40"),
        ('O\'Brien, "x"', 'O\'Brien, "x"', 'O\'Brien, "x"'),
        (datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC), "2026-01-02T03:04:05.678Z", None),
        (
            datetime(2026, 1, 2, 5, 4, 5, tzinfo=timezone(timedelta(hours=2))),
            "2026-01-02T03:04:05.000Z",
            None,
        ),
        (datetime(2026, 1, 2, 3, 4, 5), "2026-01-02T03:04:05.000Z", None),  # naive = UTC
        (date(2026, 1, 2), "2026-01-02", "2026-01-02"),
        (time(3, 4, 5, 6000), "03:04:05.006Z", "03:04:05.006Z"),
        (b"\x00\xff", "AP8=", "AP8="),
    ],
)
def test_values_take_salesforce_wire_forms(value: object, wire: object, cell: str | None) -> None:
    assert json_value(value) == wire
    assert csv_cell(value) == (cell if cell is not None else wire)


@pytest.mark.parametrize(
    ("name", "parsed"),
    [
        ("Name", None),
        ("Account.Ext_Id__c", ("Account", None, "Ext_Id__c")),
        ("Account__r.Ext_Id__c", ("Account__r", None, "Ext_Id__c")),
        ("What:Account.Ext_Id__c", ("What", "Account", "Ext_Id__c")),
        ("a.b.c", None),
        (".x", None),
    ],
)
def test_parent_references_are_recognised(
    name: str, parsed: tuple[str, str | None, str] | None
) -> None:
    ref = parse_reference(name)
    assert (None if ref is None else (ref.relationship, ref.parent_type, ref.field)) == parsed


def test_rest_record_nests_references_and_clears_null_lookups() -> None:
    body = rest_record(
        {
            "LastName": "Smith",
            "Account.Ext_Id__c": "A-1",
            "What:Account.Ext_Id__c": "A-2",
            "Parent__r.Ext_Id__c": None,
        },
        {"parent__r": "Parent__c"},
    )
    assert body == {
        "LastName": "Smith",
        "Account": {"Ext_Id__c": "A-1"},
        "What": {"attributes": {"type": "Account"}, "Ext_Id__c": "A-2"},
        "Parent__c": None,
    }


# -- object order ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("objects", "parents", "expected"),
    [
        (["Contact", "Account"], {"Contact": {"Account"}}, ["Account", "Contact"]),
        (
            ["Line__c", "Invoice__c", "Account"],
            {"Line__c": {"Invoice__c"}, "Invoice__c": {"Account"}},
            ["Account", "Invoice__c", "Line__c"],
        ),
        (
            ["Account", "Contact"],
            {"Account": {"Account"}, "Contact": {"Account"}},
            ["Account", "Contact"],
        ),
        # A cycle keeps batch order; their child still comes after both.
        (["B", "A", "C"], {"A": {"B"}, "B": {"A"}, "C": {"A"}}, ["B", "A", "C"]),
        (["X", "Y"], {}, ["X", "Y"]),
    ],
)
def test_parents_come_before_children(
    objects: list[str], parents: dict[str, set[str]], expected: list[str]
) -> None:
    assert object_order(objects, {k: frozenset(v) for k, v in parents.items()}) == expected


# -- lock-aware packing ---------------------------------------------------------------------

rows_strategy = st.lists(
    st.tuples(st.integers(0, 10**6), st.frozensets(st.integers(0, 30), max_size=2)),
    min_size=0,
    max_size=700,
    unique_by=lambda r: r[0],
)


@settings(max_examples=150, deadline=None)
@given(rows=rows_strategy, size=st.integers(1, 200), lanes=st.integers(1, 6))
def test_packing_keeps_each_parent_in_one_lane(
    rows: list[tuple[int, frozenset[int]]], size: int, lanes: int
) -> None:
    packed = pack(rows, lambda r: r[1], size=size, lanes=lanes)
    assert len(packed) <= lanes
    seen = [row for lane in packed for call in lane for row in call.items]
    assert sorted(seen) == sorted(rows)  # every row exactly once
    assert all(1 <= len(call.items) <= size for lane in packed for call in lane)
    owner: dict[int, int] = {}
    for number, lane in enumerate(packed):
        for call in lane:
            for _, parents in call.items:
                for parent in parents:
                    assert owner.setdefault(parent, number) == number  # never two lanes


def test_rows_without_parents_fill_whole_calls() -> None:
    packed = pack(list(range(1000)), lambda r: (), size=200, lanes=4)
    sizes = sorted(len(call.items) for lane in packed for call in lane)
    assert sizes == [200] * 5


def test_one_parents_many_children_are_serialised_in_one_lane() -> None:
    rows = [(i, "P") for i in range(450)] + [(1000 + i, f"Q{i}") for i in range(150)]
    packed = pack(rows, lambda r: (r[1],), size=200, lanes=4)
    lanes_with_p = [
        n for n, lane in enumerate(packed) for c in lane if any(p == "P" for _, p in c.items)
    ]
    assert len(set(lanes_with_p)) == 1
    total_calls = sum(len(lane) for lane in packed)
    assert total_calls == 3  # 600 rows, 200 a call: packing loses nothing here


# -- API choice -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rows", "capable", "usage", "api"),
    [
        (10, True, None, Api.COLLECTIONS),
        (4999, True, None, Api.COLLECTIONS),
        (5000, True, None, Api.BULK),
        (100_000, False, None, Api.COLLECTIONS),  # inserts without external id
        (2000, True, ApiUsage(900, 1000), Api.BULK),  # budget pressure: 8 calls < 10
        (1600, True, ApiUsage(900, 1000), Api.COLLECTIONS),  # 8 calls: no saving
        (2000, True, ApiUsage(500, 1000), Api.COLLECTIONS),
        (3000, True, ApiUsage(10, 20), Api.BULK),  # 15 calls > 10 left (and pressure)
        (3000, True, ApiUsage(100, 110), Api.BULK),
    ],
)
def test_api_choice(rows: int, capable: bool, usage: ApiUsage | None, api: Api) -> None:
    route = choose_api(
        rows, bulk_capable=capable, usage=usage, bulk_threshold=5000, budget_pressure=0.8
    )
    assert route.api is api, route.reason


def test_low_remaining_budget_alone_picks_bulk() -> None:
    route = choose_api(
        3000, bulk_capable=True, usage=ApiUsage(10, 20), bulk_threshold=5000, budget_pressure=1.0
    )
    assert route.api is Api.BULK
    assert "left" in route.reason


# -- write plan -----------------------------------------------------------------------------


def _info(name: str, *, external: tuple[str, ...] = ("Ext_Id__c",)) -> ObjectInfo:
    fields = [
        {"name": "Id", "type": "id", "createable": False, "updateable": False},
        {"name": "Name", "type": "string", "createable": True, "updateable": True},
        {"name": "Phone", "type": "string", "createable": True, "updateable": True},
        {"name": "SystemModstamp", "type": "datetime", "createable": False, "updateable": False},
        {
            "name": "AccountId",
            "type": "reference",
            "referenceTo": ["Account"],
            "relationshipName": "Account",
            "createable": True,
            "updateable": True,
        },
        {
            "name": "OwnerId",
            "type": "reference",
            "referenceTo": ["User"],
            "relationshipName": "Owner",
            "createable": True,
            "updateable": True,
        },
    ]
    fields += [
        {"name": e, "type": "string", "externalId": True, "createable": True, "updateable": True}
        for e in external
    ]
    return ObjectInfo.from_describe({"name": name, "fields": fields})


def test_object_info_reads_keys_and_parents() -> None:
    info = _info("Contact")
    assert info.key_field("ext_id__c") == "Ext_Id__c"
    assert info.key_field("Id") == "Id"
    assert info.parents == frozenset({"Account"})  # the owner lookup is not a lock parent
    assert info.writable_name("Owner.Email") == "Owner.Email"
    assert info.writable_name("Nope.X") is None
    with pytest.raises(ConfigError, match="not an external id") as caught:
        info.key_field("Phone")
    assert "Ext_Id__c" in (caught.value.hint or "")


def test_changes_of_one_record_merge_and_a_delete_starts_a_new_round() -> None:
    infos = {"Contact": _info("Contact")}
    events = [
        event("Contact", "C1", Operation.CREATE, {"Name": "a", "Phone": "1"}),
        event("Contact", "C2", Operation.READ, {"Name": "b"}),
        event("Contact", "C1", Operation.UPDATE, {"Phone": "2"}, partial=True),
        event("Contact", "C1", Operation.DELETE),
        event("Contact", "C1", Operation.DELETE),
        event("Contact", "C1", Operation.UNDELETE, {"Name": "c"}),
    ]
    plan = plan_batch(events, infos, {"Contact": "Ext_Id__c"})
    assert [[(w.key, w.kind, w.indices) for w in r] for r in plan.rounds] == [
        [("C1", WriteKind.UPSERT, (0, 2)), ("C2", WriteKind.UPSERT, (1,))],
        [("C1", WriteKind.DELETE, (3, 4))],
        [("C1", WriteKind.UPSERT, (5,))],
    ]
    assert dict(plan.rounds[0][0].values) == {"Name": "a", "Phone": "2"}
    assert plan.rounds[2][0].undelete


def test_id_keyed_events_insert_update_or_are_refused() -> None:
    infos = {"Contact": _info("Contact")}
    events = [
        event("Contact", "row-1", Operation.CREATE, {"Name": "new", "SystemModstamp": "x"}),
        event("Contact", "row-2", Operation.UPDATE, {"Id": "003000000000001AAA", "Name": "u"}),
        event("Contact", "003000000000002AAA", Operation.DELETE),
        event("Contact", "row-3", Operation.DELETE, before={"Id": "003000000000003AAA"}),
        event("Contact", "row-4", Operation.DELETE),
    ]
    plan = plan_batch(events, infos, {})
    kinds = [(w.kind, w.key) for w in plan.rounds[0]]
    assert kinds == [
        (WriteKind.INSERT, None),
        (WriteKind.UPDATE, "003000000000001AAA"),
        (WriteKind.DELETE, "003000000000002AAA"),
        (WriteKind.DELETE, "003000000000003AAA"),
    ]
    assert list(plan.refused) == [4]
    assert "no Salesforce Id" in plan.refused[4]
    assert plan.dropped == {"Contact": {"SystemModstamp"}}
    assert "Id" not in plan.rounds[0][1].values


def test_parent_keys_cover_ids_and_external_id_references() -> None:
    info = _info("Contact")
    plan = plan_batch(
        [
            event(
                "Contact", "C1", Operation.CREATE, {"Account.Ext_Id__c": "A-1", "OwnerId": "005x"}
            ),
            event("Contact", "C2", Operation.CREATE, {"AccountId": "001000000000001AAA"}),
        ],
        {"Contact": info},
        {"Contact": "Ext_Id__c"},
    )
    first, second = plan.rounds[0]
    assert first.parent_keys(info) == {("Account", "ext_id__c", "A-1")}
    assert second.parent_keys(info) == {("Account", "Id", "001000000000001AAA")}


# -- row errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        (
            "REQUIRED_FIELD_MISSING:Required fields are missing: [Name]:Name --",
            ("REQUIRED_FIELD_MISSING", "Required fields are missing: [Name]", ("Name",)),
        ),
        (
            "INVALID_CROSS_REFERENCE_KEY:invalid cross reference id:--",
            ("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", ()),
        ),
        (
            "FIELD_CUSTOM_VALIDATION_EXCEPTION:Score: cannot be negative:Score__c,Name --",
            (
                "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                "Score: cannot be negative",
                ("Score__c", "Name"),
            ),
        ),
        ("garbage", ("UNKNOWN_EXCEPTION", "garbage", ())),
    ],
)
def test_bulk_errors_are_parsed(text: str, parsed: tuple[str, str, tuple[str, ...]]) -> None:
    assert parse_bulk_error(text) == parsed


@pytest.mark.parametrize(
    ("code", "message", "kind"),
    [
        ("UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access", RetryableError),
        ("ALL_OR_NONE_OPERATION_ROLLED_BACK", "rolled back", RetryableError),
        ("FIELD_CUSTOM_VALIDATION_EXCEPTION", "Score cannot be negative.", SkippableError),
        ("REQUIRED_FIELD_MISSING", "Required fields are missing: [Name]", SkippableError),
        (
            "INVALID_FIELD",
            "Foreign key external ID: A-9 not found for field Ext_Id__c",
            SkippableError,
        ),
        ("INVALID_FIELD", "No such column 'Nope' on sobject of type Account", FatalError),
        (
            "INVALID_FIELD_FOR_INSERT_UPDATE",
            "Unable to create/update fields: CreatedDate",
            FatalError,
        ),
        ("SOMETHING_NEW", "a code nobody documented", SkippableError),
    ],
)
def test_row_errors_are_classified(code: str, message: str, kind: type[Exception]) -> None:
    error = row_error(code, message, ["F"], what="upsert 1 Account")
    assert type(error) is kind
    assert error.code == code
    assert message in str(error)


# -- Bulk CSV and result files ----------------------------------------------------------------

_CELLS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=False, allow_infinity=False),
    st.decimals(allow_nan=False, allow_infinity=False, places=2),
    st.dates(),
    st.text(alphabet=st.sampled_from('ab ,"\n\r:é'), max_size=6),
)


def _bulk_row(key: str, values: dict[str, object]) -> RowWrite:
    return RowWrite((0,), "Account", WriteKind.UPSERT, "Ext__c", key, values, key)


@given(st.lists(st.dictionaries(st.sampled_from(["A", "B", "C"]), _CELLS), min_size=1))
@settings(max_examples=200, deadline=None)
def test_bulk_csv_reads_back_as_each_row_s_cells(rows: list[dict[str, object]]) -> None:
    writes = [_bulk_row(f"k{i}", values) for i, values in enumerate(rows)]
    parsed = list(csv.reader(io.StringIO(build_csv(writes, "Ext__c", with_values=True).decode())))
    header = parsed[0]
    assert header[0] == "Ext__c"
    assert set(header[1:]) == {name for values in rows for name in values}
    assert len(parsed) == len(rows) + 1
    for write, line in zip(writes, parsed[1:], strict=True):
        assert line[0] == write.key
        for name, cell in zip(header[1:], line[1:], strict=True):
            expected = csv_cell(write.values[name]) if name in write.values else ""
            assert cell == expected  # absent: empty (unchanged); None: #N/A


@given(
    st.lists(
        st.tuples(
            st.text(alphabet=st.sampled_from('ab ,"\n:'), min_size=1, max_size=5), st.booleans()
        ),
        unique_by=lambda t: t[0],
    ),
    st.booleans(),
    st.sampled_from([csv.QUOTE_ALL, csv.QUOTE_MINIMAL]),
)
@settings(max_examples=300, deadline=None)
def test_result_files_give_each_key_its_id_and_flag(
    rows: list[tuple[str, bool]], key_first: bool, quoting: int
) -> None:
    # Salesforce quotes every cell of a result file; other writers quote only where needed.
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n", quoting=quoting)
    if key_first:
        writer.writerow(["sf__Id", "sf__Created", "Ext__c", "Name"])
        writer.writerows(
            [f"id{i}" * (i % 3 > 0), str(flag).lower(), key, f'x,"\n{i}']
            for i, (key, flag) in enumerate(rows)
        )
    else:  # another column order: the csv module's path
        writer.writerow(["Name", "sf__Created", "Ext__c", "sf__Id"])
        writer.writerows(
            [f"x{i}", str(flag).lower(), key, f"id{i}" * (i % 3 > 0)]
            for i, (key, flag) in enumerate(rows)
        )
    found = read_results(out.getvalue(), "Ext__c", "sf__Created")
    assert found == {
        key: (f"id{i}" * (i % 3 > 0), str(flag).lower()) for i, (key, flag) in enumerate(rows)
    }


def test_jobs_split_evenly_and_keep_each_parent_in_one_job() -> None:
    rows = [_bulk_row(f"k{i}", {}) for i in range(25)]
    assert [len(j) for j in split_jobs(rows, lambda r: (), 10)] == [9, 9, 7]
    assert [r for j in split_jobs(rows, lambda r: (), 10) for r in j] == rows
    assert split_jobs(rows, lambda r: (), 100) == [rows]
    parent = {id(r): ("Account", "id", f"p{i % 4}") for i, r in enumerate(rows)}
    jobs = split_jobs(rows, lambda r: {parent[id(r)]}, 10)
    assert sorted(r.key or "" for j in jobs for r in j) == sorted(r.key or "" for r in rows)
    owners = [{parent[id(r)] for r in job} for job in jobs]
    assert sum(len(o) for o in owners) == 4  # each parent's rows in one job only


class _JobAt:
    """A Bulk job processing ``rate`` rows a second from time 0 of ``clock``: what a poll
    (``get_json``) shows."""

    def __init__(self, clock: FakeClock, rows: int, rate: float) -> None:
        self.clock, self.rows, self.rate = clock, rows, rate
        self.start = clock.monotonic()
        self.polls = 0

    async def get_json(self, path: str, *, what: str) -> dict[str, object]:
        self.polls += 1
        done = min(self.rows, int((self.clock.monotonic() - self.start) * self.rate))
        state = "JobComplete" if done == self.rows else "InProgress"
        return {"state": state, "numberRecordsProcessed": done}


@pytest.mark.anyio
async def test_polls_learn_the_org_s_pace_and_come_just_after_the_job_ends() -> None:
    clock = FakeClock(datetime(2026, 1, 1, tzinfo=UTC))
    pace = Pace()
    overshoots: list[float] = []
    polls: list[int] = []
    for _ in range(6):
        job = _JobAt(clock, rows=5000, rate=2000)  # done after 2.5 s
        await _wait(cast(Any, job), "/job", clock, 0.25, 5.0, "job", 5000, pace)
        overshoots.append(clock.monotonic() - job.start - 2.5)
        polls.append(job.polls)
    assert polls[0] >= 3  # nothing known: from 0.25 s on, then at the rate seen
    assert all(0 <= o < 0.6 for o in overshoots)
    assert polls[-1] <= 2  # learnt: one poll just before the end, one just after
    assert overshoots[-1] < 0.2


def test_result_files_of_the_key_column_alone_as_salesforce_quotes_them() -> None:
    text = '"sf__Id","sf__Created","Id"\n"001A","false","001A"\n"001B","false","001B"\n'
    assert read_results(text, "Id", "sf__Created") == {
        "001A": ("001A", "false"),
        "001B": ("001B", "false"),
    }
