"""What the store tells its listeners: one :class:`ChangeRecord` per committed change, tagged
with the caller set by :func:`call_context` (Change Data Capture builds its events from these).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, NamedTuple

from sfsync.emulator.schema.model import WireValue

ChangeType = Literal["CREATE", "UPDATE", "DELETE", "UNDELETE"]


@dataclass(frozen=True, slots=True)
class CallContext:
    """Who is calling: the API (``rest``, ``soap``, ``bulkapi``…) and the ``client=`` value of
    ``Sforce-Call-Options``. Carried into every :class:`ChangeRecord` (CDC ``changeOrigin``)."""

    api: str = "rest"
    client_id: str | None = None
    api_version: str | None = None
    """The API version of the call (``"59.0"``), when the caller knows it."""


_CALL: ContextVar[CallContext] = ContextVar("sfsync_emulator_call", default=CallContext())  # noqa: B039


def current_call() -> CallContext:
    """The caller of the current context (default: REST, no client id)."""
    return _CALL.get()


@contextmanager
def call_context(
    *, api: str = "rest", client_id: str | None = None, api_version: str | None = None
) -> Iterator[None]:
    """Tag the writes made inside the block with the caller's API, client id and version."""
    token = _CALL.set(CallContext(api, client_id, api_version))
    try:
        yield
    finally:
        _CALL.reset(token)


class ChangeRecord(NamedTuple):
    """One committed change, as listeners (Change Data Capture) see it.

    A named tuple (immutable, fields by name), not a frozen dataclass: the store makes one
    per written record, and a frozen dataclass costs several times as much to make.

    ``changed_fields`` are the fields whose stored value changed (for CREATE, every non-null
    field). ``values_after`` is the whole record after the change (read-only). All changes of
    one commit share ``transaction_key`` and ``commit_timestamp`` and arrive in write order.
    """

    object_name: str
    record_id: str
    change_type: ChangeType
    changed_fields: tuple[str, ...]
    values_after: Mapping[str, WireValue]
    transaction_key: str
    commit_timestamp: datetime
    user_id: str
    client_id: str | None
    api: str
    api_version: str | None = None
