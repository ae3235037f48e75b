"""Change events in Avro binary, written by a plan compiled once per object.

Every change event of an object carries every field of its schema (a null where the event
does not carry it), and an update carries a handful: with a generic writer, each delivered
event pays for building a record of all of them (a hundred for Account) and for the writer
walking the schema. Here the plan is made once per object (:func:`writer_for`): the encoded
null of every slot is laid out in advance, and an event only encodes the header and the fields
it carries. The bytes are exactly those of :meth:`EventSchema.encode
<sfsync.emulator.streaming.avro.EventSchema.encode>` on :func:`change_event_record
<sfsync.emulator.streaming.avro.change_event_record>` (the tests compare them), which stays
the reference and the decoder's schema.

Avro binary, as written here: ``int``/``long`` zig-zag varints; ``double`` 8 bytes little
endian; ``boolean`` one byte; ``string`` length then UTF-8; an array one block (count, items)
then ``0``; an enum its index; a ``["null", T]`` union ``0`` for null, else ``2`` (index 1,
zig-zagged) then ``T``; a record its fields in order.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from sfsync.emulator.schema.model import FieldDef, FieldType, ObjectDef, WireValue
from sfsync.emulator.streaming import layout
from sfsync.emulator.streaming.events import CHANGE_TYPES, ChangeEventBody

Encoder = Callable[[WireValue], bytes]
BitmapOf = Callable[[ObjectDef, tuple[str, ...]], list[str]]

_NULL = b"\x00"
_SOME = b"\x02"
_PACK_DOUBLE = struct.Struct("<d").pack
_CHANGE_TYPE = {name: index for index, name in enumerate(CHANGE_TYPES)}
_BITMAP_CACHE = 4096
"""Distinct field lists remembered per object (forgotten all at once when full)."""


def varint(n: int) -> bytes:
    """A zig-zag varint (Avro ``int`` and ``long``)."""
    z = (n << 1) ^ (n >> 63)
    if z < 0x80:
        return bytes((z,))
    out = bytearray()
    while z >= 0x80:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


def string(text: str) -> bytes:
    data = text.encode("utf-8")
    return varint(len(data)) + data


def strings(items: Sequence[str]) -> bytes:
    if not items:
        return _NULL
    return varint(len(items)) + b"".join(string(s) for s in items) + _NULL


def _millis(value: WireValue) -> bytes:
    text = str(value)
    moment = datetime.fromisoformat(text)
    if len(text) == 10:
        moment = moment.replace(tzinfo=UTC)
    return varint(round(moment.timestamp() * 1000))


def _encoder(f: FieldDef) -> Encoder:
    """The encoder of ``f``'s non-null values (the rules of ``avro.to_avro``)."""
    if f.type in (FieldType.DATETIME, FieldType.DATE):
        return _millis
    if f.type is FieldType.INT:
        return lambda v: varint(int(v))  # type: ignore[arg-type]
    if f.type.is_number:
        return lambda v: _PACK_DOUBLE(float(v))  # type: ignore[arg-type]
    if f.type is FieldType.BOOLEAN:
        return lambda v: b"\x01" if v else b"\x00"
    return lambda v: string(str(v))


class ChangeEventWriter:
    """The compiled plan of one object's change events (see the module docstring)."""

    def __init__(self, obj: ObjectDef, bitmap: BitmapOf) -> None:
        self.obj = obj
        self._bitmap = bitmap
        self._bitmap_cache: dict[tuple[str, ...], bytes] = {}
        slots = layout.slots(obj)
        self._nulls = [_NULL] * len(slots)
        # Flat field name (lower case) -> (slot index, encoder) for plain fields; for the
        # children of a compound, -> (slot index, None): the compound is written whole.
        self._plain: dict[str, tuple[int, Encoder]] = {}
        self._compound: dict[str, int] = {}
        self._children: dict[int, tuple[tuple[str, Encoder], ...]] = {}
        for index, slot in enumerate(slots):
            if slot.compound:
                self._children[index] = tuple(
                    (f.name.lower(), _encoder(f)) for _, f in slot.children
                )
                for _, f in slot.children:
                    self._compound[f.name.lower()] = index
            else:
                assert slot.field is not None
                self._plain[slot.name.lower()] = (index, _encoder(slot.field))

    def encode(self, body: ChangeEventBody) -> bytes:
        """The Avro payload of ``body``."""
        parts = self._nulls.copy()
        lowered = {k.lower(): v for k, v in body.values.items()}
        compounds: set[int] = set()
        for name, value in lowered.items():
            plain = self._plain.get(name)
            if plain is not None:
                if value is not None:
                    parts[plain[0]] = _SOME + plain[1](value)
                continue
            index = self._compound.get(name)
            if index is not None:
                compounds.add(index)
        for index in compounds:
            out = [_SOME]
            for name, encode in self._children[index]:
                value = lowered.get(name)
                out.append(_NULL if value is None else _SOME + encode(value))
            parts[index] = b"".join(out)
        return self._header(body) + b"".join(parts)

    def _bitmaps(self, names: tuple[str, ...]) -> bytes:
        """A field list as its encoded bitmap array; cached, as the same lists come back
        event after event (the fields a form or an integration sets)."""
        encoded = self._bitmap_cache.get(names)
        if encoded is None:
            if len(self._bitmap_cache) >= _BITMAP_CACHE:
                self._bitmap_cache.clear()
            encoded = strings(self._bitmap(self.obj, names))
            self._bitmap_cache[names] = encoded
        return encoded

    def _header(self, body: ChangeEventBody) -> bytes:
        h = body.header
        bitmaps = self._bitmaps
        return b"".join(
            (
                string(h.entity_name),
                strings(h.record_ids),
                varint(_CHANGE_TYPE[h.change_type]),
                string(h.change_origin),
                string(h.transaction_key),
                varint(h.sequence_number),
                varint(h.commit_timestamp),
                varint(h.commit_number),
                string(h.commit_user),
                bitmaps(h.nulled_fields),
                bitmaps(h.diff_fields),
                bitmaps(h.changed_fields),
            )
        )
