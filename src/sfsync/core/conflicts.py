"""Two-way syncs: the vocabulary of conflicts (sides, policies, versions, decisions) and echoes.

A two-way sync keeps, for every record it has synced, a *shadow*: the field values both sides
held after the last sync (the *base*). :func:`sfsync.core.merge.resolve` compares the base with
both sides' :class:`Version` of a record and returns a :class:`Decision`: the :class:`Write`
each side needs, the :class:`FieldConflict` s, and whether the record is parked. How a conflict
is settled is a :class:`Policy`, chosen per object and per field in :class:`ConflictRules`:

=================== ============================================================================
``salesforce_wins`` Salesforce's value.
``external_wins``   The external side's value.
``newest_wins``     The value of the side whose change committed later (``committed_at``). A tie,
                    or a side whose commit time is unknown, goes to Salesforce (a known time
                    beats an unknown one): deterministic, and Salesforce's ``SystemModstamp``
                    is the one clock every deployment shares.
``field_ownership`` The value of the side that owns the field (``owners``, else
                    ``default_owner``). Changes to different fields still merge field by field.
``manual``          Nobody: the decision is *parked* for review, and nothing is written.
=================== ============================================================================

Values are compared with :func:`same` (``==``, and NaN equals NaN), in the sync's common field
names after mapping; both sides' values must have been normalised to the same Python types
first (a ``Decimal`` and a ``str`` never compare equal).

Echoes. Our own write comes back as a change from the side we wrote to. Through CDC it carries
our client id (:func:`is_own_origin`); in polling mode it is recognised because its values equal
the shadow (:func:`is_echo`). A real edit that happens to restore the shadow's values is dropped
too, which is harmless: both sides already hold those values.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Final

Values = Mapping[str, object]
"""A record's field values, by field name."""

CHANGED_SINCE_READ: Final = "CHANGED_SINCE_READ"
"""The error code of a write a side refused because the record changed after the two-way sync
read it: nothing was written, and the newer change is decided when it is read."""


class _Absent:
    """The value of a field a version does not carry, or of a record that does not exist."""

    _instance: _Absent | None = None

    def __new__(cls) -> _Absent:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "ABSENT"

    def __reduce__(self) -> str:
        return "ABSENT"


ABSENT: Final = _Absent()
"""Stands for "no value": a field the version does not carry, or a deleted record."""


class Side(enum.Enum):
    """The two sides of a two-way sync."""

    SALESFORCE = "salesforce"
    EXTERNAL = "external"

    @property
    def other(self) -> Side:
        return Side.EXTERNAL if self is Side.SALESFORCE else Side.SALESFORCE


class Policy(enum.Enum):
    """How a conflict on a field is settled (see the module docstring)."""

    SALESFORCE_WINS = "salesforce_wins"
    EXTERNAL_WINS = "external_wins"
    NEWEST_WINS = "newest_wins"
    FIELD_OWNERSHIP = "field_ownership"
    MANUAL = "manual"


def frozen_values(values: Mapping[str, object]) -> Mapping[str, object]:
    """``values`` as a read-only mapping (copied unless it already is one)."""
    return values if isinstance(values, MappingProxyType) else MappingProxyType(dict(values))


@dataclass(frozen=True, slots=True, kw_only=True)
class ConflictRules:
    """The policies of one object.

    Field names are matched case-insensitively, as Salesforce matches them.

    Attributes:
        policy: for fields without their own policy, and for record-level conflicts (a delete
            against an update). Default ``manual``: nothing is decided silently.
        fields: per-field policies overriding ``policy``.
        owners: the owning side of fields, for ``field_ownership``.
        default_owner: the owner of fields not in ``owners``, and of the record itself.
    """

    policy: Policy = Policy.MANUAL
    fields: Mapping[str, Policy] = field(default_factory=dict)
    owners: Mapping[str, Side] = field(default_factory=dict)
    default_owner: Side = Side.SALESFORCE

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "fields", frozen_values({k.lower(): v for k, v in self.fields.items()})
        )
        object.__setattr__(
            self, "owners", frozen_values({k.lower(): v for k, v in self.owners.items()})
        )

    def policy_for(self, name: str) -> Policy:
        """The policy that settles a conflict on field ``name``."""
        return self.fields.get(name.lower(), self.policy)

    def owner_of(self, name: str) -> Side:
        """The side that owns field ``name``."""
        return self.owners.get(name.lower(), self.default_owner)


@dataclass(frozen=True, slots=True, kw_only=True)
class Version:
    """One side's version of a record.

    Attributes:
        side: whose version it is.
        values: its field values (possibly only some fields); ``None`` when the record is
            deleted on that side, or was never there.
        committed_at: when that side last changed the record, where known (``newest_wins``).
    """

    side: Side
    values: Values | None
    committed_at: datetime | None = None

    def __post_init__(self) -> None:
        if self.values is not None:
            object.__setattr__(self, "values", frozen_values(self.values))
        if self.committed_at is not None and self.committed_at.tzinfo is None:
            raise ValueError("Version.committed_at must be timezone-aware (UTC)")


class WriteOp(enum.Enum):
    """What a :class:`Write` does to a side."""

    CREATE = "create"
    """The record is absent there: create it with ``values`` (the whole record)."""
    UPDATE = "update"
    """Set the fields in ``values``; leave the others alone."""
    DELETE = "delete"
    """Delete the record; ``values`` is empty."""


@dataclass(frozen=True, slots=True)
class Write:
    """A write a decision asks of one side."""

    side: Side
    op: WriteOp
    values: Values

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", frozen_values(self.values))


@dataclass(frozen=True, slots=True, kw_only=True)
class FieldConflict:
    """A field both sides changed, to different values, since the base.

    ``base``, ``salesforce`` and ``external`` are :data:`ABSENT` where the record did not
    exist (never synced, or deleted on that side). ``winner`` is ``None`` when the field's
    policy is ``manual``.
    """

    field: str
    base: object
    salesforce: object
    external: object
    policy: Policy
    winner: Side | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """What to do about one record, decided from the base and both sides' versions.

    Attributes:
        to_salesforce: the write Salesforce needs, or ``None``.
        to_external: the write the external side needs, or ``None``.
        conflicts: the fields both sides changed to different values, in field order.
        parked: a ``manual`` conflict: nothing is written, the record goes to the review queue.
        merged: the record as both sides hold it once the writes are applied: the new shadow.
            ``None`` when it ends deleted on both sides, or when the decision is parked.
    """

    to_salesforce: Write | None
    to_external: Write | None
    conflicts: tuple[FieldConflict, ...]
    parked: bool
    merged: Values | None

    @property
    def fields_in_conflict(self) -> tuple[str, ...]:
        return tuple(c.field for c in self.conflicts)

    @property
    def decided_by(self) -> Mapping[str, Policy]:
        """The policy that settled (or parked) each conflicting field."""
        return MappingProxyType({c.field: c.policy for c in self.conflicts})

    @property
    def writes(self) -> tuple[Write, ...]:
        return tuple(w for w in (self.to_salesforce, self.to_external) if w is not None)


def same(a: object, b: object) -> bool:
    """Whether two field values are equal for change detection (NaN equals NaN)."""
    if a is b:
        return True
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    try:
        return bool(a == b)
    except TypeError:  # e.g. exotic types that refuse to compare
        return False


def is_echo(
    values: Values | None, shadow: Values | None, *, compare: Collection[str] | None = None
) -> bool:
    """Whether a change is our own write coming back (polling mode): its values equal the shadow.

    Args:
        values: the changed record's values; ``None`` for a delete.
        shadow: the last synced values of the record; ``None`` when there is none (never
            synced, or deleted on both sides).
        compare: the fields to compare (those the sync carries); system fields such as
            ``SystemModstamp`` change on every write and must be left out. Default: every
            field in ``values``.

    A delete is an echo when there is no shadow (the record is already gone everywhere). A
    field the shadow does not hold makes the change real.
    """
    if values is None:
        return shadow is None
    if shadow is None:
        return False
    names = values.keys() if compare is None else [n for n in compare if n in values]
    return all(n in shadow and same(values[n], shadow[n]) for n in names)


def is_own_origin(origin: str | None, client_id: str | None) -> bool:
    """Whether a change was made by our own writer (CDC ``changeOrigin`` client id)."""
    return origin is not None and client_id is not None and origin == client_id
