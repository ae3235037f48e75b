"""The SQL source: rows of PostgreSQL, MariaDB/MySQL and SQLite tables as change events.

Each configured object names a Salesforce object (the events' ``entity``) and the table its
rows come from (``EntitySelection.target``). An event's ``key`` is the value of the object's
key column (see :mod:`sfsync.connectors.sql.capture.install` for which column that is) and
``after`` holds the row's carried columns, normalised
(:mod:`~sfsync.connectors.sql.capture.values`) and named as fields
(:func:`~sfsync.connectors.sql.capture.tables.field_names`: the key column as the ``key``
field, columns listed in ``fields`` spelled as listed).

Snapshot
    Each table in key order, page by page; a READ event's position is the key it reached,
    so an interrupted snapshot resumes after it. Rows without a key value are left out.
Changes, ``capture: triggers``
    The change log that ``sfsync db install-capture`` set up, read in commit order (see
    :mod:`~sfsync.connectors.sql.capture.log`): CREATE, UPDATE (with ``before`` and
    ``changed``) and DELETE events, with the transaction (PostgreSQL) and the writer's origin.
    One stream per table (``sqllog:<table>``). With ``follow`` the source never returns from
    ``changes``: it waits for the next change, woken at once by NOTIFY on PostgreSQL and
    polling every ``capture_poll_interval`` seconds (the only way on MariaDB and SQLite).
    A change whose key column is empty cannot become an event: its log row is marked
    ``rejected`` with the reason, and reading goes on.
Changes, ``capture: updated_at``
    Rows whose ``updated_at_column`` is past the cursor, in ``(updated_at, key)`` order (a
    tie-safe cursor: thousands of rows sharing one timestamp are neither skipped nor
    repeated), up to ``capture_settle`` seconds before now. Deletes cannot be seen this way:
    the source declares ``deletes=False``. One stream per table (``sqlpoll:<table>``).

Outcomes go back to the change log through :meth:`SqlCaptureSource.record_outcomes`.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any, TypeVar

import anyio
import anyio.to_thread
import sqlalchemy as sa

from sfsync.connectors.sql.capture import install
from sfsync.connectors.sql.capture.apply import (
    RowChange,
    Unchanged,
    apply_changes,
    lookup_rows,
    reflect,
)
from sfsync.connectors.sql.capture.changes import LogReader
from sfsync.connectors.sql.capture.install import CaptureObject, schema_of
from sfsync.connectors.sql.capture.listen import Listener
from sfsync.connectors.sql.capture.log import ChangeLog
from sfsync.connectors.sql.capture.outcomes import log_outcomes
from sfsync.connectors.sql.capture.poller import EPOCH_TOKEN, poll_page, polled_event, token_at
from sfsync.connectors.sql.capture.statements import CHANGES_TABLE, qualified
from sfsync.connectors.sql.capture.tables import (
    ResolvedTable,
    log_stream,
    poll_stream,
    resolve_tables,
)
from sfsync.connectors.sql.client import ConnectionSettings, dialect_of, engine_url
from sfsync.connectors.sql.config import MySqlConnection
from sfsync.connectors.sql.errors import classify
from sfsync.core.checkpoint import Checkpoint, snapshot_stream
from sfsync.core.errors import ConfigError, SyncError
from sfsync.core.events import Batch, ChangeEvent, Operation, Position
from sfsync.core.schema import EntitySchema
from sfsync.spi.clock import Clock, SystemClock
from sfsync.spi.sink import Outcome
from sfsync.spi.source import SourceCapabilities, SourceContext

T = TypeVar("T")


class SqlCaptureSource:
    """Change events from SQL tables (see the module docstring).

    Args:
        settings: the connection section.
        objects: what to read.
        follow: ``changes`` waits for more instead of returning when caught up (realtime).
        clock: the only time used (defaults to the system clock until ``open``).
    """

    def __init__(
        self,
        settings: ConnectionSettings,
        objects: Sequence[CaptureObject],
        *,
        follow: bool = False,
        clock: Clock | None = None,
    ) -> None:
        self.settings = settings
        self.objects = tuple(objects)
        self.follow = follow
        self.dialect = dialect_of(settings)
        self.schema = schema_of(settings)
        self.mode = settings.capture
        self.clock: Clock = clock or SystemClock()
        self.batch_size = settings.batch_size
        self.capabilities = SourceCapabilities(
            snapshot=True,
            changes=True,
            realtime=follow,
            deletes=self.mode == "triggers",
        )
        self._engine: sa.Engine | None = None
        self._conn: sa.Connection | None = None
        self._log: ChangeLog | None = None
        self._reader: LogReader | None = None
        self._listener: Listener | None = None
        self._limiter = anyio.CapacityLimiter(1)
        self._tables: dict[str, ResolvedTable] = {}  # by entity
        self._by_table: dict[str, list[ResolvedTable]] = {}
        self._reflections: dict[str, sa.Table] = {}

    # --- lifecycle -----------------------------------------------------------------------

    async def open(self, ctx: SourceContext) -> None:
        """Connect, resolve every table and key column, and check that capture is installed.

        Raises:
            ConfigError: a table or key column is missing, or capture is not installed.
            RetryableError: the database cannot be reached.
        """
        self.clock = ctx.clock
        # `sync --once` reads what is there even for a real-time sync.
        self.follow = self.follow and ctx.follow
        # Batches as the runtime asks (as big as the sink takes: the Salesforce sink needs
        # large ones to choose the Bulk API); the connection's batch_size when it does not say.
        self.batch_size = ctx.batch_size or self.batch_size
        self._engine, self._conn = await anyio.to_thread.run_sync(install.connect, self.settings)
        await self._run(self._resolve)
        if self.mode == "triggers":
            gap_timeout = (
                self.settings.capture_gap_timeout
                if isinstance(self.settings, MySqlConnection)
                else 300.0
            )
            self._log = ChangeLog(self.conn, self.dialect, self.schema, gap_timeout=gap_timeout)
            await self._run(self._check_installed)
            self._reader = LogReader(
                self._log,
                run=self._run,
                tables=lambda: self._by_table,
                clock=self.clock,
                batch_size=self.batch_size,
            )
            if self.follow and self.dialect == "postgresql":
                url = engine_url(self.settings).set(drivername="postgresql")
                self._listener = Listener(url.render_as_string(hide_password=False))
                await self._listener.open()

    async def aclose(self) -> None:
        """Close the connections (idempotent)."""
        if self._listener is not None:
            listener, self._listener = self._listener, None
            await listener.aclose()
        conn, self._conn = self._conn, None
        engine, self._engine = self._engine, None
        if conn is not None or engine is not None:
            await anyio.to_thread.run_sync(_close, conn, engine)

    @property
    def conn(self) -> sa.Connection:
        if self._conn is None:
            raise RuntimeError("the SQL source is not open")
        return self._conn

    @property
    def holes_waiting(self) -> int:
        """MariaDB/MySQL: holes in the change log sequence that reading waits at (a
        transaction still open, or rolled back less than about a second ago)."""
        return self._log.waiting if self._log is not None else 0

    async def _run(self, func: Callable[..., T], *args: Any) -> T:
        """Run blocking ``func`` on a worker thread, one at a time; database errors are
        classified into the core taxonomy here."""
        try:
            return await anyio.to_thread.run_sync(func, *args, limiter=self._limiter)
        except sa.exc.SQLAlchemyError as exc:
            if self._conn is not None:
                await anyio.to_thread.run_sync(_rollback, self._conn)
            raise classify(exc, during=f"reading {self.settings.display_url}") from exc

    def _resolve(self) -> None:
        tables = resolve_tables(self.conn, self.settings, self.objects)
        self._tables = {t.obj.entity: t for t in tables}
        self._by_table = {}
        for t in tables:
            self._by_table.setdefault(t.obj.table, []).append(t)

    def _check_installed(self) -> None:
        hint = "run `sfsync db install-capture CONFIG` (see docs/sql-capture.md)"
        if not install.log_exists(self.conn, self.settings):
            raise ConfigError(
                f"change capture is not installed in {self.settings.display_url} "
                f"(no {CHANGES_TABLE} table)",
                hint=hint,
            )
        triggered = {table for table, _ in install.installed_triggers(self.conn, self.settings)}
        missing = sorted(set(self._by_table) - triggered)
        if missing:
            raise ConfigError(
                f"change capture is not installed on table(s) {', '.join(missing)}",
                hint=hint,
            )
        wanted = install.captured_tables(self.conn, self.settings, self.objects)
        outdated = install.outdated_tables(self.conn, self.settings, wanted)
        if outdated:
            raise ConfigError(
                f"change capture on table(s) {', '.join(outdated)} was installed for another "
                "key column or other columns: changes would be logged with a wrong key or "
                "without the new columns",
                hint=hint,
            )

    # --- metadata ------------------------------------------------------------------------

    async def describe(self, entities: Sequence[str]) -> dict[str, EntitySchema]:
        """Each entity's carried columns as fields (the key column is the key)."""
        await self._run(self._resolve)
        return {e: self._tables[e].schema for e in entities if e in self._tables}

    async def snapshot_size(self, entity: str) -> int | None:
        table = self._tables[entity]
        ref = qualified(self.dialect, self.schema, table.obj.table)
        return int(await self._run(self._scalar, f"SELECT COUNT(*) FROM {ref}"))

    def _scalar(self, sql: str) -> Any:
        try:
            return self.conn.execute(sa.text(sql)).scalar()
        finally:
            self.conn.rollback()

    async def current_positions(self) -> Mapping[str, Position]:
        """Per table, where its changes start now."""
        if self.mode == "updated_at":
            token = token_at(self.clock.now() - timedelta(seconds=self.settings.capture_settle))
            return {poll_stream(t): Position(poll_stream(t), token) for t in self._by_table}
        assert self._log is not None
        token = await self._run(self._log.now_token)
        return {log_stream(t): Position(log_stream(t), token) for t in self._by_table}

    # --- snapshot ------------------------------------------------------------------------

    async def snapshot(
        self, entities: Sequence[str], resume: Checkpoint | None
    ) -> AsyncIterator[Batch]:
        """Every row of each entity's table, in key order, as READ events."""
        for entity in entities:
            table = self._tables[entity]
            cursor = resume.snapshot.cursors.get(entity) if resume else None
            after = json.loads(cursor) if cursor else None
            while True:
                rows = await self._run(self._snapshot_page, table, after)
                events = [self._read_event(table, row) for row in rows]
                done = len(rows) < self.batch_size
                yield Batch.of(events, completes=frozenset({entity}) if done else frozenset())
                if done:
                    break
                after = rows[-1][table.key_column]

    def _snapshot_page(self, table: ResolvedTable, after: object) -> list[dict[str, Any]]:
        q = self._quote
        key = q(table.key_column)
        cols = ", ".join(q(c) for c in table.columns)
        ref = qualified(self.dialect, self.schema, table.obj.table)
        where = f"{key} IS NOT NULL" + (f" AND {key} > :after" if after is not None else "")
        sql = f"SELECT {cols} FROM {ref} WHERE {where} ORDER BY {key} LIMIT :n"
        try:
            result = self.conn.execute(sa.text(sql), {"after": after, "n": self.batch_size})
            return [dict(r) for r in result.mappings().all()]
        finally:
            self.conn.rollback()

    def _read_event(self, table: ResolvedTable, row: Mapping[str, Any]) -> ChangeEvent:
        key = row[table.key_column]
        return ChangeEvent(
            entity=table.obj.entity,
            key=str(key),
            op=Operation.READ,
            after=table.normalise(row),
            position=Position(snapshot_stream(table.obj.entity), json.dumps(key, default=str)),
            committed_at=self.clock.now(),
        )

    def _quote(self, name: str) -> str:
        return self.conn.dialect.identifier_preparer.quote_identifier(name)

    # --- changes -------------------------------------------------------------------------

    async def changes(self, resume: Checkpoint | None) -> AsyncIterator[Batch]:
        """Changes after ``resume``'s positions (or after now), in commit order per table.

        Returns when caught up, unless the source follows (then it waits for more).
        """
        positions = dict(resume.positions) if resume is not None else {}
        if resume is None:
            positions.update(await self.current_positions())
        while True:
            read = self._reader.read if self._reader is not None else self._polled_changes
            async for batch in read(positions):
                for p in batch.positions():
                    positions[p.stream] = p
                yield batch
            if not self.follow:
                return
            await self._wait()

    async def _wait(self) -> None:
        seconds = self.settings.capture_poll_interval
        if self._listener is not None:
            await self._listener.wait(self.clock, seconds)
        else:
            await self.clock.sleep(seconds)

    async def _polled_changes(self, positions: Mapping[str, Position]) -> AsyncIterator[Batch]:
        upper = self.clock.now() - timedelta(seconds=self.settings.capture_settle)
        column = self.settings.updated_at_column
        for name, tables in self._by_table.items():
            pos = positions.get(poll_stream(name))
            token = pos.token if pos else EPOCH_TOKEN
            while True:
                rows = await self._run(
                    poll_page,
                    self.conn,
                    self.dialect,
                    self.schema,
                    tables[0],
                    column,
                    token,
                    upper,
                    self.batch_size,
                )
                now = self.clock.now()
                events = [polled_event(t, row, tok, now) for tok, row in rows for t in tables]
                if events:
                    yield Batch.of(events)
                if len(rows) < self.batch_size:
                    break
                token = rows[-1][0]

    # --- current rows and writes (two-way syncs) -------------------------------------------

    async def lookup(
        self, entity: str, field: str, values: Sequence[str]
    ) -> list[dict[str, object]]:
        """The current rows of ``entity`` whose key is among ``values``
        (:class:`~sfsync.spi.source.RecordLookup`; only the key field can be looked up)."""
        table = self._table(entity, field)
        reflected = await self._run(self._reflected, entity)
        return await self._run(lookup_rows, self.conn, table, reflected, list(values))

    async def apply(
        self,
        entity: str,
        origin: str,
        changes: Sequence[ChangeEvent],
        unchanged: Unchanged | None = None,
    ) -> list[SyncError | None]:
        """Write ``changes`` into the object's table by key (CREATE: a row; UPDATE: the fields
        in ``after``; DELETE), marked with ``origin`` in the change log (see
        :mod:`~sfsync.connectors.sql.capture.apply`); per change, ``None`` or its error.
        With ``unchanged``, a row edited since the caller read it is left alone (see
        :func:`~sfsync.connectors.sql.capture.apply.apply_changes`)."""
        table = self._table(entity, None)
        reflected = await self._run(self._reflected, entity)
        rows = [RowChange(e.op, e.key, e.after or {}) for e in changes]
        # Polled by updated_at there is no change log to mark our writes in: they come back
        # (if the table stamps them) and are recognised by their values (the shadow).
        mark = origin if self.mode == "triggers" else None
        return await self._run(
            apply_changes,
            self.conn,
            self.dialect,
            self.schema,
            table,
            reflected,
            mark,
            rows,
            unchanged,
        )

    def _table(self, entity: str, field: str | None) -> ResolvedTable:
        table = self._tables.get(entity)
        if table is None:
            raise ConfigError(f"{entity} is not among the SQL source's configured objects")
        if field is not None and field.lower() != table.obj.key.lower():
            raise ConfigError(
                f"{entity} rows are looked up by their key {table.obj.key}, not by {field}"
            )
        return table

    def _reflected(self, entity: str) -> sa.Table:
        cached = self._reflections.get(entity)
        if cached is None:
            cached = reflect(self.conn, self._tables[entity], self.schema)
            self.conn.rollback()
            self._reflections[entity] = cached
        return cached

    # --- outcomes --------------------------------------------------------------------------

    async def record_outcomes(
        self, events: Sequence[ChangeEvent], outcomes: Sequence[Outcome | SyncError]
    ) -> int:
        """Write each final outcome on the change log row its event came from.

        The runtime calls it once the sink has returned the batch's outcomes (and dead
        letters are stored), before the checkpoint moves past the batch: after a crash in
        between, the events are read again and their statuses written again. Pass the
        batch's events and the outcomes in the same order. Events not read from the change
        log (snapshot READs, the ``updated_at`` poller) and outcomes that are not final
        (RETRY, or an error in place of an outcome) are left alone; the row stays
        ``pending`` until a later call. Returns how many rows were written.

        Raises:
            ValueError: ``events`` and ``outcomes`` differ in length.
            RetryableError: the database could not be reached (call again).
        """
        if len(events) != len(outcomes):
            raise ValueError(
                f"{len(events)} events but {len(outcomes)} outcomes: pass one outcome per event"
            )
        marks = log_outcomes(events, outcomes, log_streams={log_stream(t) for t in self._by_table})
        if not marks or self._log is None:
            return 0
        await self._run(self._log.record, marks, self.clock.now())
        return len(marks)


def _rollback(conn: sa.Connection) -> None:
    with contextlib.suppress(sa.exc.SQLAlchemyError):
        conn.rollback()


def _close(conn: sa.Connection | None, engine: sa.Engine | None) -> None:
    if conn is not None:
        _rollback(conn)
        conn.close()
    if engine is not None:
        engine.dispose()
