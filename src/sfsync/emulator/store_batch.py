"""The store's batch write path: many inserts, updates or upserts of one object in one
transaction, each row validated and failing alone, at a fraction of the per-call cost.

:meth:`OrgStore.batch <sfsync.emulator.store.OrgStore.batch>` opens one store transaction
(one lock acquisition, one commit, one set of change records for the listeners) and yields a
:class:`BatchWriter`. Its :meth:`~BatchWriter.insert`, :meth:`~BatchWriter.update` and
:meth:`~BatchWriter.upsert` have exactly the semantics and errors of the store's single-record
calls; a row that raises is rolled back alone (as a nested transaction would be) and the batch
goes on. The Bulk APIs apply each chunk of 200 rows through one writer, as the platform
commits bulk data in transactions of 200 records.

What makes it cheaper, without skipping any check:

* a :class:`~sfsync.emulator.store_plan.WritePlan` per object, built once
  (:mod:`~sfsync.emulator.store_plan`): field name (any casing) -> stored slot and a
  coercer specialised for the field's type (plain text within its length is taken as is;
  everything else goes through :func:`~sfsync.emulator.validation.coerce_value`, so errors
  are the same), and the slots of required, lookup and unique fields, so a row only pays for
  the checks that apply to it;
* ids minted for the whole batch at once, the caller, its call context and the timestamp taken
  once per batch (one transaction is one instant, as on the platform);
* records built as value tuples directly (no per-row dict of every field).

A row the plan does not cover (an ``attributes`` key, a relationship by external id, an
unknown or read-only field, a compound field) goes through the store's single-record code, so
its semantics and error messages are those of :meth:`OrgStore.insert` / ``update``.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from itertools import compress, repeat
from typing import TYPE_CHECKING, TypeVar

from sfsync.emulator.errors import ApiError, ErrorDetail
from sfsync.emulator.schema.model import FieldDef, FieldType, ObjectDef, WireValue
from sfsync.emulator.schema.standard import derived_values
from sfsync.emulator.store_changes import CallContext, ChangeType, current_call
from sfsync.emulator.store_plan import TextColumns, WritePlan, _Column, _given
from sfsync.emulator.store_rows import Row, Table, bump_stamp, index_key
from sfsync.emulator.validation import check_references, check_required, check_unique

if TYPE_CHECKING:
    from sfsync.emulator.store_writes import StoreWrites

R = TypeVar("R")
_S = TypeVar("_S")
#: The API version used in the record URLs of a 300 answer raised by an upsert.
DEFAULT_API_VERSION = "59.0"


def _same(given: dict[str, WireValue]) -> dict[str, WireValue]:
    return given


class BatchWriter:
    """Writes rows of one object inside one open store transaction (see the module
    docstring). Made by :meth:`OrgStore.batch`; valid only inside its ``with`` block."""

    def __init__(
        self, store: StoreWrites, table: Table, plan: WritePlan, user: str, size_hint: int = 0
    ) -> None:
        self.store = store
        self.table = table
        self.plan = plan
        self.user = user
        self.context: CallContext = current_call()
        self.now = store._now()
        self._ids: list[str] = []
        # Ids are minted, on the first insert, for as many inserts as the caller expects (one
        # lock round and one minting pass), then one at a time: ids minted and not used are
        # burnt (the platform burns ids too), so no more are minted than announced.
        self._id_block = max(1, size_hint)

    # ----------------------------------------------------------------------------- public

    def insert(self, values: Mapping[str, object]) -> str:
        """Like :meth:`OrgStore.insert`; a failing row leaves no trace."""
        store = self.store
        mark = (len(store._undo), len(store._pending))
        try:
            return self._insert(values)
        except BaseException:
            store._undo_to(mark)
            raise

    def text_columns(
        self, names: Sequence[str], null: str, *, creating: bool = True
    ) -> TextColumns | None:
        """A plan to write rows of text values in the order of ``names`` (through
        :meth:`insert_text` when ``creating``, else :meth:`upsert_text`), or ``None`` when a
        column is not a field every row can be written to through the plan (then write
        dicts)."""
        plan = self.plan
        if not (plan.obj.createable if creating else plan.obj.updateable):
            return None
        keys = plan.create if creating else plan.change
        entries: list[_Column] = []
        for column in names:
            entry = keys.get(column) or keys.get(column.lower())
            if entry is None:
                return None
            name, index, coerce, length = entry
            entries.append((name, index, coerce, length, index in plan.defaulted))
        if len({e[0] for e in entries}) != len(entries):
            return None  # a field named twice: the dict path decides which value wins
        return TextColumns(plan, entries, null)

    def insert_text(self, columns: TextColumns, row: Sequence[str]) -> str:
        """:meth:`insert` of the values ``row`` gives in ``columns``' order (empty: not
        given; ``columns.null``: null); the same record, checks and errors as :meth:`insert`
        of the dict of those values, without building it."""
        store = self.store
        undo, pending = len(store._undo), len(store._pending)
        try:
            return self._insert_text(columns, row)
        except BaseException:
            store._undo_to((undo, pending))
            raise

    def upsert_text(
        self,
        field_name: str,
        key: str,
        changes: TextColumns,
        creates: TextColumns,
        row: Sequence[str],
    ) -> tuple[str, bool]:
        """:meth:`upsert` by the external id ``field_name`` (not ``Id``) of the values ``row``
        gives in ``changes``' order: an update of the record whose key is ``key``, or an
        insert of the row with the key appended (``creates`` is ``changes`` plus the key's
        column). The same records, checks and errors as :meth:`upsert` of the dict."""
        store = self.store
        mark = (len(store._undo), len(store._pending))
        try:
            f = self.plan.key_fields.get(field_name)
            if f is None:
                f = self.plan.key_fields[field_name] = self.plan.obj.field(field_name)
            if f is None or not f.external_id or f.type is FieldType.ID:
                return self._upsert(field_name, key, changes.raw(row))
            ids = self._key_ids(f, key)
            if len(ids) > 1:
                raise multiple_choices(self.plan.obj, ids)
            if ids:
                self._update_text(ids[0], changes, row)
                return ids[0], False
            return self._insert_text(creates, [*row, key]), True
        except BaseException:
            store._undo_to(mark)
            raise

    def update(self, record_id: str, values: Mapping[str, object]) -> None:
        """Like :meth:`OrgStore.update`; a failing row leaves no trace."""
        self._guarded(lambda: self._update(self.store._resolve(record_id, self.table), values))

    def upsert(self, field_name: str, value: str, values: Mapping[str, object]) -> tuple[str, bool]:
        """Like :meth:`OrgStore.upsert`: ``(id, created)``; a failing row leaves no trace."""
        return self._guarded(lambda: self._upsert(field_name, value, values))

    # ----------------------------------------------------------------------------- rows

    def _guarded(self, write: Callable[[], R]) -> R:
        store = self.store
        mark = (len(store._undo), len(store._pending))
        try:
            return write()
        except BaseException:
            store._undo_to(mark)
            raise

    def _new_id(self) -> str:
        if not self._ids:
            self._ids = self.store.ids.new_ids(self.plan.obj.key_prefix, self._id_block)
            self._ids.reverse()
            self._id_block = 1
        return self._ids.pop()

    def _insert(self, values: Mapping[str, object]) -> str:
        plan, table = self.plan, self.table
        given = _given(plan.create, values) if plan.obj.createable else None
        if given is None:
            return self.store._insert(table, values, self.user)
        record = plan.template.copy()
        slot = table.slot
        defaulted = plan.defaulted
        if defaulted:
            for name, value in given.items():
                index = slot[name]
                if value is not None or index not in defaulted:
                    record[index] = value
        else:
            for name, value in given.items():
                record[slot[name]] = value
        lookups = bool(plan.lookups) and not plan.lookups.isdisjoint(given)
        return self._create(record, _same, given, lookups)

    def _insert_text(self, columns: TextColumns, row: Sequence[str]) -> str:
        # _insert with _given unrolled over the columns: same coercions, in the same order.
        record = self.plan.template.copy()
        null = columns.null
        for (_, index, coerce, length, defaulted), raw in zip(columns.entries, row, strict=True):
            if not raw:
                continue
            if raw == null:
                value = coerce(None)
            elif len(raw) <= length:
                value = raw
            else:
                value = coerce(raw)
            if value is not None or not defaulted:
                record[index] = value
        lookups = any(row[n] for n in columns.lookups) if columns.lookups else False
        return self._create(record, columns.given, row, lookups)

    def _create(
        self,
        record: list[WireValue],
        given: Callable[[_S], dict[str, WireValue]],
        source: _S,
        lookups: bool,
    ) -> str:
        """Insert the record whose given values are in place: ids, stamps, owner, auto
        numbers, derived fields, the checks, the write and its change. ``given(source)``
        makes the given values (declared name -> coerced value) for the checks that name
        them; ``lookups`` says whether a lookup field is among them."""
        plan, store, table = self.plan, self.store, self.table
        obj = plan.obj
        slot = table.slot
        rid = self._new_id()
        record[0] = rid
        record[1] = False
        now, user = self.now, self.user
        for index in plan.stamps:
            record[index] = now
        for index in plan.users:
            record[index] = user
        if plan.stamp is not None:
            record[plan.stamp] = now
        if plan.owner is not None and record[plan.owner] is None:
            record[plan.owner] = user
        for index, f in plan.auto:
            record[index] = store._next_auto_number(obj, f)
        if plan.derive:
            for name, derived in derived_values(obj.name, Row(slot, tuple(record))).items():
                record[slot[name]] = derived
        row = tuple(record)
        self._check_new(row, partial(given, source), lookups, rid)
        store._put(table, rid, row)
        changed = tuple(compress(table.names, map(operator.is_not, row, repeat(None))))
        self._announce(rid, "CREATE", changed, row)
        return rid

    def _update(self, rid: str, values: Mapping[str, object]) -> None:
        plan, table = self.plan, self.table
        old = table.rows[rid]
        given = _given(plan.change, values) if old[1] is not True and plan.obj.updateable else None
        if given is None:
            self.store._update(table, rid, values, self.user)
            return
        record = list(old)
        slot = table.slot
        for name, value in given.items():
            record[slot[name]] = value
        watch = None if plan.derive else sorted({*(slot[n] for n in given), *plan.stamped})
        self._change(rid, old, record, given, watch)

    def _update_text(self, rid: str, columns: TextColumns, row: Sequence[str]) -> None:
        # _update with _given unrolled over the columns (as _insert_text is).
        plan, table = self.plan, self.table
        old = table.rows[rid]
        if old[1] is True or not plan.obj.updateable:
            self.store._update(table, rid, columns.raw(row), self.user)
            return
        record = list(old)
        null = columns.null
        for (_, index, coerce, length, _), raw in zip(columns.entries, row, strict=True):
            if not raw:
                continue
            if raw == null:
                record[index] = coerce(None)
            elif len(raw) <= length:
                record[index] = raw
            else:
                record[index] = coerce(raw)
        # The checks read the given values only for the fields they check: without such a
        # field in the row (or a non-nillable one it nulls), none of them can fail.
        checked = False
        for n in columns.checked:
            if row[n]:
                checked = True
        for i in columns.not_nillable:
            if record[i] is None:
                checked = True
        self._change(rid, old, record, columns.given(row) if checked else {}, columns.watch)

    def _change(
        self,
        rid: str,
        old: tuple[WireValue, ...],
        record: list[WireValue],
        given: dict[str, WireValue],
        watch: list[int] | None,
    ) -> None:
        """Update the record whose given values are in ``record``: stamps, derived fields,
        the checks, the write and its change. ``watch`` holds every slot the update may have
        changed (``None``: any slot), the others being ``old``'s values as they were."""
        plan, store, table = self.plan, self.store, self.table
        if plan.modified is not None:
            record[plan.modified] = self.now
        if plan.modifier is not None:
            record[plan.modifier] = self.user
        if plan.stamp is not None:
            record[plan.stamp] = bump_stamp(old[plan.stamp], self.now)
        if plan.derive:
            slot = table.slot
            for name, derived in derived_values(plan.obj.name, Row(slot, tuple(record))).items():
                record[slot[name]] = derived
        new = tuple(record)
        self._check(new, given, rid)
        store._put(table, rid, new)
        # LastModifiedDate counts as changed even when the clock has not moved (see _update).
        modified = plan.modified
        names = table.names
        changed = tuple(
            names[i]
            for i in (range(len(names)) if watch is None else watch)
            if old[i] != new[i] or i == modified
        )
        self._announce(rid, "UPDATE", changed, new)

    def _check_new(
        self,
        row: tuple[WireValue, ...],
        given: Callable[[], dict[str, WireValue]],
        lookups: bool,
        rid: str,
    ) -> None:
        """The single-record insert's checks, in its order, each only when it can fail."""
        plan, store = self.plan, self.store
        obj = plan.obj
        slot = self.table.slot
        for _, index in plan.required:
            if index is None or row[index] is None:
                check_required(obj, Row(slot, row), given(), creating=True)
        if lookups:
            references = {n: v for n, v in given().items() if n in plan.lookups}
            check_references(obj, store.schema, references, store)
        if plan.unique and self._may_repeat(row, rid):
            check_unique(obj, Row(slot, row), rid, store)
        if plan.rules:
            store._rules.check(obj, Row(slot, row), store, store.clock.now())

    def _check(self, row: tuple[WireValue, ...], given: dict[str, WireValue], rid: str) -> None:
        """The single-record update's checks, in its order, each only when it can fail."""
        plan, store = self.plan, self.store
        obj = plan.obj
        record = Row(self.table.slot, row)
        if not plan.not_nillable.isdisjoint(given) and any(
            given[n] is None for n in given if n in plan.not_nillable
        ):
            check_required(obj, record, given, creating=False)
        lookups = plan.lookups
        if lookups and not lookups.isdisjoint(given):
            references = {n: v for n, v in given.items() if n in lookups}
            check_references(obj, store.schema, references, store)
        if plan.unique and not plan.unique.isdisjoint(given):
            self._check_unique(given, rid)
        if plan.rules:
            store._rules.check(obj, record, store, store.clock.now())

    def _may_repeat(self, row: tuple[WireValue, ...], rid: str) -> bool:
        """Whether the new ``row`` may repeat another record's unique value: ``False`` when
        the unique indexes say no other record holds any of its values (the common case)."""
        keys = self.table.keys
        for _, index, case_sensitive in self.plan.unique_text:
            value = row[index]
            if value is None or value == "":
                continue
            found = keys[index].get(index_key(str(value), case_sensitive))
            if found is not None and found != rid:
                return True
        return bool(self.plan.unique_other)

    def _check_unique(self, values: Mapping[str, WireValue], rid: str) -> None:
        """``check_unique``, answered from the unique indexes when no other record can hold
        any of the values (the common case); otherwise ``check_unique`` itself decides."""
        table = self.table
        for name, slot, case_sensitive in self.plan.unique_text:
            value = values.get(name)
            if value is None or value == "":
                continue
            found = table.keys[slot].get(index_key(str(value), case_sensitive))
            if found is not None and found != rid:
                break
        else:
            if not self.plan.unique_other:
                return
        check_unique(self.plan.obj, values, rid, self.store)

    def _announce(
        self, rid: str, change: ChangeType, fields: tuple[str, ...], row: tuple[WireValue, ...]
    ) -> None:
        self.store._pending_change(
            self.table, rid, change, fields, Row(self.table.slot, row), self.user, self.context
        )

    def _upsert(
        self, field_name: str, value: str, values: Mapping[str, object]
    ) -> tuple[str, bool]:
        store, table = self.store, self.table
        obj = table.obj
        f = upsert_key(obj, field_name)
        if f.type is FieldType.ID:
            if not value:
                return self._insert(values), True
            rid = store._resolve(value, table)
            self._update(rid, values)
            return rid, False
        body = store._upsert_body(f, values, value)
        ids = self._key_ids(f, value)
        if len(ids) > 1:
            raise multiple_choices(obj, ids)
        if ids:
            self._update(ids[0], body)
            return ids[0], False
        body[f.name] = value
        return self._insert(body), True

    def _key_ids(self, f: FieldDef, value: str) -> list[str]:
        """``find_by_field`` for an upsert's key, from the key's index when it has one."""
        table = self.table
        index = self.plan.indexed_keys.get(f.name)
        if index is None:
            return self.store.find_by_field(table.obj.name, f.name, value)
        if value == "":
            return []
        rows = table.rows
        found = table.keys[index].get(index_key(value, f.case_sensitive))
        if found is None:
            return []
        if isinstance(found, str):
            return [] if rows[found][1] is True else [found]
        return [i for i in sorted(found) if rows[i][1] is not True]


def upsert_key(obj: ObjectDef, field_name: str) -> FieldDef:
    """The field an upsert matches on: an external id field or ``Id``; 404 NOT_FOUND as
    Salesforce words it otherwise."""
    f = obj.field(field_name)
    if f is None or not (f.external_id or f.type is FieldType.ID):
        raise ApiError.of(
            404,
            "NOT_FOUND",
            f"Provided external ID field does not exist or is not accessible: {field_name}",
        )
    return f


def multiple_choices(obj: ObjectDef, ids: list[str]) -> ApiError:
    """The 300 an upsert raises when its key matches several records: one detail per match,
    whose message is the record's URL (the REST layer renders them as the 300 body)."""
    return ApiError(
        300,
        tuple(
            ErrorDetail(
                "MULTIPLE_CHOICES",
                f"/services/data/v{DEFAULT_API_VERSION}/sobjects/{obj.name}/{i}",
            )
            for i in ids
        ),
    )
