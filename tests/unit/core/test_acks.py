from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sfsync.core.acks import AckTracker
from sfsync.core.events import Position


def _pos(stream: str, n: int) -> Position:
    return Position(stream, str(n))


def test_in_order_acks_advance_one_by_one() -> None:
    t = AckTracker()
    tickets = [t.track(_pos("s", i)) for i in range(3)]
    assert t.safe_positions() == {}
    assert t.ack(tickets[0])
    assert t.safe_positions() == {"s": _pos("s", 0)}
    t.ack(tickets[1])
    t.ack(tickets[2])
    assert t.safe_positions() == {"s": _pos("s", 2)}
    assert t.idle


def test_out_of_order_ack_waits_for_the_gap() -> None:
    t = AckTracker()
    a, b, c = (t.track(_pos("s", i)) for i in range(3))
    assert not t.ack(c)
    assert not t.ack(b)
    assert t.safe_positions() == {}
    assert t.ack(a)
    assert t.safe_positions() == {"s": _pos("s", 2)}


def test_streams_are_reported_separately() -> None:
    t = AckTracker()
    a = t.track(_pos("x", 1))
    b = t.track(_pos("y", 1))
    c = t.track(_pos("x", 2))
    t.ack(b)
    t.ack(a)
    assert t.safe_positions() == {"x": _pos("x", 1), "y": _pos("y", 1)}
    t.ack(c)
    assert t.safe_positions()["x"] == _pos("x", 2)


def test_committed_positions_are_kept_until_passed() -> None:
    t = AckTracker(committed={"s": _pos("s", 9)})
    ticket = t.track(_pos("s", 10))
    assert t.safe_positions() == {"s": _pos("s", 9)}
    t.ack(ticket)
    assert t.safe_positions() == {"s": _pos("s", 10)}


def test_capacity_signals_backpressure() -> None:
    t = AckTracker(capacity=2)
    a = t.track(_pos("s", 1))
    t.track(_pos("s", 2))
    assert t.full
    t.ack(a)
    assert not t.full
    assert t.in_flight == 1


def test_double_ack_and_unknown_ticket_are_errors() -> None:
    t = AckTracker()
    a = t.track(_pos("s", 1))
    t.ack(a)
    with pytest.raises(KeyError):
        t.ack(a)
    with pytest.raises(KeyError):
        t.ack(42)


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError, match="capacity"):
        AckTracker(capacity=0)


@given(
    st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=60).flatmap(
        lambda streams: st.tuples(st.just(streams), st.permutations(range(len(streams))))
    ),
    st.integers(min_value=0, max_value=60),
)
def test_watermark_never_passes_an_unacked_event(
    case: tuple[list[str], list[int]], stop: int
) -> None:
    """Ack a random prefix of a random order: the safe position of every stream is the last
    event of that stream inside the longest fully-acked prefix of emission order."""
    streams, order = case
    t = AckTracker()
    tickets = [t.track(_pos(s, i)) for i, s in enumerate(streams)]
    acked = set(order[: min(stop, len(order))])
    for i in order[: min(stop, len(order))]:
        t.ack(tickets[i])
    prefix = 0
    while prefix < len(streams) and prefix in acked:
        prefix += 1
    expected = {s: _pos(s, i) for i, s in enumerate(streams[:prefix])}
    assert t.safe_positions() == expected
    assert t.in_flight == len(streams) - prefix
    assert t.idle == (prefix == len(streams))


@given(
    before=st.lists(st.tuples(st.sampled_from("xy"), st.booleans()), max_size=6),
    batch=st.lists(st.sampled_from("xyz"), max_size=8),
)
def test_settling_a_batch_is_tracking_and_acking_each(
    before: list[tuple[str, bool]], batch: list[str]
) -> None:
    # Some events may still be in flight (tracked, maybe not acked) when a batch settles.
    settled, one_by_one = AckTracker(), AckTracker()
    for tracker in (settled, one_by_one):
        for n, (stream, acked) in enumerate(before):
            ticket = tracker.track(_pos(stream, n))
            if acked:
                tracker.ack(ticket)
    positions = [_pos(stream, 100 + n) for n, stream in enumerate(batch)]

    settled.settle(positions)
    for position in positions:
        one_by_one.ack(one_by_one.track(position))

    assert settled.safe_positions() == one_by_one.safe_positions()
    assert settled.in_flight == one_by_one.in_flight
    assert settled.idle == one_by_one.idle
    # And the trackers go on alike.
    assert settled.track(_pos("x", 999)) == one_by_one.track(_pos("x", 999))
