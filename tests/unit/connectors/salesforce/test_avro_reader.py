"""The compiled Avro reader gives what fastavro gives, for every type, wanted or skipped."""

from __future__ import annotations

import io
import random
import struct
from typing import Any

import fastavro
import pytest

from sfsync.connectors.salesforce.avro_reader import UnsupportedSchemaError, compile_reader

ADDRESS = {
    "type": "record",
    "name": "Address",
    "namespace": "com.sforce.eventbus",
    "fields": [
        {"name": "Street", "type": ["null", "string"], "default": None},
        {"name": "Lat", "type": ["null", "double"], "default": None},
    ],
}
SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "ThingChangeEvent",
    "namespace": "com.sforce.eventbus",
    "fields": [
        {
            "name": "ChangeEventHeader",
            "type": {
                "type": "record",
                "name": "ChangeEventHeader",
                "fields": [
                    {"name": "entityName", "type": "string"},
                    {"name": "recordIds", "type": {"type": "array", "items": "string"}},
                    {
                        "name": "changeType",
                        "type": {"type": "enum", "name": "ChangeType", "symbols": ["A", "B", "C"]},
                    },
                    {"name": "sequenceNumber", "type": "int"},
                    {"name": "commitTimestamp", "type": "long"},
                    {"name": "changedFields", "type": {"type": "array", "items": "string"}},
                ],
            },
        },
        {"name": "Name", "type": ["null", "string"], "default": None},
        {"name": "Flag", "type": ["null", "boolean"], "default": None},
        {"name": "Count", "type": ["null", "int"], "default": None},
        {"name": "Big", "type": ["null", "long"], "default": None},
        {"name": "Ratio", "type": ["null", "float"], "default": None},
        {"name": "Amount", "type": ["null", "double"], "default": None},
        {"name": "Blob", "type": ["null", "bytes"], "default": None},
        {"name": "BillingAddress", "type": ["null", ADDRESS], "default": None},
        {
            "name": "ShippingAddress",
            "type": ["null", "com.sforce.eventbus.Address"],
            "default": None,
        },
        {"name": "Tags", "type": {"type": "map", "values": ["null", "long"]}},
        {"name": "Hash", "type": {"type": "fixed", "name": "Hash", "size": 4}},
        {"name": "Either", "type": ["string", "long", "null"]},
        {"name": "Level", "type": ["null", "ChangeType"], "default": None},
        {"name": "Last", "type": ["null", "string"], "default": None},
    ],
}


def _random_record(rng: random.Random) -> dict[str, Any]:
    def maybe(value: object) -> object:
        return None if rng.random() < 0.4 else value

    def text() -> str:
        return "".join(rng.choice("aZü€ 0\n") for _ in range(rng.randint(0, 70)))

    def number() -> int:
        return rng.choice([0, -1, 1, 63, -64, 64, 2**31 - 1, -(2**31), 2**62, -(2**63)])

    address = {"Street": maybe(text()), "Lat": maybe(rng.uniform(-90, 90))}
    return {
        "ChangeEventHeader": {
            "entityName": text(),
            "recordIds": [text() for _ in range(rng.randint(0, 3))],
            "changeType": rng.choice(["A", "B", "C"]),
            "sequenceNumber": rng.choice([0, 1, -5, 2**31 - 1]),
            "commitTimestamp": number(),
            "changedFields": [text() for _ in range(rng.randint(0, 200))],
        },
        "Name": maybe(text()),
        "Flag": maybe(rng.random() < 0.5),
        "Count": maybe(rng.choice([0, -1, 2**31 - 1, -(2**31)])),
        "Big": maybe(number()),
        "Ratio": maybe(rng.choice([0.5, -2.25, 1e30])),
        "Amount": maybe(rng.uniform(-1e12, 1e12)),
        "Blob": maybe(bytes(rng.randrange(256) for _ in range(rng.randint(0, 9)))),
        "BillingAddress": maybe(address),
        "ShippingAddress": maybe(address),
        "Tags": {text(): maybe(number()) for _ in range(rng.randint(0, 3))},
        "Hash": bytes(rng.randrange(256) for _ in range(4)),
        "Either": rng.choice([text(), number(), None]),
        "Level": maybe(rng.choice(["A", "C"])),
        "Last": maybe(text()),
    }


@pytest.mark.parametrize(
    "wanted",
    [
        {f["name"] for f in SCHEMA["fields"]},
        {"ChangeEventHeader", "Name", "ShippingAddress"},
        {"Last"},
        set(),
    ],
)
def test_same_values_as_fastavro_for_the_wanted_fields(wanted: set[str]) -> None:
    parsed = fastavro.parse_schema(SCHEMA)
    read = compile_reader(SCHEMA, wanted)
    rng = random.Random(7)
    for _ in range(300):
        out = io.BytesIO()
        fastavro.schemaless_writer(out, parsed, _random_record(rng))
        payload = out.getvalue()
        expected = fastavro.schemaless_reader(io.BytesIO(payload), parsed, parsed)
        assert isinstance(expected, dict)
        assert read(payload) == {k: v for k, v in expected.items() if k in wanted}


def test_malformed_payloads_raise() -> None:
    parsed = fastavro.parse_schema(SCHEMA)
    out = io.BytesIO()
    fastavro.schemaless_writer(out, parsed, _random_record(random.Random(1)))
    payload = out.getvalue()
    read = compile_reader(SCHEMA, {"Last"})
    for cut in (1, len(payload) // 2, len(payload) - 1):
        with pytest.raises((ValueError, IndexError, EOFError, struct.error)):
            read(payload[:cut])
    # The first top-level union after the header, given an index it does not have.
    header = compile_reader({**SCHEMA, "fields": SCHEMA["fields"][:1]}, set())
    bad = _with_bad_union(payload, header)
    with pytest.raises(ValueError, match="union"):
        read(bad)


def _with_bad_union(payload: bytes, header_only: Any) -> bytes:
    # The header's length: read it alone, then find where "Name" starts by re-encoding.
    parsed = fastavro.parse_schema(SCHEMA)
    record = fastavro.schemaless_reader(io.BytesIO(payload), parsed, parsed)
    assert isinstance(record, dict)
    head = io.BytesIO()
    fastavro.schemaless_writer(
        head, fastavro.parse_schema(SCHEMA["fields"][0]["type"]), record["ChangeEventHeader"]
    )
    start = len(head.getvalue())
    header_only(payload[:start])  # the header alone reads
    return payload[:start] + bytes([8]) + payload[start + 1 :]  # union index 4: none


@pytest.mark.parametrize(
    "field_type",
    [
        {"type": "long", "logicalType": "timestamp-millis"},
        {"type": "record", "name": "Node", "fields": [{"name": "next", "type": ["null", "Node"]}]},
    ],
)
def test_what_it_does_not_handle_is_said(field_type: object) -> None:
    schema = {"type": "record", "name": "R", "fields": [{"name": "x", "type": field_type}]}
    with pytest.raises(UnsupportedSchemaError):
        compile_reader(schema, {"x"})
