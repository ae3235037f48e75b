"""The store's writes: insert, update and upsert of one record, batches of them (through
:mod:`~sfsync.emulator.store_batch`) and the bulk insert that skips validation.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager
from itertools import islice

from sfsync.emulator.errors import ApiError
from sfsync.emulator.schema.model import FieldDef, FieldType, WireValue
from sfsync.emulator.schema.standard import derived_values
from sfsync.emulator.store_batch import BatchWriter, multiple_choices, upsert_key
from sfsync.emulator.store_plan import DERIVED_OBJECTS, WritePlan
from sfsync.emulator.store_rows import Row, Table, bump_stamp, index_key
from sfsync.emulator.store_transactions import StoreTransactions, _Transaction
from sfsync.emulator.validation import (
    RuleChecker,
    check_references,
    check_required,
    check_unique,
    coerce_value,
    prepare_values,
)

_BULK_BATCH = 20_000


class StoreWrites(StoreTransactions):
    """Inserts, updates, upserts, batches and bulk loads of :class:`~.store.OrgStore`."""

    # Set by OrgStore.__init__ (see StoreReads).
    _rules: RuleChecker
    _plans: dict[str, WritePlan]

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
            SystemModstamp=bump_stamp(record["SystemModstamp"], now),
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

    @staticmethod
    def _same_value(f: FieldDef, given: object, value: str) -> bool:
        """Whether a body value and a URL value name the same external id (``42`` and
        ``"42.0"`` do in a number field; text compares as the field's index does)."""
        try:
            a, b = coerce_value(f, given), coerce_value(f, value)
        except ApiError:
            return False
        return index_key(a, f.case_sensitive) == index_key(b, f.case_sensitive)

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
        f = upsert_key(obj, field_name)
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

    @staticmethod
    def _declared(table: Table, key: str) -> str:
        declared = table.lower.get(key.lower())
        if declared is None:
            raise ApiError.of(
                400, "INVALID_FIELD", f"No such column '{key}' on sobject of type {table.obj.name}"
            )
        return declared


class _Batch:
    """:meth:`OrgStore.batch`: a transaction whose block gets a writer."""

    __slots__ = ("_object_name", "_size_hint", "_store", "_transaction", "_user_id")

    def __init__(
        self, store: StoreWrites, object_name: str, user_id: str | None, size_hint: int
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
