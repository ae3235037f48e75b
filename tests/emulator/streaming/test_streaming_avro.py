"""Avro schemas, payloads and field bitmaps (reference section 6.5), on schema objects."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType

from _streaming_support import decode_bitmap
from hypothesis import given
from hypothesis import strategies as st

from sfsync.emulator.schema.loader import load_schema
from sfsync.emulator.schema.model import FieldDef, FieldType, ObjectDef
from sfsync.emulator.streaming import layout
from sfsync.emulator.streaming.avro import (
    change_event_record,
    change_event_schema,
    decode_platform_event,
    encode_change_event,
    encode_platform_event,
    field_bitmap,
    platform_event_schema,
    to_millis,
)
from sfsync.emulator.streaming.events import (
    CHANGE_TYPES,
    ChangeEventBody,
    ChangeEventHeader,
    PlatformEventBody,
)

STANDARD = load_schema(None)
ACCOUNT = STANDARD.object("Account")
assert ACCOUNT is not None


def wide_object(width: int) -> ObjectDef:
    fields = [FieldDef(name=f"F{i}__c", type=FieldType.STRING, label=f"F{i}") for i in range(width)]
    return ObjectDef(
        name="Wide__c",
        label="Wide",
        label_plural="Wides",
        key_prefix="a09",
        fields=MappingProxyType({f.name.lower(): f for f in fields}),
    )


def test_the_reference_bitmap_example() -> None:
    # "0x650004E0" -> top-level indices 5,6,7,10,24,26,29,30 (header = 0, so field Fi-1).
    wide = wide_object(31)
    names = [f"F{i - 1}__c" for i in (5, 6, 7, 10, 24, 26, 29, 30)]
    assert field_bitmap(wide, names) == ["0x650004E0"]
    assert field_bitmap(wide, ["F0__c"]) == ["0x02"]
    assert field_bitmap(wide, []) == []


def test_compound_components_are_nested_bitmaps() -> None:
    assert ACCOUNT is not None
    slots = layout.slots(ACCOUNT)
    billing = next(i for i, s in enumerate(slots, start=1) if s.name == "BillingAddress")
    city = next(i for i, (n, _) in enumerate(slots[billing - 1].children) if n == "City")
    bitmap = field_bitmap(ACCOUNT, ["BillingCity", "Name"])
    name_index = next(i for i, s in enumerate(slots, start=1) if s.name == "Name")
    assert bitmap == [f"0x{1 << name_index:02X}", f"{billing}-0x{1 << city:02X}"]
    schema = change_event_schema(ACCOUNT)
    assert sorted(decode_bitmap(schema, bitmap)) == ["BillingAddress.City", "Name"]


@given(st.sets(st.sampled_from([f.name for f in ACCOUNT.fields.values()])))
def test_bitmaps_decode_to_the_fields_they_encode(names: set[str]) -> None:
    assert ACCOUNT is not None
    schema = change_event_schema(ACCOUNT)
    expected = set()
    for name in names:
        if not layout.carried(ACCOUNT, name):
            continue
        expected.add(layout.display_name(ACCOUNT, name))
    decoded = set(decode_bitmap(schema, field_bitmap(ACCOUNT, names)))
    # A decoder reports a compound whose every component is set by the compound's name.
    for slot in layout.slots(ACCOUNT):
        full = {f"{slot.name}.{child}" for child, _ in slot.children}
        if slot.compound and full <= expected:
            expected = (expected - full) | {slot.name}
    assert decoded == expected


def test_schema_ids_are_stable_and_distinct() -> None:
    assert ACCOUNT is not None
    again = load_schema(None).object("Account")
    assert again is not None
    first = change_event_schema(ACCOUNT)
    assert change_event_schema(again).schema_id == first.schema_id
    assert len(first.schema_id) == 22
    contact = STANDARD.object("Contact")
    assert contact is not None
    assert change_event_schema(contact).schema_id != first.schema_id
    assert first.schema["uuid"] == first.schema_id
    # Two addresses share one named nested record type.
    types = [f["type"][1] for f in first.schema["fields"][1:] if f["name"].endswith("Address")]
    assert isinstance(types[0], dict)
    assert types[1] == "com.sforce.eventbus.Address"


def test_change_event_round_trip_with_nulls_and_dates() -> None:
    assert ACCOUNT is not None
    header = ChangeEventHeader(
        entity_name="Account",
        record_ids=("001xx0000000001AAA",),
        change_type="UPDATE",
        change_origin="com/salesforce/api/rest/59.0",
        transaction_key="t",
        sequence_number=1,
        commit_timestamp=1705311000000,
        commit_number=7,
        commit_user="005xx0000000001AAA",
        changed_fields=("Industry", "ShippingCity", "LastModifiedDate"),
        nulled_fields=("Industry",),
    )
    body = ChangeEventBody(
        header,
        {
            "Industry": None,
            "ShippingCity": "Oslo",
            "LastModifiedDate": "2024-01-15T09:30:00.000+0000",
        },
    )
    schema = change_event_schema(ACCOUNT)
    record = schema.decode(encode_change_event(ACCOUNT, body))
    assert record["LastModifiedDate"] == 1705311000000
    assert record["ShippingAddress"]["City"] == "Oslo"
    assert record["ShippingAddress"]["Street"] is None
    assert record["BillingAddress"] is None
    assert record["Industry"] is None
    assert record["ChangeEventHeader"]["commitNumber"] == 7
    assert decode_bitmap(schema, record["ChangeEventHeader"]["nulledFields"]) == ["Industry"]


def test_platform_event_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "schema.yaml"
    path.write_text("events:\n  Alert__e:\n    fields:\n      When__c: {type: datetime}\n")
    alert = load_schema(path).object("Alert__e")
    assert alert is not None
    body = PlatformEventBody(
        "Alert__e",
        "uuid",
        {
            "CreatedDate": "2024-01-15T09:30:00.000+0000",
            "CreatedById": "005xx0000000001AAA",
            "When__c": "2024-02-01T00:00:00.000+0000",
        },
    )
    payload = encode_platform_event(alert, body)
    record = platform_event_schema(alert).decode(payload)
    assert record["CreatedDate"] == to_millis("2024-01-15T09:30:00.000+0000")
    assert decode_platform_event(alert, payload) == {"When__c": "2024-02-01T00:00:00.000+0000"}


# -- the compiled change-event writer writes the reference's bytes --------------------------


def _wire_value(f: FieldDef, draw: st.DrawFn) -> object:
    if f.type is FieldType.DATETIME:
        millis = draw(st.integers(min_value=0, max_value=4_000_000_000_000))
        moment = datetime.fromtimestamp(millis / 1000, tz=UTC)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{millis % 1000:03d}+0000"
    if f.type is FieldType.DATE:
        return draw(st.dates()).isoformat()
    if f.type is FieldType.INT:
        return draw(st.integers(min_value=-(2**31), max_value=2**31 - 1))
    if f.type.is_number:
        return draw(st.floats(allow_nan=False, allow_infinity=False, width=64))
    if f.type is FieldType.BOOLEAN:
        return draw(st.booleans())
    return draw(st.text(max_size=30))


@st.composite
def _bodies(draw: st.DrawFn, obj_name: str) -> ChangeEventBody:
    obj = STANDARD.object(obj_name)
    assert obj is not None
    flat = [
        f
        for slot in layout.slots(obj)
        for f in ([slot.field] if not slot.compound else [c for _, c in slot.children])
        if f is not None
    ]
    chosen = draw(st.lists(st.sampled_from(flat), unique_by=lambda f: f.name, max_size=25))
    values = {
        f.name: (None if draw(st.booleans()) and draw(st.booleans()) else _wire_value(f, draw))
        for f in chosen
    }
    names = tuple(values)
    header = ChangeEventHeader(
        entity_name=obj_name,
        record_ids=tuple(draw(st.lists(st.text(min_size=1, max_size=18), min_size=1, max_size=3))),
        change_type=draw(st.sampled_from(sorted(CHANGE_TYPES))),
        change_origin=draw(st.text(max_size=40)),
        transaction_key=draw(st.text(max_size=36)),
        sequence_number=draw(st.integers(min_value=0, max_value=2**31 - 1)),
        commit_timestamp=draw(st.integers(min_value=0, max_value=2**62)),
        commit_number=draw(st.integers(min_value=0, max_value=2**62)),
        commit_user=draw(st.text(max_size=18)),
        changed_fields=names,
        nulled_fields=tuple(n for n, v in values.items() if v is None),
        diff_fields=(),
    )
    return ChangeEventBody(header, MappingProxyType(values))


@given(st.sampled_from(["Account", "Contact", "Opportunity", "Lead"]).flatmap(_bodies))
def test_the_compiled_writer_writes_the_reference_bytes(body: ChangeEventBody) -> None:
    obj = STANDARD.object(body.header.entity_name)
    assert obj is not None
    reference = change_event_schema(obj).encode(change_event_record(obj, body))
    assert encode_change_event(obj, body) == reference
