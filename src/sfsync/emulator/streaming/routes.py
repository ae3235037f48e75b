"""The streaming side's HTTP routes: CometD and the streaming admin endpoint.

``build_app`` mounts :func:`streaming_routes` (which also attaches the org's
:class:`~sfsync.emulator.streaming.service.Streaming`, so change events flow from then on).

Admin (no session, never metered, like the rest of ``/__emulator__/``):

=======  ==============================  ===================================================
GET      ``/__emulator__/streaming``     knobs and state: ``latest_replay_id``,
                                         ``retention_hours``, ``overflow_threshold``,
                                         ``cdc_entities`` (``null`` = all), ``gaps_pending``,
                                         ``keepalive_seconds``, ``connect_timeout``,
                                         ``reconnect_window``
PUT      ``/__emulator__/streaming``     change any of those knobs; ``{"gaps": n}`` makes the
                                         next *n* record changes surface as ``GAP_*`` events;
                                         answers like GET
=======  ==============================  ===================================================

Errors are ``400 {"error": "<reason>"}``.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from sfsync.emulator.http import json_response
from sfsync.emulator.org import Org
from sfsync.emulator.streaming.cometd import cometd_endpoint
from sfsync.emulator.streaming.service import Streaming, attach

_NUMBERS = ("keepalive_seconds", "connect_timeout", "reconnect_window", "retention_hours")


def _state(hub: Streaming) -> dict[str, Any]:
    entities = hub.cdc.settings.entities
    return {
        "latest_replay_id": hub.bus.latest_id,
        "retention_hours": hub.bus.retention_seconds / 3600,
        "overflow_threshold": hub.cdc.settings.overflow_threshold,
        "cdc_entities": sorted(entities) if entities is not None else None,
        "gaps_pending": hub.cdc.gaps_pending,
        "keepalive_seconds": hub.settings.keepalive_seconds,
        "connect_timeout": hub.settings.connect_timeout,
        "reconnect_window": hub.settings.reconnect_window,
    }


def _bad(reason: str) -> Response:
    return json_response({"error": reason}, 400)


def _apply(hub: Streaming, body: dict[str, Any]) -> str | None:
    """Validate everything first, then apply (all or nothing); returns an error or None."""
    unknown = set(body) - {*_NUMBERS, "gaps", "overflow_threshold", "cdc_entities"}
    if unknown:
        return f"unknown keys: {', '.join(sorted(unknown))}"
    for key in _NUMBERS:
        value = body.get(key)
        if key in body and (
            not isinstance(value, int | float) or isinstance(value, bool) or value <= 0
        ):
            return f"'{key}' must be a positive number"
    for key in ("gaps", "overflow_threshold"):
        value = body.get(key)
        if key in body and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            return f"'{key}' must be a whole number >= 0"
    entities = body.get("cdc_entities")
    if entities is not None:
        if not isinstance(entities, list) or not all(isinstance(e, str) for e in entities):
            return "'cdc_entities' must be a list of object names or null"
        missing = [e for e in entities if hub.org.schema.object(e) is None]
        if missing:
            return f"unknown objects: {', '.join(missing)}"
    if "cdc_entities" in body:
        hub.cdc.settings.entities = frozenset(entities) if entities is not None else None
    if "overflow_threshold" in body:
        hub.cdc.settings.overflow_threshold = int(body["overflow_threshold"])
    if "gaps" in body:
        hub.cdc.inject_gaps(int(body["gaps"]))
    if "retention_hours" in body:
        hub.bus.retention_seconds = float(body["retention_hours"]) * 3600
    for key in ("keepalive_seconds", "connect_timeout", "reconnect_window"):
        if key in body:
            setattr(hub.settings, key, float(body[key]))
    return None


async def streaming_admin(request: Request) -> Response:
    """``GET|PUT /__emulator__/streaming`` (see module docstring)."""
    hub = attach(request.app.state.org)
    if request.method == "PUT":
        raw = await request.body()
        try:
            body = orjson.loads(raw) if raw.strip() else {}
        except orjson.JSONDecodeError:
            return _bad("body is not JSON")
        if not isinstance(body, dict):
            return _bad("body must be a JSON object")
        error = _apply(hub, body)
        if error is not None:
            return _bad(error)
    return json_response(_state(hub))


def streaming_routes(org: Org) -> list[BaseRoute]:
    """CometD and the streaming admin endpoint; attaches the org's streaming hub."""
    attach(org)
    return [
        Route("/cometd", cometd_endpoint, methods=["POST"]),
        Route("/cometd/", cometd_endpoint, methods=["POST"]),
        Route("/cometd/{version}", cometd_endpoint, methods=["POST"]),
        Route("/cometd/{version}/{rest:path}", cometd_endpoint, methods=["POST"]),
        Route("/__emulator__/streaming", streaming_admin, methods=["GET", "PUT"]),
    ]
