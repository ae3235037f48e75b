"""The pure domain: value types, errors and decisions. Standard library only, no I/O."""

from sfsync.core.acks import AckTracker
from sfsync.core.checkpoint import Checkpoint, SnapshotProgress, SnapshotStatus
from sfsync.core.errors import (
    ConfigError,
    ConflictError,
    FatalError,
    RateLimitError,
    RetryableError,
    SkippableError,
    SyncError,
)
from sfsync.core.events import Batch, ChangeEvent, Operation, Position
from sfsync.core.retry import GiveUp, RetryPolicy, Wait
from sfsync.core.state import PipelineState, Trigger, next_state

__all__ = [
    "AckTracker",
    "Batch",
    "ChangeEvent",
    "Checkpoint",
    "ConfigError",
    "ConflictError",
    "FatalError",
    "GiveUp",
    "Operation",
    "PipelineState",
    "Position",
    "RateLimitError",
    "RetryPolicy",
    "RetryableError",
    "SkippableError",
    "SnapshotProgress",
    "SnapshotStatus",
    "SyncError",
    "Trigger",
    "Wait",
    "next_state",
]
