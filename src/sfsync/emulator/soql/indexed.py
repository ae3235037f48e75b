"""Ordered queries answered from a source's indexes instead of a scan and a sort.

Two shapes, both sent by replication clients on every pass and both a full scan otherwise:

* ``ORDER BY Id [ASC|DESC] [LIMIT n]`` (any WHERE, any OFFSET): the records are read in id
  order from the source's id index and filtered until ``OFFSET + LIMIT`` of them matched.
  Top-level ``Id >``/``>=``/``<``/``<=``/``=`` bounds (alone or in an AND) limit the ids
  read. Ids are unique, so the order is total and the answer is the general path's exactly
  (and a keyset page or an Id-range chunk costs its own size, not the table's).
* ``ORDER BY SystemModstamp DESC, Id DESC LIMIT 1``: the source's newest record is the
  answer when it passes the query's filters (deleted rows only for queryAll / ``ALL ROWS``,
  and the WHERE). Both keys are descending with nulls last, so the first row is the one
  with the greatest ``(SystemModstamp, Id)``; rows without a stamp come after every other.

Anything else returns ``None`` and the caller runs the general path; so do a newest record
that fails the filters, and a filtered walk that may read more than half of the table and
has not filled its page after :data:`WALK_BUDGET` records (a walk reads a record at about
twice a scan's cost, so a very selective filter is left to the scan). The source must define
the :class:`~.catalog.IndexedSource` methods on its class (see :func:`~.catalog.offers`).
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import islice

from . import plan as p
from .catalog import IndexedSource, Record, RecordSource, offers

Predicate = Callable[[Record], bool]

#: Records a filtered walk over most of a table may read before it gives up (see _by_id).
WALK_BUDGET = 8192


def indexed_top(
    plan: p.QueryPlan,
    source: RecordSource,
    where: Predicate | None,
    *,
    include_deleted: bool,
    count: int | None,
) -> list[Record] | None:
    """The first ``count`` records (``None``: all) matching ``where`` (the query's built
    WHERE) in ``plan``'s ORDER BY order; ``None`` when this is not a shape answered here (the
    caller sorts)."""
    keys = plan.order
    if (count is not None and count <= 0) or not keys or not offers(source, "in_id_order"):
        return None
    indexed: IndexedSource = source  # type: ignore[assignment]
    if len(keys) == 1 and _plain(keys[0], "Id"):
        return _by_id(plan, indexed, where, include_deleted, count, keys[0].descending)
    if (
        count == 1
        and len(keys) == 2
        and _plain(keys[0], "SystemModstamp")
        and keys[0].descending
        and not keys[0].nulls_first
        and _plain(keys[1], "Id")
        and keys[1].descending
    ):
        row = indexed.newest(plan.object_name)
        if row is None or (row.get("IsDeleted") is True and not include_deleted):
            return None
        if where is not None and not where(row):
            return None
        return [row]
    return None


def _plain(key: p.SortKey, name: str) -> bool:
    """Whether ``key`` sorts by the queried object's own field ``name`` as it is."""
    operand = key.operand
    return not operand.path.lookups and operand.func is None and operand.path.field.name == name


def _by_id(
    plan: p.QueryPlan,
    source: IndexedSource,
    where: Predicate | None,
    include_deleted: bool,
    count: int | None,
    descending: bool,
) -> list[Record] | None:
    # No row outside the bounds can match (each bound is one of the WHERE's AND terms), so
    # only the ids between them are read.
    low, high = id_bounds(plan.where)
    name = plan.object_name
    rows = source.in_id_order(
        name, include_deleted=include_deleted, descending=descending, low=low, high=high
    )
    if where is None or source.id_span(name, low, high) * 2 <= source.id_span(name):
        matching = rows if where is None else filter(where, rows)
        return list(islice(matching, count))
    # A walk reads a record about twice as slowly as a scan (one index lookup each): one
    # that may read most of the table gets a budget, and a filter too selective to fill
    # the page within it leaves the query to the scan.
    found = list(islice(filter(where, islice(rows, WALK_BUDGET)), count))
    if len(found) == count or next(rows, None) is None:
        return found
    return None


def id_bounds(where: p.BoundCondition | None) -> tuple[str | None, str | None]:
    """The ``(lowest, highest)`` Id a row matching ``where`` can have, both inclusive, from
    its top-level Id comparisons (``None``: unbounded). Only narrows: the WHERE itself is
    still applied to every row read."""
    terms = where.items if isinstance(where, p.BAnd) else (where,)
    low: str | None = None
    high: str | None = None
    for term in terms:
        if not isinstance(term, p.BCompare) or not isinstance(term.literal, p.Fixed):
            continue
        value = term.literal.value
        operand = term.operand
        if not isinstance(value, str) or operand.path.lookups or operand.func is not None:
            continue
        if operand.path.field.name != "Id":
            continue
        if term.op in (">", ">=", "=") and (low is None or value > low):
            low = value
        if term.op in ("<", "<=", "=") and (high is None or value < high):
            high = value
    return low, high
