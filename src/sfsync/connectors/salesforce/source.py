"""The Salesforce source: snapshot by REST query, changes by tie-safe incremental polling.

Snapshot
    Each object is read in ``Id`` order (``ORDER BY Id``), page by page; every READ event's
    position is ``(snapshot stream of the object, its Id)``, so an interrupted snapshot resumes
    after the last Id whose outcome was final instead of starting over. Objects with at least
    ``bulk_threshold`` records are read through a Bulk API 2.0 query job (CSV pages of up to
    50,000 records: far fewer API calls); smaller ones, and objects the Bulk API cannot read,
    over REST. If the org refuses the Bulk job, the object is read over REST instead.

Changes (near-real time)
    Each object is polled with ``queryAll`` in ``(SystemModstamp, Id)`` order from the last
    delivered pair. Ordering by the pair is what makes the cursor tie-safe: thousands of
    records sharing one millisecond (a bulk load) are never skipped or repeated. Because a long
    transaction can commit after a later one with an earlier ``SystemModstamp``, the first poll
    after start and then one poll in every ``overlap`` seconds is a *sweep*: it re-reads the
    overlap window before the cursor. Records already delivered with the same stamp are dropped
    in memory, anything else is absorbed by the sink's version guard. Sweeping once per window
    rather than on every poll keeps a short polling interval cheap in API calls.
    Deleted rows (``IsDeleted = true``, visible through ``queryAll`` while in the recycle bin)
    become DELETE events, and so do rows that no longer match the user's row filter. Records
    gone from the recycle bin too (emptied, or hard-deleted through the Bulk API) are invisible
    to ``queryAll``: each sweep also asks the ``deleted`` replication resource for the window
    since the last sweep, so those deletes reach the target as well.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any

from sfsync.connectors.salesforce.bulk import (
    BULK_UNSUPPORTED,
    DEFAULT_MAX_RECORDS,
    CsvPage,
    chunked_query_pages,
    last_record,
    page_header,
    parse_page,
    run_query_job,
)
from sfsync.connectors.salesforce.chunks import IdRange, IdRanges
from sfsync.connectors.salesforce.client import SalesforceClient
from sfsync.connectors.salesforce.lookup import give_keys, lookup_records
from sfsync.connectors.salesforce.prefetch import prefetched
from sfsync.connectors.salesforce.schema import entity_schema
from sfsync.connectors.salesforce.soql import (
    Cursor,
    changes_query,
    datetime_literal,
    exits_query,
    quote_string,
    select,
    snapshot_query,
)
from sfsync.core.checkpoint import Checkpoint, snapshot_stream
from sfsync.core.errors import ConfigError, SkippableError, SyncError
from sfsync.core.events import Batch, ChangeEvent, Operation, Position, RecordPage
from sfsync.core.schema import EntitySchema
from sfsync.spi.clock import Clock, SystemClock
from sfsync.spi.source import SourceCapabilities, SourceContext

log = logging.getLogger("sfsync.salesforce")

CHUNK_RECORDS = 250_000
"""Records per Id range of a chunked Bulk snapshot (the largest chunk Salesforce's PK chunking
allows): few jobs, each still rendered by the org while the sink applies the one before."""
CHUNK_POLL_SECONDS = 2.0
"""The longest wait between two polls of a range's job: the sink may wait for it, so a job
done is noticed within two seconds (the default backoff grows to ten)."""
BULK_BATCH_SIZE = 5000
"""Events per batch of a Bulk snapshot, at least (see ``SalesforceSource``): half a result
page (whole pages, 10,000 events, measured ~1 µs per record more CPU: a larger working set)."""
LOADED_PAGE_RECORDS = 25_000
"""Records per Bulk result page when the sink loads pages as they are (``record_pages``): a
page is only bytes then (about 8 MB of 20 fields), where a parsed page of as many events would
weigh several times more (the default is 10,000). Measured at 1,000,000 Accounts into
PostgreSQL: 10,000 -> 22.3 s, 25,000 -> 22.7 s, 50,000 -> 20.2-21.8 s but a peak RSS of 265 MB
instead of 165 MB (pages in flight: downloading, queued, being copied)."""
FIRST_CHUNK_RECORDS = 20_000
"""Records in the first range: small, so that the first rows arrive within a second or so; the
ranges after it grow by half each up to ``CHUNK_RECORDS`` (see :class:`IdRanges`)."""


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


def change_stream(sobject: str) -> str:
    """The stream name of ``sobject``'s polled changes."""
    return f"sf:{sobject}"


def deleted_stream(sobject: str) -> str:
    """The stream name of ``sobject``'s deletes read from the ``deleted`` resource."""
    return f"sf-deleted:{sobject}"


def _parse_stamp(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _values(record: Mapping[str, Any]) -> MappingProxyType[str, object]:
    """The record's fields (without ``attributes``), already frozen: ChangeEvent keeps a
    read-only mapping as it is instead of copying it again."""
    return MappingProxyType({k: v for k, v in record.items() if k != "attributes"})


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
    ) -> None:
        self.client = client
        self.bulk_batch_size = bulk_batch_size
        self.bulk_threshold = bulk_threshold
        self.chunk_records = chunk_records
        self._sizes: dict[str, int | None] = {}
        # Per object, the API its snapshot used ("bulk" or "rest"), for logs and tests.
        self.snapshot_api: dict[str, str] = {}
        self.objects = {o.name: o for o in objects}
        self.overlap = overlap
        self.batch_size = 2000
        # The sink loads CSV pages itself: Bulk pages go to it unparsed (SourceContext).
        self.record_pages = False
        self._schemas: dict[str, EntitySchema] = {}
        self._clock: Clock | None = None
        # Per object, when the last overlap sweep ran (clock.monotonic()).
        self._swept: dict[str, float] = {}
        # Per object, records delivered within the overlap window: Id -> SystemModstamp.
        self._recent: dict[str, dict[str, str]] = {}

    # -- lifecycle ------------------------------------------------------------------------

    async def open(self, ctx: SourceContext) -> None:
        self.batch_size = ctx.batch_size
        self.record_pages = ctx.record_pages
        self._clock = ctx.clock
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
                    whole = self._page_batch(entity, schema, page) if self.record_pages else None
                    if whole is not None:
                        yield [whole]
                        continue
                    records = parse_page(page, schema)
                else:
                    records = page
                events = self._read_events(entity, records)
                yield [Batch.of(events[i : i + size]) for i in range(0, len(events), size)]
        finally:
            close = getattr(pages, "aclose", None)
            if close is not None:
                await close()

    def _page_batch(self, entity: str, schema: EntitySchema, page: CsvPage) -> Batch | None:
        """A Bulk page as one unparsed page batch; ``None`` when it must be parsed here (no
        record count, no ``Id`` column, or a last record that cannot be read from the end)."""
        columns = page_header(page)
        if not page.count or "Id" not in columns:
            return None
        last = last_record(page, len(columns))
        if last is None or not last[columns.index("Id")]:
            return None

        def parse() -> list[ChangeEvent]:
            return self._read_events(entity, parse_page(page, schema))

        return Batch.of_page(
            RecordPage(
                entity=entity,
                columns=columns,
                csv=page.content,
                count=page.count,
                position=Position(snapshot_stream(entity), last[columns.index("Id")]),
                parse=parse,
            )
        )

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
        clock = self._clock or SystemClock()
        page_records = LOADED_PAGE_RECORDS if self.record_pages else DEFAULT_MAX_RECORDS
        ranges = await self._id_ranges(entity, after)
        if ranges is None:
            pages = run_query_job(self.client, soql, clock=clock, max_records=page_records)
        else:
            where = self.objects[entity].where
            names = schema.names()

            def soql_of(chunk: IdRange) -> str:
                return snapshot_query(
                    entity,
                    names,
                    row_filter=where,
                    after_id=after if chunk.start is None else None,
                    id_from=chunk.start,
                    id_below=chunk.end,
                )

            pages = chunked_query_pages(
                self.client,
                ranges,
                soql_of,
                clock=clock,
                max_records=page_records,
                max_poll_interval=CHUNK_POLL_SECONDS,
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

    async def _id_ranges(self, entity: str, after: str | None) -> IdRanges | None:
        """Id ranges for a chunked Bulk snapshot of ``entity``, or ``None`` for one job.

        Chunked when the object holds more than two first ranges: two cheap REST queries find
        its lowest (after the resume point) and highest Id.
        """
        size = self._sizes.get(entity)
        target = self.chunk_records
        if target is None or size is None:
            return None
        first_target = min(FIRST_CHUNK_RECORDS, target)
        if size <= 2 * first_target:
            return None
        where = [w for w in (self.objects[entity].where,) if w]
        if after:
            where.append(f"Id > {quote_string(after)}")
        bounds: list[str] = []
        for order in ("Id", "Id DESC"):
            records = await self.client.query(
                select(entity, ["Id"], where=where, order_by=[order], limit=1)
            )
            if not records:
                return None
            bounds.append(str(records[0]["Id"]))
        try:
            return IdRanges(bounds[0], bounds[1], size, target=target, first_target=first_target)
        except ValueError as exc:  # not Salesforce Ids (cannot be split): one job reads it
            log.info("%s: snapshot not split into Id ranges: %s", entity, exc)
            return None

    def _read_events(self, entity: str, records: Sequence[Mapping[str, Any]]) -> list[ChangeEvent]:
        """READ events of snapshot records, each at ``(snapshot stream, its Id)``: the resume
        point of an Id-ordered read.

        The bulk path of a snapshot: the records are fresh dicts nobody else holds (parsed Bulk
        CSV rows, or REST records copied once without ``attributes``), so they are wrapped
        read-only as they are, and the events are built through :meth:`ChangeEvent.of_state`.
        """
        stream = snapshot_stream(entity)
        read, of_state, proxy = Operation.READ, ChangeEvent.of_state, MappingProxyType
        events: list[ChangeEvent] = []
        append = events.append
        for record in records:
            if record.__class__ is not dict or record.get("IsDeleted"):
                key = str(record["Id"])
                append(self.record_event(entity, record, read, Position(stream, key)))
                continue
            if "attributes" in record:  # a REST record: its values without the metadata
                record = {k: v for k, v in record.items() if k != "attributes"}
            key, stamp = record["Id"], record["SystemModstamp"]
            if key.__class__ is not str or stamp.__class__ is not str:
                key, stamp = str(key), str(stamp)
            append(
                of_state(
                    entity,
                    key,
                    read,
                    proxy(record),
                    Position(stream, key),
                    _parse_stamp(stamp),
                    stamp,
                )
            )
        return events

    def record_event(
        self,
        entity: str,
        record: Mapping[str, Any],
        op: Operation,
        position: Position | None = None,
    ) -> ChangeEvent:
        """The event for one queried record; deleted rows become DELETE events.

        Without ``position``, the event sits at its ``(SystemModstamp, Id)`` cursor in the
        object's change stream.
        """
        stamp = str(record["SystemModstamp"])
        key = str(record["Id"])
        deleted = op is Operation.DELETE or bool(record.get("IsDeleted"))
        position = position or Position(change_stream(entity), Cursor(stamp, key).token())
        if not deleted:
            # _values gives a fresh read-only mapping: the cheap constructor applies.
            return ChangeEvent.of_state(
                entity, key, op, _values(record), position, _parse_stamp(stamp), stamp
            )
        return ChangeEvent(
            entity=entity,
            key=key,
            op=Operation.DELETE,
            after=None,
            position=position,
            committed_at=_parse_stamp(stamp),
            version=stamp,
        )

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
        if sweep is None:
            sweep = self._sweep_due(entity)
        async for batch in self._poll(entity, resume, sweep=sweep):
            yield batch
        if sweep:
            purged = await self._purged(entity, resume)
            if purged is not None:
                yield purged

    async def _purged(self, entity: str, resume: Checkpoint | None) -> Batch | None:
        """DELETE events for records deleted since the last sweep (the ``deleted`` resource)."""
        stream = deleted_stream(entity)
        position = resume.positions.get(stream) if resume else None
        cursor_pos = resume.positions.get(change_stream(entity)) if resume else None
        if position is not None and position.token:
            start = _parse_stamp(position.token)
        elif cursor_pos is not None and cursor_pos.token:
            start = _parse_stamp(Cursor.parse(cursor_pos.token).modstamp)
        else:
            return None  # nothing synced yet: a snapshot reads only live records anyway
        clock = self._clock or SystemClock()
        end = clock.now()
        if end - start < timedelta(minutes=1):
            return None  # the resource works in whole minutes
        try:
            answer = await self.client.deleted(entity, start, end)
        except SyncError as exc:
            if exc.code != "INVALID_REPLICATION_DATE":
                raise
            # Our clock and the org's disagree about "now" (or the window is under a minute
            # on the org's clock): nothing to read yet; the next sweep covers it.
            log.info("%s: deleted records not read this sweep: %s", entity, exc)
            return None
        covered = str(answer.get("latestDateCovered") or "")
        earliest = answer.get("earliestDateAvailable")
        if earliest and _parse_stamp(str(earliest)) > start:
            log.warning(
                "%s: deletes before %s are no longer listed by Salesforce; records deleted "
                "then may remain in the target until a resync",
                entity,
                earliest,
            )
        if not covered:
            return None
        token = Position(stream, covered)
        events = [
            ChangeEvent(
                entity=entity,
                key=str(item["id"]),
                op=Operation.DELETE,
                after=None,
                position=token,
                committed_at=_parse_stamp(str(item["deletedDate"])),
                version=str(item["deletedDate"]),
            )
            for item in answer.get("deletedRecords", [])
        ]
        if not events:
            # Still record how far the window reached, so the next sweep starts there.
            return Batch.of([], advances=[token])
        return Batch.of(events)

    async def _poll(
        self, entity: str, resume: Checkpoint | None, *, sweep: bool
    ) -> AsyncIterator[Batch]:
        schema = self.schema(entity)
        selection = self.objects[entity]
        position = resume.positions.get(change_stream(entity)) if resume else None
        since = Cursor.parse(position.token) if position and position.token else None
        overlap_from = None
        if since is not None and self.overlap > 0 and sweep:
            start = _parse_stamp(since.modstamp) - timedelta(seconds=self.overlap)
            overlap_from = datetime_literal(start)
        recent = self._recent.setdefault(entity, {})
        exits: list[ChangeEvent] = []
        if selection.where:
            soql = exits_query(
                entity, since=since, overlap_from=overlap_from, row_filter=selection.where
            )
            exits = [
                self.record_event(entity, record, Operation.DELETE)
                for record in await self.client.query(soql, include_deleted=True)
            ]
        soql = changes_query(
            entity,
            schema.names(),
            since=since,
            overlap_from=overlap_from,
            row_filter=selection.where,
        )
        pending: list[ChangeEvent] = []
        async for page in self.client.query_pages(
            soql, include_deleted=True, batch_size=self.batch_size
        ):
            events = [self.record_event(entity, r, Operation.UPDATE) for r in page.records]
            merged = _merge_ordered(events, exits) if exits else events
            exits = [e for e in exits if e not in merged]
            for event in merged:
                if (
                    since is not None
                    and not _after(event, since)
                    and recent.get(event.key) == (event.version)
                ):
                    continue  # already delivered in an earlier poll
                pending.append(event)
            if len(pending) >= self.batch_size:
                yield Batch.of(pending)
                self._remember(recent, pending)
                pending = []
        pending.extend(exits)
        if pending:
            yield Batch.of(pending)
            self._remember(recent, pending)

    def _sweep_due(self, entity: str) -> bool:
        now = self._clock.monotonic() if self._clock is not None else 0.0
        last = self._swept.get(entity)
        if last is not None and now - last < self.overlap:
            return False
        self._swept[entity] = now
        return True

    def _remember(self, recent: dict[str, str], events: list[ChangeEvent]) -> None:
        for event in events:
            if event.version is not None:
                recent[event.key] = event.version
        if len(recent) > 100_000:
            # Keep memory bounded: drop the oldest half (older than most overlap windows).
            for key in sorted(recent, key=recent.__getitem__)[: len(recent) // 2]:
                del recent[key]


def _after(event: ChangeEvent, cursor: Cursor) -> bool:
    stamp = event.version or ""
    return (stamp, event.key) > (cursor.modstamp, cursor.record_id)


def _merge_ordered(events: list[ChangeEvent], exits: list[ChangeEvent]) -> list[ChangeEvent]:
    """Interleave exit deletes no later than the page's last event, in (stamp, Id) order."""
    if not events:
        return []
    last = (events[-1].version or "", events[-1].key)
    due = [e for e in exits if (e.version or "", e.key) <= last]
    return sorted([*events, *due], key=lambda e: (e.version or "", e.key))
