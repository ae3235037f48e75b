"""Transport-neutral event content, as the bus stores it.

The same event is rendered twice: as JSON for CometD and as Avro for the Pub/Sub API (the two
differ in date formats, in which fields appear and in how changed fields are listed, reference
section 5.4). So the bus keeps what both need: the header facts and the record's field values
in the org's wire form (``"2024-01-15T09:30:00.000+0000"`` datetimes, flat field names such as
``BillingCity``); :mod:`~sfsync.emulator.streaming.layout` knows how those nest.

The bus retains events for 72 hours, so it keeps them packed (:func:`pack`, :func:`unpack`):
one flat tuple per event instead of three dataclasses and a dict.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sfsync.emulator.schema.model import WireValue

CHANGE_TYPES = (
    "CREATE",
    "UPDATE",
    "DELETE",
    "UNDELETE",
    "GAP_CREATE",
    "GAP_UPDATE",
    "GAP_DELETE",
    "GAP_UNDELETE",
    "GAP_OVERFLOW",
    "SNAPSHOT",
)
"""Every ``ChangeEventHeader.changeType`` (``SNAPSHOT`` is reserved and never produced)."""


@dataclass(frozen=True, slots=True)
class ChangeEventHeader:
    """The ``ChangeEventHeader`` facts. Field lists hold flat field names (``BillingCity``);
    each transport renders them its own way (dotted names or bitmaps)."""

    entity_name: str
    record_ids: tuple[str, ...]
    change_type: str
    change_origin: str
    transaction_key: str
    sequence_number: int
    commit_timestamp: int
    """Milliseconds since the epoch."""
    commit_number: int
    commit_user: str
    changed_fields: tuple[str, ...] = ()
    nulled_fields: tuple[str, ...] = ()
    diff_fields: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ChangeEventBody:
    """A change event: header plus the field values it carries (only changed fields; for a
    CREATE every non-null field). ``values`` may hold ``None`` for a nulled field."""

    header: ChangeEventHeader
    values: Mapping[str, WireValue]


@dataclass(frozen=True, slots=True)
class PlatformEventBody:
    """A platform event: its type (``Printer__e``), ``EventUuid`` and field values
    (``CreatedDate``, ``CreatedById`` and the custom fields)."""

    event_type: str
    event_uuid: str
    values: Mapping[str, WireValue]


EventBody = ChangeEventBody | PlatformEventBody

# ----------------------------------------------------------------------------- packed form

Packed = tuple[Any, ...]
"""An event body as the bus retains it: one flat tuple of strings, numbers and shared tuples
(see :func:`pack`)."""

_CHANGE = "C"
_CREATED = "R"
_PLATFORM = "P"
_SHARED: dict[tuple[str, ...], tuple[str, ...]] = {}
_SHARED_MAX = 65_536


def _shared(names: tuple[str, ...]) -> tuple[str, ...]:
    """One tuple object per distinct field list: events of the same shape (every update of
    the same fields, most creates of an object) then hold 8 bytes instead of a tuple each."""
    if not names:
        return ()
    found = _SHARED.get(names)
    if found is not None:
        return found
    if len(_SHARED) >= _SHARED_MAX:
        _SHARED.clear()  # sharing is an optimisation: a rare reset only costs memory
    _SHARED[names] = names
    return names


def pack_change(
    header: tuple[str, Sequence[str], str, str, str, int, int, int, str],
    changed: tuple[str, ...],
    nulled: tuple[str, ...],
    diff: tuple[str, ...],
    values: Mapping[str, WireValue],
) -> Packed:
    """A change event packed straight from its facts (what :func:`pack` makes of the
    :class:`ChangeEventBody` they would form): ``header`` is (entityName, recordIds,
    changeType, changeOrigin, transactionKey, sequenceNumber, commitTimestamp, commitNumber,
    commitUser)."""
    entity, ids, change_type, origin, key, sequence, stamp, number, user = header
    return (
        _CHANGE,
        entity,
        ids[0] if len(ids) == 1 else tuple(ids),
        change_type,
        origin,
        key,
        sequence,
        stamp,
        number,
        user,
        _shared(changed),
        _shared(nulled),
        _shared(diff),
        _shared(tuple(values)),
        tuple(values.values()),
    )


CreatedValues = tuple[tuple[str, ...], tuple[int, ...]]
"""Where a CREATE event's values are: the record's stored value tuple, read through this
(one per object layout): the carried fields in the row's order, and their positions in the
tuple; a ``None`` there is a field the record does not set.

The store never changes a value tuple (an update replaces it), so the tuple a CREATE event
keeps is the record as created; it is shared with the store while the record is not updated,
so a retained CREATE event costs no copy of its values. A plain tuple of atomic values (not a
class instance, not even a named tuple), as the rest of a packed event, so that the garbage
collector stops tracking the event."""


def created_values(created: CreatedValues, row: tuple[Any, ...]) -> dict[str, WireValue]:
    """A CREATE event's values: every carried field the row sets, in the row's order."""
    names, indexes = created
    return {n: row[i] for n, i in zip(names, indexes, strict=True) if row[i] is not None}


def pack_created(
    header: tuple[str, Sequence[str], str, str, str, int, int, int, str],
    created: CreatedValues,
    row: tuple[Any, ...],
) -> Packed:
    """A CREATE event packed with its values left in the stored ``row`` (see
    ``CreatedValues``); :func:`unpack` reads them out."""
    entity, ids, change_type, origin, key, sequence, stamp, number, user = header
    one = ids[0] if len(ids) == 1 else tuple(ids)
    return (_CREATED, entity, one, change_type, origin, key, sequence, stamp, number, user,
            (), (), (), created, row)  # fmt: skip


def pack(body: EventBody) -> Packed:
    """``body`` as one flat tuple for the 72-hour log: the header facts in field order, a
    single record id as the id itself, field lists and value names as shared tuples, values as
    one tuple. Only atomic values and tuples of them, so the garbage collector stops tracking
    it, and about a third of the memory of the dataclasses it comes from."""
    if isinstance(body, ChangeEventBody):
        h = body.header
        facts = (
            h.entity_name,
            h.record_ids,
            h.change_type,
            h.change_origin,
            h.transaction_key,
            h.sequence_number,
            h.commit_timestamp,
            h.commit_number,
            h.commit_user,
        )
        return pack_change(facts, h.changed_fields, h.nulled_fields, h.diff_fields, body.values)
    return (
        _PLATFORM,
        body.event_type,
        body.event_uuid,
        _shared(tuple(body.values)),
        tuple(body.values.values()),
    )


def unpack(packed: Packed, start: int = 0) -> EventBody:
    """The body :func:`pack` made, read from ``packed[start:]`` (equal to the original)."""
    if packed[start] == _PLATFORM:
        _, event_type, event_uuid, names, values = packed[start : start + 5]
        return PlatformEventBody(event_type, event_uuid, dict(zip(names, values, strict=True)))
    (
        _,
        entity,
        ids,
        change_type,
        origin,
        transaction_key,
        sequence_number,
        commit_timestamp,
        commit_number,
        commit_user,
        changed,
        nulled,
        diff,
        names,
        values,
    ) = packed[start : start + 15]
    header = ChangeEventHeader(
        entity_name=entity,
        record_ids=(ids,) if isinstance(ids, str) else ids,
        change_type=change_type,
        change_origin=origin,
        transaction_key=transaction_key,
        sequence_number=sequence_number,
        commit_timestamp=commit_timestamp,
        commit_number=commit_number,
        commit_user=commit_user,
        changed_fields=changed,
        nulled_fields=nulled,
        diff_fields=diff,
    )
    if packed[start] == _CREATED:
        return ChangeEventBody(header, created_values(names, values))
    return ChangeEventBody(header, dict(zip(names, values, strict=True)))
