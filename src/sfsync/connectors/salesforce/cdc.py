"""Change Data Capture events (Pub/Sub API, Avro) to :class:`~sfsync.core.events.ChangeEvent`.

Pure functions, table-tested: nothing here talks to the network. The subscriber decodes each
Avro payload with the schema the org serves, then calls :func:`decode_event`.

How Salesforce encodes a change (reference sections 5.4 and 6.5):

- The first field of the record is ``ChangeEventHeader``: entity, record ids, change type,
  origin, transaction, commit time, and three *bitmaps* (``changedFields``, ``nulledFields``,
  ``diffFields``). Every other field is ``["null", T]``; on an update, unchanged fields are
  null too, so only the bitmaps tell a changed-to-null field from an untouched one.
- A bitmap is a list of strings. The first is the hex of an integer whose bit *i* (least
  significant = 0) marks the top-level field at index *i* (the header is index 0). Others look
  like ``"4-0x10"``: for the compound field at top-level index 4, the bits of its nested fields.
- Compound fields nest: an address (``BillingAddress``) is a record of ``Street``, ``City``, ...
  (the component names without the address's prefix); a person name (``Name``) a record of
  ``FirstName``, ``LastName``, ... They are flattened back to the object's own fields
  (``BillingCity``, ``FirstName``) so that a CDC update looks like a REST record.
- Datetimes arrive as epoch milliseconds (``doc`` ``"...:DateTime"``) and dates likewise
  (``"...:Date"``); both are rendered in Salesforce's REST wire form, so that a sink cannot tell
  which API delivered a value.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from sfsync.core.events import ChangeEvent, Operation, Position

_OPERATIONS = {
    "CREATE": Operation.CREATE,
    "UPDATE": Operation.UPDATE,
    "DELETE": Operation.DELETE,
    "UNDELETE": Operation.UNDELETE,
}


@dataclass(frozen=True, slots=True)
class Slot:
    """One top-level field of a change event record.

    Attributes:
        name: the field name in the event (``BillingAddress``, ``Name``, ``Industry``).
        kind: ``"datetime"``, ``"date"`` or ``""`` (from the schema's ``doc``), for values.
        children: for a compound field, its nested field names in schema order.
    """

    name: str
    kind: str = ""
    children: tuple[str, ...] = ()
    child_kinds: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Path:
    """Where one of the object's own (flat) fields sits in an event record."""

    slot: str
    child: str | None
    kind: str


@dataclass(frozen=True, slots=True)
class Layout:
    """The field positions of one change event schema (what the bitmaps index).

    ``paths`` maps each flat field name (``BillingCity``) to where its value sits, so that an
    event's values are read field by field, only for the fields wanted.
    """

    entity: str
    slots: tuple[Slot, ...]
    paths: Mapping[str, Path] = field(default_factory=lambda: MappingProxyType({}), compare=False)
    # Decoded bitmaps by their text: a stream repeats the same few field sets endlessly.
    bitmaps: dict[tuple[str, ...], tuple[str, ...]] = field(
        default_factory=dict, compare=False, repr=False
    )
    # The same, narrowed to a selection: (changed, nulled, both) by (changed, nulled bitmaps).
    selections: dict[tuple[object, ...], _Selection] = field(
        default_factory=dict, compare=False, repr=False
    )

    def __post_init__(self) -> None:
        if not self.paths:
            paths: dict[str, Path] = {}
            for slot in self.slots[1:]:
                if slot.children:
                    for child, kind in zip(slot.children, slot.child_kinds, strict=True):
                        paths[flat_name(slot.name, child)] = Path(slot.name, child, kind)
                else:
                    paths[slot.name] = Path(slot.name, None, slot.kind)
            object.__setattr__(self, "paths", MappingProxyType(paths))

    def value(self, record: Mapping[str, Any], name: str) -> object:
        """The value of flat field ``name`` in ``record``, in REST form."""
        path = self.paths.get(name)
        if path is None:
            return None
        value = record.get(path.slot)
        if path.child is not None:
            value = value.get(path.child) if isinstance(value, Mapping) else None
        return _value(path.kind, value)


def _kind(doc: object) -> str:
    text = str(doc or "")
    if text.endswith(":DateTime"):
        return "datetime"
    if text.endswith(":Date"):
        return "date"
    return ""


def _record_of(
    avro_type: object, named: dict[str, Mapping[str, Any]], namespace: str
) -> Mapping[str, Any] | None:
    """The record schema inside ``avro_type`` (a record, a union with one, or the name of one
    defined earlier in the schema, as Avro writes a type's second use), if any."""
    if isinstance(avro_type, Mapping) and avro_type.get("type") == "record":
        name = str(avro_type.get("name", ""))
        space = str(avro_type.get("namespace", namespace))
        named[name] = avro_type
        named[f"{space}.{name}"] = avro_type
        return avro_type
    if isinstance(avro_type, str):
        return named.get(avro_type) or named.get(f"{namespace}.{avro_type}")
    if isinstance(avro_type, list):
        for option in avro_type:
            found = _record_of(option, named, namespace)
            if found is not None:
                return found
    return None


def layout_of(schema: str | Mapping[str, Any], kinds: Mapping[str, str] | None = None) -> Layout:
    """The layout of a change event schema (``GetSchema``'s ``schema_json``).

    Args:
        schema: the Avro schema.
        kinds: field name -> ``"datetime"`` / ``"date"`` from describe, for schemas whose
            fields carry no ``doc`` (the value types cannot be told from ``long`` alone).

    Raises:
        ValueError: the schema is not a change event record.
    """
    data: Mapping[str, Any] = json.loads(schema) if isinstance(schema, str) else schema
    fields = data.get("fields")
    if data.get("type") != "record" or not isinstance(fields, list) or not fields:
        raise ValueError("not an Avro record schema")
    if fields[0].get("name") != "ChangeEventHeader":
        raise ValueError("not a change event schema: the first field is not ChangeEventHeader")
    known = {k.lower(): v for k, v in (kinds or {}).items()}
    named: dict[str, Mapping[str, Any]] = {}
    namespace = str(data.get("namespace", ""))
    slots: list[Slot] = []
    for entry in fields:
        name = str(entry["name"])
        nested = _record_of(entry.get("type"), named, namespace)
        if name == "ChangeEventHeader":
            slots.append(Slot(name))
        elif nested is not None:
            children = tuple(str(f["name"]) for f in nested["fields"])
            child_kinds = tuple(
                _kind(f.get("doc")) or known.get(flat_name(name, str(f["name"])).lower(), "")
                for f in nested["fields"]
            )
            slots.append(Slot(name, "", children, child_kinds))
        else:
            slots.append(Slot(name, _kind(entry.get("doc")) or known.get(name.lower(), "")))
    entity = str(data.get("name", "")).removesuffix("ChangeEvent").removesuffix("__")
    if str(data.get("name", "")).endswith("__ChangeEvent"):
        entity += "__c"
    return Layout(entity=entity, slots=tuple(slots))


def _bits(hex_text: str) -> list[int]:
    value = int(hex_text, 16)
    positions = []
    index = 0
    while value:
        if value & 1:
            positions.append(index)
        value >>= 1
        index += 1
    return positions


def flat_name(compound: str, child: str) -> str:
    """The object's own field for a nested one: ``BillingAddress.City`` -> ``BillingCity``."""
    if compound.endswith("Address"):
        return compound.removesuffix("Address") + child
    return child


def decode_bitmap(entries: Sequence[str], layout: Layout) -> list[str]:
    """The field names a bitmap marks, as the object's own (flat) field names.

    A compound field marked as a whole stands for all its children; ``"N-0x.."`` entries name
    single children. The header (index 0) is never reported.

    Raises:
        ValueError: an entry is not a bitmap, or points outside the schema.
    """
    key = tuple(entries)
    known = layout.bitmaps.get(key)
    if known is None:
        known = tuple(_decode_bitmap(key, layout))
        if len(layout.bitmaps) >= 4096:
            layout.bitmaps.clear()  # bounded: field sets are few, but never trust a stream
        layout.bitmaps[key] = known
    return list(known)


def _decode_bitmap(entries: Sequence[str], layout: Layout) -> list[str]:
    names: list[str] = []
    seen: set[str] = set()

    def add(name: str) -> None:
        if name not in seen:
            seen.add(name)
            names.append(name)

    for position, entry in enumerate(entries):
        parent, sep, hex_text = entry.partition("-")
        try:
            if position == 0 and not sep:
                for index in _bits(entry):
                    if index == 0:
                        continue
                    slot = layout.slots[index]
                    if slot.children:
                        for child in slot.children:
                            add(flat_name(slot.name, child))
                    else:
                        add(slot.name)
            else:
                slot = layout.slots[int(parent)]
                for index in _bits(hex_text):
                    add(flat_name(slot.name, slot.children[index]))
        except (ValueError, IndexError) as exc:
            raise ValueError(f"bad field bitmap entry {entry!r} for {layout.entity}") from exc
    return names


_Selection = tuple[tuple[str, ...], tuple[str, ...], frozenset[str]]


def _selection(
    layout: Layout,
    changed_bitmap: Sequence[str],
    nulled_bitmap: Sequence[str],
    wanted: frozenset[str] | None,
) -> _Selection:
    """The changed and the nulled fields of an event within ``wanted``, and both as a set."""
    key = (tuple(changed_bitmap), tuple(nulled_bitmap), wanted)
    found = layout.selections.get(key)
    if found is None:
        changed = decode_bitmap(changed_bitmap, layout)
        nulled = decode_bitmap(nulled_bitmap, layout)
        if wanted is not None:
            changed = [n for n in changed if n in wanted]
            nulled = [n for n in nulled if n in wanted]
        found = (tuple(changed), tuple(nulled), frozenset(changed) | frozenset(nulled))
        if len(layout.selections) >= 4096:
            layout.selections.clear()  # bounded, as the bitmaps
        layout.selections[key] = found
    return found


_SECONDS: dict[int, str] = {}


def wire_datetime(millis: int) -> str:
    """Epoch milliseconds in Salesforce's REST form: ``2024-01-15T09:30:00.000+0000``."""
    seconds, rest = divmod(millis, 1000)
    prefix = _SECONDS.get(seconds)
    if prefix is None:
        # Events of one second share their prefix: format it once.
        prefix = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.")
        if len(_SECONDS) >= 4096:
            _SECONDS.clear()
        _SECONDS[seconds] = prefix
    return f"{prefix}{rest:03d}+0000"


def _value(kind: str, value: object) -> object:
    if value is None or not isinstance(value, int) or isinstance(value, bool):
        return value
    if kind == "datetime":
        return wire_datetime(value)
    if kind == "date":
        # Avro dates from Salesforce are epoch milliseconds at midnight UTC (some encoders
        # use days); either way the calendar day is what the REST API returns.
        millis = value if abs(value) > 100_000 else value * 86_400_000
        return datetime.fromtimestamp(millis / 1000, tz=UTC).date().isoformat()
    return value


@dataclass(frozen=True, slots=True)
class Gap:
    """Salesforce could not say what changed: the records (or, for an overflow, the whole
    entity in a time window) must be read again from the org."""

    entity: str
    change_type: str
    record_ids: tuple[str, ...]
    commit_time: datetime
    position: Position

    @property
    def overflow(self) -> bool:
        return self.change_type == "GAP_OVERFLOW"


@functools.lru_cache(maxsize=256)
def client_of(change_origin: str | None) -> str | None:
    """The ``client=`` part of ``changeOrigin`` (``com/salesforce/api/rest/62.0;client=x``)."""
    if not change_origin:
        return None
    for part in change_origin.split(";"):
        key, sep, value = part.strip().partition("=")
        if sep and key == "client":
            return value or None
    return None


def operation_of(header: Mapping[str, Any], position: Position, entity: str) -> Operation | Gap:
    """What a change event header says happened: an operation, or a :class:`Gap` to heal.

    Raises:
        ValueError: an unknown ``changeType``.
    """
    change = str(header.get("changeType"))
    if change.startswith("GAP_"):
        ids = tuple(str(i) for i in header.get("recordIds") or ())
        return Gap(entity, change, ids, commit_time(header), position)
    op = _OPERATIONS.get(change)
    if op is None:
        raise ValueError(f"unknown changeType {change!r}")
    return op


def commit_time(header: Mapping[str, Any]) -> datetime:
    """The header's ``commitTimestamp`` (epoch milliseconds) as a UTC time."""
    return _commit(int(header.get("commitTimestamp") or 0))[0]


_COMMITS: dict[int, tuple[datetime, str]] = {}


def _commit(millis: int) -> tuple[datetime, str]:
    """A commit time as a UTC time and in wire form. Cached: the changes of a transaction
    share their commit time, and a stream delivers them together."""
    found = _COMMITS.get(millis)
    if found is None:
        found = (datetime.fromtimestamp(millis / 1000, tz=UTC), wire_datetime(millis))
        if len(_COMMITS) >= 4096:
            _COMMITS.clear()
        _COMMITS[millis] = found
    return found


def events_of(
    header: Mapping[str, Any],
    op: Operation,
    after: dict[str, object] | None,
    changed: frozenset[str],
    position: Position,
    *,
    entity: str,
    with_id: bool,
) -> list[ChangeEvent]:
    """One event per record id of a change event (a merged event names several), in id order.

    Updates and undeletes are ``partial``. With ``with_id``, a created record's values include
    its Id, which travels in the header (REST's records include it too).
    """
    committed, version = _commit(int(header.get("commitTimestamp") or 0))
    partial = op is Operation.UPDATE or op is Operation.UNDELETE
    origin = client_of(header.get("changeOrigin"))
    transaction = header.get("transactionKey")
    raw: Sequence[Any] = header.get("recordIds") or ()
    ids = [str(raw[0])] if len(raw) == 1 else sorted(str(i) for i in raw)
    frozen = MappingProxyType(after) if after is not None else None
    created = after if op is Operation.CREATE and with_id else None
    return [
        ChangeEvent(
            entity=entity,
            key=record_id,
            op=op,
            after=frozen if created is None else MappingProxyType({"Id": record_id, **created}),
            position=position,
            committed_at=committed,
            changed=changed,
            partial=partial,
            origin=origin,
            transaction=transaction,
            version=version,
        )
        for record_id in ids
    ]


def decode_event(
    record: Mapping[str, Any],
    layout: Layout,
    position: Position,
    wanted: frozenset[str] | None = None,
) -> list[ChangeEvent] | Gap:
    """The change events of one decoded CDC record: one per record id, in id order.

    ``wanted`` narrows the events to those fields (the sync's selection): only their values are
    read, and an update that touches none of them has an empty ``after``.

    CREATE events carry the whole record; UPDATE events only the changed fields (``partial``,
    so sinks never null the rest), with fields set to null present as ``None``; DELETE none;
    UNDELETE is partial and empty (the sink restores the row; the source may re-read it).
    GAP_* and GAP_OVERFLOW come back as a :class:`Gap` for the source to heal.

    Raises:
        ValueError: the record is not a change event this layout describes.
    """
    header = record.get("ChangeEventHeader")
    if not isinstance(header, Mapping):
        raise ValueError("the event has no ChangeEventHeader")
    entity = str(header.get("entityName") or layout.entity)
    op = operation_of(header, position, entity)
    if isinstance(op, Gap):
        return op
    changed, nulled, touched = _selection(
        layout, header.get("changedFields") or (), header.get("nulledFields") or (), wanted
    )
    after: dict[str, object] | None
    if op is Operation.CREATE:
        names = layout.paths if wanted is None else [n for n in layout.paths if n in wanted]
        after = {name: layout.value(record, name) for name in names}
    elif op is Operation.UPDATE:
        after = {name: layout.value(record, name) for name in changed}
        for name in nulled:
            after[name] = None
    elif op is Operation.UNDELETE:
        after = {}
    else:
        after = None
    return events_of(
        header,
        op,
        after,
        touched,
        position,
        entity=entity,
        with_id=wanted is None or "Id" in wanted,
    )
