"""Bulk jobs of one org: what they hold, how long they live, what they may consume.

A :class:`BulkJob` is what every Bulk API 2.0 ingest or query job and every Bulk API 1.0 job
has (its ``kind`` says which); the subclasses :class:`~.ingest.IngestJob`,
:class:`~.query.QueryJob` and :class:`~.v1_model.ClassicJob` add their own state. Jobs in a
terminal state (or closed, for Bulk 1.0) have ``terminal_at`` set. The :class:`JobRegistry` holds
them by id and forgets a job seven days after it reached a terminal state (section 4.5:
"jobs in terminal state deleted after 7 days"), measured on the org clock, so tests can move
time instead of waiting.

:class:`Allocations` meters the rolling-24-hour bulk allocations of section 4.5 on the org
clock: ingest records (150,000,000), batches (15,000, shared by Bulk 1.0 and 2.0; a Bulk 2.0
ingest job consumes one per started 10,000 records) and query jobs (10,000).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sfsync.emulator.clock import OrgClock, format_datetime
from sfsync.emulator.errors import ApiError
from sfsync.emulator.ids import IdFactory

RETENTION_SECONDS = 7 * 24 * 3600.0
"""A job in a terminal state is deleted this long after it got there."""

DAY_SECONDS = 24 * 3600.0

DAILY_INGEST_RECORDS = 150_000_000
DAILY_BATCHES = 15_000
DAILY_QUERY_JOBS = 10_000
RECORDS_PER_INGEST_BATCH = 10_000
"""Bulk 2.0 splits ingest data into internal batches of this many records; each one counts
against the shared daily batch allocation."""

JOB_PREFIX = "750"
BATCH_PREFIX = "751"
RESULT_PREFIX = "752"


@dataclass(eq=False)
class BulkJob:
    """What every bulk job has. ``created_at`` / ``terminal_at`` are org-clock seconds."""

    id: str
    kind: str  # "ingest" | "query" | "classic"
    object: str
    operation: str
    api_version: str
    created_by: str
    client_id: str | None
    created_date: str
    system_modstamp: str
    state: str
    created_at: float
    concurrency_mode: str = "Parallel"
    terminal_at: float | None = None
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    def touch(self, clock: OrgClock) -> None:
        """Record a change of the job (``systemModstamp``)."""
        self.system_modstamp = format_datetime(clock.now())

    def common_info(self) -> dict[str, Any]:
        """The fields every Bulk 2.0 job info starts with (call with the lock held)."""
        return {
            "id": self.id,
            "operation": self.operation,
            "object": self.object,
            "createdById": self.created_by,
            "createdDate": self.created_date,
            "systemModstamp": self.system_modstamp,
            "state": self.state,
        }


class JobRegistry:
    """Every bulk job of an org, by id; thread-safe (the worker and requests share it)."""

    def __init__(self, clock: OrgClock, ids: IdFactory | None = None) -> None:
        self.clock = clock
        self.ids = ids or IdFactory()
        self._jobs: dict[str, BulkJob] = {}
        self._lock = threading.Lock()

    def new_id(self, prefix: str = JOB_PREFIX) -> str:
        return self.ids.new_id(prefix)

    def add(self, job: BulkJob) -> None:
        with self._lock:
            self._jobs[job.id] = job

    def get(self, job_id: str) -> BulkJob | None:
        """The job, or None when unknown or past its retention (15- or 18-character id)."""
        self.purge()
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None and len(job_id) == 15:
                job = next((j for j in self._jobs.values() if j.id[:15] == job_id), None)
            return job

    def remove(self, job_id: str) -> None:
        with self._lock:
            self._jobs.pop(job_id, None)

    def jobs(self, kind: str | None = None) -> list[BulkJob]:
        """Live jobs (of one ``kind``), oldest first."""
        self.purge()
        with self._lock:
            return [j for j in self._jobs.values() if kind is None or j.kind == kind]

    def purge(self) -> None:
        """Forget jobs that reached a terminal state more than seven days ago."""
        cutoff = self.clock.time() - RETENTION_SECONDS
        with self._lock:
            expired = [
                job_id
                for job_id, job in self._jobs.items()
                if job.terminal_at is not None and job.terminal_at < cutoff
            ]
            for job_id in expired:
                del self._jobs[job_id]

    def clear(self) -> None:
        with self._lock:
            self._jobs.clear()

    def __iter__(self) -> Iterator[BulkJob]:
        return iter(self.jobs())


class _Window:
    """Amounts consumed in the last 24 hours of the org clock."""

    def __init__(self, maximum: int) -> None:
        self.maximum = maximum
        self._entries: deque[tuple[float, int]] = deque()
        self._used = 0

    def used(self, now: float) -> int:
        while self._entries and self._entries[0][0] <= now - DAY_SECONDS:
            self._used -= self._entries.popleft()[1]
        return self._used

    def take(self, now: float, amount: int) -> None:
        self.used(now)
        self._entries.append((now, amount))
        self._used += amount

    def clear(self) -> None:
        self._entries.clear()
        self._used = 0


class Allocations:
    """The rolling daily bulk allocations of one org (maxima adjustable for tests)."""

    def __init__(
        self,
        clock: OrgClock,
        *,
        ingest_records: int = DAILY_INGEST_RECORDS,
        batches: int = DAILY_BATCHES,
        query_jobs: int = DAILY_QUERY_JOBS,
    ) -> None:
        self.clock = clock
        self.ingest_records = _Window(ingest_records)
        self.batches = _Window(batches)
        self.query_jobs = _Window(query_jobs)
        self._lock = threading.Lock()

    def check_batches(self) -> None:
        """403 ``REQUEST_LIMIT_EXCEEDED`` when no batch is left today (a job cannot start)."""
        with self._lock:
            if self.batches.used(self.clock.time()) >= self.batches.maximum:
                raise batch_limit_exceeded()

    def take_batches(self, count: int) -> None:
        """Consume ``count`` batches (403 when that would pass the daily maximum)."""
        with self._lock:
            now = self.clock.time()
            if self.batches.used(now) + count > self.batches.maximum:
                raise batch_limit_exceeded()
            self.batches.take(now, count)

    def take_ingest(self, records: int) -> str | None:
        """Consume a Bulk 2.0 ingest job's records and batches; returns the job's
        ``errorMessage`` (the job fails, nothing is consumed) when either allocation would be
        exceeded, else None."""
        batches = -(-records // RECORDS_PER_INGEST_BATCH) if records else 0
        with self._lock:
            now = self.clock.time()
            if self.ingest_records.used(now) + records > self.ingest_records.maximum:
                return (
                    "LIMIT_EXCEEDED : Exceeded the maximum number of records that can be "
                    f"processed by Bulk API 2.0 in 24 hours ({self.ingest_records.maximum})"
                )
            if self.batches.used(now) + batches > self.batches.maximum:
                return (
                    "LIMIT_EXCEEDED : Exceeded the maximum number of batches that can be "
                    f"processed by the Bulk API in 24 hours ({self.batches.maximum})"
                )
            self.ingest_records.take(now, records)
            self.batches.take(now, batches)
        return None

    def take_query_job(self) -> None:
        """Consume one Bulk 2.0 query job (403 ``REQUEST_LIMIT_EXCEEDED`` when none left)."""
        with self._lock:
            now = self.clock.time()
            if self.query_jobs.used(now) >= self.query_jobs.maximum:
                raise ApiError.of(
                    403,
                    "REQUEST_LIMIT_EXCEEDED",
                    "Exceeded the maximum number of Bulk API 2.0 query jobs in 24 hours "
                    f"({self.query_jobs.maximum})",
                )
            self.query_jobs.take(now, 1)

    def clear(self) -> None:
        with self._lock:
            for window in (self.ingest_records, self.batches, self.query_jobs):
                window.clear()


def batch_limit_exceeded() -> ApiError:
    # Wording UNCONFIRMED; the code and status are those of every exhausted allocation.
    return ApiError.of(403, "REQUEST_LIMIT_EXCEEDED", "Exceeded max number of batches")


def job_not_found() -> ApiError:
    return ApiError.of(404, "NOT_FOUND", "The requested resource does not exist")


def invalid_state(message: str) -> ApiError:
    """An illegal state transition or a request the job's state does not allow.

    Status 409 and code ``INVALIDJOBSTATE`` are UNCONFIRMED (section 10 lists them as a gap).
    """
    return ApiError.of(409, "INVALIDJOBSTATE", message)
