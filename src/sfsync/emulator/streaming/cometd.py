"""CometD (Bayeux long-polling) at ``/cometd/<version>``, as Salesforce runs it (section 5.3).

``POST /cometd/59.0`` (or ``/cometd/59.0/<anything>``: many clients append the message type)
with a JSON array of messages and ``Authorization: Bearer|OAuth <token>``. Supported:

* ``/meta/handshake`` -> ``clientId``, ``supportedConnectionTypes: ["long-polling"]`` and
  ``ext: {"replay": true, "payload.format": true}``; sets the ``BAYEUX_BROWSER`` cookie (the
  emulator does not insist on getting it back);
* ``/meta/connect`` -> held open until an event arrives on a subscribed channel (the events come
  first in the same response) or the timeout (110 s; advice ``timeout: 110000``) passes; the
  first reply carries advice ``{"interval": 0, "timeout": 110000, "reconnect": "retry"}``;
* ``/meta/subscribe`` with ``ext.replay = {channel: id}``: ``-1`` new events only (also the
  default), ``-2`` every retained event, or a retained id to start after it; an expired or
  unknown id answers ``400::The replayId {id} you provided was invalid.  Please provide a valid
  ID, -2 to replay all events, or -1 to replay only new events.``;
* ``/meta/unsubscribe``, ``/meta/disconnect``.

Clients are forgotten when they do not come back within 40 s (org clock) of their last
response, or on disconnect; then ``/meta/connect`` and ``/meta/subscribe`` answer
``403::Unknown client`` with advice ``{"reconnect": "handshake", "interval": 0}`` and the client
must handshake and subscribe again. A bad token answers ``401::Authentication invalid`` with
advice ``reconnect: none`` (the handshake variant: ``403::Handshake denied`` with
``ext.sfdc.failureReason``). Errors are Bayeux messages in a 200 response; only a missing or
unsupported version in the URI (400) and an oversized body (413) are HTTP errors.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import threading
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from sfsync.emulator.auth import request_token
from sfsync.emulator.errors import ApiError
from sfsync.emulator.org import MAX_API_VERSION, Org
from sfsync.emulator.streaming.bus import BusEvent
from sfsync.emulator.streaming.cometd_render import data_message
from sfsync.emulator.streaming.service import Streaming, attach

MIN_COMETD_VERSION = 37
MAX_BODY_BYTES = 32_768
ADVICE_TIMEOUT_MS = 110_000
LONG_POLLING = "long-polling"

Message = dict[str, Any]


@dataclass(slots=True)
class CometdClient:
    """One handshaken client: its subscriptions (channel -> cursor replay id)."""

    client_id: str
    last_seen: float
    subscriptions: dict[str, int] = field(default_factory=dict)
    connected: bool = False
    polling: int = 0


class CometdSessions:
    """The org's CometD clients (thread-safe; times are on the org clock)."""

    def __init__(self, hub: Streaming) -> None:
        self.hub = hub
        self._lock = threading.Lock()
        self._clients: dict[str, CometdClient] = {}

    def create(self) -> CometdClient:
        client = CometdClient(secrets.token_hex(14)[:27], self.hub.org.clock.time())
        with self._lock:
            self._clients[client.client_id] = client
        return client

    def get(self, client_id: object) -> CometdClient | None:
        """The live client ``client_id``; drops it if it stayed away too long."""
        if not isinstance(client_id, str):
            return None
        now = self.hub.org.clock.time()
        with self._lock:
            client = self._clients.get(client_id)
            if client is None:
                return None
            idle = now - client.last_seen
            if client.polling == 0 and idle > self.hub.settings.reconnect_window:
                del self._clients[client_id]
                return None
            return client

    def alive(self, client_id: str) -> bool:
        with self._lock:
            return client_id in self._clients

    def clear(self) -> None:
        """Forget every client (their held polls return at once)."""
        with self._lock:
            self._clients.clear()
        self.hub.bus.wake_all()

    def drop(self, client_id: str) -> None:
        """Forget one client (``/meta/disconnect``); a poll it still holds returns at once."""
        with self._lock:
            self._clients.pop(client_id, None)
        self.hub.bus.wake_all()

    def touch(self, client: CometdClient) -> None:
        client.last_seen = self.hub.org.clock.time()


_SESSIONS: weakref.WeakKeyDictionary[Streaming, CometdSessions] = weakref.WeakKeyDictionary()
_SESSIONS_LOCK = threading.Lock()


def sessions_of(org: Org) -> CometdSessions:
    """The CometD clients of ``org`` (one table per org)."""
    hub = attach(org)
    with _SESSIONS_LOCK:
        sessions = _SESSIONS.get(hub)
        if sessions is None:
            sessions = _SESSIONS[hub] = CometdSessions(hub)
            hub.on_reset(sessions.clear)
        return sessions


# ----------------------------------------------------------------------------- replies


def _reply(message: Message, **extra: Any) -> Message:
    out: Message = {"channel": message.get("channel")}
    if "id" in message:
        out["id"] = message["id"]
    if "clientId" in message:
        out["clientId"] = message["clientId"]
    out.update(extra)
    return out


def _failure(message: Message, error: str, **extra: Any) -> Message:
    return _reply(message, successful=False, error=error, **extra)


def _unknown_client(message: Message) -> Message:
    return _failure(
        message, "403::Unknown client", advice={"reconnect": "handshake", "interval": 0}
    )


def _auth_invalid(message: Message) -> Message:
    if message.get("channel") == "/meta/handshake":
        return _failure(
            message,
            "403::Handshake denied",
            ext={"sfdc": {"failureReason": "401::Authentication invalid"}, "replay": True},
            advice={"reconnect": "none"},
        )
    return _failure(
        message, "401::Authentication invalid", advice={"reconnect": "none", "interval": 0}
    )


def invalid_replay(replay_id: object) -> str:
    return (
        f"400::The replayId {{{replay_id}}} you provided was invalid.  Please provide a valid "
        "ID, -2 to replay all events, or -1 to replay only new events."
    )


# ----------------------------------------------------------------------------- protocol


class CometdProtocol:
    """Handles one request's messages against the org's sessions."""

    def __init__(self, sessions: CometdSessions) -> None:
        self.sessions = sessions
        self.hub = sessions.hub

    def handshake(self, message: Message) -> Message:
        types = message.get("supportedConnectionTypes")
        if isinstance(types, list) and LONG_POLLING not in types:
            return _failure(
                message, f"400::Invalid connection type {{{','.join(map(str, types))}}}"
            )
        client = self.sessions.create()
        return {
            "ext": {"replay": True, "payload.format": True},
            "minimumVersion": "1.0",
            "clientId": client.client_id,
            "supportedConnectionTypes": [LONG_POLLING],
            "channel": "/meta/handshake",
            **({"id": message["id"]} if "id" in message else {}),
            "version": "1.0",
            "successful": True,
        }

    def subscribe(self, client: CometdClient, message: Message) -> Message:
        channel = message.get("subscription")
        if not isinstance(channel, str) or not channel:
            return _failure(message, "400::Channel name not specified")
        if not channel.startswith("/"):
            return _failure(message, "400::Channel subscriptions must start with a leading '/'")
        if self.hub.topic(channel) is None:
            return _failure(
                message,
                f"400::The channel you requested to subscribe to doesn't exist {{{channel}}}",
                subscription=channel,
            )
        ext = message.get("ext")
        replay_map = ext.get("replay") if isinstance(ext, Mapping) else None
        replay: object = -1
        if isinstance(replay_map, Mapping) and replay_map:
            if channel not in replay_map:
                shown = ", ".join(f"{k}={v}" for k, v in replay_map.items())
                return _failure(
                    message,
                    f"400::The replayId for channel {{{channel}}} wasn't found using the "
                    f"provided replay ID map {{{shown}}}. Ensure that the channel name you "
                    "provided in the replay map is valid and matches the channel name used "
                    "for subscribing.",
                    subscription=channel,
                )
            replay = replay_map[channel]
        bus = self.hub.bus
        if replay == -1 or replay is None:
            cursor = bus.latest_id
        elif replay == -2:
            cursor = bus.earliest_cursor()
        elif (
            isinstance(replay, int) and not isinstance(replay, bool) and bus.is_valid_cursor(replay)
        ):
            cursor = replay
        else:
            return _failure(message, invalid_replay(replay), subscription=channel)
        client.subscriptions[channel] = cursor
        return _reply(message, subscription=channel, successful=True)

    def unsubscribe(self, client: CometdClient, message: Message) -> Message:
        channel = message.get("subscription")
        if isinstance(channel, str):
            client.subscriptions.pop(channel, None)
        return _reply(message, subscription=channel, successful=True)

    def pending(self, client: CometdClient) -> list[Message]:
        """Deliverable events for ``client`` (advancing its cursors)."""
        out: list[Message] = []
        for channel, cursor in list(client.subscriptions.items()):
            events: list[BusEvent] = self.hub.bus.events_after(cursor, channel)
            for event in events:
                rendered = data_message(self.hub.org.schema, channel, event)
                if rendered is not None:
                    out.append(rendered)
            if events:
                client.subscriptions[channel] = events[-1].replay_id
        return out

    async def connect(self, client: CometdClient, message: Message) -> list[Message]:
        """Hold the poll until events exist or the timeout passes; events first, then the reply."""
        kind = message.get("connectionType")
        if kind is not None and kind != LONG_POLLING:
            return [_failure(message, f"400::Invalid connection type {{{kind}}}")]
        first = not client.connected
        client.connected = True
        extra: Message = {}
        if first:
            extra["advice"] = {"interval": 0, "timeout": ADVICE_TIMEOUT_MS, "reconnect": "retry"}
        delivered = self.pending(client)
        if not delivered and not first:
            delivered = await self._wait(client)
        return [*delivered, _reply(message, successful=True, **extra)]

    async def _wait(self, client: CometdClient) -> list[Message]:
        loop = asyncio.get_running_loop()
        wake = asyncio.Event()

        def wake_up() -> None:
            # Called on the publishing thread; the loop may have closed since (shutdown).
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(wake.set)

        stop = self.hub.bus.watch(wake_up)
        client.polling += 1
        try:
            deadline = loop.time() + self.hub.settings.connect_timeout
            while True:
                delivered = self.pending(client)
                remaining = deadline - loop.time()
                if delivered or remaining <= 0 or not self.sessions.alive(client.client_id):
                    return delivered
                try:
                    await asyncio.wait_for(wake.wait(), remaining)
                except TimeoutError:
                    continue
                wake.clear()
        finally:
            client.polling -= 1
            stop()


async def _handle(protocol: CometdProtocol, messages: list[object]) -> list[Message]:
    out: list[Message] = []
    for message in messages:
        if not isinstance(message, dict):
            continue
        channel = message.get("channel")
        if channel == "/meta/handshake":
            out.append(protocol.handshake(message))
            continue
        client = protocol.sessions.get(message.get("clientId"))
        if channel in ("/meta/connect", "/meta/subscribe", "/meta/unsubscribe") and client is None:
            out.append(_unknown_client(message))
            continue
        if channel == "/meta/disconnect":
            if client is not None:
                protocol.sessions.drop(client.client_id)
            out.append(_reply(message, successful=True))
        elif channel == "/meta/subscribe" and client is not None:
            out.append(protocol.subscribe(client, message))
        elif channel == "/meta/unsubscribe" and client is not None:
            out.append(protocol.unsubscribe(client, message))
        elif channel == "/meta/connect" and client is not None:
            out.extend(await protocol.connect(client, message))
        else:
            out.append(_failure(message, "403::Publish not allowed"))
        if client is not None:
            protocol.sessions.touch(client)
    return out


def _version_error(version: str | None) -> Response | None:
    if not version:
        return PlainTextResponse(
            "API version in the URI is mandatory. URI format: '/cometd/59.0'", 400
        )
    major, dot, minor = version.partition(".")
    if not (major.isdigit() and dot and minor.isdigit()):
        return PlainTextResponse(
            "API version in the URI is mandatory. URI format: '/cometd/59.0'", 400
        )
    if not MIN_COMETD_VERSION <= int(major) <= MAX_API_VERSION:
        return PlainTextResponse(f"Unsupported API version: {version}", 400)
    return None


async def cometd_endpoint(request: Request) -> Response:
    """``POST /cometd/{version}[/{message type}]``: one Bayeux exchange."""
    bad = _version_error(request.path_params.get("version"))
    if bad is not None:
        return bad
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        return PlainTextResponse("Maximum Request Size Exceeded", 413)
    try:
        parsed = orjson.loads(raw) if raw.strip() else []
    except orjson.JSONDecodeError:
        return PlainTextResponse("Invalid JSON body", 400)
    messages: list[object] = parsed if isinstance(parsed, list) else [parsed]
    org: Org = request.app.state.org
    try:
        org.auth.resolve(request_token(dict(request.headers)))
    except ApiError:
        body = [_auth_invalid(m) for m in messages if isinstance(m, dict)]
        return Response(orjson.dumps(body), 200, media_type="application/json")
    protocol = CometdProtocol(sessions_of(org))
    replies = await _handle(protocol, messages)
    response = Response(orjson.dumps(replies), 200, media_type="application/json")
    if any(m.get("channel") == "/meta/handshake" and m.get("successful") for m in replies):
        response.set_cookie("BAYEUX_BROWSER", secrets.token_hex(8), path="/", secure=False)
    return response
