"""Decoding CDC events: against hand-written vectors from the reference, and against events the
emulator (an independent implementation of the encoding) produces for real changes."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import fastavro
import pytest

from sfsync.connectors.salesforce.cdc import (
    Gap,
    Layout,
    Slot,
    client_of,
    decode_bitmap,
    decode_event,
    layout_of,
    wire_datetime,
)
from sfsync.connectors.salesforce.cometd import decode_json_event
from sfsync.core.events import Operation, Position
from sfsync.emulator.clock import OrgClock
from sfsync.emulator.org import Org
from sfsync.emulator.store_changes import call_context
from sfsync.emulator.streaming.avro import encode_change_event
from sfsync.emulator.streaming.bus import BusEvent
from sfsync.emulator.streaming.cometd_render import data_message
from sfsync.emulator.streaming.events import ChangeEventBody
from sfsync.emulator.streaming.service import attach

POS = Position("sf-cdc:/data/AccountChangeEvent", "1")


def _layout(n: int) -> Layout:
    slots = [Slot("ChangeEventHeader")]
    slots += [Slot(f"F{i}") for i in range(1, n)]
    slots[4] = Slot(
        "BillingAddress",
        children=("Street", "City", "State", "PostalCode", "Country"),
        child_kinds=("",) * 5,
    )
    return Layout("Account", tuple(slots))


def test_the_reference_bitmap_example() -> None:
    # 0x650004E0 -> indices 5, 6, 7, 10, 24, 26, 29, 30 (reference section 6.5).
    layout = _layout(32)
    assert decode_bitmap(["0x650004E0"], layout) == [f"F{i}" for i in (5, 6, 7, 10, 24, 26, 29, 30)]


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        (
            ["0x10"],
            ["BillingStreet", "BillingCity", "BillingState", "BillingPostalCode", "BillingCountry"],
        ),
        (["0x0", "4-0x02"], ["BillingCity"]),
        (["0x04", "4-0x12"], ["F2", "BillingCity", "BillingCountry"]),
        (["0x01"], []),  # the header is never a field
        ([], []),
    ],
)
def test_compound_bitmaps(entries: list[str], expected: list[str]) -> None:
    assert decode_bitmap(entries, _layout(8)) == expected


@pytest.mark.parametrize("bad", [["zz"], ["0x100"], ["9-0x1"], ["4-0x40"]])
def test_bad_bitmaps_are_refused(bad: list[str]) -> None:
    with pytest.raises(ValueError, match="bitmap"):
        decode_bitmap(bad, _layout(8))


@pytest.mark.parametrize(
    ("origin", "client"),
    [
        ("com/salesforce/api/rest/62.0;client=sfsync", "sfsync"),
        ("com/salesforce/api/soap/59.0;client=SfdcInternalAPI/", "SfdcInternalAPI/"),
        ("com/salesforce/api/rest/62.0", None),
        ("", None),
        (None, None),
    ],
)
def test_change_origin_client(origin: str | None, client: str | None) -> None:
    assert client_of(origin) == client


def test_wire_datetime() -> None:
    assert wire_datetime(1_705_311_000_123) == "2024-01-15T09:30:00.123+0000"


@pytest.fixture
def org() -> Iterator[Org]:
    org = Org.create(clock=OrgClock(frozen_at=datetime(2026, 3, 1, 12, tzinfo=UTC)))
    yield org
    org.close()


def _received(org: Org, since: int) -> tuple[Layout, list[tuple[BusEvent, dict[str, Any]]]]:
    """Events after ``since`` as a Pub/Sub client sees them: Avro bytes decoded with the
    schema JSON the org serves (GetSchema)."""
    streaming = attach(org)
    obj = org.schema.object("Account")
    assert obj is not None
    schema = streaming.schema_of(obj)
    parsed = fastavro.parse_schema(json.loads(schema.json))
    out = []
    for event in streaming.bus.events_after(since, "/data/AccountChangeEvent"):
        assert isinstance(event.body, ChangeEventBody)
        payload = encode_change_event(obj, event.body)
        record = fastavro.schemaless_reader(io.BytesIO(payload), parsed, parsed)
        assert isinstance(record, dict)
        out.append((event, record))
    return layout_of(schema.json), out


def test_events_of_real_changes_decode_to_what_happened(org: Org) -> None:
    streaming = attach(org)
    start = streaming.bus.latest_id
    with call_context(api="rest", client_id="sfsync"):
        record_id = org.store.insert(
            "Account", {"Name": "Acme", "Industry": "Energy", "BillingCity": "Zürich"}
        )
    org.clock.advance(1)
    with call_context(api="rest", client_id="someone-else"):
        org.store.update("Account", record_id, {"Industry": None, "BillingCity": "Basel"})
    org.clock.advance(1)
    org.store.delete(record_id)
    layout, received = _received(org, start)
    assert layout.entity == "Account"
    decoded = [decode_event(record, layout, POS) for _, record in received]
    create, update, delete = decoded
    assert isinstance(create, list)
    assert isinstance(update, list)
    assert isinstance(delete, list)

    (c,) = create
    assert (c.op, c.key, c.partial, c.origin) == (Operation.CREATE, record_id, False, "sfsync")
    assert c.after is not None
    assert c.after["Name"] == "Acme"
    assert c.after["BillingCity"] == "Zürich"
    assert c.after["CreatedDate"] == "2026-03-01T12:00:00.000+0000"

    (u,) = update
    assert (u.op, u.partial, u.origin) == (Operation.UPDATE, True, "someone-else")
    assert u.after is not None
    assert u.after["Industry"] is None  # nulled, and said so
    assert u.after["BillingCity"] == "Basel"
    assert "Name" not in u.after  # untouched fields are never sent as nulls
    assert u.version is not None
    assert c.version is not None
    assert u.version > c.version

    (d,) = delete
    assert (d.op, d.after) == (Operation.DELETE, None)


def test_one_event_for_many_records_becomes_one_change_each(org: Org) -> None:
    ids = org.store.bulk_insert("Account", [{"Name": f"A{i}"} for i in range(3)])
    streaming = attach(org)
    start = streaming.bus.latest_id
    with org.store.transaction():
        for record_id in ids:
            org.store.update("Account", record_id, {"Rating": "Hot"})
    layout, received = _received(org, start)
    events = [e for _, record in received for e in decode_event(record, layout, POS)]  # type: ignore[union-attr]
    assert sorted(e.key for e in events) == sorted(ids)
    assert all(
        e.after == {"Rating": "Hot", "LastModifiedDate": e.after["LastModifiedDate"]}
        or e.after.get("Rating") == "Hot"
        for e in events
    )  # type: ignore[union-attr]
    assert len({e.transaction for e in events}) == 1


def test_gap_events_are_returned_for_healing() -> None:
    layout = _layout(8)
    header = {
        "entityName": "Account",
        "recordIds": ["001A", "001B"],
        "changeType": "GAP_UPDATE",
        "changeOrigin": "",
        "transactionKey": "t",
        "sequenceNumber": 1,
        "commitTimestamp": 1_705_311_000_000,
        "commitNumber": 1,
        "commitUser": "005A",
        "nulledFields": [],
        "diffFields": [],
        "changedFields": [],
    }
    gap = decode_event({"ChangeEventHeader": header}, layout, POS)
    assert isinstance(gap, Gap)
    assert gap.record_ids == ("001A", "001B")
    assert not gap.overflow
    overflow = decode_event(
        {"ChangeEventHeader": {**header, "changeType": "GAP_OVERFLOW", "recordIds": []}},
        layout,
        POS,
    )
    assert isinstance(overflow, Gap)
    assert overflow.overflow


def test_a_schema_that_is_not_a_change_event_is_refused() -> None:
    with pytest.raises(ValueError, match="ChangeEventHeader"):
        layout_of({"type": "record", "name": "X__e", "fields": [{"name": "A", "type": "string"}]})
    with pytest.raises(ValueError, match="record"):
        layout_of({"type": "enum", "name": "X"})


def test_cometd_json_decodes_to_what_the_avro_path_decodes(org: Org) -> None:
    streaming = attach(org)
    start = streaming.bus.latest_id
    with call_context(api="rest", client_id="sfsync"):
        record_id = org.store.insert(
            "Account",
            {"Name": "Acme", "Industry": "Energy", "BillingCity": "Zürich", "AnnualRevenue": 5},
        )
        org.clock.advance(1)
        org.store.update("Account", record_id, {"Industry": None, "BillingCity": "Basel"})
        org.clock.advance(1)
        org.store.delete(record_id)
        org.store.undelete(record_id)
    layout, received = _received(org, start)
    wanted = frozenset(layout.paths) | {"Id"}
    kinds = {name: path.kind for name, path in layout.paths.items() if path.kind}
    assert len(received) == 4
    for event, record in received:
        avro = decode_event(record, layout, POS, wanted)
        message = data_message(org.schema, "/data/AccountChangeEvent", event)
        assert message is not None
        json_events = decode_json_event(message["data"]["payload"], POS, wanted=wanted, kinds=kinds)
        assert isinstance(avro, list)
        assert isinstance(json_events, list)
        assert len(avro) == len(json_events) == 1
        a, j = avro[0], json_events[0]
        if a.op is Operation.CREATE:
            # CometD leaves null fields out of a created record; Avro carries them as null.
            assert a.after is not None
            assert {k: v for k, v in a.after.items() if v is not None} == j.after
            assert a.changed == frozenset() or j.changed <= a.changed
        else:
            assert (a.op, a.key, a.after, a.partial, a.changed) == (
                j.op,
                j.key,
                j.after,
                j.partial,
                j.changed,
            )
        assert (a.origin, a.version, a.committed_at, a.transaction) == (
            j.origin,
            j.version,
            j.committed_at,
            j.transaction,
        )
