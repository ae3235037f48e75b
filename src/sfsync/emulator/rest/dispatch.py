"""Running composite subrequests through the REST routes themselves, in process.

A subrequest is turned into an ASGI scope (the parent's auth state, headers and app, the
subrequest's method, URL and body) and handed to a Router holding the same routes the app
serves, so a subrequest behaves exactly like the same call made on its own, but without
passing the app's middleware again (a composite call counts once against the API limit).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import orjson
from starlette.requests import Request
from starlette.routing import BaseRoute, Router
from starlette.types import Message, Receive, Scope, Send

from sfsync.emulator.rest.common import error_response, not_found

# Headers a subrequest inherits from the composite call that carries it.
_INHERITED = ("authorization", "sforce-call-options", "sforce-query-options", "x-sfdc-session")


@dataclass(frozen=True, slots=True)
class SubResponse:
    """What a subrequest answered: status, headers, decoded JSON body (``None`` if empty)."""

    status: int
    headers: dict[str, str]
    body: Any


async def not_found_app(scope: Scope, receive: Receive, send: Send) -> None:
    await error_response(not_found())(scope, receive, send)


class Dispatcher:
    """Dispatches subrequests to ``routes`` (set once the route list is complete)."""

    def __init__(self) -> None:
        self._router: Router | None = None

    def bind(self, routes: list[BaseRoute]) -> None:
        self._router = Router(routes=routes, redirect_slashes=False, default=not_found_app)

    async def call(
        self,
        parent: Request,
        method: str,
        url: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> SubResponse:
        if self._router is None:
            raise RuntimeError("Dispatcher.bind() was not called")
        path, _, query = url.partition("?")
        raw = b"" if body is None else orjson.dumps(body)
        header_list = [
            (name.encode("latin-1"), value.encode("latin-1"))
            for name in _INHERITED
            if (value := parent.headers.get(name)) is not None
        ]
        header_list.append((b"content-type", b"application/json"))
        header_list.append((b"content-length", str(len(raw)).encode()))
        for name, value in (headers or {}).items():
            header_list.append((name.lower().encode("latin-1"), str(value).encode("latin-1")))
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method.upper(),
            "scheme": parent.url.scheme,
            "path": unquote(path),
            "raw_path": path.encode("latin-1", "replace"),
            "query_string": query.encode("latin-1", "replace"),
            "root_path": "",
            "headers": header_list,
            "client": parent.scope.get("client"),
            "server": parent.scope.get("server"),
            "app": parent.scope.get("app"),
            "state": dict(parent.scope.get("state") or {}),
        }
        sent_body = False

        async def receive() -> Message:
            nonlocal sent_body
            if sent_body:
                return {"type": "http.disconnect"}
            sent_body = True
            return {"type": "http.request", "body": raw, "more_body": False}

        status = 500
        response_headers: dict[str, str] = {}
        chunks: list[bytes] = []

        async def send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                for name, value in message.get("headers", []):
                    response_headers[name.decode("latin-1").lower()] = value.decode("latin-1")
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self._router(scope, receive, send)
        data = b"".join(chunks)
        decoded = orjson.loads(data) if data else None
        return SubResponse(status, response_headers, decoded)
