"""The SQL sink: idempotent, version-guarded upserts with the checkpoint in the same transaction.

Lifecycle (see :mod:`sfsync.spi.sink`): ``open`` connects and creates the bookkeeping tables;
``prepare(schema)`` creates or evolves the entity's table (:mod:`.ddl`) and commits that;
``write(batch)`` plans each table's events in Python (:mod:`.plan`) and applies them in the
one open transaction (:mod:`.writer`); ``flush(checkpoint)`` stores the checkpoint in
``_sfsync_checkpoints`` and commits data and checkpoint together; ``aclose`` rolls back what
was not flushed. So after a crash the table and the checkpoint always agree, and replaying from
the checkpoint re-applies events idempotently.

Failures inside ``write``:

* a value the database refuses (too long, out of range, a constraint): the batch is applied
  again row by row (:mod:`.rowwise`), each row in its own savepoint, so exactly the bad rows
  get REJECTED outcomes (a :class:`SkippableError` naming the field or constraint) and the
  rest is applied; a copy into a fresh table (:mod:`.fresh`) that is refused is rolled back
  and its records take this guarded path;
* a lost connection or a deadlock: :class:`RetryableError` if nothing unflushed was lost with
  the transaction (the runtime retries the batch), else :class:`FatalError`, since batches
  already reported as applied are gone; a restart resumes from the checkpoint, which is
  consistent with the data.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from operator import attrgetter, itemgetter
from types import MappingProxyType

import sqlalchemy as sa

from sfsync.connectors.sql import checkpoints
from sfsync.connectors.sql.client import ConnectionSettings, SqlClient
from sfsync.connectors.sql.config import PostgresConnection
from sfsync.connectors.sql.ddl import (
    DELETED,
    SYNCED_AT,
    VERSION,
    create_bookkeeping_tables,
    prepare_table,
)
from sfsync.connectors.sql.errors import DATABASE_ERRORS, classify
from sfsync.connectors.sql.fresh import FreshLoads
from sfsync.connectors.sql.plan import Plan, Shape, build_shape, db_keys, plan_events
from sfsync.connectors.sql.rows import plan_full_rows
from sfsync.connectors.sql.rowwise import apply_row_by_row
from sfsync.connectors.sql.writer import TableWriter
from sfsync.core.checkpoint import Checkpoint
from sfsync.core.errors import FatalError, RetryableError, SkippableError, SyncError
from sfsync.core.events import Batch, ChangeEvent, Operation
from sfsync.core.schema import EntitySchema
from sfsync.spi.sink import Outcome, SinkCapabilities, SinkContext

_ANY_DB_ERROR: tuple[type[Exception], ...] = (sa.exc.SQLAlchemyError, *DATABASE_ERRORS)
_ENTITY, _OP, _EVENT = attrgetter("entity"), attrgetter("op"), itemgetter(1)
_APPLIED = Outcome.applied()


class DeleteMode(Enum):
    """How DELETE events are applied."""

    HARD = "hard"
    """Remove the row."""
    SOFT = "soft"
    """Keep the row and set ``_sfsync_deleted`` (an UNDELETE or any later change clears it)."""


@dataclass(frozen=True, slots=True)
class TableOptions:
    """Per-entity settings.

    Attributes:
        table: the table name; default the entity name in lower case.
        deletes: hard or soft deletes.
    """

    table: str | None = None
    deletes: DeleteMode = DeleteMode.HARD


class SqlSink:
    """A :class:`~sfsync.spi.sink.Sink` writing into PostgreSQL, MySQL/MariaDB or SQLite.

    Args:
        settings: the connection section (:mod:`sfsync.connectors.sql.config`).
        tables: per entity name, its :class:`TableOptions`; entities not listed get defaults.
        sync_id: the key of this sync's row in ``_sfsync_checkpoints``; default the sync name
            from the context given to :meth:`open`.
    """

    def __init__(
        self,
        settings: ConnectionSettings,
        *,
        tables: Mapping[str, TableOptions] | None = None,
        sync_id: str | None = None,
    ) -> None:
        self._client = SqlClient(settings)
        self._options = MappingProxyType(dict(tables or {}))
        self._sync_id = sync_id
        self._ctx: SinkContext | None = None
        self._schemas: dict[str, EntitySchema] = {}
        self._writers: dict[str, TableWriter] = {}
        self._fresh = FreshLoads(self._client.dialect, self._transaction_failure)
        self._unflushed = 0  # batches written since the last commit
        self._closed = False
        self._warned: set[tuple[str, str]] = set()
        self.capabilities = SinkCapabilities(
            deletes=True,
            partial_updates=True,
            max_batch=settings.batch_size,
            stores_checkpoints=True,
            record_pages=isinstance(settings, PostgresConnection) and settings.load_csv_pages,
        )

    @property
    def pages_loaded(self) -> int:
        """CSV pages loaded as they are (``COPY``): a figure for logs and tests."""
        return self._fresh.pages_loaded

    @property
    def dialect(self) -> str:
        """``"postgresql"``, ``"mysql"`` or ``"sqlite"``."""
        return self._client.dialect

    def table_name(self, entity: str) -> str:
        """The table ``entity`` is written to."""
        options = self._options.get(entity)
        return (options.table if options and options.table else None) or entity.lower()

    def _soft(self, entity: str) -> bool:
        options = self._options.get(entity)
        return options is not None and options.deletes is DeleteMode.SOFT

    @property
    def _context(self) -> SinkContext:
        if self._ctx is None:
            raise RuntimeError("SqlSink.open() was not called")
        return self._ctx

    # --- lifecycle ----------------------------------------------------------------------------

    async def open(self, ctx: SinkContext) -> None:
        self._ctx = ctx
        if self._sync_id is None:
            self._sync_id = ctx.sync_name
        self._client.application_name = f"sfsync sink {self._sync_id}"[:63]
        self._closed = False
        await self._client.run(self._open_sync)

    def _open_sync(self) -> None:
        self._client.connect()
        try:
            create_bookkeeping_tables(self._client)
            self._client.conn.commit()
        except sa.exc.SQLAlchemyError as exc:
            raise classify(exc, during="creating the bookkeeping tables") from exc

    async def prepare(self, schema: EntitySchema) -> list[str]:
        return await self._client.run(self._prepare_sync, schema)

    def _prepare_sync(self, schema: EntitySchema) -> list[str]:
        self._ensure_connected()
        table = self.table_name(schema.name)
        conn = self._client.conn
        # A savepoint keeps unflushed data if the DDL fails (PostgreSQL would otherwise abort the
        # whole transaction). Not on MySQL: its DDL commits implicitly, ending any savepoint.
        savepoint = conn.begin_nested() if self.dialect != "mysql" else None
        try:
            state, notices = prepare_table(
                self._client,
                schema,
                table,
                soft_delete=self._soft(schema.name),
                now=self._context.clock.now(),
            )
            if savepoint is not None:
                savepoint.commit()
            # DDL is committed at once (MySQL would commit it implicitly anyway). Data written
            # before it is committed with it, which is safe: it is ahead of the checkpoint and
            # replays apply idempotently.
            conn.commit()
            self._unflushed = 0
        except SyncError:
            if savepoint is not None and savepoint.is_active:
                savepoint.rollback()
            raise
        except _ANY_DB_ERROR as exc:
            raise self._transaction_failure(
                exc, savepoint, during=f"preparing table {table!r}"
            ) from exc
        self._schemas[schema.name] = schema
        self._writers[schema.name] = TableWriter(self._client, state)
        for notice in notices:
            self._context.logger.warning("%s", notice)
        return notices

    async def write(self, batch: Batch) -> list[Outcome]:
        if not batch.events:
            return []
        return await self._client.run(self._write_sync, batch)

    async def flush(self, checkpoint: Checkpoint | None) -> None:
        await self._client.run(self._flush_sync, checkpoint)

    async def load_checkpoint(self) -> Checkpoint | None:
        return await self._client.run(self._load_checkpoint_sync)

    async def forget_checkpoint(self) -> None:
        await self._client.run(self._forget_checkpoint_sync)

    async def aclose(self) -> None:
        self._closed = True
        await self._client.run(self._client.dispose)
        self._writers.clear()

    # --- write ------------------------------------------------------------------------------

    def _ensure_connected(self) -> None:
        if self._closed:
            raise RuntimeError("the SQL sink is closed; open() it again first")
        if not self._client.connected:
            self._client.connect()
            # Staging tables and cached state lived in the old session.
            self._writers = {
                name: TableWriter(self._client, w.state) for name, w in self._writers.items()
            }

    def _write_sync(self, batch: Batch) -> list[Outcome]:
        self._ensure_connected()
        page = batch.page
        writer = self._writers.get(page.entity) if page is not None else None
        if page is not None and writer is not None:  # else the events path says what is wrong
            loaded = self._fresh.write_page(self._client.conn, writer, page, self._context.logger)
            if loaded is not None:
                self._unflushed += 1
                return loaded
        events = batch.events
        entities = set(map(_ENTITY, events))
        by_entity: dict[str, list[tuple[int, ChangeEvent]]]
        if len(entities) == 1:  # a snapshot's batches: no step per event here
            by_entity = {entities.pop(): list(enumerate(events))}
        else:
            by_entity = defaultdict(list)
            for index, event in enumerate(events):
                by_entity[event.entity].append((index, event))
        outcomes: dict[int, Outcome] = {}
        savepoint = None
        try:
            savepoint = self._client.conn.begin_nested()
            for entity, group in by_entity.items():
                outcomes.update(self._write_entity(entity, group))
            savepoint.commit()
        except _ANY_DB_ERROR as exc:
            raise self._transaction_failure(exc, savepoint, during="writing a batch") from exc
        except BaseException:
            # Not a database failure (a batch before prepare(), a cancellation): undo the
            # batch's partial work so the transaction holds only whole batches.
            if savepoint is not None and savepoint.is_active:
                with contextlib.suppress(*_ANY_DB_ERROR):
                    savepoint.rollback()
            raise
        self._unflushed += 1
        return list(map(outcomes.__getitem__, range(len(events))))

    def _write_entity(
        self, entity: str, events: list[tuple[int, ChangeEvent]]
    ) -> dict[int, Outcome]:
        writer = self._writers.get(entity)
        if writer is None:
            raise FatalError(
                f"events for {entity} arrived before prepare() described it",
                hint="this is a bug in the runtime; report it with the log",
            )
        shape = self._shape(writer)
        # Only a snapshot's batches (READ events) go without reading versions: changes mostly
        # touch stored rows, where trying the COPY first would fail and log a duplicate key.
        snapshot = set(map(_OP, map(_EVENT, events))) == {Operation.READ}
        if snapshot and self._fresh.is_fresh(entity):
            fresh = self._fresh.write_rows(self._client.conn, writer, shape, events)
            if fresh is not None:
                self._warn_unknown(entity, fresh)
                return fresh.outcomes
        stored = writer.read_versions(db_keys(shape, events))
        # Full states of distinct records (a snapshot) are planned column-wise; anything
        # else is folded event by event.
        plan = plan_full_rows(shape, events, stored) or plan_events(shape, events, stored)
        self._warn_unknown(entity, plan)
        savepoint = self._client.conn.begin_nested()
        try:
            if plan.rows is not None:
                writer.apply_rows(plan.rows, new_keys=not stored)
            else:
                writer.apply(plan.pending)
            savepoint.commit()
        except DATABASE_ERRORS as exc:
            error = classify(exc, during=f"writing {entity}")
            if not isinstance(error, SkippableError):
                raise
            savepoint.rollback()
            writer.forget_staging()
            if plan.rows is not None:
                # Row by row needs the folded operations (and another writer may have added
                # rows since the versions were read).
                plan = plan_events(shape, events, writer.read_versions(db_keys(shape, events)))
            apply_row_by_row(self._client.conn, writer, shape, plan, dict(events))
            self._fresh.note(entity, fresh=False)
            return plan.outcomes
        self._fresh.note(
            entity,
            fresh=snapshot
            and not stored
            and plan.rows is not None
            and self._fresh.copies_new(plan.rows),
        )
        return plan.outcomes

    def _transaction_failure(self, exc: Exception, savepoint: object, *, during: str) -> SyncError:
        """The error ``write``/``prepare`` raise for ``exc``, after cleaning up the transaction.

        Rolls back to ``savepoint`` when the transaction survived; when it did not (connection
        lost, MySQL deadlock, no savepoint to return to), closes the connection so that the
        next call reconnects, and turns the error fatal if unflushed batches were lost with it.
        """
        error = classify(exc, during=during)
        if isinstance(error, SkippableError):
            # A row-level refusal outside the per-row path (reading versions, say): write()
            # may only raise retryable or fatal errors, and this one would repeat on retry.
            error = FatalError(
                f"the database refused a whole batch: {error.message}",
                hint="report this with the log; nothing after the last checkpoint was committed",
                code=error.code,
            )
        lost = (
            isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated
        ) or error.code == "1213"  # MySQL rolls back the whole transaction on a deadlock
        if not lost and isinstance(savepoint, sa.engine.NestedTransaction):
            try:
                savepoint.rollback()
                for writer in self._writers.values():
                    writer.forget_staging()
            except sa.exc.SQLAlchemyError:
                lost = True
        if not lost:
            return error
        unflushed = self._unflushed
        self._client.close()
        self._unflushed = 0
        if unflushed and isinstance(error, RetryableError):
            return FatalError(
                f"the database transaction was lost with {unflushed} unflushed batch(es): "
                f"{error.message}",
                hint="restart the sync: it resumes from the last checkpoint, which the database "
                "kept consistent with the data",
                code=error.code,
            )
        return error

    def _shape(self, writer: TableWriter) -> Shape:
        return build_shape(
            writer.state, writer.full_columns, self._client.dialect, self._context.clock.now()
        )

    def _warn_unknown(self, entity: str, plan: Plan) -> None:
        for name in sorted(plan.unknown_fields):
            if (entity, name) not in self._warned:
                self._warned.add((entity, name))
                self._context.logger.warning(
                    "%s.%s is not in the prepared schema; its values are not written "
                    "(the source should describe it so that prepare() adds a column)",
                    entity,
                    name,
                )

    # --- checkpoints --------------------------------------------------------------------------

    def _flush_sync(self, checkpoint: Checkpoint | None) -> None:
        self._ensure_connected()
        client = self._client
        try:
            if checkpoint is not None:
                checkpoints.store(
                    self._client, self._sync_name, checkpoint, self._context.clock.now()
                )
            client.conn.commit()
        except sa.exc.SQLAlchemyError as exc:
            error = classify(exc, during="committing")
            client.close()
            self._unflushed = 0
            # Whether the commit happened is unknown; data and checkpoint are atomic, so a
            # restart from the stored checkpoint is always right, a retried flush may not be.
            raise FatalError(
                f"committing the batch and checkpoint failed: {error.message}",
                hint="restart the sync: it resumes from the checkpoint stored with the data",
                code=error.code,
            ) from exc
        self._unflushed = 0

    def _load_checkpoint_sync(self) -> Checkpoint | None:
        self._ensure_connected()
        try:
            return checkpoints.load(self._client, self._sync_name)
        except sa.exc.SQLAlchemyError as exc:
            raise classify(exc, during="reading the checkpoint") from exc

    def _forget_checkpoint_sync(self) -> None:
        self._ensure_connected()
        try:
            checkpoints.forget(self._client, self._sync_name)
            self._client.conn.commit()
        except sa.exc.SQLAlchemyError as exc:
            raise classify(exc, during="deleting the checkpoint") from exc

    @property
    def _sync_name(self) -> str:
        if self._sync_id is None:
            raise RuntimeError("SqlSink.open() was not called")
        return self._sync_id


# Re-exported for callers that name the bookkeeping columns.
BOOKKEEPING_COLUMNS = (SYNCED_AT, DELETED, VERSION)
__all__ = ["BOOKKEEPING_COLUMNS", "DeleteMode", "SqlSink", "TableOptions"]
