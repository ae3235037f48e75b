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
back by undelete (see ``store_deletes._clear_lookups_to`` for what is UNCONFIRMED there).
Rolled-back auto-numbers are reused (the platform burns them); rolled-back ids are not.

The class is composed of one mixin per concern, each in its own module: the state and reads
(:mod:`.store_reads`), transactions and undo (:mod:`.store_transactions`), writes
(:mod:`.store_writes`) and deletions (:mod:`.store_deletes`); here are its set-up, loading
from SQLite and the integration user.
"""

from __future__ import annotations

import threading
from pathlib import Path

from sfsync.emulator.clock import OrgClock
from sfsync.emulator.ids import IdFactory, normalise
from sfsync.emulator.schema.model import FieldType, Schema, WireValue
from sfsync.emulator.store_batch import DEFAULT_API_VERSION
from sfsync.emulator.store_changes import CallContext, ChangeRecord, ChangeType, call_context
from sfsync.emulator.store_deletes import StoreDeletes
from sfsync.emulator.store_reads import RECYCLE_BIN_DAYS
from sfsync.emulator.store_rows import Row, Table
from sfsync.emulator.store_sqlite import SqliteRecordFile
from sfsync.emulator.store_writes import StoreWrites
from sfsync.emulator.validation import RuleChecker

INTEGRATION_USERNAME = "integration@sfsync.emulator"


class OrgStore(StoreWrites, StoreDeletes):
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
        self._log = {}
        self._counters = {}
        self._rules = rule_checker or RuleChecker(schema)
        self._plans = {}
        self._now_cache = (-1, "")
        self._listeners = []
        self._commit_listeners = []
        self._lock = threading.RLock()
        self._depth = 0
        self._undo = []
        self._pending = []
        self._touched = {}
        self._touched_log = set()
        self._cleared = {}
        self._touched_cleared = set()
        self._referrers = {}
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

    # ----------------------------------------------------------------------------- internals

    def close(self) -> None:
        """Close the SQLite file (a memory-only store needs no closing)."""
        if self._file is not None:
            self._file.close()

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
