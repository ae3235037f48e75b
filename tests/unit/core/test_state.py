from __future__ import annotations

import pytest

from sfsync.core.state import (
    TRANSITIONS,
    IllegalTransitionError,
    PipelineState,
    Trigger,
    allowed_triggers,
    next_state,
)

S, T = PipelineState, Trigger


@pytest.mark.parametrize(
    ("state", "trigger", "expected"),
    [
        (S.CREATED, T.START_FRESH, S.SNAPSHOTTING),
        (S.CREATED, T.START_RESUMED, S.STREAMING),
        (S.SNAPSHOTTING, T.SNAPSHOT_DONE, S.STREAMING),
        (S.STREAMING, T.PAUSE, S.PAUSED),
        (S.PAUSED, T.RESUME, S.STREAMING),
        (S.STREAMING, T.RESNAPSHOT, S.SNAPSHOTTING),
        (S.SNAPSHOTTING, T.STOP, S.STOPPING),
        (S.STREAMING, T.STOP, S.STOPPING),
        (S.PAUSED, T.STOP, S.STOPPING),
        (S.STOPPING, T.DRAINED, S.STOPPED),
        (S.STREAMING, T.FATAL, S.FAILED),
        (S.STOPPING, T.FATAL, S.FAILED),
        (S.FAILED, T.RESTART, S.CREATED),
        (S.STOPPED, T.RESTART, S.CREATED),
    ],
)
def test_legal_transitions(state: PipelineState, trigger: Trigger, expected: PipelineState) -> None:
    assert next_state(state, trigger) is expected


@pytest.mark.parametrize(
    ("state", "trigger"),
    [
        (S.CREATED, T.SNAPSHOT_DONE),
        (S.STREAMING, T.START_FRESH),
        (S.STOPPED, T.RESUME),
        (S.FAILED, T.STOP),
        (S.PAUSED, T.SNAPSHOT_DONE),
        (S.SNAPSHOTTING, T.PAUSE),
    ],
)
def test_illegal_transitions_raise(state: PipelineState, trigger: Trigger) -> None:
    with pytest.raises(IllegalTransitionError, match=state.value):
        next_state(state, trigger)


def test_terminal_states_only_restart() -> None:
    for state in (S.STOPPED, S.FAILED):
        assert state.terminal
        assert allowed_triggers(state) == {T.RESTART}


def test_every_state_is_reachable_from_created() -> None:
    seen = {S.CREATED}
    frontier = [S.CREATED]
    while frontier:
        current = frontier.pop()
        for trigger in allowed_triggers(current):
            nxt = TRANSITIONS[(current, trigger)]
            if nxt not in seen:
                seen.add(nxt)
                frontier.append(nxt)
    assert seen == set(PipelineState)


def test_every_running_state_can_stop_and_fail() -> None:
    for state in (S.SNAPSHOTTING, S.STREAMING, S.PAUSED):
        assert {T.STOP, T.FATAL} <= allowed_triggers(state)
