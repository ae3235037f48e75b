"""Holes in a MariaDB change log sequence: never passed while their owner may commit, passed
once it has ended; every committed change delivered once, in order (property-based)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from sfsync.connectors.sql.capture.holes import Hole, walk

FATES = st.lists(st.sampled_from(["committed", "rolled_back", "late"]), min_size=1, max_size=60)


def _visible(fates: list[str], *kinds: str) -> list[int]:
    return [seq for seq, fate in enumerate(fates, start=1) if fate in kinds]


@given(FATES)
def test_nothing_past_an_open_transaction_is_delivered(fates: list[str]) -> None:
    visible = _visible(fates, "committed")
    first = walk(visible, 0, {}, (), seen_at="t0", monotonic=0.0, timeout=300.0)
    delivered = visible[: first.deliver]
    # Delivered: exactly the committed changes before the first one not (yet) visible.
    undecided = [seq for seq, fate in enumerate(fates, start=1) if fate != "committed"]
    limit = undecided[0] if undecided else len(fates) + 1
    assert delivered == [seq for seq in visible if seq < limit]
    assert first.watermark == (delivered[-1] if delivered else 0)
    assert first.blocked == any(seq > limit for seq in visible)


@given(FATES)
def test_every_committed_change_is_delivered_once_in_order(fates: list[str]) -> None:
    visible = _visible(fates, "committed")
    walked = walk(visible, 0, {}, (), seen_at="t0", monotonic=0.0, timeout=300.0)
    delivered = visible[: walked.deliver]
    # The late transactions commit, the others had rolled back: every owner has ended.
    visible = _visible(fates, "committed", "late")
    for _ in range(len(fates) + 2):
        rest = [seq for seq in visible if seq > walked.watermark]
        if not rest:
            break
        walked = walk(
            rest,
            walked.watermark,
            walked.holes,
            set(walked.holes),  # their owners were seen gone before this read
            seen_at="t1",
            monotonic=1.0,
            timeout=300.0,
        )
        delivered += rest[: walked.deliver]
    assert delivered == visible
    assert not walked.holes


def test_a_hole_is_passed_after_the_timeout_when_owners_cannot_be_seen() -> None:
    first = walk([1, 3], 0, {}, (), seen_at=None, monotonic=10.0, timeout=5.0)
    assert (first.deliver, first.watermark, first.blocked) == (1, 1, True)
    assert first.holes == {2: Hole(None, 10.0)}
    early = walk([3], 1, first.holes, (), seen_at=None, monotonic=14.0, timeout=5.0)
    assert (early.deliver, early.blocked) == (0, True)
    late = walk([3], 1, first.holes, (), seen_at=None, monotonic=15.0, timeout=5.0)
    assert (late.deliver, late.watermark, late.passed) == (1, 3, [(2, 2)])


def test_a_hole_that_fills_is_forgotten() -> None:
    first = walk([1, 4], 0, {}, (), seen_at="t0", monotonic=0.0, timeout=300.0)
    assert set(first.holes) == {2}
    filled = walk([2, 3, 4], 1, first.holes, (), seen_at="t1", monotonic=1.0, timeout=300.0)
    assert (filled.deliver, filled.watermark, filled.holes) == (3, 4, {})
