"""Binding of aggregate queries (GROUP BY, aggregate functions, HAVING, ORDER BY on groups).

Each group is evaluated into a synthetic record whose keys are slots: ``__g<i>`` for the
i-th GROUP BY expression and ``__m<i>`` for the i-th distinct aggregate expression. HAVING
and ORDER BY are bound against synthetic fields of those names, so the ordinary predicate
and sort code runs on groups unchanged.

``GROUP BY ROLLUP(...)`` / ``CUBE(...)`` add subtotal rows (rolled-up columns null) and
``GROUPING(f)`` tells them apart (1 where ``f`` is rolled up).

Output keys: a grouped field is named by its field name (``StageName``, also for
``Account.Name`` -> ``Name``); every other expression by its alias or ``expr<N>``, where N
counts the unaliased non-field expressions in SELECT order, as Salesforce does.
"""

from __future__ import annotations

from itertools import combinations
from typing import TYPE_CHECKING

from sfsync.emulator.schema.model import FieldDef, FieldType

from . import ast as a
from . import plan as p
from .messages import malformed

if TYPE_CHECKING:
    from .binder import Binder
    from .names import Scope

_NOT_AGGREGATABLE = (
    FieldType.BOOLEAN, FieldType.MULTIPICKLIST, FieldType.ADDRESS, FieldType.LOCATION,
    FieldType.BASE64, FieldType.TEXTAREA,
)  # fmt: skip


class _AggregateBinder:
    def __init__(self, binder: Binder, scope: Scope) -> None:
        self.binder = binder
        self.scope = scope
        self.groups: list[tuple[p.Operand, str]] = []
        self.measures: list[p.Measure] = []
        self.flags: list[tuple[str, int]] = []
        self._measure_by_text: dict[str, p.Measure] = {}

    def group(self, expr: a.Operand) -> None:
        operand = self._plain_operand(expr)
        self.groups.append((operand, f"__g{len(self.groups)}"))

    def _plain_operand(self, expr: a.Operand) -> p.Operand:
        if isinstance(expr, a.FuncCall):
            return self.binder.date_function(expr, self.scope)
        path = self.binder.resolve(expr, self.scope).path
        if path.field.type in _NOT_AGGREGATABLE and path.field.type is not FieldType.BOOLEAN:
            raise malformed(
                expr.pos, f"field '{path.field.name}' can not be grouped in a query call"
            )
        return p.Operand(path, None, path.field.type, path.field.case_sensitive)

    def group_slot(self, expr: a.Operand) -> tuple[p.Operand, str]:
        operand = self._plain_operand(expr)
        for grouped, slot in self.groups:
            if grouped.path.key == operand.path.key and grouped.func == operand.func:
                return grouped, slot
        name = expr.text if isinstance(expr, a.FuncCall) else operand.path.field.name
        raise malformed(expr.pos, f"Field must be grouped or aggregated: {name}")

    def measure(self, call: a.FuncCall) -> p.Measure:
        key = call.text.upper()
        found = self._measure_by_text.get(key)
        if found is not None:
            return found
        path: p.Path | None = None
        if call.arg is None:
            if call.name != "COUNT":
                raise malformed(call.pos, f"{call.name}() requires a field")
        elif not isinstance(call.arg, a.FieldRef):
            raise malformed(call.arg.pos, "Aggregate functions take a field")
        else:
            path = self.binder.resolve(call.arg, self.scope).path
            self._check_measure(call, path.field)
        measure = p.Measure(call.name, path, f"__m{len(self.measures)}")
        self.measures.append(measure)
        self._measure_by_text[key] = measure
        return measure

    @staticmethod
    def _check_measure(call: a.FuncCall, f: FieldDef) -> None:
        numeric_only = call.name in ("SUM", "AVG")
        if call.name in ("COUNT", "COUNT_DISTINCT"):
            ok = f.type not in (FieldType.ADDRESS, FieldType.LOCATION, FieldType.BASE64)
        elif numeric_only:
            ok = f.type.is_number
        else:
            ok = f.type not in _NOT_AGGREGATABLE
        if not ok:
            raise malformed(
                call.pos, f"field {f.name} does not support aggregate operator {call.name}"
            )

    def measure_operand(self, measure: p.Measure) -> p.Operand:
        if measure.func in ("COUNT", "COUNT_DISTINCT"):
            kind = FieldType.INT
        elif measure.func in ("SUM", "AVG"):
            kind = FieldType.DOUBLE
        else:
            assert measure.path is not None
            kind = measure.path.field.type
        return _slot_operand(measure.slot, kind, case_sensitive=False)

    def grouping(self, call: a.FuncCall) -> str:
        """``GROUPING(f)``: 1 on the subtotal rows of ROLLUP/CUBE where ``f`` is rolled up."""
        if not isinstance(call.arg, a.FieldRef):
            raise malformed(call.pos, "GROUPING requires a field of the GROUP BY")
        _, slot = self.group_slot(call.arg)
        index = [s for _, s in self.groups].index(slot)
        flag = f"__x{index}"
        if (flag, index) not in self.flags:
            self.flags.append((flag, index))
        return flag

    def slot_operand(self, expr: a.Operand) -> p.Operand:
        """The synthetic operand HAVING / ORDER BY use for ``expr``."""
        if isinstance(expr, a.FuncCall) and expr.name == "GROUPING":
            return _slot_operand(self.grouping(expr), FieldType.INT, case_sensitive=False)
        if isinstance(expr, a.FuncCall) and expr.name in _AGGREGATE_NAMES:
            return self.measure_operand(self.measure(expr))
        grouped, slot = self.group_slot(expr)
        return _slot_operand(slot, grouped.type, grouped.case_sensitive)

    def condition(self, cond: a.Condition) -> p.BoundCondition:
        if isinstance(cond, a.And):
            return p.BAnd(tuple(self.condition(c) for c in cond.items))
        if isinstance(cond, a.Or):
            return p.BOr(tuple(self.condition(c) for c in cond.items))
        if isinstance(cond, a.Not):
            return p.BNot(self.condition(cond.item))
        if isinstance(cond, a.SemiJoin):
            raise malformed(cond.left.pos, "Semi-joins are not supported in HAVING")
        operand = self.slot_operand(cond.left)
        if isinstance(cond, a.Compare):
            if cond.op == "LIKE":
                if not isinstance(cond.value, a.StringLit) or not operand.type.is_text:
                    raise malformed(cond.left.pos, "LIKE is only valid on text fields")
                return p.BCompare(operand, "LIKE", p.Fixed(cond.value.value))
            return p.BCompare(
                operand, cond.op, self.binder.literal(operand, cond.value, cond.left.pos)
            )
        literals = tuple(self.binder.literal(operand, v, cond.left.pos) for v in cond.values)
        return p.BInList(operand, cond.op, literals)


_AGGREGATE_NAMES = frozenset({"COUNT", "COUNT_DISTINCT", "SUM", "AVG", "MIN", "MAX"})


def _slot_operand(slot: str, kind: FieldType, case_sensitive: bool) -> p.Operand:
    synthetic = FieldDef(name=slot, type=kind, label=slot, case_sensitive=case_sensitive)
    return p.Operand(p.Path((), synthetic), None, kind, case_sensitive)


def bind_aggregate(binder: Binder, query: a.Query, scope: Scope) -> p.AggregatePlan:
    """Bind the SELECT list, GROUP BY, HAVING and ORDER BY of an aggregate query."""
    state = _AggregateBinder(binder, scope)
    for expr in query.group_by:
        state.group(expr)
    output: list[tuple[str, str]] = []
    expr_index = 0
    for item in query.select:
        if isinstance(item, a.SelectField):
            grouped, slot = state.group_slot(item.ref)
            output.append((grouped.path.field.name, slot))
        elif isinstance(item, a.SelectFunc):
            if item.call.name in _AGGREGATE_NAMES:
                slot = state.measure(item.call).slot
            elif item.call.name == "GROUPING":
                slot = state.grouping(item.call)
            else:
                slot = state.group_slot(item.call)[1]
            if item.alias is not None:
                key = item.alias
            else:
                key = f"expr{expr_index}"
                expr_index += 1
            output.append((key, slot))
        else:
            pos = item.pos
            raise malformed(pos, "Subqueries are not supported in aggregate queries")
    having = state.condition(query.having) if query.having is not None else None
    order: list[p.SortKey] = []
    for order_item in query.order_by:
        operand = state.slot_operand(order_item.expr)
        descending = order_item.descending
        nulls_first = (
            order_item.nulls_first if order_item.nulls_first is not None else not descending
        )
        order.append(p.SortKey(operand, descending, nulls_first))
    return p.AggregatePlan(
        tuple(state.groups), tuple(state.measures), tuple(output), having, tuple(order),
        _grouping_sets(query.group_kind, len(state.groups)), tuple(state.flags),
    )  # fmt: skip


def _grouping_sets(kind: str, count: int) -> tuple[tuple[int, ...], ...]:
    """``ROLLUP(a, b)`` keeps (a, b), (a), (); ``CUBE(a, b)`` every subset, larger first."""
    every = tuple(range(count))
    if kind == "ROLLUP":
        return tuple(every[:size] for size in range(count, -1, -1))
    if kind == "CUBE":
        return tuple(
            subset for size in range(count, -1, -1) for subset in combinations(every, size)
        )
    return (every,)
