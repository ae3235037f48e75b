"""sObject Collections calls: up to 200 records a call, one result per record, in order.

Every call is made with ``allOrNone: false``: one bad record fails alone and the others are
written, which is what the Sink contract asks (only failed rows are retried). The calls:

* upsert by external id: ``PATCH /composite/sobjects/{Object}/{Field}`` (API v46+);
* insert: ``POST /composite/sobjects``;
* update by Id: ``PATCH /composite/sobjects``;
* delete by Id: ``DELETE /composite/sobjects?ids=...&allOrNone=false``.

A call that fails as a whole gives every one of its rows that error (see
:func:`~.results.whole_call`); a :class:`~sfsync.core.errors.FatalError` is raised instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from sfsync.connectors.salesforce.client import SalesforceClient
from sfsync.connectors.salesforce.records import rest_record
from sfsync.connectors.salesforce.results import RowResult, row_error, whole_call
from sfsync.connectors.salesforce.writeplan import RowWrite, WriteKind
from sfsync.core.errors import FatalError, SyncError


def _results(body: Any, count: int, what: str) -> list[RowResult]:
    if not isinstance(body, list) or len(body) != count:
        raise FatalError(
            f"{what}: Salesforce answered {len(body) if isinstance(body, list) else body!r} "
            f"results for {count} records",
            hint="unexpected answer from Salesforce; report it with the API version",
        )
    out: list[RowResult] = []
    for item in body:
        record_id = item.get("id") if isinstance(item, dict) else None
        if isinstance(item, dict) and item.get("success"):
            out.append(RowResult(record_id=record_id, created=bool(item.get("created", False))))
            continue
        errors = item.get("errors") if isinstance(item, dict) else None
        first = errors[0] if isinstance(errors, list) and errors else {}
        error = row_error(
            str(first.get("statusCode") or "UNKNOWN_EXCEPTION"),
            str(first.get("message") or "no message"),
            [str(f) for f in first.get("fields") or ()],
            what=what,
        )
        if isinstance(error, FatalError):
            raise error
        out.append(RowResult(record_id=record_id, error=error))
    return out


def _record(row: RowWrite, lookups: Mapping[str, str]) -> dict[str, object]:
    body: dict[str, object] = {"attributes": {"type": row.sobject}}
    body.update(rest_record(row.values, lookups))
    if row.kind is WriteKind.UPSERT:
        body[row.key_field] = row.key
    elif row.kind is WriteKind.UPDATE:
        body["Id"] = row.key
    return body


async def write_chunk(
    client: SalesforceClient,
    rows: Sequence[RowWrite],
    lookups: Mapping[str, str],
    *,
    extra: Mapping[int, Mapping[str, object]] | None = None,
) -> list[RowResult]:
    """Write ``rows`` (all one object and one kind, at most 200) in one call.

    Args:
        client: the org.
        rows: the writes.
        lookups: relationship name (lower case) -> lookup field, for null references.
        extra: per position in ``rows``, fields to add (the insert marker).
    """
    if not rows:
        return []
    first = rows[0]
    what = f"{first.kind.value} {len(rows)} {first.sobject}"
    try:
        if first.kind is WriteKind.DELETE:
            ids = ",".join(str(r.key) for r in rows)
            response = await client.request(
                "DELETE",
                client.data_path("composite/sobjects"),
                params={"ids": ids, "allOrNone": "false"},
                what=what,
            )
        else:
            records = [_record(r, lookups) for r in rows]
            for position, fields in (extra or {}).items():
                records[position].update(fields)
            if first.kind is WriteKind.UPSERT:
                method, path = "PATCH", f"composite/sobjects/{first.sobject}/{first.key_field}"
            elif first.kind is WriteKind.INSERT:
                method, path = "POST", "composite/sobjects"
            else:
                method, path = "PATCH", "composite/sobjects"
            response = await client.request(
                method,
                client.data_path(path),
                json={"allOrNone": False, "records": records},
                what=what,
            )
    except FatalError:
        raise
    except SyncError as error:
        return whole_call(error, len(rows))
    return _results(orjson.loads(response.content), len(rows), what)
