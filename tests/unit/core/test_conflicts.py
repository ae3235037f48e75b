"""Three-way resolution: a table over every policy, then properties."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sfsync.core.conflicts import (
    ABSENT,
    ConflictRules,
    Decision,
    Policy,
    Side,
    Values,
    Version,
    WriteOp,
    is_echo,
    is_own_origin,
    same,
)
from sfsync.core.merge import apply, newest, resolve

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
EARLY, LATE = T0, T0 + timedelta(seconds=5)

BASE = {"Name": "Acme", "Phone": "1", "City": "Bern"}
SF, EXT = Side.SALESFORCE, Side.EXTERNAL
ALL_POLICIES = list(Policy)
OWNERS = ConflictRules(
    policy=Policy.FIELD_OWNERSHIP, owners={"phone": EXT}, default_owner=SF
)  # Name, City: Salesforce; Phone: external (lower case: names match case-insensitively)


def rules(policy: Policy) -> ConflictRules:
    return OWNERS if policy is Policy.FIELD_OWNERSHIP else ConflictRules(policy=policy)


def decide(
    base: Values | None,
    sf: Values | None,
    ext: Values | None,
    policy: Policy,
    *,
    sf_at: datetime = EARLY,
    ext_at: datetime = LATE,
) -> Decision:
    return resolve(
        base,
        Version(side=SF, values=sf, committed_at=sf_at),
        Version(side=EXT, values=ext, committed_at=ext_at),
        rules(policy),
    )


@dataclass(frozen=True)
class Case:
    name: str
    base: Values | None
    sf: Values | None
    ext: Values | None
    # policy -> expected final record (None: deleted on both), or "parked"
    expect: dict[Policy, Values | str | None]
    conflicts: tuple[str, ...] = ()


def every(result: Values | str | None) -> dict[Policy, Values | str | None]:
    return dict.fromkeys(ALL_POLICIES, result)


CASES = [
    Case("nothing changed", BASE, BASE, BASE, every(BASE)),
    Case(
        "salesforce only changed a field",
        BASE,
        {**BASE, "Name": "Acme AG"},
        BASE,
        every({**BASE, "Name": "Acme AG"}),
    ),
    Case(
        "external only changed a field",
        BASE,
        BASE,
        {**BASE, "City": "Basel"},
        every({**BASE, "City": "Basel"}),
    ),
    Case(
        "different fields on each side merge",
        BASE,
        {**BASE, "Name": "Acme AG"},
        {**BASE, "City": "Basel"},
        every({**BASE, "Name": "Acme AG", "City": "Basel"}),
    ),
    Case(
        "same field, same value on both sides",
        BASE,
        {**BASE, "Name": "Acme AG"},
        {**BASE, "Name": "Acme AG"},
        every({**BASE, "Name": "Acme AG"}),
    ),
    Case(
        "same field, different values (Salesforce-owned field)",
        BASE,
        {**BASE, "Name": "Acme AG"},
        {**BASE, "Name": "ACME"},
        {
            Policy.SALESFORCE_WINS: {**BASE, "Name": "Acme AG"},
            Policy.EXTERNAL_WINS: {**BASE, "Name": "ACME"},
            Policy.NEWEST_WINS: {**BASE, "Name": "ACME"},  # external committed later
            Policy.FIELD_OWNERSHIP: {**BASE, "Name": "Acme AG"},
            Policy.MANUAL: "parked",
        },
        ("Name",),
    ),
    Case(
        "same field, different values (externally owned field), plus a clean merge",
        BASE,
        {**BASE, "Phone": "2", "Name": "Acme AG"},
        {**BASE, "Phone": "3", "City": "Basel"},
        {
            Policy.SALESFORCE_WINS: {"Name": "Acme AG", "Phone": "2", "City": "Basel"},
            Policy.EXTERNAL_WINS: {"Name": "Acme AG", "Phone": "3", "City": "Basel"},
            Policy.NEWEST_WINS: {"Name": "Acme AG", "Phone": "3", "City": "Basel"},
            Policy.FIELD_OWNERSHIP: {"Name": "Acme AG", "Phone": "3", "City": "Basel"},
            Policy.MANUAL: "parked",
        },
        ("Phone",),
    ),
    Case(
        "null on one side against a value on the other",
        BASE,
        {**BASE, "Phone": None},
        {**BASE, "Phone": "9"},
        {
            Policy.SALESFORCE_WINS: {**BASE, "Phone": None},
            Policy.EXTERNAL_WINS: {**BASE, "Phone": "9"},
            Policy.NEWEST_WINS: {**BASE, "Phone": "9"},
            Policy.FIELD_OWNERSHIP: {**BASE, "Phone": "9"},
            Policy.MANUAL: "parked",
        },
        ("Phone",),
    ),
    Case(
        "a null in the base set on one side only",
        {**BASE, "Phone": None},
        {**BASE, "Phone": None},
        {**BASE, "Phone": "5"},
        every({**BASE, "Phone": "5"}),
    ),
    Case(
        "deleted in Salesforce, untouched outside",
        BASE,
        None,
        BASE,
        every(None),
    ),
    Case(
        "deleted outside, untouched in Salesforce",
        BASE,
        BASE,
        None,
        every(None),
    ),
    Case("deleted on both sides", BASE, None, None, every(None)),
    Case(
        "deleted in Salesforce, updated outside",
        BASE,
        None,
        {**BASE, "City": "Basel"},
        {
            Policy.SALESFORCE_WINS: None,
            Policy.EXTERNAL_WINS: {**BASE, "City": "Basel"},
            Policy.NEWEST_WINS: {**BASE, "City": "Basel"},  # the update is later
            Policy.FIELD_OWNERSHIP: None,  # the record belongs to default_owner: Salesforce
            Policy.MANUAL: "parked",
        },
        ("City",),
    ),
    Case(
        "updated in Salesforce, deleted outside",
        BASE,
        {**BASE, "Name": "Acme AG"},
        None,
        {
            Policy.SALESFORCE_WINS: {**BASE, "Name": "Acme AG"},
            Policy.EXTERNAL_WINS: None,
            Policy.NEWEST_WINS: None,  # the delete is later
            Policy.FIELD_OWNERSHIP: {**BASE, "Name": "Acme AG"},
            Policy.MANUAL: "parked",
        },
        ("Name",),
    ),
    Case("new in Salesforce, never synced", None, BASE, None, every(BASE)),
    Case("new outside, never synced", None, None, BASE, every(BASE)),
    Case(
        "both hold it, never synced (matched on the first run)",
        None,
        {"Name": "Acme", "Phone": "1"},
        {"Name": "Acme", "Phone": "2"},
        {
            Policy.SALESFORCE_WINS: {"Name": "Acme", "Phone": "1"},
            Policy.EXTERNAL_WINS: {"Name": "Acme", "Phone": "2"},
            Policy.NEWEST_WINS: {"Name": "Acme", "Phone": "2"},
            Policy.FIELD_OWNERSHIP: {"Name": "Acme", "Phone": "2"},
            Policy.MANUAL: "parked",
        },
        ("Phone",),
    ),
]


@pytest.mark.parametrize(
    ("case", "policy"),
    [(c, p) for c in CASES for p in ALL_POLICIES],
    ids=[f"{c.name}-{p.value}" for c in CASES for p in ALL_POLICIES],
)
def test_every_policy_converges_as_it_says(case: Case, policy: Policy) -> None:
    decision = decide(case.base, case.sf, case.ext, policy)
    assert decision.fields_in_conflict == case.conflicts
    assert all(p is (rules(policy).policy_for(f)) for f, p in decision.decided_by.items())
    expected = case.expect[policy]
    if expected == "parked":
        assert decision.parked
        assert decision.writes == ()
        assert decision.merged is None
        return
    assert not decision.parked
    after_sf = apply(decision.to_salesforce, case.sf)
    after_ext = apply(decision.to_external, case.ext)
    assert after_sf == expected
    assert after_ext == expected
    assert decision.merged == expected
    # Nothing is written to a side that already holds the result.
    if case.sf == expected:
        assert decision.to_salesforce is None
    if case.ext == expected:
        assert decision.to_external is None


def test_the_conflict_names_all_three_values_and_the_winner() -> None:
    decision = decide(BASE, {**BASE, "Name": "S"}, {**BASE, "Name": "E"}, Policy.SALESFORCE_WINS)
    (conflict,) = decision.conflicts
    assert (conflict.base, conflict.salesforce, conflict.external) == ("Acme", "S", "E")
    assert conflict.winner is SF
    assert conflict.policy is Policy.SALESFORCE_WINS


def test_a_delete_against_an_update_lists_the_updated_fields_and_marks_the_deleted_side() -> None:
    decision = decide(BASE, None, {**BASE, "City": "Basel"}, Policy.MANUAL)
    (conflict,) = decision.conflicts
    assert conflict.field == "City"
    assert conflict.salesforce is ABSENT
    assert conflict.external == "Basel"
    assert conflict.winner is None


def test_the_updating_side_wins_by_recreating_the_whole_record() -> None:
    decision = decide(BASE, None, {"City": "Basel"}, Policy.EXTERNAL_WINS)  # a partial update
    assert decision.to_salesforce is not None
    assert decision.to_salesforce.op is WriteOp.CREATE
    assert dict(decision.to_salesforce.values) == {**BASE, "City": "Basel"}


def test_only_changed_fields_are_written() -> None:
    decision = decide(BASE, {**BASE, "Name": "Acme AG"}, BASE, Policy.MANUAL)
    assert decision.to_external is not None
    assert decision.to_external.op is WriteOp.UPDATE
    assert dict(decision.to_external.values) == {"Name": "Acme AG"}
    assert decision.to_salesforce is None


def test_a_partial_version_leaves_the_fields_it_does_not_carry_alone() -> None:
    # A CDC update carries only Name; the external side changed City meanwhile.
    decision = decide(BASE, {"Name": "Acme AG"}, {**BASE, "City": "Basel"}, Policy.MANUAL)
    assert decision.to_salesforce is not None
    assert dict(decision.to_salesforce.values) == {"City": "Basel"}
    assert decision.to_external is not None
    assert dict(decision.to_external.values) == {"Name": "Acme AG"}
    assert decision.merged == {"Name": "Acme AG", "Phone": "1", "City": "Basel"}


def test_per_field_policies_override_the_object_policy() -> None:
    mixed = ConflictRules(policy=Policy.MANUAL, fields={"NAME": Policy.EXTERNAL_WINS})
    decision = resolve(
        BASE,
        Version(side=SF, values={**BASE, "Name": "S"}),
        Version(side=EXT, values={**BASE, "Name": "E"}),
        mixed,
    )
    assert not decision.parked
    assert decision.merged == {**BASE, "Name": "E"}
    assert decision.decided_by == {"Name": Policy.EXTERNAL_WINS}


def test_one_manual_field_parks_the_whole_record() -> None:
    mixed = ConflictRules(policy=Policy.SALESFORCE_WINS, fields={"Phone": Policy.MANUAL})
    decision = resolve(
        BASE,
        Version(side=SF, values={"Name": "S", "Phone": "S", "City": "Bern"}),
        Version(side=EXT, values={"Name": "E", "Phone": "E", "City": "Basel"}),
        mixed,
    )
    assert decision.parked
    assert decision.writes == ()
    winners = {c.field: c.winner for c in decision.conflicts}
    assert winners == {"Name": SF, "Phone": None}


@pytest.mark.parametrize(
    ("sf_at", "ext_at", "winner"),
    [
        (EARLY, LATE, EXT),
        (LATE, EARLY, SF),
        (EARLY, EARLY, SF),  # a tie goes to Salesforce
        (None, EARLY, EXT),  # a known time beats an unknown one
        (EARLY, None, SF),
        (None, None, SF),
    ],
)
def test_newest_wins_and_its_tie_break(
    sf_at: datetime | None, ext_at: datetime | None, winner: Side
) -> None:
    sf = Version(side=SF, values={"Name": "S"}, committed_at=sf_at)
    ext = Version(side=EXT, values={"Name": "E"}, committed_at=ext_at)
    assert newest(sf, ext) is winner
    decision = resolve({"Name": "B"}, sf, ext, ConflictRules(policy=Policy.NEWEST_WINS))
    assert decision.merged == {"Name": "S" if winner is SF else "E"}


def test_resolve_refuses_swapped_sides() -> None:
    sf = Version(side=SF, values={})
    ext = Version(side=EXT, values={})
    with pytest.raises(ValueError, match="Salesforce version, then the external"):
        resolve(None, ext, sf, ConflictRules())


def test_versions_need_aware_times() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Version(side=SF, values={}, committed_at=datetime(2026, 1, 1))


def test_decisions_and_versions_are_immutable() -> None:
    values = {"Name": "S"}
    version = Version(side=SF, values=values)
    values["Name"] = "changed"
    assert version.values == {"Name": "S"}
    decision = decide(BASE, {**BASE, "Name": "S"}, BASE, Policy.MANUAL)
    assert decision.to_external is not None
    with pytest.raises(TypeError):
        decision.to_external.values["Name"] = "x"  # type: ignore[index]


def test_same_treats_nan_as_equal_and_types_by_value() -> None:
    assert same(float("nan"), float("nan"))
    assert same(1, 1.0)
    assert not same("1", 1)
    assert not same(None, "")


# Echoes -------------------------------------------------------------------------------------


def test_a_change_equal_to_the_shadow_is_an_echo() -> None:
    assert is_echo({"Name": "Acme"}, {"Name": "Acme", "City": "Bern"})
    assert not is_echo({"Name": "Acme AG"}, {"Name": "Acme"})
    assert not is_echo({"Name": "Acme", "New": 1}, {"Name": "Acme"})  # a field we never synced
    assert not is_echo({"Name": "Acme"}, None)  # never synced: real


def test_echo_compares_only_the_synced_fields() -> None:
    polled = {"Name": "Acme", "SystemModstamp": "2026-05-01T12:00:00Z"}
    assert is_echo(polled, {"Name": "Acme"}, compare=["Name", "City"])
    assert not is_echo(polled, {"Name": "Acme"})


def test_a_delete_is_an_echo_only_where_nothing_is_left() -> None:
    assert is_echo(None, None)
    assert not is_echo(None, {"Name": "Acme"})


def test_own_origin() -> None:
    assert is_own_origin("sfsync-prod", "sfsync-prod")
    assert not is_own_origin("other-app", "sfsync-prod")
    assert not is_own_origin(None, "sfsync-prod")
    assert not is_own_origin("sfsync-prod", None)


# Properties ---------------------------------------------------------------------------------

FIELDS = ("A", "B", "C")
value = st.one_of(st.none(), st.integers(-2, 2), st.sampled_from(["x", "y", ""]))
record = st.fixed_dictionaries(dict.fromkeys(FIELDS, value))
maybe_record = st.one_of(st.none(), record)
times = st.one_of(st.none(), st.integers(0, 3).map(lambda s: T0 + timedelta(seconds=s)))
policy = st.sampled_from(ALL_POLICIES)
side = st.sampled_from(list(Side))
field_rules = st.builds(
    ConflictRules,
    policy=policy,
    fields=st.dictionaries(st.sampled_from(FIELDS), policy, max_size=2),
    owners=st.dictionaries(st.sampled_from(FIELDS), side, max_size=3),
    default_owner=side,
)


@settings(max_examples=400)
@given(maybe_record, maybe_record, maybe_record, times, times, field_rules)
def test_applying_the_decision_makes_both_sides_equal_unless_parked(
    base: Values | None,
    sf: Values | None,
    ext: Values | None,
    sf_at: datetime | None,
    ext_at: datetime | None,
    rules_: ConflictRules,
) -> None:
    a = Version(side=SF, values=sf, committed_at=sf_at)
    b = Version(side=EXT, values=ext, committed_at=ext_at)
    decision = resolve(base, a, b, rules_)
    again = resolve(base, a, b, rules_)
    assert decision == again  # deterministic
    if decision.parked:
        assert decision.writes == ()
        assert any(c.winner is None for c in decision.conflicts)
        return
    after_sf = apply(decision.to_salesforce, sf)
    after_ext = apply(decision.to_external, ext)
    assert after_sf == after_ext == decision.merged
    # A side that changed nothing since the base, and had no conflict, holds the other's record.
    if sf == base and ext is not None and base is not None:
        assert decision.merged == ext
    # The resolved record is an echo on both sides: the next poll of either is dropped.
    assert is_echo(after_sf, decision.merged)
    assert is_echo(after_ext, decision.merged)


@given(maybe_record, maybe_record, field_rules)
def test_a_change_on_one_side_only_never_conflicts_and_flows_across(
    base: Values | None, sf: Values | None, rules_: ConflictRules
) -> None:
    decision = resolve(base, Version(side=SF, values=sf), Version(side=EXT, values=base), rules_)
    assert decision.conflicts == ()
    assert not decision.parked
    assert decision.to_salesforce is None
    assert apply(decision.to_external, base) == sf


@given(record, st.sets(st.sampled_from(FIELDS)))
def test_any_subset_of_the_shadow_is_an_echo(shadow: Values, names: set[str]) -> None:
    assert is_echo({n: shadow[n] for n in names}, shadow)


@given(record, record)
def test_a_change_that_differs_from_the_shadow_is_not_an_echo(
    shadow: Values, other: Values
) -> None:
    assert is_echo(other, shadow) == all(same(other[f], shadow[f]) for f in FIELDS)
