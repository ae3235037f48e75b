"""The public test kit: fakes for the engine's seams and contract suites for implementations.

Production code never imports this package (enforced by import-linter).
"""

from sfsync.testing.contracts import CheckpointStoreContract
from sfsync.testing.fakes import FakeClock, MemoryCheckpointStore
from sfsync.testing.memory import (
    CHANGE_STREAM,
    MemoryDeadLetterStore,
    MemorySink,
    MemorySource,
)

__all__ = [
    "CHANGE_STREAM",
    "CheckpointStoreContract",
    "FakeClock",
    "MemoryCheckpointStore",
    "MemoryDeadLetterStore",
    "MemorySink",
    "MemorySource",
]
