"""Bulk API 2.0 query jobs: the high-volume read path.

A query job runs server-side; its results come back as CSV pages linked by locators
(``Sforce-Locator``, the literal ``null`` on the last page). Each page is parsed into records
with the same value types as the REST path (numbers, booleans, ``None`` for empty), so a
sink cannot tell which API read a record.

Lifecycle: :func:`run_query_job` creates the job, waits for it on the injected clock, yields
pages, and deletes the job at the end (or aborts it if the reader stops early).
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Mapping
from typing import Any

import orjson

from sfsync.connectors.salesforce.client import SalesforceClient
from sfsync.core.errors import FatalError, RetryableError, SyncError
from sfsync.core.schema import EntitySchema, FieldKind
from sfsync.spi.clock import Clock

TERMINAL_STATES = frozenset({"JobComplete", "Failed", "Aborted"})
DEFAULT_MAX_RECORDS = 10_000

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


def _converter(kind: FieldKind) -> Any:
    if kind is FieldKind.BOOLEAN:
        return lambda v: v == "true"
    if kind is FieldKind.INTEGER:
        return int
    if kind in (FieldKind.DECIMAL, FieldKind.FLOAT):
        return float
    return None


def parse_csv_page(text: str, schema: EntitySchema) -> list[dict[str, object]]:
    """Records of one result page, typed as the REST API would return them.

    Empty fields are ``None`` (Bulk 2.0 writes nulls as empty values); booleans, integers and
    numbers are converted using ``schema``; everything else stays text (dates and datetimes in
    Salesforce's wire format, as over REST).
    """
    reader = csv.reader(io.StringIO(text.replace("\x00", "")))
    try:
        header = next(reader)
    except StopIteration:
        return []
    converters = [
        _converter(schema.fields[name].kind) if name in schema.fields else None for name in header
    ]
    records: list[dict[str, object]] = []
    for row in reader:
        if not row:
            continue
        record: dict[str, object] = {}
        for name, convert, value in zip(header, converters, row, strict=True):
            if value == "":
                record[name] = None
            elif convert is not None:
                record[name] = convert(value)
            else:
                record[name] = value
        records.append(record)
    return records


async def run_query_job(
    client: SalesforceClient,
    soql: str,
    schema: EntitySchema,
    *,
    clock: Clock,
    include_deleted: bool = False,
    max_records: int = DEFAULT_MAX_RECORDS,
    poll_interval: float = 0.5,
    max_poll_interval: float = 10.0,
) -> AsyncIterator[list[dict[str, object]]]:
    """Run one Bulk API 2.0 query job and yield its result pages as typed records.

    Raises:
        FatalError: the job failed (with Salesforce's ``errorMessage``) or was aborted.
        RetryableError, RateLimitError: as classified by the client.
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
    job_id = str(job["id"])
    finished = False
    try:
        delay = poll_interval
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
        locator: str | None = None
        while True:
            params = {"maxRecords": str(max_records)}
            if locator:
                params["locator"] = locator
            page = await client.request(
                "GET",
                client.data_path(f"jobs/query/{job_id}/results"),
                params=params,
                headers={"Accept": "text/csv"},
                what="download Bulk query results",
            )
            records = parse_csv_page(page.text, schema)
            count = page.headers.get("Sforce-NumberOfRecords")
            if count is not None and int(count) != len(records):
                raise RetryableError(
                    f"Bulk results page of job {job_id} holds {len(records)} records, "
                    f"the header says {count}: a truncated download"
                )
            yield records
            locator = page.headers.get("Sforce-Locator")
            if not locator or locator == "null":
                break
        finished = True
    finally:
        await _cleanup(client, job_id, finished)


async def _cleanup(client: SalesforceClient, job_id: str, finished: bool) -> None:
    """Delete a finished job; abort one we stopped reading. Best effort: jobs expire anyway."""
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
