"""Record resources: create, retrieve, update, delete, and the external-id forms.

Paths (all under ``/services/data/vXX.X``; a trailing slash is accepted everywhere):

- ``POST /sobjects/{Obj}/`` -> 201 ``{"id", "success": true, "errors": []}``
- ``GET|PATCH|DELETE /sobjects/{Obj}/{id}`` -> 200 record / 204 / 204
- ``GET|PATCH|DELETE /sobjects/{Obj}/{ExtField}/{value}`` -> by external id; PATCH is upsert:
  201 with ``created: true`` on insert; on update 200 with ``created: false`` from v46.0, 204
  before; 300 with the matching record URLs when several match; 404 NOT_FOUND for a field that
  is not an external id.
- ``POST /sobjects/{Obj}/Id`` -> upsert keyed on Id with no value, i.e. always a create.

Preconditions: a record GET carries an ``ETag`` (a hash of the record's SystemModstamp) and
``Last-Modified``. ``If-None-Match``/``If-Modified-Since`` on GET answer 304;
``If-Match``/``If-Unmodified-Since`` on PATCH/DELETE answer 412 PRECONDITION_FAILED when the
record changed (the error wording is UNCONFIRMED).

Choices where the reference is UNCONFIRMED: PATCH/DELETE of a well-formed id that does not exist
is 404 NOT_FOUND (what a real org was observed to answer); an upsert body that sets the key
field to a different value than the URL is 400 INVALID_FIELD.
"""

from __future__ import annotations

import email.utils
import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_plus

from starlette.requests import Request
from starlette.responses import Response

from sfsync.emulator.errors import ApiError, ErrorDetail
from sfsync.emulator.rest.common import (
    guarded,
    json_body,
    json_bytes_response,
    json_object,
    looks_like_id,
    major_version,
    no_content,
    not_found,
    object_def,
    org_of,
    record_url,
    strip_attributes,
    user_id_of,
    version_of,
)
from sfsync.emulator.rest.render import render_record, resolve_fields
from sfsync.emulator.rest.seams import Org
from sfsync.emulator.schema.model import FieldDef, FieldType, ObjectDef, WireValue


def live_record(org: Org, obj: ObjectDef, record_id: str) -> Mapping[str, WireValue]:
    """The record ``record_id`` of type ``obj``: 404 NOT_FOUND when absent or of another
    type, 404 ENTITY_IS_DELETED when in the recycle bin."""
    if not looks_like_id(record_id):
        raise ApiError.of(
            404,
            "NOT_FOUND",
            f"Provided external ID field does not exist or is not accessible: {record_id}",
        )
    row = org.store.get(record_id)
    if row is None or not str(row.get("Id", "")).startswith(obj.key_prefix):
        raise not_found()
    if row.get("IsDeleted") is True:
        raise ApiError.of(404, "ENTITY_IS_DELETED", "entity is deleted")
    return row


def external_id_field(obj: ObjectDef, name: str) -> FieldDef:
    """The upsert key ``name`` of ``obj``: an external id or ``Id``, else 404 NOT_FOUND."""
    field = obj.field(name)
    if field is None or not (field.external_id or field.type is FieldType.ID):
        raise ApiError.of(
            404,
            "NOT_FOUND",
            f"Provided external ID field does not exist or is not accessible: {name}",
        )
    return field


def external_id_value(request: Request) -> str:
    """The external-id value in ``/sobjects/{Obj}/{Field}/{value}``, decoded once from the raw
    path as a form value: clients encode it with ``quote_plus``, so ``+`` is a space and
    ``%2B`` a plus (the already-decoded path could no longer tell them apart). Slashes may be
    encoded (``%2F``) or not."""
    raw = request.scope.get("raw_path")
    if isinstance(raw, bytes):
        path = raw.decode("latin-1").split("?", 1)[0]
        parts = path.split("/")
        for index, part in enumerate(parts):
            if part.lower() == "sobjects" and len(parts) > index + 3:
                return unquote_plus("/".join(parts[index + 3 :]))
    return str(request.path_params["value"])


def save_result(record_id: str, created: bool | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"id": record_id, "success": True, "errors": []}
    if created is not None:
        body["created"] = created
    return body


def etag(row: Mapping[str, WireValue]) -> str:
    stamp = f"{row.get('Id')}:{row.get('SystemModstamp')}".encode()
    return '"' + hashlib.sha256(stamp).hexdigest()[:32] + '"'


def _parse_wire_datetime(value: WireValue) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%f%z")
    except ValueError:
        return None


def _http_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _modified(row: Mapping[str, WireValue]) -> datetime | None:
    moment = _parse_wire_datetime(row.get("LastModifiedDate") or row.get("SystemModstamp"))
    return moment.replace(microsecond=0) if moment is not None else None


def check_write_preconditions(request: Request, row: Mapping[str, WireValue]) -> None:
    """412 when ``If-Match`` names another version or the record changed after
    ``If-Unmodified-Since``."""
    match = request.headers.get("if-match")
    if match is not None:
        wanted = {t.strip() for t in match.split(",")}
        if "*" not in wanted and etag(row) not in wanted:
            raise ApiError.of(
                412, "PRECONDITION_FAILED", "The entity tag doesn't match the record's version."
            )
    since = _http_date(request.headers.get("if-unmodified-since"))
    modified = _modified(row)
    if since is not None and modified is not None and modified > since:
        raise ApiError.of(
            412, "PRECONDITION_FAILED", "The record was modified after the given date."
        )


def _not_modified(request: Request, row: Mapping[str, WireValue]) -> bool:
    none_match = request.headers.get("if-none-match")
    if none_match is not None:
        return etag(row) in {t.strip() for t in none_match.split(",")}
    since = _http_date(request.headers.get("if-modified-since"))
    modified = _modified(row)
    return since is not None and modified is not None and modified <= since


def _record_response(request: Request, obj: ObjectDef, row: Mapping[str, WireValue]) -> Response:
    headers = {"ETag": etag(row)}
    modified = _modified(row)
    if modified is not None:
        headers["Last-Modified"] = email.utils.format_datetime(modified, usegmt=True)
    if _not_modified(request, row):
        return Response(status_code=304, headers=headers)
    fields_param = request.query_params.get("fields")
    fields = resolve_fields(obj, fields_param.split(",")) if fields_param else None
    return json_bytes_response(
        render_record(obj, row, version_of(request), fields), headers=headers
    )


async def _write_body(request: Request) -> dict[str, Any]:
    return strip_attributes(json_object(await json_body(request)))


def _multiple_choices(version: str, obj: ObjectDef, ids: list[str]) -> ApiError:
    """300 Multiple Choices; :func:`~sfsync.emulator.rest.common.error_response` renders the
    details' messages, the record URLs, as the JSON array Salesforce sends."""
    urls = (record_url(version, obj.name, i) for i in ids)
    return ApiError(300, tuple(ErrorDetail("MULTIPLE_CHOICES", url) for url in urls))


class RecordResource:
    """Endpoints for single records."""

    @guarded
    async def create(self, request: Request) -> Response:
        """``POST /sobjects/{Obj}/`` (and ``POST /sobjects/{Obj}/Id``)."""
        org = org_of(request)
        obj = object_def(org, request.path_params["sobject"])
        values = await _write_body(request)
        new_id = org.store.insert(obj.name, values, user_id=user_id_of(request))
        headers = {"Location": record_url(version_of(request), obj.name, new_id)}
        # POST .../Id is an upsert: its answer carries "created" (a key added in v46.0).
        upserting = "record_id" in request.path_params
        created = True if upserting and major_version(version_of(request)) >= 46 else None
        return json_bytes_response(save_result(new_id, created), 201, headers)

    @guarded
    async def retrieve(self, request: Request) -> Response:
        org = org_of(request)
        obj = object_def(org, request.path_params["sobject"])
        row = live_record(org, obj, request.path_params["record_id"])
        return _record_response(request, obj, row)

    @guarded
    async def update(self, request: Request) -> Response:
        org = org_of(request)
        obj = object_def(org, request.path_params["sobject"])
        row = live_record(org, obj, request.path_params["record_id"])
        check_write_preconditions(request, row)
        values = await _write_body(request)
        org.store.update(obj.name, str(row["Id"]), values, user_id=user_id_of(request))
        return no_content()

    @guarded
    async def delete(self, request: Request) -> Response:
        org = org_of(request)
        obj = object_def(org, request.path_params["sobject"])
        row = live_record(org, obj, request.path_params["record_id"])
        check_write_preconditions(request, row)
        org.store.delete(str(row["Id"]), user_id=user_id_of(request))
        return no_content()

    @guarded
    async def post_on_record(self, request: Request) -> Response:
        """``POST /sobjects/{Obj}/{x}``: only ``x == "Id"`` (create through upsert) is valid."""
        if request.path_params["record_id"].lower() == "id":
            return await self.create(request)
        raise ApiError.of(
            405,
            "METHOD_NOT_ALLOWED",
            "HTTP Method 'POST' not allowed. Allowed are HEAD,GET,PATCH,DELETE",
        )

    def _matches(self, request: Request) -> tuple[Org, ObjectDef, FieldDef, str, list[str]]:
        org = org_of(request)
        obj = object_def(org, request.path_params["sobject"])
        field = external_id_field(obj, request.path_params["field"])
        value = external_id_value(request)
        if field.type is FieldType.ID:
            row = org.store.get(value) if looks_like_id(value) else None
            live = row is not None and row.get("IsDeleted") is not True
            ids = [str(row["Id"])] if live and row is not None else []
        else:
            ids = [
                i for i in org.store.find_by_field(obj.name, field.name, value) if _is_live(org, i)
            ]
        return org, obj, field, value, ids

    @guarded
    async def get_by_external_id(self, request: Request) -> Response:
        org, obj, _field, _value, ids = self._matches(request)
        if not ids:
            raise not_found()
        if len(ids) > 1:
            raise _multiple_choices(version_of(request), obj, ids)
        return _record_response(request, obj, live_record(org, obj, ids[0]))

    @guarded
    async def delete_by_external_id(self, request: Request) -> Response:
        org, obj, _field, _value, ids = self._matches(request)
        if not ids:
            raise not_found()
        if len(ids) > 1:
            raise _multiple_choices(version_of(request), obj, ids)
        row = live_record(org, obj, ids[0])
        check_write_preconditions(request, row)
        org.store.delete(ids[0], user_id=user_id_of(request))
        return no_content()

    @guarded
    async def upsert(self, request: Request) -> Response:
        """``PATCH /sobjects/{Obj}/{ExtField}/{value}``."""
        org, obj, field, value, ids = self._matches(request)
        version = version_of(request)
        values = await _write_body(request)
        for key in list(values):
            if key.lower() == field.name.lower():
                if str(values[key]) != value:
                    raise ApiError.of(
                        400,
                        "INVALID_FIELD",
                        f"The value of {field.name} in the request body ({values[key]}) does "
                        f"not match the value in the URL ({value}).",
                        (field.name,),
                    )
                del values[key]
        if len(ids) > 1:
            raise _multiple_choices(version, obj, ids)
        update_only = request.query_params.get("updateOnly", "").lower() == "true"
        user = user_id_of(request)
        if field.type is FieldType.ID:
            if not ids:
                raise not_found()
            org.store.update(obj.name, ids[0], values, user_id=user)
            record_id, created = ids[0], False
        elif update_only and not ids:
            raise not_found()
        else:
            record_id, created = org.store.upsert(obj.name, field.name, value, values, user_id=user)
        location = {"Location": record_url(version, obj.name, record_id)}
        if major_version(version) < 46:
            # Before v46.0 there is no "created" key, and an update answers 204.
            if created:
                return json_bytes_response(save_result(record_id), 201, location)
            return no_content()
        if created:
            return json_bytes_response(save_result(record_id, True), 201, location)
        return json_bytes_response(save_result(record_id, False), 200, location)


def _is_live(org: Org, record_id: str) -> bool:
    row = org.store.get(record_id)
    return row is not None and row.get("IsDeleted") is not True
