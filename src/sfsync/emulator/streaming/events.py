"""Transport-neutral event content, as the bus stores it.

The same event is rendered twice: as JSON for CometD and as Avro for the Pub/Sub API (the two
differ in date formats, in which fields appear and in how changed fields are listed, reference
section 5.4). So the bus keeps what both need: the header facts and the record's field values
in the org's wire form (``"2024-01-15T09:30:00.000+0000"`` datetimes, flat field names such as
``BillingCity``); :mod:`~sfsync.emulator.streaming.layout` knows how those nest.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sfsync.emulator.schema.model import WireValue

CHANGE_TYPES = (
    "CREATE",
    "UPDATE",
    "DELETE",
    "UNDELETE",
    "GAP_CREATE",
    "GAP_UPDATE",
    "GAP_DELETE",
    "GAP_UNDELETE",
    "GAP_OVERFLOW",
    "SNAPSHOT",
)
"""Every ``ChangeEventHeader.changeType`` (``SNAPSHOT`` is reserved and never produced)."""


@dataclass(frozen=True, slots=True)
class ChangeEventHeader:
    """The ``ChangeEventHeader`` facts. Field lists hold flat field names (``BillingCity``);
    each transport renders them its own way (dotted names or bitmaps)."""

    entity_name: str
    record_ids: tuple[str, ...]
    change_type: str
    change_origin: str
    transaction_key: str
    sequence_number: int
    commit_timestamp: int
    """Milliseconds since the epoch."""
    commit_number: int
    commit_user: str
    changed_fields: tuple[str, ...] = ()
    nulled_fields: tuple[str, ...] = ()
    diff_fields: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ChangeEventBody:
    """A change event: header plus the field values it carries (only changed fields; for a
    CREATE every non-null field). ``values`` may hold ``None`` for a nulled field."""

    header: ChangeEventHeader
    values: Mapping[str, WireValue]


@dataclass(frozen=True, slots=True)
class PlatformEventBody:
    """A platform event: its type (``Printer__e``), ``EventUuid`` and field values
    (``CreatedDate``, ``CreatedById`` and the custom fields)."""

    event_type: str
    event_uuid: str
    values: Mapping[str, WireValue]


EventBody = ChangeEventBody | PlatformEventBody
