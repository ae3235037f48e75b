"""The org's streaming side: event bus, CDC and platform events, shared by CometD and Pub/Sub.

:func:`attach` gives each :class:`~sfsync.emulator.org.Org` one :class:`Streaming` (created on
first use, idempotent). It subscribes to the store's commits, so call it before the org takes
writes: :func:`~sfsync.emulator.streaming.cometd.streaming_routes` (mounted by ``build_app``)
and :func:`~sfsync.emulator.streaming.grpc_server.start_grpc` both do.

Platform events published through REST (``POST /sobjects/Evt__e/``, composite, collections)
are caught here rather than in the REST layer: the store announces the created ``Evt__e``
row like any other commit, and :meth:`Streaming.on_commit` publishes it on ``/event/Evt__e``
with a fresh ``EventUuid``. The row stays in the store (platform events are not queryable, so
no client sees it). Pub/Sub ``Publish`` goes through :meth:`Streaming.publish_event`.
"""

from __future__ import annotations

import threading
import uuid
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from sfsync.emulator.clock import format_datetime
from sfsync.emulator.schema.model import ObjectDef, WireValue
from sfsync.emulator.store_changes import ChangeRecord
from sfsync.emulator.streaming.avro import (
    EventSchema,
    change_event_schema,
    event_fields,
    platform_event_schema,
)
from sfsync.emulator.streaming.bus import ALL_CHANGE_EVENTS, BusEvent, EventBus
from sfsync.emulator.streaming.cdc import CdcSettings, ChangeEventBuilder, change_channel
from sfsync.emulator.streaming.events import Packed, PlatformEventBody, pack

if TYPE_CHECKING:
    from sfsync.emulator.org import Org

DEFAULT_KEEPALIVE_SECONDS = 270.0
"""Pub/Sub: an empty FetchResponse is sent within 270 s while credits are outstanding."""
DEFAULT_CONNECT_TIMEOUT = 110.0
"""CometD: an idle ``/meta/connect`` is answered after 110 s (advice ``timeout: 110000``)."""
DEFAULT_RECONNECT_WINDOW = 40.0
"""CometD: a client that does not reconnect within 40 s is forgotten (``403::Unknown client``)."""


@dataclass(frozen=True, slots=True)
class Topic:
    """A subscribable channel: every change event, one entity's change events, or one
    platform event type (``obj`` is the entity or event object, ``None`` for the former)."""

    name: str
    kind: Literal["all-changes", "changes", "event"]
    obj: ObjectDef | None

    @property
    def can_publish(self) -> bool:
        return self.kind == "event"


@dataclass(slots=True)
class StreamingSettings:
    """Timing knobs (seconds). Tests shorten them; the defaults are Salesforce's."""

    keepalive_seconds: float = DEFAULT_KEEPALIVE_SECONDS
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    reconnect_window: float = DEFAULT_RECONNECT_WINDOW


class Streaming:
    """Bus + builders + topic catalogue of one org (see the module docstring)."""

    def __init__(self, org: Org, *, cdc: CdcSettings | None = None) -> None:
        self.org = org
        self.bus = EventBus(org.clock)
        self.cdc = ChangeEventBuilder(org.schema, cdc)
        self.settings = StreamingSettings()
        self._reset_hooks: list[Callable[[], None]] = []

    def on_reset(self, hook: Callable[[], None]) -> None:
        """Register state to forget on the org's reset (e.g. CometD clients)."""
        self._reset_hooks.append(hook)

    def reset(self) -> None:
        """On ``POST /__emulator__/reset``: drop pending gap injections and forget streaming
        sessions (CometD clients then get ``403::Unknown client``), as the org forgets its
        sessions and faults. Events stay on the bus: they are data, like records."""
        self.cdc.clear_gaps()
        for hook in self._reset_hooks:
            hook()

    # ----------------------------------------------------------------------------- publishing

    def on_commit(self, changes: Sequence[ChangeRecord]) -> None:
        """Publish the change events and platform events of one store commit."""
        items: list[tuple[str, Packed]] = self.cdc.build_packed(changes)
        events: dict[str, ObjectDef | None] = {}
        for change in changes:
            name = change.object_name
            if name in events:
                obj = events[name]
            else:
                obj = self.org.schema.object(name)
                events[name] = obj = obj if obj is not None and obj.platform_event else None
            if obj is not None and change.change_type == "CREATE":
                values = {f.name: change.values_after.get(f.name) for f in event_fields(obj)}
                body = self._event_body(obj, values, change.user_id)
                items.append((f"/event/{obj.name}", pack(body)))
        if items:
            self.bus.publish_packed(items)

    def publish_event(
        self, obj: ObjectDef, values: Mapping[str, WireValue], user_id: str
    ) -> BusEvent:
        """Publish one platform event of type ``obj`` with custom field ``values``."""
        return self.bus.publish(f"/event/{obj.name}", self._event_body(obj, values, user_id))

    def _event_body(
        self, obj: ObjectDef, values: Mapping[str, WireValue], user_id: str
    ) -> PlatformEventBody:
        body: dict[str, WireValue] = {
            "CreatedDate": format_datetime(self.org.clock.now()),
            "CreatedById": user_id,
        }
        body.update(values)
        return PlatformEventBody(obj.name, str(uuid.uuid4()), body)

    # ----------------------------------------------------------------------------- catalogue

    def topic(self, name: str) -> Topic | None:
        """The topic called ``name`` (case-sensitive, as Salesforce's channels), or ``None``
        when it does not exist or its entity is not selected for Change Data Capture."""
        if name == ALL_CHANGE_EVENTS:
            return Topic(name, "all-changes", None)
        if name.startswith("/event/"):
            obj = self.org.schema.object(name.removeprefix("/event/"))
            if obj is not None and obj.platform_event and f"/event/{obj.name}" == name:
                return Topic(name, "event", obj)
            return None
        if name.startswith("/data/"):
            for obj in self.org.schema:
                if self.cdc.settings.selected(obj) and change_channel(obj.name) == name:
                    return Topic(name, "changes", obj)
        return None

    def schema_of(self, obj: ObjectDef) -> EventSchema:
        """The Avro schema of events of ``obj`` (change events, or the platform event)."""
        return platform_event_schema(obj) if obj.platform_event else change_event_schema(obj)

    def topic_schema(self, topic: Topic) -> EventSchema | None:
        """The schema a topic's events use (``None`` for ``/data/ChangeEvents``, whose
        events each carry their entity's schema id)."""
        return self.schema_of(topic.obj) if topic.obj is not None else None

    def schema_by_id(self, schema_id: str) -> EventSchema | None:
        """Any schema of this org by id (change events of selected entities, and events)."""
        for obj in self.org.schema:
            if obj.platform_event or self.cdc.settings.selected(obj):
                candidate = self.schema_of(obj)
                if candidate.schema_id == schema_id:
                    return candidate
        return None


_HUBS: weakref.WeakKeyDictionary[object, Streaming] = weakref.WeakKeyDictionary()
_HUBS_LOCK = threading.Lock()


def attach(org: Org) -> Streaming:
    """The org's :class:`Streaming`, created (and wired to the store) on first call."""
    with _HUBS_LOCK:
        hub = _HUBS.get(org)
        if hub is not None:
            return hub
        hub = Streaming(org)
        _HUBS[org] = hub
    org.on_reset(hub.reset)
    commit_listener = getattr(org.store, "add_commit_listener", None)
    change_listener = getattr(org.store, "add_listener", None)
    if callable(commit_listener):
        commit_listener(hub.on_commit)
    elif callable(change_listener):
        # A store without commit batches: one event per change, no merging.
        change_listener(lambda change: hub.on_commit([change]))
    # A store with neither (HTTP-layer test doubles) has no records to capture.
    return hub
