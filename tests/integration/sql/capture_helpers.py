"""Helpers for the capture tests: a captured table in a fresh database, and reading events."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from types import MappingProxyType

import sqlalchemy as sa

from sfsync.connectors.sql.capture import install
from sfsync.connectors.sql.capture.install import CaptureObject
from sfsync.connectors.sql.capture.source import SqlCaptureSource
from sfsync.connectors.sql.client import ConnectionSettings, dialect_of, engine_url
from sfsync.connectors.sql.config import PostgresConnection
from sfsync.core.checkpoint import Checkpoint
from sfsync.core.events import Batch, ChangeEvent, Position
from sfsync.spi.clock import Clock
from sfsync.spi.source import SourceContext
from sfsync.testing import FakeClock

INVOICE = CaptureObject(entity="Invoice__c", table="invoice", key="Ext_Id__c")

_DDL = {
    "postgresql": "CREATE TABLE {t} (id serial PRIMARY KEY, ext_id__c varchar(40), "
    "name varchar(80), amount numeric(10,2), paid boolean, due timestamptz, "
    "updated_at timestamptz)",
    "mysql": "CREATE TABLE {t} (id int AUTO_INCREMENT PRIMARY KEY, ext_id__c varchar(40), "
    "name varchar(80), amount decimal(10,2), paid boolean, due datetime(6), "
    "updated_at datetime(6))",
    "sqlite": "CREATE TABLE {t} (id integer PRIMARY KEY, ext_id__c varchar(40), "
    "name varchar(80), amount numeric(10,2), paid boolean, due timestamp, updated_at timestamp)",
}


@dataclass
class Db:
    """A test database with an ``invoice`` table, and an engine to write it."""

    settings: ConnectionSettings
    dialect: str
    engine: sa.Engine

    def ref(self, table: str = "invoice") -> str:
        prep = self.engine.dialect.identifier_preparer
        if isinstance(self.settings, PostgresConnection):
            return f"{prep.quote(self.settings.db_schema)}.{prep.quote(table)}"
        return prep.quote(table)

    def run(self, *statements: str, params: Sequence[dict[str, object]] | None = None) -> None:
        """Run ``statements`` in one transaction."""
        with self.engine.begin() as conn:
            for statement in statements:
                conn.execute(sa.text(statement), list(params) if params else None)

    def scalar(self, statement: str) -> object:
        with self.engine.connect() as conn:
            return conn.execute(sa.text(statement)).scalar()

    def install(self, objects: Sequence[CaptureObject] = (INVOICE,)) -> list[str]:
        engine, conn = install.connect(self.settings)
        try:
            statements = install.plan_install(conn, self.settings, objects)
            install.execute(conn, dialect_of(self.settings), statements)
            return statements
        finally:
            conn.close()
            engine.dispose()

    def remove(self) -> None:
        engine, conn = install.connect(self.settings)
        try:
            install.execute(
                conn, dialect_of(self.settings), install.plan_remove(conn, self.settings)
            )
        finally:
            conn.close()
            engine.dispose()

    def triggers(self) -> list[tuple[str, str]]:
        engine, conn = install.connect(self.settings)
        try:
            return install.installed_triggers(conn, self.settings)
        finally:
            conn.close()
            engine.dispose()

    def has_log(self) -> bool:
        schema = self.settings.db_schema if isinstance(self.settings, PostgresConnection) else None
        with self.engine.connect() as conn:
            return sa.inspect(conn).has_table("_sfsync_changes", schema=schema)


def make_db(settings: ConnectionSettings, dialect: str) -> Db:
    engine = sa.create_engine(engine_url(settings))
    db = Db(settings, dialect, engine)
    if isinstance(settings, PostgresConnection):
        db.run(f'CREATE SCHEMA IF NOT EXISTS "{settings.db_schema}"')
    db.run(_DDL[dialect].format(t=db.ref()))
    return db


async def open_source(
    settings: ConnectionSettings,
    objects: Sequence[CaptureObject] = (INVOICE,),
    *,
    clock: Clock | None = None,
    follow: bool = False,
    batch_size: int = 2000,
) -> SqlCaptureSource:
    source = SqlCaptureSource(settings, objects, follow=follow, clock=clock)
    await source.open(
        SourceContext(sync_name="t", clock=clock or FakeClock(), batch_size=batch_size)
    )
    return source


def checkpoint(positions: dict[str, Position]) -> Checkpoint:
    return Checkpoint(positions=MappingProxyType(dict(positions)))


async def read_all(
    source: SqlCaptureSource, positions: dict[str, Position]
) -> tuple[list[ChangeEvent], list[Batch]]:
    """Every change after ``positions`` (updated in place with what a checkpoint would keep)."""
    events: list[ChangeEvent] = []
    batches: list[Batch] = []
    async for batch in source.changes(checkpoint(positions)):
        batches.append(batch)
        events.extend(batch.events)
        for p in (*(e.position for e in batch.events), *batch.advances):
            positions[p.stream] = p
    return events, batches
