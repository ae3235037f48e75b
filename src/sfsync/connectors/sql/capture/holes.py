"""Where reading a MariaDB/MySQL change log may stop: holes in the ``seq`` sequence (pure).

A change's ``seq`` is taken when its row changes; its transaction commits later, or rolls
back. A hole (a ``seq`` missing between two visible ones) is therefore a transaction still
open, whose rows must not be passed by, or a rolled-back one, which never fills. A hole is
passed once its owner is known to have ended (``ended``, from ``INNODB_TRX``: see
:mod:`~sfsync.connectors.sql.capture.log`) or after ``timeout`` seconds. Every hole is noted
when first seen, also those past the first, so that holes left by a burst of rollbacks are
passed together rather than one per read.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Hole:
    """A hole first seen at ``seen_at`` (the server's clock) and ``first_seen`` (the reader's
    monotonic clock)."""

    seen_at: Any
    first_seen: float


@dataclass(slots=True)
class Walk:
    """The outcome of walking one read's ``seq`` values.

    Attributes:
        deliver: how many of the values (a prefix) may be delivered.
        watermark: every ``seq`` up to this was delivered or passed.
        blocked: the walk stopped at a hole that is still waited for.
        passed: holes given up on, as ``(first, last)`` ranges.
        holes: the holes known after the walk (pass it to the next walk).
    """

    deliver: int
    watermark: int
    blocked: bool = False
    passed: list[tuple[int, int]] = field(default_factory=list)
    holes: dict[int, Hole] = field(default_factory=dict)


def walk(
    seqs: Sequence[int],
    watermark: int,
    holes: Mapping[int, Hole],
    ended: Collection[int],
    *,
    seen_at: Any,
    monotonic: float,
    timeout: float,
) -> Walk:
    """Walk the ``seq`` values of one read (ascending, all above ``watermark``).

    Args:
        seqs: the values read, in order.
        watermark: where the previous walk left off.
        holes: the holes known before this read, by first missing ``seq``.
        ended: holes (by first ``seq``) whose owners were seen gone *before* this read.
        seen_at: the server's clock just after this read (recorded for new holes).
        monotonic: the reader's clock now.
        timeout: seconds after which a hole is passed without knowing its owner's fate.
    """
    known = dict(holes)
    result = Walk(deliver=0, watermark=watermark)
    previous = watermark
    for index, seq in enumerate(seqs):
        known.pop(seq, None)  # a hole that filled
        if seq > previous + 1:
            start = previous + 1
            hole = known.get(start)
            if result.blocked or hole is None:
                known.setdefault(start, Hole(seen_at, monotonic))
                result.blocked = True
            elif start in ended or monotonic - hole.first_seen >= timeout:
                result.passed.append((start, seq - 1))
                del known[start]
            else:
                result.blocked = True
        previous = seq
        if not result.blocked:
            result.deliver = index + 1
            result.watermark = seq
    result.holes = {s: h for s, h in known.items() if s > result.watermark}
    return result
