"""The SQL sink's fallback when the database refuses a batch: one row at a time.

A batch is applied in one statement (or one COPY) per table. When the database refuses it for a
row-level reason (a value too long, out of range, a constraint), the sink rolls the batch back
and calls :func:`apply_row_by_row`: each pending row in its own savepoint, so that exactly the
rows the database refuses get REJECTED outcomes, with the database's reason and, where the
schema can tell, which field broke which rule; every other row is applied.
"""

from __future__ import annotations

from collections.abc import Mapping

import sqlalchemy as sa

from sfsync.connectors.sql.errors import DATABASE_ERRORS, classify
from sfsync.connectors.sql.plan import Pending, Plan, Shape, db_keys, plan_events
from sfsync.connectors.sql.types import explain_rejection
from sfsync.connectors.sql.writer import TableWriter
from sfsync.core.errors import SkippableError
from sfsync.core.events import ChangeEvent
from sfsync.spi.sink import Outcome


def apply_row_by_row(
    conn: sa.Connection,
    writer: TableWriter,
    shape: Shape,
    plan: Plan,
    events: Mapping[int, ChangeEvent],
) -> None:
    """Apply each of ``plan``'s pending rows in its own savepoint; reject exactly those that fail.

    ``plan.outcomes`` is updated in place. A refused row folded from several events is retried
    one event at a time, so that the events before the bad one are still applied (as applying
    them one by one would do).

    Raises:
        Exception: a database error that is not about the row (a lost connection, a deadlock),
            for the caller to classify with the transaction's fate.
    """
    for op in plan.pending:
        error = _try_apply(conn, writer, op)
        if error is None:
            continue
        if len(op.events) == 1:
            _reject(writer, plan, op, error)
            continue
        for index in op.events:
            single = [(index, events[index])]
            stored = writer.read_versions(db_keys(shape, single))
            sub_plan = plan_events(shape, single, stored)
            plan.outcomes[index] = sub_plan.outcomes[index]
            for sub_op in sub_plan.pending:
                sub_error = _try_apply(conn, writer, sub_op)
                if sub_error is not None:
                    _reject(writer, plan, sub_op, sub_error)


def _try_apply(conn: sa.Connection, writer: TableWriter, op: Pending) -> SkippableError | None:
    """Apply ``op`` in a savepoint; the row-level error if the database refused it."""
    savepoint = conn.begin_nested()
    try:
        writer.apply([op], bulk=False)
        savepoint.commit()
    except DATABASE_ERRORS as exc:
        error = classify(exc, during=f"writing {writer.state.schema.name} {op.key}")
        if not isinstance(error, SkippableError):
            raise
        savepoint.rollback()
        return error
    return None


def _reject(writer: TableWriter, plan: Plan, op: Pending, error: SkippableError) -> None:
    columns = writer.state.field_columns
    values = {name: op.values[col] for name, col in columns.items() if col in op.values}
    reasons = explain_rejection(writer.state.schema.fields, values)
    message = f"{writer.state.schema.name} {op.key}: {error.message}"
    if reasons:
        message += "; " + "; ".join(reasons)
    rejected = Outcome.rejected(SkippableError(message, code=error.code, hint=error.hint))
    for index in op.events:
        plan.outcomes[index] = rejected
