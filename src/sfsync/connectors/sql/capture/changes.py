"""Change events from the change log: the reading plan per database, and the events.

PostgreSQL windows between transaction snapshots, MariaDB/MySQL and SQLite ``seq`` order up to
the first hole (see :mod:`~sfsync.connectors.sql.capture.log` for why). Each table is its own
stream; tables whose positions agree are read together.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any

from sfsync.connectors.sql.capture.log import PG_START, ChangeLog, LogRow, PgToken
from sfsync.connectors.sql.capture.log import Outcome as LogOutcome
from sfsync.connectors.sql.capture.tables import ResolvedTable, log_stream
from sfsync.core.events import Batch, ChangeEvent, Operation, Position
from sfsync.spi.clock import Clock

log = logging.getLogger("sfsync.sql.capture")

_OPS = {"I": Operation.CREATE, "U": Operation.UPDATE, "D": Operation.DELETE}


class LogReader:
    """Reads a database's change log for the configured tables.

    Args:
        log: the change log.
        run: runs a blocking call on the source's worker thread (errors classified).
        tables: the configured tables by name, as the source last resolved them.
        clock: the source's clock.
        batch_size: rows per read.
    """

    def __init__(
        self,
        log: ChangeLog,
        *,
        run: Callable[..., Awaitable[Any]],
        tables: Callable[[], Mapping[str, list[ResolvedTable]]],
        clock: Clock,
        batch_size: int,
    ) -> None:
        self.log = log
        self.run = run
        self.tables = tables
        self.clock = clock
        self.batch_size = batch_size

    async def read(self, positions: Mapping[str, Position]) -> AsyncIterator[Batch]:
        """Every change after ``positions`` (per table stream), until caught up."""
        if self.log.dialect == "postgresql":
            async for batch in self._pg_changes(positions):
                yield batch
        else:
            async for batch in self._seq_changes(positions):
                yield batch

    def _groups(self, positions: Mapping[str, Position], start: str) -> dict[str, list[str]]:
        groups: dict[str, list[str]] = {}
        for table in self.tables():
            pos = positions.get(log_stream(table))
            groups.setdefault(pos.token if pos else start, []).append(table)
        return groups

    async def _pg_changes(self, positions: Mapping[str, Position]) -> AsyncIterator[Batch]:
        # Windows left half-read first; then one window to "now" for every table, so that
        # tables that started at different positions end at the same one.
        for token, tables in self._groups(positions, PG_START).items():
            parsed = PgToken.parse(token)
            if parsed.end is not None:
                async for batch in self._pg_window(tables, parsed.start, parsed.end, parsed.seq):
                    yield batch
        end = await self.run(self.log.pg_snapshot)
        for token, tables in self._groups(positions, PG_START).items():
            start = PgToken.parse(token)
            if start.end is None and start.start != end:
                async for batch in self._pg_window(tables, start.start, end, 0):
                    yield batch

    async def _pg_window(
        self, tables: list[str], start: str, end: str, after: int
    ) -> AsyncIterator[Batch]:
        lower = await self.run(self.log.pg_lower_bound, start)
        if lower is None:
            yield Batch.of([], advances=[Position(log_stream(t), end) for t in tables])
            return
        after = max(after, lower - 1)
        while True:
            rows = await self.run(self.log.pg_window, tables, start, end, after, self.batch_size)
            done = len(rows) < self.batch_size
            events = await self._events(rows, lambda seq: PgToken(start, end, seq).encode())
            advances = [Position(log_stream(t), end) for t in tables] if done else []
            yield Batch.of(events, advances=advances)
            if done:
                return
            after = rows[-1].seq

    async def _seq_changes(self, positions: Mapping[str, Position]) -> AsyncIterator[Batch]:
        for token, tables in self._groups(positions, "0").items():
            watermark = int(token)
            wanted = set(tables)
            while True:
                page = await self.run(
                    self.log.read_after, watermark, self.batch_size, self.clock.monotonic()
                )
                for first, last in page.passed:
                    log.warning(
                        "change log seq %d-%d never committed (rolled back); passed", first, last
                    )
                rows = [r for r in page.rows if r.table in wanted]
                events = await self._events(rows, str)
                last_seq = events[-1].position.token if events else None
                advances = []
                if page.watermark > watermark and str(page.watermark) != last_seq:
                    advances = [Position(log_stream(t), str(page.watermark)) for t in tables]
                if events or advances:
                    yield Batch.of(events, advances=advances)
                watermark = page.watermark
                if page.blocked or not page.full:
                    break

    async def _events(
        self, rows: Sequence[LogRow], token: Callable[[int], str]
    ) -> list[ChangeEvent]:
        events: list[ChangeEvent] = []
        keyless: list[int] = []
        for row in rows:
            for table in self.tables().get(row.table, ()):
                if not row.key:
                    keyless.append(row.seq)
                    continue
                events.append(self._change_event(table, row, token(row.seq)))
        if keyless:
            error = "the key column is empty, so the row cannot be matched in the target"
            marks = [LogOutcome(seq, "rejected", error) for seq in dict.fromkeys(keyless)]
            log.warning("%d change(s) without a key value marked rejected", len(marks))
            await self.run(self.log.record, marks, self.clock.now())
        return events

    def _change_event(self, table: ResolvedTable, row: LogRow, token: str) -> ChangeEvent:
        op = _OPS[row.op]
        names = table.field_names
        normalise = table.normalise
        assert row.key is not None
        return ChangeEvent(
            entity=table.obj.entity,
            key=row.key,
            op=op,
            after=None if op is Operation.DELETE or row.after is None else normalise(row.after),
            before=None if row.before is None else normalise(row.before),
            changed=frozenset(names[c] for c in row.changed if c in names),
            position=Position(log_stream(table.obj.table), token),
            committed_at=row.changed_at,
            origin=row.origin,
            transaction=None if row.txid is None else str(row.txid),
            # The change's place in the log: grows with every change of a record, and text
            # of one width so that versions compare as text too.
            version=f"{row.seq:020d}",
        )
