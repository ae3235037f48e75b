"""How the store holds one object's records: value tuples aligned with the object's fields,
read through :class:`Row` views, with an index per lookup field (parent id -> child ids) and
per unique or external id field (normalised value -> ids), the ids in order, the newest
``(SystemModstamp, Id)`` and the number of deleted rows (see :mod:`.store_index`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TypeVar, overload

from sfsync.emulator.clock import format_datetime
from sfsync.emulator.schema.model import FieldDef, FieldType, ObjectDef, WireValue
from sfsync.emulator.store_index import IdOrder, Newest

_COMPOUND = (FieldType.ADDRESS, FieldType.LOCATION)
T = TypeVar("T")


class Row(Mapping[str, WireValue]):
    """A read-only record: a field-name -> slot map shared by the object plus a value tuple."""

    __slots__ = ("_slot", "_values")

    def __init__(self, slot: Mapping[str, int], values: tuple[WireValue, ...]) -> None:
        self._slot = slot
        self._values = values

    @property
    def slot_map(self) -> Mapping[str, int]:
        """Field name -> position in :attr:`value_tuple`; one shared map per object (so fast paths
        can precompute positions once and check them with an identity test)."""
        return self._slot

    @property
    def value_tuple(self) -> tuple[WireValue, ...]:
        """The stored values in slot order."""
        return self._values

    def __getitem__(self, key: str) -> WireValue:
        return self._values[self._slot[key]]

    @overload
    def get(self, key: str, /) -> WireValue: ...

    @overload
    def get(self, key: str, default: WireValue, /) -> WireValue: ...

    @overload
    def get(self, key: str, default: T, /) -> WireValue | T: ...

    def get(self, key: str, default: object = None, /) -> object:
        # Mapping.get goes through __getitem__ and a KeyError; queries call this per field per
        # row, so it is done directly.
        index = self._slot.get(key)
        return default if index is None else self._values[index]

    def __contains__(self, key: object) -> bool:
        return key in self._slot

    def __iter__(self) -> Iterator[str]:
        return iter(self._slot)

    def __len__(self) -> int:
        return len(self._slot)

    def __repr__(self) -> str:
        return f"Row({dict(self)!r})"


_ONE_MS = timedelta(milliseconds=1)
_WIRE_FORMAT = "%Y-%m-%dT%H:%M:%S.%f%z"


def bump_stamp(previous: WireValue, now: str) -> str:
    """``now``, or 1 ms past ``previous`` when the clock has not moved past it (a record's
    SystemModstamp must move on every write)."""
    if not isinstance(previous, str) or now > previous:
        return now
    return format_datetime(datetime.strptime(previous, _WIRE_FORMAT).astimezone(UTC) + _ONE_MS)


def index_key(value: WireValue, case_sensitive: bool) -> WireValue:
    if isinstance(value, str) and not case_sensitive:
        return value.lower()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return value


class Table:
    """One object's rows and indexes.

    ``names`` are the stored fields in declared order (compound fields excluded); slot 0 is
    always ``Id`` and slot 1 ``IsDeleted`` (the standard builder puts them first). ``rows``
    maps the 18-character id to the value tuple; tuples are never mutated, only replaced, so
    a :class:`Row` handed out stays a consistent snapshot of that record.
    """

    def __init__(self, obj: ObjectDef) -> None:
        self.obj = obj
        stored = [f for f in obj.fields.values() if f.type not in _COMPOUND]
        self.fields: tuple[FieldDef, ...] = tuple(stored)
        self.names: tuple[str, ...] = tuple(f.name for f in stored)
        self.slot: dict[str, int] = {n: i for i, n in enumerate(self.names)}
        self.lower: dict[str, str] = {n.lower(): n for n in self.names}
        self.rows: dict[str, tuple[WireValue, ...]] = {}
        # Lookup field slot -> parent id -> child ids (all rows, deleted too).
        self.refs: dict[int, dict[str, set[str]]] = {
            self.slot[f.name]: {} for f in stored if f.type is FieldType.REFERENCE
        }
        # Unique / external id field slot -> normalised value -> the id, or the ids when
        # several rows share it (all rows). Mostly one id a value: a set each would cost
        # some 200 bytes a record (see :meth:`key_ids`).
        self.keys: dict[int, dict[WireValue, str | set[str]]] = {
            self.slot[f.name]: {} for f in stored if f.unique or f.external_id
        }
        self.case_sensitive = {self.slot[f.name]: f.case_sensitive for f in stored}
        self.auto = [f for f in stored if f.auto_number]
        self.layout = 0  # the SQLite file's layout id of ``names`` (when persisted)
        self.template: list[WireValue] = [
            f.default if f.defaulted_on_create else None for f in stored
        ]
        #: Every id in id order, for ORDER BY Id without a sort.
        self.order = IdOrder()
        #: The newest (SystemModstamp, Id), for a replication client's "where am I" query.
        stamp = self.slot.get("SystemModstamp")
        self.newest: Newest | None = Newest(stamp) if stamp is not None else None
        #: How many rows have IsDeleted true, so that counting live rows is no scan.
        self.deleted = 0

    def add_many(self, ids: list[str], records: list[tuple[WireValue, ...]]) -> None:
        """Add new rows (the bulk path): one pass per index instead of one call per row."""
        self.rows.update(zip(ids, records, strict=True))
        self.order.add_many(ids)
        if self.newest is not None:
            self.newest.added(zip(ids, records, strict=True))
        self.deleted += sum(1 for t in records if t[1] is True)
        for slot, index in self.refs.items():
            for rid, t in zip(ids, records, strict=True):
                parent = t[slot]
                if parent is not None:
                    members = index.get(str(parent))
                    if members is None:
                        index[str(parent)] = {rid}
                    else:
                        members.add(rid)
        for slot, keys in self.keys.items():
            cs = self.case_sensitive[slot]
            for rid, t in zip(ids, records, strict=True):
                if t[slot] is not None:
                    _add_key(keys, index_key(t[slot], cs), rid)

    def in_id_order(
        self, include_deleted: bool, descending: bool, low: str | None, high: str | None
    ) -> Iterator[Row]:
        """See ``OrgStore.in_id_order``."""
        ids = self.order.walk(low, high, descending=descending)
        # Ids of rows removed since they were listed read as None and drop out.
        found = filter(None, map(self.rows.get, ids))
        slot = self.slot
        if include_deleted:
            return map(partial(Row, slot), found)
        return (Row(slot, t) for t in found if t[1] is not True)

    def newest_row(self) -> Row | None:
        """See ``OrgStore.newest``."""
        if self.newest is None:
            return None
        top = self.newest.top(self.rows)
        if not isinstance(top, tuple):
            return None
        values = self.rows.get(top[1])
        if values is None or values[self.newest.slot] != top[0]:
            return None  # written since: the caller's scan will see the new state
        return Row(self.slot, values)

    def key_ids(self, slot: int, key: WireValue) -> list[str]:
        """Ids of the rows (deleted too) whose unique/external id field ``slot`` has the
        normalised value ``key``, in id order."""
        found = self.keys[slot].get(key)
        if found is None:
            return []
        return [found] if isinstance(found, str) else sorted(found)

    def row(self, values: tuple[WireValue, ...]) -> Row:
        return Row(self.slot, values)

    def index(
        self, rid: str, old: tuple[WireValue, ...] | None, new: tuple[WireValue, ...] | None
    ) -> None:
        """Bring the indexes up to date after the row ``rid`` went from ``old`` to ``new``
        (``None``: absent) in :attr:`rows`."""
        if old is None:
            if new is not None:
                self.order.add(rid)
        elif new is None:
            self.order.remove(rid, self.rows)
        if self.newest is not None:
            self.newest.changed(rid, old, new)
        self.deleted += (new is not None and new[1] is True) - (old is not None and old[1] is True)
        if old is None and new is not None:
            self._index_new(rid, new)
            return
        for slot, index in self.refs.items():
            before = old[slot] if old is not None else None
            after = new[slot] if new is not None else None
            if before == after:
                continue
            if before is not None:
                _discard(index, str(before), rid)
            if after is not None:
                index.setdefault(str(after), set()).add(rid)
        for slot, keys in self.keys.items():
            cs = self.case_sensitive[slot]
            before = index_key(old[slot], cs) if old is not None else None
            after = index_key(new[slot], cs) if new is not None else None
            if before == after:
                continue
            if before is not None:
                _discard_key(keys, before, rid)
            if after is not None:
                _add_key(keys, after, rid)

    def _index_new(self, rid: str, new: tuple[WireValue, ...]) -> None:
        """:meth:`index` for a new row (inserts: nothing to take out)."""
        for slot, index in self.refs.items():
            after = new[slot]
            if after is not None:
                members = index.get(str(after))
                if members is None:
                    index[str(after)] = {rid}
                else:
                    members.add(rid)
        for slot, keys in self.keys.items():
            after = new[slot]
            if after is not None:
                _add_key(keys, index_key(after, self.case_sensitive[slot]), rid)


def _add_key(keys: dict[WireValue, str | set[str]], key: WireValue, rid: str) -> None:
    found = keys.get(key)
    if found is None:
        keys[key] = rid
    elif isinstance(found, str):
        if found != rid:
            keys[key] = {found, rid}
    else:
        found.add(rid)


def _discard_key(keys: dict[WireValue, str | set[str]], key: WireValue, rid: str) -> None:
    found = keys.get(key)
    if found is None:
        return
    if isinstance(found, str):
        if found == rid:
            del keys[key]
        return
    found.discard(rid)
    if len(found) == 1:
        keys[key] = next(iter(found))
    elif not found:
        del keys[key]


def _discard(index: dict[WireValue, set[str]] | dict[str, set[str]], key: object, rid: str) -> None:
    members = index.get(key)  # type: ignore[call-overload]
    if members is not None:
        members.discard(rid)
        if not members:
            del index[key]  # type: ignore[arg-type]
