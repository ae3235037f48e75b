"""``GET /query?q=`` and ``GET /queryAll?q=`` with paging through ``nextRecordsUrl``.

Page one runs the SOQL (``compile_query(...).run(...)``) and renders up to ``batch_size``
records (2,000 by default; ``Sforce-Query-Options: batchSize=N`` asks for 200..2,000). If more
remain, the lazy record iterator is kept under a locator and the page carries
``nextRecordsUrl = /services/data/vXX.X/query/<locator>-<offset>``; ``totalSize`` is the full
count on every page. queryAll pages continue under ``/queryAll/<locator>-<offset>``
(UNCONFIRMED: real orgs have been seen answering both; ``/query/`` of a queryAll locator is
also accepted here, since the locator alone identifies the cursor).

``SELECT COUNT()`` answers ``{"totalSize": n, "done": true, "records": []}``. Aggregate
queries answer all their rows in one page (aggregates do not support query-more; UNCONFIRMED
what a real org does past 2,000 groups).
"""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response

from sfsync.emulator.errors import ApiError
from sfsync.emulator.rest.common import JSON_TYPE, guarded, org_of, version_of
from sfsync.emulator.rest.cursors import (
    DEFAULT_MAX_LIVE,
    LOCATOR_LIFETIME_SECONDS,
    Cursor,
    CursorRegistry,
    batch_size_from,
    invalid_locator,
    render_page,
)
from sfsync.emulator.rest.seams import QueryCompiler
from sfsync.emulator.soql import compile_query


def _page_response(body: bytes) -> Response:
    return Response(body, media_type=JSON_TYPE)


class QueryResource:
    """The query endpoints of one app; owns its locators."""

    def __init__(
        self, compiler: QueryCompiler | None = None, *, max_live_cursors: int = DEFAULT_MAX_LIVE
    ) -> None:
        # Default: the emulator's SOQL engine; tests inject a small fake here.
        self.compiler: QueryCompiler = compiler or compile_query
        self.cursors = CursorRegistry(max_live=max_live_cursors)

    @guarded
    async def query(self, request: Request) -> Response:
        return self._start(request, include_deleted=False, resource="query")

    @guarded
    async def query_all(self, request: Request) -> Response:
        return self._start(request, include_deleted=True, resource="queryAll")

    @guarded
    async def more(self, request: Request) -> Response:
        """``GET /query/<locator>-<offset>`` (and ``/queryAll/...``)."""
        org = org_of(request)
        locator, _, offset_text = request.path_params["locator"].rpartition("-")
        if not locator or not offset_text.isdigit():
            raise invalid_locator()
        cursor = self.cursors.get(locator, id(org), org.clock.time())
        body, done = cursor.page(int(offset_text))
        if done:
            self.cursors.finish(cursor)
        return _page_response(body)

    def _start(self, request: Request, *, include_deleted: bool, resource: str) -> Response:
        org = org_of(request)
        version = version_of(request)
        soql = request.query_params.get("q")
        if soql is None or not soql.strip():
            raise ApiError.of(400, "MALFORMED_QUERY", "A query string has to be specified")
        compiled = self.compiler(soql, org.schema)
        now = org.clock.now()
        result = compiled.run(
            org.store, now=now, include_deleted=include_deleted, api_version=version
        )
        if compiled.is_count_only:
            return _page_response(
                orjson.dumps({"totalSize": result.total_size, "done": True, "records": []})
            )
        if compiled.is_aggregate:
            rows = list(result.records)
            return _page_response(
                orjson.dumps({"totalSize": len(rows), "done": True, "records": rows})
            )
        cursor = Cursor(
            locator=self.cursors.new_locator(),
            owner=id(org),
            compiled=compiled,
            source=org.store,
            now=now,
            include_deleted=include_deleted,
            version=version,
            resource=resource,
            total_size=result.total_size,
            batch_size=batch_size_from(request.headers.get("sforce-query-options")),
            expires_at=org.clock.time() + LOCATOR_LIFETIME_SECONDS,
            records=result.records,
        )
        body, done = render_page(cursor, 0)
        if not done:
            cursor.last_page = (0, body)
            self.cursors.add(cursor, org.clock.time())
        return _page_response(body)
