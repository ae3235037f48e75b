"""The store's state and its read side: what :class:`~sfsync.emulator.store.OrgStore` holds
(declared here, set up by its ``__init__``), the reads (:meth:`~StoreReads.scan`,
:meth:`~StoreReads.get`, :meth:`~StoreReads.children` and the index-served ones, which take
no lock, see ``store.py``) and the look-ups every write shares (object, id, user, time).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta

from sfsync.emulator.clock import OrgClock, format_datetime
from sfsync.emulator.errors import ApiError
from sfsync.emulator.ids import IdFactory, normalise
from sfsync.emulator.schema.model import FieldType, Schema, WireValue
from sfsync.emulator.store_rows import Row, Table, index_key
from sfsync.emulator.store_sqlite import DeletionEntry
from sfsync.emulator.validation import coerce_value

#: Records stay in the recycle bin (and in the delete log) this long.
RECYCLE_BIN_DAYS = 15


class StoreReads:
    """The state, reads and look-ups every part of :class:`~.store.OrgStore` builds on."""

    # Set by OrgStore.__init__; declared here for the methods of every part of the store.
    schema: Schema
    clock: OrgClock
    ids: IdFactory
    default_user_id: str
    _tables: dict[str, Table]
    _by_prefix: dict[str, Table]
    _log: dict[str, DeletionEntry]
    _now_cache: tuple[int, str]

    # ----------------------------------------------------------------------------- reading

    def table_names(self) -> list[str]:
        return [t.obj.name for t in self._tables.values()]

    def scan(self, object_name: str, *, include_deleted: bool) -> Iterator[Mapping[str, WireValue]]:
        """Every record of ``object_name``, in insertion order; deleted ones only when asked.

        Iterates over a snapshot taken at the first ``next``, so two scans with no write in
        between see the same rows in the same order.
        """
        table = self._table(object_name)
        snapshot = list(table.rows.values())
        slot = table.slot
        if include_deleted:
            return (Row(slot, t) for t in snapshot)
        return (Row(slot, t) for t in snapshot if t[1] is not True)

    def get(self, record_id: str) -> Mapping[str, WireValue] | None:
        """The record with this id (15 or 18 characters, any object), deleted ones included."""
        try:
            rid = normalise(record_id)
        except ValueError:
            return None
        table = self._by_prefix.get(rid[:3])
        if table is None:
            return None
        values = table.rows.get(rid)
        return None if values is None else Row(table.slot, values)

    def children(
        self, object_name: str, field_name: str, parent_id: str, *, include_deleted: bool
    ) -> Iterator[Mapping[str, WireValue]]:
        """Records of ``object_name`` whose lookup ``field_name`` is ``parent_id``, by id order.

        Served from the lookup's index: cost is proportional to the number of children.
        """
        table = self._table(object_name)
        name = table.lower.get(field_name.lower())
        if name is None or table.slot[name] not in table.refs:
            raise ApiError.of(
                400, "INVALID_FIELD", f"No such lookup '{field_name}' on {object_name}"
            )
        try:
            pid = normalise(parent_id)
        except ValueError:
            return iter(())
        ids = sorted(table.refs[table.slot[name]].get(pid, ()))
        rows = [table.rows[i] for i in ids if i in table.rows]
        return (Row(table.slot, t) for t in rows if include_deleted or t[1] is not True)

    def find_by_field(self, object_name: str, field_name: str, value: WireValue) -> list[str]:
        """Ids of live records whose ``field_name`` equals ``value`` (ignoring case unless the
        field is case-sensitive), in id order. Unique and external id fields use an index;
        other fields are scanned. ``value`` may be given as text (it is coerced to the field's
        type: an external id value taken from a URL)."""
        table = self._table(object_name)
        name = table.lower.get(field_name.lower())
        if name is None:
            raise ApiError.of(
                400,
                "INVALID_FIELD",
                f"No such column '{field_name}' on sobject of type {table.obj.name}",
            )
        slot = table.slot[name]
        f = table.fields[slot]
        wanted: WireValue
        if f.type.is_text and f.type not in (FieldType.ID, FieldType.REFERENCE):
            wanted = None if value is None or value == "" else str(value)
        else:
            try:
                wanted = coerce_value(f, value)
            except ApiError:  # a value that cannot be stored in this field matches nothing
                return []
        if wanted is None:
            return []
        key = index_key(wanted, f.case_sensitive)
        rows = table.rows
        if slot in table.keys:
            return [i for i in table.key_ids(slot, key) if rows[i][1] is not True]
        cs = f.case_sensitive
        return [
            rid
            for rid, t in rows.items()
            if t[1] is not True and t[slot] is not None and index_key(t[slot], cs) == key
        ]

    def count(self, object_name: str, *, include_deleted: bool = False) -> int:
        """How many records :meth:`scan` would yield, without a scan (the table keeps its
        number of deleted rows)."""
        table = self._table(object_name)
        if include_deleted:
            return len(table.rows)
        # Clipped: a write racing this read may have updated one number and not yet the other.
        return max(len(table.rows) - table.deleted, 0)

    def in_id_order(
        self,
        object_name: str,
        *,
        include_deleted: bool,
        descending: bool = False,
        low: str | None = None,
        high: str | None = None,
    ) -> Iterator[Mapping[str, WireValue]]:
        """The records :meth:`scan` would yield whose id is between ``low`` and ``high`` (both
        inclusive; ``None``: unbounded), by ascending id (descending when asked), from the
        table's id index: the cost is the number of records read, not the table's size."""
        table = self._table(object_name)
        return table.in_id_order(include_deleted, descending, low, high)

    def id_span(self, object_name: str, low: str | None = None, high: str | None = None) -> int:
        """At least as many as the records :meth:`in_id_order` reads between ``low`` and
        ``high`` (it counts ids of records erased since they were indexed too)."""
        return self._table(object_name).order.span(low, high)

    def newest(self, object_name: str) -> Mapping[str, WireValue] | None:
        """The record with the greatest ``(SystemModstamp, Id)``, deleted ones included, among
        those whose SystemModstamp is set; ``None`` when there is none or it cannot be told
        (the caller then scans). Kept up to date by every write (see ``store_index.Newest``)."""
        return self._table(object_name).newest_row()

    def updated_ids(self, object_name: str, start: datetime, end: datetime) -> list[str]:
        """Ids of live records whose SystemModstamp is in ``[start, end)``, both truncated to
        the minute as the ``updated`` resource does (section 2.8), in id order."""
        table = self._table(object_name)
        low, high = _minute(start), _minute(end)
        stamp = table.slot["SystemModstamp"]
        return sorted(
            rid
            for rid, t in list(table.rows.items())
            if t[1] is not True and low <= str(t[stamp]) < high
        )

    def deleted_records(
        self, object_name: str, start: datetime, end: datetime
    ) -> list[tuple[str, str]]:
        """(id, deletedDate) of records of ``object_name`` deleted in ``[start, end)`` (minute
        precision) and still within the recycle-bin retention, oldest first."""
        name = self._table(object_name).obj.name
        low, high = _minute(start), _minute(end)
        retention = format_datetime(self.clock.now() - timedelta(days=RECYCLE_BIN_DAYS))
        low = max(low, retention)
        found = [
            (rid, when)
            for rid, (obj, when, _root) in list(self._log.items())
            if obj == name and low <= when < high
        ]
        return sorted(found, key=lambda item: (item[1], item[0]))

    # ----------------------------------------------------------------------------- look-ups

    def _table(self, object_name: str) -> Table:
        table = self._tables.get(object_name.lower())
        if table is None:
            raise ApiError.of(
                400,
                "INVALID_TYPE",
                f"sObject type '{object_name}' is not supported. If you are attempting to use "
                "a custom object, be sure to append the '__c' after the entity name. Please "
                "reference your WSDL or the describe call for the appropriate names.",
            )
        return table

    def _table_of(self, record_id: str) -> Table:
        table = self._by_prefix.get(record_id[:3])
        if table is None:
            raise _not_found()
        return table

    def _resolve(self, record_id: str, table: Table) -> str:
        """The stored 18-character id of ``record_id`` in ``table``; 404 NOT_FOUND otherwise."""
        try:
            rid = normalise(record_id)
        except ValueError:
            raise _not_found() from None
        if rid not in table.rows:
            raise _not_found()
        return rid

    def _user(self, user_id: str | None) -> str:
        if not user_id:
            return self.default_user_id
        try:
            return normalise(user_id)
        except ValueError:
            return self.default_user_id

    def _now(self) -> str:
        """The org clock's time in wire form (millisecond precision), formatted once per
        millisecond: every write takes it, and most writes of a busy org share one."""
        # Rounded to the microsecond first, as datetime.fromtimestamp rounds the clock's time.
        millis = round(self.clock.time() * 1_000_000) // 1000
        cached = self._now_cache
        if cached[0] != millis:
            moment = datetime.fromtimestamp(millis / 1000, tz=UTC)
            cached = self._now_cache = (millis, format_datetime(moment))
        return cached[1]


def _not_found() -> ApiError:
    return ApiError.of(404, "NOT_FOUND", "The requested resource does not exist")


def _minute(moment: datetime) -> str:
    """``moment`` floored to the minute, in wire form (comparable with stored datetimes)."""
    utc = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    return format_datetime(utc.replace(second=0, microsecond=0))
