"""The CometD transport (Streaming API, Bayeux long-polling): the fallback to the Pub/Sub API.

Some networks let HTTPS out but not gRPC (HTTP/2 on port 7443), and some orgs or tools still
live on CometD. :class:`CometdFeed` follows one change event channel over ``/cometd/<version>``
with the replay extension, through the same :class:`~.client.SalesforceClient` (so the same
login flows, renewal on an expired session, ``Sforce-Call-Options`` and cookies), and hands the
streaming source the same kinds of items the Pub/Sub client does.

CometD delivers change events as JSON (reference section 5.3): the header's ``changedFields`` are
field names (components dotted: ``BillingAddress.City``), fields set to null are absent from the
payload, compound fields are nested, datetimes end in ``Z``. :func:`decode_json_event` turns one
into the same :class:`~sfsync.core.events.ChangeEvent` values the Avro path gives.

Replay ids are integers; a position stores them as ``cometd:<id>`` so that a replay id of one
transport is never handed to the other (switching transports joins the stream again).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from sfsync.connectors.salesforce.cdc import Gap, events_of, flat_name, operation_of
from sfsync.connectors.salesforce.client import SalesforceClient
from sfsync.connectors.salesforce.pubsub import Keepalive, ReplayExpiredError, SessionExpiredError
from sfsync.core.errors import FatalError, RetryableError
from sfsync.core.events import ChangeEvent, Operation, Position

TOKEN_PREFIX = "cometd:"
NEW_EVENTS = -1  # CometD's "only events after the subscription" (Pub/Sub's LATEST)


@dataclass(frozen=True, slots=True)
class JsonReceived:
    """One event off a CometD channel."""

    replay_id: int
    payload: Mapping[str, Any]

    @property
    def token(self) -> str:
        return f"{TOKEN_PREFIX}{self.replay_id}"


def replay_of(token: str | None) -> int | None:
    """The CometD replay id in a position token, or ``None`` (no token, or another transport's)."""
    if not token or not token.startswith(TOKEN_PREFIX):
        return None
    return int(token.removeprefix(TOKEN_PREFIX))


class CometdFeed:
    """Follows change event channels over CometD with ``client``'s session.

    Args:
        client: an opened Salesforce client.
    """

    def __init__(self, client: SalesforceClient) -> None:
        self.client = client
        self.path = f"/cometd/{client.api_version}"

    async def _send(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        response = await self.client.request(
            "POST", self.path, json=messages, what=f"CometD {messages[0]['channel']}"
        )
        answer = orjson.loads(response.content)
        if not isinstance(answer, list):
            raise RetryableError(f"CometD answered {answer!r}", code="COMETD_PROTOCOL")
        return [m for m in answer if isinstance(m, dict)]

    async def _handshake(self) -> str:
        replies = await self._send(
            [
                {
                    "channel": "/meta/handshake",
                    "version": "1.0",
                    "minimumVersion": "1.0",
                    "supportedConnectionTypes": ["long-polling"],
                    "ext": {"replay": True},
                }
            ]
        )
        reply = _meta(replies, "/meta/handshake")
        if not reply.get("successful"):
            raise _error(reply, "handshake")
        return str(reply["clientId"])

    async def _subscribe(self, client_id: str, channel: str, replay: int) -> None:
        replies = await self._send(
            [
                {
                    "channel": "/meta/subscribe",
                    "clientId": client_id,
                    "subscription": channel,
                    "ext": {"replay": {channel: replay}},
                }
            ]
        )
        reply = _meta(replies, "/meta/subscribe")
        if not reply.get("successful"):
            raise _error(reply, f"subscribe {channel}")

    async def subscribe(
        self, channel: str, replay: int | None
    ) -> AsyncIterator[JsonReceived | Keepalive]:
        """Events of ``channel`` after ``replay`` (``None``: new events only), and a keepalive
        after every long poll that brought none. Ends only by error or by the caller."""
        cursor = NEW_EVENTS if replay is None else replay
        client_id = await self._handshake()
        await self._subscribe(client_id, channel, cursor)
        while True:
            replies = await self._send(
                [
                    {
                        "channel": "/meta/connect",
                        "clientId": client_id,
                        "connectionType": "long-polling",
                    }
                ]
            )
            delivered = False
            for message in replies:
                if message.get("channel") == channel and isinstance(message.get("data"), dict):
                    data = message["data"]
                    cursor = int(data["event"]["replayId"])
                    delivered = True
                    yield JsonReceived(cursor, data["payload"])
            reply = _meta(replies, "/meta/connect")
            if not reply.get("successful"):
                if str(reply.get("error", "")).startswith("403::"):
                    # The server forgot us (we were away too long): handshake again and carry
                    # on after the last event received.
                    client_id = await self._handshake()
                    await self._subscribe(client_id, channel, cursor)
                    continue
                raise _error(reply, "connect")
            if not delivered:
                yield Keepalive(b"")


def _meta(replies: list[dict[str, Any]], channel: str) -> dict[str, Any]:
    for reply in replies:
        if reply.get("channel") == channel:
            return reply
    raise RetryableError(f"CometD sent no {channel} reply", code="COMETD_PROTOCOL")


def _error(reply: Mapping[str, Any], what: str) -> Exception:
    error = str(reply.get("error") or "")
    ext = reply.get("ext")
    if isinstance(ext, Mapping) and isinstance(ext.get("sfdc"), Mapping):
        error = str(ext["sfdc"].get("failureReason") or error)
    text = f"CometD {what} failed: {error or reply}"
    if error.startswith("401::"):
        return SessionExpiredError(text, code="COMETD_401")
    if error.startswith("400::") and "replayId" in error:
        return ReplayExpiredError(
            text,
            code="COMETD_REPLAY",
            hint="sfsync resynchronises the affected objects and resumes from new events",
        )
    if error.startswith("403::") or error.startswith("400::"):
        return FatalError(
            text,
            code=error.partition("::")[0] or "COMETD",
            hint="check that Change Data Capture is enabled for the object and the user may "
            "read it (and has the Streaming API permission)",
        )
    return RetryableError(text, code="COMETD")


def _flat(payload: Mapping[str, Any], kinds: Mapping[str, str]) -> dict[str, object]:
    """The payload's fields under the object's own names, values in REST form."""
    out: dict[str, object] = {}
    for name, value in payload.items():
        if name == "ChangeEventHeader":
            continue
        if isinstance(value, Mapping):
            for child, inner in value.items():
                flat = flat_name(name, str(child))
                out[flat] = _rest_value(kinds.get(flat, ""), inner)
        else:
            out[name] = _rest_value(kinds.get(name, ""), value)
    return out


def _rest_value(kind: str, value: object) -> object:
    # CometD writes datetimes as 2019-09-25T20:36:23.000Z; REST (and the Avro path) +0000.
    if kind == "datetime" and isinstance(value, str) and value.endswith("Z"):
        return value[:-1] + "+0000"
    return value


def _changed(names: object) -> list[str]:
    out: list[str] = []
    for name in names if isinstance(names, list) else ():
        parent, dot, child = str(name).partition(".")
        out.append(flat_name(parent, child) if dot else parent)
    return out


def decode_json_event(
    payload: Mapping[str, Any],
    position: Position,
    *,
    wanted: frozenset[str],
    kinds: Mapping[str, str],
) -> list[ChangeEvent] | Gap:
    """The change events of one CometD change event payload (see :func:`.cdc.decode_event`,
    whose results these equal): one per record id, narrowed to ``wanted``.

    Raises:
        ValueError: the payload is not a change event.
    """
    header = payload.get("ChangeEventHeader")
    if not isinstance(header, Mapping):
        raise ValueError("the event has no ChangeEventHeader")
    entity = str(header.get("entityName") or "")
    op = operation_of(header, position, entity)
    if isinstance(op, Gap):
        return op
    values = _flat(payload, kinds)
    changed = [n for n in _changed(header.get("changedFields")) if n in wanted]
    after: dict[str, object] | None
    if op is Operation.CREATE:
        after = {k: v for k, v in values.items() if k in wanted}
    elif op is Operation.UPDATE:
        # A field set to null is named as changed and absent from the payload.
        after = {name: values.get(name) for name in changed}
    elif op is Operation.UNDELETE:
        after = {}
    else:
        after = None
    return events_of(
        header, op, after, frozenset(changed), position, entity=entity, with_id="Id" in wanted
    )
