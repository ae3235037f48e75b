"""Parked conflicts: what each resolution writes."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from sfsync.core.conflicts import ConflictRules, Side, Values, Version, WriteOp
from sfsync.core.merge import apply, resolve
from sfsync.core.review import ParkedConflict, Resolution

AT = datetime(2026, 5, 1, tzinfo=UTC)
BASE = {"Name": "Acme", "Phone": "1", "City": "Bern"}


def park(sf: Values | None, ext: Values | None) -> ParkedConflict:
    a = Version(side=Side.SALESFORCE, values=sf)
    b = Version(side=Side.EXTERNAL, values=ext)
    return ParkedConflict.of(
        sync="two",
        entity="Account",
        key="k",
        base=BASE,
        salesforce=a,
        external=b,
        decision=resolve(BASE, a, b, ConflictRules()),
        at=AT,
    )


# Salesforce renamed and changed the phone; the external side renamed and moved.
CONFLICT = park({**BASE, "Name": "S", "Phone": "2"}, {**BASE, "Name": "E", "City": "Basel"})


@pytest.mark.parametrize(
    ("resolution", "custom", "record"),
    [
        (Resolution.TAKE_SALESFORCE, None, {"Name": "S", "Phone": "2", "City": "Basel"}),
        (Resolution.TAKE_EXTERNAL, None, {"Name": "E", "Phone": "2", "City": "Basel"}),
        (
            Resolution.CUSTOM,
            {"Name": "Acme Holding"},
            {"Name": "Acme Holding", "Phone": "2", "City": "Basel"},
        ),
    ],
)
def test_a_resolution_settles_the_conflict_and_keeps_the_other_changes(
    resolution: Resolution, custom: Values | None, record: Values
) -> None:
    assert CONFLICT.fields == ("Name",)
    decision = CONFLICT.decide(resolution, custom)
    assert decision.merged == record
    assert apply(decision.to_salesforce, CONFLICT.salesforce.values) == record
    assert apply(decision.to_external, CONFLICT.external.values) == record
    resolved = replace(CONFLICT, resolution=resolution, custom=custom or {})
    assert resolved.outcome() == record


def test_custom_values_only_with_the_custom_resolution() -> None:
    with pytest.raises(ValueError, match="custom values go with the custom resolution"):
        CONFLICT.decide(Resolution.CUSTOM)
    with pytest.raises(ValueError, match="custom values go with the custom resolution"):
        CONFLICT.decide(Resolution.TAKE_SALESFORCE, {"Name": "x"})


def test_delete_against_update() -> None:
    conflict = park(None, {**BASE, "City": "Basel"})
    assert conflict.decide(Resolution.TAKE_SALESFORCE).merged is None
    taken = conflict.decide(Resolution.TAKE_EXTERNAL)
    assert taken.to_salesforce is not None
    assert taken.to_salesforce.op is WriteOp.CREATE
    with pytest.raises(ValueError, match="deletes the record"):
        conflict.decide(Resolution.CUSTOM, {"City": "Zug"})
    custom = replace(conflict, custom_base=Side.EXTERNAL)
    assert custom.decide(Resolution.CUSTOM, {"City": "Zug"}).merged == {**BASE, "City": "Zug"}


def test_outcome_needs_a_resolution() -> None:
    with pytest.raises(ValueError, match="not resolved yet"):
        CONFLICT.outcome()


def test_only_parked_decisions_are_parked() -> None:
    a = Version(side=Side.SALESFORCE, values=BASE)
    b = Version(side=Side.EXTERNAL, values=BASE)
    with pytest.raises(ValueError, match="only a parked decision"):
        ParkedConflict.of(
            sync="two",
            entity="Account",
            key="k",
            base=BASE,
            salesforce=a,
            external=b,
            decision=resolve(BASE, a, b, ConflictRules()),
            at=AT,
        )


def test_a_superseded_conflict_has_nothing_to_decide() -> None:
    with pytest.raises(ValueError, match="superseded"):
        CONFLICT.decide(Resolution.SUPERSEDED)
