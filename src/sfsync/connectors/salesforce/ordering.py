"""Pure decisions on the order and grouping of writes: parents first, one parent per lane.

Parents before children
    :func:`object_order` sorts the objects of a batch so that every object comes after the
    objects its reference fields point to (a topological order of the describe metadata).
    Self-references and cycles cannot be ordered; the objects of a cycle keep the order of
    their first appearance in the batch, and their children still come after all of them.

One parent, one lane
    Salesforce locks the parent row while a child is inserted, updated or deleted (always for
    master-detail, for lookups unless the lookup is set to "clear the value"). Two calls in
    flight that touch children of one parent wait on each other's lock and fail with
    ``UNABLE_TO_LOCK_ROW`` after about ten seconds. :func:`pack` therefore joins rows that
    share any parent into one group (union-find over the parent keys), fills calls of at most
    ``size`` records with whole groups (first fit, largest group first, so calls stay full),
    and hands out the calls to ``lanes``: the calls of one lane run one after another, lanes
    run in parallel. A group larger than one call is split into full calls that all go to the
    same lane: its rows are serialised, never parallel. Two lanes never share a parent.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)


def object_order(objects: Iterable[str], parents_of: Mapping[str, frozenset[str]]) -> list[str]:
    """``objects`` (in first-appearance order) sorted parents first.

    Args:
        objects: the objects of a batch, in the order they first appear.
        parents_of: per object, the objects its reference fields point to.
    """
    pending = list(dict.fromkeys(objects))
    chosen: list[str] = []
    placed: set[str] = set()
    while pending:
        ready = [o for o in pending if not ((parents_of.get(o, frozenset()) - {o}) & set(pending))]
        # A cycle: nothing is free of unplaced parents. Take the first in batch order.
        step = ready or pending[:1]
        for obj in step:
            chosen.append(obj)
            placed.add(obj)
        pending = [o for o in pending if o not in placed]
    return chosen


class _UnionFind(Generic[K]):
    def __init__(self) -> None:
        self.parent: dict[K, K] = {}

    def find(self, item: K) -> K:
        root = self.parent.setdefault(item, item)
        while root != self.parent[root]:
            root = self.parent[root]
        while item != root:  # path compression
            self.parent[item], item = root, self.parent[item]
        return root

    def union(self, a: K, b: K) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[rb] = ra


@dataclass(frozen=True, slots=True)
class Chunk(Generic[T]):
    """One call's rows (``items`` in batch order)."""

    items: tuple[T, ...]


def groups(items: Sequence[T], parents: Callable[[T], Iterable[Hashable]]) -> list[list[T]]:
    """``items`` grouped so that rows sharing any parent key are in one group; groups and
    their rows in batch order. A row without parents is a group of its own (the common case
    costs no union-find work)."""
    uf: _UnionFind[object] = _UnionFind()
    entries: list[tuple[T, object, bool]] = []
    for index, item in enumerate(items):
        keys = [("parent", key) for key in parents(item)]
        if not keys:
            entries.append((item, ("row", index), False))
            continue
        for key in keys[1:]:
            uf.union(keys[0], key)
        uf.find(keys[0])
        entries.append((item, keys[0], True))
    by_root: dict[object, list[T]] = {}
    for item, node, linked in entries:
        by_root.setdefault(uf.find(node) if linked else node, []).append(item)
    return list(by_root.values())


def pack(
    items: Sequence[T],
    parents: Callable[[T], Iterable[Hashable]],
    *,
    size: int,
    lanes: int,
) -> list[list[Chunk[T]]]:
    """Calls of at most ``size`` rows, dealt to at most ``lanes`` lanes (see module docstring).

    Returns the lanes: each a list of calls to make one after another.
    """
    if size < 1 or lanes < 1:
        raise ValueError("size and lanes must be at least 1")
    # A group larger than a call becomes full calls tied to one lane (a "unit"); its remainder
    # is packed like any small group, and the call it lands in joins the unit's lane.
    units: list[list[list[T]]] = []
    small: list[tuple[list[T], int | None]] = []
    for group in groups(items, parents):
        if len(group) <= size:
            small.append((group, None))
            continue
        full = len(group) - len(group) % size
        units.append([group[i : i + size] for i in range(0, full, size)])
        if full < len(group):
            small.append((group[full:], len(units) - 1))
    # First fit decreasing for the groups that fit in one call.
    bins: list[tuple[list[T], set[int]]] = []
    open_bins: list[tuple[list[T], set[int]]] = []  # bins not yet full, in creation order
    for group, unit in sorted(small, key=lambda g: len(g[0]), reverse=True):
        target = next((b for b in open_bins if len(b[0]) + len(group) <= size), None)
        if target is None:
            target = ([], set())
            bins.append(target)
            open_bins.append(target)
        target[0].extend(group)
        if unit is not None:
            target[1].add(unit)
        if len(target[0]) == size:
            open_bins.remove(target)
    tie: _UnionFind[int] = _UnionFind()
    for _, tied in bins:
        for unit in tied:
            tie.union(min(tied), unit)
    merged: dict[int, list[list[T]]] = {}
    for number, unit_calls in enumerate(units):
        merged.setdefault(tie.find(number), []).extend(unit_calls)
    free: list[list[list[T]]] = []
    for calls, tied in bins:
        if tied:
            merged[tie.find(min(tied))].append(calls)
        else:
            free.append([calls])
    units = [*merged.values(), *free]
    # Deal the units to the least loaded lane, largest first.
    order = {id(item): i for i, item in enumerate(items)}
    loads = [0] * min(lanes, max(1, len(units)))
    dealt: list[list[list[T]]] = [[] for _ in loads]
    for calls_of_unit in sorted(units, key=lambda u: sum(len(c) for c in u), reverse=True):
        lane = loads.index(min(loads))
        dealt[lane].extend(calls_of_unit)
        loads[lane] += sum(len(c) for c in calls_of_unit)
    return [
        [Chunk(tuple(sorted(call, key=lambda x: order[id(x)]))) for call in lane]
        for lane in dealt
        if lane
    ]


def waves(items: Sequence[T], parents_of: Callable[[T], list[T]]) -> list[list[T]]:
    """``items`` in waves, each item one wave after the deepest of its parents among them
    (parents first: a self-lookup hierarchy written top down). Iterative, so deep hierarchies
    need no recursion. A cycle cannot be ordered; its items stay in the wave reached when the
    cycle is found."""
    level: dict[int, int] = {}
    for item in items:
        # Walk up to the first item whose level is known (or a root), then come back down.
        path: list[T] = []
        on_path: set[int] = set()
        current: T | None = item
        while current is not None and id(current) not in level and id(current) not in on_path:
            path.append(current)
            on_path.add(id(current))
            ups = parents_of(current)
            current = ups[0] if ups else None
        base = level.get(id(current), -1) if current is not None else -1
        for node in reversed(path):
            known = [level[id(p)] for p in parents_of(node) if id(p) in level]
            base = max([base, *known]) + 1
            level[id(node)] = base
    out: dict[int, list[T]] = {}
    for item in items:
        out.setdefault(level[id(item)], []).append(item)
    return [out[n] for n in sorted(out)]
