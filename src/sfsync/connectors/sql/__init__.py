"""The SQL connector: PostgreSQL, MySQL/MariaDB and SQLite through SQLAlchemy Core.

Its connection sections are the models in :mod:`sfsync.connectors.sql.config`; the specs
below register one connector type per database (entry points ``postgres``, ``mysql``,
``mariadb`` and ``sqlite``), all built on the same sink.
"""

from __future__ import annotations

from typing import Any

from sfsync.connectors.sql.config import MySqlConnection, PostgresConnection, SqliteConnection
from sfsync.spi.sink import Sink
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


POSTGRES = ConnectorSpec(
    name="postgres",
    summary="PostgreSQL: COPY into a staging table and merge, checkpoint in the same transaction",
    config=PostgresConnection,
    sink=_sink,
)
MYSQL = ConnectorSpec(
    name="mysql",
    summary="MySQL: batched upserts with a version guard, checkpoint in the same transaction",
    config=MySqlConnection,
    sink=_sink,
)
MARIADB = ConnectorSpec(
    name="mariadb",
    summary="MariaDB: batched upserts with a version guard, checkpoint in the same transaction",
    config=MySqlConnection,
    sink=_sink,
)
SQLITE = ConnectorSpec(
    name="sqlite",
    summary="SQLite file: the embedded default target, no service needed",
    config=SqliteConnection,
    sink=_sink,
)
