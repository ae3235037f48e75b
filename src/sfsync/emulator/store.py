"""The org's records: an in-memory store with Salesforce's write semantics, indexes, a
recycle bin, all-or-none transactions, change listeners and optional SQLite durability.

Records are held per object as tuples of wire values aligned with the object's fields (compact:
a million Accounts fit in about a gigabyte), and handed out as read-only :class:`Row` mappings
keyed by declared field names. Compound fields (``BillingAddress``) are not stored; readers
build them from their components. Every stored record has every non-compound field, ``None``
when empty.

Reads (:meth:`OrgStore.scan`, :meth:`~OrgStore.get`, :meth:`~OrgStore.children`) take no lock:
each reads one immutable tuple or a snapshot of a table. They can therefore see a write of an
open transaction on another thread before it commits (read-uncommitted), which is harmless for
an emulator. Writes are serialised by a re-entrant lock; a :meth:`~OrgStore.transaction` holds
it until it ends, so it must not span an ``await``.

Choices where the reference is UNCONFIRMED: update/delete/undelete/hard-delete of a malformed
or unknown id, or of an id of another object than the one named, fail with 404 ``NOT_FOUND``
``The requested resource does not exist`` (what an observed real PATCH returned); undelete of a
live record fails with 400 ``UNDELETE_FAILED`` ``Entity is not in the recycle bin``. Deleting an
Account deletes its Contacts, Opportunities and Cases (their lookups are declared
``cascade_delete``), as on the platform; other lookups to a deleted record are cleared and put
back by undelete (see ``_clear_lookups_to`` for what is UNCONFIRMED there). Rolled-back
auto-numbers are reused (the platform burns them); rolled-back ids are not.
"""

from __future__ import annotations

import logging
import random
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from itertools import islice
from pathlib import Path

from sfsync.emulator.clock import OrgClock, format_datetime
from sfsync.emulator.errors import ApiError
from sfsync.emulator.ids import IdFactory, normalise
from sfsync.emulator.schema.model import FieldDef, FieldType, ObjectDef, Schema, WireValue
from sfsync.emulator.schema.standard import AUTO_NUMBER_DIGITS, derived_values
from sfsync.emulator.store_batch import DEFAULT_API_VERSION, BatchWriter, multiple_choices
from sfsync.emulator.store_changes import (
    CallContext,
    ChangeRecord,
    ChangeType,
    call_context,
    current_call,
)
from sfsync.emulator.store_plan import DERIVED_OBJECTS, WritePlan
from sfsync.emulator.store_rows import Row, Table, bump_stamp, index_key
from sfsync.emulator.store_sqlite import DeletionEntry, SqliteRecordFile
from sfsync.emulator.validation import (
    RuleChecker,
    check_references,
    check_required,
    check_unique,
    coerce_value,
    prepare_values,
)

# Seeded from the OS once: transaction keys are unique, not secret.
_random_bits = random.Random().getrandbits
INTEGRATION_USERNAME = "integration@sfsync.emulator"
#: Records stay in the recycle bin (and in the delete log) this long.
RECYCLE_BIN_DAYS = 15
_BULK_BATCH = 20_000
_log = logging.getLogger(__name__)
_AUTO_FORMAT = re.compile(r"\{(0+)\}")


@dataclass(slots=True)
class _Pending:
    table: Table
    record_id: str
    change_type: ChangeType
    changed_fields: tuple[str, ...]
    values_after: Row
    user_id: str
    context: CallContext


_bump = bump_stamp


class OrgStore:
    """The org's records (see the module docstring for the model).

    Args:
        schema: the org's objects.
        clock: the source of CreatedDate/LastModifiedDate/SystemModstamp.
        data_path: an SQLite file to load from and persist every commit to; memory only
            when ``None``.
        user_id: the user writes are attributed to when a call gives none; default: the
            built-in integration user (:attr:`integration_user_id`), created on first start.
        org_instance: the two id characters after the key prefix.
        rule_checker: evaluates validation rules (default: one using the SOQL engine's
            ``compile_condition``); tests may inject one with a fake compiler.

    Attributes:
        integration_user_id: the built-in integration user (username
            ``integration@sfsync.emulator``), created on first start and found again on reload.
        default_user_id: who writes are attributed to when a call names nobody.
        ids: the :class:`IdFactory` minting this org's ids.
    """

    def __init__(
        self,
        schema: Schema,
        clock: OrgClock,
        *,
        data_path: Path | str | None = None,
        user_id: str | None = None,
        org_instance: str = "xx",
        rule_checker: RuleChecker | None = None,
    ) -> None:
        self.schema = schema
        self.clock = clock
        self.ids = IdFactory(org_instance)
        self._tables = {o.name.lower(): Table(o) for o in schema}
        self._by_prefix = {t.obj.key_prefix: t for t in self._tables.values()}
        self._log: dict[str, DeletionEntry] = {}
        self._counters: dict[str, int] = {}
        self._rules = rule_checker or RuleChecker(schema)
        self._plans: dict[str, WritePlan] = {}
        self._now_cache: tuple[int, str] = (-1, "")
        self._listeners: list[Callable[[ChangeRecord], None]] = []
        self._commit_listeners: list[Callable[[list[ChangeRecord]], None]] = []
        self._lock = threading.RLock()
        self._depth = 0
        self._undo: list[Callable[[], None]] = []
        self._pending: list[_Pending] = []
        self._touched: dict[str, Table] = {}
        self._touched_log: set[str] = set()
        # Lookups cleared because their target went to the recycle bin, per deleted id, so
        # that undelete can put them back: deleted id -> ((child id, field), ...).
        self._cleared: dict[str, tuple[tuple[str, str], ...]] = {}
        self._touched_cleared: set[str] = set()
        self._referrers: dict[str, list[tuple[Table, int]]] = {}
        for table in self._tables.values():
            for f in table.fields:
                if f.type is FieldType.REFERENCE and not f.cascade_delete:
                    for target in f.reference_to:
                        self._referrers.setdefault(target.lower(), []).append(
                            (table, table.slot[f.name])
                        )
        self._file = SqliteRecordFile(Path(data_path)) if data_path is not None else None
        if self._file is not None:
            for table in self._tables.values():
                table.layout = self._file.layout(table.obj.name, table.names)
            self._load(self._file)
        self.integration_user_id = self._ensure_integration_user()
        self.default_user_id = normalise(user_id) if user_id else self.integration_user_id

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

    # ----------------------------------------------------------------------------- listeners

    def add_listener(self, callback: Callable[[ChangeRecord], None]) -> None:
        """Call ``callback`` with every committed change, after the commit, in order."""
        with self._lock:
            self._listeners.append(callback)

    def remove_listener(self, callback: Callable[[ChangeRecord], None]) -> None:
        with self._lock:
            self._listeners.remove(callback)

    def add_commit_listener(self, callback: Callable[[list[ChangeRecord]], None]) -> None:
        """Call ``callback`` once per commit with all its changes in write order (after the
        per-change listeners). Change Data Capture needs whole commits to merge events."""
        with self._lock:
            self._commit_listeners.append(callback)

    # ----------------------------------------------------------------------------- transactions

    def transaction(self) -> AbstractContextManager[None]:
        """All or none: an exception raised inside undoes every write made inside (and is
        re-raised). Nested blocks roll back only their own writes. Changes are persisted and
        announced to listeners when the outermost block ends."""
        return _Transaction(self)

    def _announce_commit(self, committed: list[ChangeRecord]) -> None:
        """Call the listeners with a commit's changes (after the store's lock is released)."""
        for change in committed:
            for listener in list(self._listeners):
                try:
                    listener(change)
                except Exception:
                    # The write is committed; a broken listener must neither undo it nor
                    # starve the listeners after it, so it is logged and skipped.
                    _log.exception("change listener %r failed on %s", listener, change.record_id)
        for commit_listener in list(self._commit_listeners):
            try:
                commit_listener(committed)
            except Exception:
                _log.exception("commit listener %r failed", commit_listener)

    def _rollback(self, mark: tuple[int, int]) -> None:
        self._undo_to(mark)
        if self._depth == 1:
            self._touched.clear()
            self._touched_log.clear()
            self._touched_cleared.clear()

    def _undo_to(self, mark: tuple[int, int]) -> None:
        """Undo the writes and forget the changes made since ``mark`` (a nested rollback)."""
        undo_mark, pending_mark = mark
        while len(self._undo) > undo_mark:
            self._undo.pop()()
        del self._pending[pending_mark:]

    def _commit(self) -> list[ChangeRecord]:
        pending, self._pending = self._pending, []
        touched, self._touched = self._touched, {}
        touched_log, self._touched_log = self._touched_log, set()
        touched_cleared, self._touched_cleared = self._touched_cleared, set()
        undo, self._undo = self._undo, []
        if self._file is not None and (touched or touched_log):
            try:
                self._file.commit(
                    ((rid, t.layout, t.rows.get(rid)) for rid, t in touched.items()),
                    ((rid, self._log.get(rid)) for rid in touched_log),
                    dict(self._counters),
                    ((rid, self._cleared.get(rid)) for rid in touched_cleared),
                )
            except BaseException:
                for step in reversed(undo):
                    step()
                raise
        if not pending or not (self._listeners or self._commit_listeners):
            return []
        # 128 random bits without a system call per commit (uuid4 reads os.urandom).
        key = f"{_random_bits(128):032x}"
        moment = self.clock.now()
        return [
            ChangeRecord(
                p.table.obj.name,
                p.record_id,
                p.change_type,
                p.changed_fields,
                p.values_after,
                key,
                moment,
                p.user_id,
                p.context.client_id,
                p.context.api,
                p.context.api_version,
            )
            for p in pending
        ]

    def _put(self, table: Table, rid: str, new: tuple[WireValue, ...] | None) -> None:
        """Replace (or add, or with ``None`` remove) one row, keeping indexes and undo."""
        old = table.rows.get(rid)
        self._apply(table, rid, old, new)
        # A partial, not a lambda: one object instead of a closure and its cells per write.
        self._undo.append(partial(self._apply, table, rid, new, old))
        self._touched[rid] = table

    @staticmethod
    def _apply(
        table: Table,
        rid: str,
        old: tuple[WireValue, ...] | None,
        new: tuple[WireValue, ...] | None,
    ) -> None:
        if new is None:
            table.rows.pop(rid, None)
        else:
            table.rows[rid] = new
        table.index(rid, old, new)

    def _set_log(self, rid: str, entry: DeletionEntry | None) -> None:
        old = self._log.get(rid)

        def apply(value: DeletionEntry | None) -> None:
            if value is None:
                self._log.pop(rid, None)
            else:
                self._log[rid] = value

        apply(entry)
        self._undo.append(lambda: apply(old))
        self._touched_log.add(rid)

    def _set_cleared(self, rid: str, entries: tuple[tuple[str, str], ...] | None) -> None:
        old = self._cleared.get(rid)

        def apply(value: tuple[tuple[str, str], ...] | None) -> None:
            if value:
                self._cleared[rid] = value
            else:
                self._cleared.pop(rid, None)

        apply(entries)
        self._undo.append(lambda: apply(old))
        self._touched_cleared.add(rid)

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
                values[stamp] = _bump(row[stamp], now)
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
            values[stamp] = _bump(row[stamp], now)
            self._put(child_table, cid, tuple(values))
        self._set_cleared(rid, None)

    def _announce(
        self,
        table: Table,
        rid: str,
        change: ChangeType,
        fields: Iterable[str],
        user: str,
        values: tuple[WireValue, ...] | None = None,
    ) -> None:
        after = table.row(values if values is not None else table.rows[rid])
        self._pending_change(table, rid, change, tuple(fields), after, user, current_call())

    def _pending_change(
        self,
        table: Table,
        rid: str,
        change: ChangeType,
        fields: tuple[str, ...],
        after: Row,
        user: str,
        context: CallContext,
    ) -> None:
        self._pending.append(_Pending(table, rid, change, fields, after, user, context))

    # ----------------------------------------------------------------------------- writing

    def insert(
        self, object_name: str, values: Mapping[str, object], *, user_id: str | None = None
    ) -> str:
        """Create a record from JSON-decoded ``values``; returns its 18-character id.

        Raises ApiError (400, section 2.3 codes) when validation fails; nothing is written.
        """
        # A batch of one: the batch writer's checks are these calls' (see store_batch).
        with self.batch(object_name, user_id=user_id, size_hint=1) as writer:
            return writer.insert(values)

    def _insert(
        self,
        table: Table,
        values: Mapping[str, object],
        user: str,
        *,
        forced_id: str | None = None,
    ) -> str:
        obj = table.obj
        if not obj.createable:
            raise ApiError.of(
                400, "INVALID_TYPE_FOR_OPERATION", f"entity type {obj.name} does not support insert"
            )
        given = prepare_values(obj, self.schema, values, creating=True, lookups=self)
        rid = forced_id or self.ids.new_id(obj.key_prefix)
        now = self._now()
        record: dict[str, WireValue] = dict(zip(table.names, table.template, strict=True))
        record.update(
            {
                k: v
                for k, v in given.items()
                if v is not None or k not in record or record[k] is None
            }
        )
        record.update(
            Id=rid,
            IsDeleted=False,
            CreatedDate=now,
            CreatedById=user,
            LastModifiedDate=now,
            LastModifiedById=user,
            SystemModstamp=now,
        )
        if "OwnerId" in table.slot and record.get("OwnerId") is None:
            record["OwnerId"] = user
        for f in table.auto:
            record[f.name] = self._next_auto_number(obj, f)
        record.update(derived_values(obj.name, record))
        check_required(obj, record, given, creating=True)
        check_references(obj, self.schema, given, self)
        check_unique(obj, record, rid, self)
        self._rules.check(obj, record, self, self.clock.now())
        self._put(table, rid, tuple(record[n] for n in table.names))
        changed = [n for n in table.names if record[n] is not None]
        self._announce(table, rid, "CREATE", changed, user)
        return rid

    def update(
        self,
        object_name: str,
        record_id: str,
        values: Mapping[str, object],
        *,
        user_id: str | None = None,
    ) -> None:
        """Change a live record. 404 NOT_FOUND for an unknown id, 404 ENTITY_IS_DELETED for a
        record in the recycle bin, 400 with section 2.3 codes when validation fails."""
        with self.batch(object_name, user_id=user_id) as writer:
            writer.update(record_id, values)

    def _update(self, table: Table, rid: str, values: Mapping[str, object], user: str) -> None:
        obj = table.obj
        old = table.rows[rid]
        if old[1] is True:
            raise ApiError.of(404, "ENTITY_IS_DELETED", "entity is deleted")
        if not obj.updateable:
            raise ApiError.of(
                400, "INVALID_TYPE_FOR_OPERATION", f"entity type {obj.name} does not support update"
            )
        given = prepare_values(
            obj, self.schema, values, creating=False, lookups=self, record_id=rid
        )
        record: dict[str, WireValue] = dict(zip(table.names, old, strict=True))
        record.update(given)
        now = self._now()
        record.update(
            LastModifiedDate=now,
            LastModifiedById=user,
            SystemModstamp=_bump(record["SystemModstamp"], now),
        )
        record.update(derived_values(obj.name, record))
        check_required(obj, record, given, creating=False)
        check_references(obj, self.schema, given, self)
        check_unique(obj, given, rid, self)
        self._rules.check(obj, record, self, self.clock.now())
        new = tuple(record[n] for n in table.names)
        self._put(table, rid, new)
        # LastModifiedDate counts as changed even when the clock has not moved: it was set,
        # and CDC always lists it for an update.
        changed = [
            n
            for n, a, b in zip(table.names, old, new, strict=True)
            if a != b or n == "LastModifiedDate"
        ]
        self._announce(table, rid, "UPDATE", changed, user)

    def _upsert_body(
        self, f: FieldDef, values: Mapping[str, object], value: str
    ) -> dict[str, object]:
        """``values`` without the external id field, which must agree with the URL's ``value``
        when given (Salesforce refuses a body that contradicts its URL)."""
        body = dict(values)
        for key in list(body):
            if key.lower() == f.name.lower():
                if body[key] is not None and not self._same_value(f, body[key], value):
                    raise ApiError.of(
                        400,
                        "INVALID_FIELD",
                        f"The value of {f.name} in the request body ({body[key]}) does "
                        f"not match the value in the URL ({value}).",
                        (f.name,),
                    )
                del body[key]
        return body

    def upsert(
        self,
        object_name: str,
        field_name: str,
        value: str,
        values: Mapping[str, object],
        *,
        user_id: str | None = None,
    ) -> tuple[str, bool]:
        """Insert or update by external id: returns (id, created).

        ``field_name`` must be an external id field or ``Id`` (404 NOT_FOUND ``Provided
        external ID field does not exist or is not accessible: <field>`` otherwise). With
        ``Id`` an empty value inserts and an id updates. Several live matches raise ApiError
        300 ``MULTIPLE_CHOICES`` whose detail messages are the matching record URLs (the REST
        layer renders them as the 300 body). The external id field in ``values``, if any, must
        carry the same value (400 INVALID_FIELD otherwise).
        """
        table = self._table(object_name)
        obj = table.obj
        f = obj.field(field_name)
        if f is None or not (f.external_id or f.type is FieldType.ID):
            raise ApiError.of(
                404,
                "NOT_FOUND",
                f"Provided external ID field does not exist or is not accessible: {field_name}",
            )
        user = self._user(user_id)
        with self.transaction():
            if f.type is FieldType.ID:
                if not value:
                    return self._insert(table, values, user), True
                rid = self._resolve(value, table)
                self._update(table, rid, values, user)
                return rid, False
            body = self._upsert_body(f, values, value)
            ids = self.find_by_field(obj.name, f.name, value)
            if len(ids) > 1:
                raise multiple_choices(obj, ids)
            if ids:
                self._update(table, ids[0], body, user)
                return ids[0], False
            body[f.name] = value
            return self._insert(table, body, user), True

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
        record[stamp] = _bump(old[stamp], now)
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
        record[stamp] = _bump(old[stamp], now)
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

    # ----------------------------------------------------------------------------- batches

    def batch(
        self, object_name: str, *, user_id: str | None = None, size_hint: int = 0
    ) -> AbstractContextManager[BatchWriter]:
        """One transaction writing many records of ``object_name`` through a
        :class:`~sfsync.emulator.store_batch.BatchWriter`: its ``insert``, ``update`` and
        ``upsert`` behave as the single-record calls (a row that raises is rolled back alone),
        only cheaper per row. ``size_hint`` is how many inserts to mint ids for up front.
        An exception escaping the block undoes the whole batch, as :meth:`transaction` does."""
        return _Batch(self, object_name, user_id, size_hint)

    def _writer(self, table: Table, user: str, size_hint: int) -> BatchWriter:
        """A batch's writer, made inside its transaction (the writer's timestamp is taken
        once the store's lock is held, so commits' stamps follow their order)."""
        plan = self._plans.get(table.obj.name)
        if plan is None:
            plan = self._plans[table.obj.name] = WritePlan(table)
        return BatchWriter(self, table, plan, user, size_hint)

    # ----------------------------------------------------------------------------- bulk

    def bulk_load(
        self,
        object_name: str,
        rows: Iterable[Mapping[str, WireValue]],
        *,
        user_id: str | None = None,
    ) -> int:
        """Load rows fast (seeding, benchmarks); returns how many. See :meth:`bulk_insert`."""
        return len(self.bulk_insert(object_name, rows, user_id=user_id))

    def bulk_insert(
        self,
        object_name: str,
        rows: Iterable[Mapping[str, WireValue]],
        *,
        user_id: str | None = None,
    ) -> list[str]:
        """Insert rows already in wire form, skipping validation and listeners; returns the new
        ids in row order.

        The store still assigns ids, system fields, defaults, auto-numbers and the standard
        computed fields, and keeps its indexes. Keys may be in any casing; an unknown field
        raises INVALID_FIELD (earlier batches of 20,000 rows stay loaded). Each batch is persisted
        in one SQLite transaction. Not allowed inside :meth:`transaction` (it cannot be undone).
        """
        table = self._table(object_name)
        obj = table.obj
        user = self._user(user_id)
        derive = obj.name in DERIVED_OBJECTS
        with self._lock:
            if self._depth:
                raise RuntimeError("bulk_insert cannot run inside a transaction")
            now = self._now()
            template = list(table.template)
            system: dict[str, WireValue] = {
                "IsDeleted": False,
                "CreatedDate": now,
                "CreatedById": user,
                "LastModifiedDate": now,
                "LastModifiedById": user,
                "SystemModstamp": now,
                "OwnerId": user,
            }
            for sys_name, sys_value in system.items():
                if sys_name in table.slot:
                    template[table.slot[sys_name]] = sys_value
            slot = table.slot
            auto = [(table.slot[f.name], f) for f in table.auto]
            created: list[str] = []
            source = iter(rows)
            while batch := list(islice(source, _BULK_BATCH)):
                ids = self.ids.new_ids(obj.key_prefix, len(batch))
                records: list[tuple[WireValue, ...]] = []
                for rid, row in zip(ids, batch, strict=True):
                    values = template.copy()
                    for key, value in row.items():
                        index = slot.get(key)
                        if index is None:
                            index = slot[self._declared(table, key)]
                        if value is not None or template[index] is None:
                            values[index] = value
                    values[0] = rid
                    for index, f in auto:
                        values[index] = self._next_auto_number(obj, f)
                    if derive:
                        derived = derived_values(obj.name, Row(slot, tuple(values)))
                        for derived_name, derived_value in derived.items():
                            values[slot[derived_name]] = derived_value
                    records.append(tuple(values))
                table.add_many(ids, records)
                created.extend(ids)
                if self._file is not None:
                    self._file.bulk_insert(table.layout, zip(ids, records, strict=True))
            if self._file is not None:
                self._file.commit((), (), dict(self._counters))
        return created

    # ----------------------------------------------------------------------------- internals

    def close(self) -> None:
        """Close the SQLite file (a memory-only store needs no closing)."""
        if self._file is not None:
            self._file.close()

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

    @staticmethod
    def _same_value(f: FieldDef, given: object, value: str) -> bool:
        """Whether a body value and a URL value name the same external id (``42`` and
        ``"42.0"`` do in a number field; text compares as the field's index does)."""
        try:
            a, b = coerce_value(f, given), coerce_value(f, value)
        except ApiError:
            return False
        return index_key(a, f.case_sensitive) == index_key(b, f.case_sensitive)

    @staticmethod
    def _declared(table: Table, key: str) -> str:
        declared = table.lower.get(key.lower())
        if declared is None:
            raise ApiError.of(
                400, "INVALID_FIELD", f"No such column '{key}' on sobject of type {table.obj.name}"
            )
        return declared

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

    def _next_auto_number(self, obj: ObjectDef, f: FieldDef) -> str:
        key = f"{obj.name}.{f.name}"
        number = self._counters.get(key, 0) + 1
        previous = self._counters.get(key)
        self._counters[key] = number
        if self._depth:
            # Rolled-back numbers are reused, unlike the platform, so that a failed
            # all-or-none batch leaves no gap visible in tests.
            def undo() -> None:
                if previous is None:
                    self._counters.pop(key, None)
                else:
                    self._counters[key] = previous

            self._undo.append(undo)
        formats = obj.extra.get("auto_number_formats")
        fmt = formats.get(f.name) if isinstance(formats, Mapping) else None
        if isinstance(fmt, str) and _AUTO_FORMAT.search(fmt):
            return _AUTO_FORMAT.sub(lambda m: str(number).zfill(len(m.group(1))), fmt, count=1)
        return str(number).zfill(AUTO_NUMBER_DIGITS)

    def _load(self, file: SqliteRecordFile) -> None:
        """Rebuild memory from the SQLite file. Records of objects no longer in the schema stay
        in the file, ignored; fields no longer in the schema are dropped, new ones are null."""
        self._counters.update(file.counters())
        remaps: dict[tuple[str, tuple[str, ...]], list[tuple[int, int]]] = {}
        loaded: dict[str, tuple[list[str], list[tuple[WireValue, ...]]]] = {}
        highest: dict[str, str] = {}
        for rid, object_name, names, stored in file.records():
            # Same prefix and org: string order is counter order, so only the top id matters.
            if rid > highest.get(rid[:6], ""):
                highest[rid[:6]] = rid
            table = self._tables.get(object_name.lower())
            if table is None:
                continue
            if names == table.names:
                record = tuple(stored)
            else:
                key = (table.obj.name, names)
                remap = remaps.get(key)
                if remap is None:
                    remap = [(i, table.slot[n]) for i, n in enumerate(names) if n in table.slot]
                    remaps[key] = remap
                values: list[WireValue] = [None] * len(table.names)
                for source, target in remap:
                    values[target] = stored[source]
                values[0], values[1] = rid, values[1] is True
                record = tuple(values)
            ids, records = loaded.setdefault(table.obj.name, ([], []))
            ids.append(rid)
            records.append(record)
        for object_name, (ids, records) in loaded.items():
            self._tables[object_name.lower()].add_many(ids, records)
        for rid in highest.values():
            self.ids.observe(rid)
        self._cleared.update(file.cleared_lookups())
        for rid, entry in file.deletions():
            self.ids.observe(rid)
            self._log[rid] = entry

    def _ensure_integration_user(self) -> str:
        users = self._tables.get("user")
        if users is None:
            raise ValueError("the schema has no User object")
        existing = self.find_by_field("User", "Username", INTEGRATION_USERNAME)
        if existing:
            return existing[0]
        uid = self.ids.new_id(users.obj.key_prefix)
        with self.transaction():
            self._insert(
                users,
                {
                    "Username": INTEGRATION_USERNAME,
                    "FirstName": "Integration",
                    "LastName": "User",
                    "Alias": "integ",
                    "Email": INTEGRATION_USERNAME,
                    "TimeZoneSidKey": "GMT",
                    "LocaleSidKey": "en_US",
                    "EmailEncodingKey": "UTF-8",
                    "LanguageLocaleKey": "en_US",
                },
                uid,
                forced_id=uid,
            )
        return uid


def _not_found() -> ApiError:
    return ApiError.of(404, "NOT_FOUND", "The requested resource does not exist")


class _Transaction:
    """:meth:`OrgStore.transaction` as a plain context manager: a generator-based one cost a
    few microseconds more per single-record write (each write is a batch of one inside it)."""

    __slots__ = ("_mark", "_store")

    def __init__(self, store: OrgStore) -> None:
        self._store = store
        self._mark = (0, 0)

    def __enter__(self) -> None:
        store = self._store
        store._lock.acquire()
        self._mark = (len(store._undo), len(store._pending))
        store._depth += 1

    def __exit__(self, kind: type[BaseException] | None, error: object, trace: object) -> None:
        store = self._store
        committed: list[ChangeRecord] = []
        try:
            try:
                if kind is not None:
                    store._rollback(self._mark)
            finally:
                store._depth -= 1
            if kind is None and store._depth == 0:
                committed = store._commit()
        finally:
            store._lock.release()
        if committed:
            store._announce_commit(committed)


class _Batch:
    """:meth:`OrgStore.batch`: a transaction whose block gets a writer."""

    __slots__ = ("_object_name", "_size_hint", "_store", "_transaction", "_user_id")

    def __init__(
        self, store: OrgStore, object_name: str, user_id: str | None, size_hint: int
    ) -> None:
        self._store = store
        self._object_name = object_name
        self._user_id = user_id
        self._size_hint = size_hint
        self._transaction = _Transaction(store)

    def __enter__(self) -> BatchWriter:
        store = self._store
        # Unknown objects and users are refused before the transaction opens.
        table = store._table(self._object_name)
        user = store._user(self._user_id)
        self._transaction.__enter__()
        try:
            return store._writer(table, user, self._size_hint)
        except BaseException as error:
            self._transaction.__exit__(type(error), error, error.__traceback__)
            raise

    def __exit__(self, kind: type[BaseException] | None, error: object, trace: object) -> None:
        self._transaction.__exit__(kind, error, trace)


def _minute(moment: datetime) -> str:
    """``moment`` floored to the minute, in wire form (comparable with stored datetimes)."""
    utc = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    return format_datetime(utc.replace(second=0, microsecond=0))


__all__ = [
    "DEFAULT_API_VERSION",
    "INTEGRATION_USERNAME",
    "RECYCLE_BIN_DAYS",
    "CallContext",
    "ChangeRecord",
    "ChangeType",
    "OrgStore",
    "Row",
    "call_context",
]
