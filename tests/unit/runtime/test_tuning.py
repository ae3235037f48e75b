"""The garbage collector settings of a long-running sync."""

from __future__ import annotations

import gc

from sfsync.runtime.tuning import tune_gc


def test_tune_gc_freezes_the_startup_heap_and_raises_the_young_threshold() -> None:
    saved = gc.get_threshold()
    try:
        tune_gc()
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == (50_000, 20, 20)
        tune_gc()  # idempotent
        assert gc.get_threshold() == (50_000, 20, 20)
    finally:
        gc.unfreeze()
        gc.set_threshold(*saved)
