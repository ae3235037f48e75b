"""A source that listens for outcomes (a SQL change log writing each row's fate) hears every
event's final outcome, once per batch, before the checkpoint moves past it."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from sfsync.core.errors import SyncError
from sfsync.core.events import ChangeEvent
from sfsync.spi.sink import Outcome, OutcomeKind
from sfsync.spi.source import OutcomeListener
from sfsync.testing import MemorySource

from .test_pipeline import SCHEMA, Harness, _rows


class ListeningSource(MemorySource):
    """Records what the runtime tells it, and how many checkpoint saves came before."""

    def __init__(self, harness: Harness) -> None:
        super().__init__({"Account": SCHEMA}, {"Account": _rows(6)}, batch_size=3)
        self.harness = harness
        self.heard: list[tuple[str, OutcomeKind | str]] = []
        self.saved_before: list[int] = []

    async def record_outcomes(
        self, events: Sequence[ChangeEvent], outcomes: Sequence[Outcome | SyncError]
    ) -> int:
        assert len(events) == len(outcomes)
        self.saved_before.append(self.harness.store.saves)
        for event, outcome in zip(events, outcomes, strict=True):
            kind = outcome.kind if isinstance(outcome, Outcome) else type(outcome).__name__
            self.heard.append((event.key, kind))
        return len(events)


@pytest.mark.anyio
async def test_every_final_outcome_is_heard_before_the_checkpoint_moves() -> None:
    h = Harness(rows=6, batch_size=3, reject_keys={"a0004"})
    h.source = listener = ListeningSource(h)
    assert isinstance(listener, OutcomeListener)  # found by its shape
    await h.pipeline().run()
    assert listener.heard == [
        ("a0000", OutcomeKind.APPLIED),
        ("a0001", OutcomeKind.APPLIED),
        ("a0002", OutcomeKind.APPLIED),
        ("a0003", OutcomeKind.APPLIED),
        ("a0004", OutcomeKind.REJECTED),
        ("a0005", OutcomeKind.APPLIED),
    ]
    # Heard before each batch's own checkpoint save: the first save is the position taken
    # before the snapshot, then one save after each batch.
    assert listener.saved_before == [1, 2]
