"""Helpers for the SQL sink suite: a test schema, event builders, and :class:`Harness`.

:class:`Harness` opens sinks on one test database and reads tables back with values
normalised across dialects, so that one assertion serves all three.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal

import sqlalchemy as sa

from sfsync.connectors.sql.client import ConnectionSettings, engine_url
from sfsync.connectors.sql.config import PostgresConnection
from sfsync.connectors.sql.sink import SqlSink, TableOptions
from sfsync.core.events import ChangeEvent, Operation, Position
from sfsync.core.schema import EntitySchema, FieldKind, FieldSpec
from sfsync.spi.sink import SinkContext
from sfsync.testing import FakeClock

T0 = datetime(2026, 1, 1, tzinfo=UTC)

ACCOUNT = EntitySchema.of(
    "Account",
    "Id",
    [
        FieldSpec(name="Id", kind=FieldKind.ID, length=18),
        FieldSpec(name="Name", kind=FieldKind.STRING, length=20),
        FieldSpec(name="Amount", kind=FieldKind.DECIMAL, precision=10, scale=2),
        FieldSpec(name="Employees", kind=FieldKind.INTEGER),
        FieldSpec(name="Active", kind=FieldKind.BOOLEAN),
        FieldSpec(name="Born", kind=FieldKind.DATE),
        FieldSpec(name="Notes", kind=FieldKind.TEXT),
        FieldSpec(name="Meta", kind=FieldKind.JSON),
        FieldSpec(name="SystemModstamp", kind=FieldKind.DATETIME),
    ],
    version_field="SystemModstamp",
)


def stamp(n: int) -> str:
    """Version ``n`` as Salesforce writes SystemModstamp."""
    return f"2026-01-01T00:00:{n:02d}.000+0000"


def event(
    key: str,
    n: int,
    op: Operation = Operation.UPDATE,
    *,
    partial: bool = False,
    entity: str = "Account",
    **values: object,
) -> ChangeEvent:
    """An event for ``key`` at version ``n``; full events get defaults for unnamed fields."""
    after: dict[str, object] | None
    if op is Operation.DELETE:
        after = None
    elif partial:
        after = dict(values)
    else:
        after = {"Id": key, "Name": f"n{n}", "SystemModstamp": stamp(n)} | values
    return ChangeEvent(
        entity=entity,
        key=key,
        op=op,
        after=after,
        position=Position("s", str(n)),
        committed_at=T0,
        partial=partial,
        version=stamp(n),
    )


class Harness:
    """Opens sinks on one test database and reads its tables back, normalised."""

    def __init__(self, settings: ConnectionSettings, dialect: str) -> None:
        self.settings = settings
        self.dialect = dialect
        self.sync_id = f"test-{uuid.uuid4().hex[:12]}"  # unique: names this test's sessions
        self._sinks: list[SqlSink] = []

    async def sink(
        self, tables: Mapping[str, TableOptions] | None = None, *, sync_id: str | None = None
    ) -> SqlSink:
        sync_id = sync_id or self.sync_id
        sink = SqlSink(self.settings, tables=tables, sync_id=sync_id)
        await sink.open(SinkContext(sync_name=sync_id, clock=FakeClock()))
        self._sinks.append(sink)
        return sink

    async def close_all(self) -> None:
        for sink in self._sinks:
            await sink.aclose()

    def query(self, sql: str) -> list[tuple[object, ...]]:
        engine = sa.create_engine(engine_url(self.settings), poolclass=sa.pool.NullPool)
        try:
            with engine.connect() as conn:
                return [tuple(r) for r in conn.exec_driver_sql(sql)]
        finally:
            engine.dispose()

    def execute(self, sql: str) -> None:
        engine = sa.create_engine(engine_url(self.settings), poolclass=sa.pool.NullPool)
        try:
            with engine.begin() as conn:
                conn.exec_driver_sql(sql)
        finally:
            engine.dispose()

    def quote(self, name: str) -> str:
        return f"`{name}`" if self.dialect == "mysql" else f'"{name}"'

    def ref(self, table: str) -> str:
        q = '"' if self.dialect != "mysql" else "`"
        if isinstance(self.settings, PostgresConnection):
            return f'"{self.settings.db_schema}"."{table}"'
        return f"{q}{table}{q}"

    def columns(self, table: str) -> list[str]:
        engine = sa.create_engine(engine_url(self.settings), poolclass=sa.pool.NullPool)
        try:
            schema = getattr(self.settings, "db_schema", None)
            return [c["name"] for c in sa.inspect(engine).get_columns(table, schema=schema)]
        finally:
            engine.dispose()

    def rows(
        self, table: str = "account", kinds: Mapping[str, FieldKind] | None = None
    ) -> dict[str, dict[str, object]]:
        """Every row by key (the first column), values normalised by ``kinds``."""
        kinds = kinds or {s.name: s.kind for s in ACCOUNT}
        names = self.columns(table)
        found: dict[str, dict[str, object]] = {}
        for raw in self.query(f"SELECT * FROM {self.ref(table)}"):
            row = {
                name: normalise(kinds.get(name), value)
                for name, value in zip(names, raw, strict=True)
                if not name.startswith("_sfsync_synced")
            }
            found[str(raw[0])] = row
        return found


def normalise(kind: FieldKind | None, value: object) -> object:
    """One Python value per meaning, whichever dialect stored it."""
    if value is None:
        return None
    if kind is FieldKind.DATETIME:
        dt = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
        return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
    if kind is FieldKind.DATE:
        return value if isinstance(value, date) else date.fromisoformat(str(value))
    if kind is FieldKind.DECIMAL:
        return Decimal(str(value)).normalize()
    if kind is FieldKind.BOOLEAN:
        return bool(value)
    if kind is FieldKind.JSON:
        return json.loads(value) if isinstance(value, str) else value
    if isinstance(value, int) and not isinstance(value, bool) and kind is None:
        return value
    return value
