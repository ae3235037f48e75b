"""Replication resources: ``GET /sobjects/{Obj}/updated/?start=&end=`` and ``/deleted/``.

Rules (section 2.8 of the reference):

- ``start`` and ``end`` are ISO 8601 datetimes with an offset (``2024-05-08T21:20:00+00:00``)
  or ``Z``; anything else, or a missing one, is 400 INVALID_REPLICATION_DATE.
- Seconds are ignored: both ends are truncated to the minute.
- ``end`` later than now is clamped to now (truncated); ``start`` must then still precede
  ``end``, else INVALID_REPLICATION_DATE.
- ``updated`` covers at most the last 30 days: an older ``start`` is INVALID_REPLICATION_DATE.
  ``deleted`` reaches back only as far as the recycle bin keeps records (15 days); it answers
  ``earliestDateAvailable`` so that a client whose ``start`` is earlier knows to resync fully.
- More than 600,000 ids is 400 EXCEEDED_ID_LIMIT.
- The object must be replicateable (else 400 INVALID_TYPE_FOR_OPERATION; code UNCONFIRMED).
- ``latestDateCovered`` is the (truncated, clamped) end: the next call's start.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from starlette.requests import Request
from starlette.responses import Response

from sfsync.emulator.clock import format_datetime
from sfsync.emulator.errors import ApiError
from sfsync.emulator.rest.common import guarded, json_bytes_response, object_def, org_of
from sfsync.emulator.rest.seams import Org
from sfsync.emulator.schema.model import ObjectDef

UPDATED_WINDOW = timedelta(days=30)
RECYCLE_BIN_RETENTION = timedelta(days=15)
MAX_IDS = 600_000


def _invalid(message: str) -> ApiError:
    return ApiError.of(400, "INVALID_REPLICATION_DATE", message)


def parse_replication_date(name: str, value: str | None) -> datetime:
    """``start``/``end`` parameter as a UTC datetime truncated to the minute."""
    if not value:
        raise _invalid(f"Missing or invalid value for parameter: {name}")
    text = value.strip().replace(" ", "+")  # an unencoded '+' arrives as a space
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise _invalid(f"Missing or invalid value for parameter: {name}") from exc
    if moment.tzinfo is None:
        raise _invalid(f"Missing or invalid value for parameter: {name}")
    return moment.astimezone(UTC).replace(second=0, microsecond=0)


def _window(request: Request, org: Org) -> tuple[datetime, datetime, datetime]:
    start = parse_replication_date("start", request.query_params.get("start"))
    end = parse_replication_date("end", request.query_params.get("end"))
    now = org.clock.now().replace(second=0, microsecond=0)
    end = min(end, now)
    if start >= end:
        raise _invalid("startDate must chronologically precede endDate by more than one minute")
    return start, end, now


def _replicateable(org: Org, request: Request) -> ObjectDef:
    obj = object_def(org, request.path_params["sobject"])
    if not obj.replicateable:
        raise ApiError.of(
            400,
            "INVALID_TYPE_FOR_OPERATION",
            f"entity type {obj.name} does not support replication",
        )
    return obj


def _too_many() -> ApiError:
    return ApiError.of(
        400, "EXCEEDED_ID_LIMIT", f"Exceeded the maximum of {MAX_IDS} ids for this request"
    )


@guarded
async def updated(request: Request) -> Response:
    org = org_of(request)
    obj = _replicateable(org, request)
    start, end, now = _window(request, org)
    if start < now - UPDATED_WINDOW:
        raise _invalid("startDate cannot be more than 30 days ago")
    ids = org.store.updated_ids(obj.name, start, end)
    if len(ids) > MAX_IDS:
        raise _too_many()
    return json_bytes_response({"ids": ids, "latestDateCovered": format_datetime(end)})


@guarded
async def deleted(request: Request) -> Response:
    org = org_of(request)
    obj = _replicateable(org, request)
    start, end, now = _window(request, org)
    earliest = now - RECYCLE_BIN_RETENTION
    records = org.store.deleted_records(obj.name, max(start, earliest), end)
    if len(records) > MAX_IDS:
        raise _too_many()
    return json_bytes_response(
        {
            "deletedRecords": [{"id": i, "deletedDate": d} for i, d in records],
            "earliestDateAvailable": format_datetime(earliest),
            "latestDateCovered": format_datetime(end),
        }
    )
