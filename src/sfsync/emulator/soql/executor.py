"""The SOQL engine's public entry points: compile once, run many times.

``compile_query`` parses and binds (pure: the result depends only on the text and the
schema, so callers may cache it); ``CompiledQuery.run`` executes against a
:class:`~.catalog.RecordSource` at a given ``now``.

Streaming: without ORDER BY (and outside aggregates) nothing is materialised. ``run``
counts matching rows in a first pass over the source (stopping at OFFSET+LIMIT; a source
with a ``count`` method answers unfiltered queries without that pass), then
``QueryResult.records`` renders lazily from a second pass, clipped to ``total_size`` so the
two never disagree upwards. With ORDER BY the matching records (the source's own mappings,
not rendered copies) are collected and sorted, then rendered lazily; a source with indexes
answers ``ORDER BY Id`` and ``ORDER BY SystemModstamp DESC, Id DESC LIMIT 1`` without either
(:mod:`.indexed`), and a counting source ``SELECT COUNT()`` without WHERE.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import cast

from sfsync.emulator.schema.model import ObjectDef, Schema, WireValue

from . import plan as p
from .aggregate import aggregate_rows
from .binder import Binder
from .catalog import CountingSource, Record, RecordSource, offers
from .indexed import indexed_top
from .messages import SoqlSyntaxError, to_api_error
from .parser import parse_condition, parse_query
from .predicates import PredicateBuilder, sort_records, top_records
from .render import RenderBuilder


@dataclass(frozen=True, slots=True)
class QueryResult:
    """``total_size``: the number of records the query returns (after OFFSET and LIMIT), as
    the REST ``totalSize``; ``records``: the REST JSON records, rendered as consumed."""

    total_size: int
    records: Iterator[dict[str, object]]


class CompiledQuery:
    """A bound query, ready to run any number of times against any source."""

    def __init__(self, plan: p.QueryPlan) -> None:
        self._plan = plan

    @property
    def object_name(self) -> str:
        """The queried object, in its declared casing."""
        return self._plan.object_name

    @property
    def is_aggregate(self) -> bool:
        """True for GROUP BY / aggregate-function queries (rows are AggregateResult)."""
        return self._plan.aggregate is not None

    @property
    def is_count_only(self) -> bool:
        """True for ``SELECT COUNT() FROM ...``: only ``totalSize`` is meaningful."""
        return self._plan.count_only

    @property
    def plan(self) -> p.QueryPlan:
        return self._plan

    def run(
        self, source: RecordSource, *, now: datetime, include_deleted: bool, api_version: str
    ) -> QueryResult:
        """Execute. ``include_deleted`` is true for queryAll (``ALL ROWS`` forces it);
        ``api_version`` (``"59.0"``) goes into the records' attribute urls."""
        plan = self._plan
        include = include_deleted or plan.all_rows
        predicates = PredicateBuilder(source, now)
        where = predicates.build(plan.where) if plan.where is not None else None

        def matching() -> Iterator[Record]:
            rows = source.scan(plan.object_name, include_deleted=include)
            return rows if where is None else filter(where, rows)

        start = plan.offset or 0
        stop = None if plan.limit is None else start + plan.limit
        if plan.count_only:
            known = _known_count(source, plan.object_name, include) if where is None else None
            if known is not None:
                count = _clip(known, start, plan.limit)
            else:
                count = sum(1 for _ in islice(matching(), start, stop))
            return QueryResult(count, iter(()))
        if plan.aggregate is not None:
            rows = aggregate_rows(
                plan.aggregate, matching(), source, predicates, limit=plan.limit,
                offset=plan.offset,
            )  # fmt: skip
            return QueryResult(len(rows), iter(rows))
        render = RenderBuilder(source, predicates, api_version, include_deleted=include).renderer(
            plan.node
        )
        if plan.order:
            top = indexed_top(plan, source, where, include_deleted=include, count=stop)
            if top is None and stop is not None:
                # A small LIMIT keeps a heap of OFFSET+LIMIT rows instead of sorting them all.
                top = top_records(matching(), plan.order, source, stop)
            ordered = top if top is not None else sort_records(list(matching()), plan.order, source)
            selected = ordered[start:stop]
            return QueryResult(len(selected), map(render, selected))
        known = _known_count(source, plan.object_name, include) if where is None else None
        if known is not None:
            total = _clip(known, start, plan.limit)
        else:
            total = sum(1 for _ in islice(matching(), start, stop))
        return QueryResult(total, _lazy(matching, start, total, render))


def _known_count(source: RecordSource, object_name: str, include_deleted: bool) -> int | None:
    """The source's own count of the rows ``scan`` would yield, when its class offers one."""
    if not offers(source, "count"):
        return None
    return cast(CountingSource, source).count(object_name, include_deleted=include_deleted)


def _clip(count: int, offset: int, limit: int | None) -> int:
    """How many of ``count`` rows are left after ``offset``, at most ``limit``."""
    available = max(count - offset, 0)
    return available if limit is None else min(available, limit)


def _lazy(
    matching: Callable[[], Iterator[Record]],
    start: int,
    total: int,
    render: Callable[[Record], dict[str, object]],
) -> Iterator[dict[str, object]]:
    # A generator, so the second scan starts only when the caller reads records.
    yield from map(render, islice(matching(), start, start + total))


def compile_query(soql: str, schema: Schema) -> CompiledQuery:
    """Parse and bind ``soql``; raises ``ApiError`` (400: MALFORMED_QUERY, INVALID_FIELD,
    INVALID_TYPE, NUMBER_OUTSIDE_VALID_RANGE, INVALID_QUERY_FILTER_OPERATOR; and
    INVALID_TYPE_FOR_OPERATION for objects that exist but cannot be queried)."""
    query = parse_query(soql)
    try:
        return CompiledQuery(Binder(schema).bind_query(query))
    except SoqlSyntaxError as error:
        raise to_api_error(error, soql) from None


Condition = Callable[[Mapping[str, WireValue], RecordSource, datetime], bool]


def compile_condition(where_text: str, obj: ObjectDef, schema: Schema) -> Condition:
    """Compile a WHERE expression (a validation rule's condition) over records of ``obj``.

    The result evaluates one record; parent paths (``Account.Industry``) are resolved
    through ``source.get`` and relative dates against ``now``. Raises ``ApiError`` like
    :func:`compile_query` when the expression is invalid.
    """
    condition = parse_condition(where_text)
    try:
        bound = Binder(schema).bind_condition(condition, (obj, None))
    except SoqlSyntaxError as error:
        raise to_api_error(error, where_text) from None

    def evaluate(record: Mapping[str, WireValue], source: RecordSource, now: datetime) -> bool:
        return PredicateBuilder(source, now).build(bound)(record)

    return evaluate
