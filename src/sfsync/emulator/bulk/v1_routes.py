"""Bulk API 1.0 over HTTP: ``/services/async/XX.X/job[/...]`` (section 4.6).

Authentication is the app's (``X-SFDC-Session`` is accepted as a token; a bad one gets the
v1 ``InvalidSessionId`` envelope from the app). Bodies and answers are JSON when the request
says JSON (``Content-Type``/``Accept``) or the job's ``contentType`` is JSON, XML (namespace
``http://www.force.com/2009/06/asyncapi/dataload``) otherwise. Errors use v1's own envelope:
``{"exceptionCode": "InvalidJob", "exceptionMessage": "..."}`` or
``<error><exceptionCode/><exceptionMessage/></error>`` (status 400; 404 for an unknown job or
batch with ``InvalidJob``/``InvalidBatch``; texts UNCONFIRMED).

``concurrencyMode`` is accepted as ``Parallel``/``Serial`` or simple-salesforce's ``0``/``1``;
batches of a Parallel job run at the same time, those of a Serial job one after another in
the order they were added.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from xml.etree import ElementTree
from xml.sax.saxutils import escape

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from sfsync.emulator.bulk.query import CsvWriter, csv_columns
from sfsync.emulator.bulk.service import BulkService, service_of
from sfsync.emulator.bulk.v1_codec import NS, XSI, csv_results
from sfsync.emulator.bulk.v1_model import (
    CONTENT_TYPES,
    MAX_BATCH_BYTES,
    OPERATIONS,
    Batch,
    ClassicError,
    ClassicJob,
    chunk_ranges,
    new_batch,
    parse_pk_chunking,
    process_batch,
    run_batches,
)
from sfsync.emulator.clock import format_datetime
from sfsync.emulator.errors import ApiError
from sfsync.emulator.http import JSON_CONTENT_TYPE
from sfsync.emulator.rest.common import client_id_of, org_of, user_id_of
from sfsync.emulator.soql import compile_query

V1_ROOT = "/services/async/{version}"
XML_TYPE = "application/xml"
CSV_TYPE = "text/csv"
Endpoint = Callable[[Request], Awaitable[Response]]


def _wants_json(request: Request, job: ClassicJob | None = None) -> bool:
    asked = request.headers.get("content-type", "") + request.headers.get("accept", "")
    return "json" in asked.lower() or (job is not None and "JSON" in job.content_type)


def _xml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return escape(str(value))


def _xml_document(root: str, body: Mapping[str, Any]) -> str:
    inner = "".join(f"<{k}>{_xml_value(v)}</{k}>" for k, v in body.items() if v is not None)
    return f'<?xml version="1.0" encoding="UTF-8"?><{root} xmlns="{NS}">{inner}</{root}>'


def _answer(
    request: Request, job: ClassicJob | None, root: str, body: Any, status: int = 200
) -> Response:
    if _wants_json(request, job):
        return Response(orjson.dumps(body), status, media_type=JSON_CONTENT_TYPE)
    return Response(_xml_document(root, body).encode(), status, media_type=XML_TYPE)


def _error(request: Request, error: ClassicError) -> Response:
    body = {"exceptionCode": error.code, "exceptionMessage": error.message}
    if _wants_json(request):
        return Response(orjson.dumps(body), error.status, media_type=JSON_CONTENT_TYPE)
    return Response(_xml_document("error", body).encode(), error.status, media_type=XML_TYPE)


def _guarded(endpoint: Endpoint) -> Endpoint:
    """Render ClassicError (and any ApiError) in the v1 envelope."""

    async def wrapper(request: Request) -> Response:
        try:
            return await endpoint(request)
        except ClassicError as error:
            return _error(request, error)
        except ApiError as error:
            detail = error.details[0]
            code = "ExceededQuota" if error.status == 403 else "InvalidJob"
            if detail.code == "INVALIDJOBSTATE":
                code = "InvalidJobState"
            return _error(request, ClassicError(code, detail.message, 400))

    return wrapper


def _service(request: Request) -> BulkService:
    return service_of(org_of(request))


def _job(request: Request) -> ClassicJob:
    job = _service(request).registry.get(request.path_params["job_id"])
    if not isinstance(job, ClassicJob):
        raise ClassicError(
            "InvalidJob", f"Unable to find job: {request.path_params['job_id']}", 400
        )
    return job


def _batch(request: Request, job: ClassicJob) -> Batch:
    batch_id = request.path_params["batch_id"]
    batch = job.batches.get(batch_id) or next(
        (b for b in job.batches.values() if b.id[:15] == batch_id), None
    )
    if batch is None:
        raise ClassicError("InvalidBatch", f"Unable to find batch: {batch_id}", 400)
    return batch


async def _fields(request: Request) -> dict[str, Any]:
    """A jobInfo request body, JSON or XML, as a flat dict."""
    raw = await request.body()
    if _wants_json(request) or raw.lstrip().startswith(b"{"):
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise ClassicError("InvalidJob", f"Unable to parse job: {exc.msg}") from None
        if not isinstance(data, dict):
            raise ClassicError("InvalidJob", "Unable to parse job: not an object")
        return data
    try:
        root = ElementTree.fromstring(raw)
    except ElementTree.ParseError as exc:
        raise ClassicError("InvalidXML", f"Unable to parse XML: {exc}") from None
    return {child.tag.rsplit("}", 1)[-1]: (child.text or "").strip() for child in root}


async def create_job(request: Request) -> Response:
    service = _service(request)
    org = service.org
    body = await _fields(request)
    operation = body.get("operation")
    if operation not in OPERATIONS:
        raise ClassicError("InvalidJob", f"Invalid operation: {operation}")
    name = body.get("object")
    obj = org.schema.object(name) if isinstance(name, str) else None
    if obj is None:
        raise ClassicError("InvalidJob", f"Unable to find object: {name}")
    content_type = str(body.get("contentType") or "XML")
    if content_type not in CONTENT_TYPES:
        raise ClassicError("InvalidJob", f"Invalid content type: {content_type}")
    mode = str(body.get("concurrencyMode", "Parallel"))
    mode = {"0": "Parallel", "1": "Serial"}.get(mode, mode)
    if mode not in ("Parallel", "Serial"):
        raise ClassicError("InvalidJob", f"Invalid concurrency mode: {mode}")
    external = body.get("externalIdFieldName")
    if operation == "upsert":
        key = obj.field(str(external)) if external else None
        if key is None:
            raise ClassicError(
                "InvalidJob",
                f"External ID was blank for {obj.name}. An External ID must be specified for "
                "upsert.",
            )
        external = key.name
    else:
        external = None
    chunking, chunk_size = parse_pk_chunking(request.headers.get("sforce-enable-pkchunking"))
    now = org.clock.now()
    job = ClassicJob(
        id=service.registry.new_id(),
        kind="classic",
        object=obj.name,
        operation=str(operation),
        api_version=request.path_params["version"],
        created_by=user_id_of(request) or str(org.store.integration_user_id),
        client_id=client_id_of(request),
        created_date=format_datetime(now),
        system_modstamp=format_datetime(now),
        state="Open",
        created_at=org.clock.time(),
        concurrency_mode=mode,
        content_type=content_type,
        external_id_field=external,
        pk_chunking=chunking,
        chunk_size=chunk_size,
    )
    service.registry.add(job)
    return _answer(request, job, "jobInfo", job.info(), 201)


async def job_resource(request: Request) -> Response:
    job = _job(request)
    if request.method == "GET":
        return _answer(request, job, "jobInfo", job.info())
    service = _service(request)
    target = (await _fields(request)).get("state")
    with job.lock:
        if job.state != "Open":
            raise ClassicError("InvalidJobState", f"Job {job.id} is {job.state}, not Open")
        if target == "Closed":
            job.state = "Closed"
        elif target == "Aborted":
            job.state = "Aborted"
            for batch in job.batches.values():
                if batch.state == "Queued":
                    batch.state = "NotProcessed"
        else:
            raise ClassicError("InvalidJob", f"Invalid state: {target}")
        job.terminal_at = service.org.clock.time()
        job.touch(service.org.clock)
    return _answer(request, job, "jobInfo", job.info())


async def batches(request: Request) -> Response:
    job = _job(request)
    if request.method == "GET":
        infos = [b.info() for b in list(job.batches.values())]
        if _wants_json(request, job):
            return _answer(request, job, "", {"batchInfo": infos})
        inner = "".join(
            "<batchInfo>"
            + "".join(f"<{k}>{_xml_value(v)}</{k}>" for k, v in i.items())
            + "</batchInfo>"
            for i in infos
        )
        document = f'<?xml version="1.0" encoding="UTF-8"?><batchInfoList xmlns="{NS}">'
        return Response((document + inner + "</batchInfoList>").encode(), media_type=XML_TYPE)
    return await _add_batch(request, job)


async def _add_batch(request: Request, job: ClassicJob) -> Response:
    service = _service(request)
    org = service.org
    if job.state != "Open":
        raise ClassicError("InvalidJobState", f"Job {job.id} is {job.state}, not Open")
    body = await request.body()
    if len(body) > MAX_BATCH_BYTES:
        raise ClassicError("ExceededQuota", f"Batch size exceeds {MAX_BATCH_BYTES} bytes")
    try:
        service.allocations.take_batches(1)
    except ApiError:
        raise ClassicError("ExceededQuota", "ApiBatchItems Limit exceeded.") from None
    batch = new_batch(job, service.registry, org.clock, body)
    work = [batch]
    if job.pk_chunking and job.operation in ("query", "queryAll"):
        work = _chunk(job, batch, service)
    answer = _answer(request, job, "batchInfo", batch.info(), 201)
    for item in work:
        if job.concurrency_mode == "Serial":
            service.submit(functools.partial(run_batches, job, org.schema, org.store, org.clock))
        else:
            service.submit(
                functools.partial(process_batch, job, item, org.schema, org.store, org.clock)
            )
    return answer


def _chunk(job: ClassicJob, original: Batch, service: BulkService) -> list[Batch]:
    """PK chunking: the original batch is NotProcessed; one batch per id range does the work."""
    org = service.org
    compiled = compile_query(original.request.decode("utf-8", errors="replace"), org.schema)
    ranges = chunk_ranges(
        org.store, compiled.object_name, job.chunk_size, job.operation == "queryAll"
    )
    chunks = []
    for lo, hi in ranges:
        batch = new_batch(job, service.registry, org.clock, original.request)
        batch.id_range = (lo, hi)
        chunks.append(batch)
    with job.lock:
        original.state = "NotProcessed"
    return chunks


async def batch_info(request: Request) -> Response:
    job = _job(request)
    return _answer(request, job, "batchInfo", _batch(request, job).info())


async def batch_request(request: Request) -> Response:
    job = _job(request)
    batch = _batch(request, job)
    media = {"JSON": JSON_CONTENT_TYPE, "XML": XML_TYPE}.get(
        job.content_type.removeprefix("ZIP_"), CSV_TYPE
    )
    if job.operation in ("query", "queryAll"):
        media = "text/plain"
    return Response(batch.request, media_type=media)


async def batch_results(request: Request) -> Response:
    job = _job(request)
    batch = _batch(request, job)
    if batch.state not in ("Completed", "Failed"):
        raise ClassicError("InvalidBatch", f"Batch {batch.id} is {batch.state}; no results yet")
    kind = job.content_type.removeprefix("ZIP_")
    if job.operation in ("query", "queryAll"):
        ids = [batch.result_id] if batch.result_id else []
        if _wants_json(request, job):
            return Response(orjson.dumps(ids), media_type=JSON_CONTENT_TYPE)
        inner = "".join(f"<result>{i}</result>" for i in ids)
        document = f'<result-list xmlns="{NS}">{inner}</result-list>'
        return Response(document.encode(), media_type=XML_TYPE)
    if kind == "JSON":
        return Response(orjson.dumps(batch.results), media_type=JSON_CONTENT_TYPE)
    if kind == "CSV":
        return Response(csv_results(batch.results).encode(), media_type=CSV_TYPE)
    return Response(_xml_results(batch.results).encode(), media_type=XML_TYPE)


def _xml_results(results: list[dict[str, Any]]) -> str:
    parts = [f'<?xml version="1.0" encoding="UTF-8"?><results xmlns="{NS}" xmlns:xsi="{XSI}">']
    for r in results:
        parts.append("<result>")
        for e in r["errors"]:
            fields = "".join(f"<fields>{escape(f)}</fields>" for f in e["fields"])
            parts.append(
                f"<errors>{fields}<message>{escape(e['message'])}</message>"
                f"<statusCode>{e['statusCode']}</statusCode></errors>"
            )
        rid = f"<id>{r['id']}</id>" if r["id"] else '<id xsi:nil="true"/>'
        parts.append(
            f"{rid}<success>{_xml_value(r['success'])}</success>"
            f"<created>{_xml_value(r['created'])}</created></result>"
        )
    parts.append("</results>")
    return "".join(parts)


async def query_result(request: Request) -> Response:
    job = _job(request)
    batch = _batch(request, job)
    if batch.result_id is None or request.path_params["result_id"] != batch.result_id:
        raise ClassicError(
            "InvalidBatch", f"Unable to find result: {request.path_params['result_id']}"
        )
    kind = job.content_type.removeprefix("ZIP_")
    records = batch.query_records
    if kind == "JSON":
        return Response(orjson.dumps(records), media_type=JSON_CONTENT_TYPE)
    if kind == "CSV":
        org = _service(request).org
        compiled = compile_query(batch.request.decode("utf-8", errors="replace"), org.schema)
        writer = CsvWriter(csv_columns(compiled, org.schema))
        text = writer.header() + writer.rows(records)
        return Response(text.encode(), media_type=CSV_TYPE)
    inner = "".join(_xml_record(r, "records") for r in records)
    document = (
        f'<?xml version="1.0" encoding="UTF-8"?><queryResult xmlns="{NS}" '
        f'xmlns:xsi="{XSI}">{inner}</queryResult>'
    )
    return Response(document.encode(), media_type=XML_TYPE)


def _xml_record(record: Mapping[str, Any], tag: str) -> str:
    attributes = record.get("attributes")
    kind = attributes.get("type", "") if isinstance(attributes, Mapping) else ""
    parts = [f'<{tag} xsi:type="sObject"><type>{escape(str(kind))}</type>']
    for key, value in record.items():
        if key == "attributes":
            continue
        if isinstance(value, Mapping):
            parts.append(_xml_record(value, key))
        elif value is None:
            parts.append(f'<{key} xsi:nil="true"/>')
        else:
            parts.append(f"<{key}>{_xml_value(value)}</{key}>")
    parts.append(f"</{tag}>")
    return "".join(parts)


def v1_routes() -> list[BaseRoute]:
    """The Bulk API 1.0 routes."""
    return [
        Route(V1_ROOT + "/job", _guarded(create_job), methods=["POST"]),
        Route(V1_ROOT + "/job/{job_id}", _guarded(job_resource), methods=["GET", "POST"]),
        Route(V1_ROOT + "/job/{job_id}/batch", _guarded(batches), methods=["GET", "POST"]),
        Route(V1_ROOT + "/job/{job_id}/batch/{batch_id}", _guarded(batch_info), methods=["GET"]),
        Route(
            V1_ROOT + "/job/{job_id}/batch/{batch_id}/request",
            _guarded(batch_request),
            methods=["GET"],
        ),
        Route(
            V1_ROOT + "/job/{job_id}/batch/{batch_id}/result",
            _guarded(batch_results),
            methods=["GET"],
        ),
        Route(
            V1_ROOT + "/job/{job_id}/batch/{batch_id}/result/{result_id}",
            _guarded(query_result),
            methods=["GET"],
        ),
    ]
