"""What two-way syncs remember: the shadow of each synced record, and parked conflicts.

A :class:`Shadow` is the last synced version of one record (the *base* of the three-way
comparison in :mod:`sfsync.core.conflicts`), with the Salesforce Id and external key that pair
the two copies and each side's version stamp. A :class:`ParkedConflict` is a record a
``manual`` policy left for a human: both sides' versions, the base, the fields in conflict.
Its life is ``open`` -> ``resolved`` (a :class:`Resolution` and who chose it) -> applied (the
runtime wrote the outcome to both sides and stamped ``applied_at``).

Applying a resolution (the runtime's part): read both sides' current versions of the record.
If they still equal the parked ones, write :meth:`ParkedConflict.decide`'s writes (its
``merged`` is :meth:`ParkedConflict.outcome`), store the outcome as the new shadow, and
:meth:`ConflictQueue.mark_applied`. If either side changed since, resolve anew from the same
base with the current versions (which may park the record again, as a new open conflict) and
mark this one applied too: a person decided on versions that no longer exist, and their
decision must not overwrite an edit they never saw.

Changes to a record that is parked and still open (:meth:`ConflictQueue.open_for`) are resolved
anew from the shadow, like any change: still in conflict, :meth:`ConflictQueue.park` refreshes
the open conflict with the new versions; resolved on their own, the decision is applied and the
open conflict is closed with :meth:`ConflictQueue.supersede`.
"""

from __future__ import annotations

import builtins
import enum
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Protocol

from sfsync.core.conflicts import ConflictRules, Decision, Policy, Side, Values, Version
from sfsync.core.merge import converge, resolve


def _frozen(values: Values | None) -> Values | None:
    if values is None or isinstance(values, MappingProxyType):
        return values
    return MappingProxyType(dict(values))


@dataclass(frozen=True, slots=True, kw_only=True)
class Shadow:
    """The last synced version of one record of a two-way sync.

    Attributes:
        sync, entity: the sync and object it belongs to.
        key: the record's key in the sync (the value of the object's ``key`` field).
        values: the field values both sides held after the last sync (common field names).
        salesforce_id: the record's Salesforce Id, once it has one.
        external_key: the record's key on the external side (a primary key as text).
        salesforce_version: Salesforce's version stamp then (``SystemModstamp``).
        external_version: the external side's version stamp then (an ``updated_at``, a
            change-log sequence).
        synced_at: when this shadow was written.
    """

    sync: str
    entity: str
    key: str
    values: Values
    salesforce_id: str | None = None
    external_key: str | None = None
    salesforce_version: str | None = None
    external_version: str | None = None
    synced_at: datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", _frozen(self.values))


class ShadowStore(Protocol):
    """Durable shadows, by ``(sync, entity, key)``.

    Contract: ``put`` is durable when it returns and replaces the shadows of the same keys;
    lookups of keys that have none leave them out of the result.
    """

    async def put(self, shadows: Collection[Shadow]) -> None:
        """Store ``shadows`` (one transaction)."""
        ...

    async def get(self, sync: str, entity: str, keys: Collection[str]) -> dict[str, Shadow]:
        """The shadows of ``keys``, by key."""
        ...

    async def by_salesforce_id(
        self, sync: str, entity: str, ids: Collection[str]
    ) -> dict[str, Shadow]:
        """The shadows of records with these Salesforce Ids, by Id (what CDC events carry)."""
        ...

    async def by_external_key(
        self, sync: str, entity: str, keys: Collection[str]
    ) -> dict[str, Shadow]:
        """The shadows of records with these external keys, by external key."""
        ...

    async def delete(self, sync: str, entity: str, keys: Collection[str]) -> None:
        """Forget the shadows of ``keys`` (records deleted on both sides)."""
        ...

    async def forget(self, sync: str) -> int:
        """Forget every shadow of ``sync`` (it starts over with first-run matching)."""
        ...

    async def count(self, sync: str | None = None) -> int:
        """How many shadows are stored."""
        ...


class ReviewState(enum.Enum):
    """Where a parked conflict stands."""

    OPEN = "open"
    RESOLVED = "resolved"


class Resolution(enum.Enum):
    """What a person chose for a parked conflict.

    ``take_salesforce`` and ``take_external`` settle every field in conflict with that side's
    value (for a delete against an update: that side's delete or update); changes either side
    made to other fields are kept. ``custom`` does the same as ``take_<base side>`` and then
    sets the values given.
    """

    TAKE_SALESFORCE = "take_salesforce"
    TAKE_EXTERNAL = "take_external"
    CUSTOM = "custom"
    SUPERSEDED = "superseded"
    """Closed by the sync, not a person: the record no longer conflicts (a side changed it
    again, and the new versions resolved on their own). There is nothing to apply."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ParkedConflict:
    """A record both sides changed where policy says a person decides.

    Attributes:
        id: assigned by the queue; ``None`` before it is parked.
        sync, entity, key: which record.
        base: the shadow's values (``None``: never synced).
        salesforce, external: each side's version (values ``None``: deleted there).
        fields: the fields in conflict.
        parked_at: when it was first parked; ``updated_at``: when its versions last changed
            (a record parked again while open replaces its versions).
        state: open or resolved.
        resolution, custom, custom_base: the choice (``custom`` values are set on top of the
            ``custom_base`` side's outcome).
        resolved_by, resolved_at: who chose, when.
        applied_at: when the runtime wrote the outcome to both sides.
    """

    id: int | None = None
    sync: str
    entity: str
    key: str
    base: Values | None
    salesforce: Version
    external: Version
    fields: tuple[str, ...]
    parked_at: datetime
    updated_at: datetime
    state: ReviewState = ReviewState.OPEN
    resolution: Resolution | None = None
    custom: Values = field(default_factory=dict)
    custom_base: Side = Side.SALESFORCE
    resolved_by: str | None = None
    resolved_at: datetime | None = None
    applied_at: datetime | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "base", _frozen(self.base))
        object.__setattr__(self, "custom", _frozen(self.custom))
        if self.salesforce.side is not Side.SALESFORCE or self.external.side is not Side.EXTERNAL:
            raise ValueError("ParkedConflict takes the Salesforce version, then the external one")

    @classmethod
    def of(
        cls,
        *,
        sync: str,
        entity: str,
        key: str,
        base: Values | None,
        salesforce: Version,
        external: Version,
        decision: Decision,
        at: datetime,
    ) -> ParkedConflict:
        """The conflict a parked :class:`~sfsync.core.conflicts.Decision` leaves."""
        if not decision.parked:
            raise ValueError("only a parked decision goes to the review queue")
        return cls(
            sync=sync,
            entity=entity,
            key=key,
            base=base,
            salesforce=salesforce,
            external=external,
            fields=decision.fields_in_conflict,
            parked_at=at,
            updated_at=at,
        )

    def decide(
        self, resolution: Resolution, custom: Mapping[str, object] | None = None
    ) -> Decision:
        """The decision a resolution gives, on the parked versions (a preview, and what the
        runtime applies while both sides still hold those versions).

        Raises:
            ValueError: ``custom`` values without the ``custom`` resolution or the other way
                round, or values set on a record that ends deleted.
        """
        if resolution is Resolution.SUPERSEDED:
            raise ValueError(f"conflict {self.id} was superseded: there is nothing to decide")
        if (resolution is Resolution.CUSTOM) != bool(custom):
            raise ValueError("custom values go with the custom resolution, and only with it")
        side = {
            Resolution.TAKE_SALESFORCE: Side.SALESFORCE,
            Resolution.TAKE_EXTERNAL: Side.EXTERNAL,
        }.get(resolution, self.custom_base)
        policy = Policy.SALESFORCE_WINS if side is Side.SALESFORCE else Policy.EXTERNAL_WINS
        decision = resolve(self.base, self.salesforce, self.external, ConflictRules(policy=policy))
        if not custom:
            return decision
        if decision.merged is None:
            raise ValueError(
                f"taking {side.value}'s version deletes the record, so no field can be set"
            )
        record = {**decision.merged, **custom}
        return converge(self.salesforce, self.external, record, decision.conflicts)

    def outcome(self) -> Values | None:
        """The record both sides must hold once resolved (``None``: deleted on both).

        Raises:
            ValueError: the conflict is not resolved yet.
        """
        if self.resolution is None:
            raise ValueError(f"conflict {self.id} is not resolved yet")
        return self.decide(self.resolution, self.custom or None).merged


class ConflictQueue(Protocol):
    """Durable parked conflicts, oldest first.

    Contract: at most one conflict per record is open; parking a record that has one replaces
    its versions and fields (keeping its id and ``parked_at``). Every call is durable when it
    returns.
    """

    async def park(self, conflict: ParkedConflict) -> int:
        """Store an open conflict (or refresh the record's open one); its id."""
        ...

    async def get(self, conflict_id: int) -> ParkedConflict | None:
        """The conflict with this id, if any."""
        ...

    async def list(
        self, sync: str | None = None, state: ReviewState | None = None, *, limit: int = 100
    ) -> list[ParkedConflict]:
        """Conflicts, oldest first, optionally of one sync and in one state."""
        ...

    async def count(self, sync: str | None = None, state: ReviewState | None = None) -> int:
        """How many conflicts there are."""
        ...

    async def resolve(
        self,
        conflict_id: int,
        resolution: Resolution,
        *,
        custom: Mapping[str, object] | None = None,
        custom_base: Side = Side.SALESFORCE,
        by: str,
        at: datetime,
    ) -> bool:
        """Record a person's choice on an open conflict; ``False`` if it is not open."""
        ...

    async def pending(self, sync: str, *, limit: int = 100) -> builtins.list[ParkedConflict]:
        """Resolved conflicts of ``sync`` the runtime has not applied yet, oldest first."""
        ...

    async def mark_applied(self, conflict_ids: Collection[int], at: datetime) -> None:
        """Stamp conflicts as applied to both sides."""
        ...

    async def open_for(
        self, sync: str, entity: str, keys: Collection[str]
    ) -> dict[str, ParkedConflict]:
        """The open conflicts of these records, by key (records parked while changes keep
        arriving: the runtime resolves them anew, and parks or supersedes)."""
        ...

    async def supersede(self, conflict_ids: Collection[int], at: datetime) -> None:
        """Close open conflicts whose records resolved on their own since (resolution
        ``superseded``, resolved by ``sfsync``, applied at ``at``)."""
        ...


def _typed(name: str, text: str, like: object) -> object:
    """``text`` as a value of ``like``'s type (the type the field holds in the record)."""
    if text.strip().lower() == "null":
        return None
    try:
        if isinstance(like, bool):
            if text.strip().lower() not in ("true", "false"):
                raise ValueError("expected true or false")
            return text.strip().lower() == "true"
        if isinstance(like, int):
            return int(text)
        if isinstance(like, float):
            return float(text)
        if isinstance(like, Decimal):
            return Decimal(text.strip())
        if isinstance(like, datetime):
            return datetime.fromisoformat(text.strip())
        if isinstance(like, date):
            return date.fromisoformat(text.strip())
    except (ValueError, ArithmeticError) as exc:
        raise ValueError(
            f"{name}={text!r}: the field holds {type(like).__name__} values ({exc})"
        ) from exc
    return text


def custom_values(
    conflict: ParkedConflict, raw: Mapping[str, str], *, with_base_side: bool
) -> dict[str, object]:
    """Values typed on a command line (``FIELD=VALUE``) as the record's own types.

    A value takes the type the field holds in the parked versions (``42`` for a number,
    ``2026-05-01`` for a date, ``true``); ``null`` clears a field; text stays text.

    Args:
        with_base_side: a side was chosen for the conflicting fields not set; without one,
            every field in conflict must be set.

    Raises:
        ValueError: a field the record does not have, a value that does not fit its type, or
            a conflicting field left unset without a side to take it from.
    """
    versions = (conflict.salesforce.values, conflict.external.values, conflict.base)
    known: dict[str, str] = {}
    for values in versions:
        for field_name in values or {}:
            known.setdefault(field_name.lower(), field_name)
    typed: dict[str, object] = {}
    for given, text in raw.items():
        name = known.get(given.lower())
        if name is None:
            listed = ", ".join(sorted(known.values()))
            raise ValueError(f"{given!r} is not a field of this record (fields: {listed})")
        like = next((v[name] for v in versions if v is not None and v.get(name) is not None), None)
        typed[name] = _typed(name, text, like)
    unset = [f for f in conflict.fields if f not in typed]
    if unset and not with_base_side:
        raise ValueError(
            f"set every field in conflict ({', '.join(unset)}), or choose a side for the rest"
        )
    return typed
