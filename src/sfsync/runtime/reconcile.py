"""One step of a two-way sync: bring a set of records to agreement on both sides.

:class:`Reconciler` takes keys of records that changed on either side (or were matched on a
first run, or were resolved by a person), and for each:

1. reads the record as it is *now* on both sides (:class:`~sfsync.spi.source.RecordLookup`),
   in canonical values (:mod:`sfsync.core.values`), and its shadow;
2. decides with :func:`sfsync.core.merge.resolve` against the shadow and the object's
   :class:`~sfsync.core.conflicts.ConflictRules` (or applies a person's resolution while both
   sides still hold the versions they saw);
3. parks a ``manual`` conflict in the review queue, or writes what each side lacks: the
   external side through :class:`ExternalWriter` marked with our origin, Salesforce through
   the Salesforce sink (upsert by the key, an external id: a retry never duplicates);
4. stores the merged record as the new shadow once every write of the record landed; a write
   that failed sends the record to the dead letters with the side's error, and the shadow stays
   as it was, so the next change of the record is decided again from it.

A record both sides already hold as the shadow says needs nothing: that is how our own writes
coming back (echoes) stop here, whatever the source could tell about their origin.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from sfsync.core.conflicts import (
    CHANGED_SINCE_READ,
    ConflictRules,
    Decision,
    Side,
    Values,
    Version,
    Write,
    WriteOp,
)
from sfsync.core.deadletter import DeadLetter, DeadLetterKind
from sfsync.core.errors import RetryableError, SkippableError, SyncError
from sfsync.core.events import Batch, ChangeEvent, Operation, Position
from sfsync.core.merge import resolve
from sfsync.core.review import ConflictQueue, ParkedConflict, Shadow, ShadowStore
from sfsync.core.schema import FieldKind
from sfsync.core.values import canonical_record
from sfsync.spi.clock import Clock
from sfsync.spi.sink import Outcome, OutcomeKind
from sfsync.spi.source import RecordLookup

log = logging.getLogger("sfsync.twoway")

_WRITE_OPS = {
    WriteOp.CREATE: Operation.CREATE,
    WriteOp.UPDATE: Operation.UPDATE,
    WriteOp.DELETE: Operation.DELETE,
}


class ExternalWriter(RecordLookup, Protocol):
    """The external side of a two-way sync: read by key, and written marked as ours."""

    async def apply(
        self,
        entity: str,
        origin: str,
        changes: Sequence[ChangeEvent],
        unchanged: Callable[[str, Mapping[str, object] | None], bool] | None = None,
    ) -> list[SyncError | None]:
        """Write ``changes`` (CREATE: whole record; UPDATE: the fields given; DELETE), each
        marked with ``origin``; per change, ``None`` or why it was not written.

        ``unchanged(key, row)`` is asked with the record's row locked in the write
        transaction (``None``: no row); a change whose row is no longer what the caller read
        is skipped with a :class:`RetryableError` coded
        :data:`~sfsync.core.conflicts.CHANGED_SINCE_READ`.

        Raises:
            RetryableError: the whole write may succeed later.
        """
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class TwoWayObject:
    """One object of a two-way sync.

    Attributes:
        entity: the Salesforce object (the external side's object of the same name).
        key: the field both sides identify a record by (an external id field in Salesforce,
            the key column outside), in the sync's common field names.
        fields: the fields compared and written (the key among them).
        kinds: each field's kind (for :func:`~sfsync.core.values.canonical`).
        match_on: first-run matching keys, most trustworthy first.
        rules: the conflict policies.
    """

    entity: str
    key: str
    fields: tuple[str, ...]
    kinds: Mapping[str, FieldKind] = field(default_factory=dict)
    match_on: tuple[str, ...] = ()
    rules: ConflictRules = field(default_factory=ConflictRules)


@dataclass
class Tally:
    """What one reconciliation did."""

    unchanged: int = 0
    to_salesforce: int = 0
    to_external: int = 0
    parked: int = 0
    failed: int = 0
    deferred: int = 0
    dead: list[DeadLetter] = field(default_factory=list)
    failed_keys: dict[str, SyncError] = field(default_factory=dict)
    parked_keys: set[str] = field(default_factory=set)

    def merge(self, other: Tally) -> None:
        """Add ``other``'s counts and keys to these (the dead letters are not kept: they are
        stored as each part is done)."""
        self.unchanged += other.unchanged
        self.to_salesforce += other.to_salesforce
        self.to_external += other.to_external
        self.parked += other.parked
        self.failed += other.failed
        self.deferred += other.deferred
        self.failed_keys.update(other.failed_keys)
        self.parked_keys.update(other.parked_keys)


@dataclass(frozen=True, slots=True)
class Current:
    """A record as both sides hold it now, with what the decision needs."""

    salesforce: Version
    external: Version
    salesforce_id: str | None
    salesforce_stamp: str | None


class Reconciler:
    """Decides and applies records of one two-way sync (see the module docstring)."""

    def __init__(
        self,
        *,
        sync: str,
        salesforce: RecordLookup,
        external: ExternalWriter,
        shadows: ShadowStore,
        conflicts: ConflictQueue,
        clock: Clock,
        origin: str,
        write_salesforce: _SinkWriter,
    ) -> None:
        self.sync = sync
        self.salesforce = salesforce
        self.external = external
        self.shadows = shadows
        self.conflicts = conflicts
        self.clock = clock
        self.origin = origin
        self._write_salesforce = write_salesforce

    async def current(
        self,
        obj: TwoWayObject,
        keys: Sequence[str],
        times: Mapping[str, datetime] | None = None,
    ) -> dict[str, Current]:
        """Both sides' current versions of ``keys`` (``times``: when the external side last
        changed a record, from its change events; Salesforce's time is its SystemModstamp)."""
        sf_rows = await self.salesforce.lookup(obj.entity, obj.key, keys)
        ext_rows = await self.external.lookup(obj.entity, obj.key, keys)
        sf_by_key = {str(r[obj.key]): r for r in sf_rows if r.get(obj.key) not in (None, "")}
        ext_by_key = {str(r[obj.key]): r for r in ext_rows if r.get(obj.key) not in (None, "")}
        times = times or {}
        out: dict[str, Current] = {}
        for key in keys:
            sf, ext = sf_by_key.get(key), ext_by_key.get(key)
            stamp = str(sf["SystemModstamp"]) if sf and sf.get("SystemModstamp") else None
            out[key] = Current(
                salesforce=Version(
                    side=Side.SALESFORCE,
                    values=None if sf is None else self._values(obj, sf),
                    committed_at=_stamp_time(stamp),
                ),
                external=Version(
                    side=Side.EXTERNAL,
                    values=None if ext is None else self._values(obj, ext),
                    committed_at=times.get(key),
                ),
                salesforce_id=None if sf is None else str(sf["Id"]),
                salesforce_stamp=stamp,
            )
        return out

    @staticmethod
    def _values(obj: TwoWayObject, record: Mapping[str, object]) -> dict[str, object]:
        return canonical_record(obj.kinds, record, obj.fields)

    async def reconcile(
        self,
        obj: TwoWayObject,
        keys: Sequence[str],
        *,
        times: Mapping[str, datetime] | None = None,
        decided: Mapping[str, Decision] | None = None,
    ) -> Tally:
        """Bring ``keys`` to agreement; ``decided`` holds decisions already made (a person's
        resolution) to apply instead of resolving by policy."""
        tally = Tally()
        keys = list(dict.fromkeys(keys))
        if not keys:
            return tally
        now = self.clock.now()
        current = await self.current(obj, keys, times)
        shadows = await self.shadows.get(self.sync, obj.entity, keys)
        open_conflicts = await self.conflicts.open_for(self.sync, obj.entity, keys)
        plans: dict[str, tuple[Decision, Current]] = {}
        superseded: list[int] = []
        for key in keys:
            now_ = current[key]
            shadow = shadows.get(key)
            base = None if shadow is None else shadow.values
            decision = (decided or {}).get(key) or resolve(
                base, now_.salesforce, now_.external, obj.rules
            )
            if decision.parked:
                await self.conflicts.park(
                    ParkedConflict.of(
                        sync=self.sync,
                        entity=obj.entity,
                        key=key,
                        base=base,
                        salesforce=now_.salesforce,
                        external=now_.external,
                        decision=decision,
                        at=now,
                    )
                )
                tally.parked += 1
                tally.parked_keys.add(key)
                continue
            parked = open_conflicts.get(key)
            if parked is not None and parked.id is not None:
                superseded.append(parked.id)
            if not decision.writes and _same_shadow(shadow, decision.merged):
                tally.unchanged += 1
                continue
            plans[key] = (decision, now_)
        if superseded:
            await self.conflicts.supersede(superseded, now)
        await self._apply(obj, plans, shadows, tally, now)
        return tally

    async def _apply(
        self,
        obj: TwoWayObject,
        plans: Mapping[str, tuple[Decision, Current]],
        shadows: Mapping[str, Shadow],
        tally: Tally,
        now: datetime,
    ) -> None:
        failed: dict[str, SyncError] = {}
        deferred: set[str] = set()
        ext_events = [
            _event(obj, key, d.to_external, now)
            for key, (d, _) in plans.items()
            if d.to_external is not None
        ]
        if ext_events:

            def unchanged(key: str, row: Mapping[str, object] | None) -> bool:
                read = plans[key][1].external.values
                now_row = None if row is None else self._values(obj, row)
                if read is None or now_row is None:
                    return read is None and now_row is None
                return dict(read) == now_row

            errors = await self.external.apply(obj.entity, self.origin, ext_events, unchanged)
            for event, error in zip(ext_events, errors, strict=True):
                if error is None:
                    tally.to_external += 1
                elif error.code == CHANGED_SINCE_READ:
                    # Edited while we decided: nothing written on either side; the edit is
                    # in the change log and the record is decided again when it is read.
                    deferred.add(event.key)
                else:
                    failed[event.key] = error
                    tally.dead.append(_dead(self.sync, event, error, now))
        sf_events = [
            _event(obj, key, d.to_salesforce, now)
            for key, (d, _) in plans.items()
            if d.to_salesforce is not None and key not in failed and key not in deferred
        ]
        new_ids: dict[str, str] = {}
        if sf_events:
            outcomes = await self._write_salesforce(Batch.of(sf_events))
            for event, outcome in zip(sf_events, outcomes, strict=True):
                if isinstance(outcome, Outcome) and outcome.kind is OutcomeKind.APPLIED:
                    tally.to_salesforce += 1
                    if outcome.target_key:
                        new_ids[event.key] = outcome.target_key
                    continue
                error = outcome if isinstance(outcome, SyncError) else outcome.error
                error = error or SkippableError(f"Salesforce did not apply {event.key}")
                failed[event.key] = error
                tally.dead.append(_dead(self.sync, event, error, now))
        tally.failed += len(failed)
        tally.failed_keys.update(failed)
        stored: list[Shadow] = []
        gone: list[str] = []
        tally.deferred += len(deferred)
        for key, (decision, now_) in plans.items():
            if key in failed or key in deferred:
                continue
            if decision.merged is None:
                gone.append(key)
                continue
            old = shadows.get(key)
            stored.append(
                Shadow(
                    sync=self.sync,
                    entity=obj.entity,
                    key=key,
                    values=decision.merged,
                    salesforce_id=new_ids.get(key)
                    or now_.salesforce_id
                    or (old.salesforce_id if old else None),
                    external_key=key,
                    salesforce_version=now_.salesforce_stamp,
                    synced_at=now,
                )
            )
        if stored:
            await self.shadows.put(stored)
        if gone:
            await self.shadows.delete(self.sync, obj.entity, gone)


class _SinkWriter(Protocol):
    async def __call__(self, batch: Batch) -> Sequence[Outcome | RetryableError]: ...


def _same_shadow(shadow: Shadow | None, merged: Values | None) -> bool:
    if shadow is None:
        return merged is None
    return merged is not None and dict(shadow.values) == dict(merged)


def _event(obj: TwoWayObject, key: str, write: Write, now: datetime) -> ChangeEvent:
    """The change event that carries ``write`` to its side (the key field is the event's key,
    not a value: Salesforce upserts by it, and the database row is found by it)."""
    op = _WRITE_OPS[write.op]
    values = None
    if op is not Operation.DELETE:
        values = {k: v for k, v in write.values.items() if k != obj.key}
    return ChangeEvent(
        entity=obj.entity,
        key=key,
        op=op,
        after=values,
        position=Position(f"twoway:{obj.entity}", key),
        committed_at=now,
        partial=op is Operation.UPDATE,
        changed=frozenset(values or ()),
    )


def _dead(sync: str, event: ChangeEvent, error: SyncError, now: datetime) -> DeadLetter:
    kind = DeadLetterKind.FAILED if isinstance(error, RetryableError) else DeadLetterKind.REJECTED
    return DeadLetter.of(sync, kind, event, error, now)


def _stamp_time(stamp: str | None) -> datetime | None:
    if not stamp:
        return None
    try:
        value = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo is not None else None
