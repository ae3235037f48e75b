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
