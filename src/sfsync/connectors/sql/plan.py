"""From a batch of events for one table to one pending row operation per key.

Applying events one by one would cost a round trip each; instead :func:`plan_events` folds the
events of each key, in batch order, into one :class:`Pending` operation and decides every
event's outcome in Python, so the database sees one statement per group of rows:

* an event whose version is older than the newest known for its key (stored in the table, or
  seen earlier in the batch) is STALE and ignored; an equal version is applied again (same
  values, so idempotent);
* a full event replaces the pending values (the last full state wins); a partial one is merged
  over them (fields it does not carry stay as they are, never nulled);
* a hard DELETE makes the pending operation a delete; a later event in the batch turns it
  into "delete, then insert a fresh row" (a partial one with only its fields), which is what
  applying them one by one would give. A hard delete leaves no trace of its version: an
  older event arriving after it recreates the row, exactly as one-by-one application would
  (soft deletes keep the version and refuse it);
* with soft deletes, DELETE is a partial update setting ``_sfsync_deleted`` and every other
  event clears it.

The result is exactly what applying the events in order under the version guard would leave,
which the property tests check against that sequential reading.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sfsync.connectors.sql.ddl import DELETED, SYNCED_AT, TableState
from sfsync.connectors.sql.types import (
    TEXT_KINDS,
    ColumnConverter,
    Converter,
    Dialect,
    canonical_version_text,
    column_converter,
    comparable_version,
    converter,
    ready_class,
    sqlite_datetime_text,
)
from sfsync.core.errors import SkippableError
from sfsync.core.events import ChangeEvent, Operation
from sfsync.spi.sink import Outcome, OutcomeKind


@dataclass(frozen=True, slots=True)
class Shape:
    """How one entity's events map onto its table.

    Attributes:
        entity: the entity name (for messages).
        key_column: the primary-key column.
        key_convert: turns ``ChangeEvent.key`` (text) into the key column's value, or ``None``
            when the key column is text.
        fields: per source field: its column, the converter for non-null values, and the one
            class whose values need no conversion (``str`` for text, ``bool`` for booleans..;
            ``type(None)`` when every value must be converted).
        template: every column written by a full event, in table order, all ``None``.
        columns: the same columns as a tuple (the order of a full row's values).
        column_converters: per source field, a converter of a whole column where its kind
            has one (:func:`~sfsync.connectors.sql.types.column_converter`).
        version_field: the schema's version field, if any.
        version_column: the column holding versions.
        version_convert: turns ``ChangeEvent.version`` text into the version column's value.
        deleted_column: ``_sfsync_deleted`` with soft deletes, else ``None``.
        synced_column: ``_sfsync_synced_at``.
        synced_value: the value written there for this batch.
    """

    entity: str
    key_column: str
    key_convert: Converter | None
    fields: Mapping[str, tuple[str, Converter, type]]
    template: Mapping[str, object]
    columns: tuple[str, ...]
    column_converters: Mapping[str, ColumnConverter]
    version_field: str | None
    version_column: str
    version_convert: Callable[[str], object]
    deleted_column: str | None
    synced_column: str
    synced_value: object


@dataclass(slots=True)
class Pending:
    """The one operation a key needs after folding its events.

    Attributes:
        key: the key column's value.
        delete: remove the row (hard delete).
        delete_first: remove the row (guarded by ``delete_version``) before writing ``values``:
            a hard delete followed by newer events in the same batch.
        delete_version: the version of the batch's first delete of the key: the one that
            removes the stored row (the guard of the DELETE statement).
        values: column -> value to write (the key, version and bookkeeping included).
        partial: write only ``values``' columns; otherwise every field column is written and
            the ones missing from ``values`` become NULL.
        version: the version column's value, or ``None`` when unversioned.
        events: batch indexes of the events folded into this operation.
    """

    key: object
    delete: bool
    values: dict[str, object]
    partial: bool
    version: object
    events: list[int] = field(default_factory=list)
    delete_first: bool = False
    delete_version: object = None


@dataclass(slots=True)
class Plan:
    """What to do for one table: pending operations and the outcomes decided in Python.

    Attributes:
        pending: the folded operations (empty when ``rows`` is set).
        outcomes: per batch index, the outcome decided in Python.
        unknown_fields: fields the events carry that the table has no column for.
        rows: full rows in the shape's column order, ready to insert-or-update, when the
            batch took the fast path (:func:`~sfsync.connectors.sql.rows.plan_full_rows`).
    """

    pending: list[Pending]
    outcomes: dict[int, Outcome]
    unknown_fields: set[str]
    rows: list[tuple[object, ...]] | None = None


_STALE = Outcome(OutcomeKind.STALE)
_APPLIED = Outcome.applied()


def plan_events(
    shape: Shape,
    events: Iterable[tuple[int, ChangeEvent]],
    stored: Mapping[str, object],
) -> Plan:
    """Fold ``events`` (batch index, event) into pending operations.

    Args:
        shape: the table's mapping.
        events: the events for this table, in batch order.
        stored: versions already in the table by key, in :func:`comparable_version` form
            (``None`` for a row without a version); keys absent from it have no row.
    """
    pending: dict[str, Pending] = {}
    newest: dict[str, object] = {}
    outcomes: dict[int, Outcome] = {}
    unknown: set[str] = set()
    key_column, deleted_column, version_column = (
        shape.key_column,
        shape.deleted_column,
        shape.version_column,
    )
    synced_column, synced_value = shape.synced_column, shape.synced_value
    for index, event in events:
        key = event.key
        try:
            db_key = key if shape.key_convert is None else shape.key_convert(key)
            values = None if event.op is Operation.DELETE else _values_of(shape, event, unknown)
            version = _version_of(shape, event, values)
        except (ValueError, TypeError, OverflowError) as exc:
            outcomes[index] = Outcome.rejected(
                SkippableError(f"{shape.entity} {key}: {exc}", code="BAD_VALUE")
            )
            continue
        current = newest[key] if key in newest else stored.get(key)
        comparable = comparable_version(version)
        if comparable is not None and current is not None and comparable < current:  # type: ignore[operator]
            outcomes[index] = _STALE
            continue
        if event.op is Operation.DELETE and shape.deleted_column is None:
            newest[key] = None  # the row is gone; whatever comes next starts afresh
        elif comparable is not None:
            newest[key] = comparable
        outcomes[index] = _APPLIED
        op = pending.get(key)
        if op is None and values is not None and not event.partial:
            # The bulk case, a key's first event carrying a full state: no folding needed.
            values[key_column] = db_key
            if deleted_column is not None:
                values[deleted_column] = False
            values[synced_column] = synced_value
            if version is not None:
                values[version_column] = version
            pending[key] = Pending(db_key, False, values, False, version, [index])
            continue
        if op is None:
            op = pending[key] = Pending(db_key, False, {key_column: db_key}, True, None)
        op.events.append(index)
        _fold(shape, op, event, values, version)
    return Plan(list(pending.values()), outcomes, unknown)


def _fold(
    shape: Shape, op: Pending, event: ChangeEvent, values: dict[str, object] | None, version: object
) -> None:
    deleted = shape.deleted_column
    if values is None and deleted is None:  # a hard delete
        if not (op.delete or op.delete_first):
            # The first delete is the one checked against the stored row; later ones in the
            # batch act on a row this batch made, so the guard keeps the first's version.
            op.delete_version = version
        op.delete, op.partial = True, True
        op.values = {shape.key_column: op.key}
    elif values is None:  # a soft delete: a partial update of the flag
        op.values[str(deleted)] = True
    elif op.delete or not event.partial:
        # A full state replaces what is pending. After a hard delete the row is gone, so even
        # a partial event starts a fresh row whose other fields are NULL: a full write.
        op.delete_first = op.delete_first or op.delete
        op.delete, op.partial = False, False
        if event.partial:
            values = {**shape.template, **values}
        values[shape.key_column] = op.key
        op.values = values
    else:
        op.values.update(values)
    if not op.delete:
        if values is not None and shape.deleted_column is not None:
            op.values[shape.deleted_column] = False
        op.values[shape.synced_column] = shape.synced_value
    if version is not None:
        op.values[shape.version_column] = version
    op.version = version if version is not None else (None if op.delete else op.version)


def _version_of(shape: Shape, event: ChangeEvent, values: dict[str, object] | None) -> object:
    vf = shape.version_field
    after = event.after
    if event.version is not None:
        # Usually the version is the version field's value: reuse the value converted already.
        if (
            values is not None
            and vf is not None
            and after is not None
            and after.get(vf) == event.version
        ):
            return values[shape.version_column]
        try:
            return shape.version_convert(event.version)
        except (ValueError, TypeError, ArithmeticError) as exc:
            raise ValueError(f"version {event.version!r}: {exc}") from exc
    if values is not None and vf is not None and shape.version_column in values:
        return values[shape.version_column]
    return None


def _values_of(shape: Shape, event: ChangeEvent, unknown: set[str]) -> dict[str, object]:
    # The bulk path: one pass over the event's values, no per-field wrapper calls; text that
    # is already text is taken as it is. A full event starts from the template (every column,
    # in table order), so the writer can turn it into a row tuple without lookups.
    fields = shape.fields
    values: dict[str, object] = {} if event.partial else dict(shape.template)
    for name, raw in (event.after or {}).items():
        target = fields.get(name)
        if target is None:
            unknown.add(name)
            continue
        column, convert, ready = target
        if raw is not None and raw.__class__ is not ready:
            try:
                raw = convert(raw)
            except (ValueError, TypeError, OverflowError, ArithmeticError) as exc:
                raise ValueError(f"field {name!r}: {exc}") from exc
        values[column] = raw
    return values


def build_shape(
    state: TableState, columns: Sequence[str], dialect: Dialect, now: datetime
) -> Shape:
    """The :class:`Shape` of a prepared table.

    Args:
        state: the table as prepared.
        columns: the columns a full event writes, in table order (the writer's).
        dialect: the database family, for value conversion.
        now: the time written to ``_sfsync_synced_at``.
    """
    schema = state.schema
    fields = {
        spec.name: (
            state.field_columns[spec.name],
            converter(spec.kind, dialect, nullable=False),
            ready_class(spec.kind, dialect),
        )
        for spec in schema
        if spec.name in state.field_columns
    }
    key_spec = schema.fields[schema.key]
    vf = schema.version_field
    version: Callable[[str], object] = canonical_version_text
    if vf is not None:
        version = fields[vf][1]
    synced: object = now
    if dialect == "mysql":
        synced = now.replace(tzinfo=None)  # DATETIME holds UTC without a zone
    elif dialect == "sqlite":
        synced = sqlite_datetime_text(now)
    return Shape(
        entity=schema.name,
        key_column=state.key_column,
        key_convert=None
        if key_spec.kind in TEXT_KINDS
        else converter(key_spec.kind, dialect, nullable=False),
        fields=fields,
        template=dict.fromkeys(columns),
        columns=tuple(columns),
        column_converters={
            spec.name: convert
            for spec in schema
            if spec.name in fields and (convert := column_converter(spec.kind, dialect)) is not None
        },
        version_field=vf,
        version_column=state.version_column,
        version_convert=version,
        deleted_column=DELETED if state.soft_delete else None,
        synced_column=SYNCED_AT,
        synced_value=synced,
    )


def db_keys(shape: Shape, events: list[tuple[int, ChangeEvent]]) -> list[object]:
    """The distinct keys of ``events`` as the key column holds them (unreadable ones left out:
    the planner rejects their events)."""
    keys = dict.fromkeys(event.key for _, event in events)
    convert = shape.key_convert
    if convert is None:
        return list(keys)
    found: list[object] = []
    for key in keys:
        try:
            found.append(convert(key))
        except (ValueError, TypeError, ArithmeticError):
            continue
    return found
