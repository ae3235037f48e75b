"""The SQL connector: PostgreSQL, MySQL/MariaDB and SQLite through SQLAlchemy Core.

Its connection sections are the models in :mod:`sfsync.connectors.sql.config`; the specs
below register one connector type per database (entry points ``postgres``, ``mysql``,
``mariadb`` and ``sqlite``), all built on the same sink and the same source (change capture,
:mod:`sfsync.connectors.sql.capture`).

Source options (``ConnectorRequest.options``): ``mode`` (the sync's mode): ``realtime`` makes
the source follow the change log (``changes`` never returns; PostgreSQL wakes on NOTIFY);
any other mode reads until caught up and returns.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from sfsync.connectors.sql.config import MySqlConnection, PostgresConnection, SqliteConnection
from sfsync.spi.sink import Sink
from sfsync.spi.source import Source
from sfsync.spi.spec import ConnectorRequest, ConnectorSpec


def _sink(conn: Any, request: ConnectorRequest) -> Sink:
    from sfsync.connectors.sql.sink import DeleteMode, SqlSink, TableOptions

    tables = {
        e.name: TableOptions(
            table=e.target, deletes=DeleteMode.SOFT if e.deletes == "soft" else DeleteMode.HARD
        )
        for e in request.entities
    }
    return SqlSink(conn, tables=tables, sync_id=request.sync_name)


def _source(conn: Any, request: ConnectorRequest) -> Source:
    from sfsync.connectors.sql.capture.install import capture_objects
    from sfsync.connectors.sql.capture.source import SqlCaptureSource

    return SqlCaptureSource(
        conn,
        capture_objects(request.entities),
        follow=request.options.get("mode") == "realtime",
        clock=request.clock,
    )


def _spec(name: str, summary: str, config: type[BaseModel]) -> ConnectorSpec:
    return ConnectorSpec(name=name, summary=summary, config=config, source=_source, sink=_sink)


_UPSERTS = "batched upserts with a version guard, checkpoint in the same transaction"
POSTGRES = _spec(
    "postgres",
    "PostgreSQL: COPY into a staging table and merge, checkpoint in the same transaction",
    PostgresConnection,
)
MYSQL = _spec("mysql", f"MySQL: {_UPSERTS}", MySqlConnection)
MARIADB = _spec("mariadb", f"MariaDB: {_UPSERTS}", MySqlConnection)
SQLITE = _spec(
    "sqlite", "SQLite file: the embedded default target, no service needed", SqliteConnection
)
