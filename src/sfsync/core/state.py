"""The pipeline's lifecycle as a transition table.

:class:`PipelineState` is what the pipeline reports. What happens to it (a start, a finished
snapshot, a stop request, a fatal error) arrives as a :class:`Trigger`, and :func:`next_state`
says where that leads. Any pair missing from :data:`TRANSITIONS` is illegal.

Retrying a transient failure is not a state: the executor retries a call in place and the
pipeline's status reports it; only a failure that gives up fires ``FATAL``. Pausing a snapshot
resumes into streaming only after the snapshot's own checkpoint says it completed, so the
runtime restarts a paused snapshot through ``RESTART`` + ``START_FRESH``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType


class PipelineState(enum.Enum):
    """What the pipeline is doing."""

    CREATED = "created"
    SNAPSHOTTING = "snapshotting"
    STREAMING = "streaming"
    PAUSED = "paused"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"

    @property
    def terminal(self) -> bool:
        """No trigger leads out of a terminal state except an explicit restart."""
        return self in (PipelineState.STOPPED, PipelineState.FAILED)


class Trigger(enum.Enum):
    """Something that happened to the pipeline."""

    START_FRESH = "start_fresh"  # no checkpoint, or the snapshot did not finish
    START_RESUMED = "start_resumed"  # the checkpoint says the snapshot is complete
    SNAPSHOT_DONE = "snapshot_done"
    PAUSE = "pause"
    RESUME = "resume"
    RESNAPSHOT = "resnapshot"  # a stream gap that only a new snapshot heals
    STOP = "stop"
    DRAINED = "drained"  # in-flight work is final and the checkpoint saved
    FATAL = "fatal"
    RESTART = "restart"


_S = PipelineState
_T = Trigger
_RUNNING = (_S.SNAPSHOTTING, _S.STREAMING, _S.PAUSED)

_table: dict[tuple[PipelineState, Trigger], PipelineState] = {
    (_S.CREATED, _T.START_FRESH): _S.SNAPSHOTTING,
    (_S.CREATED, _T.START_RESUMED): _S.STREAMING,
    (_S.CREATED, _T.STOP): _S.STOPPED,
    (_S.CREATED, _T.FATAL): _S.FAILED,
    (_S.SNAPSHOTTING, _T.SNAPSHOT_DONE): _S.STREAMING,
    (_S.STREAMING, _T.PAUSE): _S.PAUSED,
    (_S.STREAMING, _T.RESNAPSHOT): _S.SNAPSHOTTING,
    (_S.PAUSED, _T.RESUME): _S.STREAMING,
    (_S.STOPPING, _T.DRAINED): _S.STOPPED,
    (_S.STOPPING, _T.FATAL): _S.FAILED,
    (_S.STOPPED, _T.RESTART): _S.CREATED,
    (_S.FAILED, _T.RESTART): _S.CREATED,
}
for _state in _RUNNING:
    _table[(_state, _T.STOP)] = _S.STOPPING
    _table[(_state, _T.FATAL)] = _S.FAILED

TRANSITIONS: Mapping[tuple[PipelineState, Trigger], PipelineState] = MappingProxyType(_table)


class IllegalTransitionError(ValueError):
    """A trigger arrived in a state that has no transition for it: a bug in the runtime."""


def next_state(state: PipelineState, trigger: Trigger) -> PipelineState:
    """The state that ``trigger`` leads to from ``state``.

    Raises:
        IllegalTransitionError: the table has no such transition.
    """
    try:
        return TRANSITIONS[(state, trigger)]
    except KeyError:
        raise IllegalTransitionError(
            f"no transition from {state.value} on {trigger.value}"
        ) from None


def allowed_triggers(state: PipelineState) -> frozenset[Trigger]:
    """Every trigger that is legal in ``state``."""
    return frozenset(t for (s, t) in TRANSITIONS if s is state)
