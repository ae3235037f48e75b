"""sObject Collections: ``/composite/sobjects`` create, update, upsert, delete and retrieve.

Every well-formed request answers 200 with one result per record, in request order:
``{"id", "success": true, "errors": []}`` (upsert adds ``created``), or on failure
``{"success": false, "errors": [{"statusCode", "message", "fields"}]}`` (update, upsert and
delete failures keep the ``id``). At most 200 records a call (2,000 ids for retrieve by POST).

``allOrNone: true`` runs the whole call in one store transaction; if any record fails, the
transaction is rolled back and every record that did not fail reports
ALL_OR_NONE_OPERATION_ROLLED_BACK. All records are still attempted so that every genuine error
is reported in one round trip.

Choices where the reference is UNCONFIRMED: a record without ``attributes.type`` (create, upsert)
or with an unknown type fails on its own with INVALID_TYPE rather than failing the call; more
than 200 records is 400 EXCEEDED_ID_LIMIT; several existing records matching an upsert key, or
one key value twice in the call, fail that record with DUPLICATE_EXTERNAL_ID; rolled-back
upsert items do not carry ``created``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

from starlette.requests import Request
from starlette.responses import Response

from sfsync.emulator.errors import ApiError, ErrorDetail
from sfsync.emulator.faults import ROW_LOCK_MESSAGE, RowFaults
from sfsync.emulator.rest.common import (
    guarded,
    invalid_type,
    json_body,
    json_bytes_response,
    json_object,
    looks_like_id,
    major_version,
    not_found,
    object_def,
    org_of,
    strip_attributes,
    user_id_of,
    version_of,
)
from sfsync.emulator.rest.records import external_id_field
from sfsync.emulator.rest.render import render_record, resolve_fields
from sfsync.emulator.rest.seams import Org, RecordStore
from sfsync.emulator.schema.model import FieldType, ObjectDef

MAX_RECORDS = 200
MAX_RETRIEVE_IDS = 2000

ROLLED_BACK = ErrorDetail(
    "ALL_OR_NONE_OPERATION_ROLLED_BACK",
    "Record rolled back because not all records were valid and the request was using "
    "AllOrNone header",
)

Operation = Callable[[], dict[str, Any]]


def _failure(errors: tuple[ErrorDetail, ...], record_id: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {} if record_id is None else {"id": record_id}
    body["success"] = False
    body["errors"] = [e.dml() for e in errors]
    return body


def run_operations(
    store: RecordStore,
    ops: Sequence[tuple[str | None, Operation]],
    all_or_none: bool,
    row_faults: RowFaults | None = None,
) -> list[dict[str, Any]]:
    """Run ``ops`` (each with the id to report on failure) and return their results; a record
    the fault plan locks (``row_faults``) fails with ``UNABLE_TO_LOCK_ROW`` unwritten."""
    results: list[dict[str, Any]] = []
    failed: list[bool] = []

    def attempt() -> None:
        for record_id, op in ops:
            if row_faults is not None and row_faults.lock():
                locked = ROW_LOCK_MESSAGE.format(id=record_id or "001000000000000AAA")
                results.append(_failure((ErrorDetail("UNABLE_TO_LOCK_ROW", locked),), record_id))
                failed.append(True)
                continue
            try:
                results.append(op())
                failed.append(False)
            except ApiError as error:
                results.append(_failure(error.details, record_id))
                failed.append(True)

    if not all_or_none:
        attempt()
        return results
    try:
        with store.transaction():
            attempt()
            if any(failed):
                # The store rolls back on ApiError; raise one carrying nothing we report.
                raise ApiError.of(400, ROLLED_BACK.code, ROLLED_BACK.message)
    except ApiError:
        if not any(failed):
            raise
    if any(failed):
        for i, (record_id, _op) in enumerate(ops):
            if not failed[i]:
                results[i] = _failure((ROLLED_BACK,), record_id)
    return results


def _limit(count: int, maximum: int = MAX_RECORDS) -> None:
    if count > maximum:
        raise ApiError.of(
            400,
            "EXCEEDED_ID_LIMIT",
            f"Record limit reached. cannot submit more than {maximum} records into this call",
        )


def _request_records(body: Mapping[str, Any]) -> tuple[list[dict[str, Any]], bool]:
    records = body.get("records")
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise ApiError.of(400, "JSON_PARSER_ERROR", "records must be an array of JSON objects")
    _limit(len(records))
    return records, body.get("allOrNone") is True


def _declared_type(org: Org, record: Mapping[str, Any]) -> ObjectDef:
    attributes = record.get("attributes")
    name = attributes.get("type") if isinstance(attributes, dict) else None
    if not isinstance(name, str):
        raise ApiError.of(400, "INVALID_TYPE", "No SObject Type defined in JSON")
    obj = org.schema.object(name)
    if obj is None:
        raise invalid_type(name)
    return obj


def _record_id(record: Mapping[str, Any]) -> str | None:
    for key in ("id", "Id", "ID"):
        value = record.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def _without_id(record: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in strip_attributes(record).items() if k.lower() != "id"}


def row_faults_of(request: Request) -> RowFaults | None:
    """The fault plan's per-record faults for this request, if its rule has any."""
    return cast("RowFaults | None", getattr(request.state, "row_faults", None))


class CollectionsResource:
    """The sObject Collections endpoints."""

    @guarded
    async def create(self, request: Request) -> Response:
        org = org_of(request)
        records, all_or_none = _request_records(json_object(await json_body(request)))
        user = user_id_of(request)

        def op(record: dict[str, Any]) -> Operation:
            def run() -> dict[str, Any]:
                obj = _declared_type(org, record)
                if _record_id(record) is not None:
                    raise ApiError.of(400, "INVALID_FIELD", "cannot specify Id in an insert call")
                new_id = org.store.insert(obj.name, strip_attributes(record), user_id=user)
                return {"id": new_id, "success": True, "errors": []}

            return run

        ops = [(None, op(r)) for r in records]
        return json_bytes_response(
            run_operations(org.store, ops, all_or_none, row_faults_of(request))
        )

    @guarded
    async def update(self, request: Request) -> Response:
        org = org_of(request)
        records, all_or_none = _request_records(json_object(await json_body(request)))
        user = user_id_of(request)

        def op(record: dict[str, Any], record_id: str | None) -> Operation:
            def run() -> dict[str, Any]:
                if record_id is None:
                    raise ApiError.of(400, "MISSING_ARGUMENT", "Id not specified in an update call")
                row = org.store.get(record_id) if looks_like_id(record_id) else None
                if row is None:
                    if not looks_like_id(record_id):
                        raise ApiError.of(400, "MALFORMED_ID", f"malformed id {record_id}", ("Id",))
                    raise ApiError.of(
                        400, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id"
                    )
                if row.get("IsDeleted") is True:
                    raise ApiError.of(400, "ENTITY_IS_DELETED", "entity is deleted")
                obj = org.schema.by_prefix(record_id[:3])
                if obj is None:
                    raise ApiError.of(400, "MALFORMED_ID", f"malformed id {record_id}", ("Id",))
                real_id = str(row["Id"])
                org.store.update(obj.name, real_id, _without_id(record), user_id=user)
                return {"id": real_id, "success": True, "errors": []}

            return run

        ops = [(_record_id(r), op(r, _record_id(r))) for r in records]
        return json_bytes_response(
            run_operations(org.store, ops, all_or_none, row_faults_of(request))
        )

    @guarded
    async def upsert(self, request: Request) -> Response:
        """``PATCH /composite/sobjects/{Obj}/{ExtField}`` (exists from v46.0; 404 before)."""
        if major_version(version_of(request)) < 46:
            raise not_found()
        org = org_of(request)
        obj = object_def(org, request.path_params["sobject"])
        key = external_id_field(obj, request.path_params["field"])
        records, all_or_none = _request_records(json_object(await json_body(request)))
        user = user_id_of(request)

        def key_value(record: Mapping[str, Any]) -> str | None:
            for name, value in record.items():
                if name.lower() == key.name.lower() and value is not None:
                    return str(value)
            return None

        seen = Counter(v for v in (key_value(r) for r in records) if v is not None)

        def op(record: dict[str, Any]) -> Operation:
            def run() -> dict[str, Any]:
                declared = _declared_type(org, record)
                if declared.name != obj.name:
                    raise invalid_type(declared.name)
                value = key_value(record)
                if value is None:
                    raise ApiError.of(
                        400, "MISSING_ARGUMENT", f"{key.name} not specified", (key.name,)
                    )
                if seen[value] > 1:
                    raise ApiError.of(
                        400, "DUPLICATE_EXTERNAL_ID", f"Duplicate external id specified: {value}"
                    )
                values = {
                    k: v
                    for k, v in strip_attributes(record).items()
                    if k.lower() != key.name.lower()
                }
                if key.type is FieldType.ID:
                    org.store.update(obj.name, value, values, user_id=user)
                    return {"id": value, "success": True, "errors": [], "created": False}
                matches = org.store.find_by_field(obj.name, key.name, value)
                if len(matches) > 1:
                    raise ApiError.of(
                        400,
                        "DUPLICATE_EXTERNAL_ID",
                        f"{key.name}: more than one record found for external id field: {matches}",
                        (key.name,),
                    )
                record_id, created = org.store.upsert(
                    obj.name, key.name, value, values, user_id=user
                )
                return {"id": record_id, "success": True, "errors": [], "created": created}

            return run

        ops = [(None, op(r)) for r in records]
        return json_bytes_response(
            run_operations(org.store, ops, all_or_none, row_faults_of(request))
        )

    @guarded
    async def delete(self, request: Request) -> Response:
        """``DELETE /composite/sobjects?ids=...&allOrNone=...``."""
        org = org_of(request)
        ids = [i for i in request.query_params.get("ids", "").split(",") if i.strip()]
        if not ids:
            raise ApiError.of(400, "MISSING_ARGUMENT", "ids parameter is required")
        _limit(len(ids))
        all_or_none = request.query_params.get("allOrNone", "false").lower() == "true"
        user = user_id_of(request)

        def op(record_id: str) -> Operation:
            def run() -> dict[str, Any]:
                row = org.store.get(record_id) if looks_like_id(record_id) else None
                if row is None:
                    code = (
                        "INVALID_CROSS_REFERENCE_KEY"
                        if looks_like_id(record_id)
                        else ("MALFORMED_ID")
                    )
                    raise ApiError.of(400, code, "invalid cross reference id")
                if row.get("IsDeleted") is True:
                    raise ApiError.of(400, "ENTITY_IS_DELETED", "entity is deleted")
                org.store.delete(str(row["Id"]), user_id=user)
                return {"id": str(row["Id"]), "success": True, "errors": []}

            return run

        ops = [(i.strip(), op(i.strip())) for i in ids]
        return json_bytes_response(
            run_operations(org.store, ops, all_or_none, row_faults_of(request))
        )

    @guarded
    async def retrieve(self, request: Request) -> Response:
        """``GET /composite/sobjects/{Obj}?ids=&fields=`` or ``POST`` with ``{"ids","fields"}``."""
        org = org_of(request)
        obj = object_def(org, request.path_params["sobject"])
        if request.method == "POST":
            body = json_object(await json_body(request))
            ids, fields = body.get("ids"), body.get("fields")
            if not isinstance(ids, list) or not isinstance(fields, list):
                raise ApiError.of(400, "JSON_PARSER_ERROR", "ids and fields must be arrays")
            id_list, field_list = [str(i) for i in ids], [str(f) for f in fields]
        else:
            id_list = [i for i in request.query_params.get("ids", "").split(",") if i]
            field_list = [f for f in request.query_params.get("fields", "").split(",") if f]
        if not id_list or not field_list:
            raise ApiError.of(400, "MISSING_ARGUMENT", "ids and fields are required")
        _limit(len(id_list), MAX_RETRIEVE_IDS)
        resolved = resolve_fields(obj, field_list)
        version = version_of(request)
        out: list[dict[str, Any] | None] = []
        for record_id in id_list:
            row = org.store.get(record_id) if looks_like_id(record_id) else None
            live = (
                row is not None
                and row.get("IsDeleted") is not True
                and str(row.get("Id", "")).startswith(obj.key_prefix)
            )
            out.append(render_record(obj, row, version, resolved) if live and row else None)
        return json_bytes_response(out)
