"""Evaluation of aggregate queries: grouping, aggregate functions, HAVING, ORDER BY, paging.

Groups are accumulated in one pass with constant state per group and measure (a running
sum, count, extreme, or the distinct set for ``COUNT_DISTINCT``), so memory grows with the
number of groups, not of rows. Without GROUP BY there is exactly one row, even over no
records (``COUNT`` 0, other functions null), as in Salesforce.

Grouping is by exact value; groups come out in the order they were first met unless the
query orders them (Salesforce leaves the order unspecified).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from itertools import islice

from sfsync.emulator.schema.model import WireValue

from . import plan as p
from .catalog import Record, RecordSource
from .predicates import DATE_FUNCTIONS, PredicateBuilder, path_getter, sort_records


class _Measure:
    """Running state of one aggregate function over one group."""

    __slots__ = ("best", "count", "distinct", "func", "total")

    def __init__(self, func: str) -> None:
        self.func = func
        self.count = 0
        self.total: float = 0
        self.best: WireValue = None
        self.distinct: set[WireValue] = set()

    def add(self, value: WireValue, row_counts: bool) -> None:
        if row_counts:  # COUNT(): every row counts
            self.count += 1
            return
        if value is None:
            return
        self.count += 1
        func = self.func
        if func == "COUNT_DISTINCT":
            self.distinct.add(value.lower() if isinstance(value, str) else value)
        elif func in ("SUM", "AVG"):
            if isinstance(value, int | float) and not isinstance(value, bool):
                self.total += value
        elif func == "MIN":
            if self.best is None or value < self.best:  # type: ignore[operator]
                self.best = value
        elif func == "MAX" and (self.best is None or value > self.best):  # type: ignore[operator]
            self.best = value

    def result(self) -> WireValue:
        func = self.func
        if func == "COUNT":
            return self.count
        if func == "COUNT_DISTINCT":
            return len(self.distinct)
        if func == "SUM":
            return self.total if self.count else None
        if func == "AVG":
            return self.total / self.count if self.count else None
        return self.best


def _raw_getter(operand: p.Operand, source: RecordSource) -> Callable[[Record], WireValue]:
    base = path_getter(operand.path, source)
    if operand.func is None:
        return base
    func = DATE_FUNCTIONS[operand.func]

    def apply(record: Record) -> WireValue:
        v = base(record)
        return func(v) if isinstance(v, str) else None

    return apply


def aggregate_rows(
    plan: p.AggregatePlan,
    rows: Iterable[Record],
    source: RecordSource,
    predicates: PredicateBuilder,
    *,
    limit: int | None,
    offset: int | None,
) -> list[dict[str, object]]:
    """The AggregateResult records of ``rows`` (already filtered by WHERE)."""
    group_getters = [_raw_getter(operand, source) for operand, _ in plan.groups]
    measure_getters = [
        path_getter(m.path, source) if m.path is not None else None for m in plan.measures
    ]
    groups: dict[tuple[WireValue, ...], list[_Measure]] = {}
    if not plan.groups:
        groups[()] = [_Measure(m.func) for m in plan.measures]
    for row in rows:
        key = tuple(get(row) for get in group_getters)
        state = groups.get(key)
        if state is None:
            state = groups[key] = [_Measure(m.func) for m in plan.measures]
        for measure, get in zip(state, measure_getters, strict=True):
            measure.add(get(row) if get is not None else None, get is None)
    synthetic: list[Record] = []
    for key, state in groups.items():
        record: dict[str, WireValue] = {
            slot: v for (_, slot), v in zip(plan.groups, key, strict=True)
        }
        for m, measure in zip(plan.measures, state, strict=True):
            record[m.slot] = measure.result()
        synthetic.append(record)
    if plan.having is not None:
        having = predicates.build(plan.having)
        synthetic = [r for r in synthetic if having(r)]
    if plan.order:
        sort_records(synthetic, plan.order, source)
    start = offset or 0
    stop = None if limit is None else start + limit
    output = plan.output
    return [
        {"attributes": {"type": "AggregateResult"}, **{key: r.get(slot) for key, slot in output}}
        for r in islice(synthetic, start, stop)
    ]
