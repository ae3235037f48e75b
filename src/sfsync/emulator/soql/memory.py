"""A dict-backed :class:`~.catalog.RecordSource`, for tests, benchmarks and small demos."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from sfsync.emulator.schema.model import WireValue

from .catalog import Record


class MemorySource:
    """Records per object, in insertion order, plus an id index.

    ``children`` scans the child object (fine for tests); the real store keeps an index.
    """

    def __init__(self) -> None:
        self._by_object: dict[str, dict[str, Record]] = {}
        self._by_id: dict[str, Record] = {}

    @classmethod
    def of(cls, records: Mapping[str, Iterable[Mapping[str, WireValue]]]) -> MemorySource:
        """A source holding ``records`` (object name -> rows); rows get ``IsDeleted`` false
        unless they say otherwise."""
        source = cls()
        for object_name, rows in records.items():
            for row in rows:
                source.put(object_name, row)
        return source

    def put(self, object_name: str, record: Mapping[str, WireValue]) -> None:
        """Insert or replace ``record`` (which must carry ``Id``) under ``object_name``."""
        row = dict(record)
        row.setdefault("IsDeleted", False)
        record_id = row["Id"]
        if not isinstance(record_id, str):
            raise ValueError(f"record without a string Id: {record!r}")
        self._by_object.setdefault(object_name, {})[record_id] = row
        self._by_id[record_id] = row

    def scan(self, object_name: str, *, include_deleted: bool) -> Iterator[Record]:
        rows = self._by_object.get(object_name, {}).values()
        if include_deleted:
            return iter(rows)
        return (row for row in rows if not row["IsDeleted"])

    def get(self, record_id: str) -> Record | None:
        return self._by_id.get(record_id)

    def children(
        self, object_name: str, field_name: str, parent_id: str, *, include_deleted: bool
    ) -> Iterator[Record]:
        for row in self.scan(object_name, include_deleted=include_deleted):
            if row.get(field_name) == parent_id:
                yield row
