"""Change Data Capture: from the store's committed changes to change events (section 5.4).

:class:`ChangeEventBuilder` turns the :class:`~sfsync.emulator.store_changes.ChangeRecord` list
of one commit into ``(channel, ChangeEventBody)`` pairs for the bus:

* only entities selected for CDC (:class:`CdcSettings`; default: every object of the schema
  except platform events: the schema file lists exactly the objects the org has, so a user
  who declares ``Invoice__c`` expects its changes; narrow it with ``entities``);
* the header: ``entityName``, ``recordIds``, ``changeType``, ``changeOrigin``
  (``com/salesforce/api/<api>/<version>`` plus ``;client=<id>`` from ``Sforce-Call-Options``),
  ``transactionKey`` (shared by the commit), ``sequenceNumber`` (1-based within the commit),
  ``commitTimestamp`` (ms), ``commitNumber`` (one per commit, increasing), ``commitUser``,
  ``changedFields`` (UPDATE only), ``nulledFields`` (UPDATE only) and ``diffFields`` (always
  empty: the emulator never sends large text as a diff);
* the body: the carried fields that changed (a CREATE: every non-null field); DELETE and
  UNDELETE are header-only because the store reports only ``IsDeleted``/``SystemModstamp``,
  which events never carry;
* records of one commit with the *same* change (same entity, type, origin, user and the same
  field values, audit stamps aside) become one event listing all their ids, as Salesforce
  merges them;
* gap events: after :meth:`ChangeEventBuilder.inject_gaps` the next *n* changes surface as
  ``GAP_<TYPE>`` events (header only, ``sequenceNumber`` 1, no field lists), as Salesforce
  reports changes it could not render;
* overflow: once a commit has made more than ``overflow_threshold`` changes (100,000 on
  Salesforce; each changed field of an update counts), the rest become one ``GAP_OVERFLOW``
  event per entity with ``entityName`` and no record ids.

The API version in ``changeOrigin`` is the version of the call that made the change (the REST
layer records it in the store's call context), else :attr:`CdcSettings.default_api_version`
for writes made without one (store calls, Bulk API jobs: UNCONFIRMED which version Salesforce
reports there; we use 62.0).
"""

from __future__ import annotations

import operator
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sfsync.emulator.schema.model import ObjectDef, Schema, WireValue
from sfsync.emulator.store_changes import ChangeRecord
from sfsync.emulator.store_rows import Row
from sfsync.emulator.streaming import layout
from sfsync.emulator.streaming.events import (
    ChangeEventBody,
    CreatedValues,
    Packed,
    pack_change,
    pack_created,
    unpack,
)

DEFAULT_OVERFLOW_THRESHOLD = 100_000
DEFAULT_API_VERSION = "62.0"


def change_channel(object_name: str) -> str:
    """``Account`` -> ``/data/AccountChangeEvent``;
    ``Invoice__c`` -> ``/data/Invoice__ChangeEvent``."""
    if object_name.endswith("__c"):
        return f"/data/{object_name[:-3]}__ChangeEvent"
    return f"/data/{object_name}ChangeEvent"


def change_event_name(object_name: str) -> str:
    """The change event type's name: the channel without ``/data/``."""
    return change_channel(object_name).removeprefix("/data/")


def change_origin(api: str, version: str, client_id: str | None) -> str:
    """``com/salesforce/api/rest/62.0;client=sfsync`` (no ``;client=`` part without an id)."""
    origin = f"com/salesforce/api/{api}/{version}"
    return f"{origin};client={client_id}" if client_id else origin


@dataclass(slots=True)
class CdcSettings:
    """Which entities publish change events, and the overflow threshold.

    ``entities`` holds object names (any casing); ``None`` selects every non-event object.
    """

    entities: frozenset[str] | None = None
    overflow_threshold: int = DEFAULT_OVERFLOW_THRESHOLD
    default_api_version: str = DEFAULT_API_VERSION

    def selected(self, obj: ObjectDef) -> bool:
        if obj.platform_event:
            return False
        return self.entities is None or obj.name.lower() in {e.lower() for e in self.entities}


@dataclass(slots=True)
class _Draft:
    entity: str
    change_type: str
    origin: str
    user: str
    record_ids: list[str]
    values: dict[str, WireValue]
    changed: tuple[str, ...]
    nulled: tuple[str, ...]
    gap: bool = False
    created: CreatedValues | None = None
    """Set for a CREATE whose values are read from ``row`` (the stored value tuple)."""
    row: tuple[WireValue, ...] = ()


class ChangeEventBuilder:
    """Builds change events commit by commit (thread-safe; see the module docstring)."""

    def __init__(self, schema: Schema, settings: CdcSettings | None = None) -> None:
        self.schema = schema
        self.settings = settings or CdcSettings()
        self._lock = threading.Lock()
        self._commit_number = 0
        self._gaps_pending = 0

    def inject_gaps(self, count: int) -> None:
        """Make the next ``count`` changes surface as ``GAP_*`` events."""
        with self._lock:
            self._gaps_pending += max(0, count)

    def clear_gaps(self) -> None:
        """Forget gap injections not used yet."""
        with self._lock:
            self._gaps_pending = 0

    @property
    def gaps_pending(self) -> int:
        with self._lock:
            return self._gaps_pending

    def build(self, changes: Sequence[ChangeRecord]) -> list[tuple[str, ChangeEventBody]]:
        """The change events of one commit (``changes`` in write order), ready to publish."""
        return [(channel, unpack_change(packed)) for channel, packed in self.build_packed(changes)]

    def build_packed(self, changes: Sequence[ChangeRecord]) -> list[tuple[str, Packed]]:
        """:meth:`build`, with each event already in the bus's packed form (no event objects
        are made on the write path; see :func:`~sfsync.emulator.streaming.events.pack`)."""
        # A commit holds few objects and many records: look each object up once.
        objects: dict[str, ObjectDef | None] = {}
        selected: list[tuple[ChangeRecord, ObjectDef]] = []
        for c in changes:
            name = c.object_name
            if name in objects:
                obj = objects[name]
            else:
                obj = self.schema.object(name)
                if obj is not None and not self.settings.selected(obj):
                    obj = None
                objects[name] = obj
            if obj is not None:
                selected.append((c, obj))
        if not selected:
            return []
        with self._lock:
            self._commit_number += 1
            commit_number = self._commit_number
            drafts, overflow = self._drafts(selected)
        first = selected[0][0]
        key = first.transaction_key
        stamp = int(first.commit_timestamp.timestamp() * 1000)
        out: list[tuple[str, Packed]] = []
        channels = _channels
        for draft in drafts:
            facts = (
                draft.entity,
                draft.record_ids,
                draft.change_type,
                draft.origin,
                key,
                1 if draft.gap else len(out) + 1,
                stamp,
                commit_number,
                draft.user,
            )
            if draft.created is not None:
                packed = pack_created(facts, draft.created, draft.row)
            else:
                packed = pack_change(facts, draft.changed, draft.nulled, (), draft.values)
            out.append((channels(draft.entity), packed))
        for entity, (origin, user) in overflow.items():
            gap = (
                entity, (), "GAP_OVERFLOW", origin, key, len(out) + 1, stamp, commit_number, user
            )  # fmt: skip
            out.append((channels(entity), pack_change(gap, (), (), (), {})))
        return out

    def _drafts(
        self, selected: Sequence[tuple[ChangeRecord, ObjectDef]]
    ) -> tuple[list[_Draft], dict[str, tuple[str, str]]]:
        drafts: list[_Draft] = []
        merged: dict[tuple[object, ...], list[_Draft]] = {}
        overflow: dict[str, tuple[str, str]] = {}
        origins: dict[tuple[str, str | None, str | None], str] = {}
        carried_by: dict[str, dict[str, str]] = {}
        shapes_by: dict[str, dict[tuple[str, ...], tuple[str, ...]]] = {}
        created: dict[tuple[object, ...], _Draft] = {}
        weight = 0
        for change, obj in selected:
            call = (change.api, change.api_version, change.client_id)
            origin = origins.get(call)
            if origin is None:
                version = change.api_version or self.settings.default_api_version
                origin = origins[call] = change_origin(change.api, version, change.client_id)
            weight += len(change.changed_fields) if change.change_type == "UPDATE" else 1
            if weight > self.settings.overflow_threshold:
                overflow.setdefault(obj.name, (origin, change.user_id))
                continue
            if self._gaps_pending > 0:
                self._gaps_pending -= 1
                drafts.append(
                    _Draft(
                        obj.name,
                        f"GAP_{change.change_type}",
                        origin,
                        change.user_id,
                        [change.record_id],
                        {},
                        (),
                        (),
                        gap=True,
                    )
                )
                continue
            after = change.values_after
            if change.change_type == "CREATE" and type(after) is Row:
                # A created record from the store: its event reads its values from the row
                # when it is read, and merges with the commit's creates of equal content.
                layout = _created_layout(obj, after.slot_map)
                row = after.value_tuple
                same_key = (obj.name, origin, change.user_id, layout[1](row))
                twin = created.get(same_key)
                if twin is not None:
                    twin.record_ids.append(change.record_id)
                    continue
                draft = _Draft(obj.name, "CREATE", origin, change.user_id, [change.record_id],
                               {}, (), (), created=layout[0], row=row)  # fmt: skip
                created[same_key] = draft
                drafts.append(draft)
                continue
            carried = carried_by.get(obj.name)
            if carried is None:
                carried = carried_by[obj.name] = _carried_names(obj)
                shapes_by[obj.name] = {}
            draft = _content(change, obj, origin, carried, shapes_by[obj.name])
            # Changes merge when everything but the records and the audit stamps is equal.
            # A cheap probe (the first field's value tells most records apart) finds the
            # candidates; only they are compared in full.
            key = (
                draft.entity,
                draft.change_type,
                draft.origin,
                draft.user,
                draft.changed,
                draft.nulled,
                _first_value(draft.values),
            )
            candidates = merged.get(key)
            if candidates is None:
                merged[key] = [draft]
            else:
                same = next((d for d in candidates if _same_content(d.values, draft.values)), None)
                if same is not None:
                    same.record_ids.append(change.record_id)
                    continue
                candidates.append(draft)
            drafts.append(draft)
        return drafts, overflow


_STAMPS = frozenset({"CreatedDate", "LastModifiedDate"})
"""Audit stamps the store takes per write; one commit is one instant on Salesforce, so they
do not keep otherwise identical changes of a commit apart (the first record's stamp is sent)."""


def unpack_change(packed: Packed) -> ChangeEventBody:
    body = unpack(packed)
    assert isinstance(body, ChangeEventBody)
    return body


def _first_value(values: dict[str, WireValue]) -> tuple[int, tuple[str, WireValue] | None]:
    """How many fields are not audit stamps, and the first (field, value) of them."""
    # The two names of _STAMPS, spelled out: this runs for every change of every commit.
    count = len(values) - ("CreatedDate" in values) - ("LastModifiedDate" in values)
    for item in values.items():
        if item[0] not in _STAMPS:
            return count, item
    return count, None


def _same_content(a: dict[str, WireValue], b: dict[str, WireValue]) -> bool:
    """The same (field, value) pairs, audit stamps aside, given that ``a`` and ``b`` have as
    many fields that are not stamps (then every such field of ``a`` in ``b`` means equal sets)."""
    missing = object()
    return all(k in _STAMPS or b.get(k, missing) == v for k, v in a.items())


_CHANNELS: dict[str, str] = {}


def _channels(object_name: str) -> str:
    """:func:`change_channel`, one shared string per object (every retained event holds one)."""
    channel = _CHANNELS.get(object_name)
    if channel is None:
        channel = _CHANNELS[object_name] = sys.intern(change_channel(object_name))
    return channel


@layout.per_object
def _carried_names(obj: ObjectDef) -> dict[str, str]:
    """Flat field name (declared and lower case) -> declared name, for the carried fields."""
    names: dict[str, str] = {}
    for f in obj.fields.values():
        if layout.carried(obj, f.name):
            names[f.name] = f.name
            names[f.name.lower()] = f.name
    return names


_LAYOUTS: dict[int, tuple[Mapping[str, int], CreatedValues, Callable[[Any], Any]]] = {}


def _created_layout(
    obj: ObjectDef, slot_map: Mapping[str, int]
) -> tuple[CreatedValues, Callable[[Any], Any]]:
    """For the store's rows of ``obj`` (laid out by ``slot_map``): how a CREATE event reads
    its values from a row (every carried non-null field: a created record's changed fields
    are its non-null fields), and a getter of the carried values that are not audit stamps
    (two creates of a commit with equal such values, Nones included, are the same change)."""
    found = _LAYOUTS.get(id(slot_map))
    if found is None or found[0] is not slot_map:
        carried = _carried_names(obj)
        names = tuple(n for n in slot_map if n in carried)
        values: CreatedValues = (names, tuple(slot_map[n] for n in names))
        probe = _getter([slot_map[n] for n in names if n not in _STAMPS])
        found = _LAYOUTS[id(slot_map)] = (slot_map, values, probe)
    return found[1], found[2]


def _getter(indexes: Sequence[int]) -> Callable[[Any], tuple[Any, ...]]:
    """A function returning the values at ``indexes`` of a tuple, always as a tuple."""
    if len(indexes) >= 2:
        return operator.itemgetter(*indexes)
    if indexes:
        index = indexes[0]
        return lambda row: (row[index],)
    return lambda row: ()


def _carried_fields(changed: tuple[str, ...], carried: dict[str, str]) -> tuple[str, ...]:
    """The declared names of the carried fields among ``changed``, in its order."""
    fields: list[str] = []
    for name in changed:
        declared = carried.get(name)
        if declared is None:
            declared = carried.get(name.lower())
        if declared is not None:
            fields.append(declared)
    return tuple(fields)


def _content(
    change: ChangeRecord,
    obj: ObjectDef,
    origin: str,
    carried: dict[str, str],
    shapes: dict[tuple[str, ...], tuple[str, ...]],
) -> _Draft:
    after = change.values_after
    # The changes of a commit mostly change the same fields (a bulk update of one column):
    # their carried names are worked out once per field list (``shapes``, per object).
    fields = shapes.get(change.changed_fields)
    if fields is None:
        fields = shapes[change.changed_fields] = _carried_fields(change.changed_fields, carried)
    values: dict[str, WireValue]
    if isinstance(after, Row):
        # The store's read-only rows: read the value tuple directly (this runs per field of
        # every change of every commit).
        slot, row = after.slot_map, after.value_tuple
        values = {name: row[slot[name]] for name in fields}
    else:
        values = {name: after.get(name) for name in fields}
    changed: tuple[str, ...] = ()
    nulled: tuple[str, ...] = ()
    if change.change_type == "CREATE":
        values = {k: v for k, v in values.items() if v is not None}
    elif change.change_type == "UPDATE":
        changed = fields
        if None in values.values():
            nulled = tuple(n for n in fields if values[n] is None)
    return _Draft(
        obj.name,
        change.change_type,
        origin,
        change.user_id,
        [change.record_id],
        values,
        changed,
        nulled,
    )
