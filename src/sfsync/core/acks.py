"""Which position is safe to checkpoint, when outcomes arrive out of order.

Events are tracked in the order the source emitted them. Sinks may finish them in any order
(parallel keys, retries, dead letters). A checkpoint may only move past an event once that
event, and every event emitted before it, has a final outcome: otherwise a crash would skip
the unfinished one on restart. This is Benthos's capped checkpoint; the cap gives backpressure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from operator import attrgetter
from types import MappingProxyType

from sfsync.core.events import Position

_STREAM = attrgetter("stream")


class AckTracker:
    """Tracks in-flight events and yields the highest safe position per stream.

    Usage: ``ticket = tracker.track(event.position)`` when an event leaves the source;
    ``tracker.ack(ticket)`` when its outcome is final (written, dead-lettered or parked);
    ``tracker.safe_positions()`` when it is time to save a checkpoint.

    Args:
        capacity: how many events may be in flight at once; :attr:`full` tells the reader
            to wait. ``None`` means unbounded.
        committed: positions already checkpointed; they are reported until passed.
    """

    __slots__ = ("_acked", "_capacity", "_low", "_next", "_pending", "_safe")

    def __init__(
        self, *, capacity: int | None = None, committed: Mapping[str, Position] | None = None
    ) -> None:
        if capacity is not None and capacity < 1:
            raise ValueError("capacity must be at least 1")
        self._capacity = capacity
        self._next = 0  # ticket handed to the next tracked event
        self._low = 0  # lowest ticket without a final outcome
        self._pending: dict[int, Position] = {}  # ticket -> position, not yet below the watermark
        self._acked: set[int] = set()  # acked tickets above the watermark
        self._safe: dict[str, Position] = dict(committed or {})

    def track(self, position: Position) -> int:
        """Register an emitted event; returns the ticket to :meth:`ack` it with."""
        ticket = self._next
        self._next += 1
        self._pending[ticket] = position
        return ticket

    def ack(self, ticket: int) -> bool:
        """Mark the event with ``ticket`` as final. Returns True if the safe positions moved.

        Raises:
            KeyError: the ticket was never issued or was acked before.
        """
        if ticket not in self._pending or ticket in self._acked:
            raise KeyError(f"ticket {ticket} is not in flight")
        self._acked.add(ticket)
        if ticket != self._low:
            return False
        while self._low in self._acked:
            self._acked.discard(self._low)
            position = self._pending.pop(self._low)
            self._safe[position.stream] = position
            self._low += 1
        return True

    def settle(self, positions: Sequence[Position]) -> None:
        """Track events whose outcomes are all final already, in emission order: the same
        as :meth:`track` then :meth:`ack` for each, in one step (a batch of thousands of
        events costs one dictionary update, not two calls per event)."""
        if self._low != self._next:
            # Events still in flight: these wait behind them, one by one.
            for position in positions:
                self.ack(self.track(position))
            return
        # Nothing in flight: every position is safe at once, the last of each stream wins.
        self._safe.update(zip(map(_STREAM, positions), positions, strict=True))
        self._next += len(positions)
        self._low = self._next

    def safe_positions(self) -> Mapping[str, Position]:
        """Per stream, the newest position below which every event is final."""
        return MappingProxyType(dict(self._safe))

    @property
    def in_flight(self) -> int:
        """Events tracked but not yet below the watermark (acked or not)."""
        return self._next - self._low

    @property
    def full(self) -> bool:
        """True when ``capacity`` events are in flight: stop reading until some are acked."""
        return self._capacity is not None and self.in_flight >= self._capacity

    @property
    def idle(self) -> bool:
        """True when every tracked event is final."""
        return self._low == self._next
