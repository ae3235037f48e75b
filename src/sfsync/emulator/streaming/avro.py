"""Avro schemas and payloads of the Pub/Sub API (reference section 6.5).

Schemas (namespace ``com.sforce.eventbus``):

* change event ``<Entity>ChangeEvent``: ``ChangeEventHeader`` (a nested record, field 0), then
  every carried field of the object (:mod:`~sfsync.emulator.streaming.layout`) as
  ``["null", T]`` with default null; compound fields are nested records (``Address`` for
  addresses, ``PersonName`` for Contact/Lead/User names), each also ``["null", record]``.
  The header's exact Avro types are UNCONFIRMED; we use ``string``, ``array<string>``, the
  ``ChangeType`` enum, ``int`` for ``sequenceNumber`` and ``long`` for the commit fields;
* platform event ``<Name>__e``: ``CreatedDate`` (``long``), ``CreatedById`` (``string``), then
  the custom fields as ``["null", T]``.

Datetimes and dates are ``long`` epoch milliseconds; numbers ``double`` (``int`` for integer
fields); checkboxes ``boolean``; everything else ``string``.

A schema's id is a stable hash of its JSON: the first 22 characters of the URL-safe base64
MD5 digest (the shape of Salesforce's ids, e.g. ``IeRuaY6cbI_HsV8Rv1Mc5g``). The served JSON
carries it again as ``uuid``, as Salesforce's do; the hash is taken before adding it.

Payloads are the raw Avro binary encoding of one record (no container, no header).

Field bitmaps (``changedFields``, ``nulledFields``, ``diffFields`` in the Pub/Sub header):
element 0 is ``0x`` + the hex of an integer whose bit *i* marks top-level field *i* (header =
0), most significant byte first; each compound field with marked components adds
``<index>-0x<hex>`` whose bits index the nested record's fields. A compound's own bit is not
set for a component change (a decoder reports ``BillingAddress.City``). An empty set is an
empty array.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import fastavro

from sfsync.emulator.clock import format_datetime
from sfsync.emulator.schema.model import FieldDef, FieldType, ObjectDef, WireValue
from sfsync.emulator.streaming import layout
from sfsync.emulator.streaming.avro_writer import ChangeEventWriter
from sfsync.emulator.streaming.cdc import change_event_name
from sfsync.emulator.streaming.events import (
    CHANGE_TYPES,
    ChangeEventBody,
    ChangeEventHeader,
    PlatformEventBody,
)

NAMESPACE = "com.sforce.eventbus"

_STRINGS = {"type": "array", "items": "string"}

HEADER_SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "ChangeEventHeader",
    "namespace": NAMESPACE,
    "fields": [
        {"name": "entityName", "type": "string"},
        {"name": "recordIds", "type": _STRINGS},
        {
            "name": "changeType",
            "type": {"type": "enum", "name": "ChangeType", "symbols": list(CHANGE_TYPES)},
        },
        {"name": "changeOrigin", "type": "string"},
        {"name": "transactionKey", "type": "string"},
        {"name": "sequenceNumber", "type": "int"},
        {"name": "commitTimestamp", "type": "long"},
        {"name": "commitNumber", "type": "long"},
        {"name": "commitUser", "type": "string"},
        {"name": "nulledFields", "type": _STRINGS},
        {"name": "diffFields", "type": _STRINGS},
        {"name": "changedFields", "type": _STRINGS},
    ],
}


# ----------------------------------------------------------------------------- schemas


class EventSchema:
    """One Avro schema: its JSON (with ``uuid``), id and parsed form."""

    def __init__(self, schema: dict[str, Any]) -> None:
        canonical = json.dumps(schema, separators=(",", ":"), sort_keys=True)
        digest = hashlib.md5(canonical.encode("utf-8"), usedforsecurity=False).digest()
        self.schema_id = base64.urlsafe_b64encode(digest).decode("ascii")[:22]
        self.schema = {**schema, "uuid": self.schema_id}
        self.json = json.dumps(self.schema, separators=(",", ":"))
        self.parsed = fastavro.parse_schema(schema)

    def encode(self, record: Mapping[str, Any]) -> bytes:
        out = io.BytesIO()
        fastavro.schemaless_writer(out, self.parsed, dict(record))
        return out.getvalue()

    def decode(self, payload: bytes) -> dict[str, Any]:
        record = fastavro.schemaless_reader(io.BytesIO(payload), self.parsed, self.parsed)
        if not isinstance(record, dict):
            raise ValueError("payload is not an Avro record")
        return record


def _avro_type(f: FieldDef) -> str:
    if f.type in (FieldType.DATETIME, FieldType.DATE):
        return "long"
    if f.type is FieldType.INT:
        return "int"
    if f.type.is_number:
        return "double"
    if f.type is FieldType.BOOLEAN:
        return "boolean"
    return "string"


def _optional(name: str, kind: object, f: FieldDef | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": name, "type": ["null", kind], "default": None}
    # Salesforce documents a field's type in ``doc`` (``"CreatedDate:DateTime"``): the only
    # way a client can tell that a ``long`` is a datetime or a date.
    if f is not None and f.type is FieldType.DATETIME:
        spec["doc"] = f"{f.name}:DateTime"
    elif f is not None and f.type is FieldType.DATE:
        spec["doc"] = f"{f.name}:Date"
    return spec


@layout.per_object
def change_event_schema(obj: ObjectDef) -> EventSchema:
    """The Avro schema of ``obj``'s change event."""
    fields: list[dict[str, Any]] = [{"name": "ChangeEventHeader", "type": HEADER_SCHEMA}]
    defined: set[str] = set()
    for slot in layout.slots(obj):
        if not slot.compound:
            assert slot.field is not None
            fields.append(_optional(slot.name, _avro_type(slot.field), slot.field))
            continue
        type_name = "Address" if slot.name.endswith("Address") else "PersonName"
        if type_name in defined:
            fields.append(_optional(slot.name, f"{NAMESPACE}.{type_name}"))
            continue
        defined.add(type_name)
        nested = {
            "type": "record",
            "name": type_name,
            "namespace": NAMESPACE,
            "fields": [_optional(n, _avro_type(f), f) for n, f in slot.children],
        }
        fields.append(_optional(slot.name, nested))
    return EventSchema(
        {
            "type": "record",
            "name": change_event_name(obj.name),
            "namespace": NAMESPACE,
            "fields": fields,
        }
    )


def event_fields(obj: ObjectDef) -> list[FieldDef]:
    """The custom fields a platform event carries (its declared ``__c`` fields)."""
    return [f for f in obj.fields.values() if f.custom]


@layout.per_object
def platform_event_schema(obj: ObjectDef) -> EventSchema:
    """The Avro schema of the platform event ``obj``."""
    fields: list[dict[str, Any]] = [
        {"name": "CreatedDate", "type": "long", "doc": "CreatedDate:DateTime"},
        {"name": "CreatedById", "type": "string", "doc": "CreatedBy:EntityId"},
    ]
    fields += [_optional(f.name, _avro_type(f)) for f in event_fields(obj)]
    return EventSchema(
        {"type": "record", "name": obj.name, "namespace": NAMESPACE, "fields": fields}
    )


# ----------------------------------------------------------------------------- values


def to_millis(value: str) -> int:
    """A wire datetime (``...+0000``) or date (``2024-01-15``) as epoch milliseconds."""
    # fromisoformat (which reads "+0000" on 3.11) is some 30 times cheaper than strptime,
    # and this runs for every date field of every event delivered.
    if len(value) == 10:
        moment = datetime.fromisoformat(value).replace(tzinfo=UTC)
    else:
        moment = datetime.fromisoformat(value)
    return round(moment.timestamp() * 1000)


def from_millis(millis: int, f: FieldDef) -> str:
    moment = datetime.fromtimestamp(millis / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%d") if f.type is FieldType.DATE else format_datetime(moment)


def to_avro(f: FieldDef, value: WireValue) -> object:
    """A wire value of field ``f`` in its Avro form."""
    if value is None:
        return None
    kind = _avro_type(f)
    if kind == "long":
        return to_millis(str(value))
    if kind == "int":
        return int(value)
    if kind == "double":
        return float(value)
    if kind == "boolean":
        return bool(value)
    return str(value)


def from_avro(f: FieldDef, value: object) -> WireValue:
    """An Avro value of field ``f`` in the org's wire form."""
    if value is None:
        return None
    if f.type in (FieldType.DATETIME, FieldType.DATE) and isinstance(value, int):
        return from_millis(value, f)
    if isinstance(value, str | int | float | bool):
        return value
    return str(value)


# ----------------------------------------------------------------------------- bitmaps


def _hex(bits: int) -> str:
    length = max(1, (bits.bit_length() + 7) // 8)
    return "0x" + bits.to_bytes(length, "big").hex().upper()


def field_bitmap(obj: ObjectDef, flat_names: Iterable[str]) -> list[str]:
    """The Pub/Sub bitmap strings for a set of flat field names (see module docstring)."""
    top = 0
    nested: dict[int, int] = {}
    for name in flat_names:
        found = layout.position(obj, name)
        if found is None:
            continue
        index, child = found
        if child is None:
            top |= 1 << index
        else:
            nested[index] = nested.get(index, 0) | (1 << child)
    if not top and not nested:
        return []
    return [_hex(top), *(f"{index}-{_hex(bits)}" for index, bits in sorted(nested.items()))]


# ----------------------------------------------------------------------------- payloads


def _header_record(obj: ObjectDef, header: ChangeEventHeader) -> dict[str, object]:
    return {
        "entityName": header.entity_name,
        "recordIds": list(header.record_ids),
        "changeType": header.change_type,
        "changeOrigin": header.change_origin,
        "transactionKey": header.transaction_key,
        "sequenceNumber": header.sequence_number,
        "commitTimestamp": header.commit_timestamp,
        "commitNumber": header.commit_number,
        "commitUser": header.commit_user,
        "nulledFields": field_bitmap(obj, header.nulled_fields),
        "diffFields": field_bitmap(obj, header.diff_fields),
        "changedFields": field_bitmap(obj, header.changed_fields),
    }


def change_event_record(obj: ObjectDef, body: ChangeEventBody) -> dict[str, object]:
    """The Avro record of a change event: every field, null where not carried."""
    values = {k.lower(): v for k, v in body.values.items()}
    record: dict[str, object] = {"ChangeEventHeader": _header_record(obj, body.header)}
    for slot in layout.slots(obj):
        if not slot.compound:
            assert slot.field is not None
            record[slot.name] = to_avro(slot.field, values.get(slot.name.lower()))
            continue
        present = [f for _, f in slot.children if f.name.lower() in values]
        record[slot.name] = (
            {n: to_avro(f, values.get(f.name.lower())) for n, f in slot.children}
            if present
            else None
        )
    return record


def encode_change_event(obj: ObjectDef, body: ChangeEventBody) -> bytes:
    """The Avro payload of a change event, by the object's compiled writer: the bytes of
    ``change_event_schema(obj).encode(change_event_record(obj, body))``, several times
    cheaper (see :mod:`~sfsync.emulator.streaming.avro_writer`)."""
    return _change_event_writer(obj).encode(body)


@layout.per_object
def _change_event_writer(obj: ObjectDef) -> ChangeEventWriter:
    return ChangeEventWriter(obj, field_bitmap)


def encode_platform_event(obj: ObjectDef, body: PlatformEventBody) -> bytes:
    """The Avro payload of a platform event."""
    created = body.values.get("CreatedDate")
    record: dict[str, object] = {
        "CreatedDate": to_millis(str(created)) if created is not None else 0,
        "CreatedById": str(body.values.get("CreatedById") or ""),
    }
    for f in event_fields(obj):
        record[f.name] = to_avro(f, body.values.get(f.name))
    return platform_event_schema(obj).encode(record)


def decode_platform_event(obj: ObjectDef, payload: bytes) -> dict[str, WireValue]:
    """The custom field values of a published platform event payload (wire form).

    Raises ValueError when the payload does not decode with the event's schema.
    """
    try:
        record = platform_event_schema(obj).decode(payload)
    except Exception as exc:  # fastavro raises several types for garbage input
        raise ValueError(f"payload does not match the schema of {obj.name}: {exc}") from exc
    return {f.name: from_avro(f, record.get(f.name)) for f in event_fields(obj)}
