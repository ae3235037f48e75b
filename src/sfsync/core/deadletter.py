"""Dead letters: events that could not be applied, kept with their reason, never lost.

A dead letter holds the whole event and the classified error, so an operator can see what
was wrong, fix the data or the mapping, and replay it. ``kind`` says why it is here:
``rejected`` (the target refused this record), ``conflict`` (parked for a human decision) or
``failed`` (transient failures outlasted the retry policy).
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sfsync.core.errors import SyncError
from sfsync.core.events import ChangeEvent


class DeadLetterKind(enum.Enum):
    REJECTED = "rejected"
    CONFLICT = "conflict"
    FAILED = "failed"


@dataclass(frozen=True, slots=True, kw_only=True)
class DeadLetter:
    """One parked event and why.

    Attributes:
        sync: the sync it belongs to.
        kind: why it is parked.
        entity, key, op: of the event.
        payload: the event as JSON text (see :func:`event_to_json`).
        error_type: the error class name (``SkippableError``).
        code: the target system's error code (``STRING_TOO_LONG``), if any.
        message: the error message.
        hint: how to fix it, if known.
        created_at: when it was parked.
    """

    sync: str
    kind: DeadLetterKind
    entity: str
    key: str
    op: str
    payload: str
    error_type: str
    code: str | None
    message: str
    hint: str | None
    created_at: datetime

    @classmethod
    def of(
        cls, sync: str, kind: DeadLetterKind, event: ChangeEvent, error: SyncError, at: datetime
    ) -> DeadLetter:
        return cls(
            sync=sync,
            kind=kind,
            entity=event.entity,
            key=event.key,
            op=event.op.value,
            payload=event_to_json(event),
            error_type=type(error).__name__,
            code=error.code,
            message=error.message,
            hint=error.hint,
            created_at=at,
        )


def _jsonable(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return str(value)


def event_to_json(event: ChangeEvent) -> str:
    """A self-contained JSON form of an event, for dead letters and audit."""
    return json.dumps(
        {
            "entity": event.entity,
            "key": event.key,
            "op": event.op.value,
            "after": _jsonable(dict(event.after)) if event.after is not None else None,
            "before": _jsonable(dict(event.before)) if event.before is not None else None,
            "changed": sorted(event.changed),
            "partial": event.partial,
            "position": {"stream": event.position.stream, "token": event.position.token},
            "committed_at": event.committed_at.isoformat(),
            "origin": event.origin,
            "transaction": event.transaction,
            "version": event.version,
        },
        sort_keys=True,
        ensure_ascii=False,
    )


class DeadLetterStore(Protocol):
    """Durable storage of dead letters.

    Contract: ``put`` is durable when it returns; letters are listed oldest first.
    """

    async def put(self, letters: list[DeadLetter]) -> None:
        """Store ``letters``."""
        ...

    async def list(self, sync: str | None = None, *, limit: int = 100) -> list[DeadLetter]:
        """Stored letters, oldest first, optionally of one sync."""
        ...

    async def count(self, sync: str | None = None) -> int:
        """How many letters are stored."""
        ...
