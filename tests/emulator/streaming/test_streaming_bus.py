"""The event bus on its own: replay ids, channels, retention on the org clock, waking."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest

from sfsync.emulator.clock import OrgClock
from sfsync.emulator.streaming.bus import (
    EventBus,
    channel_matches,
    replay_bytes,
    replay_from_bytes,
)
from sfsync.emulator.streaming.events import PlatformEventBody


def _body(n: int) -> PlatformEventBody:
    return PlatformEventBody("Printer__e", f"uuid-{n}", {"Model__c": str(n)})


@pytest.fixture
def clock() -> OrgClock:
    return OrgClock(frozen_at=datetime(2024, 1, 15, 9, 30, tzinfo=UTC))


def test_replay_ids_grow_across_channels_and_channels_filter(clock: OrgClock) -> None:
    bus = EventBus(clock)
    a = bus.publish("/data/AccountChangeEvent", _body(1))
    e = bus.publish("/event/Printer__e", _body(2))
    c = bus.publish("/data/ContactChangeEvent", _body(3))
    assert [a.replay_id, e.replay_id, c.replay_id] == [1, 2, 3]
    assert [x.replay_id for x in bus.events_after(0, "/data/ChangeEvents")] == [1, 3]
    assert [x.replay_id for x in bus.events_after(1, "/data/ChangeEvents")] == [3]
    assert [x.replay_id for x in bus.events_after(0, "/event/Printer__e")] == [2]
    assert bus.events_after(0, "/data/ChangeEvents", limit=1) == [a]
    assert not channel_matches("/data/ChangeEvents", "/event/Printer__e")


def test_retention_purges_on_the_org_clock(clock: OrgClock) -> None:
    bus = EventBus(clock, retention_seconds=3600)
    bus.publish("/event/Printer__e", _body(1))
    clock.advance(1800)
    bus.publish("/event/Printer__e", _body(2))
    assert bus.is_valid_cursor(0)
    assert bus.earliest_cursor() == 0
    clock.advance(1801)  # the first event is now older than an hour
    assert [x.replay_id for x in bus.events_after(0, "/event/Printer__e")] == [2]
    assert bus.earliest_cursor() == 1
    assert not bus.is_valid_cursor(0)
    assert bus.is_valid_cursor(1)
    assert bus.is_valid_cursor(2)
    assert not bus.is_valid_cursor(3)  # never given out
    clock.advance(3600)
    assert bus.events_after(0, "/event/Printer__e") == []
    assert bus.latest_id == 2
    assert bus.earliest_cursor() == 2


def test_replay_bytes_are_eight_byte_big_endian() -> None:
    assert replay_bytes(258) == b"\x00\x00\x00\x00\x00\x00\x01\x02"
    assert replay_from_bytes(replay_bytes(2**40 + 7)) == 2**40 + 7
    assert replay_from_bytes(b"\x01\x02") is None


def test_waiters_and_watchers_wake_on_publish(clock: OrgClock) -> None:
    bus = EventBus(clock)
    woken: list[int] = []
    stop = bus.watch(lambda: woken.append(1))
    timer = threading.Timer(0.2, lambda: bus.publish("/event/Printer__e", _body(1)))
    started = time.monotonic()
    timer.start()
    found = bus.wait_after(0, "/event/Printer__e", timeout=10)
    assert [x.replay_id for x in found] == [1]
    assert time.monotonic() - started < 5
    assert woken == [1]
    stop()
    bus.publish("/event/Printer__e", _body(2))
    assert woken == [1]
    assert bus.wait_after(2, "/event/Printer__e", timeout=0.05) == []


def test_concurrent_publishers_get_distinct_ordered_ids(clock: OrgClock) -> None:
    bus = EventBus(clock)
    per_thread = 200

    def publish_many(tag: int) -> None:
        for n in range(per_thread):
            bus.publish(f"/event/T{tag}__e", _body(n))

    threads = [threading.Thread(target=publish_many, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ids = [e.replay_id for t in range(4) for e in bus.events_after(0, f"/event/T{t}__e")]
    assert sorted(ids) == list(range(1, 4 * per_thread + 1))
    for t in range(4):
        mine = [e.replay_id for e in bus.events_after(0, f"/event/T{t}__e")]
        assert mine == sorted(mine)
        assert [e.body.values["Model__c"] for e in bus.events_after(0, f"/event/T{t}__e")] == [
            str(n) for n in range(per_thread)
        ]
