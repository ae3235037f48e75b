"""What the REST resources need from the rest of the emulator, written down as Protocols.

The REST layer is written against these shapes rather than against concrete classes so that
its tests can hand it small fakes, and so that the contract with the record store, the SOQL
engine and the org is visible in one place. The real ``Org`` (``org.py``), ``OrgStore``
(``store.py``) and ``compile_query`` (``soql/``) satisfy them structurally.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Protocol

from sfsync.emulator.clock import OrgClock
from sfsync.emulator.schema.model import Schema, WireValue


class RecordStore(Protocol):
    """The record store's read and write API as the REST resources call it.

    Writes raise :class:`~sfsync.emulator.errors.ApiError` with Salesforce's codes; the REST
    layer renders them unchanged.
    """

    def insert(
        self, object_name: str, values: Mapping[str, object], *, user_id: str | None = None
    ) -> str: ...

    def update(
        self,
        object_name: str,
        record_id: str,
        values: Mapping[str, object],
        *,
        user_id: str | None = None,
    ) -> None: ...

    def upsert(
        self,
        object_name: str,
        field_name: str,
        value: str,
        values: Mapping[str, object],
        *,
        user_id: str | None = None,
    ) -> tuple[str, bool]: ...

    def delete(self, record_id: str, *, user_id: str | None = None) -> None: ...

    def get(self, record_id: str) -> Mapping[str, WireValue] | None: ...

    def scan(
        self, object_name: str, *, include_deleted: bool
    ) -> Iterator[Mapping[str, WireValue]]: ...

    def children(
        self, object_name: str, field_name: str, parent_id: str, *, include_deleted: bool
    ) -> Iterator[Mapping[str, WireValue]]: ...

    def find_by_field(self, object_name: str, field_name: str, value: WireValue) -> list[str]: ...

    def transaction(self) -> AbstractContextManager[None]: ...

    def updated_ids(self, object_name: str, start: datetime, end: datetime) -> list[str]: ...

    def deleted_records(
        self, object_name: str, start: datetime, end: datetime
    ) -> list[tuple[str, str]]: ...


class QueryResult(Protocol):
    """A running query: the full count and a lazy stream of rendered REST records."""

    @property
    def total_size(self) -> int: ...

    @property
    def records(self) -> Iterator[dict[str, object]]: ...


class CompiledQuery(Protocol):
    """A parsed and bound SOQL statement, runnable many times."""

    @property
    def is_count_only(self) -> bool: ...

    @property
    def is_aggregate(self) -> bool: ...

    def run(
        self, source: RecordStore, *, now: datetime, include_deleted: bool, api_version: str
    ) -> QueryResult: ...


class QueryCompiler(Protocol):
    """``compile_query(soql, schema)``; raises ApiError for bad SOQL."""

    def __call__(self, soql: str, schema: Schema, /) -> CompiledQuery: ...


class LimitsSnapshot(Protocol):
    """The org's limits object: ``snapshot()`` gives ``{name: {"Max": n, "Remaining": n, ...}}``."""

    def snapshot(self) -> Mapping[str, object]: ...


class Org(Protocol):
    """The parts of the running org the REST resources read."""

    @property
    def schema(self) -> Schema: ...

    @property
    def store(self) -> RecordStore: ...

    @property
    def clock(self) -> OrgClock: ...

    @property
    def limits(self) -> LimitsSnapshot: ...
