"""Queried Salesforce records as change events, and the names of the streams they sit in.

Shared by the snapshot (READ events at ``(snapshot stream, Id)``), polling (events at their
``(SystemModstamp, Id)`` cursor in the object's change stream) and the real-time source's
healing reads.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from types import MappingProxyType
from typing import Any

from sfsync.connectors.salesforce.soql import Cursor
from sfsync.core.checkpoint import snapshot_stream
from sfsync.core.events import ChangeEvent, Operation, Position


def change_stream(sobject: str) -> str:
    """The stream name of ``sobject``'s polled changes."""
    return f"sf:{sobject}"


def deleted_stream(sobject: str) -> str:
    """The stream name of ``sobject``'s deletes read from the ``deleted`` resource."""
    return f"sf-deleted:{sobject}"


def parse_stamp(value: str) -> datetime:
    """A ``SystemModstamp`` (or any Salesforce datetime) as an aware datetime."""
    return datetime.fromisoformat(value)


def _values(record: Mapping[str, Any]) -> MappingProxyType[str, object]:
    """The record's fields (without ``attributes``), already frozen: ChangeEvent keeps a
    read-only mapping as it is instead of copying it again."""
    return MappingProxyType({k: v for k, v in record.items() if k != "attributes"})


def record_event(
    entity: str,
    record: Mapping[str, Any],
    op: Operation,
    position: Position | None = None,
) -> ChangeEvent:
    """The event for one queried record; deleted rows become DELETE events.

    Without ``position``, the event sits at its ``(SystemModstamp, Id)`` cursor in the
    object's change stream.
    """
    stamp = str(record["SystemModstamp"])
    key = str(record["Id"])
    deleted = op is Operation.DELETE or bool(record.get("IsDeleted"))
    position = position or Position(change_stream(entity), Cursor(stamp, key).token())
    if not deleted:
        # _values gives a fresh read-only mapping: the cheap constructor applies.
        return ChangeEvent.of_state(
            entity, key, op, _values(record), position, parse_stamp(stamp), stamp
        )
    return ChangeEvent(
        entity=entity,
        key=key,
        op=Operation.DELETE,
        after=None,
        position=position,
        committed_at=parse_stamp(stamp),
        version=stamp,
    )


def read_events(entity: str, records: Sequence[Mapping[str, Any]]) -> list[ChangeEvent]:
    """READ events of snapshot records, each at ``(snapshot stream, its Id)``: the resume
    point of an Id-ordered read.

    The bulk path of a snapshot: the records are fresh dicts nobody else holds (parsed Bulk
    CSV rows, or REST records copied once without ``attributes``), so they are wrapped
    read-only as they are, and the events are built through :meth:`ChangeEvent.of_state`.
    """
    stream = snapshot_stream(entity)
    read, of_state, proxy = Operation.READ, ChangeEvent.of_state, MappingProxyType
    events: list[ChangeEvent] = []
    append = events.append
    for record in records:
        if record.__class__ is not dict or record.get("IsDeleted"):
            key = str(record["Id"])
            append(record_event(entity, record, read, Position(stream, key)))
            continue
        if "attributes" in record:  # a REST record: its values without the metadata
            record = {k: v for k, v in record.items() if k != "attributes"}
        key, stamp = record["Id"], record["SystemModstamp"]
        if key.__class__ is not str or stamp.__class__ is not str:
            key, stamp = str(key), str(stamp)
        append(
            of_state(
                entity,
                key,
                read,
                proxy(record),
                Position(stream, key),
                parse_stamp(stamp),
                stamp,
            )
        )
    return events
