"""Indexes a :class:`~sfsync.emulator.store_rows.Table` keeps so that the queries a
replication client sends on every pass are answered without a scan: the ids in id order
(``ORDER BY Id LIMIT n``, keyset paging ``WHERE Id > :last``) and the newest
``(SystemModstamp, Id)`` (``ORDER BY SystemModstamp DESC, Id DESC LIMIT 1``).

Threads: writes are serialised by the store's lock, reads take no lock (the store is
read-uncommitted, see ``store.py``). Both indexes are therefore written so that a reader
racing a writer sees a slightly old or slightly new state, never a wrong one:
:class:`IdOrder` only appends in place and otherwise swaps in a new list, and
:class:`Newest` tags its answer with the write generation it is valid for.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterable, Iterator, Mapping
from itertools import pairwise

from sfsync.emulator.schema.model import WireValue

Values = tuple[WireValue, ...]

#: Compact the id list once this many removed ids linger in it (and a quarter of it).
_COMPACT_AFTER = 1024


class IdOrder:
    """Every id of a table, ascending by Python string order (the order SOQL compares ids
    in: exact, case-sensitive), possibly with ids removed since (``gone``): readers skip
    ids no longer in the table's rows.

    Ids are minted in increasing order per key prefix, so an insert is an ``append``; an id
    out of order (a rolled-back hard delete put back) copies the list once.
    """

    __slots__ = ("_gone", "ids")

    def __init__(self) -> None:
        self.ids: list[str] = []
        self._gone: set[str] = set()

    def add(self, rid: str) -> None:
        if rid in self._gone:
            self._gone.discard(rid)  # still in the list, at its place
            return
        ids = self.ids
        if not ids or rid > ids[-1]:
            ids.append(rid)
            return
        # A new list, not an insort in place: a reader walking the old one by position
        # must not see elements shift under it.
        copy = ids.copy()
        insort(copy, rid)
        self.ids = copy

    def add_many(self, rids: Iterable[str]) -> None:
        # Usually nothing was removed, and the per-id check is skipped.
        fresh = [rid for rid in rids if not self._readded(rid)] if self._gone else list(rids)
        ids = self.ids
        if (not ids or not fresh or fresh[0] > ids[-1]) and all(a < b for a, b in pairwise(fresh)):
            ids.extend(fresh)
        else:
            self.ids = sorted(ids + fresh)

    def _readded(self, rid: str) -> bool:
        if rid in self._gone:
            self._gone.discard(rid)
            return True
        return False

    def remove(self, rid: str, rows: Mapping[str, Values]) -> None:
        """Note that ``rid`` left ``rows`` (which no longer hold it)."""
        self._gone.add(rid)
        if len(self._gone) > max(_COMPACT_AFTER, len(self.ids) // 4):
            self.ids = [i for i in self.ids if i in rows]
            self._gone.clear()

    def span(self, low: str | None, high: str | None) -> int:
        """How many ids :meth:`walk` lists between ``low`` and ``high``."""
        first, end = self._range(self.ids, low, high)
        return max(end - first, 0)

    def walk(self, low: str | None, high: str | None, *, descending: bool) -> Iterator[str]:
        """The listed ids between ``low`` and ``high`` (both inclusive; ``None``: unbounded),
        ascending or descending, removed ones included."""
        ids = self.ids  # one list for the whole walk (see add)
        first, end = self._range(ids, low, high)
        # Positions, not islice: starting half-way through a million ids costs nothing.
        if descending:
            return map(ids.__getitem__, range(end - 1, first - 1, -1))
        return map(ids.__getitem__, range(first, end))

    @staticmethod
    def _range(ids: list[str], low: str | None, high: str | None) -> tuple[int, int]:
        first = 0 if low is None else bisect_left(ids, low)
        end = len(ids) if high is None else bisect_right(ids, high)
        return first, end


class _Unknown:
    """The newest key cannot be told (a SystemModstamp that is not text: the general query
    path decides what ordering such values means)."""


UNKNOWN = _Unknown()
Key = tuple[str, str]


class Newest:
    """The greatest ``(SystemModstamp, Id)`` over a table's rows, deleted ones included, among
    rows whose SystemModstamp is set; ``None`` when there is none.

    Kept up to date on every write while that is cheap: a row's stamp only grows through the
    store's writes (every write bumps it past its old value), so the top changes only when a
    row passes it. When the top row shrinks or leaves (a rollback, a hard delete) the answer
    is forgotten and the next reader recomputes it in one pass.

    ``_cache`` is ``(generation, answer)``; the answer is valid only while ``generation``
    equals ``_generation``, which every write advances. A reader stores what it computed
    under the generation it read first, so that a write it raced leaves the answer stale
    (recomputed later), never wrong.
    """

    __slots__ = ("_cache", "_generation", "slot")

    def __init__(self, slot: int) -> None:
        self.slot = slot
        self._generation = 0
        self._cache: tuple[int, Key | _Unknown | None] = (0, None)

    def _key(self, rid: str, values: Values) -> Key | _Unknown | None:
        stamp = values[self.slot]
        if stamp is None:
            return None
        return (stamp, rid) if isinstance(stamp, str) else UNKNOWN

    def changed(self, rid: str, old: Values | None, new: Values | None) -> None:
        generation, top = self._cache
        valid = generation == self._generation
        self._generation += 1
        if not valid or isinstance(top, _Unknown):
            return
        after = self._key(rid, new) if new is not None else None
        if isinstance(after, _Unknown):
            return
        if old is not None and top is not None and top == self._key(rid, old):
            # The top row itself changed: still the top if it did not go back in time.
            if after is None or after < top:
                return
            top = after
        elif after is not None and (top is None or after > top):
            top = after
        self._cache = (self._generation, top)

    def added(self, rows: Iterable[tuple[str, Values]]) -> None:
        """Rows added in one go (new ids only)."""
        generation, top = self._cache
        valid = generation == self._generation
        self._generation += 1
        if not valid or isinstance(top, _Unknown):
            return
        best = self._best(rows)
        if isinstance(best, _Unknown):
            return
        if best is not None and (top is None or best > top):
            top = best
        self._cache = (self._generation, top)

    def top(self, rows: Mapping[str, Values]) -> Key | _Unknown | None:
        """The newest key of ``rows`` (the table's rows), computed once per write."""
        generation, top = self._cache
        if generation == self._generation:
            return top
        generation = self._generation
        top = self._best(list(rows.items()))
        if generation == self._generation:
            self._cache = (generation, top)
        return top

    def _best(self, rows: Iterable[tuple[str, Values]]) -> Key | _Unknown | None:
        best: Key | None = None
        slot = self.slot
        for rid, values in rows:
            stamp = values[slot]
            if stamp is None:
                continue
            if not isinstance(stamp, str):
                return UNKNOWN
            if best is None or (stamp, rid) > best:
                best = (stamp, rid)
        return best
