"""Bulk API 2.0 query jobs: the high-volume read path.

A query job runs server-side; its results come back as CSV pages linked by locators
(``Sforce-Locator``, the literal ``null`` on the last page). Each page arrives as a
:class:`CsvPage` (its bytes and Salesforce's record count). :func:`parse_page` turns one into
records with the same value types as the REST path (numbers, booleans, ``None`` for empty), so
a sink cannot tell which API read a record; a reader whose sink loads CSV itself hands the
bytes on unparsed (:func:`last_record`, the one cell it needs, is read from the page's end).

Lifecycle: :func:`run_query_job` creates the job, waits for it on the injected clock, yields
pages, and deletes the job at the end (or aborts it if the reader stops early). Its steps are
public (:func:`start_query_job`, :func:`wait_query_job`, :func:`query_job_pages`,
:func:`finish_query_job`) for readers that keep a second job running while they read the
first (the chunked snapshot of :mod:`.source`).
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from operator import methodcaller
from typing import Any

import orjson

from sfsync.connectors.salesforce.chunks import IdRange, IdRanges
from sfsync.connectors.salesforce.client import SalesforceClient
from sfsync.core.errors import FatalError, RetryableError, SyncError
from sfsync.core.schema import EntitySchema, FieldKind
from sfsync.spi.clock import Clock

TERMINAL_STATES = frozenset({"JobComplete", "Failed", "Aborted"})
DEFAULT_MAX_RECORDS = 10_000
FIRST_POLL_SECONDS = 0.2
"""The first wait before asking whether a new query job is complete; each later wait is half
as long again (up to ``max_poll_interval``). A small first range completes within a second, so
a short first wait starts the snapshot sooner, for at most two more status calls a job."""

# Objects the Bulk API cannot query (Salesforce answers INVALIDENTITY); read them over REST.
BULK_UNSUPPORTED = frozenset(
    {
        "AggregateResult",
        "FeedItem",
        "FeedComment",
        "UserRecordAccess",
        "RecentlyViewed",
        "ContentDocumentLink",
    }
)


@dataclass(frozen=True, slots=True)
class CsvPage:
    """One downloaded result page of a query job, unparsed.

    Attributes:
        job_id: the job it belongs to (for messages).
        content: the page's CSV, header line first (UTF-8; LF line ends as the job asked).
        count: Salesforce's ``Sforce-NumberOfRecords`` for the page, if it sent one.
    """

    job_id: str
    content: bytes
    count: int | None


def parse_page(page: CsvPage, schema: EntitySchema) -> list[dict[str, object]]:
    """The page's records (:func:`parse_csv_page`), checked against its record count.

    Raises:
        RetryableError: the page holds another number of records than its header says (a
            truncated or garbled download).
    """
    records = parse_csv_page(page.content.decode("utf-8"), schema)
    if page.count is not None and page.count != len(records):
        raise RetryableError(
            f"Bulk results page of job {page.job_id} holds {len(records)} records, "
            f"the header says {page.count}: a truncated download"
        )
    return records


def page_header(page: CsvPage) -> tuple[str, ...]:
    """The page's column names (its first line), without reading further."""
    end = page.content.find(b"\n")
    head = page.content[: end if end >= 0 else len(page.content)].decode("utf-8")
    return tuple(next(csv.reader([head.rstrip("\r")]), []))


def last_record(page: CsvPage, width: int) -> list[str] | None:
    """The cells of the page's last record, read from its end; ``None`` when that cannot be
    told without parsing the whole page (the last line is part of a record holding a line
    break) or the page has no record.

    Sound for valid CSV: a last line that starts inside a quoted cell holds that cell's
    closing quote and whole cells after it (an even number of quotes each), so an odd
    number of quotes in all; a line with an even number is a whole record.
    """
    content = page.content
    end = len(content)
    while end and content[end - 1] in b"\r\n":  # the final line end (no copy of the page)
        end -= 1
    start = content.rfind(b"\n", 0, end) + 1
    if start == 0:
        return None  # the header alone
    line = content[start:end]
    if line.count(b'"') % 2:
        return None
    row = next(csv.reader([line.decode("utf-8").rstrip("\r")]), None)
    return row if row is not None and len(row) == width else None


# Bulk CSV writes a datetime as ``…T09:30:00.000Z``, REST as ``…T09:30:00.000+0000``. A
# datetime's text holds no other "Z"; methodcaller runs no Python frame per value.
_REST_DATETIME = methodcaller("replace", "Z", "+0000")


def _converter(kind: FieldKind) -> Any:
    if kind is FieldKind.BOOLEAN:
        return lambda v: v == "true"
    if kind is FieldKind.INTEGER:
        return int
    if kind in (FieldKind.DECIMAL, FieldKind.FLOAT):
        return float
    if kind is FieldKind.DATETIME:
        return _REST_DATETIME
    return None


def parse_csv_page(text: str, schema: EntitySchema) -> list[dict[str, object]]:
    """Records of one result page, typed as the REST API would return them.

    Empty fields are ``None`` (Bulk 2.0 writes nulls as empty values); booleans, integers and
    numbers are converted using ``schema``; datetimes are put in REST's form (``+0000``, not
    Bulk's ``Z``), so that a ``SystemModstamp`` read by either API is the same version text and
    the same polling cursor; everything else stays text, as over REST.
    """
    reader = csv.reader(io.StringIO(text.replace("\x00", "")))
    try:
        header = next(reader)
    except StopIteration:
        return []
    # Column-wise work is done once per page: which columns need a conversion. Per row, one
    # dict comprehension turns empty values into None (C-speed), then only the typed columns
    # are touched.
    typed = [
        (name, convert)
        for name in header
        if name in schema.fields and (convert := _converter(schema.fields[name].kind)) is not None
    ]
    width = len(header)
    records: list[dict[str, object]] = []
    append = records.append
    for row in reader:
        if len(row) != width:
            if not row:
                continue
            raise RetryableError(
                f"a Bulk results row has {len(row)} values, the header names {width} "
                "columns: a garbled download"
            )
        record: dict[str, object] = {k: v or None for k, v in zip(header, row, strict=True)}
        for name, convert in typed:
            value = record[name]
            if value is not None:
                record[name] = convert(value)
        append(record)
    return records


async def run_query_job(
    client: SalesforceClient,
    soql: str,
    *,
    clock: Clock,
    include_deleted: bool = False,
    max_records: int = DEFAULT_MAX_RECORDS,
    poll_interval: float = FIRST_POLL_SECONDS,
    max_poll_interval: float = 10.0,
) -> AsyncIterator[CsvPage]:
    """Run one Bulk API 2.0 query job and yield its result pages (unparsed: see
    :func:`parse_page`).

    Raises:
        FatalError: the job failed (with Salesforce's ``errorMessage``) or was aborted.
        RetryableError, RateLimitError: as classified by the client.
    """
    job_id, state = await start_query_job(client, soql, include_deleted=include_deleted)
    finished = False
    try:
        await wait_query_job(
            client,
            job_id,
            state=state,
            clock=clock,
            poll_interval=poll_interval,
            max_poll_interval=max_poll_interval,
        )
        async for page in query_job_pages(client, job_id, max_records=max_records):
            yield page
        finished = True
    finally:
        await finish_query_job(client, job_id, finished=finished)


async def start_query_job(
    client: SalesforceClient, soql: str, *, include_deleted: bool = False
) -> tuple[str, str]:
    """Create a query job (the org starts running it at once); returns its id and state.

    The caller owns the job from here: it must end with :func:`finish_query_job`.
    """
    body = {
        "operation": "queryAll" if include_deleted else "query",
        "query": soql,
        "contentType": "CSV",
        "columnDelimiter": "COMMA",
        "lineEnding": "LF",
    }
    response = await client.request(
        "POST", client.data_path("jobs/query"), json=body, what="create Bulk query job"
    )
    job: Mapping[str, Any] = orjson.loads(response.content)
    return str(job["id"]), str(job.get("state"))


async def wait_query_job(
    client: SalesforceClient,
    job_id: str,
    *,
    clock: Clock,
    state: str | None = None,
    poll_interval: float = FIRST_POLL_SECONDS,
    max_poll_interval: float = 10.0,
) -> int | None:
    """Poll the job (on ``clock``, backing off) until it is complete; its record count.

    ``state`` is the job's state as last seen (its creation answer): then the first poll
    waits ``poll_interval``; without it the job is asked at once (a job created a while ago).

    Raises:
        FatalError: the job failed (with Salesforce's ``errorMessage``) or was aborted.
    """
    delay = poll_interval
    job: Mapping[str, Any] = {"state": state}
    if state is None:
        job = await client.get_json(
            client.data_path(f"jobs/query/{job_id}"), what="poll Bulk query job"
        )
        state = str(job.get("state"))
    while state not in TERMINAL_STATES:
        await clock.sleep(delay)
        delay = min(delay * 1.5, max_poll_interval)
        job = await client.get_json(
            client.data_path(f"jobs/query/{job_id}"), what="poll Bulk query job"
        )
        state = str(job.get("state"))
    if state != "JobComplete":
        raise FatalError(
            f"Bulk query job {job_id} ended {state}: {job.get('errorMessage') or 'no reason'}",
            hint="check the query; objects the Bulk API cannot read are synced over REST",
        )
    count = job.get("numberRecordsProcessed")
    return int(count) if isinstance(count, int) else None


async def query_job_pages(
    client: SalesforceClient,
    job_id: str,
    *,
    max_records: int = DEFAULT_MAX_RECORDS,
) -> AsyncIterator[CsvPage]:
    """The result pages of a complete job, following the locators (unparsed: a page is read
    whole, then handed over; see :func:`parse_page`)."""
    locator: str | None = None
    while True:
        params = {"maxRecords": str(max_records)}
        if locator:
            params["locator"] = locator
        response = await client.request(
            "GET",
            client.data_path(f"jobs/query/{job_id}/results"),
            params=params,
            headers={"Accept": "text/csv"},
            what="download Bulk query results",
        )
        count = response.headers.get("Sforce-NumberOfRecords")
        yield CsvPage(job_id, response.content, int(count) if count is not None else None)
        locator = response.headers.get("Sforce-Locator")
        if not locator or locator == "null":
            return


async def finish_query_job(client: SalesforceClient, job_id: str, *, finished: bool) -> None:
    """Delete a job read to its end; abort one we stopped reading (or never read).

    Best effort: jobs expire anyway.
    """
    try:
        if finished:
            await client.request(
                "DELETE", client.data_path(f"jobs/query/{job_id}"), what="delete Bulk job"
            )
        else:
            await client.request(
                "PATCH",
                client.data_path(f"jobs/query/{job_id}"),
                json={"state": "Aborted"},
                what="abort Bulk job",
            )
    except SyncError:
        pass


async def chunked_query_pages(
    client: SalesforceClient,
    ranges: IdRanges,
    soql_of: Callable[[IdRange], str],
    *,
    clock: Clock,
    max_records: int = DEFAULT_MAX_RECORDS,
    poll_interval: float = FIRST_POLL_SECONDS,
    max_poll_interval: float = 10.0,
) -> AsyncIterator[CsvPage]:
    """The result pages of one query job per Id range of ``ranges``, in range order.

    While the pages of one range are read, the job of the next is already running on the
    org: it is created as soon as the current one is complete (its record count sizes the
    next range, see :class:`~sfsync.connectors.salesforce.chunks.IdRanges`), so the org renders
    range ``n + 1`` while the reader applies range ``n``. At most two jobs exist at a time;
    each is deleted once read, and any still open when the reader stops is aborted.

    Raises:
        SkippableError: the org refused the first job (the caller can read over REST).
        FatalError, RetryableError, RateLimitError: as :func:`run_query_job`.
    """
    current = ranges.next()
    if current is None:
        return
    open_jobs: list[str] = []
    state: str | None
    try:
        job_id, state = await start_query_job(client, soql_of(current))
        open_jobs.append(job_id)
        while True:
            count = await wait_query_job(
                client,
                job_id,
                state=state,
                clock=clock,
                poll_interval=poll_interval,
                max_poll_interval=max_poll_interval,
            )
            ranges.observe(count or 0)
            following = ranges.next()
            upcoming: tuple[str, str | None] | None = None
            if following is not None:
                next_id, _ = await start_query_job(client, soql_of(following))
                open_jobs.append(next_id)
                upcoming = (next_id, None)  # created a while before it is waited for
            async for page in query_job_pages(client, job_id, max_records=max_records):
                yield page
            open_jobs.remove(job_id)
            await finish_query_job(client, job_id, finished=True)
            if upcoming is None:
                return
            job_id, state = upcoming
    finally:
        for job in open_jobs:
            await finish_query_job(client, job, finished=False)
