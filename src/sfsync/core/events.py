"""The change envelope that moves through every pipeline.

A :class:`ChangeEvent` is immutable: transforms return a new event (``dataclasses.replace``)
or ``None`` to drop it. A :class:`Position` is opaque to the engine: the connector that made
it encodes and decodes its ``token``; the runtime only stores it and hands it back.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import overload


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
class RecordPage:
    """Full states of consecutive records of one entity, as the source received them: a page
    of CSV text (a Bulk API query result page), not yet parsed.

    A snapshot reads millions of records whose only destination may be a database that
    loads CSV itself (PostgreSQL's ``COPY``). Such a sink takes the page as it is, with no
    Python object per record; any other consumer reads the batch's events, which ``parse``
    builds from the same text on first use. Either way the records are the same: a page is
    only a cheaper envelope for READ events.

    The text is RFC 4180 CSV: comma-separated, ``"``-quoted with doubled quotes inside, LF
    line ends, a header line naming each column's field, and an empty cell (quoted or not)
    for a null, as Salesforce writes Bulk API 2.0 results.

    Attributes:
        entity: the records' entity.
        columns: the header's field names, in column order.
        csv: the whole page, header line first (UTF-8).
        count: how many records the page holds (the source's own count, e.g. Salesforce's
            ``Sforce-NumberOfRecords``); a sink that loads the text checks it loaded as many.
        position: the last record's position: the checkpoint moves there once the page is
            applied (the records are in position order).
        parse: the page's records as READ events (``count`` of them, in page order), for
            consumers that need events; called at most once per batch.
    """

    entity: str
    columns: tuple[str, ...]
    csv: bytes
    count: int
    position: Position
    parse: Callable[[], Sequence[ChangeEvent]] = field(repr=False, compare=False)


class PageEvents(Sequence[ChangeEvent]):
    """The events of a :class:`RecordPage`, parsed on first access.

    Its length is known without parsing (the page's count), so a runtime can count, size and
    checkpoint a page batch without building a single event.

    Raises:
        ValueError: on first access, when ``parse`` gives another number of events than the
            page's count (a page whose text and count disagree is a garbled download).
    """

    __slots__ = ("_events", "_page")

    def __init__(self, page: RecordPage) -> None:
        self._page = page
        self._events: tuple[ChangeEvent, ...] | None = None

    @property
    def parsed(self) -> bool:
        """Whether the events were built already."""
        return self._events is not None

    def _all(self) -> tuple[ChangeEvent, ...]:
        events = self._events
        if events is None:
            events = tuple(self._page.parse())
            if len(events) != self._page.count:
                raise ValueError(
                    f"a page of {self._page.entity} holds {len(events)} records, its source "
                    f"counted {self._page.count}"
                )
            self._events = events
        return events

    def __len__(self) -> int:
        return self._page.count

    @overload
    def __getitem__(self, index: int) -> ChangeEvent: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[ChangeEvent]: ...
    def __getitem__(self, index: int | slice) -> ChangeEvent | Sequence[ChangeEvent]:
        return self._all()[index]

    def __iter__(self) -> Iterator[ChangeEvent]:
        return iter(self._all())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, PageEvents):
            return self._all() == other._all()
        return self._all() == other

    def __hash__(self) -> int:
        return hash(self._all())

    def __repr__(self) -> str:
        state = "parsed" if self.parsed else "not parsed"
        return f"<PageEvents {self._page.entity}: {self._page.count} events, {state}>"


@dataclass(frozen=True, slots=True)
class Batch:
    """An ordered, immutable group of events handed from a source to a sink in one call.

    Order matters: events for the same key must be applied in batch order.

    Attributes:
        events: the events (for a page batch, a :class:`PageEvents` that parses the page on
            first access).
        completes: during a snapshot, the entities whose snapshot ends with this batch (the
            batch may then be empty); the runtime records them as done in the checkpoint.
        advances: positions that no event carries but that the checkpoint may reach once this
            batch is applied (a poll that found nothing, yet covered a time window).
        page: set when the batch is one :class:`RecordPage` (see :meth:`of_page`): a sink that
            loads the page's text may do so instead of reading ``events``.
    """

    events: Sequence[ChangeEvent]
    completes: frozenset[str] = frozenset()
    advances: tuple[Position, ...] = ()
    page: RecordPage | None = None

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

    @classmethod
    def of_page(cls, page: RecordPage) -> Batch:
        """The batch of one page's records; its events are parsed only if someone reads them."""
        return cls(PageEvents(page), page=page)

    def __len__(self) -> int:
        return len(self.events)

    def __iter__(self) -> Iterator[ChangeEvent]:
        return iter(self.events)

    @property
    def last_position(self) -> Position | None:
        """The position of the last event, or ``None`` for an empty batch."""
        if self.page is not None:
            return self.page.position
        return self.events[-1].position if self.events else None

    def positions(self) -> list[Position]:
        """Every position the checkpoint may reach once the batch is applied, in order: those
        its events carry (for a page batch only the last record's: the page is in position
        order, so it stands for the others), then ``advances``. Reading them never parses a
        page."""
        if self.page is not None:
            return [self.page.position, *self.advances]
        return [*(event.position for event in self.events), *self.advances]

    def entities(self) -> frozenset[str]:
        """Every entity that occurs in the batch."""
        if self.page is not None:
            return frozenset({self.page.entity})
        return frozenset(e.entity for e in self.events)
