"""Process settings for a long-running sync.

A sync allocates many short-lived objects (events, row tuples, decoded payloads) and keeps a
large, long-lived heap (imported modules, schemas, caches). CPython's default collector
thresholds make it scan that long-lived heap again and again as the short-lived objects come
and go; :func:`tune_gc` moves what exists at start-up out of the collector's view and lets
the young generation grow larger before a collection, as the emulator does when it serves.
It also keeps large blocks (result pages of megabytes) in mappings of their own, returned to
the system when freed (:func:`fixed_mmap_threshold`).
"""

from __future__ import annotations

import ctypes
import gc
import platform


def tune_gc() -> None:
    """Freeze the start-up heap and raise the young-generation threshold (idempotent).

    Reference cycles are still collected, only less often; memory held by them is bounded by
    the threshold (tens of thousands of objects).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
    fixed_mmap_threshold()


_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number
_MMAP_THRESHOLD = 128 * 1024


def fixed_mmap_threshold() -> None:
    """On glibc, keep blocks of 128 KiB and more in their own mappings, returned to the system
    when freed.

    glibc raises that threshold as large blocks are freed (up to 32 MiB); after that, the
    transient buffers of a Bulk snapshot (a 50,000-record result page is about 15 MB, held
    compressed, decompressed and joined while it downloads) land in the heap, which cannot
    shrink around longer-lived objects: a 1,000,000-record snapshot into PostgreSQL read in
    50,000-record pages peaked at 283 MB RSS, 265 MB with the threshold fixed. The emulator's
    server does the same for its own reasons (it imports nothing from sfsync, hence the
    second copy there).
    """
    if platform.libc_ver()[0] != "glibc":
        return
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)
    except (OSError, AttributeError):
        pass  # not glibc after all: nothing to tune
