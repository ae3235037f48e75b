"""First-run matching of records both sides already hold."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sfsync.core.conflicts import Values
from sfsync.core.matching import Ambiguity, Pair, match_records, normalise


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        (" Ann@Example.COM ", "ann@example.com"),
        ("Ann  \t Lee", "ann lee"),
        ("\uff21\uff22\uff23", "abc"),  # full-width letters (NFKC)
        ("Straße", "strasse"),  # case folding, not just lower()
        (42, "42"),
        (42.0, "42"),
        (Decimal("42.00"), "42"),
        (Decimal("1.50"), "1.5"),
        ("042", "042"),
        ("", None),
        ("   ", None),
        (None, None),
        (True, None),
        (float("nan"), None),
        (float("inf"), None),
    ],
)
def test_normalise(raw: object, normal: str | None) -> None:
    assert normalise(raw) == normal


def test_pairs_by_the_first_key_then_the_next() -> None:
    sf: dict[str, Values] = {
        "001A": {"Ext__c": "E1", "Email": "a@x.com"},
        "001B": {"Ext__c": None, "Email": "B@X.com "},
        "001C": {"Ext__c": None, "Email": "c@x.com"},
    }
    db: dict[str, Values] = {
        "1": {"Ext__c": "e1", "Email": "other@x.com"},
        "2": {"Ext__c": None, "Email": "b@x.com"},
        "3": {"Ext__c": None, "Email": "z@x.com"},
    }
    result = match_records(sf, db, ["Ext__c", "Email"])
    assert result.pairs == (
        Pair("001A", "1", "Ext__c", "e1"),
        Pair("001B", "2", "Email", "b@x.com"),
    )
    assert result.left_only == ("001C",)
    assert result.right_only == ("3",)
    assert result.ambiguous == ()


def test_duplicates_are_reported_never_merged() -> None:
    sf = {"001A": {"Email": "a@x.com"}, "001B": {"Email": "A@x.com"}, "001C": {"Email": "c@x.com"}}
    db = {"1": {"Email": "a@x.com"}, "2": {"Email": "c@x.com"}}
    result = match_records(sf, db, ["Email"])
    assert result.ambiguous == (Ambiguity("Email", "a@x.com", ("001A", "001B"), ("1",)),)
    assert result.pairs == (Pair("001C", "2", "Email", "c@x.com"),)
    assert result.left_only == ()
    assert result.right_only == ()


def test_an_ambiguous_record_is_not_matched_by_a_later_key() -> None:
    sf = {"001A": {"Email": "a@x.com", "Phone": "1"}, "001B": {"Email": "a@x.com", "Phone": "2"}}
    db = {"1": {"Email": "a@x.com", "Phone": "1"}}
    result = match_records(sf, db, ["Email", "Phone"])
    assert result.pairs == ()
    assert len(result.ambiguous) == 1


def test_duplicates_on_one_side_only_are_new_records() -> None:
    sf = {"001A": {"Email": "a@x.com"}, "001B": {"Email": "a@x.com"}}
    result = match_records(sf, {}, ["Email"])
    assert result.left_only == ("001A", "001B")
    assert result.ambiguous == ()


def test_a_key_is_needed() -> None:
    with pytest.raises(ValueError, match="at least one key"):
        match_records({}, {}, [])


emails = st.sampled_from(["a@x.com", "A@X.com", "b@x.com", " b@x.com", "c@x.com", "", None])
ids = st.sampled_from(["E1", "e1", "E2", None])
rec = st.fixed_dictionaries({"Email": emails, "Ext": ids})
side = st.dictionaries(st.text("0123456789abc", min_size=1, max_size=4), rec, max_size=8)


@given(side, side, st.randoms())
def test_every_record_lands_in_exactly_one_place_whatever_the_order(
    left: dict[str, Values], right: dict[str, Values], rnd: random.Random
) -> None:
    keys = ["Ext", "Email"]
    result = match_records(left, right, keys)
    placed_left = [p.left for p in result.pairs] + list(result.left_only)
    placed_right = [p.right for p in result.pairs] + list(result.right_only)
    for group in result.ambiguous:
        placed_left += group.left
        placed_right += group.right
        assert len(group.left) > 1 or len(group.right) > 1
    assert sorted(placed_left) == sorted(left)
    assert sorted(placed_right) == sorted(right)
    for pair in result.pairs:
        assert normalise(left[pair.left][pair.key]) == pair.value
        assert normalise(right[pair.right][pair.key]) == pair.value
    shuffled_left = dict(rnd.sample(list(left.items()), len(left)))
    shuffled_right = dict(rnd.sample(list(right.items()), len(right)))
    assert match_records(shuffled_left, shuffled_right, keys) == result


def test_first_run_plan_pairs_gives_keys_and_reports_what_it_leaves() -> None:
    from sfsync.core.matching import plan_first_run

    salesforce = {
        "001A": {"Key": "k1", "Email": "a@x.org"},  # paired by key
        "001B": {"Key": None, "Email": "B@x.org "},  # keyless, paired by email: gets k2
        "001C": {"Key": "k9", "Email": "c@x.org"},  # pairs k3 by email, keys differ: left
        "001D": {"Key": "k4", "Email": None},  # Salesforce only
        "001E": {"Key": None, "Email": "nobody@x.org"},  # keyless and alone: reported
        "001F": {"Key": None, "Email": "twin@x.org"},  # ambiguous
    }
    external = {
        "k1": {"Key": "k1", "Email": "a@x.org"},
        "k2": {"Key": "k2", "Email": "b@x.org"},
        "k3": {"Key": "k3", "Email": "c@x.org"},
        "k5": {"Key": "k5", "Email": "e@x.org"},  # external only
        "k6": {"Key": "k6", "Email": "twin@x.org"},
        "k7": {"Key": "k7", "Email": "twin@x.org"},
    }
    plan = plan_first_run("Contact", "Key", salesforce, external, ["Email"])
    assert sorted(plan.keys) == ["k1", "k2", "k4", "k5"]
    assert plan.give_keys == {"001B": "k2"}
    text = " | ".join(plan.notices)
    assert "001C" in text
    assert "different keys" in text
    assert "share Email = 'twin@x.org'" in text
    assert "1 Salesforce records have no Key" in text
