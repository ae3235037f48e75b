"""Shared helpers for the streaming tests: an org with a custom object and a platform event,
served in process (httpx ASGI transport) or over real sockets (HTTP + gRPC)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sfsync.emulator.org import Org
from sfsync.emulator.streaming.avro import EventSchema

TOKEN = "streaming-test-token"
V = "/services/data/v59.0"
SCHEMA = """
objects:
  Invoice__c:
    label: Invoice
    fields:
      Amount__c: {type: currency, precision: 16, scale: 2}
      Due__c: {type: date}
events:
  Printer__e:
    fields:
      Model__c: {type: string, length: 40}
      Pages__c: {type: int}
      Body__c: {type: longtextarea, length: 131072}
"""


def make_org(directory: Path) -> Org:
    """A real org (real store) with :data:`SCHEMA` and the fixed access token :data:`TOKEN`."""
    (directory / "schema.yaml").write_text(SCHEMA)
    return Org.create(
        schema_path=directory / "schema.yaml", access_token=TOKEN, state_dir=directory / "state"
    )


def decode_bitmap(schema: EventSchema, bitmap: Sequence[str]) -> list[str]:
    """Field names from a Pub/Sub bitmap, decoded the way Salesforce's samples decode it
    (an independent reading: binary string reversed, bit i -> schema field i)."""
    fields = schema.schema["fields"]
    names: list[str] = []
    for element in bitmap:
        if "-" in element:
            parent_index, hex_bits = element.split("-", 1)
            parent = fields[int(parent_index)]
            nested = next(t for t in parent["type"] if isinstance(t, dict) or t != "null")
            if isinstance(nested, str):  # a named type defined earlier
                nested = next(
                    f["type"][1]
                    for f in fields
                    if isinstance(f["type"], list)
                    and isinstance(f["type"][1], dict)
                    and f["type"][1].get("name") == nested.rsplit(".", 1)[-1]
                )
            children = nested["fields"]
            bits = bin(int(hex_bits, 16))[2:][::-1]
            chosen = [children[i]["name"] for i, bit in enumerate(bits) if bit == "1"]
            if len(chosen) == len(children):
                names.append(parent["name"])
            else:
                names += [f"{parent['name']}.{c}" for c in chosen]
        else:
            bits = bin(int(element, 16))[2:][::-1]
            names += [fields[i]["name"] for i, bit in enumerate(bits) if bit == "1"]
    return names
