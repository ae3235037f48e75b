"""The public test kit: fakes for the engine's seams and contract suites for implementations.

Production code never imports this package (enforced by import-linter).
"""

from sfsync.testing.contracts import CheckpointStoreContract
from sfsync.testing.fakes import FakeClock, MemoryCheckpointStore

__all__ = ["CheckpointStoreContract", "FakeClock", "MemoryCheckpointStore"]
