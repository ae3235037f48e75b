"""The emulator's own admin API under ``/__emulator__/`` (a path no Salesforce resource uses).

Tests and demos drive the org through it instead of sleeping or restarting:

=======  ===============================  ==================================================
GET      ``/__emulator__/faults``         the fault plan (``{"seed", "rules"}``) + ``injected``
PUT      ``/__emulator__/faults``         replace it (body: the plan document), 200 + plan
DELETE   ``/__emulator__/faults``         remove every rule, 204
GET      ``/__emulator__/clock``          ``{"now", "epoch", "frozen"}``
POST     ``/__emulator__/clock/advance``  body ``{"seconds": N}``; answers like GET clock
POST     ``/__emulator__/clock/freeze``   optional body ``{"at": ISO-8601}``; answers clock
POST     ``/__emulator__/clock/unfreeze`` let the clock run again; answers clock
POST     ``/__emulator__/reset``          forget API usage, faults and sessions, 204
GET      ``/__emulator__/stats``          requests served, API usage, sessions, faults
=======  ===============================  ==================================================

Errors are ``400 {"error": "<reason>"}``. The admin API needs no session and is never
metered or faulted.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, cast

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from sfsync.emulator.clock import format_datetime
from sfsync.emulator.faults import parse_plan
from sfsync.emulator.http import json_response

if TYPE_CHECKING:
    from sfsync.emulator.org import Org

ADMIN_PREFIX = "/__emulator__/"


def _org(request: Request) -> Org:
    return cast("Org", request.app.state.org)


def _bad(reason: str) -> Response:
    return json_response({"error": reason}, 400)


async def _json_body(request: Request) -> object:
    raw = await request.body()
    if not raw.strip():
        return {}
    return orjson.loads(raw)


async def get_faults(request: Request) -> Response:
    faults = _org(request).faults
    return json_response({**faults.to_dict(), "injected": faults.stats()})


async def put_faults(request: Request) -> Response:
    try:
        body = await _json_body(request)
        if not isinstance(body, dict):
            raise ValueError("the fault plan must be a JSON object")
        seed, rules = parse_plan(body)
    except (ValueError, orjson.JSONDecodeError) as err:
        return _bad(str(err))
    faults = _org(request).faults
    faults.replace(rules, seed=seed)
    return json_response(faults.to_dict())


async def delete_faults(request: Request) -> Response:
    _org(request).faults.clear()
    return Response(status_code=204)


def _clock_state(request: Request) -> Response:
    clock = _org(request).clock
    return json_response(
        {"now": format_datetime(clock.now()), "epoch": clock.time(), "frozen": clock.frozen}
    )


async def get_clock(request: Request) -> Response:
    return _clock_state(request)


async def advance_clock(request: Request) -> Response:
    try:
        body = await _json_body(request)
        seconds = body.get("seconds") if isinstance(body, dict) else None
        if isinstance(seconds, bool) or not isinstance(seconds, int | float):
            raise ValueError('body must be {"seconds": <number>}')
    except (ValueError, orjson.JSONDecodeError) as err:
        return _bad(str(err))
    _org(request).clock.advance(float(seconds))
    return _clock_state(request)


async def freeze_clock(request: Request) -> Response:
    try:
        body = await _json_body(request)
        at = body.get("at") if isinstance(body, dict) else None
        moment = None
        if at is not None:
            moment = dt.datetime.fromisoformat(str(at).replace("Z", "+00:00"))
            if moment.tzinfo is None:
                raise ValueError("'at' needs a UTC offset")
    except (ValueError, orjson.JSONDecodeError) as err:
        return _bad(str(err))
    _org(request).clock.freeze(moment)
    return _clock_state(request)


async def unfreeze_clock(request: Request) -> Response:
    _org(request).clock.unfreeze()
    return _clock_state(request)


async def reset(request: Request) -> Response:
    _org(request).reset()
    return Response(status_code=204)


async def stats(request: Request) -> Response:
    org = _org(request)
    return json_response(
        {
            "requests": org.request_count,
            "api_usage": {"used": org.limits.used(), "max": org.limits.daily_max},
            "sessions": org.auth.session_count(),
            "faults_injected": org.faults.stats(),
        }
    )


def admin_routes() -> list[BaseRoute]:
    p = ADMIN_PREFIX
    return [
        Route(f"{p}faults", get_faults, methods=["GET"]),
        Route(f"{p}faults", put_faults, methods=["PUT"]),
        Route(f"{p}faults", delete_faults, methods=["DELETE"]),
        Route(f"{p}clock", get_clock, methods=["GET"]),
        Route(f"{p}clock/advance", advance_clock, methods=["POST"]),
        Route(f"{p}clock/freeze", freeze_clock, methods=["POST"]),
        Route(f"{p}clock/unfreeze", unfreeze_clock, methods=["POST"]),
        Route(f"{p}reset", reset, methods=["POST"]),
        Route(f"{p}stats", stats, methods=["GET"]),
    ]
