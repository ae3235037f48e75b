"""``GET /limits/``: the org's limits as ``{name: {"Max": n, "Remaining": n}}``.

The counting is the HTTP layer's (``org.limits``); this resource only renders its
``snapshot()`` (``{name: {"Max": n, "Remaining": n, ...}}``, every key of section 2.11).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from sfsync.emulator.rest.common import guarded, json_bytes_response, org_of


@guarded
async def limits(request: Request) -> Response:
    snapshot = org_of(request).limits.snapshot()
    return json_bytes_response(dict(snapshot))
