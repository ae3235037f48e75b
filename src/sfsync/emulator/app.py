"""The emulator's ASGI application: routing plus the governance every request goes through.

:func:`build_app` wires, from the outside in:

1. :class:`~sfsync.emulator.http.HeaderCasingMiddleware`: header names in Salesforce's casing;
2. gzip, when the client sends ``Accept-Encoding: gzip`` (Salesforce compresses);
3. :class:`GovernanceMiddleware`: faults, API-version checks, session resolution and the daily
   API allocation, in that order (see its docstring);
4. the routes: the REST data resources (``rest_routes()``, when that package is present), the
   OAuth endpoints and identity URL, SOAP ``login()``, the admin API under ``/__emulator__/``,
   and the version list as a fallback;
5. error rendering: :class:`~sfsync.emulator.errors.ApiError` from any resource becomes
   Salesforce's error array; unknown paths under ``/services/`` answer 404 ``NOT_FOUND`` and
   a wrong method 405 ``METHOD_NOT_ALLOWED`` in Salesforce's wording.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import cast

import anyio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sfsync.emulator.admin import ADMIN_PREFIX, admin_routes
from sfsync.emulator.auth import oauth_routes, request_token
from sfsync.emulator.errors import ApiError
from sfsync.emulator.faults import FaultKind, fault_error
from sfsync.emulator.http import (
    ABORT_EXTENSION,
    HeaderCasingMiddleware,
    error_response,
    json_response,
)
from sfsync.emulator.org import Org, api_versions, version_status
from sfsync.emulator.soap import soap_routes
from sfsync.emulator.streaming.routes import streaming_routes
from sfsync.emulator.streaming.service import attach


class ConnectionDroppedError(ConnectionError):
    """Raised in-process (no socket to close) where a ``drop`` fault would close the socket."""


_METERED = re.compile(r"^/services/(?:data/v(?P<rest>[^/]+)|async/(?P<bulk>[^/]+)|apexrest)(?:/|$)")
"""Paths that are API calls: they need a session and count against the daily allocation."""


def not_found() -> ApiError:
    return ApiError.of(404, "NOT_FOUND", "The requested resource does not exist")


def retired_version() -> ApiError:
    # Salesforce answers 410 with errorCode GONE (restforce #941); the message is UNCONFIRMED.
    return ApiError.of(410, "GONE", "The requested resource is no longer available.")


class GovernanceMiddleware:
    """Per request: faults, version check, session, API allocation; adds ``Sforce-Limit-Info``.

    * ``/__emulator__/...`` (admin) passes straight through: no faults, no auth, no metering.
    * Faults (:mod:`sfsync.emulator.faults`) apply to every other path, before anything else,
      as an overloaded or failing server would answer before looking at the request.
    * API paths (``/services/data/vXX.X/...``, ``/services/async/XX.X/...``,
      ``/services/apexrest/...``): the version must be served (404, or 410 for retired ones),
      the token must resolve (401 ``INVALID_SESSION_ID``), too many concurrent long-running
      calls refuse it (403 ``REQUEST_LIMIT_EXCEEDED``, see
      :class:`~sfsync.emulator.limits.LongRunningGate`), then one call is counted (403
      ``REQUEST_LIMIT_EXCEEDED`` when spent). The session goes to ``request.state.session``
      and its user to ``request.state.user``.
    * Everything else (OAuth, SOAP login, identity, version list) is neither authenticated
      here nor metered, as on Salesforce.
    """

    def __init__(self, app: ASGIApp, org: Org) -> None:
        self.app = app
        self.org = org

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(ADMIN_PREFIX):
            await self.app(scope, receive, send)
            return
        org = self.org
        org.count_request()
        path: str = scope["path"]
        decision = org.faults.decide(scope["method"], path)
        if decision.kind is FaultKind.CDC_GAP:
            # Not an error: the request is served, and its change becomes a GAP event.
            attach(org).cdc.inject_gaps(1)
            decision = replace(decision, kind=None)
        lost = decision.kind is FaultKind.LOST_RESPONSE
        if lost:  # served and committed; the answer is lost below
            decision = replace(decision, kind=None)
        if decision.row_faults is not None:  # read by the handlers that write records
            scope.setdefault("state", {})["row_faults"] = decision.row_faults
        if decision.kind is not None and decision.delay > 0:
            await anyio.sleep(decision.delay)
        if decision.kind is FaultKind.DROP:
            await _drop(scope, receive)
            return
        if decision.kind is not None:
            if decision.kind is FaultKind.INVALID_SESSION:
                # A real expiry: the token stays dead, so the client has to log in again.
                token = request_token(_headers(scope))
                if token:
                    org.auth.revoke(token)
            await error_response(fault_error(decision.kind, path))(scope, receive, send)
            return

        metered = _METERED.match(path)
        if metered is None:
            if decision.delay > 0:
                await anyio.sleep(decision.delay)
            await _serve(self.app, scope, receive, send, lost=lost)
            return
        version = metered.group("rest") or metered.group("bulk")
        if version is not None:
            status = version_status(version)
            if status != 200:
                err = retired_version() if status == 410 else not_found()
                await error_response(err)(scope, receive, send)
                return
        headers = _headers(scope)
        try:
            session = org.auth.resolve(request_token(headers))
            ticket = org.long_running.enter()
            try:
                used = org.limits.consume(1)
            except ApiError:
                org.long_running.leave(ticket)
                raise
        except ApiError as err:
            if err.status == 401 and metered.group("bulk") is not None:
                response = bulk_invalid_session(headers)
            else:
                extra = (
                    {"Sforce-Limit-Info": org.limits.header_value()} if err.status == 403 else {}
                )
                response = error_response(err, extra)
            await response(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        state["session"] = session
        state["user"] = session.user
        limit_info = f"api-usage={used}/{org.limits.daily_max}".encode("latin-1")

        async def send_with_usage(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v)
                    for k, v in message.get("headers", ())
                    if k.lower() != b"sforce-limit-info"
                ]
                headers.append((b"Sforce-Limit-Info", limit_info))
                message = {**message, "headers": headers}
            await send(message)

        try:
            # Added latency on an admitted call is processing time: it holds its place in the
            # concurrent long-running limit, as a slow call on Salesforce does.
            if decision.delay > 0:
                await anyio.sleep(decision.delay)
            await _serve(self.app, scope, receive, send_with_usage, lost=lost)
        finally:
            org.long_running.leave(ticket)


def _headers(scope: Scope) -> dict[str, str]:
    """Request headers by lower-cased name (ASGI already lower-cases them)."""
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}


_BULK_NS = "http://www.force.com/2009/06/asyncapi/dataload"


def bulk_invalid_session(headers: Mapping[str, str]) -> Response:
    """Bulk API 1.0's own envelope for a bad session: 400 ``InvalidSessionId``.

    JSON when the client speaks JSON (``Content-Type``/``Accept``), XML otherwise (section
    4.6; the status 400 and the message text are UNCONFIRMED, taken from client logs).
    """
    wants_json = "json" in headers.get("content-type", "") + headers.get("accept", "")
    code, message = "InvalidSessionId", "Invalid session id"
    if wants_json:
        return json_response({"exceptionCode": code, "exceptionMessage": message}, 400)
    body = (
        f'<?xml version="1.0" encoding="UTF-8"?><error xmlns="{_BULK_NS}">'
        f"<exceptionCode>{code}</exceptionCode><exceptionMessage>{message}</exceptionMessage>"
        "</error>"
    )
    return Response(body, 400, media_type="application/xml")


async def _serve(app: ASGIApp, scope: Scope, receive: Receive, send: Send, *, lost: bool) -> None:
    """Serve the request; with ``lost``, throw the response away and drop the connection."""
    if not lost:
        await app(scope, receive, send)
        return

    async def discard(message: Message) -> None:
        return None

    await app(scope, receive, discard)
    await _drop(scope, receive)


async def _drop(scope: Scope, receive: Receive) -> None:
    """Close the client's connection without answering (server: abort; in-process: raise)."""
    abort = scope.get("extensions", {}).get(ABORT_EXTENSION)
    if abort is None:
        raise ConnectionDroppedError("fault plan dropped the connection")
    cast(Callable[[], None], abort)()
    # Wait until the server has noticed, so it does not try to answer on our behalf.
    while (await receive())["type"] != "http.disconnect":
        pass


async def _api_error(request: Request, exc: Exception) -> Response:
    return error_response(cast(ApiError, exc))


_METHOD_ORDER = ("HEAD", "GET", "POST", "PATCH", "PUT", "DELETE")


async def _http_error(request: Request, exc: Exception) -> Response:
    err = cast(HTTPException, exc)
    under_services = request.url.path.startswith("/services/")
    if err.status_code == 404 and under_services:
        return error_response(not_found())
    if err.status_code == 405 and under_services:
        allowed = {m.strip().upper() for m in (err.headers or {}).get("Allow", "").split(",")}
        ordered = [m for m in _METHOD_ORDER if m in allowed]
        message = f"HTTP Method '{request.method}' not allowed. Allowed are {','.join(ordered)}"
        return error_response(
            ApiError.of(405, "METHOD_NOT_ALLOWED", message), {"Allow": ", ".join(ordered)}
        )
    return PlainTextResponse(str(err.detail), err.status_code, headers=err.headers)


async def _version_list(request: Request) -> Response:
    return json_response(api_versions())


def _rest_routes() -> list[BaseRoute]:
    """The REST data resources, if that package is installed in this tree yet."""
    try:
        module = importlib.import_module("sfsync.emulator.rest")
    except ImportError:
        return []
    factory = getattr(module, "rest_routes", None)
    if factory is None:
        return []
    return cast(list[BaseRoute], factory())


class EmulatorApp(Starlette):
    """Starlette with header re-casing and gzip *outside* its error middleware, so that even
    Starlette's own 500 page goes out in Salesforce's casing."""

    def build_middleware_stack(self) -> ASGIApp:
        # Level 1: most clients (sfsync's own, simple-salesforce) ask for gzip, and Starlette's
        # default level 9 made paging through a large query about seven times slower for a
        # few percent smaller pages.
        return HeaderCasingMiddleware(
            GZipMiddleware(super().build_middleware_stack(), compresslevel=1)
        )


def build_app(org: Org) -> Starlette:
    """The ASGI app serving ``org`` (stored at ``app.state.org``)."""
    routes: list[BaseRoute] = [
        *importlib.import_module("sfsync.emulator.bulk").bulk_routes(),
        *_rest_routes(),
        *oauth_routes(),
        *soap_routes(),
        *admin_routes(),
        *streaming_routes(org),
        Route("/services/data", _version_list, methods=["GET"]),
        Route("/services/data/", _version_list, methods=["GET"]),
    ]
    app = EmulatorApp(
        routes=routes,
        middleware=[Middleware(GovernanceMiddleware, org=org)],
        exception_handlers={ApiError: _api_error, HTTPException: _http_error},
    )
    app.state.org = org
    return app
