"""The Pub/Sub API servicer (``eventbus.v1.PubSub``, reference section 6).

Every call authenticates from its metadata: ``accesstoken`` must resolve to a live session and
``tenantid`` (if sent) must be this org's id (15 or 18 characters); otherwise the call fails
``UNAUTHENTICATED`` with trailer ``error-code: sfdc.platform.eventbus.grpc.service.auth.error``.
Every error carries such an ``error-code`` trailer and ends its description with
``rpcId: <uuid>``. Status codes for a missing topic or schema (``NOT_FOUND``) are UNCONFIRMED.

* ``GetTopic``: ``can_publish`` only for platform events; ``schema_id`` of the topic's current
  schema (empty for the multiplexed ``/data/ChangeEvents``, whose events each carry theirs).
* ``GetSchema``: the Avro JSON of any schema id of this org.
* ``Subscribe``: the first ``FetchRequest`` names the topic and the replay start
  (``LATEST`` default, ``EARLIEST``, ``CUSTOM`` = after ``replay_id``); every request adds
  ``num_requested`` credits (at most 100 outstanding); events go out in replay order, never more
  than the outstanding credits (and no more than about 3 MB per response),
  ``pending_num_requested`` is what remains; while credits remain
  and nothing arrives, an empty ``FetchResponse`` with ``latest_replay_id`` is sent every
  ``keepalive_seconds`` (270 s). Errors: a later request naming another topic
  (``subscription.fetch.topic.mismatch``), ``num_requested <= 0``
  (``subscription.fetch.requested.events.invalid``), ``CUSTOM`` without id
  (``subscription.fetch.replayid.validation.failed``), an expired or garbage id
  (``subscription.fetch.replayid.corrupted``), all ``INVALID_ARGUMENT``.
* ``Publish`` / ``PublishStream``: platform events only; each event decodes with the topic's
  schema (its ``schema_id`` must be the current one) or gets a per-event ``Error``; results
  echo the event ``id`` as ``correlation_key``.
* ``ManagedSubscribe`` (beta) is not served (``UNIMPLEMENTED``).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any, NoReturn

import grpc

from sfsync.emulator.errors import ApiError
from sfsync.emulator.schema.model import ObjectDef, WireValue
from sfsync.emulator.streaming.avro import (
    change_event_schema,
    decode_platform_event,
    encode_change_event,
    encode_platform_event,
)
from sfsync.emulator.streaming.bus import BusEvent, replay_bytes, replay_from_bytes
from sfsync.emulator.streaming.events import ChangeEventBody
from sfsync.emulator.streaming.proto import pubsub_api_pb2 as pb
from sfsync.emulator.streaming.proto import pubsub_api_pb2_grpc as pb_grpc
from sfsync.emulator.streaming.service import Streaming, Topic

ERROR_PREFIX = "sfdc.platform.eventbus.grpc."
MAX_OUTSTANDING = 100
MAX_EVENT_BYTES = 1_048_576
MAX_RESPONSE_BYTES = 3 * 1_048_576
"""Events per FetchResponse stop here, under gRPC's default 4 MB message limit."""


class PubSubServicer(pb_grpc.PubSubServicer):
    """Serves one org's streaming hub over gRPC (see the module docstring)."""

    def __init__(self, hub: Streaming) -> None:
        self.hub = hub
        # Event ids: the org's namespace in the high 64 bits, the replay id in the low ones;
        # the same event always has the same id, and one UUID is built per event, not hashed.
        org = uuid.uuid5(uuid.NAMESPACE_OID, hub.org.org_id).int
        self._id_base = org & ~((1 << 64) - 1)

    def _event_id(self, replay_id: int) -> str:
        return str(uuid.UUID(int=self._id_base | (replay_id & ((1 << 64) - 1))))

    # ----------------------------------------------------------------------------- helpers

    async def _fail(
        self, context: Any, status: grpc.StatusCode, suffix: str, message: str, rpc_id: str
    ) -> NoReturn:
        context.set_trailing_metadata((("error-code", ERROR_PREFIX + suffix),))
        await context.abort(status, f"{message} rpcId: {rpc_id}")
        raise AssertionError("abort returned")  # pragma: no cover - abort always raises

    async def _auth(self, context: Any, rpc_id: str) -> str:
        """The caller's user id, from the call metadata."""
        metadata = {k.lower(): v for k, v in context.invocation_metadata() or ()}
        token = metadata.get("accesstoken")
        tenant = metadata.get("tenantid")
        org_id = self.hub.org.org_id
        if tenant is not None and str(tenant)[:15] != org_id[:15]:
            await self._fail(
                context,
                grpc.StatusCode.UNAUTHENTICATED,
                "service.auth.error",
                "The tenant id does not match the session's org.",
                rpc_id,
            )
        try:
            session = self.hub.org.auth.resolve(str(token) if token else None)
        except ApiError:
            await self._fail(
                context,
                grpc.StatusCode.UNAUTHENTICATED,
                "service.auth.error",
                "Session is invalid or expired.",
                rpc_id,
            )
        return str(session.user.user_id)

    async def _topic(self, context: Any, name: str, rpc_id: str, empty_code: str) -> Topic:
        if not name:
            await self._fail(
                context,
                grpc.StatusCode.INVALID_ARGUMENT,
                empty_code,
                "A topic name is required.",
                rpc_id,
            )
        topic = self.hub.topic(name)
        if topic is None:
            await self._fail(
                context,
                grpc.StatusCode.NOT_FOUND,
                "topic.not.found",
                f"Topic {name} not found.",
                rpc_id,
            )
        return topic

    def _consumer_event(self, event: BusEvent) -> pb.ConsumerEvent | None:
        body = event.body
        schema = self.hub.org.schema
        if isinstance(body, ChangeEventBody):
            obj = schema.object(body.header.entity_name)
            if obj is None:
                return None
            producer = pb.ProducerEvent(
                id=self._event_id(event.replay_id),
                schema_id=change_event_schema(obj).schema_id,
                payload=encode_change_event(obj, body),
            )
        else:
            obj = schema.object(body.event_type)
            if obj is None:
                return None
            producer = pb.ProducerEvent(
                id=body.event_uuid,
                schema_id=self.hub.schema_of(obj).schema_id,
                payload=encode_platform_event(obj, body),
            )
        return pb.ConsumerEvent(event=producer, replay_id=replay_bytes(event.replay_id))

    def _batch(self, events: list[BusEvent]) -> list[tuple[BusEvent, pb.ConsumerEvent | None]]:
        """The leading events that fit one FetchResponse (at least one): gRPC clients refuse
        messages over 4 MB, so large payloads are spread over several responses."""
        batch: list[tuple[BusEvent, pb.ConsumerEvent | None]] = []
        size = 0
        for event in events:
            rendered = self._consumer_event(event)
            weight = rendered.ByteSize() if rendered is not None else 0
            if batch and size + weight > MAX_RESPONSE_BYTES:
                break
            batch.append((event, rendered))
            size += weight
        return batch

    # ----------------------------------------------------------------------------- unary

    async def GetTopic(self, request: pb.TopicRequest, context: Any) -> pb.TopicInfo:  # noqa: N802
        rpc_id = str(uuid.uuid4())
        await self._auth(context, rpc_id)
        topic = await self._topic(context, request.topic_name, rpc_id, "topic.validation.empty")
        schema = self.hub.topic_schema(topic)
        return pb.TopicInfo(
            topic_name=topic.name,
            tenant_guid=self.hub.org.org_id,
            can_publish=topic.can_publish,
            can_subscribe=True,
            schema_id=schema.schema_id if schema is not None else "",
            rpc_id=rpc_id,
        )

    async def GetSchema(self, request: pb.SchemaRequest, context: Any) -> pb.SchemaInfo:  # noqa: N802
        rpc_id = str(uuid.uuid4())
        await self._auth(context, rpc_id)
        schema = self.hub.schema_by_id(request.schema_id)
        if schema is None:
            await self._fail(
                context,
                grpc.StatusCode.NOT_FOUND,
                "schema.validation.failed",
                f"Schema {request.schema_id} not found.",
                rpc_id,
            )
        return pb.SchemaInfo(schema_json=schema.json, schema_id=schema.schema_id, rpc_id=rpc_id)

    async def _publish(
        self, request: pb.PublishRequest, topic: Topic, user_id: str, rpc_id: str
    ) -> pb.PublishResponse:
        assert topic.obj is not None
        schema = self.hub.schema_of(topic.obj)
        results = []
        for event in request.events:
            key = event.id or str(uuid.uuid4())
            problem = None
            values = None
            if event.schema_id != schema.schema_id:
                problem = f"Schema id {event.schema_id} is not the topic's schema."
            elif len(event.payload) > MAX_EVENT_BYTES:
                problem = "The event exceeds the maximum size of 1 MB."
            else:
                try:
                    values = decode_platform_event(topic.obj, event.payload)
                except ValueError as exc:
                    problem = str(exc)
                else:
                    problem = _too_long(topic.obj, values)
                    if problem is not None:
                        values = None
            if values is None:
                results.append(
                    pb.PublishResult(
                        error=pb.Error(code=pb.PUBLISH, msg=problem or "publish failed"),
                        correlation_key=key,
                    )
                )
                continue
            published = self.hub.publish_event(topic.obj, values, user_id)
            results.append(
                pb.PublishResult(replay_id=replay_bytes(published.replay_id), correlation_key=key)
            )
        return pb.PublishResponse(results=results, schema_id=schema.schema_id, rpc_id=rpc_id)

    async def _publish_topic(self, context: Any, name: str, rpc_id: str) -> Topic:
        topic = await self._topic(context, name, rpc_id, "publish.topic.validation.empty")
        if not topic.can_publish:
            await self._fail(
                context,
                grpc.StatusCode.PERMISSION_DENIED,
                "topic.meta.permission",
                f"Publishing to {name} is not allowed.",
                rpc_id,
            )
        return topic

    async def Publish(self, request: pb.PublishRequest, context: Any) -> pb.PublishResponse:  # noqa: N802
        rpc_id = str(uuid.uuid4())
        user_id = await self._auth(context, rpc_id)
        topic = await self._publish_topic(context, request.topic_name, rpc_id)
        return await self._publish(request, topic, user_id, rpc_id)

    async def PublishStream(  # noqa: N802
        self, request_iterator: AsyncIterator[pb.PublishRequest], context: Any
    ) -> AsyncIterator[pb.PublishResponse]:
        rpc_id = str(uuid.uuid4())
        user_id = await self._auth(context, rpc_id)
        topic: Topic | None = None
        async for request in request_iterator:
            if topic is None:
                topic = await self._publish_topic(context, request.topic_name, rpc_id)
            elif request.topic_name and request.topic_name != topic.name:
                await self._fail(
                    context,
                    grpc.StatusCode.INVALID_ARGUMENT,
                    "publish.topic.mismatch",
                    "The topic name must not change within a stream.",
                    rpc_id,
                )
            yield await self._publish(request, topic, user_id, rpc_id)

    # ----------------------------------------------------------------------------- subscribe

    async def Subscribe(  # noqa: N802
        self, request_iterator: AsyncIterator[pb.FetchRequest], context: Any
    ) -> AsyncIterator[pb.FetchResponse]:
        rpc_id = str(uuid.uuid4())
        await self._auth(context, rpc_id)
        state = _FetchState()
        loop = asyncio.get_running_loop()

        def wake_up() -> None:
            with contextlib.suppress(RuntimeError):  # the loop may be closing
                loop.call_soon_threadsafe(state.wake.set)

        stop = self.hub.bus.watch(wake_up)
        reader = asyncio.create_task(self._read(request_iterator, state))
        try:
            async for response in self._deliver(state, rpc_id):
                yield response
            if state.failure is not None:
                status, suffix, message = state.failure
                await self._fail(context, status, suffix, message, rpc_id)
        finally:
            stop()
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader

    async def _read(self, requests: AsyncIterator[pb.FetchRequest], state: _FetchState) -> None:
        """Consume FetchRequests: topic and start on the first, credits on every one."""
        bus = self.hub.bus
        try:
            async for request in requests:
                if state.topic is None:
                    topic = self.hub.topic(request.topic_name) if request.topic_name else None
                    if topic is None:
                        state.fail(
                            grpc.StatusCode.NOT_FOUND,
                            "topic.not.found",
                            f"Topic {request.topic_name} not found.",
                        )
                        return
                    if request.replay_preset == pb.CUSTOM:
                        if not request.replay_id:
                            state.fail(
                                grpc.StatusCode.INVALID_ARGUMENT,
                                "subscription.fetch.replayid.validation.failed",
                                "A replay id is required with the CUSTOM preset.",
                            )
                            return
                        parsed = replay_from_bytes(request.replay_id)
                        if parsed is None or not bus.is_valid_cursor(parsed):
                            state.fail(
                                grpc.StatusCode.INVALID_ARGUMENT,
                                "subscription.fetch.replayid.corrupted",
                                "The replay id is invalid or no longer retained.",
                            )
                            return
                        state.cursor = parsed
                    elif request.replay_preset == pb.EARLIEST:
                        state.cursor = bus.earliest_cursor()
                    else:
                        state.cursor = bus.latest_id
                    state.topic = topic
                elif request.topic_name and request.topic_name != state.topic.name:
                    state.fail(
                        grpc.StatusCode.INVALID_ARGUMENT,
                        "subscription.fetch.topic.mismatch",
                        "The topic name of a FetchRequest must match the subscription.",
                    )
                    return
                if request.num_requested <= 0:
                    state.fail(
                        grpc.StatusCode.INVALID_ARGUMENT,
                        "subscription.fetch.requested.events.invalid",
                        "num_requested must be greater than 0.",
                    )
                    return
                state.credits = min(MAX_OUTSTANDING, state.credits + request.num_requested)
                state.wake.set()
        finally:
            state.closed = True
            state.wake.set()

    async def _deliver(self, state: _FetchState, rpc_id: str) -> AsyncIterator[pb.FetchResponse]:
        bus = self.hub.bus
        loop = asyncio.get_running_loop()
        last_sent = loop.time()
        quiet_tip = 0  # newest replay id of the last read that found nothing for us
        while state.failure is None:
            if state.topic is not None and state.credits > 0:
                events, tip = bus.read_after(state.cursor, state.topic.name, limit=state.credits)
                if not events:
                    quiet_tip = tip
                if events:
                    batch = self._batch(events)
                    state.cursor = batch[-1][0].replay_id
                    state.credits -= len(batch)
                    last_sent = loop.time()
                    yield pb.FetchResponse(
                        events=[rendered for _, rendered in batch if rendered is not None],
                        latest_replay_id=replay_bytes(state.cursor),
                        rpc_id=rpc_id,
                        pending_num_requested=state.credits,
                    )
                    continue
                due = last_sent + self.hub.settings.keepalive_seconds - loop.time()
                if due <= 0:
                    # Nothing on this topic up to the tip the empty read saw: safe to resume
                    # from there (never from a tip read later, which may hide a new event).
                    state.cursor = max(state.cursor, quiet_tip)
                    last_sent = loop.time()
                    yield pb.FetchResponse(
                        latest_replay_id=replay_bytes(state.cursor),
                        rpc_id=rpc_id,
                        pending_num_requested=state.credits,
                    )
                    continue
                timeout: float | None = due
            elif state.closed:
                return
            else:
                timeout = None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(state.wake.wait(), timeout)
            state.wake.clear()


def _too_long(obj: ObjectDef, values: Mapping[str, WireValue]) -> str | None:
    """A text value longer than its field allows (what Salesforce refuses on publish;
    the message wording is UNCONFIRMED)."""
    for name, value in values.items():
        f = obj.field(name)
        if f is not None and f.length and isinstance(value, str) and len(value) > f.length:
            return f"{f.name}: data value too large (max length={f.length})"
    return None


class _FetchState:
    """What one Subscribe stream knows: topic, cursor, credits, and how it failed."""

    def __init__(self) -> None:
        self.topic: Topic | None = None
        self.cursor = 0
        self.credits = 0
        self.closed = False
        self.failure: tuple[grpc.StatusCode, str, str] | None = None
        self.wake = asyncio.Event()

    def fail(self, status: grpc.StatusCode, suffix: str, message: str) -> None:
        self.failure = (status, suffix, message)
        self.wake.set()
