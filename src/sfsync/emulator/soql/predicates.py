"""Bound conditions and sort keys to Python closures, built once per query run.

A run knows its record source and its ``now``, so everything that depends on them
(relative date ranges, semi-join id sets, parent lookups) is computed here once; the
per-record work is then a couple of closure calls and one comparison.

Null semantics (UNCONFIRMED in the wire reference; this is SOQL as commonly described, which
is not SQL's three-valued logic): ``= null`` / ``!= null`` test for null (on a boolean field
``= null`` means ``= false``, as the SOQL guide says); a null field makes ``=``, ``<``,
``<=``, ``>``, ``>=``, ``LIKE``, ``IN``, ``INCLUDES`` false; ``!=`` and ``EXCLUDES`` are true
for it (``Industry != 'Energy'`` returns the rows without an industry) but ``NOT IN``, list
or anti-join, leaves null rows out. ``NOT <condition>`` is plain negation. A path through an
empty lookup reads as null (``Account.Name = null`` matches contacts without an account).
"""

from __future__ import annotations

import heapq
import operator
import re
from collections.abc import Callable, Iterable
from datetime import date, datetime
from typing import Any

from sfsync.emulator.schema.model import FieldType, WireValue

from . import plan as p
from .catalog import Record, RecordSource
from .dates import relative_range

Getter = Callable[[Record], WireValue]
Predicate = Callable[[Record], bool]

_ORDERING: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def _day_in_week(v: str) -> int:
    return date.fromisoformat(v[:10]).isoweekday() % 7 + 1  # Sunday is 1


def _day_in_year(v: str) -> int:
    return date.fromisoformat(v[:10]).timetuple().tm_yday


#: Date functions over wire strings (``YYYY-MM-DD`` or ``YYYY-MM-DDTHH:MM:SS.mmm+0000``, UTC).
DATE_FUNCTIONS: dict[str, Callable[[str], WireValue]] = {
    "CALENDAR_YEAR": lambda v: int(v[:4]),
    "FISCAL_YEAR": lambda v: int(v[:4]),
    "CALENDAR_MONTH": lambda v: int(v[5:7]),
    "FISCAL_MONTH": lambda v: int(v[5:7]),
    "CALENDAR_QUARTER": lambda v: (int(v[5:7]) - 1) // 3 + 1,
    "FISCAL_QUARTER": lambda v: (int(v[5:7]) - 1) // 3 + 1,
    "DAY_IN_MONTH": lambda v: int(v[8:10]),
    "DAY_IN_WEEK": _day_in_week,
    "DAY_IN_YEAR": _day_in_year,
    "WEEK_IN_MONTH": lambda v: (int(v[8:10]) - 1) // 7 + 1,
    "WEEK_IN_YEAR": lambda v: (_day_in_year(v) - 1) // 7 + 1,
    "DAY_ONLY": lambda v: v[:10],
    "HOUR_IN_DAY": lambda v: int(v[11:13]),
}


def path_getter(path: p.Path, source: RecordSource) -> Getter:
    """Reads ``path`` from a record, following lookups through ``source.get``."""
    name = path.field.name
    lookups = path.lookups
    if not lookups:
        return lambda record: record.get(name)
    get = source.get

    def follow(record: Record) -> WireValue:
        current: Record | None = record
        for lookup in lookups:
            ref = current.get(lookup) if current is not None else None
            if not isinstance(ref, str):
                return None
            current = get(ref)
        return current.get(name) if current is not None else None

    return follow


def _folds_case(operand: p.Operand) -> bool:
    kind = operand.type
    # Ids compare exactly: literals are restored to their true case when bound, and only
    # the exact form orders ids as they were created (``...0aAAA`` after ``...0AAAQ``), so
    # that ``Id > :last ORDER BY Id`` paging never skips a record.
    if kind in (FieldType.ID, FieldType.REFERENCE):
        return False
    return kind.is_text and not operand.case_sensitive


def value_getter(operand: p.Operand, source: RecordSource) -> Getter:
    """The comparable value of ``operand``: date function applied, text lower-cased (unless
    case-sensitive; ids are never folded, see :func:`_folds_case`)."""
    base = path_getter(operand.path, source)
    func = DATE_FUNCTIONS[operand.func] if operand.func is not None else None
    fold = _folds_case(operand)
    name = operand.path.field.name
    if func is None and not fold:
        return base
    if func is None and not operand.path.lookups:

        def folded_plain(record: Record) -> WireValue:
            v = record.get(name)
            return v.lower() if isinstance(v, str) else v

        return folded_plain

    def derived(record: Record) -> WireValue:
        v = base(record)
        if not isinstance(v, str):
            return v
        if func is not None:
            return func(v)
        return v.lower() if fold else v

    return derived


def range_bounds(operand: p.Operand, literal: p.Relative, now: datetime) -> tuple[str, str]:
    """The wire-form ``[lo, hi)`` of a relative date literal for ``operand``'s type."""
    start, end = relative_range(literal.name, literal.n, now)
    if operand.type is FieldType.DATETIME:
        return f"{start.isoformat()}T00:00:00.000+0000", f"{end.isoformat()}T00:00:00.000+0000"
    return start.isoformat(), end.isoformat()


def like_predicate(pattern: str) -> Callable[[str], bool]:
    """A case-insensitive matcher for a LIKE pattern (``%``, ``_``; ``\\%``, ``\\_`` literal)."""
    tokens = re.findall(r"\\[%_]|.", pattern, re.DOTALL)
    if all(t not in ("%", "_") for t in tokens[:-1]) and tokens and tokens[-1] == "%":
        prefix = "".join(t[-1] for t in tokens[:-1]).lower()
        return lambda v: v.lower().startswith(prefix)
    regex = "".join(".*" if t == "%" else "." if t == "_" else re.escape(t[-1]) for t in tokens)
    compiled = re.compile(regex, re.IGNORECASE | re.DOTALL)
    return lambda v: compiled.fullmatch(v) is not None


def _terms(value: str) -> frozenset[str]:
    return frozenset(t.strip().lower() for t in value.split(";") if t.strip())


class PredicateBuilder:
    """Builds predicates for one run: a fixed ``source`` and ``now``."""

    def __init__(self, source: RecordSource, now: datetime) -> None:
        self.source = source
        self.now = now

    def build(self, cond: p.BoundCondition) -> Predicate:
        if isinstance(cond, p.BAnd):
            return _all_of([self.build(c) for c in cond.items])
        if isinstance(cond, p.BOr):
            return _any_of([self.build(c) for c in cond.items])
        if isinstance(cond, p.BNot):
            inner = self.build(cond.item)
            return lambda record: not inner(record)
        if isinstance(cond, p.BSemiJoin):
            return self._semi_join(cond)
        if isinstance(cond, p.BInList):
            return self._in_list(cond)
        return self._compare(cond)

    def _compare(self, cond: p.BCompare) -> Predicate:
        operand, op, literal = cond.operand, cond.op, cond.literal
        get = value_getter(operand, self.source)
        if isinstance(literal, p.Relative):
            return self._range(get, op, range_bounds(operand, literal, self.now))
        target = literal.value
        if target is None:
            if op == "=":
                return lambda record: get(record) is None
            return lambda record: get(record) is not None
        if op == "LIKE":
            assert isinstance(target, str)
            matches = like_predicate(target)
            raw = path_getter(operand.path, self.source)

            def like(record: Record) -> bool:
                v = raw(record)
                return isinstance(v, str) and matches(v)

            return like
        if operand.type is FieldType.MULTIPICKLIST and operand.func is None:
            assert isinstance(target, str)
            wanted = _terms(target)

            def same_set(record: Record) -> bool:
                v = get(record)
                return isinstance(v, str) and _terms(v) == wanted

            if op == "=":
                return same_set
            return lambda record: not same_set(record)
        if op == "!=":
            return lambda record: get(record) != target
        compare = _ORDERING[op]

        def check(record: Record) -> bool:
            v = get(record)
            return v is not None and compare(v, target)

        return check

    @staticmethod
    def _range(get: Getter, op: str, bounds: tuple[str, str]) -> Predicate:
        lo, hi = bounds

        def inside(record: Record) -> bool:
            v = get(record)
            return isinstance(v, str) and lo <= v < hi

        if op == "=":
            return inside
        if op == "!=":
            return lambda record: not inside(record)
        bound, compare = {
            "<": (lo, operator.lt),
            "<=": (hi, operator.lt),
            ">": (hi, operator.ge),
            ">=": (lo, operator.ge),
        }[op]

        def check(record: Record) -> bool:
            v = get(record)
            return isinstance(v, str) and compare(v, bound)

        return check

    def _in_list(self, cond: p.BInList) -> Predicate:
        operand = cond.operand
        get = value_getter(operand, self.source)
        if cond.op in ("INCLUDES", "EXCLUDES"):
            wanted = [
                _terms(lit.value)
                for lit in cond.literals
                if isinstance(lit, p.Fixed) and isinstance(lit.value, str)
            ]

            def includes(record: Record) -> bool:
                v = get(record)
                if not isinstance(v, str):
                    return False
                have = _terms(v)
                return any(w <= have for w in wanted)

            if cond.op == "INCLUDES":
                return includes
            return lambda record: not includes(record)
        fixed = {lit.value for lit in cond.literals if isinstance(lit, p.Fixed)}
        ranges = [
            range_bounds(operand, lit, self.now)
            for lit in cond.literals
            if isinstance(lit, p.Relative)
        ]

        def member(record: Record) -> bool:
            v = get(record)
            if v in fixed:
                return True
            return isinstance(v, str) and any(lo <= v < hi for lo, hi in ranges)

        if cond.op == "IN":
            return member
        return lambda record: get(record) is not None and not member(record)

    def _semi_join(self, cond: p.BSemiJoin) -> Predicate:
        sub_where = self.build(cond.where) if cond.where is not None else None
        sub_get = path_getter(cond.path, self.source)
        ids: set[WireValue] = set()
        fold = _folds_case(cond.operand)
        for row in self.source.scan(cond.object_name, include_deleted=False):
            if sub_where is None or sub_where(row):
                v = sub_get(row)
                if isinstance(v, str):
                    ids.add(v.lower() if fold else v)
        get = value_getter(cond.operand, self.source)
        if cond.negated:

            def anti_join(record: Record) -> bool:
                v = get(record)
                return v is not None and v not in ids

            return anti_join
        return lambda record: get(record) in ids


def _all_of(preds: list[Predicate]) -> Predicate:
    if len(preds) == 2:
        first, second = preds
        return lambda record: first(record) and second(record)
    return lambda record: all(pred(record) for pred in preds)


def _any_of(preds: list[Predicate]) -> Predicate:
    if len(preds) == 2:
        first, second = preds
        return lambda record: first(record) or second(record)
    return lambda record: any(pred(record) for pred in preds)


def _key_part(key: p.SortKey, source: RecordSource) -> Callable[[Record], tuple[int, Any]]:
    """One key's sort value: ``(rank, value)``, the rank placing nulls so that a sort with
    ``reverse`` set for a descending key still puts them where the query asked."""
    get = value_getter(key.operand, source)
    null_rank = 0 if key.nulls_first != key.descending else 1
    value_rank = 1 - null_rank

    def part(record: Record) -> tuple[int, Any]:
        v = get(record)
        return (null_rank, 0) if v is None else (value_rank, v)

    return part


def sort_records(
    rows: list[Record], keys: Iterable[p.SortKey], source: RecordSource
) -> list[Record]:
    """Sort ``rows`` in place by ``keys`` (first key most significant) and return them.

    One stable sort per key, least significant first, so that keys may differ in direction.
    """
    for key in reversed(list(keys)):
        rows.sort(key=_key_part(key, source), reverse=key.descending)
    return rows


def top_records(
    rows: Iterable[Record], keys: tuple[p.SortKey, ...], source: RecordSource, count: int
) -> list[Record] | None:
    """The first ``count`` rows in ``keys`` order without sorting them all (a heap), or
    ``None`` when the keys mix directions (the caller then sorts everything).

    Same result as ``sort_records(list(rows))[:count]``: heapq's nsmallest/nlargest are
    documented to equal a stable sort, and with one direction the per-key stable sorts
    equal one sort by the tuple of the keys.
    """
    if len({key.descending for key in keys}) != 1:
        return None
    parts = [_key_part(key, source) for key in keys]
    if len(parts) == 1:
        sort_key: Callable[[Record], Any] = parts[0]
    else:

        def sort_key(record: Record) -> tuple[tuple[int, Any], ...]:
            return tuple(part(record) for part in parts)

    pick = heapq.nlargest if keys[0].descending else heapq.nsmallest
    return pick(count, rows, key=sort_key)
