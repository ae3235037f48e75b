"""Two-way syncs: three-way comparison against the shadow, resolution by policy, echoes.

A two-way sync keeps, for every record it has synced, a *shadow*: the field values both sides
held after the last sync (the *base*). When a change arrives from one side, :func:`resolve`
compares three versions of the record, field by field:

- the base (``None`` when the record was never synced),
- the Salesforce side's version, and
- the external side's version

(one of the two is the incoming change, the other the current state of the other side; the
function is symmetric and does not care which). A side *changed* a field when its value
differs from the base. A field changed on one side only flows to the other side. A field
changed on both sides to the same value needs nothing. A field changed on both sides to
different values is a **conflict**, settled by the field's :class:`Policy`:

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

Whole-record changes. A record deleted on one side and updated on the other since the base is
a record-level conflict (every field the live side changed is listed), settled by the
object's policy (``field_ownership`` gives it to ``default_owner``): the deleting side wins by
deleting the other copy, the updating side by re-creating the record where it was deleted. A
record present on one side only and never synced is created on the other side; deleted on both,
it needs nothing.

Values are compared with ``==`` (NaN equals NaN), in the sync's common field names after
mapping; both sides' values must have been normalised to the same Python types first (a
``Decimal`` and a ``str`` never compare equal). A version may be *partial* (a CDC update carries
only the fields it changed): a field it does not carry is taken as unchanged since the base.

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


def _frozen(values: Mapping[str, object]) -> Mapping[str, object]:
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
        object.__setattr__(self, "fields", _frozen({k.lower(): v for k, v in self.fields.items()}))
        object.__setattr__(self, "owners", _frozen({k.lower(): v for k, v in self.owners.items()}))

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
            object.__setattr__(self, "values", _frozen(self.values))
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
        object.__setattr__(self, "values", _frozen(self.values))


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


def newest(salesforce: Version, external: Version) -> Side:
    """The side whose change committed later; ties and unknown times go to Salesforce."""
    s, e = salesforce.committed_at, external.committed_at
    if e is not None and (s is None or e > s):
        return Side.EXTERNAL
    return Side.SALESFORCE


def winner_of(
    policy: Policy, name: str | None, rules: ConflictRules, sf: Version, ext: Version
) -> Side | None:
    """The side ``policy`` gives field ``name`` to (``None``: the record) or ``None`` (manual)."""
    if policy is Policy.SALESFORCE_WINS:
        return Side.SALESFORCE
    if policy is Policy.EXTERNAL_WINS:
        return Side.EXTERNAL
    if policy is Policy.NEWEST_WINS:
        return newest(sf, ext)
    if policy is Policy.FIELD_OWNERSHIP:
        return rules.default_owner if name is None else rules.owner_of(name)
    return None


def _changed(values: Values, base: Values) -> list[str]:
    return [k for k, v in values.items() if not same(v, base.get(k, ABSENT))]


def resolve(
    base: Values | None, salesforce: Version, external: Version, rules: ConflictRules
) -> Decision:
    """Decide what each side must receive so that both hold the same record.

    Args:
        base: the shadow, the values both sides held after the last sync; ``None`` when the
            record was never synced (first run, or created since).
        salesforce: Salesforce's version of the record.
        external: the external side's version.
        rules: the object's policies.

    The decision is a pure function of its arguments: the same inputs always give the same
    decision. Applying its writes to both sides leaves them equal (unless it is parked).

    Raises:
        ValueError: the versions are not one of each side.
    """
    if salesforce.side is not Side.SALESFORCE or external.side is not Side.EXTERNAL:
        raise ValueError("resolve() takes the Salesforce version, then the external version")
    s, e = salesforce.values, external.values
    if s is None and e is None:
        return Decision(
            to_salesforce=None, to_external=None, conflicts=(), parked=False, merged=None
        )
    if s is None or e is None:
        return _one_side_absent(base, salesforce, external, rules)
    return _merge_fields(base or {}, salesforce, external, rules)


def _one_side_absent(
    base: Values | None, sf: Version, ext: Version, rules: ConflictRules
) -> Decision:
    live, gone = (sf, ext) if ext.values is None else (ext, sf)
    assert live.values is not None  # resolve() sends only this case here
    if base is None:
        # Never synced: the record was created on the live side; copy it over.
        return _decision_to(gone.side, Write(gone.side, WriteOp.CREATE, live.values), live.values)
    changed = _changed(live.values, base)
    if not changed:
        return _decision_to(live.side, Write(live.side, WriteOp.DELETE, {}), None)
    winner = winner_of(rules.policy, None, rules, sf, ext)
    conflicts = tuple(
        FieldConflict(
            field=name,
            base=base.get(name, ABSENT),
            salesforce=sf.values.get(name, ABSENT) if sf.values is not None else ABSENT,
            external=ext.values.get(name, ABSENT) if ext.values is not None else ABSENT,
            policy=rules.policy,
            winner=winner,
        )
        for name in changed
    )
    if winner is None:
        return Decision(
            to_salesforce=None, to_external=None, conflicts=conflicts, parked=True, merged=None
        )
    if winner is gone.side:
        write, merged = Write(live.side, WriteOp.DELETE, {}), None
    else:
        whole = {**base, **live.values}
        write, merged = Write(gone.side, WriteOp.CREATE, whole), whole
    decision = _decision_to(write.side, write, merged)
    return Decision(
        to_salesforce=decision.to_salesforce,
        to_external=decision.to_external,
        conflicts=conflicts,
        parked=False,
        merged=decision.merged,
    )


def _decision_to(side: Side, write: Write, merged: Values | None) -> Decision:
    return Decision(
        to_salesforce=write if side is Side.SALESFORCE else None,
        to_external=write if side is Side.EXTERNAL else None,
        conflicts=(),
        parked=False,
        merged=None if merged is None else _frozen(merged),
    )


def _merge_fields(base: Values, sf: Version, ext: Version, rules: ConflictRules) -> Decision:
    # Without a shadow (matched on the first run) the base is empty: every field the two
    # sides hold differently is a conflict.
    s, e = sf.values, ext.values
    assert s is not None  # resolve() sends only this case here
    assert e is not None
    merged: dict[str, object] = {}
    to_sf: dict[str, object] = {}
    to_ext: dict[str, object] = {}
    conflicts: list[FieldConflict] = []
    # A field a partial version does not carry still holds the base value on that side, so a
    # side needs a write exactly when the other side's value is taken.
    for name in {**base, **s, **e}:
        b, sv, ev = base.get(name, ABSENT), s.get(name, ABSENT), e.get(name, ABSENT)
        s_changed = sv is not ABSENT and sv is not b and not same(sv, b)
        e_changed = ev is not ABSENT and ev is not b and not same(ev, b)
        if s_changed and e_changed:
            if same(sv, ev):
                merged[name] = sv
                continue
            policy = rules.policy_for(name)
            winner = winner_of(policy, name, rules, sf, ext)
            conflicts.append(
                FieldConflict(
                    field=name, base=b, salesforce=sv, external=ev, policy=policy, winner=winner
                )
            )
            if winner is Side.EXTERNAL:
                merged[name] = to_sf[name] = ev
            else:
                merged[name] = to_ext[name] = sv
        elif s_changed:
            merged[name] = to_ext[name] = sv
        elif e_changed:
            merged[name] = to_sf[name] = ev
        else:
            merged[name] = b
    if any(c.winner is None for c in conflicts):
        return Decision(
            to_salesforce=None,
            to_external=None,
            conflicts=tuple(conflicts),
            parked=True,
            merged=None,
        )
    return Decision(
        to_salesforce=Write(Side.SALESFORCE, WriteOp.UPDATE, to_sf) if to_sf else None,
        to_external=Write(Side.EXTERNAL, WriteOp.UPDATE, to_ext) if to_ext else None,
        conflicts=tuple(conflicts),
        parked=False,
        merged=_frozen(merged),
    )


def converge(
    salesforce: Version,
    external: Version,
    record: Values | None,
    conflicts: tuple[FieldConflict, ...] = (),
) -> Decision:
    """The writes that bring both sides to ``record`` (``None``: deleted on both), e.g. the
    values a person chose for a parked conflict. Fields a side already holds are not written.
    """

    def write(version: Version) -> Write | None:
        held = version.values
        if record is None:
            return None if held is None else Write(version.side, WriteOp.DELETE, {})
        if held is None:
            return Write(version.side, WriteOp.CREATE, record)
        patch = {k: v for k, v in record.items() if not same(held.get(k, ABSENT), v)}
        return Write(version.side, WriteOp.UPDATE, patch) if patch else None

    return Decision(
        to_salesforce=write(salesforce),
        to_external=write(external),
        conflicts=conflicts,
        parked=False,
        merged=None if record is None else _frozen(record),
    )


def apply(write: Write | None, values: Values | None) -> Values | None:
    """The record after ``write``: what a sink does, as a pure function (tests, previews)."""
    if write is None:
        return values
    if write.op is WriteOp.DELETE:
        return None
    if write.op is WriteOp.CREATE:
        return _frozen(write.values)
    return _frozen({**(values or {}), **write.values})


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
