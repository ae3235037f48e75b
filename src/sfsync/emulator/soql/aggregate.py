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
from typing import Any

from sfsync.emulator.schema.model import WireValue

from . import plan as p
from .catalog import Record, RecordSource
from .predicates import DATE_FUNCTIONS, PredicateBuilder, path_getter, sort_records

Step = Callable[[Any, WireValue], Any]


def _count(state: int, value: WireValue) -> int:
    return state if value is None else state + 1


def _sum(state: float | None, value: WireValue) -> float | None:
    if not isinstance(value, int | float):
        return state
    return value if state is None else state + value


def _avg(state: tuple[float, int], value: WireValue) -> tuple[float, int]:
    if not isinstance(value, int | float):
        return state
    return state[0] + value, state[1] + 1


def _min(state: Any, value: WireValue) -> Any:
    return value if value is not None and (state is None or value < state) else state


def _max(state: Any, value: WireValue) -> Any:
    return value if value is not None and (state is None or value > state) else state


def _distinct(state: set[WireValue], value: WireValue) -> set[WireValue]:
    if value is not None:
        state.add(value.lower() if isinstance(value, str) else value)
    return state


#: Per function: the initial state (a factory), the step, and the final value.
_FUNCTIONS: dict[str, tuple[Callable[[], Any], Step, Callable[[Any], WireValue]]] = {
    "COUNT": (lambda: 0, _count, lambda s: s),
    "SUM": (lambda: None, _sum, lambda s: s),
    "AVG": (lambda: (0.0, 0), _avg, lambda s: s[0] / s[1] if s[1] else None),
    "MIN": (lambda: None, _min, lambda s: s),
    "MAX": (lambda: None, _max, lambda s: s),
    "COUNT_DISTINCT": (set, _distinct, len),
}


def _raw_getter(operand: p.Operand, source: RecordSource) -> Callable[[Record], WireValue]:
    base = path_getter(operand.path, source)
    if operand.func is None:
        return base
    func = DATE_FUNCTIONS[operand.func]

    def apply(record: Record) -> WireValue:
        v = base(record)
        return func(v) if isinstance(v, str) else None

    return apply


def _one(record: Record) -> WireValue:
    return 1


def _key_function(
    getters: list[Callable[[Record], WireValue]],
) -> Callable[[Record], tuple[WireValue, ...]]:
    if len(getters) == 1:
        only = getters[0]
        return lambda record: (only(record),)
    return lambda record: tuple(get(record) for get in getters)


def _grouping_sets(
    rows: Iterable[Record],
    sets: tuple[tuple[int, ...], ...],
    key_of: Callable[[Record], tuple[WireValue, ...]],
    inits: list[Callable[[], Any]],
    steps: list[tuple[int, Step, Callable[[Record], WireValue]]],
) -> list[tuple[tuple[int, ...], tuple[WireValue, ...], list[Any]]]:
    """ROLLUP / CUBE: every row feeds one group per grouping set, the columns a set rolls
    up read as null. Rows come out set by set (details first, grand total last)."""
    per_set: list[dict[tuple[WireValue, ...], list[Any]]] = [{} for _ in sets]
    for row in rows:
        values = key_of(row)
        for keep, groups in zip(sets, per_set, strict=True):
            key = tuple(v if i in keep else None for i, v in enumerate(values))
            state = groups.get(key)
            if state is None:
                state = groups[key] = [init() for init in inits]
            for index, step, get in steps:
                state[index] = step(state[index], get(row))
    return [
        (keep, key, state)
        for keep, groups in zip(sets, per_set, strict=True)
        for key, state in groups.items()
    ]


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
    key_of = _key_function(group_getters)
    # COUNT() counts rows: its "value" is a constant non-null.
    getters = [path_getter(m.path, source) if m.path is not None else _one for m in plan.measures]
    functions = [_FUNCTIONS[m.func] for m in plan.measures]
    inits = [init for init, _, _ in functions]
    steps = list(
        zip(range(len(functions)), [step for _, step, _ in functions], getters, strict=True)
    )
    sets = plan.grouping_sets or (tuple(range(len(plan.groups))),)
    groups: dict[tuple[WireValue, ...], list[Any]] = {}
    if not plan.groups:
        groups[()] = [init() for init in inits]
    if len(sets) == 1:  # plain GROUP BY: the hot path, one group per row
        for row in rows:
            key = key_of(row)
            state = groups.get(key)
            if state is None:
                state = groups[key] = [init() for init in inits]
            for index, step, get in steps:
                state[index] = step(state[index], get(row))
        keyed = [(sets[0], key, state) for key, state in groups.items()]
    else:
        keyed = _grouping_sets(rows, sets, key_of, inits, steps)
    synthetic: list[Record] = []
    for keep, key, state in keyed:
        record: dict[str, WireValue] = {
            slot: v for (_, slot), v in zip(plan.groups, key, strict=True)
        }
        for m, value, (_, _, final) in zip(plan.measures, state, functions, strict=True):
            record[m.slot] = final(value)
        for flag, index in plan.grouping_flags:
            record[flag] = 0 if index in keep else 1
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
