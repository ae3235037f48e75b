"""The Salesforce sink against the emulator in-process (httpx ASGI transport).

Each test writes batches through the real sink and client and then reads the org's store: the
records, their values and their count (duplicates) are what is checked, not the calls made.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import orjson
import pytest

from sfsync.connectors.salesforce import SPEC
from sfsync.connectors.salesforce.config import SinkSettings
from sfsync.connectors.salesforce.routing import Api
from sfsync.connectors.salesforce.sink import SalesforceSink
from sfsync.core.errors import ConfigError, FatalError, RetryableError
from sfsync.core.events import Batch, Operation
from sfsync.core.schema import EntitySchema, FieldKind, FieldSpec
from sfsync.emulator.app import build_app
from sfsync.emulator.org import Org
from sfsync.spi.clock import Clock, SystemClock
from sfsync.spi.sink import OutcomeKind, SinkContext
from sfsync.spi.spec import ConnectorRequest, EntitySelection
from sfsync.testing import FakeClock

from ._support import (
    START,
    TOKEN,
    BulkRowLockTransport,
    LostResponseTransport,
    RowLockTransport,
    event,
    live,
    lose_first,
    make_client,
    make_org,
)

KEYS = {"Account": "Ext_Id__c", "Contact": "Ext_Id__c", "Invoice__c": "Ext_Id__c"}


@pytest.fixture
def org() -> Iterator[Org]:
    org = make_org()
    yield org
    org.close()


async def _sink(
    org: Org,
    *,
    keys: dict[str, str] | None = None,
    settings: SinkSettings | None = None,
    wrap: Any = None,
    clock: Clock | None = None,
    job_rows: int = 10_000,
) -> SalesforceSink:
    """A sink on ``org``. Bulk tests pass a real clock: the emulator runs each job in a
    thread, and a fake clock's instant sleeps would turn the job's polls into a busy loop."""
    transport: httpx.AsyncBaseTransport = httpx.ASGITransport(app=build_app(org))
    if wrap is not None:
        transport = wrap(transport)
    sink = SalesforceSink(
        make_client(transport),
        keys=KEYS if keys is None else keys,
        settings=settings,
        bulk_poll_interval=0.02,
        bulk_job_rows=job_rows,
    )
    await sink.open(SinkContext(sync_name="t", clock=clock or FakeClock(START)))
    return sink


@pytest.fixture
async def sink(org: Org) -> AsyncIterator[SalesforceSink]:
    s = await _sink(org)
    yield s
    await s.aclose()


def _by_ext(org: Org, sobject: str) -> dict[str, dict[str, Any]]:
    return {str(r["Ext_Id__c"]): r for r in live(org, sobject)}


@pytest.mark.anyio
async def test_upserts_by_external_id_and_a_replay_changes_nothing(
    org: Org, sink: SalesforceSink
) -> None:
    batch = Batch.of(
        [event("Account", f"A{i}", Operation.READ, {"Name": f"Acct {i}"}) for i in range(450)]
    )
    first = await sink.write(batch)
    assert {o.kind for o in first} == {OutcomeKind.APPLIED}
    again = await sink.write(batch)  # the runtime retries whole batches: no duplicates
    assert [o.target_key for o in again] == [o.target_key for o in first]
    accounts = _by_ext(org, "Account")
    assert len(accounts) == 450 == len(live(org, "Account"))
    assert accounts["A7"]["Name"] == "Acct 7"
    assert all(r.route.api is Api.COLLECTIONS for r in sink.routes)


@pytest.mark.anyio
async def test_a_child_is_written_with_its_new_parent_in_one_batch(
    org: Org, sink: SalesforceSink
) -> None:
    # Children first in the batch: the sink writes parents first and resolves the
    # references through the parent's external id (no Salesforce Id needed yet).
    outcomes = await sink.write(
        Batch.of(
            [
                event("Invoice__c", "I1", Operation.CREATE,
                      {"Name": "INV-1", "Amount__c": 10, "Account__r.Ext_Id__c": "A1"}),
                event("Contact", "C1", Operation.CREATE,
                      {"LastName": "Smith", "Account.Ext_Id__c": "A1"}),
                event("Account", "A2", Operation.CREATE,
                      {"Name": "Child", "Parent.Ext_Id__c": "A1"}),
                event("Account", "A1", Operation.CREATE, {"Name": "Parent"}),
            ]
        )
    )  # fmt: skip
    assert [o.kind for o in outcomes] == [OutcomeKind.APPLIED] * 4, outcomes
    accounts = _by_ext(org, "Account")
    parent_id = accounts["A1"]["Id"]
    assert accounts["A2"]["ParentId"] == parent_id  # self-lookup: parent in an earlier call
    assert _by_ext(org, "Contact")["C1"]["AccountId"] == parent_id
    assert _by_ext(org, "Invoice__c")["I1"]["Account__c"] == parent_id


@pytest.mark.anyio
async def test_rejected_rows_carry_salesforces_error_and_the_rest_is_written(
    org: Org, sink: SalesforceSink
) -> None:
    outcomes = await sink.write(
        Batch.of(
            [
                event("Account", "A1", Operation.CREATE, {"Name": "ok"}),
                event("Account", "A2", Operation.CREATE, {"Name": "bad", "Score__c": -1}),
                event("Contact", "C1", Operation.CREATE,
                      {"LastName": "x", "Account.Ext_Id__c": "NOPE"}),
                event("Contact", "C2", Operation.CREATE, {"FirstName": "no last name"}),
            ]
        )
    )  # fmt: skip
    kinds = [o.kind for o in outcomes]
    assert kinds == [OutcomeKind.APPLIED] + [OutcomeKind.REJECTED] * 3
    errors = [o.error for o in outcomes[1:]]
    assert [e.code for e in errors if e] == [
        "FIELD_CUSTOM_VALIDATION_EXCEPTION",
        "INVALID_FIELD",
        "REQUIRED_FIELD_MISSING",
    ]
    assert "Score cannot be negative." in str(errors[0])
    assert "NOPE" in str(errors[1])
    assert errors[1] is not None
    assert errors[1].hint
    assert set(_by_ext(org, "Account")) == {"A1"}


@pytest.mark.anyio
async def test_partial_updates_touch_only_their_fields_and_nulls_clear(
    org: Org, sink: SalesforceSink
) -> None:
    await sink.write(Batch.of([event("Account", "A1", Operation.CREATE,
                                     {"Name": "n", "Phone": "1", "Website": "w"})]))  # fmt: skip
    await sink.write(
        Batch.of([event("Account", "A1", Operation.UPDATE, {"Phone": "2", "Website": None},
                        partial=True)])
    )  # fmt: skip
    record = _by_ext(org, "Account")["A1"]
    assert (record["Name"], record["Phone"], record["Website"]) == ("n", "2", None)


@pytest.mark.anyio
async def test_deletes_and_undeletes_by_external_id_are_idempotent(
    org: Org, sink: SalesforceSink
) -> None:
    await sink.write(Batch.of([event("Account", k, Operation.CREATE, {"Name": k})
                               for k in ("A1", "A2")]))  # fmt: skip
    deletes = Batch.of([event("Account", "A1", Operation.DELETE),
                        event("Account", "NEVER", Operation.DELETE)])  # fmt: skip
    assert {o.kind for o in await sink.write(deletes)} == {OutcomeKind.APPLIED}
    assert {o.kind for o in await sink.write(deletes)} == {OutcomeKind.APPLIED}
    assert set(_by_ext(org, "Account")) == {"A2"}
    old_id = next(r["Id"] for r in org.store.scan("Account", include_deleted=True)
                  if r["Ext_Id__c"] == "A1")  # fmt: skip
    out = await sink.write(Batch.of([event("Account", "A1", Operation.UNDELETE, {"Name": "back"})]))
    assert out[0].kind is OutcomeKind.APPLIED
    assert out[0].target_key == old_id
    assert _by_ext(org, "Account")["A1"]["Name"] == "back"


@pytest.mark.anyio
async def test_create_delete_create_of_one_key_in_one_batch_keeps_order(
    org: Org, sink: SalesforceSink
) -> None:
    outcomes = await sink.write(
        Batch.of(
            [
                event("Account", "A1", Operation.CREATE, {"Name": "first"}),
                event("Account", "A1", Operation.DELETE),
                event("Account", "A1", Operation.CREATE, {"Name": "second"}),
            ]
        )
    )
    assert [o.kind for o in outcomes] == [OutcomeKind.APPLIED] * 3
    assert [r["Name"] for r in live(org, "Account")] == ["second"]


@pytest.mark.anyio
async def test_id_keyed_rows_insert_then_update_the_created_record(org: Org) -> None:
    sink = await _sink(org, keys={})
    try:
        first = await sink.write(Batch.of([event("Contact", "row-1", Operation.CREATE,
                                                 {"LastName": "a"})]))  # fmt: skip
        new_id = first[0].target_key
        assert new_id
        assert new_id.startswith("003")
        # The source has not stored the new Id yet: its next change is still keyed by row-1.
        await sink.write(Batch.of([event("Contact", "row-1", Operation.UPDATE, {"LastName": "b"})]))
        await sink.write(Batch.of([event("Contact", "x", Operation.UPDATE,
                                         {"Id": new_id, "Title": "t"})]))  # fmt: skip
        records = live(org, "Contact")
        assert [(r["Id"], r["LastName"], r["Title"]) for r in records] == [(new_id, "b", "t")]
        out = await sink.write(Batch.of([event("Contact", new_id, Operation.DELETE)]))
        assert out[0].kind is OutcomeKind.APPLIED
        assert live(org, "Contact") == []
        no_id = await sink.write(Batch.of([event("Contact", "row-9", Operation.DELETE)]))
        assert no_id[0].kind is OutcomeKind.REJECTED
    finally:
        await sink.aclose()


@pytest.mark.anyio
@pytest.mark.parametrize("marker", [True, False], ids=["marker-field", "value-match"])
async def test_a_lost_insert_answer_is_not_inserted_twice(org: Org, marker: bool) -> None:
    holder: list[LostResponseTransport] = []

    def wrap(inner: httpx.AsyncBaseTransport) -> LostResponseTransport:
        holder.append(LostResponseTransport(inner, lose_first("POST", "/composite/sobjects")))
        return holder[0]

    settings = SinkSettings(insert_markers={"Contact": "Sfsync_Key__c"} if marker else {})
    sink = await _sink(org, keys={}, settings=settings, wrap=wrap)
    try:
        batch = Batch.of(
            [
                event("Contact", f"row-{i}", Operation.CREATE, {"LastName": f"L{i}", "Title": "T"})
                for i in range(5)
            ]
        )
        first = await sink.write(batch)
        assert holder[0].lost == 1
        assert {o.kind for o in first} == {OutcomeKind.RETRY}
        assert len(live(org, "Contact")) == 5  # the org did commit them
        second = await sink.write(batch)  # the runtime retries the RETRY events
        assert {o.kind for o in second} == {OutcomeKind.APPLIED}
        contacts = live(org, "Contact")
        assert len(contacts) == 5  # no duplicates
        assert sorted(o.target_key or "" for o in second) == sorted(str(r["Id"]) for r in contacts)
        if marker:
            assert sorted(r["Sfsync_Key__c"] for r in contacts) == [f"row-{i}" for i in range(5)]
    finally:
        await sink.aclose()


@pytest.mark.anyio
async def test_locked_rows_alone_are_retried_until_all_are_written(org: Org) -> None:
    holder: list[RowLockTransport] = []

    def wrap(inner: httpx.AsyncBaseTransport) -> RowLockTransport:
        holder.append(RowLockTransport(inner, rate=0.2, seed=5))
        return holder[0]

    sink = await _sink(org, wrap=wrap)
    try:
        events = [
            event("Account", f"A{i}", Operation.CREATE, {"Name": f"n{i}"}) for i in range(600)
        ]
        pending = list(range(len(events)))
        rounds = 0
        while pending:
            rounds += 1
            outcomes = await sink.write(Batch.of([events[i] for i in pending]))
            retry = [
                i for i, o in zip(pending, outcomes, strict=True) if o.kind is OutcomeKind.RETRY
            ]
            for o in outcomes:
                if o.kind is OutcomeKind.RETRY:
                    assert isinstance(o.error, RetryableError)
                    assert o.error.code == "UNABLE_TO_LOCK_ROW"
                else:
                    assert o.kind is OutcomeKind.APPLIED
            if rounds == 1:
                assert 60 < len(retry) < 180  # about 20% of 600
            pending = retry
            assert rounds < 20
        assert len(_by_ext(org, "Account")) == 600 == len(live(org, "Account"))
    finally:
        await sink.aclose()


@pytest.mark.anyio
async def test_large_groups_go_through_a_bulk_job(org: Org) -> None:
    sink = await _sink(org, settings=SinkSettings(bulk_threshold=300), clock=SystemClock())
    try:
        events = [
            event("Account", f"A{i}", Operation.READ, {"Name": f"n{i}", "Score__c": i - 1})
            for i in range(400)
        ]
        outcomes = await sink.write(Batch.of(events))
        assert [r.route.api for r in sink.routes] == [Api.BULK]
        assert outcomes[0].kind is OutcomeKind.REJECTED  # Score__c = -1
        assert outcomes[0].error is not None
        assert outcomes[0].error.code == "FIELD_CUSTOM_VALIDATION_EXCEPTION"
        assert "Score cannot be negative." in str(outcomes[0].error)
        assert {o.kind for o in outcomes[1:]} == {OutcomeKind.APPLIED}
        accounts = _by_ext(org, "Account")
        assert len(accounts) == 399
        assert accounts["A5"]["Score__c"] == 4
        assert all(o.target_key == accounts[f"A{i}"]["Id"] for i, o in enumerate(outcomes) if i)
        # Children by parent external id, then deletes, over Bulk too.
        contacts = [
            event("Contact", f"C{i}", Operation.CREATE,
                  {"LastName": "x", "Account.Ext_Id__c": f"A{1 + i % 7}"})
            for i in range(350)
        ]  # fmt: skip
        answers = await sink.write(Batch.of(contacts))
        assert {o.kind for o in answers} == {OutcomeKind.APPLIED}
        written = _by_ext(org, "Contact")
        assert written["C3"]["AccountId"] == accounts["A4"]["Id"]
        # The job's rows are grouped by parent: each outcome still names its own record.
        assert [o.target_key for o in answers] == [written[f"C{i}"]["Id"] for i in range(350)]
        deletes = [event("Contact", f"C{i}", Operation.DELETE) for i in range(350)]
        assert {o.kind for o in await sink.write(Batch.of(deletes))} == {OutcomeKind.APPLIED}
        assert live(org, "Contact") == []
        assert [r.route.api for r in sink.routes][-2:] == [Api.BULK, Api.BULK]
    finally:
        await sink.aclose()


class UploadLog(httpx.AsyncBaseTransport):
    """Records each Bulk upload's CSV and how many jobs were open at once at most."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.uploads: list[list[list[str]]] = []
        self.open: set[str] = set()
        self.most_open = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path, method = request.url.path, request.method
        if method == "PUT" and path.endswith("/batches"):
            body = (await request.aread()).decode()
            self.uploads.append(list(csv.reader(io.StringIO(body))))
        response = await self.inner.handle_async_request(request)
        if method == "POST" and path.endswith("/jobs/ingest"):
            self.open.add(orjson.loads(await response.aread())["id"])
            self.most_open = max(self.most_open, len(self.open))
        elif method == "DELETE" and "/jobs/ingest/" in path:
            self.open.discard(path.rsplit("/", 1)[1])
        return response


@pytest.mark.anyio
async def test_a_large_group_is_split_into_jobs_in_flight_side_by_side(org: Org) -> None:
    log: list[UploadLog] = []

    def wrap(inner: httpx.AsyncBaseTransport) -> UploadLog:
        log.append(UploadLog(inner))
        return log[0]

    sink = await _sink(
        org, settings=SinkSettings(bulk_threshold=100), wrap=wrap, clock=SystemClock(),
        job_rows=90,
    )  # fmt: skip
    try:
        accounts = [event("Account", f"A{i}", Operation.READ, {"Name": f"n{i}"}) for i in range(12)]
        await sink.write(Batch.of(accounts))
        # 300 contacts of 12 parents (25 each): jobs of about 75 rows (300 / 4), each
        # holding whole parents, two open at a time.
        contacts = [
            event("Contact", f"C{i}", Operation.READ,
                  {"LastName": f"c{i}", "Account.Ext_Id__c": f"A{i % 12}"})
            for i in range(300)
        ]  # fmt: skip
        outcomes = await sink.write(Batch.of(contacts))
        assert {o.kind for o in outcomes} == {OutcomeKind.APPLIED}
        written = _by_ext(org, "Contact")
        assert [o.target_key for o in outcomes] == [written[f"C{i}"]["Id"] for i in range(300)]
        uploads = log[0].uploads
        assert len(uploads) == 4
        assert sorted(len(u) - 1 for u in uploads) == [75, 75, 75, 75]
        parents_per_job = [{row[-1] for row in upload[1:]} for upload in uploads]
        assert sum(len(p) for p in parents_per_job) == 12  # no parent in two jobs
        assert log[0].most_open == 2
        assert written["C13"]["AccountId"] == _by_ext(org, "Account")["A1"]["Id"]
    finally:
        await sink.aclose()


@pytest.mark.anyio
async def test_a_spent_api_budget_moves_mid_sized_groups_to_bulk(org: Org) -> None:
    org.limits.daily_max = 1000
    org.limits.consume(850)
    sink = await _sink(org, clock=SystemClock())
    try:
        await sink.write(Batch.of([event("Account", "A0", Operation.CREATE, {"Name": "n"})]))
        events = [event("Account", f"A{i}", Operation.CREATE, {"Name": "n"}) for i in range(2000)]
        await sink.write(Batch.of(events))
        assert [r.route.api for r in sink.routes] == [Api.COLLECTIONS, Api.BULK]
        assert "budget" in sink.routes[1].route.reason
        assert len(live(org, "Account")) == 2000
    finally:
        await sink.aclose()


@pytest.mark.anyio
async def test_prepare_checks_the_key_and_names_fields_left_out(org: Org) -> None:
    sink = await _sink(org, keys={"Account": "Phone"})
    try:
        schema = EntitySchema.of(
            "Account",
            "Phone",
            [FieldSpec(name=n, kind=FieldKind.STRING) for n in ("Phone", "Name")],
        )
        with pytest.raises(ConfigError, match="not an external id"):
            await sink.prepare(schema)
    finally:
        await sink.aclose()
    sink = await _sink(org)
    try:
        schema = EntitySchema.of(
            "Account",
            "Ext_Id__c",
            [
                FieldSpec(name=n, kind=FieldKind.STRING)
                for n in ("Ext_Id__c", "Name", "SystemModstamp", "Nope__c", "Parent.Ext_Id__c")
            ],
        )
        notices = await sink.prepare(schema)
        assert len(notices) == 1
        assert "SystemModstamp, Nope__c" in notices[0]
        out = await sink.write(Batch.of([event("Account", "A1", Operation.CREATE,
                                               {"Name": "n", "Nope__c": 1})]))  # fmt: skip
        assert out[0].kind is OutcomeKind.APPLIED
    finally:
        await sink.aclose()


@pytest.mark.anyio
async def test_a_field_salesforce_refuses_for_every_row_stops_the_sync(org: Org) -> None:
    sink = await _sink(org)
    try:
        # Owner.Username names no external id of User: every row would fail the same way.
        with pytest.raises(FatalError):
            await sink.write(Batch.of([event("Account", "A1", Operation.CREATE,
                                             {"Name": "n", "Owner.Nope__c": "x"})]))  # fmt: skip
    finally:
        await sink.aclose()


def test_the_connector_spec_builds_the_sink_from_a_connection_section() -> None:
    conn = SPEC.config.model_validate(
        {
            "type": "salesforce",
            "instance_url": "http://127.0.0.1:1",
            "auth": {"flow": "access_token", "access_token": TOKEN},
            "sink": {"bulk_threshold": 1234, "concurrency": 2},
        }
    )
    assert SPEC.roles == ("source", "sink")
    assert SPEC.sink is not None
    sink = SPEC.sink(
        conn,
        ConnectorRequest(
            sync_name="s",
            entities=(EntitySelection(name="Contact", key="Ext_Id__c"),),
            clock=FakeClock(START),
        ),
    )
    assert isinstance(sink, SalesforceSink)
    assert sink.settings.bulk_threshold == 1234
    assert sink.capabilities.max_batch == 10_000
    assert not sink.capabilities.stores_checkpoints
    with pytest.raises(ValueError, match="less than or equal to 200"):
        SPEC.config.model_validate(
            {
                "type": "salesforce",
                "instance_url": "http://127.0.0.1:1",
                "auth": {"flow": "access_token", "access_token": TOKEN},
                "sink": {"collections_size": 500},
            }
        )


@pytest.mark.anyio
async def test_a_hierarchy_in_one_batch_is_written_top_down(org: Org, sink: SalesforceSink) -> None:
    # A chain of 60 Accounts, each the parent of the next, listed leaf first.
    events = [
        event(
            "Account",
            f"H{i}",
            Operation.CREATE,
            {"Name": f"level {i}", "Parent.Ext_Id__c": f"H{i - 1}"},
        )
        for i in range(59, 0, -1)
    ]
    events.append(event("Account", "H0", Operation.CREATE, {"Name": "root"}))
    events.append(event("Account", "X", Operation.CREATE, {"Name": "alone"}))
    outcomes = await sink.write(Batch.of(events))
    assert {o.kind for o in outcomes} == {OutcomeKind.APPLIED}
    accounts = _by_ext(org, "Account")
    for i in range(1, 60):
        assert accounts[f"H{i}"]["ParentId"] == accounts[f"H{i - 1}"]["Id"]
    assert accounts["X"]["ParentId"] is None


@pytest.mark.anyio
async def test_an_object_salesforce_does_not_have_stops_the_sync(
    org: Org, sink: SalesforceSink
) -> None:
    with pytest.raises(FatalError, match="no object 'Nope__c'") as caught:
        await sink.write(Batch.of([event("Nope__c", "1", Operation.CREATE, {"Name": "x"})]))
    assert caught.value.hint is not None


@pytest.mark.anyio
async def test_locked_rows_of_a_bulk_job_alone_are_retried(org: Org) -> None:
    holder: list[BulkRowLockTransport] = []

    def wrap(inner: httpx.AsyncBaseTransport) -> BulkRowLockTransport:
        holder.append(BulkRowLockTransport(inner, rate=0.2, seed=3))
        return holder[0]

    sink = await _sink(
        org, settings=SinkSettings(bulk_threshold=50), wrap=wrap, clock=SystemClock()
    )
    try:
        events = [
            event("Account", f"A{i}", Operation.CREATE, {"Name": f"n{i}"}) for i in range(400)
        ]
        outcomes = await sink.write(Batch.of(events))
        retry = [e for e, o in zip(events, outcomes, strict=True) if o.kind is OutcomeKind.RETRY]
        assert 40 < len(retry) < 130  # about 20% of 400
        assert all(
            o.error is not None and o.error.code == "UNABLE_TO_LOCK_ROW"
            for o in outcomes
            if o.kind is OutcomeKind.RETRY
        )
        assert {o.kind for o in outcomes} == {OutcomeKind.APPLIED, OutcomeKind.RETRY}
        rounds = 1
        while retry:
            rounds += 1
            again = await sink.write(Batch.of(retry))
            retry = [e for e, o in zip(retry, again, strict=True) if o.kind is OutcomeKind.RETRY]
            assert rounds < 10
        assert len(_by_ext(org, "Account")) == 400 == len(live(org, "Account"))
        assert all(r.route.api is Api.BULK for r in sink.routes[:2])
    finally:
        await sink.aclose()
