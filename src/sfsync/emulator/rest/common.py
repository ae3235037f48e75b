"""Plumbing every REST resource shares: JSON in and out, errors, names, the org.

Responses are serialised with orjson (fast, and it keeps non-ASCII text as UTF-8 as Salesforce
does). Every endpoint is wrapped with :func:`guarded`, which renders an
:class:`~sfsync.emulator.errors.ApiError` raised anywhere below it as Salesforce's error array,
so that the resources behave the same whether they are called through the full app, directly
in a test, or as a composite subrequest.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, ParamSpec, cast

import orjson
from starlette.requests import Request
from starlette.responses import Response

from sfsync.emulator import http
from sfsync.emulator.errors import ApiError
from sfsync.emulator.rest.seams import Org
from sfsync.emulator.schema.model import ObjectDef
from sfsync.emulator.store import call_context

JSON_TYPE = http.JSON_CONTENT_TYPE

Endpoint = Callable[[Request], Awaitable[Response]]
P = ParamSpec("P")


def json_bytes_response(
    body: object, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """A JSON response rendered with orjson (the HTTP layer's :func:`http.json_response`)."""
    return http.json_response(body, status, headers)


def no_content(headers: Mapping[str, str] | None = None) -> Response:
    """204 with no body and no content type, as Salesforce answers PATCH and DELETE."""
    return http.json_response(None, 204, headers)


def error_response(error: ApiError) -> Response:
    """Render ``error`` as Salesforce does.

    A 300 (several records match an external id) carries the list of matching record URLs
    rather than an error array; the store reports them as the messages of its details.
    """
    if error.status == 300:
        return json_bytes_response([d.message for d in error.details], 300)
    return http.error_response(error)


def client_id_of(request: Request) -> str | None:
    """The ``client=`` value of ``Sforce-Call-Options`` (``client=Acme/1.0, defaultNamespace=x``).

    Writes are tagged with it so that Change Data Capture reports it as ``changeOrigin`` and a
    two-way sync can recognise, and drop, the echo of its own writes.
    """
    header = request.headers.get("sforce-call-options")
    if not header:
        return None
    for option in header.split(","):
        key, _, value = option.partition("=")
        if key.strip().lower() == "client" and value.strip():
            return value.strip()
    return None


def guarded(endpoint: Callable[P, Awaitable[Response]]) -> Callable[P, Awaitable[Response]]:
    """Wrap an endpoint (function or method taking the request last) so that ApiError becomes
    Salesforce's error response, and so that the store attributes the writes made inside it to
    the REST API and the caller's ``Sforce-Call-Options`` client."""

    @functools.wraps(endpoint)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> Response:
        request = args[-1]
        client = client_id_of(request) if isinstance(request, Request) else None
        version = request.path_params.get("version") if isinstance(request, Request) else None
        try:
            with call_context(api="rest", client_id=client, api_version=version):
                return await endpoint(*args, **kwargs)
        except ApiError as error:
            return error_response(error)

    return wrapper


def org_of(request: Request) -> Org:
    """The org this request is served by (``request.app.state.org``)."""
    return cast(Org, request.app.state.org)


def version_of(request: Request) -> str:
    """The API version in the URL, e.g. ``"59.0"``."""
    return cast(str, request.path_params["version"])


def major_version(version: str) -> int:
    return int(version.split(".", 1)[0])


def user_id_of(request: Request) -> str | None:
    """The id of the authenticated user, when the HTTP layer resolved one.

    The auth middleware stores the user on ``request.state.user``; anything without an id
    there (e.g. a test without auth) means "the store's integration user".
    """
    user = getattr(request.state, "user", None)
    for attr in ("user_id", "id"):
        value = getattr(user, attr, None)
        if isinstance(value, str):
            return value
    return None


def parse_json(raw: bytes) -> Any:
    """Decode a request body; malformed JSON is 400 JSON_PARSER_ERROR."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ApiError.of(
            400, "JSON_PARSER_ERROR", f"Unexpected character in request body: {exc.msg}"
        ) from exc


async def json_body(request: Request) -> Any:
    return parse_json(await request.body())


def json_object(value: object, what: str = "request body") -> dict[str, Any]:
    """``value`` as a JSON object, or 400 JSON_PARSER_ERROR."""
    if not isinstance(value, dict):
        raise ApiError.of(
            400, "JSON_PARSER_ERROR", f"Cannot deserialize instance of {what} from non-object value"
        )
    return value


def object_def(org: Org, name: str) -> ObjectDef:
    """The object called ``name`` in the URL, or 404 NOT_FOUND as Salesforce answers."""
    obj = org.schema.object(name)
    if obj is None:
        raise not_found()
    return obj


def not_found() -> ApiError:
    return ApiError.of(404, "NOT_FOUND", "The requested resource does not exist")


def invalid_type(name: str) -> ApiError:
    """400 INVALID_TYPE for an unknown sObject named in a request body."""
    return ApiError.of(
        400,
        "INVALID_TYPE",
        f"sObject type '{name}' is not supported. If you are attempting to use a custom object, "
        "be sure to append the '__c' after the entity name. Please reference your WSDL or the "
        "describe call for the appropriate names.",
    )


def method_not_allowed(method: str, allowed: str) -> ApiError:
    return ApiError.of(
        405, "METHOD_NOT_ALLOWED", f"HTTP Method '{method}' not allowed. Allowed are {allowed}"
    )


def record_url(version: str, object_name: str, record_id: str) -> str:
    return f"/services/data/v{version}/sobjects/{object_name}/{record_id}"


def strip_attributes(values: Mapping[str, Any]) -> dict[str, Any]:
    """A record body without its ``attributes`` entry (clients often echo it back)."""
    return {k: v for k, v in values.items() if k != "attributes"}


ALL_METHODS = ["GET", "HEAD", "POST", "PATCH", "PUT", "DELETE"]


def by_method(handlers: Mapping[str, Endpoint]) -> Endpoint:
    """One endpoint answering several methods; any other method is 405 METHOD_NOT_ALLOWED in
    Salesforce's wording (``Allowed are HEAD,GET,POST``). HEAD is answered by GET."""
    names = list(handlers)
    allowed = ",".join((["HEAD"] if "GET" in handlers else []) + names)

    async def endpoint(request: Request) -> Response:
        method = request.method
        handler = handlers.get("GET" if method == "HEAD" else method)
        if handler is None:
            return error_response(method_not_allowed(method, allowed))
        return await handler(request)

    return endpoint


def looks_like_id(value: str) -> bool:
    """15 or 18 alphanumeric characters: the shape of a record id."""
    return len(value) in (15, 18) and value.isascii() and value.isalnum()
