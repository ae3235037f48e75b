"""The SQL sink's fast path for new records: COPY without reading stored versions first.

A snapshot into a new table sends Id-ordered batches that never repeat a key. Reading the
stored versions of thousands of keys that cannot exist costs a query per batch (about 5 % of a
1M-record snapshot, measured before this path), and parsing a Bulk API page into events costs
far more than the COPY itself. So while a table is *fresh* for an entity (its last batch found
none of its keys stored, or the table is empty), :class:`FreshLoads` copies:

* :meth:`FreshLoads.write_rows`: a snapshot batch's planned rows, straight into the table;
* :meth:`FreshLoads.write_page`: a CSV page (:class:`~sfsync.core.events.RecordPage`) as it
  came off the wire, with PostgreSQL's ``COPY ... (FORMAT csv)``.

Both run in a savepoint. Whatever the database refuses (a stored key that another writer added,
a value the column refuses, a row count other than the page's) rolls the copy back and returns
``None``: the caller then applies the records the guarded way (planner, version guard, row by
row), which names and dead-letters a bad record. Only a failure that is not about the rows (a
lost connection, a deadlock) is raised, through the sink's ``failure`` callback.
"""

from __future__ import annotations

import logging
from typing import Protocol

import sqlalchemy as sa

from sfsync.connectors.sql.errors import DATABASE_ERRORS, classify
from sfsync.connectors.sql.plan import Plan, Shape
from sfsync.connectors.sql.rows import plan_full_rows
from sfsync.connectors.sql.writer import COPY_THRESHOLD, TableWriter
from sfsync.core.errors import SkippableError, SyncError
from sfsync.core.events import ChangeEvent, RecordPage
from sfsync.spi.sink import Outcome

_APPLIED = Outcome.applied()


class Failure(Protocol):
    """The sink's cleanup after a failed statement: the error to raise for ``exc``."""

    def __call__(self, exc: Exception, savepoint: object, *, during: str) -> SyncError: ...


class FreshLoads:
    """Which entities' tables are fresh, and the copies that rely on it.

    Args:
        dialect: the database's dialect name; rows are copied only on ``"postgresql"``.
        failure: the sink's transaction cleanup, for a failure that is not about the rows.
    """

    def __init__(self, dialect: str, failure: Failure) -> None:
        self._dialect = dialect
        self._failure = failure
        self._fresh: set[str] = set()
        self.pages_loaded = 0
        """CSV pages loaded as they are (``COPY``): a figure for logs and tests."""

    def is_fresh(self, entity: str) -> bool:
        """Whether ``entity``'s last batch found none of its keys stored."""
        return entity in self._fresh

    def note(self, entity: str, *, fresh: bool) -> None:
        """Record what the guarded path learned of ``entity``'s last batch."""
        if fresh:
            self._fresh.add(entity)
        else:
            self._fresh.discard(entity)

    def copies_new(self, rows: list[tuple[object, ...]]) -> bool:
        """Whether ``apply_rows(rows, new_keys=True)`` is a COPY straight into the table, which
        a stored key makes fail (elsewhere an upsert would apply its guard silently, and the
        outcome of an event the guard refused would not be STALE)."""
        return self._dialect == "postgresql" and len(rows) >= COPY_THRESHOLD

    def write_rows(
        self,
        conn: sa.Connection,
        writer: TableWriter,
        shape: Shape,
        events: list[tuple[int, ChangeEvent]],
    ) -> Plan | None:
        """Copy a snapshot batch of new records: its plan, applied; ``None`` when the batch
        needs the guarded path.

        Call only while :meth:`is_fresh`. Should a key exist after all (another writer, a
        table filled meanwhile), the primary key refuses the COPY; it is rolled back and the
        entity is no longer fresh.
        """
        plan = plan_full_rows(shape, events, {})
        if plan is None or plan.rows is None or not self.copies_new(plan.rows):
            return None
        savepoint = conn.begin_nested()
        try:
            writer.apply_rows(plan.rows, new_keys=True)
            savepoint.commit()
        except DATABASE_ERRORS as exc:
            if not isinstance(classify(exc, during=f"writing {shape.entity}"), SkippableError):
                raise
            savepoint.rollback()
            self._fresh.discard(shape.entity)
            return None
        return plan

    def write_page(
        self, conn: sa.Connection, writer: TableWriter, page: RecordPage, logger: logging.Logger
    ) -> list[Outcome] | None:
        """Load a CSV page of new records as it is; ``None`` when its events must be applied.

        Taken while the table is fresh for the entity or empty, and the page's columns can be
        loaded as text (:meth:`TableWriter.page_copy_sql`). Every refusal rolls the page back.
        """
        sql = writer.page_copy_sql(page.columns)
        if sql is None:
            return None
        if page.entity not in self._fresh and not writer.is_empty():
            return None
        savepoint = conn.begin_nested()
        try:
            loaded = writer.copy_page(sql, page.csv)
        except DATABASE_ERRORS as exc:
            during = f"loading a page of {page.entity}"
            error = classify(exc, during=during)
            if not isinstance(error, SkippableError):
                raise self._failure(exc, savepoint, during=during) from exc
            savepoint.rollback()
            self._fresh.discard(page.entity)
            logger.info(
                "%s: a page of %d records was not loaded as CSV (%s); applying its records",
                page.entity,
                page.count,
                error,
            )
            return None
        if loaded != page.count:
            savepoint.rollback()
            logger.warning(
                "%s: COPY loaded %d rows of a page of %d records; applying its records",
                page.entity,
                loaded,
                page.count,
            )
            return None
        savepoint.commit()
        self._fresh.add(page.entity)
        self.pages_loaded += 1
        return [_APPLIED] * page.count
