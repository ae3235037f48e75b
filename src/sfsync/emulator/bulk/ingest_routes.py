"""Bulk API 2.0 ingest over HTTP: ``/services/data/vXX.X/jobs/ingest[/...]`` (section 4.1, 4.2).

* ``POST /jobs/ingest`` JSON job body -> 200 job info, state ``Open`` (200 rather than 201:
  UNCONFIRMED, simple-salesforce accepts both). Errors: 400 ``INVALIDJOB`` for a bad body,
  400 ``INVALIDENTITY`` for an unknown object, 403 ``REQUEST_LIMIT_EXCEEDED`` when the day's
  batches are spent. A ``multipart/form-data`` request with a ``job`` part (JSON) and a
  ``content`` part (CSV) creates the job with its data: it answers UploadComplete and the job
  runs at once (UNCONFIRMED).
* ``PUT /jobs/ingest/{id}/batches`` raw CSV -> 201, empty body; only while ``Open`` (409
  ``INVALIDJOBSTATE`` otherwise); more than 100 MB of CSV per upload -> 413
  ``REQUEST_ENTITY_TOO_LARGE`` (status and code UNCONFIRMED).
* ``PATCH /jobs/ingest/{id}`` ``{"state": "UploadComplete" | "Aborted"}`` -> 200 job info;
  UploadComplete starts the background processing (:func:`~.ingest.process_ingest`).
* ``GET /jobs/ingest/{id}`` -> full job info with counters; ``DELETE`` -> 204 (409 while the
  job is Open or InProgress).
* ``GET .../successfulResults/``, ``.../failedResults/``, ``.../unprocessedrecords/`` -> CSV
  (409 ``INVALIDJOBSTATE`` until the job is in a terminal state).
* ``GET /jobs/ingest`` -> ``{"done", "records", "nextRecordsUrl"}``, 1,000 jobs a page
  continued with ``?queryLocator=``; filters ``isPkChunkingEnabled``, ``jobType`` (``V2Ingest``
  or ``Classic`` for Bulk 1.0 jobs), ``concurrencyMode``.
"""

from __future__ import annotations

import base64
import email
import email.policy
from email.message import EmailMessage
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from sfsync.emulator.bulk.csvcodec import validate_format
from sfsync.emulator.bulk.ingest import OPERATIONS, TERMINAL_STATES, IngestJob, process_ingest
from sfsync.emulator.bulk.jobs import DAY_SECONDS, BulkJob, invalid_state
from sfsync.emulator.bulk.service import BulkService, job_from, service_for
from sfsync.emulator.bulk.v1_model import classic_listing
from sfsync.emulator.clock import format_datetime
from sfsync.emulator.errors import ApiError
from sfsync.emulator.rest.common import (
    client_id_of,
    json_body,
    json_bytes_response,
    json_object,
    no_content,
    parse_json,
    user_id_of,
    version_of,
)

CSV_TYPE = "text/csv;charset=UTF-8"


def bad_job(message: str) -> ApiError:
    return ApiError.of(400, "INVALIDJOB", message)


def _service(request: Request) -> BulkService:
    return service_for(request)


def _job(request: Request) -> IngestJob:
    return job_from(request, IngestJob)


def ingest_info(job: IngestJob, *, full: bool) -> dict[str, Any]:
    """The job info of section 4.2; ``full`` adds ``jobType`` and the counters (GET)."""
    with job.lock:
        info: dict[str, Any] = {
            **job.common_info(),
        }
        if job.external_id_field is not None:
            info["externalIdFieldName"] = job.external_id_field
        info.update(
            concurrencyMode=job.concurrency_mode,
            contentType="CSV",
            apiVersion=float(job.api_version),
            contentUrl=f"services/data/v{job.api_version}/jobs/ingest/{job.id}/batches",
            lineEnding=job.line_ending,
            columnDelimiter=job.delimiter,
        )
        if job.assignment_rule_id is not None:
            info["assignmentRuleId"] = job.assignment_rule_id
        if full:
            info.update(
                jobType="V2Ingest",
                numberRecordsProcessed=job.processed,
                numberRecordsFailed=job.failed,
                retries=0,
                totalProcessingTime=job.processing_ms,
                apiActiveProcessingTime=job.processing_ms,
                apexProcessingTime=0,
            )
            if job.error_message is not None:
                info["errorMessage"] = job.error_message
        return info


async def create_job(request: Request) -> Response:
    """``POST /jobs/ingest``: a JSON job body, or one multipart request carrying the job and
    its data (then the job starts UploadComplete, processing at once; UNCONFIRMED)."""
    content_type = request.headers.get("content-type", "")
    if content_type.lower().startswith("multipart/form-data"):
        return await _create_with_data(request, content_type)
    job = _new_job(request, json_object(await json_body(request)))
    return json_bytes_response(ingest_info(job, full=False))


async def _create_with_data(request: Request, content_type: str) -> Response:
    service = _service(request)
    raw = await request.body()
    if len(raw) > service.max_upload_bytes:
        raise _too_large()
    message = email.message_from_bytes(
        f"Content-Type: {content_type}\r\n\r\n".encode("latin-1") + raw, policy=email.policy.HTTP
    )
    parts: dict[str, bytes] = {}
    if isinstance(message, EmailMessage) and message.is_multipart():
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            if isinstance(name, str) and isinstance(payload, bytes):
                parts[name] = payload
    if "job" not in parts or "content" not in parts:
        raise bad_job("A multipart job request needs a 'job' part and a 'content' part")
    job = _new_job(request, json_object(parse_json(parts["job"])))
    org = service.org
    with job.lock:
        job.uploads.append(parts["content"])
        job.upload_bytes = len(parts["content"])
        job.state = "UploadComplete"
        job.touch(org.clock)
        answer = ingest_info(job, full=False)
    service.submit(
        lambda: process_ingest(
            job, org.schema, org.store, service.allocations, service.parsed_rows
        ),
        ingest=True,
    )
    return json_bytes_response(answer)


def _too_large() -> ApiError:
    return ApiError.of(
        413,
        "REQUEST_ENTITY_TOO_LARGE",
        "The upload exceeds the maximum size of 150 MB (base64-encoded) for a job",
    )


def _new_job(request: Request, body: dict[str, Any]) -> IngestJob:
    """Validate a job body and register the Open job it describes."""
    service = _service(request)
    org = service.org
    name, operation = body.get("object"), body.get("operation")
    if not isinstance(name, str) or not name:
        raise bad_job("Object is required")
    if operation not in OPERATIONS:
        raise bad_job(f"Invalid value for operation: {operation}")
    obj = org.schema.object(name)
    if obj is None:
        raise ApiError.of(400, "INVALIDENTITY", f"{name} is not supported by the Bulk API")
    delimiter, line_ending = validate_format(body)
    external = body.get("externalIdFieldName")
    if operation == "upsert":
        if not isinstance(external, str) or not external:
            raise bad_job(
                f"External ID was blank for {obj.name}. An External ID must be specified "
                "for upsert."
            )
        key = obj.field(external)
        if key is None or not (key.external_id or key.name == "Id"):
            raise bad_job(f"The field {external} is not an external id field of {obj.name}")
        external = key.name
    else:
        external = None
    service.allocations.check_batches()
    now = org.clock.now()
    job = IngestJob(
        id=service.registry.new_id(),
        kind="ingest",
        object=obj.name,
        operation=str(operation),
        api_version=version_of(request),
        created_by=user_id_of(request) or str(org.store.integration_user_id),
        client_id=client_id_of(request),
        created_date=format_datetime(now),
        system_modstamp=format_datetime(now),
        state="Open",
        created_at=org.clock.time(),
        external_id_field=external,
        line_ending=line_ending,
        delimiter=delimiter,
        assignment_rule_id=_optional_str(body.get("assignmentRuleId")),
    )
    service.registry.add(job)
    return job


def _optional_str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


async def upload(request: Request) -> Response:
    service = _service(request)
    job = _job(request)
    if job.state != "Open":
        raise invalid_state(f"Job {job.id} is not in the Open state; data cannot be uploaded")
    if service.org.clock.time() - job.created_at > DAY_SECONDS:
        # Section 4.5: data cannot be added to a job older than 24 hours.
        raise invalid_state(f"Job {job.id} is older than 24 hours; data cannot be uploaded")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if job.upload_bytes + size > service.max_upload_bytes:
            raise _too_large()
        chunks.append(chunk)
    with job.lock:
        if job.state != "Open":
            raise invalid_state(f"Job {job.id} is not in the Open state; data cannot be uploaded")
        job.uploads.append(b"".join(chunks))
        job.upload_bytes += size
        job.touch(service.org.clock)
    return Response(status_code=201)


async def patch_job(request: Request) -> Response:
    service = _service(request)
    job = _job(request)
    body = json_object(await json_body(request))
    target = body.get("state")
    clock = service.org.clock
    with job.lock:
        if target == "UploadComplete":
            if job.state != "Open":
                raise invalid_state(f"Job {job.id} is {job.state}; only an Open job can be closed")
            job.state = "UploadComplete"
            job.touch(clock)
        elif target == "Aborted":
            if job.state in TERMINAL_STATES:
                raise invalid_state(f"Job {job.id} is {job.state} and cannot be aborted")
            job.finish("Aborted", clock)
        else:
            raise bad_job(f"Invalid state: {target}")
        # The answer shows the state this request set, whatever the worker does next.
        answer = ingest_info(job, full=False)
    if target == "UploadComplete":
        job.row_faults = getattr(request.state, "row_faults", None)  # the fault plan's row_lock
        org = service.org
        service.submit(
            lambda: process_ingest(
                job, org.schema, org.store, service.allocations, service.parsed_rows
            ),
            ingest=True,
        )
    return json_bytes_response(answer)


async def get_job(request: Request) -> Response:
    return json_bytes_response(ingest_info(_job(request), full=True))


async def delete_job(request: Request) -> Response:
    job = _job(request)
    if job.state in ("Open", "InProgress"):
        raise invalid_state(f"Job {job.id} is {job.state} and cannot be deleted")
    _service(request).registry.remove(job.id)
    return no_content()


def results(which: str) -> Any:
    """The endpoint for one of the three result sets."""

    async def endpoint(request: Request) -> Response:
        job = _job(request)
        if job.state not in TERMINAL_STATES:
            raise invalid_state(f"Job {job.id} is {job.state}; results are not available yet")
        return Response(job.results_csv(which).encode("utf-8"), media_type=CSV_TYPE)

    return endpoint


def list_page(request: Request, jobs: list[BulkJob], info: Any, resource: str) -> Response:
    """One page of a job list (shared by ingest and query lists)."""
    params = request.query_params
    chunking = params.get("isPkChunkingEnabled")
    if chunking is not None and chunking.lower() == "true":
        # Bulk 2.0 jobs never use PK chunking; Bulk 1.0 jobs may.
        jobs = [j for j in jobs if getattr(j, "pk_chunking", False)]
    mode = params.get("concurrencyMode")
    if mode:
        jobs = [j for j in jobs if j.concurrency_mode == mode]
    kind = params.get("jobType")
    rendered = [info(j) for j in jobs]
    if kind:
        rendered = [r for r in rendered if r.get("jobType") == kind]
    locator = params.get("queryLocator")
    start = _decode_locator(locator) if locator else 0
    page = rendered[start : start + _service(request).list_page_size]
    end = start + len(page)
    done = end >= len(rendered)
    next_url = None
    if not done:
        token = base64.b64encode(str(end).encode()).decode().rstrip("=")
        next_url = f"/services/data/v{version_of(request)}/jobs/{resource}?queryLocator={token}"
    return json_bytes_response({"done": done, "records": page, "nextRecordsUrl": next_url})


def _decode_locator(locator: str) -> int:
    try:
        text = base64.b64decode(locator + "=" * (-len(locator) % 4)).decode()
        return int(text)
    except (ValueError, UnicodeDecodeError):
        raise ApiError.of(400, "INVALID_QUERY_LOCATOR", "invalid query locator") from None


async def list_jobs(request: Request) -> Response:
    jobs = _service(request).registry.jobs()

    def info(job: BulkJob) -> dict[str, Any]:
        if isinstance(job, IngestJob):
            return ingest_info(job, full=False) | {"jobType": "V2Ingest"}
        return classic_listing(job)

    ingestish = [j for j in jobs if j.kind in ("ingest", "classic")]
    return list_page(request, ingestish, info, "ingest")
