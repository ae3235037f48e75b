"""Bulk API 2.0 query over HTTP: ``/services/data/vXX.X/jobs/query[/...]`` (section 4.3).

* ``POST /jobs/query`` ``{"operation": "query"|"queryAll", "query": ..., "contentType": "CSV",
  "columnDelimiter", "lineEnding"}`` -> 200 job info, state ``UploadComplete``; the job then
  runs in the background. Bad SOQL answers as REST query does (400 ``MALFORMED_QUERY``...);
  403 ``REQUEST_LIMIT_EXCEEDED`` past 10,000 query jobs a day.
* ``GET /jobs/query/{id}`` full info; ``PATCH {"state":"Aborted"}``; ``DELETE`` -> 204.
* ``GET /jobs/query/{id}/results[?locator=&maxRecords=]`` -> CSV streamed with
  ``Sforce-NumberOfRecords`` and ``Sforce-Locator`` (``null`` on the last page). Without
  ``maxRecords`` every remaining record comes in one page. A request with another API version
  than the job's is 409 (code UNCONFIRMED: ``API_VERSION_MISMATCH``); results of a job that is
  not JobComplete are 409 ``INVALIDJOBSTATE``. gzip is applied by the app when the client
  sends ``Accept-Encoding: gzip``.
* ``GET /jobs/query/{id}/resultPages`` (v58+) -> ``{"resultPages": [{"resultUrl": ...}],
  "nextRecordUrl": null, "done": true}``: the results cut into at most five locator ranges
  (nesting UNCONFIRMED).
* ``GET /jobs/query`` -> the job list (see :func:`~.ingest_routes.list_page`).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from sfsync.emulator.bulk.csvcodec import validate_format
from sfsync.emulator.bulk.ingest_routes import CSV_TYPE, bad_job, list_page
from sfsync.emulator.bulk.jobs import BulkJob, invalid_state
from sfsync.emulator.bulk.query import (
    PK_CHUNKING_OBJECTS,
    QueryJob,
    csv_columns,
    decode_locator,
    encode_locator,
    run_query_job,
)
from sfsync.emulator.bulk.service import BulkService, job_from, service_for
from sfsync.emulator.clock import format_datetime
from sfsync.emulator.errors import ApiError
from sfsync.emulator.rest.common import (
    client_id_of,
    json_body,
    json_bytes_response,
    json_object,
    no_content,
    user_id_of,
    version_of,
)
from sfsync.emulator.soql import compile_query

TERMINAL = frozenset({"JobComplete", "Failed", "Aborted"})
MAX_RESULT_PAGES = 5


def _service(request: Request) -> BulkService:
    return service_for(request)


def _job(request: Request) -> QueryJob:
    return job_from(request, QueryJob)


def query_info(job: QueryJob, *, full: bool) -> dict[str, Any]:
    """Job info as section 4.3 lists it; ``full`` adds the GET-only fields."""
    with job.lock:
        info: dict[str, Any] = {
            **job.common_info(),
            "concurrencyMode": job.concurrency_mode,
            "contentType": "CSV",
            "apiVersion": float(job.api_version),
            "lineEnding": job.line_ending,
            "columnDelimiter": job.delimiter,
        }
        if full:
            info.update(
                jobType="V2Query",
                numberRecordsProcessed=job.total,
                retries=0,
                totalProcessingTime=job.processing_ms,
                isPkChunkingSupported=job.pk_chunking_supported,
            )
            if job.error_message is not None:
                info["errorMessage"] = job.error_message
        return info


async def create_job(request: Request) -> Response:
    service = _service(request)
    org = service.org
    body = json_object(await json_body(request))
    operation = body.get("operation") or "query"
    if operation not in ("query", "queryAll"):
        raise bad_job(f"Invalid value for operation: {operation}")
    soql = body.get("query")
    if not isinstance(soql, str) or not soql.strip():
        raise bad_job("A query is required")
    delimiter, line_ending = validate_format(body)
    compiled = compile_query(soql, org.schema)
    columns = csv_columns(compiled, org.schema)
    service.allocations.take_query_job()
    now = org.clock.now()
    obj = org.schema.object(compiled.object_name)
    job = QueryJob(
        id=service.registry.new_id(),
        kind="query",
        object=compiled.object_name,
        operation=str(operation),
        api_version=version_of(request),
        created_by=user_id_of(request) or str(org.store.integration_user_id),
        client_id=client_id_of(request),
        created_date=format_datetime(now),
        system_modstamp=format_datetime(now),
        state="UploadComplete",
        created_at=org.clock.time(),
        soql=soql,
        compiled=compiled,
        columns=columns,
        now=now,
        line_ending=line_ending,
        delimiter=delimiter,
        pk_chunking_supported=obj is not None
        and (obj.name in PK_CHUNKING_OBJECTS or obj.name.endswith("__c")),
    )
    service.registry.add(job)
    answer = query_info(job, full=False)
    service.submit(lambda: run_query_job(job, org.store, org.clock))
    return json_bytes_response(answer)


async def get_job(request: Request) -> Response:
    return json_bytes_response(query_info(_job(request), full=True))


async def patch_job(request: Request) -> Response:
    service = _service(request)
    job = _job(request)
    body = json_object(await json_body(request))
    if body.get("state") != "Aborted":
        raise bad_job(f"Invalid state: {body.get('state')}")
    with job.lock:
        if job.state in TERMINAL:
            raise invalid_state(f"Job {job.id} is {job.state} and cannot be aborted")
        job.finish("Aborted", service.org.clock)
    return json_bytes_response(query_info(job, full=False))


async def delete_job(request: Request) -> Response:
    job = _job(request)
    if job.state == "InProgress":
        raise invalid_state(f"Job {job.id} is InProgress and cannot be deleted")
    _service(request).registry.remove(job.id)
    return no_content()


def _completed(request: Request) -> QueryJob:
    job = _job(request)
    version = version_of(request)
    if version != job.api_version:
        raise ApiError.of(
            409,
            "API_VERSION_MISMATCH",
            f"The job was created with API version {job.api_version}; results must be "
            f"requested with the same version, not {version}",
        )
    if job.state != "JobComplete":
        raise invalid_state(f"Job {job.id} is {job.state}; results are not available")
    return job


async def results(request: Request) -> Response:
    job = _completed(request)
    params = request.query_params
    locator = params.get("locator")
    offset = decode_locator(locator) if locator and locator != "null" else 0
    raw_max = params.get("maxRecords")
    remaining = max(0, job.total - offset)
    count = remaining
    if raw_max is not None:
        if not raw_max.isdigit() or int(raw_max) < 1:
            raise ApiError.of(400, "INVALIDPARAMETER", f"Invalid maxRecords: {raw_max}")
        count = min(int(raw_max), remaining)
    end = offset + count
    headers = {
        "Sforce-Locator": encode_locator(end) if end < job.total else "null",
        "Sforce-NumberOfRecords": str(count),
    }
    store = _service(request).org.store
    return StreamingResponse(job.page(store, offset, count), headers=headers, media_type=CSV_TYPE)


async def result_pages(request: Request) -> Response:
    job = _completed(request)
    size = max(1, -(-job.total // MAX_RESULT_PAGES))
    base = f"/services/data/v{job.api_version}/jobs/query/{job.id}/results"
    pages = []
    for start in range(0, max(job.total, 1), size):
        pages.append({"resultUrl": f"{base}?locator={encode_locator(start)}&maxRecords={size}"})
    return json_bytes_response({"resultPages": pages, "nextRecordUrl": None, "done": True})


async def list_jobs(request: Request) -> Response:
    jobs: list[BulkJob] = [j for j in _service(request).registry.jobs() if j.kind == "query"]

    def info(job: BulkJob) -> dict[str, Any]:
        assert isinstance(job, QueryJob)
        return query_info(job, full=False) | {"jobType": "V2Query"}

    return list_page(request, jobs, info, "query")
