"""The store's transactions: the undo log every write goes through (:meth:`~StoreTransactions._put`
and friends), nested all-or-none blocks, the commit (persisted to SQLite, then announced to the
change listeners) and the auto-number counters, which roll back with it.
"""

from __future__ import annotations

import logging
import random
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from functools import partial

from sfsync.emulator.schema.model import FieldDef, ObjectDef, WireValue
from sfsync.emulator.schema.standard import AUTO_NUMBER_DIGITS
from sfsync.emulator.store_changes import CallContext, ChangeRecord, ChangeType, current_call
from sfsync.emulator.store_reads import StoreReads
from sfsync.emulator.store_rows import Row, Table
from sfsync.emulator.store_sqlite import DeletionEntry, SqliteRecordFile

# Seeded from the OS once: transaction keys are unique, not secret.
_random_bits = random.Random().getrandbits
# Named after the public module, not this one: logging configuration names the store.
_log = logging.getLogger("sfsync.emulator.store")
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


class StoreTransactions(StoreReads):
    """Transactions, undo and change announcements of :class:`~sfsync.emulator.store.OrgStore`."""

    # Set by OrgStore.__init__ (see StoreReads).
    _counters: dict[str, int]
    _listeners: list[Callable[[ChangeRecord], None]]
    _commit_listeners: list[Callable[[list[ChangeRecord]], None]]
    _lock: threading.RLock
    _depth: int
    _undo: list[Callable[[], None]]
    _pending: list[_Pending]
    _touched: dict[str, Table]
    _touched_log: set[str]
    # Lookups cleared because their target went to the recycle bin, per deleted id, so
    # that undelete can put them back: deleted id -> ((child id, field), ...).
    _cleared: dict[str, tuple[tuple[str, str], ...]]
    _touched_cleared: set[str]
    _file: SqliteRecordFile | None

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

    # ----------------------------------------------------------------------------- auto-numbers

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


class _Transaction:
    """:meth:`OrgStore.transaction` as a plain context manager: a generator-based one cost a
    few microseconds more per single-record write (each write is a batch of one inside it)."""

    __slots__ = ("_mark", "_store")

    def __init__(self, store: StoreTransactions) -> None:
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
