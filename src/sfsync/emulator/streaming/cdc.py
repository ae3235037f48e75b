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

import threading
from collections.abc import Sequence
from dataclasses import dataclass

from sfsync.emulator.schema.model import ObjectDef, Schema, WireValue
from sfsync.emulator.store_changes import ChangeRecord
from sfsync.emulator.streaming import layout
from sfsync.emulator.streaming.events import ChangeEventBody, ChangeEventHeader

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
        selected = [
            (c, obj)
            for c in changes
            if (obj := self.schema.object(c.object_name)) is not None
            and self.settings.selected(obj)
        ]
        if not selected:
            return []
        with self._lock:
            self._commit_number += 1
            commit_number = self._commit_number
            drafts, overflow = self._drafts(selected)
        first = selected[0][0]
        stamp = int(first.commit_timestamp.timestamp() * 1000)
        out: list[tuple[str, ChangeEventBody]] = []
        for draft in drafts:
            header = ChangeEventHeader(
                entity_name=draft.entity,
                record_ids=tuple(draft.record_ids),
                change_type=draft.change_type,
                change_origin=draft.origin,
                transaction_key=first.transaction_key,
                sequence_number=1 if draft.gap else len(out) + 1,
                commit_timestamp=stamp,
                commit_number=commit_number,
                commit_user=draft.user,
                changed_fields=draft.changed,
                nulled_fields=draft.nulled,
            )
            out.append((change_channel(draft.entity), ChangeEventBody(header, draft.values)))
        for entity, (origin, user) in overflow.items():
            header = ChangeEventHeader(
                entity_name=entity,
                record_ids=(),
                change_type="GAP_OVERFLOW",
                change_origin=origin,
                transaction_key=first.transaction_key,
                sequence_number=len(out) + 1,
                commit_timestamp=stamp,
                commit_number=commit_number,
                commit_user=user,
            )
            out.append((change_channel(entity), ChangeEventBody(header, {})))
        return out

    def _drafts(
        self, selected: Sequence[tuple[ChangeRecord, ObjectDef]]
    ) -> tuple[list[_Draft], dict[str, tuple[str, str]]]:
        drafts: list[_Draft] = []
        merged: dict[tuple[object, ...], _Draft] = {}
        overflow: dict[str, tuple[str, str]] = {}
        weight = 0
        for change, obj in selected:
            version = change.api_version or self.settings.default_api_version
            origin = change_origin(change.api, version, change.client_id)
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
            draft = _content(change, obj, origin)
            key = (
                draft.entity,
                draft.change_type,
                draft.origin,
                draft.user,
                tuple(sorted((k, v) for k, v in draft.values.items() if k not in _STAMPS)),
                draft.changed,
                draft.nulled,
            )
            same = merged.get(key)
            if same is not None:
                same.record_ids.append(change.record_id)
                continue
            merged[key] = draft
            drafts.append(draft)
        return drafts, overflow


_STAMPS = frozenset({"CreatedDate", "LastModifiedDate"})
"""Audit stamps the store takes per write; one commit is one instant on Salesforce, so they
do not keep otherwise identical changes of a commit apart (the first record's stamp is sent)."""


def _content(change: ChangeRecord, obj: ObjectDef, origin: str) -> _Draft:
    fields = [
        f.name
        for name in change.changed_fields
        if (f := obj.field(name)) is not None and layout.carried(obj, f.name)
    ]
    values: dict[str, WireValue] = {}
    for name in fields:
        values[name] = change.values_after.get(name)
    changed: tuple[str, ...] = ()
    nulled: tuple[str, ...] = ()
    if change.change_type == "CREATE":
        values = {k: v for k, v in values.items() if v is not None}
    elif change.change_type == "UPDATE":
        changed = tuple(fields)
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
