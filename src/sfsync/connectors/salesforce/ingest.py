"""Bulk API 2.0 ingest jobs: the high-volume write path.

:func:`run_ingest_job` writes rows of one object and one operation (``upsert`` by an external
id, ``update`` or ``delete`` by Id) as one job: create it, upload one CSV, close it, wait on
the injected clock, then read ``successfulResults`` (and ``failedResults`` when the job counted
failures) and delete the job.

* The CSV's columns are the key (the external id field, or ``Id``) and the union of the rows'
  fields; a row without a field leaves its cell empty, which Bulk reads as "leave unchanged";
  a null is ``#N/A`` (:mod:`.records`). Parent references stay ``Account.Ext_Id__c`` columns.
* Rows are ordered so that rows sharing a parent are adjacent: the platform splits a job into
  chunks processed in parallel, and keeping one parent's children in one chunk is what keeps
  those chunks from contending for the parent's lock.
* Result files are not in input order: each result row is matched to its write by the key
  column, which is unique in the job (one write per record and round). A row in neither file
  (the job was aborted or failed part-way) is retried.
* A job that fails as a whole because of its input (``InvalidBatch``: a column that is not a
  field) is a configuration problem: :class:`~sfsync.core.errors.FatalError`. Any other job
  failure makes every row RETRY.
"""

from __future__ import annotations

import contextlib
import csv
import io
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from sfsync.connectors.salesforce.client import SalesforceClient
from sfsync.connectors.salesforce.ordering import groups
from sfsync.connectors.salesforce.records import csv_cell
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


_ABSENT = object()


def build_csv(rows: Sequence[RowWrite], key_column: str, *, with_values: bool) -> bytes:
    """The job's CSV: ``key_column`` first, then every field any row sets."""
    columns: dict[str, None] = {}
    if with_values:
        for row in rows:
            columns.update(dict.fromkeys(row.values))
    names = list(columns)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([key_column, *names])
    cell = csv_cell
    for row in rows:
        get = row.values.get
        cells = [str(row.key)]
        for name in names:
            value = get(name, _ABSENT)
            # Text, the common case, as is; absent -> empty (unchanged); the rest converted.
            cells.append(value if type(value) is str else "" if value is _ABSENT else cell(value))
        writer.writerow(cells)
    return out.getvalue().encode("utf-8")


def _read_results(text: str, key_column: str, extra: str) -> dict[str, tuple[str, str]]:
    """Key -> ``(sf__Id, extra column)`` of a result file (``extra`` is ``sf__Created`` or
    ``sf__Error``); only the columns needed are picked out of each row."""
    reader = csv.reader(io.StringIO(text.replace("\x00", "")))
    header = next(reader, None)
    if header is None or key_column not in header:
        return {}
    k, i, x = header.index(key_column), header.index("sf__Id"), header.index(extra)
    return {row[k]: (row[i], row[x]) for row in reader if len(row) == len(header)}


async def run_ingest_job(
    client: SalesforceClient,
    rows: Sequence[RowWrite],
    *,
    parent_keys: Mapping[int, set[tuple[str, str, str]]],
    clock: Clock,
    poll_interval: float = 0.25,
    max_poll_interval: float = 5.0,
) -> list[RowResult]:
    """Write ``rows`` (one object, one kind: upsert, update or delete) as one Bulk job.

    Args:
        client: the org.
        rows: the writes; keys unique.
        parent_keys: per ``id(row)``, the parents it touches (rows sharing one are kept
            adjacent in the CSV).
        clock: waits between polls.

    Returns:
        One result per row, in the order of ``rows``.
    """
    if not rows:
        return []
    first = rows[0]
    operation = _OPERATION[first.kind]
    key_column = first.key_field if first.kind is WriteKind.UPSERT else "Id"
    ordered = [r for g in groups(rows, lambda r: parent_keys.get(id(r), ())) for r in g]
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
        info = await _wait(client, base, clock, poll_interval, max_poll_interval, what, len(rows))
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


async def _wait(
    client: SalesforceClient,
    base: str,
    clock: Clock,
    interval: float,
    max_interval: float,
    what: str,
    rows: int,
) -> dict[str, Any]:
    """Poll until the job ends.

    Once the job reports progress, the next poll is timed for when the rest should be done at
    the rate seen between the last two polls (few polls, little overshoot); the wait at most
    doubles from one poll to the next, never drops below ``interval`` nor exceeds
    ``max_interval``.
    """
    delay = interval
    started = clock.monotonic()
    seen_at, seen = started, 0
    while True:
        await clock.sleep(delay)
        info: dict[str, Any] = await client.get_json(base, what=f"poll {what} job")
        if str(info.get("state")) in TERMINAL_STATES:
            return info
        now = clock.monotonic()
        processed = int(info.get("numberRecordsProcessed") or 0)
        ceiling = min(max_interval, delay * 2)
        if seen < processed < rows and now > seen_at:
            rate = (processed - seen) / (now - seen_at)
            delay = min(ceiling, max(interval, (rows - processed) / rate * 1.05))
        else:
            delay = min(ceiling, delay * 1.5)
        seen_at, seen = now, processed


async def _results(
    client: SalesforceClient, base: str, key_column: str, what: str, *, failed_file: bool
) -> dict[str, RowResult]:
    out: dict[str, RowResult] = {}
    headers = {"Accept": "text/csv"}
    ok = await client.request(
        "GET", f"{base}/successfulResults/", headers=headers, what=f"read {what} results"
    )
    for key, (record_id, created) in _read_results(ok.text, key_column, "sf__Created").items():
        out[key] = RowResult(record_id=record_id or None, created=created == "true")
    if not failed_file:
        return out
    failed = await client.request(
        "GET", f"{base}/failedResults/", headers=headers, what=f"read {what} failures"
    )
    for key, (record_id, text) in _read_results(failed.text, key_column, "sf__Error").items():
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
