"""The bulk route table: ``bulk_routes()`` is what the app mounts (before the REST routes,
whose catch-all under ``/services/data/vXX.X/`` would otherwise answer 404 first).

Each Bulk 2.0 path answers with and without a trailing slash (simple-salesforce asks for
``successfulResults/``); Bulk 1.0 lives under ``/services/async/XX.X/``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

# Imported for its side effect: registers the ``{version:sfapiversion}`` path convertor.
from sfsync.emulator.bulk import ingest_routes as ingest
from sfsync.emulator.bulk import query_routes as query
from sfsync.emulator.bulk.v1_routes import v1_routes
from sfsync.emulator.rest import versions as _versions  # noqa: F401
from sfsync.emulator.rest.common import ALL_METHODS, by_method

Endpoint = Callable[[Request], Awaitable[Response]]
V2_ROOT = "/services/data/{version:sfapiversion}/jobs"


def _both(path: str, handlers: dict[str, Endpoint]) -> list[BaseRoute]:
    endpoint = by_method(handlers)
    return [
        Route(V2_ROOT + path, endpoint, methods=ALL_METHODS),
        Route(V2_ROOT + path + "/", endpoint, methods=ALL_METHODS),
    ]


def bulk_routes() -> list[BaseRoute]:
    """Bulk API 2.0 ingest and query, and Bulk API 1.0."""
    return [
        *_both("/ingest", {"GET": ingest.list_jobs, "POST": ingest.create_job}),
        *_both(
            "/ingest/{job_id}",
            {"GET": ingest.get_job, "PATCH": ingest.patch_job, "DELETE": ingest.delete_job},
        ),
        *_both("/ingest/{job_id}/batches", {"PUT": ingest.upload}),
        *_both(
            "/ingest/{job_id}/successfulResults",
            {"GET": ingest.results("successfulResults")},
        ),
        *_both("/ingest/{job_id}/failedResults", {"GET": ingest.results("failedResults")}),
        *_both(
            "/ingest/{job_id}/unprocessedrecords",
            {"GET": ingest.results("unprocessedrecords")},
        ),
        *_both("/query", {"GET": query.list_jobs, "POST": query.create_job}),
        *_both(
            "/query/{job_id}",
            {"GET": query.get_job, "PATCH": query.patch_job, "DELETE": query.delete_job},
        ),
        *_both("/query/{job_id}/results", {"GET": query.results}),
        *_both("/query/{job_id}/resultPages", {"GET": query.result_pages}),
        *v1_routes(),
    ]
