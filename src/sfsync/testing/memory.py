"""In-memory Source, Sink and dead-letter store: real implementations for engine tests.

They follow the spi contracts exactly (the contract suites run against them) and have fault
knobs as plain attributes, in the spirit of dlt's ``dummy`` destination: no mocks needed to
test retries, rejections and crashes.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import anyio

from sfsync.core.checkpoint import Checkpoint, snapshot_stream
from sfsync.core.deadletter import DeadLetter
from sfsync.core.errors import FatalError, RetryableError, SkippableError
from sfsync.core.events import Batch, ChangeEvent, Operation, Position, RecordPage
from sfsync.core.schema import EntitySchema
from sfsync.spi.sink import Outcome, OutcomeKind, SinkCapabilities, SinkContext
from sfsync.spi.source import SourceCapabilities, SourceContext

CHANGE_STREAM = "memory:changes"
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


class MemorySource:
    """A source over dicts: a snapshot table per entity and an append-only change log.

    Args:
        schemas: per entity, its schema (the key field names the record key).
        records: per entity, the rows a snapshot reads.
        realtime: ``changes`` waits for new events instead of ending when caught up.
        batch_size: events per batch.
    """

    def __init__(
        self,
        schemas: Mapping[str, EntitySchema],
        records: Mapping[str, list[dict[str, object]]] | None = None,
        *,
        realtime: bool = False,
        batch_size: int = 100,
        csv_pages: bool = False,
    ) -> None:
        self.schemas = dict(schemas)
        # Snapshot batches as unparsed CSV pages when the sink loads them (SourceContext).
        self.csv_pages = csv_pages
        self._pages = False
        self.records = {k: list(v) for k, v in (records or {}).items()}
        self.log: list[ChangeEvent] = []
        self.batch_size = batch_size
        self.capabilities = SourceCapabilities(realtime=realtime)
        self.opened = 0
        self.closed = 0
        self.fail_snapshot_after: int | None = None  # raise FatalError after N snapshot batches
        self.on_snapshot_batch: list[object] = []  # callables run after each snapshot batch
        self._appended = anyio.Event()

    # -- test helpers ---------------------------------------------------------------------

    def emit(
        self,
        entity: str,
        key: str,
        op: Operation,
        after: Mapping[str, object] | None,
        *,
        version: str | None = None,
        partial: bool = False,
    ) -> ChangeEvent:
        """Append a change to the log (what a committed change in the source would do)."""
        event = ChangeEvent(
            entity=entity,
            key=key,
            op=op,
            after=after,
            position=Position(CHANGE_STREAM, str(len(self.log))),
            committed_at=EPOCH,
            version=version,
            partial=partial,
        )
        self.log.append(event)
        self._appended.set()
        self._appended = anyio.Event()
        return event

    # -- Source ---------------------------------------------------------------------------

    async def open(self, ctx: SourceContext) -> None:
        self.opened += 1
        self._pages = self.csv_pages and ctx.record_pages

    async def describe(self, entities: Sequence[str]) -> dict[str, EntitySchema]:
        return {e: self.schemas[e] for e in entities if e in self.schemas}

    async def snapshot_size(self, entity: str) -> int | None:
        return len(self.records.get(entity, []))

    async def current_positions(self) -> dict[str, Position]:
        return {CHANGE_STREAM: Position(CHANGE_STREAM, str(len(self.log) - 1))}

    async def snapshot(
        self, entities: Sequence[str], resume: Checkpoint | None
    ) -> AsyncIterator[Batch]:
        batches = 0
        for entity in entities:
            schema = self.schemas[entity]
            cursor = resume.snapshot.cursors.get(entity) if resume else None
            rows = sorted(self.records.get(entity, []), key=lambda r: str(r[schema.key]))
            if cursor is not None:
                rows = [r for r in rows if str(r[schema.key]) > cursor]
            for start in range(0, max(len(rows), 1), self.batch_size):
                chunk = rows[start : start + self.batch_size]
                last = start + self.batch_size >= len(rows)
                events = [
                    ChangeEvent(
                        entity=entity,
                        key=str(row[schema.key]),
                        op=Operation.READ,
                        after=row,
                        position=Position(snapshot_stream(entity), str(row[schema.key])),
                        committed_at=EPOCH,
                        version=str(row[schema.version_field])
                        if schema.version_field and row.get(schema.version_field) is not None
                        else None,
                    )
                    for row in chunk
                ]
                done = frozenset({entity}) if last else frozenset()
                if self._pages and events:
                    yield Batch.of_page(_page(entity, schema, chunk, events))
                    if done:
                        yield Batch.of([], completes=done)
                else:
                    yield Batch.of(events, completes=done)
                batches += 1
                for hook in self.on_snapshot_batch:
                    hook()  # type: ignore[operator]
                if self.fail_snapshot_after is not None and batches >= self.fail_snapshot_after:
                    raise FatalError("snapshot interrupted (fault injected by the test)")

    async def changes(self, resume: Checkpoint | None) -> AsyncIterator[Batch]:
        position = resume.positions.get(CHANGE_STREAM) if resume else None
        next_index = int(position.token) + 1 if position else 0
        while True:
            while next_index < len(self.log):
                chunk = self.log[next_index : next_index + self.batch_size]
                next_index += len(chunk)
                yield Batch.of(chunk)
            if not self.capabilities.realtime:
                return
            await self._appended.wait()

    async def aclose(self) -> None:
        self.closed += 1


def _page(
    entity: str, schema: EntitySchema, rows: list[dict[str, object]], events: list[ChangeEvent]
) -> RecordPage:
    """``rows`` as a CSV page (every cell quoted, a null as an empty cell, as Bulk writes)."""
    names = schema.names()
    text = io.StringIO()
    writer = csv.writer(text, quoting=csv.QUOTE_ALL, lineterminator="\n")
    writer.writerow(names)
    writer.writerows([["" if row.get(n) is None else row[n] for n in names] for row in rows])
    return RecordPage(
        entity=entity,
        columns=tuple(names),
        csv=text.getvalue().encode(),
        count=len(rows),
        position=events[-1].position,
        parse=lambda: events,
    )


@dataclass
class _Row:
    version: str | None
    values: dict[str, object]
    deleted: bool = False


@dataclass
class MemorySink:
    """A sink into dicts with the idempotence rules every real sink must follow.

    Fault knobs: ``reject_keys`` get REJECTED outcomes; ``retry_keys[key] = n`` gets ``n``
    RETRY outcomes before it is applied; ``fail_writes = n`` makes the next ``n`` writes raise
    a :class:`RetryableError`; ``fail_opens = n`` does the same for the next ``n`` opens;
    ``crash_on_flush = n`` raises a :class:`FatalError` on the ``n``-th flush (1-based),
    before anything of that flush is made durable.

    ``tables`` holds durable state only: writes are staged and made durable by ``flush``,
    so a crash before a flush loses them, as a real transactional sink would.

    With ``record_pages`` it loads a page batch from the page's CSV text (values as text, an
    empty cell a null), as a database loading CSV would, without reading the batch's events;
    ``pages_loaded`` counts them.
    """

    stores_checkpoints: bool = False
    reject_keys: set[str] = field(default_factory=set)
    retry_keys: dict[str, int] = field(default_factory=dict)
    fail_writes: int = 0
    fail_opens: int = 0
    opens: int = 0
    crash_on_flush: int | None = None
    record_pages: bool = False
    pages_loaded: int = 0
    tables: dict[str, dict[str, _Row]] = field(default_factory=dict)
    applied_log: list[tuple[str, str, str | None]] = field(default_factory=list)
    prepared: list[str] = field(default_factory=list)
    flushes: int = 0
    writes: int = 0
    checkpoint: Checkpoint | None = None
    _staged: dict[str, dict[str, _Row]] = field(default_factory=dict)
    _schemas: dict[str, EntitySchema] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.capabilities = SinkCapabilities(
            stores_checkpoints=self.stores_checkpoints, record_pages=self.record_pages
        )

    def rows(self, entity: str) -> dict[str, dict[str, object]]:
        """Durable, non-deleted rows of ``entity`` by key."""
        return {k: r.values for k, r in self.tables.get(entity, {}).items() if not r.deleted}

    async def open(self, ctx: SinkContext) -> None:
        self.opens += 1
        if self.fail_opens > 0:
            self.fail_opens -= 1
            raise RetryableError("connection refused (fault injected by the test)")
        self._staged = {e: dict(rows) for e, rows in self.tables.items()}

    async def prepare(self, schema: EntitySchema) -> list[str]:
        self.prepared.append(schema.name)
        self._schemas[schema.name] = schema
        self._staged.setdefault(schema.name, {})
        return []

    async def write(self, batch: Batch) -> list[Outcome]:
        self.writes += 1
        if self.fail_writes > 0:
            self.fail_writes -= 1
            raise RetryableError("connection reset (fault injected by the test)")
        if batch.page is not None and self.record_pages:
            return self._load(batch.page)
        outcomes: list[Outcome] = []
        retried: set[tuple[str, str]] = set()
        for event in batch:
            ident = (event.entity, event.key)
            if ident in retried or self.retry_keys.get(event.key, 0) > 0:
                # Later events of a key that must retry wait for it: order per key is kept.
                if ident not in retried:
                    self.retry_keys[event.key] -= 1
                retried.add(ident)
                outcomes.append(
                    Outcome(OutcomeKind.RETRY, error=RetryableError("row locked", code="LOCK"))
                )
                continue
            if event.key in self.reject_keys:
                outcomes.append(Outcome.rejected(SkippableError("bad value", code="BAD")))
                continue
            outcomes.append(self._apply(event))
        return outcomes

    def _load(self, page: RecordPage) -> list[Outcome]:
        self.pages_loaded += 1
        schema = self._schemas[page.entity]
        outcomes = []
        for cells in list(csv.reader(io.StringIO(page.csv.decode())))[1:]:
            values: dict[str, object] = {
                name: cell or None for name, cell in zip(page.columns, cells, strict=True)
            }
            key = str(values[schema.key])
            version = values.get(schema.version_field) if schema.version_field else None
            table = self._staged.setdefault(page.entity, {})
            table[key] = _Row(None if version is None else str(version), values)
            self.applied_log.append((page.entity, key, table[key].version))
            outcomes.append(Outcome.applied(key))
        return outcomes

    def _apply(self, event: ChangeEvent) -> Outcome:
        table = self._staged.setdefault(event.entity, {})
        row = table.get(event.key)
        if row is not None and row.version and event.version and event.version < row.version:
            return Outcome(OutcomeKind.STALE)
        self.applied_log.append((event.entity, event.key, event.version))
        if event.op is Operation.DELETE:
            if row is not None:
                table[event.key] = _Row(event.version or row.version, row.values, deleted=True)
            return Outcome.applied()
        values = dict(event.after or {})
        if event.partial and row is not None:
            values = {**row.values, **values}
        table[event.key] = _Row(event.version, values)
        return Outcome.applied(event.key)

    async def flush(self, checkpoint: Checkpoint | None) -> None:
        self.flushes += 1
        if self.crash_on_flush is not None and self.flushes == self.crash_on_flush:
            raise FatalError("crashed during flush (fault injected by the test)")
        self.tables = {e: dict(rows) for e, rows in self._staged.items()}
        if self.stores_checkpoints and checkpoint is not None:
            self.checkpoint = Checkpoint.from_json(checkpoint.to_json())

    async def load_checkpoint(self) -> Checkpoint | None:
        return self.checkpoint

    async def forget_checkpoint(self) -> None:
        self.checkpoint = None

    async def aclose(self) -> None:
        self._staged = {}


class MemoryDeadLetterStore:
    """A :class:`~sfsync.core.deadletter.DeadLetterStore` in a list."""

    def __init__(self) -> None:
        self.letters: list[DeadLetter] = []

    async def put(self, letters: list[DeadLetter]) -> None:
        self.letters.extend(letters)

    async def list(self, sync: str | None = None, *, limit: int = 100) -> list[DeadLetter]:
        return [d for d in self.letters if sync is None or d.sync == sync][:limit]

    async def count(self, sync: str | None = None) -> int:
        return len([d for d in self.letters if sync is None or d.sync == sync])
