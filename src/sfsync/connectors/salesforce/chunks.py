"""Splitting a large object's snapshot into Id ranges, sized from the density observed.

A Bulk API 2.0 query job is rendered completely on the server before its first result page
can be read, so a snapshot read as one job idles while the org renders a million rows, and
the org idles while the client applies them. Read as consecutive Id ranges, one job each, the
two overlap: while the sink applies one range, the org renders the next (Salesforce's own PK
chunking splits by Id ranges for the same reason).

Ids as numbers
    The 15-character Id is a base-62 number whose digits ``0-9A-Za-z`` are in ASCII order, so
    for ids of one length, text order is numeric order, and Id ranges can be computed:
    :func:`id_number` reads one, :func:`id_text` writes the 18-character form (with its
    case-safe suffix) of a number.

Sizing
    :class:`IdRanges` starts from the object's first and last Id and its record count (the
    density of records per Id number, assumed even), asks for a small first range (so that the
    first rows arrive quickly) and then ranges growing ``growth``-fold each up to about
    ``target`` records, each sized from the density the previous range actually had (real
    orgs have gaps: deleted data, Ids of other pods). The growth keeps the overlap going from
    the start: a range is applied while the org renders the next, so the next must not be
    much larger than the current (a small first range followed at once by the full target
    left the sink idle for most of the second job's rendering: ~7 s of a 1M-record
    snapshot). The first range has no lower bound beyond the resume point and the last no
    upper bound, so every record is covered whatever the estimates (records created during
    the snapshot included); ranges are consecutive and in Id order, so the snapshot's resume
    point (the last Id applied) stays meaningful.
"""

from __future__ import annotations

from dataclasses import dataclass

ID_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_VALUE = {c: i for i, c in enumerate(ID_ALPHABET)}
_SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_ID_SPACE = 62**15


def id_number(record_id: str) -> int:
    """The number a 15- or 18-character Id stands for (its first 15 characters, base 62).

    Raises:
        ValueError: not a Salesforce Id.
    """
    if len(record_id) not in (15, 18):
        raise ValueError(f"{record_id!r} is not a 15- or 18-character Salesforce Id")
    number = 0
    for char in record_id[:15]:
        digit = _VALUE.get(char)
        if digit is None:
            raise ValueError(f"{record_id!r} is not a Salesforce Id (character {char!r})")
        number = number * 62 + digit
    return number


def id_text(number: int) -> str:
    """The 18-character Id of ``number`` (15 base-62 digits and the case-safe suffix)."""
    if not 0 <= number < _ID_SPACE:
        raise ValueError(f"{number} is outside the Id space")
    digits = []
    for _ in range(15):
        number, digit = divmod(number, 62)
        digits.append(ID_ALPHABET[digit])
    short = "".join(reversed(digits))
    suffix = ""
    for start in range(0, 15, 5):
        bits = sum(1 << j for j, c in enumerate(short[start : start + 5]) if "A" <= c <= "Z")
        suffix += _SUFFIX[bits]
    return short + suffix


@dataclass(frozen=True, slots=True)
class IdRange:
    """One chunk: Ids ``>= start`` (or after the resume point, for the first) and ``< end``.

    ``None`` means unbounded on that side.
    """

    start: str | None
    end: str | None


class IdRanges:
    """Consecutive Id ranges covering an object, each sized to hold about ``target`` records.

    Args:
        first: the object's lowest Id (or the resume point) now.
        last: its highest Id now.
        count: how many records lie between them (a ``COUNT()``).
        target: records wanted per range, at most.
        first_target: records wanted in the first range (small: the first rows come sooner).
        growth: how much larger each range is wanted than the one before, until ``target``.
    """

    def __init__(
        self,
        first: str,
        last: str,
        count: int,
        *,
        target: int,
        first_target: int,
        growth: float = 1.5,
    ) -> None:
        self._low = id_number(first)
        self._high = id_number(last)
        span = self._high - self._low + 1
        self._density = max(count, 1) / max(span, 1)
        self._target = max(1, target)
        self._next_target = max(1, first_target)
        self._growth = max(1.0, growth)
        self._at = self._low
        self._pending: tuple[int, int] | None = None
        self._done = False

    def next(self) -> IdRange | None:
        """The next range to read, or ``None`` once the last (open-ended) one was given."""
        if self._done:
            return None
        start = None if self._at == self._low else id_text(self._at)
        width = max(1, int(self._next_target / self._density))
        end = self._at + width
        self._next_target = min(self._target, int(self._next_target * self._growth))
        if end > self._high:
            self._done = True
            return IdRange(start, None)
        self._pending = (self._at, end)
        self._at = end
        return IdRange(start, id_text(end))

    def observe(self, records: int) -> None:
        """How many records the range last given held: the density of the next ones.

        The estimate moves at most fourfold per range, so one empty or crowded range does
        not make the next absurdly large or small.
        """
        if self._pending is None:
            return
        start, end = self._pending
        self._pending = None
        observed = max(records, 1) / (end - start)
        self._density = min(max(observed, self._density / 4), self._density * 4)
