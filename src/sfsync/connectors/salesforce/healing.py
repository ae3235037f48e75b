"""Re-reading records from the org when the change stream cannot tell what changed.

Change Data Capture is lossy in documented ways, and each way has its cure here:

* a ``GAP_*`` event names records whose change Salesforce could not describe (an internal
  error, a change made outside the API's view): those records are read again by Id;
* a ``GAP_OVERFLOW`` event stands for a transaction too large to describe (more than 100,000
  changes): every record of the object changed since shortly before that commit is read again;
* an ``UNDELETE`` event carries no values: the record is read again so the target gets it whole;
* a payload that does not decode is treated like an overflow at the stream's watermark.

Healed records become ordinary events at the position of the event that asked for them, so the
checkpoint moves past a gap only once its records are applied. A record that no longer exists
(deleted and purged since) becomes a DELETE. The sink's version guard absorbs anything read
twice.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime, timedelta

from sfsync.connectors.salesforce.cdc import wire_datetime
from sfsync.connectors.salesforce.soql import changes_query, quote_string, select
from sfsync.connectors.salesforce.source import SalesforceSource
from sfsync.core.events import ChangeEvent, Operation, Position

IDS_PER_QUERY = 200  # keeps each query well under SOQL's 100,000-character limit


async def reread_records(
    source: SalesforceSource,
    entity: str,
    ids: Sequence[str],
    position: Position,
    committed_at: datetime,
    *,
    op: Operation = Operation.UPDATE,
) -> list[ChangeEvent]:
    """The current state of ``ids`` as events at ``position`` (``queryAll``: deleted rows
    become DELETE events; ids the org no longer knows too)."""
    schema = source.schema(entity)
    fields = list(schema.names())
    events: list[ChangeEvent] = []
    unique = sorted(set(ids))
    for first in range(0, len(unique), IDS_PER_QUERY):
        chunk = unique[first : first + IDS_PER_QUERY]
        soql = select(
            entity,
            fields,
            where=[f"Id IN ({', '.join(quote_string(i) for i in chunk)})"],
            order_by=["Id"],
        )
        found = {
            str(record["Id"]): record
            for record in await source.client.query(soql, include_deleted=True)
        }
        for record_id in chunk:
            record = found.get(record_id)
            if record is None:
                # Gone from the recycle bin too: deleted for good.
                events.append(
                    ChangeEvent(
                        entity=entity,
                        key=record_id,
                        op=Operation.DELETE,
                        after=None,
                        position=position,
                        committed_at=committed_at,
                        version=wire_datetime(int(committed_at.timestamp() * 1000)),
                    )
                )
            else:
                events.append(source.record_event(entity, record, op, position))
    return events


async def reread_window(
    source: SalesforceSource,
    entity: str,
    since: datetime,
    position: Position,
    *,
    batch_size: int = 2000,
) -> AsyncIterator[list[ChangeEvent]]:
    """Every record of ``entity`` changed at or after ``since`` (``queryAll``), as events at
    ``position``, a page at a time."""
    schema = source.schema(entity)
    selection = source.objects[entity]
    soql = changes_query(
        entity,
        schema.names(),
        since=None,
        overlap_from=wire_datetime(int(since.timestamp() * 1000)),
        row_filter=selection.where,
    )
    async for page in source.client.query_pages(soql, include_deleted=True, batch_size=batch_size):
        yield [
            source.record_event(entity, record, Operation.UPDATE, position)
            for record in page.records
        ]


def window_start(commit: datetime, overlap: float) -> datetime:
    """Where an overflow's re-read starts: ``overlap`` seconds before its commit, because the
    records of a long transaction carry stamps from before the commit."""
    return commit - timedelta(seconds=overlap)
