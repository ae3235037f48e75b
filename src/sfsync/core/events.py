"""The change envelope that moves through every pipeline.

A :class:`ChangeEvent` is immutable: transforms return a new event (``dataclasses.replace``)
or ``None`` to drop it. A :class:`Position` is opaque to the engine: the connector that made
it encodes and decodes its ``token``; the runtime only stores it and hands it back.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType


class Operation(enum.Enum):
    """What happened to a record."""

    READ = "read"
    """A snapshot row: the record exists with these values; no change is implied."""
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    UNDELETE = "undelete"

    @property
    def removes(self) -> bool:
        """True when applying this operation makes the record absent from the target."""
        return self is Operation.DELETE


@dataclass(frozen=True, slots=True, order=False)
class Position:
    """Where a stream stands, in the source's own terms.

    Attributes:
        stream: which stream of the source this belongs to, e.g. ``"sf:/data/AccountChangeEvent"``
            or ``"pg:public.account"``. A checkpoint keeps one position per stream.
        token: the connector's encoding of the place in that stream (a CDC replay id, a
            ``(SystemModstamp, Id)`` cursor, a Bulk locator, a log sequence number). The engine
            never parses it and never compares two tokens.
    """

    stream: str
    token: str


def _freeze(values: Mapping[str, object] | None) -> Mapping[str, object] | None:
    if values is None or isinstance(values, MappingProxyType):
        return values
    return MappingProxyType(dict(values))


@dataclass(frozen=True, slots=True, kw_only=True)
class ChangeEvent:
    """One change to one record, as captured from a source.

    Attributes:
        entity: the source's name for the record type (``"Account"``, ``"public.account"``).
        key: the record's key in the source (a Salesforce Id, a primary key rendered as text).
        op: what happened.
        after: field values after the change; ``None`` for a delete. For an update captured
            from CDC this holds only the changed fields (see ``partial``).
        before: field values before the change, where the source knows them.
        changed: names of the fields the change touched. Empty means "unknown": treat every
            field in ``after`` as changed.
        partial: ``after`` carries only some fields; a sink must update those and leave the
            rest untouched, never null them.
        position: where this event sits in its stream; the runtime checkpoints it once the
            event's outcome is final.
        committed_at: when the source committed the change (UTC, timezone-aware).
        origin: who made the change (Salesforce ``changeOrigin`` client id, a database role);
            two-way syncs drop events whose origin is their own writer.
        transaction: the source transaction id, where known; events of one transaction share it.
        version: a monotonic per-record version where the source has one (``SystemModstamp``
            rendered as ISO text); sinks use it to refuse to overwrite newer data with older.
    """

    entity: str
    key: str
    op: Operation
    after: Mapping[str, object] | None
    position: Position
    committed_at: datetime
    before: Mapping[str, object] | None = None
    changed: frozenset[str] = field(default_factory=frozenset)
    partial: bool = False
    origin: str | None = None
    transaction: str | None = None
    version: str | None = None

    def __post_init__(self) -> None:
        if not self.entity:
            raise ValueError("ChangeEvent.entity must not be empty")
        if not self.key:
            raise ValueError(f"ChangeEvent for {self.entity} has an empty key")
        if self.committed_at.tzinfo is None:
            raise ValueError("ChangeEvent.committed_at must be timezone-aware (UTC)")
        if self.op is Operation.DELETE and self.after is not None:
            raise ValueError("a DELETE event carries no 'after' values")
        if self.op is not Operation.DELETE and self.after is None:
            raise ValueError(f"a {self.op.name} event needs 'after' values")
        # Freeze the mappings so that no stage can change an event another stage holds.
        object.__setattr__(self, "after", _freeze(self.after))
        object.__setattr__(self, "before", _freeze(self.before))

    @classmethod
    def of_state(
        cls,
        entity: str,
        key: str,
        op: Operation,
        after: MappingProxyType[str, object],
        position: Position,
        committed_at: datetime,
        version: str | None = None,
    ) -> ChangeEvent:
        """A full-state, non-delete event, built for bulk paths (a snapshot's READ events).

        The same event as the keyword constructor gives, about four times cheaper: ``after``
        must already be a read-only mapping (so nothing is copied or frozen again), and only
        what the caller cannot have guaranteed by construction is checked (a non-empty key).
        The caller vouches for the rest: a non-empty ``entity``, ``op`` not ``DELETE``, a
        timezone-aware ``committed_at``.
        """
        if not key:
            raise ValueError(f"ChangeEvent for {entity} has an empty key")
        if after.__class__ is not MappingProxyType or op is Operation.DELETE:
            return cls(
                entity=entity,
                key=key,
                op=op,
                after=after,
                position=position,
                committed_at=committed_at,
                version=version,
            )
        event = _new(cls)
        _SET_ENTITY(event, entity)
        _SET_KEY(event, key)
        _SET_OP(event, op)
        _SET_AFTER(event, after)
        _SET_POSITION(event, position)
        _SET_COMMITTED_AT(event, committed_at)
        _SET_BEFORE(event, None)
        _SET_CHANGED(event, _NO_FIELDS)
        _SET_PARTIAL(event, False)
        _SET_ORIGIN(event, None)
        _SET_TRANSACTION(event, None)
        _SET_VERSION(event, version)
        return event

    @property
    def fields_changed(self) -> frozenset[str]:
        """The fields this event sets: ``changed`` when known, else every key of ``after``."""
        if self.changed:
            return self.changed
        return frozenset(self.after or ())


# The slot setters ChangeEvent.of_state uses: a frozen dataclass's __init__ goes through
# object.__setattr__ per field; the member descriptors set a slot directly.
_new = object.__new__
_NO_FIELDS: frozenset[str] = frozenset()
(
    _SET_ENTITY,
    _SET_KEY,
    _SET_OP,
    _SET_AFTER,
    _SET_POSITION,
    _SET_COMMITTED_AT,
    _SET_BEFORE,
    _SET_CHANGED,
    _SET_PARTIAL,
    _SET_ORIGIN,
    _SET_TRANSACTION,
    _SET_VERSION,
) = (
    getattr(ChangeEvent, name).__set__
    for name in (
        "entity",
        "key",
        "op",
        "after",
        "position",
        "committed_at",
        "before",
        "changed",
        "partial",
        "origin",
        "transaction",
        "version",
    )
)


@dataclass(frozen=True, slots=True)
class Batch:
    """An ordered, immutable group of events handed from a source to a sink in one call.

    Order matters: events for the same key must be applied in batch order.

    Attributes:
        events: the events.
        completes: during a snapshot, the entities whose snapshot ends with this batch (the
            batch may then be empty); the runtime records them as done in the checkpoint.
        advances: positions that no event carries but that the checkpoint may reach once this
            batch is applied (a poll that found nothing, yet covered a time window).
    """

    events: tuple[ChangeEvent, ...]
    completes: frozenset[str] = frozenset()
    advances: tuple[Position, ...] = ()

    @classmethod
    def of(
        cls,
        events: Sequence[ChangeEvent],
        *,
        completes: frozenset[str] = frozenset(),
        advances: Sequence[Position] = (),
    ) -> Batch:
        """Build a batch from any sequence of events."""
        return cls(tuple(events), completes, tuple(advances))

    def __len__(self) -> int:
        return len(self.events)

    def __iter__(self) -> Iterator[ChangeEvent]:
        return iter(self.events)

    @property
    def last_position(self) -> Position | None:
        """The position of the last event, or ``None`` for an empty batch."""
        return self.events[-1].position if self.events else None

    def entities(self) -> frozenset[str]:
        """Every entity that occurs in the batch."""
        return frozenset(e.entity for e in self.events)
