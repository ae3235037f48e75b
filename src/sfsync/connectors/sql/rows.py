"""The bulk fast path of planning: a batch of full-state rows turned into table rows column-wise.

A snapshot (and most polling) hands the sink batches in which every event carries the full
state of a distinct record, with the same fields, and a version equal to its version field.
For such a batch there is nothing to fold: each event is one row. :func:`plan_full_rows`
builds those rows with per-column work instead of per-field work: one C-level ``itemgetter``
call per event gathers its values, the columns are transposed once, and each column is
converted by its precomputed converter only if it holds a value of another class than the one
the driver takes as it is (``set(map(type, column))``: no Python code per value when nothing
needs converting).

The outcome is exactly :func:`~sfsync.connectors.sql.plan.plan_events`'s for the same batch:
the version guard still drops an event older than the stored row (STALE), and the rows are
the values that planner would write. Anything else (a delete, a partial event, a key twice in
the batch, events with different field sets, a value a converter refuses) returns ``None``
and the caller plans the batch event by event, which also names the bad value of a rejected
event.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from itertools import repeat
from operator import attrgetter, itemgetter
from typing import cast

from sfsync.connectors.sql.plan import Plan, Shape
from sfsync.connectors.sql.types import comparable_version
from sfsync.core.events import ChangeEvent
from sfsync.spi.sink import Outcome, OutcomeKind

_STALE = Outcome(OutcomeKind.STALE)
_APPLIED = Outcome.applied()
_NONE = type(None)
_AFTER, _PARTIAL, _KEY, _VERSION = (
    attrgetter("after"),
    attrgetter("partial"),
    attrgetter("key"),
    attrgetter("version"),
)


def plan_full_rows(
    shape: Shape,
    events: Sequence[tuple[int, ChangeEvent]],
    stored: Mapping[str, object],
) -> Plan | None:
    """The plan of a batch of full-state events as ready rows, or ``None`` if it needs folding.

    Args:
        shape: the table's mapping; its ``columns`` give the order of each row's values.
        events: (batch index, event) for this table, in batch order.
        stored: versions already in the table by key (as for ``plan_events``).

    Returns:
        a :class:`Plan` whose ``rows`` hold one tuple per applied event (in ``shape.columns``
        order) and whose ``pending`` is empty; ``None`` when the batch is not of that kind.
    """
    count = len(events)
    vf = shape.version_field
    if count == 0 or vf is None:
        return None
    # C-level loops throughout (attrgetter, map, zip): a snapshot batch has thousands of
    # events, and a Python expression per event here costs as much as the rest of the plan.
    indexes, batch = cast(tuple[list[int], list[ChangeEvent]], map(list, zip(*events, strict=True)))
    afters = list(map(_AFTER, batch))
    first = afters[0]
    if first is None or vf not in first:
        return None  # a delete first, or no version field value
    names = list(first)
    width = len(names)
    try:
        if width < 2 or set(map(len, afters)) != {width}:
            return None  # events of different shapes
    except TypeError:
        return None  # a delete (no values)
    if any(map(_PARTIAL, batch)):
        return None
    keys: list[str] = list(map(_KEY, batch))
    if len(set(keys)) != count:
        return None  # a key twice: its events fold
    full = cast(list[Mapping[str, object]], afters)  # checked above: none is None
    try:
        # Every event has as many fields as the first and all of the first's names: the
        # same field set (a missing name raises KeyError).
        gathered = list(zip(*map(itemgetter(*names), full), strict=True))
    except KeyError:
        return None
    at_version = names.index(vf)
    versions = list(map(_VERSION, batch))
    if versions != list(gathered[at_version]) and any(
        version is not None and version != v
        for version, v in zip(versions, gathered[at_version], strict=True)
    ):
        return None  # a version that is not the version field's value
    fields = shape.fields
    present = [
        (name, column) for name, column in zip(names, gathered, strict=True) if name in fields
    ]
    unknown = {name for name in names if name not in fields}
    by_column: dict[str, Iterable[object]] = {}
    whole = shape.column_converters
    for name, column in present:
        target, convert, ready = fields[name]
        classes = set(map(type, column))
        classes.discard(_NONE)
        converted: Sequence[object] = column
        if classes and (len(classes) > 1 or ready not in classes):
            try:
                if name in whole:
                    converted = whole[name](column)
                else:
                    converted = [
                        v if v is None or v.__class__ is ready else convert(v) for v in column
                    ]
            except (ValueError, TypeError, OverflowError, ArithmeticError):
                return None  # event by event names the bad value
        by_column[target] = converted
    if shape.key_convert is None:
        by_column[shape.key_column] = keys
    else:
        try:
            by_column[shape.key_column] = [shape.key_convert(k) for k in keys]
        except (ValueError, TypeError, OverflowError, ArithmeticError):
            return None
    outcomes = dict.fromkeys(indexes, _APPLIED)
    if shape.deleted_column is not None:
        by_column[shape.deleted_column] = repeat(False, count)
    by_column[shape.synced_column] = repeat(shape.synced_value, count)
    rows = list(
        zip(
            *[by_column[c] if c in by_column else repeat(None, count) for c in shape.columns],
            strict=True,
        )
    )
    if stored:
        rows = _drop_stale(shape, rows, keys, indexes, stored, outcomes)
    return Plan([], outcomes, unknown, rows)


def _drop_stale(
    shape: Shape,
    rows: list[tuple[object, ...]],
    keys: list[str],
    indexes: list[int],
    stored: Mapping[str, object],
    outcomes: dict[int, Outcome],
) -> list[tuple[object, ...]]:
    """The rows whose version is not older than the stored row's; the others become STALE."""
    at = shape.columns.index(shape.version_column)
    kept: list[tuple[object, ...]] = []
    for row, key, index in zip(rows, keys, indexes, strict=True):
        current = stored.get(key)
        version = comparable_version(row[at])
        if current is not None and version is not None and version < current:  # type: ignore[operator]
            outcomes[index] = _STALE
        else:
            kept.append(row)
    return kept
