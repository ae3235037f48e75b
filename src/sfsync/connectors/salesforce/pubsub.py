"""The Pub/Sub API client (gRPC): topics, schemas and flow-controlled subscriptions.

It speaks Salesforce's public ``eventbus.v1.PubSub`` service (the repo's ``.proto``, generated
into :mod:`.pubsub_proto`), so it works against a real org (``api.pubsub.salesforce.com:7443``)
and against the emulator (``--grpc-port``) alike. Every call carries the ``accesstoken``,
``instanceurl`` and ``tenantid`` metadata from the current session.

Flow control: a subscription asks for ``batch`` events at a time and asks for more once the
server reports that fewer than half are still pending, so the server never buffers more than
one batch for us and a slow sink slows the stream instead of filling memory.

Errors are classified once, here: an expired session is a :class:`SessionExpiredError`
(log in again and resubscribe); a replay id the org no longer keeps is a
:class:`ReplayExpiredError` (resynchronise, then subscribe from LATEST); an unreachable or
overloaded service is a :class:`~sfsync.core.errors.RetryableError`; an unknown topic or a
refused permission is a :class:`~sfsync.core.errors.FatalError` with a hint.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from sfsync.connectors.salesforce.pubsub_proto import pubsub_api_pb2 as pb
from sfsync.connectors.salesforce.pubsub_proto import pubsub_api_pb2_grpc as pb_grpc
from sfsync.core.errors import FatalError, RetryableError, SyncError

ERROR_PREFIX = "sfdc.platform.eventbus.grpc."
MAX_BATCH = 100  # the server clamps outstanding credits to this


class SessionExpiredError(RetryableError):
    """The access token was refused: log in again, then resubscribe."""


class ReplayExpiredError(SyncError):
    """The stored replay id is older than the org keeps events (or unknown to it): changes may
    have been missed; resynchronise from the last committed state, then subscribe from LATEST."""


class Replay(enum.Enum):
    LATEST = pb.LATEST
    EARLIEST = pb.EARLIEST
    CUSTOM = pb.CUSTOM


@dataclass(frozen=True, slots=True)
class Credentials:
    """What every call sends: the session and the org (tenant) id."""

    access_token: str
    instance_url: str
    tenant_id: str


@dataclass(frozen=True, slots=True)
class Received:
    """One event off a subscription."""

    replay_id: bytes
    schema_id: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class Keepalive:
    """No events for a while; ``latest_replay_id`` is where the stream stands (store it)."""

    latest_replay_id: bytes


def _error_code(error: grpc.aio.AioRpcError) -> str:
    for key, value in error.trailing_metadata() or ():
        if key == "error-code":
            return str(value).removeprefix(ERROR_PREFIX)
    return ""


def classify_rpc_error(error: grpc.aio.AioRpcError, *, what: str) -> SyncError:
    """The engine error for a failed Pub/Sub call."""
    code = _error_code(error)
    status = error.code()
    text = f"{what} failed: {status.name}: {error.details()}"
    if status is grpc.StatusCode.UNAUTHENTICATED or code.startswith("service.auth"):
        return SessionExpiredError(text, code=code or status.name)
    if "replayid" in code or "replay.repeated" in code:
        return ReplayExpiredError(
            text,
            code=code,
            hint="sfsync resynchronises the affected objects and resumes from LATEST",
        )
    if status in (
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.CANCELLED,
    ):
        return RetryableError(text, code=code or status.name)
    if status is grpc.StatusCode.NOT_FOUND or "topic.not.found" in code:
        return FatalError(
            text,
            code=code or status.name,
            hint="enable Change Data Capture for the object (Setup > Change Data Capture) and "
            "check the topic name (/data/AccountChangeEvent, /data/Custom__ChangeEvent)",
        )
    if status is grpc.StatusCode.PERMISSION_DENIED:
        return FatalError(
            text,
            code=code or status.name,
            hint="give the integration user the 'View All Data' or object read permission",
        )
    return FatalError(text, code=code or status.name, hint="see the message; report if unexpected")


class PubSubClient:
    """A client of one org's Pub/Sub API.

    Args:
        target: ``host:port`` of the service (``api.pubsub.salesforce.com:7443``).
        credentials: called before every call, so that a renewed session is used at once.
        tls: use TLS (always for Salesforce); ``ca_file`` to trust a private CA (the emulator).
    """

    def __init__(
        self,
        target: str,
        credentials: Callable[[], Credentials],
        *,
        tls: bool = True,
        ca_file: str | None = None,
    ) -> None:
        self.target = target
        self._credentials = credentials
        if tls:
            roots = Path(ca_file).read_bytes() if ca_file else None
            self._channel = grpc.aio.secure_channel(
                target, grpc.ssl_channel_credentials(root_certificates=roots)
            )
        else:
            self._channel = grpc.aio.insecure_channel(target)
        # The generated stub is untyped; calls are checked through the messages instead.
        self._stub: Any = pb_grpc.PubSubStub(self._channel)  # type: ignore[no-untyped-call]
        self._schemas: dict[str, str] = {}

    def _metadata(self) -> tuple[tuple[str, str], ...]:
        c = self._credentials()
        return (
            ("accesstoken", c.access_token),
            ("instanceurl", c.instance_url),
            ("tenantid", c.tenant_id),
        )

    async def aclose(self) -> None:
        await self._channel.close()

    async def topic(self, name: str) -> Any:
        """``GetTopic``: the topic's schema id and whether we may subscribe."""
        try:
            return await self._stub.GetTopic(
                pb.TopicRequest(topic_name=name), metadata=self._metadata()
            )
        except grpc.aio.AioRpcError as exc:
            raise classify_rpc_error(exc, what=f"GetTopic {name}") from exc

    async def schema(self, schema_id: str) -> str:
        """``GetSchema``: the Avro schema JSON (cached by id: schemas never change)."""
        cached = self._schemas.get(schema_id)
        if cached is not None:
            return cached
        try:
            info = await self._stub.GetSchema(
                pb.SchemaRequest(schema_id=schema_id), metadata=self._metadata()
            )
        except grpc.aio.AioRpcError as exc:
            raise classify_rpc_error(exc, what=f"GetSchema {schema_id}") from exc
        self._schemas[schema_id] = str(info.schema_json)
        return self._schemas[schema_id]

    async def subscribe(
        self,
        topic: str,
        *,
        replay: Replay = Replay.LATEST,
        replay_id: bytes | None = None,
        batch: int = MAX_BATCH,
    ) -> AsyncIterator[Received | Keepalive]:
        """Events of ``topic`` in replay order, and keepalives while it is quiet.

        ``replay`` CUSTOM starts *after* ``replay_id``. The iterator ends only by error or by
        the caller closing it.
        """
        responses = self.subscribe_batches(topic, replay=replay, replay_id=replay_id, batch=batch)
        try:
            async for item in responses:
                if isinstance(item, Keepalive):
                    yield item
                else:
                    for event in item:
                        yield event
        finally:
            await responses.aclose()

    async def subscribe_batches(
        self,
        topic: str,
        *,
        replay: Replay = Replay.LATEST,
        replay_id: bytes | None = None,
        batch: int = MAX_BATCH,
    ) -> AsyncGenerator[list[Received] | Keepalive, None]:
        """:meth:`subscribe`, the events of each response of the server together (a busy
        channel's responses hold tens): a consumer pays its per-item costs per response."""
        if replay is Replay.CUSTOM and not replay_id:
            raise ValueError("a CUSTOM replay needs the replay id to start after")
        batch = max(1, min(batch, MAX_BATCH))
        requests: Any = _RequestQueue()
        first = pb.FetchRequest(topic_name=topic, replay_preset=replay.value, num_requested=batch)
        if replay is Replay.CUSTOM and replay_id:
            first.replay_id = replay_id
        requests.put(first)
        call = self._stub.Subscribe(requests, metadata=self._metadata())
        try:
            async for response in call:
                if response.events:
                    yield [
                        Received(
                            replay_id=bytes(event.replay_id),
                            schema_id=str(event.event.schema_id),
                            payload=bytes(event.event.payload),
                        )
                        for event in response.events
                    ]
                else:
                    yield Keepalive(bytes(response.latest_replay_id))
                if response.pending_num_requested < batch // 2 + 1:
                    requests.put(
                        pb.FetchRequest(num_requested=batch - response.pending_num_requested)
                    )
        except grpc.aio.AioRpcError as exc:
            raise classify_rpc_error(exc, what=f"Subscribe {topic}") from exc
        finally:
            requests.close()
            call.cancel()


class _RequestQueue:
    """The request stream of a subscription: an async iterator fed by the reader."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[Any] = asyncio.Queue()

    def put(self, request: Any) -> None:
        self._queue.put_nowait(request)

    def close(self) -> None:
        self._queue.put_nowait(None)

    def __aiter__(self) -> _RequestQueue:
        return self

    async def __anext__(self) -> Any:
        item = await self._queue.get()
        if item is None:
            raise StopAsyncIteration
        return item
