"""The event bus: one append-only, time-bounded log that every streaming API reads.

Salesforce keeps change events and high-volume platform events for **72 hours** and lets a
subscriber resume from any retained replay id (reference section 5.2). The emulator keeps one
log for the whole org: every published event gets the next integer replay id (so ids are
monotonic on every channel, with gaps, as on Salesforce) and remembers its channel:

* change events: ``/data/<Entity>ChangeEvent`` or ``/data/<Base>__ChangeEvent``; the
  multiplexed ``/data/ChangeEvents`` channel is a view over all of them;
* platform events: ``/event/<Name>__e``.

CometD shows replay ids as these integers; the Pub/Sub API as 8-byte big-endian bytes (what
community clients assume, section 6.4).

Retention is measured on the org clock (tests move it through the admin API); events older
than the window are dropped whenever the log is touched. A replay id is *valid* for resuming
while it is not older than the oldest retained event (or it is the id just before it), and not
newer than the newest one.

Memory: an event is retained packed (:func:`~sfsync.emulator.streaming.events.pack`), as one
flat tuple ``(channel, published_at, *packed body)``; its replay id is its position (ids are
consecutive in the log). :class:`BusEvent` objects are made when events are read.

Thread safety: one lock guards the log. Waiters are woken without polling: threads block on
:meth:`EventBus.wait_after`; event loops register a callback with :meth:`EventBus.watch` (called
on the publishing thread, so it must only hand over, e.g. ``loop.call_soon_threadsafe``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sfsync.emulator.clock import OrgClock
from sfsync.emulator.streaming.events import EventBody, Packed, pack, unpack

ALL_CHANGE_EVENTS = "/data/ChangeEvents"
DEFAULT_RETENTION_SECONDS = 72 * 3600.0


@dataclass(frozen=True, slots=True)
class BusEvent:
    """One stored event: its replay id, channel, publication time (org clock, seconds) and
    transport-neutral content (rendered per API by the CometD and Pub/Sub layers)."""

    replay_id: int
    channel: str
    published_at: float
    body: EventBody


def channel_matches(subscription: str, channel: str) -> bool:
    """Whether an event on ``channel`` is delivered to a subscriber of ``subscription``."""
    if subscription == channel:
        return True
    return subscription == ALL_CHANGE_EVENTS and channel.startswith("/data/")


def replay_bytes(replay_id: int) -> bytes:
    """The Pub/Sub form of a replay id: 8 bytes, big-endian unsigned."""
    return replay_id.to_bytes(8, "big", signed=False)


def replay_from_bytes(raw: bytes) -> int | None:
    """Parse a Pub/Sub replay id; ``None`` when it is not 8 bytes (corrupted)."""
    if len(raw) != 8:
        return None
    return int.from_bytes(raw, "big", signed=False)


class EventBus:
    """The org's event log. See the module docstring for the contract."""

    def __init__(
        self, clock: OrgClock, *, retention_seconds: float = DEFAULT_RETENTION_SECONDS
    ) -> None:
        self._clock = clock
        self.retention_seconds = retention_seconds
        self._cond = threading.Condition()
        # (channel, published_at, *packed body); the replay id of _log[i] is _first + i.
        self._log: list[Packed] = []
        self._first = 1
        self._last_id = 0
        # The id before the oldest retained event: replaying "after" it means "all retained".
        self._floor = 0
        self._watchers: list[Callable[[], None]] = []

    # ----------------------------------------------------------------------------- writing

    def publish(self, channel: str, body: EventBody) -> BusEvent:
        """Append one event and wake every waiter; returns it with its replay id."""
        return self.publish_many([(channel, body)])[0]

    def publish_many(self, items: Sequence[tuple[str, EventBody]]) -> list[BusEvent]:
        """Append several events atomically (no reader sees only part of them)."""
        now = self._clock.time()
        first = self._append([(channel, now, *pack(body)) for channel, body in items], now)
        return [BusEvent(first + n, channel, now, body) for n, (channel, body) in enumerate(items)]

    def publish_packed(self, items: Sequence[tuple[str, Packed]]) -> int:
        """:meth:`publish_many` for bodies already packed (the CDC write path); returns the
        replay id of the first."""
        now = self._clock.time()
        return self._append([(channel, now, *packed) for channel, packed in items], now)

    def _append(self, entries: list[Packed], now: float) -> int:
        with self._cond:
            self._purge(now)
            first = self._last_id + 1
            self._log.extend(entries)
            self._last_id += len(entries)
            self._cond.notify_all()
            watchers = list(self._watchers)
        for wake in watchers:
            wake()
        return first

    def clear(self) -> None:
        """Forget every event (ids keep growing, as they never repeat on Salesforce)."""
        with self._cond:
            self._log.clear()
            self._first = self._last_id + 1
            self._floor = self._last_id
            self._cond.notify_all()

    # ----------------------------------------------------------------------------- reading

    @property
    def latest_id(self) -> int:
        """The newest replay id ever given out (0 before the first event)."""
        with self._cond:
            return self._last_id

    def earliest_cursor(self) -> int:
        """A cursor before the oldest retained event (``EARLIEST`` / CometD ``-2``)."""
        with self._cond:
            self._purge(self._clock.time())
            return self._floor

    def is_valid_cursor(self, replay_id: int) -> bool:
        """Whether a subscriber may resume after ``replay_id`` (not expired, not in the future)."""
        with self._cond:
            self._purge(self._clock.time())
            return self._floor <= replay_id <= self._last_id

    def retained(self, subscription: str) -> int:
        """How many retained events ``subscription`` would receive from the oldest on."""
        with self._cond:
            self._purge(self._clock.time())
            return sum(1 for entry in self._log if channel_matches(subscription, entry[0]))

    def events_after(
        self, cursor: int, subscription: str, limit: int | None = None
    ) -> list[BusEvent]:
        """Retained events newer than ``cursor`` on ``subscription``, oldest first."""
        return self.read_after(cursor, subscription, limit)[0]

    def read_after(
        self, cursor: int, subscription: str, limit: int | None = None
    ) -> tuple[list[BusEvent], int]:
        """Like :meth:`events_after`, plus the newest replay id at the moment of the read.

        When no event came back, every event up to that id is known not to match: a
        subscriber may move its position there (keepalives). Reading the id separately, after
        the lock is released, could skip an event committed in between.
        """
        with self._cond:
            self._purge(self._clock.time())
            return self._scan(cursor, subscription, limit), self._last_id

    def wait_after(
        self, cursor: int, subscription: str, timeout: float, limit: int | None = None
    ) -> list[BusEvent]:
        """Like :meth:`events_after`, but block up to ``timeout`` seconds until one exists."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                self._purge(self._clock.time())
                found = self._scan(cursor, subscription, limit)
                remaining = deadline - time.monotonic()
                if found or remaining <= 0:
                    return found
                self._cond.wait(remaining)

    def watch(self, wake: Callable[[], None]) -> Callable[[], None]:
        """Call ``wake()`` after every publish; returns a function that stops it."""
        with self._cond:
            self._watchers.append(wake)

        def stop() -> None:
            with self._cond:
                if wake in self._watchers:
                    self._watchers.remove(wake)

        return stop

    def wake_all(self) -> None:
        """Wake blocked waiters and watchers (e.g. on shutdown) without publishing."""
        with self._cond:
            self._cond.notify_all()
            watchers = list(self._watchers)
        for wake in watchers:
            wake()

    # ----------------------------------------------------------------------------- internals

    def _scan(self, cursor: int, subscription: str, limit: int | None) -> list[BusEvent]:
        log = self._log
        first = self._first
        out: list[BusEvent] = []
        # By index from the cursor's place: ids are consecutive from ``first``.
        for index in range(max(0, cursor - first + 1), len(log)):
            entry = log[index]
            if channel_matches(subscription, entry[0]):
                out.append(BusEvent(first + index, entry[0], entry[1], unpack(entry, 2)))
                if limit is not None and len(out) >= limit:
                    break
        return out

    def _purge(self, now: float) -> None:
        horizon = now - self.retention_seconds
        log = self._log
        drop = 0
        # From the oldest while expired (each event is looked at once when it goes).
        while drop < len(log) and log[drop][1] < horizon:
            drop += 1
        if drop:
            self._floor = self._first + drop - 1
            self._first += drop
            del log[:drop]
