"""Process settings for a long-running sync.

A sync allocates many short-lived objects (events, row tuples, decoded payloads) and keeps a
large, long-lived heap (imported modules, schemas, caches). CPython's default collector
thresholds make it scan that long-lived heap again and again as the short-lived objects come
and go; :func:`tune_gc` moves what exists at start-up out of the collector's view and lets
the young generation grow larger before a collection, as the emulator does when it serves.
"""

from __future__ import annotations

import gc


def tune_gc() -> None:
    """Freeze the start-up heap and raise the young-generation threshold (idempotent).

    Reference cycles are still collected, only less often; memory held by them is bounded by
    the threshold (tens of thousands of objects).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
