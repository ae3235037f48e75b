"""An object's snapshot read through Bulk API 2.0: one query job, or consecutive Id ranges of
growing size, one job each; and each result page as the batches it makes.

Large objects are read as Id ranges (docs/salesforce-source.md): a small first range so that
the first rows arrive within a second or so, then ranges growing by half each up to
``chunk_records``, each sized from the density the previous job reported, the next job
rendered by the org while the sink applies the current range (:func:`.bulk.chunked_query_pages`).

A page goes to a sink that loads CSV itself unparsed (:func:`page_batch`): only its header line
and its last record (read from the end, the resume point) are looked at.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Sequence

from sfsync.connectors.salesforce.bulk import (
    CsvPage,
    chunked_query_pages,
    last_record,
    page_header,
    run_query_job,
)
from sfsync.connectors.salesforce.chunks import IdRange, IdRanges
from sfsync.connectors.salesforce.client import SalesforceClient
from sfsync.connectors.salesforce.soql import quote_string, select, snapshot_query
from sfsync.core.checkpoint import snapshot_stream
from sfsync.core.events import Batch, ChangeEvent, Position, RecordPage
from sfsync.spi.clock import Clock

log = logging.getLogger("sfsync.salesforce")

CHUNK_RECORDS = 250_000
"""Records per Id range of a chunked Bulk snapshot (the largest chunk Salesforce's PK chunking
allows): few jobs, each still rendered by the org while the sink applies the one before."""
CHUNK_POLL_SECONDS = 2.0
"""The longest wait between two polls of a range's job: the sink may wait for it, so a job
done is noticed within two seconds (the default backoff grows to ten)."""
LOADED_PAGE_RECORDS = 25_000
"""Records per Bulk result page when the sink loads pages as they are (``record_pages``): a
page is only bytes then (about 8 MB of 20 fields), where a parsed page of as many events would
weigh several times more (the default is 10,000). Measured at 1,000,000 Accounts into
PostgreSQL: 10,000 -> 22.3 s, 25,000 -> 22.7 s, 50,000 -> 20.2-21.8 s but a peak RSS of 265 MB
instead of 165 MB (pages in flight: downloading, queued, being copied)."""
FIRST_CHUNK_RECORDS = 20_000
"""Records in the first range: small, so that the first rows arrive within a second or so; the
ranges after it grow by half each up to ``CHUNK_RECORDS`` (see :class:`IdRanges`)."""


async def id_ranges(
    client: SalesforceClient,
    entity: str,
    *,
    where: str | None,
    after: str | None,
    size: int | None,
    chunk_records: int | None,
) -> IdRanges | None:
    """Id ranges for a chunked Bulk snapshot of ``entity`` (``size`` records, read after the
    Id ``after``), or ``None`` for one job.

    Chunked when the object holds more than two first ranges: two cheap REST queries find
    its lowest (after the resume point) and highest Id.
    """
    if chunk_records is None or size is None:
        return None
    first_target = min(FIRST_CHUNK_RECORDS, chunk_records)
    if size <= 2 * first_target:
        return None
    conditions = [w for w in (where,) if w]
    if after:
        conditions.append(f"Id > {quote_string(after)}")
    bounds: list[str] = []
    for order in ("Id", "Id DESC"):
        records = await client.query(
            select(entity, ["Id"], where=conditions, order_by=[order], limit=1)
        )
        if not records:
            return None
        bounds.append(str(records[0]["Id"]))
    try:
        return IdRanges(bounds[0], bounds[1], size, target=chunk_records, first_target=first_target)
    except ValueError as exc:  # not Salesforce Ids (cannot be split): one job reads it
        log.info("%s: snapshot not split into Id ranges: %s", entity, exc)
        return None


def query_pages(
    client: SalesforceClient,
    entity: str,
    names: Sequence[str],
    *,
    where: str | None,
    after: str | None,
    ranges: IdRanges | None,
    clock: Clock,
    max_records: int,
) -> AsyncIterator[CsvPage]:
    """The result pages of ``entity``'s snapshot: one job (``ranges`` is ``None``), or one
    job per Id range, in Id order.

    Raises:
        SkippableError: the org refused the (first) job; the caller can read over REST.
    """
    if ranges is None:
        soql = snapshot_query(entity, names, row_filter=where, after_id=after)
        return run_query_job(client, soql, clock=clock, max_records=max_records)

    def soql_of(chunk: IdRange) -> str:
        return snapshot_query(
            entity,
            names,
            row_filter=where,
            after_id=after if chunk.start is None else None,
            id_from=chunk.start,
            id_below=chunk.end,
        )

    return chunked_query_pages(
        client,
        ranges,
        soql_of,
        clock=clock,
        max_records=max_records,
        max_poll_interval=CHUNK_POLL_SECONDS,
    )


def page_batch(
    entity: str, page: CsvPage, parse: Callable[[], Sequence[ChangeEvent]]
) -> Batch | None:
    """A Bulk page as one unparsed page batch (``parse`` gives its READ events, for a sink
    that needs them after all); ``None`` when it must be parsed now (no record count, no
    ``Id`` column, or a last record that cannot be read from the end)."""
    columns = page_header(page)
    if not page.count or "Id" not in columns:
        return None
    last = last_record(page, len(columns))
    key = last[columns.index("Id")] if last is not None else ""
    if not key:
        return None
    return Batch.of_page(
        RecordPage(
            entity=entity,
            columns=columns,
            csv=page.content,
            count=page.count,
            position=Position(snapshot_stream(entity), key),
            parse=parse,
        )
    )
