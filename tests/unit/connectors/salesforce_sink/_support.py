"""Shared helpers for the Salesforce sink tests: an emulator org with the sink test schema,
clients on it, events, and two faults injected at the HTTP transport seam.

The emulator's fault plan fails whole requests before they reach the org. Two failures a real
org produces are not in it, so these transports add them around the real emulator:

* :class:`RowLockTransport`: Collections writes where some records fail alone with
  ``UNABLE_TO_LOCK_ROW`` (a parent locked by another transaction). Those records are taken out
  of the request before it reaches the org (they really are not written) and their failures
  spliced into the answer at their positions.
* :class:`LostResponseTransport`: the org receives and commits a request, then the
  connection drops before the answer arrives (the emulator's ``drop`` fault drops *before*
  processing, so a retry there can never duplicate anything).
"""

from __future__ import annotations

import csv
import io
import random
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

from sfsync.connectors.salesforce.auth import StaticSession
from sfsync.connectors.salesforce.client import SalesforceClient
from sfsync.core.events import ChangeEvent, Operation, Position
from sfsync.emulator.clock import OrgClock
from sfsync.emulator.org import Org
from sfsync.testing import FakeClock

TOKEN = "00D000000000001!sfsync-sink-test"
SCHEMA = Path(__file__).with_name("schema.yaml")
START = datetime(2026, 3, 1, tzinfo=UTC)
BASE_URL = "http://emulator.test"


def make_org(**kwargs: Any) -> Org:
    """An org with the sink test schema on a frozen clock."""
    return Org.create(
        access_token=TOKEN, schema_path=SCHEMA, clock=OrgClock(frozen_at=START), **kwargs
    )


def make_client(
    transport: httpx.AsyncBaseTransport, *, url: str = BASE_URL, clock: FakeClock | None = None
) -> SalesforceClient:
    return SalesforceClient(
        grant=StaticSession(access_token=TOKEN, instance_url=url),
        clock=clock or FakeClock(START),
        transport=transport,
    )


_counter = iter(range(1, 10**9))


def event(
    entity: str,
    key: str,
    op: Operation = Operation.CREATE,
    after: dict[str, object] | None = None,
    *,
    partial: bool = False,
    before: dict[str, object] | None = None,
) -> ChangeEvent:
    """One change event; DELETEs carry no ``after``."""
    return ChangeEvent(
        entity=entity,
        key=key,
        op=op,
        after=None if op is Operation.DELETE else (after or {}),
        before=before,
        position=Position("test", str(next(_counter))),
        committed_at=START,
        partial=partial,
    )


def live(org: Org, sobject: str) -> list[dict[str, Any]]:
    """Live records of ``sobject`` in the org."""
    return [dict(r) for r in org.store.scan(sobject, include_deleted=False)]


def _is_collection_write(request: httpx.Request) -> bool:
    return request.method in ("POST", "PATCH") and "/composite/sobjects" in request.url.path


class RowLockTransport(httpx.AsyncBaseTransport):
    """Fails a seeded share of the records of Collections writes with ``UNABLE_TO_LOCK_ROW``."""

    def __init__(self, inner: httpx.AsyncBaseTransport, *, rate: float, seed: int = 1) -> None:
        self.inner = inner
        self.rate = rate
        self.random = random.Random(seed)
        self.locked = 0
        self.calls = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if not _is_collection_write(request):
            return await self.inner.handle_async_request(request)
        self.calls += 1
        body = orjson.loads(await request.aread())
        records = body["records"]
        fails = [self.random.random() < self.rate for _ in records]
        kept = [r for r, f in zip(records, fails, strict=True) if not f]
        answers: list[Any] = []
        headers: dict[str, str] = {}
        if kept:
            forwarded = httpx.Request(
                request.method,
                request.url,
                headers={k: v for k, v in request.headers.items() if k.lower() != "content-length"},
                content=orjson.dumps({**body, "records": kept}),
            )
            response = await self.inner.handle_async_request(forwarded)
            content = await response.aread()
            if response.status_code != 200:
                return httpx.Response(
                    response.status_code, content=content, headers=response.headers
                )
            answers = orjson.loads(content)
            headers = {"Sforce-Limit-Info": response.headers.get("Sforce-Limit-Info", "")}
        merged: list[Any] = []
        kept_answers = iter(answers)
        for failed in fails:
            if failed:
                self.locked += 1
                merged.append(
                    {
                        "success": False,
                        "errors": [
                            {
                                "statusCode": "UNABLE_TO_LOCK_ROW",
                                "message": "unable to obtain exclusive access to this record "
                                "or 1 records: 001000000000000AAA",
                                "fields": [],
                            }
                        ],
                    }
                )
            else:
                merged.append(next(kept_answers))
        return httpx.Response(200, content=orjson.dumps(merged), headers=headers)


class LostResponseTransport(httpx.AsyncBaseTransport):
    """Lets the org process the requests ``lose`` picks, then drops their answers."""

    def __init__(
        self, inner: httpx.AsyncBaseTransport, lose: Callable[[httpx.Request], bool]
    ) -> None:
        self.inner = inner
        self.lose = lose
        self.lost = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        await response.aread()
        if self.lose(request):
            self.lost += 1
            raise httpx.ReadError("connection dropped after the org answered (test fault)")
        return response


def lose_first(method: str, path_part: str, times: int = 1) -> Callable[[httpx.Request], bool]:
    """A ``lose`` predicate: the first ``times`` requests with ``method`` and ``path_part``."""
    left = [times]

    def pick(request: httpx.Request) -> bool:
        if left[0] > 0 and request.method == method and path_part in request.url.path:
            left[0] -= 1
            return True
        return False

    return pick


class BulkRowLockTransport(httpx.AsyncBaseTransport):
    """Bulk ingest results where a seeded share of the rows failed with ``UNABLE_TO_LOCK_ROW``.

    The org really wrote those rows (upserts, so writing them again is harmless); the
    transport moves them from ``successfulResults`` to ``failedResults`` with the error a real
    org puts in ``sf__Error``, and raises the job's ``numberRecordsFailed`` to match.
    """

    def __init__(self, inner: httpx.AsyncBaseTransport, *, rate: float, seed: int = 1) -> None:
        self.inner = inner
        self.rate = rate
        self.random = random.Random(seed)
        self.locked: dict[str, list[list[str]]] = {}  # job id -> moved rows

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        path = request.url.path
        if request.method != "GET" or "/jobs/ingest/" not in path:
            return response
        content = await response.aread()
        job = path.split("/jobs/ingest/", 1)[1].split("/", 1)[0]
        if path.endswith("/successfulResults/"):
            lines = content.decode().splitlines()
            kept, moved = lines[:1], list[str]()
            for line in lines[1:]:
                (moved if self.random.random() < self.rate else kept).append(line)
            self.locked[job] = [next(csv.reader([m])) for m in moved]
            content = ("\n".join(kept) + "\n").encode()
        elif path.endswith("/failedResults/") and job in self.locked:
            rows = list(csv.reader(io.StringIO(content.decode())))
            header = rows[0] if rows else ["sf__Id", "sf__Error"]
            out = io.StringIO()
            writer = csv.writer(out, lineterminator="\n")
            writer.writerows([header, *rows[1:]])
            for moved in self.locked[job]:
                error = (
                    "UNABLE_TO_LOCK_ROW:unable to obtain exclusive access to this record or "
                    f"1 records: {moved[0]}:--"
                )
                writer.writerow([moved[0], error, *moved[2:]])
            content = out.getvalue().encode()
        elif path.rstrip("/").endswith(job) and response.status_code == 200:
            info = orjson.loads(content)
            if info.get("state") == "JobComplete":
                info["numberRecordsFailed"] = int(info.get("numberRecordsFailed") or 0) + max(
                    1, int(self.rate * int(info.get("numberRecordsProcessed") or 0))
                )
            content = orjson.dumps(info)
        headers = {
            k: v
            for k, v in response.headers.items()
            if k.lower() not in ("content-length", "content-encoding")
        }
        return httpx.Response(response.status_code, content=content, headers=headers)
