"""Small stand-ins for the org, record store and SOQL compiler, injected at the REST layer's
seams (``app.state.org`` and ``rest_routes(compile_query=...)``) so that the routes can be
tested in isolation and fast.

They follow the contracts in ``sfsync.emulator.rest.seams``; the real implementations are
exercised end to end by ``tests/emulator/test_simple_salesforce.py``.
"""

from __future__ import annotations

import copy
import itertools
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from starlette.applications import Starlette

from sfsync.emulator.clock import OrgClock, format_datetime
from sfsync.emulator.errors import ApiError
from sfsync.emulator.rest import rest_routes
from sfsync.emulator.rest.cursors import id18
from sfsync.emulator.schema.model import (
    ChildRelationship,
    FieldDef,
    FieldType,
    ObjectDef,
    PicklistValue,
    Schema,
    WireValue,
)

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def _system_fields() -> list[FieldDef]:
    ro: dict[str, Any] = {"createable": False, "updateable": False, "defaulted_on_create": True}
    return [
        FieldDef(name="Id", type=FieldType.ID, label="Record ID", nillable=False, **ro),
        FieldDef(name="IsDeleted", type=FieldType.BOOLEAN, label="Deleted", nillable=False, **ro),
        FieldDef(name="CreatedDate", type=FieldType.DATETIME, label="Created Date", **ro),
        FieldDef(name="LastModifiedDate", type=FieldType.DATETIME, label="Last Modified", **ro),
        FieldDef(name="SystemModstamp", type=FieldType.DATETIME, label="System Modstamp", **ro),
    ]


def _object(name: str, prefix: str, fields: list[FieldDef], **kw: Any) -> ObjectDef:
    all_fields = _system_fields() + fields
    return ObjectDef(
        name=name,
        label=name,
        label_plural=name + "s",
        key_prefix=prefix,
        fields=MappingProxyType({f.name.lower(): f for f in all_fields}),
        **kw,
    )


def make_schema() -> Schema:
    """Account (Name required, Ext__c external id, a billing address, Industry picklist) and
    Contact (LastName required, AccountId lookup -> Account.Contacts, Email)."""
    account = _object(
        "Account",
        "001",
        [
            FieldDef(
                name="Name",
                type=FieldType.STRING,
                label="Account Name",
                length=255,
                nillable=False,
                name_field=True,
            ),
            FieldDef(
                name="Ext__c",
                type=FieldType.STRING,
                label="Ext",
                length=40,
                external_id=True,
                unique=True,
            ),
            FieldDef(
                name="Industry",
                type=FieldType.PICKLIST,
                label="Industry",
                picklist=(PicklistValue("Energy", "Energy"),),
            ),
            FieldDef(
                name="AnnualRevenue",
                type=FieldType.CURRENCY,
                label="Revenue",
                precision=18,
                scale=0,
            ),
            FieldDef(
                name="BillingCity",
                type=FieldType.STRING,
                label="Billing City",
                length=40,
                compound_field_name="BillingAddress",
            ),
            FieldDef(
                name="BillingPostalCode",
                type=FieldType.STRING,
                label="Billing Zip",
                length=20,
                compound_field_name="BillingAddress",
            ),
            FieldDef(
                name="BillingAddress",
                type=FieldType.ADDRESS,
                label="Billing Address",
                createable=False,
                updateable=False,
            ),
        ],
        child_relationships=(ChildRelationship("Contacts", "Contact", "AccountId"),),
    )
    contact = _object(
        "Contact",
        "003",
        [
            FieldDef(
                name="LastName", type=FieldType.STRING, label="Last Name", length=80, nillable=False
            ),
            FieldDef(name="Email", type=FieldType.EMAIL, label="Email", length=80),
            FieldDef(
                name="AccountId",
                type=FieldType.REFERENCE,
                label="Account ID",
                reference_to=("Account",),
                relationship_name="Account",
            ),
        ],
    )
    event = _object("Thing__e", "e00", [], platform_event=True, replicateable=False)
    return Schema(MappingProxyType({o.name.lower(): o for o in (account, contact, event)}))


class FakeStore:
    """A dict-backed record store with the validation the tests rely on."""

    def __init__(self, schema: Schema, clock: OrgClock) -> None:
        self.schema = schema
        self.clock = clock
        self.rows: dict[str, dict[str, WireValue]] = {}
        self.deleted_at: dict[str, str] = {}
        self._ids = itertools.count(1)
        self.integration_user_id = "005xx0000000001AAA"

    def _obj(self, name: str) -> ObjectDef:
        obj = self.schema.object(name)
        if obj is None:
            raise ApiError.of(400, "INVALID_TYPE", f"sObject type '{name}' is not supported.")
        return obj

    def _coerce(
        self, obj: ObjectDef, values: Mapping[str, object], *, creating: bool
    ) -> dict[str, WireValue]:
        out: dict[str, WireValue] = {}
        for key, value in values.items():
            f = obj.field(key)
            if f is None:
                raise ApiError.of(
                    400, "INVALID_FIELD", f"No such column '{key}' on sobject of type {obj.name}"
                )
            if not (f.createable if creating else f.updateable):
                raise ApiError.of(
                    400,
                    "INVALID_FIELD_FOR_INSERT_UPDATE",
                    f"Unable to create/update fields: {f.name}.",
                    (f.name,),
                )
            if f.type is FieldType.EMAIL and value is not None and "@" not in str(value):
                raise ApiError.of(
                    400,
                    "INVALID_EMAIL_ADDRESS",
                    f"Email: invalid email address: {value}",
                    (f.name,),
                )
            if f.unique and value is not None:
                for rid in self.find_by_field(obj.name, f.name, str(value)):
                    raise ApiError.of(
                        400,
                        "DUPLICATE_VALUE",
                        f"duplicate value found: {f.name} duplicates value on "
                        f"record with id: {rid}",
                    )
            out[f.name] = value  # type: ignore[assignment]
        return out

    def _stamp(self) -> str:
        return format_datetime(self.clock.now())

    def insert(
        self, object_name: str, values: Mapping[str, object], *, user_id: str | None = None
    ) -> str:
        obj = self._obj(object_name)
        row = self._coerce(obj, values, creating=True)
        missing = [
            f.name for f in obj.fields.values() if f.required_on_create and row.get(f.name) is None
        ]
        if missing:
            raise ApiError.of(
                400,
                "REQUIRED_FIELD_MISSING",
                f"Required fields are missing: [{', '.join(missing)}]",
                tuple(missing),
            )
        rid = id18(f"{obj.key_prefix}xx0{next(self._ids):09d}")
        now = self._stamp()
        full: dict[str, WireValue] = {
            f.name: None for f in obj.fields.values() if f.type is not FieldType.ADDRESS
        }
        full.update(row)
        full.update(
            Id=rid, IsDeleted=False, CreatedDate=now, LastModifiedDate=now, SystemModstamp=now
        )
        self.rows[rid] = full
        return rid

    def update(
        self,
        object_name: str,
        record_id: str,
        values: Mapping[str, object],
        *,
        user_id: str | None = None,
    ) -> None:
        obj = self._obj(object_name)
        row = self.rows.get(record_id)
        if row is None:
            raise ApiError.of(404, "NOT_FOUND", "The requested resource does not exist")
        if row["IsDeleted"]:
            raise ApiError.of(400, "ENTITY_IS_DELETED", "entity is deleted")
        changes = self._coerce(
            obj, {k: v for k, v in values.items() if k.lower() != "id"}, creating=False
        )
        row.update(changes)
        row["LastModifiedDate"] = row["SystemModstamp"] = self._stamp()

    def upsert(
        self,
        object_name: str,
        field_name: str,
        value: str,
        values: Mapping[str, object],
        *,
        user_id: str | None = None,
    ) -> tuple[str, bool]:
        ids = self.find_by_field(object_name, field_name, value)
        if len(ids) > 1:
            raise ApiError.of(300, "MULTIPLE_CHOICES", "several")
        if ids:
            self.update(object_name, ids[0], values, user_id=user_id)
            return ids[0], False
        return self.insert(object_name, {**values, field_name: value}, user_id=user_id), True

    def delete(self, record_id: str, *, user_id: str | None = None) -> None:
        row = self.rows[record_id]
        row["IsDeleted"] = True
        row["SystemModstamp"] = self._stamp()
        self.deleted_at[record_id] = self._stamp()

    def get(self, record_id: str) -> Mapping[str, WireValue] | None:
        if len(record_id) == 15:
            record_id = id18(record_id)
        return self.rows.get(record_id)

    def scan(self, object_name: str, *, include_deleted: bool) -> Iterator[Mapping[str, WireValue]]:
        prefix = self._obj(object_name).key_prefix
        for row in list(self.rows.values()):
            if str(row["Id"]).startswith(prefix) and (include_deleted or not row["IsDeleted"]):
                yield row

    def children(
        self, object_name: str, field_name: str, parent_id: str, *, include_deleted: bool
    ) -> Iterator[Mapping[str, WireValue]]:
        return (
            r
            for r in self.scan(object_name, include_deleted=include_deleted)
            if r.get(field_name) == parent_id
        )

    def find_by_field(self, object_name: str, field_name: str, value: WireValue) -> list[str]:
        wanted = str(value).lower()
        return [
            str(r["Id"])
            for r in self.scan(object_name, include_deleted=False)
            if r.get(field_name) is not None and str(r.get(field_name)).lower() == wanted
        ]

    @contextmanager
    def transaction(self) -> Iterator[None]:
        saved = copy.deepcopy((self.rows, self.deleted_at))
        try:
            yield
        except ApiError:
            self.rows, self.deleted_at = saved
            raise

    def updated_ids(self, object_name: str, start: datetime, end: datetime) -> list[str]:
        lo, hi = format_datetime(start), format_datetime(end)
        return [
            str(r["Id"])
            for r in self.scan(object_name, include_deleted=False)
            if lo <= str(r["SystemModstamp"]) < hi
        ]

    def deleted_records(
        self, object_name: str, start: datetime, end: datetime
    ) -> list[tuple[str, str]]:
        lo, hi = format_datetime(start), format_datetime(end)
        prefix = self._obj(object_name).key_prefix
        return [
            (rid, at)
            for rid, at in self.deleted_at.items()
            if rid.startswith(prefix) and lo <= at < hi
        ]


class FakeLimits:
    def __init__(self) -> None:
        self.remaining = 14_990

    def snapshot(self) -> dict[str, dict[str, object]]:
        return {
            "DailyApiRequests": {"Max": 15_000, "Remaining": self.remaining},
            "DataStorageMB": {"Max": 5, "Remaining": 5},
        }


@dataclass
class FakeOrg:
    schema: Schema
    store: FakeStore
    clock: OrgClock
    limits: FakeLimits = field(default_factory=FakeLimits)


# --- a tiny SOQL compiler: SELECT f, ... | COUNT() FROM Obj [WHERE f = 'v'] --------------

_SELECT = re.compile(
    r"^\s*select\s+(?P<fields>.+?)\s+from\s+(?P<obj>\w+)"
    r"(?:\s+where\s+(?P<wf>\w+)\s*=\s*'(?P<wv>[^']*)')?\s*$",
    re.IGNORECASE | re.DOTALL,
)


@dataclass
class FakeResult:
    total_size: int
    records: Iterator[dict[str, object]]


@dataclass
class FakeQuery:
    obj: ObjectDef
    fields: list[str]
    where: tuple[str, str] | None
    is_count_only: bool
    is_aggregate: bool = False
    pulled: list[int] = field(default_factory=lambda: [0])

    def _rows(self, source: Any, include_deleted: bool) -> Iterator[Mapping[str, WireValue]]:
        for row in source.scan(self.obj.name, include_deleted=include_deleted):
            if self.where is None or str(row.get(self.where[0])) == self.where[1]:
                yield row

    def run(
        self, source: Any, *, now: datetime, include_deleted: bool, api_version: str
    ) -> FakeResult:
        total = sum(1 for _ in self._rows(source, include_deleted))

        def render() -> Iterator[dict[str, object]]:
            for row in self._rows(source, include_deleted):
                self.pulled[0] += 1
                out: dict[str, object] = {
                    "attributes": {
                        "type": self.obj.name,
                        "url": f"/services/data/v{api_version}/sobjects/"
                        f"{self.obj.name}/{row['Id']}",
                    }
                }
                for name in self.fields:
                    out[name] = row.get(name)
                yield out

        return FakeResult(total, render())


class FakeCompiler:
    """Compiles the tiny SOQL subset; remembers the last query (to inspect laziness)."""

    def __init__(self) -> None:
        self.last: FakeQuery | None = None

    def __call__(self, soql: str, schema: Schema, /) -> FakeQuery:
        match = _SELECT.match(soql)
        if match is None:
            raise ApiError.of(400, "MALFORMED_QUERY", f"unexpected token: '{soql.split()[0]}'")
        obj = schema.object(match["obj"])
        if obj is None:
            raise ApiError.of(
                400, "INVALID_TYPE", f"sObject type '{match['obj']}' is not supported."
            )
        raw_fields = [f.strip() for f in match["fields"].split(",")]
        count_only = [f.lower() for f in raw_fields] == ["count()"]
        names: list[str] = []
        if not count_only:
            for raw in raw_fields:
                f = obj.field(raw)
                if f is None:
                    raise ApiError.of(
                        400, "INVALID_FIELD", f"No such column '{raw}' on entity '{obj.name}'."
                    )
                names.append(f.name)
        where = (match["wf"], match["wv"]) if match["wf"] else None
        self.last = FakeQuery(obj, names, where, count_only)
        return self.last


def build_test_app(
    *, frozen_at: datetime = T0, max_live_cursors: int = 64
) -> tuple[Starlette, FakeOrg, FakeCompiler]:
    schema = make_schema()
    clock = OrgClock(frozen_at=frozen_at)
    org = FakeOrg(schema, FakeStore(schema, clock), clock)
    compiler = FakeCompiler()
    app = Starlette(routes=rest_routes(compile_query=compiler, max_live_cursors=max_live_cursors))
    app.state.org = org
    return app, org, compiler
