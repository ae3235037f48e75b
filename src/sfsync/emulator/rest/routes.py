"""The REST data API's route table: ``rest_routes()`` is what the app mounts at the root.

Everything lives under ``/services/data/vXX.X/`` for each supported version (45.0..66.0,
see :mod:`~sfsync.emulator.rest.versions`); other versions do not match here and are left to
the app. Each path is registered with and without its trailing slash, because clients use both
(simple-salesforce always adds one) and a redirect would break POST/PATCH bodies. Unknown paths
under a valid version answer 404 NOT_FOUND and a wrong method 405 METHOD_NOT_ALLOWED, both in
Salesforce's JSON shape.
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Mount, Route, Router

from sfsync.emulator.rest import replication
from sfsync.emulator.rest.collections import CollectionsResource
from sfsync.emulator.rest.common import ALL_METHODS, Endpoint, by_method
from sfsync.emulator.rest.composite import CompositeResource
from sfsync.emulator.rest.cursors import DEFAULT_MAX_LIVE
from sfsync.emulator.rest.describe import DescribeResource
from sfsync.emulator.rest.dispatch import Dispatcher, not_found_app
from sfsync.emulator.rest.limits_resource import limits
from sfsync.emulator.rest.query import QueryResource
from sfsync.emulator.rest.records import RecordResource
from sfsync.emulator.rest.seams import QueryCompiler
from sfsync.emulator.rest.tree import create_tree
from sfsync.emulator.rest.versions import list_resources, list_versions

VERSION_ROOT = "/services/data/{version:sfapiversion}"


def _both(path: str, handlers: dict[str, Endpoint]) -> list[BaseRoute]:
    endpoint = by_method(handlers)
    return [
        Route(path, endpoint, methods=ALL_METHODS),
        Route(path + "/", endpoint, methods=ALL_METHODS),
    ]


def rest_routes(
    *, compile_query: QueryCompiler | None = None, max_live_cursors: int = DEFAULT_MAX_LIVE
) -> list[BaseRoute]:
    """The REST data API routes, holding their own query locators.

    Args:
        compile_query: the SOQL compiler; defaults to ``sfsync.emulator.soql.compile_query``
            (tests pass a small fake).
        max_live_cursors: how many open query locators keep their record iterator (see
            :mod:`~sfsync.emulator.rest.cursors`).
    """
    describe = DescribeResource()
    records = RecordResource()
    query = QueryResource(compile_query, max_live_cursors=max_live_cursors)
    collections = CollectionsResource()
    dispatcher = Dispatcher()
    composite = CompositeResource(dispatcher)

    versioned: list[BaseRoute] = [
        *_both("/sobjects", {"GET": describe.global_describe}),
        *_both("/sobjects/{sobject}", {"GET": describe.basic_info, "POST": records.create}),
        *_both("/sobjects/{sobject}/describe", {"GET": describe.describe}),
        *_both("/sobjects/{sobject}/updated", {"GET": replication.updated}),
        *_both("/sobjects/{sobject}/deleted", {"GET": replication.deleted}),
        *_both(
            "/sobjects/{sobject}/{record_id}",
            {
                "GET": records.retrieve,
                "PATCH": records.update,
                "DELETE": records.delete,
                "POST": records.post_on_record,
            },
        ),
        Route(
            "/sobjects/{sobject}/{field}/{value:path}",
            by_method(
                {
                    "GET": records.get_by_external_id,
                    "PATCH": records.upsert,
                    "DELETE": records.delete_by_external_id,
                }
            ),
            methods=ALL_METHODS,
        ),
        *_both("/query", {"GET": query.query}),
        Route("/query/{locator}", by_method({"GET": query.more}), methods=ALL_METHODS),
        *_both("/queryAll", {"GET": query.query_all}),
        Route("/queryAll/{locator}", by_method({"GET": query.more}), methods=ALL_METHODS),
        *_both("/composite", {"POST": composite.composite}),
        *_both("/composite/batch", {"POST": composite.batch}),
        *_both("/composite/tree/{sobject}", {"POST": create_tree}),
        *_both(
            "/composite/sobjects",
            {"POST": collections.create, "PATCH": collections.update, "DELETE": collections.delete},
        ),
        *_both(
            "/composite/sobjects/{sobject}",
            {"GET": collections.retrieve, "POST": collections.retrieve},
        ),
        *_both("/composite/sobjects/{sobject}/{field}", {"PATCH": collections.upsert}),
        *_both("/limits", {"GET": limits}),
    ]
    routes: list[BaseRoute] = [
        *_both("/services/data", {"GET": list_versions}),
        *_both(VERSION_ROOT, {"GET": list_resources}),
        Mount(
            VERSION_ROOT,
            app=Router(routes=versioned, redirect_slashes=False, default=not_found_app),
        ),
    ]
    dispatcher.bind(routes)
    return routes
