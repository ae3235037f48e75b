"""Bulk API 2.0 ingest jobs: the high-volume write path.

:func:`run_ingest_job` writes rows of one object and one operation (``upsert`` by an external
id, ``update`` or ``delete`` by Id) as one job: create it, upload one CSV, close it, wait on
the injected clock, then read ``successfulResults`` (and ``failedResults`` when the job counted
failures) and delete the job. :func:`run_ingest_jobs` splits a large group into several
such jobs (:func:`split_jobs`) and keeps a few of them in flight, so that building and
uploading one job's CSV and reading another's results overlap with the org's processing.

* The CSV (:mod:`.bulkcsv`): the key (the external id field, or ``Id``) and the union of the
  rows' fields; a row without a field leaves its cell empty, which Bulk reads as "leave
  unchanged"; a null is ``#N/A``. Parent references stay ``Account.Ext_Id__c`` columns.
* Rows are ordered so that rows sharing a parent are adjacent and in one job: the platform
  splits a job into chunks processed in parallel, and jobs run side by side; keeping one
  parent's children in one chunk and one job keeps them from contending for its lock.
* Result files are not in input order: each result row is matched to its write by the key
  column, which is unique in the job (one write per record and round). A row in neither file
  (the job was aborted or failed part-way) is retried.
* A job that fails as a whole because of its input (``InvalidBatch``: a column that is not a
  field) is a configuration problem: :class:`~sfsync.core.errors.FatalError`. Any other job
  failure makes every row RETRY.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Collection, Hashable, Sequence
from typing import Any

import anyio
import orjson

from sfsync.connectors.salesforce.bulkcsv import build_csv, read_results
from sfsync.connectors.salesforce.client import SalesforceClient
from sfsync.connectors.salesforce.ordering import groups
from sfsync.connectors.salesforce.results import (
    RowResult,
    parse_bulk_error,
    row_error,
    whole_call,
)
from sfsync.connectors.salesforce.writeplan import RowWrite, WriteKind
from sfsync.core.errors import FatalError, RetryableError, SyncError
from sfsync.spi.clock import Clock

TERMINAL_STATES = frozenset({"JobComplete", "Failed", "Aborted"})
_OPERATION = {WriteKind.UPSERT: "upsert", WriteKind.UPDATE: "update", WriteKind.DELETE: "delete"}


def split_jobs(
    rows: Sequence[RowWrite], parents: Callable[[RowWrite], Collection[Hashable]], job_rows: int
) -> list[list[RowWrite]]:
    """``rows`` as the rows of jobs of about equal size, at most ``job_rows`` each, rows that
    share a parent adjacent and in one job (a group larger than ``job_rows`` is a job of its
    own): jobs that run at the same time never contend for one parent's lock."""
    if not rows:
        return []
    count = -(-len(rows) // max(job_rows, 1))
    size = -(-len(rows) // count)
    if not any(map(parents, rows)):  # the common case: no row locks a parent
        return [list(rows[i : i + size]) for i in range(0, len(rows), size)]
    jobs: list[list[RowWrite]] = []
    current: list[RowWrite] = []
    for group in groups(rows, parents):
        if current and len(current) + len(group) > size:
            jobs.append(current)
            current = []
        current.extend(group)
    if current:
        jobs.append(current)
    return jobs


async def run_ingest_jobs(
    client: SalesforceClient,
    rows: Sequence[RowWrite],
    *,
    parents: Callable[[RowWrite], Collection[Hashable]],
    clock: Clock,
    job_rows: int = 10_000,
    in_flight: int = 2,
    poll_interval: float = 0.25,
    max_poll_interval: float = 5.0,
    pace: Pace | None = None,
) -> list[RowResult]:
    """Write ``rows`` (one object, one kind) as Bulk jobs of at most ``job_rows`` rows
    (:func:`split_jobs`), ``in_flight`` of them at a time, started in order: while the org
    processes one job the client builds and uploads the next and reads the results of the
    one before, so the client's work hides behind the org's instead of adding to it.

    Every row is in one job, and the rows of one job are written once each, so running jobs
    side by side changes no record's order; rows sharing a parent share a job (no lock
    contention between jobs).

    Returns:
        One result per row, in the order of ``rows``.
    """
    jobs = split_jobs(rows, parents, job_rows)
    if len(jobs) <= 1:
        # One job (its rows grouped by parent, maybe not in the order of ``rows``).
        job = jobs[0] if jobs else []
        answers = await run_ingest_job(
            client, job, clock=clock, poll_interval=poll_interval,
            max_poll_interval=max_poll_interval, pace=pace,
        )  # fmt: skip
        by_row = {id(row): answer for row, answer in zip(job, answers, strict=True)}
        return [by_row[id(row)] for row in rows]
    results: dict[int, RowResult] = {}
    slots = anyio.Semaphore(max(in_flight, 1))
    failures: list[SyncError] = []

    async def one(job: list[RowWrite], ready: anyio.Event, scope: anyio.CancelScope) -> None:
        async with slots:
            ready.set()  # the next job may queue for a slot only once this one holds one
            try:
                answers = await run_ingest_job(
                    client, job, clock=clock, poll_interval=poll_interval,
                    max_poll_interval=max_poll_interval, pace=pace,
                )  # fmt: skip
            except SyncError as error:  # a fatal one: row failures are results
                failures.append(error)
                scope.cancel()
                return
        for row, answer in zip(job, answers, strict=True):
            results[id(row)] = answer

    async with anyio.create_task_group() as group:
        for job in jobs:
            ready = anyio.Event()
            group.start_soon(one, job, ready, group.cancel_scope)
            await ready.wait()  # jobs take their slots in order
    if failures:
        raise failures[0]
    return [results[id(row)] for row in rows]


async def run_ingest_job(
    client: SalesforceClient,
    rows: Sequence[RowWrite],
    *,
    clock: Clock,
    poll_interval: float = 0.25,
    max_poll_interval: float = 5.0,
    pace: Pace | None = None,
) -> list[RowResult]:
    """Write ``rows`` (one object, one kind: upsert, update or delete) as one Bulk job, in
    this order (:func:`split_jobs` keeps rows sharing a parent adjacent: the platform splits a
    job into chunks processed in parallel).

    Args:
        client: the org.
        rows: the writes; keys unique.
        clock: waits between polls.
        pace: the org's learnt processing rate (:class:`Pace`), which times the polls.

    Returns:
        One result per row, in the order of ``rows``.
    """
    if not rows:
        return []
    first = rows[0]
    operation = _OPERATION[first.kind]
    key_column = first.key_field if first.kind is WriteKind.UPSERT else "Id"
    ordered = rows
    what = f"Bulk {operation} of {len(rows)} {first.sobject}"
    job: dict[str, Any] = {
        "object": first.sobject,
        "operation": operation,
        "contentType": "CSV",
        "lineEnding": "LF",
        "columnDelimiter": "COMMA",
    }
    if first.kind is WriteKind.UPSERT:
        job["externalIdFieldName"] = first.key_field
    try:
        created = await client.request(
            "POST", client.data_path("jobs/ingest"), json=job, what=f"create {what} job"
        )
    except FatalError:
        raise
    except SyncError as error:
        return whole_call(error, len(rows))
    job_id = str(orjson.loads(created.content)["id"])
    base = client.data_path(f"jobs/ingest/{job_id}")
    done = False
    try:
        body = build_csv(ordered, key_column, with_values=first.kind is not WriteKind.DELETE)
        await client.request(
            "PUT",
            f"{base}/batches",
            content=body,
            headers={"Content-Type": "text/csv"},
            what=f"upload {what}",
        )
        await client.request(
            "PATCH", base, json={"state": "UploadComplete"}, what=f"close {what} job"
        )
        info = await _wait(
            client, base, clock, poll_interval, max_poll_interval, what, len(rows), pace or Pace()
        )
        state = str(info.get("state"))
        message = str(info.get("errorMessage") or "no reason given")
        refused = state == "Failed" and not int(info.get("numberRecordsProcessed") or 0)
        if refused and message.startswith(("InvalidBatch", "ClientInputError")):
            raise FatalError(
                f"{what}: Salesforce refused the job: {message}",
                hint="a column is not a writable field of the object; fix the mapping",
            )
        done = True
        failures = info.get("numberRecordsFailed")
        # No failures reported: the failed-results file would be empty; spare the call.
        failed_file = failures is None or int(failures) > 0
        results = await _results(client, base, key_column, what, failed_file=failed_file)
    except FatalError:
        raise
    except SyncError as error:
        if not done:
            await _abort(client, base)
        return whole_call(error, len(rows))
    finally:
        if done:
            await _delete(client, base)
    out: list[RowResult] = []
    for row in rows:
        result = results.get(str(row.key))
        if result is None:
            out.append(
                RowResult(
                    error=RetryableError(
                        f"{what}: job {job_id} ended {state} ({message}) without processing "
                        f"{row.sobject} {row.key}"
                    )
                )
            )
        else:
            out.append(result)
    return out


class Pace:
    """How fast the org gets through Bulk jobs (rows a second), learnt from the jobs polled so
    far, so that a job's first poll is timed for when it should be done rather than after a
    fixed wait. Unknown at first: the first job waits ``interval``.

    A job found finished at its first poll says only that the rate was at least what was
    seen: the estimate is raised a quarter above it, so that the next first poll comes a
    little earlier; a job seen in progress gives the rate between two polls exactly. Either
    way the wait converges on "just before done": at most one poll too early, little overshoot.
    """

    def __init__(self) -> None:
        self.rate: float | None = None

    def learn(self, rate: float) -> None:
        if rate > 0:
            self.rate = rate if self.rate is None else (self.rate + rate) / 2

    def first_wait(self, rows: int, interval: float, max_interval: float) -> float:
        if self.rate is None:
            return interval
        return min(max_interval, max(interval / 5, rows / self.rate))


async def _wait(
    client: SalesforceClient,
    base: str,
    clock: Clock,
    interval: float,
    max_interval: float,
    what: str,
    rows: int,
    pace: Pace,
) -> dict[str, Any]:
    """Poll until the job ends.

    The first poll comes when ``pace`` expects the job done (``interval`` while it knows
    nothing). Once the job reports progress, the next poll is timed for when the rest should
    be done at the rate seen between the last two polls; the wait at most doubles from one
    poll to the next, never drops below ``interval / 5`` (``interval`` before any rate is
    known) nor exceeds ``max_interval``.
    """
    delay = pace.first_wait(rows, interval, max_interval)
    floor = interval if pace.rate is None else interval / 5
    started = clock.monotonic()
    seen_at, seen = started, 0
    polls = 0
    while True:
        await clock.sleep(delay)
        info: dict[str, Any] = await client.get_json(base, what=f"poll {what} job")
        polls += 1
        now = clock.monotonic()
        if str(info.get("state")) in TERMINAL_STATES:
            if polls == 1 and now > started:
                pace.learn(rows / (now - started) * 1.25)
            return info
        processed = int(info.get("numberRecordsProcessed") or 0)
        ceiling = min(max_interval, delay * 2)
        if seen < processed < rows and now > seen_at:
            rate = (processed - seen) / (now - seen_at)
            if seen:  # both ends measured: the rate itself (the first includes start-up)
                pace.learn(rate)
            delay = min(ceiling, max(floor, (rows - processed) / rate * 1.05))
        else:
            delay = min(ceiling, max(floor, delay * 1.5))
        seen_at, seen = now, processed


async def _results(
    client: SalesforceClient, base: str, key_column: str, what: str, *, failed_file: bool
) -> dict[str, RowResult]:
    out: dict[str, RowResult] = {}
    headers = {"Accept": "text/csv"}
    ok = await client.request(
        "GET", f"{base}/successfulResults/", headers=headers, what=f"read {what} results"
    )
    for key, (record_id, created) in read_results(ok.text, key_column, "sf__Created").items():
        out[key] = RowResult(record_id or None, created == "true")
    if not failed_file:
        return out
    failed = await client.request(
        "GET", f"{base}/failedResults/", headers=headers, what=f"read {what} failures"
    )
    for key, (record_id, text) in read_results(failed.text, key_column, "sf__Error").items():
        code, message, fields = parse_bulk_error(text)
        error = row_error(code, message, fields, what=what)
        if isinstance(error, FatalError):
            raise error
        out[key] = RowResult(record_id=record_id or None, error=error)
    return out


async def _abort(client: SalesforceClient, base: str) -> None:
    with contextlib.suppress(SyncError):  # best effort: an open job expires on its own
        await client.request("PATCH", base, json={"state": "Aborted"}, what="abort Bulk job")


async def _delete(client: SalesforceClient, base: str) -> None:
    with contextlib.suppress(SyncError):  # best effort: Salesforce deletes them after 7 days
        await client.request("DELETE", base, what="delete Bulk job")
