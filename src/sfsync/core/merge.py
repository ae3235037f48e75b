"""Three-way resolution of a record against its shadow, by policy.

When a change arrives from one side, :func:`resolve` compares three versions of the record,
field by field:

- the base (the shadow; ``None`` when the record was never synced),
- the Salesforce side's version, and
- the external side's version

(one of the two is the incoming change, the other the current state of the other side; the
function is symmetric and does not care which). A side *changed* a field when its value
differs from the base. A field changed on one side only flows to the other side. A field
changed on both sides to the same value needs nothing. A field changed on both sides to
different values is a **conflict**, settled by the field's policy
(:class:`~sfsync.core.conflicts.Policy`).

Whole-record changes. A record deleted on one side and updated on the other since the base is
a record-level conflict (every field the live side changed is listed), settled by the
object's policy (``field_ownership`` gives it to ``default_owner``): the deleting side wins by
deleting the other copy, the updating side by re-creating the record where it was deleted. A
record present on one side only and never synced is created on the other side; deleted on both,
it needs nothing.

A version may be *partial* (a CDC update carries only the fields it changed): a field it does
not carry is taken as unchanged since the base.
"""

from __future__ import annotations

from sfsync.core.conflicts import (
    ABSENT,
    ConflictRules,
    Decision,
    FieldConflict,
    Policy,
    Side,
    Values,
    Version,
    Write,
    WriteOp,
    frozen_values,
    same,
)


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
        merged=None if merged is None else frozen_values(merged),
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
        merged=frozen_values(merged),
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
        merged=None if record is None else frozen_values(record),
    )


def apply(write: Write | None, values: Values | None) -> Values | None:
    """The record after ``write``: what a sink does, as a pure function (tests, previews)."""
    if write is None:
        return values
    if write.op is WriteOp.DELETE:
        return None
    if write.op is WriteOp.CREATE:
        return frozen_values(write.values)
    return frozen_values({**(values or {}), **write.values})
