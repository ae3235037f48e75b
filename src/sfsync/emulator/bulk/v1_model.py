"""Bulk API 1.0 jobs and batches, and how a batch is processed (section 4.6).

A :class:`ClassicJob` holds :class:`Batch` es. Each batch is processed in the background as soon
as it is added (as on Salesforce, whether or not the job is closed): ``Queued`` ->
``InProgress`` -> ``Completed`` | ``Failed``. DML batches (CSV, JSON or XML records) are applied
row by row through the same :class:`~.ingest.RowApplier` as Bulk 2.0, inside one store
transaction per batch of up to 200 rows, tagged ``call_context(api="bulkapi", client_id=...)``;
each row yields a result ``{"success", "created", "id", "errors"}``. Query batches (the body is
SOQL) keep the rendered records as one result.

PK chunking (job created with ``Sforce-Enable-PKChunking``): a query batch is not run itself:
it becomes ``NotProcessed`` and one batch per range of ``chunkSize`` record ids (100,000 by
default, at most 250,000) is added and run, each seeing only the records of its range.

Choices where the reference is UNCONFIRMED: a batch of more than 10,000 records fails with
``stateMessage`` ``ExceededQuota : Too many records in batch: <n> (limit 10000)``; aborting a
job marks its queued batches ``NotProcessed``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from sfsync.emulator.bulk.csvcodec import CsvInputError
from sfsync.emulator.bulk.ingest import CHUNK_ROWS, RowApplier, format_error
from sfsync.emulator.bulk.jobs import BATCH_PREFIX, RESULT_PREFIX, BulkJob, JobRegistry
from sfsync.emulator.bulk.v1_codec import parse_records
from sfsync.emulator.clock import OrgClock, format_datetime
from sfsync.emulator.errors import ApiError
from sfsync.emulator.schema.model import Schema, WireValue
from sfsync.emulator.soql import compile_query
from sfsync.emulator.store_changes import call_context

_log = logging.getLogger(__name__)

MAX_BATCH_RECORDS = 10_000
MAX_BATCH_BYTES = 10_000_000
DEFAULT_CHUNK_SIZE = 100_000
MAX_CHUNK_SIZE = 250_000
CONTENT_TYPES = ("CSV", "XML", "JSON", "ZIP_CSV", "ZIP_XML", "ZIP_JSON")
OPERATIONS = ("insert", "update", "upsert", "delete", "hardDelete", "query", "queryAll")


@dataclass(eq=False)
class Batch:
    """One Bulk 1.0 batch. ``results`` holds DML results; ``query_records`` a query's rows."""

    id: str
    job_id: str
    state: str
    created_date: str
    system_modstamp: str
    request: bytes
    state_message: str | None = None
    processed: int = 0
    failed: int = 0
    processing_ms: int = 0
    results: list[dict[str, Any]] = field(default_factory=list)
    result_id: str | None = None
    query_records: list[dict[str, object]] = field(default_factory=list)
    id_range: tuple[str | None, str | None] | None = None

    def info(self) -> dict[str, Any]:
        """batchInfo (field order as Salesforce sends it)."""
        out: dict[str, Any] = {
            "id": self.id,
            "jobId": self.job_id,
            "state": self.state,
            "createdDate": self.created_date,
            "systemModstamp": self.system_modstamp,
            "numberRecordsProcessed": self.processed,
            "numberRecordsFailed": self.failed,
            "totalProcessingTime": self.processing_ms,
            "apiActiveProcessingTime": self.processing_ms,
            "apexProcessingTime": 0,
        }
        if self.state_message is not None:
            out["stateMessage"] = self.state_message
        return out


@dataclass(eq=False)
class ClassicJob(BulkJob):
    """A Bulk API 1.0 job (``kind == "classic"``)."""

    content_type: str = "CSV"
    external_id_field: str | None = None
    pk_chunking: bool = False
    chunk_size: int = DEFAULT_CHUNK_SIZE
    batches: dict[str, Batch] = field(default_factory=dict)
    serial: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def info(self) -> dict[str, Any]:
        """jobInfo with its batch and record counters."""
        with self.lock:
            batches = list(self.batches.values())
        states = [b.state for b in batches]
        out: dict[str, Any] = {
            "id": self.id,
            "operation": self.operation,
            "object": self.object,
            "createdById": self.created_by,
            "createdDate": self.created_date,
            "systemModstamp": self.system_modstamp,
            "state": self.state,
        }
        if self.external_id_field is not None:
            out["externalIdFieldName"] = self.external_id_field
        out.update(
            concurrencyMode=self.concurrency_mode,
            contentType=self.content_type,
            numberBatchesQueued=states.count("Queued"),
            numberBatchesInProgress=states.count("InProgress"),
            numberBatchesCompleted=states.count("Completed"),
            numberBatchesFailed=states.count("Failed"),
            numberBatchesTotal=len(batches),
            numberRecordsProcessed=sum(b.processed for b in batches),
            numberRetries=0,
            apiVersion=float(self.api_version),
            numberRecordsFailed=sum(b.failed for b in batches),
            totalProcessingTime=sum(b.processing_ms for b in batches),
            apiActiveProcessingTime=sum(b.processing_ms for b in batches),
            apexProcessingTime=0,
        )
        return out


def classic_listing(job: BulkJob) -> dict[str, Any]:
    """A Bulk 1.0 job as ``GET /jobs/ingest`` lists it (``jobType: Classic``)."""
    assert isinstance(job, ClassicJob)
    return {
        "id": job.id,
        "operation": job.operation,
        "object": job.object,
        "createdById": job.created_by,
        "createdDate": job.created_date,
        "systemModstamp": job.system_modstamp,
        "state": job.state,
        "concurrencyMode": job.concurrency_mode,
        "contentType": job.content_type,
        "apiVersion": float(job.api_version),
        "jobType": "Classic",
        "lineEnding": "LF",
        "columnDelimiter": "COMMA",
    }


def new_batch(job: ClassicJob, registry: JobRegistry, clock: OrgClock, body: bytes) -> Batch:
    """Add a Queued batch holding ``body`` to ``job``."""
    now = format_datetime(clock.now())
    batch = Batch(
        id=registry.new_id(BATCH_PREFIX),
        job_id=job.id,
        state="Queued",
        created_date=now,
        system_modstamp=now,
        request=body,
    )
    with job.lock:
        job.batches[batch.id] = batch
        job.touch(clock)
    return batch


# ------------------------------------------------------------------------------ processing


class _RangeSource:
    """The store seen through an id range (PK chunking): ``scan`` of the queried object yields
    only records with ``lo <= Id < hi``; everything else reads the store."""

    def __init__(self, store: Any, object_name: str, lo: str | None, hi: str | None) -> None:
        self.store = store
        self.object_name = object_name.lower()
        self.lo = lo
        self.hi = hi

    def scan(self, object_name: str, *, include_deleted: bool) -> Iterator[Mapping[str, WireValue]]:
        rows = self.store.scan(object_name, include_deleted=include_deleted)
        if object_name.lower() != self.object_name:
            return iter(rows)
        lo, hi = self.lo, self.hi
        return (
            r
            for r in rows
            if (lo is None or str(r["Id"]) >= lo) and (hi is None or str(r["Id"]) < hi)
        )

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


def run_batches(job: ClassicJob, schema: Schema, store: Any, clock: OrgClock) -> None:
    """Serial mode: run the job's Queued batches one at a time, in the order they were added.

    Each added batch schedules one call; whichever call gets the job's ``serial`` lock first
    runs every batch queued by then, so batches never overlap and never overtake each other."""
    with job.serial:
        while True:
            with job.lock:
                queued = next((b for b in job.batches.values() if b.state == "Queued"), None)
            if queued is None:
                return
            process_batch(job, queued, schema, store, clock)


def process_batch(
    job: ClassicJob, batch: Batch, schema: Schema, store: Any, clock: OrgClock
) -> None:
    """Run a Queued batch to Completed or Failed."""
    with job.lock:
        if batch.state != "Queued":
            return
        batch.state = "InProgress"
        batch.system_modstamp = format_datetime(clock.now())
    started = time.perf_counter()
    try:
        if job.operation in ("query", "queryAll"):
            _run_query(job, batch, schema, store)
        else:
            _run_dml(job, batch, schema, store)
    except (CsvInputError, ApiError) as error:
        with job.lock:
            batch.state = "Failed"
            batch.state_message = str(error)
    except Exception as error:
        # A bug or a store failure must not leave the batch InProgress for ever.
        _log.exception("bulk batch %s failed", batch.id)
        with job.lock:
            batch.state = "Failed"
            batch.state_message = f"UNKNOWN_EXCEPTION : {error}"
    else:
        with job.lock:
            batch.state = "Completed"
    with job.lock:
        batch.processing_ms = max(1, int((time.perf_counter() - started) * 1000))
        batch.system_modstamp = format_datetime(clock.now())


def _run_query(job: ClassicJob, batch: Batch, schema: Schema, store: Any) -> None:
    soql = batch.request.decode("utf-8", errors="replace")
    compiled = compile_query(soql, schema)
    source: Any = store
    if batch.id_range is not None:
        source = _RangeSource(store, compiled.object_name, *batch.id_range)
    result = compiled.run(
        source, now=store.clock.now(), include_deleted=job.operation == "queryAll",
        api_version=job.api_version,
    )  # fmt: skip
    records = list(result.records)
    with job.lock:
        batch.query_records = records
        batch.processed = len(records)
        batch.result_id = job_result_id(batch)


def job_result_id(batch: Batch) -> str:
    """The one result id of a query batch (derived from the batch id: stable and unique)."""
    return RESULT_PREFIX + batch.id[3:]


def _run_dml(job: ClassicJob, batch: Batch, schema: Schema, store: Any) -> None:
    obj = schema.object(job.object)
    assert obj is not None
    records = parse_records(job.content_type, obj, schema, batch.request)
    if len(records) > MAX_BATCH_RECORDS:
        raise CsvInputError(
            f"ExceededQuota : Too many records in batch: {len(records)} (limit {MAX_BATCH_RECORDS})"
        )
    applier = RowApplier(job, obj, store)
    results: list[dict[str, Any]] = []
    with call_context(api="bulkapi", client_id=job.client_id, api_version=job.api_version):
        for start in range(0, len(records), CHUNK_ROWS):
            chunk = records[start : start + CHUNK_ROWS]
            with applier.chunk(len(chunk)):
                for values in chunk:
                    known = applier.known_id(values)
                    try:
                        rid, created = applier.apply(dict(values))
                    except ApiError as error:
                        detail = error.details[0]
                        code, message = detail.code, detail.message
                        if code == "MULTIPLE_CHOICES":
                            code, message = format_error(error).split(":")[:2]
                        results.append({
                            "success": False, "created": False, "id": known or None,
                            "errors": [{"statusCode": code, "message": message,
                                        "fields": list(detail.fields)}],
                        })  # fmt: skip
                    else:
                        results.append(
                            {"success": True, "created": created, "id": rid, "errors": []}
                        )
    with job.lock:
        batch.results = results
        batch.processed = len(results)
        batch.failed = sum(1 for r in results if not r["success"])


def chunk_ranges(store: Any, object_name: str, chunk_size: int, include_deleted: bool) -> list[
    tuple[str | None, str | None]
]:  # fmt: skip
    """PK-chunking id ranges: ``[lo, hi)`` over the object's ids, ``chunk_size`` each."""
    ids = sorted(str(r["Id"]) for r in store.scan(object_name, include_deleted=include_deleted))
    if not ids:
        return [(None, None)]
    bounds: list[str | None] = [ids[i] for i in range(0, len(ids), chunk_size)]
    bounds[0] = None
    return [(bounds[i], bounds[i + 1] if i + 1 < len(bounds) else None) for i in range(len(bounds))]


def parse_pk_chunking(header: str | None) -> tuple[bool, int]:
    """``Sforce-Enable-PKChunking``: ``true`` / ``false`` / ``chunkSize=N; ...`` -> (on, size).

    A chunk size outside 1..250,000 is 400 ``InvalidJob`` (the v1 error envelope)."""
    if header is None or header.strip().lower() in ("", "false"):
        return False, DEFAULT_CHUNK_SIZE
    size = DEFAULT_CHUNK_SIZE
    for option in header.split(";"):
        key, _, value = option.strip().partition("=")
        if key.strip().lower() == "chunksize":
            if not value.strip().isdigit() or not 1 <= int(value) <= MAX_CHUNK_SIZE:
                raise ClassicError(
                    "InvalidJob", f"Invalid chunkSize: {value.strip()} (maximum {MAX_CHUNK_SIZE})"
                )
            size = int(value)
    return True, size


@dataclass
class ClassicError(Exception):
    """A Bulk 1.0 error: rendered as ``{"exceptionCode", "exceptionMessage"}`` or its XML."""

    code: str
    message: str
    status: int = 400

    def __str__(self) -> str:
        return f"{self.code} : {self.message}"
