"""Salesforce-style HTTP responses: JSON bodies, error arrays, header names in Salesforce's casing.

Starlette stores header names lower-cased, and uvicorn's httptools backend lower-cases them
again on the wire; h11 sends whatever names the application gives it. Some widely used
Salesforce clients read response headers case-sensitively (``Sforce-Locator``,
``Sforce-Limit-Info``...), so the emulator:

* runs uvicorn with the **h11** backend, pinned in :mod:`sfsync.emulator.server` (checked by a
  raw-socket test: h11 keeps the casing, httptools lower-cases every name), and
* wraps the whole application in :class:`HeaderCasingMiddleware`, which rewrites the name of
  every response header to Salesforce's casing (:data:`CANONICAL_HEADERS`, falling back to
  ``Title-Case`` for names not in the table).

:func:`json_response` and :func:`error_response` build the bodies; orjson does the encoding
because query pages of 2,000 records are the hot path.
"""

from __future__ import annotations

from collections.abc import Mapping
from email.utils import formatdate

import orjson
from starlette.background import BackgroundTask
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sfsync.emulator.errors import ApiError

ABORT_EXTENSION = "sfsync.abort"
"""ASGI scope extension (``scope["extensions"][ABORT_EXTENSION]``): a callable that closes the
client connection at once, without a response. Set by the emulator's server protocol; used by
the ``drop`` fault."""

JSON_CONTENT_TYPE = "application/json;charset=UTF-8"
"""What Salesforce sends as ``Content-Type`` on JSON responses."""

_CANONICAL_NAMES = (
    "Accept-Ranges",
    "Allow",
    "Cache-Control",
    "Connection",
    "Content-Disposition",
    "Content-Encoding",
    "Content-Length",
    "Content-Type",
    "Date",
    "ETag",
    "Expires",
    "Last-Modified",
    "Location",
    "Pragma",
    "Retry-After",
    "Server",
    "Set-Cookie",
    "Sforce-Limit-Info",
    "Sforce-Locator",
    "Sforce-NumberOfRecords",
    "Strict-Transport-Security",
    "Transfer-Encoding",
    "Vary",
    "WWW-Authenticate",
    "X-Content-Type-Options",
    "X-Frame-Options",
    "X-XSS-Protection",
)

CANONICAL_HEADERS: Mapping[bytes, bytes] = {
    name.lower().encode("latin-1"): name.encode("latin-1") for name in _CANONICAL_NAMES
}
"""Lower-cased header name -> the casing Salesforce sends."""


def canonical_header_name(name: bytes) -> bytes:
    """The Salesforce casing of header ``name`` (any casing in; table entry or Title-Case out)."""
    lowered = name.lower()
    known = CANONICAL_HEADERS.get(lowered)
    if known is not None:
        return known
    return b"-".join(part[:1].upper() + part[1:] for part in lowered.split(b"-"))


class HeaderCasingMiddleware:
    """ASGI middleware: re-case every response header name; add ``Date`` if none was set.

    It must be the outermost layer so that headers added by inner middleware (gzip's
    ``Content-Encoding``, error pages) are re-cased too. uvicorn runs with ``date_header`` off
    (its own ``date`` would go out lower-cased), so this layer supplies ``Date``.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_recased(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(canonical_header_name(k), v) for k, v in message.get("headers", ())]
                if not any(k == b"Date" for k, _ in headers):
                    headers.append((b"Date", formatdate(usegmt=True).encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_recased)


def _dumps(body: object) -> bytes:
    return orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS)


class JSONResponse(Response):
    """A JSON response encoded with orjson (``None`` body with 204/304 sends no body at all)."""

    media_type = JSON_CONTENT_TYPE

    def __init__(
        self,
        content: object,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        background: BackgroundTask | None = None,
    ) -> None:
        super().__init__(content, status_code, headers, JSON_CONTENT_TYPE, background)

    def render(self, content: object) -> bytes:
        if content is None and self.status_code in (204, 304):
            return b""
        return _dumps(content)

    def init_headers(self, headers: Mapping[str, str] | None = None) -> None:
        super().init_headers(headers)
        if self.status_code in (204, 304):
            # No body, so no Content-Type or Content-Length (as Salesforce answers a PATCH).
            self.raw_headers = [
                (k, v) for k, v in self.raw_headers if k not in (b"content-type", b"content-length")
            ]


def json_response(
    body: object, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """A Salesforce JSON response: ``Content-Type: application/json;charset=UTF-8``.

    ``body=None`` with status 204 (or 304) sends no body and no ``Content-Type``.
    """
    return JSONResponse(body, status, headers)


def error_response(err: ApiError, headers: Mapping[str, str] | None = None) -> Response:
    """The REST error array for ``err``: ``[{"message":..., "errorCode":..., "fields":[...]}]``.

    A 401 carries ``WWW-Authenticate: Token`` as observed in practice (UNCONFIRMED in docs).
    """
    merged = dict(headers or {})
    if err.status == 401:
        merged.setdefault("WWW-Authenticate", "Token")
    return JSONResponse(_error_body(err), err.status, merged)


def _error_body(err: ApiError) -> list[dict[str, object]]:
    # Salesforce omits "fields" on session and limit errors; keep it only where it says something.
    items: list[dict[str, object]] = []
    for detail in err.details:
        item: dict[str, object] = {"message": detail.message, "errorCode": detail.code}
        if detail.fields or detail.code not in _NO_FIELDS_CODES:
            item["fields"] = list(detail.fields)
        items.append(item)
    return items


_NO_FIELDS_CODES = frozenset(
    {"INVALID_SESSION_ID", "REQUEST_LIMIT_EXCEEDED", "NOT_FOUND", "METHOD_NOT_ALLOWED"}
)


def oauth_error_response(error: str, description: str, status: int = 400) -> Response:
    """An OAuth token-endpoint error: ``{"error": ..., "error_description": ...}``."""
    return JSONResponse({"error": error, "error_description": description}, status)


def xml_response(body: str, status: int = 200) -> Response:
    """A SOAP/XML response with Salesforce's ``text/xml;charset=UTF-8`` content type."""
    return Response(body.encode("utf-8"), status, media_type="text/xml;charset=UTF-8")
