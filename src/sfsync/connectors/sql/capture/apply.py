"""A captured table as one side of a two-way sync: its rows read by key, and written by key
with sfsync's origin, so that the change log knows them for our own echoes.

Blocking functions on an open SQLAlchemy connection; the source runs them on its worker thread
(:meth:`~sfsync.connectors.sql.capture.source.SqlCaptureSource.lookup` and ``apply``).

Writes go into the user's own table, keyed by the object's key column (not into a table the
sink made), one transaction per batch, marked with
:func:`~sfsync.connectors.sql.capture.statements.origin_statements`: every change-log row that
transaction produces carries the origin, and the two-way runtime drops those as echoes. A
batch that fails as a whole is written again row by row, each in its own transaction, so one
bad row is rejected alone with the database's error and the others land.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

import sqlalchemy as sa

from sfsync.connectors.sql.capture.statements import origin_statements
from sfsync.connectors.sql.capture.tables import ResolvedTable
from sfsync.connectors.sql.errors import classify
from sfsync.connectors.sql.types import Dialect
from sfsync.core.conflicts import CHANGED_SINCE_READ
from sfsync.core.errors import RetryableError, SyncError
from sfsync.core.events import Operation
from sfsync.core.schema import FieldKind

CHUNK = 500
"""Keys per ``IN`` list when reading rows back."""


@dataclass(frozen=True, slots=True)
class RowChange:
    """One write into a captured table: ``values`` by field name (CREATE: the whole row;
    UPDATE: the fields to set; DELETE: nothing)."""

    op: Operation
    key: str
    values: Mapping[str, object]


def reflect(conn: sa.Connection, table: ResolvedTable, schema: str | None) -> sa.Table:
    """The table, reflected (its column types drive value conversion)."""
    return sa.Table(table.obj.table, sa.MetaData(), autoload_with=conn, schema=schema)


def lookup_rows(
    conn: sa.Connection, table: ResolvedTable, reflected: sa.Table, keys: Sequence[str]
) -> list[dict[str, object]]:
    """The rows whose key is among ``keys``: carried columns, normalised, under field names."""
    key_col = reflected.c[table.key_column]
    columns = [reflected.c[c] for c in table.columns]
    found: list[dict[str, object]] = []
    wanted = [k for k in dict.fromkeys(keys) if k]
    try:
        for start in range(0, len(wanted), CHUNK):
            chunk = [_key_value(key_col, k) for k in wanted[start : start + CHUNK]]
            rows = conn.execute(sa.select(*columns).where(key_col.in_(chunk))).mappings()
            found.extend(table.normalise(dict(row)) for row in rows)
    finally:
        conn.rollback()
    return found


Unchanged = Callable[[str, Mapping[str, object] | None], bool]
"""Asked, inside the write transaction with the row locked, whether the row of a key (its
carried columns, normalised, under field names; ``None``: no row) is still what the caller
read before deciding. ``False`` skips the change
(:data:`~sfsync.core.conflicts.CHANGED_SINCE_READ`)."""


def apply_changes(
    conn: sa.Connection,
    dialect: Dialect,
    schema: str | None,
    table: ResolvedTable,
    reflected: sa.Table,
    origin: str | None,
    changes: Sequence[RowChange],
    unchanged: Unchanged | None = None,
) -> list[SyncError | None]:
    """Write ``changes`` marked with ``origin`` (``None``: unmarked, for a table without a
    change log); per change, ``None`` or why it was not written.

    With ``unchanged``, each change is written only if its row still is what the caller read
    (the rows are locked first: ``SELECT ... FOR UPDATE`` on PostgreSQL and MariaDB; SQLite's
    write transaction already excludes other writers), so an edit made between the caller's
    read and this write is never overwritten: that change gets a :class:`RetryableError` with
    code :data:`~sfsync.core.conflicts.CHANGED_SINCE_READ` instead.

    Raises:
        RetryableError: the database is unreachable or the transaction could not commit
            for a reason that may pass (a deadlock, a lost connection).
    """
    if not changes:
        return []
    try:
        return _in_transaction(conn, dialect, schema, origin, table, reflected, changes, unchanged)
    except sa.exc.SQLAlchemyError as exc:
        conn.rollback()
        error = classify(exc, during=f"writing {table.obj.table}")
        if isinstance(error, RetryableError):
            raise error from exc
        if len(changes) == 1:
            return [error]
    results: list[SyncError | None] = []
    for change in changes:  # one bad row must not hold back the others
        try:
            results.extend(
                _in_transaction(
                    conn, dialect, schema, origin, table, reflected, [change], unchanged
                )
            )
        except sa.exc.SQLAlchemyError as exc:
            conn.rollback()
            error = classify(exc, during=f"writing {table.obj.table} {change.key}")
            if isinstance(error, RetryableError):
                raise error from exc
            results.append(error)
    return results


def _in_transaction(
    conn: sa.Connection,
    dialect: Dialect,
    schema: str | None,
    origin: str | None,
    table: ResolvedTable,
    reflected: sa.Table,
    changes: Sequence[RowChange],
    unchanged: Unchanged | None,
) -> list[SyncError | None]:
    conn.rollback()  # start clean: a read may have left a transaction open
    unmark = None
    if origin is not None:
        mark, unmark = origin_statements(dialect, schema, origin)
        conn.execute(sa.text(mark))  # on SQLite this takes the write lock
    results: list[SyncError | None] = [None] * len(changes)
    if unchanged is not None:
        current = _locked_rows(conn, table, reflected, [c.key for c in changes])
        for index, change in enumerate(changes):
            if not unchanged(change.key, current.get(change.key)):
                results[index] = RetryableError(
                    f"{table.obj.table} {change.key} changed after it was read; not written "
                    "(the newer change is decided on the next read)",
                    code=CHANGED_SINCE_READ,
                )
    for change, result in zip(changes, results, strict=True):
        if result is None:
            conn.execute(_statement(table, reflected, change))
    if unmark is not None:
        conn.execute(sa.text(unmark))
    conn.commit()
    return results


def _locked_rows(
    conn: sa.Connection, table: ResolvedTable, reflected: sa.Table, keys: Sequence[str]
) -> dict[str, dict[str, object]]:
    key_col = reflected.c[table.key_column]
    columns = [reflected.c[c] for c in table.columns]
    query = sa.select(*columns).where(key_col.in_([_key_value(key_col, k) for k in keys]))
    rows = conn.execute(query.with_for_update()).mappings()
    found = (table.normalise(dict(row)) for row in rows)
    return {str(row[table.obj.key]): row for row in found}


def _statement(table: ResolvedTable, reflected: sa.Table, change: RowChange) -> sa.Executable:
    key_col = reflected.c[table.key_column]
    key = _key_value(key_col, change.key)
    if change.op is Operation.DELETE:
        return sa.delete(reflected).where(key_col == key)
    columns = {field: column for column, field in table.field_names.items()}
    kinds = {f.name: f.kind for f in table.schema}
    values: dict[str, Any] = {}
    for field, value in change.values.items():
        column = columns.get(field)
        if column is None or column == table.key_column:
            continue
        values[column] = _to_column(reflected.c[column], kinds.get(field), value)
    if change.op is Operation.CREATE:
        values[table.key_column] = key
        return sa.insert(reflected).values(values)
    return sa.update(reflected).where(key_col == key).values(values)


def _key_value(column: sa.Column[Any], key: str) -> object:
    """The key as the column holds it (an integer key column compares with an int)."""
    if isinstance(column.type, sa.Integer):
        try:
            return int(key)
        except ValueError:
            return key
    return key


def _to_column(column: sa.Column[Any], kind: FieldKind | None, value: object) -> object:
    """A canonical value (:mod:`sfsync.core.values`) as the column's driver takes it."""
    if value is None:
        return None
    if kind is FieldKind.DATE and isinstance(value, str):
        return date.fromisoformat(value)
    if kind is FieldKind.TIME and isinstance(value, str):
        return time.fromisoformat(value)
    if kind is FieldKind.DATETIME:
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        if isinstance(value, datetime) and not getattr(column.type, "timezone", False):
            return value.replace(tzinfo=None)  # a column without a zone holds UTC
    return value
