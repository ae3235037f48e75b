from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from sfsync.core.events import Batch, ChangeEvent, Operation, PageEvents, Position, RecordPage

NOW = datetime(2026, 1, 1, tzinfo=UTC)
POS = Position("sf:Account", "1")


def _event(**overrides: object) -> ChangeEvent:
    values: dict[str, object] = {
        "entity": "Account",
        "key": "001000000000001AAA",
        "op": Operation.UPDATE,
        "after": {"Name": "Acme"},
        "position": POS,
        "committed_at": NOW,
    }
    values.update(overrides)
    return ChangeEvent(**values)  # type: ignore[arg-type]


def test_events_are_immutable_including_their_values() -> None:
    source = {"Name": "Acme"}
    event = _event(after=source)
    source["Name"] = "Changed"
    assert event.after == {"Name": "Acme"}
    with pytest.raises(TypeError):
        event.after["Name"] = "x"  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.key = "other"  # type: ignore[misc]


def test_replace_makes_a_new_event() -> None:
    event = _event()
    renamed = dataclasses.replace(event, entity="accounts")
    assert renamed.entity == "accounts"
    assert event.entity == "Account"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"entity": ""}, "entity"),
        ({"key": ""}, "empty key"),
        ({"committed_at": datetime(2026, 1, 1)}, "timezone"),
        ({"op": Operation.DELETE}, "DELETE"),
        ({"op": Operation.CREATE, "after": None}, "CREATE"),
    ],
)
def test_invalid_events_are_refused(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _event(**overrides)


def test_delete_without_values_is_fine() -> None:
    event = _event(op=Operation.DELETE, after=None)
    assert event.op.removes
    assert event.fields_changed == frozenset()


def test_fields_changed_prefers_the_explicit_set() -> None:
    assert _event(after={"A": 1, "B": 2}).fields_changed == {"A", "B"}
    assert _event(after={"A": 1, "B": 2}, changed=frozenset({"A"})).fields_changed == {"A"}


def test_batch_is_an_ordered_tuple() -> None:
    a = _event(key="1")
    b = _event(key="2", position=Position("sf:Contact", "9"), entity="Contact")
    batch = Batch.of([a, b])
    assert list(batch) == [a, b]
    assert len(batch) == 2
    assert batch.last_position == Position("sf:Contact", "9")
    assert batch.entities() == {"Account", "Contact"}
    assert Batch.of([]).last_position is None


def _page(count: int, parsed: list[ChangeEvent]) -> RecordPage:
    calls.append(1)
    return RecordPage(
        entity="Account",
        columns=("Id", "Name"),
        csv=b'"Id","Name"\n' + b"".join(b'"%d","n"\n' % i for i in range(count)),
        count=count,
        position=Position("snapshot:Account", f"{count - 1}"),
        parse=lambda: (calls.append(2), parsed)[1],
    )


calls: list[int] = []


def test_a_page_batch_is_counted_and_checkpointed_without_parsing() -> None:
    calls.clear()
    events = [_event(key=str(i), position=Position("snapshot:Account", str(i))) for i in range(3)]
    batch = Batch.of_page(_page(3, events))
    assert len(batch) == 3
    assert bool(batch.events)
    assert batch.last_position == Position("snapshot:Account", "2")
    assert batch.positions() == [Position("snapshot:Account", "2")]
    assert batch.entities() == frozenset({"Account"})
    assert isinstance(batch.events, PageEvents)
    assert not batch.events.parsed
    assert calls == [1]  # the page was built, never parsed


def test_a_page_batchs_events_are_parsed_once_on_first_use() -> None:
    calls.clear()
    events = [_event(key=str(i)) for i in range(3)]
    batch = Batch.of_page(_page(3, events))
    assert [e.key for e in batch] == ["0", "1", "2"]
    assert batch.events[1].key == "1"
    assert list(batch.events[1:]) == events[1:]
    assert calls == [1, 2]
    assert batch.events == tuple(events)


def test_a_page_whose_parse_disagrees_with_its_count_is_refused() -> None:
    batch = Batch.of_page(_page(4, [_event()]))
    assert len(batch) == 4
    with pytest.raises(ValueError, match="holds 1 records, its source counted 4"):
        list(batch)
