"""Pub/Sub payloads to change events: Avro decoding with schemas cached by schema id.

A change event's payload is Avro without the schema; the event names its schema id, and the
schema itself comes from ``GetSchema`` once per id (schemas never change under an id: a new
field on the object gives the topic a new schema id). This module keeps, per schema id, the
parsed schema and the field :class:`~.cdc.Layout`, and narrows every event to the fields the
sync selected, so that a stream delivers exactly what a snapshot or a poll of the same object
would.
"""

from __future__ import annotations

import io
import json
import struct
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import fastavro

from sfsync.connectors.salesforce.avro_reader import Reader, UnsupportedSchemaError, compile_reader
from sfsync.connectors.salesforce.cdc import Gap, Layout, decode_event, layout_of
from sfsync.connectors.salesforce.cometd import decode_json_event
from sfsync.core.errors import SkippableError
from sfsync.core.events import ChangeEvent, Operation, Position
from sfsync.core.schema import EntitySchema, FieldKind

_KINDS = {FieldKind.DATETIME: "datetime", FieldKind.DATE: "date"}


@dataclass(frozen=True, slots=True)
class _Decoder:
    parsed: Any
    layout: Layout
    read: Reader | None  # compiled for the wanted fields; None: fastavro reads it all


class CdcDecoder:
    """Decodes the events of one object's change stream.

    Args:
        schema: the object's description with the sync's field selection applied; events
            carry only these fields (updates that touch none of them carry none).
        fetch_schema: ``GetSchema`` (the Pub/Sub client's cached call).
    """

    def __init__(self, schema: EntitySchema, fetch_schema: Callable[[str], Awaitable[str]]) -> None:
        self.schema = schema
        self._fetch = fetch_schema
        self._decoders: dict[str, _Decoder] = {}
        self._names = frozenset(schema.names())
        self._kinds = {f.name: _KINDS[f.kind] for f in schema.fields.values() if f.kind in _KINDS}

    async def _decoder(self, schema_id: str) -> _Decoder:
        found = self._decoders.get(schema_id)
        if found is None:
            text = await self._fetch(schema_id)
            parsed = fastavro.parse_schema(json.loads(text))
            layout = layout_of(text, self._kinds)
            # The reader builds only the header and the slots holding selected fields: an
            # update names one or two of the object's dozens of fields.
            slots = {"ChangeEventHeader"}
            slots.update(path.slot for name, path in layout.paths.items() if name in self._names)
            try:
                read: Reader | None = compile_reader(json.loads(text), slots)
            except UnsupportedSchemaError:
                read = None
            found = _Decoder(parsed, layout, read)
            self._decoders[schema_id] = found
        return found

    async def decode(
        self, schema_id: str, payload: bytes, position: Position
    ) -> list[ChangeEvent] | Gap:
        """The events of one payload (one per record id), narrowed to the selected fields;
        a :class:`Gap` when Salesforce could not say what changed.

        Raises:
            SkippableError: the payload does not decode with its schema (it is dead-lettered
                by the caller's policy rather than stopping the stream).
        """
        # A known schema without a coroutine of its own: this runs for every event.
        decoder = self._decoders.get(schema_id) or await self._decoder(schema_id)
        try:
            if decoder.read is not None:
                record: object = decoder.read(payload)
            else:
                record = fastavro.schemaless_reader(
                    io.BytesIO(payload), decoder.parsed, decoder.parsed
                )
            if not isinstance(record, Mapping):
                raise ValueError("the payload is not a record")
            decoded = decode_event(record, decoder.layout, position, self._names)
        except (ValueError, TypeError, EOFError, KeyError, IndexError, struct.error) as exc:
            raise SkippableError(
                f"undecodable change event at {position.token} (schema {schema_id}): {exc}",
                code="CDC_DECODE",
                hint="report it with the schema id; the records it named are re-read on the "
                "next overlap sweep",
            ) from exc
        if isinstance(decoded, Gap):
            return decoded
        # An update of none of the selected fields changes nothing the target holds.
        return [e for e in decoded if e.op is not Operation.UPDATE or e.after]

    def decode_json(
        self, payload: Mapping[str, Any], position: Position
    ) -> list[ChangeEvent] | Gap:
        """The same for a CometD (JSON) payload.

        Raises:
            SkippableError: the payload is not a change event.
        """
        try:
            decoded = decode_json_event(payload, position, wanted=self._names, kinds=self._kinds)
        except (ValueError, TypeError, KeyError) as exc:
            raise SkippableError(
                f"undecodable change event at {position.token}: {exc}",
                code="CDC_DECODE",
                hint="report it; the object's recent changes are read again instead",
            ) from exc
        if isinstance(decoded, Gap):
            return decoded
        return [e for e in decoded if e.op is not Operation.UPDATE or e.after]
