"""The Salesforce source: snapshot by REST query, changes by tie-safe incremental polling.

Snapshot
    Each object is read in ``Id`` order (``ORDER BY Id``), page by page; every READ event's
    position is ``(snapshot stream of the object, its Id)``, so an interrupted snapshot resumes
    after the last Id whose outcome was final instead of starting over. Objects with at least
    ``bulk_threshold`` records are read through Bulk API 2.0 query jobs (CSV pages, far fewer
    API calls; large objects as Id ranges, :mod:`.bulk_snapshot`); smaller ones, and objects
    the Bulk API cannot read, over REST. If the org refuses the Bulk job, the object is read
    over REST instead.

Changes (near-real time)
    Each object is polled with ``queryAll`` in ``(SystemModstamp, Id)`` order from the last
    delivered pair. Ordering by the pair is what makes the cursor tie-safe: thousands of
    records sharing one millisecond (a bulk load) are never skipped or repeated. Because a long
    transaction can commit after a later one with an earlier ``SystemModstamp``, the first poll
    after start and then one poll in every ``overlap`` seconds is a *sweep*: it re-reads the
    overlap window before the cursor. Records already delivered with the same stamp are dropped
    in memory, anything else is absorbed by the sink's version guard. Sweeping once per window
    rather than on every poll keeps a short polling interval cheap in API calls. A poll with
    many changes reads them past its first page through one Bulk API 2.0 job.
    (:mod:`.polling`.) Deleted rows (``IsDeleted = true``, visible through ``queryAll`` while
    in the recycle bin)
    become DELETE events, and so do rows that no longer match the user's row filter. Records
    gone from the recycle bin too (emptied, or hard-deleted through the Bulk API) are invisible
    to ``queryAll``: each sweep also asks the ``deleted`` replication resource for the window
    since the last sweep, so those deletes reach the target as well.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sfsync.connectors.salesforce import bulk_snapshot
from sfsync.connectors.salesforce.bulk import (
    BULK_UNSUPPORTED,
    DEFAULT_MAX_RECORDS,
    CsvPage,
    parse_page,
)
from sfsync.connectors.salesforce.bulk_snapshot import CHUNK_RECORDS, LOADED_PAGE_RECORDS
from sfsync.connectors.salesforce.client import SalesforceClient
from sfsync.connectors.salesforce.lookup import give_keys, lookup_records
from sfsync.connectors.salesforce.polling import Poller
from sfsync.connectors.salesforce.prefetch import prefetched
from sfsync.connectors.salesforce.record_events import (
    change_stream,
    deleted_stream,
    read_events,
    record_event,
)
from sfsync.connectors.salesforce.schema import entity_schema
from sfsync.connectors.salesforce.soql import Cursor, select, snapshot_query
from sfsync.core.checkpoint import Checkpoint
from sfsync.core.errors import ConfigError, SkippableError, SyncError
from sfsync.core.events import Batch, ChangeEvent, Operation, Position
from sfsync.core.schema import EntitySchema
from sfsync.spi.clock import SystemClock
from sfsync.spi.source import SourceCapabilities, SourceContext

__all__ = ["ObjectSelection", "SalesforceSource", "change_stream", "deleted_stream"]

log = logging.getLogger("sfsync.salesforce")

BULK_BATCH_SIZE = 5000
"""Events per batch of a Bulk snapshot, at least (see ``SalesforceSource``): half a result
page (whole pages, 10,000 events, measured ~1 µs per record more CPU: a larger working set)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ObjectSelection:
    """What to read of one object.

    Attributes:
        name: the object's API name.
        fields: the fields to read; ``None`` for every readable field.
        exclude: fields to leave out.
        where: a SOQL condition rows must match (a row filter).
    """

    name: str
    fields: tuple[str, ...] | None = None
    exclude: tuple[str, ...] = ()
    where: str | None = None


class SalesforceSource:
    """A :class:`~sfsync.spi.source.Source` reading Salesforce over REST.

    Args:
        client: an (unopened) client; the source opens and closes it.
        objects: what to read, in snapshot order.
        overlap: seconds re-read before the cursor by the periodic sweep.
        bulk_threshold: objects with at least this many records are snapshotted through the
            Bulk API 2.0; ``None`` never uses it.
        chunk_records: a Bulk snapshot of more than two small first ranges is read as
            consecutive Id ranges growing up to about this many records, one query job each,
            the next running on the org while the current one is applied; ``None`` reads
            every object with one job.
        bulk_batch_size: the fewest events per batch of a Bulk snapshot (the context's
            ``batch_size`` when larger): each batch costs the sink a transaction, so a
            million-record snapshot is applied in a few hundred of them, not thousands.
        poll_bulk_threshold: changes after a poll's first page from which the rest of the
            poll is read through a Bulk API 2.0 job (:mod:`.polling`); ``None`` always polls
            over REST.
    """

    capabilities = SourceCapabilities(snapshot=True, changes=True, realtime=False, deletes=True)

    def __init__(
        self,
        client: SalesforceClient,
        objects: Sequence[ObjectSelection],
        *,
        overlap: float = 60.0,
        bulk_threshold: int | None = 10_000,
        chunk_records: int | None = CHUNK_RECORDS,
        bulk_batch_size: int = BULK_BATCH_SIZE,
        poll_bulk_threshold: int | None = 10_000,
    ) -> None:
        self.client = client
        self.bulk_batch_size = bulk_batch_size
        self.bulk_threshold = bulk_threshold
        self.chunk_records = chunk_records
        self._sizes: dict[str, int | None] = {}
        # Per object, the API its snapshot used ("bulk" or "rest"), for logs and tests.
        self.snapshot_api: dict[str, str] = {}
        self.objects = {o.name: o for o in objects}
        self.batch_size = 2000
        # The sink loads CSV pages itself: Bulk pages go to it unparsed (SourceContext).
        self.record_pages = False
        self._schemas: dict[str, EntitySchema] = {}
        self._poller = Poller(client, overlap=overlap, bulk_threshold=poll_bulk_threshold)

    @property
    def bulk_polls(self) -> int:
        """Polls whose changes past the first page were read through a Bulk job."""
        return self._poller.bulk_polls

    @property
    def overlap(self) -> float:
        """Seconds re-read before the polling cursor by the periodic sweep."""
        return self._poller.overlap

    # -- lifecycle ------------------------------------------------------------------------

    async def open(self, ctx: SourceContext) -> None:
        self.batch_size = self._poller.batch_size = ctx.batch_size
        self.record_pages = ctx.record_pages
        self._poller.clock = ctx.clock
        await self.client.open()

    async def aclose(self) -> None:
        await self.client.aclose()

    async def describe(self, entities: Sequence[str]) -> dict[str, EntitySchema]:
        result: dict[str, EntitySchema] = {}
        for entity in entities:
            selection = self.objects.get(entity)
            if selection is None:
                raise ConfigError(f"{entity} is not among the source's configured objects")
            describe = await self.client.describe(entity)
            schema = entity_schema(describe, include=selection.fields, exclude=selection.exclude)
            if schema.version_field != "SystemModstamp":
                raise ConfigError(
                    f"{entity} has no SystemModstamp field, so its changes cannot be polled",
                    hint="sync it in batch mode, or exclude it",
                )
            self._schemas[entity] = schema
            result[entity] = schema
        return result

    def schema(self, entity: str) -> EntitySchema:
        schema = self._schemas.get(entity)
        if schema is None:
            raise ConfigError(f"{entity} was used before describe()")
        return schema

    async def snapshot_size(self, entity: str) -> int | None:
        """``SELECT COUNT() FROM <entity> [WHERE filter]``: one cheap call."""
        selection = self.objects[entity]
        soql = f"SELECT COUNT() FROM {entity}"
        if selection.where:
            soql += f" WHERE {selection.where}"
        size: int | None = None
        async for page in self.client.query_pages(soql):
            size = page.total_size
            break
        self._sizes[entity] = size
        return size

    # -- positions ------------------------------------------------------------------------

    async def current_positions(self) -> dict[str, Position]:
        """Per object, the newest ``(SystemModstamp, Id)`` now, or the start of time."""
        positions: dict[str, Position] = {}
        for name in self.objects:
            soql = select(
                name,
                ["Id", "SystemModstamp"],
                order_by=["SystemModstamp DESC", "Id DESC"],
                limit=1,
            )
            records = await self.client.query(soql, include_deleted=True)
            token = (
                Cursor(str(records[0]["SystemModstamp"]), str(records[0]["Id"])).token()
                if records
                else ""
            )
            positions[change_stream(name)] = Position(change_stream(name), token)
        return positions

    # -- snapshot -------------------------------------------------------------------------

    async def snapshot(
        self, entities: Sequence[str], resume: Checkpoint | None
    ) -> AsyncIterator[Batch]:
        for entity in entities:
            schema = self.schema(entity)
            selection = self.objects[entity]
            after = resume.snapshot.cursors.get(entity) if resume else None
            soql = snapshot_query(
                entity, schema.names(), row_filter=selection.where, after_id=after or None
            )
            if await self._use_bulk(entity):
                self.snapshot_api[entity] = "bulk"
                pages = self._bulk_pages(entity, soql, schema, after or None)
            else:
                self.snapshot_api[entity] = "rest"
                pages = self._rest_pages(soql)
            log.info("%s: snapshot through the %s API", entity, self.snapshot_api[entity])
            size = max(1, self.batch_size)
            if self.snapshot_api[entity] == "bulk":
                size = max(size, self.bulk_batch_size)
            # The next page is fetched (and parsed, unless the sink loads it as it is) while
            # the sink applies the current one (the sink's waits for the database are the gaps
            # it fills).
            async for batches in prefetched(self._page_batches(entity, schema, pages, size)):
                for batch in batches:
                    yield batch
            yield Batch.of([], completes=frozenset({entity}))

    async def _page_batches(
        self,
        entity: str,
        schema: EntitySchema,
        pages: AsyncIterator[CsvPage | list[dict[str, Any]]],
        size: int,
    ) -> AsyncIterator[list[Batch]]:
        """Each page as the batches it makes: one page batch (a Bulk page the sink loads
        itself), or READ events in batches of ``size``."""
        try:
            async for page in pages:
                if isinstance(page, CsvPage):
                    whole = None
                    if self.record_pages:

                        def parse(page: CsvPage = page) -> list[ChangeEvent]:
                            return read_events(entity, parse_page(page, schema))

                        whole = bulk_snapshot.page_batch(entity, page, parse)
                    if whole is not None:
                        yield [whole]
                        continue
                    records = parse_page(page, schema)
                else:
                    records = page
                events = read_events(entity, records)
                yield [Batch.of(events[i : i + size]) for i in range(0, len(events), size)]
        finally:
            close = getattr(pages, "aclose", None)
            if close is not None:
                await close()

    async def _use_bulk(self, entity: str) -> bool:
        if self.bulk_threshold is None or entity in BULK_UNSUPPORTED:
            return False
        if entity not in self._sizes:
            await self.snapshot_size(entity)
        size = self._sizes.get(entity)
        return size is not None and size >= self.bulk_threshold

    async def _rest_pages(self, soql: str) -> AsyncIterator[list[dict[str, Any]]]:
        async for page in self.client.query_pages(soql, batch_size=self.batch_size):
            yield page.records

    async def _bulk_pages(
        self, entity: str, soql: str, schema: EntitySchema, after: str | None
    ) -> AsyncIterator[CsvPage | list[dict[str, Any]]]:
        where = self.objects[entity].where
        ranges = await bulk_snapshot.id_ranges(
            self.client,
            entity,
            where=where,
            after=after,
            size=self._sizes.get(entity),
            chunk_records=self.chunk_records,
        )
        pages = bulk_snapshot.query_pages(
            self.client,
            entity,
            schema.names(),
            where=where,
            after=after,
            ranges=ranges,
            clock=self._poller.clock or SystemClock(),
            max_records=LOADED_PAGE_RECORDS if self.record_pages else DEFAULT_MAX_RECORDS,
        )
        try:
            first = await anext(pages)
        except SkippableError as exc:
            # The org refused the job (object not supported, Bulk API not enabled): REST
            # reads the same records, with more calls.
            log.warning("%s: Bulk API refused (%s); reading it over REST", entity, exc)
            self.snapshot_api[entity] = "rest"
            async for records in self._rest_pages(soql):
                yield records
            return
        except StopAsyncIteration:
            return
        yield first
        async for page in pages:
            yield page

    def record_event(
        self,
        entity: str,
        record: Mapping[str, Any],
        op: Operation,
        position: Position | None = None,
    ) -> ChangeEvent:
        """The event for one queried record (:func:`.record_events.record_event`)."""
        return record_event(entity, record, op, position)

    # -- current records (two-way syncs) -------------------------------------------------

    async def lookup(
        self, entity: str, field: str, values: Sequence[str]
    ) -> list[dict[str, object]]:
        """The current records of ``entity`` whose ``field`` holds one of ``values``
        (:class:`~sfsync.spi.source.RecordLookup`), with the configured fields."""
        fields = list(self.schema(entity).fields)
        return await lookup_records(self.client, entity, fields, field, values)

    async def give_keys(
        self, entity: str, key_field: str, keys: Mapping[str, str]
    ) -> dict[str, SyncError | None]:
        """Set ``key_field`` on records by Id (first-run matching; see :func:`.give_keys`)."""
        return dict(await give_keys(self.client, entity, key_field, keys))

    # -- changes --------------------------------------------------------------------------

    async def changes(self, resume: Checkpoint | None) -> AsyncIterator[Batch]:
        for entity in self.objects:
            async for batch in self.changes_of(entity, resume):
                yield batch

    async def changes_of(
        self, entity: str, resume: Checkpoint | None, *, sweep: bool | None = None
    ) -> AsyncIterator[Batch]:
        """One polling pass over ``entity`` from ``resume``: its changes and, when the overlap
        sweep runs (``sweep``; by default once per ``overlap`` seconds), the deletes the
        ``deleted`` resource lists since the last sweep. The real-time source polls through
        this too (joins, fallback)."""
        poller = self._poller
        if sweep is None:
            sweep = poller.sweep_due(entity)
        where = self.objects[entity].where
        async for batch in poller.poll(entity, self.schema(entity), where, resume, sweep=sweep):
            yield batch
        if sweep:
            purged = await poller.purged(entity, resume)
            if purged is not None:
                yield purged
