"""A model of a two-way sync made of the pure decisions alone: interleaved edits on both sides,
sync rounds that poll both sides, drop echoes, resolve against the shadow and write.

It checks what the runtime will rely on: after a round both sides and the shadow agree (unless
the record is parked), a round with no edits since writes nothing (no ping-pong), and each
conflict was settled by its field's policy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from sfsync.core.conflicts import ConflictRules, Decision, Policy, Side, Values, Version, is_echo
from sfsync.core.merge import apply, resolve
from sfsync.core.review import ParkedConflict, Resolution

T0 = datetime(2026, 5, 1, tzinfo=UTC)
FIELDS = ("A", "B", "C")


@dataclass
class World:
    sf: Values | None
    ext: Values | None
    rules: ConflictRules
    shadow: Values | None = None
    sf_at: datetime = T0
    ext_at: datetime = T0
    tick: int = 0
    writes: int = 0
    parked: ParkedConflict | None = None
    settled: list[tuple[str, Policy, Side | None]] = field(default_factory=list)

    def now(self) -> datetime:
        self.tick += 1
        return T0 + timedelta(seconds=self.tick)

    def held(self, side: Side) -> Values | None:
        return self.sf if side is Side.SALESFORCE else self.ext

    def edit(self, side: Side, values: Values | None) -> None:
        if side is Side.SALESFORCE:
            self.sf, self.sf_at = values, self.now()
        else:
            self.ext, self.ext_at = values, self.now()

    def sync_round(self) -> int:
        """One pass; the number of writes made."""
        before = self.writes
        if self.parked is not None:
            # A person resolves it by taking Salesforce's side, if the versions are unchanged.
            if self.parked.salesforce.values == self.sf and self.parked.external.values == self.ext:
                self._apply(self.parked.decide(Resolution.TAKE_SALESFORCE))
                self.parked = None
                return self.writes - before
            self.parked = None
        if is_echo(self.sf, self.shadow) and is_echo(self.ext, self.shadow):
            return 0  # both polls returned what we last wrote, or nothing changed
        sf = Version(side=Side.SALESFORCE, values=self.sf, committed_at=self.sf_at)
        ext = Version(side=Side.EXTERNAL, values=self.ext, committed_at=self.ext_at)
        decision = resolve(self.shadow, sf, ext, self.rules)
        for c in decision.conflicts:
            self.settled.append((c.field, c.policy, c.winner))
            if c.winner is not None and c.policy is not Policy.NEWEST_WINS:
                expected = {
                    Policy.SALESFORCE_WINS: Side.SALESFORCE,
                    Policy.EXTERNAL_WINS: Side.EXTERNAL,
                    Policy.FIELD_OWNERSHIP: self.rules.owner_of(c.field)
                    if self.sf is not None and self.ext is not None
                    else self.rules.default_owner,
                }[c.policy]
                assert c.winner is expected
        if decision.parked:
            self.parked = ParkedConflict.of(
                sync="s",
                entity="E",
                key="k",
                base=self.shadow,
                salesforce=sf,
                external=ext,
                decision=decision,
                at=self.now(),
            )
            return 0
        if self.sf is not None and self.ext is not None and decision.merged is not None:
            base = self.shadow or {}
            for name in FIELDS:
                s_changed = self.sf[name] != base.get(name, "never")
                e_changed = self.ext[name] != base.get(name, "never")
                # No lost update: a field only one side changed keeps that side's value.
                if s_changed and not e_changed:
                    assert decision.merged[name] == self.sf[name]
                if e_changed and not s_changed:
                    assert decision.merged[name] == self.ext[name]
        self._apply(decision)
        return self.writes - before

    def _apply(self, decision: Decision) -> None:
        if decision.to_salesforce is not None:
            self.sf, self.sf_at = apply(decision.to_salesforce, self.sf), self.now()
            self.writes += 1
        if decision.to_external is not None:
            self.ext, self.ext_at = apply(decision.to_external, self.ext), self.now()
            self.writes += 1
        self.shadow = decision.merged
        assert self.sf == self.ext == self.shadow


value = st.sampled_from([None, 0, 1, "x", "y"])
record = st.fixed_dictionaries(dict.fromkeys(FIELDS, value))
partial_edit = st.dictionaries(st.sampled_from(FIELDS), value, min_size=1)
side = st.sampled_from(list(Side))
policy = st.sampled_from(list(Policy))
rules = st.builds(
    ConflictRules,
    policy=policy,
    fields=st.dictionaries(st.sampled_from(FIELDS), policy, max_size=2),
    owners=st.dictionaries(st.sampled_from(FIELDS), side, max_size=3),
    default_owner=side,
)
# An action: edit fields on a side, delete on a side, re-create on a side, or run a round.
action = st.one_of(
    st.tuples(st.just("edit"), side, partial_edit),
    st.tuples(st.just("delete"), side, st.none()),
    st.tuples(st.just("create"), side, record),
    st.tuples(st.just("round"), st.none(), st.none()),
)


@settings(max_examples=300, deadline=None)
@given(record, rules, st.lists(action, max_size=40))
def test_interleaved_edits_converge_and_never_ping_pong(
    start: Values,
    rules_: ConflictRules,
    actions: list[tuple[str, Side | None, dict[str, object] | None]],
) -> None:
    world = World(sf=start, ext=None, rules=rules_)
    world.sync_round()  # the first run copies the record across
    assert world.sf == world.ext == world.shadow == start
    for kind, where, payload in actions:
        if kind == "round":
            world.sync_round()
            continue
        assert where is not None
        held = world.held(where)
        if kind == "delete":
            world.edit(where, None)
        elif kind == "edit" and held is not None and payload is not None:
            world.edit(where, {**held, **payload})
        elif kind == "create" and held is None and payload is not None:
            world.edit(where, payload)
    # Quiesce: at most two rounds (one may park, the next applies the person's choice)...
    for _ in range(3):
        world.sync_round()
    assert world.parked is None
    assert world.sf == world.ext == world.shadow
    # ...and then nothing moves: our own writes are echoes, not new changes.
    writes = world.writes
    for _ in range(3):
        assert world.sync_round() == 0
    assert world.writes == writes
