"""The bulk state of one org: its jobs, its daily allocations and the worker that runs jobs.

There is one :class:`BulkService` per :class:`~sfsync.emulator.org.Org`, made on first use by
:func:`service_of` (the app mounts the bulk routes without arguments, so the service hangs off
the org rather than off the routes). It registers an ``org.on_reset`` hook that forgets every
job and every consumed allocation.

Jobs run in the background as on Salesforce: :meth:`BulkService.submit` hands the work to a
daemon thread per job (query jobs run in parallel, as ``concurrencyMode: Parallel`` says;
ingest jobs take turns, see :data:`INGEST_SLOTS`). Tests and embedders may pass another
``runner`` (for example one that runs the work inline).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

from starlette.requests import Request

from sfsync.emulator.bulk.ingest import ParsedRows
from sfsync.emulator.bulk.jobs import Allocations, BulkJob, JobRegistry, job_not_found

Runner = Callable[[Callable[[], None]], None]

MAX_UPLOAD_BYTES = 100 * 1024 * 1024
"""Bulk 2.0 upload limit: 150 MB after base64, i.e. 100 MB of raw CSV (section 4.5)."""

INGEST_SLOTS = 1
"""Ingest jobs processed at the same time; more wait, UploadComplete, for a slot (queued, as
jobs queue on Salesforce when the org's bulk capacity is busy). Every job holds its parsed
rows while it runs, and threads share the interpreter lock: ten 100,000-row jobs processed
at once held all their rows at once and interleaved for no throughput (server RSS after
1,000,000 inserts: 2.97 GB with ten at once, 2.78 GB with two, 2.3 GB with one)."""

LIST_PAGE_SIZE = 1000
"""Jobs per page of a job list (UNCONFIRMED: Salesforce's page size is not documented)."""


def _thread_runner(work: Callable[[], None]) -> None:
    threading.Thread(target=work, name="sfsync-bulk-job", daemon=True).start()


class BulkService:
    """Jobs, allocations and worker of one org.

    Attributes:
        org: the org (schema, store, clock).
        registry: the jobs (:class:`~sfsync.emulator.bulk.jobs.JobRegistry`).
        allocations: the daily bulk allocations.
        max_upload_bytes: the largest Bulk 2.0 upload accepted (tests lower it).
        list_page_size: jobs per page of ``GET /jobs/ingest`` and ``/jobs/query``.
    """

    def __init__(self, org: Any, *, runner: Runner | None = None) -> None:
        self.org = org
        self.registry = JobRegistry(org.clock)
        self.allocations = Allocations(org.clock)
        self.parsed_rows = ParsedRows()
        self.max_upload_bytes = MAX_UPLOAD_BYTES
        self.list_page_size = LIST_PAGE_SIZE
        self.runner: Runner = runner or _thread_runner
        self._ingest_slots = threading.Semaphore(INGEST_SLOTS)

    def submit(self, work: Callable[[], None], *, ingest: bool = False) -> None:
        """Run ``work`` in the background; ``ingest`` work waits for one of the
        :data:`INGEST_SLOTS`."""
        if not ingest:
            self.runner(work)
            return

        def queued() -> None:
            with self._ingest_slots:
                work()

        self.runner(queued)

    def reset(self) -> None:
        """Forget every job and every consumed allocation (``POST /__emulator__/reset``)."""
        self.registry.clear()
        self.allocations.clear()


_SERVICES: weakref.WeakKeyDictionary[Any, BulkService] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def service_of(org: Any) -> BulkService:
    """The org's bulk service, created (and its reset hook registered) on first use."""
    with _LOCK:
        service = _SERVICES.get(org)
        if service is None:
            service = BulkService(org)
            _SERVICES[org] = service
            org.on_reset(service.reset)
        return service


J = TypeVar("J", bound=BulkJob)


def service_for(request: Request) -> BulkService:
    """The bulk service of the org serving ``request``."""
    from sfsync.emulator.rest.common import org_of

    return service_of(org_of(request))


def job_from(request: Request, kind: type[J]) -> J:
    """The job named by the request's ``job_id``, if it is of ``kind``; 404 otherwise."""
    job = service_for(request).registry.get(request.path_params["job_id"])
    if not isinstance(job, kind):
        raise job_not_found()
    return job
