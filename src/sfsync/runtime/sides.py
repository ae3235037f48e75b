"""What a two-way sync needs of its two sides, how it runs, and what it reads in their changes.

The pure parts of :mod:`sfsync.runtime.twoway`: the options, the protocols both sides'
connectors meet, which records a batch of changes names (our own echoes left out), and what to
write on a database change's change-log row once its record is reconciled.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable

from sfsync.core.conflicts import is_own_origin
from sfsync.core.errors import ConflictError, SyncError
from sfsync.core.events import ChangeEvent, Operation
from sfsync.core.retry import RetryPolicy
from sfsync.runtime.pipeline import RunMode
from sfsync.runtime.reconcile import ExternalWriter, Tally, TwoWayObject
from sfsync.spi.sink import Outcome, OutcomeKind
from sfsync.spi.source import RecordLookup, Source


@dataclass(frozen=True, slots=True, kw_only=True)
class TwoWayOptions:
    """How one two-way sync runs.

    Attributes:
        name: the sync's name (its checkpoint, shadows and conflicts are filed under it).
        objects: the objects, in order (parents before children).
        mode: once (one pass) or continuous.
        interval: seconds between passes.
        retry: the schedule for transient failures.
        client_id: our Salesforce client id (``Sforce-Call-Options``): changes whose
            ``changeOrigin`` carries it are our own echoes.
        origin: what our writes into the external database are marked with in its change log.
        seed: seeds the retry jitter.
        realtime: follow both sides' change streams (Change Data Capture, the change log
            with NOTIFY) instead of polling every ``interval``; the review queue is still read
            every ``interval``.
        linger: in real time, how long to wait for more changes after the first one before
            reconciling them together.
    """

    name: str
    objects: tuple[TwoWayObject, ...]
    mode: RunMode = RunMode.ONCE
    interval: float = 30.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    client_id: str | None = None
    origin: str = "sfsync"
    seed: int | None = None
    realtime: bool = False
    linger: float = 0.05

    @property
    def entities(self) -> tuple[str, ...]:
        return tuple(o.entity for o in self.objects)


@runtime_checkable
class SalesforceSide(RecordLookup, Source, Protocol):
    """The Salesforce source as a two-way sync uses it: changes, lookups and key setting."""

    async def give_keys(
        self, entity: str, key_field: str, keys: Mapping[str, str]
    ) -> dict[str, SyncError | None]: ...


@runtime_checkable
class ExternalSide(ExternalWriter, Source, Protocol):
    """The external source as a two-way sync uses it: changes, lookups and marked writes."""


@dataclass(frozen=True, slots=True)
class Changed:
    """The records a batch of changes names, for one object.

    Attributes:
        keys: keys the changes carry (Salesforce records with a key value, database rows).
        ids: Salesforce Ids that changed (their shadows give the key each was synced under).
        times: per key, when the database last changed it (``newest_wins``).
        echoes: changes dropped as our own (their origin is our writer).
    """

    keys: tuple[str, ...]
    ids: tuple[str, ...]
    times: Mapping[str, datetime]
    echoes: int


def changed(
    obj: TwoWayObject,
    sf_events: Sequence[ChangeEvent],
    ext_events: Sequence[ChangeEvent],
    client_id: str | None,
    origin: str,
) -> Changed:
    """Which of ``obj``'s records the changes name, our own echoes left out: Salesforce changes
    whose ``changeOrigin`` is ``client_id``, database changes whose origin is ``origin``."""
    keys: list[str] = []
    ids: list[str] = []
    echoes = 0
    for event in sf_events:
        if event.entity != obj.entity:
            continue
        if is_own_origin(event.origin, client_id):
            echoes += 1
            continue
        # The Id too: a delete names only the Id, and a record whose key was changed must
        # also be reconciled under the key it was synced under (found by its shadow).
        ids.append(event.key)
        key = (event.after or {}).get(obj.key)
        if key not in (None, "") and event.op is not Operation.DELETE:
            keys.append(str(key))
    times: dict[str, datetime] = {}
    for event in ext_events:
        if event.entity != obj.entity:
            continue
        if event.origin == origin:
            echoes += 1
            continue
        keys.append(event.key)
        times[event.key] = max(times.get(event.key, event.committed_at), event.committed_at)
    return Changed(tuple(dict.fromkeys(keys)), tuple(dict.fromkeys(ids)), times, echoes)


def fate(event: ChangeEvent, tally: Tally | None, origin: str) -> Outcome:
    """What became of a database change, for its change-log row: our own echo (stale),
    parked, rejected with the error Salesforce gave, or applied (written across, or nothing
    was needed)."""
    if event.origin == origin:
        return Outcome(OutcomeKind.STALE)
    if tally is not None and event.key in tally.parked_keys:
        return Outcome(
            OutcomeKind.CONFLICT,
            ConflictError(
                "both sides changed the record: parked for review",
                hint="`sfsync conflicts list CONFIG` shows it",
            ),
        )
    if tally is not None and event.key in tally.failed_keys:
        return Outcome(OutcomeKind.REJECTED, tally.failed_keys[event.key])
    return Outcome(OutcomeKind.APPLIED)


def values_equal(a: Mapping[str, object] | None, b: Mapping[str, object] | None) -> bool:
    """Two versions' values are the same record state (``None``: no record)."""
    if a is None or b is None:
        return a is b
    return dict(a) == dict(b)
