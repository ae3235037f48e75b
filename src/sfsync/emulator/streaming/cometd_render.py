"""CometD's JSON form of bus events (reference sections 5.3-5.5).

A delivered message is ``{"channel", "data": {"schema", "payload", "event": {"replayId"}}}``:

* change events: ``payload`` holds ``ChangeEventHeader`` (without ``nulledFields`` and
  ``diffFields``; ``changedFields`` as names, components dotted: ``BillingAddress.City``) and
  the carried fields **that are not null**, compound fields nested (``Name`` ->
  ``{"FirstName", "LastName"}``, ``BillingAddress`` -> ``{"City", …}``); datetimes as
  ``2019-09-25T20:36:23.000Z``;
* platform events: ``CreatedDate``, ``CreatedById`` and every custom field (null ones too);
  ``event`` also carries ``EventUuid`` (UNCONFIRMED on Salesforce, harmless for clients).

``schema`` is the same id the Pub/Sub API serves for the event's Avro schema.
"""

from __future__ import annotations

from typing import Any

from sfsync.emulator.schema.model import FieldDef, FieldType, ObjectDef, Schema, WireValue
from sfsync.emulator.streaming import layout
from sfsync.emulator.streaming.avro import change_event_schema, platform_event_schema
from sfsync.emulator.streaming.bus import BusEvent
from sfsync.emulator.streaming.events import ChangeEventBody, PlatformEventBody


def json_value(f: FieldDef | None, value: WireValue) -> WireValue:
    """A wire value as CometD shows it: datetimes end in ``Z`` instead of ``+0000``."""
    if (
        f is not None
        and f.type is FieldType.DATETIME
        and isinstance(value, str)
        and value.endswith("+0000")
    ):
        return value[: -len("+0000")] + "Z"
    return value


def change_payload(obj: ObjectDef, body: ChangeEventBody) -> dict[str, Any]:
    """The ``payload`` of a change event message."""
    header = body.header
    payload: dict[str, Any] = {
        "ChangeEventHeader": {
            "entityName": header.entity_name,
            "recordIds": list(header.record_ids),
            "changeType": header.change_type,
            "changeOrigin": header.change_origin,
            "transactionKey": header.transaction_key,
            "sequenceNumber": header.sequence_number,
            "commitTimestamp": header.commit_timestamp,
            "commitNumber": header.commit_number,
            "commitUser": header.commit_user,
            "changedFields": [layout.display_name(obj, n) for n in header.changed_fields],
        }
    }
    values = {k.lower(): v for k, v in body.values.items()}
    for slot in layout.slots(obj):
        if slot.compound:
            nested = {
                name: json_value(f, values[f.name.lower()])
                for name, f in slot.children
                if values.get(f.name.lower()) is not None
            }
            if nested:
                payload[slot.name] = nested
        elif values.get(slot.name.lower()) is not None:
            payload[slot.name] = json_value(slot.field, values[slot.name.lower()])
    return payload


def event_payload(obj: ObjectDef, body: PlatformEventBody) -> dict[str, Any]:
    """The ``payload`` of a platform event message."""
    payload: dict[str, Any] = {}
    for name, value in body.values.items():
        f = obj.field(name)
        payload[f.name if f is not None else name] = json_value(
            f if f is not None else _DATETIME if name == "CreatedDate" else None, value
        )
    return payload


_DATETIME = FieldDef(name="CreatedDate", type=FieldType.DATETIME, label="Created Date")


def data_message(schema: Schema, subscription: str, event: BusEvent) -> dict[str, Any] | None:
    """The message delivering ``event`` to a subscriber of ``subscription`` (``None`` if the
    event's type no longer exists in the schema)."""
    body = event.body
    if isinstance(body, ChangeEventBody):
        obj = schema.object(body.header.entity_name)
        if obj is None:
            return None
        return {
            "channel": subscription,
            "data": {
                "schema": change_event_schema(obj).schema_id,
                "payload": change_payload(obj, body),
                "event": {"replayId": event.replay_id},
            },
        }
    obj = schema.object(body.event_type)
    if obj is None:
        return None
    return {
        "channel": subscription,
        "data": {
            "schema": platform_event_schema(obj).schema_id,
            "payload": event_payload(obj, body),
            "event": {"replayId": event.replay_id, "EventUuid": body.event_uuid},
        },
    }
