"""Near-real-time reads: one object's changes by tie-safe incremental polling, and its purged
deletes through the ``deleted`` resource (the module docstring of :mod:`.source` tells why).

A poll reads its changes over REST (``queryAll``, 2,000 records a call). When the first page
says that at least ``bulk_threshold`` more changes follow (a mass update, a data load, a sync
back after a pause), the rest of the poll is read through one Bulk API 2.0 ``queryAll`` job
with the same query from the first page's last record on: 10,000 records a call instead of
2,000, in the same ``(SystemModstamp, Id)`` order, so the cursor and the overlap bookkeeping
work as for REST pages. A job the org refuses (object not supported, Bulk API off) leaves the
poll on its REST pages.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sfsync.connectors.salesforce.bulk import (
    BULK_UNSUPPORTED,
    CsvPage,
    parse_page,
    run_query_job,
)
from sfsync.connectors.salesforce.client import SalesforceClient
from sfsync.connectors.salesforce.prefetch import prefetched
from sfsync.connectors.salesforce.record_events import (
    change_stream,
    deleted_stream,
    parse_stamp,
    record_event,
)
from sfsync.connectors.salesforce.soql import (
    Cursor,
    changes_query,
    datetime_literal,
    exits_query,
)
from sfsync.core.checkpoint import Checkpoint
from sfsync.core.errors import SkippableError, SyncError
from sfsync.core.events import Batch, ChangeEvent, Operation, Position
from sfsync.core.schema import EntitySchema
from sfsync.spi.clock import Clock, SystemClock

log = logging.getLogger("sfsync.salesforce")

RECENT_LIMIT = 100_000
"""Records remembered per object as delivered within the overlap window (Id -> stamp); above
it the older half is forgotten (older than most overlap windows)."""


class Poller:
    """Polls objects for changes; remembers, per object, when its last overlap sweep ran and
    which records it delivered within the overlap window (so a sweep does not repeat them).

    Args:
        client: the open client.
        overlap: seconds re-read before the cursor by the periodic sweep.
        bulk_threshold: changes after a poll's first page from which the rest is read through
            a Bulk API 2.0 job; ``None`` always polls over REST.
    """

    def __init__(
        self, client: SalesforceClient, *, overlap: float, bulk_threshold: int | None = None
    ) -> None:
        self.client = client
        self.overlap = overlap
        self.bulk_threshold = bulk_threshold
        self.bulk_polls = 0
        """Polls whose tail was read through a Bulk job: a figure for logs and tests."""
        self.batch_size = 2000
        self.clock: Clock | None = None
        # Per object, when the last overlap sweep ran (clock.monotonic()).
        self._swept: dict[str, float] = {}
        # Per object, records delivered within the overlap window: Id -> SystemModstamp.
        self._recent: dict[str, dict[str, str]] = {}

    def sweep_due(self, entity: str) -> bool:
        """Whether ``entity``'s next poll sweeps the overlap window (once per ``overlap``
        seconds, and on the first poll); a ``True`` answer starts the next window."""
        now = self.clock.monotonic() if self.clock is not None else 0.0
        last = self._swept.get(entity)
        if last is not None and now - last < self.overlap:
            return False
        self._swept[entity] = now
        return True

    async def poll(
        self,
        entity: str,
        schema: EntitySchema,
        where: str | None,
        resume: Checkpoint | None,
        *,
        sweep: bool,
    ) -> AsyncIterator[Batch]:
        """One pass over ``entity``'s changes since ``resume``'s cursor, in ``(SystemModstamp,
        Id)`` order; rows that left the row filter ``where`` become DELETE events."""
        position = resume.positions.get(change_stream(entity)) if resume else None
        since = Cursor.parse(position.token) if position and position.token else None
        overlap_from = None
        if since is not None and self.overlap > 0 and sweep:
            start = parse_stamp(since.modstamp) - timedelta(seconds=self.overlap)
            overlap_from = datetime_literal(start)
        recent = self._recent.setdefault(entity, {})
        exits: list[ChangeEvent] = []
        if where:
            soql = exits_query(entity, since=since, overlap_from=overlap_from, row_filter=where)
            exits = [
                record_event(entity, record, Operation.DELETE)
                for record in await self.client.query(soql, include_deleted=True)
            ]
        soql = changes_query(
            entity, schema.names(), since=since, overlap_from=overlap_from, row_filter=where
        )
        pending: list[ChangeEvent] = []
        async for records in self._change_pages(entity, schema, soql, where):
            events = [record_event(entity, r, Operation.UPDATE) for r in records]
            merged, exits = _merge_ordered(events, exits) if exits else (events, exits)
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
                _remember(recent, pending)
                pending = []
        pending.extend(exits)
        if pending:
            yield Batch.of(pending)
            _remember(recent, pending)

    async def _change_pages(
        self, entity: str, schema: EntitySchema, soql: str, where: str | None
    ) -> AsyncIterator[Sequence[Mapping[str, Any]]]:
        """The records of the changes query ``soql``, page by page, in its order: REST pages,
        or after the first one a Bulk job's pages when many changes follow."""
        pages = self.client.query_pages(soql, include_deleted=True, batch_size=self.batch_size)
        try:
            first = await anext(pages, None)
            if first is None:
                return
            remaining = first.total_size - len(first.records)
            if first.done or not first.records or not self._bulk_worth(entity, remaining):
                yield first.records
                async for page in pages:
                    yield page.records
                return
            last = first.records[-1]
            tail = changes_query(
                entity,
                schema.names(),
                since=Cursor(str(last["SystemModstamp"]), str(last["Id"])),
                row_filter=where,
            )
            jobs = run_query_job(
                self.client, tail, clock=self.clock or SystemClock(), include_deleted=True
            )
            yield first.records
            # Each page is downloaded and parsed while the sink applies the one before.
            bulk = prefetched(_parsed(jobs, schema))
            try:
                try:
                    records = await anext(bulk)
                except SkippableError as exc:
                    log.warning("%s: Bulk API refused (%s); polling on over REST", entity, exc)
                    async for rest in pages:
                        yield rest.records
                    return
                except StopAsyncIteration:
                    return
                # The REST query's locator is left to expire, as an abandoned query's is.
                self.bulk_polls += 1
                log.info("%s: %d more changes; read them through Bulk API 2.0", entity, remaining)
                yield records
                async for records in bulk:
                    yield records
            finally:
                await _close(bulk)
                await _close(jobs)  # (also when the job was never started)
        finally:
            await _close(pages)

    def _bulk_worth(self, entity: str, remaining: int) -> bool:
        return (
            self.bulk_threshold is not None
            and remaining >= self.bulk_threshold
            and entity not in BULK_UNSUPPORTED
        )

    async def purged(self, entity: str, resume: Checkpoint | None) -> Batch | None:
        """DELETE events for records deleted since the last sweep (the ``deleted`` resource)."""
        stream = deleted_stream(entity)
        position = resume.positions.get(stream) if resume else None
        cursor_pos = resume.positions.get(change_stream(entity)) if resume else None
        if position is not None and position.token:
            start = parse_stamp(position.token)
        elif cursor_pos is not None and cursor_pos.token:
            start = parse_stamp(Cursor.parse(cursor_pos.token).modstamp)
        else:
            return None  # nothing synced yet: a snapshot reads only live records anyway
        clock = self.clock or SystemClock()
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
        return _deletes(entity, stream, start, answer)


def _deletes(entity: str, stream: str, start: datetime, answer: Mapping[str, Any]) -> Batch | None:
    """The ``deleted`` resource's answer for the window from ``start`` as a batch."""
    covered = str(answer.get("latestDateCovered") or "")
    earliest = answer.get("earliestDateAvailable")
    if earliest and parse_stamp(str(earliest)) > start:
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
            committed_at=parse_stamp(str(item["deletedDate"])),
            version=str(item["deletedDate"]),
        )
        for item in answer.get("deletedRecords", [])
    ]
    if not events:
        # Still record how far the window reached, so the next sweep starts there.
        return Batch.of([], advances=[token])
    return Batch.of(events)


async def _parsed(
    jobs: AsyncIterator[CsvPage], schema: EntitySchema
) -> AsyncIterator[list[dict[str, object]]]:
    """A Bulk job's pages as records (their datetimes in REST's form: :func:`.parse_page`)."""
    async for page in jobs:
        yield parse_page(page, schema)


async def _close(pages: AsyncIterator[Any]) -> None:
    """Finish an abandoned page generator now (a Bulk job is closed on the org at once)."""
    close = getattr(pages, "aclose", None)
    if close is not None:
        await close()


def _remember(recent: dict[str, str], events: list[ChangeEvent]) -> None:
    for event in events:
        if event.version is not None:
            recent[event.key] = event.version
    if len(recent) > RECENT_LIMIT:
        # Keep memory bounded: drop the oldest half (older than most overlap windows).
        for key in sorted(recent, key=recent.__getitem__)[: len(recent) // 2]:
            del recent[key]


def _after(event: ChangeEvent, cursor: Cursor) -> bool:
    stamp = event.version or ""
    return (stamp, event.key) > (cursor.modstamp, cursor.record_id)


def _merge_ordered(
    events: list[ChangeEvent], exits: list[ChangeEvent]
) -> tuple[list[ChangeEvent], list[ChangeEvent]]:
    """The page's events with the exit deletes no later than its last event interleaved, in
    (stamp, Id) order; and the exits still to come."""
    if not events:
        return [], exits
    last = (events[-1].version or "", events[-1].key)
    due: list[ChangeEvent] = []
    later: list[ChangeEvent] = []
    for exit_ in exits:
        (due if (exit_.version or "", exit_.key) <= last else later).append(exit_)
    return sorted([*events, *due], key=lambda e: (e.version or "", e.key)), later
