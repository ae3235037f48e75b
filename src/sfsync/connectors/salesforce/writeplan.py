"""From a batch of change events to the record writes that apply it (pure; no I/O).

One :class:`RowWrite` is one record written once. Events are matched to records by
``(entity, key)``; in batch order, consecutive non-delete events of one record merge into one
write (later values over earlier ones: the same end state as applying them one by one, in one
API row instead of several), and a DELETE ends the run. The writes of one record therefore
alternate between "put" and "delete"; the *n*-th write of every record goes to round *n*, and
rounds run one after another, so each record's changes are applied in batch order while the
records of one round go out together (almost always everything is in round 0).

How an event becomes a write depends on the object's configured key:

``key`` is an external id field (``Ext_Id__c``)
    The event's ``key`` is the external id value. READ/CREATE/UPDATE upsert by it
    (``PATCH /composite/sobjects/{Object}/{Field}``, or a Bulk ``upsert`` job): a retry can
    never create a duplicate. DELETE deletes the record holding that value (if any).
    UNDELETE restores the record from the recycle bin, then upserts the values.

``key`` is ``Id``
    The Salesforce Id is ``after["Id"]`` (or ``before["Id"]``), else the event's ``key`` when it
    has the shape of a Salesforce Id. With an Id: update (or delete) by Id. Without one (a row
    that has never been in Salesforce): insert; the event's ``key`` (the source row's own key)
    identifies the row for the duplicate check a retried insert makes (see the sink).

Fields Salesforce would refuse (read-only, unknown) are left out of the values and reported
by :attr:`Plan.dropped`; ``prepare`` has already told the operator.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import cast

from sfsync.connectors.salesforce.objectinfo import ObjectInfo
from sfsync.core.events import ChangeEvent, Operation

_SF_ID = re.compile(r"^[a-zA-Z0-9]{15}(?:[a-zA-Z0-9]{3})?$")


def looks_like_id(value: object) -> bool:
    """A 15- or 18-character Salesforce Id shape (the checksum is the org's business)."""
    return isinstance(value, str) and _SF_ID.match(value) is not None


class WriteKind(enum.Enum):
    UPSERT = "upsert"  # by external id
    INSERT = "insert"  # no key yet
    UPDATE = "update"  # by Id
    DELETE = "delete"  # by Id or external id


@dataclass(slots=True)
class RowWrite:
    """One record written once. Never changed once made (a changed write is a new one, made by
    :func:`dataclasses.replace`); not frozen only because a frozen dataclass costs four times
    as much to build, and the sink builds one per row.

    Attributes:
        indices: the batch positions of the events this write settles.
        sobject: the object.
        kind: how it is written.
        key_field: ``Id`` or the external id field.
        key: the external id value (UPSERT, DELETE by external id) or the Salesforce Id
            (UPDATE, DELETE by Id); ``None`` for INSERT.
        values: the fields to write (Salesforce names, parent references as
            ``Relationship.Field``), without the key field.
        source_key: the events' ``key``: the source row's identity.
        undelete: restore the record from the recycle bin before writing it.
    """

    indices: tuple[int, ...]
    sobject: str
    kind: WriteKind
    key_field: str
    key: str | None
    values: Mapping[str, object]
    source_key: str
    undelete: bool = False

    def parent_keys(self, info: ObjectInfo) -> set[tuple[str, str, str]]:
        """The parents this row touches: ``(object, field, value)`` for each lookup it sets,
        whether by Id (``AccountId``) or by a parent's external id (``Account.Ext__c``)."""
        values = self.values
        return {
            (target, field, str(value))
            for name, target, field in info.lock_plan(tuple(values))
            if (value := values[name]) is not None
        }


@dataclass(slots=True)
class Plan:
    """The writes of a batch, by round (see the module docstring).

    Attributes:
        rounds: round -> writes, in batch order of their first event.
        refused: batch positions that cannot be written, with why (a delete without an Id).
        dropped: per object, fields left out because Salesforce would refuse them.
    """

    rounds: list[list[RowWrite]] = field(default_factory=list)
    refused: dict[int, str] = field(default_factory=dict)
    dropped: dict[str, set[str]] = field(default_factory=dict)


def _salesforce_id(event: ChangeEvent) -> str | None:
    for values in (event.after, event.before):
        for name, value in (values or {}).items():
            if name.lower() == "id" and looks_like_id(value):
                return str(value)
    return event.key if looks_like_id(event.key) else None


_COPYABLE = (dict, MappingProxyType)


@dataclass(frozen=True, slots=True)
class Shape:
    """For one tuple of source field names: which are written, and as what.

    Attributes:
        names: the source names written, in order.
        declared: their declared Salesforce names, in the same order.
        left_out: the source names not written (the key, ``Id``, fields Salesforce refuses).
    """

    names: tuple[str, ...]
    declared: tuple[str, ...]
    left_out: tuple[str, ...]

    def values(self, after: Mapping[str, object]) -> dict[str, object]:
        """``after``'s writable values by declared name."""
        if type(after) in _COPYABLE and self.names == self.declared:
            # The common case, names already as declared: a copy less a few keys is several
            # times cheaper than building the dict key by key.
            values = cast("dict[str, object] | MappingProxyType[str, object]", after).copy()
            if type(values) is dict:  # a proxy copies what it wraps: a dict, as events hold
                for name in self.left_out:
                    del values[name]
                return values
        return {
            declared: after[name] for name, declared in zip(self.names, self.declared, strict=True)
        }


def _shape(fields: tuple[str, ...], info: ObjectInfo, key_field: str, dropped: set[str]) -> Shape:
    key = key_field.lower()
    names: list[str] = []
    declared: list[str] = []
    left_out: list[str] = []
    for name in fields:
        writable = None if name.lower() in (key, "id") else info.writable_name(name)
        if writable is None:
            left_out.append(name)
            if name.lower() not in (key, "id"):
                dropped.add(name)
        else:
            names.append(name)
            declared.append(writable)
    return Shape(tuple(names), tuple(declared), tuple(left_out))


def _values(
    event: ChangeEvent,
    info: ObjectInfo,
    key_field: str,
    dropped: set[str],
    shapes: dict[tuple[str, ...], Shape],
) -> dict[str, object]:
    """The event's writable values by declared name. Events of one source mostly carry the
    same field names: ``shapes`` caches, per tuple of names, which are written and as what."""
    after = event.after or {}
    fields = tuple(after)
    shape = shapes.get(fields)
    if shape is None:
        shape = shapes[fields] = _shape(fields, info, key_field, dropped)
    return shape.values(after)


def _write_for(
    index: int,
    event: ChangeEvent,
    info: ObjectInfo,
    key_field: str,
    dropped: set[str],
    shapes: dict[tuple[str, ...], Shape],
) -> RowWrite | str:
    """The write for one event, or why it cannot be written."""
    external = key_field != "Id"
    if event.op is Operation.DELETE:
        if external:
            return RowWrite(
                (index,), info.name, WriteKind.DELETE, key_field, event.key, {}, event.key
            )
        sf_id = _salesforce_id(event)
        if sf_id is None:
            return (
                f"cannot delete {info.name} {event.key!r}: the event carries no Salesforce Id "
                "(key is Id, and neither the key nor the before values hold one)"
            )
        return RowWrite((index,), info.name, WriteKind.DELETE, "Id", sf_id, {}, event.key)
    values = _values(event, info, key_field, dropped, shapes)
    undelete = event.op is Operation.UNDELETE
    key: str | None
    if external:
        kind, key = WriteKind.UPSERT, event.key
    else:
        key = _salesforce_id(event)
        kind = WriteKind.UPDATE if key is not None else WriteKind.INSERT
    return RowWrite((index,), info.name, kind, key_field, key, values, event.key, undelete)


def _merge(earlier: RowWrite, later: RowWrite) -> RowWrite:
    """Two puts of one record as one: later values win; an Id learnt on the way is kept."""
    kind, key = earlier.kind, earlier.key
    if kind is WriteKind.INSERT and later.kind is WriteKind.UPDATE:
        kind, key = later.kind, later.key
    return replace(
        earlier,
        indices=earlier.indices + later.indices,
        kind=kind,
        key=key,
        values={**earlier.values, **later.values},
        undelete=earlier.undelete or later.undelete,
    )


def plan_batch(
    events: Sequence[ChangeEvent], infos: Mapping[str, ObjectInfo], keys: Mapping[str, str]
) -> Plan:
    """The plan for ``events``.

    Args:
        events: the batch.
        infos: per object, its :class:`ObjectInfo` (every entity of the batch must be there).
        keys: per object, the declared key field (``Id`` or an external id); default ``Id``.
    """
    plan = Plan()
    # Per entity: its object, key field, dropped fields and shapes (looked up once per entity).
    contexts: dict[str, tuple[ObjectInfo, str, set[str], dict[tuple[str, ...], Shape]]] = {}
    chains: dict[tuple[str, str], list[RowWrite]] = {}
    several = False  # some record has more than one write: more than one round
    for index, event in enumerate(events):
        context = contexts.get(event.entity)
        if context is None:
            info = infos[event.entity]
            context = contexts[event.entity] = (
                info,
                keys.get(event.entity, "Id"),
                plan.dropped.setdefault(info.name, set()),
                {},
            )
        write = _write_for(index, event, *context)
        if isinstance(write, str):
            plan.refused[index] = write
            continue
        ident = (event.entity, event.key)
        chain = chains.get(ident)
        if chain is None:
            chains[ident] = [write]
            continue
        last = chain[-1]
        both_delete = last.kind is WriteKind.DELETE and write.kind is WriteKind.DELETE
        both_put = WriteKind.DELETE not in (last.kind, write.kind)
        if both_delete:
            chain[-1] = replace(last, indices=last.indices + write.indices)
        elif both_put:
            chain[-1] = _merge(last, write)
        else:
            chain.append(write)
            several = True
    if not several:
        plan.rounds = [[chain[0] for chain in chains.values()]] if chains else []
    else:
        for chain in chains.values():  # in order of each record's first event
            for n, write in enumerate(chain):
                while len(plan.rounds) <= n:
                    plan.rounds.append([])
                plan.rounds[n].append(write)
    plan.dropped = {k: v for k, v in plan.dropped.items() if v}
    return plan
