"""The seam between the SOQL engine and whatever holds the records.

The emulator's record store implements :class:`RecordSource`; tests use the dict-backed
:class:`~.memory.MemorySource`. The engine only reads through these three calls, so a
store can keep records in any layout as long as it can hand out wire-form mappings.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Protocol, runtime_checkable

from sfsync.emulator.schema.model import WireValue

Record = Mapping[str, WireValue]


class RecordSource(Protocol):
    """Read access to the org's records, in wire form (see ``schema.model.WireValue``).

    Records are keyed by the declared casing of field names and always include ``"Id"``
    (the 18-character id) and ``"IsDeleted"``. A field missing from a mapping reads as null.
    The engine never mutates what it is given.
    """

    def scan(self, object_name: str, *, include_deleted: bool) -> Iterator[Record]:
        """Every record of ``object_name`` (declared casing), deleted ones only when asked.

        The order is the store's own (Salesforce leaves it unspecified without ORDER BY),
        but it must be stable across two scans with no write in between, because the
        engine counts in one pass and renders in a second.
        """
        ...

    def get(self, record_id: str) -> Record | None:
        """The record with this 18-character id, of any object; ``None`` if there is none.

        Deleted records are returned too, with ``IsDeleted`` true.
        """
        ...

    def children(
        self, object_name: str, field_name: str, parent_id: str, *, include_deleted: bool
    ) -> Iterator[Record]:
        """Records of ``object_name`` whose lookup ``field_name`` equals ``parent_id``."""
        ...


@runtime_checkable
class CountingSource(Protocol):
    """Optional: a source that can count an object's records without scanning them. The
    engine then skips its counting pass for queries without WHERE (full extracts), which
    is most of the work of ``totalSize`` on a large object."""

    def count(self, object_name: str, *, include_deleted: bool = False) -> int:
        """The number of records :meth:`RecordSource.scan` would yield."""
        ...


class IndexedSource(Protocol):
    """Optional: a source that keeps indexes for the queries a replication client sends on
    every pass, so that the engine answers them without a scan (see :mod:`.indexed`). What
    they return must agree exactly with :meth:`RecordSource.scan`."""

    def in_id_order(
        self,
        object_name: str,
        *,
        include_deleted: bool,
        descending: bool = False,
        low: str | None = None,
        high: str | None = None,
    ) -> Iterator[Record]:
        """The records ``scan`` would yield with an ``Id`` between ``low`` and ``high`` (both
        inclusive; ``None``: unbounded), sorted by ``Id`` (exact string order), ascending or
        descending."""
        ...

    def id_span(self, object_name: str, low: str | None = None, high: str | None = None) -> int:
        """An upper bound of the number of records ``in_id_order`` reads between ``low`` and
        ``high``, deleted ones included (the engine decides from it whether to walk)."""
        ...

    def newest(self, object_name: str) -> Record | None:
        """The record, deleted ones included, with the greatest ``(SystemModstamp, Id)`` among
        those with a SystemModstamp; ``None`` when there is none or the source cannot tell."""
        ...


def offers(source: object, method: str) -> bool:
    """Whether ``source``'s class defines ``method`` (an optional capability above).

    Asked of the class, not the instance: a wrapper that narrows a source (a PK-chunking
    range) and forwards unknown attributes to it must not pass for the source it narrows.
    """
    return callable(getattr(type(source), method, None))
