"""The store's deletions: to the recycle bin with the cascade-delete children, back out of it
(undelete), for good (hard delete, recycle-bin purge), and the other lookups to a deleted record,
cleared and put back by undelete.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

from sfsync.emulator.clock import format_datetime
from sfsync.emulator.errors import ApiError
from sfsync.emulator.store_reads import RECYCLE_BIN_DAYS
from sfsync.emulator.store_rows import Table, bump_stamp
from sfsync.emulator.store_transactions import StoreTransactions
from sfsync.emulator.validation import check_unique


class StoreDeletes(StoreTransactions):
    """Delete, undelete, hard delete and purge of :class:`~sfsync.emulator.store.OrgStore`."""

    # Set by OrgStore.__init__: per object, the non-cascading lookups that point at it.
    _referrers: dict[str, list[tuple[Table, int]]]

    def delete(self, record_id: str, *, user_id: str | None = None) -> None:
        """Move a record (and, recursively, its cascade-delete children) to the recycle bin.

        404 NOT_FOUND for an unknown id, 404 ENTITY_IS_DELETED when already deleted, 400
        INSUFFICIENT_ACCESS_OR_READONLY for objects that cannot be deleted (User).
        """
        user = self._user(user_id)
        with self.transaction():
            table = self._table_of(record_id)
            rid = self._resolve(record_id, table)
            if table.rows[rid][1] is True:
                raise ApiError.of(404, "ENTITY_IS_DELETED", "entity is deleted")
            if not table.obj.deletable:
                raise ApiError.of(
                    400,
                    "INSUFFICIENT_ACCESS_OR_READONLY",
                    "insufficient access rights on object id",
                    (),
                )
            self._soft_delete(table, rid, rid, user, self._now())

    def _soft_delete(self, table: Table, rid: str, root: str, user: str, now: str) -> None:
        old = table.rows[rid]
        record = list(old)
        record[1] = True
        stamp = table.slot["SystemModstamp"]
        record[stamp] = bump_stamp(old[stamp], now)
        self._put(table, rid, tuple(record))
        self._set_log(rid, (table.obj.name, now, None if root == rid else root))
        self._announce(table, rid, "DELETE", ("IsDeleted", "SystemModstamp"), user)
        for child_table, slot in self._cascade_children(table):
            for cid in sorted(child_table.refs[slot].get(rid, ())):
                if child_table.rows[cid][1] is not True:
                    self._soft_delete(child_table, cid, root, user, now)
        cleared = self._clear_lookups_to(table, rid, now)
        if cleared:
            self._set_cleared(rid, cleared)

    def _cascade_children(self, table: Table) -> Iterator[tuple[Table, int]]:
        for rel in table.obj.child_relationships:
            if rel.cascade_delete:
                child = self._tables[rel.child_object.lower()]
                yield child, child.slot[rel.field]

    def undelete(self, record_id: str, *, user_id: str | None = None) -> None:
        """Restore a record from the recycle bin, with the children its deletion took along.

        404 NOT_FOUND for an unknown id; 400 UNDELETE_FAILED ``Entity is not in the recycle
        bin`` when it is not deleted; DUPLICATE_VALUE when a live record took one of its
        unique values meanwhile.
        """
        user = self._user(user_id)
        with self.transaction():
            table = self._table_of(record_id)
            rid = self._resolve(record_id, table)
            if table.rows[rid][1] is not True:
                raise ApiError.of(400, "UNDELETE_FAILED", "Entity is not in the recycle bin")
            if not table.obj.undeletable:
                raise ApiError.of(
                    400,
                    "INVALID_TYPE_FOR_OPERATION",
                    f"entity type {table.obj.name} does not support undelete",
                )
            now = self._now()
            self._restore(table, rid, user, now)
            taken = sorted(i for i, (_o, _w, root) in self._log.items() if root == rid)
            for cid in taken:
                child_table = self._by_prefix[cid[:3]]
                if cid in child_table.rows and child_table.rows[cid][1] is True:
                    self._restore(child_table, cid, user, now)

    def _restore(self, table: Table, rid: str, user: str, now: str) -> None:
        old = table.rows[rid]
        uniques = {n: old[table.slot[n]] for n in table.names if table.fields[table.slot[n]].unique}
        check_unique(table.obj, uniques, rid, self)
        record = list(old)
        record[1] = False
        stamp = table.slot["SystemModstamp"]
        record[stamp] = bump_stamp(old[stamp], now)
        self._put(table, rid, tuple(record))
        self._set_log(rid, None)
        self._announce(table, rid, "UNDELETE", ("IsDeleted", "SystemModstamp"), user)
        self._restore_lookups_to(rid, now)

    def hard_delete(self, record_id: str) -> None:
        """Erase a record (and its cascade-delete children) for good, live or recycled.

        The delete log keeps it (so the ``deleted`` resource still reports it); listeners hear
        a DELETE only for records that were live.
        """
        with self.transaction():
            table = self._table_of(record_id)
            rid = self._resolve(record_id, table)
            self._erase(table, rid, rid, self._now())

    def purge_recycle_bin(self) -> int:
        """Erase records that have been in the recycle bin longer than
        :data:`RECYCLE_BIN_DAYS` (the platform does this on its own; call it from a periodic
        task or an admin endpoint). Returns how many records were erased."""
        cutoff = format_datetime(self.clock.now() - timedelta(days=RECYCLE_BIN_DAYS))
        expired = sorted(
            rid for rid, (_obj, when, root) in list(self._log.items()) if when < cutoff and not root
        )
        erased = 0
        with self.transaction():
            for rid in expired:
                table = self._by_prefix.get(rid[:3])
                if table is not None and rid in table.rows and table.rows[rid][1] is True:
                    before = sum(len(t.rows) for t in self._tables.values())
                    self._erase(table, rid, rid, self._now())
                    erased += before - sum(len(t.rows) for t in self._tables.values())
        return erased

    def _erase(self, table: Table, rid: str, root: str, now: str) -> None:
        for child_table, slot in self._cascade_children(table):
            for cid in sorted(child_table.refs[slot].get(rid, ())):
                if cid in child_table.rows:
                    self._erase(child_table, cid, root, now)
        old = table.rows[rid]
        if old[1] is not True:
            gone = (old[0], True, *old[2:])
            self._announce(table, rid, "DELETE", ("IsDeleted",), self.default_user_id, gone)
            self._set_log(rid, (table.obj.name, now, None if root == rid else root))
            self._clear_lookups_to(table, rid, now)
        elif rid in self._cleared:
            self._set_cleared(rid, None)  # erased for good: nothing to restore any more
        self._put(table, rid, None)

    # ----------------------------------------------------------------------------- cleared lookups

    def _clear_lookups_to(self, table: Table, rid: str, now: str) -> tuple[tuple[str, str], ...]:
        """Null every live record's (non-cascading) lookup to ``rid``, as the platform does when
        ``rid`` is deleted; returns what was cleared. The children's SystemModstamp moves (so
        replication by SystemModstamp sees the change) but not LastModifiedDate, and no change
        event is sent (UNCONFIRMED: the platform's exact bookkeeping here is not documented)."""
        cleared: list[tuple[str, str]] = []
        for child_table, slot in self._referrers.get(table.obj.name.lower(), ()):
            stamp = child_table.slot["SystemModstamp"]
            for cid in sorted(child_table.refs[slot].get(rid, ())):
                row = child_table.rows[cid]
                if row[1] is True or cid == rid:
                    continue
                values = list(row)
                values[slot] = None
                values[stamp] = bump_stamp(row[stamp], now)
                self._put(child_table, cid, tuple(values))
                cleared.append((cid, child_table.names[slot]))
        return tuple(cleared)

    def _restore_lookups_to(self, rid: str, now: str) -> None:
        for cid, field_name in self._cleared.get(rid, ()):
            child_table = self._by_prefix.get(cid[:3])
            row = child_table.rows.get(cid) if child_table is not None else None
            if child_table is None or row is None:
                continue
            slot = child_table.slot.get(field_name)
            if slot is None or row[slot] is not None:
                continue  # re-pointed meanwhile: the newer value wins
            values = list(row)
            values[slot] = rid
            stamp = child_table.slot["SystemModstamp"]
            values[stamp] = bump_stamp(row[stamp], now)
            self._put(child_table, cid, tuple(values))
        self._set_cleared(rid, None)
